"""The one worker-thread lifecycle every sink, pose input and the bench's autopilot share."""

from __future__ import annotations

import logging
import threading

import pytest

from crackseg.edge.runtime.worker import Worker


class Ticker(Worker):
    """Counts until stopped; records the order of its lifecycle calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.ticks = 0

    def _open_impl(self) -> None:
        self.calls.append("open")

    def _run(self) -> None:
        while not self._stop.wait(0.001):
            self.ticks += 1

    def _close_impl(self) -> None:
        self.calls.append("close")


def test_a_worker_runs_its_thread_from_open_to_close_and_closes_twice_safely() -> None:
    with Ticker() as worker:
        assert worker._thread is not None and worker._thread.is_alive()
        assert worker._thread.name == "crackseg-ticker" and worker._thread.daemon
        thread = worker._thread
    assert not thread.is_alive()
    worker.close()
    assert worker.calls == ["open", "close", "close"]


def test_a_failed_open_starts_no_thread() -> None:
    class Broken(Ticker):
        def _open_impl(self) -> None:
            raise OSError("no port")

    worker = Broken()
    with pytest.raises(OSError, match="no port"):
        worker.open()
    assert worker._thread is None


def test_close_wakes_the_thread_and_warns_when_it_does_not_finish(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()

    class Stuck(Worker):
        join_timeout_s = 0.01
        woken = False

        def _run(self) -> None:
            release.wait(5)

        def _wake(self) -> None:
            self.woken = True

    worker = Stuck()
    worker.open()
    with caplog.at_level(logging.WARNING):
        worker.close()
    release.set()
    assert worker.woken
    assert "crackseg-stuck did not finish in 0.0 s" in caplog.text
