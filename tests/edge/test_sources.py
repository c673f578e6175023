"""Frame sources: files, folders, synthetic cracks and live captures (fake and real HTTP stream)."""

from __future__ import annotations

import http.server
import itertools
import logging
import os
import socketserver
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from crackseg.edge.runtime.sources import FrameSource, SourceError, open_source
from crackseg.edge.runtime.sources.capture import (
    CaptureSource,
    CsiSource,
    GstSource,
    ReconnectPolicy,
    StreamSource,
    V4l2Source,
    has_backend,
)
from crackseg.edge.runtime.sources.file import VideoFileSource
from crackseg.edge.runtime.sources.folder import ImageFolderSource
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.sources.synthetic import CrackSynth, SyntheticSource
from crackseg.edge.runtime.sources.uri import parse_uri

cv2 = pytest.importorskip("cv2")

FAST = ReconnectPolicy(initial_s=0.01, max_s=0.02)


def _bgr(i: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frame i of test media: flat BGR colour (10 i, 100, 200), so RGB reads back as (200, 100, 10 i)."""
    return np.full((height, width, 3), (10 * i, 100, 200), np.uint8)


def _rgb_of(frame: Frame) -> tuple[int, int, int]:
    r, g, b = (round(float(v)) for v in frame.image.reshape(-1, 3).mean(axis=0))
    return r, g, b


def _read_all(source: FrameSource, timeout_s: float = 1.0) -> list[Frame]:
    frames = []
    while source.is_streaming:
        frame = source.read(timeout_s)
        if frame is not None:
            frames.append(frame)
    return frames


# --- dispatch -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "cls"),
    [
        ("synthetic://", SyntheticSource),
        ("/tmp/clip.mp4", VideoFileSource),
        ("/tmp/frames/*.png", ImageFolderSource),
        ("0", V4l2Source),
        ("rtsp://127.0.0.1:8554/cam", StreamSource),
        ("http://127.0.0.1/x.mjpg", StreamSource),
        ("csi://0", CsiSource),
        ("videotestsrc ! appsink", GstSource),
    ],
)
def test_open_source_picks_class(uri: str, cls: type) -> None:
    source = open_source(uri)
    assert type(source) is cls
    assert isinstance(source, FrameSource)
    assert not source.is_streaming  # created, not opened


def test_query_options_are_typed_and_checked() -> None:
    source = open_source("synthetic://?width=64&height=32&fps=0&seed=7&count=3")
    assert isinstance(source, SyntheticSource)
    assert (source.width, source.height, source.fps, source.seed, source.count) == (64, 32, 0.0, 7, 3)
    assert open_source("synthetic://?seed=7", seed=9).seed == 9  # keyword options win over the query
    with pytest.raises(SourceError, match=r"unknown option 'widht' for synthetic sources \(did you mean 'width'"):
        open_source("synthetic://?widht=64")
    with pytest.raises(SourceError, match="bad value for option 'fps'"):
        open_source("synthetic://?fps=fast")
    with pytest.raises(SourceError, match="not a boolean"):
        open_source("file:///tmp/a.mp4?loop=maybe")
    stream = open_source("rtsp://127.0.0.1/cam?channel=2&subtype=0")  # the server's query, not options
    assert stream.uri.url.endswith("?channel=2&subtype=0")


def test_read_before_open_is_an_error() -> None:
    with pytest.raises(SourceError, match=r"read\(\) before open\(\)"):
        open_source("synthetic://").read(0.1)


def test_package_imports_without_opencv() -> None:
    code = (
        "import sys; sys.modules['cv2'] = None\n"
        "from crackseg.edge.runtime.sources import SourceError, open_source\n"
        "src = open_source('csi://0?width=640')\n"
        "assert 'crackseg.edge.runtime.sources.synthetic' not in sys.modules\n"
        "try:\n"
        "    src.open()\n"
        "except SourceError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert "OpenCV (cv2) is needed" in result.stdout


# --- video files --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 frames of 64x48 MJPG at 20 fps, frame i coloured by ``_bgr(i)``."""
    path = tmp_path_factory.mktemp("video") / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 20.0, (64, 48))
    assert writer.isOpened()
    for i in range(10):
        writer.write(_bgr(i))
    writer.release()
    return path


def test_video_plays_every_frame_in_rgb(video: Path) -> None:
    with open_source(str(video), realtime=False) as source:
        frames = _read_all(source)
        assert source.read(0.1) is None  # stays at end of stream
        assert source.stats.delivered == 10
    assert [f.frame_id for f in frames] == list(range(10))
    assert [f.name for f in frames] == [f"clip#{i}" for i in range(10)]
    for i, frame in enumerate(frames):
        assert frame.image.shape == (48, 64, 3)
        assert frame.image.dtype == np.uint8
        assert frame.source_id == f"file://{video}"
        assert np.allclose(_rgb_of(frame), (200, 100, 10 * i), atol=6)  # MJPG is lossy
    assert all(a.capture_ns <= b.capture_ns for a, b in itertools.pairwise(frames))


def test_video_loops_with_increasing_ids(video: Path) -> None:
    with open_source(f"file://{video}?loop=1&realtime=0") as source:
        frames = [f for f in (source.read(1.0) for _ in range(25)) if f is not None]
        assert source.is_streaming
    assert [f.frame_id for f in frames] == list(range(25))
    assert [f.name for f in frames[9:12]] == ["clip#9", "clip#0", "clip#1"]
    assert np.allclose(_rgb_of(frames[20]), _rgb_of(frames[0]), atol=1)


def test_video_realtime_pacing(video: Path) -> None:
    with open_source(str(video)) as source:  # realtime by default: the file's 20 fps
        assert isinstance(source, VideoFileSource)
        assert source.native_fps == pytest.approx(20.0)
        start = time.monotonic()
        first = source.read(1.0)
        assert source.read(0.0) is None and source.is_streaming  # next frame not due yet: a timeout
        frames = [first, *_read_all(source)]
        elapsed = time.monotonic() - start
    assert len(frames) == 10
    assert elapsed >= 0.4  # frame 9 is due 9/20 = 0.45 s after frame 0
    stamps = [f.capture_ns for f in frames if f is not None]
    assert (stamps[-1] - stamps[0]) / 1e9 >= 0.4  # stamped when released on schedule, not when decoded


def test_video_fps_override_paces_faster(video: Path) -> None:
    with open_source(str(video), fps=200.0) as source:
        start = time.monotonic()
        assert len(_read_all(source)) == 10
        assert time.monotonic() - start < 0.4  # 9/200 s nominal; well under the native 0.45 s


def test_video_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such video file"):
        open_source(str(tmp_path / "missing.mp4")).open()
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(SourceError, match="cannot decode video"):
        open_source(str(garbage)).open()


def test_a_truncated_video_says_it_ended_early(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    video, cut = tmp_path / "clip.avi", tmp_path / "cut.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(30):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    cut.write_bytes(video.read_bytes()[: video.stat().st_size // 2])  # a copy cut short
    with caplog.at_level(logging.WARNING), open_source(str(cut), realtime=False) as source:
        played = len(_read_all(source))
    assert 0 < played < 30
    assert f"cut.avi ended after {played} of the 30 frames its header announces" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING), open_source(str(video), realtime=False) as source:
        assert len(_read_all(source)) == 30
    assert "announces" not in caplog.text  # a complete file ends quietly


# --- image folders ------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    images = tmp_path / "images"
    images.mkdir()
    for i in (10, 2, 1):
        cv2.imwrite(str(images / f"img{i}.png"), _bgr(i, 16, 24))
    (images / "img3.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    (images / "notes.txt").write_text("not an image")
    return images


def test_folder_natural_order_skips_corrupt(folder: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING), open_source(str(folder)) as source:
        frames = _read_all(source)
        stats = source.stats
    assert [f.name for f in frames] == ["img1", "img2", "img10"]
    assert [f.frame_id for f in frames] == [0, 1, 2]
    assert [_rgb_of(f) for f in frames] == [(200, 100, 10), (200, 100, 20), (200, 100, 100)]  # PNG: exact
    assert (stats.delivered, stats.corrupt_skipped) == (3, 1)
    assert "img3.jpg" in caplog.text


def test_truncated_images_are_skipped_named_and_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (96, 128, 3), dtype=np.uint8)
    for name in ("a.jpg", "b.png", "c.jpg"):
        cv2.imwrite(str(tmp_path / name), noise)
    padded = tmp_path / "c.jpg"  # a complete JPEG with NUL padding after its end marker is fine
    padded.write_bytes(padded.read_bytes() + b"\x00" * 16)
    for name in ("a.jpg", "b.png"):  # cut in half: libjpeg would fill a.jpg's missing rows with grey
        path = tmp_path / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with caplog.at_level(logging.WARNING), open_source(str(tmp_path)) as source:
        frames = _read_all(source)
        stats = source.stats
    assert [f.name for f in frames] == ["c"] and stats.corrupt_skipped == 2
    assert f"{tmp_path / 'a.jpg'} (truncated JPG (no end-of-image marker" in caplog.text
    assert f"{tmp_path / 'b.png'} (truncated PNG" in caplog.text


def test_folder_glob_single_file_and_loop(folder: Path) -> None:
    with open_source(str(folder / "img1*.png")) as source:
        assert [f.name for f in _read_all(source)] == ["img1", "img10"]
    with open_source(str(folder / "img2.png")) as source:
        assert [f.name for f in _read_all(source)] == ["img2"]
    with open_source(str(folder), loop=True) as source:
        names = [f.name for f in (source.read(1.0) for _ in range(7)) if f is not None]
        assert source.stats.corrupt_skipped == 2  # counted on each pass
    assert names == ["img1", "img2", "img10", "img1", "img2", "img10", "img1"]


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "empty")).open()
    with pytest.raises(SourceError, match="no images"):
        open_source(str(tmp_path / "*.png")).open()
    with pytest.raises(SourceError, match="no such image file or directory"):
        open_source(str(tmp_path / "gone.png")).open()


def test_folder_attaches_masks_by_stem(folder: Path, tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    for i in (1, 2, 3, 10):
        mask = np.zeros((16, 24), np.uint8)
        mask[4:8, i : i + 3] = 1 if i == 2 else 255  # {0, 1} and {0, 255} masks both read as bool
        cv2.imwrite(str(masks / f"img{i}.png"), mask)
    with open_source(str(folder), masks_dir=masks) as source:
        frames = _read_all(source)
    assert [f.name for f in frames] == ["img1", "img2", "img10"]
    for frame, i in zip(frames, (1, 2, 10), strict=True):
        assert frame.mask_gt is not None and frame.mask_gt.dtype == bool
        assert frame.mask_gt.sum() == 12
        assert frame.mask_gt[4:8, i : i + 3].all()


def test_folder_mask_problems(folder: Path, tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    cv2.imwrite(str(masks / "img1.png"), np.zeros((16, 24), np.uint8))
    with pytest.raises(SourceError, match=r"3 of 4 images have no mask .*img2.png"):
        open_source(str(folder), masks_dir=masks).open()
    for name in ("img2", "img3", "img10"):
        cv2.imwrite(str(masks / f"{name}.png"), np.zeros((8, 8), np.uint8))
    with open_source(str(folder), masks_dir=masks) as source:
        assert source.read(1.0) is not None
        with pytest.raises(SourceError, match=r"mask img2\.png is 8x8 but image img2\.png is 24x16"):
            source.read(1.0)
        assert not source.is_streaming


def test_deepcrack_test_split_with_masks(datasets_root: Path) -> None:
    root = datasets_root / "DeepCrack"
    with open_source(str(root / "images" / "test"), masks_dir=root / "masks" / "test") as source:
        assert isinstance(source, ImageFolderSource)
        assert len(source) == 237
        frames = [source.read(1.0) for _ in range(3)]
    stems = ["11125-1", "11125-2", "11125-3"]  # natural order of the split's first files
    for frame, stem in zip(frames, stems, strict=True):
        assert frame is not None and frame.name == stem
        assert frame.image.shape == (384, 544, 3)
        assert frame.mask_gt is not None and frame.mask_gt.shape == (384, 544)
        assert 0 < frame.mask_gt.mean() < 0.2  # a crack, not an inverted mask


# --- synthetic ----------------------------------------------------------------------------------


def test_synthetic_is_deterministic_per_seed() -> None:
    def first(seed: int, n: int = 3) -> list[Frame]:
        with open_source(f"synthetic://?width=96&height=64&fps=0&seed={seed}&count={n}") as source:
            return _read_all(source)

    a, b, c = first(1), first(1), first(2)
    assert len(a) == 3 and [f.frame_id for f in a] == [0, 1, 2]
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.image, y.image) and np.array_equal(x.mask_gt, y.mask_gt)
    assert not np.array_equal(a[0].image, c[0].image)
    assert not np.array_equal(a[0].image, a[1].image)
    synth = CrackSynth(96, 64, seed=1)
    image, mask = synth.render(2)  # out of order: frame k depends only on (seed, k)
    assert np.array_equal(image, a[2].image) and np.array_equal(mask, a[2].mask_gt)


def test_sources_iterate_and_reopen(video: Path) -> None:
    source = open_source("synthetic://?width=32&height=32&fps=0&count=2")
    with source:
        first = list(source)  # iteration ends at end of stream
    with source:  # a closed source opens again from the start
        again = list(source)
    assert len(first) == len(again) == 2
    assert np.array_equal(first[0].image, again[0].image)
    assert [f.frame_id for f in first + again] == [0, 1, 2, 3]  # ids stay monotonic per source
    clip = open_source(str(video), realtime=False)
    for _ in range(2):
        with clip:
            assert [f.name for f in clip][:2] == ["clip#0", "clip#1"]


def test_synthetic_mask_matches_the_drawn_cracks() -> None:
    synth = CrackSynth(160, 128, seed=5)
    ring_kernel = np.ones((9, 9), np.uint8)
    for index in range(8):
        image, mask = synth.render(index)
        assert image.shape == (128, 160, 3) and image.dtype == np.uint8
        assert mask.shape == (128, 160) and mask.dtype == bool
        assert 0.001 < mask.mean() < 0.2
        grey = image.mean(axis=2)
        ring = (cv2.dilate(mask.astype(np.uint8), ring_kernel) > 0) & ~mask  # background within 4 px
        assert grey[mask].mean() < 0.75 * grey[ring].mean()  # crack pixels are darker than their surroundings
        # Width profile 1-6 px: the distance to the background stays small (junctions add a little).
        depth = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 5)
        assert depth.max() <= 5.0
        assert np.percentile(depth[depth > 0], 50) <= 2.0  # mostly thin


def test_synthetic_count_pacing_and_speed() -> None:
    with open_source("synthetic://?width=64&height=64&fps=50&count=5&pace=file") as source:
        start = time.monotonic()
        frames = _read_all(source)
        assert time.monotonic() - start >= 0.07  # 4 periods of 20 ms
    assert [f.name for f in frames] == [f"synthetic-0-{i:06d}" for i in range(5)]
    synth = CrackSynth(512, 512, seed=0)
    start = time.process_time()  # CPU time: other processes on a busy CI host do not count
    for index in range(30):
        synth.render(index)
    assert 30 / max(time.process_time() - start, 1e-9) > 30  # ~300 fps on one core; a loose guard


def _index(frame: Frame) -> int:
    assert frame.name is not None
    return int(frame.name.rsplit("-", 1)[1])


def test_synthetic_is_live_by_default_a_late_reader_gets_the_newest_frame() -> None:
    with open_source("synthetic://?width=32&height=32&fps=50") as source:
        assert source.live
        first = source.read(5.0)
        time.sleep(0.2)  # ten capture periods pass unread
        late = source.read(5.0)
        stale = source.stats.dropped_stale
    assert first is not None and late is not None and _index(first) == 0
    assert _index(late) >= 10  # at least 0.2 s of captures went by: the newest one is delivered
    assert stale == _index(late) - 1  # every frame in between counted, none delivered
    assert late.capture_ns - first.capture_ns == round(_index(late) / 50 * 1e9)  # stamped when it was captured


def test_synthetic_paced_like_a_file_delivers_every_frame_to_a_late_reader() -> None:
    with open_source("synthetic://?width=32&height=32&fps=50&count=4&pace=file") as source:
        assert not source.live
        frames = [source.read(5.0)]
        time.sleep(0.2)
        frames += _read_all(source)
        assert source.stats.dropped_stale == 0
    assert [_index(f) for f in frames if f is not None] == [0, 1, 2, 3]


def test_a_live_synthetic_source_ends_at_its_count() -> None:
    with open_source("synthetic://?width=32&height=32&fps=100&count=3") as source:
        frames = [source.read(5.0)]
        time.sleep(0.2)  # frames 1 and 2 are captured meanwhile; there is no frame 3
        frames += _read_all(source)
        stale = source.stats.dropped_stale
    assert [_index(f) for f in frames if f is not None] == [0, 2] and stale == 1 and not source.is_streaming


def test_synthetic_pace_and_fps_zero() -> None:
    assert not open_source("synthetic://?fps=0").live  # unpaced: as fast as read, every frame
    with pytest.raises(SourceError, match="pace must be one of live, file"):
        open_source("synthetic://?pace=camera")


# --- live capture (fake device) -----------------------------------------------------------------


class FakeCamera:
    """A scripted device: ``capture_factory`` for ``CaptureSource``; every grab waits for ``allow``."""

    def __init__(self, open_failures: int = 0, frames_per_session: int | None = None, gated: bool = False) -> None:
        self.open_failures = open_failures
        self.frames_per_session = frames_per_session
        self.opens = 0
        self.grabbed = 0
        self.open_times: list[float] = []
        self.corrupt_at: set[int] = set()
        self._gate = threading.Semaphore(0) if gated else None

    def allow(self, n: int) -> None:
        assert self._gate is not None
        self._gate.release(n)

    def wait_grabbed(self, n: int, timeout_s: float = 2.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.grabbed < n:
            assert time.monotonic() < deadline, f"camera grabbed only {self.grabbed} of {n}"
            time.sleep(0.001)

    def __call__(self) -> FakeCapture:
        self.opens += 1
        self.open_times.append(time.monotonic())
        return FakeCapture(self, opened=self.opens > self.open_failures)


class FakeCapture:
    def __init__(self, camera: FakeCamera, opened: bool) -> None:
        self.camera, self.opened, self.session_frames = camera, opened, 0
        self.released = False

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.opened

    def grab(self) -> bool:
        camera = self.camera
        if camera.frames_per_session is not None and self.session_frames >= camera.frames_per_session:
            return False  # the stream drops
        if camera._gate is not None and not camera._gate.acquire(timeout=0.05):
            return False  # nothing for 50 ms: counts as a drop, as a read timeout would
        time.sleep(0.001)
        self.session_frames += 1
        camera.grabbed += 1
        return True

    def retrieve(self) -> tuple[bool, np.ndarray | None]:
        index = self.camera.grabbed - 1
        if index in self.camera.corrupt_at:
            return False, None
        return True, _bgr(index % 25, 8, 8)

    def release(self) -> None:
        self.released = True


def _live(camera: FakeCamera, reconnect: ReconnectPolicy = FAST) -> CaptureSource:
    return V4l2Source(parse_uri("/dev/video9"), reconnect=reconnect, capture_factory=camera, source_id="cam")


def test_live_newest_frame_wins() -> None:
    camera = FakeCamera(gated=True)
    with _live(camera) as source:
        camera.allow(5)
        camera.wait_grabbed(5)
        time.sleep(0.01)
        frame = source.read(1.0)
        assert frame is not None and frame.frame_id == 4  # ids 0..3 were replaced before anyone read them
        assert _rgb_of(frame) == (200, 100, 40)
        assert source.stats.dropped_stale == 4
        assert source.read(0.02) is None  # nothing new: a timeout, still streaming
        assert source.is_streaming
        camera.allow(1)
        frame = source.read(1.0)
        assert frame is not None and frame.frame_id == 5 and frame.source_id == "cam"
        stats = source.stats
    assert (stats.delivered, stats.dropped_stale) == (2, 4)


def test_live_capture_time_is_grab_time_not_read_time() -> None:
    camera = FakeCamera(gated=True)
    with _live(camera) as source:
        before = time.time_ns()
        camera.allow(1)
        camera.wait_grabbed(1)
        time.sleep(0.1)
        read_at = time.time_ns()
        frame = source.read(1.0)
    assert frame is not None
    assert before <= frame.capture_ns <= read_at - 50_000_000


def test_live_reconnects_with_backoff() -> None:
    camera = FakeCamera(open_failures=3)
    policy = ReconnectPolicy(initial_s=0.02, max_s=0.05, factor=2.0)
    with _live(camera, policy) as source:
        frame = source.read(2.0)
        assert frame is not None
        assert source.stats.reconnects == 3
    waits = np.diff(camera.open_times[:4])
    assert waits.sum() >= 0.02 + 0.04 + 0.05 - 0.005
    assert waits[2] >= 0.045  # capped at max_s, not 0.08


def test_the_backoff_restarts_once_frames_flow_again() -> None:
    camera = FakeCamera(open_failures=3, frames_per_session=2)
    policy = ReconnectPolicy(initial_s=0.02, max_s=0.2, factor=3.0)
    with _live(camera, policy) as source:
        deadline = time.monotonic() + 3.0
        while camera.opens < 6 and time.monotonic() < deadline:
            source.read(0.05)
    waits = np.diff(camera.open_times[:6])
    assert waits[2] >= 0.17  # 0.02, 0.06, 0.18 after three refusals
    assert waits[3] < 0.1 and waits[4] < 0.1  # after a session with frames: 0.02 again, not 0.2


def test_live_stream_drop_reconnects_and_ids_keep_increasing() -> None:
    camera = FakeCamera(frames_per_session=3)
    with _live(camera) as source:
        ids = []
        deadline = time.monotonic() + 2.0
        while camera.opens < 3 and time.monotonic() < deadline:
            frame = source.read(0.1)
            if frame is not None:
                ids.append(frame.frame_id)
        assert camera.opens >= 3 and source.stats.reconnects >= 2
    assert ids and ids == sorted(set(ids))


def test_live_gives_up_after_max_retries() -> None:
    camera = FakeCamera(open_failures=10**9)
    with _live(camera, ReconnectPolicy(initial_s=0.01, max_s=0.01, max_retries=2)) as source:
        with pytest.raises(SourceError, match="cam: cannot open; gave up after 3 consecutive failed attempts"):
            source.read(2.0)
        assert not source.is_streaming
        assert source.read(0.01) is None
    assert camera.opens == 3


def test_live_counts_corrupt_frames() -> None:
    camera = FakeCamera(gated=True)
    camera.corrupt_at = {1}
    with _live(camera) as source:
        camera.allow(1)
        first = source.read(1.0)
        camera.allow(2)
        camera.wait_grabbed(3)
        second = source.read(1.0)
        assert source.stats.corrupt_skipped == 1
    assert first is not None and second is not None
    assert (first.frame_id, second.frame_id) == (0, 1)


def test_reconnect_policy_delays() -> None:
    delays = ReconnectPolicy().delays()
    assert [next(delays) for _ in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    slow = ReconnectPolicy(initial_s=1.0, max_s=5.0, factor=3.0).delays()
    assert [next(slow) for _ in range(4)] == [1.0, 3.0, 5.0, 5.0]


# --- OpenCV backends: GStreamer check, FFmpeg options -------------------------------------------


class _BuildInfo:
    def __init__(self, text: str) -> None:
        self.text = text

    def getBuildInformation(self) -> str:  # noqa: N802 (OpenCV's name)
        return self.text


def test_has_backend_reads_build_information() -> None:
    info = "  Video I/O:\n    FFMPEG:                      YES\n    GStreamer:                   YES (1.20.3)\n"
    assert has_backend(_BuildInfo(info), "GStreamer") and has_backend(_BuildInfo(info), "FFMPEG")
    assert not has_backend(_BuildInfo(info.replace("YES (1.20.3)", "NO")), "GStreamer")


def test_gstreamer_kinds_fail_clearly_without_gstreamer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cv2, "getBuildInformation", lambda: "    GStreamer:                   NO\n")
    for uri in ("csi://0", "gst://videotestsrc ! appsink"):
        source = open_source(uri)
        with pytest.raises(SourceError, match=r"need OpenCV built with GStreamer.*PyPI.*JetPack"):
            source.open()
        assert not source.is_streaming


def test_gstreamer_pipelines() -> None:
    csi = open_source("csi://1?width=1920&height=1080&fps=60&flip=2")
    assert isinstance(csi, CsiSource)
    pipeline = csi.pipeline()
    assert pipeline.startswith("nvarguscamerasrc sensor-id=1 ! video/x-raw(memory:NVMM), width=1920, height=1080")
    assert "framerate=60/1" in pipeline and "flip-method=2" in pipeline
    assert pipeline.endswith("appsink drop=1 max-buffers=1 sync=false")
    raw = open_source("videotestsrc ! videoconvert")
    assert isinstance(raw, GstSource)
    assert raw.pipeline() == "videotestsrc ! videoconvert ! videoconvert ! video/x-raw, format=BGR ! " + (
        "appsink drop=1 max-buffers=1 sync=false"
    )
    given = open_source("videotestsrc ! appsink name=s")
    assert isinstance(given, GstSource) and given.pipeline() == "videotestsrc ! appsink name=s"


class _RecordingCapture:
    calls: ClassVar[list[tuple[str, int, str | None]]] = []

    def __init__(self, target: str, api: int, params: list[int]) -> None:
        self.calls.append((target, api, os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS")))
        self.props: dict[int, float] = {}
        assert params[0] == cv2.CAP_PROP_OPEN_TIMEOUT_MSEC

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return False

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def release(self) -> None:
        pass


@pytest.mark.parametrize(
    ("uri", "env", "option", "expected"),
    [
        (
            "rtsp://127.0.0.1:8554/cam",
            None,
            None,
            "rtsp_transport;tcp|fflags;nobuffer|flags;low_delay|max_delay;100000",
        ),
        ("http://127.0.0.1/x.mjpg", None, None, "fflags;nobuffer|flags;low_delay"),
        ("rtsp://127.0.0.1:8554/cam", "rtsp_transport;udp", None, "rtsp_transport;udp"),  # the user's env wins
        ("rtsp://127.0.0.1:8554/cam", "rtsp_transport;udp", "stimeout;1000", "stimeout;1000"),  # the option wins
    ],
)
def test_stream_ffmpeg_options(
    monkeypatch: pytest.MonkeyPatch, uri: str, env: str | None, option: str | None, expected: str
) -> None:
    if not has_backend(cv2, "FFMPEG"):
        pytest.skip("this OpenCV build has no FFmpeg backend")
    monkeypatch.setattr(cv2, "VideoCapture", _RecordingCapture)
    if env is None:
        monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", raising=False)
    else:
        monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", env)
    _RecordingCapture.calls = []
    source = open_source(uri, ffmpeg_options=option, reconnect=FAST)
    assert isinstance(source, StreamSource)
    capture = source._create_capture()
    assert isinstance(capture, _RecordingCapture)
    assert _RecordingCapture.calls == [(uri, cv2.CAP_FFMPEG, expected)]
    assert capture.props == {cv2.CAP_PROP_BUFFERSIZE: 1}
    assert os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS") == env  # restored after the open


# --- a real network stream: MJPEG over HTTP on 127.0.0.1 ---------------------------------------


class _MjpegHandler(http.server.BaseHTTPRequestHandler):
    """Serves ``frames`` JPEG frames per connection as multipart MJPEG, then hangs up."""

    frames = 8

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for i in range(self.frames):
            ok, jpeg = cv2.imencode(".jpg", _bgr(i, 48, 64))
            assert ok
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            self.wfile.write(head + jpeg.tobytes() + b"\r\n")
            time.sleep(0.02)


@pytest.fixture
def mjpeg_server() -> Iterator[str]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _MjpegHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
    server.shutdown()
    server.server_close()


def test_real_http_stream_reconnects(mjpeg_server: str) -> None:
    if not has_backend(cv2, "FFMPEG"):
        pytest.skip("this OpenCV build has no FFmpeg backend")
    with open_source(mjpeg_server, reconnect=FAST, open_timeout_s=2.0, read_timeout_s=2.0) as source:
        frames: list[Frame] = []
        deadline = time.monotonic() + 10.0
        while (len(frames) < 10 or source.stats.reconnects < 1) and time.monotonic() < deadline:
            frame = source.read(0.5)
            if frame is not None:
                frames.append(frame)
        stats = source.stats
    assert stats.reconnects >= 1  # the server hung up after 8 frames and the source came back
    assert len(frames) >= 10
    assert [f.frame_id for f in frames] == sorted({f.frame_id for f in frames})
    assert frames[0].image.shape == (48, 64, 3)
    for r, g, b in map(_rgb_of, frames):  # RGB order (BGR would put 200 last); JPEG tolerance
        assert abs(r - 200) <= 6 and abs(g - 100) <= 6 and b <= 76


OUTAGE_PROCESS = textwrap.dedent(
    """
    import http.server, logging, socketserver, sys, threading, time
    import cv2, numpy as np
    from crackseg.edge.runtime.sources import open_source

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    jpeg = cv2.imencode(".jpg", np.full((48, 64, 3), 128, np.uint8))[1].tobytes()
    part = b"--frame\\r\\nContent-Type: image/jpeg\\r\\nContent-Length: %d\\r\\n\\r\\n" % len(jpeg) + jpeg + b"\\r\\n"
    up = threading.Event()

    class Mjpeg(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args): pass
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
            self.end_headers()
            while up.is_set():
                self.wfile.write(part)
                time.sleep(0.04)

    def serve(port):
        socketserver.TCPServer.allow_reuse_address = True
        server = socketserver.ThreadingTCPServer(("127.0.0.1", port), Mjpeg)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        up.set()
        return server

    server = serve(0)
    port = server.server_address[1]
    with open_source(f"http://127.0.0.1:{port}/s.mjpg", open_timeout_s=2, read_timeout_s=1) as source:
        deadline = time.monotonic() + 20
        while source.read(0.5) is None and time.monotonic() < deadline:
            pass
        up.clear()
        server.shutdown()
        server.server_close()
        time.sleep(float(sys.argv[1]))  # the outage
        server, back_ns = serve(port), time.time_ns()
        while time.monotonic() < deadline + 20:
            frame = source.read(0.05)
            if frame is not None and frame.capture_ns >= back_ns:
                break
        print(f"resumed {(frame.capture_ns - back_ns) / 1e9:.2f}", flush=True)
    """
)


@pytest.mark.slow
def test_a_stream_resumes_within_a_second_of_the_server_and_the_outage_is_two_log_lines() -> None:
    if not has_backend(cv2, "FFMPEG"):
        pytest.skip("this OpenCV build has no FFmpeg backend")
    # A 4 s outage: with the former 0.5 s doubling to 8 s backoff the attempts came 0.5, 1.5, 3.5 and 7.5 s
    # after the drop, so frames resumed 3.5 s after the server was back. A fresh process: FFmpeg reads its
    # log level once, when the process first uses it.
    result = subprocess.run(
        [sys.executable, "-c", OUTAGE_PROCESS, "4"], capture_output=True, text=True, timeout=90, check=False
    )
    assert result.returncode == 0, result.stderr
    resumed_s = float(result.stdout.split()[-1])
    assert resumed_s < 2.0, result.stderr  # the cap for streams is 1 s: one attempt per second at most
    lines = result.stderr.splitlines()
    assert len(lines) == 2, result.stderr  # FFmpeg's "Connection refused" and OpenCV's warnings folded away
    assert "stream dropped; reconnecting (every 1.00 s at most)" in lines[0]
    assert "frames back after a" in lines[1] and "outage" in lines[1]
