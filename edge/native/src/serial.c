/* Serial summary receiver: the state machine of edge/WIRE.md, "Receiving", in C99 without heap. */
#include "crackseg/serial.h"

#include "le_bytes.h"

/* Field offsets in a decoded version 1 frame (edge/WIRE.md, serial layout table). */
enum {
    OFF_VERSION = 0,
    OFF_FLAGS = 1,
    OFF_SEQ = 2,
    OFF_TIMESTAMP = 6,
    OFF_FRAME_ID = 10,
    OFF_CRACK_PIXELS = 14,
    OFF_COVERAGE = 18,
    OFF_COMPONENTS = 20,
    OFF_SKELETON = 22,
    OFF_MAX_WIDTH = 26,
    CRC_LEN = 2
};

void crackseg_summary_decoder_init(crackseg_summary_decoder *dec) { *dec = (crackseg_summary_decoder){0}; }

/* Bitwise rather than table-driven: 30 bytes per frame do not justify 512 bytes of flash. */
uint16_t crackseg_crc16_ccitt_false(const uint8_t *data, size_t len) {
    uint16_t crc = 0xFFFFu;
    for (size_t i = 0; i < len; ++i) {
        crc ^= (uint16_t)(data[i] << 8);
        for (int bit = 0; bit < 8; ++bit) {
            const unsigned shifted = (unsigned)crc << 1;
            crc = (uint16_t)((crc & 0x8000u) ? shifted ^ 0x1021u : shifted);
        }
    }
    return crc;
}

/* Decodes COBS in place (the output is always shorter than the input, so writes never overtake
 * reads). The buffer holds no zero bytes (zeros end frames), so a block is invalid only when its
 * code byte points past the end. Returns the decoded length, or -1 for invalid COBS. */
static int cobs_decode_in_place(uint8_t *buf, size_t len) {
    size_t read = 0;
    size_t write = 0;
    while (read < len) {
        const size_t code = buf[read];
        const size_t end = read + code;
        if (end > len) {
            return -1;
        }
        for (size_t i = read + 1; i < end; ++i) {
            buf[write++] = buf[i];
        }
        /* A block shorter than 0xFF stood for a zero, except the last one. */
        if (code != 0xFFu && end < len) {
            buf[write++] = 0;
        }
        read = end;
    }
    return (int)write;
}

static void parse_fields(const uint8_t *frame, crackseg_summary *out) {
    out->flags = frame[OFF_FLAGS];
    out->seq = crackseg_le32(frame + OFF_SEQ);
    out->timestamp_ms = crackseg_le32(frame + OFF_TIMESTAMP);
    out->frame_id = crackseg_le32(frame + OFF_FRAME_ID);
    out->crack_pixels = crackseg_le32(frame + OFF_CRACK_PIXELS);
    out->coverage_centi_pct = crackseg_le16(frame + OFF_COVERAGE);
    out->components = crackseg_le16(frame + OFF_COMPONENTS);
    out->skeleton_px = crackseg_le32(frame + OFF_SKELETON);
    out->max_width_px = crackseg_le16(frame + OFF_MAX_WIDTH);
}

/* Validates in the order of the specification: CRC before version, so a corrupted byte 0 is never
 * mistaken for a new version, and version before length, since other versions have other lengths. */
static crackseg_serial_event end_frame(crackseg_summary_decoder *dec, crackseg_summary *out) {
    if (dec->overflow) {
        return CRACKSEG_SERIAL_FRAMING_ERROR;
    }
    if (dec->len == 0) {
        return CRACKSEG_SERIAL_NONE; /* back-to-back delimiters are idle fill */
    }
    const int len = cobs_decode_in_place(dec->buf, dec->len);
    if (len < 1 + CRC_LEN) {
        return CRACKSEG_SERIAL_FRAMING_ERROR;
    }
    const size_t body = (size_t)len - CRC_LEN;
    if (crackseg_crc16_ccitt_false(dec->buf, body) != crackseg_le16(dec->buf + body)) {
        return CRACKSEG_SERIAL_CRC_ERROR;
    }
    if (dec->buf[OFF_VERSION] != CRACKSEG_SERIAL_VERSION) {
        return CRACKSEG_SERIAL_VERSION_ERROR;
    }
    if (len != CRACKSEG_SERIAL_FRAME_LEN) {
        return CRACKSEG_SERIAL_FRAMING_ERROR;
    }
    parse_fields(dec->buf, out);
    return CRACKSEG_SERIAL_SUMMARY;
}

static void count(crackseg_summary_decoder *dec, crackseg_serial_event event) {
    switch (event) {
        case CRACKSEG_SERIAL_SUMMARY: ++dec->frames; break;
        case CRACKSEG_SERIAL_CRC_ERROR: ++dec->crc_errors; break;
        case CRACKSEG_SERIAL_FRAMING_ERROR: ++dec->framing_errors; break;
        case CRACKSEG_SERIAL_VERSION_ERROR: ++dec->version_errors; break;
        case CRACKSEG_SERIAL_NONE: break;
    }
}

crackseg_serial_event crackseg_summary_decoder_push(crackseg_summary_decoder *dec, uint8_t byte,
                                                    crackseg_summary *out) {
    if (byte != 0) {
        if (dec->overflow) {
            return CRACKSEG_SERIAL_NONE;
        }
        if (dec->len < sizeof dec->buf) {
            dec->buf[dec->len++] = byte;
        } else {
            /* Longer than any frame of any version: drop it and everything up to the delimiter. */
            dec->overflow = 1;
            dec->len = 0;
        }
        return CRACKSEG_SERIAL_NONE;
    }
    const crackseg_serial_event event = end_frame(dec, out);
    dec->len = 0;
    dec->overflow = 0;
    count(dec, event);
    return event;
}

size_t crackseg_summary_decoder_feed(crackseg_summary_decoder *dec, const uint8_t *data, size_t len,
                                     crackseg_summary *out, int *got_summary) {
    *got_summary = 0;
    for (size_t i = 0; i < len; ++i) {
        if (crackseg_summary_decoder_push(dec, data[i], out) == CRACKSEG_SERIAL_SUMMARY) {
            *got_summary = 1;
            return i + 1;
        }
    }
    return len;
}

size_t crackseg_summary_decoder_pending(const crackseg_summary_decoder *dec) { return dec->len; }
