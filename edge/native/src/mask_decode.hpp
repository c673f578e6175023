// Mask payload decoders, one per MaskEncoding (edge/WIRE.md, "Mask encodings").
//
// Each leaves exactly width * height bytes of 0/1 in `mask` (reusing its capacity) or returns why it
// could not. The caller has already bounded width, height and the payload length, so each decoder
// only has to refuse to produce more (or fewer) pixels than the header promises: a compression bomb
// or a forged PNG size costs no memory beyond the mask itself. The mask grows only as far as the
// payload can back it (raw: after the length check; zlib: row by row as rows inflate), so a tiny
// message claiming 8192 x 8192 pixels does not make the decoder allocate 64 MiB; a PNG allocates once
// its IHDR and first chunks have been read.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "crackseg/wire.hpp"

namespace crackseg::detail {

struct ByteView {
    const std::uint8_t* data;
    std::size_t size;
};

WireError decode_mask(ByteView payload, MaskEncoding encoding, std::uint32_t width, std::uint32_t height,
                      std::vector<std::uint8_t>& mask);

WireError decode_packbits_zlib(ByteView payload, std::uint32_t width, std::uint32_t height,
                               std::vector<std::uint8_t>& mask);

WireError decode_png(ByteView payload, std::uint32_t width, std::uint32_t height, std::vector<std::uint8_t>& mask);

}  // namespace crackseg::detail
