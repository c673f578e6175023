// Decoder for the crackseg ZeroMQ mask message, version 1 (edge/WIRE.md, "ZeroMQ mask message").
//
// The C++ counterpart of crackseg.edge.runtime.wire.MaskMessage.from_bytes: the same validation order and the
// same reasons, as error codes instead of exceptions, because a subscriber faces whatever arrives on
// a socket and malformed input is an expected event, not a bug.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace crackseg {

inline constexpr std::uint16_t kWireVersion = 1;
inline constexpr std::uint32_t kMaxDim = 8192;  // largest mask width or height
inline constexpr std::uint32_t kMaxSourceIdBytes = 64;
inline constexpr std::uint32_t kMaxBoxes = 64;
inline constexpr std::uint32_t kMaxHeaderLen = 4096;   // v1 writes <= 1440; the rest is for extensions
inline constexpr std::uint32_t kPayloadSlack = 65536;  // payload may exceed width * height by this much
inline constexpr std::size_t kMinMessageLen = 104;     // a heartbeat with an empty source id

enum class MessageKind : std::uint16_t { mask = 1, heartbeat = 2 };

enum class MaskEncoding : std::uint8_t { raw = 0, png = 1, packbits_zlib = 2 };

// Why a message was rejected; the groups follow the validation steps of edge/WIRE.md.
enum class WireError {
    ok = 0,
    bad_magic,
    unsupported_version,
    truncated,
    length_out_of_range,  // source_len, n_boxes, header_len or an extension block outside their limits
    unknown_kind,
    oversized,  // width or height outside 1..8192 for a mask frame
    oversized_payload,
    trailing_bytes,
    crc_mismatch,
    invalid_source_id,  // not UTF-8
    unknown_encoding,
    invalid_heartbeat,  // a heartbeat with a non-zero size, encoding, box count or statistic
    undecodable_payload,
    mask_size_mismatch,
    box_outside_frame,
};

// A short English reason, stable enough for logs ("CRC mismatch").
const char* to_string(WireError error) noexcept;

// Bounding box of one crack component, largest components first.
struct CrackBox {
    std::uint32_t x = 0, y = 0, w = 0, h = 0, pixels = 0;
};

// Statistics of the mask; see edge/WIRE.md, "Crack statistics", for the exact definitions.
struct CrackStats {
    std::uint32_t crack_pixels = 0;
    float coverage_pct = 0;  // 100 * crack_pixels / (width * height)
    std::uint32_t components = 0;
    std::uint32_t skeleton_px = 0;
    float max_width_px = 0;
};

// Pose parts, as bits of Pose::present and Pose::stale (edge/WIRE.md, "Pose block").
enum PosePart : std::uint8_t { pose_position = 1, pose_attitude = 2, pose_gimbal = 4, pose_chainage = 8 };

struct GeoPosition {
    double lat_deg = 0, lon_deg = 0;  // WGS84
    float alt_m = 0;                  // above mean sea level
    float rel_alt_m = 0;              // above the home (take-off) point
};

struct Attitude {
    float roll_deg = 0, pitch_deg = 0, yaw_deg = 0;
};

// The vehicle's pose at capture time (pose block, version 1). Only the parts flagged in `present` hold
// values (the others are NaN); a `stale` part is held or interpolated from samples too far away in time.
struct Pose {
    std::uint8_t present = 0;
    std::uint8_t stale = 0;
    std::uint32_t age_ms = 0;
    GeoPosition position;
    Attitude attitude;
    Attitude gimbal;
    double chainage_m = 0;

    bool has(PosePart part) const noexcept { return (present & part) != 0; }
    bool is_stale(PosePart part) const noexcept { return (stale & part) != 0; }
};

// One decoded message: a mask frame, or a heartbeat (kind == heartbeat, width == height == 0).
struct MaskMessage {
    MessageKind kind = MessageKind::heartbeat;
    std::uint64_t seq = 0;        // publisher counter shared by frames and heartbeats: gaps are lost messages
    std::uint64_t frame_id = 0;   // heartbeat: the last published frame's id, 0 before any
    std::int64_t capture_ns = 0;  // ns since the Unix epoch (UTC)
    std::int64_t publish_ns = 0;
    std::array<std::uint8_t, 16> model_hash{};  // first 16 bytes of the model file's SHA-256
    float threshold = 0;
    std::uint32_t width = 0;
    std::uint32_t height = 0;
    MaskEncoding encoding = MaskEncoding::raw;  // how the mask travelled; informational after decoding
    std::string source_id;
    CrackStats stats;
    std::vector<CrackBox> boxes;
    // Set when the message has a pose block the client reads; empty when the runtime had no pose source.
    std::optional<Pose> pose;
    // height * width bytes, row-major, top row first: 1 = crack, 0 = background (empty for a heartbeat).
    std::vector<std::uint8_t> mask;

    bool is_heartbeat() const noexcept { return kind == MessageKind::heartbeat; }
    bool crack_at(std::uint32_t x, std::uint32_t y) const { return mask[std::size_t{y} * width + x] != 0; }
};

// Decodes and fully validates one message body (the topic already stripped), mask included.
//
// On success `out` holds the message; on failure its content is unspecified. Passing the same `out`
// for every message reuses its buffers, so a steady stream of same-sized masks allocates nothing.
// Never reads outside [data, data + size), whatever the bytes say.
WireError decode_message(const std::uint8_t* data, std::size_t size, MaskMessage& out);

}  // namespace crackseg
