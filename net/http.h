/*
 * http.h — a minimal HTTP/1.1 server for GET /metrics on one worker's io_uring: no
 * thread, no lock, no HTTP library. It answers exactly one resource; everything else
 * gets a status and a closed connection.
 *
 *   GET or HEAD /metrics[?...]   200, text/plain; version=0.0.4 (the exposition)
 *   another path                 404, then close
 *   another method               405 (Allow: GET, HEAD), then close
 *   malformed request            400, then close (an HTTP version other than 1.0/1.1: 505)
 *   head over HTTP_HEAD_BYTES_MAX 431, then close
 *   no complete request within HTTP_REQUEST_TIMEOUT_MS of its first byte (or of the
 *   connection), or its answer not taken within that time: closed
 *   idle keep-alive connection for HTTP_IDLE_TIMEOUT_MS: closed
 *   more than HTTP_CONNS_MAX connections: the oldest lingering one (below) is closed
 *   and the new one takes its slot; with none lingering, 503, then close
 *
 * Keep-alive as HTTP/1.1 defines it (1.0: only with "Connection: keep-alive"); a
 * request with a body is answered and the connection closed (the body is not read).
 * A closing answer ends gracefully: FIN after its last byte, then input is read and
 * dropped until the client's FIN or HTTP_LINGER_MS, so unread input never turns the
 * close into a reset that destroys the answer.
 *
 * Lifecycle of a connection (slot):
 *
 *   accept ──► READING ──complete head──► WRITING ──sent, keep-alive──► READING
 *                 │ error, timeout            │ sent, close
 *                 ▼                           ▼
 *              (answer) ─────────────────► LINGER (FIN sent, input dropped)
 *                                             │ client FIN, HTTP_LINGER_MS
 *   timeout, error anywhere: shutdown ──► CLOSED: freed once no operation is in flight
 *
 * Thread: the owning worker's, for everything but http_parse (pure) and http_listen.
 */
#ifndef RK_HTTP_H
#define RK_HTTP_H

#include <liburing.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 64, not 16: 12 scrapers reconnecting every few scrapes filled 16 under ASan in CI
 * when a lingering connection kept its slot for HTTP_LINGER_MS (it now gives it up
 * to a new one). */
#define HTTP_CONNS_MAX 64
#define HTTP_HEAD_BYTES_MAX 8192
#define HTTP_REQUEST_TIMEOUT_MS 10000
#define HTTP_IDLE_TIMEOUT_MS 30000
#define HTTP_LINGER_MS 1000
#define HTTP_BODY_BYTES_MAX (64u << 20) /* a rendered body past this is a 500 */

/* ---- parsing (pure) ------------------------------------------------------------------ */

enum http_method {
	HTTP_METHOD_GET,
	HTTP_METHOD_HEAD,
	HTTP_METHOD_OTHER,
};

struct http_request {
	enum http_method method;
	bool target_is_metrics; /* /metrics, with or without a query */
	bool keep_alive;
	bool has_body;          /* Content-Length > 0 or Transfer-Encoding */
	size_t head_bytes;      /* the request line and headers, blank line included */
	int status;             /* HTTP_PARSE_ERROR: the status to answer */
};

enum http_parse_result {
	HTTP_PARSE_ERROR = -1,
	HTTP_PARSE_MORE = 0,    /* no complete head yet, nothing wrong so far */
	HTTP_PARSE_DONE = 1,
};

/* Parses the head at buf[0..len). A head longer than `max` is an error (431). */
enum http_parse_result http_parse(const char *buf, size_t len, size_t max, struct http_request *req);

/* ---- the server ---------------------------------------------------------------------- */

/* The body of a 200: malloc'ed, freed by the server; NULL: 500. */
typedef char *(*http_render_fn)(void *ctx, size_t *len);
/* An SQE of the owner's ring (it flushes a full submission queue). */
typedef struct io_uring_sqe *(*http_sqe_fn)(void *ctx);

struct http_server;

/* Binds and listens on host:port (IPv4 or IPv6 literal). 0 or -errno (logged). */
int http_listen(const char *host, uint16_t port, int *fd_out);

/*
 * The server of listen_fd (taken over: closed by http_server_destroy). Its SQEs carry
 * ud_prefix in their user_data's top byte; the owner passes every CQE with that top
 * byte to http_on_cqe.
 */
int http_server_create(int listen_fd, uint64_t ud_prefix, http_render_fn render, void *render_ctx,
		       http_sqe_fn get_sqe, void *sqe_ctx, struct http_server **out);
void http_server_destroy(struct http_server *h);
/* Owner thread: arms the accept (its ring must exist). */
void http_server_start(struct http_server *h);
void http_on_cqe(struct http_server *h, const struct io_uring_cqe *cqe);
/* Owner thread, every loop turn: deadlines and freeing. now_us: rk_now_us(). */
void http_tick(struct http_server *h, int64_t now_us);
/* Connections open (for tests and statistics). */
int http_conn_count(const struct http_server *h);

#endif
