/* dlist: the doubly linked lists of net/ (a server's open connections, a
 * client's sockets and requests). An item is any struct with `prev` and
 * `next` pointers to its own type; a list is a pointer to its first item.
 * Macros, so that one pair serves every item type; each argument is
 * evaluated more than once, so pass plain lvalues. Counts stay with the
 * caller. */
#ifndef NET_DLIST_H
#define NET_DLIST_H

#include <stddef.h>

/* DLIST_PUSH puts item, in no list, first in the list at head. */
#define DLIST_PUSH(head, item)                 \
	do {                                   \
		(item)->prev = NULL;           \
		(item)->next = (head);         \
		if (head)                      \
			(head)->prev = (item); \
		(head) = (item);               \
	} while (0)

/* DLIST_UNLINK takes item out of the list at head and leaves it in none
 * (prev and next NULL). */
#define DLIST_UNLINK(head, item)                           \
	do {                                               \
		if ((item)->prev)                          \
			(item)->prev->next = (item)->next; \
		else                                       \
			(head) = (item)->next;             \
		if ((item)->next)                          \
			(item)->next->prev = (item)->prev; \
		(item)->prev = (item)->next = NULL;        \
	} while (0)

/* DQUEUE_APPEND and DQUEUE_UNLINK: a list kept with its last item too
 * (head and tail), its links the item's fields named p and n (an item may
 * sit in a dlist and a queue at once): first in, first out. */
#define DQUEUE_APPEND(head, tail, item, p, n) \
	do {                                  \
		(item)->p = (tail);           \
		(item)->n = NULL;             \
		if (tail)                     \
			(tail)->n = (item);   \
		else                          \
			(head) = (item);      \
		(tail) = (item);              \
	} while (0)

#define DQUEUE_UNLINK(head, tail, item, p, n)     \
	do {                                      \
		if ((item)->p)                    \
			(item)->p->n = (item)->n; \
		else                              \
			(head) = (item)->n;       \
		if ((item)->n)                    \
			(item)->n->p = (item)->p; \
		else                              \
			(tail) = (item)->p;       \
		(item)->p = (item)->n = NULL;     \
	} while (0)

#endif
