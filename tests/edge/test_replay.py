"""The replay backend: a real model's maps, recorded once, returned after the configured latency."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.backends import BackendError, open_runner
from crackseg.edge.models import bundled_model
from crackseg.edge.runtime.geometry import NativeGeometry
from crackseg.edge.runtime.replay import ReplayRunner
from crackseg.edge.runtime.sources import open_source
from crackseg.edge.runtime.sources.memory import MemoryPlayback, read_frames

pytest.importorskip("onnxruntime")
pytest.importorskip("cv2")

LATENCY_S = 0.2


@pytest.fixture
def frames() -> list[np.ndarray]:
    return read_frames(open_source("synthetic://?width=64&height=64&fps=0"), 3)


@pytest.fixture
def model_path() -> Path:
    return bundled_model(".onnx")


def test_replay_returns_the_recorded_maps_after_the_configured_latency(
    frames: list[np.ndarray], model_path: Path
) -> None:
    with open_runner(model_path) as model:
        geometry = NativeGeometry(model.spec)
        batches = [geometry.to_batch(frame) for frame in frames]
        expected = [model.infer(batch) for batch in batches]
        with ReplayRunner(open_runner(model_path), LATENCY_S) as replay:
            replay.record_frames(frames, geometry)
            assert replay.spec == model.spec
            for batch, prob in zip(batches, expected, strict=True):
                start = time.perf_counter()
                replayed = replay.infer(batch)
                assert time.perf_counter() - start >= LATENCY_S
                np.testing.assert_array_equal(replayed, prob)
    assert "replay measurement" in (replay.measurement_note or "")


def test_replay_waits_without_holding_the_gil(frames: list[np.ndarray], model_path: Path) -> None:
    latency_s = 1.0  # long enough that a busy machine's thread start-up cannot pass for holding the GIL
    with ReplayRunner(open_runner(model_path), latency_s) as replay:
        replay.record_frames(frames[:1], NativeGeometry(replay.spec))
        batch = NativeGeometry(replay.spec).to_batch(frames[0])
        threads = [threading.Thread(target=replay.infer, args=(batch,)) for _ in range(4)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert time.perf_counter() - start < 3 * latency_s  # four waits overlapped, not 4 x 1 s in a row


def test_replay_refuses_an_input_it_did_not_record(frames: list[np.ndarray], model_path: Path) -> None:
    with ReplayRunner(open_runner(model_path), 0.0) as replay:
        geometry = NativeGeometry(replay.spec)
        replay.record_frames(frames[:2], geometry)
        with pytest.raises(BackendError, match="no recorded map"):
            replay.infer(geometry.to_batch(frames[2]))


def test_memory_playback_loops_fresh_copies_of_its_frames(frames: list[np.ndarray]) -> None:
    source = MemoryPlayback(frames, open_source("synthetic://?width=64&height=64"))
    with source:
        images = [source.read(1.0) for _ in range(7)]
    assert all(frame is not None for frame in images)
    for index, frame in enumerate(images):
        assert frame is not None and np.array_equal(frame.image, frames[index % 3])
        assert frame.image is not frames[index % 3]
