"""Serial link to a microcontroller: rate-limited crack summaries (``edge/WIRE.md``), never masks.

The link runs its own writer thread, so a slow, full or vanished port never blocks the pipeline:
:meth:`SerialLink.send` only replaces the newest result and returns. The writer sends a summary of the
newest result as soon as the rate limit allows (``rate_hz``), a ``STALE`` repeat when nothing new came
for ``heartbeat_s`` (the receiver's sign of life), and:

* a write that times out (the receiver does not drain the port) drops that summary and keeps the port;
* a write or open that fails (USB adapter unplugged) closes the port and reopens it with exponential
  backoff, forever; summaries produced meanwhile are dropped, only the newest matters;
* after every open or timeout a lone ``0x00`` goes first, ending any partial frame the receiver holds.

Opening at start is strict by default: a port that cannot be opened raises :class:`SerialLinkError`
(``crackseg run`` exits with the reason). With ``optional=True`` it logs a warning and keeps retrying in
the background, for adapters that appear after the runtime starts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.runtime.serial_frame import Summary, SummaryFlags, encode_summary
from crackseg.edge.runtime.sources.capture import ReconnectPolicy
from crackseg.edge.runtime.stats import CrackStats
from crackseg.edge.runtime.wire import HEARTBEAT_PERIOD_S, MaskMessage
from crackseg.edge.runtime.worker import Worker

__all__ = ["SerialLike", "SerialLink", "SerialLinkError"]

log = logging.getLogger(__name__)

_RESYNC = b"\x00"


class SerialLinkError(CracksegError):
    """The serial port cannot be opened (missing device, no permission, not a tty) or pyserial is absent."""


class SerialLike(Protocol):
    """The part of ``serial.Serial`` the link uses."""

    def write(self, data: bytes, /) -> int | None: ...

    def close(self) -> None: ...


class SerialLink(Worker):
    """Writes :class:`~crackseg.edge.runtime.serial_frame.Summary` frames to a serial port from its own thread.

    Args:
        port: device path (``/dev/ttyUSB0``) or any pyserial URL (``loop://``, ``rfc2217://host:port``).
        baudrate: line speed; a 32-byte summary takes 2.8 ms at 115200 baud.
        rate_hz: at most this many summaries per second.
        optional: start even if the port cannot be opened yet, and keep retrying (see module docstring).
        heartbeat_s: send a ``STALE`` repeat after this long without a new result.
        write_timeout_s: give up on one summary after this long.
        reconnect: backoff between reopen attempts (default 0.5 s doubling to 8 s).
        opener: opens the port instead of ``serial.serial_for_url`` (tests, custom transports).
    """

    join_timeout_s = 2.0

    def __init__(
        self,
        port: str,
        baudrate: int = 115200,
        rate_hz: float = 10.0,
        optional: bool = False,
        heartbeat_s: float = HEARTBEAT_PERIOD_S,
        write_timeout_s: float = 0.2,
        reconnect: ReconnectPolicy | None = None,
        opener: Callable[[], SerialLike] | None = None,
    ) -> None:
        super().__init__()
        if not rate_hz > 0:  # NaN too
            raise SerialLinkError(f"the serial summary rate must be positive, got {rate_hz}")
        self.port_name = port
        self.baudrate = baudrate
        self.interval_s = 1.0 / rate_hz
        self.optional = optional
        self.heartbeat_s = max(heartbeat_s, self.interval_s)
        self.write_timeout_s = write_timeout_s
        self.reconnect = reconnect or ReconnectPolicy()
        self._opener = opener or self._open_serial
        self._port: SerialLike | None = None
        self._cond = threading.Condition()
        self._latest: tuple[CrackStats, int, int] | None = None
        self._fresh = False
        self._seq = 0
        self._resync = True
        self.sent = 0
        self.stale_sent = 0
        self.write_timeouts = 0
        self.disconnects = 0
        self.reopens = 0

    @property
    def connected(self) -> bool:
        return self._port is not None

    @property
    def thread_name(self) -> str:
        return f"serial:{self.port_name}"

    def _open_impl(self) -> None:
        """Open the port (strictly unless ``optional``); the writer thread starts next."""
        try:
            self._port = self._opener()
        except SerialLinkError as exc:
            if not self.optional:
                raise
            log.warning("%s; retrying in the background (optional serial link)", exc)

    def send(self, message: MaskMessage) -> None:
        """Offer a published frame; returns at once. Heartbeat messages are ignored (the link has its own)."""
        if message.stats is None:
            return
        with self._cond:
            self._latest = (message.stats, message.frame_id, message.capture_ns)
            self._fresh = True
            self._cond.notify()

    def counters(self) -> dict[str, int]:
        return {
            "serial_sent": self.sent,
            "serial_stale": self.stale_sent,
            "serial_write_timeouts": self.write_timeouts,
            "serial_disconnects": self.disconnects,
            "serial_reopens": self.reopens,
        }

    def _wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def _close_impl(self) -> None:
        self._drop_port()

    def _open_serial(self) -> SerialLike:
        try:
            import serial
        except ImportError as exc:
            raise SerialLinkError("pyserial is needed for --serial: pip install 'crackseg[edge]'") from exc
        try:
            port: SerialLike = serial.serial_for_url(
                self.port_name, baudrate=self.baudrate, timeout=0, write_timeout=self.write_timeout_s, exclusive=True
            )
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialLinkError(f"cannot open serial port {self.port_name}: {exc}") from None
        except KeyError as exc:  # pyserial's URL handlers (loop://, spy://) raise it for an unknown option or value
            raise SerialLinkError(
                f"cannot open serial port {self.port_name}: unknown option or value in the pyserial URL "
                f"(expected {exc})"
            ) from None
        return port

    def _run(self) -> None:
        last_sent = time.monotonic() - self.interval_s  # a first result goes out at once, a heartbeat later
        backoff: Iterator[float] = self.reconnect.delays()
        next_open = time.monotonic()
        while not self._stop.is_set():
            if self._port is None:
                if time.monotonic() < next_open:
                    self._stop.wait(min(next_open - time.monotonic(), 0.1))
                    continue
                if not self._reopen():
                    next_open = time.monotonic() + next(backoff)
                    continue
                backoff = self.reconnect.delays()
            summary = self._next_summary(last_sent)
            if summary is None:
                continue
            if self._write(encode_summary(summary)):
                last_sent = time.monotonic()
                if SummaryFlags.STALE in summary.flags:
                    self.stale_sent += 1
                else:
                    self.sent += 1

    def _next_summary(self, last_sent: float) -> Summary | None:
        """Wait until a summary is due (fresh result past the rate limit, or heartbeat), then build it."""
        with self._cond:
            now = time.monotonic()
            fresh_due = self._fresh and now >= last_sent + self.interval_s
            if not fresh_due and now < last_sent + self.heartbeat_s:
                due = last_sent + (self.interval_s if self._fresh else self.heartbeat_s)
                self._cond.wait(min(due - now, 0.1))
                return None
            stats, frame_id, capture_ns = self._latest or (CrackStats(), 0, 0)
            stale, self._fresh = not fresh_due, False
        seq, self._seq = self._seq, self._seq + 1
        return Summary.from_stats(stats, seq=seq, frame_id=frame_id, capture_ns=capture_ns, stale=stale)

    def _write(self, frame: bytes) -> bool:
        import serial

        assert self._port is not None
        data = _RESYNC + frame if self._resync else frame
        try:
            self._port.write(data)
        except serial.SerialTimeoutException:
            self.write_timeouts += 1
            self._resync = True
            return False
        except (serial.SerialException, OSError) as exc:
            self.disconnects += 1
            log.warning("serial port %s failed (%s); reopening with backoff", self.port_name, exc)
            self._drop_port()
            return False
        self._resync = False
        return True

    def _reopen(self) -> bool:
        try:
            self._port = self._opener()
        except SerialLinkError as exc:
            log.debug("%s", exc)
            return False
        self.reopens += 1
        self._resync = True
        log.info("serial port %s is back", self.port_name)
        return True

    def _drop_port(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            try:
                port.close()
            except Exception as exc:  # a vanished device may fail to close; it is gone either way
                log.debug("closing %s: %s", self.port_name, exc)
