"""Recording of every published frame: statistics in SQLite, masks as PNG files beside it.

Layout for ``--record flight.db``::

    flight.db                               SQLite, WAL journal
    flight-masks/run0001/0000000042.png     1-bit PNG of frame 42 of the first run into this file
    flight-masks/run0001/0000000042.jpg     the camera frame, a JPEG thumbnail (frames with cracks only)

Schema (one row per published frame; query it with any SQLite client)::

    runs(id INTEGER PRIMARY KEY, started_ns INTEGER, info TEXT)
    frames(id INTEGER PRIMARY KEY, run_id INTEGER, seq INTEGER, frame_id INTEGER, source_id TEXT,
           capture_ns INTEGER, publish_ns INTEGER, model_hash TEXT, threshold REAL, width INTEGER,
           height INTEGER, crack_pixels INTEGER, coverage_pct REAL, components INTEGER,
           skeleton_px INTEGER, max_width_px REAL, boxes TEXT, mask_path TEXT,
           pose_parts INTEGER, pose_stale INTEGER, pose_age_ms INTEGER, lat_deg REAL, lon_deg REAL,
           alt_m REAL, rel_alt_m REAL, roll_deg REAL, pitch_deg REAL, yaw_deg REAL, gimbal_roll_deg REAL,
           gimbal_pitch_deg REAL, gimbal_yaw_deg REAL, chainage_m REAL, range_m REAL, thumb_path TEXT, traces TEXT)

``info`` is JSON describing the run (model, threshold, versions, source, pose inputs, ``thumbnail_px``, and
``trace_min_px`` when the cracks were traced).
``boxes`` is JSON ``[[x, y, w, h, pixels], ...]``; ``mask_path`` is relative to the database's folder. The pose columns
are NULL when the run had no pose source; otherwise ``pose_parts`` and ``pose_stale`` hold
``crackseg.edge.runtime.pose.PoseParts`` flags (1 position, 2 attitude, 4 gimbal, 8 chainage, 16 range) and a part's
columns are NULL when it is absent. A database recorded before the pose columns existed gets them
(NULL for its old rows) the next time it is opened for recording.

Thumbnails: for frames with cracks, the camera's pixels as a JPEG (quality :data:`THUMBNAIL_QUALITY`)
whose longest side is at most ``thumbnail_px`` (default 480, about 20-40 kB), so that the report can show
what the camera saw beside the mask; ``thumb_path`` is NULL for frames without one. A source keeps at most
one thumbnail every ``thumbnail_interval_s`` of capture time (default :data:`THUMBNAIL_INTERVAL_S`): a crack
stays in view for many frames, so a few photographs a second show every crack, while the JPEG work (about
1.5 ms for a 544x384 frame on the 2-core development machine, five times the mask's PNG) stays off most
frames; the inventory prefers a photographed view as a crack's best view. The publish stage only hands
the frame over (:meth:`Recorder.send_frame`); resizing and encoding happen on the writer thread. At most
:data:`THUMBNAIL_BACKLOG` frames wait for it: under a backlog a frame is recorded without its thumbnail
(counted as ``record_thumbnails_skipped``), so memory stays bounded by a few frames.

Traces: a run that records a camera model (``crackseg run --camera`` / ``--hfov``) is measured afterwards
by ``crackseg report``, which needs each crack's centre line in pixels. With ``trace_cracks`` the writer
thread traces frames with cracks as it stores them
(:func:`~crackseg.edge.runtime.inventory.measure.trace_cracks`, cracks of at least ``trace_min_px`` pixels;
mostly Python, which holds the interpreter lock) and keeps the result as JSON in ``traces``
(:func:`~crackseg.edge.runtime.inventory.measure.dump_traces`): the report reads them instead of decoding
and tracing those masks again, which was most of its time. Like thumbnails, tracing is paced: at most one
frame every ``trace_interval_s`` of capture per source (default :data:`TRACE_INTERVAL_S`: five a second), so
that it costs a fast pipeline little (a 640x480 survey frame takes 2.5 ms, a 544x384 DeepCrack test mask 6.4 ms
on average, 2.8-8.5 ms from the 10th to the 90th percentile, on the 2-core development machine; at 30 frames a
second tracing cost up to 8 % of a 100 fps pipeline's throughput, at ten up to 5 %).
``traces`` is NULL for a frame without cracks or not traced; the report traces those frames itself. A frame
whose tracing fails is recorded untraced the same way (counted as ``record_traces_failed``, the first failure
logged): traces only save the report work, so they never cost a frame.

Crash safety: a mask file is written to a temporary name and renamed into place *before* the
transaction holding its row commits, and each commit covers what was queued at that moment (one frame,
or a small batch under load). After ``kill -9`` every committed row is intact and its mask exists. WAL
with ``synchronous=NORMAL`` survives any process crash; after a power cut the database stays consistent
but may lack its last commits. A writer thread does the disk work, so a slow card never blocks
publishing; if it falls ``queue_size`` frames behind, new frames are dropped from the recording and counted.

Recordings carry SQLite's ``application_id`` (:data:`APPLICATION_ID`). An existing file is checked read-only
before anything is written to it: another program's database, or a damaged one, is refused untouched.

Degrading gracefully: a write that fails (disk full, database locked) logs once and pauses the recording;
every frame it could not keep is counted in ``record_lost``, its temporary and orphaned mask files are
removed, and a write is tried again every ``retry_s``, resuming (with one log line) when it succeeds. A
flush that times out (the database write-locked past the end of the run) stops the writer, so the frames
still queued are counted as lost and nothing is written after the run's summary.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.runtime.inventory.measure import MIN_CRACK_PIXELS, dump_traces, trace_cracks
from crackseg.edge.runtime.pose import Pose
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.wire import MaskEncoding, MaskMessage, encode_mask
from crackseg.edge.runtime.worker import Worker
from crackseg.edge.runtime.writer_flush import flush_writer

__all__ = [
    "APPLICATION_ID", "THUMBNAIL_INTERVAL_S", "THUMBNAIL_PX", "TRACE_INTERVAL_S", "RecordError", "Recorder",
    "load_mask", "load_thumbnail", "thumbnail_size",
]  # fmt: skip

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS frames (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id),
    seq INTEGER NOT NULL,
    frame_id INTEGER NOT NULL,
    source_id TEXT NOT NULL,
    capture_ns INTEGER NOT NULL,
    publish_ns INTEGER NOT NULL,
    model_hash TEXT NOT NULL,
    threshold REAL NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    crack_pixels INTEGER NOT NULL,
    coverage_pct REAL NOT NULL,
    components INTEGER NOT NULL,
    skeleton_px INTEGER NOT NULL,
    max_width_px REAL NOT NULL,
    boxes TEXT NOT NULL,
    mask_path TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS frames_run_frame ON frames (run_id, frame_id);
"""
_POSE_COLUMNS = {
    "pose_parts": "INTEGER", "pose_stale": "INTEGER", "pose_age_ms": "INTEGER", "lat_deg": "REAL",
    "lon_deg": "REAL", "alt_m": "REAL", "rel_alt_m": "REAL", "roll_deg": "REAL", "pitch_deg": "REAL",
    "yaw_deg": "REAL", "gimbal_roll_deg": "REAL", "gimbal_pitch_deg": "REAL", "gimbal_yaw_deg": "REAL",
    "chainage_m": "REAL", "range_m": "REAL",
}  # fmt: skip
_ADDED_COLUMNS = {"runs": {"info": "TEXT"}, "frames": {**_POSE_COLUMNS, "thumb_path": "TEXT", "traces": "TEXT"}}
"""Columns added after the first schema; :func:`_add_missing_columns` brings older databases up to date."""
_FRAME_COLUMNS = (
    "run_id", "seq", "frame_id", "source_id", "capture_ns", "publish_ns", "model_hash", "threshold", "width",
    "height", "crack_pixels", "coverage_pct", "components", "skeleton_px", "max_width_px", "boxes", "mask_path",
    *_ADDED_COLUMNS["frames"],
)  # fmt: skip
_INSERT = f"INSERT INTO frames ({', '.join(_FRAME_COLUMNS)}) VALUES ({', '.join('?' * len(_FRAME_COLUMNS))})"
_NO_POSE: tuple[None, ...] = (None,) * len(_POSE_COLUMNS)
_BATCH_MAX = 32
_END = None

THUMBNAIL_PX = 480
"""Default longest side of a recorded thumbnail, pixels."""
THUMBNAIL_QUALITY = 80
"""JPEG quality of recorded thumbnails."""
THUMBNAIL_INTERVAL_S = 0.2
"""Default least capture time between two thumbnails of one source (at most five a second)."""
TRACE_INTERVAL_S = 0.2
"""Default least capture time between two traced frames of one source (at most five a second)."""
THUMBNAIL_BACKLOG = 4
"""Most frames whose images wait for the writer; beyond, frames are recorded without a thumbnail."""

APPLICATION_ID = 0x43534547
"""``PRAGMA application_id`` of a crackseg recording ("CSEG"): tells it from any other SQLite database."""


class RecordError(CracksegError):
    """The recording database or its mask folder cannot be created or written."""


def _add_missing_columns(db: sqlite3.Connection) -> None:
    for table, columns in _ADDED_COLUMNS.items():
        existing = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        for name, kind in columns.items():
            if name not in existing:
                db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")


def _check_existing(path: Path) -> None:
    """Refuse, reading it only, an existing file that is not a crackseg recording or is damaged."""
    if path.name in ("", ".", "..") or path.is_dir():
        raise RecordError(f"cannot record to {path}: it is a folder; name a database file such as flight.db")
    if not path.exists() or path.stat().st_size == 0:
        return
    untouched = "it was left untouched: record to a new file"
    try:
        con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            app_id = int(con.execute("PRAGMA application_id").fetchone()[0])
            tables = {row[0] for row in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            frames = {row[1] for row in con.execute("PRAGMA table_info(frames)")}
            older = {"runs", "frames"} <= tables and "run_id" in frames  # a recording from before the id
            if app_id != APPLICATION_ID and not (app_id == 0 and (older or not tables)):
                raise RecordError(
                    f"{path} is not a crackseg recording (application_id {app_id:#x}, tables: "
                    f"{', '.join(sorted(tables)) or 'none'}); {untouched}"
                )
            problems = [str(row[0]) for row in con.execute("PRAGMA quick_check(3)")]
        finally:
            con.close()
    except sqlite3.Error as exc:
        raise RecordError(f"cannot record to {path}: {exc}; {untouched}") from None
    if problems != ["ok"]:
        raise RecordError(f"{path} is damaged (SQLite: {'; '.join(problems)}); {untouched}")


def _pose_row(pose: Pose | None) -> tuple[object, ...]:
    """The pose columns of a frame: all NULL without a pose source, NULL per absent part otherwise."""
    if pose is None:
        return _NO_POSE
    position = pose.position or (None,) * 4
    attitude = pose.attitude or (None,) * 3
    gimbal = pose.gimbal or (None,) * 3
    return (
        int(pose.present),
        int(pose.stale),
        pose.age_ms,
        *position,
        *attitude,
        *gimbal,
        pose.chainage_m,
        pose.range_m,
    )


def load_mask(db_path: str | Path, mask_path: str) -> np.ndarray:
    """The bool mask of a recorded frame, from its ``mask_path`` column; raises ``RecordError`` if unreadable."""
    import cv2

    path = Path(db_path).parent / mask_path
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise RecordError(f"recorded mask {path} is missing or unreadable")
    return image > 0


def load_thumbnail(db_path: str | Path, thumb_path: str | None) -> np.ndarray | None:
    """The RGB camera thumbnail of a recorded frame, or ``None`` when none was stored or it is missing."""
    import cv2

    if not thumb_path:
        return None
    image = cv2.imread(str(Path(db_path).parent / thumb_path), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def thumbnail_size(width: int, height: int, longest_px: int) -> tuple[int, int]:
    """(width, height) of a frame's thumbnail: scaled down (never up) so that its longest side is at most
    ``longest_px``; the frame's mask has the frame's size, so this also scales mask pixels to thumbnail pixels."""
    scale = min(1.0, longest_px / max(height, width))
    return max(1, round(width * scale)), max(1, round(height * scale))


def thumbnail_jpeg(image_rgb: np.ndarray, longest_px: int, quality: int = THUMBNAIL_QUALITY) -> bytes:
    """``image_rgb`` as a JPEG of :func:`thumbnail_size`."""
    import cv2

    height, width = image_rgb.shape[:2]
    size = thumbnail_size(width, height, longest_px)
    if size != (width, height):
        image_rgb = cv2.resize(image_rgb, size, interpolation=cv2.INTER_AREA)
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("OpenCV could not encode the thumbnail")
    return bytes(jpeg.tobytes())


class _Pacer:
    """At most one event per ``interval_ns`` of capture time for each source (thumbnails, traced frames)."""

    def __init__(self, interval_s: float, what: str) -> None:
        if not interval_s >= 0:
            raise ValueError(f"the {what} interval must be 0 or positive, got {interval_s} s")
        self.interval_ns = round(interval_s * 1e9)
        self._last: dict[str, int] = {}  # source id -> capture time of its last event

    def due(self, source_id: str, capture_ns: int) -> bool:
        last = self._last.get(source_id)
        return last is None or capture_ns - last >= self.interval_ns

    def take(self, source_id: str, capture_ns: int) -> int | None:
        """Count an event at ``capture_ns``; returns the previous one's time, for :meth:`undo`."""
        previous = self._last.get(source_id)
        self._last[source_id] = capture_ns
        return previous

    def undo(self, source_id: str, previous: int | None) -> None:
        """Forget the event :meth:`take` counted last: the pacing counts from ``previous`` again."""
        if previous is None:
            del self._last[source_id]
        else:
            self._last[source_id] = previous


class Recorder(Worker):
    """Stores published frames (heartbeats are ignored) from its own writer thread.

    Args:
        path: the SQLite database; created with its parent folders if absent, appended to otherwise.
        queue_size: frames waiting for the disk before new ones are dropped from the recording.
        run_info: what describes this run (model, threshold, versions, ...), stored as JSON in ``runs.info``.
        thumbnail_px: longest side of the camera thumbnails of frames with cracks (0: none are stored).
        thumbnail_interval_s: least capture time between two thumbnails of one source (0: every frame with cracks).
        trace_cracks: trace the cracks of frames on the writer thread and keep them (module docstring): for a
            run whose camera model lets the report measure them.
        trace_interval_s: least capture time between two traced frames of one source (0: every frame with cracks).

    Attributes:
        written: frames committed.
        dropped: frames not recorded because the writer fell behind.
        lost: frames not recorded because writing failed (disk full, database locked) or was stopped.
        errors: failed write attempts; the first of a series is logged, and the recording pauses.
    """

    join_timeout_s = 10.0
    retry_s = 1.0
    """After a failed write, frames are counted as lost without writing for this long, then a write is tried."""
    busy_timeout_s = 5.0
    """How long one write waits for a database another process has locked."""

    def __init__(
        self,
        path: str | Path,
        queue_size: int = 256,
        run_info: Mapping[str, object] | None = None,
        thumbnail_px: int = THUMBNAIL_PX,
        thumbnail_interval_s: float = THUMBNAIL_INTERVAL_S,
        trace_cracks: bool = False,
        trace_interval_s: float = TRACE_INTERVAL_S,
    ) -> None:
        super().__init__()
        if thumbnail_px < 0:
            raise ValueError(f"the thumbnail size must be 0 (none) or positive, got {thumbnail_px}")
        self.thumbnail_px = thumbnail_px
        self._thumbnail_pacing = _Pacer(thumbnail_interval_s, "thumbnail")  # decided on the publishing thread
        self.trace_min_px = MIN_CRACK_PIXELS if trace_cracks else None
        self._trace_pacing = _Pacer(trace_interval_s, "trace")  # decided on the writer thread
        self.thumbnails_skipped = 0
        self.traces_failed = 0
        self._images: dict[int, np.ndarray] = {}  # seq -> camera image waiting for the writer
        self._images_lock = threading.Lock()
        self.path = Path(path).expanduser()
        if self.path.name in ("", ".", ".."):
            raise RecordError(f"cannot record to {str(path)!r}: it is a folder; name a database file such as flight.db")
        self.run_info = dict(run_info or {})
        self.masks_root = self.path.with_name(self.path.stem + "-masks")
        self._queue: queue.Queue[MaskMessage | threading.Event | None] = queue.Queue(maxsize=queue_size)
        self._db: sqlite3.Connection | None = None
        self.run_id = 0
        self.written = 0
        self.dropped = 0
        self.lost = 0
        self.errors = 0
        self._failed_at: float | None = None  # when the current series of failed writes began
        self._lost_before_failure = 0
        self._retry_at = 0.0
        self._abandoned = False

    @property
    def thread_name(self) -> str:
        return f"record:{self.path.name}"

    def _open_impl(self) -> None:
        """Create or open the database and register a new run; the writer thread starts next."""
        _check_existing(self.path)
        db: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=self.busy_timeout_s)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.executescript(_SCHEMA)
            _add_missing_columns(db)
            traced = {} if self.trace_min_px is None else {"trace_min_px": self.trace_min_px}
            info = json.dumps({**self.run_info, "thumbnail_px": self.thumbnail_px, **traced}, sort_keys=True)
            db.execute("BEGIN")  # the run's row and its masks folder: both or neither
            cursor = db.execute("INSERT INTO runs (started_ns, info) VALUES (?, ?)", (time.time_ns(), info))
            self.run_id = int(cursor.lastrowid or 0)
            (self.masks_root / self._run_dir).mkdir(parents=True, exist_ok=True)
            db.execute("COMMIT")
        except (OSError, sqlite3.Error) as exc:
            if db is not None:
                db.close()  # rolls the run's row back
            folder = self.path.parent
            if folder.is_dir() and not os.access(folder, os.W_OK):
                raise RecordError(
                    f"cannot record to {self.path}: its folder {folder} is not writable (read-only filesystem?)"
                ) from exc
            raise RecordError(f"cannot record to {self.path}: {exc}") from exc
        self._db = db
        log.info("recording frames to %s (masks in %s)", self.path, self.masks_root / self._run_dir)

    @property
    def _run_dir(self) -> str:
        return f"run{self.run_id:04d}"

    def send(self, message: MaskMessage) -> None:
        """Queue a published frame for the writer; never blocks."""
        self._enqueue(message)

    def _enqueue(self, message: MaskMessage) -> bool:
        """Queue a mask frame for the writer; ``False`` if it was dropped (or is a heartbeat)."""
        if message.mask is None:
            return False
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            if not self.dropped:
                log.warning("recording to %s falls behind; dropping frames from the recording", self.path)
            self.dropped += 1
            return False
        return True

    def send_frame(self, frame: Frame, message: MaskMessage) -> None:
        """Queue a published frame with its camera image (for a thumbnail: frames with cracks, paced); never blocks."""
        previous = None
        if self._wants_thumbnail(message):
            with self._images_lock:
                if len(self._images) < THUMBNAIL_BACKLOG:
                    self._images[message.seq] = frame.image  # the pipeline never modifies a frame's image
                    previous = self._thumbnail_pacing.take(message.source_id, message.capture_ns)
                else:
                    self.thumbnails_skipped += 1
        if not self._enqueue(message):
            with self._images_lock:  # dropped from the recording: its image is not kept either
                if self._images.pop(message.seq, None) is not None:  # so the pacing counts from the last one kept
                    self._thumbnail_pacing.undo(message.source_id, previous)

    def _wants_thumbnail(self, message: MaskMessage) -> bool:
        """The frame has cracks and its source's last thumbnail is at least the interval older."""
        if not self.thumbnail_px or message.stats is None or not message.stats.crack_pixels:
            return False
        return self._thumbnail_pacing.due(message.source_id, message.capture_ns)

    def counters(self) -> dict[str, int]:
        return {
            "recorded": self.written, "record_dropped": self.dropped, "record_lost": self.lost,
            "record_errors": self.errors, "record_thumbnails_skipped": self.thumbnails_skipped,
            "record_traces_failed": self.traces_failed,
        }  # fmt: skip

    def flush(self, timeout_s: float) -> None:
        """Wait until every frame queued so far is committed, so ``written`` counts it.

        If that takes longer than ``timeout_s`` (a database another process keeps locked), the writer stops:
        what it has not committed is counted in ``lost``, and nothing more is written, so the counters are
        final when this returns.
        """
        if self._thread is None or flush_writer(self._queue, timeout_s):
            return
        self._abandoned = True
        if self._db is not None:
            self._db.interrupt()
        settled = flush_writer(self._queue, self.busy_timeout_s + timeout_s)
        log.warning(
            "recording to %s was still writing after %.0f s (database locked by another process?): %s",
            self.path, timeout_s,
            "stopped; frames not committed are counted in record_lost" if settled else "the writer does not answer",
        )  # fmt: skip

    def _wake(self) -> None:
        """Write everything queued, then end the thread."""
        self._queue.put(_END)

    def _close_impl(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _run(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            while batch[-1] is not _END and len(batch) < _BATCH_MAX:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = batch[-1] is _END
            messages = [m for m in batch if isinstance(m, MaskMessage)]
            if messages:
                self._write(messages)
            for flushed in (m for m in batch if isinstance(m, threading.Event)):
                flushed.set()

    def _write(self, messages: list[MaskMessage]) -> None:
        assert self._db is not None
        now = time.monotonic()
        with self._images_lock:  # taken whatever happens next: a frame not written keeps no image
            images = {m.seq: image for m in messages if (image := self._images.pop(m.seq, None)) is not None}
        if self._abandoned or (self._failed_at is not None and now < self._retry_at):
            self.lost += len(messages)  # paused: counted, not written
            return
        stored: list[Path] = []
        try:
            rows = []
            for message in messages:
                relative = self._store_mask(message)
                stored.append(self.path.parent / relative)
                thumb = self._store_thumbnail(message, images.get(message.seq))
                if thumb is not None:
                    stored.append(self.path.parent / thumb)
                rows.append(self._row(message, relative, thumb))
            self._db.execute("BEGIN")
            self._db.executemany(_INSERT, rows)
            self._db.execute("COMMIT")
        except (OSError, sqlite3.Error, ValueError) as exc:
            with contextlib.suppress(sqlite3.Error):
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
            for path in stored:  # masks whose rows were not committed
                path.unlink(missing_ok=True)
            self._failed(now, len(messages), exc)
            return
        self.written += len(messages)
        if self._failed_at is not None:
            log.warning(
                "recording to %s resumed after %.0f s; %d frame(s) lost meanwhile (record_lost)",
                self.path, now - self._failed_at, self.lost - self._lost_before_failure,
            )  # fmt: skip
            self._failed_at = None

    def _failed(self, now: float, frames: int, exc: Exception) -> None:
        """Count a failed write; the first of a series is logged and pauses the recording."""
        self.errors += 1
        if self._failed_at is None:
            self._failed_at, self._lost_before_failure = now, self.lost
            log.error(
                "recording to %s failed: %s; pausing (frames are counted in record_lost, retried every %g s)",
                self.path, exc, self.retry_s,
            )  # fmt: skip
        self.lost += frames
        self._retry_at = now + self.retry_s

    def _store_mask(self, message: MaskMessage) -> str:
        """Write the mask PNG atomically (temporary file, then rename); returns its path relative to the db."""
        assert message.mask is not None
        relative = f"{self.masks_root.name}/{self._run_dir}/{message.frame_id:010d}.png"
        final = self.path.parent / relative
        partial = final.with_name(final.name + ".partial")
        try:
            partial.write_bytes(encode_mask(message.mask, MaskEncoding.PNG))
            partial.replace(final)
        except OSError:
            partial.unlink(missing_ok=True)  # a full disk leaves no empty temporary files behind
            raise
        return relative

    def _store_thumbnail(self, message: MaskMessage, image: np.ndarray | None) -> str | None:
        """Write the frame's camera thumbnail (if it has an image) atomically, like its mask; returns its path."""
        if image is None:
            return None
        relative = f"{self.masks_root.name}/{self._run_dir}/{message.frame_id:010d}.jpg"
        final = self.path.parent / relative
        partial = final.with_name(final.name + ".partial")
        try:
            partial.write_bytes(thumbnail_jpeg(image, self.thumbnail_px))
            partial.replace(final)
        except OSError:
            partial.unlink(missing_ok=True)
            raise
        return relative

    def _row(self, message: MaskMessage, mask_path: str, thumb_path: str | None = None) -> tuple[object, ...]:
        stats = message.stats
        assert stats is not None
        boxes = json.dumps([[b.x, b.y, b.w, b.h, b.pixels] for b in stats.boxes])
        return (
            self.run_id, message.seq, message.frame_id, message.source_id, message.capture_ns, message.publish_ns,
            message.model_hash.hex(), message.threshold, message.width, message.height, stats.crack_pixels,
            stats.coverage_pct, stats.components, stats.skeleton_px, stats.max_width_px, boxes, mask_path,
            *_pose_row(message.pose), thumb_path, self._traces(message),
        )  # fmt: skip

    def _traces(self, message: MaskMessage) -> str | None:
        """The frame's cracks traced, as JSON; ``None`` when the run is not traced, the frame has no crack, its
        source's last traced frame is less than the interval older, or tracing failed (the report traces it then)."""
        assert message.mask is not None and message.stats is not None
        if self.trace_min_px is None or not message.stats.crack_pixels:
            return None
        if not self._trace_pacing.due(message.source_id, message.capture_ns):
            return None
        self._trace_pacing.take(message.source_id, message.capture_ns)  # a failed frame paces too: failures stay cheap
        try:
            return dump_traces(trace_cracks(message.mask, self.trace_min_px))
        except Exception as exc:  # a cache of what the stored mask gives again: never worth a frame
            if not self.traces_failed:
                log.warning("tracing frame %d failed (%r); such frames are recorded untraced", message.frame_id, exc)
            self.traces_failed += 1
            return None
