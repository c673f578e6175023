// The ZeroMQ mask message: header layout, validation order and field extraction (edge/WIRE.md).
//
// Every read is preceded by the length check that makes it safe, in the specification's order, so the
// first failing rule names the rejection exactly as crackseg.edge.runtime.wire does.
#include <zlib.h>

#include <cstring>

#include "crackseg/wire.hpp"
#include "le_bytes.h"
#include "mask_decode.hpp"
#include "utf8.hpp"

namespace crackseg {
namespace {

// Byte offsets of the fixed header (edge/WIRE.md, layout table).
enum Offset : std::size_t {
    kMagic = 0,
    kVersion = 4,
    kKind = 6,
    kHeaderLen = 8,
    kSeq = 12,
    kFrameId = 20,
    kCaptureNs = 28,
    kPublishNs = 36,
    kModelHash = 44,
    kThreshold = 60,
    kWidth = 64,
    kHeight = 68,
    kEncoding = 72,
    kSourceLen = 73,
    kNumBoxes = 74,
    kCrackPixels = 76,
    kCoverage = 80,
    kComponents = 84,
    kSkeleton = 88,
    kMaxWidth = 92,
    kFixedLen = 96,
};

constexpr std::size_t kBoxLen = 20;
constexpr std::size_t kU32 = 4;
constexpr std::size_t kBlockHeaderLen = 4;  // u16 type, u16 length
constexpr std::uint16_t kBlockPose = 1;
constexpr std::uint8_t kPoseVersion = 1;
constexpr std::size_t kPoseLen = 64;
constexpr char kMagicBytes[4] = {'C', 'S', 'E', 'G'};

float f32(const std::uint8_t* p) {
    const std::uint32_t bits = crackseg_le32(p);
    float value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

double f64(const std::uint8_t* p) {
    const std::uint64_t bits = crackseg_le64(p);
    double value;
    std::memcpy(&value, &bits, sizeof value);
    return value;
}

Attitude read_attitude(const std::uint8_t* p) { return Attitude{f32(p), f32(p + 4), f32(p + 8)}; }

// The pose block body (edge/WIRE.md, "Pose block"); a version this client does not read is ignored.
WireError read_pose(const std::uint8_t* body, std::size_t size, std::optional<Pose>& out) {
    if (size < kPoseLen) {
        return WireError::length_out_of_range;
    }
    if (body[0] != kPoseVersion) {
        return WireError::ok;
    }
    Pose pose;
    pose.present = body[1] & 0x0F;  // bits 4-7 are reserved for parts appended later
    pose.stale = body[2] & pose.present;
    pose.age_ms = crackseg_le32(body + 4);
    pose.position = GeoPosition{f64(body + 8), f64(body + 16), f32(body + 24), f32(body + 28)};
    pose.attitude = read_attitude(body + 32);
    pose.gimbal = read_attitude(body + 44);
    pose.chainage_m = f64(body + 56);
    out = pose;
    return WireError::ok;
}

// The extension blocks between the boxes and header_len: reads the pose block, skips unknown types.
WireError read_extensions(const std::uint8_t* data, std::size_t start, std::size_t end, std::optional<Pose>& pose) {
    pose.reset();
    std::size_t offset = start;
    while (offset < end) {
        if (end - offset < kBlockHeaderLen) {
            return WireError::length_out_of_range;
        }
        const std::uint16_t type = crackseg_le16(data + offset);
        const std::size_t length = crackseg_le16(data + offset + 2);
        const std::size_t body = offset + kBlockHeaderLen;
        if (length > end - body) {
            return WireError::length_out_of_range;
        }
        if (type == kBlockPose) {
            if (const WireError error = read_pose(data + body, length, pose); error != WireError::ok) {
                return error;
            }
        }
        offset = body + length;
    }
    return WireError::ok;
}

// Steps 1-4 of the specification: everything needed before the payload may be trusted.
WireError check_framing(const std::uint8_t* data, std::size_t size) {
    if (size == 0) {
        return WireError::truncated;  // and data may be null, which memcmp must not see
    }
    if (std::memcmp(data + kMagic, kMagicBytes, size < 4 ? size : 4) != 0) {
        return WireError::bad_magic;
    }
    if (size >= kVersion + 2 && crackseg_le16(data + kVersion) != kWireVersion) {
        return WireError::unsupported_version;
    }
    if (size < kMinMessageLen) {
        return WireError::truncated;
    }
    const std::uint16_t kind = crackseg_le16(data + kKind);
    if (kind != static_cast<std::uint16_t>(MessageKind::mask) &&
        kind != static_cast<std::uint16_t>(MessageKind::heartbeat)) {
        return WireError::unknown_kind;
    }
    const std::size_t source_len = data[kSourceLen];
    const std::size_t n_boxes = data[kNumBoxes];
    if (source_len > kMaxSourceIdBytes || n_boxes > kMaxBoxes) {
        return WireError::length_out_of_range;
    }
    const std::size_t header_len = crackseg_le32(data + kHeaderLen);
    if (header_len < kFixedLen + source_len + kBoxLen * n_boxes || header_len > kMaxHeaderLen) {
        return WireError::length_out_of_range;
    }
    if (size < header_len + 2 * kU32) {
        return WireError::truncated;
    }
    const std::uint64_t payload_len = crackseg_le32(data + header_len);
    std::uint64_t limit = 0;
    if (kind == static_cast<std::uint16_t>(MessageKind::mask)) {
        const std::uint32_t width = crackseg_le32(data + kWidth);
        const std::uint32_t height = crackseg_le32(data + kHeight);
        if (width < 1 || width > kMaxDim || height < 1 || height > kMaxDim) {
            return WireError::oversized;
        }
        limit = std::uint64_t{width} * height + kPayloadSlack;
    }
    if (payload_len > limit) {
        return WireError::oversized_payload;
    }
    const std::uint64_t total = header_len + payload_len + 2 * kU32;
    if (size != total) {
        return size < total ? WireError::truncated : WireError::trailing_bytes;
    }
    const std::size_t body = size - kU32;
    if (crc32_z(0, data, body) != crackseg_le32(data + body)) {
        return WireError::crc_mismatch;
    }
    return WireError::ok;
}

void read_fields(const std::uint8_t* data, MaskMessage& out) {
    out.kind = static_cast<MessageKind>(crackseg_le16(data + kKind));
    out.seq = crackseg_le64(data + kSeq);
    out.frame_id = crackseg_le64(data + kFrameId);
    out.capture_ns = static_cast<std::int64_t>(crackseg_le64(data + kCaptureNs));
    out.publish_ns = static_cast<std::int64_t>(crackseg_le64(data + kPublishNs));
    std::memcpy(out.model_hash.data(), data + kModelHash, out.model_hash.size());
    out.threshold = f32(data + kThreshold);
    out.width = crackseg_le32(data + kWidth);
    out.height = crackseg_le32(data + kHeight);
    out.encoding = static_cast<MaskEncoding>(data[kEncoding]);
    out.source_id.assign(reinterpret_cast<const char*>(data + kFixedLen), data[kSourceLen]);
    out.stats.crack_pixels = crackseg_le32(data + kCrackPixels);
    out.stats.coverage_pct = f32(data + kCoverage);
    out.stats.components = crackseg_le32(data + kComponents);
    out.stats.skeleton_px = crackseg_le32(data + kSkeleton);
    out.stats.max_width_px = f32(data + kMaxWidth);
    const std::uint8_t* box = data + kFixedLen + data[kSourceLen];
    out.boxes.resize(data[kNumBoxes]);
    for (CrackBox& b : out.boxes) {
        b = CrackBox{crackseg_le32(box), crackseg_le32(box + 4), crackseg_le32(box + 8), crackseg_le32(box + 12),
                     crackseg_le32(box + 16)};
        box += kBoxLen;
    }
}

// Compares values as the reference decoder does: -0.0 counts as zero, NaN does not.
bool is_empty_frame(const MaskMessage& msg) {
    const CrackStats& s = msg.stats;
    return msg.width == 0 && msg.height == 0 && msg.encoding == MaskEncoding::raw && msg.boxes.empty() &&
           s.crack_pixels == 0 && s.coverage_pct == 0 && s.components == 0 && s.skeleton_px == 0 && s.max_width_px == 0;
}

bool boxes_inside(const MaskMessage& msg) {
    for (const CrackBox& b : msg.boxes) {
        if (std::uint64_t{b.x} + b.w > msg.width || std::uint64_t{b.y} + b.h > msg.height) {
            return false;
        }
    }
    return true;
}

}  // namespace

const char* to_string(WireError error) noexcept {
    switch (error) {
        case WireError::ok: return "ok";
        case WireError::bad_magic: return "bad magic";
        case WireError::unsupported_version: return "unsupported version";
        case WireError::truncated: return "truncated";
        case WireError::length_out_of_range: return "length field out of range";
        case WireError::unknown_kind: return "unknown message kind";
        case WireError::oversized: return "oversized or empty mask";
        case WireError::oversized_payload: return "oversized payload";
        case WireError::trailing_bytes: return "trailing bytes";
        case WireError::crc_mismatch: return "CRC mismatch";
        case WireError::invalid_source_id: return "source_id is not valid UTF-8";
        case WireError::unknown_encoding: return "unknown mask encoding";
        case WireError::invalid_heartbeat: return "heartbeat with non-zero frame fields";
        case WireError::undecodable_payload: return "undecodable mask payload";
        case WireError::mask_size_mismatch: return "decoded mask size mismatch";
        case WireError::box_outside_frame: return "box outside the frame";
    }
    return "unknown error";
}

WireError decode_message(const std::uint8_t* data, std::size_t size, MaskMessage& out) {
    if (const WireError framing = check_framing(data, size); framing != WireError::ok) {
        return framing;
    }
    // Step 5: the fields themselves.
    if (!detail::is_valid_utf8(data + kFixedLen, data[kSourceLen])) {
        return WireError::invalid_source_id;
    }
    if (data[kEncoding] > static_cast<std::uint8_t>(MaskEncoding::packbits_zlib)) {
        return WireError::unknown_encoding;
    }
    const std::size_t fields_end = kFixedLen + data[kSourceLen] + kBoxLen * data[kNumBoxes];
    const std::size_t header_len = crackseg_le32(data + kHeaderLen);
    if (const WireError error = read_extensions(data, fields_end, header_len, out.pose); error != WireError::ok) {
        return error;
    }
    read_fields(data, out);
    if (out.is_heartbeat()) {
        out.mask.clear();
        return is_empty_frame(out) ? WireError::ok : WireError::invalid_heartbeat;
    }
    // Steps 6 and 7: the mask, then the boxes against its size.
    const detail::ByteView payload{data + header_len + kU32, crackseg_le32(data + header_len)};
    if (const WireError mask = detail::decode_mask(payload, out.encoding, out.width, out.height, out.mask);
        mask != WireError::ok) {
        return mask;
    }
    return boxes_inside(out) ? WireError::ok : WireError::box_outside_frame;
}

}  // namespace crackseg
