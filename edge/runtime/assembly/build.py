"""Builds one run of the runtime from a :class:`RunConfig`: :func:`assemble`.

``crackseg run`` parses its options into a :class:`RunConfig` and reports; this module opens what the
configuration names, in an order that fails early and cheaply: the source (a bad URI fails before the
model loads), the runner, the geometry and postprocessor, the replay recording, the sinks (ZeroMQ
publisher, serial link, recording, overlay), the pose inputs, and the :class:`Pipeline` that joins them.
Everything opened is closed when the ``with`` block of :func:`assemble` ends, last opened first.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.backends import Runner, open_runner
from crackseg.edge.models import bundled_model
from crackseg.edge.runtime.assembly.config import PoseConfig, ReplayConfig, RunConfig
from crackseg.edge.runtime.geometry import Geometry, make_geometry
from crackseg.edge.runtime.inventory.camera import camera_record
from crackseg.edge.runtime.message import MessageBuilder
from crackseg.edge.runtime.pipeline import Pipeline, Sink
from crackseg.edge.runtime.pose.mavlink import MavlinkInput
from crackseg.edge.runtime.pose.odometry import OdometryInput
from crackseg.edge.runtime.pose.track import PoseTrack
from crackseg.edge.runtime.pose.watch import DEFAULT_SILENCE_S, PoseFeed, PoseWatch
from crackseg.edge.runtime.postprocess import Postprocessor
from crackseg.edge.runtime.replay import ReplayRunner
from crackseg.edge.runtime.sinks.overlay_output import OverlayOutput
from crackseg.edge.runtime.sinks.publish_zmq import ENCODINGS, ZmqPublisher, load_curve_key
from crackseg.edge.runtime.sinks.record import Recorder
from crackseg.edge.runtime.sinks.serial_link import SerialLink
from crackseg.edge.runtime.sources import LIVE_KINDS, BaseSource, open_source
from crackseg.edge.runtime.sources.capture import ReconnectPolicy
from crackseg.edge.runtime.sources.memory import MemoryPlayback, read_frames
from crackseg.edge.runtime.sources.uri import parse_uri
from crackseg.edge.runtime.wire import model_hash

__all__ = ["Assembly", "assemble", "default_model", "run_recorder"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Assembly:
    """An assembled run: the pipeline to run and what a command reports about it.

    Attributes:
        pipeline: source, runner, geometry, postprocessor, message builder and sinks, joined.
        model: the model file.
        spec: its spec.
        runner: the runner (the replay runner under replay).
        source: the source (the looped frames under replay).
        threshold: the threshold in use.
        publisher: the ZeroMQ publisher.
        curve_secret: the publisher's CurveZMQ secret key, if any.
    """

    pipeline: Pipeline
    model: Path
    spec: ModelSpec
    runner: Runner
    source: BaseSource
    threshold: float
    publisher: ZmqPublisher
    curve_secret: bytes | None


def default_model() -> Path:
    """The bundled ONNX model, used when no model is given; its absence is a one-line error."""
    try:
        return bundled_model(".onnx")
    except CracksegError as exc:
        raise CracksegError(f"{exc}; pass a model with --model") from None


def _open_source(text: str, reconnect_max_s: float | None) -> BaseSource:
    """The source ``text`` names, with the reconnect cap asked for (live sources only)."""
    if reconnect_max_s is None:
        return open_source(text)
    uri = parse_uri(text)
    if uri.kind not in LIVE_KINDS or reconnect_max_s <= 0:
        raise CracksegError(f"--reconnect-max takes a positive number of seconds and a live source, not {text!r}")
    return open_source(uri, reconnect=ReconnectPolicy(initial_s=min(0.25, reconnect_max_s), max_s=reconnect_max_s))


def _replaying(
    stack: ExitStack, model: Runner, source: BaseSource, geometry: Geometry, replay: ReplayConfig, infer_batch: int
) -> tuple[ReplayRunner, MemoryPlayback]:
    """The replay runner with the maps of the source's first ``replay.frames`` frames, and those frames looped."""
    frames = read_frames(source, replay.frames)
    runner = ReplayRunner(model, replay.latency_s)
    stack.enter_context(runner)
    log.info("replay: recording %s's maps of %d frames of %s", model.name, len(frames), source.source_id)
    runner.record_frames(frames, geometry, infer_batch)
    return runner, MemoryPlayback(frames, source)


def _pose_track(pose: PoseConfig, stack: ExitStack) -> PoseTrack | None:
    """Open the configured pose inputs, feeding one track; ``None`` without any (frames then carry no pose)."""
    if not (pose.mavlink or pose.odometry):
        return None
    try:
        track = PoseTrack(pose.max_age_s)
    except ValueError as exc:
        raise CracksegError(str(exc)) from None
    feeds: list[PoseFeed] = []
    if pose.mavlink:
        feeds.append(stack.enter_context(MavlinkInput(pose.mavlink, track, pose.mavlink_baud)))
    if pose.odometry:
        odometry = OdometryInput(pose.odometry, track, pose.odometry_topic, pose.odometry_baud)
        feeds.append(stack.enter_context(odometry))
    stack.enter_context(PoseWatch(feeds, max(DEFAULT_SILENCE_S, pose.max_age_s)))  # warns while the run goes on
    return track


def run_recorder(config: RunConfig, model: Path, spec: ModelSpec, threshold: float, source_id: str) -> Recorder:
    """The recorder of ``config.record``, not yet open: it keeps the run's description (:func:`_run_info`) and,
    when a camera is recorded, so that the report will measure the cracks, traces them as it records them."""
    if config.record is None:
        raise ValueError("the configuration records nothing (record is None)")
    info = _run_info(config, model, spec, threshold, source_id)
    return Recorder(config.record, run_info=info, trace_cracks=info["camera"] is not None)


def _run_info(config: RunConfig, model: Path, spec: ModelSpec, threshold: float, source_id: str) -> dict[str, Any]:
    """What a recording keeps about its run, for ``crackseg report``."""
    pose = config.pose
    return {
        "model": model.name, "arch": spec.arch, "threshold": threshold, "spec_threshold": spec.threshold,
        "stats": config.mask.stats, "source": source_id, "mavlink": pose.mavlink, "odometry": pose.odometry,
        "camera": camera_record(pose.camera, pose.hfov_deg), "pipe_diameter_m": pose.pipe_diameter_m,
        "versions": dict(config.versions),
    }  # fmt: skip


def _sinks(
    config: RunConfig, stack: ExitStack, publisher: ZmqPublisher, model: Path, spec: ModelSpec, threshold: float,
    source_id: str,
) -> list[Sink]:  # fmt: skip
    """The publisher, then the serial link, the recording and the overlay the configuration asks for."""
    sinks: list[Sink] = [publisher]
    serial = config.serial
    if serial is not None:
        link = SerialLink(serial.port, serial.baud, serial.rate_hz, optional=serial.optional)
        sinks.append(stack.enter_context(link))
    if config.record is not None:
        sinks.append(stack.enter_context(run_recorder(config, model, spec, threshold, source_id)))
    if config.overlay is not None:
        overlay = config.overlay
        sinks.append(stack.enter_context(OverlayOutput(overlay.target, overlay.fps, every_frame=overlay.every_frame)))
    return sinks


@contextmanager
def assemble(config: RunConfig) -> Iterator[Assembly]:
    """Opens everything ``config`` names and joins it into a pipeline; closes it all when the block ends.

    Raises:
        CracksegError: a source, model, option value or sink that cannot be used, as one line.
    """
    publish, mask = config.publish, config.mask
    source = _open_source(config.source, config.reconnect_max_s)  # a bad URI or option fails here, before the model
    model = config.model or default_model()
    curve_secret = load_curve_key(publish.curve_secret_key, "secret") if publish.curve_secret_key else None
    with ExitStack() as stack:
        runner: Runner = stack.enter_context(open_runner(model))
        spec = runner.spec
        try:
            geometry = make_geometry(spec, mask.input_size, mask.tile, mask.tile_overlap, mask.tile_blend)
            threshold = spec.threshold if mask.threshold is None else mask.threshold
            postprocessor = Postprocessor(
                threshold, mask.hysteresis, stats_mode=mask.stats, min_component_px=spec.min_component_px
            )
        except ValueError as exc:
            raise CracksegError(str(exc)) from None
        if config.replay is not None:
            runner, source = _replaying(stack, runner, source, geometry, config.replay, config.pipeline.infer_batch)
        publisher = stack.enter_context(
            ZmqPublisher(publish.bind, publish.topic, publish.sndhwm, curve_secret, publish.curve_clients)
        )
        sinks = _sinks(config, stack, publisher, model, spec, threshold, source.source_id)
        log.info(
            "model %s (%s), threshold %.2f, %s statistics, source %s",
            model.name, spec.arch, threshold, mask.stats, source.source_id,
        )  # fmt: skip
        if runner.measurement_note:
            log.info("%s", runner.measurement_note)
        track = _pose_track(config.pose, stack)
        builder = MessageBuilder(model_hash(model), ENCODINGS[publish.encoding], None if track is None else track.at)
        pipeline = Pipeline(source, runner, geometry, postprocessor, builder, sinks, config.pipeline)
        yield Assembly(pipeline, model, spec, runner, source, threshold, publisher, curve_secret)
