"""Pose tagging: timestamp matching, interpolation, staleness, MAVLink and odometry inputs, the recording."""

from __future__ import annotations

import dataclasses
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from crackseg.edge.bench.autopilot import LoopbackAutopilot
from crackseg.edge.cli.main import main
from crackseg.edge.runtime.pose import NO_PARTS, Attitude, GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.pose.odometry import OdometryError, OdometryInput, parse_odometry
from crackseg.edge.runtime.pose.track import PoseTrack

S = 1_000_000_000  # ns per second
T0 = 1_700_000_000 * S


# --- the track -------------------------------------------------------------------------------------------


def test_without_samples_no_part_is_present() -> None:
    assert PoseTrack().at(T0) == Pose()


def test_between_samples_values_are_interpolated_and_the_age_is_the_nearer_sample() -> None:
    track = PoseTrack(max_age_s=0.5)
    track.add(PoseParts.POSITION, T0, (47.0, 8.0, 500.0, 30.0))
    track.add(PoseParts.POSITION, T0 + S // 5, (47.2, 8.4, 502.0, 32.0))
    pose = track.at(T0 + S // 20)  # a quarter of the way
    assert pose.position == pytest.approx(GeoPosition(47.05, 8.1, 500.5, 30.5))
    assert (pose.attitude, pose.gimbal, pose.chainage_m) == (None, None, None)  # never sampled: absent, not zero
    assert (pose.stale, pose.age_ms) == (NO_PARTS, 50)


def test_angles_interpolate_along_the_shorter_arc() -> None:
    track = PoseTrack()
    track.add(PoseParts.ATTITUDE, T0, (0.0, 10.0, 170.0))
    track.add(PoseParts.ATTITUDE, T0 + 100, (0.0, 20.0, -170.0))
    attitude = track.at(T0 + 50).attitude
    assert attitude is not None
    assert attitude.pitch_deg == pytest.approx(15.0)
    assert abs(attitude.yaw_deg) == pytest.approx(180.0)  # through north-south at 180, not through 0


def test_a_held_sample_becomes_stale_and_says_how_old_it_is() -> None:
    track = PoseTrack(max_age_s=0.5)
    track.add(PoseParts.CHAINAGE, T0, (12.5,))
    track.add(PoseParts.ATTITUDE, T0 + 2 * S, (0.0, 0.0, 90.0))
    pose = track.at(T0 + 2 * S)
    assert pose.chainage_m == 12.5  # held, the best knowledge there is ...
    assert pose.stale == PoseParts.CHAINAGE  # ... but flagged, while the fresh attitude is not
    assert pose.age_ms == 2000
    assert track.at(T0 - S).stale == PoseParts.CHAINAGE | PoseParts.ATTITUDE  # before every sample: stale too


def test_samples_out_of_order_are_sorted_and_old_ones_forgotten() -> None:
    track = PoseTrack(history_s=10)
    track.add(PoseParts.CHAINAGE, T0 + S, (1.0,))
    track.add(PoseParts.CHAINAGE, T0, (0.0,))
    assert track.at(T0 + S // 2).chainage_m == pytest.approx(0.5)
    track.add(PoseParts.CHAINAGE, T0 + 20 * S, (20.0,))
    assert track.at(T0).age_ms == 20_000  # the samples at T0 and T0 + 1 s are gone


def test_a_sample_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="POSITION sample has 4 values"):
        PoseTrack().add(PoseParts.POSITION, T0, (47.0, 8.0))


# --- odometry --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"chainage_m": 12.5}', (None, 12.5, None)),
        ('{"chainage_m": 3, "roll_deg": 1, "pitch_deg": -2, "yaw_deg": 90, "t_ns": 5}', (5, 3.0, (1.0, -2.0, 90.0))),
    ],
)
def test_odometry_samples(text: str, expected: tuple[object, ...]) -> None:
    assert parse_odometry(text) == expected


@pytest.mark.parametrize(
    "text", ["not json", '{"roll_deg": 1}', '{"chainage_m": "far"}', '{"chainage_m": 1, "yaw_deg": 3}', "[1, 2]"]
)
def test_malformed_odometry_is_an_odometry_error(text: str) -> None:
    with pytest.raises(OdometryError, match="odometry"):
        parse_odometry(text)


def test_odometry_over_zeromq_feeds_the_track(endpoint: str) -> None:
    zmq = pytest.importorskip("zmq")
    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    publisher.bind(endpoint)
    track = PoseTrack(max_age_s=0.5)
    try:
        with OdometryInput(endpoint, track) as odometry:
            deadline = time.monotonic() + 20
            while odometry.received < 3 and time.monotonic() < deadline:  # a SUB misses what precedes its connect
                sample = {"chainage_m": 7.25, "roll_deg": 0, "pitch_deg": 1, "yaw_deg": 2, "t_ns": T0}
                publisher.send(b"crackseg/odometry" + json.dumps(sample).encode())  # one frame: topic + json
                publisher.send_multipart([b"crackseg/odometry", json.dumps(sample).encode()])  # [topic, json]
                publisher.send(b"crackseg/odometry" + b"garbage")
                time.sleep(0.05)
    finally:
        publisher.close(linger=0)
        context.term()
    assert odometry.received >= 3 and odometry.malformed >= 2
    assert odometry.malformed <= odometry.received // 2 + 1  # the multipart samples parsed too, not as garbage
    pose = track.at(T0 + 2 * S)
    assert (pose.chainage_m, pose.attitude) == (7.25, Attitude(0.0, 1.0, 2.0))
    assert pose.stale == PoseParts.CHAINAGE | PoseParts.ATTITUDE and pose.age_ms == 2000


def test_odometry_over_a_serial_line_feeds_the_track() -> None:
    pty = pytest.importorskip("pty")
    import os

    controller, device = pty.openpty()
    track = PoseTrack()
    try:
        with OdometryInput(os.ttyname(device), track) as odometry:
            os.write(controller, b'{"chainage_m": 1.5, "t_ns": %d}\n{"chainage_m": 2.5, "t_ns": %d}\n' % (T0, T0 + S))
            deadline = time.monotonic() + 20
            while odometry.received < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
    finally:
        os.close(controller)
        os.close(device)
    assert track.at(T0 + S // 2).chainage_m == pytest.approx(2.0)


# --- MAVLink, end to end ---------------------------------------------------------------------------------


def test_mavlink_messages_become_pose_samples_in_degrees_and_metres() -> None:
    common = pytest.importorskip("pymavlink.dialects.v20.ardupilotmega")  # what mavutil speaks by default
    from crackseg.edge.runtime.pose.mavlink import pose_sample

    c, s = math.cos(math.radians(-22.5)), math.sin(math.radians(-22.5))  # quaternion of a -45 degree pitch
    cases = [
        (common.MAVLink_global_position_int_message(0, 473977420, 85455940, 488250, 30500, 0, 0, 0, 0),
         PoseParts.POSITION, (47.397742, 8.545594, 488.25, 30.5)),
        (common.MAVLink_attitude_message(0, math.pi / 2, -math.pi / 4, math.pi, 0, 0, 0),
         PoseParts.ATTITUDE, (90.0, -45.0, 180.0)),
        (common.MAVLink_gimbal_device_attitude_status_message(0, 0, 0, 0, [c, 0, s, 0], 0, 0, 0, 0),
         PoseParts.GIMBAL, (0.0, -45.0, 0.0)),
        (common.MAVLink_mount_status_message(0, 0, -4500, 150, 9000), PoseParts.GIMBAL, (1.5, -45.0, 90.0)),
    ]  # fmt: skip
    for message, part, values in cases:
        sample = pose_sample(message)
        assert sample is not None and sample[0] == part
        assert sample[1] == pytest.approx(values, abs=1e-3)
    assert pose_sample(common.MAVLink_heartbeat_message(0, 0, 0, 0, 0, 3)) is None


def test_a_downward_rangefinder_gives_the_range_in_metres_and_other_distance_sensors_nothing() -> None:
    common = pytest.importorskip("pymavlink.dialects.v20.ardupilotmega")
    from crackseg.edge.runtime.pose.mavlink import DOWNWARD, pose_sample

    def sensor(current_cm: int, orientation: int) -> object:  # a lidar with a 0.2-100 m span
        return common.MAVLink_distance_sensor_message(0, 20, 10_000, current_cm, 0, 0, orientation, 0)

    assert pose_sample(sensor(2980, DOWNWARD)) == (PoseParts.RANGE, (29.8,))
    assert pose_sample(sensor(2980, 0)) is None  # facing forward: an obstacle sensor, not the height
    assert pose_sample(sensor(10_001, DOWNWARD)) is None  # ArduPilot's "no return": max + 1 cm
    assert pose_sample(sensor(5, DOWNWARD)) is None  # below the sensor's minimum


def test_the_rangefinder_is_recorded_and_preferred_to_the_altitude_above_home(endpoint: str, tmp_path: Path) -> None:
    """Through a run with --mavlink from the simulated autopilot: its DISTANCE_SENSOR reaches the recording, and
    the recorded pose's height above ground is the range corrected for tilt, not the altitude above home."""
    pytest.importorskip("pymavlink")
    from crackseg.edge.report.recording import read_recording
    from crackseg.edge.runtime.inventory.ground import height_above_ground

    db = tmp_path / "range.db"
    with LoopbackAutopilot(rate_hz=50.0, range_m=28.5) as sender:
        time.sleep(0.3)
        _run(endpoint, db, "--mavlink", sender.url, fps=25)
    ranged = [f for f in read_recording(db).frames if f.range_m is not None]
    for frame in ranged:
        assert frame.pose is not None and frame.pose.range_m == pytest.approx(28.5)
        assert PoseParts.RANGE in frame.pose.present
    # the link opens as the run starts: a frame captured before the first position message (how many depends on
    # scheduling) has its range only
    placed = [f for f in ranged if f.pose is not None and f.pose.position is not None]
    assert len(placed) >= 2
    tilt = math.cos(math.radians(LoopbackAutopilot.ROLL_DEG)) * math.cos(math.radians(LoopbackAutopilot.PITCH_DEG))
    for frame in placed:
        pose = frame.pose
        assert pose is not None and pose.position is not None
        assert pose.position.rel_alt_m == pytest.approx(LoopbackAutopilot.REL_ALT_M)
        assert height_above_ground(pose) == pytest.approx(28.5 * tilt)  # not 35 m above home
    stale = dataclasses.replace(placed[0].pose, stale=PoseParts.RANGE)  # type: ignore[type-var]
    assert height_above_ground(stale) == pytest.approx(LoopbackAutopilot.REL_ALT_M)  # a held range is not used


@pytest.fixture
def autopilot() -> Iterator[LoopbackAutopilot]:
    """A pymavlink sender on loopback: position and attitude at 50 Hz, latitude growing linearly with time."""
    pytest.importorskip("pymavlink")
    with LoopbackAutopilot(rate_hz=50.0) as sender:
        yield sender


def _recorded(db: Path, columns: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as con:
        return con.execute(f"SELECT {columns} FROM frames ORDER BY frame_id").fetchall()


def _run(endpoint: str, db: Path, *extra: str, fps: int = 0) -> None:
    args = ["run", "--source", f"synthetic://?width=64&height=48&fps={fps}&pace=file", "--frames", "8",
            "--bind", endpoint, "--record", str(db), "--log-every", "0", *extra]  # fmt: skip
    assert main(args) == 0


def test_mavlink_positions_are_matched_to_each_frame_and_recorded(
    endpoint: str, tmp_path: Path, autopilot: LoopbackAutopilot
) -> None:
    url, lat_per_s = autopilot.url, autopilot.LAT_PER_S
    db = tmp_path / "flight.db"
    time.sleep(0.3)  # the autopilot is streaming before the run opens its link
    _run(endpoint, db, "--mavlink", url, fps=25)
    rows = _recorded(db, "capture_ns, pose_parts, pose_stale, lat_deg, lon_deg, rel_alt_m, pitch_deg, yaw_deg, "
                         "gimbal_yaw_deg, chainage_m")  # fmt: skip
    assert len(rows) == 8
    # the link opens as the run starts and the autopilot sends every 20 ms: a frame captured before the
    # first message arrives (how many depends on scheduling) has no pose yet; every later one has both parts
    tagged = [row for row in rows if row[1]]
    assert len(tagged) >= 2 and rows[len(rows) - len(tagged) :] == tagged
    for capture_ns, parts, stale, lat, lon, rel_alt, pitch, yaw, gimbal_yaw, chainage in tagged:
        assert parts == PoseParts.POSITION | PoseParts.ATTITUDE and stale == 0
        assert lat == pytest.approx(autopilot.latitude_at(capture_ns), abs=lat_per_s * 0.25)  # this frame's position
        flight = (autopilot.LON0_DEG, autopilot.REL_ALT_M, autopilot.PITCH_DEG, autopilot.YAW_DEG)
        assert (lon, rel_alt, pitch, yaw) == pytest.approx(flight, abs=1e-5)
        assert gimbal_yaw is None and chainage is None  # no gimbal reported, no odometry: absent, not zero
    latitudes = [row[3] for row in tagged]
    assert latitudes == sorted(latitudes) and latitudes[0] < latitudes[-1]  # the drone moved between frames
    with sqlite3.connect(db) as con:
        (info,) = con.execute("SELECT info FROM runs").fetchone()
    assert json.loads(info)["mavlink"] == url
    assert main(["report", str(db)]) == 0  # the report places each detection where the drone was
    points = {f["properties"]["frame_id"]: f["geometry"]["coordinates"][:2]
              for f in json.loads(db.with_suffix(".geojson").read_text())["features"] if f["geometry"]}  # fmt: skip
    recorded = _recorded(db, "frame_id, lon_deg, lat_deg, crack_pixels")
    assert points == {frame_id: [lon, lat] for frame_id, lon, lat, cracks in recorded if cracks and lat is not None}
    assert f"lat {latitudes[0]:.6f}.." in db.with_suffix(".html").read_text()


def test_a_silent_autopilot_gives_frames_flagged_without_pose_and_no_source_gives_none(
    endpoint: str, tmp_path: Path
) -> None:
    pytest.importorskip("pymavlink")
    silent = LoopbackAutopilot()  # never opened: nothing is sent to its URL
    _run(endpoint, tmp_path / "silent.db", "--mavlink", silent.url)
    assert _recorded(tmp_path / "silent.db", "pose_parts, lat_deg, yaw_deg") == [(0, None, None)] * 8
    _run(endpoint, tmp_path / "plain.db")
    assert _recorded(tmp_path / "plain.db", "pose_parts, pose_stale, lat_deg") == [(None, None, None)] * 8


def test_listen_shows_the_pose_only_when_the_message_has_one() -> None:
    import numpy as np

    from crackseg.edge.cli.listen import describe
    from crackseg.edge.runtime.stats import crack_stats
    from crackseg.edge.runtime.wire import MaskMessage

    mask = np.zeros((4, 4), bool)
    plain = MaskMessage(1, 1, "cam", T0, T0, bytes(16), 0.5, mask, crack_stats(mask))
    posed = MaskMessage(1, 1, "cam", T0, T0, bytes(16), 0.5, mask, crack_stats(mask), pose=Pose(chainage_m=4.0))
    assert "pose" not in json.loads(describe(plain, T0, as_json=True))
    assert json.loads(describe(posed, T0, as_json=True))["pose"]["chainage_m"] == 4.0
    assert describe(posed, T0).endswith("chainage 4.00 m") and "chainage" not in describe(plain, T0)


def test_a_mavlink_port_out_of_range_is_one_mavlink_error() -> None:
    pytest.importorskip("pymavlink")
    from crackseg.edge.runtime.pose.mavlink import MavlinkError, MavlinkInput

    with pytest.raises(MavlinkError, match=r"cannot open MAVLink connection 'udpin:0\.0\.0\.0:99999'"):
        MavlinkInput("udpin:0.0.0.0:99999", PoseTrack()).open()  # pymavlink raises OverflowError from bind()


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("udp://:14540", "pymavlink's is udpin:0.0.0.0:14540 (listen for the autopilot)"),
        ("udp://192.168.1.5:14550", "pymavlink's is udpin:192.168.1.5:14550"),
        ("udpin://0.0.0.0:14540", "pymavlink's is udpin:0.0.0.0:14540"),
        ("tcp://127.0.0.1:5760", "pymavlink's is tcp:127.0.0.1:5760"),
        ("serial:///dev/ttyACM0:57600", "--mavlink /dev/ttyACM0 --mavlink-baud 57600"),
    ],
)
def test_mavsdk_urls_are_refused_with_the_pymavlink_spelling(url: str, hint: str) -> None:
    from crackseg.edge.runtime.pose.mavlink import MavlinkError, MavlinkInput, mavsdk_hint

    assert hint in (mavsdk_hint(url) or "")
    with pytest.raises(MavlinkError, match="MAVSDK's form"):
        MavlinkInput(url, PoseTrack()).open()  # before pymavlink is asked: no DNS lookup of "udp"
    assert mavsdk_hint("udpin:0.0.0.0:14550") is None and mavsdk_hint("/dev/ttyACM0") is None
