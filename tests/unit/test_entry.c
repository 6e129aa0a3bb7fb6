/*
 * test_entry.c — raft/entry.c: a log entry round-trips with its origin, time and
 * identities; a version 1 entry (written before origins existed) still decodes, with
 * origin 0; an unknown version or a short header is refused; origin sequence numbers
 * order across their 48-bit wrap.
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
	cr_assert_eq(entry_origin(w.buf, w.len), origin, "read alone, as decoded");
	cr_assert_eq(entry_origin_server(origin), 3);
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
	cr_assert_eq(entry_origin(w.buf, w.len), 0);
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
	entry_set_origin(w.buf, entry_origin_make(2, 77));
	for (size_t n = 0; n < RK_ENTRY_HEADER_BYTES; n++) {
		cr_assert_eq(entry_decode(&e, w.buf, n), -EPROTO, "%zu bytes", n);
		cr_assert_eq(entry_origin(w.buf, n), 0, "%zu bytes: no origin", n);
	}
	cr_assert_eq(entry_origin(w.buf, w.len), entry_origin_make(2, 77));
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	w.buf[RK_ENTRY_VERSION_OFFSET] = RK_ENTRY_VERSION + 1;
	cr_assert_eq(entry_decode(&e, w.buf, w.len), -EPROTO);
	cr_assert_eq(entry_origin(w.buf, w.len), 0, "an unknown version has no origin");
	w.buf[RK_ENTRY_VERSION_OFFSET] = 0;
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
	w.buf[RK_ENTRY_VERSION_OFFSET] = 2; /* written before owners existed: applied unchecked, as it was */
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert(!e.owner_checked);
	w.buf[RK_ENTRY_VERSION_OFFSET] = RK_ENTRY_VERSION;
	entry_set_server_own(w.buf);
	cr_assert_eq(entry_decode(&e, w.buf, w.len), 0);
	cr_assert(e.server_own && !e.owner_checked && !e.super);
	cr_assert(e.body_len == 1 && e.body[0] == 'b');
	jute_writer_free(&w);
}

/* Proposal sequence numbers (48 bits of wall-clock microseconds) order as serial
 * numbers: across their wrap (2032-06-08 and every 8.9 years), and never both ways. */
Test(entry, origin_sequence_numbers_order_across_their_wrap)
{
	const uint64_t top = RK_ENTRY_ORIGIN_SEQ_MASK;
	const uint64_t half = 1ULL << (RK_ENTRY_ORIGIN_SEQ_BITS - 1);
	cr_assert(entry_origin_seq_before(1, 2));
	cr_assert_not(entry_origin_seq_before(2, 1));
	cr_assert_not(entry_origin_seq_before(5, 5), "not before itself");
	cr_assert(entry_origin_seq_before(top, 0), "the last number before the wrap comes before 0");
	cr_assert(entry_origin_seq_before(top - 1000, 5));
	cr_assert_not(entry_origin_seq_before(5, top - 1000));
	cr_assert(entry_origin_seq_before(0, half - 1), "up to half the space ahead: after");
	cr_assert(entry_origin_seq_before(half + 1, 0), "more than half ahead: behind");
	cr_assert_not(entry_origin_seq_before(0, half), "exactly half apart: neither (RFC 1982)");
	cr_assert_not(entry_origin_seq_before(half, 0));
	/* what the origins carry: the server's id above the number, ignored here */
	uint64_t a = entry_origin_make(3, top), b = entry_origin_make(3, top + 2);
	cr_assert_eq(entry_origin_seq(b), 1);
	cr_assert(entry_origin_seq_before(entry_origin_seq(a), entry_origin_seq(b)));
}

/* A run numbers its proposals from the clock, or from its last proposal in the log
 * when the clock was set back across the restart. */
Test(entry, a_run_numbers_its_proposals_after_every_one_in_its_log)
{
	const uint64_t top = RK_ENTRY_ORIGIN_SEQ_MASK;
	cr_assert_eq(entry_origin_seq_start(1000000, false, 0), 1000000, "an empty log: the clock");
	cr_assert_eq(entry_origin_seq_start(1000000, true, 999999), 1000000, "the clock is after the log");
	cr_assert_eq(entry_origin_seq_start(1000000, true, 5000000), 5000000, "the clock was set back");
	cr_assert_eq(entry_origin_seq_start(1000000, true, 1000000), 1000000, "equal: the first proposal is after");
	cr_assert_eq(entry_origin_seq_start(top + 11, true, top - 3), 10, "the clock wrapped since the log");
	cr_assert_eq(entry_origin_seq_start(top + 11, true, 20), 20, "both wrapped, the clock behind");
}
