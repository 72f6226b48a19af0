/* docker: the executor on the Docker Engine API. See docker.h for the
 * contract. Sections: types, the curl multi driven by libuv (sockets, the
 * timer, completions), transfers, the JSON of requests and answers,
 * controllers, listing and ping, open and close.
 *
 * Every request is one transfer (a curl easy handle) in the docker's multi
 * handle; libuv tells curl when a socket is ready or its timer is due, and
 * completions are read with curl_multi_info_read from those uv callbacks
 * only, so no callback ever runs inside a call of ours. A cancelled transfer
 * is removed from the multi handle (curl drops its pending message too) and
 * freed at once. */
#include "net/docker.h"

#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <stdarg.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/limits.h"
#include "net/dlist.h"

/* ---------------------------------------------------------------- types */

#define DOCKER_NAME_PREFIX "cswarm-"
#define DOCKER_URL_BASE	   "http://localhost/" DOCKER_API_VERSION

enum { DOCKER_MESSAGE_BYTES = sizeof(((struct env_ctl_req *)0)->message) };

enum docker_xfer_kind {
	DOCKER_XFER_OP,	   /* a controller's op other than WAIT */
	DOCKER_XFER_WAIT,  /* a controller's WAIT */
	DOCKER_XFER_LIST,  /* docker_ctl_list */
	DOCKER_XFER_PING,  /* docker_ping */
	DOCKER_XFER_INFO,  /* docker_info */
	DOCKER_XFER_NETRM, /* docker_net_remove (issue 17) */
	DOCKER_XFER_LOGS,  /* docker_logs_read (issue 16) */
};

struct docker_ctl;

/* One HTTP request in flight. */
struct docker_xfer {
	struct docker *d;
	struct docker_xfer *prev, *next; /* d->xfers */
	enum docker_xfer_kind kind;
	CURL *easy;
	struct curl_slist *headers;
	char what[128]; /* "POST /containers/x/start", for messages */
	long timeout_ms;
	char *resp; /* the answer's body, NUL-terminated */
	size_t resp_len, resp_cap;
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
	/* OP, WAIT */
	struct docker_ctl *ctl;
	enum env_ctl_op op;
	struct env_ctl_req *req;
	env_ctl_cb cb;
	/* LIST */
	struct env_ctl_list_req *list_req;
	env_ctl_list_cb list_cb;
	/* PING */
	docker_ping_cb ping_cb;
	void *ping_data;
	/* INFO (its data is ping_data) */
	docker_info_cb info_cb;
	/* LOGS */
	struct env_logs_req *logs_req;
	env_logs_cb logs_cb;
	bool logs_enough; /* stopped reading: max_bytes are in */
};

/* A socket curl asked us to watch. */
struct docker_sock {
	uv_poll_t poll;
	struct docker *d;
	struct docker_sock *prev, *next; /* d->socks while open */
	curl_socket_t fd;
};

struct docker_ctl {
	struct docker *d;
	struct docker_ctl *prev, *next; /* d->ctls, then d->closed */
	char name[sizeof DOCKER_NAME_PREFIX + LIMIT_NAME_BYTES_MAX];
	char *create_body; /* the JSON of POST /containers/create */
	ms_t stop_timeout_ms;
	struct docker_xfer *op;	  /* in flight, or NULL */
	struct docker_xfer *wait; /* in flight, or NULL */
	bool closing;
	env_ctl_close_cb close_cb;
	void *close_data;
	/* appended (issue 17): the container's networks (docker_ctl_open_net).
	 * PREPARE runs 2 * net_count steps (prep_step): each network's POST
	 * /networks/create, the container's create (attached to the first),
	 * then POST /networks/NAME/connect for the others. */
	size_t net_count;
	char **net_names;	   /* the Docker networks' names */
	char **net_create_bodies;  /* POST /networks/create */
	char **net_connect_bodies; /* POST /networks/NAME/connect ([0] unused) */
	size_t prep_step;
	/* a network not declared on this node: PREPARE fails with these
	 * words, from the loop (fail_req and fail_cb while pending) */
	char prep_fail[DOCKER_MESSAGE_BYTES];
	bool fail_pending;
	struct env_ctl_req *fail_req;
	env_ctl_cb fail_cb;
	/* appended (issue 20): the task id, for its files' directory */
	char task_id[LIMIT_NAME_BYTES_MAX + 1];
};

struct docker {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer; /* curl's timeout */
	uv_timer_t defer; /* runs the close callbacks of controllers */
	char socket_path[DOCKER_SOCKET_BYTES_MAX + 1];
	char node_id[LIMIT_LABEL_BYTES_MAX + 1]; /* "" for none */
	bool network_none;
	void (*log)(void *data, enum env_log_level lvl, const char *msg);
	void *log_data;
	char files_dir[DOCKER_FILES_DIR_BYTES_MAX + 1]; /* issue 20: "" none */
	bool files_mounted; /* this process mounted the tmpfs there */
	struct docker_xfer *xfers;
	struct docker_sock *socks;
	struct docker_ctl *ctls;   /* open */
	struct docker_ctl *closed; /* closed, their callback not yet run */
	size_t handles_open;	   /* uv handles not yet through their close cb */
	bool closing;
};

/* What a finished request gives its caller. */
struct docker_result {
	int status;
	enum env_ctl_state state;
	int32_t exit_code;
	char message[DOCKER_MESSAGE_BYTES];
	enum env_ctl_health health; /* INSPECT */
	bool has_health;
};

static void docker_logf(struct docker *d, enum env_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void docker_logf(struct docker *d, enum env_log_level lvl, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	if (!d->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	d->log(d->log_data, lvl, line);
}

/* ---------------------------------------------------------------- curl on libuv */

static void docker_unref(struct docker *d);
static void docker_check_done(struct docker *d);

static void docker_sock_closed(uv_handle_t *h)
{
	struct docker_sock *ds = h->data;
	struct docker *d = ds->d;
	free(ds);
	docker_unref(d);
}

/* Stops watching ds and frees it once libuv is done with it. */
static void docker_sock_close(struct docker *d, struct docker_sock *ds)
{
	DLIST_UNLINK(d->socks, ds);
	uv_close((uv_handle_t *)&ds->poll, docker_sock_closed);
}

static void docker_poll_cb(uv_poll_t *h, int status, int events)
{
	struct docker_sock *ds = h->data;
	struct docker *d = ds->d;
	int flags = 0, running = 0;

	assert(!d->closing);
	if (status < 0) {
		flags = CURL_CSELECT_ERR;
	} else {
		if (events & UV_READABLE)
			flags |= CURL_CSELECT_IN;
		if (events & UV_WRITABLE)
			flags |= CURL_CSELECT_OUT;
	}
	/* ds may be closed inside (CURL_POLL_REMOVE); freed only later */
	curl_multi_socket_action(d->multi, ds->fd, flags, &running);
	docker_check_done(d);
}

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl wants, or stop. */
static int docker_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
			    void *socketp)
{
	struct docker *d = userp;
	struct docker_sock *ds = socketp;
	int events = 0;

	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		if (ds) {
			docker_sock_close(d, ds);
			curl_multi_assign(d->multi, s, NULL);
		}
		return 0;
	}
	if (!ds) {
		ds = calloc(1, sizeof *ds);
		if (!ds)
			return -1;
		if (uv_poll_init_socket(d->loop, &ds->poll, s) != 0) {
			free(ds);
			return -1;
		}
		ds->poll.data = ds;
		ds->d = d;
		ds->fd = s;
		d->handles_open++;
		DLIST_PUSH(d->socks, ds);
		curl_multi_assign(d->multi, s, ds);
	}
	if (what & CURL_POLL_IN)
		events |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		events |= UV_WRITABLE;
	uv_poll_start(&ds->poll, events, docker_poll_cb);
	return 0;
}

static void docker_timer_cb(uv_timer_t *h)
{
	struct docker *d = h->data;
	int running = 0;

	assert(!d->closing);
	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	docker_check_done(d);
}

/* CURLMOPT_TIMERFUNCTION: (re)arm or stop the one timer. Never calls back
 * into curl (curl forbids it here). */
static int docker_timer_fn(CURLM *multi, long timeout_ms, void *userp)
{
	struct docker *d = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&d->timer);
	else
		uv_timer_start(&d->timer, docker_timer_cb, (uint64_t)timeout_ms, 0);
	return 0;
}

static void docker_xfer_finish(struct docker_xfer *x, CURLcode code);
static void docker_info_finish(struct docker_xfer *x, CURLcode code, long http,
			       struct docker_result *r);

/* Delivers every finished transfer. Stops when a callback closed d. */
static void docker_check_done(struct docker *d)
{
	CURLMsg *msg;
	int left = 0;

	while (!d->closing && (msg = curl_multi_info_read(d->multi, &left))) {
		struct docker_xfer *x = NULL;
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		assert(x != NULL);
		assert(x->easy == msg->easy_handle);
		docker_xfer_finish(x, msg->data.result);
	}
}

/* ---------------------------------------------------------------- transfers */

static size_t docker_write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct docker_xfer *x = userdata;
	size_t n = size * nmemb;

	if (x->kind == DOCKER_XFER_LOGS &&
	    x->resp_len > x->logs_req->max_bytes + DOCKER_LOGS_SLACK_BYTES) {
		x->logs_enough = true; /* enough lines: the rest is not read */
		return 0;
	}
	if (n > DOCKER_RESPONSE_BYTES_MAX - x->resp_len) {
		x->too_big = true;
		return 0;
	}
	if (x->resp_len + n + 1 > x->resp_cap) {
		size_t cap = x->resp_cap ? x->resp_cap : 1024;
		char *p;
		while (cap < x->resp_len + n + 1)
			cap *= 2;
		p = realloc(x->resp, cap);
		if (!p)
			return 0;
		x->resp = p;
		x->resp_cap = cap;
	}
	memcpy(x->resp + x->resp_len, ptr, n);
	x->resp_len += n;
	x->resp[x->resp_len] = '\0';
	return n;
}

/* Takes x out of the multi handle and frees it: no callback. */
static void docker_xfer_free(struct docker_xfer *x)
{
	struct docker *d = x->d;

	DLIST_UNLINK(d->xfers, x);
	if (x->easy) {
		curl_multi_remove_handle(d->multi, x->easy);
		curl_easy_cleanup(x->easy);
	}
	curl_slist_free_all(x->headers);
	free(x->resp);
	free(x);
}

/* Starts a request: method ("GET", "POST", "DELETE") on path (under the API
 * version), with body (borrowed, copied; NULL: none) and timeout_ms (0:
 * none). Returns 0 and *out (filled in further by the caller before the
 * loop runs again), or CS_ENOMEM / CS_EEXEC (curl refused it). */
static int docker_xfer_start(struct docker *d, enum docker_xfer_kind kind,
			     const char *method, const char *path, const char *body,
			     long timeout_ms, struct docker_xfer **out)
{
	struct docker_xfer *x;
	struct curl_slist *h;
	char *url;
	size_t url_len = strlen(DOCKER_URL_BASE) + strlen(path) + 1;
	int rv = CS_ENOMEM;

	assert(!d->closing);
	assert(path[0] == '/');
	x = calloc(1, sizeof *x);
	if (!x)
		return CS_ENOMEM;
	x->d = d;
	x->kind = kind;
	x->timeout_ms = timeout_ms;
	snprintf(x->what, sizeof x->what, "%s %s", method, path);
	url = malloc(url_len);
	x->easy = curl_easy_init();
	if (!url || !x->easy)
		goto err_free;
	snprintf(url, url_len, "%s%s", DOCKER_URL_BASE, path);
	h = curl_slist_append(NULL, "Content-Type: application/json");
	if (!h)
		goto err_free;
	x->headers = h;
	/* no "Expect: 100-continue" round trip for larger bodies */
	h = curl_slist_append(x->headers, "Expect:");
	if (!h)
		goto err_free;
	x->headers = h;
	if (curl_easy_setopt(x->easy, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_UNIX_SOCKET_PATH, d->socket_path) !=
		    CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_WRITEFUNCTION, docker_write_cb) !=
		    CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_WRITEDATA, x) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, x->errbuf) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_PRIVATE, x) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_CONNECTTIMEOUT_MS,
			     (long)DOCKER_CONNECT_TIMEOUT_MS) != CURLE_OK ||
	    curl_easy_setopt(x->easy, CURLOPT_TIMEOUT_MS, timeout_ms) != CURLE_OK)
		goto err_free;
	if (strcmp(method, "POST") == 0) {
		const char *b = body ? body : "";
		if (curl_easy_setopt(x->easy, CURLOPT_POST, 1L) != CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(b)) !=
			    CURLE_OK ||
		    curl_easy_setopt(x->easy, CURLOPT_COPYPOSTFIELDS, b) != CURLE_OK)
			goto err_free;
	} else if (strcmp(method, "GET") != 0) {
		if (curl_easy_setopt(x->easy, CURLOPT_CUSTOMREQUEST, method) != CURLE_OK)
			goto err_free;
	}
	if (curl_multi_add_handle(d->multi, x->easy) != CURLM_OK) {
		rv = CS_EEXEC;
		goto err_free;
	}
	free(url);
	DLIST_PUSH(d->xfers, x);
	*out = x;
	return 0;
err_free:
	free(url);
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	free(x);
	return rv;
}

/* Words for a transfer that got no HTTP answer. */
static void docker_transport_message(const struct docker_xfer *x, CURLcode code,
				     char *msg, size_t size)
{
	long os_errno = 0;

	curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &os_errno);
	if (code == CURLE_COULDNT_CONNECT)
		snprintf(msg, size, "docker: cannot connect to %s: %s", x->d->socket_path,
			 os_errno ? strerror((int)os_errno) : "connection refused");
	else if (code == CURLE_OPERATION_TIMEDOUT)
		snprintf(msg, size, "docker: %s: timed out after %ld ms", x->what,
			 x->timeout_ms);
	else if (x->too_big)
		snprintf(msg, size, "docker: %s: answer over %u bytes", x->what,
			 DOCKER_RESPONSE_BYTES_MAX);
	else
		snprintf(msg, size, "docker: %.100s: %.140s", x->what,
			 x->errbuf[0] ? x->errbuf : curl_easy_strerror(code));
}

/* ---------------------------------------------------------------- JSON */

/* Returns Docker's {"message": ...} of an error answer, or NULL. */
static void docker_error_message(const struct docker_xfer *x, long http, char *msg,
				 size_t size)
{
	json_t *root = x->resp ? json_loadb(x->resp, x->resp_len, 0, NULL) : NULL;
	const char *m = json_string_value(json_object_get(root, "message"));

	if (m && m[0])
		snprintf(msg, size, "%s", m);
	else
		snprintf(msg, size, "docker: %s: HTTP %ld", x->what, http);
	json_decref(root);
}

/* Sets obj[key] = s (a string). Returns 0, or -1 when s is not UTF-8 or out
 * of memory. */
static int docker_json_set_str(json_t *obj, const char *key, const char *s)
{
	json_t *v = json_string(s ? s : "");
	return v ? json_object_set_new(obj, key, v) : -1;
}

/* Returns a JSON array of strs (NULL-terminated), or NULL. */
static json_t *docker_json_strings(const char *const *strs)
{
	json_t *arr = json_array();
	for (size_t i = 0; arr && strs[i]; i++) {
		json_t *v = json_string(strs[i]);
		if (!v || json_array_append_new(arr, v) != 0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* Sets obj[key] = ms in nanoseconds (Docker's durations). Returns 0 or -1. */
static int docker_json_set_ns(json_t *obj, const char *key, ms_t ms)
{
	json_t *v;
	if (ms > (ms_t)INT64_MAX / 1000000)
		ms = (ms_t)INT64_MAX / 1000000;
	v = json_integer((json_int_t)(ms * 1000000));
	return v ? json_object_set_new(obj, key, v) : -1;
}

/* Adds spec's health check (issue 14: Docker's HealthConfig, as SwarmKit's
 * containerConfig.healthcheck gives it) and its stop timeout to root, the
 * create body's Config. Nothing when the spec has neither test nor
 * setting (the image's check, if any, applies as it is). Returns 0 or -1
 * (not UTF-8, out of memory). */
static int docker_create_health(json_t *root, const struct env_container_spec *spec)
{
	bool has_test = spec->health_test && spec->health_test[0];
	json_t *hc;
	uint64_t stop_s = (spec->stop_timeout_ms + 999) / 1000;

	if (stop_s > INT32_MAX)
		stop_s = INT32_MAX;
	if (spec->stop_timeout_ms &&
	    json_object_set_new(root, "StopTimeout", json_integer((json_int_t)stop_s)))
		return -1;
	if (!has_test && !spec->health_interval_ms && !spec->health_timeout_ms &&
	    !spec->health_start_period_ms && !spec->health_retries)
		return 0;
	hc = json_object();
	if (!hc || json_object_set_new(root, "Healthcheck", hc))
		return -1;
	if (has_test) {
		json_t *test = docker_json_strings(spec->health_test);
		if (!test || json_object_set_new(hc, "Test", test))
			return -1;
	}
	if (docker_json_set_ns(hc, "Interval", spec->health_interval_ms) ||
	    docker_json_set_ns(hc, "Timeout", spec->health_timeout_ms) ||
	    docker_json_set_ns(hc, "StartPeriod", spec->health_start_period_ms) ||
	    json_object_set_new(
		    hc, "Retries",
		    json_integer((json_int_t)(spec->health_retries > INT32_MAX
						      ? INT32_MAX
						      : spec->health_retries))))
		return -1;
	return 0;
}

/* Maps Docker's State.Health.Status ("none", "starting", "healthy",
 * "unhealthy"; no Health at all: no check) to env's. */
static enum env_ctl_health docker_health_of(const json_t *state)
{
	const char *st = json_string_value(
		json_object_get(json_object_get(state, "Health"), "Status"));
	if (!st)
		return ENV_HEALTH_NONE;
	if (strcmp(st, "starting") == 0)
		return ENV_HEALTH_STARTING;
	if (strcmp(st, "healthy") == 0)
		return ENV_HEALTH_HEALTHY;
	if (strcmp(st, "unhealthy") == 0)
		return ENV_HEALTH_UNHEALTHY;
	return ENV_HEALTH_NONE;
}

/* Sets root's ExposedPorts and host's PortBindings for spec's host-mode
 * ports ("80/tcp": [{"HostIp": "", "HostPort": "8080"}], as the docker CLI
 * sends -p 8080:80; HostPort "" lets Docker pick). Returns 0 or -1. */
static int docker_create_ports(json_t *root, json_t *host,
			       const struct env_container_spec *spec)
{
	static const char *const protos[] = {"tcp", "udp", "sctp"};
	json_t *exposed, *bindings;
	int rv = -1;

	if (!spec->port_count)
		return 0;
	exposed = json_object();
	bindings = json_object();
	if (!exposed || !bindings)
		goto out;
	for (size_t i = 0; i < spec->port_count; i++) {
		const struct env_port *p = &spec->ports[i];
		char key[32], hport[16] = "";
		json_t *list, *b;
		assert((unsigned)p->proto < sizeof protos / sizeof *protos);
		snprintf(key, sizeof key, "%u/%s", (unsigned)p->target, protos[p->proto]);
		if (p->published)
			snprintf(hport, sizeof hport, "%u", (unsigned)p->published);
		if (json_object_set_new(exposed, key, json_object()))
			goto out;
		list = json_object_get(bindings, key);
		if (!list) {
			list = json_array();
			if (!list || json_object_set_new(bindings, key, list))
				goto out;
		}
		b = json_object();
		if (!b || json_array_append_new(list, b) ||
		    docker_json_set_str(b, "HostIp", "") ||
		    docker_json_set_str(b, "HostPort", hport))
			goto out;
	}
	if (json_object_set(root, "ExposedPorts", exposed) ||
	    json_object_set(host, "PortBindings", bindings))
		goto out;
	rv = 0;
out:
	json_decref(exposed);
	json_decref(bindings);
	return rv;
}

/* ---------------------------------------------------------------- networks (issue 17) */

/* The address of an attachment without its prefix ("10.0.3.5/24" ->
 * "10.0.3.5"). Returns 0, or -1 when it does not fit. */
static int docker_addr_only(const char *addr, char *out, size_t size)
{
	size_t len = addr ? strcspn(addr, "/") : 0;

	if (len == 0 || len >= size)
		return -1;
	memcpy(out, addr, len);
	out[len] = '\0';
	return 0;
}

/* An endpoint config for attachment a: {"IPAMConfig": {"IPv4Address": ...}}
 * (with "MacAddress" when mac). Returns it or NULL. a's aliases are not
 * Docker's: its embedded DNS would answer them with this node's containers
 * only, before the cluster's resolver (the gateway, HostConfig.Dns) is asked
 * for the answer every node gives. */
static json_t *docker_endpoint_config(const struct env_net_attach *a, bool mac)
{
	json_t *ep = json_object(), *ipam = json_object();
	char ip[64];

	if (!ep || !ipam || docker_addr_only(a->addr, ip, sizeof ip) ||
	    docker_json_set_str(ipam, "IPv4Address", ip) ||
	    json_object_set(ep, "IPAMConfig", ipam))
		goto err;
	if (mac) {
		/* Docker's own derivation (02:42 + the IPv4 address), said
		 * explicitly: the other nodes' neighbour entries use it */
		struct in_addr ia;
		char m[32];
		const uint8_t *b = (const uint8_t *)&ia.s_addr;
		if (inet_pton(AF_INET, ip, &ia) != 1)
			goto err;
		snprintf(m, sizeof m, "02:42:%02x:%02x:%02x:%02x", b[0], b[1], b[2],
			 b[3]);
		if (docker_json_set_str(ep, "MacAddress", m))
			goto err;
	}
	json_decref(ipam);
	return ep;
err:
	json_decref(ipam);
	json_decref(ep);
	return NULL;
}

/* Attaches the create body's container to its first network (Docker's
 * create takes one; the others are connected after), with the networks'
 * gateways as its DNS servers: the node's resolver listens on each (Docker's
 * embedded DNS at 127.0.0.11 forwards there what it does not know, which is
 * every cluster name). Returns 0 or -1. */
static int docker_create_networks(json_t *root, json_t *host,
				  const struct env_container_spec *spec,
				  const struct docker_net *nets)
{
	json_t *nc = json_object(), *eps = json_object(), *dns = json_array(), *ep;
	int rv = -1;

	assert(spec->network_count > 0);
	if (!nc || !eps || !dns || !nets[0].name)
		goto out;
	for (size_t i = 0; i < spec->network_count; i++) {
		json_t *g = nets[i].gateway ? json_string(nets[i].gateway) : NULL;
		if (g && json_array_append_new(dns, g))
			goto out;
	}
	if (json_array_size(dns) && json_object_set(host, "Dns", dns))
		goto out;
	if (docker_json_set_str(host, "NetworkMode", nets[0].name))
		goto out;
	ep = docker_endpoint_config(&spec->networks[0], true);
	if (!ep || json_object_set_new(eps, nets[0].name, ep))
		goto out;
	if (json_object_set(root, "MacAddress", json_object_get(ep, "MacAddress")) ||
	    json_object_set(nc, "EndpointsConfig", eps) ||
	    json_object_set(root, "NetworkingConfig", nc))
		goto out;
	rv = 0;
out:
	json_decref(dns);
	json_decref(eps);
	json_decref(nc);
	return rv;
}

/* The body of POST /networks/create for net: a bridge network on the data
 * plane's bridge (it exists: Docker adopts it and leaves it when the
 * network goes), the subnet and gateway of the cluster's network, NAT out
 * unless internal. Returns a string the caller frees, or NULL. */
static char *docker_net_create_body(const struct docker_net *net)
{
	json_t *root = json_object(), *ipam = json_object(), *cfgs = json_array(),
	       *cfg = json_object(), *opts = json_object(), *labels = json_object();
	char mtu[16];
	char *out = NULL;

	if (!root || !ipam || !cfgs || !cfg || !opts || !labels)
		goto out;
	snprintf(mtu, sizeof mtu, "%u", net->mtu);
	if (docker_json_set_str(root, "Name", net->name) ||
	    docker_json_set_str(root, "Driver", "bridge") ||
	    json_object_set_new(root, "CheckDuplicate", json_true()) ||
	    json_object_set_new(root, "Internal", json_boolean(net->internal)) ||
	    docker_json_set_str(cfg, "Subnet", net->subnet) ||
	    docker_json_set_str(cfg, "Gateway", net->gateway) ||
	    json_array_append(cfgs, cfg) ||
	    docker_json_set_str(ipam, "Driver", "default") ||
	    json_object_set(ipam, "Config", cfgs) ||
	    json_object_set(root, "IPAM", ipam) ||
	    docker_json_set_str(opts, "com.docker.network.bridge.name", net->bridge) ||
	    (net->mtu &&
	     docker_json_set_str(opts, "com.docker.network.driver.mtu", mtu)) ||
	    json_object_set(root, "Options", opts) ||
	    docker_json_set_str(labels, "cswarm.network", "1") ||
	    json_object_set(root, "Labels", labels))
		goto out;
	out = json_dumps(root, JSON_COMPACT);
out:
	json_decref(labels);
	json_decref(opts);
	json_decref(cfg);
	json_decref(cfgs);
	json_decref(ipam);
	json_decref(root);
	return out;
}

/* The body of POST /networks/NAME/connect for container to attachment a. */
static char *docker_net_connect_body(const char *container,
				     const struct env_net_attach *a)
{
	json_t *root = json_object(), *ep = docker_endpoint_config(a, false);
	char *out = NULL;

	if (root && ep && !docker_json_set_str(root, "Container", container) &&
	    !json_object_set(root, "EndpointConfig", ep))
		out = json_dumps(root, JSON_COMPACT);
	json_decref(ep);
	json_decref(root);
	return out;
}

/* Sets root's Entrypoint, WorkingDir, User and container labels (beside
 * cswarm's, already in labels, which win) and host's Mounts (issue 16).
 * Returns 0 or -1. */
static int docker_create_extra(json_t *root, json_t *host, json_t *labels,
			       const struct env_container_spec *spec)
{
	json_t *mounts;

	if (spec->entrypoint && spec->entrypoint[0]) {
		json_t *ep = docker_json_strings(spec->entrypoint);
		if (!ep || json_object_set_new(root, "Entrypoint", ep))
			return -1;
	}
	if (spec->dir && *spec->dir && docker_json_set_str(root, "WorkingDir", spec->dir))
		return -1;
	if (spec->user && *spec->user && docker_json_set_str(root, "User", spec->user))
		return -1;
	for (size_t i = 0; i < spec->label_count; i++)
		if (!json_object_get(labels, spec->labels[i].key) &&
		    docker_json_set_str(labels, spec->labels[i].key,
					spec->labels[i].value))
			return -1;
	if (!spec->mount_count)
		return 0;
	if (!(mounts = json_array()) || json_object_set_new(host, "Mounts", mounts))
		return -1;
	for (size_t i = 0; i < spec->mount_count; i++) {
		const struct env_mount *m = &spec->mounts[i];
		json_t *mj = json_object();
		if (!mj || json_array_append_new(mounts, mj) ||
		    docker_json_set_str(mj, "Type",
					m->type == ENV_MOUNT_VOLUME ? "volume"
								    : "bind") ||
		    docker_json_set_str(mj, "Source", m->source) ||
		    docker_json_set_str(mj, "Target", m->target) ||
		    json_object_set_new(mj, "ReadOnly", json_boolean(m->read_only)))
			return -1;
	}
	return 0;
}

/* ---------------------------------------------------------------- secrets and configs (issue 20) */

/* Whether path is on a tmpfs (memory: what a secret's file may be written
 * to, never a disk). */
static bool docker_is_tmpfs(const char *path)
{
	struct statfs st;
	return statfs(path, &st) == 0 && st.f_type == TMPFS_MAGIC;
}

/* The directory of task_id's files: FILES_DIR/TASK_ID. */
static bool docker_files_path(const struct docker *d, const char *task_id, size_t i,
			      bool dir, char *out, size_t size)
{
	int n = dir ? snprintf(out, size, "%s/%s", d->files_dir, task_id)
		    : snprintf(out, size, "%s/%s/%zu", d->files_dir, task_id, i);
	return n > 0 && (size_t)n < size;
}

/* Deletes task_id's files and their directory (none: fine). */
static void docker_files_remove(struct docker *d, const char *task_id)
{
	char path[PATH_MAX];
	DIR *dir;
	struct dirent *e;

	if (!d->files_dir[0] || !task_id[0] ||
	    !docker_files_path(d, task_id, 0, true, path, sizeof path))
		return;
	dir = opendir(path);
	if (!dir)
		return;
	while ((e = readdir(dir)) != NULL)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(dir), e->d_name, 0);
	closedir(dir);
	if (rmdir(path) != 0 && errno != ENOENT)
		docker_logf(d, ENV_LOG_ERROR, "docker: rmdir %s: %s", path,
			    strerror(errno));
}

/* Writes spec's files under FILES_DIR/TASK_ID/ (a tmpfs: refused
 * otherwise, in why), each with its mode and owner. Returns 0, or -1 with
 * why (nothing left behind). */
static int docker_files_write(struct docker *d, const struct env_container_spec *spec,
			      char *why, size_t why_size)
{
	char path[PATH_MAX];

	/* the tmpfs is mounted by the first task that needs it (a node
	 * running no secret mounts nothing) */
	if (d->files_dir[0] && !docker_is_tmpfs(d->files_dir)) {
		if ((mkdir(d->files_dir, 0700) != 0 && errno != EEXIST) ||
		    mount("cswarm-secrets", d->files_dir, "tmpfs",
			  MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0700,size=64m") != 0)
			docker_logf(d, ENV_LOG_ERROR,
				    "docker: cannot mount a tmpfs at %s for secrets: %s",
				    d->files_dir, strerror(errno));
		else
			d->files_mounted = true;
	}
	if (!d->files_dir[0] || !docker_is_tmpfs(d->files_dir)) {
		snprintf(
			why, why_size,
			"secrets and configs need a tmpfs for their files (%.100s is %s): "
			"not written to disk",
			d->files_dir[0] ? d->files_dir : "no directory",
			d->files_dir[0] ? "not one" : "set");
		return -1;
	}
	if (!docker_files_path(d, spec->task_id, 0, true, path, sizeof path) ||
	    (mkdir(path, 0700) != 0 && errno != EEXIST)) {
		snprintf(why, why_size, "secrets: mkdir %.120s: %.60s", path,
			 strerror(errno));
		return -1;
	}
	for (size_t i = 0; i < spec->file_count; i++) {
		const struct env_file *f = &spec->files[i];
		size_t off = 0;
		int fd;
		if (!docker_files_path(d, spec->task_id, i, false, path, sizeof path))
			goto fail;
		fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
			  0600);
		if (fd < 0)
			goto fail;
		while (off < f->len) {
			ssize_t w = write(fd, f->data + off, f->len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				close(fd);
				goto fail;
			}
			off += (size_t)w;
		}
		if (fchown(fd, (uid_t)strtoul(f->uid, NULL, 10),
			   (gid_t)strtoul(f->gid, NULL, 10)) != 0 ||
		    fchmod(fd, (mode_t)f->mode) != 0) {
			close(fd);
			goto fail;
		}
		close(fd);
	}
	return 0;
fail:
	snprintf(why, why_size, "secrets: write %.120s: %.60s", path, strerror(errno));
	docker_files_remove(d, spec->task_id);
	return -1;
}

/* Adds a read-only bind mount of each of spec's files to host's Mounts.
 * Returns 0 or -1. */
static int docker_create_files(const struct docker *d, json_t *host,
			       const struct env_container_spec *spec)
{
	json_t *mounts = json_object_get(host, "Mounts");
	char path[PATH_MAX];

	if (!spec->file_count)
		return 0;
	if (!mounts &&
	    (!(mounts = json_array()) || json_object_set_new(host, "Mounts", mounts)))
		return -1;
	for (size_t i = 0; i < spec->file_count; i++) {
		json_t *mj = json_object();
		if (!mj || json_array_append_new(mounts, mj) ||
		    !docker_files_path(d, spec->task_id, i, false, path, sizeof path) ||
		    docker_json_set_str(mj, "Type", "bind") ||
		    docker_json_set_str(mj, "Source", path) ||
		    docker_json_set_str(mj, "Target", spec->files[i].path) ||
		    json_object_set_new(mj, "ReadOnly", json_true()))
			return -1;
	}
	return 0;
}

/* Builds the body of POST /containers/create for spec (attached to nets[0]
 * when spec has networks; nets NULL otherwise). Returns a string the
 * caller frees, or NULL (not UTF-8, out of memory). */
static char *docker_create_body(const struct docker *d,
				const struct env_container_spec *spec,
				const struct docker_net *nets)
{
	json_t *root = json_object(), *labels = json_object(), *host = json_object();
	char slot[24];
	char *out = NULL;

	if (!root || !labels || !host)
		goto out;
	if (docker_json_set_str(root, "Image", spec->image))
		goto out;
	if (spec->command && spec->command[0]) {
		json_t *cmd = docker_json_strings(spec->command);
		if (!cmd || json_object_set_new(root, "Cmd", cmd))
			goto out;
	}
	if (spec->envs && spec->envs[0]) {
		json_t *env = docker_json_strings(spec->envs);
		if (!env || json_object_set_new(root, "Env", env))
			goto out;
	}
	snprintf(slot, sizeof slot, "%llu", (unsigned long long)spec->slot);
	if (docker_json_set_str(labels, "cswarm.task.id", spec->task_id) ||
	    docker_json_set_str(labels, "cswarm.service.id", spec->service_id) ||
	    docker_json_set_str(labels, "cswarm.service.name", spec->service_name) ||
	    docker_json_set_str(labels, "cswarm.slot", slot))
		goto out;
	if (d->node_id[0] && docker_json_set_str(labels, "cswarm.node.id", d->node_id))
		goto out;
	if (spec->memory_limit_bytes &&
	    json_object_set_new(host, "Memory",
				json_integer((json_int_t)spec->memory_limit_bytes)))
		goto out;
	if (spec->millicpu_limit &&
	    json_object_set_new(
		    host, "NanoCpus",
		    json_integer((json_int_t)(spec->millicpu_limit * 1000000u))))
		goto out;
	/* a published port needs the container's network */
	if (d->network_none && !spec->port_count && !(nets && spec->network_count) &&
	    docker_json_set_str(host, "NetworkMode", "none"))
		goto out;
	if (nets && spec->network_count && docker_create_networks(root, host, spec, nets))
		goto out;
	if (docker_create_ports(root, host, spec))
		goto out;
	if (docker_create_health(root, spec))
		goto out;
	if (docker_create_extra(root, host, labels, spec))
		goto out;
	if (docker_create_files(d, host, spec))
		goto out;
	if (json_object_set(root, "Labels", labels) ||
	    json_object_set(root, "HostConfig", host))
		goto out;
	out = json_dumps(root, JSON_COMPACT);
out:
	json_decref(host);
	json_decref(labels);
	json_decref(root);
	return out;
}

/* Maps Docker's State.Status to env's states. */
static enum env_ctl_state docker_state_of(const char *status)
{
	if (!status)
		return ENV_CTL_EXITED;
	if (strcmp(status, "created") == 0)
		return ENV_CTL_CREATED;
	if (strcmp(status, "running") == 0 || strcmp(status, "paused") == 0 ||
	    strcmp(status, "restarting") == 0)
		return ENV_CTL_RUNNING;
	return ENV_CTL_EXITED; /* exited, dead, removing */
}

/* ---------------------------------------------------------------- controllers */

static struct docker_ctl *docker_ctl_of(struct env_ctl *ctl)
{
	return (struct docker_ctl *)ctl;
}

static bool docker_id_ok(const char *id)
{
	if (!id || !id[0])
		return false;
	for (const char *p = id; *p; p++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

int docker_ctl_open(struct docker *d, const struct env_container_spec *spec,
		    struct env_ctl **out)
{
	return docker_ctl_open_net(d, spec, NULL, out);
}

/* Frees ctl's network steps. */
static void docker_ctl_free_nets(struct docker_ctl *ctl)
{
	for (size_t i = 0; i < ctl->net_count; i++) {
		if (ctl->net_names)
			free(ctl->net_names[i]);
		if (ctl->net_create_bodies)
			free(ctl->net_create_bodies[i]);
		if (ctl->net_connect_bodies)
			free(ctl->net_connect_bodies[i]);
	}
	free(ctl->net_names);
	free(ctl->net_create_bodies);
	free(ctl->net_connect_bodies);
}

/* Builds ctl's network steps for spec's attachments. Returns 0, CS_ENOMEM or
 * CS_EINVAL (a string that is not UTF-8). */
static int docker_ctl_nets(struct docker_ctl *ctl, const struct env_container_spec *spec,
			   const struct docker_net *nets)
{
	size_t n = spec->network_count;

	ctl->net_count = n;
	ctl->net_names = calloc(n, sizeof *ctl->net_names);
	ctl->net_create_bodies = calloc(n, sizeof *ctl->net_create_bodies);
	ctl->net_connect_bodies = calloc(n, sizeof *ctl->net_connect_bodies);
	if (!ctl->net_names || !ctl->net_create_bodies || !ctl->net_connect_bodies)
		return CS_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (!nets[i].name) {
			if (!ctl->prep_fail[0])
				snprintf(
					ctl->prep_fail, sizeof ctl->prep_fail,
					"network %016llx is not declared on this node "
					"(no data plane for it)",
					(unsigned long long)spec->networks[i].network_id);
			continue;
		}
		ctl->net_names[i] = strdup(nets[i].name);
		ctl->net_create_bodies[i] = docker_net_create_body(&nets[i]);
		if (!ctl->net_names[i] || !ctl->net_create_bodies[i])
			return CS_ENOMEM;
		if (i > 0 && !(ctl->net_connect_bodies[i] = docker_net_connect_body(
				       ctl->name, &spec->networks[i])))
			return CS_EINVAL;
	}
	return 0;
}

int docker_ctl_open_net(struct docker *d, const struct env_container_spec *spec,
			const struct docker_net *nets, struct env_ctl **out)
{
	struct docker_ctl *ctl;
	int rv;

	assert(!d->closing);
	if (!spec->image || !spec->image[0] || !docker_id_ok(spec->task_id))
		return CS_EINVAL;
	if (strlen(spec->task_id) > LIMIT_NAME_BYTES_MAX ||
	    (spec->service_id && strlen(spec->service_id) > LIMIT_NAME_BYTES_MAX))
		return CS_ELIMIT;
	ctl = calloc(1, sizeof *ctl);
	if (!ctl)
		return CS_ENOMEM;
	ctl->d = d;
	snprintf(ctl->name, sizeof ctl->name, "%s%s", DOCKER_NAME_PREFIX, spec->task_id);
	snprintf(ctl->task_id, sizeof ctl->task_id, "%s", spec->task_id);
	/* issue 20: its secrets and configs on the tmpfs now (the create
	 * body mounts them); refused, PREPARE fails with why */
	if (spec->file_count && !ctl->prep_fail[0] &&
	    docker_files_write(d, spec, ctl->prep_fail, sizeof ctl->prep_fail))
		docker_logf(d, ENV_LOG_ERROR, "docker: %s: %s", ctl->name,
			    ctl->prep_fail);
	ctl->stop_timeout_ms = spec->stop_timeout_ms;
	if (nets && spec->network_count) {
		rv = docker_ctl_nets(ctl, spec, nets);
		if (rv) {
			docker_ctl_free_nets(ctl);
			free(ctl);
			return rv;
		}
	}
	/* an undeclared first network: no create body is needed, PREPARE
	 * fails with prep_fail */
	ctl->create_body = docker_create_body(d, spec, ctl->prep_fail[0] ? NULL : nets);
	if (!ctl->create_body) {
		docker_ctl_free_nets(ctl);
		free(ctl);
		/* jansson refuses only strings that are not UTF-8, or no memory */
		return CS_EINVAL;
	}
	DLIST_PUSH(d->ctls, ctl);
	*out = (struct env_ctl *)ctl;
	return 0;
}

/* The result of op from an HTTP answer. */
static void docker_op_result(const struct docker_xfer *x, long http,
			     struct docker_result *r)
{
	json_t *root = NULL;

	r->status = 0;
	r->state = ENV_CTL_ABSENT;
	r->exit_code = 0;
	r->message[0] = '\0';
	switch (x->op) {
	case ENV_CTL_PREPARE:
		/* 409: a container of that name exists (an agent restarted) */
		if (http == 201 || http == 409) {
			r->state = ENV_CTL_CREATED;
			return;
		}
		break;
	case ENV_CTL_START:
		if (http == 204 || http == 304) {
			r->state = ENV_CTL_RUNNING;
			return;
		}
		break;
	case ENV_CTL_WAIT:
		if (http == 200) {
			json_t *code;
			root = json_loadb(x->resp ? x->resp : "", x->resp_len, 0, NULL);
			code = json_object_get(root, "StatusCode");
			if (!json_is_integer(code)) {
				json_decref(root);
				r->status = CS_EEXEC;
				snprintf(r->message, sizeof r->message,
					 "docker: %s: no StatusCode in the answer",
					 x->what);
				return;
			}
			r->state = ENV_CTL_EXITED;
			r->exit_code = (int32_t)json_integer_value(code);
			json_decref(root);
			return;
		}
		break;
	case ENV_CTL_SHUTDOWN:
	case ENV_CTL_TERMINATE:
		/* 304: not running (stop); 409: not running (kill) */
		if (http == 204 || http == 304 ||
		    (x->op == ENV_CTL_TERMINATE && http == 409)) {
			r->state = ENV_CTL_EXITED;
			return;
		}
		if (http == 404)
			return;
		break;
	case ENV_CTL_REMOVE:
		if (http == 204 || http == 404)
			return;
		break;
	case ENV_CTL_INSPECT:
		if (http == 404)
			return;
		if (http == 200) {
			json_t *state;
			root = json_loadb(x->resp ? x->resp : "", x->resp_len, 0, NULL);
			state = json_object_get(root, "State");
			if (!json_is_object(state)) {
				json_decref(root);
				r->status = CS_EEXEC;
				snprintf(r->message, sizeof r->message,
					 "docker: %s: no State in the answer", x->what);
				return;
			}
			r->state = docker_state_of(
				json_string_value(json_object_get(state, "Status")));
			r->exit_code = (int32_t)json_integer_value(
				json_object_get(state, "ExitCode"));
			r->health = docker_health_of(state);
			r->has_health = true;
			json_decref(root);
			return;
		}
		break;
	}
	r->status = CS_EEXEC;
	docker_error_message(x, http, r->message, sizeof r->message);
}

static void docker_defer_cb(uv_timer_t *h);

/* Starts step ctl->prep_step of a PREPARE with networks (see struct
 * docker_ctl). Returns 0 (ctl->op in flight) or an error. */
static int docker_prep_start(struct docker_ctl *ctl, struct env_ctl_req *req,
			     env_ctl_cb cb)
{
	size_t step = ctl->prep_step, n = ctl->net_count;
	struct docker_xfer *x = NULL;
	char path[256];
	const char *body;
	int rv;

	assert(n > 0);
	assert(step < 2 * n);
	if (step < n) {
		snprintf(path, sizeof path, "/networks/create");
		body = ctl->net_create_bodies[step];
	} else if (step == n) {
		snprintf(path, sizeof path, "/containers/create?name=%s", ctl->name);
		body = ctl->create_body;
	} else {
		snprintf(path, sizeof path, "/networks/%s/connect",
			 ctl->net_names[step - n]);
		body = ctl->net_connect_bodies[step - n];
	}
	rv = docker_xfer_start(ctl->d, DOCKER_XFER_OP, "POST", path, body,
			       DOCKER_CALL_TIMEOUT_MS, &x);
	if (rv)
		return rv;
	x->ctl = ctl;
	x->op = ENV_CTL_PREPARE;
	x->req = req;
	x->cb = cb;
	ctl->op = x;
	return 0;
}

/* A step of a PREPARE with networks finished: true when the next one
 * started (no callback yet), false when r holds the PREPARE's result. A
 * network that exists (409) and a container already on a network (an
 * agent restarted between steps) are fine. */
static bool docker_prep_advance(struct docker_xfer *x, CURLcode code, long http,
				struct docker_result *r)
{
	struct docker_ctl *ctl = x->ctl;
	size_t step = ctl->prep_step, n = ctl->net_count;
	int rv;

	if (code != CURLE_OK)
		return false; /* r has curl's words */
	if (step == n) {
		docker_op_result(x, http, r);
	} else {
		bool ok = http == 200 || http == 201 || (step < n && http == 409);
		if (!ok && step > n && http == 403 && x->resp &&
		    strstr(x->resp, "already exists"))
			ok = true;
		if (!ok) {
			char m[DOCKER_MESSAGE_BYTES];
			docker_error_message(x, http, m, sizeof m);
			r->status = CS_EEXEC;
			snprintf(r->message, sizeof r->message, "network %.60s: %.180s",
				 ctl->net_names[step < n ? step : step - n], m);
			return false;
		}
		r->state = ENV_CTL_CREATED;
	}
	if (r->status || step + 1 == 2 * n)
		return false;
	ctl->prep_step++;
	ctl->op = NULL;
	rv = docker_prep_start(ctl, x->req, x->cb);
	if (rv) {
		r->status = rv;
		snprintf(r->message, sizeof r->message, "docker: %s", cs_strerror(rv));
		return false;
	}
	return true;
}

int docker_ctl_do(struct env_ctl *handle, enum env_ctl_op op, struct env_ctl_req *req,
		  env_ctl_cb cb)
{
	struct docker_ctl *ctl = docker_ctl_of(handle);
	struct docker *d = ctl->d;
	struct docker_xfer *x = NULL;
	char path[256];
	const char *method = "POST", *body = NULL;
	long timeout_ms = DOCKER_CALL_TIMEOUT_MS;
	int rv;

	assert(!ctl->closing);
	assert(req != NULL);
	assert(cb != NULL);
	if (op == ENV_CTL_WAIT ? ctl->wait != NULL
			       : (ctl->op != NULL || ctl->fail_pending))
		return CS_EAGAIN;
	if (op == ENV_CTL_PREPARE && ctl->prep_fail[0]) {
		ctl->fail_pending = true;
		ctl->fail_req = req;
		ctl->fail_cb = cb;
		uv_timer_start(&d->defer, docker_defer_cb, 0, 0);
		return 0;
	}
	if (op == ENV_CTL_PREPARE && ctl->net_count) {
		ctl->prep_step = 0;
		return docker_prep_start(ctl, req, cb);
	}
	switch (op) {
	case ENV_CTL_PREPARE:
		snprintf(path, sizeof path, "/containers/create?name=%s", ctl->name);
		body = ctl->create_body;
		break;
	case ENV_CTL_START:
		snprintf(path, sizeof path, "/containers/%s/start", ctl->name);
		break;
	case ENV_CTL_WAIT:
		snprintf(path, sizeof path, "/containers/%s/wait", ctl->name);
		timeout_ms = 0;
		break;
	case ENV_CTL_SHUTDOWN: {
		uint64_t stop_s = (ctl->stop_timeout_ms + 999) / 1000;
		snprintf(path, sizeof path, "/containers/%s/stop?t=%llu", ctl->name,
			 (unsigned long long)stop_s);
		timeout_ms += (long)(stop_s * 1000);
		break;
	}
	case ENV_CTL_TERMINATE:
		snprintf(path, sizeof path, "/containers/%s/kill", ctl->name);
		break;
	case ENV_CTL_REMOVE:
		snprintf(path, sizeof path, "/containers/%s?force=1", ctl->name);
		method = "DELETE";
		break;
	case ENV_CTL_INSPECT:
		snprintf(path, sizeof path, "/containers/%s/json", ctl->name);
		method = "GET";
		break;
	default: return CS_EINVAL;
	}
	rv = docker_xfer_start(d, op == ENV_CTL_WAIT ? DOCKER_XFER_WAIT : DOCKER_XFER_OP,
			       method, path, body, timeout_ms, &x);
	if (rv)
		return rv;
	x->ctl = ctl;
	x->op = op;
	x->req = req;
	x->cb = cb;
	if (op == ENV_CTL_WAIT)
		ctl->wait = x;
	else
		ctl->op = x;
	return 0;
}

static void docker_ctl_free(struct docker_ctl *ctl)
{
	if (ctl->op)
		docker_xfer_free(ctl->op);
	if (ctl->wait)
		docker_xfer_free(ctl->wait);
	docker_ctl_free_nets(ctl);
	free(ctl->create_body);
	free(ctl);
}

static void docker_defer_cb(uv_timer_t *h)
{
	struct docker *d = h->data;

	/* PREPAREs failed before any request (a network not declared): one
	 * at a time, from the list's head again (a callback may close any
	 * controller) */
again:
	for (struct docker_ctl *ctl = d->ctls; ctl && !d->closing; ctl = ctl->next) {
		struct env_ctl_req *req = ctl->fail_req;
		env_ctl_cb cb = ctl->fail_cb;
		if (!ctl->fail_pending)
			continue;
		ctl->fail_pending = false;
		ctl->fail_req = NULL;
		ctl->fail_cb = NULL;
		req->state = ENV_CTL_ABSENT;
		req->exit_code = 0;
		snprintf(req->message, sizeof req->message, "%s", ctl->prep_fail);
		docker_logf(d, ENV_LOG_INFO, "docker: %s: %s", ctl->name, ctl->prep_fail);
		cb(req, CS_EEXEC);
		goto again;
	}

	while (!d->closing && d->closed) {
		struct docker_ctl *ctl = d->closed;
		env_ctl_close_cb cb = ctl->close_cb;
		void *data = ctl->close_data;
		/* the old pointer only names the controller for the caller
		 * (env.h: cb runs once the memory is freed); volatile keeps
		 * gcc's use-after-free analysis from tracking a value never
		 * dereferenced */
		volatile uintptr_t handle = (uintptr_t)ctl;
		DLIST_UNLINK(d->closed, ctl);
		docker_ctl_free(ctl);
		if (cb)
			cb((struct env_ctl *)handle, data);
	}
}

void docker_ctl_close(struct env_ctl *handle, env_ctl_close_cb cb, void *data)
{
	struct docker_ctl *ctl = docker_ctl_of(handle);
	struct docker *d = ctl->d;

	assert(!ctl->closing);
	assert(!d->closing);
	ctl->closing = true;
	ctl->close_cb = cb;
	ctl->close_data = data;
	ctl->fail_pending = false; /* cancelled without its callback */
	if (ctl->op) {
		docker_xfer_free(ctl->op);
		ctl->op = NULL;
	}
	if (ctl->wait) {
		docker_xfer_free(ctl->wait);
		ctl->wait = NULL;
	}
	DLIST_UNLINK(d->ctls, ctl);
	DLIST_PUSH(d->closed, ctl);
	uv_timer_start(&d->defer, docker_defer_cb, 0, 0);
}

/* ---------------------------------------------------------------- listing and ping */

static int docker_found_cmp(const void *a, const void *b)
{
	const struct env_ctl_found *fa = a, *fb = b;
	return strcmp(fa->task_id, fb->task_id);
}

/* Parses the answer of GET /containers/json into *found (malloc'd; the
 * caller frees) and *count. Returns 0, CS_EEXEC (not the JSON expected, with
 * msg set) or CS_ENOMEM. */
static int docker_parse_list(const struct docker_xfer *x, struct env_ctl_found **found,
			     size_t *count, char *msg, size_t size)
{
	json_t *root = json_loadb(x->resp ? x->resp : "", x->resp_len, 0, NULL);
	struct env_ctl_found *f = NULL;
	size_t n = 0, i;
	json_t *item;

	*found = NULL;
	*count = 0;
	if (!json_is_array(root)) {
		json_decref(root);
		snprintf(msg, size, "docker: %s: the answer is not a JSON array",
			 x->what);
		return CS_EEXEC;
	}
	if (json_array_size(root) > 0) {
		f = calloc(json_array_size(root), sizeof *f);
		if (!f) {
			json_decref(root);
			return CS_ENOMEM;
		}
	}
	json_array_foreach(root, i, item)
	{
		json_t *labels = json_object_get(item, "Labels");
		const char *task =
			json_string_value(json_object_get(labels, "cswarm.task.id"));
		const char *svc =
			json_string_value(json_object_get(labels, "cswarm.service.id"));
		const char *state = json_string_value(json_object_get(item, "State"));
		const char *status = json_string_value(json_object_get(item, "Status"));
		int code = 0;

		if (!task || strlen(task) >= sizeof f[n].task_id)
			continue;
		if (svc && strlen(svc) >= sizeof f[n].service_id)
			svc = NULL;
		snprintf(f[n].task_id, sizeof f[n].task_id, "%s", task);
		snprintf(f[n].service_id, sizeof f[n].service_id, "%s", svc ? svc : "");
		f[n].state = docker_state_of(state);
		/* the list gives the exit code only in words: "Exited (137) 3
		 * seconds ago" */
		if (f[n].state == ENV_CTL_EXITED && status &&
		    sscanf(status, "Exited (%d)", &code) == 1)
			f[n].exit_code = code;
		n++;
	}
	json_decref(root);
	if (n > 1)
		qsort(f, n, sizeof *f, docker_found_cmp);
	*found = f;
	*count = n;
	return 0;
}

int docker_ctl_list(struct docker *d, struct env_ctl_list_req *req, env_ctl_list_cb cb)
{
	json_t *filters = json_object(), *labels = json_array();
	char node_label[sizeof "cswarm.node.id=" + LIMIT_LABEL_BYTES_MAX];
	char *text = NULL, *escaped = NULL, *path = NULL;
	struct docker_xfer *x = NULL;
	CURL *esc = NULL;
	size_t path_size;
	int rv = CS_ENOMEM;

	assert(!d->closing);
	assert(cb != NULL);
	if (!filters || !labels ||
	    json_array_append_new(labels, json_string("cswarm.task.id")))
		goto out;
	if (d->node_id[0]) {
		snprintf(node_label, sizeof node_label, "cswarm.node.id=%s", d->node_id);
		if (json_array_append_new(labels, json_string(node_label)))
			goto out;
	}
	if (json_object_set(filters, "label", labels))
		goto out;
	text = json_dumps(filters, JSON_COMPACT);
	esc = curl_easy_init();
	if (!text || !esc)
		goto out;
	escaped = curl_easy_escape(esc, text, 0);
	if (!escaped)
		goto out;
	path_size = strlen(escaped) + sizeof "/containers/json?all=1&filters=";
	path = malloc(path_size);
	if (!path)
		goto out;
	snprintf(path, path_size, "/containers/json?all=1&filters=%s", escaped);
	rv = docker_xfer_start(d, DOCKER_XFER_LIST, "GET", path, NULL,
			       DOCKER_CALL_TIMEOUT_MS, &x);
	if (rv)
		goto out;
	x->list_req = req;
	x->list_cb = cb;
out:
	free(path);
	curl_free(escaped);
	if (esc)
		curl_easy_cleanup(esc);
	free(text);
	json_decref(labels);
	json_decref(filters);
	return rv;
}

int docker_net_remove(struct docker *d, const char *name)
{
	struct docker_xfer *x = NULL;
	char path[128];

	snprintf(path, sizeof path, "/networks/%s", name);
	return docker_xfer_start(d, DOCKER_XFER_NETRM, "DELETE", path, NULL,
				 DOCKER_CALL_TIMEOUT_MS, &x);
}

int docker_ping(struct docker *d, docker_ping_cb cb, void *data)
{
	struct docker_xfer *x = NULL;
	int rv;

	assert(!d->closing);
	assert(cb != NULL);
	rv = docker_xfer_start(d, DOCKER_XFER_PING, "GET", "/_ping", NULL,
			       DOCKER_CALL_TIMEOUT_MS, &x);
	if (rv)
		return rv;
	x->ping_cb = cb;
	x->ping_data = data;
	return 0;
}

int docker_info(struct docker *d, docker_info_cb cb, void *data)
{
	struct docker_xfer *x = NULL;
	int rv;

	assert(!d->closing);
	assert(cb != NULL);
	rv = docker_xfer_start(d, DOCKER_XFER_INFO, "GET", "/info", NULL,
			       DOCKER_CONNECT_TIMEOUT_MS, &x);
	if (rv)
		return rv;
	x->info_cb = cb;
	x->ping_data = data;
	return 0;
}

/* GET /info finished: its "Labels" (["key=value", ...]) to the callback. */
static void docker_info_finish(struct docker_xfer *x, CURLcode code, long http,
			       struct docker_result *r)
{
	docker_info_cb cb = x->info_cb;
	void *data = x->ping_data;
	json_t *root = NULL, *labels, *item;
	const char **strs = NULL;
	size_t count = 0, i;

	if (code == CURLE_OK && http != 200) {
		r->status = CS_EEXEC;
		docker_error_message(x, http, r->message, sizeof r->message);
	} else if (code == CURLE_OK) {
		root = json_loadb(x->resp ? x->resp : "", x->resp_len, 0, NULL);
		labels = json_object_get(root, "Labels");
		if (!json_is_object(root)) {
			r->status = CS_EEXEC;
			snprintf(r->message, sizeof r->message,
				 "docker: %s: the answer is not a JSON object", x->what);
		} else if (json_is_array(labels) && json_array_size(labels) > 0) {
			strs = calloc(json_array_size(labels), sizeof *strs);
			if (!strs)
				r->status = CS_ENOMEM;
			for (i = 0; strs && i < json_array_size(labels); i++) {
				item = json_array_get(labels, i);
				if (json_is_string(item))
					strs[count++] = json_string_value(item);
			}
		}
	}
	if (r->status)
		docker_logf(x->d, ENV_LOG_WARN, "docker: info: %s", r->message);
	docker_xfer_free(x);
	cb(data, r->status, r->message, strs, r->status ? 0 : count);
	free(strs);
	json_decref(root);
}

/* ---------------------------------------------------------------- logs */

/* ns since the epoch of an RFC 3339 time with up to 9 decimals
 * ("2026-12-06T10:34:19.655123456Z"), at *p; *p moves past it and one
 * space. false when it is not one. */
static bool docker_parse_time(const char **p, const char *end, uint64_t *ns)
{
	struct tm tm;
	const char *q = *p;
	uint64_t frac = 0;
	int digits = 0;
	time_t t;

	memset(&tm, 0, sizeof tm);
	if (end - q < 20 || sscanf(q, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon,
				   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
		return false;
	q += 19;
	if (q < end && *q == '.')
		for (q++; q < end && *q >= '0' && *q <= '9'; q++)
			if (digits < 9) {
				frac = frac * 10 + (uint64_t)(*q - '0');
				digits++;
			}
	while (digits < 9) {
		frac *= 10;
		digits++;
	}
	if (q >= end || *q != 'Z')
		return false;
	q++;
	if (q < end && *q == ' ')
		q++;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = timegm(&tm);
	if (t < 0)
		return false;
	*ns = (uint64_t)t * 1000000000ull + frac;
	*p = q;
	return true;
}

/* The lines of a logs answer (Docker's multiplexed frames, each a line
 * with its time): those after req->after_ns, at most req->max_bytes (at
 * least one). Returns 0 with *out (pointing into x->resp; the caller frees
 * it) or CS_ENOMEM. */
static int docker_logs_parse(struct docker_xfer *x, struct env_log_line **out,
			     size_t *count)
{
	const struct env_logs_req *req = x->logs_req;
	const char *p = x->resp, *end;
	struct env_log_line *lines = NULL;
	size_t n = 0, cap = 0, bytes = 0;

	*out = NULL;
	*count = 0;
	if (!p)
		return 0; /* no answer body: no line */
	end = p + x->resp_len;
	while (end - p >= 8) {
		uint32_t stream = (unsigned char)p[0];
		uint32_t size = (uint32_t)(unsigned char)p[4] << 24 |
				(uint32_t)(unsigned char)p[5] << 16 |
				(uint32_t)(unsigned char)p[6] << 8 | (unsigned char)p[7];
		const char *line = p + 8, *lend = line + size;
		uint64_t ns = 0;

		if ((size_t)(end - line) < size)
			break; /* cut short: read on from the last whole line */
		p = lend;
		if (!docker_parse_time(&line, lend, &ns) ||
		    ns <= (stream == 2 ? req->after_err_ns : req->after_ns) ||
		    (req->until_ms && ns > req->until_ms * 1000000ull))
			continue;
		if (n && bytes + (size_t)(lend - line) > req->max_bytes)
			break;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 64;
			struct env_log_line *g = realloc(lines, c * sizeof *g);
			if (!g) {
				free(lines);
				return CS_ENOMEM;
			}
			lines = g;
			cap = c;
		}
		lines[n].time_ns = ns;
		lines[n].stream = stream == 2 ? 2 : 1;
		lines[n].data = line;
		lines[n].len = (size_t)(lend - line);
		bytes += lines[n].len;
		n++;
	}
	*out = lines;
	*count = n;
	return 0;
}

static void docker_logs_finish(struct docker_xfer *x, CURLcode code, long http,
			       struct docker_result *r)
{
	struct env_logs_req *req = x->logs_req;
	env_logs_cb cb = x->logs_cb;
	struct env_log_line *lines = NULL;
	size_t count = 0;
	char *resp;

	if (code == CURLE_WRITE_ERROR && x->logs_enough) {
		r->status = 0; /* stopped on purpose */
		code = CURLE_OK;
	}
	if (code == CURLE_OK && http == 404) {
		r->status = 0; /* no container (any more): no lines */
	} else if (code == CURLE_OK && http != 200) {
		r->status = CS_EEXEC;
		docker_error_message(x, http, r->message, sizeof r->message);
	} else if (code == CURLE_OK) {
		r->status = docker_logs_parse(x, &lines, &count);
	}
	/* the lines point into the answer: it outlives x until cb returns */
	resp = x->resp;
	x->resp = NULL;
	docker_xfer_free(x);
	req->lines = lines;
	req->line_count = count;
	memcpy(req->message, r->message, sizeof req->message);
	cb(req, r->status);
	free(lines);
	free(resp);
}

int docker_logs_read(struct docker *d, struct env_logs_req *req, env_logs_cb cb)
{
	struct docker_xfer *x;
	char path[320], since[48] = "", tail[32] = "all", until[48] = "";
	int rv;

	if (!docker_id_ok(req->task_id) || strlen(req->task_id) > LIMIT_NAME_BYTES_MAX)
		return CS_EINVAL;
	/* from the older cursor (one stream with none: from since_ms) */
	uint64_t after =
		req->after_ns < req->after_err_ns ? req->after_ns : req->after_err_ns;
	if (after)
		snprintf(since, sizeof since, "&since=%llu.%09llu",
			 (unsigned long long)(after / 1000000000ull),
			 (unsigned long long)(after % 1000000000ull));
	else if (req->since_ms)
		snprintf(since, sizeof since, "&since=%llu.%09llu",
			 (unsigned long long)(req->since_ms / 1000),
			 (unsigned long long)(req->since_ms % 1000 * 1000000ull));
	if (req->until_ms)
		snprintf(until, sizeof until, "&until=%llu.%09llu",
			 (unsigned long long)(req->until_ms / 1000),
			 (unsigned long long)(req->until_ms % 1000 * 1000000ull));
	if (!req->after_ns && !req->after_err_ns && req->tail_set)
		snprintf(tail, sizeof tail, "%llu", (unsigned long long)req->tail);
	snprintf(path, sizeof path,
		 "/containers/%s%s/logs?stdout=1&stderr=1&timestamps=1&tail=%s%s%s",
		 DOCKER_NAME_PREFIX, req->task_id, tail, since, until);
	rv = docker_xfer_start(d, DOCKER_XFER_LOGS, "GET", path, NULL,
			       DOCKER_LOGS_TIMEOUT_MS, &x);
	if (rv)
		return rv;
	x->logs_req = req;
	x->logs_cb = cb;
	return 0;
}

/* A transfer finished (code: curl's verdict): read its answer, free it,
 * then call its callback. */
static void docker_xfer_finish(struct docker_xfer *x, CURLcode code)
{
	struct docker *d = x->d;
	struct docker_result r;
	long http = 0;

	memset(&r, 0, sizeof r);
	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &http);
	if (code != CURLE_OK) {
		r.status = CS_EEXEC;
		docker_transport_message(x, code, r.message, sizeof r.message);
	}
	switch (x->kind) {
	case DOCKER_XFER_OP:
	case DOCKER_XFER_WAIT: {
		struct docker_ctl *ctl = x->ctl;
		struct env_ctl_req *req = x->req;
		env_ctl_cb cb = x->cb;
		if (x->kind == DOCKER_XFER_OP && x->op == ENV_CTL_PREPARE &&
		    ctl->net_count) {
			if (docker_prep_advance(x, code, http, &r)) {
				docker_xfer_free(x); /* the next step is ctl->op */
				return;
			}
		} else if (code == CURLE_OK) {
			docker_op_result(x, http, &r);
		}
		/* issue 20: a container's secrets go once it exits (Docker
		 * unmounts them when it stops) or is removed */
		if (r.status == 0 && ctl &&
		    ((x->op == ENV_CTL_REMOVE && x->kind == DOCKER_XFER_OP) ||
		     (x->kind == DOCKER_XFER_WAIT && r.state == ENV_CTL_EXITED)))
			docker_files_remove(d, ctl->task_id);
		if (r.status)
			docker_logf(d, ENV_LOG_INFO, "docker: %s: %s", x->what,
				    r.message);
		if (x->kind == DOCKER_XFER_WAIT)
			ctl->wait = NULL;
		else
			ctl->op = NULL;
		docker_xfer_free(x);
		req->state = r.state;
		req->exit_code = r.exit_code;
		memcpy(req->message, r.message, sizeof req->message);
		if (r.has_health)
			req->health = r.health;
		cb(req, r.status);
		return;
	}
	case DOCKER_XFER_LIST: {
		struct env_ctl_list_req *req = x->list_req;
		env_ctl_list_cb cb = x->list_cb;
		struct env_ctl_found *found = NULL;
		size_t count = 0;
		if (code == CURLE_OK && http != 200) {
			r.status = CS_EEXEC;
			docker_error_message(x, http, r.message, sizeof r.message);
		} else if (code == CURLE_OK) {
			r.status = docker_parse_list(x, &found, &count, r.message,
						     sizeof r.message);
		}
		if (r.status)
			docker_logf(d, ENV_LOG_WARN, "docker: list: %s", r.message);
		docker_xfer_free(x);
		req->found = found;
		req->found_count = count;
		cb(req, r.status); /* req may be freed by cb */
		free(found);
		return;
	}
	case DOCKER_XFER_PING: {
		docker_ping_cb cb = x->ping_cb;
		void *data = x->ping_data;
		if (code == CURLE_OK && http != 200) {
			r.status = CS_EEXEC;
			docker_error_message(x, http, r.message, sizeof r.message);
		}
		docker_xfer_free(x);
		cb(data, r.status, r.message);
		return;
	}
	case DOCKER_XFER_INFO: docker_info_finish(x, code, http, &r); return;
	case DOCKER_XFER_NETRM:
		if (code == CURLE_OK && http != 204 && http != 404) {
			r.status = CS_EEXEC;
			docker_error_message(x, http, r.message, sizeof r.message);
		}
		if (r.status)
			docker_logf(d, ENV_LOG_WARN, "docker: %s: %s", x->what,
				    r.message);
		docker_xfer_free(x);
		return;
	case DOCKER_XFER_LOGS: docker_logs_finish(x, code, http, &r); return;
	}
}

/* ---------------------------------------------------------------- open and close */

/* The socket path: cfg's, else $DOCKER_HOST's unix://PATH, else the default. */
static const char *docker_socket_path(const struct docker_cfg *cfg)
{
	const char *host;

	if (cfg->socket_path && cfg->socket_path[0])
		return cfg->socket_path;
	host = getenv("DOCKER_HOST");
	if (host && strncmp(host, "unix://", 7) == 0 && host[7])
		return host + 7;
	return DOCKER_SOCKET_DEFAULT;
}

int docker_open(const struct docker_cfg *cfg, struct docker **out)
{
	const char *path = docker_socket_path(cfg);
	struct docker *d;

	if (!cfg->loop)
		return CS_EINVAL;
	if (strlen(path) > DOCKER_SOCKET_BYTES_MAX)
		return CS_EINVAL;
	if (cfg->node_id_label && strlen(cfg->node_id_label) > LIMIT_LABEL_BYTES_MAX)
		return CS_ELIMIT;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return CS_ENOMEM;
	d = calloc(1, sizeof *d);
	if (!d)
		goto err_global;
	d->loop = cfg->loop;
	snprintf(d->socket_path, sizeof d->socket_path, "%s", path);
	snprintf(d->node_id, sizeof d->node_id, "%s",
		 cfg->node_id_label ? cfg->node_id_label : "");
	d->network_none = cfg->network_none;
	if (cfg->files_dir && strlen(cfg->files_dir) > DOCKER_FILES_DIR_BYTES_MAX) {
		free(d);
		return CS_EINVAL;
	}
	snprintf(d->files_dir, sizeof d->files_dir, "%s",
		 cfg->files_dir ? cfg->files_dir : "");
	d->log = cfg->log;
	d->log_data = cfg->log_data;
	d->multi = curl_multi_init();
	if (!d->multi)
		goto err_free;
	if (curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, docker_socket_cb) !=
		    CURLM_OK ||
	    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d) != CURLM_OK ||
	    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, docker_timer_fn) !=
		    CURLM_OK ||
	    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d) != CURLM_OK)
		goto err_multi;
	/* uv_timer_init cannot fail on a live loop */
	uv_timer_init(d->loop, &d->timer);
	uv_timer_init(d->loop, &d->defer);
	d->timer.data = d;
	d->defer.data = d;
	d->handles_open = 2;
	*out = d;
	return 0;
err_multi:
	curl_multi_cleanup(d->multi);
err_free:
	free(d);
err_global:
	curl_global_cleanup();
	return CS_ENOMEM;
}

/* A uv handle of d is through its close callback; the last one (always
 * after docker_close: the two timers live until then) frees d. */
static void docker_unref(struct docker *d)
{
	assert(d->handles_open > 0);
	if (--d->handles_open > 0)
		return;
	assert(d->closing);
	free(d);
	curl_global_cleanup();
}

static void docker_handle_closed(uv_handle_t *h)
{
	docker_unref(h->data);
}

void docker_close(struct docker *d)
{
	if (!d)
		return;
	assert(!d->closing);
	while (d->ctls) {
		struct docker_ctl *ctl = d->ctls;
		DLIST_UNLINK(d->ctls, ctl);
		docker_ctl_free(ctl);
	}
	while (d->closed) {
		struct docker_ctl *ctl = d->closed;
		DLIST_UNLINK(d->closed, ctl);
		docker_ctl_free(ctl);
	}
	while (d->xfers)
		docker_xfer_free(d->xfers); /* lists and pings */
	/* issue 20: the secrets' tmpfs this process mounted is detached: the
	 * containers still running keep their files; nothing stays on the
	 * node's disk */
	if (d->files_mounted)
		umount2(d->files_dir, MNT_DETACH);
	d->closing = true;
	/* curl calls us no more; close the sockets' watchers before curl
	 * closes the sockets */
	curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, NULL);
	curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, NULL);
	while (d->socks)
		docker_sock_close(d, d->socks);
	curl_multi_cleanup(d->multi);
	d->multi = NULL;
	uv_close((uv_handle_t *)&d->timer, docker_handle_closed);
	uv_close((uv_handle_t *)&d->defer, docker_handle_closed);
}
