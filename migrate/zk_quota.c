/*
 * zk_quota.c — ZooKeeper 3.8's quota bookkeeping as its DataTree does it: the
 * PathTrie of quota paths and the StatsTrack text of zookeeper_stats nodes.
 *
 * PathTrie, as a sorted set of normalized paths
 *   A path's components are its '/'-separated parts without the empty ones and those
 *   Java's trim() empties (bytes <= 0x20); normalized it is "/" + components joined by
 *   "/". addPath marks a path (every component becomes a trie node); deletePath drops
 *   the trie node of a path with everything below it, so every marked path at or
 *   under it goes; findMaxPrefix reports the deepest marked path whose components
 *   start the given path's. Only marked paths matter to the answers, so a sorted set
 *   of them is enough.
 *
 * StatsTrack text
 *   Parse: split on runs of ',' and ';' (Java's String.split: a leading separator
 *   keeps an empty first piece, trailing empty pieces go); each piece split on '='
 *   the same way and kv[1] taken as a Java long, "" meaning -1; a piece without a
 *   second part ("a", "a=", and the empty first piece) throws in ZooKeeper: -EINVAL.
 *   A repeated key keeps its last value; a missing one reads -1.
 *   Format: "count=C,bytes=B", then, when other keys exist, "=" and ";key=value" for
 *   each in ascending order.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/zk_tree_impl.h"

/* ---------------------------------------------------------------- paths */

static bool blank(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)p[i] > 0x20)
			return false;
	return true;
}

/* Normalizes raw into out (room for len + 2 bytes); returns the length (1: "/"). */
static size_t normalize(const char *raw, size_t len, char *out)
{
	size_t o = 0, i = 0;
	while (i < len) {
		size_t j = i;
		while (j < len && raw[j] != '/')
			j++;
		if (j > i && !blank(raw + i, j - i)) {
			out[o++] = '/';
			memcpy(out + o, raw + i, j - i);
			o += j - i;
		}
		i = j + 1;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	return o;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool roots_has(const struct zk_quota_roots *q, const char *norm)
{
	return q->count && bsearch(&norm, q->paths, q->count, sizeof *q->paths, cmp_str) != NULL;
}

void zk_quota_free(struct zk_quota_roots *q)
{
	for (size_t i = 0; i < q->count; i++)
		free(q->paths[i]);
	free(q->paths);
	*q = (struct zk_quota_roots){ 0 };
}

int zk_quota_add(struct zk_quota_roots *q, const char *raw, size_t len)
{
	if (len == 0)
		return -EINVAL;
	char *norm = malloc(len + 2);
	if (!norm)
		return -ENOMEM;
	size_t n = normalize(raw, len, norm);
	/* "/": the trie's root gets the mark, which findMaxPrefix never reports. */
	if (n == 1 || roots_has(q, norm)) {
		free(norm);
		return 0;
	}
	if (q->count == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		char **p = realloc(q->paths, cap * sizeof *p);
		if (!p) {
			free(norm);
			return -ENOMEM;
		}
		q->paths = p;
		q->cap = cap;
	}
	q->paths[q->count++] = norm;
	qsort(q->paths, q->count, sizeof *q->paths, cmp_str);
	return 0;
}

int zk_quota_delete(struct zk_quota_roots *q, const char *raw, size_t len)
{
	char *norm = malloc(len + 2);
	if (!norm)
		return -ENOMEM;
	size_t n = normalize(raw, len, norm);
	if (n == 1) {
		/* No components: deletePath would remove the trie's root from its parent,
		 * which it does not have (ZooKeeper throws). */
		free(norm);
		return -EINVAL;
	}
	size_t kept = 0;
	for (size_t i = 0; i < q->count; i++) {
		const char *p = q->paths[i];
		bool under = strncmp(p, norm, n) == 0 && (p[n] == '\0' || p[n] == '/');
		if (under)
			free(q->paths[i]);
		else
			q->paths[kept++] = q->paths[i];
	}
	q->count = kept;
	free(norm);
	return 0;
}

const char *zk_quota_max_prefix(const struct zk_quota_roots *q, const char *path, size_t len)
{
	if (q->count == 0)
		return NULL;
	char stack_buf[512];
	char *norm = len + 2 <= sizeof stack_buf ? stack_buf : malloc(len + 2);
	if (!norm)
		return NULL;
	size_t n = normalize(path, len, norm);
	const char *best = NULL;
	/* Each component boundary of the normalized path, deepest last. */
	for (size_t end = 1; end <= n; end++) {
		if (end != n && norm[end] != '/')
			continue;
		char saved = norm[end];
		norm[end] = '\0';
		const char *key = norm;
		char **hit = bsearch(&key, q->paths, q->count, sizeof *q->paths, cmp_str);
		if (hit)
			best = *hit;
		norm[end] = saved;
	}
	if (norm != stack_buf)
		free(norm);
	return best;
}

/* ---------------------------------------------------------------- StatsTrack */

struct kv {
	const char *key;
	size_t key_len;
	int64_t value;
};

static bool is_sep(char c) { return c == ',' || c == ';'; }

/* Long.parseLong: an optional sign, then ASCII digits, no overflow. */
static bool parse_long(const char *p, size_t len, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	if (len && (p[0] == '-' || p[0] == '+')) {
		neg = p[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t v = 0;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		uint64_t d = (uint64_t)(p[i] - '0');
		if (v > (limit - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = neg ? (int64_t)(0 - v) : (int64_t)v;
	return true;
}

/* One piece "key=value[=...]" (String.split("=") with trailing empties dropped). */
static bool parse_piece(const char *p, size_t len, struct kv *out)
{
	const char *eq = memchr(p, '=', len);
	if (!eq)
		return false; /* ["key"]: kv[1] does not exist */
	const char *v = eq + 1;
	const char *end = p + len;
	const char *v_end = memchr(v, '=', (size_t)(end - v));
	if (!v_end)
		v_end = end;
	/* kv[1] exists only if something non-empty follows it or it is non-empty. */
	bool later = false;
	for (const char *c = v_end; c < end; c++)
		if (*c != '=')
			later = true;
	if (v_end == v && !later)
		return false; /* "key=" or "key==": trailing empties dropped, no kv[1] */
	out->key = p;
	out->key_len = (size_t)(eq - p);
	if (v_end == v) {
		out->value = -1;
		return true;
	}
	return parse_long(v, (size_t)(v_end - v), &out->value);
}

static int kv_cmp(const void *a, const void *b)
{
	const struct kv *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

static bool key_is(const struct kv *e, const char *k) { return e->key_len == strlen(k) && memcmp(e->key, k, e->key_len) == 0; }

static int format(int64_t count, int64_t bytes, const struct kv *extra, size_t extra_count, uint8_t **out,
		  int32_t *out_len)
{
	size_t cap = 64;
	for (size_t i = 0; i < extra_count; i++)
		cap += extra[i].key_len + 24;
	char *s = malloc(cap);
	if (!s)
		return -ENOMEM;
	size_t n = (size_t)snprintf(s, cap, "count=%" PRId64 ",bytes=%" PRId64, count, bytes);
	if (extra_count)
		s[n++] = '=';
	for (size_t i = 0; i < extra_count; i++) {
		s[n++] = ';';
		memcpy(s + n, extra[i].key, extra[i].key_len);
		n += extra[i].key_len;
		n += (size_t)snprintf(s + n, cap - n, "=%" PRId64, extra[i].value);
	}
	*out = (uint8_t *)s;
	*out_len = (int32_t)n;
	return 0;
}

int zk_stats_track_counts(int64_t count, int64_t bytes, uint8_t **out, int32_t *out_len)
{
	return format(count, bytes, NULL, 0, out, out_len);
}

int zk_stats_track_update(const uint8_t *data, int32_t len, int64_t count_diff, int64_t bytes_diff, uint8_t **out,
			  int32_t *out_len)
{
	const char *t = (const char *)data;
	size_t n = len > 0 ? (size_t)len : 0;
	/* Trailing separators make only trailing empty pieces: dropped. */
	while (n && is_sep(t[n - 1]))
		n--;
	size_t cap = 4, count = 0;
	for (size_t i = 0; i < n; i++)
		if (is_sep(t[i]))
			cap++;
	struct kv *kvs = malloc(cap * sizeof *kvs);
	if (!kvs)
		return -ENOMEM;
	int rc = 0;
	size_t i = 0;
	while (n && i <= n) {
		size_t j = i;
		while (j < n && !is_sep(t[j]))
			j++;
		struct kv e;
		if (!parse_piece(t + i, j - i, &e)) {
			rc = -EINVAL;
			break;
		}
		size_t k = 0;
		while (k < count && kv_cmp(&kvs[k], &e) != 0)
			k++;
		kvs[k] = e;
		if (k == count)
			count++;
		while (j < n && is_sep(t[j]))
			j++;
		if (j >= n)
			break;
		i = j;
	}
	if (rc == 0) {
		int64_t c = -1, b = -1;
		size_t extra = 0;
		for (size_t k = 0; k < count; k++) {
			if (key_is(&kvs[k], "count"))
				c = kvs[k].value;
			else if (key_is(&kvs[k], "bytes"))
				b = kvs[k].value;
			else
				kvs[extra++] = kvs[k];
		}
		qsort(kvs, extra, sizeof *kvs, kv_cmp);
		c = (int64_t)((uint64_t)c + (uint64_t)count_diff); /* Java long arithmetic wraps */
		b = (int64_t)((uint64_t)b + (uint64_t)bytes_diff);
		rc = format(c, b, kvs, extra, out, out_len);
	}
	free(kvs);
	return rc;
}
