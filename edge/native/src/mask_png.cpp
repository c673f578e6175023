// PNG masks: 1- or 8-bit grayscale, any non-zero sample is crack, decoded with libpng.
//
// The IHDR is checked against the message header before libpng sees the bytes, so a forged size is
// refused without allocating, and rows are decoded straight into the mask (no row-pointer array, no
// copy). libpng reports errors by longjmp; the functions that call setjmp (read_header, read_pixels)
// hold no object with a destructor, and everything they touch is owned by their caller, so a longjmp
// skips nothing that needs cleaning up.
#include <png.h>

#include <csetjmp>
#include <cstring>

#include "mask_decode.hpp"

namespace crackseg::detail {
namespace {

constexpr std::size_t kSignatureLen = 8;
constexpr std::size_t kIhdrEnd = 33;  // signature + IHDR length, type, 13 data bytes and CRC
constexpr int kGray = 0;
// Ancillary chunks (text, ICC profiles) are never needed for a mask; capping what libpng may allocate
// for one keeps a compressed-text bomb from costing memory.
constexpr png_alloc_size_t kMaxChunkBytes = 64 * 1024;

std::uint32_t be32(const std::uint8_t* p) {
    return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}

struct PngInput {
    const std::uint8_t* data;
    std::size_t size;
    std::size_t pos;
};

void read_input(png_structp png, png_bytep out, std::size_t len) {
    auto* input = static_cast<PngInput*>(png_get_io_ptr(png));
    if (len > input->size - input->pos) {
        png_error(png, "truncated PNG");
    }
    std::memcpy(out, input->data + input->pos, len);
    input->pos += len;
}

// Silent: the decoder reports "undecodable" to its caller; a controller's stderr is not for libpng.
[[noreturn]] void on_error(png_structp png, png_const_charp /*message*/) { png_longjmp(png, 1); }
void on_warning(png_structp /*png*/, png_const_charp /*message*/) {}

// Reads the chunks up to the image data and sets up the decoding: one byte per pixel, values as
// stored (no scaling, no gamma), all Adam7 passes when interlaced. Returns the number of passes, or 0
// on any libpng error or an image that is not the expected grayscale size.
int read_header(png_structp png, png_infop info, std::uint32_t width, std::uint32_t height) {
    if (setjmp(png_jmpbuf(png))) {
        return 0;
    }
    png_set_user_limits(png, width, height);
    png_set_chunk_malloc_max(png, kMaxChunkBytes);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != width || png_get_image_height(png, info) != height ||
        png_get_color_type(png, info) != kGray) {
        return 0;
    }
    if (png_get_bit_depth(png, info) < 8) {
        png_set_packing(png);  // 1-bit samples become bytes of value 0/1
    }
    const int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return png_get_rowbytes(png, info) == width ? passes : 0;  // else libpng would write past a mask row
}

// Decodes every row of every pass into `mask` (width * height bytes); false on any libpng error.
bool read_pixels(png_structp png, int passes, std::uint32_t width, std::uint32_t height, std::uint8_t* mask) {
    if (setjmp(png_jmpbuf(png))) {
        return false;
    }
    for (int pass = 0; pass < passes; ++pass) {
        for (std::uint32_t y = 0; y < height; ++y) {
            png_read_row(png, mask + std::size_t{y} * width, nullptr);
        }
    }
    return true;
}

// Releases libpng's structures on every path out of decode_png.
struct PngReader {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, nullptr, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : nullptr;

    PngReader() = default;
    PngReader(const PngReader&) = delete;
    PngReader& operator=(const PngReader&) = delete;
    ~PngReader() {
        if (png) {
            png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
        }
    }
};

}  // namespace

WireError decode_png(ByteView payload, std::uint32_t width, std::uint32_t height, std::vector<std::uint8_t>& mask) {
    const std::uint8_t* p = payload.data;
    if (payload.size < kIhdrEnd || png_sig_cmp(p, 0, kSignatureLen) != 0 || std::memcmp(p + 12, "IHDR", 4) != 0) {
        return WireError::undecodable_payload;
    }
    if (be32(p + 16) != width || be32(p + 20) != height) {
        return WireError::mask_size_mismatch;
    }
    const std::uint8_t depth = p[24];
    if (p[25] != kGray || (depth != 1 && depth != 8)) {
        return WireError::undecodable_payload;
    }
    PngReader reader;
    if (!reader.info) {
        return WireError::undecodable_payload;
    }
    PngInput input{payload.data, payload.size, 0};
    png_set_read_fn(reader.png, &input, read_input);
    const int passes = read_header(reader.png, reader.info, width, height);
    if (passes == 0) {
        return WireError::undecodable_payload;
    }
    mask.resize(std::size_t{width} * height);
    if (!read_pixels(reader.png, passes, width, height, mask.data())) {
        return WireError::undecodable_payload;
    }
    for (std::uint8_t& v : mask) {
        v = v != 0;  // 8-bit masks carry 255
    }
    return WireError::ok;
}

}  // namespace crackseg::detail
