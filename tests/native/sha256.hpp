// SHA-256 (FIPS 180-4), hex output: golden.json identifies each decoded mask by this digest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace crackseg_test {

std::string sha256_hex(const std::uint8_t* data, std::size_t size);

}  // namespace crackseg_test
