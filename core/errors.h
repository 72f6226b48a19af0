/* errors: the one error enum of cswarm, with a name and a message for each.
 * Every action returns 0 or one of these negative values. Foreign codes (uv,
 * sqlite, curl, raft, errno) are translated once, at the boundary that meets
 * them; their own text travels in the message the caller logs. */
#ifndef CS_ERRORS_H
#define CS_ERRORS_H

#define CS_ERRORS(X)                                             \
	X(CS_OK, 0, "success")                                   \
	X(CS_ENOMEM, -1, "out of memory")                        \
	X(CS_EINVAL, -2, "invalid argument")                     \
	X(CS_ENOENT, -3, "no such object")                       \
	X(CS_EEXIST, -4, "already exists")                       \
	X(CS_ELIMIT, -5, "over a limit")                         \
	X(CS_EAGAIN, -6, "try again later (queue full)")         \
	X(CS_ECLOSED, -7, "closed")                              \
	X(CS_EUNREACH, -8, "peer unreachable")                   \
	X(CS_ESTORAGE, -9, "storage error")                      \
	X(CS_ECORRUPT, -10, "corrupt data")                      \
	X(CS_ENOTLEADER, -11, "not leader")                      \
	X(CS_ENOQUORUM, -12, "no quorum")                        \
	X(CS_ETIMEDOUT, -13, "timed out")                        \
	X(CS_ECANCELED, -14, "canceled")                         \
	X(CS_ENOTSUP, -15, "not supported")                      \
	X(CS_EEXEC, -16, "executor error")                       \
	X(CS_ESTALE, -17, "stale")                               \
	X(CS_EVERSION, -18, "version mismatch")                  \
	X(CS_EAUTH, -19, "refused: wrong or missing join token") \
	X(CS_EADDRINUSE, -20, "address already in use")

enum cs_err {
#define CS_ERR_ENUM(name, value, text) name = (value),
	CS_ERRORS(CS_ERR_ENUM)
#undef CS_ERR_ENUM
		CS_ERR_LAST = -20
};

/* cs_strerror returns a static message for err; unknown codes get
 * "unknown error". Never returns NULL. */
const char *cs_strerror(int err);

/* cs_errname returns the enum name ("CS_ENOQUORUM") or "CS_E?" . */
const char *cs_errname(int err);

#endif
