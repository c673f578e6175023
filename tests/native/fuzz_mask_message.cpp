// libFuzzer target for crackseg::decode_message. Each input is decoded twice: as is (framing, length
// and CRC checks) and with its last four bytes replaced by the correct CRC-32, so that mutations get
// past the CRC and reach the field checks and the mask decoders. A decode that succeeds must satisfy
// the contract's invariants; any violation, crash or sanitizer finding is a bug.
#include <cstdlib>

#include "crackseg/wire.hpp"
#include "message_builder.hpp"

namespace {

void check_invariants(const crackseg::MaskMessage& msg) {
    const bool ok_size = msg.is_heartbeat() ? msg.mask.empty() && msg.width == 0 && msg.height == 0
                                            : msg.mask.size() == std::size_t{msg.width} * msg.height;
    bool ok_values = true;
    for (const std::uint8_t v : msg.mask) {
        ok_values = ok_values && v <= 1;
    }
    bool ok_boxes = msg.boxes.size() <= crackseg::kMaxBoxes;
    for (const crackseg::CrackBox& b : msg.boxes) {
        ok_boxes = ok_boxes && std::uint64_t{b.x} + b.w <= msg.width && std::uint64_t{b.y} + b.h <= msg.height;
    }
    if (!ok_size || !ok_values || !ok_boxes || msg.source_id.size() > crackseg::kMaxSourceIdBytes) {
        std::abort();
    }
}

void decode(const std::uint8_t* data, std::size_t size, crackseg::MaskMessage& msg) {
    if (crackseg::decode_message(data, size, msg) == crackseg::WireError::ok) {
        check_invariants(msg);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    crackseg::MaskMessage msg;
    decode(data, size, msg);
    if (size >= crackseg::kMinMessageLen) {
        crackseg_test::Bytes sealed(data, data + size);
        crackseg_test::reseal(sealed);
        sealed.shrink_to_fit();  // exact size, so ASan catches a read past the end
        decode(sealed.data(), sealed.size(), msg);
    }
    return 0;
}
