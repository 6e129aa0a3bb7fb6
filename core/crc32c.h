/*
 * crc32c.h — CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of
 * every write-ahead-log record and snapshot.
 *
 * Two implementations that must agree bit for bit: the SSE4.2 `crc32` instruction
 * (chosen at first use when the CPU has it) and a byte-at-a-time table. Any thread may
 * call any function; the dispatch is set up once with pthread_once.
 *
 * Convention: `crc32c_extend(0, p, n)` is the standard CRC-32C of p[0..n), and
 * `crc32c_extend(crc32c_extend(0, a, n), b, m)` equals the CRC of a‖b, so a record can
 * be checksummed in pieces (header, then payload).
 */
#ifndef RINGKEEPER_CORE_CRC32C_H
#define RINGKEEPER_CORE_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* CRC-32C of data[0..size) continued from `crc` (0 to start). Fastest available path. */
uint32_t crc32c_extend(uint32_t crc, const void *data, size_t size);

static inline uint32_t crc32c(const void *data, size_t size)
{
	return crc32c_extend(0, data, size);
}

/* The table path, always available (exposed so tests can compare the two paths). */
uint32_t crc32c_extend_table(uint32_t crc, const void *data, size_t size);

/* True when the SSE4.2 path exists and the CPU supports it. */
bool crc32c_hardware_available(void);

/* The SSE4.2 path; only call it when crc32c_hardware_available() is true. */
uint32_t crc32c_extend_hardware(uint32_t crc, const void *data, size_t size);

#endif
