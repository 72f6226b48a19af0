/* tree: an intrusive ordered set (a treap whose priorities are a hash of the
 * key, so its shape depends only on the keys: deterministic, no randomness).
 * The store keeps every table and index in trees, so that iteration follows
 * a defined key order, never pointer order. Callers embed a struct tree_node
 * in their objects and own them; the tree only links them. */
#ifndef CS_TREE_H
#define CS_TREE_H

#include <stddef.h>
#include <stdint.h>

struct tree_node {
	struct tree_node *left;
	struct tree_node *right;
};

/* cmp returns <0, 0, >0: a total order on keys. prio returns the key's
 * priority (a hash of the key, the same every time for the same key). */
typedef int (*tree_cmp_fn)(const struct tree_node *a, const struct tree_node *b);
typedef uint64_t (*tree_prio_fn)(const struct tree_node *a);

struct tree {
	struct tree_node *root;
	tree_cmp_fn cmp;
	tree_prio_fn prio;
	size_t count;
};

#define TREE_ENTRY(ptr, type, member) \
	((type *)(void *)((char *)(ptr)-offsetof(type, member)))

void tree_init(struct tree *t, tree_cmp_fn cmp, tree_prio_fn prio);

/* tree_insert links n, whose key must not be in t yet. */
void tree_insert(struct tree *t, struct tree_node *n);

/* tree_remove unlinks n, which must be in t. */
void tree_remove(struct tree *t, struct tree_node *n);

/* tree_build links the n nodes of sorted (strictly ascending keys, none
 * in a tree) as the whole of t, in O(n): the shape tree_insert of each
 * would give (a treap's shape depends on its keys alone). Uses sorted as
 * scratch: its content is undefined after. */
void tree_build(struct tree *t, struct tree_node **sorted, size_t n);

/* tree_find returns the node with key equal to probe's, or NULL. probe is
 * any node carrying a key (often a stack object). */
struct tree_node *tree_find(const struct tree *t, const struct tree_node *probe);

/* tree_ceil returns the first node with key >= probe's, or NULL. */
struct tree_node *tree_ceil(const struct tree *t, const struct tree_node *probe);

/* tree_next returns the first node with key > n's, or NULL. n need not be
 * in the tree any more: iteration survives removals. */
struct tree_node *tree_next(const struct tree *t, const struct tree_node *n);

/* tree_first returns the smallest node, or NULL. */
struct tree_node *tree_first(const struct tree *t);

/* tree_walk calls fn(arg, n) on every node n with key >= from's (every node
 * when from is NULL), in key order, until fn returns nonzero; returns that
 * value, or 0. fn must not change t. Each node is visited once, so a whole
 * walk costs O(count), where tree_next from each node costs O(log count)
 * compares apiece. */
typedef int (*tree_visit_fn)(void *arg, struct tree_node *n);
int tree_walk(const struct tree *t, const struct tree_node *from, tree_visit_fn fn,
	      void *arg);

#endif
