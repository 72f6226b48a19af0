/* grow: the one growable-array helper of cswarm. Capacity doubles (from 16)
 * until it holds `need` elements of `elem` bytes; new room is zeroed so that
 * arrays indexed by id read 0 for "nothing yet". */
#ifndef CS_GROW_H
#define CS_GROW_H

#include <stddef.h>

/* grow_array makes *buf (of *cap elements) hold at least need elements.
 * Returns 0 (buf and cap updated; nothing moves when it already fits), or
 * CS_ENOMEM (buf and cap unchanged), or CS_ELIMIT when the size overflows. */
int grow_array(void **buf, size_t *cap, size_t need, size_t elem);

#endif
