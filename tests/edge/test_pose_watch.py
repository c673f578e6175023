"""Live pose health (issue 27, item 8 and defect 4): warnings when pose samples never start, stop and return,
and the tagged / stale / missing counts in the metrics and the run summary."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import pytest

from crackseg.edge.cli.main import main
from crackseg.edge.runtime.pose import GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.pose.track import PoseTrack
from crackseg.edge.runtime.pose.watch import PoseWatch


class FakeFeed:
    """A pose input whose samples the test makes: ``sample()`` stamps one now (or at a given time)."""

    feed_name = "fake autopilot"

    def __init__(self) -> None:
        self.last_sample_s: float | None = None

    def sample(self, at_s: float | None = None) -> None:
        self.last_sample_s = time.monotonic() if at_s is None else at_s


def test_silence_from_the_start_mid_run_and_the_return_are_each_warned_once() -> None:
    feed = FakeFeed()
    watch = PoseWatch([feed], silence_s=1.0, clock=lambda: 100.0)  # not opened: the test is its thread
    assert watch.check(100.9) == []
    (never,) = watch.check(101.0)
    assert "no pose sample from fake autopilot in the first 1.0 s" in never
    assert watch.check(101.5) == []  # once, not at every poll
    feed.sample(101.6)
    (back,) = watch.check(101.7)
    assert back == "pose samples from fake autopilot returned after 1.6 s without"
    feed.sample(102.0)
    assert watch.check(102.9) == []
    (stopped,) = watch.check(103.0)
    assert "pose samples from fake autopilot stopped 1.0 s ago" in stopped
    assert watch.check(110.0) == []
    feed.sample(110.5)
    (back,) = watch.check(110.6)
    assert "returned after 8.5 s" in back


def test_the_watch_thread_warns_of_a_silent_feed_and_of_its_return(caplog: pytest.LogCaptureFixture) -> None:
    feed = FakeFeed()

    def warned(words: str) -> bool:
        return any(words in record.getMessage() for record in caplog.records)

    def wait_for(words: str) -> None:
        deadline = time.monotonic() + 20  # generous: a loaded machine may be slow to schedule the thread
        while not warned(words) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert warned(words), words

    stop = threading.Event()
    with caplog.at_level(logging.WARNING), PoseWatch([feed], silence_s=0.2, poll_s=0.02):
        wait_for("no pose sample from fake autopilot")

        def source() -> None:
            while not stop.wait(0.01):
                feed.sample()

        thread = threading.Thread(target=source, daemon=True)
        thread.start()
        try:
            wait_for("returned after")
        finally:
            stop.set()
            thread.join()
        wait_for("stopped")
    assert warned("pose samples were missing 2 time(s)")


def test_published_frames_are_counted_tagged_stale_or_missing() -> None:
    from crackseg.edge.runtime.pipeline import _pose_counter

    here = GeoPosition(47.0, 8.0, 500.0, 30.0)
    assert _pose_counter(Pose()) == "pose_missing"
    assert _pose_counter(Pose(position=here)) == "pose_tagged"
    assert _pose_counter(Pose(position=here, stale=PoseParts.POSITION, age_ms=900)) == "pose_stale"


def test_the_metrics_line_and_the_run_summary_carry_the_pose_counts(
    endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    pytest.importorskip("pymavlink")
    from crackseg.edge.bench.autopilot import LoopbackAutopilot

    silent = LoopbackAutopilot()  # never opened: nothing is sent to its URL
    args = ["run", "--source", "synthetic://?width=64&height=48&fps=20&pace=file", "--frames", "60",
            "--bind", endpoint, "--log-every", "0.5", "--mavlink", silent.url]  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    messages = [record.getMessage() for record in caplog.records]
    summary = next(m for m in reversed(messages) if "after" in m and "fps" in m)
    assert "pose_missing=60" in summary and "pose_tagged" not in summary
    periodic = [m for m in messages if "fps |" in m and m != summary]
    assert any("pose_missing=" in m for m in periodic)
    assert any("no pose sample from MAVLink" in m for m in messages)  # the run lasts 3 s: warned during it


def test_a_stale_track_counts_stale() -> None:
    track = PoseTrack(max_age_s=0.5)
    track.add(PoseParts.POSITION, 0, (47.0, 8.0, 500.0, 30.0))
    from crackseg.edge.runtime.pipeline import _pose_counter

    assert _pose_counter(track.at(int(0.4e9))) == "pose_tagged"
    assert _pose_counter(track.at(int(2e9))) == "pose_stale"
