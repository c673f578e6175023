"""What ``crackseg bench`` measured, as typed records: the JSON schema documented in ``edge/BENCH.md``.

Every latency series is summarized one way, :meth:`LatencyStats.of_seconds`, over all of its samples
(no reservoir sampling), with :func:`crackseg.edge.runtime.metrics.percentiles` (linear interpolation between
closest ranks, numpy's default), in milliseconds. A series without samples is ``None`` (JSON ``null``),
never NaN, so the JSON stays valid for every parser.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from crackseg.edge.runtime.metrics import percentiles

__all__ = [
    "PIPELINE_STAGES",
    "SCHEMA_VERSION",
    "STAGES",
    "TARGETS",
    "BenchReport",
    "CaseInfo",
    "CaseResult",
    "EndToEndResult",
    "InspectionResult",
    "LatencyStats",
    "Ratio",
    "RawResult",
    "SubscriberResult",
    "ratios",
    "stage_capacity",
]

SCHEMA_VERSION = 1
"""Bumped when a field is removed or changes meaning; adding fields keeps the version."""

STAGES = ("capture", "preprocess", "infer", "postprocess", "encode", "publish")
"""Per-frame stage times of the end-to-end runs, in processing order."""

PIPELINE_STAGES: dict[str, tuple[str, ...]] = {
    "capture": ("capture",),
    "preprocess": ("preprocess",),
    "infer": ("infer",),
    "postprocess": ("postprocess",),
    "publish": ("encode", "publish"),
}
"""The pipeline's stages (its threads, or pool of threads) -> the timed steps each one does per frame."""

_COMPARE: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt}
TARGETS: dict[str, tuple[str, float]] = {
    "pipeline_over_raw": (">=", 0.95),
    "load_p50_over_raw_p50": ("<=", 1.3),
    "pipeline_over_naive": (">", 1.0),
    "inspection_over_pipeline": (">=", 0.95),
}
"""Benchmark targets (figures to report, not pass/fail tests): the pipeline keeps the backend's throughput,
adds little latency at 80 % load, beats a naive single-thread loop, and keeps 95 % of its throughput with
the inspection outputs (overlay video, pose tagging, the recording with camera thumbnails) on."""


@dataclass(frozen=True)
class LatencyStats:
    """Summary of one latency series, in milliseconds."""

    count: int
    mean_ms: float
    min_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of_seconds(cls, samples: Sequence[float] | np.ndarray) -> LatencyStats | None:
        """Summarize durations given in seconds; ``None`` when there are none."""
        ms = np.asarray(samples, dtype=np.float64) * 1e3
        if ms.size == 0:
            return None
        p50, p90, p95, p99 = percentiles(ms, (50.0, 90.0, 95.0, 99.0))
        return cls(int(ms.size), float(ms.mean()), float(ms.min()), p50, p90, p95, p99, float(ms.max()))


@dataclass(frozen=True)
class RawResult:
    """The backend alone: back-to-back inference calls on one fixed input.

    Attributes:
        batch: images per call.
        warmup_iterations: untimed calls before timing.
        iterations: timed calls.
        elapsed_s: wall time of the timed calls.
        throughput_fps: images per second, ``batch * iterations / elapsed_s``.
        latency: per call (a whole batch), synchronized with the device.
    """

    batch: int
    warmup_iterations: int
    iterations: int
    elapsed_s: float
    throughput_fps: float
    latency: LatencyStats


@dataclass(frozen=True)
class SubscriberResult:
    """What the subscriber process received.

    Attributes:
        received: mask messages decoded.
        lost: published mask messages that never arrived (latest-value publishing drops, by design).
        capture_to_receive: from the capture stamp to decoding in the subscriber.
    """

    received: int
    lost: int
    capture_to_receive: LatencyStats | None


@dataclass(frozen=True)
class InspectionResult:
    """What the inspection outputs of an ``inspection`` run did.

    Attributes:
        overlay_written: overlay frames handed to the video writer.
        overlay_skipped: published frames the overlay's frame rate had no slot for (its pacing, by capture time).
        overlay_dropped: overlay frames dropped because the writer fell behind (the masks were still published).
        overlay_errors: overlay frames the writer could not take.
        video_frames: frames decoded back from the overlay video after the run.
        pose_samples: MAVLink samples received from the loopback autopilot, by message type.
        frames_with_pose: published frames whose message carried a position and an attitude.
        frames_with_stale_pose: of those, frames with a part older than the track's staleness limit.
        recorded: published frames the recording committed (``crackseg run --record``'s ``recorded``).
        recorded_with_cracks: of those, frames with crack pixels: the ones a camera thumbnail may be kept for
            (at most one every 200 ms of capture: ``Recorder.thumbnail_interval_s``).
        thumbnails_written: recorded frames whose JPEG thumbnail was written (rows with a thumbnail, file present).
        thumbnails_skipped: frames due a thumbnail recorded without one, the thumbnail backlog being full.
        record_dropped: frames left out of the recording because its writer fell behind.
        record_lost: frames the recording could not write (or stopped writing).
        record_errors: failed write attempts of the recording.
    """

    overlay_written: int
    overlay_skipped: int
    overlay_dropped: int
    overlay_errors: int
    video_frames: int
    pose_samples: dict[str, int]
    frames_with_pose: int
    frames_with_stale_pose: int
    recorded: int
    recorded_with_cracks: int
    thumbnails_written: int
    thumbnails_skipped: int
    record_dropped: int
    record_lost: int
    record_errors: int


@dataclass(frozen=True)
class EndToEndResult:
    """One end-to-end run: frames from the source to messages received by a subscriber.

    Attributes:
        mode: ``pipeline`` (unpaced), ``inspection`` (the same with the overlay, pose and recording on),
            ``load`` (a live source at a fixed rate) or ``naive`` (one thread).
        source_fps: the capture rate of a ``load`` run; ``None`` when the source is unpaced.
        elapsed_s: from the first capture to the last publish.
        offered: frames the source made available (a live source's missed frames included).
        published: mask messages handed to ZeroMQ.
        dropped: ``offered - published``: stale frames a live source or a full queue dropped.
        drop_rate: ``dropped / offered``.
        throughput_fps: ``published / elapsed_s``.
        capture_to_publish: per frame, from the capture stamp to the hand-off to ZeroMQ.
        stages: per-frame time of each of :data:`STAGES`.
        subscriber: what the subscriber received.
        postprocess_workers: the pipeline's postprocessing threads (1 for the naive loop).
        capacity_fps: per stage of :data:`PIPELINE_STAGES`, the frames per second it could sustain alone
            (:func:`stage_capacity`); ``None`` where a step was not timed.
        bottleneck: the stage with the lowest capacity (``None`` if none was measured).
        inspection: what the overlay, pose tagging and recording did (``inspection`` runs only).
    """

    mode: str
    source_fps: float | None
    elapsed_s: float
    offered: int
    published: int
    dropped: int
    drop_rate: float
    throughput_fps: float
    capture_to_publish: LatencyStats | None
    stages: dict[str, LatencyStats | None]
    subscriber: SubscriberResult
    postprocess_workers: int = 1
    capacity_fps: dict[str, float | None] = field(default_factory=dict)
    bottleneck: str | None = None
    inspection: InspectionResult | None = None


def stage_capacity(
    stages: dict[str, LatencyStats | None], postprocess_workers: int
) -> tuple[dict[str, float | None], str | None]:
    """Frames per second each pipeline stage could sustain alone, and the slowest stage.

    A stage's capacity is its threads over the mean time it spends per frame (the sum of its steps'
    means): ``1000 / mean_ms`` for one thread, ``postprocess_workers`` times that for the postprocessing
    pool. The pool's figure assumes its workers run in parallel: on a machine with fewer free cores
    than workers it is an upper bound.
    """
    capacity: dict[str, float | None] = {}
    for stage, steps in PIPELINE_STAGES.items():
        means = [stats.mean_ms for step in steps if (stats := stages.get(step)) is not None]
        threads = postprocess_workers if stage == "postprocess" else 1
        capacity[stage] = 1e3 * threads / sum(means) if len(means) == len(steps) and sum(means) > 0 else None
    measured = {stage: fps for stage, fps in capacity.items() if fps is not None}
    return capacity, min(measured, key=measured.__getitem__) if measured else None


@dataclass(frozen=True)
class Ratio:
    """A figure compared with its target; ``value`` and ``met`` are ``None`` when it was not measured."""

    value: float | None
    target: str
    met: bool | None


def _ratio(name: str, numerator: float | None, denominator: float | None) -> Ratio:
    rule, threshold = TARGETS[name]
    if numerator is None or not denominator:
        return Ratio(None, f"{rule} {threshold}", None)
    value = numerator / denominator
    return Ratio(value, f"{rule} {threshold}", _COMPARE[rule](value, threshold))


def ratios(
    raw: RawResult,
    pipeline: EndToEndResult | None,
    load: EndToEndResult | None,
    naive: EndToEndResult | None,
    inspection: EndToEndResult | None = None,
) -> dict[str, Ratio]:
    """The target ratios (see :data:`TARGETS`) of one case; ``None`` values for the runs that did not run."""
    pipeline_fps = pipeline.throughput_fps if pipeline is not None else None
    naive_fps = naive.throughput_fps if naive is not None else None
    inspection_fps = inspection.throughput_fps if inspection is not None else None
    load_p50 = load.capture_to_publish.p50_ms if load is not None and load.capture_to_publish else None
    return {
        "pipeline_over_raw": _ratio("pipeline_over_raw", pipeline_fps, raw.throughput_fps),
        "load_p50_over_raw_p50": _ratio("load_p50_over_raw_p50", load_p50, raw.latency.p50_ms),
        "pipeline_over_naive": _ratio("pipeline_over_naive", pipeline_fps, naive_fps),
        "inspection_over_pipeline": _ratio("inspection_over_pipeline", inspection_fps, pipeline_fps),
    }


@dataclass(frozen=True)
class CaseInfo:
    """The configuration of one case, as it actually ran.

    Attributes:
        model: variant name or file name.
        model_kind: ``variant``, ``onnx``, ``engine`` or ``checkpoint``.
        artifact: the file that ran (``None``: a model in memory).
        origin: how that file came to be (exported, converted, quantized, built).
        backend: backend name (``ort-cpu``...).
        runtime: ``onnxruntime``, ``tensorrt`` or ``pytorch``.
        providers: the ONNX Runtime providers the session used (empty for other runtimes).
        precision: ``fp32``, ``fp16`` or ``int8``.
        input_height, input_width: network input size.
        batch: images per inference call.
        replay_ms: the replay backend's latency per call; ``None`` for every other backend. A case with a
            value is a replay measurement: it measures the runtime, not a model's speed.
    """

    model: str
    model_kind: str
    artifact: str | None
    origin: str
    backend: str
    runtime: str
    providers: list[str]
    precision: str
    input_height: int
    input_width: int
    batch: int
    replay_ms: float | None = None

    @property
    def backend_label(self) -> str:
        """The backend as tables and plots name it: a replay case shows its latency."""
        return self.backend if self.replay_ms is None else f"{self.backend} {self.replay_ms:g} ms"


@dataclass(frozen=True)
class CaseResult:
    """Everything measured for one case; ``samples_ms`` feeds the plot and stays out of the JSON."""

    config: CaseInfo
    raw: RawResult
    pipeline: EndToEndResult | None
    load: EndToEndResult | None
    naive: EndToEndResult | None
    inspection: EndToEndResult | None
    ratios: dict[str, Ratio]
    notes: list[str]
    samples_ms: dict[str, list[float]] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class BenchReport:
    """One ``crackseg bench`` run: settings, machine and one result per case."""

    schema_version: int
    created: str
    settings: dict[str, Any]
    machine: dict[str, Any]
    targets: dict[str, str]
    results: list[CaseResult]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document (``edge/BENCH.md``): plain dicts, lists, strings, numbers, booleans and nulls."""
        return asdict(self, dict_factory=lambda items: {key: value for key, value in items if key != "samples_ms"})
