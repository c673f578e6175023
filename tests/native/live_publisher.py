"""Live test of the native client: a Python PUB socket publishes, ``crackseg_listen_cpp`` subscribes.

Run by ctest (tests/native/CMakeLists.txt)::

    python tests/native/live_publisher.py --listener build/native/edge/native/crackseg_listen_cpp --plain
    python tests/native/live_publisher.py --listener ... --curve     # CurveZMQ: Python server, C++ client

Binds ``127.0.0.1`` on a free port, starts the listener against it, and publishes mask frames (every
encoding in turn) and heartbeats with ``MaskMessage.to_bytes()`` behind the default topic until the
listener has printed the frames it was asked for. Every printed line must then be exactly the line
``crackseg listen`` prints for the message with that ``seq`` (latency aside, which must be plausible).
The curve run also uses ``--conflate`` and key files in both formats the listener reads. The
publisher module ``crackseg.edge.runtime.sinks.publish_zmq`` is deliberately not used: this tests the wire contract,
not its sender. Exit status: 0 pass, 1 fail, 77 (ctest's skip) when pyzmq or crackseg cannot be imported.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SKIP = 77
FRAMES = 6
"""Mask frames the listener must print before it exits."""
PERIOD_S = 0.02
DEADLINE_S = 30.0
MAX_LATENCY_MS = 5000.0
"""Generous: a loaded 2-core CI machine running sanitizer builds is slow, and clocks are the same host's."""

try:
    import numpy as np
    import zmq
    import zmq.auth

    from crackseg.edge.cli.listen import describe
    from crackseg.edge.runtime.stats import crack_stats
    from crackseg.edge.runtime.wire import DEFAULT_TOPIC, MaskEncoding, MaskMessage
except ImportError as exc:  # pragma: no cover - depends on the environment
    print(f"SKIP: the live test needs pyzmq and crackseg[edge] ({exc})")
    sys.exit(SKIP)


def make_message(seq: int) -> MaskMessage:
    """Message number ``seq``: every fourth a heartbeat, else a frame whose crack moves with seq."""
    now = time.time_ns()
    common: dict[str, Any] = {
        "seq": seq,
        "source_id": "live-test",
        "capture_ns": now - 1_000_000,
        "publish_ns": now,
        "model_hash": bytes(range(16)),
        "threshold": 0.5,
    }
    frame_id = seq - seq // 4
    if seq % 4 == 3:
        return MaskMessage(frame_id=frame_id - 1, **common)
    mask = np.zeros((24, 40), bool)
    mask[8 + seq % 5 : 11 + seq % 5, 3 : 20 + seq % 17] = True
    mask[2:20, 30 + seq % 7] = True
    encoding = list(MaskEncoding)[seq % len(MaskEncoding)]
    return MaskMessage(frame_id=frame_id, mask=mask, stats=crack_stats(mask), encoding=encoding, **common)


LATENCY = re.compile(r"latency +(-?[0-9.]+) ms")


def check_output(lines: list[str], sent: dict[int, MaskMessage]) -> list[str]:
    """Problems with the listener's output; empty when every line is ``crackseg listen``'s for a sent frame."""
    problems = []
    seqs = []
    for line in lines:
        seq = int(line.split()[1]) if line.startswith("seq ") else -1
        if seq not in sent or sent[seq].mask is None:
            problems.append(f"line for no frame that was sent: {line!r}")
            continue
        seqs.append(seq)
        expected = describe(sent[seq], receive_ns=sent[seq].capture_ns)
        if LATENCY.sub("latency", line) != LATENCY.sub("latency", expected):
            problems.append(f"line differs from crackseg listen's:\n  {line!r}\n  {expected!r}")
        latency = LATENCY.search(line)
        if latency is None or not 0.0 <= float(latency.group(1)) < MAX_LATENCY_MS:
            problems.append(f"implausible capture-to-receive latency in {line!r}")
    if seqs != sorted(set(seqs)):
        problems.append(f"seq not strictly increasing: {seqs}")
    if len(lines) != FRAMES:
        problems.append(f"expected {FRAMES} lines, got {len(lines)}")
    return problems


def curve_setup(pub: zmq.Socket[bytes], key_dir: Path) -> list[str]:
    """Make ``pub`` a Curve server; return the listener's Curve options.

    The server key goes in a bare-key file, the client's keypair in the two ZeroMQ certificates that
    ``zmq.auth`` writes (public only, and public + secret), so every key-file form is read once.
    """
    server_public, server_secret = zmq.curve_keypair()
    pub.curve_server = True
    pub.curve_secretkey = server_secret
    server_file = key_dir / "server.key"
    server_file.write_bytes(server_public + b"\n")
    client_public_file, client_secret_file = zmq.auth.create_certificates(key_dir, "client")
    return [
        "--conflate",
        "--curve-server-key",
        str(server_file),
        "--curve-public-key",
        str(client_public_file),
        "--curve-secret-key",
        str(client_secret_file),
    ]


def run(listener: Path, curve: bool) -> int:
    if curve and not zmq.has("curve"):
        print("SKIP: this pyzmq has no CurveZMQ support")
        return SKIP
    sent: dict[int, MaskMessage] = {}
    with zmq.Context() as ctx, ctx.socket(zmq.PUB) as pub, tempfile.TemporaryDirectory() as key_dir:
        pub.sndhwm = 2
        pub.linger = 0
        extra = curve_setup(pub, Path(key_dir)) if curve else []
        pub.bind("tcp://127.0.0.1:*")
        endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        args = [str(listener), "--connect", endpoint, "--count", str(FRAMES), "--timeout", "20", *extra]
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            deadline = time.monotonic() + DEADLINE_S
            seq = 0
            while proc.poll() is None and time.monotonic() < deadline:
                sent[seq] = make_message(seq)
                pub.send(DEFAULT_TOPIC + sent[seq].to_bytes())
                seq += 1
                time.sleep(PERIOD_S)
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate()
    lines = out.splitlines()
    print(f"sent {len(sent)} messages to {endpoint}; listener exited {proc.returncode}:", *lines, err, sep="\n")
    problems = [f"listener exit status {proc.returncode}"] if proc.returncode else []
    problems += check_output(lines, sent)
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listener", type=Path, required=True, help="path of crackseg_listen_cpp")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--plain", action="store_true", help="no encryption")
    mode.add_argument("--curve", action="store_true", help="CurveZMQ: Python server, C++ client")
    args = parser.parse_args()
    return run(args.listener, args.curve)


if __name__ == "__main__":
    sys.exit(main())
