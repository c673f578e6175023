"""Soak: the runtime under replayed faults for a while, with every frame accounted for.

Two halves share the budget (``CRACKSEG_SOAK_S`` seconds, 24 by default; set it to 600 for a long soak):

* the pipeline with the bundled model, fed synthetic cracks through a live capture whose stream drops
  and refuses reconnects on a replayed schedule, publishing to ZeroMQ with a subscriber that reads
  two messages a second (it falls behind; the pipeline never waits for it), and recording; stopped
  mid-stream. Every captured frame is published, dropped (newest frame wins) or discarded at the stop,
  and every published frame is recorded;
* ``crackseg run --record`` killed with ``kill -9`` in a loop, appending to one database: after every
  kill the database is intact and each committed row has its mask.
"""

from __future__ import annotations

import itertools
import os
import signal
import sqlite3
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.backends import open_runner
from crackseg.edge.models import bundled_model
from crackseg.edge.runtime.geometry import NativeGeometry
from crackseg.edge.runtime.message import MessageBuilder
from crackseg.edge.runtime.pipeline import Pipeline, PipelineConfig
from crackseg.edge.runtime.postprocess import Postprocessor
from crackseg.edge.runtime.sinks.publish_zmq import ZmqPublisher
from crackseg.edge.runtime.sinks.record import Recorder, load_mask
from crackseg.edge.runtime.sinks.subscribe import Subscriber
from crackseg.edge.runtime.sources.capture import ReconnectPolicy, V4l2Source
from crackseg.edge.runtime.sources.synthetic import CrackSynth
from crackseg.edge.runtime.sources.uri import parse_uri

cv2 = pytest.importorskip("cv2")
pytest.importorskip("onnxruntime")
pytest.importorskip("zmq")

SOAK_S = float(os.environ.get("CRACKSEG_SOAK_S", "24"))
FPS = 30.0
FAULTS = (60, 0, 0, 45, 0, 90, 0, 0, 0, 30)
"""Replayed per open attempt: frames the stream delivers before it drops, 0 for a refused reconnect."""


class FlakyStream:
    """``capture_factory`` of a live source: synthetic frames at ``FPS``, faults replayed from ``FAULTS``."""

    def __init__(self) -> None:
        synth = CrackSynth(96, 64, seed=3)
        self.frames = [cv2.cvtColor(synth.render(i)[0], cv2.COLOR_RGB2BGR) for i in range(16)]
        self.schedule: Iterator[int] = itertools.cycle(FAULTS)
        self.counter = itertools.count()

    def __call__(self) -> _Session:
        return _Session(self, next(self.schedule))


class _Session:
    def __init__(self, stream: FlakyStream, frames: int) -> None:
        self.stream, self.left, self.opened = stream, frames, frames > 0

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def grab(self) -> bool:
        time.sleep(1 / FPS)
        self.left -= 1
        return self.left >= 0

    def retrieve(self) -> tuple[bool, np.ndarray]:
        frames = self.stream.frames
        return True, frames[next(self.stream.counter) % len(frames)]

    def release(self) -> None:
        pass


def _read_slowly(subscriber: Subscriber, stop: threading.Event, frames: list[int]) -> threading.Thread:
    """A controller that reads two messages a second, far below the frame rate; appends the frame ids it got."""

    def read() -> None:
        while not stop.is_set():
            message = subscriber.receive(0.05)
            if message is not None and message.mask is not None:
                frames.append(message.frame_id)
            time.sleep(0.5)

    return threading.Thread(target=read, daemon=True)


@pytest.mark.slow
def test_soak_pipeline_under_stream_faults_and_a_slow_subscriber(tmp_path: Path) -> None:
    source = V4l2Source(
        parse_uri("/dev/video9"), reconnect=ReconnectPolicy(0.05, 0.2), capture_factory=FlakyStream(), source_id="soak"
    )
    stop = threading.Event()
    with (
        open_runner(bundled_model(".onnx"), threads=1) as runner,
        ZmqPublisher("tcp://127.0.0.1:*", sndhwm=2) as publisher,
        Recorder(tmp_path / "soak.db") as recorder,
        Subscriber(publisher.endpoint, rcvhwm=2) as subscriber,
    ):
        heard: list[int] = []
        reader = _read_slowly(subscriber, stop, heard)
        reader.start()
        pipeline = Pipeline(
            source,
            runner,
            NativeGeometry(runner.spec),
            Postprocessor(runner.spec.threshold),
            MessageBuilder(bytes(16)),
            [publisher, recorder],
            PipelineConfig(log_every_s=0),
        )
        threading.Timer(SOAK_S / 2, stop.set).start()
        report = pipeline.run(stop)
        reader.join(5)
    counters = report.metrics.counters
    dropped = sum(v for k, v in counters.items() if k.startswith("dropped_before_"))
    with sqlite3.connect(tmp_path / "soak.db") as con:
        rows = con.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    print(
        f"\nsoak pipeline {report.metrics.elapsed_s:.1f} s: captured {counters['captured']}, published "
        f"{counters['published']}, dropped {dropped}, discarded at stop {counters['discarded_at_stop']}, "
        f"recorded {counters['recorded']} ({rows} rows, {counters.get('record_dropped', 0)} dropped), "
        f"reconnects {counters.get('source_reconnects', 0)}, the slow subscriber read {len(heard)} frames"
    )
    assert report.ended_by == "stopped" and counters["published"] > 0
    assert counters["captured"] == counters["published"] + dropped + counters["discarded_at_stop"]
    assert counters["recorded"] == rows  # counted after the recording's final commit
    assert counters["recorded"] + counters.get("record_dropped", 0) == counters["published"]
    assert counters.get("source_reconnects", 0) >= 2  # the replayed drops and refusals happened
    assert 0 < len(heard) < counters["published"]  # it fell behind; publishing did not wait for it


def _row_count(db: Path) -> int:
    """Rows committed so far (0 while the first run is still creating the database)."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
            return int(con.execute("SELECT COUNT(*) FROM frames").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _rows(db: Path) -> list[tuple[int, str]]:
    """Every recorded row's run and mask, after checking the database's integrity."""
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return [(run, path) for run, path in con.execute("SELECT run_id, mask_path FROM frames")]


@pytest.mark.slow
def test_soak_recording_under_kill_9_in_a_loop(
    tmp_path: Path, endpoint: str, crackseg_command: Callable[..., list[str]]
) -> None:
    db = tmp_path / "flight.db"
    command = crackseg_command(
        "run", "--source", "synthetic://?width=96&height=64&fps=30", "--bind", endpoint, "--record", str(db),
        "--log-every", "0",
    )  # fmt: skip
    rng = np.random.default_rng(0)
    deadline, kills, rows = time.monotonic() + SOAK_S / 2, 0, 0
    while kills < 2 or time.monotonic() < deadline:
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            started = time.monotonic()
            while _row_count(db) <= rows:  # this run has committed a frame (the first one waits for the model)
                assert child.poll() is None and time.monotonic() - started < 90, "the run recorded nothing"
                time.sleep(0.05)
            time.sleep(float(rng.uniform(0.0, 1.5)))  # then mid-run: the writer busy, the WAL not checkpointed
            child.send_signal(signal.SIGKILL)
            child.wait(30)
        finally:
            child.kill()
        kills += 1
        recorded = _rows(db)
        assert len(recorded) > rows and {run for run, _ in recorded} <= set(range(1, kills + 1))
        rows = len(recorded)
    for _, mask_path in recorded:
        assert load_mask(db, mask_path).shape == (64, 96)  # every committed row has its mask
    print(f"\nsoak kill -9: {kills} runs killed, {rows} rows recorded, database intact after each")
    assert rows > 0
