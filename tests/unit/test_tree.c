/* Tests of the treap (core/tree.c): order, lookups, removal, and walks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/hash.h"
#include "core/tree.h"

enum { ITEMS = 1000 };

struct item {
	struct tree_node link;
	uint64_t key;
};

static uint64_t key_of(const struct tree_node *n)
{
	return TREE_ENTRY(n, const struct item, link)->key;
}

static int cmp_items(const struct tree_node *a, const struct tree_node *b)
{
	uint64_t x = key_of(a), y = key_of(b);
	return x < y ? -1 : x > y;
}

static uint64_t prio_item(const struct tree_node *a)
{
	return hash_mix64(key_of(a));
}

/* Keys 10, 20, ..., 10 * ITEMS, inserted in a scrambled order. */
static void fill(struct tree *t, struct item *items)
{
	tree_init(t, cmp_items, prio_item);
	for (size_t i = 0; i < ITEMS; i++) {
		size_t j = (i * 7919) % ITEMS; /* 7919 is prime: a permutation */
		items[j].key = 10 * (j + 1);
		tree_insert(t, &items[j].link);
	}
}

struct seen {
	uint64_t keys[ITEMS];
	size_t count;
	size_t stop_after; /* 0: never */
};

static int record(void *arg, struct tree_node *n)
{
	struct seen *s = arg;
	s->keys[s->count++] = key_of(n);
	return s->stop_after && s->count == s->stop_after ? 42 : 0;
}

static void test_tree_walk_visits_all_in_order(void **state)
{
	static struct item items[ITEMS];
	static struct seen seen;
	struct tree t;

	fill(&t, items);
	seen.count = 0;
	assert_int_equal(tree_walk(&t, NULL, record, &seen), 0);
	assert_int_equal(seen.count, ITEMS);
	for (size_t i = 0; i < ITEMS; i++)
		assert_int_equal(seen.keys[i], 10 * (i + 1));
}

static void test_tree_walk_from_bounds(void **state)
{
	static struct item items[ITEMS];
	static struct seen seen;
	struct tree t;
	struct item probe;
	/* below the first, on a key, between keys, the last, past the last */
	const uint64_t from[] = {0, 500, 505, 10 * ITEMS, 10 * ITEMS + 1};
	const size_t first[] = {10, 500, 510, 10 * ITEMS, 0};

	fill(&t, items);
	for (size_t k = 0; k < sizeof from / sizeof from[0]; k++) {
		size_t want = first[k] ? ITEMS - first[k] / 10 + 1 : 0;
		probe.key = from[k];
		seen.count = 0;
		seen.stop_after = 0;
		assert_int_equal(tree_walk(&t, &probe.link, record, &seen), 0);
		assert_int_equal(seen.count, want);
		for (size_t i = 0; i < seen.count; i++)
			assert_int_equal(seen.keys[i], first[k] + 10 * i);
	}
}

static void test_tree_walk_stops_when_told(void **state)
{
	static struct item items[ITEMS];
	static struct seen seen;
	struct tree t;
	struct item probe = {.key = 15};

	fill(&t, items);
	seen.count = 0;
	seen.stop_after = 3;
	assert_int_equal(tree_walk(&t, &probe.link, record, &seen), 42);
	assert_int_equal(seen.count, 3);
	assert_int_equal(seen.keys[0], 20);
	assert_int_equal(seen.keys[2], 40);
}

static void test_tree_walk_empty_and_after_removals(void **state)
{
	static struct item items[ITEMS];
	static struct seen seen;
	struct tree t;

	tree_init(&t, cmp_items, prio_item);
	seen.count = 0;
	seen.stop_after = 0;
	assert_int_equal(tree_walk(&t, NULL, record, &seen), 0);
	assert_int_equal(seen.count, 0);

	fill(&t, items);
	for (size_t i = 0; i < ITEMS; i += 2)
		tree_remove(&t, &items[i].link); /* keys 10, 30, 50, ... */
	assert_int_equal(t.count, ITEMS / 2);
	assert_null(tree_find(&t, &items[0].link));
	assert_ptr_equal(tree_find(&t, &items[1].link), &items[1].link);
	assert_ptr_equal(tree_ceil(&t, &items[2].link), &items[3].link);
	assert_ptr_equal(tree_next(&t, &items[2].link), &items[3].link);
	assert_ptr_equal(tree_first(&t), &items[1].link);
	seen.count = 0;
	assert_int_equal(tree_walk(&t, NULL, record, &seen), 0);
	assert_int_equal(seen.count, ITEMS / 2);
	for (size_t i = 0; i < seen.count; i++)
		assert_int_equal(seen.keys[i], 20 * (i + 1));
}

/* The same shape, node for node, in two trees of equal keys. */
static void same_shape(const struct tree_node *a, const struct tree_node *b)
{
	if (!a || !b) {
		assert_true(a == NULL && b == NULL);
		return;
	}
	assert_int_equal(key_of(a), key_of(b));
	same_shape(a->left, b->left);
	same_shape(a->right, b->right);
}

static void test_tree_build_gives_the_shape_of_inserts(void **state)
{
	static struct item a[ITEMS], b[ITEMS];
	static struct tree_node *sorted[ITEMS];
	struct tree ta, tb;
	size_t sizes[] = {0, 1, 2, 3, 17, ITEMS};

	(void)state;
	for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
		size_t n = sizes[k];
		tree_init(&ta, cmp_items, prio_item);
		tree_init(&tb, cmp_items, prio_item);
		for (size_t i = 0; i < n; i++) {
			size_t j = (i * 7919) % n;
			a[j].key = b[j].key = 3 * (j + 1);
			tree_insert(&ta, &a[j].link);
		}
		for (size_t i = 0; i < n; i++)
			sorted[i] = &b[i].link;
		tree_build(&tb, sorted, n);
		assert_int_equal(tb.count, n);
		same_shape(ta.root, tb.root);
		/* and it goes on as a tree */
		if (n > 2) {
			tree_remove(&tb, &b[n / 2].link);
			assert_null(tree_find(&tb, &b[n / 2].link));
			assert_ptr_equal(tree_next(&tb, &b[n / 2].link),
					 &b[n / 2 + 1].link);
		}
	}
}

/* The insert before issue 18's, kept here as the model: recursive, each
 * level of the path asked on the way back whether its child rose above it. */
static uint64_t (*model_prio)(const struct tree_node *);

static int model_above(const struct tree_node *a, const struct tree_node *b)
{
	uint64_t pa = model_prio(a), pb = model_prio(b);
	if (pa != pb)
		return pa > pb;
	return cmp_items(a, b) < 0;
}

static struct tree_node *model_insert(struct tree_node *root, struct tree_node *n)
{
	if (!root)
		return n;
	if (cmp_items(n, root) < 0) {
		root->left = model_insert(root->left, n);
		if (model_above(root->left, root)) {
			struct tree_node *l = root->left;
			root->left = l->right;
			l->right = root;
			return l;
		}
	} else {
		root->right = model_insert(root->right, n);
		if (model_above(root->right, root)) {
			struct tree_node *r = root->right;
			root->right = r->left;
			r->left = root;
			return r;
		}
	}
	return root;
}

/* Priorities that tie often (a quarter of the keys share each), so that
 * the key tie-break decides many rotations. */
static uint64_t prio_few(const struct tree_node *a)
{
	return hash_mix64(key_of(a) % 4);
}

static size_t prio_calls;

static uint64_t prio_counted(const struct tree_node *a)
{
	prio_calls++;
	return prio_item(a);
}

/* tree_insert (rotating the new node up from its leaf) gives, after every
 * insert and removal, the shape of the recursive insert, with distinct and
 * with tied priorities, in ascending, descending and scrambled orders. */
static void test_tree_insert_gives_the_model_shape(void **state)
{
	static struct item a[ITEMS], b[ITEMS];
	uint64_t (*prios[])(const struct tree_node *) = {prio_item, prio_few};

	(void)state;
	for (size_t p = 0; p < 2; p++) {
		for (size_t order = 0; order < 3; order++) {
			struct tree ta;
			struct tree_node *model = NULL;
			tree_init(&ta, cmp_items, prios[p]);
			model_prio = prios[p];
			for (size_t i = 0; i < ITEMS; i++) {
				size_t j = order == 0	? i
					   : order == 1 ? ITEMS - 1 - i
							: (i * 7919) % ITEMS;
				a[j].key = b[j].key = 5 * (j + 1);
				b[j].link.left = b[j].link.right = NULL;
				tree_insert(&ta, &a[j].link);
				model = model_insert(model, &b[j].link);
				same_shape(ta.root, model);
				/* now and then one goes, and comes back */
				if (i % 97 == 96) {
					size_t k = (i * 31) % (i + 1);
					size_t kk = order == 0	 ? k
						    : order == 1 ? ITEMS - 1 - k
								 : (k * 7919) % ITEMS;
					struct tree tb = {model, cmp_items, prios[p],
							  i + 1};
					tree_remove(&ta, &a[kk].link);
					tree_remove(&tb, &b[kk].link);
					same_shape(ta.root, tb.root);
					tree_insert(&ta, &a[kk].link);
					b[kk].link.left = b[kk].link.right = NULL;
					model = model_insert(tb.root, &b[kk].link);
					same_shape(ta.root, model);
				}
			}
			assert_int_equal(ta.count, ITEMS);
		}
	}
}

/* An insert asks for the new node's priority once and one more per level it
 * rises or stops under: about four a node in all, where the recursive
 * insert asked two per level of the path (about 40 a node at 1,000). */
static void test_tree_insert_asks_few_priorities(void **state)
{
	static struct item a[ITEMS];
	struct tree t;

	(void)state;
	tree_init(&t, cmp_items, prio_counted);
	prio_calls = 0;
	for (size_t i = 0; i < ITEMS; i++) {
		size_t j = (i * 7919) % ITEMS;
		a[j].key = 10 * (j + 1);
		tree_insert(&t, &a[j].link);
	}
	assert_true(prio_calls <= 5 * ITEMS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree_walk_visits_all_in_order),
		cmocka_unit_test(test_tree_walk_from_bounds),
		cmocka_unit_test(test_tree_walk_stops_when_told),
		cmocka_unit_test(test_tree_walk_empty_and_after_removals),
		cmocka_unit_test(test_tree_build_gives_the_shape_of_inserts),
		cmocka_unit_test(test_tree_insert_gives_the_model_shape),
		cmocka_unit_test(test_tree_insert_asks_few_priorities),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
