"""Serial summary frames: CRC and COBS against published vectors, framing, resync, and golden files."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from types import ModuleType

import pytest

from crackseg.edge.runtime.serial_frame import (
    FRAME_LEN,
    MAX_WIRE_FRAME,
    Summary,
    SummaryDecoder,
    SummaryFlags,
    cobs_decode,
    cobs_encode,
    crc16_ccitt_false,
    encode_summary,
)
from crackseg.edge.runtime.stats import CrackStats

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
SUMMARY = Summary(
    seq=0x01020304,
    timestamp_ms=0xA0B0C0D0,
    frame_id=77,
    crack_pixels=5000,
    coverage_centi_pct=1234,
    components=2,
    skeleton_px=300,
    max_width_px=9,
    flags=SummaryFlags.STALE,
)


def _frame_with(payload: bytes) -> bytes:
    """A correctly framed and checksummed frame around an arbitrary payload."""
    return cobs_encode(payload + struct.pack("<H", crc16_ccitt_false(payload))) + b"\x00"


# --- CRC and COBS -------------------------------------------------------------------------------------


def test_crc16_ccitt_false_check_value() -> None:
    assert crc16_ccitt_false(b"123456789") == 0x29B1  # the catalogue's check value
    assert crc16_ccitt_false(b"") == 0xFFFF  # init, no final xor


# The examples of the Wikipedia COBS article (delimiter not included).
COBS_VECTORS = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
    (b"", b"\x01"),
]


@pytest.mark.parametrize(("raw", "encoded"), COBS_VECTORS, ids=range(len(COBS_VECTORS)))
def test_cobs_known_vectors(raw: bytes, encoded: bytes) -> None:
    assert cobs_encode(raw) == encoded
    assert cobs_decode(encoded) == raw


@pytest.mark.parametrize("bad", [b"\x05\x11\x22", b"\x03\x11\x00", b"\x00"])
def test_cobs_decode_rejects_invalid_input(bad: bytes) -> None:
    with pytest.raises(ValueError, match="invalid COBS"):
        cobs_decode(bad)


# --- frame layout -------------------------------------------------------------------------------------


def test_frame_layout_by_hand() -> None:
    frame = encode_summary(SUMMARY)
    assert len(frame) == 32 and frame[-1] == 0 and 0 not in frame[:-1]
    decoded = cobs_decode(frame[:-1])
    assert len(decoded) == FRAME_LEN == 30
    assert decoded[:2] == bytes([1, 2])  # version 1, flags STALE
    assert decoded[2:6] == bytes([4, 3, 2, 1])  # seq, little-endian
    assert struct.unpack_from("<IIIHHIH", decoded, 6) == (0xA0B0C0D0, 77, 5000, 1234, 2, 300, 9)
    assert struct.unpack_from("<H", decoded, 28) == (crc16_ccitt_false(decoded[:28]),)


def test_round_trip() -> None:
    decoder = SummaryDecoder()
    assert decoder.feed(encode_summary(SUMMARY)) == [SUMMARY]
    assert (decoder.frames, decoder.crc_errors, decoder.framing_errors, decoder.pending_bytes) == (1, 0, 0, 0)


def test_byte_by_byte_feeding_completes_on_the_delimiter() -> None:
    frame = encode_summary(SUMMARY)
    decoder = SummaryDecoder()
    results = [decoder.feed(frame[i : i + 1]) for i in range(len(frame))]
    assert results[:-1] == [[]] * (len(frame) - 1)
    assert results[-1] == [SUMMARY]


def test_several_frames_in_one_chunk_and_idle_delimiters() -> None:
    other = Summary(1, 2, 3, 4, 5, 6, 7, 8)
    decoder = SummaryDecoder()
    assert decoder.feed(b"\x00\x00" + encode_summary(SUMMARY) + b"\x00" + encode_summary(other)) == [SUMMARY, other]
    assert decoder.framing_errors == 0  # empty frames are idle fill


def test_resync_after_garbage() -> None:
    decoder = SummaryDecoder()
    out = decoder.feed(b"\x42\x17\x99\x00" + encode_summary(SUMMARY))
    assert out == [SUMMARY]
    assert decoder.framing_errors == 1


def test_garbage_glued_to_a_frame_costs_that_frame_only() -> None:
    decoder = SummaryDecoder()
    out = decoder.feed(b"\x42\x17" + encode_summary(SUMMARY) + encode_summary(SUMMARY))
    assert out == [SUMMARY]
    assert decoder.framing_errors + decoder.crc_errors == 1


def test_bad_crc_is_dropped_and_counted() -> None:
    frame = bytearray(encode_summary(SUMMARY))
    frame[5] ^= 0x10  # inside the first COBS block's data, stays non-zero
    decoder = SummaryDecoder()
    assert decoder.feed(bytes(frame) + encode_summary(SUMMARY)) == [SUMMARY]
    assert (decoder.crc_errors, decoder.framing_errors, decoder.frames) == (1, 0, 1)


def test_unknown_version_is_counted_not_parsed() -> None:
    decoder = SummaryDecoder()
    assert decoder.feed(_frame_with(bytes([2]) + bytes(40))) == []
    assert (decoder.version_errors, decoder.crc_errors, decoder.framing_errors) == (1, 0, 0)


def test_wrong_length_for_version_1_is_a_framing_error() -> None:
    decoder = SummaryDecoder()
    assert decoder.feed(_frame_with(bytes([1]) + bytes(26))) == []
    assert decoder.framing_errors == 1


def test_buffer_stays_bounded_on_endless_garbage() -> None:
    decoder = SummaryDecoder()
    for _ in range(100):
        assert decoder.feed(b"\x55" * 1000) == []
        assert decoder.pending_bytes < MAX_WIRE_FRAME
    assert decoder.feed(b"\x00" + encode_summary(SUMMARY)) == [SUMMARY]
    assert decoder.framing_errors == 1  # the whole overlong run counts once


def test_longest_allowed_frame_is_still_buffered() -> None:
    decoder = SummaryDecoder()
    decoder.feed(b"\x55" * (MAX_WIRE_FRAME - 1))
    assert decoder.pending_bytes == MAX_WIRE_FRAME - 1


# --- conversion from full statistics ------------------------------------------------------------------


def test_from_stats_converts_units() -> None:
    stats = CrackStats(crack_pixels=1234, coverage_pct=4.706, components=3, skeleton_px=456, max_width_px=6.6)
    summary = Summary.from_stats(stats, seq=2**32 + 5, frame_id=2**32 + 42, capture_ns=1_700_000_000_123_999_999)
    # 1_700_000_000_123 ms mod 2**32 = 1_700_000_000_123 - 395 * 2**32
    assert summary == Summary(5, 1_700_000_000_123 - 395 * 2**32, 42, 1234, 471, 3, 456, 7)


def test_from_stats_saturates_and_flags() -> None:
    stats = CrackStats(crack_pixels=10, coverage_pct=1.0, components=70_000, skeleton_px=5, max_width_px=70_000.0)
    summary = Summary.from_stats(stats, seq=0, frame_id=0, capture_ns=0, stale=True)
    assert (summary.components, summary.max_width_px) == (65_535, 65_535)
    assert summary.flags == SummaryFlags.SATURATED | SummaryFlags.STALE


def test_encode_refuses_out_of_range_fields() -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_summary(Summary(2**32, 0, 0, 0, 0, 0, 0, 0))


# --- golden files -------------------------------------------------------------------------------------

SERIAL_GOLDEN = ["serial_summary_1.bin", "serial_summary_2.bin", "serial_stream.bin"]


def _index() -> dict[str, object]:
    return json.loads((GOLDEN / "golden.json").read_text())["serial"]


def test_golden_index_lists_every_serial_file() -> None:
    assert sorted(_index()) == sorted(SERIAL_GOLDEN)


@pytest.mark.parametrize("name", SERIAL_GOLDEN)
def test_committed_golden_decodes_to_indexed_fields(golden: ModuleType, name: str) -> None:
    decoder = SummaryDecoder()
    summaries = decoder.feed((GOLDEN / name).read_bytes())
    assert golden.describe_serial(summaries, decoder) == _index()[name]


@pytest.mark.parametrize("name", SERIAL_GOLDEN)
def test_golden_serial_regenerates_identically(golden: ModuleType, name: str) -> None:
    assert golden.build()[name] == (GOLDEN / name).read_bytes()
