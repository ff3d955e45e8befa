/*
 * Callers' identities per connection (see caller.h): how each kind of
 * listener says who is on the other end, and the table of open pipes.
 */
#include "caller.h"

#include "front.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"
#include "pipe_map.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* At most one warning this often about connections closed for a full
 * table. */
#define FULL_WARN_INTERVAL_MS 10000

struct listener_kind {
	uint32_t listener;
	enum listen_kind kind;
};

/* A pipe nng has removed, still in the table until at_ms + CALLER_LINGER_MS:
 * its last requests may still be queued for the loop. */
struct departed {
	uint32_t pipe;
	int64_t at_ms;
};

struct caller_table {
	pthread_mutex_t lock; /* nng's threads write, the loop reads */
	struct pipe_map pipes; /* live pipes and departed ones */
	struct departed *gone; /* a ring, oldest first */
	size_t gone_head, gone_len;
	struct listener_kind
	    listeners[CONFIG_MAX_LISTEN + 1]; /* + the front's */
	struct front *front;
	size_t nlisteners;
	struct log_limit full_warnings; /* a full table, rate-limited */
};

int
caller_table_new(struct caller_table **out)
{
	struct caller_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return HPCXL_ENOMEM;
	if (pipe_map_init(&t->pipes, CALLER_MAX_PIPES) != 0) {
		free(t);
		return HPCXL_ENOMEM;
	}
	t->full_warnings
	    = (struct log_limit)LOG_LIMIT_INIT(1, FULL_WARN_INTERVAL_MS);
	if ((t->gone = calloc(CALLER_MAX_PIPES, sizeof(*t->gone))) == NULL) {
		pipe_map_fini(&t->pipes);
		free(t);
		return HPCXL_ENOMEM;
	}
	if (pthread_mutex_init(&t->lock, NULL) != 0) {
		pipe_map_fini(&t->pipes);
		free(t);
		return HPCXL_ESYSTEM;
	}
	*out = t;
	return 0;
}

void
caller_table_free(struct caller_table *t)
{
	if (t == NULL)
		return;
	pthread_mutex_destroy(&t->lock);
	pipe_map_fini(&t->pipes);
	free(t->gone);
	free(t);
}

/* ---- the table of pipes ------------------------------------------------ */

/* Forgets departed pipes whose time is up, and with room_wanted the oldest
 * one anyway (the table is full). Lock held. */
static void
forget_departed(struct caller_table *t, bool room_wanted)
{
	int64_t now = util_now_ms();

	while (t->gone_len > 0
	    && (room_wanted
	        || t->gone[t->gone_head].at_ms + CALLER_LINGER_MS <= now)) {
		pipe_map_remove(&t->pipes, t->gone[t->gone_head].pipe);
		t->gone_head = (t->gone_head + 1) % CALLER_MAX_PIPES;
		t->gone_len--;
		room_wanted = false;
	}
}

static int
remember_pipe(struct caller_table *t, uint32_t pipe, const char *identity)
{
	int rv;

	pthread_mutex_lock(&t->lock);
	forget_departed(t, false);
	rv = pipe_map_put(&t->pipes, pipe, identity);
	if (rv == HPCXL_ETOOBIG && t->gone_len > 0) {
		forget_departed(t, true);
		rv = pipe_map_put(&t->pipes, pipe, identity);
	}
	pthread_mutex_unlock(&t->lock);
	return rv;
}

/* Every pipe in the ring is in the map, so the ring never holds more than
 * CALLER_MAX_PIPES. */
static void
depart_pipe(struct caller_table *t, uint32_t pipe)
{
	pthread_mutex_lock(&t->lock);
	forget_departed(t, false);
	if (t->gone_len == CALLER_MAX_PIPES)
		forget_departed(t, true);
	t->gone[(t->gone_head + t->gone_len) % CALLER_MAX_PIPES]
	    = (struct departed) { pipe, util_now_ms() };
	t->gone_len++;
	pthread_mutex_unlock(&t->lock);
}

bool
caller_lookup(struct caller_table *t, nng_pipe pipe, char *out)
{
	int id = nng_pipe_id(pipe);
	const char *identity;

	if (id <= 0)
		return false;
	pthread_mutex_lock(&t->lock);
	identity = pipe_map_get(&t->pipes, (uint32_t)id);
	if (identity != NULL)
		snprintf(out, HPCXL_IDENTITY_MAX + 1, "%s", identity);
	pthread_mutex_unlock(&t->lock);
	return identity != NULL;
}

int
caller_table_add_listener(
    struct caller_table *t, nng_listener l, enum listen_kind kind)
{
	int rv = 0;

	pthread_mutex_lock(&t->lock);
	if (t->nlisteners == CONFIG_MAX_LISTEN + 1)
		rv = HPCXL_ETOOBIG;
	else
		t->listeners[t->nlisteners++]
		    = (struct listener_kind) { (uint32_t)nng_listener_id(l),
			      kind };
	pthread_mutex_unlock(&t->lock);
	return rv;
}

static bool
listener_kind_of(struct caller_table *t, nng_pipe pipe, enum listen_kind *kind)
{
	uint32_t id = (uint32_t)nng_listener_id(nng_pipe_listener(pipe));
	bool found = false;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nlisteners && !found; i++) {
		if (t->listeners[i].listener == id) {
			*kind = t->listeners[i].kind;
			found = true;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return found;
}

/* ---- identities -------------------------------------------------------- */

void
caller_peer_address(nng_pipe pipe, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	nng_sockaddr sa;

	if (nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) != 0)
		sa.s_family = NNG_AF_UNSPEC; /* closed meanwhile */
	switch (sa.s_family) {
	case NNG_AF_INET:
		inet_ntop(AF_INET, &sa.s_in.sa_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(sa.s_in.sa_port));
		break;
	case NNG_AF_INET6:
		inet_ntop(AF_INET6, sa.s_in6.sa_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(sa.s_in6.sa_port));
		break;
	case NNG_AF_IPC:
		snprintf(out, len, "%s", sa.s_ipc.sa_path);
		break;
	default:
		snprintf(out, len, "pipe %u", nng_pipe_id(pipe));
	}
}

void
caller_table_set_front(struct caller_table *t, struct front *f)
{
	t->front = f;
}

bool
caller_identity_reserved(const char *name)
{
	return strcmp(name, CALLER_ANONYMOUS) == 0
	    || strncmp(name, CALLER_UID_PREFIX, strlen(CALLER_UID_PREFIX))
	    == 0;
}

static void
log_refused(nng_pipe pipe, const char *why)
{
	char peer[256];

	caller_peer_address(pipe, peer, sizeof(peer));
	log_warn("connection from %s closed: %s", peer, why);
}

/* A relay of the front: its caller was worked out when it was accepted,
 * and is known by the relay's loopback source port. */
static int
identify_relayed(struct caller_table *t, nng_pipe pipe, char *out)
{
	nng_sockaddr sa;

	if (t->front != NULL
	    && nng_pipe_get_addr(pipe, NNG_OPT_REMADDR, &sa) == 0
	    && sa.s_family == NNG_AF_INET
	    && front_caller(t->front, ntohs(sa.s_in.sa_port), out))
		return 0;
	log_refused(pipe, "not a connection of the agent's front");
	return HPCXL_EREFUSED;
}

static int
identify(
    struct caller_table *t, nng_pipe pipe, enum listen_kind kind, char *out)
{
	switch (kind) {
	case LISTEN_FRONT:
		return identify_relayed(t, pipe, out);
	case LISTEN_TCP_LOOPBACK:
	case LISTEN_TCP_OPEN:
		snprintf(out, HPCXL_IDENTITY_MAX + 1, CALLER_ANONYMOUS);
		return 0;
	case LISTEN_TLS: /* the front's: never nng's listeners */
	case LISTEN_IPC:
	case LISTEN_UNSUPPORTED:
		break;
	}
	log_refused(pipe, "it came on a listener the agent does not know");
	return HPCXL_EREFUSED;
}

/* Rate-limited: a flood of connections would log each one. */
static void
warn_full(struct caller_table *t, nng_pipe pipe)
{
	unsigned long held = 0;
	char peer[256];
	bool warn;

	pthread_mutex_lock(&t->lock);
	warn = log_limit_allow(&t->full_warnings, util_now_ms(), &held);
	pthread_mutex_unlock(&t->lock);
	if (!warn)
		return;
	caller_peer_address(pipe, peer, sizeof(peer));
	log_warn("connection from %s closed: %d connections are open, or "
	         "no memory for one more (%lu more closed since the last "
	         "warning)",
	    peer, CALLER_MAX_PIPES, held);
}

static void
pipe_added(struct caller_table *t, nng_pipe pipe)
{
	char identity[HPCXL_IDENTITY_MAX + 1];
	enum listen_kind kind = LISTEN_UNSUPPORTED;
	int rv;

	listener_kind_of(t, pipe, &kind);
	if (identify(t, pipe, kind, identity) != 0) {
		nng_pipe_close(pipe);
		return;
	}
	rv = remember_pipe(t, (uint32_t)nng_pipe_id(pipe), identity);
	if (rv != 0) {
		warn_full(t, pipe);
		nng_pipe_close(pipe);
		return;
	}
	log_debug("connection %d is %s", nng_pipe_id(pipe), identity);
}

void
caller_pipe_event(nng_pipe pipe, nng_pipe_ev ev, void *arg)
{
	struct caller_table *t = arg;

	if (ev == NNG_PIPE_EV_ADD_PRE)
		pipe_added(t, pipe);
	else if (ev == NNG_PIPE_EV_REM_POST)
		depart_pipe(t, (uint32_t)nng_pipe_id(pipe));
}
