"""Recording: rows and masks round-trip, and survive ``kill -9`` of a running ``crackseg run``."""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.runtime.pose import Attitude, Pose, PoseParts
from crackseg.edge.runtime.sinks.record import Recorder, RecordError, load_mask
from crackseg.edge.runtime.stats import crack_stats
from crackseg.edge.runtime.wire import MaskMessage

pytest.importorskip("cv2")


def _message(frame_id: int, height: int = 12, width: int = 20) -> MaskMessage:
    mask = np.zeros((height, width), bool)
    mask[frame_id % height, : frame_id + 1] = True
    stats = crack_stats(mask)
    return MaskMessage(frame_id + 100, frame_id, "cam", 1000 + frame_id, 2000 + frame_id, bytes(16), 0.5, mask, stats)


def test_every_frame_is_recorded_with_its_mask(tmp_path: Path) -> None:
    db = tmp_path / "rec" / "flight.db"
    with Recorder(db) as recorder:
        for frame_id in range(5):
            recorder.send(_message(frame_id))
        recorder.send(MaskMessage(200, 4, "cam", 0, 0, bytes(16), 0.5))  # heartbeat: not recorded
    assert recorder.written == 5 and recorder.dropped == recorder.errors == 0
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = con.execute("SELECT frame_id, seq, capture_ns, crack_pixels, boxes, mask_path FROM frames").fetchall()
    assert [r[0] for r in rows] == [0, 1, 2, 3, 4]
    for frame_id, seq, capture_ns, crack_pixels, boxes, mask_path in rows:
        original = _message(frame_id)
        assert (seq, capture_ns, crack_pixels) == (frame_id + 100, 1000 + frame_id, frame_id + 1)
        assert json.loads(boxes) == [[0, frame_id % 12, frame_id + 1, 1, frame_id + 1]]
        assert np.array_equal(load_mask(db, mask_path), original.mask)
        assert mask_path.startswith("flight-masks/run0001/")
    assert not list(db.parent.rglob("*.partial"))


def test_flush_waits_until_every_queued_frame_is_committed(tmp_path: Path) -> None:
    with Recorder(tmp_path / "flight.db") as recorder:
        for frame_id in range(40):
            recorder.send(_message(frame_id))
        recorder.flush(timeout_s=30)
        assert recorder.written == 40
        with sqlite3.connect(tmp_path / "flight.db") as con:
            assert con.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 40


def test_a_second_run_appends_into_its_own_folder(tmp_path: Path) -> None:
    db = tmp_path / "flight.db"
    for _ in range(2):
        with Recorder(db) as recorder:
            recorder.send(_message(0))
    with sqlite3.connect(db) as con:
        paths = [r[0] for r in con.execute("SELECT mask_path FROM frames ORDER BY id")]
        assert con.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2
    assert paths == ["flight-masks/run0001/0000000000.png", "flight-masks/run0002/0000000000.png"]


def test_the_pose_and_the_run_info_are_recorded_and_absent_parts_are_null(tmp_path: Path) -> None:
    db = tmp_path / "crawl.db"
    pose = Pose(chainage_m=12.5, attitude=Attitude(1.0, 2.0, 3.0), stale=PoseParts.ATTITUDE, age_ms=700)
    with Recorder(db, run_info={"model": "m.onnx", "threshold": 0.5}) as recorder:
        recorder.send(dataclasses.replace(_message(0), pose=pose))
        recorder.send(dataclasses.replace(_message(1), pose=Pose()))  # a pose source, but no sample yet
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT pose_parts, pose_stale, pose_age_ms, chainage_m, roll_deg, yaw_deg, lat_deg, "
                           "gimbal_yaw_deg FROM frames ORDER BY frame_id").fetchall()  # fmt: skip
        (info,) = con.execute("SELECT info FROM runs").fetchone()
    assert rows == [(10, 2, 700, 12.5, 1.0, 3.0, None, None), (0, 0, 0, None, None, None, None, None)]
    assert json.loads(info) == {"model": "m.onnx", "threshold": 0.5, "thumbnail_px": 480}  # with the recorder's own


def test_a_recording_from_before_the_pose_columns_gets_them(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as con:  # the first schema: no runs.info, no pose columns
        con.executescript(
            "CREATE TABLE runs (id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL);"
            "CREATE TABLE frames (id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, seq INTEGER NOT NULL, "
            "frame_id INTEGER NOT NULL, source_id TEXT NOT NULL, capture_ns INTEGER NOT NULL, publish_ns INTEGER "
            "NOT NULL, model_hash TEXT NOT NULL, threshold REAL NOT NULL, width INTEGER NOT NULL, height INTEGER "
            "NOT NULL, crack_pixels INTEGER NOT NULL, coverage_pct REAL NOT NULL, components INTEGER NOT NULL, "
            "skeleton_px INTEGER NOT NULL, max_width_px REAL NOT NULL, boxes TEXT NOT NULL, mask_path TEXT NOT NULL);"
            "INSERT INTO runs VALUES (1, 0);"
            "INSERT INTO frames VALUES (1, 1, 0, 0, 'cam', 0, 0, '', 0.5, 2, 2, 0, 0, 0, 0, 0, '[]', 'x.png');"
        )
    con.close()
    with Recorder(db) as recorder:
        recorder.send(_message(1))
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT run_id, pose_parts, lat_deg FROM frames ORDER BY id").fetchall()
    assert rows == [(1, None, None), (2, None, None)]


def test_an_unwritable_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(RecordError, match="cannot record to"):
        Recorder(blocker / "flight.db").open()


def test_a_recorder_that_falls_behind_drops_and_counts(tmp_path: Path) -> None:
    recorder = Recorder(tmp_path / "flight.db", queue_size=2)
    for frame_id in range(5):  # not opened yet: nothing drains the queue
        recorder.send(_message(frame_id))
    assert recorder.dropped == 3


def test_recording_survives_kill_9(
    tmp_path: Path, scnet_t_onnx: Path, crackseg_command: Callable[..., list[str]]
) -> None:
    db = tmp_path / "flight.db"
    command = crackseg_command(
        "run", "--model", str(scnet_t_onnx), "--source", "synthetic://?width=64&height=48&fps=0",
        "--bind", "tcp://127.0.0.1:*", "--record", str(db), "--log-every", "0",
    )  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while _row_count(db) < 10:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            assert time.monotonic() < deadline, "no rows recorded"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)  # mid-run: writer busy, WAL not checkpointed
        child.wait(10)
    finally:
        child.kill()
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = con.execute("SELECT frame_id, width, height, crack_pixels, mask_path FROM frames").fetchall()
        cracked = con.execute("SELECT COUNT(*) FROM frames WHERE coverage_pct > 1").fetchone()[0]
    assert len(rows) >= 10
    for _, width, height, crack_pixels, mask_path in rows:
        mask = load_mask(db, mask_path)
        assert mask.shape == (height, width) == (48, 64)
        assert int(mask.sum()) == crack_pixels
    assert 0 < cracked <= len(rows)


def _row_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as con:
            return int(con.execute("SELECT COUNT(*) FROM frames").fetchone()[0])
    except sqlite3.OperationalError:  # created but schema not there yet
        return 0
