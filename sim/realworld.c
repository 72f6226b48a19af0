/* realworld: see realworld.h.
 * Why the `ip`, `nft`, `docker` and `swarmctl` programs rather than netlink
 * and sockets: each is one fork/exec of a few milliseconds against waits of
 * seconds of real time, they are what an operator would type (the run log
 * shows each command), and the namespaces' teardown stays one `ip netns
 * del`. Sections: processes, the world (setup, teardown), network faults,
 * reading the cluster, commands, conditions, the run. */
#define _GNU_SOURCE
#include "sim/realworld.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/errors.h"
#include "sim/realplan.h"
#include "sim/runner.h"
#include "sim/timeline_real.h"

#define RW_PORT		    26000 /* swarmd's listen port in every namespace */
#define RW_OUT_BYTES_MAX    (4u << 20)
#define RW_POLL_MS	    250u
#define RW_CMD_TIMEOUT_MS   15000u
#define RW_SETUP_TIMEOUT_MS 90000u
#define RW_LEADER_ASK_MS    3000u /* each manager asked who leads, at once */
#define RW_ALWAYS_MAX	    16u
#define RW_IMAGES_MAX	    32u
#define RW_DEFAULT_IMAGE    "rw-default:latest"

/* The one writable global here: a signal handler can only set a flag. */
static volatile sig_atomic_t rw_signal;

static void rw_on_signal(int sig)
{
	rw_signal = sig;
}

struct rw_node {
	char name[8];
	bool manager;
	char ns[32];
	char addr[20];
	char state_dir[256];
	char sock[256];
	char dsock[256];
	char log[256];
	pid_t swarmd;  /* 0: not running */
	pid_t dockerd; /* 0: none */
	bool machine_down;
	bool gone; /* kill NODE disk */
	bool joined;
};

struct rw {
	const struct scn_script *s;
	const struct realworld_opts *o;
	struct runner_result *res;
	char tag[16];
	char work[128];
	char swarmd[256], swarmctl[256];
	uint32_t n, managers, workers;
	uint64_t millicpus, memory_bytes;
	struct rw_node nodes[REALPLAN_NODES_MAX];
	char addrs[REALPLAN_NODES_MAX][20];
	struct realplan_net net;
	bool hub;
	const struct scn_cmd *always[RW_ALWAYS_MAX];
	size_t always_count;
	double t0;
	char *out; /* RW_OUT_BYTES_MAX: the last command's stdout */
	char mtoken[512], wtoken[512];
	bool failed;
	int leader;	    /* as last read: a node index, or -1 */
	double next_sample; /* the timeline's next count of running tasks */
	bool tearing_down;  /* a signal no longer cuts commands short */
};

static double rw_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void rw_say(const struct rw *rw, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void rw_say(const struct rw *rw, const char *fmt, ...)
{
	va_list ap;
	if (!rw->o->verbose)
		return;
	fprintf(stderr, "real %s: ", rw->tag);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Marks the run failed (the first failure wins); returns -1. */
static int rw_fail(struct rw *rw, const struct scn_cmd *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int rw_fail(struct rw *rw, const struct scn_cmd *c, const char *fmt, ...)
{
	va_list ap;
	int k = 0;
	if (rw->failed)
		return -1;
	rw->failed = true;
	rw->res->passed = false;
	if (c) {
		rw->res->fail_line = c->line;
		k = snprintf(rw->res->message, sizeof rw->res->message,
			     "line %" PRIu32 ": %s: ", c->line, c->text);
		if (k < 0 || (size_t)k >= sizeof rw->res->message)
			return -1;
	}
	va_start(ap, fmt);
	vsnprintf(rw->res->message + k, sizeof rw->res->message - (size_t)k, fmt, ap);
	va_end(ap);
	return -1;
}

/* Microseconds since the scenario began (0 before). */
static us_t rw_us(const struct rw *rw)
{
	return rw->t0 > 0 ? (us_t)((rw_now() - rw->t0) * 1e6) : 0;
}

static void rw_hash(struct rw *rw, uint64_t v)
{
	rw->res->hash = (rw->res->hash ^ v) * 0x100000001b3ull;
}

/* ---------------------------------------------------------------- processes */

/* Sleeps ms in slices, so that a signal is seen within 100 ms. Returns
 * false when a signal came. */
static bool rw_sleep_ms(unsigned ms)
{
	while (ms && !rw_signal) {
		unsigned step = ms < 100 ? ms : 100;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return !rw_signal;
}

/* The child's side of rw_run and rw_spawn: in namespace ns (or here),
 * stdout to out_fd, stderr to the work dir's run log. */
static void rw_child(const struct rw *rw, const char *ns, char *const *argv, int in_fd,
		     int out_fd, bool new_session)
{
	char path[300], nsarg[80];
	const char *args[64];
	size_t k = 0;
	int err_fd;

	if (new_session)
		setsid();
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	snprintf(path, sizeof path, "%s/run.log", rw->work);
	err_fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	if (in_fd >= 0)
		dup2(in_fd, 0);
	else
		dup2(open("/dev/null", O_RDONLY), 0);
	dup2(out_fd >= 0 ? out_fd : err_fd, 1);
	/* a daemon's (new session) stderr goes to its own log, with stdout */
	dup2(new_session ? 1 : err_fd, 2);
	if (ns) {
		snprintf(nsarg, sizeof nsarg, "--net=/run/netns/%s", ns);
		args[k++] = "nsenter";
		args[k++] = nsarg;
		args[k++] = "--";
	}
	for (size_t i = 0; argv[i] && k < 63; i++)
		args[k++] = argv[i];
	args[k] = NULL;
	execvp(args[0], (char *const *)args);
	_exit(127);
}

/* Runs argv (in namespace ns when not NULL) to its end, with `in` on its
 * stdin (or nothing); its stdout lands in rw->out (NUL-terminated). Returns
 * its exit status, 124 when it took longer than timeout_ms (then killed),
 * 125 when its output passed RW_OUT_BYTES_MAX, 126 when it could not be
 * started, 130 on a signal. */
static int rw_run(struct rw *rw, const char *ns, char *const *argv, const char *in,
		  unsigned timeout_ms)
{
	int outp[2], inp[2] = {-1, -1}, status = 0, rv = -1;
	size_t len = 0;
	double deadline = rw_now() + timeout_ms / 1000.0;
	bool too_big = false;
	FILE *log;
	char path[300];
	pid_t pid;

	rw->out[0] = '\0';
	snprintf(path, sizeof path, "%s/run.log", rw->work);
	if ((log = fopen(path, "a"))) {
		fprintf(log, "+ %s%s", ns ? ns : "", ns ? ": " : "");
		for (size_t i = 0; argv[i]; i++)
			fprintf(log, "%s ", argv[i]);
		fputc('\n', log);
		fclose(log);
	}
	if (pipe2(outp, O_CLOEXEC))
		return 126;
	if (in && pipe2(inp, O_CLOEXEC)) {
		close(outp[0]);
		close(outp[1]);
		return 126;
	}
	pid = fork();
	if (pid == 0)
		rw_child(rw, ns, argv, inp[0], outp[1], false);
	close(outp[1]);
	if (inp[0] >= 0)
		close(inp[0]);
	if (pid < 0) {
		close(outp[0]);
		if (inp[1] >= 0)
			close(inp[1]);
		return 126;
	}
	if (in) {
		size_t n = strlen(in), off = 0;
		while (off < n) {
			ssize_t w = write(inp[1], in + off, n - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		close(inp[1]);
	}
	for (;;) {
		struct pollfd pfd = {outp[0], POLLIN, 0};
		int left = (int)((deadline - rw_now()) * 1000);
		ssize_t r;
		if (rw_signal && !rw->tearing_down) {
			rv = 130;
			break;
		}
		if (left <= 0) {
			rv = 124;
			break;
		}
		if (poll(&pfd, 1, left < 100 ? left : 100) <= 0)
			continue;
		if (len + 1 >= RW_OUT_BYTES_MAX) {
			char sink[4096];
			r = read(outp[0], sink, sizeof sink);
			too_big = true;
		} else {
			r = read(outp[0], rw->out + len, RW_OUT_BYTES_MAX - 1 - len);
			if (r > 0)
				len += (size_t)r;
		}
		if (r == 0)
			break;
		if (r < 0 && errno != EINTR)
			break;
	}
	rw->out[len] = '\0';
	close(outp[0]);
	if (rv >= 0)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rv >= 0)
		return rv;
	if (too_big)
		return 125;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Starts argv in the background (its own session, in namespace ns),
 * stdout and stderr appended to logpath. Returns its pid, or 0. */
static pid_t rw_spawn(struct rw *rw, const char *ns, char *const *argv,
		      const char *logpath)
{
	int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	pid_t pid;
	if (fd < 0)
		return 0;
	pid = fork();
	if (pid == 0) {
		dup2(fd, 1);
		rw_child(rw, ns, argv, -1, 1, true);
	}
	close(fd);
	return pid < 0 ? 0 : pid;
}

/* Kills pid with sig and reaps it (up to wait_ms; then SIGKILL). */
static void rw_stop(pid_t pid, int sig, unsigned wait_ms)
{
	int status;
	if (pid <= 0)
		return;
	kill(pid, sig);
	for (unsigned t = 0; t < wait_ms; t += 50) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		struct timespec ts = {0, 50000000L};
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

/* Shorthands: a fixed argv list, ended by NULL. */
#define RW_ARGV(...) ((char *const[]){__VA_ARGS__, NULL})

static int rw_ctl(struct rw *rw, int node, char *const *args)
{
	char *argv[48];
	size_t k = 0;
	argv[k++] = rw->swarmctl;
	argv[k++] = "--socket";
	argv[k++] = rw->nodes[node].sock;
	for (size_t i = 0; args[i] && k < 47; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	return rw_run(rw, NULL, argv, NULL, RW_CMD_TIMEOUT_MS);
}

static int rw_docker(struct rw *rw, int node, char *const *args)
{
	char host[300], *argv[32];
	size_t k = 0;
	snprintf(host, sizeof host, "unix://%s", rw->nodes[node].dsock);
	argv[k++] = "docker";
	argv[k++] = "-H";
	argv[k++] = host;
	for (size_t i = 0; args[i] && k < 31; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	return rw_run(rw, NULL, argv, NULL, RW_CMD_TIMEOUT_MS);
}

/* ---------------------------------------------------------------- the world */

static void rw_remove_containers(struct rw *rw, int node)
{
	char *ids, *save = NULL, *argv[256];
	size_t k = 0;
	if (!rw->nodes[node].dockerd || rw_docker(rw, node, RW_ARGV("ps", "-aq")) != 0)
		return;
	ids = strdup(rw->out);
	if (!ids)
		return;
	argv[k++] = "rm";
	argv[k++] = "-f";
	for (char *t = strtok_r(ids, "\n", &save); t && k < 255;
	     t = strtok_r(NULL, "\n", &save))
		argv[k++] = t;
	argv[k] = NULL;
	if (k > 2)
		rw_docker(rw, node, argv);
	free(ids);
}

/* Removes everything the run made. Safe to call on a half-built world. */
static void rw_teardown(struct rw *rw)
{
	char path[300], line[1024];
	FILE *m;
	/* the teardown's own commands must run to their end, even when a
	 * signal comes now (one during a teardown once killed its `ip netns
	 * del` and `rm -rf`, and left the hub namespace to the next file) */
	rw->tearing_down = true;
	for (uint32_t i = 0; i < rw->n; i++) {
		rw_stop(rw->nodes[i].swarmd, SIGKILL, 2000);
		rw->nodes[i].swarmd = 0;
	}
	for (uint32_t i = 0; i < rw->n; i++)
		rw_remove_containers(rw, (int)i);
	for (uint32_t i = 0; i < rw->n; i++)
		if (rw->nodes[i].dockerd)
			kill(rw->nodes[i].dockerd, SIGTERM);
	for (uint32_t i = 0; i < rw->n; i++) {
		rw_stop(rw->nodes[i].dockerd, SIGTERM, 30000);
		rw->nodes[i].dockerd = 0;
	}
	for (uint32_t i = 0; i < rw->n; i++) {
		rw_run(rw, NULL, RW_ARGV("ip", "netns", "del", rw->nodes[i].ns), NULL,
		       10000);
		snprintf(path, sizeof path, "/sys/fs/cgroup/%s", rw->nodes[i].ns);
		rmdir(path);
	}
	if (rw->hub) {
		snprintf(path, sizeof path, "%s-h", rw->tag);
		rw_run(rw, NULL, RW_ARGV("ip", "netns", "del", path), NULL, 10000);
	}
	/* what the dockerds left mounted under the work dir, deepest first */
	for (int pass = 0; pass < 8 && rw->work[0]; pass++) {
		bool any = false;
		if (!(m = fopen("/proc/self/mounts", "r")))
			break;
		while (fgets(line, sizeof line, m)) {
			char *target = strchr(line, ' ');
			char *end;
			if (!target)
				continue;
			target++;
			end = strchr(target, ' ');
			if (end)
				*end = '\0';
			if (strncmp(target, rw->work, strlen(rw->work)) == 0) {
				umount2(target, MNT_DETACH);
				any = true;
			}
		}
		fclose(m);
		if (!any)
			break;
	}
	if (rw->work[0]) {
		if (rw->o->keep_logs) {
			snprintf(path, sizeof path, "/tmp/rw-logs.%s", rw->tag);
			mkdir(path, 0755);
			for (uint32_t i = 0; i < rw->n; i++)
				rw_run(rw, NULL, RW_ARGV("cp", rw->nodes[i].log, path),
				       NULL, 10000);
			snprintf(line, sizeof line, "%s/run.log", rw->work);
			rw_run(rw, NULL, RW_ARGV("cp", line, path), NULL, 10000);
		}
		rw_run(rw, NULL, RW_ARGV("rm", "-rf", rw->work), NULL, 60000);
	}
	rw->tearing_down = false;
}

static bool rw_docker_answers(struct rw *rw, int node)
{
	return rw_docker(rw, node,
			 RW_ARGV("version", "--format", "{{.Server.Version}}")) == 0;
}

/* The image names a run needs: every image= of a service, and the declared
 * ones (the default image always). */
static size_t rw_images(const struct scn_script *s, const char **names,
			const struct scn_image **decl)
{
	size_t k = 0;
	names[k] = RW_DEFAULT_IMAGE;
	decl[k++] = NULL;
	for (size_t i = 0; i < s->cmd_count && k < RW_IMAGES_MAX; i++) {
		const struct scn_cmd *c = &s->cmds[i];
		const char *name = NULL;
		const struct scn_image *d = NULL;
		size_t j;
		if (c->kind == SCN_IMAGE) {
			name = c->u.image.name;
			d = &c->u.image;
		} else if ((c->kind == SCN_SERVICE_CREATE ||
			    c->kind == SCN_SERVICE_UPDATE) &&
			   (c->u.service.set & SCN_SVC_IMAGE)) {
			name = c->u.service.image;
		}
		if (!name)
			continue;
		for (j = 0; j < k && strcmp(names[j], name) != 0; j++)
			;
		if (j == k) {
			names[k] = name;
			decl[k++] = d;
		} else if (d) {
			decl[j] = d; /* the declaration wins over a mere use */
		}
	}
	return k;
}

/* Builds every image the run needs in every node's dockerd, FROM scratch
 * with busybox-static (as tests/integration/image). Returns 0 or -1. */
static int rw_build_images(struct rw *rw)
{
	const char *names[RW_IMAGES_MAX];
	const struct scn_image *decl[RW_IMAGES_MAX];
	size_t count = rw_images(rw->s, names, decl);
	char dir[300], path[340], script[2048];
	FILE *f;

	for (size_t i = 0; i < count; i++) {
		pid_t pids[REALPLAN_NODES_MAX];
		if (decl[i] && decl[i]->pull_fail)
			continue; /* never built: pulling it fails (no registry) */
		snprintf(dir, sizeof dir, "%s/img%zu", rw->work, i);
		mkdir(dir, 0755);
		snprintf(path, sizeof path, "%s/busybox", dir);
		if (rw_run(rw, NULL, RW_ARGV("cp", "/bin/busybox", path), NULL, 10000))
			return rw_fail(rw, NULL,
				       "cannot copy /bin/busybox (busybox-static)");
		snprintf(path, sizeof path, "%s/run.sh", dir);
		if (realplan_image_script(decl[i], script, sizeof script) < 0 ||
		    !(f = fopen(path, "w")))
			return rw_fail(rw, NULL, "cannot write %s", path);
		fputs(script, f);
		fclose(f);
		snprintf(path, sizeof path, "%s/Dockerfile", dir);
		if (!(f = fopen(path, "w")))
			return rw_fail(rw, NULL, "cannot write %s", path);
		fprintf(f, "FROM scratch\nCOPY busybox /bin/busybox\n"
			   "RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n"
			   "COPY run.sh /run.sh\n");
		if (decl[i] && decl[i]->start_fail)
			fprintf(f, "CMD [\"/no/such/program\"]\n");
		else
			fprintf(f, "CMD [\"/bin/sh\", \"/run.sh\"]\n");
		fclose(f);
		/* every node's build at once, then wait for them all */
		for (uint32_t k = 0; k < rw->n; k++) {
			char host[300], logp[300];
			snprintf(host, sizeof host, "unix://%s", rw->nodes[k].dsock);
			snprintf(logp, sizeof logp, "%s/build.log", rw->work);
			pids[k] = rw_spawn(rw, NULL,
					   RW_ARGV("docker", "-H", host, "build", "-q",
						   "-t", (char *)names[i], dir),
					   logp);
		}
		for (uint32_t k = 0; k < rw->n; k++) {
			int status = 1;
			while (pids[k] && waitpid(pids[k], &status, 0) < 0 &&
			       errno == EINTR)
				;
			if (!pids[k] || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
				return rw_fail(rw, NULL,
					       "building image %s on %s failed (see "
					       "build.log)",
					       names[i], rw->nodes[k].name);
		}
	}
	return 0;
}

static int rw_start_swarmd(struct rw *rw, int i, bool join)
{
	struct rw_node *nd = &rw->nodes[i];
	char listen[64], cpus[32], mem[32], join_addr[64];
	char *argv[40];
	size_t k = 0;

	snprintf(listen, sizeof listen, "%s:%d", nd->addr, RW_PORT);
	snprintf(cpus, sizeof cpus, "%" PRIu64 ".%03" PRIu64, rw->millicpus / 1000,
		 rw->millicpus % 1000);
	snprintf(mem, sizeof mem, "%" PRIu64, rw->memory_bytes);
	snprintf(join_addr, sizeof join_addr, "%s:%d", rw->nodes[0].addr, RW_PORT);
	argv[k++] = rw->swarmd;
	argv[k++] = "--state-dir";
	argv[k++] = nd->state_dir;
	argv[k++] = "--listen-addr";
	argv[k++] = listen;
	argv[k++] = "--hostname";
	argv[k++] = nd->name;
	argv[k++] = "--control-socket";
	argv[k++] = nd->sock;
	argv[k++] = "--docker-socket";
	argv[k++] = nd->dsock;
	argv[k++] = "--data-plane";
	argv[k++] = "off";
	argv[k++] = "--cpus";
	argv[k++] = cpus;
	argv[k++] = "--memory";
	argv[k++] = mem;
	if (join) {
		argv[k++] = "--join-addr";
		argv[k++] = join_addr;
		argv[k++] = "--join-token";
		argv[k++] = nd->manager ? rw->mtoken : rw->wtoken;
	}
	argv[k] = NULL;
	nd->swarmd = rw_spawn(rw, nd->ns, argv, nd->log);
	rw_say(rw, "swarmd %s started (pid %d)", nd->name, (int)nd->swarmd);
	return nd->swarmd ? 0 : -1;
}

static int rw_ip(struct rw *rw, const char *ns, char *const *args)
{
	char *argv[24];
	size_t k = 0;
	argv[k++] = "ip";
	if (ns) {
		argv[k++] = "-n";
		argv[k++] = (char *)ns;
	}
	for (size_t i = 0; args[i] && k < 23; i++)
		argv[k++] = args[i];
	argv[k] = NULL;
	return rw_run(rw, NULL, argv, NULL, 10000);
}

static int rw_nodes_ready(struct rw *rw, uint32_t *ready);

/* Builds the namespaces, the dockerds, the images and the cluster; returns
 * once every node is READY. 0, or -1 with the reason in res. */
static int rw_setup(struct rw *rw)
{
	char hub[40], bridge[40], a[40], b[40], cidr[40], d[200], dlog[240];
	double deadline;

	snprintf(hub, sizeof hub, "%s-h", rw->tag);
	snprintf(bridge, sizeof bridge, "%s-br", rw->tag);
	if (rw_ip(rw, NULL, RW_ARGV("netns", "add", hub)))
		return rw_fail(rw, NULL,
			       "ip netns add %s failed (root needed, or one of that name "
			       "is left: see run.log)",
			       hub);
	rw->hub = true;
	if (rw_ip(rw, hub, RW_ARGV("link", "add", bridge, "type", "bridge")) ||
	    rw_ip(rw, hub, RW_ARGV("link", "set", bridge, "up")) ||
	    rw_ip(rw, hub, RW_ARGV("link", "set", "lo", "up")))
		return rw_fail(rw, NULL, "the hub's bridge %s", bridge);
	for (uint32_t i = 0; i < rw->n; i++) {
		struct rw_node *nd = &rw->nodes[i];
		snprintf(a, sizeof a, "%s-%sa", rw->tag, nd->name);
		snprintf(b, sizeof b, "%s-%sb", rw->tag, nd->name);
		snprintf(cidr, sizeof cidr, "%s/24", nd->addr);
		if (rw_ip(rw, NULL, RW_ARGV("netns", "add", nd->ns)) ||
		    rw_ip(rw, NULL,
			  RW_ARGV("link", "add", a, "type", "veth", "peer", "name", b)) ||
		    rw_ip(rw, NULL, RW_ARGV("link", "set", a, "netns", nd->ns)) ||
		    rw_ip(rw, NULL, RW_ARGV("link", "set", b, "netns", hub)) ||
		    rw_ip(rw, nd->ns, RW_ARGV("addr", "add", cidr, "dev", a)) ||
		    rw_ip(rw, nd->ns, RW_ARGV("link", "set", a, "up")) ||
		    rw_ip(rw, nd->ns, RW_ARGV("link", "set", "lo", "up")) ||
		    rw_ip(rw, hub, RW_ARGV("link", "set", b, "master", bridge, "up")))
			return rw_fail(rw, NULL, "namespace %s and its veth", nd->ns);
	}
	rw_say(rw, "namespaces up; starting %u dockerds", rw->n);
	for (uint32_t i = 0; i < rw->n; i++) {
		struct rw_node *nd = &rw->nodes[i];
		char data[240], exec[240], pidf[240], host[240], cg[80], cns[48],
			cpns[48];
		snprintf(d, sizeof d, "%s/d-%s", rw->work, nd->name);
		mkdir(d, 0755);
		snprintf(data, sizeof data, "%s/data", d);
		snprintf(exec, sizeof exec, "%s/exec", d);
		snprintf(pidf, sizeof pidf, "%s/docker.pid", d);
		snprintf(host, sizeof host, "unix://%s", nd->dsock);
		snprintf(cg, sizeof cg, "/%s", nd->ns);
		snprintf(cns, sizeof cns, "%s", nd->ns);
		snprintf(cpns, sizeof cpns, "%sp", nd->ns);
		snprintf(dlog, sizeof dlog, "%s/dockerd.log", d);
		nd->dockerd =
			rw_spawn(rw, nd->ns,
				 RW_ARGV("dockerd", "--data-root", data, "--exec-root",
					 exec, "--pidfile", pidf, "-H", host,
					 "--cgroup-parent", cg, "--containerd-namespace",
					 cns, "--containerd-plugins-namespace", cpns),
				 dlog);
		if (!nd->dockerd)
			return rw_fail(rw, NULL, "cannot start dockerd for %s", nd->name);
	}
	deadline = rw_now() + RW_SETUP_TIMEOUT_MS / 1000.0;
	for (uint32_t i = 0; i < rw->n; i++) {
		while (!rw_docker_answers(rw, (int)i)) {
			if (rw_now() > deadline || !rw_sleep_ms(200))
				return rw_fail(rw, NULL, "%s's dockerd does not answer",
					       rw->nodes[i].name);
		}
	}
	rw_say(rw, "dockerds answer; building images");
	if (rw_build_images(rw))
		return -1;
	rw_say(rw, "starting swarmd on %s", rw->nodes[0].name);
	/* the scenario's clock starts with the daemons, as the simulated
	 * `cluster` starts its nodes at 0 (namespaces, dockerds and images
	 * are the machines, there before) */
	rw->t0 = rw_now();
	for (uint32_t i = 0; rw->o->tl && i < rw->n; i++)
		timeline_real_node(rw->o->tl, i, rw->nodes[i].name, 0);
	if (rw_start_swarmd(rw, 0, false))
		return rw_fail(rw, NULL, "cannot start %s", rw->swarmd);
	rw->nodes[0].joined = true;
	while (rw_ctl(rw, 0, RW_ARGV("cluster", "join-token", "manager")) != 0) {
		if (rw_now() > deadline || !rw_sleep_ms(200))
			return rw_fail(rw, NULL, "m1's control socket does not answer");
	}
	snprintf(rw->mtoken, sizeof rw->mtoken, "%s", rw->out);
	rw->mtoken[strcspn(rw->mtoken, "\n")] = '\0';
	if (rw_ctl(rw, 0, RW_ARGV("cluster", "join-token", "worker")))
		return rw_fail(rw, NULL, "swarmctl cluster join-token worker failed");
	snprintf(rw->wtoken, sizeof rw->wtoken, "%s", rw->out);
	rw->wtoken[strcspn(rw->wtoken, "\n")] = '\0';
	for (uint32_t i = 1; i < rw->n; i++) {
		if (rw_start_swarmd(rw, (int)i, true))
			return rw_fail(rw, NULL, "cannot start %s", rw->swarmd);
		rw->nodes[i].joined = true;
		/* managers one by one: each a voter before the next joins */
		if (rw->nodes[i].manager) {
			uint32_t ready = 0;
			while (rw_nodes_ready(rw, &ready) || ready < i + 1) {
				if (rw_now() > deadline || !rw_sleep_ms(200))
					return rw_fail(rw, NULL, "%s did not join",
						       rw->nodes[i].name);
			}
		}
	}
	/* Every node READY before the first command: the simulated `cluster`
	 * has its workers registered by the time its first control call finds
	 * a leader; started and not waited for, a real one-manager cluster
	 * took `service create` before w2 had joined (partitioned-worker.scn
	 * put both tasks on w1). The clock runs from m1's start meanwhile. */
	for (;;) {
		uint32_t ready = 0;
		if (rw_nodes_ready(rw, &ready) == 0 && ready == rw->n)
			break;
		if (rw_now() > deadline || !rw_sleep_ms(200))
			return rw_fail(rw, NULL, "only %u of %u nodes ready after %us",
				       ready, rw->n, RW_SETUP_TIMEOUT_MS / 1000);
	}
	rw_say(rw, "cluster ready: %u managers, %u workers", rw->managers, rw->workers);
	return 0;
}

/* ---------------------------------------------------------------- network faults */

static int rw_net_apply(struct rw *rw)
{
	char text[8192];
	const char *addrs[REALPLAN_NODES_MAX];
	for (uint32_t i = 0; i < rw->n; i++)
		addrs[i] = rw->addrs[i];
	for (uint32_t i = 0; i < rw->n; i++) {
		if (realplan_nft(&rw->net, i, "rwfault", addrs, text, sizeof text) < 0)
			return -1;
		if (rw_run(rw, rw->nodes[i].ns, RW_ARGV("nft", "-f", "-"), text, 10000))
			return -1;
	}
	for (uint32_t i = 0; rw->o->tl && i < rw->n; i++) {
		uint32_t cut = 0;
		bool lossy = false;
		for (uint32_t j = 0; j < rw->n; j++) {
			cut += j != i && realplan_net_blocked(&rw->net, i, j);
			lossy = lossy || rw->net.loss_ppm[i][j] || rw->net.loss_ppm[j][i];
		}
		timeline_real_cut(rw->o->tl, i, cut, rw_us(rw));
		timeline_real_link(rw->o->tl, i, lossy, rw_us(rw));
	}
	return 0;
}

/* ---------------------------------------------------------------- reading the cluster */

/* Every manager whose swarmd runs is asked who leads (node ls); a node is
 * the leader when more than half of the managers name it, it is the only
 * one they name and its swarmd runs. Returns its index, or -1. */
static int rw_leader(struct rw *rw)
{
	uint32_t votes[REALPLAN_NODES_MAX] = {0};
	pid_t pids[REALPLAN_NODES_MAX] = {0};
	int status[REALPLAN_NODES_MAX];
	uint32_t voters = 0;
	int leader = -1;
	double end;

	/* all at once, each bounded: a follower forwards node ls to the
	 * leader and waits up to 10 s for it, and asking one by one made a
	 * poll after a leader's death take 20 s (leader-loss.scn failed
	 * "no leader" on a leader elected in time) */
	for (uint32_t i = 0; i < rw->n; i++) {
		char path[300];
		int fd;
		status[i] = -1;
		if (!rw->nodes[i].manager)
			continue;
		voters++;
		if (!rw->nodes[i].swarmd)
			continue;
		snprintf(path, sizeof path, "%s/ask-%s.json", rw->work,
			 rw->nodes[i].name);
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0)
			continue;
		pids[i] = fork();
		if (pids[i] == 0)
			rw_child(rw, NULL,
				 RW_ARGV(rw->swarmctl, "--socket", rw->nodes[i].sock,
					 "node", "ls", "--format", "json"),
				 -1, fd, false);
		close(fd);
		if (pids[i] < 0)
			pids[i] = 0;
	}
	end = rw_now() + RW_LEADER_ASK_MS / 1000.0;
	for (;;) {
		bool waiting = false;
		for (uint32_t i = 0; i < rw->n; i++) {
			int st;
			if (!pids[i])
				continue;
			if (waitpid(pids[i], &st, WNOHANG) == pids[i]) {
				status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
				pids[i] = 0;
			} else {
				waiting = true;
			}
		}
		if (!waiting)
			break;
		if (rw_now() > end || rw_signal) {
			for (uint32_t i = 0; i < rw->n; i++)
				if (pids[i]) {
					kill(pids[i], SIGKILL);
					waitpid(pids[i], NULL, 0);
					pids[i] = 0;
				}
			break;
		}
		struct timespec ts = {0, 20000000L};
		nanosleep(&ts, NULL);
	}
	for (uint32_t i = 0; i < rw->n; i++) {
		const char *p, *obj;
		char path[300];
		size_t len, got;
		int named = -1, count = 0;
		FILE *f;
		if (status[i] != 0)
			continue;
		snprintf(path, sizeof path, "%s/ask-%s.json", rw->work,
			 rw->nodes[i].name);
		if (!(f = fopen(path, "r")))
			continue;
		got = fread(rw->out, 1, RW_OUT_BYTES_MAX - 1, f);
		fclose(f);
		rw->out[got] = '\0';
		p = rw->out;
		while (realplan_json_next(&p, &obj, &len)) {
			char v[16], host[64];
			if (!realplan_json_get(obj, len, "leader", v, sizeof v) ||
			    strcmp(v, "true") != 0 ||
			    !realplan_json_get(obj, len, "hostname", host, sizeof host))
				continue;
			count++;
			for (uint32_t k = 0; k < rw->n; k++)
				if (strcmp(rw->nodes[k].name, host) == 0)
					named = (int)k;
		}
		if (count == 1 && named >= 0)
			votes[named]++;
	}
	for (uint32_t k = 0; k < rw->n; k++)
		if (votes[k] * 2 > voters && rw->nodes[k].swarmd && rw->nodes[k].manager)
			leader = (int)k;
	rw->leader = leader;
	if (rw->o->tl && rw->t0 > 0)
		timeline_real_leader(rw->o->tl, leader, rw_us(rw));
	return leader;
}

static int rw_node_by_name(const struct rw *rw, const char *name)
{
	for (uint32_t k = 0; k < rw->n; k++)
		if (strcmp(rw->nodes[k].name, name) == 0)
			return (int)k;
	return -1;
}

/* Node statuses from the leader (any manager that answers while there is
 * none). Returns 0 with *ready, or -1 when no manager answers. */
static int rw_node_list(struct rw *rw)
{
	int at = rw->leader;
	if (at < 0 || !rw->nodes[at].swarmd)
		at = -1;
	for (uint32_t i = 0; at < 0 && i < rw->n; i++)
		if (rw->nodes[i].manager && rw->nodes[i].swarmd)
			at = (int)i;
	if (at < 0)
		return -1;
	return rw_ctl(rw, at, RW_ARGV("node", "ls", "--format", "json")) ? -1 : 0;
}

static int rw_nodes_ready(struct rw *rw, uint32_t *ready)
{
	const char *p, *obj;
	size_t len;
	*ready = 0;
	if (rw_node_list(rw))
		return -1;
	p = rw->out;
	while (realplan_json_next(&p, &obj, &len)) {
		char st[32];
		if (realplan_json_get(obj, len, "status", st, sizeof st) &&
		    strcmp(st, "ready") == 0)
			(*ready)++;
	}
	return 0;
}

/* Ground truth: containers of service svc running in node's dockerd (all
 * nodes when node < 0). -1 when a dockerd does not answer. */
static int64_t rw_running(struct rw *rw, const char *svc, int node)
{
	char filter[300];
	int64_t count = 0;
	snprintf(filter, sizeof filter, "label=cswarm.service.name=%s", svc);
	for (uint32_t i = 0; i < rw->n; i++) {
		if (node >= 0 && (int)i != node)
			continue;
		if (rw_docker(rw, (int)i,
			      RW_ARGV("ps", "-q", "--filter", filter, "--filter",
				      "status=running")))
			return -1;
		for (const char *s = rw->out; *s; s++)
			count += *s == '\n';
	}
	return count;
}

/* ---------------------------------------------------------------- conditions */

/* Evaluates cond now. Returns 1 holds, 0 not (got says what was seen), -1
 * when it could not be read (got says why: no leader, a daemon silent). */
static int rw_cond(struct rw *rw, const struct scn_cond *c, char *got, size_t n)
{
	char name[16];
	int leader = rw_leader(rw);
	const char *p, *obj;
	size_t len;

	got[0] = '\0';
	switch (c->kind) {
	case SCN_COND_LEADER:
		snprintf(got, n, "%s",
			 leader >= 0 ? rw->nodes[leader].name : "no leader");
		return leader >= 0;
	case SCN_COND_NO_LEADER:
		snprintf(got, n, "%s leads",
			 leader >= 0 ? rw->nodes[leader].name : "none");
		return leader < 0;
	case SCN_COND_LEADER_IS: {
		int want = realplan_node_index(c->node, rw->managers, rw->workers);
		snprintf(got, n, "leader %s",
			 leader >= 0 ? rw->nodes[leader].name : "none");
		return c->op == SCN_OP_EQ ? leader == want : leader != want;
	}
	case SCN_COND_RUNNING: {
		int at = -1;
		int64_t v;
		if (c->has_node) {
			at = c->node.kind == SCN_NODE_LEADER
				     ? leader
				     : realplan_node_index(c->node, rw->managers,
							   rw->workers);
			if (at < 0) {
				snprintf(got, n, "no such node (%s)",
					 scn_node_name(c->node, name, sizeof name));
				return -1;
			}
		}
		v = rw_running(rw, c->service, at);
		if (v < 0) {
			snprintf(got, n, "a dockerd did not answer");
			return -1;
		}
		snprintf(got, n, "got %" PRId64, v);
		return scn_op_holds(c->op, (uint64_t)v, c->count);
	}
	case SCN_COND_STORE_TASKS: {
		uint64_t v = 0;
		if (leader < 0) {
			snprintf(got, n, "no leader");
			return -1;
		}
		if (rw_ctl(rw, leader,
			   RW_ARGV("task", "ls", "--service", c->service, "--format",
				   "json"))) {
			snprintf(got, n, "task ls failed");
			return -1;
		}
		p = rw->out;
		while (realplan_json_next(&p, &obj, &len)) {
			char st[32];
			if (realplan_json_get(obj, len, "state", st, sizeof st) &&
			    strcmp(st, scn_task_state_name(c->state)) == 0)
				v++;
		}
		snprintf(got, n, "got %" PRIu64, v);
		return scn_op_holds(c->op, v, c->count);
	}
	case SCN_COND_NODES_READY: {
		uint32_t ready;
		if (leader < 0 || rw_nodes_ready(rw, &ready)) {
			snprintf(got, n, "no leader");
			return -1;
		}
		snprintf(got, n, "got %" PRIu32, ready);
		return scn_op_holds(c->op, ready, c->count);
	}
	case SCN_COND_NODE_STATUS: {
		int want = realplan_node_index(c->node, rw->managers, rw->workers);
		if (c->node.kind == SCN_NODE_LEADER)
			want = leader;
		if (leader < 0 || want < 0 || rw_node_list(rw)) {
			snprintf(got, n, "no leader");
			return -1;
		}
		p = rw->out;
		while (realplan_json_next(&p, &obj, &len)) {
			char host[64], st[32];
			if (realplan_json_get(obj, len, "hostname", host, sizeof host) &&
			    strcmp(host, rw->nodes[want].name) == 0 &&
			    realplan_json_get(obj, len, "status", st, sizeof st)) {
				char role[32];
				if (c->node_role != SCN_ROLE_ANY) {
					/* node NODE manager|worker: its record's role */
					if (!realplan_json_get(obj, len, "role", role,
							       sizeof role))
						role[0] = '\0';
					snprintf(got, n, "%s", role);
					return strcmp(role,
						      c->node_role == SCN_ROLE_MANAGER
							      ? "manager"
							      : "worker") == 0;
				}
				snprintf(got, n, "%s", st);
				return strcmp(st, c->node_ready ? "ready" : "down") == 0;
			}
		}
		snprintf(got, n, "%s not listed", rw->nodes[want].name);
		return 0;
	}
	case SCN_COND_SERVICE: {
		bool found = false;
		if (leader < 0 ||
		    rw_ctl(rw, leader, RW_ARGV("service", "ls", "--format", "json"))) {
			snprintf(got, n, "no leader");
			return -1;
		}
		p = rw->out;
		while (realplan_json_next(&p, &obj, &len)) {
			char nm[256];
			if (realplan_json_get(obj, len, "name", nm, sizeof nm) &&
			    strcmp(nm, c->service) == 0)
				found = true;
		}
		snprintf(got, n, "%s", found ? "exists" : "absent");
		return found == c->exists;
	}
	case SCN_COND_CONVERGED: {
		bool listed[REALPLAN_NODES_MAX] = {false};
		char *services;
		const char *q;
		/* every node whose swarmd runs and that the leader reaches:
		 * READY */
		if (leader < 0 || rw_node_list(rw)) {
			snprintf(got, n, "no leader");
			return -1;
		}
		p = rw->out;
		while (realplan_json_next(&p, &obj, &len)) {
			char host[64], st[32];
			int k;
			if (!realplan_json_get(obj, len, "hostname", host, sizeof host) ||
			    !realplan_json_get(obj, len, "status", st, sizeof st))
				continue;
			k = rw_node_by_name(rw, host);
			if (k < 0 || !rw->nodes[k].swarmd ||
			    realplan_net_blocked(&rw->net, (uint32_t)leader, (uint32_t)k))
				continue;
			if (strcmp(st, "ready") != 0) {
				snprintf(got, n, "%s is %s", host, st);
				return 0;
			}
			listed[k] = true;
		}
		/* ... listed at all: a worker still joining is not (the
		 * scheduler has not seen it; partitioned-worker.scn's tasks
		 * all went to w1 while w2 joined, and converged held) */
		for (uint32_t k = 0; k < rw->n; k++) {
			if (!rw->nodes[k].swarmd || listed[k] ||
			    realplan_net_blocked(&rw->net, (uint32_t)leader, k))
				continue;
			snprintf(got, n, "%s is up but not in the store yet",
				 rw->nodes[k].name);
			return 0;
		}
		if (rw_ctl(rw, leader, RW_ARGV("service", "ls", "--format", "json"))) {
			snprintf(got, n, "service ls failed");
			return -1;
		}
		services = strdup(rw->out);
		if (!services)
			return -1;
		q = services;
		while (realplan_json_next(&q, &obj, &len)) {
			char nm[256], mode[32], want[32], run[32];
			uint64_t w, r;
			int64_t truth;
			if (!realplan_json_get(obj, len, "name", nm, sizeof nm) ||
			    !realplan_json_get(obj, len, "mode", mode, sizeof mode) ||
			    !realplan_json_get(obj, len, "replicas", want, sizeof want) ||
			    !realplan_json_get(obj, len, "running", run, sizeof run))
				continue;
			if (strstr(mode, "job"))
				continue; /* a job converges by completing */
			w = strtoull(want, NULL, 10);
			r = strtoull(run, NULL, 10);
			truth = rw_running(rw, nm, -1);
			if (r != w || truth != (int64_t)w) {
				snprintf(got, n,
					 "%.64s: %" PRIu64 " desired, %" PRIu64
					 " running in the store, %" PRId64 " in Docker",
					 nm, w, r, truth);
				free(services);
				return 0;
			}
		}
		free(services);
		snprintf(got, n, "converged");
		return 1;
	}
	default: snprintf(got, n, "not read from real daemons"); return -1;
	}
}

/* Checks the `always` conditions now. Returns 0, or -1 (run failed). */
static int rw_check_always(struct rw *rw)
{
	char got[256];
	for (size_t i = 0; i < rw->always_count; i++) {
		const struct scn_cmd *c = rw->always[i];
		if (rw_cond(rw, &c->u.expect.cond, got, sizeof got) != 1)
			return rw_fail(rw, c, "%s", got);
	}
	return 0;
}

/* With a timeline: counts every service's running containers (Docker's
 * ground truth, all nodes) once a second. */
static void rw_sample(struct rw *rw)
{
	struct {
		char name[LIMIT_NAME_BYTES_MAX + 1];
		uint32_t running;
	} seen[64];
	size_t count = 0;
	us_t at;

	if (!rw->o->tl || rw_now() < rw->next_sample)
		return;
	rw->next_sample = rw_now() + 1.0;
	at = rw_us(rw);
	for (uint32_t i = 0; i < rw->n; i++) {
		char *save = NULL;
		if (rw_docker(rw, (int)i,
			      RW_ARGV("ps", "--filter", "label=cswarm.service.name",
				      "--format", "{{.Label \"cswarm.service.name\"}}")))
			continue;
		for (char *t = strtok_r(rw->out, "\n", &save); t;
		     t = strtok_r(NULL, "\n", &save)) {
			size_t k;
			for (k = 0; k < count && strcmp(seen[k].name, t) != 0; k++)
				;
			if (k == count) {
				if (count == sizeof seen / sizeof seen[0])
					continue;
				snprintf(seen[count].name, sizeof seen[count].name, "%s",
					 t);
				seen[count++].running = 0;
			}
			seen[k].running++;
		}
	}
	for (size_t k = 0; k < count; k++)
		timeline_real_running(rw->o->tl, seen[k].name, seen[k].running, at);
	/* services seen before and gone now: 0 */
	for (size_t i = 0; i < rw->o->tl->series_count; i++) {
		size_t k;
		for (k = 0; k < count && strcmp(seen[k].name, rw->o->tl->series[i].name);
		     k++)
			;
		if (k == count)
			timeline_real_running(rw->o->tl, rw->o->tl->series[i].name, 0,
					      at);
	}
}

/* Waits ms of real time, checking the `always` conditions every poll.
 * Returns 0, -1 (failed) or CS_ECANCELED (a signal). */
static int rw_wait(struct rw *rw, uint64_t ms)
{
	double end = rw_now() + (double)ms / 1000.0;
	for (;;) {
		double left = end - rw_now();
		if (rw_signal)
			return CS_ECANCELED;
		if (rw_check_always(rw))
			return -1;
		rw_sample(rw);
		if (left <= 0)
			return 0;
		rw->res->events++;
		if (!rw_sleep_ms(left * 1000 < RW_POLL_MS ? (unsigned)(left * 1000) + 1
							  : RW_POLL_MS))
			return CS_ECANCELED;
	}
}

/* ---------------------------------------------------------------- commands */

static int rw_resolve(struct rw *rw, const struct scn_cmd *c, struct scn_node node)
{
	char name[16];
	int k;
	if (node.kind == SCN_NODE_LEADER) {
		k = rw_leader(rw);
		if (k < 0)
			rw_fail(rw, c, "no leader");
		return k;
	}
	k = realplan_node_index(node, rw->managers, rw->workers);
	if (k < 0)
		rw_fail(rw, c, "no node %s", scn_node_name(node, name, sizeof name));
	return k;
}

static int rw_check_always(struct rw *rw);

/* The leader a control API call goes to: like a client retrying (and as
 * the simulated runner), waits for one a minute at most. */
static int rw_api_leader(struct rw *rw, const struct scn_cmd *c)
{
	double end = rw_now() + 60.0;
	int k;
	while ((k = rw_leader(rw)) < 0) {
		if (rw_now() > end)
			return rw_fail(rw, c, "no leader to ask (waited 60s)");
		if (rw_check_always(rw) || !rw_sleep_ms(RW_POLL_MS))
			return -1;
	}
	return k;
}

/* swarmctl args on the leader; one more try (on the leader then) after a
 * failure unless refused is wanted, as the simulated runner retries a
 * call. Returns swarmctl's exit status, or -1 (no leader: failed). */
static int rw_api(struct rw *rw, const struct scn_cmd *c, char *const *args)
{
	int leader = rw_api_leader(rw, c), rv;
	if (leader < 0)
		return -1;
	rv = rw_ctl(rw, leader, args);
	if (rv == 0 || c->refuse || !rw_sleep_ms(1000))
		return rv;
	leader = rw_api_leader(rw, c);
	if (leader < 0)
		return -1;
	return rw_ctl(rw, leader, args);
}

static void rw_fmt_ms(char *buf, size_t n, uint64_t ms)
{
	snprintf(buf, n, "%" PRIu64 "ms", ms);
}

/* The swarmctl arguments of a service create or update. */
static int rw_service(struct rw *rw, const struct scn_cmd *c)
{
	const struct scn_service *sv = &c->u.service;
	bool create = c->kind == SCN_SERVICE_CREATE;
	char bufs[40][64], *argv[200];
	size_t k = 0, b = 0;
	int rv;

#define RW_ARG(s) (argv[k++] = (char *)(s))
#define RW_NUM(flag, v)                                                       \
	do {                                                                  \
		snprintf(bufs[b], sizeof bufs[b], "%" PRIu64, (uint64_t)(v)); \
		RW_ARG(flag);                                                 \
		RW_ARG(bufs[b++]);                                            \
	} while (0)
#define RW_DUR(flag, v)                                  \
	do {                                             \
		rw_fmt_ms(bufs[b], sizeof bufs[b], (v)); \
		RW_ARG(flag);                            \
		RW_ARG(bufs[b++]);                       \
	} while (0)
#define RW_RATIO(flag, ppm)                                                    \
	do {                                                                   \
		snprintf(bufs[b], sizeof bufs[b], "%u.%06u", (ppm) / 1000000u, \
			 (ppm) % 1000000u);                                    \
		RW_ARG(flag);                                                  \
		RW_ARG(bufs[b++]);                                             \
	} while (0)
	static const char *const restarts[] = {"any", "on-failure", "none"};
	static const char *const actions[] = {"pause", "continue", "rollback"};
	static const char *const orders[] = {"stop-first", "start-first"};
	static const char *const modes[] = {"replicated", "global", "replicated-job",
					    "global-job"};

	RW_ARG("service");
	RW_ARG(create ? "create" : "update");
	if (create) {
		RW_ARG("--name");
		RW_ARG(sv->name);
		RW_ARG("--image");
		RW_ARG((sv->set & SCN_SVC_IMAGE) ? sv->image : RW_DEFAULT_IMAGE);
		RW_ARG("--mode");
		RW_ARG(modes[sv->mode]);
		if (sv->mode != SCN_MODE_GLOBAL && sv->mode != SCN_MODE_GLOBAL_JOB)
			RW_NUM("--replicas", sv->replicas);
	} else if (sv->rollback) {
		RW_ARG("--rollback");
	} else {
		if (sv->set & SCN_SVC_IMAGE) {
			RW_ARG("--image");
			RW_ARG(sv->image);
		}
		if (sv->set & SCN_SVC_REPLICAS)
			RW_NUM("--replicas", sv->replicas);
		if (sv->force)
			RW_ARG("--force");
	}
	if (!sv->rollback) {
		for (size_t i = 0;
		     (sv->set & SCN_SVC_CONSTRAINT) && i < sv->constraint_count; i++) {
			RW_ARG("--constraint");
			RW_ARG(sv->constraints[i].text);
		}
		if (sv->set & SCN_SVC_RESERVE_CPU) {
			snprintf(bufs[b], sizeof bufs[b], "%" PRIu64 ".%03" PRIu64,
				 sv->reserve_millicpu / 1000,
				 sv->reserve_millicpu % 1000);
			RW_ARG("--reserve-cpu");
			RW_ARG(bufs[b++]);
		}
		if (sv->set & SCN_SVC_RESERVE_MEM)
			RW_NUM("--reserve-memory", sv->reserve_mem_bytes);
		for (size_t i = 0; (sv->set & SCN_SVC_SPREAD) && i < sv->spread_count;
		     i++) {
			snprintf(bufs[b], sizeof bufs[b], "spread=%s", sv->spreads[i]);
			RW_ARG("--placement-pref");
			RW_ARG(bufs[b++]);
		}
		if (create || (sv->set & SCN_SVC_RESTART)) {
			RW_ARG("--restart-condition");
			RW_ARG(restarts[sv->restart]);
		}
		if (create || (sv->set & SCN_SVC_RESTART_DELAY))
			RW_DUR("--restart-delay", sv->restart_delay_ms);
		if (sv->set & SCN_SVC_RESTART_MAX)
			RW_NUM("--restart-max-attempts", sv->restart_max);
		if (sv->set & SCN_SVC_RESTART_WINDOW)
			RW_DUR("--restart-window", sv->restart_window_ms);
		if (create || (sv->set & SCN_SVC_UPDATE_PARALLELISM))
			RW_NUM("--update-parallelism", sv->update_parallelism);
		if (sv->set & SCN_SVC_UPDATE_DELAY)
			RW_DUR("--update-delay", sv->update_delay_ms);
		if (create || (sv->set & SCN_SVC_UPDATE_FAILURE_ACTION)) {
			RW_ARG("--update-failure-action");
			RW_ARG(actions[sv->update_failure_action]);
		}
		if (create || (sv->set & SCN_SVC_UPDATE_ORDER)) {
			RW_ARG("--update-order");
			RW_ARG(orders[sv->update_order]);
		}
		if (create || (sv->set & SCN_SVC_UPDATE_MONITOR))
			RW_DUR("--update-monitor", sv->update_monitor_ms);
		if (sv->set & SCN_SVC_UPDATE_MAX_FAILURE_RATIO)
			RW_RATIO("--update-max-failure-ratio",
				 sv->update_max_failure_ratio_ppm);
		if (sv->set & SCN_SVC_MAX_CONCURRENT)
			RW_NUM("--max-concurrent", sv->max_concurrent);
		if (sv->set & SCN_SVC_STOP_GRACE)
			RW_DUR("--stop-grace-period", sv->stop_grace_period_ms);
		if (sv->set & SCN_SVC_ROLLBACK_PARALLELISM)
			RW_NUM("--rollback-parallelism", sv->rollback_parallelism);
		if (sv->set & SCN_SVC_ROLLBACK_DELAY)
			RW_DUR("--rollback-delay", sv->rollback_delay_ms);
		if (sv->set & SCN_SVC_ROLLBACK_FAILURE_ACTION) {
			RW_ARG("--rollback-failure-action");
			RW_ARG(actions[sv->rollback_failure_action]);
		}
		if (sv->set & SCN_SVC_ROLLBACK_MONITOR)
			RW_DUR("--rollback-monitor", sv->rollback_monitor_ms);
		if (sv->set & SCN_SVC_ROLLBACK_MAX_FAILURE_RATIO)
			RW_RATIO("--rollback-max-failure-ratio",
				 sv->rollback_max_failure_ratio_ppm);
		if (sv->set & SCN_SVC_ROLLBACK_ORDER) {
			RW_ARG("--rollback-order");
			RW_ARG(orders[sv->rollback_order]);
		}
		if (sv->set & SCN_SVC_HEALTH) {
			if (sv->health_none)
				RW_ARG("--no-healthcheck");
			else if (sv->health_set & SCN_HEALTH_CMD) {
				RW_ARG("--health-cmd");
				RW_ARG(sv->health_cmd);
			}
			if (sv->health_set & SCN_HEALTH_INTERVAL)
				RW_DUR("--health-interval", sv->health_interval_ms);
			if (sv->health_set & SCN_HEALTH_TIMEOUT)
				RW_DUR("--health-timeout", sv->health_timeout_ms);
			if (sv->health_set & SCN_HEALTH_RETRIES)
				RW_NUM("--health-retries", sv->health_retries);
			if (sv->health_set & SCN_HEALTH_START_PERIOD)
				RW_DUR("--health-start-period",
				       sv->health_start_period_ms);
		}
		for (size_t i = 0;
		     (sv->set & SCN_SVC_ENV) && i < sv->env_count && k < 190; i++) {
			RW_ARG("--env");
			RW_ARG(sv->envs[i]);
		}
	}
	if (!create)
		RW_ARG(sv->name);
	argv[k] = NULL;
	if (k >= 195 || b > 40)
		return rw_fail(rw, c, "more arguments than swarmctl is given here");
#undef RW_ARG
#undef RW_NUM
#undef RW_DUR
#undef RW_RATIO
	rv = rw_api(rw, c, argv);
	if (rv < 0)
		return -1;
	if (c->refuse)
		return rv != 0 ? 0 : rw_fail(rw, c, "the control API accepted it");
	if (rv != 0)
		return rw_fail(rw, c, "swarmctl failed (exit %d; see run.log)", rv);
	return 0;
}

static int rw_node_cmd(struct rw *rw, const struct scn_cmd *c)
{
	int k = rw_resolve(rw, c, c->u.node.node), rv;
	char label[600];
	if (k < 0)
		return -1;
	switch (c->kind) {
	case SCN_NODE_DRAIN:
		rv = rw_api(rw, c,
			    RW_ARGV("node", "update", "--availability", "drain",
				    rw->nodes[k].name));
		break;
	case SCN_NODE_PAUSE:
		rv = rw_api(rw, c,
			    RW_ARGV("node", "update", "--availability", "pause",
				    rw->nodes[k].name));
		break;
	case SCN_NODE_ACTIVATE:
		rv = rw_api(rw, c,
			    RW_ARGV("node", "update", "--availability", "active",
				    rw->nodes[k].name));
		break;
	case SCN_NODE_LABEL:
		snprintf(label, sizeof label, "%s=%s", c->u.node.label_key,
			 c->u.node.label_value);
		rv = rw_api(rw, c,
			    RW_ARGV("node", "update", "--label-add", label,
				    rw->nodes[k].name));
		break;
	case SCN_NODE_PROMOTE:
		rv = rw_api(rw, c, RW_ARGV("node", "promote", rw->nodes[k].name));
		if (rv == 0)
			rw->nodes[k].manager = true;
		break;
	case SCN_NODE_DEMOTE:
		rv = rw_api(rw, c, RW_ARGV("node", "demote", rw->nodes[k].name));
		if (rv == 0)
			rw->nodes[k].manager = false;
		break;
	case SCN_NODE_RM:
		rv = rw_api(rw, c, RW_ARGV("node", "rm", "--force", rw->nodes[k].name));
		break;
	default: return rw_fail(rw, c, "not a node command");
	}
	if (rv < 0)
		return -1;
	if (rv != 0)
		return rw_fail(rw, c, "swarmctl failed (exit %d; see run.log)", rv);
	return 0;
}

static int rw_kill(struct rw *rw, const struct scn_cmd *c)
{
	int k = rw_resolve(rw, c, c->u.node.node);
	struct rw_node *nd;
	char a[40];
	if (k < 0)
		return -1;
	nd = &rw->nodes[k];
	if (!nd->swarmd && c->u.node.process_only)
		return rw_fail(rw, c, "%s is already down", nd->name);
	rw_stop(nd->swarmd, SIGKILL, 2000);
	nd->swarmd = 0;
	rw_say(rw, "killed %s's swarmd%s", nd->name,
	       c->u.node.process_only ? "" : " and its machine");
	if (rw->o->tl)
		timeline_real_down(rw->o->tl, (uint32_t)k, !c->u.node.process_only,
				   rw_us(rw));
	if (c->u.node.process_only)
		return 0;
	/* a machine death: its containers die, its link goes silent */
	nd->machine_down = true;
	rw_remove_containers(rw, k);
	snprintf(a, sizeof a, "%s-%sa", rw->tag, nd->name);
	rw_ip(rw, nd->ns, RW_ARGV("link", "set", a, "down"));
	if (c->u.node.disk_lost) {
		nd->gone = true;
		rw_run(rw, NULL, RW_ARGV("rm", "-rf", nd->state_dir), NULL, 30000);
	}
	return 0;
}

static int rw_restart(struct rw *rw, const struct scn_cmd *c)
{
	int k = rw_resolve(rw, c, c->u.node.node);
	struct rw_node *nd;
	char a[40];
	if (k < 0)
		return -1;
	nd = &rw->nodes[k];
	if (nd->swarmd)
		return 0; /* as the simulator: a running node is left alone */
	if (nd->gone)
		return rw_fail(rw, c, "%s is gone with its disk (kill %s disk)", nd->name,
			       nd->name);
	if (nd->machine_down) {
		snprintf(a, sizeof a, "%s-%sa", rw->tag, nd->name);
		rw_ip(rw, nd->ns, RW_ARGV("link", "set", a, "up"));
		nd->machine_down = false;
	}
	if (rw_start_swarmd(rw, k, false))
		return rw_fail(rw, c, "cannot start swarmd");
	if (rw->o->tl)
		timeline_real_up(rw->o->tl, (uint32_t)k, rw_us(rw));
	return 0;
}

static int rw_partition(struct rw *rw, const struct scn_cmd *c)
{
	const struct scn_partition *p = &c->u.partition;
	uint32_t group_of[REALPLAN_NODES_MAX] = {0}, star = 0;
	char err[128];
	for (size_t g = 0; g < p->group_count; g++) {
		if (p->groups[g].star) {
			star = (uint32_t)g + 1;
			continue;
		}
		for (size_t i = 0; i < p->groups[g].node_count; i++) {
			int k = rw_resolve(rw, c, p->groups[g].nodes[i]);
			if (k < 0)
				return -1;
			if (runner_partition_put(group_of, REALPLAN_NODES_MAX,
						 (uint32_t)k, (uint32_t)g + 1,
						 rw->nodes[k].name, err, sizeof err))
				return rw_fail(rw, c, "%s", err);
		}
	}
	if (realplan_net_partition(&rw->net, group_of, star))
		return rw_fail(rw, c, "more partitions at once than a real run keeps");
	if (rw_net_apply(rw))
		return rw_fail(rw, c, "nft failed (see run.log)");
	return 0;
}

static int rw_link(struct rw *rw, const struct scn_cmd *c)
{
	const struct scn_link *l = &c->u.link;
	int a = rw_resolve(rw, c, l->a), b;
	char err[128];
	if (a < 0)
		return -1;
	b = rw_resolve(rw, c, l->b);
	if (b < 0)
		return -1;
	if (runner_link_check((uint32_t)a, (uint32_t)b, rw->nodes[a].name, err,
			      sizeof err))
		return rw_fail(rw, c, "%s", err);
	rw->net.loss_ppm[a][b] = l->has_loss ? l->loss_ppm : 0;
	if (!l->one_way)
		rw->net.loss_ppm[b][a] = rw->net.loss_ppm[a][b];
	if (rw_net_apply(rw))
		return rw_fail(rw, c, "nft failed (see run.log)");
	return 0;
}

static int rw_expect(struct rw *rw, const struct scn_cmd *c)
{
	bool await = c->kind == SCN_AWAIT;
	double end =
		rw_now() + (c->u.expect.has_within ? c->u.expect.within_ms / 1000.0 : 0);
	char got[256];
	for (;;) {
		int v = rw_cond(rw, &c->u.expect.cond, got, sizeof got);
		rw->res->events++;
		if (v == 1)
			return 0;
		if (rw_now() >= end)
			return await ? 0 : rw_fail(rw, c, "%s", got);
		if (rw_check_always(rw))
			return -1;
		rw_sample(rw);
		if (!rw_sleep_ms(RW_POLL_MS))
			return CS_ECANCELED;
	}
}

static int rw_cmd(struct rw *rw, const struct scn_cmd *c)
{
	char got[256];
	switch (c->kind) {
	case SCN_CLUSTER:
	case SCN_SEED:
	case SCN_IMAGE: /* built before the run */ return 0;
	case SCN_SET:
		if (!(c->u.settings.set & SCN_SET_ORPHAN_DELAY))
			return 0; /* realplan_check: the real daemons' own values */
		{
			char d[40];
			rw_fmt_ms(d, sizeof d, c->u.settings.orphan_delay_ms);
			if (rw_api(rw, c,
				   RW_ARGV("cluster", "update", "--orphan-delay", d)))
				return rw_fail(rw, c, "swarmctl cluster update failed");
		}
		return 0;
	case SCN_RUN: return rw_wait(rw, c->u.run_ms);
	case SCN_SERVICE_CREATE:
	case SCN_SERVICE_UPDATE: return rw_service(rw, c);
	case SCN_SERVICE_RM: {
		int rv;
		rv = rw_api(rw, c, RW_ARGV("service", "rm", c->u.service_name));
		if (rv < 0)
			return -1;
		if (c->refuse)
			return rv ? 0 : rw_fail(rw, c, "the control API accepted it");
		return rv ? rw_fail(rw, c, "swarmctl failed (exit %d)", rv) : 0;
	}
	case SCN_NODE_RM:
	case SCN_NODE_DRAIN:
	case SCN_NODE_PAUSE:
	case SCN_NODE_ACTIVATE:
	case SCN_NODE_LABEL:
	case SCN_NODE_PROMOTE:
	case SCN_NODE_DEMOTE: return rw_node_cmd(rw, c);
	case SCN_KILL: return rw_kill(rw, c);
	case SCN_RESTART: return rw_restart(rw, c);
	case SCN_PARTITION:
	case SCN_ISOLATE: return rw_partition(rw, c);
	case SCN_LINK: return rw_link(rw, c);
	case SCN_HEAL:
		memset(rw->net.loss_ppm, 0, sizeof rw->net.loss_ppm);
		rw->net.part_count = 0;
		return rw_net_apply(rw) ? rw_fail(rw, c, "nft failed (see run.log)") : 0;
	case SCN_EXPECT:
	case SCN_AWAIT: return rw_expect(rw, c);
	case SCN_ALWAYS:
		if (rw->always_count >= RW_ALWAYS_MAX)
			return rw_fail(rw, c, "more than %u `always` conditions",
				       RW_ALWAYS_MAX);
		rw->always[rw->always_count++] = c;
		if (rw_cond(rw, &c->u.expect.cond, got, sizeof got) != 1)
			return rw_fail(rw, c, "%s", got);
		return 0;
	default: return rw_fail(rw, c, "not realised (realplan_check lets it through)");
	}
}

/* ---------------------------------------------------------------- the run */

bool realworld_netem_works(void)
{
	char ns[40], cmd[512];
	int rv;
	snprintf(ns, sizeof ns, "rw%04xprobe", (unsigned)getpid() & 0xffff);
	snprintf(cmd, sizeof cmd,
		 "ip netns add %s && ip -n %s link set lo up && "
		 "tc -n %s qdisc add dev lo root netem delay 1ms 2>/dev/null; r=$?; "
		 "ip netns del %s; "
		 "exit $r",
		 ns, ns, ns, ns);
	rv = system(cmd); /* a fixed command of ours, no input in it */
	return rv == 0;
}

int realworld_run(const struct scn_script *s, const struct realworld_opts *o,
		  struct runner_result *res)
{
	struct rw *rw = calloc(1, sizeof *rw);
	struct sigaction sa, old_int, old_term, old_hup;
	char tmpl[64];
	int rv = 0;

	memset(res, 0, sizeof *res);
	res->passed = true;
	res->hash = 0xcbf29ce484222325ull;
	if (!rw)
		return CS_ENOMEM;
	rw->out = malloc(RW_OUT_BYTES_MAX);
	if (!rw->out) {
		free(rw);
		return CS_ENOMEM;
	}
	rw->s = s;
	rw->o = o;
	rw->res = res;
	rw->leader = -1;
	rw->millicpus = 4000;
	rw->memory_bytes = 8ull << 30;
	snprintf(rw->swarmd, sizeof rw->swarmd, "%s/swarmd", o->bin_dir);
	snprintf(rw->swarmctl, sizeof rw->swarmctl, "%s/swarmctl", o->bin_dir);
	if (access(rw->swarmd, X_OK) || access(rw->swarmctl, X_OK)) {
		snprintf(res->message, sizeof res->message,
			 "--real needs %.200s and %.200s (make)", rw->swarmd,
			 rw->swarmctl);
		res->passed = false;
		free(rw->out);
		free(rw);
		return CS_ENOENT;
	}
	snprintf(rw->tag, sizeof rw->tag, "rw%04x", (unsigned)getpid() & 0xffff);
	snprintf(tmpl, sizeof tmpl, "/tmp/%s.XXXXXX", rw->tag);
	if (!mkdtemp(tmpl)) {
		snprintf(res->message, sizeof res->message, "mkdtemp: %s",
			 strerror(errno));
		res->passed = false;
		free(rw->out);
		free(rw);
		return CS_ESTORAGE;
	}
	snprintf(rw->work, sizeof rw->work, "%s", tmpl);
	setenv("DOCKER_BUILDKIT", "0", 1);

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = rw_on_signal;
	sigemptyset(&sa.sa_mask);
	rw_signal = 0;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);

	const struct scn_cmd *cc = scn_first(s, SCN_CLUSTER);
	if (cc) {
		const struct scn_cluster *cl = &cc->u.cluster;
		rw->managers = cl->managers;
		rw->workers = cl->workers;
		if (cl->millicpus)
			rw->millicpus = cl->millicpus;
		if (cl->memory_bytes)
			rw->memory_bytes = cl->memory_bytes;
	}
	rw->n = rw->managers + rw->workers;
	rw->net.node_count = rw->n;
	for (uint32_t i = 0; i < rw->n; i++) {
		struct rw_node *nd = &rw->nodes[i];
		/* copies: the sources must not overlap *rw, the destination */
		char tag[sizeof rw->tag], work[sizeof rw->work], name[sizeof nd->name];
		memcpy(tag, rw->tag, sizeof tag);
		memcpy(work, rw->work, sizeof work);
		nd->manager = i < rw->managers;
		snprintf(name, sizeof name, "%c%u", nd->manager ? 'm' : 'w',
			 nd->manager ? i + 1 : i - rw->managers + 1);
		memcpy(nd->name, name, sizeof name);
		snprintf(nd->ns, sizeof nd->ns, "%s-%s", tag, name);
		snprintf(nd->addr, sizeof nd->addr, "10.26.0.%u", i + 1);
		snprintf(rw->addrs[i], sizeof rw->addrs[i], "10.26.0.%u", i + 1);
		snprintf(nd->state_dir, sizeof nd->state_dir, "%s/%s", work, name);
		snprintf(nd->sock, sizeof nd->sock, "%s/%s.sock", work, name);
		snprintf(nd->dsock, sizeof nd->dsock, "%s/d-%s/docker.sock", work, name);
		snprintf(nd->log, sizeof nd->log, "%s/%s.log", work, name);
	}
	rw_say(rw, "work dir %s", rw->work);
	if (rw->n == 0 || rw->managers == 0) {
		rw_fail(rw, NULL, "a real run needs `cluster managers=N` first");
	} else if (rw_setup(rw) == 0) {
		for (size_t i = 0; i < s->cmd_count && !rw->failed; i++) {
			const struct scn_cmd *c = &s->cmds[i];
			rw_say(rw, "line %" PRIu32 ": %s", c->line, c->text);
			if (o->tl)
				timeline_real_command(o->tl, c->line, c->text, rw_us(rw));
			rv = rw_cmd(rw, c);
			if (rv == CS_ECANCELED || rw_signal) {
				rv = CS_ECANCELED;
				break;
			}
			rv = 0;
			for (const char *t = c->text; *t; t++)
				rw_hash(rw, (uint8_t)*t);
			rw_hash(rw, ((uint64_t)c->line << 8) | (uint64_t)rw->failed);
			res->events++;
		}
		res->sim_us = rw_us(rw);
		if (o->tl)
			timeline_real_end(o->tl, res->sim_us);
	}
	rw_say(rw, "tearing down");
	rw_teardown(rw);
	/* a signal during the run or its teardown stops swarmsim */
	if (rw_signal && rv == 0)
		rv = CS_ECANCELED;
	if (rv == CS_ECANCELED) {
		res->passed = false;
		snprintf(res->message, sizeof res->message,
			 "interrupted by signal %d: everything the run made is removed",
			 (int)rw_signal);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGHUP, &old_hup, NULL);
	free(rw->out);
	free(rw);
	return rv;
}
