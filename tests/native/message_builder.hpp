// Encoders for test inputs: the inverse of the decoders under test, so the tests can build valid
// messages of any shape and then break exactly one thing in them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "crackseg/wire.hpp"

namespace crackseg_test {

using Bytes = std::vector<std::uint8_t>;

// A version 1 message carrying `msg`'s fields (kind and encoding as their raw values, so out-of-range
// ones can be sent) and `payload` as the encoded mask; `extension` (extension blocks, or any bytes to
// test their rejection) goes between the boxes and header_len.
Bytes encode_message(const crackseg::MaskMessage& msg, const Bytes& payload, const Bytes& extension = {});

// An extension block: u16 type, u16 length, then `body`.
Bytes extension_block(std::uint16_t type, const Bytes& body);

// A pose block body of `pose_version` carrying `pose` (parts not present as NaN, as the runtime writes them).
Bytes pose_body(const crackseg::Pose& pose, std::uint8_t pose_version = 1);

// Overwrites a little-endian field of an encoded message.
void put_le(Bytes& message, std::size_t offset, std::uint64_t value, std::size_t width);

// Recomputes the trailing CRC-32 after a patch, so the decoder gets past the CRC to the patched field.
void reseal(Bytes& message);

// Rows of a 0/1 mask packed MSB first, each padded to a whole byte.
Bytes pack_rows(const Bytes& mask, std::uint32_t width, std::uint32_t height);

Bytes zlib_compress(const Bytes& data);

// A grayscale PNG of the given samples (0/1 for depth 1, 0..255 for depth 8).
Bytes encode_png(const Bytes& samples, std::uint32_t width, std::uint32_t height, int bit_depth, bool interlaced);

}  // namespace crackseg_test
