"""The crack inventory: camera model, ground projection, measurement, association, and a synthetic flight's truth."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.bench.survey import record_survey, survey_flight
from crackseg.edge.report.inventory import FRAMES_PER_TASK, build_inventory
from crackseg.edge.report.recording import read_recording
from crackseg.edge.runtime.inventory.associate import Inventory, overlap
from crackseg.edge.runtime.inventory.camera import CameraError, CameraModel, read_camera
from crackseg.edge.runtime.inventory.flight import SyntheticFlight
from crackseg.edge.runtime.inventory.formats import (
    CSV_COLUMNS,
    inventory_csv,
    inventory_geojson,
    inventory_kml,
    iso_time,
)
from crackseg.edge.runtime.inventory.ground import TangentPlane, camera_pose, ground_points, height_above_ground
from crackseg.edge.runtime.inventory.measure import MIN_CRACK_PIXELS, load_traces, trace_cracks
from crackseg.edge.runtime.pose import Attitude, GeoPosition, Pose
from crackseg.edge.runtime.sinks.record import Recorder
from crackseg.edge.runtime.stats import crack_stats
from crackseg.edge.runtime.wire import MaskMessage

cv2 = pytest.importorskip("cv2")

ROS_CAMERA_INFO = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [554.3, 0.0, 319.5, 0.0, 554.3, 239.5, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.08, 0.02, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
"""
CAMERA = CameraModel(640, 480, (554.3, 0.0, 319.5, 0.0, 554.3, 239.5, 0.0, 0.0, 1.0), (-0.08, 0.02, 0.0, 0.0, 0.0))


# --- camera model ------------------------------------------------------------------------------------


def test_a_field_of_view_gives_the_pinhole_focal_length() -> None:
    camera = CameraModel.from_fov(640, 480, 90.0)  # f = (640 / 2) / tan(45 deg) = 320
    assert camera.k == pytest.approx((320, 0, 320, 0, 320, 240, 0, 0, 1))
    with pytest.raises(CameraError, match="field of view"):
        CameraModel.from_fov(640, 480, 180.0)


def test_ros_camera_info_and_opencv_calibration_files_read_as_the_same_camera(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    ros = tmp_path / "camera_info.yaml"
    ros.write_text(ROS_CAMERA_INFO)
    assert read_camera(ros) == CAMERA
    opencv = tmp_path / "calibration.yml"
    storage = cv2.FileStorage(str(opencv), cv2.FILE_STORAGE_WRITE)
    storage.write("image_width", 640)
    storage.write("image_height", 480)
    storage.write("camera_matrix", CAMERA.matrix)
    storage.write("distortion_coefficients", CAMERA.coefficients.reshape(1, -1))
    storage.release()
    assert read_camera(opencv) == CAMERA
    assert CameraModel.from_dict(json.loads(json.dumps(CAMERA.to_dict()))) == CAMERA  # as recorded with a run


def test_a_file_that_is_no_camera_is_one_camera_error(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_width: 640\n")
    with pytest.raises(CameraError, match="not a camera_info file"):
        read_camera(bad)
    with pytest.raises(CameraError, match="cannot read"):
        read_camera(tmp_path / "missing.yaml")


@pytest.mark.parametrize("distortion_model, coefficients", [("plumb_bob", (-0.2, 0.05, 0.001, -0.001, 0.0)),
                                                            ("equidistant", (0.1, 0.01, 0.0, 0.0))])  # fmt: skip
def test_rays_invert_the_forward_model(distortion_model: str, coefficients: tuple[float, ...]) -> None:
    camera = CameraModel(640, 480, (500, 0, 320, 0, 500, 240, 0, 0, 1), coefficients, distortion_model)
    pixels = np.array([[0.0, 0.0], [639.0, 479.0], [320.0, 240.0], [100.0, 400.0]])
    assert camera.project(camera.rays(pixels)) == pytest.approx(pixels, abs=1e-4)


def test_a_smaller_recording_scales_the_camera() -> None:
    half = CameraModel.from_fov(640, 480, 90.0).for_size(320, 240)
    assert half.k == pytest.approx((160, 0, 159.75, 0, 160, 119.75, 0, 0, 1))  # pixel centres stay put


# --- ground ------------------------------------------------------------------------------------------


def test_the_tangent_plane_has_the_wgs84_degree_lengths() -> None:
    plane = TangentPlane(45.0, 8.0)  # at 45 deg: 1 deg of latitude 111132.95 m, of longitude 78846.8 m (WGS84)
    north, east = plane.to_ne(45.001, 8.001)[0]
    assert north == pytest.approx(111.13295, abs=2e-3) and east == pytest.approx(78.8468, abs=2e-3)
    assert plane.to_lonlat(np.array([[north, east]]))[0] == pytest.approx([8.001, 45.001], abs=1e-12)


def _pose(yaw: float, gimbal: Attitude | None = None, rel_alt: float = 30.0) -> Pose:
    return Pose(position=GeoPosition(45.0, 8.0, 530.0, rel_alt), attitude=Attitude(0.0, 0.0, yaw), gimbal=gimbal)


def _ground(pose: Pose, *pixels: tuple[float, float]) -> np.ndarray:
    camera = CameraModel.from_fov(640, 480, 90.0)  # f = 320: a pixel 320 right of centre is 45 deg off the axis
    where = camera_pose(pose, camera, TangentPlane(45.0, 8.0))
    assert where is not None
    return ground_points(camera, where, np.array(pixels, np.float64))


def test_a_nadir_camera_sees_the_nose_at_the_image_top_and_the_right_wing_at_its_right() -> None:
    # at 30 m, 45 deg off the axis is 30 m away; yaw 0: top = north, right = east
    centre, right, top = _ground(_pose(0.0), (320, 240), (640, 240), (320, 0))
    assert centre == pytest.approx([0, 0], abs=1e-9)
    assert right == pytest.approx([0, 30]) and top == pytest.approx([22.5, 0])  # 240 px up: tan = 0.75
    right_east = _ground(_pose(90.0), (640, 240))[0]  # heading east: the right wing points south
    assert right_east == pytest.approx([-30, 0], abs=1e-9)


def test_a_gimbal_pitched_down_45_degrees_looks_ahead_at_its_height() -> None:
    centre = _ground(_pose(90.0, Attitude(0.0, -45.0, 0.0)), (320, 240))[0]  # yaw relative to the heading
    assert centre == pytest.approx([0, 30], abs=1e-9)
    assert np.isnan(_ground(_pose(0.0, Attitude(0.0, 0.0, 0.0)), (320, 100))).all()  # above the horizon


def test_height_comes_from_a_rangefinder_corrected_for_tilt_else_from_the_altitude_above_home() -> None:
    tilted = Pose(position=GeoPosition(45.0, 8.0, 530.0, 30.0), attitude=Attitude(60.0, 0.0, 0.0))
    assert height_above_ground(tilted, rangefinder_m=10.0) == pytest.approx(5.0)  # cos 60 deg = 0.5
    assert height_above_ground(tilted) == 30.0
    assert height_above_ground(Pose()) is None


# --- measurement and association ---------------------------------------------------------------------


def test_a_one_pixel_line_of_n_pixels_is_n_long_and_one_wide() -> None:
    mask = np.zeros((40, 80), bool)
    mask[20, 10:60] = True
    (trace,) = trace_cracks(mask)
    assert trace.length_px == pytest.approx(50.0) and trace.max_width_px == 1.0 and trace.pixels == 50
    assert not trace.touches_border


def test_a_diagonal_bar_measures_its_euclidean_length_not_its_staircase() -> None:
    mask = np.zeros((200, 300), np.uint8)
    cv2.line(mask, (20, 30), (250, 125), 1, 1)  # 22.5 deg-ish: an 8-connected chain reads ~8 % long
    (trace,) = trace_cracks(mask.astype(bool))
    assert trace.length_px == pytest.approx(math.hypot(230, 95) + 1, rel=0.01)


def test_overlap_is_the_larger_fraction_of_either_line_near_the_other() -> None:
    whole = np.array([[0.0, 0.0], [0.0, 10.0]])
    part = np.array([[0.0, 0.0], [0.0, 4.0]])
    crossing = np.array([[-5.0, 5.0], [5.0, 5.0]])
    assert overlap(part, whole, 0.2) == 1.0  # a crack entering the frame joins the whole
    assert overlap(crossing, whole, 0.2) == pytest.approx(5 / 101, abs=0.02)  # only near the crossing


# --- the synthetic flight: measured against truth ----------------------------------------------------


def _fly(flight: SyntheticFlight) -> Inventory:
    inventory = Inventory(flight.camera)
    for frame in flight:
        inventory.add_frame(frame.frame_id, frame.capture_ns, frame.mask, frame.pose)
    return inventory


def _distance_to(points: np.ndarray, line: np.ndarray) -> np.ndarray:
    a, b = line[:-1], line[1:]
    t = np.clip(((points[:, None] - a) * (b - a)).sum(2) / ((b - a) ** 2).sum(1), 0, 1)
    return np.linalg.norm(points[:, None] - (a + t[..., None] * (b - a)), axis=2).min(1)  # type: ignore[no-any-return]


FLIGHTS = {
    "nadir, wobbling, lens distortion": SyntheticFlight(CAMERA),
    "gimbal 60 deg down, heading 20 deg": SyntheticFlight(
        CAMERA, heading_deg=20.0, start_ne=(-35.0, -12.0), frames=45, gimbal=Attitude(0.0, -60.0, 0.0)
    ),
}


@pytest.mark.parametrize("name", FLIGHTS)
def test_a_synthetic_flight_at_30_m_puts_each_crack_once_where_it_is_and_as_long_as_it_is(name: str) -> None:
    flight = FLIGHTS[name]
    inventory = _fly(flight)
    assert len(inventory.entries) == len(flight.cracks), "exactly one entry per physical crack"
    rows = inventory_geojson(inventory)["features"]
    errors, length_errors = [], []
    for crack, feature in zip(flight.cracks, rows, strict=True):  # first seen in the order the track meets them
        lonlat = np.array(feature["geometry"]["coordinates"])[:, :2]
        ne = flight.site.to_ne(lonlat[:, 1], lonlat[:, 0])
        errors.append(_distance_to(ne, np.array(crack.line_ne)))
        length_errors.append(feature["properties"]["length_m"] / crack.length_m - 1)
        assert feature["properties"]["complete"] and feature["properties"]["views"] >= 3
    rms = float(np.sqrt(np.mean(np.concatenate(errors) ** 2)))
    print(f"{name}: projection RMS {rms:.3f} m, length errors {np.round(length_errors, 3).tolist()}")
    assert rms <= 0.5
    assert np.abs(length_errors).max() <= 0.10


def test_a_long_survey_compares_each_view_only_with_the_cracks_near_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """A view's line is compared with the entries whose box it meets, not with every crack of the run: a
    1,000-frame survey over 200 cracks took 99 s to associate before, 9 s after (docs/inspection.md)."""
    import dataclasses

    from crackseg.edge.bench.survey import survey_flight
    from crackseg.edge.runtime.inventory import associate

    flight = dataclasses.replace(survey_flight(frames=120), camera=CameraModel.from_fov(320, 240, 70.0))
    compared = []
    real_overlap = associate.overlap

    def counted(*args: np.ndarray | float | None) -> float:
        compared.append(1)
        return real_overlap(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(associate, "overlap", counted)
    inventory = _fly(flight)
    views = sum(len(entry.views) for entry in inventory.entries)
    seen = [c for c in flight.cracks if -15.0 - 20 < c.line_ne[0][0] < -15.0 + 119 + 20]  # near the track
    assert len(inventory.entries) <= len(seen) and len(inventory.entries) >= 20
    assert len(compared) <= 4 * views, f"{len(compared)} comparisons for {views} views"


def test_a_recorded_survey_traced_on_every_core_gives_the_inventory_of_frame_by_frame_association(
    tmp_path: Path,
) -> None:
    """The report traces a long recording's masks in worker processes (a recording made without traces): the
    inventory is the one the frames, added in order in this process, give (entries, their views and measurements)."""
    flight = dataclasses.replace(survey_flight(frames=3 * FRAMES_PER_TASK), camera=CameraModel.from_fov(320, 240, 70.0))
    record_survey(tmp_path / "survey.db", flight, traced=False)
    recording = read_recording(tmp_path / "survey.db")
    assert all(frame.traces is None for frame in recording.frames)
    _assert_same_inventory(build_inventory(recording), _fly(flight))


def test_cracks_traced_while_recording_give_the_inventory_of_tracing_the_masks_afterwards(tmp_path: Path) -> None:
    """A run with a camera traces its frames on the recorder's writer thread, at most one frame a source every
    ``trace_interval_s`` of capture; the report reads those traces and traces only the other frames itself. The
    inventory is the same either way, whether every frame, some or none were traced while recording."""
    flight = dataclasses.replace(survey_flight(frames=2 * FRAMES_PER_TASK), camera=CameraModel.from_fov(320, 240, 70.0))
    expected = _fly(flight)
    record_survey(tmp_path / "traced.db", flight)  # 2 fps: every frame with cracks is traced
    traced = read_recording(tmp_path / "traced.db")
    with_cracks = [frame for frame in traced.frames if frame.crack_pixels]
    assert with_cracks and all(frame.traces is not None for frame in with_cracks)
    assert all(frame.traces is None for frame in traced.frames if not frame.crack_pixels)
    assert traced.info["trace_min_px"] == MIN_CRACK_PIXELS
    _assert_same_inventory(build_inventory(traced), expected)
    shutil.rmtree(tmp_path / "traced-masks")  # the traces alone carry the inventory: no mask is read
    _assert_same_inventory(build_inventory(read_recording(tmp_path / "traced.db")), expected)

    info = {"model": "m.onnx", "threshold": 0.5, "camera": {"hfov_deg": 70.0}}
    with Recorder(tmp_path / "paced.db", run_info=info, trace_cracks=True, trace_interval_s=1.2) as recorder:
        for f in flight:  # frames 0.5 s apart: every third frame is traced
            message = MaskMessage(f.frame_id, f.frame_id, "cam://", f.capture_ns, f.capture_ns, bytes(16), 0.5, f.mask,
                                  crack_stats(f.mask), pose=f.pose)  # fmt: skip
            recorder.send(message)
    paced = read_recording(tmp_path / "paced.db")
    traced_ids = [frame.frame_id for frame in paced.frames if frame.traces is not None]
    assert np.all(np.diff(traced_ids) >= 3) and len(traced_ids) >= len(flight.cracks)
    _assert_same_inventory(build_inventory(paced), expected)


def test_a_frame_whose_tracing_fails_is_recorded_untraced_and_the_report_traces_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Traces only spare the report work: a tracing error (here every one raises) costs no frame, is counted and
    logged once, and the report traces those frames from their masks into the same inventory."""
    from crackseg.edge.runtime.sinks import record

    def broken(mask: np.ndarray, min_px: int) -> list[np.ndarray]:
        raise IndexError("a tracing bug")

    monkeypatch.setattr(record, "trace_cracks", broken)
    flight = dataclasses.replace(survey_flight(frames=2 * FRAMES_PER_TASK), camera=CameraModel.from_fov(320, 240, 70.0))
    info = {"model": "m.onnx", "threshold": 0.5, "camera": {"hfov_deg": 70.0}}
    frames = list(flight)  # 0.5 s apart, past the 200 ms pacing: every frame with cracks is traced
    with Recorder(tmp_path / "run.db", run_info=info, trace_cracks=True) as recorder:
        for f in frames:
            message = MaskMessage(f.frame_id, f.frame_id, "cam://", f.capture_ns, f.capture_ns, bytes(16), 0.5, f.mask,
                                  crack_stats(f.mask), pose=f.pose)  # fmt: skip
            recorder.send(message)
    counters = recorder.counters()
    with_cracks = sum(1 for f in frames if f.mask.any())
    assert counters["recorded"] == len(frames) and counters["record_errors"] == 0 and counters["record_lost"] == 0
    assert counters["record_traces_failed"] == with_cracks > 0
    assert sum("a tracing bug" in r.getMessage() for r in caplog.records) == 1
    recording = read_recording(tmp_path / "run.db")
    assert all(frame.traces is None for frame in recording.frames)
    _assert_same_inventory(build_inventory(recording), _fly(flight))


@pytest.mark.parametrize("camera", [[], ["--hfov", "70"]])
def test_crackseg_run_traces_the_cracks_it_records_when_it_records_a_camera(
    tmp_path: Path, endpoint: str, camera: list[str]
) -> None:
    from crackseg.edge.cli.main import main

    db = tmp_path / "run.db"
    args = ["run", "--source", "synthetic://?width=96&height=64&seed=3&fps=2", "--frames", "4", "--bind", endpoint,
            "--record", str(db), "--log-every", "0", "--threshold", "0.0", *camera]  # fmt: skip  # all one crack
    assert main(args) == 0
    frames = read_recording(db).frames
    assert len(frames) == 4 and all(frame.crack_pixels for frame in frames)
    if camera:  # 500 ms apart, past the 200 ms pacing interval: every frame
        assert all(frame.traces is not None and len(load_traces(frame.traces)) == 1 for frame in frames)
    else:  # no camera, no measurement: the recorder does not trace
        assert all(frame.traces is None for frame in frames)


def _assert_same_inventory(built: Inventory | None, expected: Inventory) -> None:
    assert built is not None and len(built.entries) == len(expected.entries) >= 10
    for got, want in zip(built.entries, expected.entries, strict=True):
        assert [v.frame_id for v in got.views] == [v.frame_id for v in want.views]
        assert got.median("length_m") == pytest.approx(want.median("length_m"), rel=1e-9)
        assert all(np.array_equal(a.line_ne, b.line_ne) for a, b in zip(got.views, want.views, strict=True))


def test_the_inventory_files_read_back_with_maintained_readers(tmp_path: Path) -> None:
    geojson = pytest.importorskip("geojson")
    shapely_geometry = pytest.importorskip("shapely.geometry")
    shapely_wkt = pytest.importorskip("shapely.wkt")
    flight = FLIGHTS["nadir, wobbling, lens distortion"]
    inventory = _fly(flight)

    raw = inventory_geojson(inventory)
    collection = geojson.loads(
        json.dumps(raw)
    )  # the reader rounds to 6 decimals (10 cm); compare exact values with raw
    assert collection.is_valid, collection.errors()
    assert [f.geometry.type for f in collection.features] == ["LineString"] * 4
    first = collection.features[0]
    line = shapely_geometry.shape(first.geometry)
    assert line.is_valid and first.properties["first_seen"].endswith("Z")
    assert first.properties["first_seen"] == iso_time(flight.start_ns + 3 * flight.period_ns)  # first frame with it
    assert all(-180 <= x <= 180 and -90 <= y <= 90 for x, y, _ in first.geometry.coordinates)  # lon, lat order
    assert first.geometry.coordinates[0][2] == pytest.approx(flight.origin[2])  # ground at take-off altitude

    kml = ET.fromstring(inventory_kml(inventory))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    placemarks = kml.findall(".//k:Placemark", ns)
    assert len(placemarks) == 4
    coordinates = placemarks[0].find(".//k:LineString/k:coordinates", ns)
    assert coordinates is not None and coordinates.text is not None
    kml_line = [tuple(map(float, point.split(","))) for point in coordinates.text.split()]
    assert kml_line == [tuple(c[:2]) for c in raw["features"][0]["geometry"]["coordinates"]]
    data = {d.get("name"): d.findtext("k:value", namespaces=ns) for d in placemarks[0].findall(".//k:Data", ns)}
    assert float(data["length_m"] or 0) == first.properties["length_m"]

    rows = list(csv.DictReader(io.StringIO(inventory_csv(inventory))))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 4
    assert list(shapely_wkt.loads(rows[0]["wkt"]).coords) == kml_line
    assert float(rows[0]["length_m"]) == first.properties["length_m"]


def test_a_recorded_flight_with_its_camera_reports_the_inventory(tmp_path: Path) -> None:
    """Through the real recorder and ``crackseg report``: the camera travels with the run, the report rebuilds it."""
    from crackseg.edge.bench.survey import record_frames
    from crackseg.edge.cli.main import main
    from crackseg.edge.runtime.inventory.camera import camera_record

    pytest.importorskip("yaml")
    (tmp_path / "camera_info.yaml").write_text(ROS_CAMERA_INFO)
    flight = FLIGHTS["nadir, wobbling, lens distortion"]
    db = tmp_path / "flight.db"
    info = {"model": "m.onnx", "threshold": 0.5, "camera": camera_record(tmp_path / "camera_info.yaml", None)}
    record_frames(db, flight, info)
    assert main(["report", str(db)]) == 0
    features = json.loads((tmp_path / "flight.inventory.geojson").read_text())["features"]
    lengths = [feature["properties"]["length_m"] for feature in features]
    assert lengths == pytest.approx([crack.length_m for crack in flight.cracks], rel=0.1)
    assert len((tmp_path / "flight.inventory.csv").read_text().splitlines()) == 1 + len(flight.cracks)
    assert (tmp_path / "flight.inventory.kml").read_text().count("<Placemark") == len(flight.cracks)
    assert "<h2>Crack inventory</h2><p>4 cracks on flat ground" in (tmp_path / "flight.html").read_text()


def test_a_run_records_a_camera_file_or_a_field_of_view_never_both() -> None:
    from crackseg.edge.runtime.inventory.camera import camera_from_record, camera_record

    assert camera_record(None, None) is None
    assert camera_from_record(camera_record(None, 90.0) or {}, 640, 480) == CameraModel.from_fov(640, 480, 90.0)
    with pytest.raises(CameraError, match="not both"):
        camera_record("camera_info.yaml", 60.0)
    with pytest.raises(CameraError, match="field of view"):
        camera_record(None, 200.0)


def test_frames_with_a_stale_or_missing_pose_are_counted_not_placed() -> None:
    import dataclasses

    from crackseg.edge.runtime.pose import PoseParts

    flight = FLIGHTS["nadir, wobbling, lens distortion"]
    frame = flight.render(15)
    inventory = Inventory(flight.camera)
    stale = dataclasses.replace(frame.pose, stale=PoseParts.POSITION, age_ms=900)
    assert inventory.add_frame(1, frame.capture_ns, frame.mask, stale) == []
    assert inventory.add_frame(2, frame.capture_ns, frame.mask, Pose()) == []
    assert inventory.unplaced == 2 and not inventory.entries
    assert inventory.add_frame(3, frame.capture_ns, frame.mask, frame.pose) == [1, 2]
