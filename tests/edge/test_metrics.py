"""Runtime metrics: percentile definition, whole-run reservoir, interval and total snapshots."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crackseg.edge.runtime.metrics import LatencySummary, PipelineMetrics, Reservoir, percentiles


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([1, 2, 3, 4], (2.5, 3.85, 3.97)),  # ranks 1.5, 2.85, 2.97 between 3 and 4
        ([4, 1, 3, 2], (2.5, 3.85, 3.97)),  # order does not matter
        ([10], (10.0, 10.0, 10.0)),
        ([0, 100], (50.0, 95.0, 99.0)),
        (list(range(1, 101)), (50.5, 95.05, 99.01)),
    ],
)
def test_percentiles_interpolate_linearly_between_ranks(samples: list[int], expected: tuple[float, ...]) -> None:
    assert percentiles(samples) == pytest.approx(expected)


def test_percentiles_of_nothing_are_nan_and_bad_quantiles_raise() -> None:
    assert all(math.isnan(v) for v in percentiles([]))
    assert percentiles([5, 7], qs=(0, 100)) == (5.0, 7.0)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentiles([1], qs=(101,))


def test_latency_summary_converts_seconds_to_milliseconds() -> None:
    summary = LatencySummary.of_seconds([0.001, 0.002, 0.003, 0.004])
    assert summary.count == 4
    assert (summary.p50, summary.p95, summary.p99) == pytest.approx((2.5, 3.85, 3.97))
    assert (summary.mean, summary.max) == pytest.approx((2.5, 4.0))
    assert str(LatencySummary(3, 1.04, 2.06, 3.0, 2.0, 3.0)) == "1.0/2.1/3.0"  # p50/p95/p99, 0.1 ms
    assert LatencySummary.of_seconds([]).count == 0


def test_reservoir_keeps_everything_until_full_then_a_bounded_sample() -> None:
    small = Reservoir(size=5)
    for v in (3.0, 1.0, 2.0):
        small.add(v)
    assert small.values == [3.0, 1.0, 2.0]
    full = Reservoir(size=3)
    for v in range(10):
        full.add(float(v))
    assert full.seen == 10 and len(full.values) == 3 and len(set(full.values)) == 3


def test_reservoir_sample_is_uniform_over_the_stream() -> None:
    # Each of 100 values must end up in a 10-slot reservoir with probability 0.1: the first and the last
    # alike (a "first k" or "last k" buffer would give 1.0 and 0.0).
    hits = np.zeros(100)
    trials = 2000
    for seed in range(trials):
        reservoir = Reservoir(size=10, seed=seed)
        for v in range(100):
            reservoir.add(float(v))
        hits[np.asarray(reservoir.values, dtype=int)] += 1
    rate = hits / trials
    assert rate[0] == pytest.approx(0.1, abs=0.025)
    assert rate[99] == pytest.approx(0.1, abs=0.025)
    assert rate.mean() == pytest.approx(0.1)


def test_pipeline_metrics_interval_resets_while_total_accumulates() -> None:
    metrics = PipelineMetrics(["infer"])
    for seconds in (0.010, 0.020, 0.030):
        metrics.observe("infer", seconds)
    metrics.count("published", 3)
    metrics.count("dropped_before_infer")
    first = metrics.interval()
    assert first.published == 3
    assert first.latency["infer"].count == 3 and first.latency["infer"].p50 == pytest.approx(20.0)
    assert first.counters == {"published": 3, "dropped_before_infer": 1}
    assert first.fps > 0
    metrics.observe("infer", 0.040)
    second = metrics.interval()
    assert second.published == 0 and second.latency["infer"].count == 1 and second.counters == {}
    total = metrics.total()
    assert total.latency["infer"].count == 4 and total.latency["infer"].max == pytest.approx(40.0)
    assert total.counters["published"] == 3


def test_pipeline_metrics_sync_folds_in_running_totals_as_deltas() -> None:
    metrics = PipelineMetrics([])
    metrics.sync("source_dropped_stale", 5)
    assert metrics.interval().counters == {"source_dropped_stale": 5}
    metrics.sync("source_dropped_stale", 7)
    metrics.sync("source_dropped_stale", 7)  # unchanged total: no new events
    assert metrics.interval().counters == {"source_dropped_stale": 2}
    assert metrics.total().counters == {"source_dropped_stale": 7}


def test_snapshot_format_names_fps_stages_and_events() -> None:
    metrics = PipelineMetrics(["infer"])
    metrics.observe("infer", 0.005)
    metrics.observe(PipelineMetrics.END_TO_END, 0.008)
    metrics.count("published")
    line = metrics.interval().format()
    assert "fps" in line and "infer 5.0/5.0/5.0" in line and "capture_to_publish 8.0/8.0/8.0" in line
    assert "published=1" in line
