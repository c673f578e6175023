/* Receiver for crackseg serial summary frames, version 1 (edge/WIRE.md, "Serial summary frame").
 *
 * Plain C99 with no heap, no floating point and no dependencies beyond <stdint.h>/<stddef.h>, so three
 * files (this header, src/serial.c and src/le_bytes.h) drop into a microcontroller project. The decoder is a
 * fixed-size struct the caller owns; feed it bytes as they arrive (from a UART interrupt or a read
 * loop) and it hands out each summary as soon as its delimiter arrives. Noise is counted, never fatal:
 * the receiver resynchronises at the next 0x00, wherever it started listening.
 */
#ifndef CRACKSEG_SERIAL_H
#define CRACKSEG_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Version this decoder reads; frames of any other version are counted and dropped. */
#define CRACKSEG_SERIAL_VERSION 1
/* No version of the format ever puts more than this many bytes on the wire, delimiter included. */
#define CRACKSEG_SERIAL_MAX_WIRE_FRAME 64
/* A decoded version 1 frame: 28-byte payload and its CRC-16. */
#define CRACKSEG_SERIAL_FRAME_LEN 30

/* Bits of crackseg_summary.flags; receivers ignore bits they do not know. */
#define CRACKSEG_SUMMARY_SATURATED 0x01u /* a statistic was clipped to its field's maximum */
#define CRACKSEG_SUMMARY_STALE 0x02u     /* no new frame since the previous summary (serial heartbeat) */

/* One summary, in the units that travel: unsigned integers only. */
typedef struct crackseg_summary {
    uint32_t seq;                /* summary counter, wraps at 2^32: gaps are lost or corrupted frames */
    uint32_t timestamp_ms;       /* capture time, ms since the Unix epoch modulo 2^32 (wrapping compare) */
    uint32_t frame_id;           /* source frame index modulo 2^32 */
    uint32_t crack_pixels;       /* crack pixel count */
    uint16_t coverage_centi_pct; /* coverage in 0.01 % units, 0..10000 */
    uint16_t components;         /* 8-connected crack regions, clipped at 65535 */
    uint32_t skeleton_px;        /* skeleton length in pixels */
    uint16_t max_width_px;       /* maximum crack width, whole pixels, clipped at 65535 */
    uint8_t flags;               /* CRACKSEG_SUMMARY_* bits */
} crackseg_summary;

/* What one byte did to the decoder. Every delimiter ends a frame with exactly one of these. */
typedef enum crackseg_serial_event {
    CRACKSEG_SERIAL_NONE = 0,      /* byte buffered, or an idle delimiter */
    CRACKSEG_SERIAL_SUMMARY,       /* a summary was written to *out */
    CRACKSEG_SERIAL_CRC_ERROR,     /* the frame's CRC did not match: corrupted on the line */
    CRACKSEG_SERIAL_FRAMING_ERROR, /* invalid COBS, wrong length or an overlong run (e.g. joined mid-frame) */
    CRACKSEG_SERIAL_VERSION_ERROR  /* an intact frame of a version this decoder does not read */
} crackseg_serial_event;

/* Receiver state: one fixed buffer and the counters. Initialise with crackseg_summary_decoder_init. */
typedef struct crackseg_summary_decoder {
    uint8_t buf[CRACKSEG_SERIAL_MAX_WIRE_FRAME - 1]; /* COBS bytes of the unfinished frame */
    uint8_t len;                                     /* bytes held in buf */
    uint8_t overflow;                                /* the current run outgrew buf: discard it whole */
    uint32_t frames;                                 /* summaries decoded */
    uint32_t crc_errors;
    uint32_t framing_errors;
    uint32_t version_errors;
} crackseg_summary_decoder;

void crackseg_summary_decoder_init(crackseg_summary_decoder *dec);

/* Feeds one byte; on CRACKSEG_SERIAL_SUMMARY the summary is in *out (untouched otherwise). */
crackseg_serial_event crackseg_summary_decoder_push(crackseg_summary_decoder *dec, uint8_t byte, crackseg_summary *out);

/* Feeds bytes up to and including the first one that completes a summary, so a caller can loop over
 * a received chunk without a callback. Returns the number of bytes consumed; *got_summary is 1 when
 * *out holds a new summary, else 0 (then all len bytes were consumed). */
size_t crackseg_summary_decoder_feed(crackseg_summary_decoder *dec, const uint8_t *data, size_t len,
                                     crackseg_summary *out, int *got_summary);

/* Bytes of an unfinished frame held by the decoder (0 while discarding an overlong run). */
size_t crackseg_summary_decoder_pending(const crackseg_summary_decoder *dec);

/* CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final XOR (check value 0x29B1). */
uint16_t crackseg_crc16_ccitt_false(const uint8_t *data, size_t len);

#ifdef __cplusplus
}
#endif

#endif /* CRACKSEG_SERIAL_H */
