"""Live pose health: a warning when a pose input never starts or goes silent, and again when it returns.

A frame whose pose is missing or stale cannot be placed on the map; the operator must learn it while the
vehicle is still over the structure, not from the report. :class:`PoseWatch` looks at each pose input's
last sample time every ``poll_s`` and logs, per input:

- a warning when no sample arrived within ``silence_s`` of the watch opening (the autopilot never sent,
  the odometry host is unreachable);
- a warning when samples stop for ``silence_s`` mid-run;
- a warning when they return, with how long they were missing;
- at close, how many silent stretches there were and how long they lasted in all.

With the defaults (1 s of silence, polled every 0.1 s) a warning comes within about 1.1 s. The frames'
own counts (tagged, stale, missing) are the pipeline's metrics (``pose_tagged``, ``pose_stale``,
``pose_missing``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from crackseg.edge.runtime.worker import Worker

__all__ = ["DEFAULT_SILENCE_S", "PoseFeed", "PoseWatch"]

log = logging.getLogger(__name__)

DEFAULT_SILENCE_S = 1.0
"""Samples missing for this long are warned about (the track's staleness limit, when longer, is used instead)."""
_POLL_S = 0.1


class PoseFeed(Protocol):
    """A pose input as the watch sees it (:class:`~crackseg.edge.runtime.pose.mavlink.MavlinkInput`,
    :class:`~crackseg.edge.runtime.pose.odometry.OdometryInput`)."""

    @property
    def feed_name(self) -> str:
        """Names the input in a warning, e.g. ``MAVLink udpin:0.0.0.0:14550``."""
        ...

    @property
    def last_sample_s(self) -> float | None:
        """``time.monotonic()`` when the input last recorded a sample; ``None`` before the first."""
        ...


@dataclass
class _State:
    silent_since: float | None = None  # when the current silence began (None: samples flowing or not yet judged)
    gaps: int = 0
    gap_s: float = 0.0


class PoseWatch(Worker):
    """Warns when pose inputs fall silent and when they return (see the module docstring).

    Args:
        feeds: the pose inputs, opened before the watch.
        silence_s: how long without a sample counts as silence.
        poll_s: how often the inputs are looked at.
        clock: ``time.monotonic`` (tests pass their own and call :meth:`check`).
    """

    thread_name = "crackseg-pose-watch"

    def __init__(
        self,
        feeds: Sequence[PoseFeed],
        silence_s: float = DEFAULT_SILENCE_S,
        poll_s: float = _POLL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        if not (silence_s > 0 and poll_s > 0):
            raise ValueError(f"pose silence {silence_s} s and poll period {poll_s} s must be positive")
        self.feeds = tuple(feeds)
        self.silence_s = silence_s
        self.poll_s = poll_s
        self._clock = clock
        self._states = [_State() for _ in self.feeds]
        self.started_s = clock()

    def _open_impl(self) -> None:
        self.started_s = self._clock()
        self._states = [_State() for _ in self.feeds]

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.check()

    def _close_impl(self) -> None:
        now = self._clock()
        for feed, state in zip(self.feeds, self._states, strict=True):
            if state.silent_since is not None:
                state.gaps, state.gap_s = state.gaps + 1, state.gap_s + now - state.silent_since
            if feed.last_sample_s is None:
                log.warning("%s sent no pose sample during the run: no frame was placed", feed.feed_name)
            elif state.gaps:
                log.warning(
                    "%s: pose samples were missing %d time(s), %.1f s in all", feed.feed_name, state.gaps, state.gap_s
                )

    def check(self, now: float | None = None) -> list[str]:
        """Look at every input once (at ``now``, default the clock); logs and returns the warnings given."""
        now = self._clock() if now is None else now
        warnings = []
        for feed, state in zip(self.feeds, self._states, strict=True):
            last = feed.last_sample_s
            reference = self.started_s if last is None else max(last, self.started_s)
            quiet_s = now - reference
            if state.silent_since is None:
                if quiet_s < self.silence_s:
                    continue
                state.silent_since = reference
                if last is None:
                    text = (
                        f"no pose sample from {feed.feed_name} in the first {quiet_s:.1f} s: frames carry no "
                        "position until one arrives"
                    )
                else:
                    text = (
                        f"pose samples from {feed.feed_name} stopped {quiet_s:.1f} s ago: frames are marked stale "
                        "and not placed on the map until they return"
                    )
            elif last is not None and last > state.silent_since and quiet_s < self.silence_s:
                gap_s = last - state.silent_since
                state.gaps, state.gap_s, state.silent_since = state.gaps + 1, state.gap_s + gap_s, None
                text = f"pose samples from {feed.feed_name} returned after {gap_s:.1f} s without"
            else:
                continue
            log.warning("%s", text)
            warnings.append(text)
        return warnings
