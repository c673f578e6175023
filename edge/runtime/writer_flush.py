"""Flushing a background writer thread: a barrier queued behind everything it has not written yet.

The recording and the overlay output each drain a queue on their own thread. A writer that meets a
``threading.Event`` in its queue sets it, so once the event is set every item queued before it has
been written and the writer's counters include it.
"""

from __future__ import annotations

import queue
import threading
from typing import Any

__all__ = ["flush_writer"]


def flush_writer(items: queue.Queue[Any], timeout_s: float) -> bool:
    """Queues a barrier and waits for the writer to reach it; False if that took longer than ``timeout_s``."""
    done = threading.Event()
    try:
        items.put(done, timeout=timeout_s)
    except queue.Full:
        return False
    return done.wait(timeout_s)
