"""(Re)write the golden messages of edge/WIRE.md and their index, golden.json.

    python tests/golden/make_golden.py

Deterministic: fixed timestamps and masks drawn from literal coordinates (no RNG). The PNG and zlib
payloads depend on the compressor build, so on another machine those two files may come out with
different (equally valid) bytes; golden.json never changes with the compressor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from crackseg.edge.runtime.pose import Attitude, GeoPosition, Pose, PoseParts
from crackseg.edge.runtime.serial_frame import Summary, SummaryDecoder, SummaryFlags, encode_summary
from crackseg.edge.runtime.stats import crack_stats
from crackseg.edge.runtime.wire import MaskEncoding, MaskMessage

GOLDEN_DIR = Path(__file__).resolve().parent
INDEX = "golden.json"
CAPTURE_NS = 1_700_000_000_000_000_000  # 2023-11-14T22:13:20Z
PUBLISH_NS = CAPTURE_NS + 12_345_678
MODEL_HASH = hashlib.sha256(b"crackseg golden model").digest()[:16]


def _mask(height: int, width: int, *cracks: tuple[slice, slice]) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    for rows, cols in cracks:
        mask[rows, cols] = True
    return mask


def _diagonal(height: int, width: int, start: int, stop: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    idx = np.arange(start, stop)
    mask[idx, idx] = True
    return mask


def _frame(
    seq: int, frame_id: int, mask: np.ndarray, encoding: MaskEncoding, threshold: float, pose: Pose | None = None
) -> MaskMessage:
    return MaskMessage(
        seq=seq,
        frame_id=frame_id,
        source_id="csi://0",
        capture_ns=CAPTURE_NS + frame_id * 33_333_333,
        publish_ns=PUBLISH_NS + frame_id * 33_333_333,
        model_hash=MODEL_HASH,
        threshold=threshold,
        mask=mask,
        stats=crack_stats(mask),
        encoding=encoding,
        pose=pose,
    )


# Pose values exactly representable in the block's f32 fields, so that golden.json states them exactly.
DRONE_POSE = Pose(
    position=GeoPosition(47.397742, 8.545594, 488.25, 30.5),
    attitude=Attitude(1.5, -2.25, 91.125),
    gimbal=Attitude(0.0, -45.5, 90.0),
    stale=PoseParts.GIMBAL,
    age_ms=750,
)
CRAWLER_POSE = Pose(chainage_m=123.456, attitude=Attitude(-0.5, 3.75, -179.5), age_ms=40)


def zmq_messages() -> dict[str, MaskMessage]:
    """The golden ZeroMQ messages by file name: one per mask encoding, and a heartbeat."""
    raw_mask = _diagonal(12, 16, 1, 9) | _mask(12, 16, (slice(9, 11), slice(12, 15)))
    png_mask = _mask(24, 32, (slice(10, 13), slice(4, 28)), (slice(2, 21), slice(30, 31)))
    # 37 columns: the last byte of each packed row holds 5 pixels and 3 padding bits; the crack
    # reaches the last column so that decoders must get the padding right.
    packed_mask = _mask(20, 37, (slice(5, 7), slice(3, 37)), (slice(18, 19), slice(0, 1)))
    return {
        "mask_raw.bin": _frame(7, 100, raw_mask, MaskEncoding.RAW, 0.4375),
        "mask_png.bin": _frame(8, 101, png_mask, MaskEncoding.PNG, 0.5),
        "mask_packbits_zlib.bin": _frame(9, 102, packed_mask, MaskEncoding.PACKBITS_ZLIB, 0.625),
        "mask_pose_drone.bin": _frame(11, 103, raw_mask, MaskEncoding.RAW, 0.4375, DRONE_POSE),
        "mask_pose_crawler.bin": _frame(12, 104, raw_mask, MaskEncoding.RAW, 0.4375, CRAWLER_POSE),
        "heartbeat.bin": MaskMessage(
            seq=10,
            frame_id=102,
            source_id="csi://0",
            capture_ns=CAPTURE_NS + 102 * 33_333_333,
            publish_ns=PUBLISH_NS + 3_000_000_000,
            model_hash=MODEL_HASH,
            threshold=0.625,
        ),
    }


SUMMARY_1 = Summary(
    seq=1,
    timestamp_ms=CAPTURE_NS // 1_000_000 % 2**32,
    frame_id=42,
    crack_pixels=1234,
    coverage_centi_pct=471,
    components=3,
    skeleton_px=456,
    max_width_px=7,
)
SUMMARY_2 = Summary(
    seq=2**32 - 1,
    timestamp_ms=2**32 - 1,
    frame_id=100_000,
    crack_pixels=262_144,
    coverage_centi_pct=10_000,
    components=65_535,
    skeleton_px=0,
    max_width_px=65_535,
    flags=SummaryFlags.STALE | SummaryFlags.SATURATED,
)


@dataclasses.dataclass(frozen=True)
class SerialCase:
    """A byte stream for a fresh decoder and everything it must report after reading all of it."""

    data: bytes
    summaries: tuple[Summary, ...]
    crc_errors: int = 0
    framing_errors: int = 0
    version_errors: int = 0
    pending_bytes: int = 0


def serial_cases() -> dict[str, SerialCase]:
    """The golden serial streams by file name: two single frames and a noisy stream."""
    frame_1, frame_2 = encode_summary(SUMMARY_1), encode_summary(SUMMARY_2)
    corrupted = bytearray(frame_2)
    corrupted[10] ^= 0x01  # a data byte (not a COBS code, not zero): only the CRC can notice
    noisy = b"\x13\x37\xc0\xde\xff\xfe\x00" + frame_1 + corrupted + frame_2 + b"\x00" + frame_1[:10]
    return {
        "serial_summary_1.bin": SerialCase(frame_1, (SUMMARY_1,)),
        "serial_summary_2.bin": SerialCase(frame_2, (SUMMARY_2,)),
        "serial_stream.bin": SerialCase(
            noisy, (SUMMARY_1, SUMMARY_2), crc_errors=1, framing_errors=1, pending_bytes=10
        ),
    }


def _f32(value: float) -> float:
    return float(np.float32(value))


def _angles(attitude: Attitude | None) -> dict[str, float] | None:
    return None if attitude is None else {name: _f32(v) for name, v in zip(Attitude._fields, attitude, strict=True)}


def describe_pose(pose: Pose) -> dict[str, Any]:
    """The pose fields a decoder must report, in JSON terms: absent parts are ``null``."""
    position = None
    if pose.position is not None:
        lat, lon, alt, rel_alt = pose.position  # latitude and longitude travel as f64, altitudes as f32
        position = {"lat_deg": lat, "lon_deg": lon, "alt_m": _f32(alt), "rel_alt_m": _f32(rel_alt)}
    return {
        "present": int(pose.present),
        "stale": int(pose.stale),
        "age_ms": pose.age_ms,
        "position": position,
        "attitude": _angles(pose.attitude),
        "gimbal": _angles(pose.gimbal),
        "chainage_m": pose.chainage_m,
    }


def describe_message(msg: MaskMessage) -> dict[str, Any]:
    """The fields a decoder must report for a ZeroMQ message, in JSON terms."""
    fields: dict[str, Any] = {
        "kind": int(msg.kind),
        "seq": msg.seq,
        "frame_id": msg.frame_id,
        "source_id": msg.source_id,
        "capture_ns": msg.capture_ns,
        "publish_ns": msg.publish_ns,
        "model_hash": msg.model_hash.hex(),
        "threshold": float(np.float32(msg.threshold)),
        "width": msg.width,
        "height": msg.height,
    }
    if msg.mask is not None and msg.stats is not None:
        fields["encoding"] = int(msg.encoding)
        fields["stats"] = {**dataclasses.asdict(msg.stats), "boxes": [dataclasses.asdict(b) for b in msg.stats.boxes]}
        fields["mask_sha256"] = hashlib.sha256(msg.mask.astype(np.uint8).tobytes()).hexdigest()
    if msg.pose is not None:
        fields["pose"] = describe_pose(msg.pose)
    return fields


def describe_serial(
    summaries: list[Summary] | tuple[Summary, ...], decoder: SummaryDecoder | SerialCase
) -> dict[str, Any]:
    """What a fresh serial decoder must report after reading a golden stream, in JSON terms."""
    return {
        "summaries": [{**dataclasses.asdict(s), "flags": int(s.flags)} for s in summaries],
        "crc_errors": decoder.crc_errors,
        "framing_errors": decoder.framing_errors,
        "version_errors": decoder.version_errors,
        "pending_bytes": decoder.pending_bytes,
    }


def build() -> dict[str, bytes]:
    """Every golden file's content by name, golden.json included."""
    messages, cases = zmq_messages(), serial_cases()
    index = {
        "description": "Golden messages of edge/WIRE.md. zmq: each file is one message body (no topic). "
        "serial: each file is a byte stream for a fresh decoder. mask_sha256 is the SHA-256 of the decoded "
        "mask as height*width bytes, row-major, 1 = crack, 0 = background.",
        "zmq_version": 1,
        "serial_version": 1,
        "zmq": {name: describe_message(msg) for name, msg in messages.items()},
        "serial": {name: describe_serial(case.summaries, case) for name, case in cases.items()},
    }
    files = {name: msg.to_bytes() for name, msg in messages.items()}
    files.update({name: case.data for name, case in cases.items()})
    files[INDEX] = (json.dumps(index, indent=2, sort_keys=True) + "\n").encode()
    return files


def main() -> None:
    for name, data in build().items():
        (GOLDEN_DIR / name).write_bytes(data)
        print(f"wrote {GOLDEN_DIR / name} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
