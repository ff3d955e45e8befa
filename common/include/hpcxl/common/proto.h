/*
 * The hpcxl v1 wire protocol (see common/PROTOCOL.md).
 *
 * Every frame is one msgpack array [version, type, op, body]. The decoder is
 * strict: wrong types, missing required keys, duplicate keys, trailing bytes
 * and oversized strings or arrays are rejected with HPCXL_EPROTO or
 * HPCXL_ETOOBIG, and nothing is returned. Unknown body keys are ignored so
 * newer peers can add fields.
 *
 * A decoded message owns all of its strings and arrays (plain malloc, freed
 * by proto_msg_free()); no msgpack memory escapes the codec.
 */
#ifndef HPCXL_COMMON_PROTO_H
#define HPCXL_COMMON_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION 1
/* Largest request frame an agent accepts. */
#define PROTO_MAX_REQUEST (64 * 1024)
/* Largest reply frame a controller accepts (status of a busy node). */
#define PROTO_MAX_REPLY (4 * 1024 * 1024)
/* Longest free-text string (msg, workbook, version, backend, unhealthy),
 * in bytes. */
#define PROTO_MAX_TEXT 4096
/* Most workers in one session on one node, and most sessions in a reply. */
#define PROTO_MAX_WORKERS 4096
#define PROTO_MAX_SESSIONS 4096

enum proto_type {
	PROTO_OPEN = 1,
	PROTO_CLOSE,
	PROTO_STATUS,
	PROTO_RENEW,
	PROTO_PING,
	PROTO_REPLY,
	PROTO_CLEAR, /* operator: clear the node's unhealthy mark */
};

enum proto_code {
	PROTO_CODE_OK = 0,
	PROTO_CODE_NOT_FOUND,
	PROTO_CODE_PARTIAL,
	PROTO_CODE_REFUSED,
	PROTO_CODE_BAD_REQUEST,
	PROTO_CODE_ERROR,
};

/* What a worker process is doing, as status reports it. */
enum proto_wstate {
	PROTO_W_RUNNING = 0,
	PROTO_W_STOPPING, /* SIGTERM sent, grace running */
	PROTO_W_EXITED, /* ended by itself or by SIGTERM */
	PROTO_W_KILLED, /* ended by the SIGKILL at the end of grace */
	PROTO_W_FAILED, /* could not be started */
};

struct proto_open {
	char *session;
	char *profile;
	uint32_t workers; /* ignored when per_core */
	bool per_core; /* one worker per online CPU of the node */
	char *workbook; /* may be NULL */
	uint64_t lease_ms; /* 0 = no lease */
};

struct proto_close {
	char *session;
	/* Time the agent has, from receipt, before it must reply. */
	uint64_t deadline_ms;
};

struct proto_status {
	char *session; /* NULL = every session */
};

struct proto_renew {
	char *session;
	uint64_t lease_ms;
};

struct proto_worker {
	uint32_t index;
	int32_t pid;
	enum proto_wstate state;
	/* Wait status as from waitpid(2) while ended, else -1. */
	int32_t exit_status;
	uint32_t restarts;
};

struct proto_session {
	char *session;
	char *profile;
	/* The identity that opened it (PROTOCOL.md 1.6); NULL when absent:
	 * an agent that predates owners, or a session that has none. */
	char *owner;
	uint32_t nworkers;
	struct proto_worker *workers;
};

/* Counts of a close (and of an open: workers only). */
struct proto_counts {
	uint32_t workers; /* workers the session had */
	uint32_t exited; /* ended on their own or on SIGTERM */
	uint32_t killed; /* ended by the kill at the end of grace */
	uint32_t remaining; /* processes still alive at reply time */
	uint64_t elapsed_ms;
};

struct proto_reply {
	char *node;
	enum proto_code code;
	char *msg;
	char *version; /* ping; NULL when absent */
	char *backend; /* ping, status: "cgroup2" or "pgroup"; may be NULL */
	/* ping, status, refused open: why the node refuses new sessions (a
	 * session stayed unkillable past the limit); NULL = healthy. */
	char *unhealthy;
	bool has_counts;
	struct proto_counts counts;
	bool has_sessions;
	uint32_t nsessions;
	struct proto_session *sessions;
};

struct proto_msg {
	enum proto_type type;
	uint64_t op; /* chosen by the controller; same on every retry */
	union {
		struct proto_open open;
		struct proto_close close;
		struct proto_status status;
		struct proto_renew renew;
		struct proto_reply reply;
	} u;
};

/*
 * Encodes m into a new malloc'd buffer. On success *buf (free with free())
 * and *len are set; on failure (HPCXL_EINVAL for a message that breaks the
 * protocol's own rules, HPCXL_ENOMEM) they are untouched.
 */
int proto_encode(const struct proto_msg *m, char **buf, size_t *len);

/*
 * Decodes exactly one frame of len bytes; max_len bounds the frame
 * (PROTO_MAX_REQUEST or PROTO_MAX_REPLY). On success *out owns everything it
 * points to (release with proto_msg_free()). On failure returns HPCXL_EPROTO
 * or HPCXL_ETOOBIG, *out is untouched, and when why is not NULL it points to
 * a static text saying what was wrong.
 */
int proto_decode(const void *buf, size_t len, size_t max_len,
    struct proto_msg *out, const char **why);

/* Frees what m owns (not m itself) and zeroes it; m may be all zero. */
void proto_msg_free(struct proto_msg *m);

/* Deep copy of a reply. Returns 0 or HPCXL_ENOMEM (dst untouched). */
int proto_reply_copy(const struct proto_reply *src, struct proto_reply *dst);

const char *proto_type_name(enum proto_type t);
const char *proto_code_name(enum proto_code c);
const char *proto_wstate_name(enum proto_wstate s);

/*
 * Walks a msgpack buffer without allocating and checks that every container
 * fits in what is left of it, so the msgpack-c unpacker (which allocates a
 * container's slots before reading them) cannot be made to allocate more than
 * a small multiple of len. Returns 0 or HPCXL_EPROTO. Depth is bounded too.
 */
int msgcheck_walk(const void *buf, size_t len);

#endif
