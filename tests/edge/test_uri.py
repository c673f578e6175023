"""Source URIs: the shorthand table, canonical forms and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.runtime.sources.uri import SourceError, Uri, parse_uri


@pytest.mark.parametrize(
    ("text", "scheme", "location", "kind", "url"),
    [
        ("0", "v4l2", "/dev/video0", "v4l2", "v4l2:///dev/video0"),
        ("12", "v4l2", "/dev/video12", "v4l2", "v4l2:///dev/video12"),
        ("/dev/video2", "v4l2", "/dev/video2", "v4l2", "v4l2:///dev/video2"),
        ("v4l2:///dev/video1", "v4l2", "/dev/video1", "v4l2", "v4l2:///dev/video1"),
        ("v4l2://3", "v4l2", "/dev/video3", "v4l2", "v4l2:///dev/video3"),
        (
            "/dev/v4l/by-id/usb-cam-index0",
            "v4l2",
            "/dev/v4l/by-id/usb-cam-index0",
            "v4l2",
            "v4l2:///dev/v4l/by-id/usb-cam-index0",
        ),
        ("csi://0", "csi", "0", "csi", "csi://0"),
        ("CSI://1", "csi", "1", "csi", "csi://1"),
        (
            "rtsp://192.168.1.10:8554/cam?channel=2",
            "rtsp",
            "192.168.1.10",
            "stream",
            "rtsp://192.168.1.10:8554/cam?channel=2",
        ),
        ("rtmp://example.org/live/key", "rtmp", "example.org", "stream", "rtmp://example.org/live/key"),
        ("http://127.0.0.1:8080/video.mjpg", "http", "127.0.0.1", "stream", "http://127.0.0.1:8080/video.mjpg"),
        ("https://example.org/a.m3u8", "https", "example.org", "stream", "https://example.org/a.m3u8"),
        ("gst://videotestsrc ! appsink", "gst", "videotestsrc ! appsink", "gst", "gst://videotestsrc ! appsink"),
        (
            "videotestsrc num-buffers=5 ! videoconvert ! appsink",
            "gst",
            "videotestsrc num-buffers=5 ! videoconvert ! appsink",
            "gst",
            "gst://videotestsrc num-buffers=5 ! videoconvert ! appsink",
        ),
        ("synthetic://", "synthetic", "", "synthetic", "synthetic://"),
        ("/data/flight.MP4", "file", "/data/flight.MP4", "video", "file:///data/flight.MP4"),
        ("file:///data/clip.avi", "file", "/data/clip.avi", "video", "file:///data/clip.avi"),
        ("/data/img/0001.png", "file", "/data/img/0001.png", "images", "file:///data/img/0001.png"),
        ("/data/img/*.jpg", "file", "/data/img/*.jpg", "images", "file:///data/img/*.jpg"),
    ],
)
def test_table(text: str, scheme: str, location: str, kind: str, url: str) -> None:
    uri = parse_uri(text)
    assert (uri.scheme, uri.location, uri.kind, uri.url) == (scheme, location, kind, url)


def test_network_parts() -> None:
    uri = parse_uri("rtsp://user:secret@10.0.0.5:554/live/main?token=abc&x=")
    assert (uri.location, uri.port, uri.path) == ("10.0.0.5", 554, "/live/main")
    assert dict(uri.params) == {"token": "abc", "x": ""}
    assert uri.url == "rtsp://user:secret@10.0.0.5:554/live/main?token=abc&x="  # passed to FFmpeg as typed
    assert uri.display == "rtsp://user:***@10.0.0.5:554/live/main?token=abc&x="
    assert str(uri) == uri.display


def test_query_params_become_options() -> None:
    uri = parse_uri("synthetic://?width=64&height=32&fps=0&seed=7&count=3")
    assert dict(uri.params) == {"width": "64", "height": "32", "fps": "0", "seed": "7", "count": "3"}
    assert parse_uri("csi://0?width=1920&flip=2").params == {"width": "1920", "flip": "2"}
    assert parse_uri("file:///data/clip.mp4?loop=1").path == "/data/clip.mp4"


def test_relative_path_becomes_absolute_file_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "frames").mkdir()
    uri = parse_uri("clips/a.mkv")
    assert uri == Uri(
        "file",
        f"{tmp_path}/clips/a.mkv",
        path=f"{tmp_path}/clips/a.mkv",
        ext="mkv",
        kind="video",
        url=f"file://{tmp_path}/clips/a.mkv",
    )
    folder = parse_uri("frames")
    assert (folder.kind, folder.ext, folder.path) == ("images", "", f"{tmp_path}/frames")
    dotted = tmp_path / "run.2024"
    dotted.mkdir()
    assert parse_uri(str(dotted)).kind == "images"  # a directory wins over a suffix-looking name
    assert parse_uri("~/x.jpg").path == str(Path.home() / "x.jpg")


def test_glob_flag() -> None:
    assert parse_uri("/data/**/*.png").is_glob
    assert not parse_uri("/data/a.png").is_glob
    assert not parse_uri("rtsp://h/a?b").is_glob


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://host/video.mp4", "unknown source scheme 'ftp'"),
        ("rstp://cam/stream", "did you mean 'rtsp'"),
        ("webcam://0", "known schemes: csi, file, gst, http, https, rtmp, rtsp, rtsps, synthetic, v4l2"),
        ("/data/notes.txt", "unsupported file extension '.txt'"),
        ("/no/such/dir/at/all", "no such directory"),
        ("csi://left", "csi source needs a sensor id"),
        ("v4l2://camera", "v4l2 source needs a device path or index"),
        ("rtsp://:554/x", "network source needs a host"),
        ("http://host:99999/x", "bad port"),
        ("gst://  ", "gst source needs a pipeline"),
    ],
)
def test_errors(text: str, fragment: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_uri(text)
    assert fragment in str(info.value)
    assert isinstance(info.value, CracksegError)  # the CLI prints it on one line, no traceback
