/* bench_dataplane: the data plane's bench lines (issue 17), by
 * tests/bench/dataplane.sh: connection setup through a VIP and through an
 * ingress port (the routing mesh), and throughput between two tasks on
 * different nodes over VXLAN, each next to the same path on a plain Docker
 * bridge, as ratios. Two nodes in network namespaces of their own, each
 * with its own dockerd and swarmd (build/swarmd, build/swarmctl). Needs
 * root, dockerd and busybox-static: otherwise it prints
 * `dataplane: skipped (...)`. What each line times is in the script and
 * in the line itself.
 *
 * First, the encrypted overlay's lines (tests/integration/crypt.sh
 * --bench): connection setup and throughput between two tasks on two
 * nodes over an encrypted network (net/crypttun's userspace tunnel), next
 * to the same network in clear (kernel VXLAN), as ratios.
 *
 * Usage: bench_dataplane [N [MB]]  (default 2000 connections, 512 MiB). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *script = "tests/bench/dataplane.sh";
	if (geteuid() != 0) {
		printf("dataplane: skipped (needs root: namespaces, dockerds)\n");
		return 0;
	}
	if (access(script, R_OK) != 0 || access("build/swarmd", X_OK) != 0 ||
	    access("/bin/busybox", X_OK) != 0) {
		printf("dataplane: skipped (run from the repository with build/swarmd "
		       "and busybox-static)\n");
		return 0;
	}
	fflush(stdout);
	{
		char cmd[256];
		snprintf(
			cmd, sizeof cmd,
			"bash tests/integration/crypt.sh build --bench %s %s 2>/dev/null",
			argc > 1 ? argv[1] : "2000", argc > 2 ? argv[2] : "512");
		if (system(cmd) != 0)
			printf("dataplane encrypted: failed (run tests/integration/crypt.sh "
			       "build --bench to see why)\n");
		fflush(stdout);
	}
	execl("/bin/bash", "bash", script, "build", argc > 1 ? argv[1] : "2000",
	      argc > 2 ? argv[2] : "512", (char *)NULL);
	perror("bench_dataplane: exec bash");
	return 1;
}
