/* envproxy: an env that forwards every call to another env (a uvenv), so
 * that a program that drives real nodes (bench_hbtls, swarmload) can put
 * its own code in front of some ops (a counter in front of listen, a fake
 * executor in place of Docker) and leave the rest as they are. Calls made
 * on the proxy reach the real env with the real env as argument; callbacks
 * the real env runs get the real env (core code that keeps the env it was
 * started with, as every program does, calls back through the proxy). The
 * proxy borrows the real env, which must outlive it. */
#ifndef NET_ENVPROXY_H
#define NET_ENVPROXY_H

#include "core/env.h"

struct envproxy {
	struct env env;	    /* give &env to the program */
	struct env_ops ops; /* the forwarders; overwrite what you replace */
	struct env *real;
	void *data; /* for the ops that replace forwarders (NULL at init) */
};

/* envproxy_init fills p: every op of ops forwards to real (ctl_do and
 * ctl_close, which take no env, are real's own), env.impl is p. */
void envproxy_init(struct envproxy *p, struct env *real);

/* envproxy_of returns the proxy whose env is env (env must be one). */
struct envproxy *envproxy_of(struct env *env);

/* envproxy_wire_tag gives the first byte of a frame whose one field is
 * Wire.<name> (what a proxy's recv looks at to count such frames without
 * decoding them): 0, or -1 when that field's tag is not one byte or not a
 * message. */
int envproxy_wire_tag(const char *name, uint8_t *tag);

#endif
