/*
 * entry.h — the payload of one log entry: a client write exactly as the client sent
 * it, plus what the leader decided for it. Replicas apply entries; they never see
 * connections.
 *
 * Layout (big-endian, version 1):
 *   0  int64  time_ms      wall clock chosen by the leader when it appended the entry
 *   8  int64  session_id
 *   16 int32  opcode       enum zk_op (incl. createSession -10, closeSession -11)
 *   20 uint8  version      RK_ENTRY_VERSION
 *   21 uint8  flags        bit 0: caller is super
 *   22 uint8  ids_count    <= RK_ENTRY_IDS_MAX
 *   23 ids    ids_count × (ustring scheme, ustring id): the caller's auth identities
 *   .. body   the request record (after the RequestHeader), to the end
 */
#ifndef RK_ENTRY_H
#define RK_ENTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"
#include "store/store.h"

#define RK_ENTRY_VERSION 1
#define RK_ENTRY_IDS_MAX 8
#define RK_ENTRY_HEADER_BYTES 23
#define RK_ENTRY_TIME_OFFSET 0

struct rk_entry {
	int64_t time_ms;
	int64_t session_id;
	int32_t opcode;
	bool super;
	int ids_count;
	struct zk_id ids[RK_ENTRY_IDS_MAX];
	const uint8_t *body;
	size_t body_len;
};

/* Appends an encoded entry (time 0, patched by the leader) to w. */
void entry_encode(struct jute_writer *w, int64_t session_id, int32_t opcode, bool super, const struct zk_id *ids,
		  int ids_count, const void *body, size_t body_len);
/* Decodes in place (views into buf). Returns 0 or -EPROTO. */
int entry_decode(struct rk_entry *e, const uint8_t *buf, size_t len);
void entry_set_time(uint8_t *buf, int64_t time_ms);

#endif
