/*
 * client.h — a small blocking ZooKeeper client for the untimed parts of a run: setup
 * of the key space and the list node, cleanup of created nodes, and four-letter words.
 * It pipelines: callers append up to BENCH_CLIENT_BATCH_MAX frames to `w`, then one
 * exchange sends them all and reads the replies in order.
 *
 * Invariants
 *   1. Replies are read strictly in xid order; a mismatch fails the exchange (-EPROTO).
 *   2. Every socket wait is bounded (SO_RCVTIMEO/SO_SNDTIMEO, BENCH_CLIENT_IO_TIMEOUT_MS).
 *   3. The receive buffer grows to at most one max-size frame.
 *
 * Thread: a client belongs to the thread that opened it.
 */
#ifndef RK_BENCH_CLIENT_H
#define RK_BENCH_CLIENT_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "core/jute.h"

#define BENCH_CLIENT_BATCH_MAX 512
#define BENCH_CLIENT_IO_TIMEOUT_MS 15000

struct bench_client {
	int fd;
	int32_t next_xid;
	int64_t session_id;
	uint32_t pending;      /* frames in w awaiting a reply */
	int32_t pending_xid[BENCH_CLIENT_BATCH_MAX];
	struct jute_writer w;
	uint8_t *rbuf;
	size_t rcap;
};

/* Called once per reply; body is positioned after the ReplyHeader. */
typedef void (*bench_client_reply_fn)(void *arg, uint32_t index, int32_t err, struct jute_reader *body);

int bench_client_open(struct bench_client *c, const struct sockaddr_in *addr, int32_t timeout_ms);
/* Takes the next xid and records it as pending; the caller then writes one frame to w. */
int32_t bench_client_next(struct bench_client *c);
/* Sends everything in w, reads `pending` replies, calls fn(arg, index in batch, ...). */
int bench_client_exchange(struct bench_client *c, bench_client_reply_fn fn, void *arg);
/* Closes the session (closeSession, waits for its reply) and the socket. */
void bench_client_close(struct bench_client *c);

/* Runs a four-letter word; out gets the NUL-terminated text (truncated to cap-1). */
int bench_4lw(const struct sockaddr_in *addr, const char *cmd, char *out, size_t cap);
/* Looks up "key\tvalue" in mntr text; returns 0 and *value, or -ENOENT. */
int bench_mntr_value(const char *text, const char *key, int64_t *value);

#endif
