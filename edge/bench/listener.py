"""The receiving end of the end-to-end benchmark: a real :class:`~crackseg.edge.runtime.sinks.subscribe.Subscriber` in a
second process, as a vehicle controller would be.

In its own process the subscriber competes with the pipeline for cores, as on the vehicle, but not for
the pipeline's interpreter lock. It decodes and validates every message (as a controller must) and
records, per mask, the time from the capture stamp to the moment it was decoded; both processes read
the same system clock. It is started with ``spawn`` (no copy of the parent's threads or sockets) and
imports only the subscriber module.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from types import TracebackType

from crackseg.edge.bench.config import BenchError
from crackseg.edge.runtime.sinks.subscribe import Subscriber

__all__ = ["Heard", "SubscriberProcess"]

_POLL_S = 0.05
_QUIET_S = 0.3
"""After the run, the subscriber stops once nothing arrived for this long."""
_CONNECT_TIMEOUT_S = 30.0
"""Starting a process and importing numpy and pyzmq takes seconds on a busy 2-core board."""
_RESULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Heard:
    """What the subscriber received: mask messages and, for each, capture-to-receive seconds."""

    received: int
    latencies_s: list[float]


def _listen(endpoint: str, topic: bytes, connected: Event, finished: Event, results: Connection) -> None:
    """The child process: receive until ``finished`` is set and the stream went quiet, then report."""
    latencies: list[float] = []
    with Subscriber(endpoint, topic) as subscriber:
        last = time.monotonic()
        while True:
            message = subscriber.receive(_POLL_S)
            if message is not None:
                connected.set()
                last = time.monotonic()
                if message.mask is not None:
                    latencies.append((time.time_ns() - message.capture_ns) / 1e9)
            elif finished.is_set() and time.monotonic() - last >= _QUIET_S:
                break
    results.send(latencies)
    results.close()


class SubscriberProcess:
    """A subscriber process connected to ``endpoint``; use as a context manager.

    Args:
        endpoint: the publisher's bound address (``tcp://127.0.0.1:PORT``).
        topic: the publisher's topic prefix.
    """

    def __init__(self, endpoint: str, topic: bytes) -> None:
        context = multiprocessing.get_context("spawn")
        self._connected = context.Event()
        self._finished = context.Event()
        self._results, child_end = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_listen,
            args=(endpoint, topic, self._connected, self._finished, child_end),
            name="crackseg-bench-subscriber",
            daemon=True,
        )
        self.endpoint = endpoint

    def __enter__(self) -> SubscriberProcess:
        self._process.start()
        return self

    def wait_connected(self, ping: Callable[[], None]) -> None:
        """Call ``ping`` (send a heartbeat) until the subscriber hears it, so that no frame is lost to slow joining."""
        deadline = time.monotonic() + _CONNECT_TIMEOUT_S
        while not self._connected.wait(_POLL_S):
            if not self._process.is_alive():
                raise BenchError(f"the subscriber process exited (code {self._process.exitcode}) before connecting")
            if time.monotonic() > deadline:
                raise BenchError(
                    f"the subscriber process heard nothing from {self.endpoint} in {_CONNECT_TIMEOUT_S:.0f} s"
                )
            ping()

    def finish(self) -> Heard:
        """Tell the subscriber the run is over; it reports once the last messages have arrived."""
        self._finished.set()
        if not self._results.poll(_RESULT_TIMEOUT_S):
            raise BenchError(f"the subscriber process did not report within {_RESULT_TIMEOUT_S:.0f} s")
        latencies: list[float] = self._results.recv()
        return Heard(len(latencies), latencies)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._finished.set()
        self._process.join(_QUIET_S + 5.0)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._results.close()
