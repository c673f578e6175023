"""The inspection outputs of the bench's ``inspection`` run, wired as ``crackseg run --overlay FILE --mavlink URL``.

An :class:`~crackseg.edge.runtime.sinks.overlay_output.OverlayOutput` sink writes the published frames, masks drawn, to
an MP4 file; a :class:`~crackseg.edge.runtime.pose.track.PoseTrack` fed by a
:class:`~crackseg.edge.runtime.pose.mavlink.MavlinkInput` tags every frame with the pose at its capture time. The
pose comes from a :class:`~crackseg.edge.bench.autopilot.LoopbackAutopilot` streaming position and
attitude at 50 Hz each, as an autopilot does: its sending thread runs in this process, a small cost
that a real autopilot leaves to the flight controller. The run starts once both kinds of sample have
arrived, so every frame can carry a pose. After the run the video is decoded back and counted.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from pathlib import Path

from crackseg.edge.bench.autopilot import LoopbackAutopilot
from crackseg.edge.bench.config import BenchError
from crackseg.edge.bench.results import InspectionResult
from crackseg.edge.runtime.pose import Pose, PoseParts
from crackseg.edge.runtime.pose.mavlink import MavlinkInput
from crackseg.edge.runtime.pose.track import PoseTrack
from crackseg.edge.runtime.sinks.overlay_output import OverlayOutput

__all__ = ["POSE_RATE_HZ", "InspectionOutputs"]

POSE_RATE_HZ = 50.0
"""GLOBAL_POSITION_INT and ATTITUDE messages per second, each (ArduPilot and PX4 stream 10-50 Hz)."""
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


class InspectionOutputs:
    """The overlay sink and the pose lookup of one inspection run, open from ``__enter__`` to ``__exit__``.

    Args:
        video: the overlay video file to write (``.mp4``).

    Attributes:
        overlay: the sink to add to the pipeline's sinks.
    """

    def __init__(self, video: Path) -> None:
        self.video = video
        self.overlay = OverlayOutput(str(video))
        self._track = PoseTrack()
        self._autopilot = LoopbackAutopilot(POSE_RATE_HZ)
        self._mavlink = MavlinkInput(self._autopilot.url, self._track)
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
            stack.enter_context(self.overlay)
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def result(self) -> InspectionResult:
        """What the outputs did; call it after ``__exit__`` (the video is complete then)."""
        counters = self.overlay.counters()
        return InspectionResult(
            overlay_written=counters["overlay_written"],
            overlay_skipped=counters["overlay_skipped"],
            overlay_dropped=counters["overlay_dropped"],
            overlay_errors=counters["overlay_errors"],
            video_frames=_decoded_frames(self.video),
            pose_samples=dict(self._mavlink.received),
            frames_with_pose=self._with_pose,
            frames_with_stale_pose=self._with_stale_pose,
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
