// libFuzzer target for the C99 serial receiver. The input is read three ways that must agree: in
// chunks through crackseg_summary_decoder_feed, one byte at a time through push, and (its first bytes)
// wrapped as the payload of a correctly framed frame, which must decode to exactly those bytes or be
// refused for the reason the specification gives. Any disagreement, crash or sanitizer finding is a bug.
#include <cstdlib>
#include <vector>

#include "crackseg/serial.h"
#include "serial_builder.hpp"

namespace {

struct Outcome {
    std::vector<crackseg_summary> summaries;
    crackseg_summary_decoder dec;
};

bool same(const crackseg_summary& a, const crackseg_summary& b) {
    return a.seq == b.seq && a.timestamp_ms == b.timestamp_ms && a.frame_id == b.frame_id &&
           a.crack_pixels == b.crack_pixels && a.coverage_centi_pct == b.coverage_centi_pct &&
           a.components == b.components && a.skeleton_px == b.skeleton_px && a.max_width_px == b.max_width_px &&
           a.flags == b.flags;
}

Outcome read_chunks(const std::uint8_t* data, std::size_t size) {
    Outcome out;
    crackseg_summary_decoder_init(&out.dec);
    crackseg_summary s;
    while (size > 0) {
        int got = 0;
        const std::size_t used = crackseg_summary_decoder_feed(&out.dec, data, size, &s, &got);
        if (used == 0 || used > size) {
            std::abort();
        }
        if (got) {
            out.summaries.push_back(s);
        }
        data += used;
        size -= used;
    }
    return out;
}

Outcome read_bytes(const std::uint8_t* data, std::size_t size) {
    Outcome out;
    crackseg_summary_decoder_init(&out.dec);
    crackseg_summary s;
    for (std::size_t i = 0; i < size; ++i) {
        if (crackseg_summary_decoder_push(&out.dec, data[i], &s) == CRACKSEG_SERIAL_SUMMARY) {
            out.summaries.push_back(s);
        }
        if (crackseg_summary_decoder_pending(&out.dec) >= CRACKSEG_SERIAL_MAX_WIRE_FRAME) {
            std::abort();
        }
    }
    return out;
}

void check_same(const Outcome& a, const Outcome& b) {
    bool equal = a.summaries.size() == b.summaries.size() && a.dec.frames == b.dec.frames &&
                 a.dec.crc_errors == b.dec.crc_errors && a.dec.framing_errors == b.dec.framing_errors &&
                 a.dec.version_errors == b.dec.version_errors &&
                 crackseg_summary_decoder_pending(&a.dec) == crackseg_summary_decoder_pending(&b.dec);
    for (std::size_t i = 0; equal && i < a.summaries.size(); ++i) {
        equal = same(a.summaries[i], b.summaries[i]);
    }
    if (!equal) {
        std::abort();
    }
}

std::uint32_t le(const std::vector<std::uint8_t>& b, std::size_t offset, std::size_t width) {
    std::uint32_t value = 0;
    for (std::size_t i = width; i-- > 0;) {
        value = value << 8 | b[offset + i];
    }
    return value;
}

// The summary a version 1 payload must decode to, read independently of the decoder's parser.
bool matches_payload(const crackseg_summary& s, const std::vector<std::uint8_t>& p) {
    return s.flags == p[1] && s.seq == le(p, 2, 4) && s.timestamp_ms == le(p, 6, 4) && s.frame_id == le(p, 10, 4) &&
           s.crack_pixels == le(p, 14, 4) && s.coverage_centi_pct == le(p, 18, 2) && s.components == le(p, 20, 2) &&
           s.skeleton_px == le(p, 22, 4) && s.max_width_px == le(p, 26, 2);
}

// Wraps the first bytes of the input in a correct frame (at most 60 payload bytes: with the CRC, the
// COBS code byte and the delimiter that is the 64-byte maximum). Version 1 and 28 bytes must decode to
// exactly those bytes; another version is a version error; version 1 at another length a framing error.
void check_framed_payload(const std::uint8_t* data, std::size_t size) {
    const std::vector<std::uint8_t> payload(data, data + (size < 60 ? size : 60));
    const std::vector<std::uint8_t> frame = crackseg_test::serial_frame(payload);
    const Outcome got = read_bytes(frame.data(), frame.size());
    const crackseg_summary_decoder& dec = got.dec;
    bool ok = false;
    if (payload[0] != CRACKSEG_SERIAL_VERSION) {
        ok = dec.version_errors == 1 && dec.frames + dec.crc_errors + dec.framing_errors == 0;
    } else if (payload.size() != CRACKSEG_SERIAL_FRAME_LEN - 2) {
        ok = dec.framing_errors == 1 && dec.frames + dec.crc_errors + dec.version_errors == 0;
    } else {
        ok = got.summaries.size() == 1 && matches_payload(got.summaries[0], payload);
    }
    if (!ok) {
        std::abort();
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    check_same(read_chunks(data, size), read_bytes(data, size));
    if (size > 0) {
        check_framed_payload(data, size);
    }
    return 0;
}
