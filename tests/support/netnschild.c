/* netnschild: see netnschild.h. */
#define _GNU_SOURCE
#include "tests/support/netnschild.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

int netnschild_run(int (*child)(void))
{
	int status;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -2;
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) != 0)
			_exit(errno == EPERM ? 255 : 254);
		_exit(child());
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -2;
	return WEXITSTATUS(status) == 255 ? NETNSCHILD_NO_RIGHT : WEXITSTATUS(status);
}
