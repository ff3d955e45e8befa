/*
 * Unit tests of the v1 codec (common/proto.c, common/msgcheck.c) and of the
 * helpers it stands on (util_valid_id, util_parse_i64, hpcxl_strerror).
 *
 * Malformed frames are built by hand: either raw bytes, or a valid body
 * template with one mutation applied (a field set to another value, dropped,
 * or added again). Every rejected frame must leave the out-struct exactly as
 * it was, give a reason, and leak nothing.
 *
 * The executable is linked with --wrap for malloc, calloc, realloc, strdup
 * and free (tests/CMakeLists.txt), so every allocation the codec makes goes
 * through the __wrap_* functions below: the tests count live allocations and
 * make the n-th allocation fail.
 */
#include "hpcxl/common/err.h"
#include "hpcxl/common/proto.h"
#include "hpcxl/common/util.h"

#include <criterion/criterion.h>
#include <limits.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- allocation accounting and failure injection ----------------------- */

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
void __wrap_free(void *p);

static long alloc_live; /* blocks allocated and not yet freed */
static long alloc_count; /* allocation calls since the last reset */
static long alloc_fail_at = -1; /* index of the call to fail; -1 = none */

static bool
alloc_fails(void)
{
	return alloc_count++ == alloc_fail_at;
}

void *
__wrap_malloc(size_t n)
{
	void *p = alloc_fails() ? NULL : __real_malloc(n);

	alloc_live += p != NULL;
	return p;
}

void *
__wrap_calloc(size_t n, size_t size)
{
	void *p = alloc_fails() ? NULL : __real_calloc(n, size);

	alloc_live += p != NULL;
	return p;
}

void *
__wrap_realloc(void *old, size_t n)
{
	void *p = alloc_fails() ? NULL : __real_realloc(old, n);

	alloc_live += p != NULL && old == NULL;
	return p;
}

char *
__wrap_strdup(const char *s)
{
	char *p = alloc_fails() ? NULL : __real_strdup(s);

	alloc_live += p != NULL;
	return p;
}

void
__wrap_free(void *p)
{
	alloc_live -= p != NULL;
	__real_free(p);
}

/* Makes allocation number `at` (from now, 0-based) fail; -1 = none. */
static void
alloc_fail_next(long at)
{
	alloc_count = 0;
	alloc_fail_at = at;
}

/* ---- small helpers ----------------------------------------------------- */

#define SENTINEL 0xa5

static void
fill(void *p, size_t n)
{
	memset(p, SENTINEL, n);
}

static bool
untouched(const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		if (b[i] != SENTINEL)
			return false;
	}
	return true;
}

/* A heap copy of exactly n bytes, so ASan sees any read past the end. */
static void *
heap_copy(const void *bytes, size_t n)
{
	void *p = malloc(n > 0 ? n : 1);

	cr_assert_not_null(p);
	if (n > 0)
		memcpy(p, bytes, n);
	return p;
}

/* Parses "94 01 a4 ..." (whitespace between bytes) into a new buffer. */
static unsigned char *
hex_bytes(const char *hex, size_t *len)
{
	unsigned char *b = malloc(strlen(hex) / 2 + 1);
	size_t n = 0;
	unsigned v;
	int used;

	cr_assert_not_null(b);
	while (sscanf(hex, " %2x%n", &v, &used) == 1) {
		b[n++] = (unsigned char)v;
		hex += used;
	}
	*len = n;
	return b;
}

static void
expect_str(const char *got, const char *want, const char *what)
{
	if (want == NULL) {
		cr_assert_null(got, "%s: want NULL, got \"%s\"", what, got);
		return;
	}
	cr_assert_not_null(got, "%s: want \"%s\", got NULL", what, want);
	cr_assert_str_eq(
	    got, want, "%s: got \"%s\", want \"%s\"", what, got, want);
}

static void
expect_worker_eq(
    const struct proto_worker *got, const struct proto_worker *want)
{
	cr_assert_eq(got->index, want->index);
	cr_assert_eq(got->pid, want->pid);
	cr_assert_eq(got->state, want->state);
	cr_assert_eq(got->exit_status, want->exit_status);
	cr_assert_eq(got->restarts, want->restarts);
}

static void
expect_reply_eq(const struct proto_reply *got, const struct proto_reply *want)
{
	uint32_t i, j;

	expect_str(got->node, want->node, "node");
	cr_assert_eq(
	    got->code, want->code, "code %d, want %d", got->code, want->code);
	/* The encoder sends an absent msg as "". */
	expect_str(got->msg, want->msg != NULL ? want->msg : "", "msg");
	expect_str(got->version, want->version, "version");
	expect_str(got->backend, want->backend, "backend");
	expect_str(got->unhealthy, want->unhealthy, "unhealthy");
	cr_assert_eq(got->has_counts, want->has_counts);
	if (want->has_counts) {
		cr_assert_eq(got->counts.workers, want->counts.workers);
		cr_assert_eq(got->counts.exited, want->counts.exited);
		cr_assert_eq(got->counts.killed, want->counts.killed);
		cr_assert_eq(got->counts.remaining, want->counts.remaining);
		cr_assert_eq(got->counts.elapsed_ms, want->counts.elapsed_ms);
	}
	cr_assert_eq(got->has_sessions, want->has_sessions);
	cr_assert_eq(got->nsessions, want->has_sessions ? want->nsessions : 0);
	for (i = 0; i < got->nsessions; i++) {
		const struct proto_session *g = &got->sessions[i];
		const struct proto_session *w = &want->sessions[i];

		expect_str(g->session, w->session, "sessions[].session");
		expect_str(g->profile, w->profile, "sessions[].profile");
		expect_str(g->owner, w->owner, "sessions[].owner");
		cr_assert_eq(g->nworkers, w->nworkers);
		for (j = 0; j < g->nworkers; j++)
			expect_worker_eq(&g->workers[j], &w->workers[j]);
	}
}

static void
expect_msg_eq(const struct proto_msg *got, const struct proto_msg *want)
{
	cr_assert_eq(got->type, want->type);
	cr_assert_eq(got->op, want->op, "op %#llx, want %#llx",
	    (unsigned long long)got->op, (unsigned long long)want->op);
	switch (want->type) {
	case PROTO_OPEN:
		expect_str(
		    got->u.open.session, want->u.open.session, "session");
		expect_str(
		    got->u.open.profile, want->u.open.profile, "profile");
		cr_assert_eq(got->u.open.workers, want->u.open.workers);
		cr_assert_eq(got->u.open.per_core, want->u.open.per_core);
		expect_str(
		    got->u.open.workbook, want->u.open.workbook, "workbook");
		cr_assert_eq(got->u.open.lease_ms, want->u.open.lease_ms);
		break;
	case PROTO_CLOSE:
		expect_str(
		    got->u.close.session, want->u.close.session, "session");
		cr_assert_eq(
		    got->u.close.deadline_ms, want->u.close.deadline_ms);
		break;
	case PROTO_STATUS:
		expect_str(
		    got->u.status.session, want->u.status.session, "session");
		break;
	case PROTO_RENEW:
		expect_str(
		    got->u.renew.session, want->u.renew.session, "session");
		cr_assert_eq(got->u.renew.lease_ms, want->u.renew.lease_ms);
		break;
	case PROTO_PING:
	case PROTO_CLEAR:
		break;
	case PROTO_REPLY:
		expect_reply_eq(&got->u.reply, &want->u.reply);
		break;
	}
}

static size_t
max_len_for(enum proto_type t)
{
	return t == PROTO_REPLY ? PROTO_MAX_REPLY : PROTO_MAX_REQUEST;
}

static void
encode_ok(const struct proto_msg *m, char **buf, size_t *len)
{
	int rv = proto_encode(m, buf, len);

	cr_assert_eq(rv, 0, "encode: %s", hpcxl_strerror(rv));
	cr_assert_not_null(*buf);
	cr_assert_gt(*len, 0);
}

static void
decode_ok(const void *buf, size_t len, size_t max_len, struct proto_msg *m)
{
	const char *why = "not set";
	int rv = proto_decode(buf, len, max_len, m, &why);

	cr_assert_eq(rv, 0, "decode: %s (%s)", hpcxl_strerror(rv),
	    why != NULL ? why : "no reason");
	cr_assert_null(why, "success with a reason: %s", why);
}

/*
 * Encodes in, decodes it, checks the result equals in, and that encoding
 * the result gives the same bytes again.
 */
static void
roundtrip(const struct proto_msg *in)
{
	struct proto_msg out;
	char *buf, *buf2;
	size_t len, len2;
	long live = alloc_live;

	encode_ok(in, &buf, &len);
	cr_assert_leq(len, max_len_for(in->type));
	decode_ok(buf, len, max_len_for(in->type), &out);
	expect_msg_eq(&out, in);
	encode_ok(&out, &buf2, &len2);
	cr_assert_eq(len2, len);
	cr_assert_arr_eq(buf2, buf, len);
	proto_msg_free(&out);
	free(buf);
	free(buf2);
	cr_assert_eq(alloc_live, live, "leaked %ld blocks", alloc_live - live);
}

/* Rejection of one frame, as every malformed-frame test checks it. */
#define ANY_ERR (-1) /* HPCXL_EPROTO or HPCXL_ETOOBIG */

static void
expect_reject(
    const void *bytes, size_t len, size_t max_len, int want, const char *name)
{
	void *buf = heap_copy(bytes, len);
	struct proto_msg m;
	const char *why = NULL;
	long live = alloc_live;
	int rv;

	fill(&m, sizeof(m));
	rv = proto_decode(buf, len, max_len, &m, &why);
	if (want == ANY_ERR)
		cr_expect(rv == HPCXL_EPROTO || rv == HPCXL_ETOOBIG,
		    "%s: got %d (%s)", name, rv, hpcxl_strerror(rv));
	else
		cr_expect_eq(rv, want, "%s: got %s (%s), want %s", name,
		    hpcxl_strerror(rv), why != NULL ? why : "no reason",
		    hpcxl_strerror(want));
	cr_expect(rv == 0 || untouched(&m, sizeof(m)),
	    "%s: out-struct written on failure", name);
	cr_expect(rv == 0 || (why != NULL && why[0] != '\0'),
	    "%s: no reason given", name);
	cr_expect_eq(alloc_live, live, "%s: leaked %ld blocks", name,
	    alloc_live - live);
	if (rv == 0)
		proto_msg_free(&m);
	free(buf);
}

/* ---- fixtures ---------------------------------------------------------- */

#define ID64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"
#define ID65 ID64 "x"
_Static_assert(sizeof(ID64) - 1 == HPCXL_ID_MAX, "ID64 is 64 bytes");

static struct proto_worker fx_workers[] = {
	{ .index = 0,
	    .pid = 4242,
	    .state = PROTO_W_RUNNING,
	    .exit_status = -1,
	    .restarts = 0 },
	{ .index = 1,
	    .pid = INT32_MAX,
	    .state = PROTO_W_STOPPING,
	    .exit_status = -1,
	    .restarts = 3 },
	{ .index = 2,
	    .pid = 4244,
	    .state = PROTO_W_EXITED,
	    .exit_status = 1 << 8, /* exit(1) */
	    .restarts = UINT32_MAX },
	{ .index = 3,
	    .pid = 4245,
	    .state = PROTO_W_KILLED,
	    .exit_status = 9, /* SIGKILL */
	    .restarts = 0 },
	{ .index = UINT32_MAX,
	    .pid = 0,
	    .state = PROTO_W_FAILED,
	    .exit_status = INT32_MAX,
	    .restarts = 0 },
};

static struct proto_session fx_sessions[] = {
	{ .session = "s1",
	    .profile = "excel",
	    .owner = "Alice Smith (ops) <alice@example.com>",
	    .nworkers = 5,
	    .workers = fx_workers },
	{ .session = "empty-session",
	    .profile = "excel.v2_x",
	    .nworkers = 0,
	    .workers = NULL },
	{ .session = ID64,
	    .profile = ID64,
	    .owner = "",
	    .nworkers = 1,
	    .workers = fx_workers },
};

static struct proto_msg
fx_reply(void)
{
	struct proto_msg m = { .type = PROTO_REPLY, .op = 0x0123456789abcdef };

	m.u.reply.node = "node-01.cluster";
	m.u.reply.code = PROTO_CODE_OK;
	m.u.reply.msg = "all good";
	m.u.reply.version = "0.1.0";
	m.u.reply.backend = "cgroup2";
	m.u.reply.unhealthy = "session s1: 2 processes unkillable";
	m.u.reply.has_counts = true;
	m.u.reply.counts = (struct proto_counts) { .workers = 5,
		.exited = 3,
		.killed = 2,
		.remaining = 0,
		.elapsed_ms = UINT64_MAX };
	m.u.reply.has_sessions = true;
	m.u.reply.nsessions = 3;
	m.u.reply.sessions = fx_sessions;
	return m;
}

static struct proto_msg
fx_open(void)
{
	struct proto_msg m = { .type = PROTO_OPEN, .op = 42 };

	m.u.open.session = "s1";
	m.u.open.profile = "excel";
	m.u.open.workers = 8;
	m.u.open.workbook = "/shared/books/Model 2024 (v3).xlsx";
	m.u.open.lease_ms = 600000;
	return m;
}

/* ---- names ------------------------------------------------------------- */

Test(names, every_enum_value_has_its_wire_name)
{
	static const char *const types[] = { NULL, "open", "close", "status",
		"renew", "ping", "reply", "clear" };
	static const char *const codes[] = { "ok", "not_found", "partial",
		"refused", "bad_request", "error" };
	static const char *const states[]
	    = { "running", "stopping", "exited", "killed", "failed" };
	int i;

	/* The wire values are fixed: clear came after reply. */
	cr_assert_eq(PROTO_REPLY, 6);
	cr_assert_eq(PROTO_CLEAR, 7);
	for (i = PROTO_OPEN; i <= PROTO_CLEAR; i++)
		cr_assert_str_eq(proto_type_name(i), types[i]);
	for (i = PROTO_CODE_OK; i <= PROTO_CODE_ERROR; i++)
		cr_assert_str_eq(proto_code_name(i), codes[i]);
	for (i = PROTO_W_RUNNING; i <= PROTO_W_FAILED; i++)
		cr_assert_str_eq(proto_wstate_name(i), states[i]);
}

Test(names, out_of_range_values_give_a_placeholder)
{
	cr_assert_str_eq(proto_type_name(0), "?");
	cr_assert_str_eq(proto_type_name(PROTO_CLEAR + 1), "?");
	cr_assert_str_eq(proto_type_name((enum proto_type) - 1), "?");
	cr_assert_str_eq(proto_code_name(PROTO_CODE_ERROR + 1), "?");
	cr_assert_str_eq(proto_code_name((enum proto_code) - 1), "?");
	cr_assert_str_eq(proto_wstate_name(PROTO_W_FAILED + 1), "?");
	cr_assert_str_eq(proto_wstate_name((enum proto_wstate) - 1), "?");
}

/* ---- round trips ------------------------------------------------------- */

Test(roundtrip, open_with_workbook_and_lease)
{
	struct proto_msg m = fx_open();

	roundtrip(&m);
}

Test(roundtrip, open_without_workbook_or_lease)
{
	struct proto_msg m = fx_open();

	m.u.open.workbook = NULL;
	m.u.open.lease_ms = 0;
	m.u.open.workers = 1;
	roundtrip(&m);
}

Test(roundtrip, open_per_core)
{
	struct proto_msg m = fx_open();

	m.u.open.per_core = true;
	m.u.open.workers = 0; /* ignored, and 0 is fine with per_core */
	roundtrip(&m);
	m.u.open.workers = 3;
	roundtrip(&m);
}

Test(roundtrip, open_at_every_limit)
{
	static char book[PROTO_MAX_TEXT + 1];
	/* Text is bytes: any UTF-8, spaces, slashes and backslashes. */
	static const char head[] = "C:\\Users\\\xc3\xa9t\xc3\xa9 x/";
	struct proto_msg m = fx_open();

	memset(book, 'b', PROTO_MAX_TEXT);
	memcpy(book, head, sizeof(head) - 1);
	m.u.open.session = ID64;
	m.u.open.profile = ID64;
	m.u.open.workers = PROTO_MAX_WORKERS;
	m.u.open.workbook = book;
	m.u.open.lease_ms = UINT32_MAX * 1000ULL;
	m.op = UINT64_MAX;
	roundtrip(&m);
}

Test(roundtrip, close)
{
	struct proto_msg m = { .type = PROTO_CLOSE, .op = 1 };

	m.u.close.session = "s1";
	m.u.close.deadline_ms = 120000;
	roundtrip(&m);
	m.u.close.deadline_ms = 0;
	roundtrip(&m);
	m.u.close.deadline_ms = UINT32_MAX;
	roundtrip(&m);
}

Test(roundtrip, status_of_one_session_and_of_all)
{
	struct proto_msg m = { .type = PROTO_STATUS, .op = 7 };

	m.u.status.session = "s1";
	roundtrip(&m);
	m.u.status.session = NULL;
	roundtrip(&m);
}

Test(roundtrip, renew)
{
	struct proto_msg m = { .type = PROTO_RENEW, .op = 9 };

	m.u.renew.session = "s1";
	m.u.renew.lease_ms = 30000;
	roundtrip(&m);
	m.u.renew.lease_ms = 0;
	roundtrip(&m);
}

Test(roundtrip, ping_and_clear_with_every_width_of_op)
{
	static const uint64_t ops[] = { 0, 1, 127, 128, 255, 256, 65535, 65536,
		UINT32_MAX, (uint64_t)UINT32_MAX + 1, INT64_MAX,
		(uint64_t)INT64_MAX + 1, UINT64_MAX };
	static const enum proto_type types[] = { PROTO_PING, PROTO_CLEAR };
	struct proto_msg m;
	size_t i, t;

	for (t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			m = (struct proto_msg) { .type = types[t],
				.op = ops[i] };
			roundtrip(&m);
		}
	}
}

Test(roundtrip, reply_with_counts)
{
	struct proto_msg m = fx_reply();

	m.u.reply.version = NULL;
	m.u.reply.backend = NULL;
	m.u.reply.unhealthy = NULL;
	m.u.reply.has_sessions = false;
	m.u.reply.counts.remaining = UINT32_MAX;
	roundtrip(&m);
}

Test(roundtrip, reply_with_sessions_and_workers)
{
	struct proto_msg m = fx_reply();

	m.u.reply.has_counts = false;
	roundtrip(&m);
}

Test(roundtrip, reply_with_empty_session_list)
{
	struct proto_msg m = fx_reply();

	m.u.reply.nsessions = 0;
	m.u.reply.sessions = NULL;
	roundtrip(&m); /* has_sessions survives with no sessions */
}

Test(roundtrip, reply_with_version_and_backend_only)
{
	struct proto_msg m = fx_reply();

	m.u.reply.has_counts = false;
	m.u.reply.has_sessions = false;
	m.u.reply.backend = "pgroup";
	m.u.reply.unhealthy = NULL;
	roundtrip(&m);
}

/* Present means unhealthy, whatever the text: "" must survive as "". */
Test(roundtrip, reply_with_unhealthy_at_its_limits)
{
	static char reason[PROTO_MAX_TEXT + 1];
	struct proto_msg m = fx_reply();

	m.u.reply.has_counts = false;
	m.u.reply.has_sessions = false;
	m.u.reply.unhealthy = "";
	roundtrip(&m);
	memset(reason, 'r', PROTO_MAX_TEXT);
	memcpy(reason, "\xe2\x9c\x97 ", 4); /* any UTF-8 */
	m.u.reply.unhealthy = reason;
	roundtrip(&m);
	/* A refused open carries it with no other optional key. */
	m.u.reply.code = PROTO_CODE_REFUSED;
	m.u.reply.version = NULL;
	m.u.reply.backend = NULL;
	roundtrip(&m);
}

Test(roundtrip, reply_with_every_code)
{
	struct proto_msg m = fx_reply();
	int c;

	for (c = PROTO_CODE_OK; c <= PROTO_CODE_ERROR; c++) {
		m.u.reply.code = c;
		roundtrip(&m);
	}
}

Test(roundtrip, reply_without_msg_gets_empty_msg)
{
	struct proto_msg m = fx_reply(), out;
	char *buf;
	size_t len;

	m.u.reply.msg = NULL;
	m.u.reply.has_sessions = false;
	encode_ok(&m, &buf, &len);
	decode_ok(buf, len, PROTO_MAX_REPLY, &out);
	expect_str(out.u.reply.msg, "", "msg");
	proto_msg_free(&out);
	free(buf);
}

Test(roundtrip, bad_request_reply_with_op_zero)
{
	struct proto_msg m = { .type = PROTO_REPLY, .op = 0 };

	m.u.reply.node = "n1";
	m.u.reply.code = PROTO_CODE_BAD_REQUEST;
	m.u.reply.msg = "unknown message type";
	roundtrip(&m);
}

/* ---- golden frames: the examples of common/PROTOCOL.md ------------------ */

#define OP_EX 0x8c3f1a2b4d5e6f70ULL

static struct proto_worker ex_opened_workers[] = {
	{ .index = 0,
	    .pid = 41872,
	    .state = PROTO_W_RUNNING,
	    .exit_status = -1,
	    .restarts = 0 },
	{ .index = 1,
	    .pid = 41873,
	    .state = PROTO_W_RUNNING,
	    .exit_status = -1,
	    .restarts = 0 },
};

static struct proto_session ex_opened = { .session = "demo-1",
	.profile = "excel",
	.nworkers = 2,
	.workers = ex_opened_workers };

static struct proto_worker ex_workers[] = {
	{ .index = 0,
	    .pid = 41872,
	    .state = PROTO_W_RUNNING,
	    .exit_status = -1,
	    .restarts = 0 },
	{ .index = 1,
	    .pid = 41873,
	    .state = PROTO_W_EXITED,
	    .exit_status = 256,
	    .restarts = 1 },
};

static struct proto_session ex_session = { .session = "demo-1",
	.profile = "excel",
	.nworkers = 2,
	.workers = ex_workers };

/* Every example of common/PROTOCOL.md, byte for byte. */
static const struct golden {
	const char *name;
	const char *hex;
	struct proto_msg m;
} goldens[] = {
	{ "open",
	    "94 01 a4 6f 70 65 6e cf 8c 3f 1a 2b 4d 5e 6f 70"
	    "86 a7 73 65 73 73 69 6f 6e a6 64 65 6d 6f 2d 31"
	    "a7 70 72 6f 66 69 6c 65 a5 65 78 63 65 6c a7 77"
	    "6f 72 6b 65 72 73 02 a8 70 65 72 5f 63 6f 72 65"
	    "c2 a8 6c 65 61 73 65 5f 6d 73 ce 00 09 27 c0 a8"
	    "77 6f 72 6b 62 6f 6f 6b b8 2f 73 68 61 72 65 64"
	    "2f 62 6f 6f 6b 73 2f 6d 6f 64 65 6c 2e 78 6c 73"
	    "78",
	    { .type = PROTO_OPEN,
	        .op = OP_EX,
	        .u.open = { .session = "demo-1",
	            .profile = "excel",
	            .workers = 2,
	            .workbook = "/shared/books/model.xlsx",
	            .lease_ms = 600000 } } },
	{ "close",
	    "94 01 a5 63 6c 6f 73 65 cf 8c 3f 1a 2b 4d 5e 6f"
	    "71 82 a7 73 65 73 73 69 6f 6e a6 64 65 6d 6f 2d"
	    "31 ab 64 65 61 64 6c 69 6e 65 5f 6d 73 ce 00 01"
	    "d4 c0",
	    { .type = PROTO_CLOSE,
	        .op = OP_EX + 1,
	        .u.close = { .session = "demo-1", .deadline_ms = 120000 } } },
	{ "status",
	    "94 01 a6 73 74 61 74 75 73 cf 8c 3f 1a 2b 4d 5e"
	    "6f 72 81 a7 73 65 73 73 69 6f 6e a6 64 65 6d 6f"
	    "2d 31",
	    { .type = PROTO_STATUS,
	        .op = OP_EX + 2,
	        .u.status = { .session = "demo-1" } } },
	{ "status of every session",
	    "94 01 a6 73 74 61 74 75 73 cf 8c 3f 1a 2b 4d 5e"
	    "6f 72 80",
	    { .type = PROTO_STATUS, .op = OP_EX + 2 } },
	{ "renew",
	    "94 01 a5 72 65 6e 65 77 cf 8c 3f 1a 2b 4d 5e 6f"
	    "73 82 a7 73 65 73 73 69 6f 6e a6 64 65 6d 6f 2d"
	    "31 a8 6c 65 61 73 65 5f 6d 73 ce 00 09 27 c0",
	    { .type = PROTO_RENEW,
	        .op = OP_EX + 3,
	        .u.renew = { .session = "demo-1", .lease_ms = 600000 } } },
	{ "ping",
	    "94 01 a4 70 69 6e 67 cf 8c 3f 1a 2b 4d 5e 6f 74"
	    "80",
	    { .type = PROTO_PING, .op = OP_EX + 4 } },
	{ "clear",
	    "94 01 a5 63 6c 65 61 72 cf 8c 3f 1a 2b 4d 5e 6f"
	    "75 80",
	    { .type = PROTO_CLEAR, .op = OP_EX + 5 } },
	{ "reply to open",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "70 89 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a2 6f 6b a3 6d 73 67 a6 6f 70 65 6e 65"
	    "64 a7 77 6f 72 6b 65 72 73 02 a6 65 78 69 74 65"
	    "64 00 a6 6b 69 6c 6c 65 64 00 a9 72 65 6d 61 69"
	    "6e 69 6e 67 00 aa 65 6c 61 70 73 65 64 5f 6d 73"
	    "00 a8 73 65 73 73 69 6f 6e 73 91 83 a7 73 65 73"
	    "73 69 6f 6e a6 64 65 6d 6f 2d 31 a7 70 72 6f 66"
	    "69 6c 65 a5 65 78 63 65 6c a7 77 6f 72 6b 65 72"
	    "73 92 85 a5 69 6e 64 65 78 00 a3 70 69 64 cd a3"
	    "90 a5 73 74 61 74 65 a7 72 75 6e 6e 69 6e 67 ab"
	    "65 78 69 74 5f 73 74 61 74 75 73 ff a8 72 65 73"
	    "74 61 72 74 73 00 85 a5 69 6e 64 65 78 01 a3 70"
	    "69 64 cd a3 91 a5 73 74 61 74 65 a7 72 75 6e 6e"
	    "69 6e 67 ab 65 78 69 74 5f 73 74 61 74 75 73 ff"
	    "a8 72 65 73 74 61 72 74 73 00",
	    { .type = PROTO_REPLY,
	        .op = OP_EX,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_OK,
	            .msg = "opened",
	            .has_counts = true,
	            .counts = { .workers = 2 },
	            .has_sessions = true,
	            .nsessions = 1,
	            .sessions = &ex_opened } } },
	{ "refused reply to open on an unhealthy node",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "70 84 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a7 72 65 66 75 73 65 64 a3 6d 73 67 b1"
	    "6e 6f 64 65 20 69 73 20 75 6e 68 65 61 6c 74 68"
	    "79 a9 75 6e 68 65 61 6c 74 68 79 b9 73 65 73 73"
	    "69 6f 6e 20 64 65 6d 6f 2d 31 20 75 6e 6b 69 6c"
	    "6c 61 62 6c 65",
	    { .type = PROTO_REPLY,
	        .op = OP_EX,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_REFUSED,
	            .msg = "node is unhealthy",
	            .unhealthy = "session demo-1 unkillable" } } },
	{ "reply to close",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "71 88 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a2 6f 6b a3 6d 73 67 a6 63 6c 6f 73 65"
	    "64 a7 77 6f 72 6b 65 72 73 02 a6 65 78 69 74 65"
	    "64 01 a6 6b 69 6c 6c 65 64 01 a9 72 65 6d 61 69"
	    "6e 69 6e 67 00 aa 65 6c 61 70 73 65 64 5f 6d 73"
	    "cd 13 94",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 1,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_OK,
	            .msg = "closed",
	            .has_counts = true,
	            .counts = { .workers = 2,
	                .exited = 1,
	                .killed = 1,
	                .remaining = 0,
	                .elapsed_ms = 5012 } } } },
	{ "partial reply to close",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "71 88 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a7 70 61 72 74 69 61 6c a3 6d 73 67 d9"
	    "2e 70 72 6f 63 65 73 73 65 73 20 72 65 6d 61 69"
	    "6e 20 61 66 74 65 72 20 74 68 65 20 6b 69 6c 6c"
	    "3b 20 73 74 69 6c 6c 20 6b 69 6c 6c 69 6e 67 a7"
	    "77 6f 72 6b 65 72 73 02 a6 65 78 69 74 65 64 00"
	    "a6 6b 69 6c 6c 65 64 01 a9 72 65 6d 61 69 6e 69"
	    "6e 67 01 aa 65 6c 61 70 73 65 64 5f 6d 73 ce 00"
	    "01 d0 d8",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 1,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_PARTIAL,
	            .msg = "processes remain after the kill; still killing",
	            .has_counts = true,
	            .counts = { .workers = 2,
	                .exited = 0,
	                .killed = 1,
	                .remaining = 1,
	                .elapsed_ms = 119000 } } } },
	{ "not_found reply to close",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "71 83 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a9 6e 6f 74 5f 66 6f 75 6e 64 a3 6d 73"
	    "67 bc 6e 6f 20 73 75 63 68 20 73 65 73 73 69 6f"
	    "6e 20 6f 6e 20 74 68 69 73 20 6e 6f 64 65",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 1,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_NOT_FOUND,
	            .msg = "no such session on this node" } } },
	{ "reply to status",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "72 85 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a2 6f 6b a3 6d 73 67 a0 a7 62 61 63 6b"
	    "65 6e 64 a7 63 67 72 6f 75 70 32 a8 73 65 73 73"
	    "69 6f 6e 73 91 83 a7 73 65 73 73 69 6f 6e a6 64"
	    "65 6d 6f 2d 31 a7 70 72 6f 66 69 6c 65 a5 65 78"
	    "63 65 6c a7 77 6f 72 6b 65 72 73 92 85 a5 69 6e"
	    "64 65 78 00 a3 70 69 64 cd a3 90 a5 73 74 61 74"
	    "65 a7 72 75 6e 6e 69 6e 67 ab 65 78 69 74 5f 73"
	    "74 61 74 75 73 ff a8 72 65 73 74 61 72 74 73 00"
	    "85 a5 69 6e 64 65 78 01 a3 70 69 64 cd a3 91 a5"
	    "73 74 61 74 65 a6 65 78 69 74 65 64 ab 65 78 69"
	    "74 5f 73 74 61 74 75 73 cd 01 00 a8 72 65 73 74"
	    "61 72 74 73 01",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 2,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_OK,
	            .msg = "",
	            .backend = "cgroup2",
	            .has_sessions = true,
	            .nsessions = 1,
	            .sessions = &ex_session } } },
	{ "reply to renew",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f "
	    "73 83 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63 "
	    "6f 64 65 a2 6f 6b a3 6d 73 67 ad 6c 65 61 73 65 "
	    "20 72 65 6e 65 77 65 64",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 3,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_OK,
	            .msg = "lease renewed" } } },
	{ "reply to ping",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "74 85 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a2 6f 6b a3 6d 73 67 a4 70 6f 6e 67 a7"
	    "76 65 72 73 69 6f 6e a5 30 2e 31 2e 30 a7 62 61"
	    "63 6b 65 6e 64 a7 63 67 72 6f 75 70 32",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 4,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_OK,
	            .msg = "pong",
	            .version = "0.1.0",
	            .backend = "cgroup2" } } },
	{ "reply to ping from an unhealthy node",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "74 86 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a2 6f 6b a3 6d 73 67 a4 70 6f 6e 67 a7"
	    "76 65 72 73 69 6f 6e a5 30 2e 31 2e 30 a7 62 61"
	    "63 6b 65 6e 64 a7 63 67 72 6f 75 70 32 a9 75 6e"
	    "68 65 61 6c 74 68 79 b9 73 65 73 73 69 6f 6e 20"
	    "64 65 6d 6f 2d 31 20 75 6e 6b 69 6c 6c 61 62 6c"
	    "65",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 4,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_OK,
	            .msg = "pong",
	            .version = "0.1.0",
	            .backend = "cgroup2",
	            .unhealthy = "session demo-1 unkillable" } } },
	{ "reply to clear",
	    "94 01 a5 72 65 70 6c 79 cf 8c 3f 1a 2b 4d 5e 6f"
	    "75 83 a4 6e 6f 64 65 a6 6e 6f 64 65 30 37 a4 63"
	    "6f 64 65 a2 6f 6b a3 6d 73 67 a7 63 6c 65 61 72"
	    "65 64",
	    { .type = PROTO_REPLY,
	        .op = OP_EX + 5,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_OK,
	            .msg = "cleared" } } },
	{ "bad_request reply",
	    "94 01 a5 72 65 70 6c 79 00 83 a4 6e 6f 64 65 a6"
	    "6e 6f 64 65 30 37 a4 63 6f 64 65 ab 62 61 64 5f"
	    "72 65 71 75 65 73 74 a3 6d 73 67 b4 75 6e 6b 6e"
	    "6f 77 6e 20 6d 65 73 73 61 67 65 20 74 79 70 65",
	    { .type = PROTO_REPLY,
	        .op = 0,
	        .u.reply = { .node = "node07",
	            .code = PROTO_CODE_BAD_REQUEST,
	            .msg = "unknown message type" } } },
};

#define NGOLDENS (sizeof(goldens) / sizeof(goldens[0]))

Test(golden, encoder_emits_the_documented_bytes)
{
	size_t i, len, want_len;
	unsigned char *want;
	char *buf;

	for (i = 0; i < NGOLDENS; i++) {
		want = hex_bytes(goldens[i].hex, &want_len);
		encode_ok(&goldens[i].m, &buf, &len);
		cr_assert_eq(len, want_len, "%s: %zu bytes, want %zu",
		    goldens[i].name, len, want_len);
		cr_assert_arr_eq(
		    buf, want, len, "%s: bytes differ", goldens[i].name);
		free(buf);
		free(want);
	}
}

Test(golden, decoder_reads_the_documented_bytes)
{
	struct proto_msg m;
	unsigned char *bytes;
	size_t i, len;

	for (i = 0; i < NGOLDENS; i++) {
		bytes = hex_bytes(goldens[i].hex, &len);
		decode_ok(bytes, len, max_len_for(goldens[i].m.type), &m);
		expect_msg_eq(&m, &goldens[i].m);
		proto_msg_free(&m);
		free(bytes);
	}
}

/* ---- the encoder refuses what the protocol forbids --------------------- */

static char long_text[PROTO_MAX_TEXT + 2]; /* PROTO_MAX_TEXT + 1 bytes */

static struct proto_worker bad_state_worker[] = { { .state = 99 } };
static struct proto_worker bad_pid_worker[] = { { .pid = -1 } };
static struct proto_worker bad_status_worker[] = { { .exit_status = -2 } };
static struct proto_session bad_sessions[] = {
	{ .session = NULL, .profile = "p" },
	{ .session = "a/b", .profile = "p" },
	{ .session = "s", .profile = ".p" },
	{ .session = "s", .profile = "p", .nworkers = 1, .workers = NULL },
	{ .session = "s",
	    .profile = "p",
	    .nworkers = 1,
	    .workers = bad_state_worker },
	{ .session = "s",
	    .profile = "p",
	    .nworkers = 1,
	    .workers = bad_pid_worker },
	{ .session = "s",
	    .profile = "p",
	    .nworkers = 1,
	    .workers = bad_status_worker },
};

/* Defaults first, then the fields a case overrides. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
#define OPEN(...)                                                             \
	{                                                                     \
		.type = PROTO_OPEN,                                           \
		.u.open                                                       \
		    = {.session = "s",                                        \
			      .profile = "p",                                 \
			      .workers = 1,                                   \
			      __VA_ARGS__ }                                   \
	}
#define REPLY(...)                                                            \
	{                                                                     \
		.type = PROTO_REPLY,                                          \
		.u.reply                                                      \
		    = {.node = "n",                                           \
			      .code = PROTO_CODE_OK,                          \
			      __VA_ARGS__ }                                   \
	}
#define BAD_SESSION(i)                                                        \
	REPLY(.has_sessions = true, .nsessions = 1,                           \
	    .sessions = &bad_sessions[i])

static const struct {
	const char *name;
	struct proto_msg m;
} bad_msgs[] = {
	{ "unknown type 0", { .type = 0 } },
	{ "unknown type 99", { .type = 99 } },
	{ "open: no session", OPEN(.session = NULL) },
	{ "open: empty session", OPEN(.session = "") },
	{ "open: session with /", OPEN(.session = "a/b") },
	{ "open: session starting with .", OPEN(.session = ".s") },
	{ "open: session starting with -", OPEN(.session = "-s") },
	{ "open: session of 65 bytes", OPEN(.session = ID65) },
	{ "open: session with a space", OPEN(.session = "a b") },
	{ "open: no profile", OPEN(.profile = NULL) },
	{ "open: profile ../p", OPEN(.profile = "../p") },
	{ "open: 0 workers", OPEN(.workers = 0) },
	{ "open: too many workers", OPEN(.workers = PROTO_MAX_WORKERS + 1) },
	{ "open: per_core, too many workers",
	    OPEN(.per_core = true, .workers = PROTO_MAX_WORKERS + 1) },
	{ "open: workbook too long", OPEN(.workbook = long_text) },
	{ "open: lease too long", OPEN(.lease_ms = UINT32_MAX * 1000ULL + 1) },
	{ "close: no session", { .type = PROTO_CLOSE } },
	{ "close: session a/b",
	    { .type = PROTO_CLOSE, .u.close = { .session = "a/b" } } },
	{ "close: deadline too long",
	    { .type = PROTO_CLOSE,
	        .u.close = { .session = "s",
	            .deadline_ms = (uint64_t)UINT32_MAX + 1 } } },
	{ "status: empty session",
	    { .type = PROTO_STATUS, .u.status = { .session = "" } } },
	{ "status: session ..",
	    { .type = PROTO_STATUS, .u.status = { .session = ".." } } },
	{ "renew: no session", { .type = PROTO_RENEW } },
	{ "renew: session a\\b",
	    { .type = PROTO_RENEW, .u.renew = { .session = "a\\b" } } },
	{ "renew: lease too long",
	    { .type = PROTO_RENEW,
	        .u.renew
	        = { .session = "s", .lease_ms = UINT32_MAX * 1000ULL + 1 } } },
	{ "reply: no node", REPLY(.node = NULL) },
	{ "reply: node a/b", REPLY(.node = "a/b") },
	{ "reply: node of 65 bytes", REPLY(.node = ID65) },
	{ "reply: code 6", REPLY(.code = 6) },
	{ "reply: code -1", REPLY(.code = (enum proto_code) - 1) },
	{ "reply: msg too long", REPLY(.msg = long_text) },
	{ "reply: version too long", REPLY(.version = long_text) },
	{ "reply: backend too long", REPLY(.backend = long_text) },
	{ "reply: unhealthy too long", REPLY(.unhealthy = long_text) },
	{ "reply: sessions NULL",
	    REPLY(.has_sessions = true, .nsessions = 1, .sessions = NULL) },
	{ "reply: session NULL", BAD_SESSION(0) },
	{ "reply: session a/b", BAD_SESSION(1) },
	{ "reply: profile .p", BAD_SESSION(2) },
	{ "reply: workers NULL", BAD_SESSION(3) },
	{ "reply: worker state 99", BAD_SESSION(4) },
	{ "reply: worker pid -1", BAD_SESSION(5) },
	{ "reply: worker exit_status -2", BAD_SESSION(6) },
};

#pragma GCC diagnostic pop

static void
expect_encode_refused(const struct proto_msg *m, const char *name)
{
	char *buf;
	size_t len;
	long live = alloc_live;
	int rv;

	fill(&buf, sizeof(buf));
	fill(&len, sizeof(len));
	rv = proto_encode(m, &buf, &len);
	cr_expect_eq(rv, HPCXL_EINVAL, "%s: got %s", name, hpcxl_strerror(rv));
	cr_expect(untouched(&buf, sizeof(buf)) && untouched(&len, sizeof(len)),
	    "%s: out-parameters written", name);
	if (rv == 0)
		free(buf);
	cr_expect_eq(alloc_live, live, "%s: leaked", name);
}

Test(encode, refuses_messages_the_decoder_would_refuse)
{
	size_t i;

	memset(long_text, 't', PROTO_MAX_TEXT + 1);
	expect_encode_refused(NULL, "NULL message");
	for (i = 0; i < sizeof(bad_msgs) / sizeof(bad_msgs[0]); i++)
		expect_encode_refused(&bad_msgs[i].m, bad_msgs[i].name);
}

Test(encode, refuses_too_many_sessions_or_workers)
{
	struct proto_session *s;
	struct proto_worker *w;
	struct proto_msg m = REPLY(.has_sessions = true);
	uint32_t i;

	s = calloc(PROTO_MAX_SESSIONS + 1, sizeof(*s));
	w = calloc(PROTO_MAX_WORKERS + 1, sizeof(*w));
	cr_assert(s != NULL && w != NULL);
	for (i = 0; i <= PROTO_MAX_SESSIONS; i++)
		s[i] = (struct proto_session) { .session = "s",
			.profile = "p" };
	m.u.reply.sessions = s;
	m.u.reply.nsessions = PROTO_MAX_SESSIONS;
	roundtrip(&m); /* the limit itself is fine */
	m.u.reply.nsessions = PROTO_MAX_SESSIONS + 1;
	expect_encode_refused(&m, "too many sessions");

	s[0].workers = w;
	s[0].nworkers = PROTO_MAX_WORKERS;
	m.u.reply.nsessions = 1;
	roundtrip(&m);
	s[0].nworkers = PROTO_MAX_WORKERS + 1;
	expect_encode_refused(&m, "too many workers");
	free(s);
	free(w);
}

/* ---- decoding: templates and mutations --------------------------------- */

enum vkind {
	V_NIL = 1,
	V_TRUE,
	V_FALSE,
	V_UINT,
	V_INT,
	V_FLOAT,
	V_STR, /* s, n bytes */
	V_FILL, /* a string of u 'x' bytes */
	V_BIN, /* s, n bytes as msgpack bin */
	V_RAW, /* s, n bytes copied as they are */
	V_NILS, /* an array of u nils */
	V_MAP0, /* {} */
	V_SESSIONS, /* [ session template ] */
	V_WORKERS, /* [ worker template ] */
};

struct val {
	enum vkind k;
	uint64_t u;
	int64_t i;
	double f;
	const char *s;
	size_t n;
};

#define NIL                                                                   \
	{                                                                     \
		.k = V_NIL                                                    \
	}
#define TRUE_                                                                 \
	{                                                                     \
		.k = V_TRUE                                                   \
	}
#define FALSE_                                                                \
	{                                                                     \
		.k = V_FALSE                                                  \
	}
#define UINT(x)                                                               \
	{                                                                     \
		.k = V_UINT, .u = (x)                                         \
	}
#define INT(x)                                                                \
	{                                                                     \
		.k = V_INT, .i = (x)                                          \
	}
#define FLT(x)                                                                \
	{                                                                     \
		.k = V_FLOAT, .f = (x)                                        \
	}
#define STR(x)                                                                \
	{                                                                     \
		.k = V_STR, .s = (x), .n = sizeof(x) - 1                      \
	}
#define FILL(x)                                                               \
	{                                                                     \
		.k = V_FILL, .u = (x)                                         \
	}
#define BIN(x)                                                                \
	{                                                                     \
		.k = V_BIN, .s = (x), .n = sizeof(x) - 1                      \
	}
#define RAW(x)                                                                \
	{                                                                     \
		.k = V_RAW, .s = (x), .n = sizeof(x) - 1                      \
	}
#define NILS(x)                                                               \
	{                                                                     \
		.k = V_NILS, .u = (x)                                         \
	}
#define MAP0                                                                  \
	{                                                                     \
		.k = V_MAP0                                                   \
	}

struct field {
	const char *key;
	struct val v;
};

/* Valid bodies, one per message; a test checks each decodes. */
static const struct field open_tmpl[] = {
	{ "session", STR("s1") },
	{ "profile", STR("excel") },
	{ "workers", UINT(2) },
	{ "per_core", FALSE_ },
	{ "lease_ms", UINT(60000) },
	{ "workbook", STR("C:/books/model.xlsx") },
	{ NULL },
};
static const struct field close_tmpl[] = {
	{ "session", STR("s1") },
	{ "deadline_ms", UINT(120000) },
	{ NULL },
};
static const struct field status_tmpl[] = {
	{ "session", STR("s1") },
	{ NULL },
};
static const struct field renew_tmpl[] = {
	{ "session", STR("s1") },
	{ "lease_ms", UINT(60000) },
	{ NULL },
};
static const struct field ping_tmpl[] = {
	{ NULL },
};
static const struct field clear_tmpl[] = {
	{ NULL },
};
static const struct field worker_tmpl[] = {
	{ "index", UINT(0) },
	{ "pid", UINT(4242) },
	{ "state", STR("running") },
	{ "exit_status", INT(-1) },
	{ "restarts", UINT(0) },
	{ NULL },
};
static const struct field session_tmpl[] = {
	{ "session", STR("s1") },
	{ "profile", STR("excel") },
	{ "owner", STR("alice") },
	{ "workers", { .k = V_WORKERS } },
	{ NULL },
};
static const struct field reply_tmpl[] = {
	{ "node", STR("node1") },
	{ "code", STR("ok") },
	{ "msg", STR("fine") },
	{ "version", STR("0.1.0") },
	{ "backend", STR("cgroup2") },
	{ "unhealthy", STR("session s1 unkillable") },
	{ "workers", UINT(1) },
	{ "exited", UINT(1) },
	{ "killed", UINT(0) },
	{ "remaining", UINT(0) },
	{ "elapsed_ms", UINT(15) },
	{ "sessions", { .k = V_SESSIONS } },
	{ NULL },
};

static const struct {
	const char *type;
	const struct field *body;
} templates[] = {
	{ "open", open_tmpl },
	{ "close", close_tmpl },
	{ "status", status_tmpl },
	{ "renew", renew_tmpl },
	{ "ping", ping_tmpl },
	{ "reply", reply_tmpl },
	{ "clear", clear_tmpl },
};

enum where { W_BODY, W_SESSION, W_WORKER };
enum mkind {
	M_NONE,
	M_SET, /* key's value becomes v (added when absent) */
	M_DROP, /* key is left out */
	M_ADD, /* key: v is added after the others (a duplicate if present) */
	M_KEY, /* v: nil is added: v is the key */
};

struct mcase {
	const char *name;
	const char *type;
	enum where where; /* which map of the message the mutation hits */
	enum mkind mut;
	const char *key;
	struct val v;
	int want; /* 0, HPCXL_EPROTO or HPCXL_ETOOBIG */
};

static void
put_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void
put_raw(msgpack_packer *pk, const void *bytes, size_t n)
{
	pk->callback(pk->data, bytes, n);
}

static void emit_map(msgpack_packer *pk, const struct field *t, enum where w,
    const struct mcase *c);

static void
emit_val(msgpack_packer *pk, const struct val *v, const struct mcase *c)
{
	char xs[256];
	uint64_t i;

	memset(xs, 'x', sizeof(xs));

	switch (v->k) {
	case V_NIL:
		msgpack_pack_nil(pk);
		break;
	case V_TRUE:
		msgpack_pack_true(pk);
		break;
	case V_FALSE:
		msgpack_pack_false(pk);
		break;
	case V_UINT:
		msgpack_pack_uint64(pk, v->u);
		break;
	case V_INT:
		msgpack_pack_int64(pk, v->i);
		break;
	case V_FLOAT:
		msgpack_pack_double(pk, v->f);
		break;
	case V_STR:
		msgpack_pack_str(pk, v->n);
		msgpack_pack_str_body(pk, v->s, v->n);
		break;
	case V_FILL:
		msgpack_pack_str(pk, v->u);
		for (i = 0; i < v->u; i += sizeof(xs))
			put_raw(pk, xs,
			    v->u - i < sizeof(xs) ? v->u - i : sizeof(xs));
		break;
	case V_BIN:
		msgpack_pack_bin(pk, v->n);
		msgpack_pack_bin_body(pk, v->s, v->n);
		break;
	case V_RAW:
		put_raw(pk, v->s, v->n);
		break;
	case V_NILS:
		msgpack_pack_array(pk, v->u);
		for (i = 0; i < v->u; i++)
			msgpack_pack_nil(pk);
		break;
	case V_MAP0:
		msgpack_pack_map(pk, 0);
		break;
	case V_SESSIONS:
		msgpack_pack_array(pk, 1);
		emit_map(pk, session_tmpl, W_SESSION, c);
		break;
	case V_WORKERS:
		msgpack_pack_array(pk, 1);
		emit_map(pk, worker_tmpl, W_WORKER, c);
		break;
	}
}

static bool
key_hit(const struct mcase *here, const char *key)
{
	return here != NULL && here->key != NULL
	    && strcmp(here->key, key) == 0;
}

/* Emits template t as a map, with c's mutation when it targets w. */
static void
emit_map(msgpack_packer *pk, const struct field *t, enum where w,
    const struct mcase *c)
{
	const struct mcase *here = NULL;
	const struct field *f;
	bool found = false;
	size_t n = 0;

	if (c != NULL && c->mut != M_NONE && c->where == w)
		here = c;
	for (f = t; f->key != NULL; f++) {
		n++;
		found = found || key_hit(here, f->key);
	}
	if (here != NULL && here->mut == M_DROP)
		cr_assert(found, "%s: nothing to drop", here->name);
	if (here != NULL) {
		n += here->mut == M_ADD || here->mut == M_KEY
		    || (here->mut == M_SET && !found);
		n -= here->mut == M_DROP;
	}
	msgpack_pack_map(pk, n);
	for (f = t; f->key != NULL; f++) {
		bool hit = key_hit(here, f->key);

		if (hit && here->mut == M_DROP)
			continue;
		put_str(pk, f->key);
		emit_val(pk, hit && here->mut == M_SET ? &here->v : &f->v, c);
	}
	if (here != NULL
	    && (here->mut == M_ADD || (here->mut == M_SET && !found))) {
		put_str(pk, here->key);
		emit_val(pk, &here->v, c);
	}
	if (here != NULL && here->mut == M_KEY) {
		emit_val(pk, &here->v, c);
		msgpack_pack_nil(pk);
	}
}

static const struct field *
template_of(const char *type)
{
	size_t i;

	for (i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		if (strcmp(templates[i].type, type) == 0)
			return templates[i].body;
	}
	cr_assert_fail("no template for %s", type);
	return NULL;
}

/* [1, type, 77, body] into a new sbuffer (destroy it). */
static void
build_case(msgpack_sbuffer *sb, const struct mcase *c)
{
	msgpack_packer pk;

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, PROTO_VERSION);
	put_str(&pk, c->type);
	msgpack_pack_uint64(&pk, 77);
	emit_map(&pk, template_of(c->type), W_BODY, c);
}

static size_t
max_len_of(const char *type)
{
	return strcmp(type, "reply") == 0 ? PROTO_MAX_REPLY
	                                  : PROTO_MAX_REQUEST;
}

static void
run_mcase(const struct mcase *c)
{
	msgpack_sbuffer sb;
	struct proto_msg m;
	const char *why;
	int rv;

	build_case(&sb, c);
	if (c->want != 0) {
		expect_reject(
		    sb.data, sb.size, max_len_of(c->type), c->want, c->name);
	} else {
		rv = proto_decode(
		    sb.data, sb.size, max_len_of(c->type), &m, &why);
		cr_expect_eq(rv, 0, "%s: rejected: %s", c->name,
		    why != NULL ? why : "?");
		if (rv == 0)
			proto_msg_free(&m);
	}
	msgpack_sbuffer_destroy(&sb);
}

Test(decode, every_template_is_a_valid_frame)
{
	struct mcase c = { .name = "template", .mut = M_NONE };
	msgpack_sbuffer sb;
	struct proto_msg m;
	size_t i;

	for (i = 0; i < sizeof(templates) / sizeof(templates[0]); i++) {
		c.type = templates[i].type;
		build_case(&sb, &c);
		decode_ok(sb.data, sb.size, max_len_of(c.type), &m);
		cr_assert_str_eq(proto_type_name(m.type), c.type);
		cr_assert_eq(m.op, 77);
		if (m.type == PROTO_REPLY) {
			cr_assert(m.u.reply.has_counts);
			cr_assert_eq(m.u.reply.nsessions, 1);
			cr_assert_eq(m.u.reply.sessions[0].nworkers, 1);
			cr_assert_eq(
			    m.u.reply.sessions[0].workers[0].pid, 4242);
			cr_assert_str_eq(
			    m.u.reply.unhealthy, "session s1 unkillable");
		}
		proto_msg_free(&m);
		msgpack_sbuffer_destroy(&sb);
	}
}

#define EPROTO_ HPCXL_EPROTO
#define ETOOBIG_ HPCXL_ETOOBIG

/*
 * One mutation case. The value comes last (variadic) because it is a brace
 * initializer whose commas must not split macro arguments; the case name is
 * the mutation as written.
 */
#define MC(name, t, wh, m, k, want, ...)                                      \
	{                                                                     \
		name, t, wh, m, k, __VA_ARGS__, want                          \
	}
#define SET(t, k, want, ...)                                                  \
	MC(#t "." k " = " #__VA_ARGS__, #t, W_BODY, M_SET, k, want,           \
	    __VA_ARGS__)
#define DROP(t, k, want) MC(#t ": no " k, #t, W_BODY, M_DROP, k, want, { 0 })
#define ADD(t, k, want, ...)                                                  \
	MC(#t ": extra " k " = " #__VA_ARGS__, #t, W_BODY, M_ADD, k, want,    \
	    __VA_ARGS__)
#define KEY(t, want, ...)                                                     \
	MC(#t ": key " #__VA_ARGS__, #t, W_BODY, M_KEY, NULL, want,           \
	    __VA_ARGS__)
#define SSET(k, want, ...)                                                    \
	MC("reply.sessions[0]." k " = " #__VA_ARGS__, "reply", W_SESSION,     \
	    M_SET, k, want, __VA_ARGS__)
#define SDROP(k, want)                                                        \
	MC("reply.sessions[0]: no " k, "reply", W_SESSION, M_DROP, k, want,   \
	    { 0 })
#define SADD(k, want, ...)                                                    \
	MC("reply.sessions[0]: extra " k " = " #__VA_ARGS__, "reply",         \
	    W_SESSION, M_ADD, k, want, __VA_ARGS__)
#define SKEY(want, ...)                                                       \
	MC("reply.sessions[0]: key " #__VA_ARGS__, "reply", W_SESSION, M_KEY, \
	    NULL, want, __VA_ARGS__)
#define WSET(k, want, ...)                                                    \
	MC("reply.workers[0]." k " = " #__VA_ARGS__, "reply", W_WORKER,       \
	    M_SET, k, want, __VA_ARGS__)
#define WDROP(k, want)                                                        \
	MC("reply.workers[0]: no " k, "reply", W_WORKER, M_DROP, k, want,     \
	    { 0 })
#define WADD(k, want, ...)                                                    \
	MC("reply.workers[0]: extra " k " = " #__VA_ARGS__, "reply",          \
	    W_WORKER, M_ADD, k, want, __VA_ARGS__)
#define WKEY(want, ...)                                                       \
	MC("reply.workers[0]: key " #__VA_ARGS__, "reply", W_WORKER, M_KEY,   \
	    NULL, want, __VA_ARGS__)

/* Every id field (session, profile, node) must be a valid name. */
#define BAD_ID(t, path, wh, k, want, ...)                                     \
	MC(t path "." k " = " #__VA_ARGS__, t, wh, M_SET, k, want, __VA_ARGS__)
#define BAD_IDS(t, path, wh, k)                                               \
	BAD_ID(t, path, wh, k, EPROTO_, INT(5)),                              \
	    BAD_ID(t, path, wh, k, EPROTO_, NIL),                             \
	    BAD_ID(t, path, wh, k, EPROTO_, BIN("s1")),                       \
	    BAD_ID(t, path, wh, k, EPROTO_, NILS(1)),                         \
	    BAD_ID(t, path, wh, k, EPROTO_,                                   \
	        RAW("\x91\xa2"                                                \
	            "s1")),                                                   \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("")),                         \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("a/b")),                      \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("/")),                        \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("../x")),                     \
	    BAD_ID(t, path, wh, k, EPROTO_, STR(".hidden")),                  \
	    BAD_ID(t, path, wh, k, EPROTO_, STR(".")),                        \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("..")),                       \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("-rf")),                      \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("a b")),                      \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("a\nb")),                     \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("a\0b")),                     \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("s1\0")),                     \
	    BAD_ID(t, path, wh, k, EPROTO_, STR("\xc3\xa9t\xc3\xa9")),        \
	    BAD_ID(t, path, wh, k, ETOOBIG_, STR(ID65)),                      \
	    BAD_ID(t, path, wh, k, ANY_ERR, FILL(100000))

static const struct mcase bad_cases[] = {
	/* open */
	BAD_IDS("open", "", W_BODY, "session"),
	BAD_IDS("open", "", W_BODY, "profile"),
	DROP(open, "session", EPROTO_),
	DROP(open, "profile", EPROTO_),
	DROP(open, "workers", EPROTO_),
	ADD(open, "session", EPROTO_, STR("s2")),
	ADD(open, "session", EPROTO_, STR("s1")),
	ADD(open, "workers", EPROTO_, UINT(2)),
	ADD(open, "lease_ms", EPROTO_, UINT(1)),
	SET(open, "workers", EPROTO_, STR("2")),
	SET(open, "workers", EPROTO_, INT(-1)),
	SET(open, "workers", EPROTO_, FLT(2.0)),
	SET(open, "workers", EPROTO_, NIL),
	SET(open, "workers", EPROTO_, TRUE_),
	SET(open, "workers", EPROTO_, UINT(0)),
	SET(open, "workers", ETOOBIG_, UINT(PROTO_MAX_WORKERS + 1)),
	SET(open, "workers", ETOOBIG_, UINT(UINT64_MAX)),
	SET(open, "per_core", EPROTO_, UINT(1)),
	SET(open, "per_core", EPROTO_, UINT(0)),
	SET(open, "per_core", EPROTO_, STR("true")),
	SET(open, "per_core", EPROTO_, NIL),
	SET(open, "lease_ms", EPROTO_, INT(-1)),
	SET(open, "lease_ms", EPROTO_, STR("60000")),
	SET(open, "lease_ms", EPROTO_, FLT(1.5)),
	SET(open, "lease_ms", ETOOBIG_, UINT(UINT32_MAX * 1000ULL + 1)),
	SET(open, "workbook", EPROTO_, INT(1)),
	SET(open, "workbook", EPROTO_, NIL),
	SET(open, "workbook", EPROTO_, BIN("book.xlsx")),
	SET(open, "workbook", EPROTO_, STR("bo\0ok.xlsx")),
	SET(open, "workbook", ETOOBIG_, FILL(PROTO_MAX_TEXT + 1)),
	SET(open, "workbook", ETOOBIG_, FILL(70000)),
	KEY(open, EPROTO_, UINT(1)),
	KEY(open, EPROTO_, NIL),
	KEY(open, EPROTO_, BIN("session")),
	KEY(open, EPROTO_, NILS(1)),
	KEY(open, EPROTO_, MAP0),
	/* close */
	BAD_IDS("close", "", W_BODY, "session"),
	DROP(close, "session", EPROTO_),
	DROP(close, "deadline_ms", EPROTO_),
	ADD(close, "session", EPROTO_, STR("other")),
	ADD(close, "deadline_ms", EPROTO_, UINT(1)),
	SET(close, "deadline_ms", EPROTO_, STR("5000")),
	SET(close, "deadline_ms", EPROTO_, INT(-5000)),
	SET(close, "deadline_ms", EPROTO_, FLT(5000.0)),
	SET(close, "deadline_ms", EPROTO_, FALSE_),
	SET(close, "deadline_ms", EPROTO_, NIL),
	SET(close, "deadline_ms", ETOOBIG_, UINT((uint64_t)UINT32_MAX + 1)),
	KEY(close, EPROTO_, INT(-1)),
	/* status */
	BAD_IDS("status", "", W_BODY, "session"),
	ADD(status, "session", EPROTO_, STR("s2")),
	KEY(status, EPROTO_, TRUE_),
	/* renew */
	BAD_IDS("renew", "", W_BODY, "session"),
	DROP(renew, "session", EPROTO_),
	DROP(renew, "lease_ms", EPROTO_),
	SET(renew, "lease_ms", EPROTO_, STR("1")),
	SET(renew, "lease_ms", EPROTO_, INT(-1)),
	SET(renew, "lease_ms", ETOOBIG_, UINT(UINT32_MAX * 1000ULL + 1)),
	ADD(renew, "lease_ms", EPROTO_, UINT(2)),
	/* ping */
	KEY(ping, EPROTO_, UINT(0)),
	KEY(ping, EPROTO_, FLT(0.5)),
	/* clear: an empty body, but still a map with string keys */
	KEY(clear, EPROTO_, UINT(0)),
	KEY(clear, EPROTO_, NIL),
	/* reply: body */
	BAD_IDS("reply", "", W_BODY, "node"),
	DROP(reply, "node", EPROTO_),
	DROP(reply, "code", EPROTO_),
	DROP(reply, "msg", EPROTO_),
	ADD(reply, "node", EPROTO_, STR("node2")),
	ADD(reply, "code", EPROTO_, STR("error")),
	ADD(reply, "sessions", EPROTO_, NILS(0)),
	SET(reply, "code", EPROTO_, UINT(0)),
	SET(reply, "code", EPROTO_, STR("OK")),
	SET(reply, "code", EPROTO_, STR("")),
	SET(reply, "code", EPROTO_, STR("ok\0")),
	SET(reply, "code", EPROTO_, STR("?")),
	SET(reply, "code", EPROTO_, BIN("ok")),
	SET(reply, "code", EPROTO_, NIL),
	SET(reply, "msg", EPROTO_, NIL),
	SET(reply, "msg", EPROTO_, UINT(0)),
	SET(reply, "msg", EPROTO_, STR("a\0b")),
	SET(reply, "msg", ETOOBIG_, FILL(PROTO_MAX_TEXT + 1)),
	SET(reply, "version", EPROTO_, UINT(1)),
	SET(reply, "version", EPROTO_, NIL),
	SET(reply, "version", ETOOBIG_, FILL(PROTO_MAX_TEXT + 1)),
	SET(reply, "backend", EPROTO_, NILS(1)),
	SET(reply, "backend", ETOOBIG_, FILL(PROTO_MAX_TEXT + 1)),
	SET(reply, "unhealthy", EPROTO_, NIL), /* nil is not "healthy" */
	SET(reply, "unhealthy", EPROTO_, FALSE_),
	SET(reply, "unhealthy", EPROTO_, TRUE_),
	SET(reply, "unhealthy", EPROTO_, UINT(1)),
	SET(reply, "unhealthy", EPROTO_, BIN("stuck")),
	SET(reply, "unhealthy", EPROTO_, NILS(1)),
	SET(reply, "unhealthy", EPROTO_, MAP0),
	SET(reply, "unhealthy", EPROTO_, STR("stu\0ck")),
	SET(reply, "unhealthy", ETOOBIG_, FILL(PROTO_MAX_TEXT + 1)),
	ADD(reply, "unhealthy", EPROTO_, STR("again")),
	SET(reply, "workers", EPROTO_, STR("1")),
	SET(reply, "workers", EPROTO_, INT(-1)),
	SET(reply, "workers", ETOOBIG_, UINT((uint64_t)UINT32_MAX + 1)),
	DROP(reply, "exited", EPROTO_),
	DROP(reply, "killed", EPROTO_),
	DROP(reply, "remaining", EPROTO_),
	DROP(reply, "elapsed_ms", EPROTO_),
	SET(reply, "exited", EPROTO_, NIL),
	SET(reply, "killed", EPROTO_, INT(-1)),
	SET(reply, "remaining", ETOOBIG_, UINT((uint64_t)UINT32_MAX + 1)),
	SET(reply, "elapsed_ms", EPROTO_, FLT(1.0)),
	SET(reply, "elapsed_ms", EPROTO_, INT(-1)),
	SET(reply, "sessions", EPROTO_, MAP0),
	SET(reply, "sessions", EPROTO_, NIL),
	SET(reply, "sessions", EPROTO_, STR("s1")),
	SET(reply, "sessions", EPROTO_, NILS(1)),
	SET(reply, "sessions", EPROTO_, RAW("\x91\x90")),
	SET(reply, "sessions", ETOOBIG_, NILS(PROTO_MAX_SESSIONS + 1)),
	KEY(reply, EPROTO_, UINT(7)),
	/* reply: a session */
	BAD_IDS("reply", ".sessions[0]", W_SESSION, "session"),
	BAD_IDS("reply", ".sessions[0]", W_SESSION, "profile"),
	SDROP("session", EPROTO_),
	SDROP("profile", EPROTO_),
	SDROP("workers", EPROTO_),
	SADD("profile", EPROTO_, STR("other")),
	SADD("workers", EPROTO_, NILS(0)),
	SSET("workers", EPROTO_, STR("none")),
	SSET("workers", EPROTO_, NIL),
	SSET("workers", EPROTO_, MAP0),
	SSET("workers", EPROTO_, UINT(1)),
	SSET("workers", EPROTO_, NILS(1)),
	SSET("workers", EPROTO_, RAW("\x91\xa1w")),
	SSET("workers", ETOOBIG_, NILS(PROTO_MAX_WORKERS + 1)),
	SKEY(EPROTO_, UINT(1)),
	SKEY(EPROTO_, NIL),
	/* owner: optional text, absent for a session without one */
	SSET("owner", 0, STR("anonymous")),
	SSET("owner", 0, STR("")),
	SSET("owner", EPROTO_, NIL),
	SSET("owner", EPROTO_, UINT(1)),
	SSET("owner", EPROTO_, BIN("alice")),
	SSET("owner", EPROTO_, STR("al\0ice")),
	SSET("owner", ETOOBIG_, FILL(PROTO_MAX_TEXT + 1)),
	SADD("owner", EPROTO_, STR("bob")),
	SDROP("owner", 0),
	/* reply: a worker */
	WDROP("index", EPROTO_),
	WDROP("pid", EPROTO_),
	WDROP("state", EPROTO_),
	WDROP("exit_status", EPROTO_),
	WADD("pid", EPROTO_, UINT(1)),
	WADD("state", EPROTO_, STR("running")),
	WSET("index", EPROTO_, STR("0")),
	WSET("index", EPROTO_, INT(-1)),
	WSET("index", ETOOBIG_, UINT((uint64_t)UINT32_MAX + 1)),
	WSET("pid", EPROTO_, STR("4242")),
	WSET("pid", EPROTO_, NIL),
	WSET("pid", EPROTO_, FLT(4242.0)),
	WSET("pid", ETOOBIG_, INT(-5)),
	WSET("pid", ETOOBIG_, UINT((uint64_t)INT32_MAX + 1)),
	WSET("state", EPROTO_, STR("zombie")),
	WSET("state", EPROTO_, STR("RUNNING")),
	WSET("state", EPROTO_, STR("?")),
	WSET("state", EPROTO_, UINT(0)),
	WSET("state", EPROTO_, NIL),
	WSET("exit_status", EPROTO_, STR("-1")),
	WSET("exit_status", EPROTO_, NIL),
	WSET("exit_status", ETOOBIG_, INT(-2)),
	WSET("exit_status", ETOOBIG_, INT(INT64_MIN)),
	WSET("exit_status", ETOOBIG_, UINT((uint64_t)INT32_MAX + 1)),
	WSET("exit_status", ANY_ERR, UINT(UINT64_MAX)),
	WSET("restarts", EPROTO_, INT(-1)),
	WSET("restarts", EPROTO_, STR("0")),
	WSET("restarts", ETOOBIG_, UINT((uint64_t)UINT32_MAX + 1)),
	WKEY(EPROTO_, UINT(3)),
	WKEY(EPROTO_, BIN("pid")),
};

Test(decode, rejects_every_malformed_body)
{
	size_t i;

	for (i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		run_mcase(&bad_cases[i]);
}

/*
 * What a peer using another msgpack library may send and must be accepted:
 * other integer and string widths, omitted optional fields, unknown keys
 * (with any value), and every value at its limit.
 */
static const struct mcase good_cases[] = {
	SET(open, "per_core", 0, TRUE_),
	DROP(open, "per_core", 0),
	DROP(open, "workbook", 0),
	DROP(open, "lease_ms", 0),
	SET(open, "workers", 0, RAW("\xd0\x02")), /* int8 2 */
	SET(open, "workers", 0, RAW("\xcc\x02")), /* uint8 2 */
	SET(open, "workers", 0, RAW("\xd3\0\0\0\0\0\0\0\x02")),
	SET(open, "workers", 0, RAW("\xcf\0\0\0\0\0\0\0\x02")),
	SET(open, "workers", 0, UINT(PROTO_MAX_WORKERS)),
	SET(open, "session", 0, RAW("\xd9\x02s1")), /* str8 */
	SET(open, "session", 0, RAW("\xda\x00\x02s1")), /* str16 */
	SET(open, "session", 0, RAW("\xdb\0\0\0\x02s1")),
	SET(open, "session", 0, STR(ID64)),
	SET(open, "session", 0, STR("0")),
	SET(open, "session", 0, STR("a..b")),
	SET(open, "session", 0, STR("A_b-c.9")),
	SET(open, "workbook", 0, STR("")),
	SET(open, "workbook", 0, STR("\xe2\x9c\x93 ../x \\y")),
	SET(open, "workbook", 0, FILL(PROTO_MAX_TEXT)),
	SET(open, "lease_ms", 0, UINT(0)),
	SET(open, "lease_ms", 0, UINT(UINT32_MAX * 1000ULL)),
	ADD(open, "future", 0, MAP0),
	ADD(open, "future", 0, NILS(100)),
	ADD(open, "future", 0, FILL(20000)),
	ADD(open, "future", 0, BIN("\x00\x01")),
	ADD(open, "", 0, FLT(-0.0)),
	ADD(open, "Session", 0, UINT(1)), /* keys are case-sensitive */
	ADD(open, "future", 0, RAW("\x91\x91\x91\x91\x81\xa1k\xc0")),
	ADD(open, "future", 0, RAW("\xd4\x01\x00")), /* ext */
	SET(close, "deadline_ms", 0, UINT(0)),
	SET(close, "deadline_ms", 0, UINT(UINT32_MAX)),
	SET(close, "deadline_ms", 0, RAW("\xd1\x00\x05")), /* int16 5 */
	DROP(status, "session", 0),
	ADD(ping, "future", 0, STR("x")),
	ADD(clear, "future", 0, STR("x")),
	ADD(clear, "session", 0, STR("s1")), /* not a key of clear */
	SET(renew, "lease_ms", 0, UINT(0)),
	DROP(reply, "version", 0),
	DROP(reply, "backend", 0),
	DROP(reply, "unhealthy", 0),
	SET(reply, "unhealthy", 0, STR("")),
	SET(reply, "unhealthy", 0, FILL(PROTO_MAX_TEXT)),
	SET(reply, "unhealthy", 0, RAW("\xd9\x05stuck")), /* str8 */
	DROP(reply, "sessions", 0),
	DROP(reply, "workers", 0), /* then no counts, and exited etc. are
	                              unknown keys */
	SET(reply, "code", 0, STR("not_found")),
	SET(reply, "code", 0, STR("partial")),
	SET(reply, "code", 0, STR("refused")),
	SET(reply, "code", 0, STR("bad_request")),
	SET(reply, "code", 0, STR("error")),
	SET(reply, "msg", 0, STR("")),
	SET(reply, "msg", 0, FILL(PROTO_MAX_TEXT)),
	SET(reply, "sessions", 0, NILS(0)),
	SET(reply, "elapsed_ms", 0, UINT(UINT64_MAX)),
	SSET("workers", 0, NILS(0)),
	SADD("tags", 0, NILS(3)),
	WDROP("restarts", 0),
	WADD("cpu", 0, FLT(99.5)),
	WSET("state", 0, STR("failed")),
	WSET("pid", 0, UINT(0)),
	WSET("pid", 0, UINT(INT32_MAX)),
	WSET("exit_status", 0, UINT(INT32_MAX)),
	WSET("exit_status", 0, RAW("\xd2\xff\xff\xff\xff")), /* int32 -1 */
	WSET("index", 0, UINT(UINT32_MAX)),
};

Test(decode, accepts_what_other_encoders_may_send)
{
	size_t i;

	for (i = 0; i < sizeof(good_cases) / sizeof(good_cases[0]); i++)
		run_mcase(&good_cases[i]);
}

Test(decode, per_core_open_needs_no_worker_count)
{
	static const char frame[] = "\x94\x01\xa4open\x01\x83"
	                            "\xa7session\xa2s1"
	                            "\xa7profile\xa5"
	                            "excel"
	                            "\xa8per_core\xc3";
	struct proto_msg m;

	decode_ok(frame, sizeof(frame) - 1, PROTO_MAX_REQUEST, &m);
	cr_assert(m.u.open.per_core);
	cr_assert_eq(m.u.open.workers, 0);
	cr_assert_null(m.u.open.workbook);
	cr_assert_eq(m.u.open.lease_ms, 0);
	proto_msg_free(&m);
}

Test(decode, unknown_keys_do_not_hide_known_ones)
{
	/* {"sessionx": "x", "session": "s1", "deadline_ms": 5} */
	static const char frame[] = "\x94\x01\xa5"
	                            "close\x01\x83"
	                            "\xa8sessionx\xa1x"
	                            "\xa7session\xa2s1"
	                            "\xab"
	                            "deadline_ms\x05";
	struct proto_msg m;

	decode_ok(frame, sizeof(frame) - 1, PROTO_MAX_REQUEST, &m);
	cr_assert_str_eq(m.u.close.session, "s1");
	cr_assert_eq(m.u.close.deadline_ms, 5);
	proto_msg_free(&m);
}

/* ---- decoding: envelopes and raw bytes ---------------------------------- */

#define PING_HEAD "\x94\x01\xa4ping"
#define PING PING_HEAD "\x01\x80"

static const struct rcase {
	const char *name;
	const char *bytes;
	size_t len;
	int want;
} raw_cases[] = {
#define RC(name, lit, want)                                                   \
	{                                                                     \
		name, lit, sizeof(lit) - 1, want                              \
	}
	RC("empty frame", "", EPROTO_),
	RC("nil", "\xc0", EPROTO_),
	RC("positive fixint", "\x01", EPROTO_),
	RC("string", "\xa4ping", EPROTO_),
	RC("map instead of array", "\x84\x01\x01\x02\x02\x03\x03\x04\x04",
	    EPROTO_),
	RC("empty array", "\x90", EPROTO_),
	RC("array of 3", "\x93\x01\xa4ping\x01", EPROTO_),
	RC("array of 5", "\x95\x01\xa4ping\x01\x80\xc0", EPROTO_),
	RC("array16 of 3", "\xdc\x00\x03\x01\xa4ping\x01", EPROTO_),
	RC("version 0", "\x94\x00\xa4ping\x01\x80", EPROTO_),
	RC("version 2", "\x94\x02\xa4ping\x01\x80", EPROTO_),
	RC("version 255", "\x94\xcc\xff\xa4ping\x01\x80", EPROTO_),
	RC("version 2^64-1",
	    "\x94\xcf\xff\xff\xff\xff\xff\xff\xff\xff\xa4ping\x01\x80",
	    EPROTO_),
	RC("version -1", "\x94\xff\xa4ping\x01\x80", EPROTO_),
	RC("version \"1\"",
	    "\x94\xa1"
	    "1\xa4ping\x01\x80",
	    EPROTO_),
	RC("version 1.0",
	    "\x94\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00\xa4ping\x01\x80",
	    EPROTO_),
	RC("version nil", "\x94\xc0\xa4ping\x01\x80", EPROTO_),
	RC("version true", "\x94\xc3\xa4ping\x01\x80", EPROTO_),
	RC("version [1]", "\x94\x91\x01\xa4ping\x01\x80", EPROTO_),
	RC("type pong", "\x94\x01\xa4pong\x01\x80", EPROTO_),
	RC("type PING", "\x94\x01\xa4PING\x01\x80", EPROTO_),
	RC("type pin", "\x94\x01\xa3pin\x01\x80", EPROTO_),
	RC("type pingx", "\x94\x01\xa5pingx\x01\x80", EPROTO_),
	RC("type ping NUL", "\x94\x01\xa5ping\x00\x01\x80", EPROTO_),
	RC("type empty", "\x94\x01\xa0\x01\x80", EPROTO_),
	RC("type ?", "\x94\x01\xa1?\x01\x80", EPROTO_),
	RC("type CLEAR",
	    "\x94\x01\xa5"
	    "CLEAR\x01\x80",
	    EPROTO_),
	RC("type clea",
	    "\x94\x01\xa4"
	    "clea\x01\x80",
	    EPROTO_),
	RC("type as bin", "\x94\x01\xc4\x04ping\x01\x80", EPROTO_),
	RC("type as int", "\x94\x01\x05\x01\x80", EPROTO_),
	RC("type nil", "\x94\x01\xc0\x01\x80", EPROTO_),
	RC("type [\"ping\"]", "\x94\x01\x91\xa4ping\x01\x80", EPROTO_),
	RC("op -1", PING_HEAD "\xff\x80", EPROTO_),
	RC("op int64 min",
	    PING_HEAD "\xd3\x80\x00\x00\x00\x00\x00\x00\x00\x80", EPROTO_),
	RC("op \"1\"",
	    PING_HEAD "\xa1"
	              "1\x80",
	    EPROTO_),
	RC("op nil", PING_HEAD "\xc0\x80", EPROTO_),
	RC("op 1.0", PING_HEAD "\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00\x80",
	    EPROTO_),
	RC("op float32", PING_HEAD "\xca\x3f\x80\x00\x00\x80", EPROTO_),
	RC("op true", PING_HEAD "\xc3\x80", EPROTO_),
	RC("op bin", PING_HEAD "\xc4\x01\x01\x80", EPROTO_),
	RC("body []", PING_HEAD "\x01\x90", EPROTO_),
	RC("body nil", PING_HEAD "\x01\xc0", EPROTO_),
	RC("body \"\"", PING_HEAD "\x01\xa0", EPROTO_),
	RC("body 0", PING_HEAD "\x01\x00", EPROTO_),
	RC("body false", PING_HEAD "\x01\xc2", EPROTO_),
	RC("body bin", PING_HEAD "\x01\xc4\x00", EPROTO_),
	RC("body ext", PING_HEAD "\x01\xd4\x01\x00", EPROTO_),
	RC("body with int key", PING_HEAD "\x01\x81\x01\x02", EPROTO_),
	RC("body with duplicate unknown keys",
	    PING_HEAD "\x01\x82\xa1x\x01\xa1x\x02", EPROTO_),
	RC("trailing nil", PING "\xc0", EPROTO_),
	RC("trailing zero byte", PING "\x00", EPROTO_),
	RC("trailing 0xc1", PING "\xc1", EPROTO_),
	RC("two frames", PING PING, EPROTO_),
	RC("reserved 0xc1", "\xc1", EPROTO_),
	RC("reserved 0xc1 as version", "\x94\xc1\xa4ping\x01\x80", EPROTO_),
	RC("reserved 0xc1 as op", PING_HEAD "\xc1\x80", EPROTO_),
	RC("reserved 0xc1 as value", PING_HEAD "\x01\x81\xa1x\xc1", EPROTO_),
	RC("reserved 0xc1 as key", PING_HEAD "\x01\x81\xc1\x01", EPROTO_),
	RC("array32 of 2^32-1", "\xdd\xff\xff\xff\xff", EPROTO_),
	RC("array32 of 2^32-1, then a ping",
	    "\xdd\xff\xff\xff\xff\x01\xa4ping\x01\x80", EPROTO_),
	RC("map32 of 2^32-1", "\xdf\xff\xff\xff\xff", EPROTO_),
	RC("map32 of 2^32-1, then pairs", "\xdf\xff\xff\xff\xff\x01\x01",
	    EPROTO_),
	RC("str32 of 2^32-1",
	    "\xdb\xff\xff\xff\xff"
	    "abc",
	    EPROTO_),
	RC("bin32 of 2^32-1",
	    "\xc6\xff\xff\xff\xff"
	    "abc",
	    EPROTO_),
	RC("ext32 of 2^32-1",
	    "\xc9\xff\xff\xff\xff\x01"
	    "abc",
	    EPROTO_),
	RC("array16 of 65535", "\xdc\xff\xff\x01\x01", EPROTO_),
	RC("map16 of 65535", "\xde\xff\xff\x01\x01", EPROTO_),
	RC("str16 of 65535",
	    "\xda\xff\xff"
	    "ab",
	    EPROTO_),
	RC("envelope array32 of 2^32-1",
	    "\xdd\xff\xff\xff\xff\x01\xa4ping\x01\x80", EPROTO_),
	RC("body map32 of 2^32-1", PING_HEAD "\x01\xdf\xff\xff\xff\xff",
	    EPROTO_),
	RC("body map16 of 65535", PING_HEAD "\x01\xde\xff\xff\xa1x\x01",
	    EPROTO_),
	RC("value array32 of 2^32-1",
	    PING_HEAD "\x01\x81\xa1x\xdd\xff\xff\xff\xff", EPROTO_),
	RC("value map32 of 2^32-1",
	    PING_HEAD "\x01\x81\xa1x\xdf\xff\xff\xff\xff", EPROTO_),
	RC("value bin32 of 2^32-1",
	    PING_HEAD "\x01\x81\xa1x\xc6\xff\xff\xff\xff", EPROTO_),
	RC("session str32 of 2^32-1",
	    "\x94\x01\xa5"
	    "close\x01\x82\xa7session\xdb\xff\xff\xff\xff"
	    "s1",
	    EPROTO_),
	RC("type str8 longer than the frame", "\x94\x01\xd9\x10ping\x01\x80",
	    EPROTO_),
	RC("type fixstr longer than the frame", "\x94\x01\xafping", EPROTO_),
	RC("key str32 of 2^32-1", PING_HEAD "\x01\x81\xdb\xff\xff\xff\xff\x01",
	    EPROTO_),
	/* Encodings other libraries may choose: accepted. */
	RC("version uint8", "\x94\xcc\x01\xa4ping\x01\x80", 0),
	RC("version uint64",
	    "\x94\xcf\x00\x00\x00\x00\x00\x00\x00\x01\xa4ping\x01\x80", 0),
	RC("version int8", "\x94\xd0\x01\xa4ping\x01\x80", 0),
	RC("type str8", "\x94\x01\xd9\x04ping\x01\x80", 0),
	RC("op uint64 0", PING_HEAD "\xcf\x00\x00\x00\x00\x00\x00\x00\x00\x80",
	    0),
	RC("op int64 1", PING_HEAD "\xd3\x00\x00\x00\x00\x00\x00\x00\x01\x80",
	    0),
	RC("envelope array16", "\xdc\x00\x04\x01\xa4ping\x01\x80", 0),
	RC("envelope array32", "\xdd\x00\x00\x00\x04\x01\xa4ping\x01\x80", 0),
	RC("body map16", PING_HEAD "\x01\xde\x00\x00", 0),
	RC("body map32", PING_HEAD "\x01\xdf\x00\x00\x00\x00", 0),
#undef RC
};

Test(decode, rejects_malformed_envelopes_and_accepts_other_encodings)
{
	const struct rcase *c;
	struct proto_msg m;
	size_t i;

	for (i = 0; i < sizeof(raw_cases) / sizeof(raw_cases[0]); i++) {
		c = &raw_cases[i];
		if (c->want != 0) {
			expect_reject(c->bytes, c->len, PROTO_MAX_REQUEST,
			    c->want, c->name);
			continue;
		}
		if (proto_decode(c->bytes, c->len, PROTO_MAX_REQUEST, &m, NULL)
		    != 0) {
			cr_expect_fail("%s: rejected", c->name);
			continue;
		}
		cr_expect_eq(m.type, PROTO_PING, "%s", c->name);
		proto_msg_free(&m);
	}
}

Test(decode, null_buffer_is_rejected)
{
	struct proto_msg m;

	fill(&m, sizeof(m));
	cr_assert_eq(
	    proto_decode(NULL, 0, PROTO_MAX_REQUEST, &m, NULL), HPCXL_EPROTO);
	cr_assert(untouched(&m, sizeof(m)));
}

/* n nested fixarrays around a nil: 91 91 ... 91 c0. */
static unsigned char *
nested_arrays(size_t n, size_t *len)
{
	unsigned char *b = malloc(n + 1);

	cr_assert_not_null(b);
	memset(b, 0x91, n);
	b[n] = 0xc0;
	*len = n + 1;
	return b;
}

Test(decode, rejects_deep_nesting)
{
	static const size_t depths[] = { 17, 33, 100, 10000, 1000000 };
	unsigned char *b;
	size_t i, len;

	for (i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
		b = nested_arrays(depths[i], &len);
		expect_reject(b, len, len, HPCXL_EPROTO, "nested arrays");
		free(b);
	}
}

Test(decode, rejects_deep_nesting_inside_a_valid_body)
{
	/* [1, "ping", 1, {"x": [[[...[nil]...]]]}]: an unknown key. */
	static const char head[] = PING_HEAD "\x01\x81\xa1x";
	size_t depth, len;
	unsigned char *b;

	for (depth = 20; depth <= 20000; depth *= 10) {
		len = sizeof(head) - 1 + depth + 1;
		b = malloc(len);
		cr_assert_not_null(b);
		memcpy(b, head, sizeof(head) - 1);
		memset(b + sizeof(head) - 1, 0x91, depth);
		b[len - 1] = 0xc0;
		expect_reject(b, len, PROTO_MAX_REQUEST, HPCXL_EPROTO,
		    "deep value in body");
		free(b);
	}
}

/* Every proper prefix of a valid frame is a truncated frame. */
static void
expect_every_prefix_rejected(const struct proto_msg *m)
{
	char *buf, name[64];
	size_t len, n;

	encode_ok(m, &buf, &len);
	for (n = 0; n < len; n++) {
		snprintf(name, sizeof(name), "%s: first %zu of %zu bytes",
		    proto_type_name(m->type), n, len);
		expect_reject(buf, n, PROTO_MAX_REPLY, HPCXL_EPROTO, name);
	}
	free(buf);
}

Test(decode, rejects_every_truncation)
{
	struct proto_msg m = fx_reply();
	size_t i;

	expect_every_prefix_rejected(&m);
	m = fx_open();
	expect_every_prefix_rejected(&m);
	for (i = 0; i < NGOLDENS; i++)
		expect_every_prefix_rejected(&goldens[i].m);
}

Test(decode, rejects_trailing_bytes)
{
	static const unsigned char tails[]
	    = { 0x00, 0x01, 0x7f, 0x80, 0x90, 0xa0, 0xc0, 0xc1, 0xc3, 0xff };
	struct proto_msg m = fx_reply();
	char *buf, *longer;
	size_t len, i;

	encode_ok(&m, &buf, &len);
	longer = malloc(2 * len);
	cr_assert_not_null(longer);
	memcpy(longer, buf, len);
	for (i = 0; i < sizeof(tails); i++) {
		longer[len] = (char)tails[i];
		expect_reject(longer, len + 1, PROTO_MAX_REPLY, HPCXL_EPROTO,
		    "one trailing byte");
	}
	memcpy(longer + len, buf, len);
	expect_reject(
	    longer, 2 * len, PROTO_MAX_REPLY, HPCXL_EPROTO, "two frames");
	free(longer);
	free(buf);
}

Test(decode, rejects_frames_longer_than_max_len)
{
	struct mcase big = { "ping with 70000 bytes of unknown key", "ping",
		W_BODY, M_ADD, "padding", FILL(70000), 0 };
	struct proto_msg m = fx_reply(), out;
	msgpack_sbuffer sb;
	char *buf;
	size_t len;

	encode_ok(&m, &buf, &len);
	expect_reject(buf, len, len - 1, HPCXL_ETOOBIG, "max_len - 1");
	expect_reject(buf, len, 0, HPCXL_ETOOBIG, "max_len 0");
	decode_ok(buf, len, len, &out);
	proto_msg_free(&out);
	free(buf);

	/* The same bytes: too big as a request, fine as a reply. */
	build_case(&sb, &big);
	cr_assert_gt(sb.size, PROTO_MAX_REQUEST);
	expect_reject(
	    sb.data, sb.size, PROTO_MAX_REQUEST, HPCXL_ETOOBIG, big.name);
	decode_ok(sb.data, sb.size, PROTO_MAX_REPLY, &out);
	cr_assert_eq(out.type, PROTO_PING);
	proto_msg_free(&out);
	msgpack_sbuffer_destroy(&sb);
}

Test(decode, why_may_be_null)
{
	struct proto_msg m;

	cr_assert_eq(proto_decode("\xc1", 1, 16, &m, NULL), HPCXL_EPROTO);
	cr_assert_eq(proto_decode(PING, sizeof(PING) - 1, 16, &m, NULL), 0);
	cr_assert_eq(m.type, PROTO_PING);
	cr_assert_eq(m.op, 1);
	proto_msg_free(&m);
}

/*
 * A body map as large as the frame allows: n distinct 3-byte keys with nil
 * values, then the keys a reply needs, and optionally a repeat of the first
 * key. Decoding must stay fast (a quadratic duplicate check would take
 * minutes on a 4 MiB reply) and still find the duplicate.
 */
static void
build_wide_reply(msgpack_sbuffer *sb, size_t max_len, bool dup)
{
	msgpack_packer pk;
	size_t n = (max_len - 64) / 5, i;
	unsigned char k[3];

	msgpack_sbuffer_init(sb);
	msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint8(&pk, PROTO_VERSION);
	put_str(&pk, "reply");
	msgpack_pack_uint64(&pk, 1);
	msgpack_pack_map(&pk, n + 3 + dup);
	for (i = 0; i < n; i++) {
		k[0] = (unsigned char)(i >> 16);
		k[1] = (unsigned char)(i >> 8);
		k[2] = (unsigned char)i;
		msgpack_pack_str(&pk, 3);
		msgpack_pack_str_body(&pk, k, 3);
		msgpack_pack_nil(&pk);
	}
	put_str(&pk, "node");
	put_str(&pk, "n1");
	put_str(&pk, "code");
	put_str(&pk, "ok");
	put_str(&pk, "msg");
	put_str(&pk, "");
	if (dup) {
		msgpack_pack_str(&pk, 3);
		msgpack_pack_str_body(&pk, "\0\0\0", 3);
		msgpack_pack_true(&pk);
	}
	cr_assert_leq(sb->size, max_len);
}

Test(decode, wide_maps_decode_in_bounded_time, .timeout = 60.)
{
	static const size_t sizes[] = { PROTO_MAX_REQUEST, PROTO_MAX_REPLY };
	struct proto_msg m;
	msgpack_sbuffer sb;
	size_t i;

	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		build_wide_reply(&sb, sizes[i], false);
		decode_ok(sb.data, sb.size, sizes[i], &m);
		cr_assert_str_eq(m.u.reply.node, "n1");
		proto_msg_free(&m);
		msgpack_sbuffer_destroy(&sb);

		build_wide_reply(&sb, sizes[i], true);
		expect_reject(sb.data, sb.size, sizes[i], HPCXL_EPROTO,
		    "wide map with one duplicate");
		msgpack_sbuffer_destroy(&sb);
	}
}

/* ---- allocation failures ----------------------------------------------- */

/* A reply big enough that the encoder's buffer grows several times. */
static struct proto_msg
big_reply(struct proto_session *s, size_t n)
{
	struct proto_msg m = fx_reply();
	size_t i;

	for (i = 0; i < n; i++)
		s[i] = fx_sessions[i % 3];
	m.u.reply.sessions = s;
	m.u.reply.nsessions = (uint32_t)n;
	return m;
}

Test(alloc, decode_fails_cleanly_at_every_allocation)
{
	static struct proto_session s[64];
	struct proto_msg ms[] = { fx_reply(), fx_open(), big_reply(s, 64) };
	struct proto_msg out;
	const char *why;
	char *buf;
	size_t len, i;
	long n, k, live;
	int rv;

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		encode_ok(&ms[i], &buf, &len);
		alloc_fail_next(-1);
		decode_ok(buf, len, PROTO_MAX_REPLY, &out);
		n = alloc_count;
		proto_msg_free(&out);
		cr_assert_gt(n, 0);
		for (k = 0; k < n; k++) {
			live = alloc_live;
			fill(&out, sizeof(out));
			alloc_fail_next(k);
			rv = proto_decode(
			    buf, len, PROTO_MAX_REPLY, &out, &why);
			alloc_fail_next(-1);
			cr_assert_eq(rv, HPCXL_ENOMEM,
			    "allocation %ld of %ld failed: got %s", k, n,
			    hpcxl_strerror(rv));
			cr_assert(untouched(&out, sizeof(out)));
			cr_assert_eq(alloc_live, live,
			    "allocation %ld failed: %ld blocks leaked", k,
			    alloc_live - live);
		}
		free(buf);
	}
}

Test(alloc, encode_fails_cleanly_at_every_allocation)
{
	static struct proto_session s[2000];
	struct proto_msg ms[] = { fx_open(), big_reply(s, 2000) };
	char *buf;
	size_t len, i;
	long n, k, live;
	int rv;

	for (i = 0; i < sizeof(ms) / sizeof(ms[0]); i++) {
		alloc_fail_next(-1);
		encode_ok(&ms[i], &buf, &len);
		n = alloc_count;
		free(buf);
		/* the big reply makes the buffer grow several times */
		cr_assert(i == 0 ? n >= 1 : n > 3, "%ld allocations", n);
		for (k = 0; k < n; k++) {
			live = alloc_live;
			fill(&buf, sizeof(buf));
			fill(&len, sizeof(len));
			alloc_fail_next(k);
			rv = proto_encode(&ms[i], &buf, &len);
			alloc_fail_next(-1);
			cr_assert_eq(rv, HPCXL_ENOMEM);
			cr_assert(untouched(&buf, sizeof(buf)));
			cr_assert(untouched(&len, sizeof(len)));
			cr_assert_eq(alloc_live, live);
		}
	}
}

Test(alloc, reply_copy_fails_cleanly_at_every_allocation)
{
	struct proto_msg want = fx_reply(), src;
	struct proto_reply dst;
	char *buf;
	size_t len;
	long n, k, live;
	int rv;

	/* A heap-owned source, so that freeing any of it would show. */
	encode_ok(&want, &buf, &len);
	decode_ok(buf, len, PROTO_MAX_REPLY, &src);
	free(buf);

	alloc_fail_next(-1);
	cr_assert_eq(proto_reply_copy(&src.u.reply, &dst), 0);
	n = alloc_count;
	expect_reply_eq(&dst, &want.u.reply);
	{
		struct proto_msg tmp = { .type = PROTO_REPLY, .u.reply = dst };

		proto_msg_free(&tmp);
	}
	for (k = 0; k < n; k++) {
		live = alloc_live;
		fill(&dst, sizeof(dst));
		alloc_fail_next(k);
		rv = proto_reply_copy(&src.u.reply, &dst);
		alloc_fail_next(-1);
		cr_assert_eq(rv, HPCXL_ENOMEM, "allocation %ld of %ld", k, n);
		cr_assert(untouched(&dst, sizeof(dst)));
		cr_assert_eq(alloc_live, live, "allocation %ld: %ld blocks", k,
		    alloc_live - live);
		/* The source must be intact after a failed copy. */
		expect_reply_eq(&src.u.reply, &want.u.reply);
	}
	proto_msg_free(&src);
}

Test(alloc, reply_copy_is_deep)
{
	struct proto_msg want = fx_reply(), src,
	                 copy = { .type = PROTO_REPLY };
	char *buf;
	size_t len;
	uint32_t i;
	long live = alloc_live;

	encode_ok(&want, &buf, &len);
	decode_ok(buf, len, PROTO_MAX_REPLY, &src);
	free(buf);
	cr_assert_eq(proto_reply_copy(&src.u.reply, &copy.u.reply), 0);
	cr_assert_neq(copy.u.reply.node, src.u.reply.node);
	cr_assert_neq(copy.u.reply.msg, src.u.reply.msg);
	cr_assert_neq(copy.u.reply.unhealthy, src.u.reply.unhealthy);
	cr_assert_neq(copy.u.reply.sessions, src.u.reply.sessions);
	for (i = 0; i < src.u.reply.nsessions; i++) {
		cr_assert_neq(copy.u.reply.sessions[i].session,
		    src.u.reply.sessions[i].session);
		if (src.u.reply.sessions[i].nworkers > 0)
			cr_assert_neq(copy.u.reply.sessions[i].workers,
			    src.u.reply.sessions[i].workers);
	}
	proto_msg_free(&src); /* the copy outlives its source */
	expect_reply_eq(&copy.u.reply, &want.u.reply);
	proto_msg_free(&copy);
	cr_assert_eq(alloc_live, live);

	/* Absent strings stay absent. */
	want.u.reply.version = NULL;
	want.u.reply.backend = NULL;
	want.u.reply.unhealthy = NULL;
	want.u.reply.has_sessions = false;
	want.u.reply.nsessions = 0;
	want.u.reply.sessions = NULL;
	copy.type = PROTO_REPLY;
	cr_assert_eq(proto_reply_copy(&want.u.reply, &copy.u.reply), 0);
	expect_reply_eq(&copy.u.reply, &want.u.reply);
	proto_msg_free(&copy);
	cr_assert_eq(alloc_live, live);
}

Test(alloc, msg_free_zeroes_and_accepts_empty_messages)
{
	struct proto_msg m, zero;
	char *buf;
	size_t len;
	long live = alloc_live;

	memset(&zero, 0, sizeof(zero));
	proto_msg_free(NULL);
	m = zero;
	proto_msg_free(&m);
	cr_assert_arr_eq(&m, &zero, sizeof(m));

	m = fx_open();
	encode_ok(&m, &buf, &len);
	decode_ok(buf, len, PROTO_MAX_REQUEST, &m);
	free(buf);
	proto_msg_free(&m);
	cr_assert_arr_eq(&m, &zero, sizeof(m));
	proto_msg_free(&m); /* twice is harmless once zeroed */
	cr_assert_eq(alloc_live, live);
}

/* ---- msgcheck_walk ----------------------------------------------------- */

static const struct {
	const char *bytes;
	size_t len;
} walk_ok[] = {
#define W(lit)                                                                \
	{                                                                     \
		lit, sizeof(lit) - 1                                          \
	}
	W("\xc0"),
	W("\xc2"),
	W("\xc3"),
	W("\x00"),
	W("\x7f"),
	W("\xe0"),
	W("\xff"),
	W("\xcc\x01"),
	W("\xcd\x01\x02"),
	W("\xce\x01\x02\x03\x04"),
	W("\xcf\x01\x02\x03\x04\x05\x06\x07\x08"),
	W("\xd0\x80"),
	W("\xd1\x80\x00"),
	W("\xd2\x80\x00\x00\x00"),
	W("\xd3\x80\x00\x00\x00\x00\x00\x00\x00"),
	W("\xca\x3f\x80\x00\x00"),
	W("\xcb\x3f\xf0\x00\x00\x00\x00\x00\x00"),
	W("\xa0"),
	W("\xa3"
	  "abc"),
	W("\xbf"
	  "0123456789012345678901234567890"),
	W("\xd9\x03"
	  "abc"),
	W("\xda\x00\x03"
	  "abc"),
	W("\xdb\x00\x00\x00\x03"
	  "abc"),
	W("\xc4\x00"),
	W("\xc4\x02\x01\x02"),
	W("\xc5\x00\x02\x01\x02"),
	W("\xc6\x00\x00\x00\x02\x01\x02"),
	W("\xd4\x01\x00"),
	W("\xd5\x01\x00\x00"),
	W("\xd6\xff\x00\x00\x00\x00"), /* timestamp 32 */
	W("\xd7\x01\x00\x00\x00\x00\x00\x00\x00\x00"),
	W("\xd8\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	  "\x00\x00\x00"),
	W("\xc7\x00\x01"),
	W("\xc7\x02\x01"
	  "ab"),
	W("\xc8\x00\x02\x01"
	  "ab"),
	W("\xc9\x00\x00\x00\x02\x01"
	  "ab"),
	W("\x90"),
	W("\x80"),
	W("\x92\x01\x02"),
	W("\x81\xa1k\xc0"),
	W("\x81\x01\x02"), /* non-string keys are the decoder's business */
	W("\xdc\x00\x02\x01\x02"),
	W("\xdd\x00\x00\x00\x02\x01\x02"),
	W("\xde\x00\x01\x01\x02"),
	W("\xdf\x00\x00\x00\x01\x01\x02"),
	W("\x91\x91\x91\x91\x91\x91\x91\x91\xc0"), /* 8 levels */
	W("\x81\xa1k\x81\xa1k\x81\xa1k\x90"),
	W(PING),
#undef W
};

static const struct {
	const char *name;
	const char *bytes;
	size_t len;
} walk_bad[] = {
#define W(name, lit)                                                          \
	{                                                                     \
		name, lit, sizeof(lit) - 1                                    \
	}
	W("empty", ""),
	W("0xc1", "\xc1"),
	W("0xc1 in an array", "\x92\x01\xc1"),
	W("uint8 cut", "\xcc"),
	W("uint16 cut", "\xcd\x01"),
	W("uint32 cut", "\xce\x01\x02\x03"),
	W("uint64 cut", "\xcf\x01\x02\x03\x04\x05\x06\x07"),
	W("int64 cut", "\xd3\x01"),
	W("float32 cut", "\xca\x00\x00"),
	W("float64 cut", "\xcb\x00"),
	W("fixstr cut",
	    "\xa3"
	    "ab"),
	W("str8 no length", "\xd9"),
	W("str8 cut",
	    "\xd9\x03"
	    "ab"),
	W("str16 cut",
	    "\xda\x00\x03"
	    "ab"),
	W("str32 cut",
	    "\xdb\x00\x00\x00\x03"
	    "ab"),
	W("str32 huge",
	    "\xdb\xff\xff\xff\xff"
	    "abc"),
	W("bin8 cut", "\xc4\x02\x01"),
	W("bin32 huge",
	    "\xc6\xff\xff\xff\xff"
	    "abc"),
	W("fixext1 cut", "\xd4\x01"),
	W("fixext16 cut", "\xd8\x01\x00"),
	W("ext8 without type", "\xc7\x00"),
	W("ext8 cut",
	    "\xc7\x02\x01"
	    "a"),
	W("ext32 huge", "\xc9\xff\xff\xff\xff\x01"),
	W("fixarray cut", "\x92\x01"),
	W("fixmap cut", "\x81\xa1k"),
	W("array16 cut", "\xdc\x00\x03\x01\x02"),
	W("array16 huge", "\xdc\xff\xff"),
	W("array32 huge", "\xdd\xff\xff\xff\xff"),
	W("array32 huge, some content", "\xdd\xff\xff\xff\xff\x01\x02\x03"),
	W("map16 huge", "\xde\xff\xff\x01\x02"),
	W("map32 huge", "\xdf\xff\xff\xff\xff"),
	W("map32 of half the bytes", "\xdf\x00\x00\x00\x02\x01\x02\x03"),
	W("array32 length cut", "\xdd\x00\x00"),
	W("trailing byte", "\xc0\xc0"),
	W("two arrays", "\x90\x90"),
	W("33 levels",
	    "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
	    "\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91\x91"
	    "\x91\x91\x91\xc0"),
#undef W
};

Test(msgcheck, accepts_every_well_formed_value)
{
	size_t i, len;
	unsigned char *b;

	for (i = 0; i < sizeof(walk_ok) / sizeof(walk_ok[0]); i++) {
		b = heap_copy(walk_ok[i].bytes, walk_ok[i].len);
		cr_expect_eq(msgcheck_walk(b, walk_ok[i].len), 0,
		    "case %zu (first byte %#x) rejected", i, b[0]);
		free(b);
	}
	for (i = 0; i < NGOLDENS; i++) {
		b = hex_bytes(goldens[i].hex, &len);
		cr_expect_eq(msgcheck_walk(b, len), 0, "%s", goldens[i].name);
		free(b);
	}
}

Test(msgcheck, rejects_malformed_values)
{
	size_t i, len;
	unsigned char *b;

	cr_assert_eq(msgcheck_walk(NULL, 0), HPCXL_EPROTO);
	for (i = 0; i < sizeof(walk_bad) / sizeof(walk_bad[0]); i++) {
		b = heap_copy(walk_bad[i].bytes, walk_bad[i].len);
		cr_expect_eq(msgcheck_walk(b, walk_bad[i].len), HPCXL_EPROTO,
		    "%s: accepted", walk_bad[i].name);
		free(b);
	}
	b = nested_arrays(10000, &len);
	cr_assert_eq(msgcheck_walk(b, len), HPCXL_EPROTO);
	free(b);
}

Test(msgcheck, rejects_every_truncation_of_a_valid_frame)
{
	struct proto_msg m = fx_reply();
	char *buf;
	size_t len, n;

	encode_ok(&m, &buf, &len);
	cr_assert_eq(msgcheck_walk(buf, len), 0);
	for (n = 0; n < len; n++)
		cr_assert_eq(
		    msgcheck_walk(buf, n), HPCXL_EPROTO, "%zu bytes", n);
	free(buf);
}

/* ---- util and err ------------------------------------------------------ */

Test(util, valid_id)
{
	static const char *const good[] = { "a", "Z", "0", "_", "s1", "demo-1",
		"a.b", "a..b", "a.", "a-", "node07.cluster", "A_B-c.9", ID64 };
	static const char *const bad[] = { "", ".", "..", ".a", "-", "-a",
		"a/b", "/", "a\\b", "a b", " a", "a ", "a\tb", "a\nb", "a:b",
		"a*b", "a@b", "a+b", "\xc3\xa9", "a\x7f", ID65 };
	size_t i;

	cr_assert_not(util_valid_id(NULL));
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect(util_valid_id(good[i]), "\"%s\" rejected", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_not(
		    util_valid_id(bad[i]), "\"%s\" accepted", bad[i]);
}

Test(util, valid_identity)
{
	static const char *const good[]
	    = { "a", "anonymous", "uid:1234", "alice@example.com",
		      "Alice Smith", "o'brien", "x~", "a  b", "root" };
	static const char *const bad[] = { "", " ", " a", "a ", "a,b", ",",
		"a\tb", "a\nb", "a\x7f", "\xc3\xa9t\xc3\xa9", "a\x01" };
	char long_one[HPCXL_IDENTITY_MAX + 2];
	size_t i;

	cr_assert_not(util_valid_identity(NULL));
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		cr_expect(
		    util_valid_identity(good[i]), "\"%s\" rejected", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_not(
		    util_valid_identity(bad[i]), "\"%s\" accepted", bad[i]);
	memset(long_one, 'x', sizeof(long_one) - 1);
	long_one[HPCXL_IDENTITY_MAX] = '\0';
	cr_expect(util_valid_identity(long_one), "128 bytes rejected");
	long_one[HPCXL_IDENTITY_MAX] = 'x';
	long_one[HPCXL_IDENTITY_MAX + 1] = '\0';
	cr_expect_not(util_valid_identity(long_one), "129 bytes accepted");
}

Test(util, parse_i64_accepts_whole_numbers_in_range)
{
	static const struct {
		const char *s;
		int64_t min, max, want;
	} ok[] = {
		{ "0", 0, 10, 0 },
		{ "10", 0, 10, 10 },
		{ "-5", -10, 10, -5 },
		{ "007", 0, 10, 7 },
		{ "9223372036854775807", INT64_MIN, INT64_MAX, INT64_MAX },
		{ "-9223372036854775808", INT64_MIN, INT64_MAX, INT64_MIN },
	};
	int64_t v;
	size_t i;

	for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = 12345;
		cr_expect_eq(util_parse_i64(ok[i].s, ok[i].min, ok[i].max, &v),
		    0, "\"%s\" rejected", ok[i].s);
		cr_expect_eq(
		    v, ok[i].want, "\"%s\" gave %lld", ok[i].s, (long long)v);
	}
}

Test(util, parse_i64_rejects_junk_and_range_errors)
{
	static const struct {
		const char *s;
		int64_t min, max;
	} bad[] = {
		{ NULL, 0, 10 },
		{ "", 0, 10 },
		{ "-", 0, 10 },
		{ "abc", 0, 10 },
		{ "1a", 0, 10 },
		{ "1.5", 0, 10 },
		{ "1e3", 0, 10000 },
		{ "0x10", 0, 100 },
		{ "5 ", 0, 10 },
		{ "11", 0, 10 },
		{ "-1", 0, 10 },
		{ "9223372036854775808", INT64_MIN, INT64_MAX },
		{ "-9223372036854775809", INT64_MIN, INT64_MAX },
		{ "99999999999999999999", INT64_MIN, INT64_MAX },
	};
	int64_t v = 12345;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(
		    util_parse_i64(bad[i].s, bad[i].min, bad[i].max, &v),
		    HPCXL_EINVAL, "\"%s\" accepted",
		    bad[i].s != NULL ? bad[i].s : "(null)");
		cr_expect_eq(v, 12345, "\"%s\": out written",
		    bad[i].s != NULL ? bad[i].s : "(null)");
	}
}

Test(err, every_code_has_its_own_text)
{
	static const struct {
		int code;
		const char *name;
	} codes[] = {
#define CODE(name, value, text) { value, #name },
		HPCXL_ERRORS(CODE)
#undef CODE
	};
	size_t i, j, n = sizeof(codes) / sizeof(codes[0]);
	const char *t;

	cr_assert_gt(n, 0);
	for (i = 0; i < n; i++) {
		cr_assert_eq(codes[i].code, (int)i, "codes are 0, 1, 2, ...");
		t = hpcxl_strerror(codes[i].code);
		cr_assert_not_null(t);
		cr_assert_gt(strlen(t), 0, "%s has no text", codes[i].name);
		cr_assert_str_neq(t, "unknown error", "%s", codes[i].name);
		for (j = 0; j < i; j++)
			cr_assert_str_neq(t, hpcxl_strerror(codes[j].code),
			    "%s and %s share a text", codes[i].name,
			    codes[j].name);
	}
	cr_assert_str_eq(hpcxl_strerror(HPCXL_OK), "success");
}

Test(err, unknown_codes_give_unknown_error)
{
	static const int codes[] = {
#define CODE(name, value, text) value,
		HPCXL_ERRORS(CODE)
#undef CODE
	};
	const int next = codes[sizeof(codes) / sizeof(codes[0]) - 1] + 1;
	const int unknown[]
	    = { -1, -3, next, next + 1, 9999, INT_MIN, INT_MAX };
	size_t i;

	for (i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
		cr_assert_str_eq(hpcxl_strerror(unknown[i]), "unknown error",
		    "code %d", unknown[i]);
}
