"""Camera thumbnails (issue 27, item 5): stored with the recording for frames with cracks, a few a second, bounded
in size and backlog, drawn with the overlay in the report's gallery and as each inventory entry's best view; a recording
copied without its masks folder still renders."""

from __future__ import annotations

import itertools
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.cli.main import main
from crackseg.edge.report.inventory import build_inventory
from crackseg.edge.report.page import render_report
from crackseg.edge.report.recording import read_recording
from crackseg.edge.runtime.sinks.record import THUMBNAIL_BACKLOG, Recorder
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.stats import crack_stats
from crackseg.edge.runtime.wire import MaskMessage

cv2 = pytest.importorskip("cv2")

T0 = 1_700_000_000_000_000_000
GREEN = (40, 200, 60)


def _message(i: int, mask: np.ndarray, pose: object = None) -> MaskMessage:
    return MaskMessage(i, i, "cam://", T0 + i * 10**8, T0 + i * 10**8, bytes(16), 0.5, mask, crack_stats(mask),
                       pose=pose)  # type: ignore[arg-type]  # fmt: skip


def _frame(i: int, image: np.ndarray) -> Frame:
    return Frame(image=image, frame_id=i, capture_ns=T0 + i * 10**8, source_id="cam://")


def test_frames_with_cracks_keep_a_bounded_jpeg_of_the_camera_frame(tmp_path: Path) -> None:
    db = tmp_path / "flight.db"
    image = np.full((1080, 1920, 3), GREEN, np.uint8)  # a full-HD camera frame
    with Recorder(db, queue_size=16) as recorder:
        for i in range(4):
            mask = np.zeros((1080, 1920), bool)
            if i % 2:
                mask[500:504, 100:1800] = True
            recorder.send_frame(_frame(i, image), _message(i, mask))
        recorder.flush(10)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT frame_id, thumb_path FROM frames ORDER BY frame_id").fetchall()
    assert [row[1] is None for row in rows] == [True, False, True, False]  # only frames with cracks
    thumb = tmp_path / rows[1][1]
    assert thumb.suffix == ".jpg" and thumb.stat().st_size < 60_000
    decoded = cv2.imread(str(thumb))
    assert decoded.shape == (270, 480, 3)  # the longest side is 480 px, the aspect kept
    assert np.abs(decoded[10, 10].astype(int) - GREEN[::-1]).max() < 8  # the camera's pixels (BGR on disk)


def test_the_images_waiting_for_the_writer_are_bounded(tmp_path: Path) -> None:
    # no writer thread: everything waits; no pacing: every frame asks for a thumbnail
    recorder = Recorder(tmp_path / "never-opened.db", queue_size=64, thumbnail_interval_s=0)
    mask = np.ones((8, 8), bool)
    for i in range(10):
        recorder.send_frame(_frame(i, np.zeros((8, 8, 3), np.uint8)), _message(i, mask))
    assert len(recorder._images) == THUMBNAIL_BACKLOG
    assert recorder.counters()["record_thumbnails_skipped"] == 10 - THUMBNAIL_BACKLOG


def test_a_source_keeps_at_most_one_thumbnail_per_interval_of_capture_time(tmp_path: Path) -> None:
    db = tmp_path / "fast.db"
    mask = np.ones((8, 8), bool)
    image = np.zeros((8, 8, 3), np.uint8)
    with Recorder(db, thumbnail_interval_s=0.2) as recorder:
        for i in range(12):  # two cameras, each at 20 fps: frames 50 ms apart
            for source in ("left://", "right://"):
                frame = Frame(image=image, frame_id=i, capture_ns=T0 + i * 50_000_000, source_id=source)
                message = MaskMessage(i, i, source, frame.capture_ns, frame.capture_ns, bytes(16), 0.5, mask,
                                      crack_stats(mask))  # fmt: skip
                recorder.send_frame(frame, message)
                recorder.flush(10)
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT source_id, frame_id FROM frames WHERE thumb_path IS NOT NULL").fetchall()
        assert con.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 24  # every frame is recorded
    assert sorted(rows) == [(s, i) for s in ("left://", "right://") for i in (0, 4, 8)]  # 200 ms apart, per camera


@pytest.mark.parametrize("what", ["thumbnail", "trace"])
def test_a_negative_pacing_interval_is_refused(tmp_path: Path, what: str) -> None:
    with pytest.raises(ValueError, match=f"the {what} interval must be 0 or positive, got -0.1 s"):
        Recorder(tmp_path / "never-opened.db", **{f"{what}_interval_s": -0.1})  # type: ignore[arg-type]


def test_a_frame_dropped_from_the_recording_does_not_delay_the_next_thumbnail(tmp_path: Path) -> None:
    # no writer thread and room for one queued frame: the second frame is dropped from the recording
    recorder = Recorder(tmp_path / "never-opened.db", queue_size=1, thumbnail_interval_s=0.2)
    mask, image = np.ones((8, 8), bool), np.zeros((8, 8, 3), np.uint8)
    for i in (0, 3):  # 0 ms, kept with its thumbnail; 300 ms, dropped with it
        recorder.send_frame(_frame(i, image), _message(i, mask))
    assert recorder.counters()["record_dropped"] == 1 and list(recorder._images) == [0]
    recorder._queue.get_nowait()  # the writer takes frame 0
    recorder.send_frame(_frame(4, image), _message(4, mask))  # 400 ms after the last thumbnail kept, 100 after the drop
    assert list(recorder._images) == [0, 4]


def test_a_run_with_record_shows_the_camera_pixels_in_the_gallery(tmp_path: Path, endpoint: str) -> None:
    db = tmp_path / "run.db"
    args = ["run", "--source", "synthetic://?width=96&height=64&seed=3&fps=10", "--frames", "6", "--bind", endpoint,
            "--record", str(db), "--log-every", "0", "--threshold", "0.0"]  # fmt: skip  # every pixel a crack
    assert main(args) == 0
    recording = read_recording(db)
    photographed = [f.capture_ns for f in recording.frames if f.thumb_path]
    assert len(photographed) >= 2  # the first frame, and one 200 ms later or more (the last is due 500 ms after)
    assert all(later - earlier >= 200_000_000 for earlier, later in itertools.pairwise(photographed))
    html = render_report(recording, worst=2)
    assert html.count('<img src="data:image/jpeg;base64,') == 2  # photographs first, not masks on grey


def test_the_best_view_of_a_crack_is_one_the_recording_kept_a_photograph_of() -> None:
    from crackseg.edge.runtime.inventory.associate import Inventory
    from crackseg.edge.runtime.inventory.camera import CameraModel
    from crackseg.edge.runtime.inventory.flight import SyntheticFlight

    flight = SyntheticFlight(CameraModel.from_fov(320, 240, 70.0), frames=30)
    unpaced, paced = Inventory(flight.camera), Inventory(flight.camera)
    for f in flight:
        unpaced.add_frame(f.frame_id, f.capture_ns, f.mask, f.pose)
        paced.add_frame(f.frame_id, f.capture_ns, f.mask, f.pose, photographed=f.frame_id % 5 == 0)
    assert len(paced.entries) == len(unpaced.entries) == 4
    moved = 0
    for entry, reference in zip(paced.entries, unpaced.entries, strict=True):
        assert entry.best is not None and reference.best is not None
        assert entry.best.photographed and entry.best.frame_id % 5 == 0
        moved += entry.best.frame_id != reference.best.frame_id
    assert moved  # the preference changed a best view: without it, these would be the unpaced ones


def test_each_inventory_entry_links_to_its_best_view_with_the_camera_pixels(tmp_path: Path) -> None:
    from crackseg.edge.runtime.inventory.camera import CameraModel
    from crackseg.edge.runtime.inventory.flight import SyntheticFlight

    flight = SyntheticFlight(CameraModel.from_fov(320, 240, 70.0), frames=30)
    db = tmp_path / "flight.db"
    info = {"model": "m.onnx", "threshold": 0.5, "camera": {"hfov_deg": 70.0}}
    with Recorder(db, queue_size=64, run_info=info) as recorder:
        for f in flight:
            recorder.send_frame(_frame(f.frame_id, f.image), _message(f.frame_id, f.mask, f.pose))
            recorder.flush(10)  # one at a time: the thumbnail backlog never fills
    recording = read_recording(db)
    inventory = build_inventory(recording)
    assert inventory is not None and inventory.entries
    html = render_report(recording, worst=0, inventory=inventory)
    for entry in inventory.entries:
        assert f'<a href="#crack-{entry.id}">' in html and f'<figure id="crack-{entry.id}">' in html
    views = re.findall(r'<figure id="crack-\d+"><img src="data:image/jpeg;base64,', html)
    assert len(views) == len(inventory.entries)
    assert ".views figure:target { display: block; }" in html


def test_a_recording_copied_without_its_masks_renders_without_the_gallery(tmp_path: Path) -> None:
    db = tmp_path / "flight.db"
    with Recorder(db, run_info={"model": "m.onnx", "camera": {"hfov_deg": 70.0}}) as recorder:
        for i in range(3):
            recorder.send(_message(i, np.ones((16, 16), bool)))
    copy = tmp_path / "copy" / "flight.db"
    copy.parent.mkdir()
    shutil.copy(db, copy)  # the database alone, as an e-mail attachment
    assert main(["report", str(copy)]) == 0
    html = copy.with_suffix(".html").read_text()
    assert "masks of this recording are missing" in html and "flight-masks" in html
    assert "<img " not in html and html.count('<tr id="frame-') == 3
    assert "the recording's masks are missing: no inventory" in html


def test_the_best_views_the_page_embeds_stay_within_their_budget_longest_cracks_first(tmp_path: Path) -> None:
    """The page of a long survey stays bounded (docs/inspection.md: 1,000 frames, 200 cracks): past the budget a
    crack's figure names its best frame instead of embedding it."""
    from crackseg.edge.report.inventory import VIEWS_BUDGET_BYTES, inventory_table
    from crackseg.edge.runtime.inventory.camera import CameraModel
    from crackseg.edge.runtime.inventory.flight import SyntheticFlight
    from crackseg.edge.runtime.inventory.formats import inventory_rows

    flight = SyntheticFlight(CameraModel.from_fov(320, 240, 70.0), frames=30)
    db = tmp_path / "flight.db"
    with Recorder(db, queue_size=64, run_info={"model": "m.onnx", "camera": {"hfov_deg": 70.0}}) as recorder:
        for f in flight:
            recorder.send_frame(_frame(f.frame_id, f.image), _message(f.frame_id, f.mask, f.pose))
            recorder.flush(10)
    recording = read_recording(db)
    inventory = build_inventory(recording)
    assert inventory is not None and len(inventory.entries) == 4
    everything = inventory_table(inventory, recording)
    sizes = {
        int(crack): len(view) for crack, view in re.findall(r'<figure id="crack-(\d+)"><img src="([^"]+)"', everything)
    }
    assert len(sizes) == 4 and sum(sizes.values()) <= VIEWS_BUDGET_BYTES
    longest = [row.id for row in sorted(inventory_rows(inventory), key=lambda row: -row.length_m)]
    budget = sizes[longest[0]] + sizes[longest[1]]  # room for the two longest cracks' views, not the third's
    bounded = inventory_table(inventory, recording, budget_bytes=budget)
    embedded = re.findall(r'<figure id="crack-(\d+)"><img src="([^"]+)"', bounded)
    assert sum(len(view) for _, view in embedded) <= budget
    assert [int(crack) for crack, _ in embedded] == sorted(longest[:2])  # in the table's order
    assert bounded.count("not embedded, the page keeps at most") == 2
    assert all(f'<figure id="crack-{entry.id}">' in bounded for entry in inventory.entries)  # every link lands
