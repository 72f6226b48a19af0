/* ct_harness: one node's data plane for tests/integration/crypt.sh and
 * the encrypted bench, driven by a state file instead of a manager (the
 * key manager and `--opt encrypted` are another part of issue 17): it
 * calls net/dataplane.c and net/crypttun.c in the order uvenv's net_set
 * does (the tunnel first for an encrypted network, the tunnel closed first
 * for one that is not), on a libuv loop as swarmd does.
 *
 *   ct_harness UNDERLAY_IP CRYPT_PORT VXLAN_PORT STATE_FILE
 *
 * STATE_FILE, one network:
 *   net ID VNI SUBNET GATEWAY ENCRYPTED(0|1)
 *   ep ADDR NODE_IP           (each endpoint; local when NODE_IP is ours)
 *   key ID HEX64              (ascending ids)
 *   primary INDEX
 * SIGHUP reads it again and applies it (net_set again); SIGUSR1 prints the
 * tunnel's counters; SIGTERM exits leaving what it made (as swarmd); SIGINT
 * removes the network first (net_remove), then exits. Prints "applied N"
 * on stdout after each apply (N counts them), "error ..." on failure. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "core/errors.h"
#include "net/crypttun.h"
#include "net/dataplane.h"

#define EPS_MAX 64

static uv_loop_t loop;
static struct dataplane *dp;
static struct crypttun *ct;
static const char *state_path;
static uint64_t net_id;
static unsigned applies;

static void log_line(void *data, enum env_log_level lvl, const char *msg)
{
	(void)data;
	fprintf(stderr, "ct_harness: %d %s\n", (int)lvl, msg);
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static void apply(void)
{
	static char addrs[EPS_MAX][32], nodes[EPS_MAX][32], subnet[32], gateway[32];
	struct env_net_endpoint eps[EPS_MAX];
	struct env_net_key keys[ENV_NET_KEYS_MAX];
	struct env_net_state st;
	char line[256], err[512];
	unsigned long long id = 0;
	unsigned vni = 0, enc = 0, primary = 0;
	size_t ne = 0, nk = 0;
	FILE *f = fopen(state_path, "r");
	int rv;

	if (!f) {
		printf("error cannot read %s\n", state_path);
		fflush(stdout);
		return;
	}
	memset(&st, 0, sizeof st);
	memset(keys, 0, sizeof keys);
	while (fgets(line, sizeof line, f)) {
		char hex[80];
		unsigned kid;
		if (sscanf(line, "net %llu %u %31s %31s %u", &id, &vni, subnet, gateway,
			   &enc) == 5)
			continue;
		if (ne < EPS_MAX &&
		    sscanf(line, "ep %31s %31s", addrs[ne], nodes[ne]) == 2) {
			memset(&eps[ne], 0, sizeof eps[ne]);
			eps[ne].task_id = ne + 1;
			eps[ne].addr = addrs[ne];
			eps[ne].node_ip = nodes[ne];
			ne++;
			continue;
		}
		if (nk < ENV_NET_KEYS_MAX &&
		    sscanf(line, "key %u %79s", &kid, hex) == 2 && strlen(hex) == 64) {
			keys[nk].id = kid;
			for (size_t i = 0; i < 32; i++)
				keys[nk].key[i] = (uint8_t)(hexval(hex[2 * i]) << 4 |
							    hexval(hex[2 * i + 1]));
			nk++;
			continue;
		}
		sscanf(line, "primary %u", &primary);
	}
	fclose(f);
	net_id = id;
	st.network_id = id;
	st.name = "ct";
	st.vni = vni;
	st.subnet = subnet;
	st.gateway = gateway;
	st.endpoints = eps;
	st.endpoint_count = ne;
	st.encrypted = enc != 0;
	st.keys = nk ? keys : NULL;
	st.key_count = nk;
	st.key_primary = primary;
	/* uvenv_net_set's order */
	if (!st.encrypted) {
		crypttun_remove(ct, id);
		rv = 0;
	} else {
		rv = crypttun_set(ct, &st, dataplane_mtu(dp) - DATAPLANE_CRYPT_EXTRA, err,
				  sizeof err);
	}
	if (!rv)
		rv = dataplane_set(dp, &st, err, sizeof err);
	if (rv && st.encrypted && !dataplane_find(dp, id))
		crypttun_remove(ct, id);
	if (rv)
		printf("error %s: %s\n", cs_errname(rv), err);
	else
		printf("applied %u\n", ++applies);
	fflush(stdout);
}

static void on_signal(uv_signal_t *h, int sig)
{
	(void)h;
	if (sig == SIGHUP) {
		apply();
	} else if (sig == SIGUSR1) {
		struct crypttun_stats s;
		crypttun_get_stats(ct, &s);
		printf("stats sealed=%" PRIu64 " opened=%" PRIu64 " arp=%" PRIu64,
		       s.sealed, s.opened, s.arp_answered);
		for (int i = 0; i < CRYPTTUN_DROP_COUNT; i++)
			printf(" drop%d=%" PRIu64, i, s.drops[i]);
		printf("\n");
		fflush(stdout);
	} else {
		char err[256];
		if (sig == SIGINT) {
			crypttun_remove(ct, net_id);
			if (dataplane_remove(dp, net_id, err, sizeof err))
				fprintf(stderr, "ct_harness: remove: %s\n", err);
		}
		crypttun_close(ct);
		ct = NULL;
		uv_stop(&loop);
	}
}

int main(int argc, char **argv)
{
	struct dataplane_cfg dcfg;
	struct crypttun_cfg ccfg;
	uv_signal_t sig[4];
	const int sigs[4] = {SIGHUP, SIGUSR1, SIGTERM, SIGINT};
	char err[512];
	int rv;

	if (argc != 5) {
		fprintf(stderr, "usage: ct_harness IP CRYPT_PORT VXLAN_PORT STATE\n");
		return 2;
	}
	state_path = argv[4];
	uv_loop_init(&loop);
	memset(&dcfg, 0, sizeof dcfg);
	dcfg.underlay_ip = argv[1];
	dcfg.vxlan_port = (uint16_t)atoi(argv[3]);
	dcfg.log = log_line;
	rv = dataplane_open(&dcfg, &dp, err, sizeof err);
	if (rv) {
		fprintf(stderr, "ct_harness: dataplane: %s\n", err);
		return 1;
	}
	memset(&ccfg, 0, sizeof ccfg);
	ccfg.underlay_ip = argv[1];
	ccfg.port = (uint16_t)atoi(argv[2]);
	ccfg.loop = &loop;
	ccfg.log = log_line;
	rv = crypttun_open(&ccfg, &ct, err, sizeof err);
	if (rv) {
		fprintf(stderr, "ct_harness: crypttun: %s\n", err);
		return 1;
	}
	for (int i = 0; i < 4; i++) {
		uv_signal_init(&loop, &sig[i]);
		uv_signal_start(&sig[i], on_signal, sigs[i]);
	}
	apply();
	uv_run(&loop, UV_RUN_DEFAULT);
	for (int i = 0; i < 4; i++)
		uv_close((uv_handle_t *)&sig[i], NULL);
	uv_run(&loop, UV_RUN_DEFAULT); /* the tunnel's handles close */
	dataplane_close(dp);
	return 0;
}
