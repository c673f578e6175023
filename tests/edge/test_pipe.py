"""A crawler in a pipe: chainage and clock position on the wall, against a synthetic crawl's truth."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.runtime.inventory.associate import Inventory
from crackseg.edge.runtime.inventory.camera import CameraModel
from crackseg.edge.runtime.inventory.crawl import SyntheticCrawl
from crackseg.edge.runtime.inventory.formats import inventory_rows
from crackseg.edge.runtime.inventory.pipe import PipePose, clock_hour

cv2 = pytest.importorskip("cv2")

CAMERA = CameraModel(640, 480, (268.5, 0.0, 319.5, 0.0, 268.5, 239.5, 0.0, 0.0, 1.0), (-0.05, 0.01, 0.0, 0.0, 0.0))
"""A wide (100 degree) lens with some barrel distortion, as crawler cameras have."""


@pytest.mark.parametrize(
    ("hours", "clock"), [(0.0, 12), (0.4, 12), (3.0, 3), (-3.0, 9), (5.9, 6), (-6.0, 6), (-0.6, 11), (11.6, 12)]
)
def test_the_clock_position_counts_clockwise_from_the_crown(hours: float, clock: int) -> None:
    radius = 0.3
    assert clock_hour(hours / 12 * 2 * math.pi * radius, radius) == clock


def test_a_pixel_meets_the_wall_where_the_forward_model_put_it_whatever_the_roll() -> None:
    where = PipePose(chainage_m=10.0, roll_deg=7.0, radius_m=0.3)
    wall = np.array([[10.5, 0.0], [11.2, 0.4], [10.8, -0.7], [12.0, 0.9]])  # (chainage, arc from the crown)
    pixels = CAMERA.project(where.wall_to_camera(wall))
    assert where.surface_points(CAMERA, pixels) == pytest.approx(wall, abs=1e-6)
    right = CAMERA.project(PipePose(10.0, 0.0, 0.3).wall_to_camera(np.array([[11.0, 2 * math.pi * 0.3 / 4]])))[0]
    assert right[0] > CAMERA.width / 2 + 50 and abs(right[1] - 239.5) < 1  # 3 o'clock: the image's right


def _o_clock(hours: float) -> int:
    """The clock position of a crack given in hours from the crown (-3: 9 o'clock)."""
    return clock_hour(hours / 12 * 2 * math.pi, 1.0)


def _crawl(crawl: SyntheticCrawl) -> Inventory:
    inventory = Inventory(crawl.camera, pipe_diameter_m=crawl.diameter_m)
    for frame in crawl:
        inventory.add_frame(frame.frame_id, frame.capture_ns, frame.mask, frame.pose)
    return inventory


def test_a_synthetic_crawl_puts_each_crack_once_at_its_chainage_and_clock_position() -> None:
    crawl = SyntheticCrawl(CAMERA)
    inventory = _crawl(crawl)
    rows = inventory_rows(inventory)
    assert len(rows) == len(crawl.cracks), "exactly one entry per physical crack"
    for crack, row in zip(crawl.cracks, rows, strict=True):  # met in the order of their chainage
        ribbon = crack.on_wall(crawl.diameter_m / 2)
        start, end = sorted((crack.start[0], crack.end[0]))
        assert row.chainage_m == pytest.approx(start - crack.width_m / 2, abs=0.05), row  # the ribbon's ends
        assert row.chainage_end_m == pytest.approx(end + crack.width_m / 2, abs=0.05), row
        hours = sorted((crack.start[1], crack.end[1]))
        truth = [_o_clock(sum(hours) / 2), _o_clock(hours[0]), _o_clock(hours[1])]
        assert [row.clock, row.clock_from, row.clock_to] == truth, row
        assert row.length_m == pytest.approx(ribbon.length_m, rel=0.1)
        assert row.complete and row.views >= 3 and row.line_lonlat == ()
    assert inventory.unplaced == 0


def test_frames_without_a_current_chainage_are_counted_not_placed() -> None:
    import dataclasses

    from crackseg.edge.runtime.pose import Pose, PoseParts

    crawl = SyntheticCrawl(CAMERA)
    frame = crawl.render(12)
    inventory = Inventory(CAMERA, pipe_diameter_m=crawl.diameter_m)
    assert (
        inventory.add_frame(1, frame.capture_ns, frame.mask, dataclasses.replace(frame.pose, stale=PoseParts.CHAINAGE))
        == []
    )
    assert inventory.add_frame(2, frame.capture_ns, frame.mask, Pose(attitude=frame.pose.attitude)) == []
    assert inventory.unplaced == 2 and inventory.add_frame(3, frame.capture_ns, frame.mask, frame.pose)


def test_a_recorded_crawl_reports_chainage_and_clock_in_every_output(tmp_path: Path) -> None:
    """Through the real recorder and ``crackseg report``: the pipe's diameter travels with the run."""
    geojson = pytest.importorskip("geojson")
    from crackseg.edge.bench.survey import record_frames
    from crackseg.edge.cli.main import main

    crawl = SyntheticCrawl(CameraModel.from_fov(640, 480, 100.0), frames=30)
    db = tmp_path / "sewer.db"
    info = {"model": "m.onnx", "threshold": 0.5, "camera": {"hfov_deg": 100.0}, "odometry": "tcp://crawler:5556",
            "pipe_diameter_m": crawl.diameter_m}  # fmt: skip
    record_frames(db, crawl, info, "crawl://")
    assert main(["report", str(db)]) == 0
    expected = inventory_rows(_crawl(crawl))
    text = (tmp_path / "sewer.inventory.geojson").read_text()
    collection = geojson.loads(text)
    assert collection.is_valid, collection.errors()
    features = json.loads(text)["features"]
    assert [f["geometry"] for f in features] == [None] * len(expected)  # no place on the Earth, RFC 7946 allows it
    assert [(f["properties"]["chainage_m"], f["properties"]["clock"]) for f in features] == [
        (r.chainage_m, r.clock) for r in expected
    ]
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sewer.inventory.csv").read_text())))
    assert [(float(r["chainage_m"]), int(r["clock_from"]), int(r["clock_to"]), r["wkt"]) for r in rows] == [
        (r.chainage_m, r.clock_from, r.clock_to, "") for r in expected
    ]
    html = (tmp_path / "sewer.html").read_text()
    assert f"<p>{len(expected)} cracks on the wall of a 0.6 m pipe" in html
    assert '<th data-key="clock">' in html and "lon, lat (start)" not in html
