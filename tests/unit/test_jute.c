#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/jute.h"

Test(jute, primitives_round_trip)
{
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	jute_write_int(&w, -5);
	jute_write_long(&w, 0x0123456789abcdefLL);
	jute_write_bool(&w, true);
	jute_write_string(&w, "/a/b", 4);
	jute_write_buffer(&w, NULL, -1);
	jute_write_buffer(&w, "", 0);
	cr_assert(jute_writer_ok(&w));
	cr_assert_eq(w.len, 4 + 8 + 1 + 8 + 4 + 4);

	struct jute_reader r;
	jute_reader_init(&r, w.buf, w.len);
	cr_assert_eq(jute_read_int(&r), -5);
	cr_assert_eq(jute_read_long(&r), 0x0123456789abcdefLL);
	cr_assert_eq(jute_read_bool(&r), true);
	struct jute_bytes s = jute_read_string(&r);
	cr_assert(jute_bytes_eq(s, "/a/b", 4));
	struct jute_bytes n = jute_read_buffer(&r);
	cr_assert_eq(n.len, -1);
	cr_assert_null(n.data);
	struct jute_bytes e = jute_read_buffer(&r);
	cr_assert_eq(e.len, 0);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(jute_reader_remaining(&r), 0);
	jute_writer_free(&w);
}

Test(jute, stat_is_68_bytes_and_round_trips)
{
	struct zk_stat st = { 1, 2, 3, 4, 5, 6, 7, -8, 9, 10, 11 }, back;
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	jute_write_stat(&w, &st);
	cr_assert_eq(w.len, 68);
	struct jute_reader r;
	jute_reader_init(&r, w.buf, w.len);
	jute_read_stat(&r, &back);
	cr_assert(jute_reader_ok(&r));
	cr_assert(back.czxid == 1 && back.mzxid == 2 && back.ctime == 3 && back.mtime == 4);
	cr_assert(back.version == 5 && back.cversion == 6 && back.aversion == 7);
	cr_assert(back.ephemeral_owner == -8 && back.data_length == 9 && back.num_children == 10);
	cr_assert(back.pzxid == 11);
	jute_writer_free(&w);
}

Test(jute, acl_round_trips)
{
	struct zk_acl acl = { 31, { { (const uint8_t *)"world", 5 }, { (const uint8_t *)"anyone", 6 } } }, back;
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	jute_write_acl(&w, &acl);
	struct jute_reader r;
	jute_reader_init(&r, w.buf, w.len);
	jute_read_acl(&r, &back);
	cr_assert(jute_reader_ok(&r));
	cr_assert_eq(back.perms, 31);
	cr_assert(jute_bytes_eq(back.id.scheme, "world", 5));
	cr_assert(jute_bytes_eq(back.id.id, "anyone", 6));
	jute_writer_free(&w);
}

Test(jute, truncated_input_fails_at_every_cut)
{
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	jute_write_int(&w, 7);
	jute_write_string(&w, "/node", 5);
	jute_write_long(&w, 42);
	for (size_t cut = 0; cut < w.len; cut++) {
		struct jute_reader r;
		jute_reader_init(&r, w.buf, cut);
		jute_read_int(&r);
		jute_read_string(&r);
		jute_read_long(&r);
		cr_assert(!jute_reader_ok(&r), "cut at %zu accepted", cut);
	}
	jute_writer_free(&w);
}

Test(jute, huge_and_negative_lengths_rejected)
{
	uint8_t huge[8] = { 0x7f, 0xff, 0xff, 0xff, 'a', 'b', 'c', 'd' };
	struct jute_reader r;
	jute_reader_init(&r, huge, sizeof huge);
	struct jute_bytes b = jute_read_buffer(&r);
	cr_assert(!jute_reader_ok(&r));
	cr_assert_eq(b.len, -1);

	uint8_t neg[4] = { 0xff, 0xff, 0xff, 0xfe }; /* -2 */
	jute_reader_init(&r, neg, sizeof neg);
	jute_read_buffer(&r);
	cr_assert_eq(r.err, -EPROTO);

	uint8_t vec[6] = { 0x10, 0, 0, 0, 1, 2 };
	jute_reader_init(&r, vec, sizeof vec);
	jute_read_vector_count(&r, 4);
	cr_assert(!jute_reader_ok(&r));
}

Test(jute, writer_refuses_past_cap_max)
{
	struct jute_writer w;
	jute_writer_init(&w, 10);
	jute_write_long(&w, 1);
	cr_assert(jute_writer_ok(&w));
	jute_write_int(&w, 1);
	cr_assert_eq(w.err, -E2BIG);
	cr_assert_eq(w.len, 8);
	jute_writer_free(&w);
}
