/*
 * crc32c.c — see crc32c.h.
 *
 * The hardware path feeds 8 bytes per `crc32q` and the remaining 0..7 bytes one at a
 * time; the table path is the classic reflected byte-wise loop. Both keep the running
 * value inverted internally, so callers only ever see the standard (post-inverted) CRC.
 */
#include "core/crc32c.h"

#include <assert.h>
#include <pthread.h>
#include <string.h>

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc32c_table[256];
static uint32_t (*crc32c_best)(uint32_t, const void *, size_t);
static bool crc32c_hw;
static pthread_once_t crc32c_once = PTHREAD_ONCE_INIT;

static void crc32c_table_build(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int bit = 0; bit < 8; bit++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY_REFLECTED : c >> 1;
		crc32c_table[i] = c;
	}
}

static void crc32c_init(void)
{
	crc32c_table_build();
	crc32c_best = crc32c_extend_table;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2")) {
		crc32c_hw = true;
		crc32c_best = crc32c_extend_hardware;
	}
#endif
}

uint32_t crc32c_extend_table(uint32_t crc, const void *data, size_t size)
{
	pthread_once(&crc32c_once, crc32c_init);
	const uint8_t *p = data;
	uint32_t c = ~crc;
	for (size_t i = 0; i < size; i++)
		c = crc32c_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2")))
uint32_t crc32c_extend_hardware(uint32_t crc, const void *data, size_t size)
{
	const uint8_t *p = data;
	uint64_t c = (uint32_t)~crc;
	while (size >= 8) {
		uint64_t word;
		memcpy(&word, p, 8);    /* unaligned-safe load; compiles to one mov */
		c = __builtin_ia32_crc32di(c, word);
		p += 8;
		size -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (size > 0) {
		c32 = __builtin_ia32_crc32qi(c32, *p);
		p++;
		size--;
	}
	return ~c32;
}
#else
uint32_t crc32c_extend_hardware(uint32_t crc, const void *data, size_t size)
{
	(void)crc;
	(void)data;
	(void)size;
	assert(!"crc32c: no hardware path on this architecture");
	return 0;
}
#endif

bool crc32c_hardware_available(void)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_hw;
}

uint32_t crc32c_extend(uint32_t crc, const void *data, size_t size)
{
	pthread_once(&crc32c_once, crc32c_init);
	return crc32c_best(crc, data, size);
}
