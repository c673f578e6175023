// Serial frames for tests: COBS(payload + CRC-16) + 0x00, any payload, any version.
#pragma once

#include <cstdint>
#include <vector>

namespace crackseg_test {

std::vector<std::uint8_t> cobs_encode(const std::vector<std::uint8_t>& data);

// One wire frame around `payload` (byte 0 is the version), with a correct CRC.
std::vector<std::uint8_t> serial_frame(const std::vector<std::uint8_t>& payload);

}  // namespace crackseg_test
