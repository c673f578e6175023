"""Receive the mask stream like a vehicle controller would, and print each frame's crack statistics.

One line per mask frame: publisher sequence number, frame id, latency from capture to receipt,
coverage, connected components, skeleton length and maximum width (--json: one JSON object per
line, with the bounding boxes). Heartbeats are not printed. Exits 0 after --count frames, 1 when
nothing at all (not even a heartbeat) arrived for --timeout seconds. Latency compares the
publisher's clock with this machine's: across machines, keep them synchronized (PTP, chrony).

  crackseg listen --count 10
  crackseg listen --connect tcp://192.168.1.5:5557 --curve-server-key server.key --json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TextIO

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.number_options import float_in
from crackseg.edge.runtime.sinks.publish_zmq import ENCODINGS, load_curve_key
from crackseg.edge.runtime.sinks.subscribe import Subscriber
from crackseg.edge.runtime.wire import DEFAULT_ENDPOINT, DEFAULT_TOPIC, MaskMessage

__all__ = ["add_args", "describe", "run"]

_ENCODING_NAMES = {encoding: name for name, encoding in ENCODINGS.items()}


def add_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--connect", default=DEFAULT_ENDPOINT, help=f"publisher address (default: {DEFAULT_ENDPOINT})")
    parser.add_argument("--topic", default=DEFAULT_TOPIC.decode(), help="topic prefix (default: %(default)s)")
    parser.add_argument("--count", type=int, help="exit after this many mask frames (default: run until Ctrl-C)")
    parser.add_argument(
        "--timeout",
        type=float_in(at_least=0),
        default=0.0,
        help="fail when nothing arrives for this many seconds (0: wait forever)",
    )
    parser.add_argument("--conflate", action="store_true", help="keep only the newest message (a control loop's view)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per frame")
    group = parser.add_argument_group("CurveZMQ (encrypted links beyond the vehicle)")
    group.add_argument("--curve-server-key", type=Path, metavar="FILE", help="the publisher's public key file")
    group.add_argument("--curve-public-key", type=Path, metavar="FILE", help="this client's public key file")
    group.add_argument(
        "--curve-secret-key", type=Path, metavar="FILE", help="this client's secret key file (default: ephemeral)"
    )


def _subscriber(args: argparse.Namespace) -> Subscriber:
    """A (closed) subscriber with the endpoint, topic and CurveZMQ keys given on the command line."""
    server = load_curve_key(args.curve_server_key, "public") if args.curve_server_key else None
    public = load_curve_key(args.curve_public_key, "public") if args.curve_public_key else None
    secret = load_curve_key(args.curve_secret_key, "secret") if args.curve_secret_key else None
    return Subscriber(
        args.connect,
        args.topic.encode(),
        conflate=args.conflate,
        curve_server_key=server,
        curve_public_key=public,
        curve_secret_key=secret,
    )


def describe(message: MaskMessage, receive_ns: int, as_json: bool = False) -> str:
    """One output line for a mask frame received at ``receive_ns``."""
    stats = message.stats
    assert stats is not None, "heartbeats are not described"
    latency_ms = (receive_ns - message.capture_ns) / 1e6
    if as_json:
        return json.dumps(
            {
                "seq": message.seq,
                "frame_id": message.frame_id,
                "source_id": message.source_id,
                "capture_ns": message.capture_ns,
                "publish_ns": message.publish_ns,
                "receive_ns": receive_ns,
                "latency_ms": round(latency_ms, 3),
                "model_hash": message.model_hash.hex(),
                "threshold": message.threshold,
                "width": message.width,
                "height": message.height,
                "encoding": _ENCODING_NAMES[message.encoding],
                "crack_pixels": stats.crack_pixels,
                "coverage_pct": stats.coverage_pct,
                "components": stats.components,
                "skeleton_px": stats.skeleton_px,
                "max_width_px": stats.max_width_px,
                "boxes": [[b.x, b.y, b.w, b.h, b.pixels] for b in stats.boxes],
                **({} if message.pose is None else {"pose": message.pose.to_dict()}),
            }
        )
    return (
        f"seq {message.seq:6d}  frame {message.frame_id:6d}  latency {latency_ms:7.1f} ms  "
        f"coverage {stats.coverage_pct:6.2f} %  components {stats.components:4d}  "
        f"skeleton {stats.skeleton_px:6d} px  max width {stats.max_width_px:5.1f} px"
        + ("" if message.pose is None else f"  {message.pose.describe()}")
    )


def _print_frames(subscriber: Subscriber, count: int | None, timeout_s: float, as_json: bool, out: TextIO) -> int:
    """Print mask frames until ``count`` of them arrived (forever if ``None``); returns how many.

    Raises:
        CracksegError: nothing arrived for ``timeout_s`` seconds (when positive).
    """
    frames = 0
    last_heard = time.monotonic()
    while count is None or frames < count:
        message = subscriber.receive(0.1)
        now = time.monotonic()
        if message is None:
            if timeout_s > 0 and now - last_heard >= timeout_s:
                raise CracksegError(
                    f"nothing received from {subscriber.endpoint} for {timeout_s:g} s "
                    "(is 'crackseg run' publishing there, with the same topic and keys?)"
                )
            continue
        last_heard = now
        if message.mask is not None:
            print(describe(message, time.time_ns(), as_json), file=out, flush=True)
            frames += 1
    return frames


def run(args: argparse.Namespace) -> int:
    if args.count is not None and args.count < 1:
        raise CracksegError(f"--count must be at least 1, got {args.count}")
    with _subscriber(args) as subscriber:
        try:
            _print_frames(subscriber, args.count, args.timeout, args.json, sys.stdout)
        finally:  # also after --timeout or Ctrl-C: what was lost is part of the answer
            if subscriber.missed or subscriber.rejected:
                print(
                    f"{subscriber.missed} message(s) missed (sequence gaps), {subscriber.rejected} malformed",
                    file=sys.stderr,
                )
    return 0
