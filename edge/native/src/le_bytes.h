/* Little-endian field reads for both wire contracts.
 *
 * Fields in the messages are unaligned, so they are assembled byte by byte: no pointer casts (which
 * would be undefined behaviour and fault on strict-alignment MCUs) and no dependence on host order.
 * Plain C99 so that the serial decoder and the C++ message decoder share it.
 */
#ifndef CRACKSEG_LE_BYTES_H
#define CRACKSEG_LE_BYTES_H

#include <stdint.h>

static inline uint16_t crackseg_le16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static inline uint32_t crackseg_le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline uint64_t crackseg_le64(const uint8_t *p) {
    return (uint64_t)crackseg_le32(p) | ((uint64_t)crackseg_le32(p + 4) << 32);
}

#endif /* CRACKSEG_LE_BYTES_H */
