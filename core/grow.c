#include "core/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"

int grow_array(void **buf, size_t *cap, size_t need, size_t elem)
{
	size_t n = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (n < need) {
		if (n > SIZE_MAX / 2)
			return CS_ELIMIT;
		n *= 2;
	}
	if (elem && n > SIZE_MAX / elem)
		return CS_ELIMIT;
	p = realloc(*buf, n * elem);
	if (!p)
		return CS_ENOMEM;
	memset((char *)p + *cap * elem, 0, (n - *cap) * elem);
	*buf = p;
	*cap = n;
	return 0;
}
