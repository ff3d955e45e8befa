/*
 * The codec targets' oracle: what proto.h and PROTOCOL.md promise about a
 * decoded message, and deep equality of two of them.
 */
#include "fuzz.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PROTOCOL.md §2.2: a lease of up to 2^32-1 seconds, a deadline of up to
 * 2^32-1 ms. */
#define LEASE_MAX_MS (UINT32_MAX * 1000ULL)
#define DEADLINE_MAX_MS UINT32_MAX

void
fuzz_require(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz: %s\n", what);
	abort();
}

/* ---- ranges ------------------------------------------------------------ */

/* strlen() reads every byte: ASan sees a string that is not terminated. */
static bool
text_ok(const char *s)
{
	return s == NULL || strlen(s) <= PROTO_MAX_TEXT;
}

/* The *_name() functions answer "?" for a value outside the enumeration. */
static bool
named(const char *name)
{
	return strcmp(name, "?") != 0;
}

static bool
worker_ok(const struct proto_worker *w)
{
	return named(proto_wstate_name(w->state)) && w->pid >= 0
	    && w->exit_status >= -1;
}

static bool
session_ok(const struct proto_session *s)
{
	uint32_t i;

	if (!util_valid_id(s->session) || !util_valid_id(s->profile)
	    || s->nworkers > PROTO_MAX_WORKERS
	    || (s->nworkers > 0 && s->workers == NULL))
		return false;
	for (i = 0; i < s->nworkers; i++) {
		if (!worker_ok(&s->workers[i]))
			return false;
	}
	return true;
}

bool
fuzz_reply_ok(const struct proto_reply *r)
{
	uint32_t i;

	if (!util_valid_id(r->node) || !named(proto_code_name(r->code))
	    || r->msg == NULL || !text_ok(r->msg) || !text_ok(r->version)
	    || !text_ok(r->backend) || !text_ok(r->unhealthy)
	    || r->nsessions > PROTO_MAX_SESSIONS
	    || (!r->has_sessions && r->nsessions > 0)
	    || (r->nsessions > 0 && r->sessions == NULL))
		return false;
	for (i = 0; i < r->nsessions; i++) {
		if (!session_ok(&r->sessions[i]))
			return false;
	}
	return true;
}

static bool
open_ok(const struct proto_open *o)
{
	return util_valid_id(o->session) && util_valid_id(o->profile)
	    && o->workers <= PROTO_MAX_WORKERS
	    && (o->per_core || o->workers > 0) && text_ok(o->workbook)
	    && o->lease_ms <= LEASE_MAX_MS;
}

static bool
msg_ok(const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_OPEN:
		return open_ok(&m->u.open);
	case PROTO_CLOSE:
		return util_valid_id(m->u.close.session)
		    && m->u.close.deadline_ms <= DEADLINE_MAX_MS;
	case PROTO_STATUS:
		return m->u.status.session == NULL
		    || util_valid_id(m->u.status.session);
	case PROTO_RENEW:
		return util_valid_id(m->u.renew.session)
		    && m->u.renew.lease_ms <= LEASE_MAX_MS;
	case PROTO_PING:
	case PROTO_CLEAR:
		return true;
	case PROTO_REPLY:
		return fuzz_reply_ok(&m->u.reply);
	}
	return false;
}

int
fuzz_decode(const void *buf, size_t len, size_t max_len, struct proto_msg *out)
{
	struct proto_msg before;
	const char *why = NULL;
	int rv;

	/* A pattern the decoder never writes, to see that a failed decode
	 * leaves the out-struct alone. */
	memset(out, 0xa5, sizeof(*out));
	memcpy(&before, out, sizeof(before));
	rv = proto_decode(buf, len, max_len, out, &why);
	if (rv != 0) {
		/* ENOMEM too: proto.h names only the other two, but the
		 * decoder allocates (ASan aborts before it could happen). */
		fuzz_require(rv == HPCXL_EPROTO || rv == HPCXL_ETOOBIG
		        || rv == HPCXL_ENOMEM,
		    "proto_decode failed with an undocumented error");
		fuzz_require(why != NULL && why[0] != '\0',
		    "proto_decode failed without a reason");
		fuzz_require(memcmp(out, &before, sizeof(before)) == 0,
		    "a failed proto_decode wrote to its out-struct");
		return rv;
	}
	fuzz_require(len <= max_len, "proto_decode took a frame over max_len");
	fuzz_require(msg_ok(out),
	    "proto_decode returned a value outside PROTOCOL.md's ranges");
	return 0;
}

void
fuzz_msg_free(struct proto_msg *m)
{
	static const struct proto_msg zero;

	proto_msg_free(m);
	fuzz_require(memcmp(m, &zero, sizeof(*m)) == 0,
	    "proto_msg_free left the message not zeroed");
}

void
fuzz_check_encoding(const struct proto_msg *m, char *buf, size_t len)
{
	struct proto_msg back;
	char *again;
	size_t again_len;

	/* No frame limit: it belongs to the transport, not to the value, and
	 * an encoding may be longer than the frame a value was decoded from
	 * (the encoder writes optional fields it left out, e.g. a worker's
	 * restarts). */
	fuzz_require(fuzz_decode(buf, len, SIZE_MAX, &back) == 0,
	    "proto_decode refused what proto_encode wrote");
	fuzz_require(
	    fuzz_msg_equal(m, &back), "decode(encode(m)) differs from m");
	fuzz_require(proto_encode(&back, &again, &again_len) == 0,
	    "proto_encode refused what it had decoded from its own bytes");
	fuzz_require(again_len == len && memcmp(again, buf, len) == 0,
	    "encode(decode(encode(m))) differs from encode(m)");
	free(again);
	free(buf);
	fuzz_msg_free(&back);
}

/* ---- equality ---------------------------------------------------------- */

static bool
str_equal(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool
worker_equal(const struct proto_worker *a, const struct proto_worker *b)
{
	return a->index == b->index && a->pid == b->pid && a->state == b->state
	    && a->exit_status == b->exit_status && a->restarts == b->restarts;
}

static bool
session_equal(const struct proto_session *a, const struct proto_session *b)
{
	uint32_t i;

	if (!str_equal(a->session, b->session)
	    || !str_equal(a->profile, b->profile)
	    || a->nworkers != b->nworkers)
		return false;
	for (i = 0; i < a->nworkers; i++) {
		if (!worker_equal(&a->workers[i], &b->workers[i]))
			return false;
	}
	return true;
}

static bool
counts_equal(const struct proto_counts *a, const struct proto_counts *b)
{
	return a->workers == b->workers && a->exited == b->exited
	    && a->killed == b->killed && a->remaining == b->remaining
	    && a->elapsed_ms == b->elapsed_ms;
}

bool
fuzz_reply_equal(const struct proto_reply *a, const struct proto_reply *b)
{
	uint32_t i;

	if (!str_equal(a->node, b->node) || a->code != b->code
	    || !str_equal(a->msg, b->msg) || !str_equal(a->version, b->version)
	    || !str_equal(a->backend, b->backend)
	    || !str_equal(a->unhealthy, b->unhealthy)
	    || a->has_counts != b->has_counts
	    || (a->has_counts && !counts_equal(&a->counts, &b->counts))
	    || a->has_sessions != b->has_sessions
	    || a->nsessions != b->nsessions)
		return false;
	for (i = 0; i < a->nsessions; i++) {
		if (!session_equal(&a->sessions[i], &b->sessions[i]))
			return false;
	}
	return true;
}

static bool
open_equal(const struct proto_open *a, const struct proto_open *b)
{
	return str_equal(a->session, b->session)
	    && str_equal(a->profile, b->profile) && a->workers == b->workers
	    && a->per_core == b->per_core
	    && str_equal(a->workbook, b->workbook)
	    && a->lease_ms == b->lease_ms;
}

bool
fuzz_msg_equal(const struct proto_msg *a, const struct proto_msg *b)
{
	if (a->type != b->type || a->op != b->op)
		return false;
	switch (a->type) {
	case PROTO_OPEN:
		return open_equal(&a->u.open, &b->u.open);
	case PROTO_CLOSE:
		return str_equal(a->u.close.session, b->u.close.session)
		    && a->u.close.deadline_ms == b->u.close.deadline_ms;
	case PROTO_STATUS:
		return str_equal(a->u.status.session, b->u.status.session);
	case PROTO_RENEW:
		return str_equal(a->u.renew.session, b->u.renew.session)
		    && a->u.renew.lease_ms == b->u.renew.lease_ms;
	case PROTO_PING:
	case PROTO_CLEAR:
		return true;
	case PROTO_REPLY:
		return fuzz_reply_equal(&a->u.reply, &b->u.reply);
	}
	return false;
}
