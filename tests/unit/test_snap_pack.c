/*
 * The snapshot packer (snapshot/snap_pack.h): blocks reach write_block in the order
 * they were handed over, each with its record count; after write_block fails no
 * further block is written, put reports the error, finish returns it, and every
 * buffer is freed (the ASan pass checks the last part).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "snapshot/snap_pack.h"

struct sink {
	int written;
	int fail_at; /* 0: never */
	uint32_t records[64];
	uint8_t first[64];
};

static int sink_write(void *ctx, struct snap_buf *raw, uint32_t records)
{
	struct sink *k = ctx;
	if (k->fail_at && k->written + 1 == k->fail_at)
		return -EIO;
	k->records[k->written] = records;
	k->first[k->written] = raw->len ? raw->p[0] : 0;
	k->written++;
	return 0;
}

static void fill(struct snap_buf *b, uint8_t v)
{
	b->p = b->cap >= 100 ? b->p : realloc(b->p, 100);
	cr_assert_not_null(b->p);
	b->cap = b->cap >= 100 ? b->cap : 100;
	memset(b->p, v, 100);
	b->len = 100;
}

Test(snap_pack, blocks_are_written_in_order_with_their_counts)
{
	struct sink k = { 0 };
	struct snap_packer *pk;
	cr_assert_eq(snap_packer_start(&pk, sink_write, &k), 0);
	struct snap_buf raw = { 0 };
	for (int i = 0; i < 40; i++) {
		fill(&raw, (uint8_t)i);
		cr_assert_eq(snap_packer_put(pk, &raw, (uint32_t)i + 1), 0);
		cr_assert_eq(raw.len, 0, "put leaves an empty buffer");
	}
	cr_assert_eq(snap_packer_finish(pk), 0);
	snap_buf_free(&raw);
	cr_assert_eq(k.written, 40);
	for (int i = 0; i < 40; i++) {
		cr_assert_eq(k.first[i], (uint8_t)i);
		cr_assert_eq(k.records[i], (uint32_t)i + 1);
	}
}

Test(snap_pack, a_failed_write_stops_the_rest_and_is_reported)
{
	struct sink k = { .fail_at = 3 };
	struct snap_packer *pk;
	cr_assert_eq(snap_packer_start(&pk, sink_write, &k), 0);
	struct snap_buf raw = { 0 };
	int err = 0;
	for (int i = 0; i < 40 && !err; i++) {
		fill(&raw, (uint8_t)i);
		err = snap_packer_put(pk, &raw, 1);
	}
	cr_assert_eq(snap_packer_finish(pk), -EIO);
	snap_buf_free(&raw);
	cr_assert_eq(k.written, 2, "nothing written after the failure");
}
