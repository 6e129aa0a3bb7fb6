/*
 * client.c — see client.h.
 */
#include "client.h"

#include <assert.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "bench/request.h"
#include "core/zk_proto.h"

static int socket_connect(const struct sockaddr_in *addr)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	struct timeval tv = { .tv_sec = BENCH_CLIENT_IO_TIMEOUT_MS / 1000,
			      .tv_usec = (BENCH_CLIENT_IO_TIMEOUT_MS % 1000) * 1000 };
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) || setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    connect(fd, (const struct sockaddr *)addr, sizeof(*addr))) {
		int err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static int send_all(int fd, const uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = send(fd, buf + done, len - done, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		done += (size_t)n;
	}
	return 0;
}

static int recv_exact(int fd, uint8_t *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = recv(fd, buf + done, len - done, 0);
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno; /* SO_RCVTIMEO expired */
		}
		done += (size_t)n;
	}
	return 0;
}

/* Reads one frame into c->rbuf; returns its body length or -errno. */
static int32_t client_read_frame(struct bench_client *c)
{
	uint8_t len_bytes[4];
	int err = recv_exact(c->fd, len_bytes, 4);
	if (err)
		return err;
	int32_t len = (int32_t)jute_get_be32(len_bytes);
	if (len < 0 || len > ZK_PACKET_BYTES_MAX * 16)
		return -EPROTO;
	if ((size_t)len > c->rcap) {
		uint8_t *grown = realloc(c->rbuf, (size_t)len);
		if (!grown)
			return -ENOMEM;
		c->rbuf = grown;
		c->rcap = (size_t)len;
	}
	err = recv_exact(c->fd, c->rbuf, (size_t)len);
	return err ? err : len;
}

int bench_client_open(struct bench_client *c, const struct sockaddr_in *addr, int32_t timeout_ms)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_xid = 1;
	jute_writer_init(&c->w, 64u << 20);
	c->rcap = 64u << 10;
	c->rbuf = malloc(c->rcap);
	if (!c->rbuf)
		return -ENOMEM;
	int fd = socket_connect(addr);
	if (fd < 0) {
		bench_client_close(c);
		return fd;
	}
	c->fd = fd;
	request_write_connect(&c->w, timeout_ms, 0, 0, NULL);
	int err = jute_writer_ok(&c->w) ? send_all(fd, c->w.buf, c->w.len) : -ENOMEM;
	jute_writer_reset(&c->w);
	int32_t len = err ? err : client_read_frame(c);
	if (len < 0) {
		bench_client_close(c);
		return len;
	}
	struct jute_reader r;
	jute_reader_init(&r, c->rbuf, (size_t)len);
	(void)jute_read_int(&r); /* protocolVersion */
	int32_t negotiated = jute_read_int(&r);
	c->session_id = jute_read_long(&r);
	if (!jute_reader_ok(&r) || negotiated <= 0 || c->session_id == 0) {
		bench_client_close(c);
		return -ECONNREFUSED;
	}
	return 0;
}

int32_t bench_client_next(struct bench_client *c)
{
	assert(c->pending < BENCH_CLIENT_BATCH_MAX);
	int32_t xid = c->next_xid++;
	c->pending_xid[c->pending++] = xid;
	return xid;
}

int bench_client_exchange(struct bench_client *c, bench_client_reply_fn fn, void *arg)
{
	int err = 0;
	if (!jute_writer_ok(&c->w))
		err = -E2BIG;
	if (!err)
		err = send_all(c->fd, c->w.buf, c->w.len);
	jute_writer_reset(&c->w);
	uint32_t expected = c->pending;
	c->pending = 0;
	for (uint32_t i = 0; !err && i < expected;) {
		int32_t len = client_read_frame(c);
		if (len < 0)
			return len;
		struct jute_reader r;
		jute_reader_init(&r, c->rbuf, (size_t)len);
		int32_t xid = jute_read_int(&r);
		(void)jute_read_long(&r);
		int32_t code = jute_read_int(&r);
		if (!jute_reader_ok(&r))
			return -EPROTO;
		if (xid == ZK_XID_PING || xid == ZK_XID_NOTIFICATION)
			continue;
		if (xid != c->pending_xid[i])
			return -EPROTO;
		if (fn)
			fn(arg, i, code, &r);
		i++;
	}
	return err;
}

void bench_client_close(struct bench_client *c)
{
	if (c->fd >= 0) {
		jute_writer_reset(&c->w);
		c->pending = 0;
		request_write_close(&c->w, bench_client_next(c));
		(void)bench_client_exchange(c, NULL, NULL);
		close(c->fd);
		c->fd = -1;
	}
	jute_writer_free(&c->w);
	free(c->rbuf);
	c->rbuf = NULL;
}

int bench_4lw(const struct sockaddr_in *addr, const char *cmd, char *out, size_t cap)
{
	assert(strlen(cmd) == 4 && cap > 0);
	int fd = socket_connect(addr);
	if (fd < 0)
		return fd;
	int err = send_all(fd, (const uint8_t *)cmd, 4);
	size_t used = 0;
	while (!err && used + 1 < cap) {
		ssize_t n = recv(fd, out + used, cap - 1 - used, 0);
		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		used += (size_t)n;
	}
	out[used] = '\0';
	close(fd);
	return err;
}

int bench_mntr_value(const char *text, const char *key, int64_t *value)
{
	size_t key_len = strlen(key);
	const char *p = text;
	while ((p = strstr(p, key)) != NULL) {
		bool line_start = p == text || p[-1] == '\n';
		if (line_start && p[key_len] == '\t') {
			*value = strtoll(p + key_len + 1, NULL, 10);
			return 0;
		}
		p += key_len;
	}
	return -ENOENT;
}
