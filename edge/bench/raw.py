"""Raw inference speed: the backend alone, back-to-back calls on one fixed input, as ``trtexec`` measures it.

Each call is timed from the moment the batch is handed to the runner until its output is back in host
memory, so a GPU's work is included: the runners synchronize before returning (TensorRT waits on its
stream, PyTorch and ONNX Runtime copy the output to the host, which waits for the GPU).
Warm-up calls come first and are not timed (lazy allocation, kernel selection, caches, clocks ramping
up). Throughput is images per wall-clock second over the timed calls.
"""

from __future__ import annotations

import time

import numpy as np

from crackseg.edge.backends.base import Runner
from crackseg.edge.bench.config import MeasureConfig
from crackseg.edge.bench.results import LatencyStats, RawResult

__all__ = ["measure_raw", "random_batch"]


def random_batch(shape: tuple[int, int, int, int], seed: int = 0) -> np.ndarray:
    """A fixed float32 input in [-1, 1], the range the spec's normalization (127.5, 127.5) produces."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, shape).astype(np.float32)


def measure_raw(
    runner: Runner, shape: tuple[int, int, int, int], measure: MeasureConfig
) -> tuple[RawResult, list[float]]:
    """Warm up, then time calls of ``runner.infer`` on an input of ``shape`` (NCHW).

    Timing stops after ``measure.iterations`` calls, or else once ``measure.duration_s`` has passed and at
    least ``measure.min_iterations`` calls were made.

    Returns:
        the summary, and every call's latency in seconds (for plots).
    """
    batch = random_batch(shape)
    warmup, start = 0, time.perf_counter()
    while warmup < 1 or time.perf_counter() - start < measure.warmup_s:
        runner.infer(batch)
        warmup += 1
    latencies: list[float] = []
    start = time.perf_counter()
    while True:
        before = time.perf_counter()
        runner.infer(batch)
        after = time.perf_counter()
        latencies.append(after - before)
        if measure.iterations is not None:
            if len(latencies) >= measure.iterations:
                break
        elif len(latencies) >= measure.min_iterations and after - start >= measure.duration_s:
            break
    elapsed = time.perf_counter() - start
    stats = LatencyStats.of_seconds(latencies)
    assert stats is not None  # at least one call was timed
    result = RawResult(shape[0], warmup, len(latencies), elapsed, shape[0] * len(latencies) / elapsed, stats)
    return result, latencies
