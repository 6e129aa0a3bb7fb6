/*
 * store_acl.c — ACL validation, fix-up, permission checks, and path validation.
 *
 * Semantics follow ZooKeeper 3.8 (PrepRequestProcessor.fixupACL, ZooKeeperServer.checkACL,
 * the digest and ip providers, PathUtils.validatePath):
 *   - fixup: duplicates removed keeping first occurrences; empty list -> INVALIDACL;
 *     world must be "anyone"; `auth` expands to every authenticated id of the caller
 *     (digest, sasl, x509; not ip), none -> INVALIDACL; digest ids must split on ':'
 *     into exactly two fields the way Java's String.split does (trailing empty fields
 *     dropped); ip ids are an IPv4/IPv6 address with an optional /bits; any other
 *     scheme -> INVALIDACL.
 *   - check: empty ACL or super -> allow; an entry grants when (perms & wanted) != 0
 *     and it is world:anyone or a caller id of the same scheme matches it (ip by
 *     address/CIDR, everything else by exact string).
 * Thread: any; everything here is pure over its arguments.
 */
#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "core/zk_proto.h"
#include "store/store_impl.h"

static struct acl_entry acl_open_entry = { ZK_PERM_ALL, 5, 6, "world", "anyone" };
const struct acl_list store_acl_open = { 1, &acl_open_entry };

static bool bytes_is(const uint8_t *p, size_t len, const char *s)
{
	size_t n = strlen(s);
	return len == n && memcmp(p, s, n) == 0;
}

static bool jb_is(struct jute_bytes b, const char *s)
{
	return b.len >= 0 && bytes_is(b.data, (size_t)b.len, s);
}

/* Java's String.split(":").length == 2 for the digest provider's isValid. */
static bool digest_id_valid(const uint8_t *p, size_t len)
{
	/* Drop trailing empty fields (trailing ':' characters), then count fields. */
	while (len > 0 && p[len - 1] == ':')
		len--;
	if (len == 0)
		return false; /* "" -> [""] (1 field), ":" -> [] (0 fields) */
	size_t colons = 0;
	for (size_t i = 0; i < len; i++)
		colons += p[i] == ':';
	return colons == 1;
}

/* Java Integer.parseInt over [p, p+len): optional sign, decimal digits, int range. */
static bool java_parse_int(const uint8_t *p, size_t len, long *out)
{
	size_t i = 0;
	bool neg = false;
	if (len == 0)
		return false;
	if (p[0] == '+' || p[0] == '-') {
		neg = p[0] == '-';
		i = 1;
		if (len == 1)
			return false;
	}
	long v = 0;
	for (; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
		if (v > 2147483648L)
			return false;
	}
	if (neg)
		v = -v;
	if (v > 2147483647L)
		return false;
	*out = v;
	return true;
}

/* Address text to bytes (4 or 16); returns the length or 0 when invalid. */
static size_t ip_addr_bytes(const uint8_t *p, size_t len, uint8_t out[16])
{
	bool has_colon = memchr(p, ':', len) != NULL;
	if (!has_colon) {
		/* IPv4 the way ZooKeeper parses it: 4 dot-separated Integer.parseInt parts. */
		size_t part = 0, start = 0;
		for (size_t i = 0; i <= len; i++) {
			if (i < len && p[i] != '.')
				continue;
			long v;
			if (part >= 4 || !java_parse_int(p + start, i - start, &v) || v < 0 || v > 255)
				return 0;
			out[part++] = (uint8_t)v;
			start = i + 1;
		}
		return part == 4 ? 4 : 0;
	}
	char buf[64];
	if (len >= sizeof buf)
		return 0;
	memcpy(buf, p, len);
	buf[len] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1 ? 16 : 0;
}

/* Splits "addr[/bits]"; returns address length (0 = invalid) and *bits (default full). */
static size_t ip_acl_parse(const uint8_t *p, size_t len, uint8_t addr[16], long *bits)
{
	const uint8_t *slash = memchr(p, '/', len);
	size_t addr_len = slash ? (size_t)(slash - p) : len;
	size_t n = ip_addr_bytes(p, addr_len, addr);
	if (!n)
		return 0;
	*bits = (long)n * 8;
	if (slash) {
		if (!java_parse_int(slash + 1, len - addr_len - 1, bits) || *bits < 0 || *bits > (long)n * 8)
			return 0;
	}
	return n;
}

static bool ip_matches(const char *acl_id, size_t acl_len, const uint8_t *caller, size_t caller_len)
{
	uint8_t a[16], c[16];
	long bits;
	size_t n = ip_acl_parse((const uint8_t *)acl_id, acl_len, a, &bits);
	if (!n || ip_addr_bytes(caller, caller_len, c) != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		long take = bits - (long)i * 8;
		if (take <= 0)
			break;
		uint8_t mask = take >= 8 ? 0xff : (uint8_t)(0xff << (8 - take));
		if ((a[i] & mask) != (c[i] & mask))
			return false;
	}
	return true;
}

static bool scheme_authenticated(struct jute_bytes scheme)
{
	return jb_is(scheme, "digest") || jb_is(scheme, "sasl") || jb_is(scheme, "x509");
}

static bool acl_same(const struct zk_acl *a, const struct zk_acl *b)
{
	return a->perms == b->perms && a->id.scheme.len == b->id.scheme.len && a->id.id.len == b->id.id.len &&
	       (a->id.scheme.len <= 0 || memcmp(a->id.scheme.data, b->id.scheme.data, (size_t)a->id.scheme.len) == 0) &&
	       (a->id.id.len <= 0 || memcmp(a->id.id.data, b->id.id.data, (size_t)a->id.id.len) == 0);
}

struct acl_list *store_acl_copy(const struct acl_entry *entries, uint32_t count)
{
	if (count == 1 && entries[0].perms == ZK_PERM_ALL && bytes_is((const uint8_t *)entries[0].scheme,
									  entries[0].scheme_len, "world") &&
	    bytes_is((const uint8_t *)entries[0].id, entries[0].id_len, "anyone"))
		return (struct acl_list *)&store_acl_open;
	size_t bytes = 0;
	for (uint32_t i = 0; i < count; i++)
		bytes += (size_t)entries[i].scheme_len + entries[i].id_len;
	struct acl_list *l = malloc(sizeof *l + count * sizeof(struct acl_entry) + bytes);
	if (!l)
		return NULL;
	l->count = count;
	l->entries = (struct acl_entry *)(l + 1);
	char *str = (char *)(l->entries + count);
	for (uint32_t i = 0; i < count; i++) {
		struct acl_entry *e = &l->entries[i];
		*e = entries[i];
		memcpy(str, entries[i].scheme, e->scheme_len);
		e->scheme = str;
		str += e->scheme_len;
		memcpy(str, entries[i].id, e->id_len);
		e->id = str;
		str += e->id_len;
	}
	return l;
}

void store_acl_free(struct acl_list *acl)
{
	if (acl && acl != &store_acl_open)
		free(acl);
}

int32_t store_acl_fixup(const struct zk_acl *acls, int32_t count, const struct store_auth *auth,
			struct acl_list **out)
{
	*out = NULL;
	if (count <= 0 || count > STORE_ACL_ENTRIES_MAX)
		return ZK_INVALIDACL;
	/* Output entries: each input gives one, except `auth`, which gives one per caller id. */
	int auth_ids = auth ? auth->ids_count : 0;
	size_t cap = (size_t)count * (size_t)(auth_ids > 1 ? auth_ids : 1);
	struct zk_acl *res = malloc(cap * sizeof *res);
	if (!res)
		return ZK_SYSTEMERROR;
	size_t n = 0, bytes = 0;
	int32_t rc = ZK_OK;
	for (int32_t i = 0; i < count; i++) {
		const struct zk_acl *a = &acls[i];
		bool dup = false;
		for (int32_t j = 0; j < i && !dup; j++)
			dup = acl_same(&acls[j], a);
		if (dup)
			continue;
		/* kazoo sends the `auth` scheme's empty id as jute null */
		if (a->id.scheme.len < 0 || (a->id.id.len < 0 && !jb_is(a->id.scheme, "auth"))) {
			rc = ZK_INVALIDACL;
			break;
		}
		if (jb_is(a->id.scheme, "world") && jb_is(a->id.id, "anyone")) {
			res[n++] = *a;
		} else if (jb_is(a->id.scheme, "auth")) {
			bool any = false;
			for (int k = 0; k < auth_ids; k++) {
				if (!scheme_authenticated(auth->ids[k].scheme))
					continue;
				any = true;
				res[n].perms = a->perms;
				res[n].id = auth->ids[k];
				n++;
			}
			if (!any) {
				rc = ZK_INVALIDACL;
				break;
			}
		} else if (jb_is(a->id.scheme, "digest")) {
			if (!digest_id_valid(a->id.id.data, (size_t)a->id.id.len)) {
				rc = ZK_INVALIDACL;
				break;
			}
			res[n++] = *a;
		} else if (jb_is(a->id.scheme, "ip")) {
			uint8_t addr[16];
			long bits;
			if (!ip_acl_parse(a->id.id.data, (size_t)a->id.id.len, addr, &bits)) {
				rc = ZK_INVALIDACL;
				break;
			}
			res[n++] = *a;
		} else {
			rc = ZK_INVALIDACL;
			break;
		}
	}
	if (rc != ZK_OK) {
		free(res);
		return rc;
	}
	assert(n > 0 && n <= cap);
	if (n == 1 && res[0].perms == ZK_PERM_ALL && jb_is(res[0].id.scheme, "world") && jb_is(res[0].id.id, "anyone")) {
		free(res);
		*out = (struct acl_list *)&store_acl_open;
		return ZK_OK;
	}
	for (size_t i = 0; i < n; i++)
		bytes += (size_t)res[i].id.scheme.len + (size_t)res[i].id.id.len;
	struct acl_list *l = malloc(sizeof *l + n * sizeof(struct acl_entry) + bytes);
	if (!l) {
		free(res);
		return ZK_SYSTEMERROR;
	}
	l->count = (uint32_t)n;
	l->entries = (struct acl_entry *)(l + 1);
	char *str = (char *)(l->entries + n);
	for (size_t i = 0; i < n; i++) {
		struct acl_entry *e = &l->entries[i];
		e->perms = res[i].perms;
		e->scheme_len = (uint32_t)res[i].id.scheme.len;
		e->id_len = (uint32_t)res[i].id.id.len;
		e->scheme = str;
		if (e->scheme_len)
			memcpy(str, res[i].id.scheme.data, e->scheme_len);
		str += e->scheme_len;
		e->id = str;
		if (e->id_len)
			memcpy(str, res[i].id.id.data, e->id_len);
		str += e->id_len;
	}
	free(res);
	*out = l;
	return ZK_OK;
}

bool store_acl_permits(const struct acl_list *acl, int32_t perm, const struct store_auth *auth)
{
	if (!acl || acl->count == 0)
		return true;
	if (auth) {
		if (auth->super)
			return true;
		for (int k = 0; k < auth->ids_count; k++)
			if (jb_is(auth->ids[k].scheme, "super"))
				return true;
	}
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		if (!(e->perms & perm))
			continue;
		if (bytes_is((const uint8_t *)e->scheme, e->scheme_len, "world") &&
		    bytes_is((const uint8_t *)e->id, e->id_len, "anyone"))
			return true;
		if (!auth)
			continue;
		bool is_ip = bytes_is((const uint8_t *)e->scheme, e->scheme_len, "ip");
		for (int k = 0; k < auth->ids_count; k++) {
			const struct zk_id *id = &auth->ids[k];
			if (id->scheme.len != (int32_t)e->scheme_len || id->id.len < 0 ||
			    memcmp(id->scheme.data, e->scheme, e->scheme_len) != 0)
				continue;
			if (is_ip) {
				if (ip_matches(e->id, e->id_len, id->id.data, (size_t)id->id.len))
					return true;
			} else if ((uint32_t)id->id.len == e->id_len && memcmp(id->id.data, e->id, e->id_len) == 0) {
				return true;
			}
		}
	}
	return false;
}

void store_acl_write(struct jute_writer *w, const struct acl_list *acl, bool mask_digest)
{
	jute_write_int(w, (int32_t)acl->count);
	for (uint32_t i = 0; i < acl->count; i++) {
		const struct acl_entry *e = &acl->entries[i];
		jute_write_int(w, e->perms);
		jute_write_string(w, e->scheme, (int32_t)e->scheme_len);
		const char *colon = NULL;
		if (mask_digest && bytes_is((const uint8_t *)e->scheme, e->scheme_len, "digest"))
			colon = memchr(e->id, ':', e->id_len);
		if (colon) {
			/* Java: id.replaceAll(":.*", ":x") */
			size_t keep = (size_t)(colon - e->id);
			jute_write_int(w, (int32_t)(keep + 2));
			jute_write_raw(w, e->id, keep);
			jute_write_raw(w, ":x", 2);
		} else {
			jute_write_string(w, e->id, (int32_t)e->id_len);
		}
	}
}

/*
 * Decodes one UTF-8 code point at p[0..len). Returns its byte length, 0 when the
 * sequence is malformed (Java's decoder would substitute U+FFFD, which is invalid in
 * a path anyway): overlong forms, surrogates, and values above U+10FFFF.
 */
static size_t utf8_decode(const uint8_t *p, size_t len, uint32_t *cp)
{
	uint8_t b = p[0];
	size_t n;
	uint32_t v, min;
	if (b < 0x80) {
		*cp = b;
		return 1;
	} else if ((b & 0xe0) == 0xc0) {
		n = 2, v = b & 0x1f, min = 0x80;
	} else if ((b & 0xf0) == 0xe0) {
		n = 3, v = b & 0x0f, min = 0x800;
	} else if ((b & 0xf8) == 0xf0) {
		n = 4, v = b & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return n;
}

bool store_path_valid(const char *path, size_t len)
{
	const uint8_t *p = (const uint8_t *)path;
	if (!path || len == 0 || p[0] != '/')
		return false;
	if (len == 1)
		return true;
	if (p[len - 1] == '/')
		return false;
	uint32_t last = '/', before_last = 0;
	size_t i = 1;
	while (i < len) {
		uint32_t c;
		size_t n = utf8_decode(p + i, len - i, &c);
		if (n == 0)
			return false;
		/* '/' never occurs inside a multi-byte sequence, so peeking one byte is exact. */
		bool end_or_slash = i + n == len || p[i + n] == '/';
		if (c == 0)
			return false;
		if (c == '/' && last == '/')
			return false;
		if (c == '.' && last == '.') {
			if (before_last == '/' && end_or_slash)
				return false;
		} else if (c == '.') {
			if (last == '/' && end_or_slash)
				return false;
		} else if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || (c >= 0xd800 && c <= 0xf8ff) || c >= 0xfff0) {
			/* c >= 0xfff0 also covers every non-BMP code point: Java sees surrogates. */
			return false;
		}
		before_last = last;
		last = c;
		i += n;
	}
	return true;
}
