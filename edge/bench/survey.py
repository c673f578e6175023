"""A long synthetic survey recording, the input of the report's size and speed target (issue 27).

``python -m crackseg.edge.bench.survey flight.db`` records :data:`FRAMES` frames (640x480, a 70 degree
lens at 30 m, one metre flown per frame) of a straight track over a crack every
:data:`CRACK_SPACING_M` metres, through the real recorder: every frame has cracks and the frames are half a
second apart, so every frame keeps its camera thumbnail, and the run carries its camera, so ``crackseg report
flight.db`` builds the full inventory (one entry per crack, each with its best view). Then::

    /usr/bin/time -v crackseg report flight.db    # the target: <= 3 s, flight.html <= 20 MB
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Mapping
from pathlib import Path

from crackseg.edge.runtime.inventory.camera import CameraModel
from crackseg.edge.runtime.inventory.flight import FlightFrame, GroundCrack, SyntheticFlight
from crackseg.edge.runtime.sinks.record import THUMBNAIL_PX, Recorder
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.stats import crack_stats
from crackseg.edge.runtime.wire import MaskMessage

__all__ = ["CRACK_SPACING_M", "FRAMES", "record_frames", "record_survey", "survey_flight"]

FRAMES = 1000
CRACK_SPACING_M = 5.0


def survey_flight(frames: int = FRAMES, spacing_m: float = CRACK_SPACING_M) -> SyntheticFlight:
    """A straight northbound track, ``frames`` metres long, over a crack every ``spacing_m`` metres."""
    cracks = []
    for i in range(int(frames / spacing_m)):
        north, east = i * spacing_m, 8.0 * math.sin(i * 1.7)
        angle = i * 0.9
        dn, de = 1.5 * math.cos(angle), 1.5 * math.sin(angle)
        cracks.append(GroundCrack(((north - dn, east - de), (north + dn, east + de + 0.5)), 0.1 + 0.02 * (i % 4)))
    camera = CameraModel.from_fov(640, 480, 70.0)
    return SyntheticFlight(camera, frames=frames, start_ne=(-15.0, 0.0), step_m=1.0, cracks=tuple(cracks))


def record_survey(db: str | Path, flight: SyntheticFlight, traced: bool = True) -> None:
    """Record ``flight`` to ``db`` as ``crackseg run --hfov 70 --mavlink ... --record`` would (``traced``: see
    :func:`record_frames`)."""
    info = {"model": "survey.onnx", "arch": "synthetic", "threshold": 0.5, "camera": {"hfov_deg": 70.0},
            "mavlink": "udpin:0.0.0.0:14550", "source": "flight://survey"}  # fmt: skip
    record_frames(db, flight, info, traced=traced)


def record_frames(
    db: str | Path, frames: Iterable[FlightFrame], run_info: Mapping[str, object], source_id: str = "flight://",
    thumbnail_px: int = THUMBNAIL_PX, traced: bool = True,
) -> None:  # fmt: skip
    """Record rendered frames (a synthetic flight's or crawl's) through the real recorder, masks, poses and camera
    thumbnails, one frame at a time so that the thumbnail backlog never fills. Like ``crackseg run``, the recorder
    traces the cracks when the run info names a camera, unless ``traced`` is false (as recordings made before
    crack traces were recorded)."""
    trace = traced and run_info.get("camera") is not None
    with Recorder(db, run_info=run_info, thumbnail_px=thumbnail_px, trace_cracks=trace) as recorder:
        for f in frames:
            message = MaskMessage(f.frame_id, f.frame_id, source_id, f.capture_ns, f.capture_ns, bytes(16), 0.5,
                                  f.mask, crack_stats(f.mask), pose=f.pose)  # fmt: skip
            recorder.send_frame(Frame(f.image, f.frame_id, f.capture_ns, source_id), message)
            recorder.flush(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db", type=Path)
    parser.add_argument("--frames", type=int, default=FRAMES)
    args = parser.parse_args(argv)
    record_survey(args.db, survey_flight(args.frames))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
