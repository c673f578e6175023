"""Serial link: summaries over pySerial's loop://, a pseudo-terminal pair, a port that vanishes and returns."""

from __future__ import annotations

import contextlib
import os
import select
import time
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.runtime.serial_frame import Summary, SummaryDecoder, SummaryFlags
from crackseg.edge.runtime.sinks.serial_link import SerialLink, SerialLinkError
from crackseg.edge.runtime.sources.capture import ReconnectPolicy
from crackseg.edge.runtime.stats import CrackStats
from crackseg.edge.runtime.wire import MaskMessage

serial = pytest.importorskip("serial")

FAST = ReconnectPolicy(initial_s=0.02, max_s=0.05)
CAPTURE_NS = 1_700_000_000_123_000_000


def _message(frame_id: int, crack_pixels: int = 100) -> MaskMessage:
    stats = CrackStats(crack_pixels, 1.2345, 2, 40, 3.4)
    mask = np.zeros((8, 8), bool)
    return MaskMessage(frame_id, frame_id, "cam", CAPTURE_NS + frame_id, 0, bytes(16), 0.5, mask, stats)


def _read_summaries(fd: int, decoder: SummaryDecoder, want: int, timeout_s: float = 5.0) -> list[Summary]:
    out: list[Summary] = []
    deadline = time.monotonic() + timeout_s
    while len(out) < want and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.05)[0]:
            try:
                out += decoder.feed(os.read(fd, 4096))
            except OSError:  # the slave side closed: nothing more to read
                break
    return out


def _wait(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


def test_summaries_over_pyserial_loop() -> None:
    port = serial.serial_for_url("loop://", timeout=0.05)
    link = SerialLink("loop://", rate_hz=100, opener=lambda: port)
    decoder = SummaryDecoder()
    with link:
        link.send(_message(7, crack_pixels=321))
        _wait(lambda: link.sent == 1)
        summaries = decoder.feed(port.read(4096))
    assert [s.frame_id for s in summaries] == [7]
    (summary,) = summaries
    assert summary.crack_pixels == 321 and summary.coverage_centi_pct == 123 and summary.components == 2
    assert summary.timestamp_ms == (CAPTURE_NS + 7) // 1_000_000 % 2**32 and summary.flags == SummaryFlags.NONE
    assert decoder.crc_errors == decoder.framing_errors == 0


def test_heartbeats_are_not_summaries() -> None:
    port = serial.serial_for_url("loop://", timeout=0.05)
    with SerialLink("loop://", rate_hz=100, heartbeat_s=10, opener=lambda: port) as link:
        link.send(MaskMessage(0, 0, "cam", 0, 0, bytes(16), 0.5))  # a ZeroMQ heartbeat: no stats
        time.sleep(0.1)
        assert link.sent == 0 and port.read(4096) in (b"", b"\x00")


@pytest.fixture
def pty_pair() -> tuple[int, str]:
    master, slave = os.openpty()
    name = os.ttyname(slave)
    yield master, name
    for fd in (master, slave):
        with contextlib.suppress(OSError):  # a test may have closed them to unplug the device
            os.close(fd)


def test_summaries_over_a_pseudo_terminal_are_rate_limited(pty_pair: tuple[int, str]) -> None:
    master, name = pty_pair
    decoder = SummaryDecoder()
    with SerialLink(name, baudrate=115200, rate_hz=20, heartbeat_s=10) as link:
        start = time.monotonic()
        frame_id = 0
        while time.monotonic() - start < 1.0:  # results at ~200 Hz, four times what fits in a second
            link.send(_message(frame_id))
            frame_id += 1
            time.sleep(0.005)
        newest = frame_id - 1
        summaries: list[Summary] = []
        deadline = time.monotonic() + 30
        while not (summaries and summaries[-1].frame_id == newest) and time.monotonic() < deadline:
            summaries += _read_summaries(master, decoder, want=1, timeout_s=0.1)
        window_s = time.monotonic() - start
    # Bounds from the time that really passed, never from an assumed schedule (issue 28, item 17):
    assert 1 <= len(summaries) <= 2 + 20 * window_s  # at most 20 Hz (plus the first one at once)
    ids = [s.frame_id for s in summaries]
    assert ids == sorted(ids) and ids[-1] == newest  # the newest result wins, never a backlog
    assert [s.seq for s in summaries] == list(range(len(summaries)))
    assert decoder.crc_errors == decoder.framing_errors == 0


def test_stale_summaries_keep_the_link_alive(pty_pair: tuple[int, str]) -> None:
    master, name = pty_pair
    decoder = SummaryDecoder()
    with SerialLink(name, rate_hz=50, heartbeat_s=0.1) as link:
        link.send(_message(5))
        summaries = _read_summaries(master, decoder, want=4)
    assert summaries[0].frame_id == 5 and SummaryFlags.STALE not in summaries[0].flags
    assert all(s.frame_id == 5 and SummaryFlags.STALE in s.flags for s in summaries[1:4])  # repeats, flagged
    assert link.stale_sent >= 3


def test_a_missing_port_is_an_error_unless_optional(tmp_path: Path) -> None:
    missing = str(tmp_path / "ttyUSB9")
    with pytest.raises(SerialLinkError, match=r"cannot open serial port .*ttyUSB9"):
        SerialLink(missing).open()
    not_a_tty = tmp_path / "file"
    not_a_tty.write_text("")
    with pytest.raises(SerialLinkError, match="cannot open serial port"):
        SerialLink(str(not_a_tty)).open()
    with SerialLink(missing, optional=True, reconnect=FAST) as link:
        link.send(_message(1))  # accepted and dropped: nothing blocks while the port is absent
        assert not link.connected


def test_a_port_that_vanishes_and_comes_back_is_reopened(tmp_path: Path) -> None:
    stable = tmp_path / "ttyCRACK"  # a stable name, like a udev symlink, pointing at the current device
    master, slave = os.openpty()
    stable.symlink_to(os.ttyname(slave))
    with SerialLink(str(stable), rate_hz=50, heartbeat_s=0.05, reconnect=FAST) as link:
        link.send(_message(1))
        assert _read_summaries(master, SummaryDecoder(), want=1)[0].frame_id == 1
        os.close(master)  # unplug: the device and its name disappear
        os.close(slave)
        stable.unlink()
        _wait(lambda: not link.connected)
        link.send(_message(2))
        time.sleep(0.2)  # the link keeps retrying with backoff; send() never blocks meanwhile
        master, slave = os.openpty()  # plug back in
        stable.symlink_to(os.ttyname(slave))
        _wait(lambda: link.connected)
        link.send(_message(3))
        decoder = SummaryDecoder()
        summaries = _read_summaries(master, decoder, want=2)
        assert link.disconnects == 1 and link.reopens == 1
    os.close(master)
    os.close(slave)
    assert 3 in [s.frame_id for s in summaries]
    assert decoder.framing_errors == decoder.crc_errors == 0  # the resync byte keeps frames clean
