/* limits: every bound of cswarm in one place. Inputs over a limit are
 * rejected with CS_ELIMIT, never truncated silently. */
#ifndef CS_LIMITS_H
#define CS_LIMITS_H

/* transport */
#define LIMIT_FRAME_BYTES_MAX (4u * 1024 * 1024) /* one message on the wire */
#define LIMIT_ADDR_BYTES_MAX  64u		 /* "host:port" or "m12" */

/* services: a spec's encoding, so that a task with it fits in a frame */
#define LIMIT_SPEC_BYTES_MAX (1024u * 1024)

/* nodes and names */
#define LIMIT_NODES_MAX	   100000u /* nodes in one cluster (simulated or real) */
#define LIMIT_MANAGERS_MAX 15u	   /* voting + spare managers */
/* removed node ids a dispatcher sends an agent (at most 10 bytes each on
 * the wire: a quarter of a frame); a longer list is not sent, loudly */
#define LIMIT_REMOVED_SENT_MAX 100000u
#define LIMIT_NAME_BYTES_MAX   63u /* service, image, hostname, label key */
#define LIMIT_LABEL_BYTES_MAX  255u

/* what a node says of itself (issue 14) */
#define LIMIT_ENGINE_LABELS_MAX 64u /* engine labels a node reports */

/* store */
#define LIMIT_STORE_BATCH_ACTIONS 100000u /* actions in one committed batch */
#define LIMIT_SCHED_TASKS_PER_RUN 18000u  /* scheduler writes per run: <2 MB */
#define LIMIT_SCHED_FAILURES_KEPT 100000u /* task failures the leader remembers (5 min) */

/* timers */
#define LIMIT_TIMERS_PER_NODE_MAX 65536u

/* scenario language */
#define LIMIT_SCN_LINE_BYTES_MAX  4096u
#define LIMIT_SCN_COMMANDS_MAX	  100000u
#define LIMIT_SCN_GROUPS_MAX	  16u /* groups in one partition command */
#define LIMIT_SCN_CONSTRAINTS_MAX 16u /* constraint= per service */
#define LIMIT_SCN_SPREADS_MAX	  4u  /* spread= per service */
#define LIMIT_SCN_REPLICAS_MAX	  1000000u
#define LIMIT_SCN_DURATION_MS_MAX (30ull * 24 * 3600 * 1000) /* 30 days */
#define LIMIT_SCN_FILE_BYTES_MAX  (64u * 1024 * 1024)	     /* one scenario file */

/* simulator */
#define LIMIT_SIM_LINK_RULES_MAX 4096u
#define LIMIT_SIM_PARTITIONS_MAX 64u
#define LIMIT_SIM_EVENTS_MAX	 (64u * 1024 * 1024) /* pending in the queue */

/* agent: retries of executor calls that failed (a wait, a stop, a remove, the
 * adoption listing), with a backoff doubled from the min to the max; a stop
 * that failed this many times is escalated to a kill */
#define LIMIT_AGENT_RETRY_MS_MIN     500u
#define LIMIT_AGENT_RETRY_MS_MAX     30000u
#define LIMIT_AGENT_STOP_TRIES	     3u
#define LIMIT_AGENT_REPORT_TASKS_MAX 100000u /* task states in one StatusUpdate */

/* raft (issue 12): an AppendEntries carries the prefix of its entries that
 * fits a frame; an InstallSnapshot larger than a frame travels in chunks,
 * reassembled by the receiver (one transfer at a time) up to this size:
 * sqlite's default SQLITE_MAX_LENGTH, as a larger one could not be stored */
#define LIMIT_RAFT_SNAPSHOT_BYTES_MAX (1000ull * 1000 * 1000)
/* a snapshot transfer that has not moved for this long is dropped (the
 * receiver's partial one; the sender's, whose queue stayed full) */
#define LIMIT_RAFT_CHUNK_IDLE_MS 10000u
/* a candidate's RequestVote to a silent peer is sent again (raftio, issue
 * 14, every quarter heartbeat) at most this many times; libraft's next
 * election timeout sends a new one anyway (the randomized timeout is at most
 * 2 x election_ticks heartbeats: 80 resends with the default timings) */
#define LIMIT_RAFT_VOTE_RESENDS_MAX 100u

/* identity (issue 13): node certificates live 90 days unless the cluster
 * says otherwise (SwarmKit's default), the root 20 years; a node renews at
 * a random point between these fractions (per mille) of its certificate's
 * life. The join path (certificate requests from senders without a
 * certificate: each costs a signature) is rate-limited on each manager: a
 * token bucket of this rate and burst; answers go back on the request's
 * connection (env reply), so a stranger makes no manager dial anyone */
#define LIMIT_CERT_LIFE_MS_DEFAULT    (90ull * 24 * 3600 * 1000)
#define LIMIT_CERT_LIFE_MS_MIN	      (60ull * 1000)
#define LIMIT_CA_LIFE_MS	      (20ull * 365 * 24 * 3600 * 1000)
#define LIMIT_CERT_RENEW_PERMILLE_MIN 500u
#define LIMIT_CERT_RENEW_PERMILLE_MAX 800u
#define LIMIT_JOIN_RATE_PER_S	      500u
#define LIMIT_JOIN_BURST	      2000u

/* state at rest (issue 13): a manager draws a new data encryption key for
 * its Raft log this often (SwarmKit's key manager: 12 hours) */
#define LIMIT_RAFT_DEK_ROTATE_MS (12ull * 3600 * 1000)
/* TLS: at most this many incoming connections in their handshake at once
 * (more are closed at accept): a handshake flood cannot starve sessions */
#define LIMIT_TLS_HANDSHAKES_MAX 64u

/* the allocator (issue 15): networks' subnets are /16 to /30 (a /16's
 * address bitmap is 8 KB); the default address pool is SwarmKit's
 * 10.0.0.0/8 cut into /24s; ingress ports not given come from Docker's
 * 30000-32767; VXLAN ids from 4096; a pass adds at most a quarter frame */
#define LIMIT_NET_PREFIX_MIN	   16u
#define LIMIT_NET_PREFIX_MAX	   30u
#define LIMIT_NET_POOL_DEFAULT	   0x0a000000u /* 10.0.0.0 */
#define LIMIT_NET_POOL_LEN	   8u
#define LIMIT_NET_SUBNET_LEN	   24u
#define LIMIT_PORT_DYNAMIC_MIN	   30000u
#define LIMIT_PORT_DYNAMIC_MAX	   32767u
#define LIMIT_NET_VNI_MIN	   4096u
#define LIMIT_NETWORKS_MAX	   4096u
#define LIMIT_SERVICE_NETWORKS_MAX 16u
#define LIMIT_SERVICE_PORTS_MAX	   64u
/* issue 16: a container's mounts and labels, and entrypoint words */
#define LIMIT_CONTAINER_MOUNTS_MAX 32u
#define LIMIT_CONTAINER_LABELS_MAX 64u
/* issue 16: log lines' data in one LogResponse (well under a frame), and
 * the tasks one service logs read asks about */
#define LIMIT_LOG_BYTES_MAX (1024u * 1024)
#define LIMIT_LOG_TASKS_MAX 1024u
/* the runtime's words for a refused network kept for a task's Err (issue
 * 17; cut with "...", whole in the node's log) */
#define LIMIT_NET_ERROR_BYTES 256u
_Static_assert(LIMIT_LOG_BYTES_MAX * 2 < LIMIT_FRAME_BYTES_MAX, "log lines fit a frame");

/* issue 20: rebalancing (core/rebalancer.c): moves one plan proposes,
 * moves one leader tracks until their replacement runs, and the spread
 * preference levels its model of the scheduler follows */
#define LIMIT_REBALANCE_MOVES_MAX   64u
#define LIMIT_REBALANCE_TRACKED_MAX 1024u
#define LIMIT_REBALANCE_LEVELS_MAX  8u
/* issue 20: a secret's or config's data (SwarmKit's MaxSecretSize, 500
 * KiB; configs alike), how many secrets and configs there are, how many a
 * service references, and the sum of the data it references: a task goes
 * to its agent with that data (Task.secret_data), so a task with the
 * largest spec and all its data fits in one Assignments part */
#define LIMIT_SECRET_BYTES_MAX		(500u * 1024)
#define LIMIT_SECRETS_MAX		100000u
#define LIMIT_SERVICE_SECRETS_MAX	64u
#define LIMIT_SERVICE_SECRETS_BYTES_MAX (2u * 1024 * 1024)
_Static_assert(LIMIT_SPEC_BYTES_MAX + LIMIT_SERVICE_SECRETS_BYTES_MAX + 64u * 1024 <
		       LIMIT_FRAME_BYTES_MAX - 1024,
	       "a task with its secrets fits in one Assignments part");

/* issue 17: the network keys of encrypted overlays (core/keymanager.h):
 * rotated every 12 h unless the cluster says otherwise (SwarmKit's
 * default), never more often than every minute (a rotation must reach
 * every node, a heartbeat or two, before the next one makes its key the
 * one to send with) */
#define LIMIT_NET_KEY_ROTATION_MS_DEFAULT (12ull * 3600 * 1000)
#define LIMIT_NET_KEY_ROTATION_MS_MIN	  (60ull * 1000)

/* The shortest dispatcher heartbeat period a cluster may set. SwarmKit
 * refuses only a negative one; agents keep their sessions at any period
 * (their tick follows it: 1 ms holds in a simulated cluster), so the floor
 * only keeps a typo from making heartbeats the leader's whole work: 10,000
 * agents at 10 ms are a million heartbeats a second */
#define LIMIT_HEARTBEAT_MS_MIN 10ull

_Static_assert(LIMIT_MANAGERS_MAX < LIMIT_NODES_MAX, "managers are nodes");

#endif
