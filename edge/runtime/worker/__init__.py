"""The one worker-thread lifecycle: :meth:`Worker.open` starts a daemon thread, :meth:`Worker.close` stops and joins it.

Sinks (record, overlay, serial), pose inputs (MAVLink, odometry) and the bench's simulated autopilot each run
one thread from ``open()`` to ``close()``. They subclass :class:`Worker` and supply only the parts that differ,
as Polygraphy's runners supply ``*_impl`` methods:

- :meth:`Worker._open_impl` opens what the thread needs (a port, a database) and raises if it cannot;
- :meth:`Worker._run` is the thread's body, and loops until :attr:`Worker._stop` is set (or its queue ends);
- :meth:`Worker._wake` unblocks the thread when ``close()`` begins (put an end marker, notify a condition);
- :meth:`Worker._close_impl` releases what ``_open_impl`` opened, after the thread has ended or timed out.

``close()`` waits at most :attr:`Worker.join_timeout_s` for the thread, warns if it is still running, and is
safe to call twice. Workers are context managers.

A package of its own, below ``pose/`` and ``sinks/`` alike: the runtime root imports pose (the wire carries
poses), so a module there could not serve the pose inputs without an import cycle.
"""

from __future__ import annotations

import logging
import threading
from typing import TypeVar

__all__ = ["Worker"]

log = logging.getLogger(__name__)

_W = TypeVar("_W", bound="Worker")


class Worker:
    """A resource served by one daemon thread, from :meth:`open` to :meth:`close`.

    Attributes:
        join_timeout_s: how long :meth:`close` waits for the thread.
    """

    join_timeout_s = 2.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def thread_name(self) -> str:
        """The thread's name (in logs and debuggers)."""
        return f"crackseg-{type(self).__name__.lower()}"

    def open(self) -> None:
        """Open what the thread needs (:meth:`_open_impl`), then start it."""
        self._open_impl()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread, wait for it (at most :attr:`join_timeout_s`), then release; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._wake()
            self._thread.join(self.join_timeout_s)
            if self._thread.is_alive():
                log.warning("%s did not finish in %.1f s", self._thread.name, self.join_timeout_s)
            self._thread = None
        self._close_impl()

    def __enter__(self: _W) -> _W:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open_impl(self) -> None:
        """Open what :meth:`_run` uses; raise the subclass's error if it cannot."""

    def _run(self) -> None:
        raise NotImplementedError

    def _wake(self) -> None:
        """Unblock :meth:`_run` after :attr:`_stop` is set (a thread that polls :attr:`_stop` needs nothing)."""

    def _close_impl(self) -> None:
        """Release what :meth:`_open_impl` opened; called after the thread ended (or timed out), and on every close."""
