"""Run the edge runtime: frames from a source, crack masks and statistics to the vehicle controller.

Frames from --source (default: synthetic cracks) go through the model (default: the bundled default model)
and every mask is published on ZeroMQ (edge/WIRE.md), optionally summarized on a serial port and
recorded to SQLite; --overlay draws them on the frames for the operator (a video file or an
RTP/UDP stream). The run ends when the source ends, after --frames or --duration, or on
SIGINT/SIGTERM (sources released, sockets closed, recording flushed; exit status 130 after SIGINT, 0
after SIGTERM). Live metrics (fps, per-stage latency p50/p95/p99, drops) are logged every --log-every
seconds. The command only parses and reports: its options become one
:class:`~crackseg.edge.runtime.assembly.RunConfig`, which the runtime assembles (edge/runtime/assembly/).

  crackseg run --frames 50 --listen                     # demo: publish and print what a controller receives
  crackseg listen & crackseg run --source /dev/video0   # the same in two processes, from a camera
  crackseg run --source flight.mp4 --tile 512x512 --record flight.db --serial /dev/ttyUSB0

Replay, a measuring instrument: with --backend replay the model's probability maps of the first
--replay-frames frames of --source are computed once, then those frames loop through the runtime and
each inference returns its recorded map after --replay-ms (sleeping, as a GPU backend waits): the
runtime's own capacity at any inference rate, on any machine. Every log line of such a run says so.

  crackseg run --backend replay --replay-ms 5 --duration 30

Serial: a port that cannot be opened is an error at start; with --serial-optional the runtime starts
anyway and keeps retrying (a USB adapter plugged in later). A port that vanishes mid-run is reopened
with backoff either way.

CurveZMQ, for links beyond the vehicle: create a keypair with
  python -c "import zmq.auth; zmq.auth.create_certificates('.', 'server')"
then run with --bind tcp://*:5557 --curve-secret-key server.key_secret, and listen with
--curve-server-key server.key. Subscribers without the server's public key receive nothing. To let
only known controllers in, give each one a keypair (create_certificates(DIR, 'controller1')), put
their public .key files in a folder, pass it as --curve-clients, and listen with
--curve-public-key controller1.key --curve-secret-key controller1.key_secret. Binding beyond loopback
without CurveZMQ logs a warning: masks then travel in clear text.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.number_options import float_in
from crackseg.edge.artifact.size import parse_size
from crackseg.edge.artifact.size_options import add_old_size_spelling
from crackseg.edge.bench.machine import library_versions
from crackseg.edge.cli.listen import describe
from crackseg.edge.cli.options import add_stats_mode, database_path, nonblank
from crackseg.edge.models import BUNDLED_MODELS, DEFAULT_MODEL_NAME, model_path
from crackseg.edge.runtime.assembly import (
    MaskConfig,
    OverlayConfig,
    PoseConfig,
    PublishConfig,
    ReplayConfig,
    RunConfig,
    SerialConfig,
    assemble,
)
from crackseg.edge.runtime.geometry import BLENDS
from crackseg.edge.runtime.pipeline import PipelineConfig
from crackseg.edge.runtime.sinks.overlay_output import DEFAULT_FPS as DEFAULT_OVERLAY_FPS
from crackseg.edge.runtime.sinks.publish_zmq import ENCODINGS, connect_endpoint, import_zmq
from crackseg.edge.runtime.sinks.subscribe import Subscriber

__all__ = ["add_args", "run"]

log = logging.getLogger(__name__)

BACKEND_CHOICES = ("auto", "replay")
_GATE_TIMEOUT_S = 10.0
"""``--listen``: start anyway (with a warning) if the local listener heard nothing for this long."""
_DRAIN_QUIET_S = 0.5
"""``--listen``: after the run, the local listener stops once nothing arrived for this long."""


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        type=model_path,
        help=f"model file (.onnx, .engine or .safetensors) or bundled model name ({', '.join(BUNDLED_MODELS)}); "
        f"default: {DEFAULT_MODEL_NAME}",
    )
    parser.add_argument(
        "--backend", choices=BACKEND_CHOICES, default="auto",
        help="auto: chosen by the model file's suffix; replay: the measuring instrument (see above)",
    )  # fmt: skip
    parser.add_argument(
        "--source", default=RunConfig.source, help="frame source URI: file, folder, /dev/videoN, rtsp://, csi://N, "
        "gst://, synthetic:// (default: %(default)s)",
    )  # fmt: skip
    parser.add_argument("--frames", type=int, help="stop after this many frames")
    parser.add_argument("--duration", type=float_in(above=0), help="stop after this many seconds")
    parser.add_argument(
        "--reconnect-max", type=float_in(above=0), metavar="SECONDS",
        help="live sources: longest wait between reconnect attempts (default: 1 for network streams, 8 for cameras)",
    )  # fmt: skip
    parser.add_argument(
        "--log-every",
        type=float_in(at_least=0),
        default=PipelineConfig.log_every_s,
        metavar="SECONDS",
        help="metrics log period (0: off; default: %(default)s)",
    )

    mask = parser.add_argument_group("mask")
    mask.add_argument(
        "--threshold", type=float_in(at_least=0, at_most=1), help="probability threshold (default: the model spec's)"
    )
    mask.add_argument(
        "--hysteresis",
        type=float_in(at_least=0, at_most=1),
        metavar="LOW",
        help="also keep pixels above LOW touching a crack",
    )
    mask.add_argument(
        "--size", dest="input_size", type=parse_size, metavar="WxH", help="resize every frame to this network input"
    )
    add_old_size_spelling(mask, ["--input-size"], "input_size")
    mask.add_argument("--tile", type=parse_size, metavar="WxH", help="process large frames as overlapping tiles")
    mask.add_argument(
        "--tile-overlap",
        type=int,
        default=MaskConfig.tile_overlap,
        metavar="PX",
        help="tile overlap (default: %(default)s)",
    )
    mask.add_argument(
        "--tile-blend",
        choices=BLENDS,
        default=MaskConfig.tile_blend,
        help="how overlaps are merged (default: %(default)s)",
    )
    mask.add_argument(
        "--infer-batch",
        type=int,
        default=PipelineConfig.infer_batch,
        help="tiles per inference call (default: %(default)s)",
    )
    mask.add_argument(
        "--postprocess-workers", type=int, metavar="N", help="threads measuring masks (default: one per usable core)"
    )
    add_stats_mode(mask)

    zmq = parser.add_argument_group("ZeroMQ publisher")
    zmq.add_argument("--bind", default=PublishConfig.bind, help="endpoint to publish on (default: %(default)s)")
    zmq.add_argument("--topic", default=PublishConfig.topic.decode(), help="topic prefix (default: %(default)s)")
    zmq.add_argument(
        "--encoding",
        choices=sorted(ENCODINGS),
        default=PublishConfig.encoding,
        help="mask encoding (default: %(default)s)",
    )
    zmq.add_argument(
        "--sndhwm",
        type=int,
        default=PublishConfig.sndhwm,
        help="send high-water mark per subscriber (default: %(default)s)",
    )
    zmq.add_argument(
        "--curve-secret-key", type=Path, metavar="FILE", help="encrypt with CurveZMQ; this server's secret key file"
    )
    zmq.add_argument(
        "--curve-clients", type=Path, metavar="DIR", help="only clients whose public key (*.key) is in DIR may connect"
    )
    zmq.add_argument("--listen", action="store_true", help="also print, in this process, what a subscriber receives")

    replay = parser.add_argument_group("replay backend (--backend replay)")
    replay.add_argument(
        "--replay-ms",
        type=float_in(at_least=0),
        default=ReplayConfig.latency_s * 1e3,
        metavar="MS",
        help="latency of each inference call (default: %(default)g)",
    )
    replay.add_argument(
        "--replay-frames",
        type=int,
        default=ReplayConfig.frames,
        metavar="N",
        help="source frames recorded and looped (default: %(default)s)",
    )

    link = parser.add_argument_group("serial link")
    link.add_argument(
        "--serial", type=nonblank, metavar="PORT", help="send crack summaries to this port (or pyserial URL)"
    )
    link.add_argument("--serial-baud", type=int, default=SerialConfig.baud, help="baud rate (default: %(default)s)")
    link.add_argument(
        "--serial-rate",
        type=float_in(above=0),
        default=SerialConfig.rate_hz,
        help="summaries per second at most (default: %(default)g)",
    )
    link.add_argument("--serial-optional", action="store_true", help="start even if the port is absent, retry")

    parser.add_argument(
        "--record", type=database_path, metavar="DB",
        help="record every frame's statistics, pose and mask here, and camera thumbnails of frames with cracks "
        "(at most five a second), for crackseg report",
    )  # fmt: skip

    overlay = parser.add_argument_group("operator overlay")
    overlay.add_argument(
        "--overlay",
        type=nonblank,
        metavar="URI",
        help="draw masks and statistics on the frames: a video file (out.mp4, .avi, .mkv) or, with an OpenCV "
        "built with GStreamer, rtp://HOST:PORT, udp://HOST:PORT or gst://appsrc ! ...; frames are dropped "
        "from it (and counted) rather than slow publishing",
    )
    overlay.add_argument(
        "--overlay-fps",
        type=float_in(above=0),
        help="frame rate of the overlay video: at most this many frames are drawn per second of capture time, "
        "evenly spread, the others skipped (counted), so the overlay's cost follows its own rate and the video "
        f"plays in real time (default: the source's rate, at most {DEFAULT_OVERLAY_FPS:g})",
    )
    overlay.add_argument(
        "--overlay-every-frame",
        action="store_true",
        help="draw every published frame instead (reviewing a folder offline): the cost grows with the "
        "pipeline's rate and the video plays at --overlay-fps (or the rate of the first frames) whatever the "
        "capture rate",
    )

    pose = parser.add_argument_group("pose tagging (each frame carries the vehicle's pose at capture time)")
    pose.add_argument(
        "--mavlink",
        type=nonblank,
        metavar="URL",
        help="a drone's autopilot, pymavlink connection string: udpin:0.0.0.0:14550, tcp:HOST:PORT or a serial "
        "device such as /dev/ttyACM0 (needs crackseg[pose])",
    )
    pose.add_argument(
        "--camera",
        type=Path,
        metavar="FILE",
        help="the camera's calibration, ROS camera_info or OpenCV YAML: recorded with the run (--record), so that "
        "crackseg report measures each crack in metres and places it on the ground",
    )
    pose.add_argument(
        "--hfov",
        type=float_in(above=0),
        metavar="DEG",
        help="instead of --camera: the horizontal field of view of an undistorted camera, degrees",
    )
    pose.add_argument(
        "--pipe-diameter",
        type=float_in(above=0),
        metavar="M",
        help="a crawler's forward-looking camera on the axis of a pipe of this diameter, metres: crackseg report "
        "places each crack by chainage (--odometry) and clock position on the wall, not on flat ground",
    )
    pose.add_argument(
        "--mavlink-baud",
        type=int,
        default=PoseConfig.mavlink_baud,
        help="MAVLink serial baud rate (default: %(default)s)",
    )
    pose.add_argument(
        "--odometry",
        type=nonblank,
        metavar="URI",
        help="a crawler's odometry, JSON samples with chainage_m (and roll/pitch/yaw_deg): a ZeroMQ endpoint "
        "to subscribe to (tcp://...) or a serial port, one sample per line",
    )
    pose.add_argument(
        "--odometry-topic",
        default=PoseConfig.odometry_topic.decode(),
        help="ZeroMQ odometry topic (default: %(default)s)",
    )
    pose.add_argument(
        "--odometry-baud",
        type=int,
        default=PoseConfig.odometry_baud,
        help="odometry serial baud rate (default: %(default)s)",
    )
    pose.add_argument(
        "--pose-max-age",
        type=float_in(above=0),
        default=PoseConfig.max_age_s,
        metavar="S",
        help="flag a pose part stale when its nearest sample is further than this from the capture time "
        "(default: %(default)s)",
    )


@contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[list[int]]:
    """SIGINT and SIGTERM set ``stop`` once; a second signal gets the previous handler (force quit)."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()
        for sig, old in previous.items():
            signal.signal(sig, old)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _local_listener(subscriber: Subscriber, gate: threading.Event, finished: threading.Event) -> threading.Thread:
    """Prints what a subscriber receives; opens ``gate`` at the first message, ends once quiet after ``finished``."""

    def listen() -> None:
        started, quiet_since = time.monotonic(), None
        while True:
            message = subscriber.receive(0.1)
            now = time.monotonic()
            if message is not None:
                quiet_since = None
                gate.set()
                if message.mask is not None:
                    print(describe(message, time.time_ns()), flush=True)
                continue
            if finished.is_set():
                quiet_since = quiet_since or now
                if now - quiet_since >= _DRAIN_QUIET_S:
                    return
            elif not gate.is_set() and now - started >= _GATE_TIMEOUT_S:
                log.warning("the local listener heard nothing from %s; starting anyway", subscriber.endpoint)
                gate.set()

    return threading.Thread(target=listen, name="crackseg-listen", daemon=True)


def _config(args: argparse.Namespace) -> RunConfig:
    """The run the options describe; a contradiction between options is one line."""
    if args.replay_frames < 1 or args.replay_ms < 0:
        raise CracksegError(
            f"--replay-frames must be >= 1 and --replay-ms >= 0, got {args.replay_frames} and {args.replay_ms}"
        )
    if args.curve_clients and args.listen:
        raise CracksegError(
            "--listen's local subscriber has no authorized client key: with --curve-clients, run crackseg listen "
            "with a client keypair instead"
        )
    try:
        pipeline = PipelineConfig(
            max_frames=args.frames,
            duration_s=args.duration,
            infer_batch=args.infer_batch,
            log_every_s=args.log_every,
            postprocess_workers=args.postprocess_workers,
        )
    except ValueError as exc:
        raise CracksegError(str(exc)) from None
    serial = None
    if args.serial:
        serial = SerialConfig(args.serial, args.serial_baud, args.serial_rate, optional=args.serial_optional)
    overlay = OverlayConfig(args.overlay, args.overlay_fps, args.overlay_every_frame) if args.overlay else None
    return RunConfig(
        source=args.source,
        reconnect_max_s=args.reconnect_max,
        model=args.model,
        replay=ReplayConfig(args.replay_ms / 1e3, args.replay_frames) if args.backend == "replay" else None,
        pipeline=pipeline,
        mask=MaskConfig(
            args.threshold, args.hysteresis, args.input_size, args.tile, args.tile_overlap, args.tile_blend, args.stats
        ),
        publish=PublishConfig(
            args.bind, args.topic.encode(), args.encoding, args.sndhwm, args.curve_secret_key, args.curve_clients
        ),
        serial=serial,
        record=args.record,
        overlay=overlay,
        pose=PoseConfig(
            mavlink=args.mavlink,
            mavlink_baud=args.mavlink_baud,
            odometry=args.odometry,
            odometry_topic=args.odometry_topic.encode(),
            odometry_baud=args.odometry_baud,
            max_age_s=args.pose_max_age,
            camera=args.camera,
            hfov_deg=args.hfov,
            pipe_diameter_m=args.pipe_diameter,
        ),
        versions=library_versions() if args.record else {},
    )


def run(args: argparse.Namespace) -> int:
    config = _config(args)
    stop, gate, finished = threading.Event(), threading.Event(), threading.Event()
    with ExitStack() as stack:
        assembly = stack.enter_context(assemble(config))
        if args.listen:
            publisher, secret = assembly.publisher, assembly.curve_secret
            server_key = import_zmq().curve_public(secret) if secret else None
            subscriber = Subscriber(connect_endpoint(publisher.endpoint), publisher.topic, curve_server_key=server_key)
            listener = _local_listener(stack.enter_context(subscriber), gate, finished)
            listener.start()
            stack.callback(listener.join, _GATE_TIMEOUT_S)
            stack.callback(finished.set)  # runs first: the listener drains, then everything closes
        with _stop_on_signals(stop) as received:
            assembly.pipeline.run(stop, gate if args.listen else None)
    return 130 if signal.SIGINT in received else 0
