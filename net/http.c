/*
 * http.c — see http.h. The request parser first (pure), then the server: a fixed
 * table of HTTP_CONNS_MAX slots on the owner's io_uring, one recv or one send in
 * flight per slot, deadlines checked every loop turn.
 *
 * user_data = prefix (top byte) | op << 48 | generation << 16 | slot: a CQE for a
 * slot that was freed and reused since carries an old generation and is ignored.
 *
 * Invariants
 *   1. A slot's buffers stay allocated while an operation of it is in flight; a
 *      CLOSED slot is freed (fd closed) only when none is.
 *   2. Every state but FREE has a deadline; http_tick closes a slot past it, so no
 *      client holds a slot longer than HTTP_IDLE_TIMEOUT_MS without sending a
 *      request, or HTTP_REQUEST_TIMEOUT_MS with one.
 *   3. Input never exceeds HTTP_HEAD_BYTES_MAX: the recv is given only the room left.
 */
#include "net/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "net/server.h"

/* ---- parsing ------------------------------------------------------------------------- */

static bool http_tchar(unsigned char c)
{
	return isalnum(c) || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* Bytes a request line may hold: visible ASCII and the single spaces between parts. */
static bool http_line_byte_ok(unsigned char c)
{
	return c == ' ' || (c > 0x20 && c < 0x7f);
}

static bool http_token_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

static size_t http_trim(const char **s, size_t n)
{
	while (n && (**s == ' ' || **s == '\t')) {
		(*s)++;
		n--;
	}
	while (n && ((*s)[n - 1] == ' ' || (*s)[n - 1] == '\t'))
		n--;
	return n;
}

static enum http_parse_result http_fail(struct http_request *req, int status)
{
	req->status = status;
	return HTTP_PARSE_ERROR;
}

/* The request line [line, line + n) (no CR LF). */
static enum http_parse_result http_parse_request_line(const char *line, size_t n, struct http_request *req,
						      bool *v11)
{
	for (size_t i = 0; i < n; i++)
		if (!http_line_byte_ok((unsigned char)line[i]))
			return http_fail(req, 400);
	const char *sp1 = memchr(line, ' ', n);
	if (!sp1 || sp1 == line || sp1 - line > 16)
		return http_fail(req, 400);
	for (const char *p = line; p < sp1; p++)
		if (!http_tchar((unsigned char)*p))
			return http_fail(req, 400);
	const char *target = sp1 + 1;
	const char *end = line + n;
	const char *sp2 = memchr(target, ' ', (size_t)(end - target));
	if (!sp2 || sp2 == target)
		return http_fail(req, 400);
	const char *version = sp2 + 1;
	size_t vlen = (size_t)(end - version);
	if (vlen != 8 || memcmp(version, "HTTP/", 5) != 0 || !isdigit((unsigned char)version[5]) || version[6] != '.' ||
	    !isdigit((unsigned char)version[7]))
		return http_fail(req, 400);
	if (version[5] != '1' || (version[7] != '0' && version[7] != '1'))
		return http_fail(req, 505);
	*v11 = version[7] == '1';

	size_t mlen = (size_t)(sp1 - line);
	req->method = mlen == 3 && memcmp(line, "GET", 3) == 0	  ? HTTP_METHOD_GET
		      : mlen == 4 && memcmp(line, "HEAD", 4) == 0 ? HTTP_METHOD_HEAD
								  : HTTP_METHOD_OTHER;
	/* origin-form /path?query, or absolute-form http://authority/path?query */
	const char *path = target;
	size_t tlen = (size_t)(sp2 - target);
	if (tlen > 7 && strncasecmp(target, "http://", 7) == 0) {
		path = memchr(target + 7, '/', tlen - 7);
		if (!path)
			path = sp2; /* no path: "/" */
	}
	const char *query = memchr(path, '?', (size_t)(sp2 - path));
	size_t plen = (size_t)((query ? query : sp2) - path);
	req->target_is_metrics = plen == 8 && memcmp(path, "/metrics", 8) == 0;
	return HTTP_PARSE_DONE;
}

/* One header line [line, line + n) (no CR LF). */
static enum http_parse_result http_parse_header(const char *line, size_t n, struct http_request *req,
						bool *conn_close, bool *conn_keep, int *hosts)
{
	if (line[0] == ' ' || line[0] == '\t')
		return http_fail(req, 400); /* obsolete line folding */
	const char *colon = memchr(line, ':', n);
	if (!colon || colon == line)
		return http_fail(req, 400);
	size_t name_len = (size_t)(colon - line);
	for (size_t i = 0; i < name_len; i++)
		if (!http_tchar((unsigned char)line[i]))
			return http_fail(req, 400);
	const char *value = colon + 1;
	size_t vlen = http_trim(&value, n - name_len - 1);
	for (size_t i = 0; i < vlen; i++) {
		unsigned char c = (unsigned char)value[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f)
			return http_fail(req, 400);
	}
	if (http_token_is(line, name_len, "host")) {
		(*hosts)++;
	} else if (http_token_is(line, name_len, "content-length")) {
		if (vlen == 0)
			return http_fail(req, 400);
		bool nonzero = false;
		for (size_t i = 0; i < vlen; i++) {
			if (!isdigit((unsigned char)value[i]))
				return http_fail(req, 400);
			nonzero |= value[i] != '0';
		}
		req->has_body |= nonzero;
	} else if (http_token_is(line, name_len, "transfer-encoding")) {
		req->has_body = true;
	} else if (http_token_is(line, name_len, "connection")) {
		while (vlen) {
			const char *comma = memchr(value, ',', vlen);
			size_t tok_len = comma ? (size_t)(comma - value) : vlen;
			const char *tok = value;
			tok_len = http_trim(&tok, tok_len);
			*conn_close |= http_token_is(tok, tok_len, "close");
			*conn_keep |= http_token_is(tok, tok_len, "keep-alive");
			if (!comma)
				break;
			vlen -= (size_t)(comma + 1 - value);
			value = comma + 1;
		}
	}
	return HTTP_PARSE_DONE;
}

enum http_parse_result http_parse(const char *buf, size_t len, size_t max, struct http_request *req)
{
	memset(req, 0, sizeof *req);
	size_t pos = 0;
	while (pos < len && (buf[pos] == '\r' || buf[pos] == '\n'))
		pos++; /* empty lines before the request line are ignored (RFC 9112, 2.2) */
	const char *nl = memchr(buf + pos, '\n', len - pos);
	if (!nl) {
		/* No request line yet: refuse what can never become one (a ZooKeeper client's
		 * binary frame, say) at once rather than at the deadline. */
		for (size_t i = pos; i < len; i++)
			if (!http_line_byte_ok((unsigned char)buf[i]) && !(buf[i] == '\r' && i + 1 == len))
				return http_fail(req, 400);
		return len >= max ? http_fail(req, 431) : HTTP_PARSE_MORE;
	}
	size_t n = (size_t)(nl - (buf + pos));
	if (n && buf[pos + n - 1] == '\r')
		n--;
	bool v11 = false;
	if (http_parse_request_line(buf + pos, n, req, &v11) != HTTP_PARSE_DONE)
		return HTTP_PARSE_ERROR;
	bool conn_close = false, conn_keep = false;
	int hosts = 0;
	pos = (size_t)(nl - buf) + 1;
	for (;;) {
		nl = memchr(buf + pos, '\n', len - pos);
		if (!nl)
			return len >= max ? http_fail(req, 431) : HTTP_PARSE_MORE;
		n = (size_t)(nl - (buf + pos));
		if (n && buf[pos + n - 1] == '\r')
			n--;
		const char *line = buf + pos;
		pos = (size_t)(nl - buf) + 1;
		if (n == 0)
			break;
		if (http_parse_header(line, n, req, &conn_close, &conn_keep, &hosts) != HTTP_PARSE_DONE)
			return HTTP_PARSE_ERROR;
	}
	if (pos > max)
		return http_fail(req, 431);
	if (hosts > 1 || (v11 && hosts == 0))
		return http_fail(req, 400); /* RFC 9112, 3.2: exactly one Host in HTTP/1.1 */
	req->keep_alive = v11 ? !conn_close : conn_keep && !conn_close;
	req->head_bytes = pos;
	return HTTP_PARSE_DONE;
}

/* ---- the server -------------------------------------------------------------------- */

enum http_state {
	HTTP_FREE,
	HTTP_READING, /* a request's head is coming (or the next, on keep-alive) */
	HTTP_WRITING, /* an answer is going out */
	HTTP_LINGER,  /* FIN sent after a closing answer; input dropped until the client's */
	HTTP_CLOSED,  /* shut down; freed once nothing is in flight */
};

enum http_op {
	HTTP_OP_ACCEPT = 1,
	HTTP_OP_RECV = 2,
	HTTP_OP_SEND = 3,
};

struct http_conn {
	enum http_state state;
	int fd;
	uint16_t gen;
	bool recv_inflight;
	bool send_inflight;
	bool close_after;   /* the answer going out ends the connection */
	int64_t deadline_us;
	size_t in_len;
	char *out;
	size_t out_len, out_off;
	char in[HTTP_HEAD_BYTES_MAX];
};

struct http_server {
	int listen_fd;
	bool accept_armed;
	bool started;
	uint64_t ud_prefix;
	http_render_fn render;
	void *render_ctx;
	http_sqe_fn get_sqe;
	void *sqe_ctx;
	int conn_count;
	/* An accepted connection waiting for the slot of a lingering one it reclaimed
	 * (http_on_accept); -1: none. */
	int pending_fd;
	struct http_conn conns[HTTP_CONNS_MAX];
};

#define HTTP_UD_MASK ((UINT64_C(1) << 56) - 1)

static uint64_t http_ud(const struct http_server *h, enum http_op op, unsigned slot, uint16_t gen)
{
	return h->ud_prefix | ((uint64_t)op << 48) | ((uint64_t)gen << 16) | slot;
}

int http_listen(const char *host, uint16_t port, int *fd_out)
{
	return server_listen_tcp(host, port, SERVER_LISTEN_ALONE, "metrics", fd_out);
}

int http_server_create(int listen_fd, uint64_t ud_prefix, http_render_fn render, void *render_ctx,
		       http_sqe_fn get_sqe, void *sqe_ctx, struct http_server **out)
{
	struct http_server *h = calloc(1, sizeof *h);
	if (!h)
		return -ENOMEM;
	h->listen_fd = listen_fd;
	h->ud_prefix = ud_prefix & ~HTTP_UD_MASK;
	h->render = render;
	h->render_ctx = render_ctx;
	h->get_sqe = get_sqe;
	h->sqe_ctx = sqe_ctx;
	h->pending_fd = -1;
	for (unsigned i = 0; i < HTTP_CONNS_MAX; i++)
		h->conns[i].fd = -1;
	*out = h;
	return 0;
}

void http_server_destroy(struct http_server *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < HTTP_CONNS_MAX; i++) {
		struct http_conn *c = &h->conns[i];
		if (c->state != HTTP_FREE)
			close(c->fd);
		free(c->out);
	}
	if (h->pending_fd >= 0)
		close(h->pending_fd);
	if (h->listen_fd >= 0)
		close(h->listen_fd);
	free(h);
}

int http_conn_count(const struct http_server *h)
{
	return h->conn_count;
}

static void http_arm_accept(struct http_server *h)
{
	struct io_uring_sqe *sqe = h->get_sqe(h->sqe_ctx);
	io_uring_prep_multishot_accept(sqe, h->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, http_ud(h, HTTP_OP_ACCEPT, 0, 0));
	h->accept_armed = true;
}

void http_server_start(struct http_server *h)
{
	h->started = true;
	http_arm_accept(h);
}

static void http_arm_recv(struct http_server *h, struct http_conn *c)
{
	/* LINGER reads into the whole buffer and drops it; READING appends (invariant 3). */
	size_t off = c->state == HTTP_LINGER ? 0 : c->in_len;
	struct io_uring_sqe *sqe = h->get_sqe(h->sqe_ctx);
	io_uring_prep_recv(sqe, c->fd, c->in + off, sizeof c->in - off, 0);
	io_uring_sqe_set_data64(sqe, http_ud(h, HTTP_OP_RECV, (unsigned)(c - h->conns), c->gen));
	c->recv_inflight = true;
}

static void http_arm_send(struct http_server *h, struct http_conn *c)
{
	struct io_uring_sqe *sqe = h->get_sqe(h->sqe_ctx);
	io_uring_prep_send(sqe, c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, http_ud(h, HTTP_OP_SEND, (unsigned)(c - h->conns), c->gen));
	c->send_inflight = true;
}

/* Abort: both directions shut, so what is in flight completes; freed by http_tick. */
static void http_close(struct http_conn *c)
{
	if (c->state == HTTP_CLOSED || c->state == HTTP_FREE)
		return;
	shutdown(c->fd, SHUT_RDWR);
	c->state = HTTP_CLOSED;
}

static const char *http_reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Error";
	}
}

/* An answer: the head, then body[0..body_len) unless head_only. Takes body (freed). */
static void http_answer(struct http_server *h, struct http_conn *c, int status, char *body, size_t body_len,
			bool head_only, bool close_after)
{
	char head[512];
	int n = snprintf(head, sizeof head,
			 "HTTP/1.1 %d %s\r\n"
			 "Content-Type: %s\r\n"
			 "Content-Length: %zu\r\n"
			 "%s%s\r\n",
			 status, http_reason(status),
			 status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
			 body_len, status == 405 ? "Allow: GET, HEAD\r\n" : "",
			 close_after ? "Connection: close\r\n" : "Connection: keep-alive\r\n");
	size_t send_body = head_only ? 0 : body_len;
	char *out = malloc((size_t)n + send_body);
	if (!out) {
		free(body);
		http_close(c);
		return;
	}
	memcpy(out, head, (size_t)n);
	if (send_body)
		memcpy(out + n, body, send_body);
	free(body);
	free(c->out);
	c->out = out;
	c->out_len = (size_t)n + send_body;
	c->out_off = 0;
	c->close_after = close_after;
	c->state = HTTP_WRITING;
	http_arm_send(h, c);
}

static void http_answer_error(struct http_server *h, struct http_conn *c, int status)
{
	char text[160];
	int n = snprintf(text, sizeof text, "%d %s%s\n", status, http_reason(status),
			 status == 404 ? ": the only resource here is /metrics" : "");
	http_answer(h, c, status, strndup(text, (size_t)n), (size_t)n, false, true);
}

/* The head of a request is complete in c->in (or broken): answer it. */
static void http_serve(struct http_server *h, struct http_conn *c)
{
	struct http_request req;
	enum http_parse_result r = http_parse(c->in, c->in_len, sizeof c->in, &req);
	if (r == HTTP_PARSE_MORE) {
		http_arm_recv(h, c);
		return;
	}
	if (r == HTTP_PARSE_ERROR) {
		http_answer_error(h, c, req.status);
		return;
	}
	/* Keep what follows the head (a pipelined request) for after the answer. */
	memmove(c->in, c->in + req.head_bytes, c->in_len - req.head_bytes);
	c->in_len -= req.head_bytes;
	if (req.method == HTTP_METHOD_OTHER) {
		http_answer_error(h, c, 405);
		return;
	}
	if (!req.target_is_metrics) {
		http_answer_error(h, c, 404);
		return;
	}
	size_t len = 0;
	char *body = h->render(h->render_ctx, &len);
	if (!body || len > HTTP_BODY_BYTES_MAX) {
		free(body);
		http_answer_error(h, c, 500);
		return;
	}
	/* A body we do not read would be taken for the next request: close after. */
	http_answer(h, c, 200, body, len, req.method == HTTP_METHOD_HEAD, !req.keep_alive || req.has_body);
}

/* A free slot, or NULL. */
static struct http_conn *http_free_slot(struct http_server *h)
{
	for (unsigned i = 0; i < HTTP_CONNS_MAX; i++)
		if (h->conns[i].state == HTTP_FREE)
			return &h->conns[i];
	return NULL;
}

/* The lingering connection nearest its deadline, or NULL. */
static struct http_conn *http_oldest_linger(struct http_server *h)
{
	struct http_conn *best = NULL;
	for (unsigned i = 0; i < HTTP_CONNS_MAX; i++) {
		struct http_conn *c = &h->conns[i];
		if (c->state == HTTP_LINGER && (!best || c->deadline_us < best->deadline_us))
			best = c;
	}
	return best;
}

static void http_adopt(struct http_server *h, struct http_conn *c, int fd)
{
	/* The answer is one send: no Nagle wait for its last segment (a 40 ms delayed ACK). */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->state = HTTP_READING;
	c->fd = fd;
	c->in_len = 0;
	c->out_off = c->out_len = 0;
	c->close_after = false;
	c->deadline_us = rk_now_us() + (int64_t)HTTP_REQUEST_TIMEOUT_MS * 1000;
	h->conn_count++;
	http_arm_recv(h, c);
}

static void http_on_accept(struct http_server *h, const struct io_uring_cqe *cqe)
{
	if (!(cqe->flags & IORING_CQE_F_MORE))
		h->accept_armed = false;
	if (cqe->res < 0) {
		if (cqe->res != -ECANCELED)
			log_warn("metrics: accept: %s", strerror(-cqe->res));
		return;
	}
	int fd = cqe->res;
	struct http_conn *c = http_free_slot(h);
	if (c) {
		http_adopt(h, c, fd);
		return;
	}
	/*
	 * Full. A lingering connection has had its answer: it only waits for the
	 * client's FIN. The oldest gives its slot up (shut down now; freed by http_tick
	 * once its receive returns, a moment later) and this one waits for it. Only
	 * when none lingers, or one already waits: a short answer without waiting for
	 * anything, then close.
	 */
	struct http_conn *old = h->pending_fd < 0 ? http_oldest_linger(h) : NULL;
	if (old) {
		http_close(old);
		h->pending_fd = fd;
		return;
	}
	static const char busy[] = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
				   "Content-Length: 20\r\nConnection: close\r\n\r\ntoo many connections";
	ssize_t sent = send(fd, busy, sizeof busy - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	(void)sent;
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void http_on_recv(struct http_server *h, struct http_conn *c, int res)
{
	c->recv_inflight = false;
	switch (c->state) {
	case HTTP_LINGER:
		if (res > 0)
			http_arm_recv(h, c); /* dropped */
		else
			http_close(c); /* the client's FIN: done */
		return;
	case HTTP_READING:
		if (res <= 0) {
			http_close(c); /* the client left (or an error) */
			return;
		}
		if (c->in_len == 0) /* a request begins: it has this long to arrive */
			c->deadline_us = rk_now_us() + (int64_t)HTTP_REQUEST_TIMEOUT_MS * 1000;
		c->in_len += (size_t)res;
		http_serve(h, c);
		return;
	case HTTP_WRITING: /* not armed while writing */
	case HTTP_CLOSED:
	case HTTP_FREE:
		return;
	}
}

static void http_on_send(struct http_server *h, struct http_conn *c, int res)
{
	c->send_inflight = false;
	if (c->state != HTTP_WRITING)
		return;
	if (res <= 0) {
		http_close(c);
		return;
	}
	c->out_off += (size_t)res;
	if (c->out_off < c->out_len) {
		http_arm_send(h, c);
		return;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	if (c->close_after) {
		shutdown(c->fd, SHUT_WR);
		c->state = HTTP_LINGER;
		c->deadline_us = rk_now_us() + (int64_t)HTTP_LINGER_MS * 1000;
		http_arm_recv(h, c);
		return;
	}
	c->state = HTTP_READING;
	c->deadline_us = rk_now_us() + (int64_t)(c->in_len ? HTTP_REQUEST_TIMEOUT_MS : HTTP_IDLE_TIMEOUT_MS) * 1000;
	http_serve(h, c); /* a pipelined request, or wait for the next */
}

void http_on_cqe(struct http_server *h, const struct io_uring_cqe *cqe)
{
	uint64_t ud = cqe->user_data & HTTP_UD_MASK;
	enum http_op op = (enum http_op)(ud >> 48);
	unsigned slot = (unsigned)(ud & 0xffff);
	uint16_t gen = (uint16_t)(ud >> 16);
	if (op == HTTP_OP_ACCEPT) {
		http_on_accept(h, cqe);
		return;
	}
	if (slot >= HTTP_CONNS_MAX || h->conns[slot].gen != gen || h->conns[slot].state == HTTP_FREE)
		return;
	struct http_conn *c = &h->conns[slot];
	if (op == HTTP_OP_RECV)
		http_on_recv(h, c, cqe->res);
	else if (op == HTTP_OP_SEND)
		http_on_send(h, c, cqe->res);
}

void http_tick(struct http_server *h, int64_t now_us)
{
	if (h->started && !h->accept_armed)
		http_arm_accept(h);
	for (unsigned i = 0; i < HTTP_CONNS_MAX; i++) {
		struct http_conn *c = &h->conns[i];
		if (c->state == HTTP_FREE)
			continue;
		if (c->state != HTTP_CLOSED && now_us >= c->deadline_us)
			http_close(c); /* invariant 2 */
		if (c->state == HTTP_CLOSED && !c->recv_inflight && !c->send_inflight) {
			close(c->fd); /* invariant 1 */
			free(c->out);
			c->out = NULL;
			c->fd = -1;
			c->state = HTTP_FREE;
			c->gen++;
			h->conn_count--;
		}
	}
	struct http_conn *c;
	if (h->pending_fd >= 0 && (c = http_free_slot(h))) {
		http_adopt(h, c, h->pending_fd);
		h->pending_fd = -1;
	}
}
