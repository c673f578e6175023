"""Read one run of a recording (``crackseg run --record``) back: its description and its frames in capture order.

Recordings made before pose tagging lack the pose columns and ``runs.info``; they read as frames
without pose and a run without a description, never as an error.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crackseg.edge.runtime.pose import Attitude, GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.sinks.record import RecordError

__all__ = ["FrameRow", "Recording", "read_recording"]

_FRAME_COLUMNS = (
    "frame_id", "capture_ns", "width", "height", "threshold", "model_hash", "crack_pixels", "coverage_pct",
    "components", "skeleton_px", "max_width_px", "boxes", "mask_path",
    "pose_parts", "pose_stale", "pose_age_ms", "lat_deg", "lon_deg", "alt_m", "rel_alt_m", "roll_deg", "pitch_deg",
    "yaw_deg", "gimbal_roll_deg", "gimbal_pitch_deg", "gimbal_yaw_deg", "chainage_m", "thumb_path", "range_m", "traces",
)  # fmt: skip


@dataclass(frozen=True)
class FrameRow:
    """One recorded frame; the pose fields are ``None`` when absent (``pose_parts`` ``None``: no pose source)."""

    frame_id: int
    capture_ns: int
    width: int
    height: int
    threshold: float
    model_hash: str
    crack_pixels: int
    coverage_pct: float
    components: int
    skeleton_px: int
    max_width_px: float
    boxes: str
    mask_path: str
    pose_parts: int | None = None
    pose_stale: int | None = None
    pose_age_ms: int | None = None
    lat_deg: float | None = None
    lon_deg: float | None = None
    alt_m: float | None = None
    rel_alt_m: float | None = None
    roll_deg: float | None = None
    pitch_deg: float | None = None
    yaw_deg: float | None = None
    gimbal_roll_deg: float | None = None
    gimbal_pitch_deg: float | None = None
    gimbal_yaw_deg: float | None = None
    chainage_m: float | None = None
    thumb_path: str | None = None
    """The camera thumbnail (frames with cracks, recordings since thumbnails were added), relative to the db."""
    range_m: float | None = None
    """A downward rangefinder's range, metres (recordings since the range was recorded)."""
    traces: str | None = None
    """The frame's cracks traced while recording, JSON (``load_traces``); ``None`` when the run was not traced."""

    @property
    def pose(self) -> Pose | None:
        """The pose as the runtime had it, rebuilt from the columns (``None``: the run had no pose source)."""
        if self.pose_parts is None:
            return None
        parts = PoseParts(self.pose_parts)

        def values(part: PoseParts, *columns: float | None) -> tuple[float, ...] | None:
            return tuple(float(c) for c in columns if c is not None) if part in parts else None

        position = values(PoseParts.POSITION, self.lat_deg, self.lon_deg, self.alt_m, self.rel_alt_m)
        attitude = values(PoseParts.ATTITUDE, self.roll_deg, self.pitch_deg, self.yaw_deg)
        gimbal = values(PoseParts.GIMBAL, self.gimbal_roll_deg, self.gimbal_pitch_deg, self.gimbal_yaw_deg)
        return Pose(
            position=GeoPosition(*position) if position else None,
            attitude=Attitude(*attitude) if attitude else None,
            gimbal=Attitude(*gimbal) if gimbal else None,
            chainage_m=self.chainage_m if PoseParts.CHAINAGE in parts else None,
            range_m=self.range_m if PoseParts.RANGE in parts else None,
            stale=PoseParts(self.pose_stale or 0),
            age_ms=self.pose_age_ms or 0,
        )

    @property
    def has_position(self) -> bool:
        return self.lat_deg is not None and self.lon_deg is not None

    @property
    def position_placed(self) -> bool:
        """The frame has a position that was current at capture time (a stale one holds the last fix: never placed)."""
        return self.has_position and not PoseParts.POSITION & PoseParts(self.pose_stale or 0)

    @property
    def pose_stale_any(self) -> bool:
        return bool(self.pose_stale)

    @property
    def pose_missing(self) -> bool:
        """A pose source was configured but this frame got no part of a pose."""
        return self.pose_parts == 0


@dataclass(frozen=True)
class Recording:
    """One run of a recording database."""

    path: Path
    run_id: int
    started_ns: int
    info: dict[str, Any]
    frames: list[FrameRow] = field(default_factory=list)
    runs: int = 1
    run_ids: tuple[int, ...] = ()
    """Every run the database holds, oldest first."""


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}


def read_recording(path: str | Path, run_id: int | None = None) -> Recording:
    """The frames of run ``run_id`` (default: the last run) of a recording; a bad file raises :class:`RecordError`."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise RecordError(f"recording {path} does not exist")
    try:
        db = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)  # percent-encoded: '#', '?', '%'
    except sqlite3.Error as exc:
        raise RecordError(f"cannot open recording {path}: {exc}") from None
    try:
        return _read(db, path, run_id)
    except sqlite3.Error as exc:
        raise RecordError(f"{path} is not a crackseg recording: {exc}") from None
    finally:
        db.close()


def _read(db: sqlite3.Connection, path: Path, run_id: int | None) -> Recording:
    run_columns, frame_columns = _columns(db, "runs"), _columns(db, "frames")
    if not run_columns or not frame_columns:
        raise RecordError(f"{path} is not a crackseg recording (no runs and frames tables)")
    run_ids = [row[0] for row in db.execute("SELECT id FROM runs ORDER BY id")]
    if not run_ids:
        raise RecordError(f"recording {path} holds no run")
    chosen = run_ids[-1] if run_id is None else run_id
    if chosen not in run_ids:
        raise RecordError(f"recording {path} has no run {chosen}; its runs are {run_ids}")
    info_column = "info" if "info" in run_columns else "NULL"
    started_ns, info = db.execute(f"SELECT started_ns, {info_column} FROM runs WHERE id = ?", (chosen,)).fetchone()
    selected = ", ".join(name if name in frame_columns else "NULL" for name in _FRAME_COLUMNS)
    rows = db.execute(f"SELECT {selected} FROM frames WHERE run_id = ? ORDER BY capture_ns, id", (chosen,))
    frames = [FrameRow(*row) for row in rows]
    return Recording(path, chosen, started_ns, json.loads(info) if info else {}, frames, len(run_ids), tuple(run_ids))
