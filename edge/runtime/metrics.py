"""Live runtime metrics: per-stage latency percentiles, throughput and drop counters.

The runtime logs a :class:`MetricsSnapshot` every few seconds and a whole-run one at the end; ``crackseg
bench`` reuses :func:`percentiles` and :class:`LatencySummary` so that every figure in the README is
computed the same way.

Percentiles interpolate linearly between the two closest ranks (Hyndman and Fan type 7, numpy's default
``method="linear"``): ``p50`` of ``[1, 2, 3, 4]`` is 2.5.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["LatencySummary", "MetricsSnapshot", "PipelineMetrics", "Reservoir", "percentiles"]

DEFAULT_QUANTILES = (50.0, 95.0, 99.0)
RESERVOIR_SIZE = 8192
"""Samples kept per stage for whole-run percentiles: bounded memory however long the vehicle flies."""


def percentiles(samples: Sequence[float] | np.ndarray, qs: Iterable[float] = DEFAULT_QUANTILES) -> tuple[float, ...]:
    """The ``qs`` percentiles (0..100) of ``samples``, linear interpolation; NaN for each when empty."""
    qs = tuple(qs)
    if any(not 0.0 <= q <= 100.0 for q in qs):
        raise ValueError(f"percentiles must lie in [0, 100], got {qs}")
    if len(samples) == 0:
        return tuple(float("nan") for _ in qs)
    values = np.percentile(np.asarray(samples, dtype=np.float64), qs, method="linear")
    return tuple(float(v) for v in values)


@dataclass(frozen=True)
class LatencySummary:
    """Percentiles of one latency series, in milliseconds (NaN when there were no samples).

    Attributes:
        count: number of samples summarized.
        p50, p95, p99: percentiles.
        mean: arithmetic mean.
        max: largest sample.
    """

    count: int
    p50: float
    p95: float
    p99: float
    mean: float
    max: float

    @classmethod
    def of_seconds(cls, samples: Sequence[float] | np.ndarray) -> LatencySummary:
        """Summarize durations given in seconds."""
        ms = np.asarray(samples, dtype=np.float64) * 1e3
        if ms.size == 0:
            nan = float("nan")
            return cls(0, nan, nan, nan, nan, nan)
        p50, p95, p99 = percentiles(ms)
        return cls(int(ms.size), p50, p95, p99, float(ms.mean()), float(ms.max()))

    def __str__(self) -> str:
        return f"{self.p50:.1f}/{self.p95:.1f}/{self.p99:.1f}"


class Reservoir:
    """A uniform random sample of at most ``size`` values from a stream of any length (Vitter's algorithm R).

    Whole-run percentiles from it are unbiased estimates; exact while fewer than ``size`` values arrived.
    """

    def __init__(self, size: int = RESERVOIR_SIZE, seed: int = 0) -> None:
        if size < 1:
            raise ValueError(f"reservoir size must be positive, got {size}")
        self.size = size
        self.seen = 0
        self.values: list[float] = []
        self._rng = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
            return
        slot = self._rng.randrange(self.seen)
        if slot < self.size:
            self.values[slot] = value


@dataclass(frozen=True)
class MetricsSnapshot:
    """Metrics over one interval (periodic log) or over the whole run.

    Attributes:
        elapsed_s: length of the interval.
        published: frames published in it.
        fps: ``published / elapsed_s``.
        latency: per stage, plus ``capture_to_publish`` (end to end), summaries in ms.
        counters: event counts in the interval (captured, drops by reason, ...).
    """

    elapsed_s: float
    published: int
    fps: float
    latency: Mapping[str, LatencySummary] = field(default_factory=dict)
    counters: Mapping[str, int] = field(default_factory=dict)

    def format(self) -> str:
        """One log line: fps, p50/p95/p99 per stage, then every non-zero counter."""
        stages = " ".join(f"{name} {summary}" for name, summary in self.latency.items() if summary.count)
        counts = " ".join(f"{name}={value}" for name, value in sorted(self.counters.items()) if value)
        return f"{self.fps:.1f} fps | latency ms p50/p95/p99: {stages or '-'} | {counts or 'no events'}"


class PipelineMetrics:
    """Thread-safe collector the pipeline stages write to and the supervisor reads.

    Each latency series keeps the samples of the current interval (cleared by :meth:`interval`) and a
    :class:`Reservoir` for the whole run (:meth:`total`).
    """

    END_TO_END = "capture_to_publish"

    def __init__(self, stages: Sequence[str], reservoir_size: int = RESERVOIR_SIZE) -> None:
        self._lock = threading.Lock()
        self._names = (*stages, self.END_TO_END)
        self._window: dict[str, list[float]] = {name: [] for name in self._names}
        self._reservoir = {name: Reservoir(reservoir_size, seed=i) for i, name in enumerate(self._names)}
        self._window_counts: Counter[str] = Counter()
        self._total_counts: Counter[str] = Counter()
        self._started = self._window_start = time.monotonic()

    def restart_clock(self) -> None:
        """Measure time (for fps) from now: called when frames start flowing, not when the runtime was set up."""
        with self._lock:
            self._started = self._window_start = time.monotonic()

    def observe(self, stage: str, seconds: float) -> None:
        """Record one duration of ``stage`` (one of the constructor's stages or ``END_TO_END``)."""
        with self._lock:
            self._window[stage].append(seconds)
            self._reservoir[stage].add(seconds)

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to counter ``name`` (``published`` drives fps)."""
        with self._lock:
            self._window_counts[name] += n
            self._total_counts[name] += n

    def sync(self, name: str, cumulative: int) -> None:
        """Fold in a counter kept elsewhere as a running total (a source's or a sink's own statistics)."""
        with self._lock:
            delta = cumulative - self._total_counts[name]
            if delta > 0:
                self._window_counts[name] += delta
                self._total_counts[name] += delta

    def interval(self) -> MetricsSnapshot:
        """Snapshot of everything since the previous call (or the start), then start a new interval."""
        now = time.monotonic()
        with self._lock:
            elapsed = now - self._window_start
            latency = {name: LatencySummary.of_seconds(values) for name, values in self._window.items()}
            counts = dict(self._window_counts)
            for values in self._window.values():
                values.clear()
            self._window_counts.clear()
            self._window_start = now
        return self._snapshot(elapsed, latency, counts)

    def total(self, until: float | None = None) -> MetricsSnapshot:
        """Snapshot of the whole run (latency percentiles estimated from the reservoirs), up to ``until``.

        ``until`` (a ``time.monotonic()`` value, default now) ends the run's duration: the time spent after
        it (waiting for a recording to flush) counts in no rate.
        """
        with self._lock:
            elapsed = (time.monotonic() if until is None else until) - self._started
            latency = {name: LatencySummary.of_seconds(r.values) for name, r in self._reservoir.items()}
            counts = dict(self._total_counts)
        return self._snapshot(elapsed, latency, counts)

    @staticmethod
    def _snapshot(elapsed: float, latency: dict[str, LatencySummary], counts: dict[str, int]) -> MetricsSnapshot:
        published = counts.get("published", 0)
        return MetricsSnapshot(elapsed, published, published / elapsed if elapsed > 0 else 0.0, latency, counts)
