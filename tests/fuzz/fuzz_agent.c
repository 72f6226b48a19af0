/* fuzz_agent: fuzz_node's messages the other way, from the leader m1 to the
 * worker w1's agent (node.c, agent_handle: assignments, session and
 * heartbeat answers, certificates): see fuzz_node.c. */
#define FUZZ_TO_AGENT 1
#include "tests/fuzz/fuzz_node.c"
