"""The inspection outputs of the bench's ``inspection`` run, wired as
``crackseg run --record FILE --hfov 70 --overlay FILE --mavlink URL``.

Sinks after the publisher, in ``crackseg run``'s order: a :class:`~crackseg.edge.runtime.sinks.record.Recorder`
stores every published frame (statistics and pose in SQLite, the mask as PNG, and for frames with cracks a
few JPEG camera thumbnails a second, encoded on its writer thread), with the run info ``crackseg run``
records (a camera of 70° horizontal field of view, so ``crackseg report`` can build the crack inventory
afterwards), and traces each frame's cracks on its writer thread for that inventory, as ``crackseg run`` does
with a camera; an
:class:`~crackseg.edge.runtime.sinks.overlay_output.OverlayOutput` writes the published frames, masks drawn, to an
MP4 file. Both go to one temporary folder. A
:class:`~crackseg.edge.runtime.pose.track.PoseTrack` fed by a :class:`~crackseg.edge.runtime.pose.mavlink.MavlinkInput`
tags every frame with the pose at its capture time. The pose comes from a
:class:`~crackseg.edge.bench.autopilot.LoopbackAutopilot` streaming position and attitude at 50 Hz each, as an
autopilot does: its sending thread runs in this process, a small cost that a real autopilot leaves to the
flight controller. The run starts once both kinds of sample have arrived, so every frame can carry a pose.
After the run the video is decoded back and counted, and the recording's rows and thumbnails are counted.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import ExitStack, closing
from pathlib import Path

from crackseg.edge.artifact.spec import ModelSpec
from crackseg.edge.bench.autopilot import LoopbackAutopilot
from crackseg.edge.bench.config import BenchError
from crackseg.edge.bench.machine import library_versions
from crackseg.edge.bench.results import InspectionResult
from crackseg.edge.runtime.assembly import MaskConfig, PoseConfig, RunConfig, run_recorder
from crackseg.edge.runtime.pipeline import Sink
from crackseg.edge.runtime.pose import Pose, PoseParts
from crackseg.edge.runtime.pose.mavlink import MavlinkInput
from crackseg.edge.runtime.pose.track import PoseTrack
from crackseg.edge.runtime.sinks.overlay_output import OverlayOutput
from crackseg.edge.runtime.stats import StatsMode

__all__ = ["HFOV_DEG", "POSE_RATE_HZ", "InspectionOutputs", "run_config"]

POSE_RATE_HZ = 50.0
"""GLOBAL_POSITION_INT and ATTITUDE messages per second, each (ArduPilot and PX4 stream 10-50 Hz)."""
HFOV_DEG = 70.0
"""The recorded camera's horizontal field of view (``crackseg run --hfov 70``), degrees."""
_FIRST_SAMPLES_TIMEOUT_S = 10.0
_TAGGED = PoseParts.POSITION | PoseParts.ATTITUDE


def _decoded_frames(video: Path) -> int:
    """How many frames OpenCV decodes from ``video`` (0 if it cannot be opened)."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    count = 0
    try:
        while capture.read()[0]:
            count += 1
    finally:
        capture.release()
    return count


def _recorded(db: Path) -> tuple[int, int]:
    """Rows of the recording ``db`` with cracks, and rows whose thumbnail file exists (read-only, after the run)."""
    with closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)) as con:
        with_cracks = int(con.execute("SELECT COUNT(*) FROM frames WHERE crack_pixels > 0").fetchone()[0])
        thumbs = [str(row[0]) for row in con.execute("SELECT thumb_path FROM frames WHERE thumb_path IS NOT NULL")]
    return with_cracks, sum((db.parent / thumb).is_file() for thumb in thumbs)


def run_config(record: Path, stats: StatsMode, source: str, mavlink: str) -> RunConfig:
    """What ``crackseg run --record RECORD --hfov 70 --mavlink MAVLINK`` configures, as far as the recording goes."""
    pose = PoseConfig(mavlink=mavlink, hfov_deg=HFOV_DEG)
    return RunConfig(source=source, record=record, mask=MaskConfig(stats=stats), pose=pose, versions=library_versions())


class InspectionOutputs:
    """The sinks and the pose lookup of one inspection run, open from ``__enter__`` to ``__exit__``.

    Args:
        folder: where the overlay video (``overlay.mp4``) and the recording (``record.db`` with its
            ``record-masks`` folder) are written.
        model, spec, stats, source: what the run info names: the model's file name, its spec, the statistics
            mode and the frames' source.

    Attributes:
        sinks: the sinks to add after the publisher, in ``crackseg run``'s order: the recorder, the overlay.
    """

    def __init__(self, folder: Path, model: str, spec: ModelSpec, stats: StatsMode, source: str) -> None:
        self.video = folder / "overlay.mp4"
        self.record = folder / "record.db"
        self._track = PoseTrack()
        self._autopilot = LoopbackAutopilot(POSE_RATE_HZ)
        self._mavlink = MavlinkInput(self._autopilot.url, self._track)
        config = run_config(self.record, stats, source, self._autopilot.url)
        self.recorder = run_recorder(config, Path(model), spec, spec.threshold, source)  # as crackseg run wires it
        self.overlay = OverlayOutput(str(self.video))
        self.sinks: list[Sink] = [self.recorder, self.overlay]
        self._stack = ExitStack()
        self._with_pose = 0
        self._with_stale_pose = 0

    def pose_at(self, capture_ns: int) -> Pose:
        """The message builder's pose lookup (``PoseTrack.at``), counting what the frames carry."""
        pose = self._track.at(capture_ns)
        if _TAGGED in pose.present:
            self._with_pose += 1
            self._with_stale_pose += bool(pose.stale)
        return pose

    def __enter__(self) -> InspectionOutputs:
        with ExitStack() as stack:
            stack.enter_context(self._mavlink)  # binds the port before the autopilot sends to it
            stack.enter_context(self._autopilot)
            self._wait_for_samples()
            stack.enter_context(self.recorder)
            stack.enter_context(self.overlay)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def result(self) -> InspectionResult:
        """What the outputs did; call it after ``__exit__`` (the video and the recording are complete then)."""
        counters = self.overlay.counters()
        recorded = self.recorder.counters()
        with_cracks, thumbnails = _recorded(self.record)
        return InspectionResult(
            overlay_written=counters["overlay_written"],
            overlay_skipped=counters["overlay_skipped"],
            overlay_dropped=counters["overlay_dropped"],
            overlay_errors=counters["overlay_errors"],
            video_frames=_decoded_frames(self.video),
            pose_samples=dict(self._mavlink.received),
            frames_with_pose=self._with_pose,
            frames_with_stale_pose=self._with_stale_pose,
            recorded=recorded["recorded"],
            recorded_with_cracks=with_cracks,
            thumbnails_written=thumbnails,
            thumbnails_skipped=recorded["record_thumbnails_skipped"],
            record_dropped=recorded["record_dropped"],
            record_lost=recorded["record_lost"],
            record_errors=recorded["record_errors"],
        )

    def _wait_for_samples(self) -> None:
        deadline = time.monotonic() + _FIRST_SAMPLES_TIMEOUT_S
        while not all(self._mavlink.received[kind] for kind in ("GLOBAL_POSITION_INT", "ATTITUDE")):
            if time.monotonic() > deadline:
                raise BenchError(
                    f"inspection run: no MAVLink position and attitude from the loopback autopilot "
                    f"({self._autopilot.url}) within {_FIRST_SAMPLES_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.01)
