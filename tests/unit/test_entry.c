/*
 * test_entry.c — raft/entry.c: a log entry round-trips with its origin, time and
 * identities; a version 1 entry (written before origins existed) still decodes, with
 * origin 0; an unknown version or a short header is refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/zk_proto.h"
#include "raft/entry.h"

static const struct zk_id alice = { { (const uint8_t *)"digest", 6 }, { (const uint8_t *)"alice:x", 7 } };

Test(entry, round_trip_with_origin_and_time)
{
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	entry_encode(&w, 0x55, ZK_OP_CREATE, true, &alice, 1, "body", 4);
	cr_assert(jute_writer_ok(&w));
	uint64_t origin = entry_origin_make(3, 0x123456789ULL);
	entry_set_origin(w.buf, origin);
	entry_set_time(w.buf, 1700000000123LL);
	struct rk_entry e;
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert_eq(e.origin, origin);
	cr_assert_eq(e.origin >> RK_ENTRY_ORIGIN_SEQ_BITS, 3);
	cr_assert_eq(e.time_ms, 1700000000123LL);
	cr_assert_eq(e.session_id, 0x55);
	cr_assert_eq(e.opcode, ZK_OP_CREATE);
	cr_assert(e.super);
	cr_assert_eq(e.ids_count, 1);
	cr_assert(jute_bytes_eq(e.ids[0].id, "alice:x", 7));
	cr_assert(e.body_len == 4 && memcmp(e.body, "body", 4) == 0);
	jute_writer_free(&w);
}

Test(entry, a_version_1_entry_decodes_with_no_origin)
{
	/* version 1: the same header without the origin field */
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	jute_write_long(&w, 42);
	jute_write_long(&w, 0x66);
	jute_write_int(&w, ZK_OP_DELETE);
	jute_write_byte(&w, 1);
	jute_write_byte(&w, 0);
	jute_write_byte(&w, 1);
	jute_write_id(&w, &alice);
	jute_write_raw(&w, "xy", 2);
	struct rk_entry e;
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert_eq(e.origin, 0);
	cr_assert_eq(e.time_ms, 42);
	cr_assert_eq(e.opcode, ZK_OP_DELETE);
	cr_assert_eq(e.ids_count, 1);
	cr_assert(e.body_len == 2 && memcmp(e.body, "xy", 2) == 0);
	jute_writer_free(&w);
}

Test(entry, an_unknown_version_or_a_short_header_is_refused)
{
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	entry_encode(&w, 1, ZK_OP_CREATE, false, NULL, 0, "", 0);
	struct rk_entry e;
	for (size_t n = 0; n < RK_ENTRY_HEADER_BYTES; n++)
		cr_assert_eq(entry_decode(&e, w.buf, n), -EPROTO, "%zu bytes", n);
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	w.buf[20] = RK_ENTRY_VERSION + 1;
	cr_assert_eq(entry_decode(&e, w.buf, w.len), -EPROTO);
	w.buf[20] = 0;
	cr_assert_eq(entry_decode(&e, w.buf, w.len), -EPROTO);
	jute_writer_free(&w);
}

Test(entry, only_a_current_client_entry_with_an_origin_has_its_owner_checked)
{
	struct jute_writer w;
	jute_writer_init(&w, 1024);
	entry_encode(&w, 7, ZK_OP_SET_DATA, false, NULL, 0, "b", 1);
	struct rk_entry e;
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert(!e.server_own && !e.owner_checked, "no origin yet: nothing to check against");
	entry_set_origin(w.buf, entry_origin_make(2, 5));
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert(!e.server_own && e.owner_checked);
	w.buf[20] = 2; /* written before owners existed: applied unchecked, as it was */
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert(!e.owner_checked);
	w.buf[20] = RK_ENTRY_VERSION;
	entry_set_server_own(w.buf);
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert(e.server_own && !e.owner_checked && !e.super);
	cr_assert(e.body_len == 1 && e.body[0] == 'b');
	jute_writer_free(&w);
}
