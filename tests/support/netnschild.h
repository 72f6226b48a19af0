/* netnschild: runs a test's kernel part in a network namespace of its own
 * (a forked child that unshares CLONE_NEWNET), so that it never touches
 * the host's interfaces. */
#ifndef CSWARM_TESTS_NETNSCHILD_H
#define CSWARM_TESTS_NETNSCHILD_H

/* NETNSCHILD_NO_RIGHT: the process may not make a network namespace. */
#define NETNSCHILD_NO_RIGHT (-1)

/* netnschild_run forks, unshares the network namespace in the child and
 * runs child() there. Returns child()'s exit status (0..254; 254: the
 * unshare failed otherwise), NETNSCHILD_NO_RIGHT without the right to a
 * namespace, or -2 when the fork or the wait failed. Flushes stdio first. */
int netnschild_run(int (*child)(void));

#endif
