"""What one run of the runtime is: a :class:`RunConfig`, as ``crackseg run`` parses it.

Values are in their runtime types (seconds, bytes, :class:`Size`); the defaults are the command's.
:func:`~crackseg.edge.runtime.assembly.build.assemble` opens what a configuration names.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from crackseg.edge.artifact.size import Size
from crackseg.edge.runtime.geometry import Blend
from crackseg.edge.runtime.pipeline import PipelineConfig
from crackseg.edge.runtime.pose.odometry import DEFAULT_ODOMETRY_TOPIC
from crackseg.edge.runtime.stats import StatsMode
from crackseg.edge.runtime.wire import DEFAULT_ENDPOINT, DEFAULT_TOPIC

__all__ = [
    "DEFAULT_SOURCE",
    "MaskConfig",
    "OverlayConfig",
    "PoseConfig",
    "PublishConfig",
    "ReplayConfig",
    "RunConfig",
    "SerialConfig",
]

DEFAULT_SOURCE = "synthetic://"


@dataclass(frozen=True)
class MaskConfig:
    """How a frame becomes a mask and its statistics.

    Attributes:
        threshold: probability threshold; ``None``: the model spec's.
        hysteresis: also keep pixels above this touching a crack; ``None``: off.
        input_size: resize every frame to this network input; ``None``: native resolution (or tiles).
        tile: process frames as overlapping tiles of this size.
        tile_overlap: minimum tile overlap, pixels.
        tile_blend: how overlaps are merged.
        stats: how the statistics are measured.
    """

    threshold: float | None = None
    hysteresis: float | None = None
    input_size: Size | None = None
    tile: Size | None = None
    tile_overlap: int = 64
    tile_blend: Blend = "feather"
    stats: StatsMode = "exact"


@dataclass(frozen=True)
class PublishConfig:
    """The ZeroMQ publisher (edge/WIRE.md).

    Attributes:
        bind: endpoint to publish on.
        topic: topic prefix.
        encoding: mask encoding, a key of ``ENCODINGS``.
        sndhwm: send high-water mark per subscriber.
        curve_secret_key: this server's CurveZMQ secret key file; ``None``: no encryption.
        curve_clients: folder of the public keys of the only clients that may connect.
    """

    bind: str = DEFAULT_ENDPOINT
    topic: bytes = DEFAULT_TOPIC
    encoding: str = "packbits"
    sndhwm: int = 2
    curve_secret_key: Path | None = None
    curve_clients: Path | None = None


@dataclass(frozen=True)
class ReplayConfig:
    """The replay backend: the maps of the source's first ``frames`` frames, looped, each after ``latency_s``."""

    latency_s: float = 0.005
    frames: int = 16


@dataclass(frozen=True)
class SerialConfig:
    """Crack summaries on a serial port (or pyserial URL); ``optional``: start without it and retry."""

    port: str
    baud: int = 115200
    rate_hz: float = 10.0
    optional: bool = False


@dataclass(frozen=True)
class OverlayConfig:
    """Masks and statistics drawn on the frames, to a video file or stream."""

    target: str
    fps: float | None = None
    """``None``: the source's rate, at most ``overlay_output.DEFAULT_FPS`` frames drawn a second."""
    every_frame: bool = False


@dataclass(frozen=True)
class PoseConfig:
    """The vehicle's pose inputs and the camera that a recording keeps.

    Attributes:
        mavlink: a drone autopilot's pymavlink connection string.
        mavlink_baud: its serial baud rate.
        odometry: a crawler's odometry: a ZeroMQ endpoint or a serial port.
        odometry_topic: the ZeroMQ odometry topic.
        odometry_baud: the odometry serial baud rate.
        max_age_s: a pose part is stale when its nearest sample is further than this from the capture time.
        camera: the camera's calibration file, recorded with the run.
        hfov_deg: instead of ``camera``, an undistorted camera's horizontal field of view.
        pipe_diameter_m: a crawler's forward-looking camera in a pipe of this diameter, recorded with the run:
            the inventory places cracks by chainage and clock position on the pipe wall, not on the ground.
    """

    mavlink: str | None = None
    mavlink_baud: int = 57600
    odometry: str | None = None
    odometry_topic: bytes = DEFAULT_ODOMETRY_TOPIC
    odometry_baud: int = 115200
    max_age_s: float = 0.5
    camera: Path | None = None
    hfov_deg: float | None = None
    pipe_diameter_m: float | None = None


@dataclass(frozen=True)
class RunConfig:
    """Everything one run of the runtime needs, as ``crackseg run`` parses it.

    Attributes:
        source: frame source URI.
        reconnect_max_s: live sources' longest wait between reconnect attempts; ``None``: the source's default.
        model: model file; ``None``: the bundled default (:func:`default_model`).
        replay: run the replay backend instead of the model; ``None``: the model.
        pipeline: frame and time limits, tiles per inference call, postprocess workers, metrics period.
        mask, publish, pose: see their classes.
        serial, record, overlay: optional sinks; ``None``: off.
        versions: library versions a recording keeps with the run.
    """

    source: str = DEFAULT_SOURCE
    reconnect_max_s: float | None = None
    model: Path | None = None
    replay: ReplayConfig | None = None
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    mask: MaskConfig = field(default_factory=MaskConfig)
    publish: PublishConfig = field(default_factory=PublishConfig)
    serial: SerialConfig | None = None
    record: Path | None = None
    overlay: OverlayConfig | None = None
    pose: PoseConfig = field(default_factory=PoseConfig)
    versions: Mapping[str, str | None] = field(default_factory=dict)
