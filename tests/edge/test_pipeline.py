"""The streaming pipeline: ordering, limits, drops, skips, shutdown, errors, tiles, and real end-to-end runs."""

from __future__ import annotations

import select
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends import open_runner
from crackseg.edge.backends.base import Runner
from crackseg.edge.runtime.geometry import Geometry, NativeGeometry, TileGeometry
from crackseg.edge.runtime.message import MessageBuilder
from crackseg.edge.runtime.pipeline import Pipeline, PipelineConfig, PipelineReport, default_postprocess_workers
from crackseg.edge.runtime.postprocess import Postprocessor
from crackseg.edge.runtime.sinks.publish_zmq import ZmqPublisher
from crackseg.edge.runtime.sinks.record import Recorder
from crackseg.edge.runtime.sources import open_source
from crackseg.edge.runtime.sources.base import BaseSource, PlaybackItem, PlaybackSource, SourceError
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.sources.uri import Uri
from crackseg.edge.runtime.stats import CrackStats, StatsMode, crack_stats
from crackseg.edge.runtime.wire import MaskEncoding, MaskMessage

cv2 = pytest.importorskip("cv2")

SPEC = ModelSpec(arch="fake", size_multiple=16, threshold=0.5)
URI = Uri("synthetic", "", kind="synthetic", url="fake://")


def _image(index: int, height: int = 40, width: int = 48) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _expected_mask(image: np.ndarray) -> np.ndarray:
    """What the pixelwise fake network and threshold 0.5 make of an image: red >= 128."""
    return image[..., 0] >= 128


class PixelRunner(Runner):
    """A fake network whose crack probability is the red channel: ``(x + 1) / 2`` of the normalized input."""

    name = "pixel"

    def __init__(self, delay_s: float = 0.0, fail_at: int | None = None, reuse_buffer: bool = False) -> None:
        super().__init__()
        self.delay_s, self.fail_at, self.reuse_buffer = delay_s, fail_at, reuse_buffer
        self.batch_sizes: list[int] = []
        self._buffer: np.ndarray | None = None

    @property
    def spec(self) -> ModelSpec:
        return SPEC

    def activate_impl(self) -> None:
        pass

    def close_impl(self) -> None:
        pass

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        self.batch_sizes.append(len(image))
        if self.fail_at is not None and len(self.batch_sizes) == self.fail_at:
            raise RuntimeError("inference failed")
        time.sleep(self.delay_s)
        prob = (image[:, :1] + 1.0) / 2.0
        if not self.reuse_buffer:
            return prob
        if self._buffer is None or self._buffer.shape != prob.shape:
            self._buffer = np.empty_like(prob)
        self._buffer[...] = prob  # like a GPU backend's pinned output, overwritten by the next call
        return self._buffer


class ListPlayback(PlaybackSource):
    """Playback of given images (any array: tests put invalid ones in)."""

    def __init__(self, images: list[np.ndarray], fps: float = 0.0) -> None:
        super().__init__(URI, fps=fps, source_id="fake://list")
        self.images = images
        self.closed = 0
        self._index = 0

    def _open_impl(self) -> None:
        self._index = 0

    def _next_item(self) -> PlaybackItem | None:
        if self._index >= len(self.images):
            return None
        self._index += 1
        return PlaybackItem(self.images[self._index - 1])

    def _close_impl(self) -> None:
        self.closed += 1


class LiveFake(BaseSource):
    """A camera that always has a new frame (every ``period_s``); endless."""

    def __init__(
        self, period_s: float = 0.0, fail_open: bool = False, stamp: Callable[[int], int] | None = None
    ) -> None:
        super().__init__(URI, source_id="fake://live")
        self.period_s, self.fail_open = period_s, fail_open
        self.stamp = stamp or (lambda _: time.time_ns())
        self.closed = 0

    def _open_impl(self) -> None:
        if self.fail_open:
            raise SourceError("camera unplugged")

    def _read_impl(self, timeout_s: float) -> Frame | None:
        time.sleep(self.period_s)
        return self._make_frame(_image(self._last_frame_id + 1), self.stamp(self._last_frame_id + 1))

    def _close_impl(self) -> None:
        self.closed += 1


class CollectSink:
    """Keeps every message it is sent (frames and heartbeats)."""

    def __init__(self) -> None:
        self.messages: list[MaskMessage] = []

    def send(self, message: MaskMessage) -> None:
        self.messages.append(message)

    def counters(self) -> dict[str, int]:
        return {"collected": len(self.messages)}

    @property
    def frames(self) -> list[MaskMessage]:
        return [m for m in self.messages if m.mask is not None]


def _run(
    source: BaseSource,
    runner: Runner | None = None,
    geometry: Geometry | None = None,
    stop: threading.Event | None = None,
    start_gate: threading.Event | None = None,
    postprocessor: Postprocessor | None = None,
    **config: object,
) -> tuple[PipelineReport, CollectSink]:
    sink = CollectSink()
    runner = runner or PixelRunner()
    pipeline = Pipeline(
        source,
        runner.activate(),
        geometry or NativeGeometry(SPEC),
        postprocessor or Postprocessor(SPEC.threshold),
        MessageBuilder(bytes(16), MaskEncoding.RAW),
        [sink],
        PipelineConfig(log_every_s=0, **config),  # type: ignore[arg-type]
    )
    return pipeline.run(stop, start_gate), sink


# --- behaviour with fakes -------------------------------------------------------------------------


def test_playback_publishes_every_frame_in_order() -> None:
    images = [_image(i, *((40, 48) if i % 2 else (64, 64))) for i in range(12)]
    source = ListPlayback(images)
    report, sink = _run(source)
    assert report.ended_by == "source ended"
    assert [m.frame_id for m in sink.frames] == list(range(12))
    for message, image in zip(sink.frames, images, strict=True):
        assert np.array_equal(message.mask, _expected_mask(image))
        assert message.stats is not None and message.stats.crack_pixels == int(_expected_mask(image).sum())
        assert message.source_id == "fake://list" and message.threshold == pytest.approx(0.5)
    seqs = [m.seq for m in sink.messages]
    assert seqs == list(range(len(seqs)))  # frames and heartbeats share one counter
    counters = report.metrics.counters
    assert counters["captured"] == counters["published"] == 12
    assert counters["collected"] == len(sink.messages)  # a sink's own counters join the metrics
    assert source.closed == 1
    assert report.metrics.latency["infer"].count == 12
    assert report.metrics.latency["capture_to_publish"].count == 12


class JitteryPostprocessor(Postprocessor):
    """The real postprocessor, taking a random 0-20 ms longer per frame, so parallel workers finish out of order."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self.active = self.most_active = 0

    def __call__(self, prob: np.ndarray) -> tuple[np.ndarray, CrackStats]:
        with self._lock:
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        try:
            time.sleep(float(np.random.default_rng().uniform(0.0, 0.02)))
            return super().__call__(prob)
        finally:
            with self._lock:
                self.active -= 1


@pytest.mark.parametrize("stats_mode", ["exact", "fast"])
def test_parallel_postprocessing_publishes_in_order_what_one_worker_publishes(stats_mode: StatsMode) -> None:
    images = [_image(i) for i in range(30)]
    postprocessors = {workers: JitteryPostprocessor(0.5, stats_mode=stats_mode) for workers in (1, 4)}
    runs = {
        workers: _run(ListPlayback(images), postprocessor=postprocessors[workers], postprocess_workers=workers)
        for workers in (1, 4)
    }
    (_, one), (four_report, four) = runs[1], runs[4]
    assert [m.frame_id for m in four.frames] == [m.frame_id for m in one.frames] == list(range(30))
    assert [m.seq for m in four.messages] == list(range(len(four.messages)))
    for serial, parallel in zip(one.frames, four.frames, strict=True):
        assert np.array_equal(parallel.mask, serial.mask) and parallel.stats == serial.stats
        assert parallel.stats == crack_stats(parallel.mask, mode=stats_mode)
    assert four_report.metrics.latency["capture_to_publish"].count == 30
    # the workers did overlap: seen directly, not inferred from a run time that depends on the machine's load
    assert postprocessors[1].most_active == 1 and postprocessors[4].most_active > 1


def test_postprocess_workers_default_to_the_usable_cores() -> None:
    assert PipelineConfig().workers == default_postprocess_workers() >= 1
    assert PipelineConfig(postprocess_workers=3).workers == 3
    with pytest.raises(ValueError, match="at least one postprocessing worker"):
        PipelineConfig(postprocess_workers=0)


class DeviceMaskRunner(PixelRunner):
    """The pixel network on a pretend GPU that thresholds where its output is: counts which path was used."""

    def __init__(self) -> None:
        super().__init__()
        self.mask_calls = self.prob_calls = 0

    @property
    def thresholds_on_device(self) -> bool:
        return True

    def infer_impl(self, image: np.ndarray) -> np.ndarray:
        self.prob_calls += 1
        return super().infer_impl(image)

    def infer_mask_impl(self, image: np.ndarray, threshold: float) -> np.ndarray:
        self.mask_calls += 1
        return super().infer_impl(image) > threshold


def test_a_runner_that_thresholds_on_its_device_sends_masks_not_probabilities() -> None:
    images = [_image(i, 40, 48) for i in range(5)]  # padded to 48x48: the mask is cropped back
    runner = DeviceMaskRunner()
    _, on_device = _run(ListPlayback(images), runner)
    assert (runner.mask_calls, runner.prob_calls) == (5, 0)
    _, on_host = _run(ListPlayback(images))
    for device, host in zip(on_device.frames, on_host.frames, strict=True):
        assert device.mask is not None and device.mask.shape == (40, 48)
        assert np.array_equal(device.mask, host.mask) and device.stats == host.stats


def test_hysteresis_and_resampling_geometries_threshold_on_the_host() -> None:
    images = [_image(i, 40, 48) for i in range(3)]
    runner = DeviceMaskRunner()
    _run(ListPlayback(images), runner, postprocessor=Postprocessor(0.5, hysteresis_low=0.4))
    _run(ListPlayback(images), runner, TileGeometry(SPEC, (32, 32), overlap=8))
    assert runner.mask_calls == 0 and runner.prob_calls > 0


def test_capture_timestamps_come_from_the_source() -> None:
    source = LiveFake(period_s=0.01, stamp=lambda frame_id: 1_000_000_000 * (frame_id + 1))
    _, sink = _run(source, max_frames=4)
    assert [m.capture_ns for m in sink.frames] == [1_000_000_000 * (m.frame_id + 1) for m in sink.frames]
    assert all(m.publish_ns > 1_700_000_000 * 10**9 for m in sink.frames)  # publish time is now, capture is not


def test_frame_and_duration_limits_end_the_run() -> None:
    report, _ = _run(LiveFake(period_s=0.005), max_frames=5)
    assert report.ended_by == "frame limit" and report.metrics.counters["captured"] == 5
    start = time.monotonic()
    report, _ = _run(LiveFake(period_s=0.005), duration_s=0.3)
    assert report.ended_by == "duration" and 0.25 < time.monotonic() - start < 30  # upper bound: it ends at all


def test_live_sources_drop_the_oldest_when_inference_is_slow() -> None:
    report, sink = _run(LiveFake(period_s=0.001), PixelRunner(delay_s=0.03), max_frames=60)
    counters = report.metrics.counters
    dropped = sum(v for k, v in counters.items() if k.startswith("dropped_before_"))
    assert counters["captured"] == 60
    assert dropped > 0 and counters["published"] + dropped == 60  # how many: up to the scheduler, not asserted
    ids = [m.frame_id for m in sink.frames]
    assert ids == sorted(ids) and ids[-1] >= 55  # the newest frames made it, not a backlog


def test_invalid_frames_are_skipped_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    images = [
        _image(0),
        np.zeros((40, 48), np.uint8),  # grey
        np.zeros((40, 48, 3), np.float32),  # not uint8
        np.zeros((0, 0, 3), np.uint8),  # empty
        _image(4),
    ]
    report, sink = _run(ListPlayback(images))
    assert [m.frame_id for m in sink.frames] == [0, 4]
    assert report.metrics.counters["skipped_invalid_frames"] == 3
    assert sum("skipping frame 1" in r.message for r in caplog.records) == 1  # warned once, then counted


def test_stop_shuts_down_promptly_and_releases_the_source() -> None:
    source, stop = LiveFake(period_s=0.005), threading.Event()
    threading.Timer(0.3, stop.set).start()
    start = time.monotonic()
    report, sink = _run(source, stop=stop)
    assert report.ended_by == "stopped" and time.monotonic() - start < 20  # the stop is 0.3 s in; a hang never ends
    assert source.closed == 1 and not source.is_streaming and sink.frames


def _unaccounted(counters: Mapping[str, int]) -> int:
    """Captured frames neither published nor counted as dropped or discarded (must be 0)."""
    lost = sum(v for k, v in counters.items() if k.startswith("dropped_before_") or k == "discarded_at_stop")
    return int(counters["captured"] - counters["published"] - lost)


@pytest.mark.parametrize("source", [LiveFake(period_s=0.001), ListPlayback([_image(i) for i in range(100)])])
def test_frames_in_flight_at_a_stop_are_counted_as_discarded(source: BaseSource) -> None:
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    report, _ = _run(source, PixelRunner(delay_s=0.1), stop=stop)
    counters = report.metrics.counters
    assert report.ended_by == "stopped"
    assert counters["discarded_at_stop"] >= 1 and _unaccounted(counters) == 0


def test_the_summary_counts_what_the_recording_committed(tmp_path: Path) -> None:
    images = [_image(i, 96, 128) for i in range(12)]
    with Recorder(tmp_path / "rec.db") as recorder:
        pipeline = Pipeline(
            ListPlayback(images),
            PixelRunner().activate(),
            NativeGeometry(SPEC),
            Postprocessor(SPEC.threshold),
            MessageBuilder(bytes(16), MaskEncoding.RAW),
            [recorder],
            PipelineConfig(log_every_s=0),
        )
        report = pipeline.run()
        assert report.metrics.counters["recorded"] == report.metrics.counters["published"] == 12


def test_a_stage_error_stops_everything_and_is_raised() -> None:
    source = LiveFake(period_s=0.005)
    with pytest.raises(RuntimeError, match="inference failed"):
        _run(source, PixelRunner(fail_at=3))
    assert source.closed == 1


def test_a_source_that_cannot_open_is_raised() -> None:
    with pytest.raises(SourceError, match="camera unplugged"):
        _run(LiveFake(fail_open=True))


class SlowNative(NativeGeometry):
    def from_batch(self, prob: np.ndarray, height: int, width: int) -> np.ndarray:
        time.sleep(0.02)  # postprocessing lags inference, so inference runs ahead
        return super().from_batch(prob, height, width)


def test_outputs_are_copied_when_a_backend_reuses_its_buffer() -> None:
    images = [_image(i) for i in range(8)]
    _, sink = _run(ListPlayback(images), PixelRunner(reuse_buffer=True), SlowNative(SPEC))
    assert len(sink.frames) == 8
    for message, image in zip(sink.frames, images, strict=True):
        assert np.array_equal(message.mask, _expected_mask(image))


def test_heartbeats_flow_until_frames_do() -> None:
    gate = threading.Event()
    threading.Timer(0.35, gate.set).start()
    _, sink = _run(ListPlayback([_image(0)]), start_gate=gate, heartbeat_s=0.1)
    kinds = ["frame" if m.mask is not None else "heartbeat" for m in sink.messages]
    assert kinds[-1] == "frame" and kinds[:-1] == ["heartbeat"] * (len(kinds) - 1)
    assert kinds.count("heartbeat") >= 3  # at 0, 0.1, 0.2, 0.3 s (more if the timer fires late)
    assert all(m.frame_id == 0 and m.capture_ns == 0 for m in sink.messages[:-1])
    assert all(m.threshold == pytest.approx(SPEC.threshold) for m in sink.messages)  # not 0 before the first frame


def test_tiled_frames_are_inferred_in_batches_and_stitched() -> None:
    image = _image(1, 70, 100)
    runner = PixelRunner()
    geometry = TileGeometry(SPEC, (32, 48), overlap=8)
    _, sink = _run(ListPlayback([image]), runner, geometry, infer_batch=2)
    (message,) = sink.frames
    assert np.array_equal(message.mask, _expected_mask(image))
    tiles = len(geometry.positions(70, 100))
    assert tiles == 9 and runner.batch_sizes == [2, 2, 2, 2, 1]


# --- real model, real sources, real subscriber -------------------------------------------------


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """6 frames of 72x56 MJPG: sizes that need padding to the model's multiple of 32."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (72, 56))
    assert writer.isOpened()
    for i in range(6):
        writer.write(cv2.cvtColor(_image(i, 56, 72), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def _reference_masks(model: Path, frames: list[np.ndarray], threshold: float | None = None) -> list[np.ndarray]:
    from crackseg.edge.evaluation.evaluate import predict_probability

    with open_runner(model) as runner:
        t = runner.spec.threshold if threshold is None else threshold
        return [predict_probability(runner, image) > t for image in frames]


def test_video_file_source_matches_the_evaluator(video: Path, scnet_t_onnx: Path) -> None:
    with open_source(str(video), realtime=False) as source:
        decoded = [frame.image for frame in source]
    with open_runner(scnet_t_onnx) as runner:
        pipeline = Pipeline(
            open_source(str(video), realtime=False),
            runner,
            NativeGeometry(runner.spec),
            Postprocessor(0.6),
            MessageBuilder(bytes(16)),
            [sink := CollectSink()],
            PipelineConfig(log_every_s=0),
        )
        report = pipeline.run()
    assert report.ended_by == "source ended" and [m.frame_id for m in sink.frames] == list(range(6))
    for message, expected in zip(sink.frames, _reference_masks(scnet_t_onnx, decoded, 0.6), strict=True):
        assert message.mask is not None and message.mask.shape == (56, 72)
        assert np.array_equal(message.mask, expected)


SAVE_MASKS = textwrap.dedent(
    """
    import sys, numpy as np
    from crackseg.edge.runtime.sinks.subscribe import Subscriber
    from crackseg.edge.runtime.wire import MaskEncoding
    endpoint, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    masks = {}
    with Subscriber(endpoint) as sub:
        while len(masks) < count:
            message = sub.receive(60)
            if message is None:
                sys.exit("timed out")
            if message.mask is None:
                print("heartbeat", flush=True)
            else:
                assert message.encoding == MaskEncoding.RAW
                masks[str(message.frame_id)] = message.mask
    np.savez(out, **masks)
    """
)


def test_deepcrack_masks_published_over_zeromq_equal_the_evaluators(
    datasets_root: Path, scnet_t_onnx: Path, endpoint: str, tmp_path: Path
) -> None:
    folder = datasets_root / "DeepCrack" / "images" / "test"
    if not folder.is_dir():
        pytest.skip(f"DeepCrack test images not found in {folder}")
    pattern = str(folder / "11125-*.jpg")
    with open_source(pattern) as source:
        images = [frame.image for frame in source]
    assert len(images) == 3
    out = tmp_path / "received.npz"
    child = subprocess.Popen(
        [sys.executable, "-c", SAVE_MASKS, endpoint, str(len(images)), str(out)], stdout=subprocess.PIPE, text=True
    )
    gate = threading.Event()

    def open_gate_when_heard() -> None:
        assert child.stdout is not None
        if select.select([child.stdout], [], [], 60)[0] and "heartbeat" in child.stdout.readline():
            gate.set()

    threading.Thread(target=open_gate_when_heard, daemon=True).start()
    try:
        with open_runner(scnet_t_onnx) as runner, ZmqPublisher(endpoint, sndhwm=1000) as publisher:
            pipeline = Pipeline(
                open_source(pattern),
                runner,
                NativeGeometry(runner.spec),
                Postprocessor(runner.spec.threshold),
                MessageBuilder(bytes(16), MaskEncoding.RAW),
                [publisher],
                PipelineConfig(log_every_s=0, heartbeat_s=0.05),
            )
            report = pipeline.run(start_gate=gate)
            assert child.wait(60) == 0
    finally:
        child.kill()
    assert report.metrics.counters["published"] == 3
    received = np.load(out)
    expected = _reference_masks(scnet_t_onnx, images)
    for frame_id, mask in enumerate(expected):
        assert np.array_equal(received[str(frame_id)], mask)  # the runtime changes nothing about accuracy
    assert any(0 < m.mean() < 1 for m in expected)  # a real comparison, not all-empty masks
