/*
 * The codec targets' oracle: proto_decode()'s contract, the agreement of
 * decoder and encoder, and deep equality of decoded messages.
 */
#include "fuzz.h"

#include "hpcxl/common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
fuzz_require(bool ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "fuzz: %s\n", what);
	abort();
}

/* ---- decoding --------------------------------------------------------- */

void
fuzz_require_encodes(const struct proto_msg *m)
{
	char *buf;
	size_t len;

	fuzz_require(proto_encode(m, &buf, &len) == 0,
	    "proto_encode refused a value proto_decode returned");
	free(buf);
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
	fuzz_require_encodes(out);
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
