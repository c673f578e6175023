"""Serial summary frames, version 1: crack statistics for a microcontroller, never a mask.

A frame is a fixed 28-byte little-endian payload plus a CRC-16/CCITT-FALSE, COBS-encoded and ended by
one 0x00 byte: 32 bytes on the wire. ``edge/WIRE.md`` is the specification. Every field is an unsigned
integer no wider than 32 bits, so a C99 receiver parses frames in a fixed 64-byte buffer without heap
or floating point; :class:`SummaryDecoder` is the same state machine in Python.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntFlag

from crackseg.edge.runtime.stats import CrackStats

__all__ = [
    "FRAME_LEN",
    "MAX_WIRE_FRAME",
    "SERIAL_VERSION",
    "Summary",
    "SummaryDecoder",
    "SummaryFlags",
    "cobs_decode",
    "cobs_encode",
    "crc16_ccitt_false",
    "encode_summary",
]

SERIAL_VERSION = 1
MAX_WIRE_FRAME = 64
"""No version of this format ever puts more than 64 bytes (delimiter included) on the wire."""

# version, flags, seq, timestamp_ms, frame_id, crack_pixels, coverage (0.01 %), components, skeleton_px,
# max_width_px
_PAYLOAD = struct.Struct("<BBIIIIHHIH")
_CRC = struct.Struct("<H")
FRAME_LEN = _PAYLOAD.size + _CRC.size
"""Decoded v1 frame: 28-byte payload + 2-byte CRC; COBS adds 1 byte and the delimiter another."""

_U16_MAX = 0xFFFF
_U32_MAX = 0xFFFF_FFFF


class SummaryFlags(IntFlag):
    """Bits of the flags byte; receivers ignore bits they do not know."""

    NONE = 0
    SATURATED = 1
    """At least one statistic exceeded its field and was clipped to the field's maximum."""
    STALE = 2
    """No new frame since the previous summary: the fields repeat it (a serial heartbeat)."""


@dataclass(frozen=True)
class Summary:
    """One serial summary; all fields are the unsigned integers that travel (see module docstring).

    Attributes:
        seq: summary counter, wraps at 2**32; gaps mean lost or corrupted frames.
        timestamp_ms: capture time in ms since the Unix epoch, modulo 2**32 (compare with wrapping
            subtraction, like Arduino ``millis()``).
        frame_id: source frame index, modulo 2**32.
        crack_pixels: crack pixel count.
        coverage_centi_pct: coverage in 0.01 % units, 0..10000.
        components: connected crack components.
        skeleton_px: skeleton length in pixels.
        max_width_px: maximum crack width in whole pixels.
        flags: :class:`SummaryFlags` bits.
    """

    seq: int
    timestamp_ms: int
    frame_id: int
    crack_pixels: int
    coverage_centi_pct: int
    components: int
    skeleton_px: int
    max_width_px: int
    flags: SummaryFlags = SummaryFlags.NONE

    @classmethod
    def from_stats(cls, stats: CrackStats, *, seq: int, frame_id: int, capture_ns: int, stale: bool = False) -> Summary:
        """Fit full statistics into the serial fields, clipping (and flagging) what does not fit."""
        fields = (
            (stats.crack_pixels, _U32_MAX),
            (round(stats.coverage_pct * 100), 10000),
            (stats.components, _U16_MAX),
            (stats.skeleton_px, _U32_MAX),
            (round(stats.max_width_px), _U16_MAX),
        )
        crack_pixels, coverage, components, skeleton_px, max_width = (min(v, limit) for v, limit in fields)
        flags = SummaryFlags.STALE if stale else SummaryFlags.NONE
        if any(value > limit for value, limit in fields):
            flags |= SummaryFlags.SATURATED
        return cls(
            seq % 2**32, capture_ns // 1_000_000 % 2**32, frame_id % 2**32, crack_pixels, coverage, components,
            skeleton_px, max_width, flags,
        )  # fmt: skip


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor (check 0x29B1)."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def _crc_table() -> tuple[int, ...]:
    table = []
    for top in range(256):
        crc = top << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
        table.append(crc)
    return tuple(table)


_CRC_TABLE = _crc_table()


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result has no 0x00 (the delimiter is not appended).

    Each block is a code byte n followed by n - 1 data bytes; n < 0xFF implies a zero after the block
    (except at the end). This is the canonical encoder: no trailing empty block after a full one.
    """
    out = bytearray(1)  # out[code_at] is a placeholder until its block ends
    code_at, code = 0, 1
    for i, byte in enumerate(data):
        if byte:
            out.append(byte)
            code += 1
        if not byte or code == 0xFF:
            out[code_at] = code
            code = 1
            code_at = len(out)
            if not byte or i < len(data) - 1:
                out.append(0)
    if code_at < len(out):
        out[code_at] = code
    return bytes(out)


def cobs_decode(data: bytes) -> bytes:
    """Inverse of :func:`cobs_encode`; raises ValueError on input that is not valid COBS."""
    out = bytearray()
    i = 0
    while i < len(data):
        code = data[i]
        end = i + code
        if code == 0 or end > len(data) or 0 in data[i + 1 : end]:
            raise ValueError(f"invalid COBS block at offset {i}")
        out += data[i + 1 : end]
        if code != 0xFF and end < len(data):
            out.append(0)
        i = end
    return bytes(out)


def encode_summary(summary: Summary) -> bytes:
    """One frame ready for the port: COBS(payload + CRC) + 0x00."""
    try:
        payload = _PAYLOAD.pack(
            SERIAL_VERSION, summary.flags, summary.seq, summary.timestamp_ms, summary.frame_id,
            summary.crack_pixels, summary.coverage_centi_pct, summary.components, summary.skeleton_px,
            summary.max_width_px,
        )  # fmt: skip
    except struct.error as exc:
        raise ValueError(f"summary field out of range for its serial type: {exc}") from None
    return cobs_encode(payload + _CRC.pack(crc16_ccitt_false(payload))) + b"\x00"


class SummaryDecoder:
    """Streaming receiver: feed it bytes as they arrive, get the summaries that completed.

    Memory stays bounded: a run longer than ``MAX_WIRE_FRAME - 1`` bytes without a delimiter is
    discarded up to the next 0x00. Rejected frames are counted, never raised: a serial line is noisy.

    Attributes:
        frames: summaries decoded.
        crc_errors: frames whose CRC did not match.
        framing_errors: invalid COBS, wrong length or overlong runs (including the partial frame a
            receiver sees when it starts listening mid-frame).
        version_errors: well-formed frames of a version this decoder does not read.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._overflow = False
        self.frames = 0
        self.crc_errors = 0
        self.framing_errors = 0
        self.version_errors = 0

    @property
    def pending_bytes(self) -> int:
        """Bytes of an unfinished frame held in the buffer (at most ``MAX_WIRE_FRAME - 1``)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Summary]:
        out = []
        chunks = data.split(b"\x00")
        for i, chunk in enumerate(chunks):
            if not self._overflow:
                if len(self._buffer) + len(chunk) < MAX_WIRE_FRAME:
                    self._buffer += chunk
                else:
                    self._overflow = True
                    self._buffer.clear()
            if i < len(chunks) - 1:  # a delimiter follows this chunk
                summary = self._end_frame()
                if summary is not None:
                    out.append(summary)
        return out

    def _end_frame(self) -> Summary | None:
        frame = bytes(self._buffer)
        overflow = self._overflow
        self._buffer.clear()
        self._overflow = False
        if overflow:
            self.framing_errors += 1
            return None
        if not frame:  # back-to-back delimiters are idle fill, not an error
            return None
        try:
            decoded = cobs_decode(frame)
        except ValueError:
            self.framing_errors += 1
            return None
        # Every version ends with the CRC of what precedes it, so corruption is told apart from a new version.
        if len(decoded) < 1 + _CRC.size:
            self.framing_errors += 1
            return None
        (crc,) = _CRC.unpack_from(decoded, len(decoded) - _CRC.size)
        if crc != crc16_ccitt_false(decoded[: -_CRC.size]):
            self.crc_errors += 1
            return None
        if decoded[0] != SERIAL_VERSION:
            self.version_errors += 1
            return None
        if len(decoded) != FRAME_LEN:
            self.framing_errors += 1
            return None
        _, flags, *fields = _PAYLOAD.unpack_from(decoded)
        seq, timestamp_ms, frame_id, crack_pixels, coverage, components, skeleton_px, max_width = fields
        self.frames += 1
        return Summary(
            seq, timestamp_ms, frame_id, crack_pixels, coverage, components, skeleton_px, max_width,
            SummaryFlags(flags),
        )  # fmt: skip
