/*
 * encode -> decode -> encode, starting from a value: the input is read as
 * the fields of a message (type, op, strings, integers, counts of sessions
 * and workers), which proto_encode() either refuses (HPCXL_EINVAL: the
 * value breaks PROTOCOL.md's rules) or encodes. An encoding must decode
 * back to the same value and encode to the same bytes again.
 *
 * fuzz_roundtrip starts from bytes and rarely reaches a value that only a
 * wider msgpack encoding can carry (a restarts count of 70000 is 5 bytes
 * where the seeds have 1); starting from the value, every integer width is
 * a plain input byte away.
 */
#include "fuzz.h"

#include "hpcxl/common/err.h"

#include <string.h>

/* Small counts: the limits on them are the unit tests' business, and big
 * messages would only slow every run down. */
#define MAX_SESSIONS 4
#define MAX_WORKERS 8
/* Room for every string of the largest message built here. */
#define ARENA_SIZE (16 * 256)

/* The input, read front to back; what lies past its end reads as 0. */
struct input {
	const uint8_t *p;
	size_t left;
};

/* Where the built message's strings and arrays live (not malloc'd: the
 * message is never given to proto_msg_free). */
struct store {
	char arena[ARENA_SIZE];
	size_t used;
	struct proto_session sessions[MAX_SESSIONS];
	struct proto_worker workers[MAX_SESSIONS][MAX_WORKERS];
};

/* An unsigned integer of `bytes` input bytes, little-endian. */
static uint64_t
take(struct input *in, size_t bytes)
{
	uint64_t v = 0;

	for (size_t i = 0; i < bytes && in->left > 0; i++, in->left--)
		v |= (uint64_t)*in->p++ << (8 * i);
	return v;
}

/* A string of up to 255 input bytes (one NUL ends it early). */
static char *
take_str(struct input *in, struct store *st)
{
	size_t n = take(in, 1);
	char *s = st->arena + st->used;

	if (st->used + n + 1 > sizeof(st->arena))
		n = 0;
	for (size_t i = 0; i < n; i++)
		s[i] = (char)take(in, 1);
	s[n] = '\0';
	st->used += n + 1;
	return s;
}

/* An optional string: absent (NULL) when the flag byte is even. */
static char *
take_opt_str(struct input *in, struct store *st)
{
	return take(in, 1) & 1 ? take_str(in, st) : NULL;
}

static void
take_worker(struct input *in, struct proto_worker *w)
{
	w->index = (uint32_t)take(in, 4);
	w->pid = (int32_t)take(in, 4);
	w->state = (enum proto_wstate)take(in, 1);
	w->exit_status = (int32_t)take(in, 4);
	w->restarts = (uint32_t)take(in, 4);
}

static void
take_sessions(struct input *in, struct store *st, struct proto_reply *r)
{
	r->nsessions = (uint32_t)(take(in, 1) % (MAX_SESSIONS + 1));
	r->sessions = st->sessions;
	for (uint32_t i = 0; i < r->nsessions; i++) {
		struct proto_session *s = &st->sessions[i];

		s->session = take_str(in, st);
		s->profile = take_str(in, st);
		s->nworkers = (uint32_t)(take(in, 1) % (MAX_WORKERS + 1));
		s->workers = st->workers[i];
		for (uint32_t k = 0; k < s->nworkers; k++)
			take_worker(in, &s->workers[k]);
	}
}

static void
take_reply(struct input *in, struct store *st, struct proto_reply *r)
{
	r->node = take_str(in, st);
	r->code = (enum proto_code)take(in, 1);
	/* Never NULL: the encoder writes "" for a NULL msg, and "" is what
	 * comes back. */
	r->msg = take_str(in, st);
	r->version = take_opt_str(in, st);
	r->backend = take_opt_str(in, st);
	r->unhealthy = take_opt_str(in, st);
	r->has_counts = take(in, 1) & 1;
	if (r->has_counts) {
		r->counts.workers = (uint32_t)take(in, 4);
		r->counts.exited = (uint32_t)take(in, 4);
		r->counts.killed = (uint32_t)take(in, 4);
		r->counts.remaining = (uint32_t)take(in, 4);
		r->counts.elapsed_ms = take(in, 8);
	}
	r->has_sessions = take(in, 1) & 1;
	if (r->has_sessions)
		take_sessions(in, st, r);
}

/* The widths reach a little past each limit of PROTOCOL.md §2.2. */
static void
take_open(struct input *in, struct store *st, struct proto_open *o)
{
	o->session = take_str(in, st);
	o->profile = take_str(in, st);
	o->workers = (uint32_t)take(in, 2);
	o->per_core = take(in, 1) & 1;
	o->workbook = take_opt_str(in, st);
	o->lease_ms = take(in, 6);
}

/* Type 0 and types past the last are kept: the encoder must refuse them. */
static void
take_msg(struct input *in, struct store *st, struct proto_msg *m)
{
	m->type = (enum proto_type)(take(in, 1) % (PROTO_CLEAR + 2));
	m->op = take(in, 8);
	switch (m->type) {
	case PROTO_OPEN:
		take_open(in, st, &m->u.open);
		break;
	case PROTO_CLOSE:
		m->u.close.session = take_str(in, st);
		m->u.close.deadline_ms = take(in, 5);
		break;
	case PROTO_STATUS:
		m->u.status.session = take_opt_str(in, st);
		break;
	case PROTO_RENEW:
		m->u.renew.session = take_str(in, st);
		m->u.renew.lease_ms = take(in, 6);
		break;
	case PROTO_PING:
	case PROTO_CLEAR:
		break;
	case PROTO_REPLY:
		take_reply(in, st, &m->u.reply);
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct store st;
	struct input in = { data, size };
	struct proto_msg m;
	char *buf;
	size_t len;
	int rv;

	memset(&m, 0, sizeof(m));
	st.used = 0;
	take_msg(&in, &st, &m);
	rv = proto_encode(&m, &buf, &len);
	if (rv != 0) {
		fuzz_require(rv == HPCXL_EINVAL || rv == HPCXL_ENOMEM,
		    "proto_encode failed with an undocumented error");
		return 0;
	}
	fuzz_check_encoding(&m, buf, len);
	return 0;
}
