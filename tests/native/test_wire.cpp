// The mask-message decoder beyond the golden files: every encoding and shape it must accept, and each
// rule of edge/WIRE.md "Decoding and rejection" broken on its own, with the error the rule names.
//
// usage: test_wire GOLDEN_DIR
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "check.hpp"
#include "crackseg/wire.hpp"
#include "message_builder.hpp"
#include "read_file.hpp"

namespace {

using crackseg::MaskEncoding;
using crackseg::MaskMessage;
using crackseg::MessageKind;
using crackseg::WireError;
using crackseg_test::Bytes;
using crackseg_test::Case;
using crackseg_test::encode_message;

constexpr std::size_t kHeaderLenOffset = 8;
constexpr std::size_t kEncodingOffset = 72;
constexpr const char* kGoldenMessages[] = {"mask_raw.bin",        "mask_png.bin",          "mask_packbits_zlib.bin",
                                           "mask_pose_drone.bin", "mask_pose_crawler.bin", "heartbeat.bin"};
const Bytes kUnknownBlock = crackseg_test::extension_block(0x7777, {'f', 'u', 't', 'u', 'r', 'e', '!', '!'});

WireError decode(const Bytes& bytes) {
    MaskMessage out;
    return crackseg::decode_message(bytes.data(), bytes.size(), out);
}

// A deterministic 0/1 pattern that is neither periodic in 8 nor symmetric, so bit-order and padding
// mistakes show.
Bytes pattern(std::uint32_t width, std::uint32_t height) {
    Bytes mask(std::size_t{width} * height);
    std::uint32_t state = 12345;
    for (std::uint8_t& v : mask) {
        state = state * 1103515245u + 12345u;
        v = static_cast<std::uint8_t>((state >> 16) & 1);
    }
    return mask;
}

MaskMessage frame(std::uint32_t width, std::uint32_t height, MaskEncoding encoding) {
    MaskMessage msg;
    msg.kind = MessageKind::mask;
    msg.seq = 3;
    msg.frame_id = 41;
    msg.capture_ns = 1'700'000'000'000'000'000;
    msg.publish_ns = msg.capture_ns + 5'000'000;
    msg.model_hash = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    msg.threshold = 0.375f;
    msg.width = width;
    msg.height = height;
    msg.encoding = encoding;
    msg.source_id = "cam";
    msg.stats = {3, 25.0f, 1, 2, 1.0f};
    msg.boxes = {{0, 0, 1, 1, 1}};  // fits every frame size used here
    return msg;
}

MaskMessage heartbeat() {
    MaskMessage msg = frame(0, 0, MaskEncoding::raw);
    msg.kind = MessageKind::heartbeat;
    msg.stats = {};
    msg.boxes.clear();
    return msg;
}

Bytes raw_payload(const Bytes& mask) {
    Bytes payload;
    for (const std::uint8_t v : mask) {
        payload.push_back(v ? 255 : 0);
    }
    return payload;
}

Bytes packed_payload(const Bytes& mask, std::uint32_t width, std::uint32_t height) {
    return crackseg_test::zlib_compress(crackseg_test::pack_rows(mask, width, height));
}

// The valid 4 x 3 raw frame that each rejection case breaks in one place.
Bytes valid_raw() { return encode_message(frame(4, 3, MaskEncoding::raw), raw_payload(pattern(4, 3))); }

std::size_t payload_len_offset(const Bytes& message) {
    return message[kHeaderLenOffset] | std::size_t{message[kHeaderLenOffset + 1]} << 8;
}

void expect_decodes_to(const Bytes& bytes, const MaskMessage& want, const Bytes& mask) {
    MaskMessage got;
    CHECK_EQ(crackseg::decode_message(bytes.data(), bytes.size(), got), WireError::ok);
    CHECK_EQ(got.kind, want.kind);
    CHECK_EQ(got.seq, want.seq);
    CHECK_EQ(got.frame_id, want.frame_id);
    CHECK_EQ(got.capture_ns, want.capture_ns);
    CHECK_EQ(got.publish_ns, want.publish_ns);
    CHECK(got.model_hash == want.model_hash);
    CHECK_EQ(got.threshold, want.threshold);
    CHECK_EQ(got.width, want.width);
    CHECK_EQ(got.height, want.height);
    CHECK_EQ(got.encoding, want.encoding);
    CHECK_EQ(got.source_id, want.source_id);
    CHECK_EQ(got.stats.crack_pixels, want.stats.crack_pixels);
    CHECK_EQ(got.stats.coverage_pct, want.stats.coverage_pct);
    CHECK_EQ(got.boxes.size(), want.boxes.size());
    CHECK(got.mask == mask);
}

std::vector<Case> accepted_cases() {
    return {
        {"raw: any non-zero byte is crack",
         [] {
             const MaskMessage msg = frame(3, 2, MaskEncoding::raw);
             expect_decodes_to(encode_message(msg, {0, 1, 7, 0, 128, 255}), msg, {0, 1, 1, 0, 1, 1});
         }},
        {"packbits+zlib: rows padded to whole bytes at widths 1, 7, 8, 9, 37",
         [] {
             for (const std::uint32_t width : {1u, 7u, 8u, 9u, 37u}) {
                 const MaskMessage msg = frame(width, 5, MaskEncoding::packbits_zlib);
                 const Bytes mask = pattern(width, 5);
                 expect_decodes_to(encode_message(msg, packed_payload(mask, width, 5)), msg, mask);
             }
         }},
        {"png: 1-bit, 8-bit (non-zero is crack) and Adam7-interlaced",
         [] {
             const MaskMessage msg = frame(13, 11, MaskEncoding::png);
             const Bytes mask = pattern(13, 11);
             Bytes gray = mask;
             for (std::size_t i = 0; i < gray.size(); ++i) {
                 gray[i] = static_cast<std::uint8_t>(gray[i] ? 1 + i % 255 : 0);
             }
             for (const bool interlaced : {false, true}) {
                 expect_decodes_to(encode_message(msg, crackseg_test::encode_png(mask, 13, 11, 1, interlaced)), msg,
                                   mask);
                 expect_decodes_to(encode_message(msg, crackseg_test::encode_png(gray, 13, 11, 8, interlaced)), msg,
                                   mask);
             }
         }},
        {"an extension block of an unknown type is skipped",
         [] {
             const MaskMessage msg = frame(4, 3, MaskEncoding::raw);
             const Bytes mask = pattern(4, 3);
             expect_decodes_to(encode_message(msg, raw_payload(mask), kUnknownBlock), msg, mask);
         }},
        {"a pose block is read after an unknown block; absent parts stay absent",
         [] {
             crackseg::Pose pose;
             pose.present = crackseg::pose_chainage | crackseg::pose_attitude;
             pose.stale = crackseg::pose_chainage;
             pose.age_ms = 900;
             pose.attitude = {0.5f, -1.5f, 179.0f};
             pose.chainage_m = 42.125;
             Bytes blocks = kUnknownBlock;
             const Bytes pose_block = crackseg_test::extension_block(1, crackseg_test::pose_body(pose));
             blocks.insert(blocks.end(), pose_block.begin(), pose_block.end());
             MaskMessage got;
             const Bytes bytes = encode_message(frame(4, 3, MaskEncoding::raw), raw_payload(pattern(4, 3)), blocks);
             CHECK_EQ(crackseg::decode_message(bytes.data(), bytes.size(), got), WireError::ok);
             CHECK(got.pose.has_value());
             if (got.pose) {
                 CHECK(got.pose->has(crackseg::pose_chainage) && got.pose->is_stale(crackseg::pose_chainage));
                 CHECK(got.pose->has(crackseg::pose_attitude) && !got.pose->is_stale(crackseg::pose_attitude));
                 CHECK(!got.pose->has(crackseg::pose_position) && !got.pose->has(crackseg::pose_gimbal));
                 CHECK_EQ(got.pose->age_ms, 900u);
                 CHECK_EQ(got.pose->chainage_m, 42.125);
                 CHECK_EQ(got.pose->attitude.yaw_deg, 179.0f);
             }
         }},
        {"a pose block of an unknown pose version is ignored, and a message without one has no pose",
         [] {
             crackseg::Pose pose;
             pose.present = crackseg::pose_chainage;
             MaskMessage got;
             got.pose = pose;  // left over from a previous message: decoding must clear it
             const Bytes plain = valid_raw();
             CHECK_EQ(crackseg::decode_message(plain.data(), plain.size(), got), WireError::ok);
             CHECK(!got.pose.has_value());
             const Bytes block = crackseg_test::extension_block(1, crackseg_test::pose_body(pose, 2));
             const Bytes bytes = encode_message(frame(4, 3, MaskEncoding::raw), raw_payload(pattern(4, 3)), block);
             CHECK_EQ(crackseg::decode_message(bytes.data(), bytes.size(), got), WireError::ok);
             CHECK(!got.pose.has_value());
         }},
        {"a multi-byte UTF-8 source id is accepted",
         [] {
             MaskMessage msg = frame(4, 3, MaskEncoding::raw);
             msg.source_id =
                 "r\xC3\xA4"
                 "der \xF0\x9F\x9A\x81";  // "räder" and a helicopter
             const Bytes mask = pattern(4, 3);
             expect_decodes_to(encode_message(msg, raw_payload(mask)), msg, mask);
         }},
        {"largest side 8192 is accepted",
         [] {
             const MaskMessage msg = frame(crackseg::kMaxDim, 1, MaskEncoding::raw);
             const Bytes mask = pattern(crackseg::kMaxDim, 1);
             expect_decodes_to(encode_message(msg, raw_payload(mask)), msg, mask);
         }},
        {"heartbeat: -0.0 statistics count as zero, as in the reference decoder",
         [] {
             MaskMessage msg = heartbeat();
             msg.stats.coverage_pct = -0.0f;
             expect_decodes_to(encode_message(msg, {}), msg, {});
         }},
        {"decoding into the same message reuses its mask buffer",
         [] {
             const MaskMessage msg = frame(16, 16, MaskEncoding::raw);
             const Bytes bytes = encode_message(msg, raw_payload(pattern(16, 16)));
             MaskMessage out;
             CHECK_EQ(crackseg::decode_message(bytes.data(), bytes.size(), out), WireError::ok);
             const std::uint8_t* buffer = out.mask.data();
             CHECK_EQ(crackseg::decode_message(bytes.data(), bytes.size(), out), WireError::ok);
             CHECK(out.mask.data() == buffer);
         }},
    };
}

struct Rejection {
    const char* name;
    std::function<Bytes()> make;
    WireError expected;
};

Bytes patched(Bytes message, std::size_t offset, std::uint64_t value, std::size_t width, bool seal = true) {
    crackseg_test::put_le(message, offset, value, width);
    if (seal) {
        crackseg_test::reseal(message);
    }
    return message;
}

Bytes with_payload(MaskEncoding encoding, std::uint32_t width, std::uint32_t height, const Bytes& payload) {
    return encode_message(frame(width, height, encoding), payload);
}

Bytes png_of(std::uint32_t width, std::uint32_t height) {
    return crackseg_test::encode_png(pattern(width, height), width, height, 1, false);
}

Bytes changed(Bytes bytes, std::size_t offset, std::uint8_t value) {
    bytes.at(offset) = value;
    return bytes;
}

Bytes cut(Bytes bytes, std::size_t drop) {
    bytes.resize(bytes.size() - drop);
    return bytes;
}

Bytes with_extension(const Bytes& extension) {
    return encode_message(frame(4, 3, MaskEncoding::raw), raw_payload(pattern(4, 3)), extension);
}

const Rejection kRejections[] = {
    {"stray bytes after the extension blocks", [] { return with_extension({0x77, 0x77}); },
     WireError::length_out_of_range},
    {"an extension block running past header_len",
     [] {
         Bytes block = crackseg_test::extension_block(0x7777, Bytes(8, 0));
         block[2] = 9;  // the length says one byte more than there is before header_len
         return with_extension(block);
     },
     WireError::length_out_of_range},
    {"a pose block shorter than 64 bytes", [] { return with_extension(crackseg_test::extension_block(1, Bytes(63, 0))); },
     WireError::length_out_of_range},
    {"bad magic", [] { return changed(valid_raw(), 0, 'X'); }, WireError::bad_magic},
    {"version 2", [] { return patched(valid_raw(), 4, 2, 2, false); }, WireError::unsupported_version},
    {"version 0", [] { return patched(valid_raw(), 4, 0, 2, false); }, WireError::unsupported_version},
    {"kind 3",
     [] {
         MaskMessage msg = frame(4, 3, MaskEncoding::raw);
         msg.kind = static_cast<MessageKind>(3);
         return encode_message(msg, raw_payload(pattern(4, 3)));
     },
     WireError::unknown_kind},
    {"source_len 65", [] { return patched(valid_raw(), 73, 65, 1); }, WireError::length_out_of_range},
    {"n_boxes 65", [] { return patched(valid_raw(), 74, 65, 1); }, WireError::length_out_of_range},
    {"header_len shorter than its fields", [] { return patched(valid_raw(), kHeaderLenOffset, 118, 4); },
     WireError::length_out_of_range},
    {"header_len above 4096", [] { return patched(valid_raw(), kHeaderLenOffset, 4097, 4); },
     WireError::length_out_of_range},
    {"width 0", [] { return patched(valid_raw(), 64, 0, 4); }, WireError::oversized},
    {"width 8193", [] { return patched(valid_raw(), 64, 8193, 4); }, WireError::oversized},
    {"height 8193", [] { return patched(valid_raw(), 68, 8193, 4); }, WireError::oversized},
    {"payload_len above width * height + 65536",
     [] {
         const Bytes m = valid_raw();
         return patched(m, payload_len_offset(m), 12 + 65537, 4);
     },
     WireError::oversized_payload},
    {"heartbeat with a payload", [] { return encode_message(heartbeat(), {0}); }, WireError::oversized_payload},
    {"payload_len beyond the message",
     [] {
         const Bytes m = valid_raw();
         return patched(m, payload_len_offset(m), 13, 4);
     },
     WireError::truncated},
    {"CRC mismatch", [] { return changed(valid_raw(), valid_raw().size() - 1, 0x5A); }, WireError::crc_mismatch},
    {"source id with an overlong NUL",
     [] {
         MaskMessage msg = frame(4, 3, MaskEncoding::raw);
         msg.source_id = "\xC0\x80";
         return encode_message(msg, raw_payload(pattern(4, 3)));
     },
     WireError::invalid_source_id},
    {"source id with a UTF-16 surrogate",
     [] {
         MaskMessage msg = frame(4, 3, MaskEncoding::raw);
         msg.source_id = "\xED\xA0\x80";
         return encode_message(msg, raw_payload(pattern(4, 3)));
     },
     WireError::invalid_source_id},
    {"encoding 3", [] { return patched(valid_raw(), kEncodingOffset, 3, 1); }, WireError::unknown_encoding},
    {"heartbeat with a width", [] { return patched(encode_message(heartbeat(), {}), 64, 1, 4); },
     WireError::invalid_heartbeat},
    {"heartbeat with a NaN statistic",
     [] {
         MaskMessage msg = heartbeat();
         msg.stats.max_width_px = std::numeric_limits<float>::quiet_NaN();
         return encode_message(msg, {});
     },
     WireError::invalid_heartbeat},
    {"raw payload one byte short", [] { return with_payload(MaskEncoding::raw, 4, 3, Bytes(11, 255)); },
     WireError::mask_size_mismatch},
    {"raw payload one byte long", [] { return with_payload(MaskEncoding::raw, 4, 3, Bytes(13, 255)); },
     WireError::mask_size_mismatch},
    {"zlib bomb: 1 MiB inflated for an 8 x 8 mask",
     [] { return with_payload(MaskEncoding::packbits_zlib, 8, 8, crackseg_test::zlib_compress(Bytes(1 << 20))); },
     WireError::mask_size_mismatch},
    {"zlib stream one row short",
     [] { return with_payload(MaskEncoding::packbits_zlib, 8, 8, crackseg_test::zlib_compress(Bytes(7))); },
     WireError::mask_size_mismatch},
    {"zlib stream one byte long",
     [] { return with_payload(MaskEncoding::packbits_zlib, 8, 8, crackseg_test::zlib_compress(Bytes(9))); },
     WireError::mask_size_mismatch},
    {"zlib stream cut in the deflate data",
     [] { return with_payload(MaskEncoding::packbits_zlib, 37, 20, cut(packed_payload(pattern(37, 20), 37, 20), 12)); },
     WireError::mask_size_mismatch},
    {"zlib stream without its Adler-32",
     [] { return with_payload(MaskEncoding::packbits_zlib, 37, 20, cut(packed_payload(pattern(37, 20), 37, 20), 4)); },
     WireError::undecodable_payload},
    {"bytes after the zlib stream",
     [] {
         Bytes payload = packed_payload(pattern(37, 20), 37, 20);
         payload.push_back(0);
         return with_payload(MaskEncoding::packbits_zlib, 37, 20, payload);
     },
     WireError::undecodable_payload},
    {"not a zlib stream", [] { return with_payload(MaskEncoding::packbits_zlib, 8, 8, Bytes(8, 0xFF)); },
     WireError::undecodable_payload},
    {"PNG whose IHDR is not the header's size", [] { return with_payload(MaskEncoding::png, 13, 12, png_of(13, 11)); },
     WireError::mask_size_mismatch},
    {"PNG forging a huge IHDR",
     [] { return with_payload(MaskEncoding::png, 13, 11, patched(png_of(13, 11), 16, 0x7F7F7F7F, 4, false)); },
     WireError::mask_size_mismatch},
    {"PNG in colour", [] { return with_payload(MaskEncoding::png, 13, 11, changed(png_of(13, 11), 25, 2)); },
     WireError::undecodable_payload},
    {"PNG at 16 bits", [] { return with_payload(MaskEncoding::png, 13, 11, changed(png_of(13, 11), 24, 16)); },
     WireError::undecodable_payload},
    {"PNG cut short", [] { return with_payload(MaskEncoding::png, 13, 11, cut(png_of(13, 11), 20)); },
     WireError::undecodable_payload},
    {"PNG with corrupted image data",
     [] {
         Bytes png = png_of(13, 11);
         png[png.size() - 20] ^= 0x55;  // inside IDAT, caught by its chunk CRC
         return with_payload(MaskEncoding::png, 13, 11, png);
     },
     WireError::undecodable_payload},
    {"not a PNG", [] { return with_payload(MaskEncoding::png, 13, 11, Bytes(64, 0x89)); },
     WireError::undecodable_payload},
    {"box outside the frame",
     [] {
         MaskMessage msg = frame(4, 3, MaskEncoding::raw);
         msg.boxes = {{3, 0, 2, 1, 1}};
         return encode_message(msg, raw_payload(pattern(4, 3)));
     },
     WireError::box_outside_frame},
    {"box whose x + w wraps around 2^32",
     [] {
         MaskMessage msg = frame(4, 3, MaskEncoding::raw);
         msg.boxes = {{0xFFFFFFFF, 0, 2, 1, 1}};
         return encode_message(msg, raw_payload(pattern(4, 3)));
     },
     WireError::box_outside_frame},
};

std::vector<Case> rejection_cases(const std::string& golden_dir) {
    std::vector<Case> cases;
    for (const Rejection& r : kRejections) {
        cases.push_back({std::string("rejects ") + r.name, [&r] { CHECK_EQ(decode(r.make()), r.expected); }});
    }
    cases.push_back(
        {"a tiny message claiming 8192 x 8192 pixels is refused before the mask is allocated", [] {
             const std::uint32_t side = crackseg::kMaxDim;
             const Bytes few_rows = crackseg_test::zlib_compress(Bytes(3 * side / 8));
             for (const auto& [encoding, payload] :
                  {std::pair{MaskEncoding::raw, Bytes(100, 255)}, std::pair{MaskEncoding::packbits_zlib, few_rows}}) {
                 MaskMessage out;
                 const Bytes bytes = encode_message(frame(side, side, encoding), payload);
                 CHECK_EQ(crackseg::decode_message(bytes.data(), bytes.size(), out), WireError::mask_size_mismatch);
                 CHECK(out.mask.capacity() < 1024 * 1024);
             }
         }});
    cases.push_back({"every truncation of every golden message is rejected as truncated", [golden_dir] {
                         for (const char* name : kGoldenMessages) {
                             const Bytes full = crackseg_test::read_file(golden_dir + "/" + name);
                             for (std::size_t len = 0; len < full.size(); ++len) {
                                 // A copy of exactly `len` bytes, so ASan sees any read past it.
                                 CHECK_EQ(decode(Bytes(full.begin(), full.begin() + static_cast<long>(len))),
                                          WireError::truncated);
                             }
                         }
                     }});
    cases.push_back({"a byte after a golden message is rejected as trailing", [golden_dir] {
                         for (const char* name : kGoldenMessages) {
                             Bytes bytes = crackseg_test::read_file(golden_dir + "/" + name);
                             bytes.push_back(0);
                             CHECK_EQ(decode(bytes), WireError::trailing_bytes);
                         }
                     }});
    cases.push_back({"every single-byte corruption of every golden message is rejected", [golden_dir] {
                         for (const char* name : kGoldenMessages) {
                             const Bytes full = crackseg_test::read_file(golden_dir + "/" + name);
                             for (std::size_t i = 0; i < full.size(); ++i) {
                                 for (const unsigned flip : {0x01u, 0x80u, 0xFFu}) {
                                     Bytes bytes = full;
                                     bytes[i] = static_cast<std::uint8_t>(bytes[i] ^ flip);
                                     CHECK(decode(bytes) != WireError::ok);
                                 }
                             }
                         }
                     }});
    return cases;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s GOLDEN_DIR\n", argv[0]);
        return 2;
    }
    std::vector<Case> cases = accepted_cases();
    for (Case& c : rejection_cases(argv[1])) {
        cases.push_back(std::move(c));
    }
    return crackseg_test::run_all(cases);
}
