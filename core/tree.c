#include "core/tree.h"

#include <assert.h>
#include <stdbool.h>

void tree_init(struct tree *t, tree_cmp_fn cmp, tree_prio_fn prio)
{
	t->root = NULL;
	t->cmp = cmp;
	t->prio = prio;
	t->count = 0;
}

/* Priority order with a key tie-break, so that equal hashes still give one
 * shape. */
static bool tree_above(const struct tree *t, const struct tree_node *a,
		       const struct tree_node *b)
{
	uint64_t pa = t->prio(a), pb = t->prio(b);
	if (pa != pb)
		return pa > pb;
	return t->cmp(a, b) < 0;
}

/* The recursive insert (the path's links on the C stack), for a path
 * past TREE_DEPTH_MAX levels only: never in practice, a treap of hashed
 * priorities being about 2 ln(count) deep. */
static struct tree_node *tree_insert_at(struct tree *t, struct tree_node *root,
					struct tree_node *n)
{
	int c;
	if (!root)
		return n;
	c = t->cmp(n, root);
	assert(c != 0);
	if (c < 0) {
		root->left = tree_insert_at(t, root->left, n);
		if (tree_above(t, root->left, root)) {
			struct tree_node *l = root->left;
			root->left = l->right;
			l->right = root;
			return l;
		}
	} else {
		root->right = tree_insert_at(t, root->right, n);
		if (tree_above(t, root->right, root)) {
			struct tree_node *r = root->right;
			root->right = r->left;
			r->left = root;
			return r;
		}
	}
	return root;
}

enum { TREE_DEPTH_MAX = 96 };

/* Links n as a leaf, then rotates it up while it is above its parent
 * (issue 18): the recursive insert asked two priorities at every level of
 * the path on its way back, where only the levels n rises through and the
 * one it stops under can rotate (every other parent was above its child
 * before n came). The same shape, a treap's depending on its keys alone;
 * n's priority is asked once, and one more per level it rises. */
void tree_insert(struct tree *t, struct tree_node *n)
{
	struct tree_node **path[TREE_DEPTH_MAX], **link = &t->root;
	size_t depth = 0;
	uint64_t pn;

	n->left = n->right = NULL;
	while (*link) {
		int c = t->cmp(n, *link);
		assert(c != 0);
		if (depth == TREE_DEPTH_MAX) {
			t->root = tree_insert_at(t, t->root, n);
			t->count++;
			return;
		}
		path[depth++] = link;
		link = c < 0 ? &(*link)->left : &(*link)->right;
	}
	*link = n;
	t->count++;
	pn = t->prio(n);
	while (depth > 0) {
		struct tree_node **up = path[--depth], *p = *up;
		uint64_t pp = t->prio(p);
		/* tree_above(t, n, p), false: p stays above n, and so does
		 * every node above p */
		if (pn != pp ? pn < pp : t->cmp(n, p) > 0)
			break;
		if (p->left == n) {
			p->left = n->right;
			n->right = p;
		} else {
			assert(p->right == n);
			p->right = n->left;
			n->left = p;
		}
		*up = n;
	}
}

/* Joins two treaps where every key of a is below every key of b. */
static struct tree_node *tree_join(const struct tree *t, struct tree_node *a,
				   struct tree_node *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (tree_above(t, a, b)) {
		a->right = tree_join(t, a->right, b);
		return a;
	}
	b->left = tree_join(t, a, b->left);
	return b;
}

void tree_remove(struct tree *t, struct tree_node *n)
{
	struct tree_node **link = &t->root;
	while (*link != n) {
		assert(*link != NULL);
		link = t->cmp(n, *link) < 0 ? &(*link)->left : &(*link)->right;
	}
	*link = tree_join(t, n->left, n->right);
	n->left = n->right = NULL;
	assert(t->count > 0);
	t->count--;
}

void tree_build(struct tree *t, struct tree_node **sorted, size_t n)
{
	size_t top = 0; /* sorted[0, top): the right spine, root first */

	for (size_t i = 0; i < n; i++) {
		struct tree_node *x = sorted[i], *last = NULL;
		assert(i == 0 || t->cmp(sorted[top - 1], x) < 0);
		x->left = x->right = NULL;
		while (top > 0 && tree_above(t, x, sorted[top - 1]))
			last = sorted[--top];
		x->left = last;
		if (top > 0)
			sorted[top - 1]->right = x;
		sorted[top++] = x; /* top <= i + 1: only read slots are written */
	}
	t->root = top > 0 ? sorted[0] : NULL;
	t->count = n;
}

struct tree_node *tree_find(const struct tree *t, const struct tree_node *probe)
{
	struct tree_node *n = t->root;
	while (n) {
		int c = t->cmp(probe, n);
		if (c == 0)
			return n;
		n = c < 0 ? n->left : n->right;
	}
	return NULL;
}

struct tree_node *tree_ceil(const struct tree *t, const struct tree_node *probe)
{
	struct tree_node *n = t->root, *best = NULL;
	while (n) {
		int c = t->cmp(probe, n);
		if (c == 0)
			return n;
		if (c < 0) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

struct tree_node *tree_next(const struct tree *t, const struct tree_node *after)
{
	struct tree_node *n = t->root, *best = NULL;
	while (n) {
		if (t->cmp(after, n) < 0) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

struct tree_node *tree_first(const struct tree *t)
{
	struct tree_node *n = t->root;
	if (!n)
		return NULL;
	while (n->left)
		n = n->left;
	return n;
}

/* Walks the subtree at n (in order); from, when not NULL, is a lower bound
 * that may cut it. Recurses on left children only: the right spine is the
 * loop. */
static int tree_walk_at(const struct tree *t, struct tree_node *n,
			const struct tree_node *from, tree_visit_fn fn, void *arg)
{
	while (n) {
		int rv;
		if (from && t->cmp(from, n) > 0) {
			n = n->right; /* n and its left are below from */
			continue;
		}
		if ((rv = tree_walk_at(t, n->left, from, fn, arg)) != 0 ||
		    (rv = fn(arg, n)) != 0)
			return rv;
		n = n->right;
		from = NULL; /* everything right of n is above n >= from */
	}
	return 0;
}

int tree_walk(const struct tree *t, const struct tree_node *from, tree_visit_fn fn,
	      void *arg)
{
	return tree_walk_at(t, t->root, from, fn, arg);
}
