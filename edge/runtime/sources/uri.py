"""Source URIs: one string names any frame source, as in jetson-utils ``videoSource``.

``parse_uri`` turns what a user typed into a ``Uri``; ``crackseg.edge.runtime.sources.open_source`` picks the
implementation from ``Uri.kind``. Parsing touches the file system only to make paths absolute and to
tell a directory from a file, so it is unit-tested without cameras.

=============================================  ===========  =============================================
Input                                          kind         Meaning
=============================================  ===========  =============================================
``clip.mp4``, ``file:///data/clip.mkv``        video        video file (avi mp4 mkv mov webm m4v mpg
                                                            mpeg ts mts h264 h265 264 265 flv wmv)
``frames/``, ``'frames/*.png'``, ``a.jpg``     images       image folder, glob or single image
                                                            (jpg jpeg png bmp tif tiff webp), sorted
``/dev/video0``, ``v4l2:///dev/video0``        v4l2         V4L2 camera device
``0`` (a bare integer)                         v4l2         camera index N = ``/dev/videoN`` on Linux
``rtsp://host:8554/s``, ``rtsps://``           stream       network stream (FFmpeg), query kept in URL
``rtmp://``, ``http://``, ``https://``         stream       network stream (FFmpeg), query kept in URL
``csi://0``                                    csi          Jetson CSI camera (nvarguscamerasrc sensor-id)
``gst://videotestsrc ! appsink``               gst          raw GStreamer pipeline
``'videotestsrc ! videoconvert ! appsink'``    gst          any text containing `` ! `` is a pipeline
``synthetic://?width=512&fps=30&seed=0``       synthetic    procedural cracks on concrete, with GT masks
=============================================  ===========  =============================================

Paths are made absolute (``~`` expanded) and become ``file://`` URIs. Query parameters
(``?key=value&...``) are source options; each source documents the keys it accepts, and an unknown key
is an error. For network streams the query belongs to the server and is passed through untouched.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from crackseg.edge.artifact.errors import CracksegError

__all__ = [
    "IMAGE_EXTENSIONS",
    "KNOWN_SCHEMES",
    "NETWORK_SCHEMES",
    "VIDEO_EXTENSIONS",
    "SourceError",
    "Uri",
    "parse_uri",
]

VIDEO_EXTENSIONS = frozenset(
    {"avi", "mp4", "mkv", "mov", "webm", "m4v", "mpg", "mpeg", "ts", "mts", "h264", "h265", "264", "265", "flv", "wmv"}
)
IMAGE_EXTENSIONS = frozenset({"jpg", "jpeg", "png", "bmp", "tif", "tiff", "webp"})
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "http", "https"})
KNOWN_SCHEMES = frozenset({"file", "v4l2", "csi", "gst", "synthetic"} | NETWORK_SCHEMES)

_GLOB_CHARS = re.compile(r"[*?\[]")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://(.*)$", re.DOTALL)
_WINDOWS_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")
_PIPELINE_SEPARATOR = " ! "


class SourceError(CracksegError, RuntimeError):
    """A source cannot be parsed, opened or read; the message says what to fix."""


@dataclass(frozen=True)
class Uri:
    """A parsed source URI.

    Attributes:
        scheme: one of ``KNOWN_SCHEMES``.
        location: file path, device path, host name, CSI sensor id or GStreamer pipeline.
        port: network port, if the URI names one.
        path: absolute file path or glob for ``file``, the URL path for network streams, else ``""``.
        ext: lower-case file extension without the dot (``""`` for directories and non-files).
        params: query parameters, the options of the source.
        kind: which source implementation serves it: ``video``, ``images``, ``stream`` (network
            schemes) or the scheme itself.
        url: canonical text: ``file:///abs/path``, the full network URL, ``gst://<pipeline>``...
    """

    scheme: str
    location: str
    port: int | None = None
    path: str = ""
    ext: str = ""
    params: Mapping[str, str] = field(default_factory=dict, hash=False)
    kind: str = ""
    url: str = ""

    @property
    def is_glob(self) -> bool:
        return self.scheme == "file" and bool(_GLOB_CHARS.search(self.path))

    @property
    def display(self) -> str:
        """The URL with any password masked: safe for logs and the ``source_id`` on the wire."""
        return re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", self.url)

    def __str__(self) -> str:
        return self.display


def parse_uri(text: str) -> Uri:
    """Parse a source string (URI, path, glob, device, camera index or pipeline) into a ``Uri``.

    Raises:
        SourceError: empty text, an unknown scheme (the message lists the known ones), a file
            extension that is neither video nor image, or a malformed ``csi``/``v4l2`` location.
    """
    text = text.strip()
    if not text:
        raise SourceError("empty source URI")
    if text.isdigit():
        return _v4l2(f"/dev/video{int(text)}", {}, text)
    if text.startswith(("/dev/video", "/dev/v4l/")):
        return _v4l2(text, {}, text)
    match = _SCHEME.match(text)
    if match is None or _WINDOWS_DRIVE.match(text):
        if _PIPELINE_SEPARATOR in text:
            return _gst(text)
        return _file(text, {})
    scheme, rest = match.group(1).lower(), match.group(2)
    if scheme not in KNOWN_SCHEMES:
        hint = difflib.get_close_matches(scheme, sorted(KNOWN_SCHEMES), n=1)
        did_you_mean = f" (did you mean '{hint[0]}'?)" if hint else ""
        raise SourceError(
            f"unknown source scheme '{scheme}' in '{text}'{did_you_mean}; "
            f"known schemes: {', '.join(sorted(KNOWN_SCHEMES))}"
        )
    if scheme == "gst":
        return _gst(rest)
    if scheme in NETWORK_SCHEMES:
        return _network(scheme, text)
    body, params = _split_query(rest)
    if scheme == "file":
        return _file(body, params)
    if scheme == "v4l2":
        return _v4l2(f"/dev/video{int(body)}" if body.isdigit() else body, params, text)
    if scheme == "csi":
        if not body.isdigit():
            raise SourceError(f"csi source needs a sensor id, e.g. csi://0 (got '{text}')")
        return Uri("csi", str(int(body)), params=params, kind="csi", url=f"csi://{int(body)}")
    return Uri("synthetic", body, params=params, kind="synthetic", url=f"synthetic://{body}")


def _split_query(rest: str) -> tuple[str, dict[str, str]]:
    body, _, query = rest.partition("?")
    return body, dict(parse_qsl(query, keep_blank_values=True))


def _file(raw_path: str, params: dict[str, str]) -> Uri:
    path = Path(raw_path).expanduser().absolute()
    text = str(path)
    ext = path.suffix[1:].lower()
    if _GLOB_CHARS.search(text) or path.is_dir():
        kind, ext = "images", ext if ext in IMAGE_EXTENSIONS else ""
    elif ext in VIDEO_EXTENSIONS:
        kind = "video"
    elif ext in IMAGE_EXTENSIONS:
        kind = "images"
    elif not ext:
        raise SourceError(f"no such directory: {text} (and no file extension to choose a reader)")
    else:
        raise SourceError(
            f"unsupported file extension '.{ext}' in {text}; video: {', '.join(sorted(VIDEO_EXTENSIONS))}; "
            f"images: {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    return Uri("file", text, path=text, ext=ext, params=params, kind=kind, url=f"file://{text}")


def _v4l2(device: str, params: dict[str, str], text: str) -> Uri:
    if not device.startswith("/dev/"):
        raise SourceError(f"v4l2 source needs a device path or index, e.g. v4l2:///dev/video0 (got '{text}')")
    return Uri("v4l2", device, path=device, params=params, kind="v4l2", url=f"v4l2://{device}")


def _network(scheme: str, text: str) -> Uri:
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError as exc:
        raise SourceError(f"bad port in '{text}': {exc}") from exc
    if not parts.hostname:
        raise SourceError(f"network source needs a host, e.g. {scheme}://192.168.1.10:8554/stream (got '{text}')")
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    return Uri(scheme, parts.hostname, port=port, path=parts.path, params=params, kind="stream", url=text)


def _gst(pipeline: str) -> Uri:
    pipeline = pipeline.strip()
    if not pipeline:
        raise SourceError("gst source needs a pipeline, e.g. 'gst://videotestsrc ! videoconvert ! appsink'")
    return Uri("gst", pipeline, kind="gst", url=f"gst://{pipeline}")
