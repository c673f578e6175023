// The canonical COBS encoder of crackseg.edge.runtime.serial_frame.cobs_encode, for building test streams.
#include "serial_builder.hpp"

#include "crackseg/serial.h"

namespace crackseg_test {

std::vector<std::uint8_t> cobs_encode(const std::vector<std::uint8_t>& data) {
    std::vector<std::uint8_t> out(1);  // out[code_at] is a placeholder until its block ends
    std::size_t code_at = 0;
    std::uint8_t code = 1;
    for (std::size_t i = 0; i < data.size(); ++i) {
        if (data[i] != 0) {
            out.push_back(data[i]);
            ++code;
        }
        if (data[i] == 0 || code == 0xFF) {
            out[code_at] = code;
            code = 1;
            code_at = out.size();
            if (data[i] == 0 || i + 1 < data.size()) {
                out.push_back(0);
            }
        }
    }
    if (code_at < out.size()) {
        out[code_at] = code;
    }
    return out;
}

std::vector<std::uint8_t> serial_frame(const std::vector<std::uint8_t>& payload) {
    std::vector<std::uint8_t> body = payload;
    const std::uint16_t crc = crackseg_crc16_ccitt_false(body.data(), body.size());
    body.push_back(static_cast<std::uint8_t>(crc & 0xFF));
    body.push_back(static_cast<std::uint8_t>(crc >> 8));
    std::vector<std::uint8_t> frame = cobs_encode(body);
    frame.push_back(0);
    return frame;
}

}  // namespace crackseg_test
