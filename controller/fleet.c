/*
 * The fleet (see fleet.h): one raw surveyor socket, dialer and posted
 * receive per node, and the table of registered calls replies are routed to.
 *
 * Threads: nng runs the pipe and receive callbacks on its own threads. They
 * only update the node's pipe, drop a reply into a call's mailbox and write
 * the call's eventfd, all under mtx; they never block on anything but mtx.
 * The calling threads take mtx for short copies and never hold it across a
 * blocking nng call: nng_close() waits for the callbacks, which take mtx.
 *
 * nng 1.5.2 facts this relies on (see ARCHITECTURE.md, "Survey engine"):
 *  - a raw surveyor sends a message to the pipes attached at that moment,
 *    with the SP header the application wrote (here: the call's survey id,
 *    high bit set); the respondent's reply carries it back as the last word
 *    of the header;
 *  - a raw surveyor never times out or cancels anything: replies queue on
 *    the socket with back-pressure on the pipe (none is dropped) until a
 *    receive takes them, and one is always posted;
 *  - a non-blocking dialer keeps redialling (RECONNMINT..RECONNMAXT).
 */
#include "fleet.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/proto.h"
#include "hpcxl/common/tls.h"

#include <nng/protocol/survey0/survey.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

/* A node that is down now may be back well within a call's timeout. */
#define FLEET_RECONN_MIN_MS 100
#define FLEET_RECONN_MAX_MS 1000
/* The SP header (survey id, one word per device hop, at most 8) travels in
 * the same frame as the reply, on top of PROTO_MAX_REPLY. */
#define FLEET_HEADER_MAX (8 * 4)
/* Messages a node's socket queues: concurrent calls may send at once. */
#define FLEET_QUEUE_LEN 16
#define FLEET_SURVEY_ID_BIT 0x80000000u

struct fleet_node {
	struct fleet *fleet;
	size_t row;
	const char *url;
	nng_socket sock;
	bool sock_open;
	nng_dialer dialer;
	int dialer_id; /* -1: no dialer; dial_err says why */
	int dial_err;
	nng_aio *aio; /* the receive always posted on sock */
	/* Under fleet->mtx. A dialer has at most one pipe at a time. */
	uint32_t pipe_id; /* attached pipe, 0 = none */
	uint32_t gone_pipe_id; /* last pipe removed: its late ADD_POST is
	                          stale (REM_POST can overtake it) */
};

struct fleet_call {
	struct fleet *fleet;
	struct fleet_call *next; /* in fleet->calls */
	uint32_t survey_id;
	int wake_fd;
	/* Under fleet->mtx: held[row] once a reply of row was routed here,
	 * until fleet_call_reopen(); the inbox holds those not yet taken. */
	bool *held;
	size_t *inbox_rows;
	nng_msg **inbox_msgs;
	size_t ninbox;
};

struct fleet {
	pthread_mutex_t mtx;
	size_t n;
	struct fleet_node *nodes;
	struct fleet_call *calls; /* registered calls, under mtx */
	uint32_t next_id; /* under mtx */
	atomic_int interrupted;
	int intr_fd;
};

/* ---- callbacks (nng threads) ------------------------------------------- */

static void
fleet_wake_fd(int fd)
{
	uint64_t one = 1;

	/* Cannot block (EFD_NONBLOCK) and cannot fail short of a counter
	 * overflow, which would leave the fd readable anyway. */
	if (write(fd, &one, sizeof(one)) < 0)
		return;
}

/* Every call may want to send to a node that just attached. mtx held. */
static void
fleet_wake_calls(struct fleet *f)
{
	struct fleet_call *call;

	for (call = f->calls; call != NULL; call = call->next)
		fleet_wake_fd(call->wake_fd);
}

static void
fleet_pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	struct fleet_node *node = arg;
	struct fleet *f = node->fleet;
	uint32_t pipe_id = (uint32_t)nng_pipe_id(p);

	pthread_mutex_lock(&f->mtx);
	if (ev == NNG_PIPE_EV_REM_POST) {
		node->gone_pipe_id = pipe_id;
		if (node->pipe_id == pipe_id)
			node->pipe_id = 0;
	} else if (pipe_id != node->gone_pipe_id) {
		node->pipe_id = pipe_id;
		fleet_wake_calls(f);
	}
	pthread_mutex_unlock(&f->mtx);
}

/* The survey id: the last word of the header, which the respondent copied
 * from our request (device hops push theirs in front of it). */
static bool
fleet_survey_id(nng_msg *msg, uint32_t *id)
{
	size_t len = nng_msg_header_len(msg);
	const uint8_t *h = nng_msg_header(msg);

	if (len < 4 || len % 4 != 0)
		return false;
	h += len - 4;
	*id = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8
	    | (uint32_t)h[3];
	return (*id & FLEET_SURVEY_ID_BIT) != 0;
}

/* mtx held. */
static struct fleet_call *
fleet_call_find(struct fleet *f, uint32_t survey_id)
{
	struct fleet_call *call;

	for (call = f->calls; call != NULL; call = call->next) {
		if (call->survey_id == survey_id)
			return call;
	}
	return NULL;
}

/* Drops msg into the mailbox of the call it answers; false if none wants
 * it (the call ended, or holds a reply of this node already). */
static bool
fleet_route(struct fleet_node *node, nng_msg *msg)
{
	struct fleet *f = node->fleet;
	struct fleet_call *call;
	bool kept = false;
	uint32_t id;

	if (!fleet_survey_id(msg, &id))
		return false;
	pthread_mutex_lock(&f->mtx);
	call = fleet_call_find(f, id);
	if (call != NULL && !call->held[node->row]) {
		call->held[node->row] = true;
		call->inbox_rows[call->ninbox] = node->row;
		call->inbox_msgs[call->ninbox] = msg;
		call->ninbox++;
		fleet_wake_fd(call->wake_fd);
		kept = true;
	}
	pthread_mutex_unlock(&f->mtx);
	return kept;
}

static void
fleet_recv_cb(void *arg)
{
	struct fleet_node *node = arg;
	int rv = nng_aio_result(node->aio);
	nng_msg *msg;

	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
		return; /* the fleet is closing */
	if (rv == 0) {
		msg = nng_aio_get_msg(node->aio);
		if (!fleet_route(node, msg))
			nng_msg_free(msg);
	}
	nng_recv_aio(node->sock, node->aio);
}

/* ---- opening and closing ----------------------------------------------- */

static int
fleet_node_socket(struct fleet_node *node)
{
	if (nng_surveyor0_open_raw(&node->sock) != 0)
		return HPCXL_ETRANSPORT;
	node->sock_open = true;
	if (nng_socket_set_int(node->sock, NNG_OPT_SENDBUF, FLEET_QUEUE_LEN)
	        != 0
	    || nng_socket_set_int(node->sock, NNG_OPT_RECVBUF, FLEET_QUEUE_LEN)
	        != 0
	    || nng_pipe_notify(
	           node->sock, NNG_PIPE_EV_ADD_POST, fleet_pipe_cb, node)
	        != 0
	    || nng_pipe_notify(
	           node->sock, NNG_PIPE_EV_REM_POST, fleet_pipe_cb, node)
	        != 0
	    || nng_aio_alloc(&node->aio, fleet_recv_cb, node) != 0)
		return HPCXL_ETRANSPORT;
	return 0;
}

/* Creates (but does not start) node's dialer: an nng error, e.g. for a URL
 * nng cannot parse. */
static int
fleet_node_dialer(struct fleet_node *node)
{
	nng_dialer d;
	int rv;

	if ((rv = nng_dialer_create(&d, node->sock, node->url)) != 0
	    || (rv = nng_dialer_set_size(
	            d, NNG_OPT_RECVMAXSZ, PROTO_MAX_REPLY + FLEET_HEADER_MAX))
	        != 0
	    || (rv = nng_dialer_set_ms(
	            d, NNG_OPT_RECONNMINT, FLEET_RECONN_MIN_MS))
	        != 0
	    || (rv = nng_dialer_set_ms(
	            d, NNG_OPT_RECONNMAXT, FLEET_RECONN_MAX_MS))
	        != 0)
		return rv;
	node->dialer = d;
	node->dialer_id = nng_dialer_id(d);
	return 0;
}

/*
 * A tls+tcp:// node's dialer gets a TLS configuration of its own: the
 * agent's certificate must name the host of this node's URL, and nng 1.5.2
 * keeps that name in the configuration, which a replaced configuration
 * (ours, with the CA and our certificate) does not inherit from the
 * dialer's default one.
 */
static int
fleet_node_tls(struct fleet_node *node, const struct tls_pem *tls)
{
	nng_tls_config *cfg;
	nng_url *u;
	int rv;

	if (tls == NULL || !tls_url(node->url))
		return 0;
	if (nng_url_parse(&u, node->url) != 0)
		return HPCXL_EINVAL;
	rv = tls_client_config_new(tls, u->u_hostname, &cfg, NULL, 0);
	nng_url_free(u);
	if (rv != 0)
		return rv;
	rv = nng_dialer_set_ptr(node->dialer, NNG_OPT_TLS_CONFIG, cfg);
	nng_tls_config_free(cfg); /* the dialer holds a reference of its own */
	return rv == 0 ? 0 : HPCXL_ETRANSPORT;
}

/* Non-blocking: the dialer keeps retrying in the background. A node whose
 * dial cannot even start keeps its error and never attaches. */
static void
fleet_node_start(struct fleet_node *node)
{
	int rv;

	nng_recv_aio(node->sock, node->aio);
	if ((rv = nng_dialer_start(node->dialer, NNG_FLAG_NONBLOCK)) == 0)
		return;
	node->dial_err = rv;
	node->dialer_id = -1;
	log_debug("cannot dial %s: %s", node->url, nng_strerror(rv));
}

/*
 * Closes node's connection, if it has one, surveyor side first, as a pipe
 * that fails does. A dialer's or socket's close in nng 1.5.2 closes its
 * pipes transport side first, and the surveyor re-posts its receive on
 * nng's thread after handing each reply up: a receive posted in between on
 * a tls+tcp:// pipe is refused without ever being completed (the TLS
 * transport lacks the closed check its tcp:// twin has), and the pipe's
 * teardown then waits for it for ever, and nng_close() for the teardown
 * (seen: the CLI hung after printing its report, once in about 2,600
 * runs on a busy machine). Closed surveyor side first, the late receive
 * is refused before it starts, so nothing waits for it.
 */
static void
fleet_node_close_pipe(struct fleet_node *node)
{
	nng_pipe pipe = NNG_PIPE_INITIALIZER;

	pthread_mutex_lock(&node->fleet->mtx);
	pipe.id = node->pipe_id;
	pthread_mutex_unlock(&node->fleet->mtx);
	/* Outside mtx, as every nng call here. A pipe that went meanwhile
	 * is ENOENT: nothing to do. */
	if (pipe.id != 0)
		nng_pipe_close(pipe);
}

/*
 * Ends node's dialer and its connection. A pipe closed before its dialer
 * makes nng 1.5.2 redial, at once half of the time: the back-off is
 * "(int)nni_random() % back_off", negative for half the random numbers,
 * so the timer is already due. The agent then sees a connection that
 * hangs up in the SP handshake, and nng's tcp listener takes that error
 * (NNG_ECONNSHUT) for a system failure: it stops accepting for 100 ms,
 * and the next client's connection waits (seen: 1 to 6 of 128 nodes
 * answering 60-70 ms late in about 4 cold calls of 10). So a tcp:// node's
 * dialer goes first, taking its pipe with it; a tls+tcp:// node keeps
 * the order above, and a redial there meets the agent's front, which
 * takes a hang-up in the handshake in its stride.
 */
static void
fleet_node_hang_up(struct fleet_node *node)
{
	if (tls_url(node->url))
		fleet_node_close_pipe(node);
	if (node->dialer_id > 0)
		nng_dialer_close(node->dialer);
}

static void
fleet_node_close(struct fleet_node *node)
{
	/*
	 * The receive is stopped (cancelled, and its callback waited for)
	 * before the socket goes: in nng 1.5.2 an aio whose receive failed
	 * because its socket closed can still point at the socket's freed
	 * queue, and nng_aio_free() then locks freed memory (seen: a panic
	 * in about one of 2,000 open/ping/close cycles).
	 */
	nng_aio_stop(node->aio);
	if (node->sock_open)
		nng_close(node->sock);
	nng_aio_free(node->aio);
}

static int
fleet_alloc(size_t n, struct fleet **out)
{
	struct fleet *f;

	if ((f = calloc(1, sizeof(*f))) == NULL)
		return HPCXL_ENOMEM;
	f->intr_fd = -1;
	if ((f->nodes = calloc(n, sizeof(*f->nodes))) == NULL
	    || pthread_mutex_init(&f->mtx, NULL) != 0) {
		free(f->nodes);
		free(f);
		return HPCXL_ENOMEM;
	}
	f->next_id = 1;
	atomic_init(&f->interrupted, 0);
	*out = f;
	return 0;
}

int
fleet_open(const char *const *urls, size_t n, const struct tls_pem *tls,
    struct fleet **out, size_t *bad_row)
{
	struct fleet *f;
	size_t i;
	int rv;

	if ((rv = fleet_alloc(n, &f)) != 0)
		return rv;
	f->n = n;
	if ((f->intr_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0)
		rv = HPCXL_ETRANSPORT;
	for (i = 0; rv == 0 && i < n; i++) {
		struct fleet_node *node = &f->nodes[i];

		*node = (struct fleet_node) {
			.fleet = f, .row = i, .url = urls[i], .dialer_id = -1
		};
		if ((rv = fleet_node_socket(node)) == 0
		    && fleet_node_dialer(node) != 0) {
			*bad_row = i;
			rv = HPCXL_EINVAL;
		}
		if (rv == 0)
			rv = fleet_node_tls(node, tls);
	}
	/* Every node is set up before the first dial: a URL that cannot be
	 * dialled fails the open before anything goes on the network. */
	for (i = 0; rv == 0 && i < n; i++)
		fleet_node_start(&f->nodes[i]);
	if (rv != 0) {
		fleet_close(f);
		return rv;
	}
	*out = f;
	return 0;
}

int
fleet_url_check(const char *url)
{
	nng_socket sock;
	nng_dialer d;
	int rv;

	if (url == NULL)
		return HPCXL_EINVAL;
	if (nng_surveyor0_open_raw(&sock) != 0)
		return HPCXL_ETRANSPORT;
	rv = nng_dialer_create(&d, sock, url) == 0 ? 0 : HPCXL_EINVAL;
	nng_close(sock);
	return rv;
}

void
fleet_close(struct fleet *f)
{
	size_t i;

	if (f == NULL)
		return;
	/*
	 * Every dialer first (which also closes its pipe), so no node keeps
	 * redialling while the others close: closing the sockets of 4,096
	 * nodes that refuse connections took 198 s with nng 1.5.2 when their
	 * dialers were still redialling, 2-7 s this way on 2 cores (0.17 s
	 * for 1,000; 11-13 ms for 128 connected nodes). Each node's
	 * connection goes with its dialer, in the order
	 * fleet_node_hang_up() explains.
	 */
	for (i = 0; i < f->n; i++)
		fleet_node_hang_up(&f->nodes[i]);
	for (i = 0; i < f->n; i++)
		fleet_node_close(&f->nodes[i]);
	if (f->intr_fd >= 0)
		close(f->intr_fd);
	pthread_mutex_destroy(&f->mtx);
	free(f->nodes);
	free(f);
}

size_t
fleet_size(const struct fleet *f)
{
	return f->n;
}

void
fleet_pipes(struct fleet *f, uint32_t *pipes)
{
	size_t i;

	pthread_mutex_lock(&f->mtx);
	for (i = 0; i < f->n; i++)
		pipes[i] = f->nodes[i].pipe_id;
	pthread_mutex_unlock(&f->mtx);
}

bool
fleet_undialable(const struct fleet *f, size_t row)
{
	return f->nodes[row].dialer_id < 0;
}

/* ---- calls ------------------------------------------------------------- */

static void
fleet_call_free(struct fleet_call *call)
{
	size_t i;

	for (i = 0; i < call->ninbox; i++)
		nng_msg_free(call->inbox_msgs[i]);
	if (call->wake_fd >= 0)
		close(call->wake_fd);
	free(call->held);
	free(call->inbox_rows);
	free(call->inbox_msgs);
	free(call);
}

/* A survey id no registered call has. mtx held. */
static uint32_t
fleet_new_survey_id(struct fleet *f)
{
	uint32_t id;

	do
		id = (f->next_id++ & ~FLEET_SURVEY_ID_BIT)
		    | FLEET_SURVEY_ID_BIT;
	while (fleet_call_find(f, id) != NULL);
	return id;
}

int
fleet_call_begin(struct fleet *f, struct fleet_call **out)
{
	struct fleet_call *call;

	if ((call = calloc(1, sizeof(*call))) == NULL)
		return HPCXL_ENOMEM;
	call->fleet = f;
	call->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	call->held = calloc(f->n, sizeof(*call->held));
	call->inbox_rows = calloc(f->n, sizeof(*call->inbox_rows));
	call->inbox_msgs = calloc(f->n, sizeof(*call->inbox_msgs));
	if (call->held == NULL || call->inbox_rows == NULL
	    || call->inbox_msgs == NULL || call->wake_fd < 0) {
		int rv = call->wake_fd < 0 ? HPCXL_ETRANSPORT : HPCXL_ENOMEM;

		fleet_call_free(call);
		return rv;
	}
	pthread_mutex_lock(&f->mtx);
	call->survey_id = fleet_new_survey_id(f);
	call->next = f->calls;
	f->calls = call;
	pthread_mutex_unlock(&f->mtx);
	*out = call;
	return 0;
}

void
fleet_call_end(struct fleet_call *call)
{
	struct fleet *f = call->fleet;
	struct fleet_call **p;

	/* Once unlinked no callback can reach call: they look it up under
	 * mtx. */
	pthread_mutex_lock(&f->mtx);
	for (p = &f->calls; *p != NULL; p = &(*p)->next) {
		if (*p == call) {
			*p = call->next;
			break;
		}
	}
	pthread_mutex_unlock(&f->mtx);
	fleet_call_free(call);
}

int
fleet_call_fd(const struct fleet_call *call)
{
	return call->wake_fd;
}

int
fleet_call_send(
    struct fleet_call *call, size_t row, const void *body, size_t len)
{
	struct fleet_node *node = &call->fleet->nodes[row];
	nng_msg *msg;
	int rv;

	if ((rv = nng_msg_alloc(&msg, len)) != 0)
		return rv;
	memcpy(nng_msg_body(msg), body, len);
	if ((rv = nng_msg_header_append_u32(msg, call->survey_id)) != 0
	    || (rv = nng_sendmsg(node->sock, msg, NNG_FLAG_NONBLOCK)) != 0)
		nng_msg_free(msg);
	return rv;
}

size_t
fleet_call_take(
    struct fleet_call *call, size_t *rows, nng_msg **msgs, size_t max)
{
	struct fleet *f = call->fleet;
	uint64_t count;
	size_t k;

	pthread_mutex_lock(&f->mtx);
	/* Cleared under mtx: a reply routed after this wakes us again. */
	if (read(call->wake_fd, &count, sizeof(count)) < 0) {
		/* EAGAIN: nothing was signalled since the last take. */
	}
	k = call->ninbox < max ? call->ninbox : max;
	memcpy(rows, call->inbox_rows + call->ninbox - k, k * sizeof(*rows));
	memcpy(msgs, call->inbox_msgs + call->ninbox - k, k * sizeof(*msgs));
	call->ninbox -= k;
	pthread_mutex_unlock(&f->mtx);
	return k;
}

void
fleet_call_reopen(struct fleet_call *call, size_t row)
{
	struct fleet *f = call->fleet;

	pthread_mutex_lock(&f->mtx);
	call->held[row] = false;
	pthread_mutex_unlock(&f->mtx);
}

/* ---- interruption ------------------------------------------------------ */

void
fleet_interrupt(struct fleet *f)
{
	atomic_store(&f->interrupted, 1);
	fleet_wake_fd(f->intr_fd);
}

bool
fleet_interrupted(const struct fleet *f)
{
	return atomic_load(&((struct fleet *)f)->interrupted) != 0;
}

int
fleet_interrupt_fd(const struct fleet *f)
{
	return f->intr_fd;
}

/* ---- explaining silence ------------------------------------------------ */

#define FLEET_OTHER "cannot connect: address, name or network error"

/* Dialer counters, most telling first: why a node never attached. */
static const struct {
	const char *stat;
	const char *text;
} fleet_dial_errors[] = {
	{ "auth", "TLS authentication failed" },
	{ "reject", "peer rejected (not an hpcxl agent?)" },
	{ "proto", "protocol error" },
	{ "refused", "connection refused" },
	{ "timeout", "connection timed out" },
	{ "other", FLEET_OTHER },
};

/* What "other" may also be on TLS: an agent that ends the handshake
 * because our certificate is missing or not of its CA does it without an
 * error nng would count as an authentication failure. */
#define FLEET_TLS_OTHER                                                       \
	"cannot connect: address, name or network error, or the agent "       \
	"refused our TLS certificate (none, or not of its CA)"

static uint64_t
fleet_stat(nng_stat *scope, const char *name)
{
	nng_stat *st = nng_stat_find(scope, name);

	return st != NULL ? nng_stat_value(st) : 0;
}

static void
fleet_dial_from_stats(nng_stat *scope, struct fleet_dial *d)
{
	size_t i;

	d->lost = fleet_stat(scope, "connect") > 0;
	for (i = 0;
	     i < sizeof(fleet_dial_errors) / sizeof(fleet_dial_errors[0]);
	     i++) {
		if (fleet_stat(scope, fleet_dial_errors[i].stat) > 0) {
			d->reason = fleet_dial_errors[i].text;
			return;
		}
	}
}

struct fleet_by_dialer {
	int dialer_id;
	size_t row;
};

static int
fleet_by_dialer_cmp(const void *a, const void *b)
{
	const struct fleet_by_dialer *x = a, *y = b;

	return (x->dialer_id > y->dialer_id) - (x->dialer_id < y->dialer_id);
}

/*
 * Walks the statistics tree for dialer scopes and fills the rows whose
 * dialer id is in index (sorted). Not nng_stat_find_dialer(): in 1.5.2 it
 * returns the first dialer's scope whatever the id.
 */
static void
fleet_walk_stats(nng_stat *st, const struct fleet_by_dialer *index,
    size_t nindex, struct fleet_dial *dials)
{
	struct fleet_by_dialer key, *hit;
	nng_stat *id;

	for (; st != NULL; st = nng_stat_next(st)) {
		if (nng_stat_type(st) != NNG_STAT_SCOPE)
			continue;
		if (strcmp(nng_stat_name(st), "dialer") != 0) {
			fleet_walk_stats(
			    nng_stat_child(st), index, nindex, dials);
			continue;
		}
		if ((id = nng_stat_find(st, "id")) == NULL)
			continue;
		key.dialer_id = (int)nng_stat_value(id);
		hit = bsearch(
		    &key, index, nindex, sizeof(*index), fleet_by_dialer_cmp);
		if (hit != NULL)
			fleet_dial_from_stats(st, &dials[hit->row]);
	}
}

void
fleet_dials(struct fleet *f, const bool *want, struct fleet_dial *dials)
{
	struct fleet_by_dialer *index;
	nng_stat *stats;
	size_t i, nindex = 0;

	for (i = 0; i < f->n; i++) {
		dials[i] = (struct fleet_dial) { .reason = "not connected" };
		if (want[i] && f->nodes[i].dialer_id < 0) {
			dials[i].undialable = true;
			dials[i].reason = nng_strerror(f->nodes[i].dial_err);
		}
	}
	/* Without memory or statistics the texts are only less precise. */
	if ((index = calloc(f->n, sizeof(*index))) == NULL)
		return;
	for (i = 0; i < f->n; i++) {
		if (want[i] && f->nodes[i].dialer_id > 0)
			index[nindex++]
			    = (struct fleet_by_dialer) { f->nodes[i].dialer_id,
				      i };
	}
	qsort(index, nindex, sizeof(*index), fleet_by_dialer_cmp);
	if (nindex > 0 && nng_stats_get(&stats) == 0) {
		fleet_walk_stats(stats, index, nindex, dials);
		nng_stats_free(stats);
	}
	free(index);
	for (i = 0; i < f->n; i++) {
		if (want[i] && strcmp(dials[i].reason, FLEET_OTHER) == 0
		    && tls_url(f->nodes[i].url))
			dials[i].reason = FLEET_TLS_OTHER;
	}
}
