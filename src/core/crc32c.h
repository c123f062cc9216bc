/*
 * crc32c.h - CRC32C (Castagnoli, RFC 3720 / RFC 4960 appendix B), as the
 * PROXY v2 CRC32C TLV uses it.  Pure, thread-safe.
 */
#ifndef PP_CRC32C_H
#define PP_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Continue a CRC32C over buf[0..len).  Start with crc = 0; the result of
 * one call is the crc argument of the next, so a header can be hashed in
 * pieces.  Uses SSE4.2 when the CPU has it, a slicing-by-8 table
 * otherwise.
 */
uint32_t pp_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable implementation alone (for tests that compare both). */
uint32_t pp_crc32c_sw(uint32_t crc, const void *buf, size_t len);

#endif /* PP_CRC32C_H */
