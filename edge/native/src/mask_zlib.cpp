// Bit-packed + zlib masks: rows packed MSB first, each padded to a whole byte, in one zlib stream.
//
// The stream is inflated one packed row at a time into a fixed stack buffer and unpacked onto the end
// of the mask, so the mask grows only with rows that really arrive, nothing else is allocated besides
// zlib's own state, and inflating stops at the size the header promises: a zlib bomb is refused
// after height * ceil(width / 8) + 1 bytes of output.
#include <zlib.h>

#include <cstdint>

#include "mask_decode.hpp"

namespace crackseg::detail {
namespace {

constexpr std::size_t kMaxRowBytes = (kMaxDim + 7) / 8;

// Owns an inflate state, so every early return releases it.
class Inflater {
public:
    Inflater() { ok_ = inflateInit(&stream_) == Z_OK; }
    ~Inflater() {
        if (ok_) {
            inflateEnd(&stream_);
        }
    }
    Inflater(const Inflater&) = delete;
    Inflater& operator=(const Inflater&) = delete;

    bool ok() const { return ok_; }
    z_stream& stream() { return stream_; }

private:
    z_stream stream_{};
    bool ok_ = false;
};

// Inflates until `out` is full or the stream can go no further; returns zlib's last status.
int inflate_into(z_stream& zs, std::uint8_t* out, std::size_t len) {
    zs.next_out = out;
    zs.avail_out = static_cast<uInt>(len);
    int status = Z_OK;
    while (zs.avail_out > 0 && status == Z_OK) {
        status = inflate(&zs, Z_NO_FLUSH);
    }
    return status;
}

// Classifies a status that left the output short, as crackseg.edge.runtime.wire does: input that simply ran
// out (or a stream that ended early) gives too few pixels; corrupt deflate data is undecodable.
WireError short_output_error(int status) {
    return status == Z_BUF_ERROR || status == Z_STREAM_END ? WireError::mask_size_mismatch
                                                           : WireError::undecodable_payload;
}

void append_row(const std::uint8_t* packed, std::uint32_t width, std::vector<std::uint8_t>& mask) {
    for (std::uint32_t x = 0; x < width; ++x) {
        mask.push_back(static_cast<std::uint8_t>((packed[x >> 3] >> (7 - (x & 7))) & 1));
    }
}

// After the last row, the stream must end exactly: one more output byte means too many pixels, and
// input left after the end (or an end that never comes) is not a valid payload.
WireError check_stream_end(z_stream& zs, int status) {
    if (status != Z_STREAM_END) {
        std::uint8_t extra = 0;
        status = inflate_into(zs, &extra, 1);
        if (zs.avail_out == 0) {
            return WireError::mask_size_mismatch;
        }
    }
    return status == Z_STREAM_END && zs.avail_in == 0 ? WireError::ok : WireError::undecodable_payload;
}

}  // namespace

WireError decode_packbits_zlib(ByteView payload, std::uint32_t width, std::uint32_t height,
                               std::vector<std::uint8_t>& mask) {
    Inflater inflater;
    if (!inflater.ok()) {
        return WireError::undecodable_payload;
    }
    z_stream& zs = inflater.stream();
    // zlib takes a non-const pointer for historical reasons; it never writes the input.
    zs.next_in = const_cast<Bytef*>(payload.data);
    zs.avail_in = static_cast<uInt>(payload.size);  // bounded by width * height + 64 KiB < 2^32

    const std::size_t row_bytes = (std::size_t{width} + 7) / 8;
    std::uint8_t row[kMaxRowBytes];
    int status = Z_OK;
    for (std::uint32_t y = 0; y < height; ++y) {
        status = inflate_into(zs, row, row_bytes);
        if (zs.avail_out > 0) {
            return short_output_error(status);
        }
        if (status != Z_OK && status != Z_STREAM_END) {
            return WireError::undecodable_payload;
        }
        append_row(row, width, mask);
    }
    return check_stream_end(zs, status);
}

}  // namespace crackseg::detail
