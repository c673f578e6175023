"""End-to-end speed: the real streaming pipeline, and a naive single-thread loop, from frames to a subscriber.

Frames. A pool of frames is read once from the source (synthetic cracks at the case's input size by
default, or a file, resized by the pipeline's geometry if its size differs) and replayed from memory:
rendering or decoding frames must not take CPU from what is measured, just as a camera's frames cost
the host nothing to produce. Each capture copies a frame into a fresh buffer, which is what the
``capture`` stage times.

Runs. Each run binds its own ZeroMQ publisher on 127.0.0.1 (a free port, the product's send
high-water mark) with a real subscriber in a second process (:mod:`crackseg.edge.bench.listener`),
and starts capturing only once that subscriber hears the publisher:

* ``pipeline``: :class:`~crackseg.edge.runtime.pipeline.Pipeline`, exactly as ``crackseg run`` wires it, from an
  unpaced playback source (lossless: the pipeline runs at the pace of its slowest stage);
* ``inspection`` (``--inspection``): the same with the outputs of ``crackseg run --record FILE --hfov 70
  --overlay FILE --mavlink URL`` on: the recording (masks, camera thumbnails of frames with cracks, a few a
  second) and an overlay video written to a temporary folder, and every frame tagged with a pose from a loopback
  autopilot (:mod:`crackseg.edge.bench.inspection`); the crack inventory is not built live (``crackseg
  report`` builds it from the recording), so it costs the run nothing;
* ``load``: the same from a live source clocked at a fixed rate (80 % of the raw throughput by default):
  frame *k* is captured at *k / rate* whether or not the pipeline is ready, and a frame the pipeline
  reads late is replaced by the newest one (counted as dropped), as with a camera;
* ``naive``: one thread doing read -> preprocess -> infer -> threshold + statistics -> encode -> publish
  per frame, with the same runner, geometry, postprocessor and publisher, from the unpaced source.

Stage times: ``capture`` (the frame copy), ``preprocess``, ``infer``, ``postprocess`` (threshold and
statistics), ``encode`` (the message to bytes, mask compression included) and ``publish`` (handing the
bytes to ZeroMQ); ``capture_to_publish`` runs from the capture stamp to that hand-off.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from crackseg.edge.artifact.size import Size
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends.base import Runner
from crackseg.edge.bench.config import BenchError
from crackseg.edge.bench.inspection import InspectionOutputs
from crackseg.edge.bench.listener import Heard, SubscriberProcess
from crackseg.edge.bench.results import STAGES, EndToEndResult, LatencyStats, SubscriberResult, stage_capacity
from crackseg.edge.runtime.geometry import Geometry, make_geometry
from crackseg.edge.runtime.message import MessageBuilder
from crackseg.edge.runtime.metrics import PipelineMetrics
from crackseg.edge.runtime.pipeline import STAGES as PIPELINE_STAGES
from crackseg.edge.runtime.pipeline import Pipeline, PipelineConfig, Sink
from crackseg.edge.runtime.pose import Pose
from crackseg.edge.runtime.postprocess import FrameResult, Postprocessor
from crackseg.edge.runtime.sinks.publish_zmq import ENCODINGS, ZmqPublisher
from crackseg.edge.runtime.sources import open_source
from crackseg.edge.runtime.sources.base import BaseSource, PlaybackItem, PlaybackSource, SourceError
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.sources.memory import read_frames
from crackseg.edge.runtime.sources.uri import Uri, parse_uri
from crackseg.edge.runtime.stats import StatsMode
from crackseg.edge.runtime.wire import MaskEncoding, MaskMessage

__all__ = [
    "ClockedSource",
    "FramePool",
    "ReplaySource",
    "SampleLog",
    "Wiring",
    "run_inspection",
    "run_naive",
    "run_pipeline",
]

_END_TO_END = PipelineMetrics.END_TO_END
_LOAD_TIMEOUT_S = 60.0
_LOCAL_ENDPOINT = "tcp://127.0.0.1:*"
"""Loopback, any free port (ZeroMQ picks it; the publisher reports it)."""


class SampleLog:
    """Every duration of one run, in seconds, by stage name.

    Stages on several threads add to it at once: ``list.append`` is atomic in CPython, and every list
    exists before the run starts.
    """

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = {name: [] for name in (*STAGES, _END_TO_END)}

    def add(self, name: str, seconds: float) -> None:
        self.samples[name].append(seconds)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - start)

    def stats(self) -> dict[str, LatencyStats | None]:
        return {name: LatencyStats.of_seconds(self.samples[name]) for name in STAGES}


class FramePool:
    """Frames read once from a source and handed out round-robin, each as a fresh copy.

    Args:
        uri: where the frames came from (becomes the replaying sources' id).
        frames: ``HxWx3`` uint8 RGB frames.
    """

    def __init__(self, uri: Uri, frames: Sequence[np.ndarray]) -> None:
        if not frames:
            raise BenchError(f"no frames from {uri.display}")
        self.uri = uri
        self.frames = list(frames)
        self._next = 0

    @classmethod
    def load(cls, source: str, size: Size, count: int) -> FramePool:
        """Up to ``count`` frames of ``source``; synthetic frames are rendered at ``size``."""
        uri = parse_uri(source)
        height, width = size
        options = {"height": height, "width": width, "fps": 0.0} if uri.kind == "synthetic" else {}
        try:
            frames = read_frames(open_source(uri, **options), count, _LOAD_TIMEOUT_S)
        except SourceError as exc:
            raise BenchError(str(exc)) from None
        return cls(uri, frames)

    def take(self, log: SampleLog) -> np.ndarray:
        """The next frame, copied (timed as ``capture``)."""
        with log.timed("capture"):
            image = self.frames[self._next % len(self.frames)].copy()
        self._next += 1
        return image

    def geometry(self, spec: ModelSpec, size: Size) -> Geometry:
        """Native processing when every frame already has the input size, else resizing to it."""
        native = all(frame.shape[:2] == size for frame in self.frames)
        return make_geometry(spec, None if native else size)


class ReplaySource(PlaybackSource):
    """The pool as an unpaced playback source: the next frame whenever the reader asks (nothing dropped)."""

    def __init__(self, pool: FramePool, log: SampleLog) -> None:
        super().__init__(pool.uri, fps=0.0)
        self.pool, self.log = pool, log

    def _open_impl(self) -> None:
        pass

    def _next_item(self) -> PlaybackItem:
        return PlaybackItem(self.pool.take(self.log))

    def _close_impl(self) -> None:
        pass


class ClockedSource(BaseSource):
    """The pool as a live camera: frame ``k`` is captured at ``k / fps`` whether or not anyone reads it.

    A reader that comes late gets the newest frame, stamped with the time it was captured; the frames it
    missed count as ``dropped_stale``, as a camera driver that keeps only the newest buffer.
    """

    def __init__(self, pool: FramePool, log: SampleLog, fps: float) -> None:
        super().__init__(pool.uri)
        if fps <= 0:
            raise BenchError(f"a clocked source needs a positive rate, got {fps}")
        self.pool, self.log, self.fps = pool, log, fps
        self._origin: tuple[float, int] | None = None  # (monotonic s, wall ns) of frame 0
        self._index = 0

    def _open_impl(self) -> None:
        self._origin, self._index = None, 0

    def _read_impl(self, timeout_s: float) -> Frame | None:
        now = time.monotonic()
        if self._origin is None:
            self._origin = (now, time.time_ns())
        start, start_ns = self._origin
        due = start + self._index / self.fps
        if due > now:
            if due - now > timeout_s:
                time.sleep(timeout_s)
                return None
            time.sleep(due - now)
        else:
            newest = int((now - start) * self.fps)
            self._stats.dropped_stale += newest - self._index
            self._index = newest
        capture_ns = start_ns + round(self._index / self.fps * 1e9)
        self._index += 1
        return self._make_frame(self.pool.take(self.log), capture_ns)

    def _close_impl(self) -> None:
        pass


@dataclass(frozen=True, eq=False)
class _EncodedMessage(MaskMessage):
    """A message already turned into bytes (and timed) by :class:`_TimedBuilder`: the publisher sends them."""

    encoded: bytes = b""

    def to_bytes(self) -> bytes:
        return self.encoded


class _TimedBuilder(MessageBuilder):
    """The product's message builder, which also encodes each frame message, timing it as ``encode``."""

    def __init__(
        self, model_hash: bytes, encoding: MaskEncoding, log: SampleLog, pose_at: Callable[[int], Pose] | None
    ) -> None:
        super().__init__(model_hash, encoding, pose_at)
        self.log = log

    def frame(self, result: FrameResult) -> MaskMessage:
        message = super().frame(result)
        with self.log.timed("encode"):
            data = message.to_bytes()
        return _EncodedMessage(**{f.name: getattr(message, f.name) for f in fields(MaskMessage)}, encoded=data)


class _TimedSink:
    """Times the hand-off of each mask message to the publisher as ``publish`` (heartbeats are not timed)."""

    def __init__(self, publisher: ZmqPublisher, log: SampleLog) -> None:
        self.publisher, self.log = publisher, log

    def send(self, message: MaskMessage) -> None:
        start = time.perf_counter()
        self.publisher.send(message)
        if message.mask is not None:
            self.log.add("publish", time.perf_counter() - start)

    def counters(self) -> dict[str, int]:
        return self.publisher.counters()


class _RecordingMetrics(PipelineMetrics):
    """The pipeline's metrics, also keeping every stage sample for exact percentiles.

    The pipeline's own ``publish`` stage (build + encode + send) is left out: encode and the hand-off
    to ZeroMQ are timed apart by :class:`_TimedBuilder` and :class:`_TimedSink`.
    """

    def __init__(self, log: SampleLog) -> None:
        super().__init__(PIPELINE_STAGES)
        self.log = log

    def observe(self, stage: str, seconds: float) -> None:
        super().observe(stage, seconds)
        if stage != "publish":
            self.log.add(stage, seconds)


@dataclass(frozen=True)
class Wiring:
    """What every end-to-end run shares: the model, the frames and how masks are made and sent."""

    runner: Runner
    pool: FramePool
    size: Size
    model_hash: bytes
    encoding: str
    postprocess_workers: int | None = None
    stats_mode: StatsMode = "exact"
    model_name: str = ""
    """The model's file or variant name, as a recording's run info names it (empty: the runner's name)."""

    @property
    def geometry(self) -> Geometry:
        return self.pool.geometry(self.runner.spec, self.size)

    @property
    def postprocessor(self) -> Postprocessor:
        spec = self.runner.spec
        return Postprocessor(spec.threshold, stats_mode=self.stats_mode, min_component_px=spec.min_component_px)


@contextmanager
def _publishing(
    wiring: Wiring, log: SampleLog, pose_at: Callable[[int], Pose] | None = None
) -> Iterator[tuple[_TimedBuilder, _TimedSink, Callable[[], Heard]]]:
    """A bound publisher and a connected subscriber process; yields the builder, the sink and ``finish``."""
    builder = _TimedBuilder(wiring.model_hash, ENCODINGS[wiring.encoding], log, pose_at)
    with ZmqPublisher(_LOCAL_ENDPOINT) as publisher, SubscriberProcess(publisher.endpoint, publisher.topic) as heard:
        heard.wait_connected(
            lambda: publisher.send(builder.heartbeat(wiring.pool.uri.display, wiring.runner.spec.threshold))
        )
        yield builder, _TimedSink(publisher, log), heard.finish


def _result(
    mode: str,
    source_fps: float | None,
    elapsed_s: float,
    offered: int,
    published: int,
    log: SampleLog,
    heard: Heard,
    workers: int = 1,
) -> EndToEndResult:
    dropped = max(0, offered - published)
    stages = log.stats()
    capacity, bottleneck = stage_capacity(stages, workers)
    subscriber = SubscriberResult(
        heard.received, max(0, published - heard.received), LatencyStats.of_seconds(heard.latencies_s)
    )
    return EndToEndResult(
        mode=mode,
        source_fps=source_fps,
        elapsed_s=elapsed_s,
        offered=offered,
        published=published,
        dropped=dropped,
        drop_rate=dropped / offered if offered else 0.0,
        throughput_fps=published / elapsed_s if elapsed_s > 0 else 0.0,
        capture_to_publish=LatencyStats.of_seconds(log.samples[_END_TO_END]),
        stages=stages,
        subscriber=subscriber,
        postprocess_workers=workers,
        capacity_fps=capacity,
        bottleneck=bottleneck,
    )


def run_pipeline(
    wiring: Wiring,
    duration_s: float,
    source_fps: float | None = None,
    inspection: InspectionOutputs | None = None,
) -> tuple[EndToEndResult, list[float]]:
    """The streaming pipeline for ``duration_s`` of capture, from an unpaced source or a clocked one.

    Args:
        wiring: model, frames and publishing.
        duration_s: seconds of capture.
        source_fps: the clocked source's rate (a ``load`` run); ``None``: the unpaced source.
        inspection: open inspection outputs: their sinks (recorder, overlay) follow the publisher, their pose
            lookup tags every message (an ``inspection`` run, without its :class:`InspectionResult` yet).

    Returns:
        the result, and every frame's capture-to-publish seconds (for plots).
    """
    log = SampleLog()
    source = ReplaySource(wiring.pool, log) if source_fps is None else ClockedSource(wiring.pool, log, source_fps)
    config = PipelineConfig(duration_s=duration_s, log_every_s=0.0, postprocess_workers=wiring.postprocess_workers)
    pose_at = None if inspection is None else inspection.pose_at
    with _publishing(wiring, log, pose_at) as (builder, sink, finish):
        sinks: list[Sink] = [sink] if inspection is None else [sink, *inspection.sinks]
        pipeline = Pipeline(
            source,
            wiring.runner,
            wiring.geometry,
            wiring.postprocessor,
            builder,
            sinks,
            config,
        )
        pipeline.metrics = _RecordingMetrics(log)
        report = pipeline.run()
        heard = finish()
    stats = source.stats
    mode = "inspection" if inspection is not None else "pipeline" if source_fps is None else "load"
    offered = stats.delivered + stats.dropped_stale
    published = report.metrics.published
    result = _result(mode, source_fps, report.metrics.elapsed_s, offered, published, log, heard, config.workers)
    return result, log.samples[_END_TO_END]


def run_naive(wiring: Wiring, duration_s: float) -> tuple[EndToEndResult, list[float]]:
    """The naive baseline: one thread, one frame at a time, for ``duration_s``, from the unpaced source."""
    log = SampleLog()
    source = ReplaySource(wiring.pool, log)
    runner, geometry, postprocessor = wiring.runner, wiring.geometry, wiring.postprocessor
    with _publishing(wiring, log) as (builder, sink, finish), source:
        published, start = 0, time.monotonic()
        while time.monotonic() - start < duration_s:
            frame = source.read(1.0)
            if frame is None:
                continue
            with log.timed("preprocess"):
                batch = geometry.to_batch(frame.image)
            with log.timed("infer"):
                prob = runner.infer(batch)
            with log.timed("postprocess"):
                mask, stats = postprocessor(geometry.from_batch(prob, frame.height, frame.width))
            result = FrameResult(
                frame.frame_id, frame.capture_ns, frame.source_id, mask, stats, postprocessor.threshold
            )
            sink.send(builder.frame(result))
            log.add(_END_TO_END, (time.time_ns() - frame.capture_ns) / 1e9)
            published += 1
        elapsed = time.monotonic() - start
        heard = finish()
    offered = source.stats.delivered
    return _result("naive", None, elapsed, offered, published, log, heard), log.samples[_END_TO_END]


def run_inspection(wiring: Wiring, duration_s: float) -> tuple[EndToEndResult, list[float]]:
    """The unpaced pipeline with the inspection outputs on (recording, overlay video, pose tagging) for
    ``duration_s``; the recording and the video go to a temporary folder, counted after the run, then deleted."""
    with tempfile.TemporaryDirectory(prefix="crackseg-inspection-") as folder:
        spec = wiring.runner.spec
        model = wiring.model_name or wiring.runner.name
        outputs = InspectionOutputs(Path(folder), model, spec, wiring.stats_mode, wiring.pool.uri.display)
        with outputs:
            result, samples = run_pipeline(wiring, duration_s, inspection=outputs)
        return replace(result, inspection=outputs.result()), samples
