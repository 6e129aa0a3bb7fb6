/*
 * store_quota.c — ZooKeeper 3.8.0's quota bookkeeping primitives: the set of quota
 * roots (DataTree's PathTrie), the text of zookeeper_limits / zookeeper_stats
 * (StatsTrack), and subtree counts (DataTree.getCounts). store_apply.c decides when
 * they run; see "Quotas" there.
 *
 * Thread: applier only. Nothing here is read by readers, so nothing here locks.
 *
 * Quota roots
 *   A root is a normalized path: the components of a path split on '/', dropping empty
 *   ones and those made only of bytes <= 0x20 (PathTrie.split drops t.trim().isEmpty()
 *   components), joined as "/c1/c2". "/" is never a member (PathTrie never reports its
 *   root node). The set is a chained hash table; store->quota.count == 0 is the
 *   common case and lets every write skip quota work.
 *
 * StatsTrack text (both node kinds)
 *   Parse: split on runs of ',' / ';'; a text made only of separators is empty, a
 *   leading separator is an error (Java's split keeps the leading empty piece, whose
 *   kv[1] throws); each piece "key=value[=...]" where value "" (as in "a==1") means -1
 *   and otherwise is a Java long ([+-]?digits, no overflow); a piece with no value
 *   ("a", "a=", "=") is an error. A repeated key keeps its last value; a missing key
 *   reads -1.
 *   Format: "count=C,bytes=B", then when other keys exist "=" and ";key=value" per key
 *   in ascending key order, e.g. "count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1".
 *   Known differences from Java: keys are compared as bytes (Java compares UTF-16
 *   units: only supplementary vs U+E000..U+FFFF keys order differently), invalid UTF-8
 *   in a key is kept as is (Java writes U+FFFD), and only ASCII digits are digits.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"

static void *quota_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q && n) {
		fprintf(stderr, "store: out of memory while applying a txn\n");
		abort();
	}
	return q;
}

/* ---------------------------------------------------------------- quota roots */

struct quota_root {
	struct quota_root *next;
	uint64_t hash;
	size_t len;
	char path[];
};

void store_quota_init(struct store *s)
{
	s->quota.mask = 15;
	s->quota.buckets = calloc(16, sizeof *s->quota.buckets);
	assert(s->quota.buckets);
	s->quota.count = 0;
}

void store_quota_destroy(struct store *s)
{
	for (size_t b = 0; b <= s->quota.mask; b++) {
		struct quota_root *r = s->quota.buckets[b];
		while (r) {
			struct quota_root *next = r->next;
			free(r);
			r = next;
		}
	}
	free(s->quota.buckets);
	s->quota.buckets = NULL;
}

size_t store_quota_normalize(const char *raw, size_t len, char *out)
{
	size_t o = 0;
	size_t i = 0;
	while (i < len) {
		while (i < len && raw[i] == '/')
			i++;
		size_t start = i;
		bool blank = true;
		while (i < len && raw[i] != '/') {
			if ((unsigned char)raw[i] > 0x20)
				blank = false;
			i++;
		}
		if (i == start || blank)
			continue;
		out[o++] = '/';
		memcpy(out + o, raw + start, i - start);
		o += i - start;
	}
	if (o == 0)
		out[o++] = '/';
	return o;
}

static struct quota_root **root_slot(struct store *s, const char *path, size_t len, uint64_t hash)
{
	struct quota_root **pp = &s->quota.buckets[hash & s->quota.mask];
	while (*pp && !((*pp)->hash == hash && (*pp)->len == len && memcmp((*pp)->path, path, len) == 0))
		pp = &(*pp)->next;
	return pp;
}

bool store_quota_root_has(struct store *s, const char *root, size_t len)
{
	if (s->quota.count == 0)
		return false;
	return *root_slot(s, root, len, store_hash_bytes(root, len)) != NULL;
}

bool store_quota_root_at(const struct store *s, size_t bucket, size_t k, const char **path, size_t *len)
{
	const struct quota_root *r = s->quota.buckets[bucket];
	while (r && k--)
		r = r->next;
	if (!r)
		return false;
	*path = r->path;
	*len = r->len;
	return true;
}

static void roots_grow(struct store *s)
{
	size_t count = (s->quota.mask + 1) * 2;
	struct quota_root **b = calloc(count, sizeof *b);
	if (!b)
		return; /* longer chains, still correct */
	for (size_t i = 0; i <= s->quota.mask; i++) {
		struct quota_root *r = s->quota.buckets[i];
		while (r) {
			struct quota_root *next = r->next;
			r->next = b[r->hash & (count - 1)];
			b[r->hash & (count - 1)] = r;
			r = next;
		}
	}
	free(s->quota.buckets);
	s->quota.buckets = b;
	s->quota.mask = count - 1;
}

void store_quota_root_set(struct store *s, const char *root, size_t len, bool member)
{
	assert(len > 1 && root[0] == '/');
	uint64_t hash = store_hash_bytes(root, len);
	struct quota_root **pp = root_slot(s, root, len, hash);
	if ((*pp != NULL) == member)
		return;
	if (!member) {
		struct quota_root *r = *pp;
		*pp = r->next;
		free(r);
		s->quota.count--;
		return;
	}
	struct quota_root *r = quota_xrealloc(NULL, sizeof *r + len);
	r->hash = hash;
	r->len = len;
	memcpy(r->path, root, len);
	r->next = NULL;
	*pp = r;
	s->quota.count++;
	if (s->quota.count > s->quota.mask + 1)
		roots_grow(s);
}

/* ---------------------------------------------------------------- StatsTrack text */

struct quota_pair {
	const char *key;
	size_t key_len;
	int64_t value;
	size_t seq; /* position in the text: the last of equal keys wins */
};

static bool is_separator(char ch)
{
	return ch == ',' || ch == ';';
}

/* Java's Long.parseLong on text[0..len) (ASCII digits only). */
static bool parse_long(const char *t, size_t len, int64_t *out)
{
	size_t i = 0;
	bool negative = false;
	if (len > 0 && (t[0] == '+' || t[0] == '-')) {
		negative = t[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	uint64_t limit = negative ? (uint64_t)INT64_MAX + 1u : (uint64_t)INT64_MAX;
	uint64_t v = 0;
	for (; i < len; i++) {
		if (t[i] < '0' || t[i] > '9')
			return false;
		uint64_t digit = (uint64_t)(t[i] - '0');
		if (v > (limit - digit) / 10)
			return false;
		v = v * 10 + digit;
	}
	*out = negative ? (int64_t)(0u - v) : (int64_t)v;
	return true;
}

/* One piece "key=value...": Java's piece.split("=") then kv[0], kv[1]. */
static bool parse_piece(const char *p, size_t len, struct quota_pair *out)
{
	const char *eq = memchr(p, '=', len);
	if (!eq)
		return false; /* kv has one element */
	const char *rest = eq + 1;
	size_t rest_len = len - (size_t)(rest - p);
	/* Trailing empty tokens vanish: kv[1] exists only if something follows but '='. */
	bool has_token = false;
	for (size_t i = 0; i < rest_len; i++)
		if (rest[i] != '=') {
			has_token = true;
			break;
		}
	if (!has_token)
		return false;
	const char *next_eq = memchr(rest, '=', rest_len);
	size_t value_len = next_eq ? (size_t)(next_eq - rest) : rest_len;
	out->key = p;
	out->key_len = (size_t)(eq - p);
	if (value_len == 0) {
		out->value = -1;
		return true;
	}
	return parse_long(rest, value_len, &out->value);
}

/*
 * Parses the whole text into pairs (malloc'd, caller frees; NULL when none).
 * Returns false when Java's StatsTrack(String) would throw.
 */
static bool pairs_parse(const char *t, size_t len, struct quota_pair **pairs, size_t *count)
{
	*pairs = NULL;
	*count = 0;
	size_t i = 0;
	while (i < len && is_separator(t[i]))
		i++;
	if (i == len)
		return true; /* empty, or separators only: no pairs */
	if (i > 0)
		return false; /* leading empty piece */
	size_t cap = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && !is_separator(t[i]))
			i++;
		struct quota_pair pr;
		if (!parse_piece(t + start, i - start, &pr)) {
			free(*pairs);
			*pairs = NULL;
			*count = 0;
			return false;
		}
		if (*count == cap) {
			cap = cap ? cap * 2 : 8;
			*pairs = quota_xrealloc(*pairs, cap * sizeof **pairs);
		}
		pr.seq = *count;
		(*pairs)[(*count)++] = pr;
		while (i < len && is_separator(t[i]))
			i++;
	}
	return true;
}

static bool key_is(const struct quota_pair *p, const char *key)
{
	size_t n = strlen(key);
	return p->key_len == n && memcmp(p->key, key, n) == 0;
}

bool store_quota_text_parse(const uint8_t *data, int32_t data_len, struct store_quota_text *out)
{
	out->count = out->bytes = out->count_hard_limit = out->byte_hard_limit = -1;
	if (data_len < 0)
		return false; /* null data: StatsTrack(byte[]) throws */
	struct quota_pair *pairs;
	size_t count;
	if (!pairs_parse((const char *)data, (size_t)data_len, &pairs, &count))
		return false;
	for (size_t i = 0; i < count; i++) {
		if (key_is(&pairs[i], "count"))
			out->count = pairs[i].value;
		else if (key_is(&pairs[i], "bytes"))
			out->bytes = pairs[i].value;
		else if (key_is(&pairs[i], "countHardLimit"))
			out->count_hard_limit = pairs[i].value;
		else if (key_is(&pairs[i], "byteHardLimit"))
			out->byte_hard_limit = pairs[i].value;
	}
	free(pairs);
	return true;
}

static int pair_cmp(const void *a, const void *b)
{
	const struct quota_pair *x = a, *y = b;
	size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
	int c = memcmp(x->key, y->key, n);
	if (c != 0)
		return c;
	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq ? 1 : 0;
}

static int64_t add_wrapping(int64_t a, int64_t b)
{
	return (int64_t)((uint64_t)a + (uint64_t)b); /* Java long arithmetic */
}

uint8_t *store_quota_stats_update(const uint8_t *data, int32_t data_len, int64_t count_diff, int64_t bytes_diff,
				  int32_t *out_len)
{
	if (data_len < 0)
		return NULL;
	struct quota_pair *pairs;
	size_t count;
	if (!pairs_parse((const char *)data, (size_t)data_len, &pairs, &count))
		return NULL;
	if (count > 1)
		qsort(pairs, count, sizeof *pairs, pair_cmp);
	int64_t stat_count = -1, stat_bytes = -1;
	size_t extra_bytes = 0, extra_count = 0;
	for (size_t i = 0; i < count; i++) {
		bool last_of_key = i + 1 == count || pairs[i + 1].key_len != pairs[i].key_len ||
				   memcmp(pairs[i + 1].key, pairs[i].key, pairs[i].key_len) != 0;
		if (!last_of_key) {
			pairs[i].key = NULL; /* superseded by a later value */
			continue;
		}
		if (key_is(&pairs[i], "count")) {
			stat_count = pairs[i].value;
			pairs[i].key = NULL;
		} else if (key_is(&pairs[i], "bytes")) {
			stat_bytes = pairs[i].value;
			pairs[i].key = NULL;
		} else {
			extra_bytes += pairs[i].key_len + 24; /* ";" key "=" value (<= 20) */
			extra_count++;
		}
	}
	stat_count = add_wrapping(stat_count, count_diff);
	stat_bytes = add_wrapping(stat_bytes, bytes_diff);
	size_t cap = 64 + extra_bytes;
	char *text = quota_xrealloc(NULL, cap);
	size_t len = (size_t)snprintf(text, cap, "count=%" PRId64 ",bytes=%" PRId64, stat_count, stat_bytes);
	if (extra_count > 0) {
		text[len++] = '=';
		for (size_t i = 0; i < count; i++) {
			if (!pairs[i].key)
				continue;
			text[len++] = ';';
			memcpy(text + len, pairs[i].key, pairs[i].key_len);
			len += pairs[i].key_len;
			len += (size_t)snprintf(text + len, cap - len, "=%" PRId64, pairs[i].value);
		}
	}
	assert(len < cap && len <= INT32_MAX);
	free(pairs);
	*out_len = (int32_t)len;
	return (uint8_t *)text;
}

/* ---------------------------------------------------------------- subtree counts */

void store_quota_subtree_counts(const struct znode *top, uint64_t *count, int64_t *bytes)
{
	*count = 0;
	*bytes = 0;
	if (!top)
		return;
	/* Depth-first with an explicit stack (no recursion): every node once. */
	size_t cap = 64, depth = 0;
	const struct znode **stack = quota_xrealloc(NULL, cap * sizeof *stack);
	stack[depth++] = top;
	while (depth > 0) {
		const struct znode *n = stack[--depth];
		*count += 1;
		*bytes += n->data_len > 0 ? n->data_len : 0;
		uint32_t children = store_node_child_count(n);
		if (depth + children > cap) {
			while (depth + children > cap)
				cap *= 2;
			stack = quota_xrealloc(stack, cap * sizeof *stack);
		}
		for (uint32_t i = 0; i < children; i++)
			stack[depth++] = store_dir_child(store_dir_of(n), i);
	}
	free(stack);
}
