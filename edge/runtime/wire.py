"""The ZeroMQ mask message, version 1: one binary frame per published mask or heartbeat.

Within version 1, extension blocks after the boxes (which older decoders skip, as the specification
always required) carry optional data; the first is the vehicle's pose at capture time.

``edge/WIRE.md`` is the specification (byte tables, limits, semantics, golden files); this module is its
reference encoder and decoder. The layout is a fixed little-endian header read with ``struct``, explicit
lengths and a trailing CRC-32, so that a C client decodes it without allocation or a JSON parser.
Decoding never raises anything but :class:`WireError`: a subscriber faces whatever arrives on a socket.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from os import PathLike

import numpy as np

from crackseg.edge.artifact.errors import CracksegError
from crackseg.edge.artifact.hashing import sha256_file
from crackseg.edge.runtime.pose import Attitude, GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.stats import CrackBox, CrackStats

__all__ = [
    "DEFAULT_ENDPOINT",
    "DEFAULT_TOPIC",
    "EXT_POSE",
    "HEARTBEAT_PERIOD_S",
    "MAGIC",
    "MAX_BOXES",
    "MAX_DIM",
    "MAX_HEADER_LEN",
    "MAX_SOURCE_ID_BYTES",
    "PAYLOAD_SLACK",
    "POSE_VERSION",
    "VERSION",
    "MaskEncoding",
    "MaskMessage",
    "MessageKind",
    "WireError",
    "decode_mask",
    "encode_mask",
    "encode_pose",
    "model_hash",
]

MAGIC = b"CSEG"
VERSION = 1
DEFAULT_TOPIC = b"crackseg/mask"
"""Prefix the publisher puts in front of every message, in the same ZeroMQ frame."""
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5557"
"""Loopback by default: reaching beyond the vehicle is an explicit choice (with CurveZMQ)."""
HEARTBEAT_PERIOD_S = 1.0
"""A publisher sends a heartbeat when no mask frame went out for this long."""
MAX_DIM = 8192
"""Largest mask width or height, so a mask never exceeds 8192 x 8192 = 64 Mi pixels."""
MAX_SOURCE_ID_BYTES = 64
MAX_BOXES = 64
MAX_HEADER_LEN = 4096
"""v1 headers use at most 96 + 64 + 64 * 20 = 1440 bytes; the rest is room for compatible extensions."""
PAYLOAD_SLACK = 65536
"""A payload may exceed width x height (the raw size) by at most this many bytes."""

_COMPRESS_LEVEL = 6  # zlib's default: 0.2-0.7 ms for a 512x512 mask, within ~15 % of level 9's size (10x slower)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# magic, version, kind, header_len, seq, frame_id, capture_ns, publish_ns, model_hash, threshold,
# width, height, encoding, source_len, n_boxes, reserved, crack_pixels, coverage_pct, components,
# skeleton_px, max_width_px
_FIXED = struct.Struct("<4sHHIQQqq16sfIIBBBxIfIIf")
_BOX = struct.Struct("<5I")  # x, y, w, h, pixels
_U32 = struct.Struct("<I")
_EXT = struct.Struct("<HH")  # extension type, body length
EXT_POSE = 1
POSE_VERSION = 1
# version, present, stale, reserved, age_ms, lat, lon, alt, rel_alt, roll, pitch, yaw, gimbal roll, pitch, yaw,
# chainage; parts that are not present are NaN
_POSE = struct.Struct("<BBBxIddffffffffd")
_MIN_LEN = _FIXED.size + 2 * _U32.size  # a heartbeat with an empty source id: header, payload_len, crc


class WireError(CracksegError, ValueError):
    """Bytes that are not a valid message of a supported version, or a message that cannot be encoded."""


class MessageKind(IntEnum):
    MASK = 1
    HEARTBEAT = 2


class MaskEncoding(IntEnum):
    RAW = 0
    """mono8, one byte per pixel, row-major; 255 = crack, 0 = background."""
    PNG = 1
    """A grayscale PNG (1- or 8-bit) of width x height; non-zero = crack."""
    PACKBITS_ZLIB = 2
    """Rows bit-packed MSB first (np.packbits), each row padded to a whole byte, then zlib."""


_KINDS = frozenset(MessageKind)
_ENCODINGS = frozenset(MaskEncoding)


def model_hash(path: str | PathLike[str]) -> bytes:
    """First 16 bytes of the SHA-256 of a model file: identifies the model behind every mask."""
    return bytes.fromhex(sha256_file(path))[:16]


def encode_mask(mask: np.ndarray, encoding: MaskEncoding) -> bytes:
    """Encode a bool HxW mask as a message payload."""
    if encoding == MaskEncoding.RAW:
        return (mask.astype(np.uint8) * 255).tobytes()
    if encoding == MaskEncoding.PACKBITS_ZLIB:
        return zlib.compress(np.packbits(mask, axis=1).tobytes(), _COMPRESS_LEVEL)
    import cv2

    params = [cv2.IMWRITE_PNG_BILEVEL, 1, cv2.IMWRITE_PNG_COMPRESSION, _COMPRESS_LEVEL]
    ok, png = cv2.imencode(".png", mask.astype(np.uint8) * 255, params)
    if not ok:
        raise WireError(f"OpenCV could not encode a {mask.shape} mask as PNG")
    return png.tobytes()


def decode_mask(payload: bytes | memoryview, encoding: MaskEncoding, width: int, height: int) -> np.ndarray:
    """Decode a message payload to a bool (height, width) mask, or raise :class:`WireError`."""
    if encoding == MaskEncoding.RAW:
        if len(payload) != width * height:
            raise WireError(
                f"decoded mask size mismatch: raw payload has {len(payload)} bytes, "
                f"expected {width}x{height} = {width * height}"
            )
        return np.frombuffer(payload, np.uint8).reshape(height, width) != 0
    if encoding == MaskEncoding.PACKBITS_ZLIB:
        return _decode_packbits_zlib(payload, width, height)
    return _decode_png(payload, width, height)


def _decode_packbits_zlib(payload: bytes | memoryview, width: int, height: int) -> np.ndarray:
    row_bytes = (width + 7) // 8
    expected = row_bytes * height
    inflater = zlib.decompressobj()
    try:
        packed = inflater.decompress(payload, expected)  # bounded: a zlib bomb cannot inflate past this
        extra = inflater.decompress(inflater.unconsumed_tail, 1)  # reaches the end of stream, or 1 byte too many
    except zlib.error as exc:
        raise WireError(f"undecodable mask payload: zlib: {exc}") from None
    if len(packed) != expected or extra:
        more = " or more" if extra else ""
        raise WireError(
            f"decoded mask size mismatch: {len(packed) + len(extra)}{more} packed bytes, "
            f"expected {height} rows x {row_bytes} = {expected}"
        )
    if not inflater.eof or inflater.unused_data:
        raise WireError("undecodable mask payload: zlib stream is incomplete or followed by extra bytes")
    bits = np.unpackbits(np.frombuffer(packed, np.uint8).reshape(height, row_bytes), axis=1, count=width)
    return bits.view(np.bool_)


def _decode_png(payload: bytes | memoryview, width: int, height: int) -> np.ndarray:
    # Check the IHDR before handing the bytes to a decoder, so a forged size never gets allocated.
    if len(payload) < 33 or payload[:8] != _PNG_SIGNATURE or payload[12:16] != b"IHDR":
        raise WireError("undecodable mask payload: not a PNG (bad signature or no leading IHDR chunk)")
    png_width, png_height, depth, color_type = struct.unpack_from(">IIBB", payload, 16)
    if (png_width, png_height) != (width, height):
        raise WireError(f"decoded mask size mismatch: PNG is {png_width}x{png_height}, header says {width}x{height}")
    if color_type != 0 or depth not in (1, 8):
        raise WireError(
            f"undecodable mask payload: PNG must be 1- or 8-bit grayscale, got colour type {color_type} at {depth} bits"
        )
    import cv2

    try:
        img = cv2.imdecode(np.frombuffer(payload, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise WireError(f"undecodable mask payload: {exc}") from None
    if img is None or img.shape != (height, width):
        raise WireError(f"undecodable mask payload: PNG did not decode to a {width}x{height} grayscale image")
    return img != 0


_NAN = float("nan")
_WIRE_PARTS = PoseParts.POSITION | PoseParts.ATTITUDE | PoseParts.GIMBAL | PoseParts.CHAINAGE
"""The parts the pose block carries (version 1)."""


def encode_pose(pose: Pose) -> bytes:
    """The pose extension block (type ``EXT_POSE``): absent parts travel as NaN with their ``present`` bit clear."""
    position = pose.position or GeoPosition(_NAN, _NAN, _NAN, _NAN)
    attitude = pose.attitude or Attitude(_NAN, _NAN, _NAN)
    gimbal = pose.gimbal or Attitude(_NAN, _NAN, _NAN)
    chainage = _NAN if pose.chainage_m is None else pose.chainage_m
    present = pose.present & _WIRE_PARTS  # the rangefinder's range stays in the process and the recording
    body = _POSE.pack(
        POSE_VERSION, present, pose.stale & present, min(pose.age_ms, 0xFFFFFFFF),
        *position, *attitude, *gimbal, chainage,
    )  # fmt: skip
    return _EXT.pack(EXT_POSE, len(body)) + body


def _decode_pose(body: bytes) -> Pose | None:
    """A pose block's content; ``None`` for a pose version this decoder does not read (skipped like any block)."""
    if len(body) < _POSE.size:
        raise WireError(f"length field out of range: pose extension of {len(body)} bytes, expected {_POSE.size}")
    version, present, stale, age_ms, *values = _POSE.unpack_from(body)
    if version != POSE_VERSION:
        return None
    parts = PoseParts(present & 0x0F)  # bits 4-7 are reserved for parts appended later
    return Pose(
        position=GeoPosition(*values[0:4]) if PoseParts.POSITION in parts else None,
        attitude=Attitude(*values[4:7]) if PoseParts.ATTITUDE in parts else None,
        gimbal=Attitude(*values[7:10]) if PoseParts.GIMBAL in parts else None,
        chainage_m=values[10] if PoseParts.CHAINAGE in parts else None,
        stale=PoseParts(stale) & parts,
        age_ms=age_ms,
    )


def _decode_extensions(data: bytes, start: int, end: int) -> Pose | None:
    """Walk the extension blocks in ``data[start:end]``: the pose if one is there; unknown types are skipped."""
    pose = None
    offset = start
    while offset < end:
        if end - offset < _EXT.size:
            raise WireError(f"length field out of range: {end - offset} stray bytes after the extension blocks")
        ext_type, length = _EXT.unpack_from(data, offset)
        body_start = offset + _EXT.size
        offset = body_start + length
        if offset > end:
            raise WireError(f"length field out of range: extension block of {length} bytes overruns header_len")
        if ext_type == EXT_POSE:
            pose = _decode_pose(data[body_start:offset])
    return pose


@dataclass(frozen=True, eq=False)
class MaskMessage:
    """One message: a mask frame, or a heartbeat when ``mask`` is None.

    Attributes:
        seq: publisher message counter (frames and heartbeats share it); gaps mean lost messages.
        frame_id: source frame index; a heartbeat repeats the last published frame's id (0 before any).
        source_id: UTF-8 name of the source, at most 64 bytes.
        capture_ns: capture time of the frame, ns since the Unix epoch (heartbeat: the last frame's, or 0).
        publish_ns: time the message was encoded, ns since the Unix epoch.
        model_hash: first 16 bytes of the SHA-256 of the model file (see :func:`model_hash`).
        threshold: probability threshold that produced the mask.
        mask: bool (height, width) crack mask, not copied; None for a heartbeat.
        stats: statistics of ``mask``; required for a frame, None for a heartbeat.
        encoding: how the mask travels; ignored (sent as 0) for a heartbeat.
        pose: the vehicle's pose at ``capture_ns`` when a pose source is configured, else None (sent as no
            extension block at all, never as zeros).
    """

    seq: int
    frame_id: int
    source_id: str
    capture_ns: int
    publish_ns: int
    model_hash: bytes
    threshold: float
    mask: np.ndarray | None = None
    stats: CrackStats | None = None
    encoding: MaskEncoding = MaskEncoding.PACKBITS_ZLIB
    pose: Pose | None = None

    def __post_init__(self) -> None:
        if len(self.model_hash) != 16:
            raise WireError(f"model_hash must be 16 bytes, got {len(self.model_hash)}")
        if len(self.source_id.encode()) > MAX_SOURCE_ID_BYTES:
            raise WireError(f"source_id is longer than {MAX_SOURCE_ID_BYTES} bytes in UTF-8")
        if self.mask is None:
            if self.stats is not None:
                raise WireError("a heartbeat (mask=None) carries no stats")
            return
        if self.mask.ndim != 2 or self.mask.dtype != np.bool_:
            raise WireError(f"mask must be a 2-D bool array, got {self.mask.dtype} {self.mask.shape}")
        h, w = self.mask.shape
        if not (1 <= w <= MAX_DIM and 1 <= h <= MAX_DIM):
            raise WireError(f"oversized or empty mask: {w}x{h}, each side must be 1..{MAX_DIM}")
        if self.stats is None:
            raise WireError("a mask frame needs its stats")
        if len(self.stats.boxes) > MAX_BOXES:
            raise WireError(f"{len(self.stats.boxes)} boxes, at most {MAX_BOXES} fit a message")
        for box in self.stats.boxes:
            if box.x + box.w > w or box.y + box.h > h:
                raise WireError(f"box {box} does not lie inside the {w}x{h} frame")

    @property
    def kind(self) -> MessageKind:
        return MessageKind.HEARTBEAT if self.mask is None else MessageKind.MASK

    @property
    def width(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[1])

    @property
    def height(self) -> int:
        return 0 if self.mask is None else int(self.mask.shape[0])

    def to_bytes(self) -> bytes:
        """Encode to one ZeroMQ frame body (the publisher prepends the topic)."""
        source = self.source_id.encode()
        stats = self.stats or CrackStats()
        encoding = MaskEncoding.RAW if self.mask is None else self.encoding
        payload = b"" if self.mask is None else encode_mask(self.mask, encoding)
        extensions = b"" if self.pose is None else encode_pose(self.pose)
        header_len = _FIXED.size + len(source) + _BOX.size * len(stats.boxes) + len(extensions)
        try:
            fixed = _FIXED.pack(
                MAGIC,
                VERSION,
                self.kind,
                header_len,
                self.seq,
                self.frame_id,
                self.capture_ns,
                self.publish_ns,
                self.model_hash,
                self.threshold,
                self.width,
                self.height,
                encoding,
                len(source),
                len(stats.boxes),
                stats.crack_pixels,
                stats.coverage_pct,
                stats.components,
                stats.skeleton_px,
                stats.max_width_px,
            )
            boxes = b"".join(_BOX.pack(b.x, b.y, b.w, b.h, b.pixels) for b in stats.boxes)
        except struct.error as exc:
            raise WireError(f"a field is out of range for its wire type: {exc}") from None
        body = b"".join((fixed, source, boxes, extensions, _U32.pack(len(payload)), payload))
        return body + _U32.pack(zlib.crc32(body))

    @classmethod
    def from_bytes(cls, buf: bytes | bytearray | memoryview) -> MaskMessage:
        """Decode and fully validate one message (mask included), or raise :class:`WireError`."""
        data = bytes(buf)
        n = len(data)
        if data[:4] != MAGIC[:n]:
            raise WireError(f"bad magic {data[:4]!r}, expected {MAGIC!r}")
        if n >= 6 and (version := int.from_bytes(data[4:6], "little")) != VERSION:
            raise WireError(f"unsupported version {version}, this decoder reads version {VERSION}")
        if n < _MIN_LEN:
            raise WireError(f"truncated: {n} bytes, no message is shorter than {_MIN_LEN}")
        (
            _,
            _,
            kind,
            header_len,
            seq,
            frame_id,
            capture_ns,
            publish_ns,
            hash16,
            threshold,
            width,
            height,
            encoding,
            source_len,
            n_boxes,
            *stat_fields,
        ) = _FIXED.unpack_from(data)
        if kind not in _KINDS:
            raise WireError(f"unknown message kind {kind}")
        if source_len > MAX_SOURCE_ID_BYTES or n_boxes > MAX_BOXES:
            raise WireError(
                f"length field out of range: source_len {source_len} (max "
                f"{MAX_SOURCE_ID_BYTES}), n_boxes {n_boxes} (max {MAX_BOXES})"
            )
        fields_end = _FIXED.size + source_len + _BOX.size * n_boxes
        if not fields_end <= header_len <= MAX_HEADER_LEN:
            raise WireError(
                f"length field out of range: header_len {header_len} must be in {fields_end}..{MAX_HEADER_LEN}"
            )
        if n < header_len + 2 * _U32.size:
            raise WireError(f"truncated: {n} bytes, header alone needs {header_len + 2 * _U32.size}")
        (payload_len,) = _U32.unpack_from(data, header_len)
        if kind == MessageKind.MASK:
            if not (1 <= width <= MAX_DIM and 1 <= height <= MAX_DIM):
                raise WireError(f"oversized or empty mask: {width}x{height}, each side must be 1..{MAX_DIM}")
            limit = width * height + PAYLOAD_SLACK
        else:
            limit = 0
        if payload_len > limit:
            raise WireError(f"oversized payload: {payload_len} bytes, limit {limit} for this message")
        total = header_len + payload_len + 2 * _U32.size
        if n != total:
            raise WireError(f"{'truncated' if n < total else 'trailing bytes'}: {n} bytes, message is {total}")
        (crc,) = _U32.unpack_from(data, total - _U32.size)
        if crc != zlib.crc32(data[: total - _U32.size]):
            raise WireError("CRC mismatch: the message was corrupted")
        try:
            source_id = data[_FIXED.size : _FIXED.size + source_len].decode()
        except UnicodeDecodeError:
            raise WireError("source_id is not valid UTF-8") from None
        if encoding not in _ENCODINGS:
            raise WireError(f"unknown mask encoding {encoding}")
        pose = _decode_extensions(data, fields_end, header_len)
        mask, stats = None, None
        if kind == MessageKind.HEARTBEAT:
            if any((width, height, encoding, n_boxes, *stat_fields)):
                raise WireError("a heartbeat must have all frame fields (size, encoding, stats) zero")
        else:
            box_start = _FIXED.size + source_len
            boxes = tuple(CrackBox(*_BOX.unpack_from(data, box_start + i * _BOX.size)) for i in range(n_boxes))
            crack_pixels, coverage_pct, components, skeleton_px, max_width_px = stat_fields
            stats = CrackStats(crack_pixels, coverage_pct, components, skeleton_px, max_width_px, boxes)
            payload = memoryview(data)[header_len + _U32.size : total - _U32.size]
            mask = decode_mask(payload, MaskEncoding(encoding), width, height)
        return cls(
            seq, frame_id, source_id, capture_ns, publish_ns, hash16, threshold, mask, stats, MaskEncoding(encoding),
            pose,
        )  # fmt: skip
