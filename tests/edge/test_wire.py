"""The ZeroMQ mask message: byte layout by hand, round trips, hostile input, and the golden files."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
import zlib
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from crackseg.edge.runtime.pose import Attitude, GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.stats import CrackBox, CrackStats, crack_stats
from crackseg.edge.runtime.wire import (
    MAGIC,
    MaskEncoding,
    MaskMessage,
    MessageKind,
    WireError,
    decode_mask,
    encode_mask,
    model_hash,
)

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
HASH = bytes(range(16))
# Offsets from the byte table in edge/WIRE.md.
WIDTH_AT, HEIGHT_AT, ENCODING_AT, SOURCE_LEN_AT, N_BOXES_AT = 64, 68, 72, 73, 74
FIXED_LEN = 96


def _mask(height: int = 20, width: int = 37) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    mask[3:5, 2:] = True  # reaches the last column: exercises packed-row padding
    mask[np.arange(6, 16), np.arange(10, 20)] = True
    mask[18, 0] = True
    return mask


def _frame(encoding: MaskEncoding = MaskEncoding.PACKBITS_ZLIB, mask: np.ndarray | None = None) -> MaskMessage:
    mask = _mask() if mask is None else mask
    return MaskMessage(
        seq=2**64 - 1,
        frame_id=12345,
        source_id="rtsp://cam/ü",
        capture_ns=-5,
        publish_ns=1_700_000_000_123_456_789,
        model_hash=HASH,
        threshold=0.375,
        mask=mask,
        stats=crack_stats(mask),
        encoding=encoding,
    )


def _heartbeat() -> MaskMessage:
    return MaskMessage(seq=3, frame_id=9, source_id="cam0", capture_ns=0, publish_ns=10, model_hash=HASH, threshold=0.5)


def _recrc(body: bytes | bytearray) -> bytes:
    """Replace the trailing CRC so that a deliberately malformed message gets past the CRC check."""
    body = bytes(body[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def _patch(buf: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(buf)
    struct.pack_into(fmt, out, offset, value)
    return _recrc(out)


def _with_payload(buf: bytes, payload: bytes) -> bytes:
    (header_len,) = struct.unpack_from("<I", buf, 8)
    return _recrc(buf[:header_len] + struct.pack("<I", len(payload)) + payload + b"\0\0\0\0")


def _assert_same(a: MaskMessage, b: MaskMessage) -> None:
    assert (a.kind, a.seq, a.frame_id, a.source_id) == (b.kind, b.seq, b.frame_id, b.source_id)
    assert (a.capture_ns, a.publish_ns, a.model_hash, a.threshold) == (
        b.capture_ns,
        b.publish_ns,
        b.model_hash,
        b.threshold,
    )
    assert a.stats == b.stats
    assert a.pose == b.pose
    if a.mask is None or b.mask is None:
        assert a.mask is None and b.mask is None
    else:
        assert a.encoding == b.encoding
        assert a.mask.dtype == b.mask.dtype == np.bool_
        assert np.array_equal(a.mask, b.mask)


# --- layout -------------------------------------------------------------------------------------------


def test_heartbeat_layout_by_hand() -> None:
    buf = _heartbeat().to_bytes()
    header_len = FIXED_LEN + len(b"cam0")
    assert len(buf) == header_len + 4 + 4
    assert buf[:4] == b"CSEG"
    assert struct.unpack_from("<HHI", buf, 4) == (1, 2, header_len)
    assert struct.unpack_from("<QQqq", buf, 12) == (3, 9, 0, 10)
    assert buf[44:60] == HASH
    assert struct.unpack_from("<f", buf, 60) == (0.5,)
    assert buf[64:96] == bytes([0] * 9) + bytes([4]) + bytes(22)  # frame fields zero, source_len 4
    assert buf[96:100] == b"cam0"
    assert struct.unpack_from("<I", buf, header_len) == (0,)  # payload_len
    assert struct.unpack_from("<I", buf, header_len + 4) == (zlib.crc32(buf[: header_len + 4]),)


def test_frame_layout_by_hand() -> None:
    mask = np.zeros((2, 3), bool)
    mask[1, 2] = True
    msg = MaskMessage(1, 2, "", 3, 4, HASH, 0.25, mask, crack_stats(mask), MaskEncoding.RAW)
    buf = msg.to_bytes()
    header_len = FIXED_LEN + 20  # no source id, one box
    assert struct.unpack_from("<HHI", buf, 4) == (1, 1, header_len)
    assert struct.unpack_from("<IIBBBB", buf, 64) == (3, 2, 0, 0, 1, 0)
    # crack_pixels, coverage_pct (1 of 6 px), components, skeleton_px, max_width_px
    assert struct.unpack_from("<IfIIf", buf, 76) == (1, pytest.approx(100 / 6), 1, 1, 1.0)
    assert struct.unpack_from("<5I", buf, 96) == (2, 1, 1, 1, 1)  # x, y, w, h, pixels
    assert struct.unpack_from("<I", buf, header_len) == (6,)
    assert buf[header_len + 4 : header_len + 10] == bytes([0, 0, 0, 0, 0, 255])
    assert len(buf) == header_len + 4 + 6 + 4


def test_packbits_rows_are_msb_first_and_padded_per_row() -> None:
    mask = np.zeros((2, 10), bool)
    mask[0, [0, 8, 9]] = True
    mask[1, 7] = True
    payload = encode_mask(mask, MaskEncoding.PACKBITS_ZLIB)
    assert zlib.decompress(payload) == bytes([0x80, 0xC0, 0x01, 0x00])
    assert np.array_equal(decode_mask(payload, MaskEncoding.PACKBITS_ZLIB, 10, 2), mask)


def test_model_hash_is_first_16_bytes_of_sha256(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"not really a model" * 1000)
    assert model_hash(path) == hashlib.sha256(path.read_bytes()).digest()[:16]


# --- round trips --------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", list(MaskEncoding))
def test_round_trip_every_encoding(encoding: MaskEncoding) -> None:
    msg = _frame(encoding)
    back = MaskMessage.from_bytes(msg.to_bytes())
    _assert_same(back, msg)
    assert back.kind == MessageKind.MASK and (back.width, back.height) == (37, 20)


@pytest.mark.parametrize("encoding", list(MaskEncoding))
@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (9, 1), (8, 16)])
def test_round_trip_edge_shapes(encoding: MaskEncoding, shape: tuple[int, int]) -> None:
    for mask in (np.zeros(shape, bool), np.ones(shape, bool)):
        _assert_same(MaskMessage.from_bytes(_frame(encoding, mask).to_bytes()), _frame(encoding, mask))


def test_heartbeat_round_trip() -> None:
    back = MaskMessage.from_bytes(_heartbeat().to_bytes())
    _assert_same(back, _heartbeat())
    assert back.kind == MessageKind.HEARTBEAT and back.mask is None and back.stats is None


def test_accepts_bytearray_and_memoryview() -> None:
    buf = _frame().to_bytes()
    for view in (bytearray(buf), memoryview(buf)):
        _assert_same(MaskMessage.from_bytes(view), _frame())


def _extend(buf: bytes, extension: bytes) -> bytes:
    """``buf`` with ``extension`` appended to its header (header_len and CRC updated)."""
    (header_len,) = struct.unpack_from("<I", buf, 8)
    extended = bytearray(buf[:header_len] + extension + buf[header_len:])
    struct.pack_into("<I", extended, 8, header_len + len(extension))
    return _recrc(extended)


def test_an_unknown_extension_block_is_skipped() -> None:
    """Blocks appended to the header within version 1 are skipped by decoders that do not know their type."""
    _assert_same(MaskMessage.from_bytes(_extend(_frame().to_bytes(), b"\x77\x77\x08\x00future!!")), _frame())


@pytest.mark.parametrize("extension", [b"\x77", b"\x77\x77\x09\x00future!!"], ids=["stray bytes", "overrun"])
def test_a_malformed_extension_block_is_rejected(extension: bytes) -> None:
    with pytest.raises(WireError, match="length field out of range"):
        MaskMessage.from_bytes(_extend(_frame().to_bytes(), extension))


# --- pose extension -----------------------------------------------------------------------------------

DRONE_POSE = Pose(
    position=GeoPosition(47.397742, 8.545594, 488.25, 30.5),
    attitude=Attitude(1.5, -2.25, 91.125),
    gimbal=Attitude(0.0, -90.0, 45.5),
    stale=PoseParts.GIMBAL,
    age_ms=1250,
)


@pytest.mark.parametrize(
    "pose",
    [DRONE_POSE, Pose(chainage_m=123.456, attitude=Attitude(0.5, 1.0, -179.5)), Pose(position=DRONE_POSE.position)],
    ids=["drone", "crawler", "position only"],
)
def test_pose_round_trips_and_absent_parts_stay_absent(pose: Pose) -> None:
    sent = dataclasses.replace(_frame(), pose=pose)
    _assert_same(MaskMessage.from_bytes(sent.to_bytes()), sent)


def test_the_pose_block_is_type_1_version_1_and_64_bytes_with_nan_for_absent_parts() -> None:
    plain, posed = _frame().to_bytes(), dataclasses.replace(_frame(), pose=Pose(chainage_m=2.5)).to_bytes()
    (header_len,) = struct.unpack_from("<I", posed, 8)
    block = posed[header_len - 68 : header_len]
    assert struct.unpack_from("<HHBBBxI", block) == (1, 64, 1, int(PoseParts.CHAINAGE), 0, 0)
    assert all(np.isnan(v) for v in struct.unpack_from("<ddffffffff", block, 12))
    assert struct.unpack_from("<d", block, 60) == (2.5,)
    assert len(posed) == len(plain) + 68


def test_without_a_pose_the_message_has_no_extension_and_old_decoders_skip_one() -> None:
    """No pose source: not one byte more. With a pose, removing the block gives back the plain message exactly:
    the block lives where version 1 always told decoders to skip, so an older decoder reads the same fields."""
    plain = _frame().to_bytes()
    assert struct.unpack_from("<I", plain, 8)[0] == FIXED_LEN + len("rtsp://cam/ü".encode()) + 20 * 3
    posed = dataclasses.replace(_frame(), pose=DRONE_POSE).to_bytes()
    (header_len,) = struct.unpack_from("<I", posed, 8)
    stripped = bytearray(posed[: header_len - 68] + posed[header_len:])
    struct.pack_into("<I", stripped, 8, header_len - 68)
    assert _recrc(stripped) == plain


def test_a_pose_block_of_an_unknown_version_is_ignored() -> None:
    posed = bytearray(dataclasses.replace(_frame(), pose=DRONE_POSE).to_bytes())
    (header_len,) = struct.unpack_from("<I", posed, 8)
    posed[header_len - 64] = 2  # the pose block's version byte
    assert MaskMessage.from_bytes(_recrc(posed)).pose is None


# --- hostile input ------------------------------------------------------------------------------------

SAMPLES = {
    "raw": lambda: _frame(MaskEncoding.RAW),
    "png": lambda: _frame(MaskEncoding.PNG),
    "packbits": lambda: _frame(MaskEncoding.PACKBITS_ZLIB),
    "heartbeat": _heartbeat,
}


@pytest.mark.parametrize("name", SAMPLES)
def test_every_truncation_is_a_wire_error(name: str) -> None:
    buf = SAMPLES[name]().to_bytes()
    for n in range(len(buf)):
        with pytest.raises(WireError):
            MaskMessage.from_bytes(buf[:n])


@pytest.mark.parametrize("name", SAMPLES)
def test_every_single_byte_corruption_is_a_wire_error(name: str) -> None:
    buf = SAMPLES[name]().to_bytes()
    rng = np.random.default_rng(len(buf))
    for pos, flip in enumerate(rng.integers(1, 256, len(buf))):
        bad = bytearray(buf)
        bad[pos] ^= int(flip)
        with pytest.raises(WireError):
            MaskMessage.from_bytes(bytes(bad))


def test_random_garbage_behind_a_valid_magic_is_a_wire_error() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        body = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        with pytest.raises(WireError):
            MaskMessage.from_bytes(MAGIC + struct.pack("<H", 1) + body)


def test_trailing_bytes_are_rejected() -> None:
    with pytest.raises(WireError, match="trailing"):
        MaskMessage.from_bytes(_frame().to_bytes() + b"\0")


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "reason"),
    [
        (0, "<4s", b"CSEH", "bad magic"),
        (4, "<H", 2, "unsupported version 2"),
        (6, "<H", 3, "unknown message kind 3"),
        (8, "<I", 95, "header_len"),
        (8, "<I", 5000, "header_len"),
        (SOURCE_LEN_AT, "<B", 65, "source_len"),
        (N_BOXES_AT, "<B", 65, "n_boxes"),
        (WIDTH_AT, "<I", 8193, "oversized"),
        (HEIGHT_AT, "<I", 0, "empty"),
        (ENCODING_AT, "<B", 3, "unknown mask encoding 3"),
    ],
)
def test_bad_fields_name_the_reason(offset: int, fmt: str, value: object, reason: str) -> None:
    buf = _frame().to_bytes()
    out = bytearray(buf)
    struct.pack_into(fmt, out, offset, value)
    with pytest.raises(WireError, match=reason):
        MaskMessage.from_bytes(_recrc(out))


def test_crc_mismatch() -> None:
    buf = bytearray(_frame().to_bytes())
    buf[-1] ^= 0xFF
    with pytest.raises(WireError, match="CRC mismatch"):
        MaskMessage.from_bytes(bytes(buf))


def test_oversized_payload() -> None:
    buf = _frame(MaskEncoding.RAW).to_bytes()
    (header_len,) = struct.unpack_from("<I", buf, 8)
    too_long = struct.pack("<I", 37 * 20 + 65536 + 1)
    with pytest.raises(WireError, match="oversized payload"):
        MaskMessage.from_bytes(buf[:header_len] + too_long + bytes(100))


def test_bad_utf8_source_id() -> None:
    buf = bytearray(_heartbeat().to_bytes())
    buf[FIXED_LEN] = 0xFF
    with pytest.raises(WireError, match="UTF-8"):
        MaskMessage.from_bytes(_recrc(buf))


def test_heartbeat_with_frame_fields_is_rejected() -> None:
    with pytest.raises(WireError, match="heartbeat"):
        MaskMessage.from_bytes(_patch(_heartbeat().to_bytes(), 76, "<I", 1))  # crack_pixels


def test_box_outside_the_frame_is_rejected() -> None:
    buf = _frame().to_bytes()
    with pytest.raises(WireError, match="inside"):
        MaskMessage.from_bytes(_patch(buf, FIXED_LEN + len("rtsp://cam/ü".encode()), "<I", 30))  # box x


@pytest.mark.parametrize(
    ("encoding", "payload", "reason"),
    [
        (MaskEncoding.RAW, bytes(37 * 20 - 1), "size mismatch"),
        (MaskEncoding.PACKBITS_ZLIB, b"not zlib", "undecodable"),
        (MaskEncoding.PACKBITS_ZLIB, zlib.compress(bytes(5 * 20 - 1)), "size mismatch"),
        (MaskEncoding.PACKBITS_ZLIB, zlib.compress(bytes(5 * 20 + 1)), "size mismatch"),
        (MaskEncoding.PACKBITS_ZLIB, zlib.compress(bytes(5 * 20))[:-3], "undecodable"),
        (MaskEncoding.PACKBITS_ZLIB, zlib.compress(bytes(5 * 20)) + b"x", "undecodable"),
        (MaskEncoding.PNG, b"GIF89a" + bytes(40), "not a PNG"),
        (MaskEncoding.PNG, encode_mask(np.zeros((20, 36), bool), MaskEncoding.PNG), "PNG is 36x20"),
        (MaskEncoding.PNG, encode_mask(_mask(), MaskEncoding.PNG)[:60], "undecodable"),
    ],
)
def test_bad_payload_names_the_reason(encoding: MaskEncoding, payload: bytes, reason: str) -> None:
    buf = _frame(encoding).to_bytes()
    with pytest.raises(WireError, match=reason):
        MaskMessage.from_bytes(_with_payload(buf, payload))


def test_colour_png_is_rejected() -> None:
    import cv2

    ok, png = cv2.imencode(".png", np.zeros((20, 37, 3), np.uint8))
    assert ok
    with pytest.raises(WireError, match="grayscale"):
        MaskMessage.from_bytes(_with_payload(_frame(MaskEncoding.PNG).to_bytes(), png.tobytes()))


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"model_hash": b"short"}, "model_hash"),
        ({"source_id": "x" * 65}, "source_id"),
        ({"mask": np.zeros((4, 4), np.uint8)}, "2-D bool"),
        ({"mask": np.zeros((1, 8193), bool), "stats": CrackStats()}, "oversized"),
        ({"stats": None}, "needs its stats"),
        ({"stats": CrackStats(boxes=(CrackBox(30, 0, 8, 1, 1),))}, "inside"),
        ({"stats": CrackStats(boxes=(CrackBox(0, 0, 1, 1, 1),) * 65)}, "at most 64"),
        ({"mask": None}, "heartbeat"),
    ],
)
def test_invalid_messages_are_refused_at_construction(changes: dict[str, object], reason: str) -> None:
    fields = {**vars(_frame()), **changes}
    with pytest.raises(WireError, match=reason):
        MaskMessage(**fields)  # type: ignore[arg-type]


def test_out_of_range_integer_is_refused_at_encoding() -> None:
    msg = _frame()
    bad = MaskMessage(-1, msg.frame_id, msg.source_id, 0, 0, HASH, 0.5, msg.mask, msg.stats)
    with pytest.raises(WireError, match="out of range"):
        bad.to_bytes()


# --- golden files -------------------------------------------------------------------------------------

ZMQ_GOLDEN = ["mask_raw.bin", "mask_png.bin", "mask_packbits_zlib.bin", "mask_pose_drone.bin", "mask_pose_crawler.bin",
              "heartbeat.bin"]  # fmt: skip


def _index() -> dict[str, dict[str, object]]:
    return json.loads((GOLDEN / "golden.json").read_text())["zmq"]


def test_golden_index_lists_every_zmq_file() -> None:
    assert sorted(_index()) == sorted(ZMQ_GOLDEN)


@pytest.mark.parametrize("name", ZMQ_GOLDEN)
def test_committed_golden_decodes_to_indexed_fields(golden: ModuleType, name: str) -> None:
    msg = MaskMessage.from_bytes((GOLDEN / name).read_bytes())
    assert golden.describe_message(msg) == _index()[name]


def test_golden_facts_by_hand() -> None:
    index = _index()
    packed = index["mask_packbits_zlib.bin"]
    assert (packed["width"], packed["height"], packed["encoding"]) == (37, 20, 2)
    assert (index["mask_raw.bin"]["encoding"], index["mask_png.bin"]["encoding"]) == (0, 1)
    assert index["heartbeat.bin"]["kind"] == 2 and len((GOLDEN / "heartbeat.bin").read_bytes()) == 96 + 7 + 8
    raw = (GOLDEN / "mask_raw.bin").read_bytes()
    (header_len,) = struct.unpack_from("<I", raw, 8)
    mask = np.frombuffer(raw, np.uint8, 12 * 16, header_len + 4).reshape(12, 16) == 255
    assert hashlib.sha256(mask.astype(np.uint8).tobytes()).hexdigest() == index["mask_raw.bin"]["mask_sha256"]
    drone = (GOLDEN / "mask_pose_drone.bin").read_bytes()
    (header_len,) = struct.unpack_from("<I", drone, 8)
    assert header_len == FIXED_LEN + len("csi://0") + 20 * 2 + 4 + 64  # the raw frame's header, then one pose block
    assert struct.unpack_from("<HHBBBxId", drone, header_len - 68) == (1, 64, 1, 0b0111, 0b0100, 750, 47.397742)
    assert index["mask_pose_crawler.bin"]["pose"]["position"] is None  # absent, not zeros


def test_golden_index_regenerates_identically(golden: ModuleType) -> None:
    assert golden.build()["golden.json"] == (GOLDEN / "golden.json").read_bytes()


@pytest.mark.parametrize("name", ZMQ_GOLDEN)
def test_golden_message_regenerates_identically(golden: ModuleType, name: str) -> None:
    fresh, committed = golden.build()[name], (GOLDEN / name).read_bytes()
    if fresh == committed:
        return
    # PNG and zlib output may differ between compressor builds; everything before the payload may not.
    assert name in {"mask_png.bin", "mask_packbits_zlib.bin"}, f"{name} no longer encodes to the committed bytes"
    (header_len,) = struct.unpack_from("<I", committed, 8)
    assert fresh[:header_len] == committed[:header_len]
    _assert_same(MaskMessage.from_bytes(fresh), MaskMessage.from_bytes(committed))
