/* net/http.h: the request parser of /metrics (the server is tested end to end in
 * tests/integration/test_metrics.py). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "net/http.h"

static struct http_request req;

static enum http_parse_result parse(const char *text)
{
	return http_parse(text, strlen(text), HTTP_HEAD_BYTES_MAX, &req);
}

static void expect_error(const char *text, int status)
{
	cr_assert_eq(parse(text), HTTP_PARSE_ERROR, "accepted: %s", text);
	cr_assert_eq(req.status, status, "%s: status %d", text, req.status);
}

Test(http, get_metrics_keep_alive)
{
	const char *text = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:7000\r\nUser-Agent: Prometheus/2.42.0\r\n"
			   "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n"
			   "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n";
	cr_assert_eq(parse(text), HTTP_PARSE_DONE);
	cr_assert_eq(req.method, HTTP_METHOD_GET);
	cr_assert(req.target_is_metrics);
	cr_assert(req.keep_alive);
	cr_assert_not(req.has_body);
	cr_assert_eq(req.head_bytes, strlen(text));
}

Test(http, targets)
{
	cr_assert_eq(parse("GET /metrics?name[]=znode_count HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert(req.target_is_metrics);
	cr_assert_eq(parse("GET http://node1:7000/metrics HTTP/1.1\r\nHost: node1:7000\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert(req.target_is_metrics);
	const char *others[] = { "/", "/metricsx", "/metrics/", "/Metrics", "*", "http://node1:7000",
				 "/metric" };
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", others[i]);
		cr_assert_eq(parse(text), HTTP_PARSE_DONE, "%s", text);
		cr_assert_not(req.target_is_metrics, "%s", others[i]);
	}
}

Test(http, methods)
{
	cr_assert_eq(parse("HEAD /metrics HTTP/1.1\r\nHost: a\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert_eq(req.method, HTTP_METHOD_HEAD);
	const char *others[] = { "POST", "PUT", "DELETE", "OPTIONS", "get", "BREW" };
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		char text[128];
		snprintf(text, sizeof text, "%s /metrics HTTP/1.1\r\nHost: a\r\n\r\n", others[i]);
		cr_assert_eq(parse(text), HTTP_PARSE_DONE, "%s", text);
		cr_assert_eq(req.method, HTTP_METHOD_OTHER, "%s", others[i]);
	}
}

Test(http, keep_alive_rules)
{
	cr_assert_eq(parse("GET /metrics HTTP/1.0\r\n\r\n"), HTTP_PARSE_DONE); /* no Host needed in 1.0 */
	cr_assert_not(req.keep_alive);
	cr_assert_eq(parse("GET /metrics HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert(req.keep_alive);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert_not(req.keep_alive);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nconnection:  Upgrade , CLOSE \r\n\r\n"),
		     HTTP_PARSE_DONE);
	cr_assert_not(req.keep_alive);
}

Test(http, bodies)
{
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert_not(req.has_body);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert(req.has_body);
	cr_assert_eq(parse("GET /metrics HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), HTTP_PARSE_DONE);
	cr_assert(req.has_body);
	expect_error("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400);
	expect_error("GET /metrics HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400);
}

Test(http, incomplete_heads_wait)
{
	const char *parts[] = { "", "G", "GET /met", "GET /metrics HTTP/1.1", "GET /metrics HTTP/1.1\r",
				"GET /metrics HTTP/1.1\r\n", "GET /metrics HTTP/1.1\r\nHost: a\r\n",
				"GET /metrics HTTP/1.1\r\nHost: a\r\n\r" };
	for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
		cr_assert_eq(parse(parts[i]), HTTP_PARSE_MORE, "'%s'", parts[i]);
}

Test(http, line_endings_and_leading_blank_lines)
{
	cr_assert_eq(parse("GET /metrics HTTP/1.1\nHost: a\n\n"), HTTP_PARSE_DONE);
	cr_assert(req.target_is_metrics);
	const char *text = "\r\n\r\nGET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	cr_assert_eq(parse(text), HTTP_PARSE_DONE);
	cr_assert_eq(req.head_bytes, strlen(text));
}

Test(http, pipelined_requests_parse_one_at_a_time)
{
	const char *one = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	char text[256];
	snprintf(text, sizeof text, "%sHEAD /x HTTP/1.1\r\nHost: a\r\n\r\n", one);
	cr_assert_eq(parse(text), HTTP_PARSE_DONE);
	cr_assert_eq(req.head_bytes, strlen(one));
	cr_assert_eq(req.method, HTTP_METHOD_GET);
	cr_assert_eq(parse(text + req.head_bytes), HTTP_PARSE_DONE);
	cr_assert_eq(req.method, HTTP_METHOD_HEAD);
	cr_assert_not(req.target_is_metrics);
}

Test(http, malformed_request_lines)
{
	expect_error("GET /metrics HTTP/2.0\r\nHost: a\r\n\r\n", 505);
	expect_error("GET /metrics HTTP/0.9\r\n\r\n", 505);
	expect_error("GET /metrics HTTP/1.1x\r\nHost: a\r\n\r\n", 400);
	expect_error("GET /metrics http/1.1\r\nHost: a\r\n\r\n", 400);
	expect_error("GET  /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_error("GET /metrics\r\n\r\n", 400);
	expect_error("GET\r\n\r\n", 400);
	expect_error(" GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_error("G(T /metrics HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_error("GET /met rics HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_error("GET /metrics\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400);
	expect_error("GARBAGE\r\n\r\n", 400);
}

Test(http, binary_input_is_refused_before_a_newline)
{
	/* A ZooKeeper client's ConnectRequest sent to the metrics port by mistake. */
	const char frame[] = { 0, 0, 0, 44, 0, 0, 0, 0 };
	cr_assert_eq(http_parse(frame, sizeof frame, HTTP_HEAD_BYTES_MAX, &req), HTTP_PARSE_ERROR);
	cr_assert_eq(req.status, 400);
	cr_assert_eq(http_parse("GET /\x80", 6, HTTP_HEAD_BYTES_MAX, &req), HTTP_PARSE_ERROR);
}

Test(http, malformed_headers)
{
	expect_error("GET /metrics HTTP/1.1\r\n\r\n", 400);                         /* no Host */
	expect_error("GET /metrics HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400);   /* two */
	expect_error("GET /metrics HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n", 400);
	expect_error("GET /metrics HTTP/1.1\r\nHost: a\r\n: empty name\r\n\r\n", 400);
	expect_error("GET /metrics HTTP/1.1\r\nHost : a\r\n\r\n", 400);
	expect_error("GET /metrics HTTP/1.1\r\nHost: a\r\nX-A: b\r\n  folded\r\n\r\n", 400);
	expect_error("GET /metrics HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n", 400);
}

Test(http, heads_over_the_limit)
{
	char big[HTTP_HEAD_BYTES_MAX];
	memset(big, 'a', sizeof big);
	memcpy(big, "GET /metrics HTTP/1.1\r\nX-Fill: ", 31);
	cr_assert_eq(http_parse(big, sizeof big, sizeof big, &req), HTTP_PARSE_ERROR);
	cr_assert_eq(req.status, 431);
	/* The same bytes with room left: still waiting. */
	cr_assert_eq(http_parse(big, sizeof big - 1, sizeof big, &req), HTTP_PARSE_MORE);
	/* A request line longer than the limit. */
	memset(big, 'a', sizeof big);
	memcpy(big, "GET /", 5);
	cr_assert_eq(http_parse(big, sizeof big, sizeof big, &req), HTTP_PARSE_ERROR);
	cr_assert_eq(req.status, 431);
	/* A complete head that ends past max. */
	const char *text = "GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n";
	cr_assert_eq(http_parse(text, strlen(text), 20, &req), HTTP_PARSE_ERROR);
	cr_assert_eq(req.status, 431);
}
