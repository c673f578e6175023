"""The operator overlay: drawing, targets, pacing by capture time, a video that decodes back, drops not stalls."""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from crackseg.edge.cli.main import main
from crackseg.edge.runtime.overlay import caption, draw_overlay
from crackseg.edge.runtime.pose import GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.sinks import overlay_output
from crackseg.edge.runtime.sinks.overlay_output import FramePacer, OverlayError, OverlayOutput, parse_overlay_target
from crackseg.edge.runtime.sources.frame import Frame
from crackseg.edge.runtime.stats import crack_stats
from crackseg.edge.runtime.wire import MaskMessage

cv2 = pytest.importorskip("cv2")

HEIGHT, WIDTH = 48, 64
T0_NS = time.time_ns()


def _frame_and_message(frame_id: int, fps: float = 30.0) -> tuple[Frame, MaskMessage]:
    """Frame ``frame_id`` of a camera capturing at ``fps``."""
    image = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[30:34, 5 + frame_id % 10 : 50] = True
    frame = Frame(image, frame_id, T0_NS + round(frame_id * 1e9 / fps), "test")
    message = MaskMessage(frame_id, frame_id, "test", frame.capture_ns, frame.capture_ns, bytes(16), 0.5, mask,
                          crack_stats(mask))  # fmt: skip
    return frame, message


def _decoded_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def test_cracks_are_tinted_red_and_the_caption_states_the_statistics() -> None:
    frame, message = _frame_and_message(0)
    assert message.stats is not None and message.mask is not None
    lines = caption(0, message.stats, None)
    bgr = draw_overlay(frame.image, message.mask, message.stats, lines)
    blue, green, red = bgr[32, 20]
    assert red > 200 and blue < 80 and green < 80  # a crack pixel
    assert tuple(bgr[45, 60]) == (128, 128, 128)  # background away from the box and the caption is untouched
    assert lines == [f"frame 0  coverage {message.stats.coverage_pct:.2f}%  length {message.stats.skeleton_px} px  "
                     f"width 3 px  cracks 1"]  # fmt: skip


def test_caption_adds_the_pose_and_marks_it_stale() -> None:
    _, message = _frame_and_message(0)
    assert message.stats is not None
    pose = Pose(position=GeoPosition(47.5, 8.25, 500.0, 31.5), stale=PoseParts.POSITION, age_ms=2500)
    expected = "STALE position 2500 ms old  lat 47.500000 lon 8.250000  31.5 m above home"
    assert caption(0, message.stats, pose)[1] == expected
    fresh = Pose(position=GeoPosition(47.5, 8.25, 500.0, 31.5), age_ms=12)
    assert caption(0, message.stats, fresh)[1].endswith("  31.5 m above home  pose age 12 ms")  # AMSL is 500


def test_caption_lines_are_broken_to_fit_the_image_so_the_stale_flag_is_never_cut_off() -> None:
    cv2 = pytest.importorskip("cv2")
    from crackseg.edge.runtime.overlay import fit_lines
    from crackseg.edge.runtime.pose import Attitude

    _, message = _frame_and_message(0)
    assert message.stats is not None
    pose = Pose(GeoPosition(47.5, 8.25, 500.0, 31.5), Attitude(1.0, -2.0, 91.0), Attitude(0.0, -90.0, 0.0),
                stale=PoseParts.POSITION | PoseParts.ATTITUDE, age_ms=1500)  # fmt: skip
    lines = caption(0, message.stats, pose)
    for width in (240, 480):  # a small overlay, the report's gallery
        fitted = fit_lines(lines, width)
        assert len(fitted) > len(lines) and "  ".join(fitted).split() == "  ".join(lines).split()  # all words kept
        (pose_line,) = [line for line in fitted if "STALE" in line]
        assert pose_line.startswith("STALE position,attitude 1500 ms old")
        for line in fitted:
            assert cv2.getTextSize(line, cv2.FONT_HERSHEY_SIMPLEX, 0.45, 1)[0][0] <= width - 8


@pytest.mark.parametrize(
    ("text", "kind", "needle"),
    [
        ("out.mp4", "file", "out.mp4"),
        ("file:///tmp/x.avi", "file", "/tmp/x.avi"),
        ("rtp://192.168.1.10:5600", "gstreamer", "rtph264pay config-interval=1 pt=96 ! udpsink host=192.168.1.10 "
                                                 "port=5600"),
        ("udp://10.0.0.1:5000", "gstreamer", "mpegtsmux ! udpsink host=10.0.0.1 port=5000"),
        ("gst://appsrc ! fakesink", "gstreamer", "appsrc ! fakesink"),
    ],
)  # fmt: skip
def test_overlay_targets(text: str, kind: str, needle: str) -> None:
    target = parse_overlay_target(text)
    assert target.kind == kind and needle in target.location


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("out.txt", "a video file must end in one of avi, m4v, mkv, mov, mp4"),
        ("rtp://camera", "expected rtp://HOST:PORT"),
        ("ftp://host/x.mp4", "unknown scheme 'ftp'"),
    ],
)
def test_bad_targets_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(OverlayError, match=re.escape(message)):
        parse_overlay_target(text)


def test_a_missing_folder_fails_at_open(tmp_path: Path) -> None:
    with pytest.raises(OverlayError, match="the folder does not exist"), OverlayOutput(str(tmp_path / "no" / "o.mp4")):
        pass


@pytest.mark.skipif(overlay_output.opencv_has_gstreamer(cv2), reason="this OpenCV has GStreamer")
def test_a_stream_without_gstreamer_is_a_clear_error() -> None:
    with pytest.raises(OverlayError, match="needs OpenCV built with GStreamer"), OverlayOutput("rtp://127.0.0.1:5600"):
        pass


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_the_overlay_video_decodes_back_frame_for_frame(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with OverlayOutput(str(path), fps=10, queue_size=64) as output:
        for i in range(12):
            output.send_frame(*_frame_and_message(i, fps=10))
            output.send(MaskMessage(100 + i, i, "test", 0, 0, bytes(16), 0.5))  # a heartbeat draws nothing
    assert output.counters() == {"overlay_written": 12, "overlay_skipped": 0, "overlay_dropped": 0, "overlay_errors": 0}
    frames = _decoded_frames(path)
    assert len(frames) == 12
    assert all(image.shape == (HEIGHT, WIDTH, 3) for image in frames)
    blue, green, red = frames[0][32, 20].astype(int)
    assert red > 150 and red > blue + 60 and red > green + 60  # the crack is drawn (lossy codec: loose bounds)


def _admitted(pacer: FramePacer, capture_ms: list[float]) -> list[float]:
    return [ms for ms in capture_ms if pacer.admit(round(ms * 1e6))]


def test_pacing_keeps_every_frame_of_a_camera_at_the_video_rate_despite_jitter() -> None:
    rng = np.random.default_rng(0)
    capture_ms = [1000 + i * 100 / 3 + jitter for i, jitter in enumerate(rng.uniform(-8, 8, 90))]
    assert len(_admitted(FramePacer(30), capture_ms)) == 90


def test_pacing_keeps_the_video_rate_of_a_faster_pipeline_evenly_spread() -> None:
    capture_ms = [i * 1000 / 92 for i in range(92 * 4)]  # 4 s of a 92 fps pipeline
    admitted = _admitted(FramePacer(30), capture_ms)
    assert 119 <= len(admitted) <= 121  # 30 a second
    gaps = np.diff(admitted)
    assert gaps.min() > 20 and gaps.max() < 45  # one frame per 33 ms slot, give or take a 10.9 ms frame


def test_pacing_keeps_every_frame_of_a_slower_source_and_resumes_after_a_pause() -> None:
    capture_ms = [i * 100 for i in range(10)] + [5000 + i * 1000 / 120 for i in range(120)]  # 10 fps, a gap, 120 fps
    admitted = _admitted(FramePacer(30), capture_ms)
    assert admitted[:11] == capture_ms[:11]  # every 10 fps frame, and the first frame after the pause
    assert 29 <= len(admitted) - 10 <= 31  # then 30 a second again


def test_every_frame_draws_frames_that_pacing_would_skip(tmp_path: Path) -> None:
    frames = [_frame_and_message(i, fps=1000) for i in range(8)]  # 8 frames in 8 ms
    for every_frame, written in ((False, 1), (True, 8)):
        with OverlayOutput(str(tmp_path / f"{every_frame}.mp4"), queue_size=16, every_frame=every_frame) as output:
            for frame, message in frames:
                output.send_frame(frame, message)
        assert output.counters()["overlay_written"] == written
        assert output.counters()["overlay_skipped"] == 8 - written


def test_a_slow_writer_drops_frames_without_blocking_the_sender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def held_drawing(*args: object) -> np.ndarray:
        release.wait(60)  # the encoder stalls (a slow disk, a congested link)
        return draw_overlay(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(overlay_output, "draw_overlay", held_drawing)
    frames = [_frame_and_message(i) for i in range(20)]
    output = OverlayOutput(str(tmp_path / "out.mp4"), queue_size=2)  # frames at 30 fps: none skipped
    output.open()
    started = time.perf_counter()
    for frame, message in frames:
        output.send_frame(frame, message)
    sending_s = time.perf_counter() - started
    release.set()
    output.close()
    counters = output.counters()
    assert sending_s < 30  # had a send waited for the stuck writer, it would have taken the writer's 60 s
    assert counters["overlay_dropped"] >= 17  # one frame in the writer's hands, two queued, the rest dropped
    assert counters["overlay_written"] + counters["overlay_dropped"] == 20
    assert len(_decoded_frames(tmp_path / "out.mp4")) == counters["overlay_written"]


@pytest.mark.parametrize("every_frame", [False, True])
def test_run_draws_or_counts_every_published_frame(
    endpoint: str, tmp_path: Path, caplog: pytest.LogCaptureFixture, every_frame: bool
) -> None:
    video = tmp_path / "overlay.mp4"
    flags = ["--overlay-every-frame"] if every_frame else []
    args = ["run", "--source", "synthetic://?width=64&height=48&fps=0", "--frames", "6", "--bind", endpoint,
            "--overlay", str(video), "--log-every", "0", *flags]  # fmt: skip
    with caplog.at_level(logging.INFO):
        assert main(args) == 0
    summary = caplog.records[-1].getMessage()  # logged once the overlay writer caught up (flushed)
    assert "published=6" in summary
    written = int(m[1]) if (m := re.search(r"overlay_written=(\d+)", summary)) else 0
    skipped = int(m[1]) if (m := re.search(r"overlay_skipped=(\d+)", summary)) else 0
    dropped = int(m[1]) if (m := re.search(r"overlay_dropped=(\d+)", summary)) else 0
    assert written + skipped + dropped == 6 and written >= 1  # drawn, or skipped by the pacing, or dropped
    assert skipped == 0 or not every_frame
    assert len(_decoded_frames(video)) == written


def test_the_measured_rate_is_the_median_interval_capped_at_the_default() -> None:
    from crackseg.edge.runtime.sinks.overlay_output import DEFAULT_FPS, measured_fps

    ms = 1_000_000
    assert measured_fps([0, 100 * ms, 200 * ms, 330 * ms, 400 * ms]) == 10.0  # one late frame does not count
    assert measured_fps([0, 5 * ms, 10 * ms]) == DEFAULT_FPS  # a fast source is drawn at most 30 a second
    assert measured_fps([7]) == DEFAULT_FPS and measured_fps([0, 5000 * ms]) == 1.0


def test_the_overlay_follows_a_slow_source_so_the_video_lasts_as_long_as_the_capture(
    endpoint: str, tmp_path: Path
) -> None:
    video = tmp_path / "overlay.mkv"
    args = ["run", "--source", "synthetic://?width=64&height=48&fps=10&pace=file", "--frames", "12",
            "--bind", endpoint, "--overlay", str(video), "--log-every", "0"]  # fmt: skip
    assert main(args) == 0
    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    assert 5.0 <= fps <= 10.5  # the capture rate (10 fps, less on a loaded machine), not 30: plays as captured
    assert len(_decoded_frames(video)) == 12
