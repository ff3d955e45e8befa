/*
 * Integration-test harness: real hpcxl-agent processes on loopback ports
 * they choose themselves, real xlsim workers, and a raw protocol client.
 * Nothing here sleeps as synchronisation: waits poll a condition until a
 * deadline.
 */
#ifndef HPCXL_TESTS_HARNESS_H
#define HPCXL_TESTS_HARNESS_H

#include "hpcxl/common/proto.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct harness_agent {
	pid_t pid;
	char node[64];
	char dir[PATH_MAX]; /* private temp dir: ready file, state, log */
	char url[256];
	int exit_status; /* waitpid status once stopped, else -1 */
};

/* Paces a loop that waits for a condition with a deadline. */
void harness_nap_ms(int ms);

/* Path of a built program (hpcxl-agent, hpcxl, xlsim); static storage. */
const char *harness_bin(const char *name);

/*
 * The name of the user the tests run as (static storage). The harness's
 * agents run their command-line profiles as that user (--default-user): a
 * root agent runs a worker as root only when told to, and a test run as
 * root tells it so.
 */
const char *harness_own_user(void);

/* A name unique to this test process: prefix + pid + counter. */
void harness_unique(const char *prefix, char *out, size_t len);

/*
 * Starts an agent named node (made unique) listening on tcp://127.0.0.1:0,
 * with --stop-grace 1000 and these profiles of xlsim:
 *   xl (exits on SIGTERM), xl-ignore (--on-term ignore),
 *   xl-children (--children 2), xl-detach (--detach),
 *   xl-crash (--crash-after 100), xl-storm (--fork-storm), broken (a program
 * that does not exist); and from a config file: xl-restart (--crash-after 100,
 * restart = on-failure, max_restarts = 2). Its callers over that tcp://
 * listener are all "anonymous" (agent/caller.h), which it makes an admin
 * (--admin anonymous): tests clear the unhealthy mark and close what an
 * earlier agent left. extra_args (NULL-terminated, may be NULL) are
 * appended. Waits up to 10 s for the ready file; returns 0 and fills
 * a, or -1 (the agent's log then goes to stderr).
 *
 * When the test process exits, pass or fail, the harness stops the agents
 * the test left running, then removes each agent's directory and the
 * cgroups it made (<mount>/hpcxl/<node>, deepest first, once empty); those
 * of an agent that did not start, at once. A crashed test process leaves
 * them. HPCXL_TEST_KEEP=1 in the environment keeps the directories, for
 * their logs.
 */
int harness_agent_start(
    struct harness_agent *a, const char *node, const char *const *extra_args);

/*
 * The agents above run with --close-on-exit, so a test that fails leaves
 * no process behind. This one runs with the agent's default instead: its
 * sessions survive a SIGTERM, for the next agent to re-adopt.
 */
int harness_agent_start_keeping(
    struct harness_agent *a, const char *node, const char *const *extra_args);

/*
 * harness_agent_start() with the system calls of deny (numbers, ended by
 * -1) failing with EPERM (kill: killing the caller with SIGSYS instead, as
 * systemd's SystemCallFilter= does) in the agent and all it starts, as a
 * sandbox's seccomp filter makes them. Only where
 * harness_can_deny_syscalls().
 */
int harness_agent_start_denying(
    struct harness_agent *a, const char *node, const long *deny, bool kill);
bool harness_can_deny_syscalls(void);

/*
 * The line of a's ready file (one bound URL per line) that starts with
 * prefix ("tls+tcp", "ipc://"), into out; false when there is none.
 */
bool harness_ready_url(
    const struct harness_agent *a, const char *prefix, char *out, size_t len);

/* True when a line of a's log (its stderr, <dir>/agent.log) holds every
 * one of words (a NULL-terminated list). */
bool harness_agent_logged(
    const struct harness_agent *a, const char *const *words);

/* How many lines of a's log hold text (0 when it cannot be read). */
int harness_agent_log_count(const struct harness_agent *a, const char *text);

/* Waits until at least n lines of a's log hold text (an agent logs on its
 * own threads); false when timeout_ms passed first. */
bool harness_agent_wait_log(
    const struct harness_agent *a, const char *text, int n, int timeout_ms);

/* Starts again with the same node, dir and args (a restarted agent). */
int harness_agent_restart(struct harness_agent *a);

/* The descriptors pid holds (/proc/PID/fd), or -1. */
int harness_count_fds(pid_t pid);

/* Waits until pid holds at most limit descriptors (an agent closes a
 * dropped connection's socket on its own threads, a moment after the
 * client's close); false when timeout_ms passed first. */
bool harness_fds_settled(pid_t pid, int limit, int timeout_ms);

/* SIGTERM and wait up to timeout_ms; returns the wait status or -1. */
int harness_agent_stop(struct harness_agent *a, int timeout_ms);

/* SIGKILL and reap. */
void harness_agent_kill(struct harness_agent *a);

/*
 * Waits until n workers of session on agent a have printed xlsim's ready
 * line into their logs (so their signal handlers are in place).
 */
bool harness_wait_ready(
    const struct harness_agent *a, const char *session, int n, int timeout_ms);

/* Counts live (non-zombie) processes with HPCXL_SESSION=session. */
int harness_session_procs(const char *session);

/* SIGKILLs every process of session (a failed test's clean-up). */
void harness_session_kill(const char *session);

/* Waits until harness_session_procs(session) == n or timeout_ms passed. */
bool harness_wait_procs(const char *session, int n, int timeout_ms);

/*
 * Who harness_request() is to tls+tcp:// agents: the PEM files of a client
 * certificate, its key and the agents' CA, and the name the agent's
 * certificate must carry (copied; NULLs: nobody, and tls+tcp:// URLs get
 * no reply). Applies to the requests this process makes from then on.
 */
void harness_tls_client(const char *cert, const char *key, const char *ca,
    const char *server_name);

/*
 * One survey to url with req; waits up to timeout_ms for the reply and
 * decodes it into reply (free with proto_msg_free). Returns 0 or -1. A
 * tls+tcp:// URL is asked as harness_tls_client() says, over a
 * connection of its own made with mbedTLS, not nng (sp_tls.h says why).
 */
int harness_request(const char *url, const struct proto_msg *req,
    int timeout_ms, struct proto_msg *reply);

/* Same, with raw bytes as the request body. */
int harness_request_raw(const char *url, const void *frame, size_t len,
    int timeout_ms, struct proto_msg *reply);

/*
 * Waits until the agent at url answers a status of session with not_found
 * (the agent has forgotten it: its close, whoever started it, is over) or
 * timeout_ms passed. The last process of a session is gone a moment before
 * the agent notices, so a test that saw no process left waits here before
 * it expects not_found from the agent.
 */
bool harness_wait_session_gone(
    const char *url, const char *session, int timeout_ms);

/*
 * Runs argv (argv[0] a path), capturing stdout into *out (malloc'd, NUL-
 * terminated; may be NULL). Returns 0 and the wait status and elapsed ms.
 * Waits as long as it takes: harness_run_bounded() gives up.
 */
int harness_run(
    const char *const argv[], char **out, int *status, int64_t *elapsed_ms);

struct harness_run_result {
	char *out; /* stdout, NUL-terminated (free it) */
	int status; /* wait status */
	int64_t elapsed_ms;
	bool timed_out; /* still running at the deadline: killed (SIGKILL) */
};

/*
 * harness_run() with a deadline: a program still running (or holding its
 * stdout open) timeout_ms after its start is killed, and r says so, with
 * what it wrote until then; timeout_ms < 0 waits as long as it takes.
 * Returns 0, or -1 if it could not be started.
 */
int harness_run_bounded(
    const char *const argv[], int timeout_ms, struct harness_run_result *r);

/* harness_run_bounded() as uid and gid, without supplementary groups: the
 * child exits 126 when it cannot become them. */
int harness_run_as(uid_t uid, gid_t gid, const char *const argv[],
    int timeout_ms, struct harness_run_result *r);

/*
 * The local ports of the ESTABLISHED TCP connections (IPv4) to the port of
 * url (tcp://HOST:PORT), into ports[0..max); returns how many. One per
 * connection a client keeps to that agent.
 */
size_t harness_tcp_conns_to(const char *url, unsigned *ports, size_t max);

/*
 * A test CA for one agent and one client: make-certs.sh (script) into dir
 * (made, mode 0700), with an agent certificate for "localhost" and a client
 * certificate for client. Returns 0, or -1 with what the script said (or
 * why it could not run) in why. Remove dir with harness_remove_tree().
 */
int harness_make_pki(const char *script, const char *dir, const char *client,
    char *why, size_t whylen);

/* dir/name, in one of eight rotating buffers (static storage). */
const char *harness_pki_file(const char *dir, const char *name);

/*
 * Starts a (keeping: as harness_agent_start_keeping() does) on
 * tls+tcp4://localhost:0 with the agent certificate, key and CA of pki
 * (harness_make_pki()), then extra (NULL-ended, at most 16 arguments, or
 * NULL), and copies its bound tls+tcp:// URL into url. Returns 0, or -1
 * when the agent did not start or bound no such URL.
 */
int harness_tls_agent_start(struct harness_agent *a, const char *node,
    const char *pki, bool keeping, const char *const *extra, char *url,
    size_t len);

/* Removes dir and everything under it ("" does nothing). */
void harness_remove_tree(const char *dir);

/* The cgroup2 path of pid (the "0::" line of /proc/PID/cgroup), or "". */
void harness_proc_cgroup(pid_t pid, char *out, size_t len);

/* Value of NAME in the environment of pid, copied into out; -1 if none. */
int harness_proc_env(pid_t pid, const char *name, char *out, size_t len);

#endif
