"""What an image file is before and while it is decoded: its size from the header, and libjpeg's damage reports.

Two checks a plain ``cv2.imdecode`` does not make:

* **Size before pixels.** A 1.2 MB PNG can announce 20000 x 20000 pixels; decoding it takes gigabytes and
  seconds before any size limit sees it. :func:`header_size` reads width and height from the first bytes of
  PNG, JPEG, BMP, WebP and TIFF files (``None`` for anything it cannot read, which is then decoded as usual).
* **Damage libjpeg reports but does not refuse.** A JPEG cut in half that still ends in ``FFD9``, or with bytes
  zeroed mid-file, decodes "successfully" with grey rows; libjpeg only prints ``Corrupt JPEG data`` or
  ``Premature end of JPEG file`` to the process's stderr, and neither OpenCV nor Pillow surfaces it.
  :func:`decode_jpeg_strictly` captures file descriptor 2 around the decode (under a lock, so one decode at a
  time) and returns those warnings; anything else written to stderr meanwhile is passed on unchanged.
"""

from __future__ import annotations

import os
import struct
import sys
import tempfile
import threading
from collections.abc import Callable
from typing import TypeVar

from crackseg.edge.artifact.size import Size

_WidthHeight = tuple[int, int]
"""What each format's reader returns: the two numbers in the order the headers store them."""

__all__ = ["JPEG_DAMAGE", "decode_jpeg_strictly", "header_size"]

T = TypeVar("T")

JPEG_DAMAGE = ("Corrupt JPEG data", "Premature end of JPEG file")
"""The starts of libjpeg's warnings that mean the entropy-coded data is damaged (rows were made up)."""

_STDERR = threading.Lock()
"""File descriptor 2 is process-wide: one capture at a time."""

_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
"""Start-of-frame markers (baseline, progressive, lossless...); C4/C8/CC are DHT, JPG and DAC."""


def _png(data: bytes) -> _WidthHeight | None:
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 24:
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg(data: bytes) -> _WidthHeight | None:
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, *range(0xD0, 0xD8)):  # standalone markers carry no length
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return width, height
        if marker == 0xDA:  # start of scan before any frame header
            return None
        pos += 2 + length
    return None


def _bmp(data: bytes) -> _WidthHeight | None:
    if data[:2] != b"BM" or len(data) < 26:
        return None
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # negative height: rows stored top-down


def _webp(data: bytes) -> _WidthHeight | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    return None


def _tiff(data: bytes) -> _WidthHeight | None:
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None or len(data) < 8:
        return None
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
    found: dict[int, int] = {}
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT (3) or LONG (4)
            fmt = order + ("H" if kind == 3 else "I")
            (found[tag],) = struct.unpack_from(fmt, data, entry + 8)
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def header_size(data: bytes) -> Size | None:
    """The image size from an image file's header, or ``None`` if the format or header is not understood.

    Reads only the first bytes' structure; nothing is decoded.
    """
    for reader in (_png, _jpeg, _bmp, _webp, _tiff):
        try:
            size = reader(data)
        except struct.error:
            return None
        if size is not None:
            width, height = size  # the headers' order
            return Size(height=height, width=width)
    return None


def decode_jpeg_strictly(decode: Callable[[], T]) -> tuple[T, list[str]]:
    """Run ``decode`` (a JPEG decode) and return its result with libjpeg's damage warnings, if any.

    libjpeg writes warnings straight to file descriptor 2; it is redirected to a temporary file for the
    call. What else arrived there meanwhile (another thread's log line) is written back to stderr.
    """
    with _STDERR, tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all (a daemon with fd 2 closed): nothing to read the warnings from
            return decode(), []
        try:
            os.dup2(capture.fileno(), 2)
            try:
                result = decode()
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode(errors="replace")
    damage = [line for line in text.splitlines() if line.startswith(JPEG_DAMAGE)]
    other = "".join(line + "\n" for line in text.splitlines() if not line.startswith(JPEG_DAMAGE))
    if other:
        os.write(2, other.encode())
    return result, damage
