// Strict UTF-8 validation, matching Python's bytes.decode() (the reference decoder): no overlong
// forms, no surrogates, nothing above U+10FFFF.
#pragma once

#include <cstddef>
#include <cstdint>

namespace crackseg::detail {

bool is_valid_utf8(const std::uint8_t* data, std::size_t size);

}  // namespace crackseg::detail
