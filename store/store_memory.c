/*
 * store_memory.c — where the tree's bytes go (store_memory_get), for snap-bench and
 * bench/RESULTS.md: every node's block and what it holds, the dirs, the path hash's
 * buckets and the ACL lists, as malloc_usable_size counts them.
 *
 * Thread: any; it locks every shard for the walk (seconds on a large tree).
 */
#include <malloc.h>
#include <string.h>

#include "store/store_impl.h"

static void node_count(const struct znode *n, struct store_memory *m)
{
	size_t owner = store_node_owner_block_size(n->kind);
	size_t block = store_nodemem_usable(store_node_ref(n), owner);
	m->nodes++;
	m->node_blocks += block;
	m->node_headers += offsetof(struct znode, path);
	m->owner_blocks += owner;
	m->paths += n->path_len;
	if (n->data_external)
		m->values_external += malloc_usable_size((void *)store_node_data(n));
	else if (n->data_len > 0)
		m->values_inline += (uint64_t)n->data_len;
	const struct znode_dir *d = store_dir_of(n);
	if (d) {
		m->dirs += malloc_usable_size((void *)d);
		m->child_slots += d->child_count * sizeof d->children[0];
	}
}

void store_memory_get(struct store *s, struct store_memory *out)
{
	memset(out, 0, sizeof *out);
	store_lock_all(s);
	for (unsigned i = 0; i < STORE_SHARDS; i++) {
		const struct shard *sh = &s->shards[i];
		out->buckets += malloc_usable_size(sh->buckets);
		for (size_t b = 0; b <= sh->bucket_mask; b++)
			for (const struct znode *n = store_node_at(sh->buckets[b]); n; n = store_node_at(n->hash_next))
				node_count(n, out);
	}
	store_unlock_all(s);
	out->acls = store_acl_table_bytes(s);
}
