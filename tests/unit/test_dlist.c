/* Tests of net/dlist.h: DLIST_PUSH and DLIST_UNLINK (a list by its head),
 * DQUEUE_APPEND and DQUEUE_UNLINK (a queue by its head and tail, links
 * named by the caller): the order walked both ways after every unlink of
 * a first, a middle and a last item, and an item in a list and a queue at
 * once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "net/dlist.h"

#define ITEMS 5

struct item {
	int id;
	struct item *prev, *next;     /* a dlist */
	struct item *q_prev, *q_next; /* a queue */
};

/* The ids of the list at head, forward, then checked backward from the
 * last (its prev links); returns the count. */
static size_t walk_list(const struct item *head, int *ids)
{
	const struct item *last = NULL;
	size_t n = 0;

	for (const struct item *i = head; i; i = i->next) {
		assert_true(i->prev == last);
		ids[n++] = i->id;
		last = i;
	}
	for (size_t k = n; k > 0; k--, last = last->prev)
		assert_int_equal(last->id, ids[k - 1]);
	assert_null(last);
	return n;
}

/* The same for the queue (head, tail), whose tail must be its last. */
static size_t walk_queue(const struct item *head, const struct item *tail, int *ids)
{
	const struct item *last = NULL;
	size_t n = 0;

	for (const struct item *i = head; i; i = i->q_next) {
		assert_true(i->q_prev == last);
		ids[n++] = i->id;
		last = i;
	}
	assert_true(tail == last);
	for (size_t k = n; k > 0; k--, last = last->q_prev)
		assert_int_equal(last->id, ids[k - 1]);
	assert_null(last);
	return n;
}

static void test_dlist_push_puts_first_and_unlink_keeps_the_rest(void **state)
{
	struct item it[ITEMS];
	struct item *head = NULL;
	int ids[ITEMS];
	(void)state;

	memset(it, 0, sizeof it);
	for (int i = 0; i < ITEMS; i++) {
		it[i].id = i;
		DLIST_PUSH(head, &it[i]);
	}
	assert_int_equal(walk_list(head, ids), ITEMS);
	for (int i = 0; i < ITEMS; i++)
		assert_int_equal(ids[i], ITEMS - 1 - i);
	DLIST_UNLINK(head, &it[4]); /* the first */
	DLIST_UNLINK(head, &it[2]); /* a middle one */
	DLIST_UNLINK(head, &it[0]); /* the last */
	assert_int_equal(walk_list(head, ids), 2);
	assert_int_equal(ids[0], 3);
	assert_int_equal(ids[1], 1);
	for (int i = 0; i <= 4; i += 2)
		assert_true(it[i].prev == NULL && it[i].next == NULL);
	DLIST_UNLINK(head, &it[3]);
	DLIST_UNLINK(head, &it[1]);
	assert_null(head);
}

static void test_dqueue_appends_last_and_unlink_keeps_head_and_tail(void **state)
{
	struct item it[ITEMS];
	struct item *head = NULL, *tail = NULL, *lhead = NULL;
	int ids[ITEMS];
	(void)state;

	memset(it, 0, sizeof it);
	for (int i = 0; i < ITEMS; i++) {
		it[i].id = i;
		DQUEUE_APPEND(head, tail, &it[i], q_prev, q_next);
		DLIST_PUSH(lhead, &it[i]); /* in a list too */
	}
	assert_int_equal(walk_queue(head, tail, ids), ITEMS);
	for (int i = 0; i < ITEMS; i++)
		assert_int_equal(ids[i], i);
	DQUEUE_UNLINK(head, tail, &it[0], q_prev, q_next); /* the first */
	DQUEUE_UNLINK(head, tail, &it[2], q_prev, q_next); /* a middle one */
	DQUEUE_UNLINK(head, tail, &it[4], q_prev, q_next); /* the last */
	assert_int_equal(walk_queue(head, tail, ids), 2);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[1], 3);
	assert_ptr_equal(tail, &it[3]);
	/* the list's links untouched */
	assert_int_equal(walk_list(lhead, ids), ITEMS);
	/* appended again: last */
	DQUEUE_APPEND(head, tail, &it[0], q_prev, q_next);
	assert_int_equal(walk_queue(head, tail, ids), 3);
	assert_int_equal(ids[2], 0);
	DQUEUE_UNLINK(head, tail, &it[1], q_prev, q_next);
	DQUEUE_UNLINK(head, tail, &it[3], q_prev, q_next);
	DQUEUE_UNLINK(head, tail, &it[0], q_prev, q_next);
	assert_null(head);
	assert_null(tail);
	assert_true(it[0].q_prev == NULL && it[0].q_next == NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dlist_push_puts_first_and_unlink_keeps_the_rest),
		cmocka_unit_test(test_dqueue_appends_last_and_unlink_keeps_head_and_tail),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
