/*
 * A multi-host test bed on one machine: N network namespaces on a bridge,
 * one real hpcxl-agent per namespace listening on its own address
 * (tcp://10.213.X.Y:7420), and a "hub" namespace that holds the bridge and
 * runs the controller (the hpcxl CLI). The root namespace never gets an
 * address, a route or an interface on the test network: every link is
 * created inside the test's own namespaces.
 *
 * Every name starts with "hpcxl-nt<pid>-" (namespaces, agent node names,
 * their cgroups) and the files live in /tmp/hpcxl-nt<pid>, so parallel runs
 * do not collide. testbed_down() removes all of it; namespaces left by a run
 * whose process is gone (a test killed on timeout) are removed by the next
 * testbed_up() and by testbed_sweep_stale().
 *
 * Needs root and iproute2's ip; testbed_unavailable() says why not.
 * Nothing here sleeps as synchronisation: waits poll a condition until a
 * deadline, and every loop is bounded.
 */
#ifndef HPCXL_TESTS_TESTBED_H
#define HPCXL_TESTS_TESTBED_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define TESTBED_PORT 7420
#define TESTBED_MAX_NODES 1000
/* Every agent has two xlsim profiles: xl exits on SIGTERM, xl-ignore
 * ignores it, so the agent kills it at the end of this grace. */
#define TESTBED_STOP_GRACE_MS 1000

struct testbed_node {
	char ns[48]; /* its network namespace; also the agent's node name */
	char veth[16]; /* the hub's end of its link (in the hub namespace) */
	char addr[24]; /* its IPv4 address */
	char url[64]; /* tcp://addr:7420 */
	char dir[PATH_MAX]; /* ready file, state dir, agent.log */
	pid_t pid; /* the agent; 0 when it is not running */
	int exit_status; /* the agent's last wait status, or -1 */
};

struct testbed {
	char prefix[32]; /* "hpcxl-nt<pid>-": starts every name */
	char hub[48]; /* the hub namespace */
	char dir[64]; /* /tmp/hpcxl-nt<pid> */
	int n;
	struct testbed_node *nodes;
	char *roster; /* every node's URL, comma-separated */
	bool up;
};

/* NULL when network namespaces can be made here; else why not (static). */
const char *testbed_unavailable(void);

/*
 * Creates the hub, n node namespaces and their links, and starts one agent
 * per node (in parallel; waits for every ready file). Returns 0, or -1 with
 * the reason in err. A test bed that is partly up is still torn down by
 * testbed_down().
 */
int testbed_up(struct testbed *tb, int n, char *err, size_t errlen);

/* Stops the agents (SIGTERM, then SIGKILL), kills every process left in
 * the test bed's namespaces, removes namespaces, links, cgroups and files.
 * Safe to call twice, and on a test bed that never came up. */
void testbed_down(struct testbed *tb);

/* Removes what runs of this test left when their process died. */
void testbed_sweep_stale(void);

/* Starts agent i (not running) on its state dir; waits up to timeout_ms
 * for its ready file. Returns 0 or -1. */
int testbed_agent_start(struct testbed *tb, int i, int timeout_ms);

/* SIGTERM to agent i and wait up to timeout_ms; returns 0 when it exited
 * (status in exit_status), -1 when it had to be killed. */
int testbed_agent_stop(struct testbed *tb, int i, int timeout_ms);

/* SIGKILL to agent i and reap it. */
void testbed_agent_kill(struct testbed *tb, int i);

/* Sets the hub's end of node i's link up or down. Returns 0 or -1. */
int testbed_link(struct testbed *tb, int i, bool up);

/* True once node i's agent log has a line containing text. */
bool testbed_log_has(const struct testbed *tb, int i, const char *text);

/* Waits up to timeout_ms for testbed_log_has(). */
bool testbed_wait_log(
    const struct testbed *tb, int i, const char *text, int timeout_ms);

/* Waits until node i has n workers of session that printed xlsim's ready
 * line (their SIGTERM handling is in place). */
bool testbed_wait_ready(const struct testbed *tb, int i, const char *session,
    int n, int timeout_ms);

/* Live (non-zombie) processes with HPCXL_SESSION=session in node i's
 * namespace. */
int testbed_node_procs(const struct testbed *tb, int i, const char *session);

/* A controller run in the hub namespace. */
struct testbed_cli {
	pid_t pid;
	int out_fd; /* its stdout */
	int64_t start_ms;
};

/* Starts "hpcxl --nodes ROSTER --json ARGS..." in the hub namespace
 * (args NULL-terminated). Returns 0 or -1. */
int testbed_cli_start(
    const struct testbed *tb, const char *const *args, struct testbed_cli *c);

/*
 * Reads the CLI's stdout into *out (malloc'd, NUL-terminated) and reaps it;
 * kills it if it runs past timeout_ms. Returns 0 with its wait status and
 * wall time from start to exit, or -1 (killed, or could not be read).
 */
int testbed_cli_finish(struct testbed_cli *c, int timeout_ms, char **out,
    int *status, int64_t *wall_ms);

#endif
