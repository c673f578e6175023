// Test-side encoders; libpng's default error handling aborts, which is the right outcome in a test.
#include "message_builder.hpp"

#include <png.h>
#include <zlib.h>

#include <cstring>
#include <limits>

namespace crackseg_test {
namespace {

void append_le(Bytes& out, std::uint64_t value, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) {
        out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
    }
}

void append_f32(Bytes& out, float value) {
    std::uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    append_le(out, bits, 4);
}

void append_f64(Bytes& out, double value) {
    std::uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    append_le(out, bits, 8);
}

void append_attitude(Bytes& out, const crackseg::Attitude& a, bool present) {
    for (const float angle : {a.roll_deg, a.pitch_deg, a.yaw_deg}) {
        append_f32(out, present ? angle : std::numeric_limits<float>::quiet_NaN());
    }
}

void append_png(png_structp png, png_bytep data, std::size_t len) {
    auto* out = static_cast<Bytes*>(png_get_io_ptr(png));
    out->insert(out->end(), data, data + len);
}

}  // namespace

Bytes encode_message(const crackseg::MaskMessage& msg, const Bytes& payload, const Bytes& extension) {
    const crackseg::CrackStats& s = msg.stats;
    Bytes out = {'C', 'S', 'E', 'G'};
    append_le(out, crackseg::kWireVersion, 2);
    append_le(out, static_cast<std::uint16_t>(msg.kind), 2);
    append_le(out, 96 + msg.source_id.size() + 20 * msg.boxes.size() + extension.size(), 4);
    append_le(out, msg.seq, 8);
    append_le(out, msg.frame_id, 8);
    append_le(out, static_cast<std::uint64_t>(msg.capture_ns), 8);
    append_le(out, static_cast<std::uint64_t>(msg.publish_ns), 8);
    out.insert(out.end(), msg.model_hash.begin(), msg.model_hash.end());
    append_f32(out, msg.threshold);
    append_le(out, msg.width, 4);
    append_le(out, msg.height, 4);
    out.push_back(static_cast<std::uint8_t>(msg.encoding));
    out.push_back(static_cast<std::uint8_t>(msg.source_id.size()));
    out.push_back(static_cast<std::uint8_t>(msg.boxes.size()));
    out.push_back(0);  // reserved
    append_le(out, s.crack_pixels, 4);
    append_f32(out, s.coverage_pct);
    append_le(out, s.components, 4);
    append_le(out, s.skeleton_px, 4);
    append_f32(out, s.max_width_px);
    out.insert(out.end(), msg.source_id.begin(), msg.source_id.end());
    for (const crackseg::CrackBox& b : msg.boxes) {
        for (const std::uint32_t v : {b.x, b.y, b.w, b.h, b.pixels}) {
            append_le(out, v, 4);
        }
    }
    out.insert(out.end(), extension.begin(), extension.end());
    append_le(out, payload.size(), 4);
    out.insert(out.end(), payload.begin(), payload.end());
    append_le(out, 0, 4);
    reseal(out);
    return out;
}

Bytes extension_block(std::uint16_t type, const Bytes& body) {
    Bytes out;
    append_le(out, type, 2);
    append_le(out, body.size(), 2);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

Bytes pose_body(const crackseg::Pose& pose, std::uint8_t pose_version) {
    constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
    const bool at = pose.has(crackseg::pose_position);
    Bytes out = {pose_version, pose.present, pose.stale, 0};
    append_le(out, pose.age_ms, 4);
    append_f64(out, at ? pose.position.lat_deg : kNaN);
    append_f64(out, at ? pose.position.lon_deg : kNaN);
    append_f32(out, at ? pose.position.alt_m : static_cast<float>(kNaN));
    append_f32(out, at ? pose.position.rel_alt_m : static_cast<float>(kNaN));
    append_attitude(out, pose.attitude, pose.has(crackseg::pose_attitude));
    append_attitude(out, pose.gimbal, pose.has(crackseg::pose_gimbal));
    append_f64(out, pose.has(crackseg::pose_chainage) ? pose.chainage_m : kNaN);
    return out;
}

void put_le(Bytes& message, std::size_t offset, std::uint64_t value, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) {
        message.at(offset + i) = static_cast<std::uint8_t>(value >> (8 * i));
    }
}

void reseal(Bytes& message) {
    const std::size_t body = message.size() - 4;
    put_le(message, body, crc32_z(0, message.data(), body), 4);
}

Bytes pack_rows(const Bytes& mask, std::uint32_t width, std::uint32_t height) {
    const std::size_t row_bytes = (std::size_t{width} + 7) / 8;
    Bytes packed(row_bytes * height, 0);
    for (std::size_t y = 0; y < height; ++y) {
        for (std::size_t x = 0; x < width; ++x) {
            if (mask[y * width + x] != 0) {
                packed[y * row_bytes + x / 8] |= static_cast<std::uint8_t>(0x80u >> (x % 8));
            }
        }
    }
    return packed;
}

Bytes zlib_compress(const Bytes& data) {
    uLongf size = compressBound(static_cast<uLong>(data.size()));
    Bytes out(size);
    if (compress(out.data(), &size, data.data(), static_cast<uLong>(data.size())) != Z_OK) {
        return {};
    }
    out.resize(size);
    return out;
}

Bytes encode_png(const Bytes& samples, std::uint32_t width, std::uint32_t height, int bit_depth, bool interlaced) {
    Bytes out;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    png_set_write_fn(png, &out, append_png, nullptr);
    png_set_IHDR(png, info, width, height, bit_depth, PNG_COLOR_TYPE_GRAY,
                 interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    if (bit_depth < 8) {
        png_set_packing(png);  // rows are given one sample per byte
    }
    Bytes rows = samples;
    std::vector<png_bytep> row_pointers(height);
    for (std::size_t y = 0; y < height; ++y) {
        row_pointers[y] = rows.data() + y * width;
    }
    png_write_image(png, row_pointers.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return out;
}

}  // namespace crackseg_test
