"""The streaming runtime: capture -> preprocess -> infer -> postprocess -> publish, a thread (pool) per stage.

Stages hand work over through queues of one frame, so each stage works on the next frame while the
slowest one (inference) is busy, memory stays bounded and few frames wait. Postprocessing (thresholding
and statistics, several milliseconds a frame) runs on a pool of worker threads, one per usable core by
default: OpenCV and numpy release the GIL for the heavy parts, so the workers overlap. Each worker draws
a ticket as it takes a frame and the publisher sends results in ticket order, so ``seq`` and
``frame_id`` stay monotonic whatever order the workers finish in:

* Live sources (cameras, streams): the freshest frame wins. A full queue drops its oldest frame
  (counted as ``dropped_before_<stage>``); the source itself already drops frames nobody read. The
  hand-over from the postprocessing workers to the publisher is lossless and holds at most one result
  per worker, so a frame a live source keeps is dropped, if at all, before postprocessing.
* Playback sources (files, folders, synthetic): nothing is lost, every frame's mask is published. A
  full queue makes the upstream stage wait, and capture reads the next frame only when there is room
  for it, so a frame's capture time is when it entered the pipeline, not when it began to wait.
* On a GPU backend that thresholds on its device (PyTorch on CUDA), with native geometry and no
  hysteresis, inference returns the mask: probabilities never cross to the host (no sink asks for them).
* Every sink's ``send`` returns at once (ZeroMQ without blocking, serial and recording on their own
  threads), so no subscriber, serial device or disk can stall publishing, let alone capture or
  inference: a slow subscriber loses messages (gaps in ``seq``), it never slows the pipeline.

Latency is measured from ``Frame.capture_ns``, which the source stamps at capture, to the moment the
message has been handed to ZeroMQ. Frames that are not ``HxWx3`` uint8 (or larger than the wire allows)
are skipped and counted; so are, as ``nonfinite_outputs``, frames whose probabilities hold NaN or
infinity (warned about at most every ``NONFINITE_WARNING_PERIOD_S``). The stages share one
``threading.Event``: setting it (SIGINT, SIGTERM, an error in any stage) stops every stage promptly, and
the frames then in flight are counted as ``discarded_at_stop``; the end of the stream (or the frame /
duration limit) instead drains what is in flight. Every captured frame is therefore published or
counted: ``captured = published + dropped_before_* + discarded_at_stop``. With a pose source, every
published frame is also counted as ``pose_tagged``, ``pose_stale`` or ``pose_missing``. The capture stage opens and
closes the source. Runner and sinks belong to the caller, who opens them before :meth:`Pipeline.run` (a
busy port or a missing serial device fails before the first frame) and closes them after it returns.
Sinks that write behind (the recording) are flushed before the final counters are read, so the summary
counts what they committed.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from crackseg.edge.backends.base import Runner
from crackseg.edge.backends.signature import check_fixed_size
from crackseg.edge.runtime.geometry import Geometry
from crackseg.edge.runtime.message import MessageBuilder
from crackseg.edge.runtime.metrics import MetricsSnapshot, PipelineMetrics
from crackseg.edge.runtime.pose import Pose
from crackseg.edge.runtime.postprocess import FrameResult, Postprocessor
from crackseg.edge.runtime.sources.base import FrameSource, PlaybackSource
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.wire import HEARTBEAT_PERIOD_S, MAX_DIM, MaskMessage

__all__ = [
    "STAGES",
    "Flushable",
    "FrameSink",
    "Pipeline",
    "PipelineConfig",
    "PipelineReport",
    "Sink",
    "default_postprocess_workers",
]

log = logging.getLogger(__name__)

NONFINITE_WARNING_PERIOD_S = 10.0
"""At most one warning per this many seconds about model outputs holding NaN or infinity (each one is counted)."""

STAGES = ("preprocess", "infer", "postprocess", "publish")
"""Stages whose durations are measured (capture time is the source's pace, not work)."""

_POLL_S = 0.05
"""Longest a waiting stage goes without checking the stop event."""

T = TypeVar("T")


def default_postprocess_workers() -> int:
    """One postprocessing worker per core this process may use: idle workers cost nothing, and fewer
    could not keep up with a fast backend (a frame's statistics take several milliseconds of CPU)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


class Sink(Protocol):
    """Where published messages go (ZeroMQ, serial, recording): ``send`` must return without blocking."""

    def send(self, message: MaskMessage) -> None: ...

    def counters(self) -> Mapping[str, int]:
        """Running totals of the sink's own events, merged into the pipeline's metrics."""
        ...


@runtime_checkable
class FrameSink(Sink, Protocol):
    """A sink that also needs the captured image (the overlay): it gets ``send_frame`` instead of ``send`` for
    mask frames, ``send`` for heartbeats. ``send_frame`` must not block and must not modify the image."""

    def send_frame(self, frame: Frame, message: MaskMessage) -> None: ...


@runtime_checkable
class Flushable(Protocol):
    """A sink that works behind ``send`` (a writer thread): the run waits for it before its final counters."""

    def flush(self, timeout_s: float) -> None:
        """Return once everything sent so far is done (or after ``timeout_s``)."""
        ...


@dataclass(frozen=True)
class PipelineConfig:
    """How long to run and how to pace the runtime.

    Attributes:
        max_frames: stop capturing after this many valid frames (``None``: until the source ends).
        duration_s: stop capturing after this many seconds (``None``: no limit).
        infer_batch: most tiles per inference call (engines built for batch 1 need 1).
        heartbeat_s: send a heartbeat after this long without a published frame.
        log_every_s: log live metrics this often (0: only the final summary).
        read_timeout_s: longest single wait for a frame before re-checking stop and limits.
        postprocess_workers: threads that threshold and measure frames (``None``: one per usable core).
    """

    max_frames: int | None = None
    duration_s: float | None = None
    infer_batch: int = 1
    heartbeat_s: float = HEARTBEAT_PERIOD_S
    log_every_s: float = 5.0
    read_timeout_s: float = 0.1
    postprocess_workers: int | None = None

    def __post_init__(self) -> None:
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"the frame limit must be at least 1, got {self.max_frames}")
        if self.duration_s is not None and not self.duration_s > 0:  # NaN too
            raise ValueError(f"the duration must be positive, got {self.duration_s}")
        if self.infer_batch < 1:
            raise ValueError(f"the inference batch must be at least 1, got {self.infer_batch}")
        if not (self.heartbeat_s > 0 and self.log_every_s >= 0):  # NaN too
            raise ValueError(f"heartbeat period {self.heartbeat_s} must be > 0 and log period {self.log_every_s} >= 0")
        if self.postprocess_workers is not None and self.postprocess_workers < 1:
            raise ValueError(f"at least one postprocessing worker is needed, got {self.postprocess_workers}")

    @property
    def workers(self) -> int:
        """Postprocessing threads this run uses."""
        return self.postprocess_workers or default_postprocess_workers()


@dataclass(frozen=True)
class PipelineReport:
    """Outcome of :meth:`Pipeline.run`: whole-run metrics and why it ended."""

    metrics: MetricsSnapshot
    ended_by: str
    """``source ended``, ``frame limit``, ``duration`` or ``stopped``."""


@dataclass
class _Work:
    """One frame on its way through the stages; each stage fills in its output and drops its input."""

    frame: Frame
    batch: np.ndarray | None = None
    prob: np.ndarray | None = None
    mask: np.ndarray | None = None
    result: FrameResult | None = None


class _ClosedError(Exception):
    """The upstream stage finished and everything it produced was taken, or the pipeline was stopped."""


class _Channel(Generic[T]):
    """Bounded FIFO between two stages; full means wait (lossless) or drop the oldest (fresh)."""

    def __init__(self, capacity: int, drop_oldest: bool, on_drop: Callable[[], None]) -> None:
        self._items: deque[T] = deque()
        self._capacity = capacity
        self._drop_oldest = drop_oldest
        self._on_drop = on_drop
        self._closed = False
        self._abandoned = 0
        self._cond = threading.Condition()

    def put(self, item: T, stop: threading.Event) -> None:
        with self._cond:
            while len(self._items) >= self._capacity:
                if self._drop_oldest:
                    self._items.popleft()
                    self._on_drop()
                    break
                if stop.is_set():
                    self._abandoned += 1
                    return
                self._cond.wait(_POLL_S)
            self._items.append(item)
            self._cond.notify_all()

    def discard(self) -> int:
        """Empty the channel after a stop; returns how many items it held or could not take."""
        with self._cond:
            discarded = len(self._items) + self._abandoned
            self._items.clear()
            self._abandoned = 0
            return discarded

    def wait_for_room(self, stop: threading.Event) -> None:
        """Block until a ``put`` would not have to wait (or ``stop`` is set)."""
        with self._cond:
            while len(self._items) >= self._capacity and not stop.is_set():
                self._cond.wait(_POLL_S)

    def get(self, stop: threading.Event, timeout_s: float) -> T | None:
        """The oldest item, ``None`` after ``timeout_s`` without one; raises ``_ClosedError`` at the end or on stop."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if stop.is_set():
                    raise _ClosedError
                if self._items:
                    item = self._items.popleft()
                    self._cond.notify_all()
                    return item
                if self._closed:
                    raise _ClosedError
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, _POLL_S))

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _InOrder(Generic[T]):
    """Hands items from a pool of workers to one consumer in the order the workers took them.

    A worker takes its input through :meth:`take`, which numbers it (a ticket); it hands the result to
    :meth:`put`, which waits while the result is ``window`` or more tickets ahead of the next one due
    (memory stays bounded, the worker with the next ticket never waits). :meth:`get` returns results
    strictly in ticket order. Lossless: a live source's frames are dropped before the workers, where
    their input queue drops its oldest.
    """

    def __init__(self, workers: int) -> None:
        self._window = workers
        self._results: dict[int, T] = {}
        self._next_ticket = 0  # the next taken item's number
        self._next_due = 0  # the next ticket get() returns
        self._working = workers
        self._take_lock = threading.Lock()
        self._cond = threading.Condition()

    def take(self, inp: _Channel[T], stop: threading.Event) -> tuple[int, T] | None:
        """The next input item and its ticket (``None`` on timeout); raises ``_ClosedError`` like ``get``."""
        with self._take_lock:  # taking and numbering are one step, so tickets follow the input order
            item = inp.get(stop, _POLL_S)
            if item is None:
                return None
            ticket, self._next_ticket = self._next_ticket, self._next_ticket + 1
            return ticket, item

    def put(self, ticket: int, item: T, stop: threading.Event) -> None:
        with self._cond:
            while ticket >= self._next_due + self._window and not stop.is_set():
                self._cond.wait(_POLL_S)
            self._results[ticket] = item
            self._cond.notify_all()

    def discard(self) -> int:
        """Drop the results nobody took after a stop; returns how many there were."""
        with self._cond:
            discarded = len(self._results)
            self._results.clear()
            return discarded

    def worker_done(self) -> None:
        """A worker leaves; once all have, :meth:`get` ends after the last result."""
        with self._cond:
            self._working -= 1
            self._cond.notify_all()

    def get(self, stop: threading.Event, timeout_s: float) -> T | None:
        """The result with the next ticket, ``None`` after ``timeout_s`` without it; raises ``_ClosedError``
        once every worker left and every result was taken, or on stop."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while True:
                if stop.is_set():
                    raise _ClosedError
                if self._next_due in self._results:
                    item = self._results.pop(self._next_due)
                    self._next_due += 1
                    self._cond.notify_all()
                    return item
                if self._working == 0:
                    raise _ClosedError
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._cond.wait(min(remaining, _POLL_S))


def _pose_counter(pose: Pose) -> str:
    """The metric a published frame's pose counts under: ``pose_missing`` (no part), ``pose_stale`` (a part
    further than the track's age limit from the capture time) or ``pose_tagged``."""
    if not pose.present:
        return "pose_missing"
    return "pose_stale" if pose.stale else "pose_tagged"


def _is_valid(frame: Frame) -> bool:
    image = frame.image
    return (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and image.shape[2] == 3
        and 0 < image.shape[0] <= MAX_DIM
        and 0 < image.shape[1] <= MAX_DIM
    )


class Pipeline:
    """Runs one source through one model to a set of sinks (see the module docstring); one run per instance.

    Args:
        source: a frame source, not yet open (the capture stage opens it).
        runner: an active runner.
        geometry: native, resized or tiled processing for the runner's spec.
        postprocessor: thresholding and statistics.
        builder: numbers and stamps the messages every sink receives.
        sinks: open sinks; each message goes to them in this order (put ZeroMQ first).
        config: limits and pacing.
    """

    join_timeout_s = 5.0

    def __init__(
        self,
        source: FrameSource,
        runner: Runner,
        geometry: Geometry,
        postprocessor: Postprocessor,
        builder: MessageBuilder,
        sinks: Sequence[Sink],
        config: PipelineConfig | None = None,
    ) -> None:
        self.source = source
        self.runner = runner
        self.geometry = geometry
        self.postprocessor = postprocessor
        self.builder = builder
        self.sinks = tuple(sinks)
        self._frame_sinks = tuple(sink if isinstance(sink, FrameSink) else None for sink in self.sinks)
        self.config = config or PipelineConfig()
        if runner.signature is not None:  # a fixed-size model fed another size fails here, not at the first frame
            check_fixed_size(runner.signature, geometry.network_input)
        self.live = getattr(source, "live", not isinstance(source, PlaybackSource))
        self.metrics = PipelineMetrics(STAGES)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._ended_by = "stopped"
        self._skipped = 0
        self._warn_lock = threading.Lock()
        self._nonfinite = 0
        self._next_nonfinite_warning = 0.0
        note = runner.measurement_note
        self._note = f"{note}: " if note else ""
        self.device_masks = (
            runner.thresholds_on_device and geometry.thresholds_commute and postprocessor.thresholds_alone
        )
        """The runner thresholds on its device and only masks cross to the host (probabilities never do)."""

    def run(self, stop: threading.Event | None = None, start_gate: threading.Event | None = None) -> PipelineReport:
        """Process frames until the source ends, a limit is reached or ``stop`` is set; re-raises a stage's error.

        ``stop`` is set when this returns, so threads the caller tied to it (a local listener) end too.

        Args:
            stop: set it (from a signal handler or another thread) to shut down promptly.
            start_gate: if given, capture starts only once it is set (heartbeats flow meanwhile), so that
                subscribers can connect before the first frame of a finite run.
        """
        self._stop = stop if stop is not None else threading.Event()
        to_pre, to_infer, to_post = (self._channel(name) for name in STAGES[:3])
        workers = self.config.workers
        to_publish: _InOrder[_Work] = _InOrder(workers)
        threads = [
            self._thread("capture", self._capture, to_pre, start_gate),
            self._thread("preprocess", self._stage, "preprocess", to_pre, to_infer, self._preprocess),
            self._thread("infer", self._stage, "infer", to_infer, to_post, self._infer),
            *(self._thread(f"postprocess-{i}", self._postprocess_worker, to_post, to_publish) for i in range(workers)),
            self._thread("publish", self._publish, to_publish),
        ]
        for thread in threads:
            thread.start()
        try:
            self._supervise(threads)
        finally:
            self._stop.set()  # whatever ended the run, every stage leaves now
            for thread in threads:
                thread.join(self.join_timeout_s)
                if thread.is_alive():
                    log.warning("stage %s did not stop within %.0f s", thread.name, self.join_timeout_s)
        ended = time.monotonic()  # the run's duration ends here, before the sinks flush
        in_flight = (to_pre, to_infer, to_post, to_publish)
        self.metrics.count("discarded_at_stop", sum(hand_over.discard() for hand_over in in_flight))
        for sink in self.sinks:
            if isinstance(sink, Flushable):
                sink.flush(self.join_timeout_s)
        self._sync_counters()
        total = self.metrics.total(until=ended)
        log.info("%s%s after %.1f s: %s", self._note, self._ended_by, total.elapsed_s, total.format())
        if self._error is not None:
            raise self._error
        return PipelineReport(total, self._ended_by)

    def _channel(self, consumer: str) -> _Channel[_Work]:
        return _Channel(1, self.live, lambda: self.metrics.count(f"dropped_before_{consumer}"))

    def _thread(self, name: str, target: Callable[..., None], *args: object) -> threading.Thread:
        def guarded() -> None:
            try:
                target(*args)
            except BaseException as exc:
                if self._error is None:
                    self._error = exc
                    log.debug("stage %s failed", name, exc_info=True)
                self._stop.set()

        return threading.Thread(target=guarded, name=f"crackseg-{name}", daemon=True)

    def _supervise(self, threads: list[threading.Thread]) -> None:
        every = self.config.log_every_s
        next_log = time.monotonic() + every
        publisher = threads[-1]  # the last stage ends after every other one (end of stream or stop)
        while publisher.is_alive():
            publisher.join(_POLL_S if not every else max(0.0, min(next_log - time.monotonic(), 0.5)))
            if every and time.monotonic() >= next_log:
                self._sync_counters()
                log.info("%s%s", self._note, self.metrics.interval().format())
                next_log += every

    def _sync_counters(self) -> None:
        stats = self.source.stats
        self.metrics.sync("source_dropped_stale", stats.dropped_stale)
        self.metrics.sync("source_corrupt_skipped", stats.corrupt_skipped)
        self.metrics.sync("source_reconnects", stats.reconnects)
        for sink in self.sinks:
            for name, value in sink.counters().items():
                self.metrics.sync(name, value)

    def _capture(self, out: _Channel[_Work], start_gate: threading.Event | None) -> None:
        config, stop = self.config, self._stop
        try:
            with self.source:
                while start_gate is not None and not start_gate.wait(_POLL_S):
                    if stop.is_set():
                        return
                self.metrics.restart_clock()
                started, captured = time.monotonic(), 0
                while not stop.is_set():
                    if not self.source.is_streaming:
                        self._ended_by = "source ended"
                        return
                    if config.max_frames is not None and captured >= config.max_frames:
                        self._ended_by = "frame limit"
                        return
                    if config.duration_s is not None and time.monotonic() - started >= config.duration_s:
                        self._ended_by = "duration"
                        return
                    if not self.live:
                        out.wait_for_room(stop)
                    frame = self.source.read(config.read_timeout_s)
                    if frame is None:
                        continue
                    if not _is_valid(frame):
                        self._skip(frame)
                        continue
                    captured += 1
                    self.metrics.count("captured")
                    out.put(_Work(frame), stop)
        finally:
            out.close()

    def _skip(self, frame: Frame) -> None:
        self._skipped += 1
        if self._skipped == 1:  # one warning; the count is in the metrics
            shape, dtype = getattr(frame.image, "shape", None), getattr(frame.image, "dtype", None)
            log.warning(
                "skipping frame %d: expected HxWx3 uint8 up to %d px, got %s %s", frame.frame_id, MAX_DIM, dtype, shape
            )
        self.metrics.count("skipped_invalid_frames")

    def _stage(self, name: str, inp: _Channel[_Work], out: _Channel[_Work], work_on: Callable[[_Work], None]) -> None:
        try:
            while True:
                try:
                    work = inp.get(self._stop, _POLL_S)
                except _ClosedError:
                    return
                if work is None:
                    continue
                self._timed(name, work_on, work)
                out.put(work, self._stop)
        finally:
            out.close()

    def _postprocess_worker(self, inp: _Channel[_Work], out: _InOrder[_Work]) -> None:
        try:
            while True:
                try:
                    taken = out.take(inp, self._stop)
                except _ClosedError:
                    return
                if taken is None:
                    continue
                ticket, work = taken
                self._timed("postprocess", self._postprocess, work)
                out.put(ticket, work, self._stop)
        finally:
            out.worker_done()

    def _timed(self, stage: str, work_on: Callable[[_Work], None], work: _Work) -> None:
        start = time.perf_counter()
        work_on(work)
        self.metrics.observe(stage, time.perf_counter() - start)

    def _preprocess(self, work: _Work) -> None:
        work.batch = self.geometry.to_batch(work.frame.image)

    def _infer(self, work: _Work) -> None:
        assert work.batch is not None
        batch, step, threshold = work.batch, self.config.infer_batch, self.postprocessor.threshold
        chunks = [batch[i : i + step] for i in range(0, len(batch), step)]
        if self.device_masks:
            work.mask = np.concatenate([self.runner.infer_mask(chunk, threshold) for chunk in chunks])
        else:  # np.concatenate always makes a new array: a backend may reuse its output buffers
            work.prob = np.concatenate([self.runner.infer(chunk) for chunk in chunks])
        work.batch = None

    def _postprocess(self, work: _Work) -> None:
        frame = work.frame
        if work.mask is not None:
            mask, stats = self.postprocessor.measure(
                self.geometry.mask_from_batch(work.mask, frame.height, frame.width)
            )
        else:
            assert work.prob is not None
            self._check_finite(work.prob, frame)
            mask, stats = self.postprocessor(self.geometry.from_batch(work.prob, frame.height, frame.width))
        work.result = FrameResult(
            frame.frame_id, frame.capture_ns, frame.source_id, mask, stats, self.postprocessor.threshold
        )
        work.prob = work.mask = None

    def _check_finite(self, prob: np.ndarray, frame: Frame) -> None:
        """Counts frames whose probabilities hold NaN or infinity (their masks are empty); warns at a bounded rate."""
        if np.isfinite(prob).all():
            return
        self.metrics.count("nonfinite_outputs")
        now = time.monotonic()
        with self._warn_lock:
            self._nonfinite += 1
            if now < self._next_nonfinite_warning:
                return
            self._next_nonfinite_warning = now + NONFINITE_WARNING_PERIOD_S
            count = self._nonfinite
        log.warning(
            "%sthe model output NaN or infinity for frame %d (%d frame(s) so far): its mask is not a detection; "
            "check the model and its normalization", self._note, frame.frame_id, count,
        )  # fmt: skip

    def _publish(self, inp: _InOrder[_Work]) -> None:
        heartbeat_s = self.config.heartbeat_s
        last_sent = time.monotonic() - heartbeat_s
        while True:
            try:
                work = inp.get(self._stop, max(0.0, last_sent + heartbeat_s - time.monotonic()))
            except _ClosedError:
                return
            if work is None:
                self._send(self.builder.heartbeat(self.source.source_id, self.postprocessor.threshold))
                last_sent = time.monotonic()
                continue
            assert work.result is not None
            start = time.perf_counter()
            message = self.builder.frame(work.result)
            self._send(message, work.frame)
            if message.pose is not None:
                self.metrics.count(_pose_counter(message.pose))
            last_sent = time.monotonic()
            self.metrics.observe("publish", time.perf_counter() - start)
            self.metrics.observe(PipelineMetrics.END_TO_END, (time.time_ns() - work.frame.capture_ns) / 1e9)
            self.metrics.count("published")

    def _send(self, message: MaskMessage, frame: Frame | None = None) -> None:
        for sink, frame_sink in zip(self.sinks, self._frame_sinks, strict=True):
            if frame_sink is not None and frame is not None:
                frame_sink.send_frame(frame, message)
            else:
                sink.send(message)
