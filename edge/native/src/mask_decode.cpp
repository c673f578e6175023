// Dispatch on the encoding, and the raw mono8 encoding, which needs no codec.
#include "mask_decode.hpp"

#include <algorithm>

namespace crackseg::detail {
namespace {

WireError decode_raw(ByteView payload, std::size_t pixels, std::vector<std::uint8_t>& mask) {
    if (payload.size != pixels) {
        return WireError::mask_size_mismatch;
    }
    mask.resize(pixels);
    // Encoders write 255, but any non-zero byte is crack: the output is always 0/1.
    std::transform(payload.data, payload.data + pixels, mask.begin(),
                   [](std::uint8_t v) { return std::uint8_t{v != 0}; });
    return WireError::ok;
}

}  // namespace

WireError decode_mask(ByteView payload, MaskEncoding encoding, std::uint32_t width, std::uint32_t height,
                      std::vector<std::uint8_t>& mask) {
    mask.clear();  // keeps capacity: same-sized frames reuse the buffer
    switch (encoding) {
        case MaskEncoding::raw: return decode_raw(payload, std::size_t{width} * height, mask);
        case MaskEncoding::png: return decode_png(payload, width, height, mask);
        case MaskEncoding::packbits_zlib: return decode_packbits_zlib(payload, width, height, mask);
    }
    return WireError::unknown_encoding;
}

}  // namespace crackseg::detail
