"""``crackseg report``: the HTML page and the GeoJSON of a recording, their speed, and the page in a real browser."""

from __future__ import annotations

import base64
import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.cli.main import main
from crackseg.edge.report.geojson import detections_geojson
from crackseg.edge.report.page import render_report, worst_frames
from crackseg.edge.report.recording import read_recording
from crackseg.edge.runtime.pose import Attitude, GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.sinks.record import Recorder
from crackseg.edge.runtime.stats import crack_stats
from crackseg.edge.runtime.wire import MaskMessage

cv2 = pytest.importorskip("cv2")

T0 = 1_700_000_000_000_000_000


def _pose(i: int, kind: str) -> Pose | None:
    if kind == "drone":
        stale = PoseParts.POSITION if i % 10 == 9 else PoseParts(0)
        return Pose(position=GeoPosition(47.0 + i * 1e-5, 8.0 + (i % 50) * 1e-5, 500.0, 30.0),
                    attitude=Attitude(0.0, 0.0, 90.0), stale=stale, age_ms=900 if stale else 20)  # fmt: skip
    if kind == "crawler-silent":
        return Pose()
    if kind == "crawler":
        return Pose(chainage_m=i * 0.05) if i % 7 else Pose()  # every 7th frame: no sample yet (missing)
    return None


def _record(db: Path, frames: int, kind: str, size: int = 32, **info: str) -> None:
    """A recording written by the real recorder: a crack every third frame, growing with the frame index."""
    run_info = {"model": "m.onnx", "arch": "scnet-t", "threshold": 0.5, "versions": {"crackseg": "0.1.0"}, **info}
    with Recorder(db, queue_size=frames + 1, run_info=run_info) as recorder:
        for i in range(frames):
            mask = np.zeros((size, size), bool)
            if i % 3 == 0:
                mask[size // 2, : 1 + i % size] = True
            message = MaskMessage(i, i, "synthetic://", T0 + i * 33_000_000, T0 + i * 33_000_000, bytes(16), 0.5,
                                  mask, crack_stats(mask), pose=_pose(i, kind))  # fmt: skip
            recorder.send(message)


def test_the_report_shows_the_run_the_map_the_worst_frames_and_every_frame(tmp_path: Path) -> None:
    db = tmp_path / "flight.db"
    _record(db, 60, "drone")
    recording = read_recording(db)
    worst = worst_frames(recording.frames, 4)
    assert [f.frame_id for f in worst] == [30, 27, 57, 24]  # most coverage first: cracks of 31, 28, 26, 25 px
    html = render_report(recording, worst=4)
    assert "m.onnx (scnet-t)" in html and "crackseg 0.1.0" in html and "threshold" in html
    assert html.count("<img ") == 4 and html.count('<tr id="frame-') == 60
    discs = re.findall(r'<a href="#frame-\d+"><circle', html)
    assert len(discs) == 18  # one per frame with cracks, but frames 9 and 39 held a stale fix
    assert "pose: 54 current, 6 stale, 0 missing" in html
    assert "2 detections with a stale position not placed" in html
    assert re.search(r'<a href="#frame-30"><img src="data:image/png;base64,', html)


def test_the_report_says_how_the_statistics_were_measured(tmp_path: Path) -> None:
    _record(tmp_path / "before.db", 3, "none")  # recordings made before --stats existed: always exact
    _record(tmp_path / "fast.db", 3, "none", stats="fast")
    assert "<dt>statistics</dt><dd>exact</dd>" in render_report(read_recording(tmp_path / "before.db"))
    fast = render_report(read_recording(tmp_path / "fast.db"))
    assert "<dt>statistics</dt><dd>fast: skeleton length and width estimated" in fast


def test_the_geojson_holds_each_detection_at_its_position(tmp_path: Path) -> None:
    db = tmp_path / "flight.db"
    _record(db, 30, "drone")
    assert main(["report", str(db)]) == 0
    collection = json.loads(db.with_suffix(".geojson").read_text())
    features = collection["features"]
    assert [f["properties"]["frame_id"] for f in features] == list(range(0, 30, 3))
    first = features[2]["geometry"]
    assert first["type"] == "Point" and first["coordinates"] == pytest.approx([8.0 + 6e-5, 47.0 + 6e-5, 500.0])
    assert features[2]["properties"]["time"] == "2023-11-14T22:13:20.198Z"
    # frame 9 held a stale fix: counted, never placed as if it were there (issue 27, defect 5)
    assert features[3]["geometry"] is None and features[3]["properties"]["pose_stale"] == ["position"]
    assert features[3]["properties"]["position_stale"] is True and features[2]["properties"]["position_stale"] is False
    assert db.with_suffix(".html").read_text().startswith("<!DOCTYPE html>")


def test_a_crawler_run_is_mapped_by_chainage_and_missing_pose_is_flagged(tmp_path: Path) -> None:
    db = tmp_path / "crawl.db"
    _record(db, 30, "crawler")
    recording = read_recording(db)
    html = render_report(recording)
    assert "chainage 0.05..1.45 m" in html  # frames 0, 7, 14, ... had no pose: not on the chainage axis
    assert "missing" in html and "pose: 25 current, 0 stale, 5 missing" in html
    features = detections_geojson(recording)["features"]
    assert all(f["geometry"] is None for f in features)
    assert features[1]["properties"]["chainage_m"] == pytest.approx(0.15)


def test_a_run_whose_pose_input_sent_nothing_says_so_not_to_use_one(tmp_path: Path) -> None:
    db = tmp_path / "silent.db"
    _record(db, 6, "crawler-silent", mavlink="udpin:0.0.0.0:14550")
    html = render_report(read_recording(db))
    assert "run with --mavlink" not in html  # issue 27, defect 7
    assert "The run used --mavlink udpin:0.0.0.0:14550, but no position or chainage was received" in html


def test_a_run_without_pose_says_so_and_a_bad_file_is_a_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "plain.db"
    _record(db, 6, "none")
    html = render_report(read_recording(db))
    assert "No position or chainage was recorded" in html and "no pose source was configured" in html
    (tmp_path / "junk.db").write_text("not sqlite")
    for path, message in ((tmp_path / "absent.db", "does not exist"), (tmp_path / "junk.db", "not a crackseg")):
        with pytest.raises(Exception, match=message):
            read_recording(path)


def test_ten_thousand_frames_render_in_under_30_seconds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "long.db"
    _record(db, 10_000, "drone", size=16)
    started = time.perf_counter()
    with caplog.at_level(logging.INFO):
        assert main(["report", str(db)]) == 0
    elapsed = time.perf_counter() - started
    print(f"\nreport of 10,000 frames: {elapsed:.2f} s, {db.with_suffix('.html').stat().st_size / 1e6:.1f} MB")
    assert elapsed < 30


def _record_flight(db: Path, frames: int = 30, lost: range = range(12, 17)) -> None:
    """A synthetic survey flight through the real recorder, with camera thumbnails and a camera model; the
    frames in ``lost`` held a stale fix (the link dropped)."""
    import dataclasses

    from crackseg.edge.bench.survey import record_frames
    from crackseg.edge.runtime.inventory.camera import CameraModel
    from crackseg.edge.runtime.inventory.flight import FlightFrame, SyntheticFlight

    flight = SyntheticFlight(CameraModel.from_fov(320, 240, 70.0), frames=frames)
    info = {"model": "m.onnx", "arch": "scnet-t", "threshold": 0.5, "camera": {"hfov_deg": 70.0},
            "mavlink": "udpin:0.0.0.0:14550"}  # fmt: skip

    def held(f: FlightFrame) -> FlightFrame:
        return dataclasses.replace(f, pose=dataclasses.replace(f.pose, stale=PoseParts.POSITION, age_ms=1500))

    record_frames(db, (held(f) if f.frame_id in lost else f for f in flight), info)


def test_the_map_has_a_scale_bar_a_north_arrow_a_legend_and_cracks_as_lines(tmp_path: Path) -> None:
    from crackseg.edge.report.inventory import build_inventory

    db = tmp_path / "flight.db"
    _record_flight(db)
    recording = read_recording(db)
    inventory = build_inventory(recording)
    assert inventory is not None
    html = render_report(recording, worst=2, inventory=inventory)
    crack_map = html[html.index("<h2>Map of crack detections</h2>") : html.index("<h2>Coverage timeline</h2>")]
    for part in ('class="scale-bar"', 'class="north-arrow"', 'class="legend"', "vehicle track", "crack (inventory)"):
        assert part in crack_map, part
    assert crack_map.count('<polyline class="crack"') == len(inventory.entries) > 0
    assert re.search(r'class="scale-bar">.*?>\d+ m</text>', crack_map)
    timeline = html[html.index("<h2>Coverage timeline</h2>") :]
    assert timeline.count('class="pose-lost"') == 1 and "shaded: pose lost (1 time(s), " in timeline


def test_the_longest_nice_scale_bar_fits_a_fifth_of_the_map() -> None:
    from crackseg.edge.report.svg import _nice_length

    assert [_nice_length(m) for m in (0.9, 1.0, 3.7, 19.9, 74.0, 1234.0)] == [0.5, 1.0, 2.0, 10.0, 50.0, 1000.0]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="Chromium is not installed (Debian: apt-get install chromium)")
def test_the_report_renders_in_headless_chromium_without_console_errors(tmp_path: Path) -> None:
    db = tmp_path / "flight.db"
    _record_flight(db)
    assert main(["report", str(db), "--worst", "3"]) == 0
    html = db.with_suffix(".html").read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", html)  # self-contained: nothing to fetch
    page = db.with_suffix(".html").resolve().as_uri() + "#crack-1"  # as after clicking crack 1 in the table
    flags = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,2400",
             "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}",
             "--enable-logging=stderr", "--v=0"]  # fmt: skip
    shot = tmp_path / "report.png"

    def browse(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*flags, *args], capture_output=True, text=True, timeout=120, check=False)

    run = browse(f"--screenshot={shot}", page)
    assert run.returncode == 0, run.stderr[-2000:]
    dumped = browse("--dump-dom", page)
    console = [line for line in (run.stderr + dumped.stderr).splitlines() if ":CONSOLE" in line]
    assert console == []  # Chromium logs every console message and uncaught error of the page this way
    dom = dumped.stdout
    assert "Map of crack detections" in dom and "Worst frames" in dom and 'class="north-arrow"' in dom
    assert dom.count('<polyline class="crack"') >= 1 and 'class="pose-lost"' in dom
    by_length = browse("--dump-dom", db.with_suffix(".html").resolve().as_uri() + "?sort=length_m-desc")
    assert [line for line in by_length.stderr.splitlines() if ":CONSOLE" in line] == []
    table = by_length.stdout[by_length.stdout.index('id="inventory"') :]
    table = table[: table.index("</table>")]
    lengths = [float(x) for x in re.findall(r'<tr><td data-sort="\d+">.*?</td><td data-sort="([^"]+)"', table)]
    assert len(lengths) >= 2 and lengths == sorted(lengths, reverse=True)  # the script sorted the table
    assert 'data-sorted="length_m-desc"' in table
    image = cv2.imread(str(shot))
    print(f"\nscreenshot: {shot}")
    assert image is not None and image.shape[:2] == (2400, 1280)
    blue, green, red = (image[..., c].astype(int) for c in range(3))
    assert ((red > 180) & (green < 80) & (blue < 80)).sum() > 200  # the red detections of the map were painted


@pytest.mark.parametrize("name", ["run #3.db", "a?b.db", "100%.db"])
def test_a_recording_whose_name_has_uri_characters_reads_and_leaves_no_stray_file(tmp_path: Path, name: str) -> None:
    _record(tmp_path / name, 3, "none")
    before = {p.name for p in tmp_path.iterdir()}
    assert len(read_recording(tmp_path / name).frames) == 3
    stray = {p.name for p in tmp_path.iterdir()} - before - {f"{name}-wal", f"{name}-shm"}  # WAL reads add those
    assert not stray  # SQLite opened this file, not one named by the text before '#' or '?'


def test_a_recording_without_frames_never_reads_as_a_clean_structure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "empty.db"
    _record(db, 0, "drone")  # the camera never delivered
    html = render_report(read_recording(db))
    assert "No cracks detected" not in html and "No frames were recorded" in html
    assert "<dt>threshold</dt><dd>0.500</dd>" in html  # from the run's description, not "?"
    assert main(["report", str(db)]) == 1  # the page is written, and the command fails
    assert "no frames" in capsys.readouterr().err and "No frames were recorded" in db.with_suffix(".html").read_text()


def test_the_report_names_the_run_it_picked_when_the_recording_holds_several(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "flight.db"
    _record(db, 3, "none")
    _record(db, 4, "none")
    with caplog.at_level(logging.INFO):
        assert main(["report", str(db)]) == 0
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "holds 2 runs (1, 2); reporting the last, run 2, started " in warning and "--run ID" in warning
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert main(["report", str(db), "--run", "1"]) == 0
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_the_mcap_file_reads_back_with_foxglove_schemas_images_annotations_and_fixes(tmp_path: Path) -> None:
    pytest.importorskip("mcap")
    from mcap.reader import make_reader

    db = tmp_path / "flight.db"
    _record_flight(db, lost=range(12, 17))
    assert main(["report", str(db)]) == 0
    recording = read_recording(db)
    placed = sum(f.position_placed for f in recording.frames)
    cracked = [f for f in recording.frames if f.crack_pixels]
    with db.with_suffix(".mcap").open("rb") as stream:
        reader = make_reader(stream)
        schemas = {c.topic: reader.get_summary().schemas[c.schema_id] for c in reader.get_summary().channels.values()}
        messages: dict[str, list[dict[str, object]]] = {}
        for _, channel, message in reader.iter_messages():
            messages.setdefault(channel.topic, []).append(json.loads(message.data))
    assert {topic: s.name for topic, s in schemas.items()} == {
        "/camera/image": "foxglove.CompressedImage", "/camera/cracks": "foxglove.ImageAnnotations",
        "/vehicle/fix": "foxglove.LocationFix", "/inventory": "foxglove.GeoJSON",
    }  # fmt: skip
    assert all(s.encoding == "jsonschema" for s in schemas.values())
    assert len(messages["/vehicle/fix"]) == placed == len(recording.frames) - 5  # stale fixes are not fixes
    assert len(messages["/camera/image"]) == len(messages["/camera/cracks"]) == len(cracked)
    image = messages["/camera/image"][0]
    jpeg = np.frombuffer(base64.b64decode(str(image["data"])), np.uint8)
    assert image["format"] == "jpeg" and cv2.imdecode(jpeg, cv2.IMREAD_COLOR) is not None
    boxes = messages["/camera/cracks"][0]["points"]
    assert isinstance(boxes, list) and boxes and len(boxes[0]["points"]) == 4
    (inventory,) = messages["/inventory"]
    assert json.loads(str(inventory["geojson"]))["type"] == "FeatureCollection"


def test_mcap_crack_boxes_are_drawn_in_the_thumbnails_pixels(tmp_path: Path) -> None:
    """A thumbnail smaller than the frame: the recording keeps its size limit, and the boxes scale with it."""
    pytest.importorskip("mcap")
    from mcap.reader import make_reader

    from crackseg.edge.bench.survey import record_frames
    from crackseg.edge.report.views import stats_of
    from crackseg.edge.runtime.inventory.camera import CameraModel
    from crackseg.edge.runtime.inventory.flight import SyntheticFlight

    db = tmp_path / "small.db"
    flight = SyntheticFlight(CameraModel.from_fov(320, 240, 70.0), frames=4)
    record_frames(db, flight, {"model": "m.onnx"}, thumbnail_px=160)
    recording = read_recording(db)
    assert recording.info["thumbnail_px"] == 160
    assert main(["report", str(db)]) == 0
    with db.with_suffix(".mcap").open("rb") as stream:
        messages: dict[str, list[dict[str, object]]] = {}
        for _, channel, message in make_reader(stream).iter_messages():
            messages.setdefault(channel.topic, []).append(json.loads(message.data))
    cracked = [f for f in recording.frames if f.crack_pixels]
    assert len(messages["/camera/image"]) == len(cracked) >= 2  # frames 500 ms apart: every one keeps its thumbnail
    for frame, image, drawn in zip(cracked, messages["/camera/image"], messages["/camera/cracks"], strict=True):
        jpeg = np.frombuffer(base64.b64decode(str(image["data"])), np.uint8)
        assert cv2.imdecode(jpeg, cv2.IMREAD_COLOR).shape == (120, 160, 3)
        box = stats_of(frame).boxes[0]
        corners = drawn["points"][0]["points"]  # type: ignore[index]
        assert corners[0] == {"x": box.x / 2, "y": box.y / 2}
        assert corners[2] == {"x": (box.x + box.w) / 2, "y": (box.y + box.h) / 2}
