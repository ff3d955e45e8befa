/*
 * libhpcxl: open, close and inspect hpcxl sessions on a roster of agents.
 *
 * Every call broadcasts one request to every agent of the client's roster
 * and collects one reply per node until its timeout; the result is a report
 * with exactly one row per roster URL, in roster order. A call never returns
 * later than its timeout plus a small overshoot: a few ms, plus about 15 ms
 * per 1,000 nodes that never connected (explaining their silence from
 * nng's statistics); an open that is rolled back pays that twice.
 *
 * A client dials every node of its roster when it is opened and keeps the
 * connections until hpcxl_client_close() (HPC Pack's client object lives
 * from OpenSession to CloseSession): a call pays no connection set-up for
 * nodes that are already connected, and a node that goes away is redialled
 * in the background. Calls on one client may run concurrently from several
 * threads; each call's replies are routed to it by its survey id. Errors are
 * hpcxl_err values (<hpcxl/common/err.h>); use hpcxl_strerror() for a text.
 *
 * The header is C11 and C++ (every declaration has C linkage). Build with
 * find_package(hpcxl CONFIG) and its target hpcxl::hpcxl, or with
 * pkg-config's hpcxl.
 *
 * Compatibility. libhpcxl.so.N (N: HPCXL_VERSION_MAJOR) keeps working for
 * programs built against any earlier header of the same major version, so
 * the public structs only change in ways such a program cannot notice:
 *
 * 1. A field is only ever added at the end of a struct; none is removed,
 *    moved or retyped. An enum only gains values, at its end. Functions
 *    are only added: a changed meaning is a new function.
 * 2. A struct the caller fills in and passes by pointer
 *    (hpcxl_client_opts, hpcxl_open_params) starts with `size`: its _INIT
 *    macro sets it to the caller's sizeof and zeroes the rest. The library
 *    reads the fields within size and takes the later ones as zero, and a
 *    zero field always means "the default". A size of 0 stands for the
 *    struct's first layout (its size field says down to which field), so
 *    a zeroed struct serves too, as long as it uses only those fields.
 * 3. A struct the library allocates and hands out by pointer (hpcxl_report,
 *    hpcxl_progress) may grow at its end: read it through that pointer;
 *    never copy it by value or make one of your own.
 * 4. A struct that comes in an array (hpcxl_node, which the caller passes;
 *    the report's hpcxl_node_report, hpcxl_session_info and
 *    hpcxl_worker_info) is indexed with the caller's sizeof, so it does not
 *    grow within a major version: a new per-row value comes as a parallel
 *    array added at the end of the struct that holds the array (rule 3), or
 *    with the next major version.
 */
#ifndef HPCXL_HPCXL_H
#define HPCXL_HPCXL_H

#include <hpcxl/common/err.h>
#include <hpcxl/version.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of the library the program runs with, e.g. "0.1.0" (static
 * storage); HPCXL_VERSION is that of the header it was compiled with. */
const char *hpcxl_version(void);

/* The timeout a negative timeout_ms stands for, as in HPC Pack's client. */
#define HPCXL_DEFAULT_TIMEOUT_MS 120000

struct hpcxl_client;

/* One node of a roster: the name its report row carries and the nng URL
 * its agent listens on. */
struct hpcxl_node {
	const char *name; /* NULL: the URL is the name */
	const char *url; /* e.g. "tcp://n017:7420" */
};

/*
 * Creates a client for the agents nodes[0..n) and starts dialling them all
 * without waiting (the first call waits for the connections it needs, within
 * its own timeout). The strings are copied. Returns 0 and sets *out (release
 * with hpcxl_client_close()), or HPCXL_EINVAL (no nodes, a NULL or unusable
 * URL, a name or URL listed twice), HPCXL_ETRANSPORT (nng could not be set
 * up) or HPCXL_ENOMEM, with *out untouched.
 */
int hpcxl_client_open_nodes(
    const struct hpcxl_node *nodes, size_t n, struct hpcxl_client **out);

/*
 * What a client may be given besides its roster (hpcxl_client_open_opts()).
 * Start from HPCXL_CLIENT_OPTS_INIT: it sets size, by which libhpcxl knows
 * which fields the caller's header had (rule 2 at the top).
 */
struct hpcxl_client_opts {
	size_t size; /* sizeof(struct hpcxl_client_opts) of the caller; 0:
	                the fields down to errbuf_len */
	/*
	 * Mutual TLS for tls+tcp:// nodes, as PEM files (NULL: not given):
	 * the client's certificate (and its chain), its private key
	 * (unencrypted), and the CA every agent's certificate must chain to.
	 * tls_ca is needed as soon as one node is tls+tcp://; tls_cert and
	 * tls_key go together (agents ask for them). An agent's certificate
	 * must also carry the host of its URL as a DNS name (subjectAltName):
	 * nng 1.5.2 with mbedTLS 2.28 does not match IP addresses, so name
	 * agents by host name, e.g. tls+tcp://n017:7420. The files are read
	 * when the client opens.
	 */
	const char *tls_cert;
	const char *tls_key;
	const char *tls_ca;
	/* When not NULL: gets one line that says why the open failed with
	 * HPCXL_ECONFIG, or with HPCXL_EINVAL for a URL nng cannot dial,
	 * naming the file or the node (e.g. "key.pem: the key does not match
	 * the certificate in cert.pem"); "" otherwise. */
	char *errbuf;
	size_t errbuf_len;
};

/* C++ before C++20 has no designated initialisers: there every field is
 * listed, in order (a field added later is added here too). */
#ifdef __cplusplus
#define HPCXL_CLIENT_OPTS_INIT                                                \
	{                                                                     \
		sizeof(struct hpcxl_client_opts), NULL, NULL, NULL, NULL, 0   \
	}
#else
#define HPCXL_CLIENT_OPTS_INIT                                                \
	{                                                                     \
		.size = sizeof(struct hpcxl_client_opts)                      \
	}
#endif

/*
 * hpcxl_client_open_nodes() with options (NULL: none, which is
 * hpcxl_client_open_nodes()). Also returns HPCXL_ECONFIG: a TLS file is
 * missing, unreadable or wrong (no certificate in it, an encrypted key, a
 * key that does not match its certificate), or a tls+tcp:// node has no
 * tls_ca to check its agent against; and HPCXL_EINVAL for opts whose size
 * is not one this libhpcxl knows (larger than its own struct: a program
 * built against a later header).
 */
int hpcxl_client_open_opts(const struct hpcxl_node *nodes, size_t n,
    const struct hpcxl_client_opts *opts, struct hpcxl_client **out);

/* 0 if nng can dial url, else HPCXL_EINVAL (unknown scheme, malformed, or
 * NULL): the check hpcxl_client_open_nodes() makes, without dialling. */
int hpcxl_url_check(const char *url);

/* hpcxl_client_open_nodes() for unnamed nodes: each URL is its own name. */
int hpcxl_client_open(
    const char *const *urls, size_t nurls, struct hpcxl_client **out);

/* Closes every connection and frees c (NULL is fine). No call on c may be
 * running. */
void hpcxl_client_close(struct hpcxl_client *c);

/*
 * Ends every call running on c, and every later one, at once: each returns
 * the report so far, with HPCXL_NODE_INTERRUPTED for the nodes that had not
 * answered, and HPCXL_EPARTIAL. Meant for a SIGINT handler (it is
 * async-signal-safe); a client that was interrupted stays so.
 */
void hpcxl_client_interrupt(struct hpcxl_client *c);

/* What a call that is still waiting reports about itself. */
#define HPCXL_PROGRESS_NAMES 8
struct hpcxl_progress {
	size_t answered; /* nodes that answered so far */
	size_t total; /* nodes the call waits for */
	/* Names of up to HPCXL_PROGRESS_NAMES nodes still silent, in roster
	 * order; valid during the callback only. */
	const char *waiting[HPCXL_PROGRESS_NAMES];
	size_t nwaiting;
	int64_t elapsed_ms; /* since the call started */
	int64_t left_ms; /* until its timeout */
};

/*
 * Has every call on c report its progress to fn, on the calling thread,
 * every interval_ms (> 0) while it waits; the first report comes after
 * interval_ms. fn must not call into c. NULL turns reports off. Set it
 * before calls start: it is not synchronised with running calls.
 */
void hpcxl_client_set_progress(struct hpcxl_client *c,
    void (*fn)(const struct hpcxl_progress *p, void *arg), void *arg,
    int interval_ms);

enum hpcxl_node_state {
	HPCXL_NODE_OK, /* open, status, ping succeeded */
	HPCXL_NODE_CLOSED, /* close: every process of the session gone */
	HPCXL_NODE_ALREADY_CLOSED, /* close: the node had no such session */
	HPCXL_NODE_PARTIAL, /* processes remain (close) or some
	                       workers did not start (open) */
	HPCXL_NODE_UNREACHABLE, /* no reply before the deadline */
	HPCXL_NODE_ERROR, /* the agent refused or failed; see msg */
	HPCXL_NODE_INTERRUPTED, /* no reply yet when the call was
	                           interrupted (hpcxl_client_interrupt()) */
};

/* "ok", "closed", "already_closed", "partial", "unreachable", "error",
 * "interrupted"; "?" for a value outside the enum. Static storage. */
const char *hpcxl_node_state_name(enum hpcxl_node_state s);

struct hpcxl_worker_info {
	unsigned index;
	int pid;
	const char *state; /* "running", "stopping", "exited", "killed",
	                      "failed": static storage */
	int exit_status; /* wait status as from waitpid(2), -1 while alive */
	unsigned restarts;
};

struct hpcxl_session_info {
	char *session;
	char *profile;
	size_t nworkers;
	struct hpcxl_worker_info *workers;
};

struct hpcxl_node_report {
	char *name; /* the roster name of this row (its URL if unnamed) */
	char *url; /* the roster URL of this row */
	char *node; /* the name the agent gave; NULL if it never answered */
	enum hpcxl_node_state state;
	char *msg; /* the agent's message or why it is unreachable; never
	              NULL, may be "" */
	char *version; /* ping: agent version; else NULL */
	char *backend; /* ping, status: "cgroup2" or "pgroup"; else NULL */
	/* ping, status, and an open the node refused for it: why the agent
	 * marked its node unhealthy (it refuses new sessions until
	 * hpcxl_clear_unhealthy()); may be "". NULL when the node reported
	 * no mark, or did not answer (then node is NULL too). The state of
	 * the row is not changed by the mark: a ping of an unhealthy node is
	 * still "ok". */
	char *unhealthy;
	/* open: workers started; close: the session's workers, those that
	 * exited on their own or on SIGTERM, those killed at the end of
	 * grace, and processes still alive. Zero where not reported. */
	unsigned workers, exited, killed, remaining;
	/* The agent's own time for open and close; otherwise the time from
	 * the start of the call to this node's reply (or to the deadline). */
	int64_t elapsed_ms;
	size_t nsessions; /* status only */
	struct hpcxl_session_info *sessions;
};

struct hpcxl_report {
	/* The call's session; NULL for ping, clear and status of all. */
	char *session;
	/* Every node succeeded; for an open, at least min_nodes nodes
	 * opened (the rows of the others still say why). */
	bool ok;
	int64_t elapsed_ms; /* wall time of the whole call */
	size_t nnodes; /* always the roster size */
	struct hpcxl_node_report *nodes;
	/* Who opened each session a node listed (status, open): the
	 * identity (a client certificate's CN, an ipc peer's account,
	 * "anonymous") of nodes[i].sessions[j] is session_owners[i][j], NULL
	 * when the agent named none (an agent that predates owners, or a
	 * session one stored: only the agent's admins may act on it).
	 * session_owners[i] is NULL when nodes[i] lists no session. Kept
	 * apart, in arrays parallel to the rows and their sessions, so that
	 * the structs of those arrays keep their size. */
	char ***session_owners;
	/* The outcome of each row as a word: the reply's wire code
	 * (common/PROTOCOL.md section 6: "ok", "not_found", "partial",
	 * "refused", "bad_request", "error"), or "unreachable" or
	 * "interrupted" for a row with no reply. codes[i] is of nodes[i];
	 * static strings. A parallel array (rule 4): the row state folds
	 * refused, bad_request and error into HPCXL_NODE_ERROR. */
	const char **codes;
};

/* Start from HPCXL_OPEN_PARAMS_INIT (rule 2 at the top). */
struct hpcxl_open_params {
	size_t size; /* sizeof(struct hpcxl_open_params) of the caller; 0:
	                the fields down to min_nodes */
	const char *session; /* a valid id: [A-Za-z0-9._-]{1,64}, not
	                        starting with '.' or '-' */
	const char *profile; /* a profile of the agents' config (valid id) */
	unsigned workers; /* 1..4096 per node; ignored when per_core */
	bool per_core; /* one worker per online CPU of each node */
	const char *workbook; /* passed to workers; may be NULL */
	uint64_t lease_ms; /* agents close the session if not renewed
	                      within this; 0 = no lease */
	/* Fewest nodes that must open for the call to succeed; 0 = every
	 * node of the roster. When fewer open, the session is closed again
	 * on every node that may have opened it, within the same timeout,
	 * and the call fails: a failed open leaves nothing running. */
	size_t min_nodes;
};

#ifdef __cplusplus
#define HPCXL_OPEN_PARAMS_INIT                                                \
	{                                                                     \
		sizeof(struct hpcxl_open_params), NULL, NULL, 0, false, NULL, \
		    0, 0                                                      \
	}
#else
#define HPCXL_OPEN_PARAMS_INIT                                                \
	{                                                                     \
		.size = sizeof(struct hpcxl_open_params)                      \
	}
#endif

/*
 * The operations below share these rules.
 *
 * timeout_ms < 0 means HPCXL_DEFAULT_TIMEOUT_MS; 0 sends the request once
 * to the nodes already connected and gives up at once.
 * On return 0 every node succeeded. On HPCXL_EPARTIAL a report was made
 * but some node did not succeed (failed, partial or unreachable). In both
 * cases *out is set and owned by the caller (hpcxl_report_free()). Other
 * errors leave *out untouched: HPCXL_EINVAL (NULL or invalid arguments),
 * HPCXL_ETRANSPORT (the socket could not be set up), HPCXL_ENOMEM.
 */

/*
 * Starts a session's workers on every node. Node states: ok, partial,
 * error, unreachable. Retrying with the same session is safe. Returns 0
 * when at least p->min_nodes nodes opened (every node by default). When fewer
 * than p->min_nodes nodes answered ok, the call closes the session again on
 * every node that did not refuse it (within the same timeout: the open phase
 * keeps a quarter of it for that) and returns HPCXL_EPARTIAL; the rows of
 * those nodes then say what the close found (closed, already_closed,
 * partial, unreachable) and their msg says why the session was closed.
 * The close is sent at least once to every connected node that may run the
 * session, even when the open used up the timeout. An open interrupted by
 * hpcxl_client_interrupt() is not rolled back: close the session.
 */
int hpcxl_open_session(struct hpcxl_client *c,
    const struct hpcxl_open_params *p, int timeout_ms,
    struct hpcxl_report **out);

/*
 * Ends every process of session on every node: SIGTERM, a grace period,
 * then a kill; agents answer "partial" just before the deadline if
 * processes remain. Node states: closed, already_closed (both success),
 * partial, error, unreachable.
 */
int hpcxl_close_session(struct hpcxl_client *c, const char *session,
    int timeout_ms, struct hpcxl_report **out);

/* Lists session (or every session when NULL) with its workers on every
 * node. Node states: ok, error (e.g. unknown session), unreachable. */
int hpcxl_status(struct hpcxl_client *c, const char *session, int timeout_ms,
    struct hpcxl_report **out);

/*
 * Sets the lease of session on every node to lease_ms from now, or removes
 * it when lease_ms is 0. An agent closes a session whose lease lapses, with
 * the normal sequence: a client renews while it lives, so the sessions of a
 * client that died are cleaned up. Node states: ok, error (unknown session,
 * or one already closing), unreachable. Errors and ownership as for
 * hpcxl_status(); HPCXL_EINVAL also for lease_ms > 2^32-1 seconds.
 */
int hpcxl_renew_session(struct hpcxl_client *c, const char *session,
    uint64_t lease_ms, int timeout_ms, struct hpcxl_report **out);

/* Asks every node for its name, version, process-tracking backend and
 * health (unhealthy). Node states: ok, error, unreachable. */
int hpcxl_ping(
    struct hpcxl_client *c, int timeout_ms, struct hpcxl_report **out);

/*
 * Clears the unhealthy mark of every node (an operator's call, once the
 * cause, e.g. processes stuck in uninterruptible sleep, is dealt with), so
 * that the nodes accept new sessions again. Node states: ok (the node is
 * healthy now: its msg is "cleared" if it was unhealthy, "healthy" if there
 * was nothing to clear), error (the agent could not remove its stored mark,
 * or is too old to know the request), unreachable. Errors and ownership as
 * for hpcxl_ping().
 */
int hpcxl_clear_unhealthy(
    struct hpcxl_client *c, int timeout_ms, struct hpcxl_report **out);

/* Frees r and everything it points to (NULL is fine). */
void hpcxl_report_free(struct hpcxl_report *r);

/*
 * Sets the most verbose syslog level libhpcxl logs (default LOG_INFO), to
 * stderr or to the callback of hpcxl_set_log_callback(). The library logs
 * only anomalies (e.g. malformed replies) below LOG_DEBUG, and each step of
 * its surveys at LOG_DEBUG. Process-wide; call it before starting calls.
 */
void hpcxl_set_log_level(int level);

/*
 * Receives one message of libhpcxl: level is a syslog(3) level (LOG_ERR ..
 * LOG_DEBUG), msg one line without a newline or a program name, valid
 * during the call only; arg is what hpcxl_set_log_callback() was given.
 */
typedef void hpcxl_log_fn(int level, const char *msg, void *arg);

/*
 * Sends libhpcxl's messages, those within hpcxl_set_log_level(), to fn
 * instead of stderr, so the program decides where they go (its own log,
 * syslog, a window); NULL sends them to stderr again. Process-wide. fn is
 * called on the thread that logs (a caller's, or one of nng's), one call
 * at a time: it need not be thread-safe, but must not call
 * hpcxl_set_log_callback(). Once this returns, the previous fn is not
 * running and is not called again, so its arg may be freed.
 */
void hpcxl_set_log_callback(hpcxl_log_fn *fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
