// The C99 serial receiver beyond the golden streams: the CRC check value, field offsets with
// hand-computed values, each rejection counter, resynchronisation and the chunked feed API.
#include <string>
#include <vector>

#include "check.hpp"
#include "crackseg/serial.h"
#include "serial_builder.hpp"

namespace {

using Bytes = std::vector<std::uint8_t>;
using crackseg_test::Case;
using crackseg_test::serial_frame;

// A version 1 payload (28 bytes) whose byte i is i + 1, with the version and flags bytes overridden:
// every field then has a distinct, hand-computable little-endian value.
Bytes counting_payload(std::uint8_t version, std::uint8_t flags) {
    Bytes payload(28);
    for (std::size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<std::uint8_t>(i + 1);
    }
    payload[0] = version;
    payload[1] = flags;
    return payload;
}

struct Receiver {
    crackseg_summary_decoder dec;
    std::vector<crackseg_summary> summaries;

    Receiver() { crackseg_summary_decoder_init(&dec); }

    void push_all(const Bytes& bytes) {
        crackseg_summary s;
        for (const std::uint8_t b : bytes) {
            if (crackseg_summary_decoder_push(&dec, b, &s) == CRACKSEG_SERIAL_SUMMARY) {
                summaries.push_back(s);
            }
        }
    }
};

Bytes operator+(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

const std::vector<Case> kCases = {
    {"CRC-16/CCITT-FALSE check value of '123456789' is 0x29B1",
     [] {
         const std::string text = "123456789";
         const auto* bytes = reinterpret_cast<const std::uint8_t*>(text.data());
         CHECK_EQ(crackseg_crc16_ccitt_false(bytes, text.size()), 0x29B1);
     }},
    {"fields are read little-endian at their offsets",
     [] {
         Receiver rx;
         rx.push_all(serial_frame(counting_payload(1, 0x07)));
         CHECK_EQ(rx.summaries.size(), 1u);
         if (rx.summaries.size() == 1) {
             const crackseg_summary& s = rx.summaries[0];
             CHECK_EQ(s.flags, 0x07);  // reserved bits are passed on, for the caller to ignore
             CHECK_EQ(s.seq, 0x06050403u);
             CHECK_EQ(s.timestamp_ms, 0x0A090807u);
             CHECK_EQ(s.frame_id, 0x0E0D0C0Bu);
             CHECK_EQ(s.crack_pixels, 0x1211100Fu);
             CHECK_EQ(s.coverage_centi_pct, 0x1413);
             CHECK_EQ(s.components, 0x1615);
             CHECK_EQ(s.skeleton_px, 0x1A191817u);
             CHECK_EQ(s.max_width_px, 0x1C1B);
         }
         CHECK_EQ(rx.dec.frames, 1u);
     }},
    {"a version 1 frame always takes 32 bytes on the wire",
     [] { CHECK_EQ(serial_frame(counting_payload(1, 0)).size(), 32u); }},
    {"an intact frame of another version is a version error, whatever its length",
     [] {
         Receiver rx;
         Bytes longer = counting_payload(2, 0);
         longer.resize(40, 0x33);
         rx.push_all(serial_frame(counting_payload(2, 0)) + serial_frame(longer));
         CHECK_EQ(rx.dec.version_errors, 2u);
         CHECK_EQ(rx.dec.framing_errors + rx.dec.crc_errors + rx.dec.frames, 0u);
     }},
    {"a corrupted version byte is a CRC error, not a version error",
     [] {
         Bytes frame = serial_frame(counting_payload(1, 0));
         frame[1] = 2;  // COBS keeps non-zero payload bytes in place after the code byte
         Receiver rx;
         rx.push_all(frame);
         CHECK_EQ(rx.dec.crc_errors, 1u);
         CHECK_EQ(rx.dec.version_errors, 0u);
     }},
    {"a version 1 frame one byte short or long is a framing error",
     [] {
         Bytes shorter = counting_payload(1, 0);
         shorter.pop_back();
         Bytes longer = counting_payload(1, 0);
         longer.push_back(0x55);
         Receiver rx;
         rx.push_all(serial_frame(shorter) + serial_frame(longer));
         CHECK_EQ(rx.dec.framing_errors, 2u);
         CHECK_EQ(rx.summaries.size(), 0u);
     }},
    {"invalid COBS and too-short frames are framing errors",
     [] {
         Receiver rx;
         rx.push_all({0x05, 0x01, 0x00});  // block claims 4 data bytes, 1 follows
         rx.push_all({0x02, 0x01, 0x00});  // decodes to 1 byte: no room for a CRC
         CHECK_EQ(rx.dec.framing_errors, 2u);
     }},
    {"idle delimiters are neither frames nor errors",
     [] {
         Receiver rx;
         rx.push_all({0, 0, 0});
         CHECK_EQ(rx.dec.frames + rx.dec.crc_errors + rx.dec.framing_errors + rx.dec.version_errors, 0u);
     }},
    {"an overlong run is discarded whole and the next frame decodes",
     [] {
         Receiver rx;
         rx.push_all(Bytes(63, 0x11));
         CHECK_EQ(crackseg_summary_decoder_pending(&rx.dec), 63u);  // the most any frame can need
         rx.push_all(Bytes(100, 0x11));
         CHECK_EQ(crackseg_summary_decoder_pending(&rx.dec), 0u);  // discarding until the delimiter
         rx.push_all(Bytes{0} + serial_frame(counting_payload(1, 0)));
         CHECK_EQ(rx.dec.framing_errors, 1u);
         CHECK_EQ(rx.summaries.size(), 1u);
     }},
    {"joining mid-frame costs one framing error, then frames decode",
     [] {
         const Bytes frame = serial_frame(counting_payload(1, 0));
         Receiver rx;
         rx.push_all(Bytes(frame.begin() + 9, frame.end()) + frame);
         CHECK_EQ(rx.dec.framing_errors + rx.dec.crc_errors, 1u);
         CHECK_EQ(rx.summaries.size(), 1u);
     }},
    {"feed stops after each summary and reports the bytes it consumed",
     [] {
         const Bytes stream = serial_frame(counting_payload(1, 0)) + serial_frame(counting_payload(1, 1)) + Bytes{7};
         crackseg_summary_decoder dec;
         crackseg_summary_decoder_init(&dec);
         crackseg_summary s;
         int got = 0;
         CHECK_EQ(crackseg_summary_decoder_feed(&dec, stream.data(), stream.size(), &s, &got), 32u);
         CHECK(got == 1 && s.flags == 0);
         CHECK_EQ(crackseg_summary_decoder_feed(&dec, stream.data() + 32, stream.size() - 32, &s, &got), 32u);
         CHECK(got == 1 && s.flags == 1);
         CHECK_EQ(crackseg_summary_decoder_feed(&dec, stream.data() + 64, 1, &s, &got), 1u);
         CHECK_EQ(got, 0);
         CHECK_EQ(crackseg_summary_decoder_pending(&dec), 1u);
     }},
    {"a frame split across reads decodes when its delimiter arrives",
     [] {
         const Bytes frame = serial_frame(counting_payload(1, 0));
         Receiver rx;
         rx.push_all(Bytes(frame.begin(), frame.begin() + 20));
         CHECK_EQ(rx.summaries.size(), 0u);
         rx.push_all(Bytes(frame.begin() + 20, frame.end()));
         CHECK_EQ(rx.summaries.size(), 1u);
     }},
};

}  // namespace

int main() { return crackseg_test::run_all(kCases); }
