/*
 * msgpack codec for the v1 protocol. Encoding packs straight into an
 * sbuffer; decoding unpacks into a msgpack zone, validates, and deep-copies
 * what it keeps into malloc'd memory so that the zone dies here.
 */
#include "hpcxl/common/proto.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static const char *const type_names[] = {
	[PROTO_OPEN] = "open",
	[PROTO_CLOSE] = "close",
	[PROTO_STATUS] = "status",
	[PROTO_RENEW] = "renew",
	[PROTO_PING] = "ping",
	[PROTO_REPLY] = "reply",
	[PROTO_CLEAR] = "clear",
};

static const char *const code_names[] = {
	[PROTO_CODE_OK] = "ok",
	[PROTO_CODE_NOT_FOUND] = "not_found",
	[PROTO_CODE_PARTIAL] = "partial",
	[PROTO_CODE_REFUSED] = "refused",
	[PROTO_CODE_BAD_REQUEST] = "bad_request",
	[PROTO_CODE_ERROR] = "error",
};

static const char *const wstate_names[] = {
	[PROTO_W_RUNNING] = "running",
	[PROTO_W_STOPPING] = "stopping",
	[PROTO_W_EXITED] = "exited",
	[PROTO_W_KILLED] = "killed",
	[PROTO_W_FAILED] = "failed",
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Bounds of the duration fields, shared by the encoder and the decoder. */
#define LEASE_MAX_MS (UINT32_MAX * 1000ULL)
#define DEADLINE_MAX_MS UINT32_MAX

static const char *
name_of(const char *const *names, size_t n, unsigned v)
{
	return v < n && names[v] != NULL ? names[v] : "?";
}

const char *
proto_type_name(enum proto_type t)
{
	return name_of(type_names, COUNT_OF(type_names), t);
}

const char *
proto_code_name(enum proto_code c)
{
	return name_of(code_names, COUNT_OF(code_names), c);
}

const char *
proto_wstate_name(enum proto_wstate s)
{
	return name_of(wstate_names, COUNT_OF(wstate_names), s);
}

/* ---- encoding ---------------------------------------------------------- */

static void
pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);

	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

static void
pack_key_str(msgpack_packer *pk, const char *key, const char *val)
{
	pack_str(pk, key);
	pack_str(pk, val);
}

static void
pack_key_u64(msgpack_packer *pk, const char *key, uint64_t val)
{
	pack_str(pk, key);
	msgpack_pack_uint64(pk, val);
}

static void
pack_key_i64(msgpack_packer *pk, const char *key, int64_t val)
{
	pack_str(pk, key);
	msgpack_pack_int64(pk, val);
}

static void
pack_open(msgpack_packer *pk, const struct proto_open *o)
{
	msgpack_pack_map(pk, 5 + (o->workbook != NULL));
	pack_key_str(pk, "session", o->session);
	pack_key_str(pk, "profile", o->profile);
	pack_key_u64(pk, "workers", o->workers);
	pack_str(pk, "per_core");
	if (o->per_core)
		msgpack_pack_true(pk);
	else
		msgpack_pack_false(pk);
	pack_key_u64(pk, "lease_ms", o->lease_ms);
	if (o->workbook != NULL)
		pack_key_str(pk, "workbook", o->workbook);
}

static void
pack_worker(msgpack_packer *pk, const struct proto_worker *w)
{
	msgpack_pack_map(pk, 5);
	pack_key_u64(pk, "index", w->index);
	pack_key_i64(pk, "pid", w->pid);
	pack_key_str(pk, "state", proto_wstate_name(w->state));
	pack_key_i64(pk, "exit_status", w->exit_status);
	pack_key_u64(pk, "restarts", w->restarts);
}

static void
pack_session(msgpack_packer *pk, const struct proto_session *s)
{
	uint32_t i;

	msgpack_pack_map(pk, 3 + (s->owner != NULL));
	pack_key_str(pk, "session", s->session);
	pack_key_str(pk, "profile", s->profile);
	if (s->owner != NULL)
		pack_key_str(pk, "owner", s->owner);
	pack_str(pk, "workers");
	msgpack_pack_array(pk, s->nworkers);
	for (i = 0; i < s->nworkers; i++)
		pack_worker(pk, &s->workers[i]);
}

static void
pack_counts(msgpack_packer *pk, const struct proto_counts *c)
{
	pack_key_u64(pk, "workers", c->workers);
	pack_key_u64(pk, "exited", c->exited);
	pack_key_u64(pk, "killed", c->killed);
	pack_key_u64(pk, "remaining", c->remaining);
	pack_key_u64(pk, "elapsed_ms", c->elapsed_ms);
}

static void
pack_reply(msgpack_packer *pk, const struct proto_reply *r)
{
	uint32_t i;
	size_t n = 3 + (r->version != NULL) + (r->backend != NULL)
	    + (r->unhealthy != NULL) + (r->has_counts ? 5 : 0)
	    + (r->has_sessions ? 1 : 0);

	msgpack_pack_map(pk, n);
	pack_key_str(pk, "node", r->node);
	pack_key_str(pk, "code", proto_code_name(r->code));
	pack_key_str(pk, "msg", r->msg != NULL ? r->msg : "");
	if (r->version != NULL)
		pack_key_str(pk, "version", r->version);
	if (r->backend != NULL)
		pack_key_str(pk, "backend", r->backend);
	if (r->unhealthy != NULL)
		pack_key_str(pk, "unhealthy", r->unhealthy);
	if (r->has_counts)
		pack_counts(pk, &r->counts);
	if (!r->has_sessions)
		return;
	pack_str(pk, "sessions");
	msgpack_pack_array(pk, r->nsessions);
	for (i = 0; i < r->nsessions; i++)
		pack_session(pk, &r->sessions[i]);
}

/* Optional free text: absent, or at most PROTO_MAX_TEXT bytes. */
static bool
text_valid(const char *s)
{
	return s == NULL || strnlen(s, PROTO_MAX_TEXT + 1) <= PROTO_MAX_TEXT;
}

static bool
session_valid(const struct proto_session *s)
{
	uint32_t i;

	if (!util_valid_id(s->session) || !util_valid_id(s->profile)
	    || !text_valid(s->owner) || s->nworkers > PROTO_MAX_WORKERS
	    || (s->nworkers > 0 && s->workers == NULL))
		return false;
	for (i = 0; i < s->nworkers; i++) {
		if ((unsigned)s->workers[i].state >= COUNT_OF(wstate_names)
		    || s->workers[i].pid < 0 || s->workers[i].exit_status < -1)
			return false;
	}
	return true;
}

static bool
reply_valid(const struct proto_reply *r)
{
	uint32_t i;

	if (!util_valid_id(r->node)
	    || (unsigned)r->code >= COUNT_OF(code_names) || !text_valid(r->msg)
	    || !text_valid(r->version) || !text_valid(r->backend)
	    || !text_valid(r->unhealthy))
		return false;
	if (!r->has_sessions)
		return true;
	if (r->nsessions > PROTO_MAX_SESSIONS
	    || (r->nsessions > 0 && r->sessions == NULL))
		return false;
	for (i = 0; i < r->nsessions; i++) {
		if (!session_valid(&r->sessions[i]))
			return false;
	}
	return true;
}

static bool
open_valid(const struct proto_open *o)
{
	return util_valid_id(o->session) && util_valid_id(o->profile)
	    && o->workers <= PROTO_MAX_WORKERS
	    && (o->per_core || o->workers > 0) && text_valid(o->workbook)
	    && o->lease_ms <= LEASE_MAX_MS;
}

/* The encoder refuses what the decoder would refuse, so peers agree. */
static bool
msg_valid(const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_OPEN:
		return open_valid(&m->u.open);
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
		return reply_valid(&m->u.reply);
	}
	return false;
}

static void
pack_body(msgpack_packer *pk, const struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_OPEN:
		pack_open(pk, &m->u.open);
		break;
	case PROTO_CLOSE:
		msgpack_pack_map(pk, 2);
		pack_key_str(pk, "session", m->u.close.session);
		pack_key_u64(pk, "deadline_ms", m->u.close.deadline_ms);
		break;
	case PROTO_STATUS:
		msgpack_pack_map(pk, m->u.status.session != NULL);
		if (m->u.status.session != NULL)
			pack_key_str(pk, "session", m->u.status.session);
		break;
	case PROTO_RENEW:
		msgpack_pack_map(pk, 2);
		pack_key_str(pk, "session", m->u.renew.session);
		pack_key_u64(pk, "lease_ms", m->u.renew.lease_ms);
		break;
	case PROTO_PING:
	case PROTO_CLEAR:
		msgpack_pack_map(pk, 0);
		break;
	case PROTO_REPLY:
		pack_reply(pk, &m->u.reply);
		break;
	}
}

/* An sbuffer that remembers a failed write, so packing needs no checks. */
struct out_buf {
	msgpack_sbuffer sb;
	bool failed;
};

static int
out_buf_write(void *data, const char *bytes, size_t len)
{
	struct out_buf *ob = data;

	if (!ob->failed && msgpack_sbuffer_write(&ob->sb, bytes, len) != 0)
		ob->failed = true;
	return ob->failed ? -1 : 0;
}

int
proto_encode(const struct proto_msg *m, char **buf, size_t *len)
{
	struct out_buf ob = { .failed = false };
	msgpack_packer pk;

	if (m == NULL || !msg_valid(m))
		return HPCXL_EINVAL;
	msgpack_sbuffer_init(&ob.sb);
	msgpack_packer_init(&pk, &ob, out_buf_write);
	msgpack_pack_array(&pk, 4);
	msgpack_pack_uint32(&pk, PROTO_VERSION);
	pack_str(&pk, proto_type_name(m->type));
	msgpack_pack_uint64(&pk, m->op);
	pack_body(&pk, m);
	if (ob.failed || ob.sb.data == NULL) {
		msgpack_sbuffer_destroy(&ob.sb);
		return HPCXL_ENOMEM;
	}
	*buf = ob.sb.data;
	*len = ob.sb.size;
	return 0;
}

/* ---- decoding ---------------------------------------------------------- */

/*
 * Decoding state: the body map, and the first error found. Every getter
 * is a no-op once an error is set, so a decoder reads as a list of fields.
 */
struct dec {
	const msgpack_object_map *map;
	const char *why;
	int err;
};

static void
dec_fail(struct dec *d, int err, const char *why)
{
	if (d->err == 0) {
		d->err = err;
		d->why = why;
	}
}

static bool
str_is(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);

	return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n
	    && memcmp(o->via.str.ptr, s, n) == 0;
}

static const msgpack_object *
map_find(const msgpack_object_map *m, const char *key)
{
	uint32_t i;

	for (i = 0; i < m->size; i++) {
		if (str_is(&m->ptr[i].key, key))
			return &m->ptr[i].val;
	}
	return NULL;
}

static int
kv_key_cmp(const void *a, const void *b)
{
	const msgpack_object_str *x
	    = &((const msgpack_object_kv *)a)->key.via.str;
	const msgpack_object_str *y
	    = &((const msgpack_object_kv *)b)->key.via.str;

	if (x->size != y->size)
		return x->size < y->size ? -1 : 1;
	return x->size == 0 ? 0 : memcmp(x->ptr, y->ptr, x->size);
}

/*
 * Keys must be strings and unique: two "session" keys are an attack. The
 * pairs are sorted in place (they live in the decoder's zone and their order
 * means nothing) so the check costs n log n: comparing every pair of the
 * ~800k keys a 4 MiB reply can hold would take the controller minutes.
 */
static bool
map_keys_ok(msgpack_object_map *m)
{
	uint32_t i;

	for (i = 0; i < m->size; i++) {
		if (m->ptr[i].key.type != MSGPACK_OBJECT_STR)
			return false;
	}
	if (m->size > 1)
		qsort(m->ptr, m->size, sizeof(*m->ptr), kv_key_cmp);
	for (i = 1; i < m->size; i++) {
		if (kv_key_cmp(&m->ptr[i - 1], &m->ptr[i]) == 0)
			return false;
	}
	return true;
}

static char *
dup_str(struct dec *d, const msgpack_object *o, size_t max)
{
	char *s;

	if (o->type != MSGPACK_OBJECT_STR) {
		dec_fail(d, HPCXL_EPROTO, "field is not a string");
		return NULL;
	}
	if (o->via.str.size > max) {
		dec_fail(d, HPCXL_ETOOBIG, "string too long");
		return NULL;
	}
	if (memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL) {
		dec_fail(d, HPCXL_EPROTO, "string holds a NUL byte");
		return NULL;
	}
	if ((s = malloc(o->via.str.size + 1)) == NULL) {
		dec_fail(d, HPCXL_ENOMEM, "out of memory");
		return NULL;
	}
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}

static const msgpack_object *
get_field(struct dec *d, const char *key, bool required)
{
	const msgpack_object *o;

	if (d->err != 0)
		return NULL;
	o = map_find(d->map, key);
	if (o == NULL && required)
		dec_fail(d, HPCXL_EPROTO, "required field missing");
	return o;
}

static char *
get_text(struct dec *d, const char *key, bool required)
{
	const msgpack_object *o = get_field(d, key, required);

	return o != NULL ? dup_str(d, o, PROTO_MAX_TEXT) : NULL;
}

static char *
get_id(struct dec *d, const char *key, bool required)
{
	const msgpack_object *o = get_field(d, key, required);
	char *s;

	if (o == NULL || (s = dup_str(d, o, HPCXL_ID_MAX)) == NULL)
		return NULL;
	if (!util_valid_id(s)) {
		dec_fail(d, HPCXL_EPROTO, "invalid name (use [A-Za-z0-9._-])");
		free(s);
		return NULL;
	}
	return s;
}

static uint64_t
get_uint(struct dec *d, const char *key, bool required, uint64_t max)
{
	const msgpack_object *o = get_field(d, key, required);

	if (o == NULL)
		return 0;
	if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		dec_fail(d, HPCXL_EPROTO, "field is not an unsigned integer");
		return 0;
	}
	if (o->via.u64 > max) {
		dec_fail(d, HPCXL_ETOOBIG, "integer out of range");
		return 0;
	}
	return o->via.u64;
}

static int64_t
get_int(struct dec *d, const char *key, int64_t min, int64_t max)
{
	const msgpack_object *o = get_field(d, key, true);
	int64_t v;

	if (o == NULL)
		return 0;
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER
	    && o->via.u64 <= INT64_MAX)
		v = (int64_t)o->via.u64;
	else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
		v = o->via.i64;
	else {
		dec_fail(d, HPCXL_EPROTO, "field is not an integer");
		return 0;
	}
	if (v < min || v > max) {
		dec_fail(d, HPCXL_ETOOBIG, "integer out of range");
		return 0;
	}
	return v;
}

static bool
get_bool(struct dec *d, const char *key)
{
	const msgpack_object *o = get_field(d, key, false);

	if (o == NULL)
		return false;
	if (o->type != MSGPACK_OBJECT_BOOLEAN) {
		dec_fail(d, HPCXL_EPROTO, "field is not a boolean");
		return false;
	}
	return o->via.boolean;
}

static unsigned
get_enum(struct dec *d, const char *key, const char *const *names, size_t n)
{
	const msgpack_object *o = get_field(d, key, true);
	size_t i;

	if (o == NULL)
		return 0;
	for (i = 0; i < n; i++) {
		if (names[i] != NULL && str_is(o, names[i]))
			return (unsigned)i;
	}
	dec_fail(d, HPCXL_EPROTO, "unknown enumeration value");
	return 0;
}

static const msgpack_object_array *
get_array(struct dec *d, const char *key, uint32_t max)
{
	const msgpack_object *o = get_field(d, key, true);

	if (o == NULL)
		return NULL;
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		dec_fail(d, HPCXL_EPROTO, "field is not an array");
		return NULL;
	}
	if (o->via.array.size > max) {
		dec_fail(d, HPCXL_ETOOBIG, "array too long");
		return NULL;
	}
	return &o->via.array;
}

/* Enters a nested map: returns the outer map to restore with dec_leave. */
static const msgpack_object_map *
dec_enter(struct dec *d, const msgpack_object *o)
{
	const msgpack_object_map *outer = d->map;

	if (d->err != 0)
		return outer;
	/* Every object is in the decoder's own zone: sorting it is safe. */
	if (o->type != MSGPACK_OBJECT_MAP
	    || !map_keys_ok((msgpack_object_map *)&o->via.map)) {
		dec_fail(d, HPCXL_EPROTO, "expected a map with string keys");
		return outer;
	}
	d->map = &o->via.map;
	return outer;
}

static void
decode_open(struct dec *d, struct proto_open *o)
{
	o->session = get_id(d, "session", true);
	o->profile = get_id(d, "profile", true);
	o->per_core = get_bool(d, "per_core");
	o->workers = (uint32_t)get_uint(
	    d, "workers", !o->per_core, PROTO_MAX_WORKERS);
	o->workbook = get_text(d, "workbook", false);
	o->lease_ms = get_uint(d, "lease_ms", false, LEASE_MAX_MS);
	if (d->err == 0 && !o->per_core && o->workers == 0)
		dec_fail(d, HPCXL_EPROTO, "workers must be at least 1");
}

static void
decode_worker(struct dec *d, const msgpack_object *o, struct proto_worker *w)
{
	const msgpack_object_map *outer = dec_enter(d, o);

	w->index = (uint32_t)get_uint(d, "index", true, UINT32_MAX);
	w->pid = (int32_t)get_int(d, "pid", 0, INT32_MAX);
	w->state = get_enum(d, "state", wstate_names, COUNT_OF(wstate_names));
	w->exit_status = (int32_t)get_int(d, "exit_status", -1, INT32_MAX);
	w->restarts = (uint32_t)get_uint(d, "restarts", false, UINT32_MAX);
	d->map = outer;
}

static void
decode_session(struct dec *d, const msgpack_object *o, struct proto_session *s)
{
	const msgpack_object_map *outer = dec_enter(d, o);
	const msgpack_object_array *a;
	uint32_t i;

	s->session = get_id(d, "session", true);
	s->profile = get_id(d, "profile", true);
	s->owner = get_text(d, "owner", false);
	a = get_array(d, "workers", PROTO_MAX_WORKERS);
	if (a != NULL && a->size > 0) {
		s->workers = calloc(a->size, sizeof(*s->workers));
		if (s->workers == NULL)
			dec_fail(d, HPCXL_ENOMEM, "out of memory");
		for (i = 0; d->err == 0 && i < a->size; i++) {
			decode_worker(d, &a->ptr[i], &s->workers[i]);
			s->nworkers = i + 1;
		}
	}
	d->map = outer;
}

static void
decode_sessions(struct dec *d, struct proto_reply *r)
{
	const msgpack_object_array *a;
	uint32_t i;

	if (get_field(d, "sessions", false) == NULL)
		return;
	r->has_sessions = true;
	if ((a = get_array(d, "sessions", PROTO_MAX_SESSIONS)) == NULL
	    || a->size == 0)
		return;
	if ((r->sessions = calloc(a->size, sizeof(*r->sessions))) == NULL) {
		dec_fail(d, HPCXL_ENOMEM, "out of memory");
		return;
	}
	for (i = 0; d->err == 0 && i < a->size; i++) {
		r->nsessions = i + 1;
		decode_session(d, &a->ptr[i], &r->sessions[i]);
	}
}

static void
decode_reply(struct dec *d, struct proto_reply *r)
{
	r->node = get_id(d, "node", true);
	r->code = get_enum(d, "code", code_names, COUNT_OF(code_names));
	r->msg = get_text(d, "msg", true);
	r->version = get_text(d, "version", false);
	r->backend = get_text(d, "backend", false);
	r->unhealthy = get_text(d, "unhealthy", false);
	r->has_counts = get_field(d, "workers", false) != NULL;
	if (r->has_counts) {
		r->counts.workers
		    = (uint32_t)get_uint(d, "workers", true, UINT32_MAX);
		r->counts.exited
		    = (uint32_t)get_uint(d, "exited", true, UINT32_MAX);
		r->counts.killed
		    = (uint32_t)get_uint(d, "killed", true, UINT32_MAX);
		r->counts.remaining
		    = (uint32_t)get_uint(d, "remaining", true, UINT32_MAX);
		r->counts.elapsed_ms
		    = get_uint(d, "elapsed_ms", true, UINT64_MAX);
	}
	decode_sessions(d, r);
}

static void
decode_body(struct dec *d, struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_OPEN:
		decode_open(d, &m->u.open);
		break;
	case PROTO_CLOSE:
		m->u.close.session = get_id(d, "session", true);
		m->u.close.deadline_ms
		    = get_uint(d, "deadline_ms", true, DEADLINE_MAX_MS);
		break;
	case PROTO_STATUS:
		m->u.status.session = get_id(d, "session", false);
		break;
	case PROTO_RENEW:
		m->u.renew.session = get_id(d, "session", true);
		m->u.renew.lease_ms
		    = get_uint(d, "lease_ms", true, LEASE_MAX_MS);
		break;
	case PROTO_PING:
	case PROTO_CLEAR:
		break;
	case PROTO_REPLY:
		decode_reply(d, &m->u.reply);
		break;
	}
}

/* Checks the [version, type, op, body] envelope; sets m->type and m->op. */
static void
decode_envelope(struct dec *d, const msgpack_object *root, struct proto_msg *m)
{
	const msgpack_object *e;

	if (root->type != MSGPACK_OBJECT_ARRAY || root->via.array.size != 4) {
		dec_fail(d, HPCXL_EPROTO, "frame is not an array of 4");
		return;
	}
	e = root->via.array.ptr;
	if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER
	    || e[0].via.u64 != PROTO_VERSION) {
		dec_fail(d, HPCXL_EPROTO, "unsupported protocol version");
		return;
	}
	m->type = 0;
	for (size_t t = PROTO_OPEN; t < COUNT_OF(type_names); t++) {
		if (str_is(&e[1], type_names[t]))
			m->type = (enum proto_type)t;
	}
	if (m->type == 0) {
		dec_fail(d, HPCXL_EPROTO, "unknown message type");
		return;
	}
	if (e[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		dec_fail(d, HPCXL_EPROTO, "op is not an unsigned integer");
		return;
	}
	m->op = e[2].via.u64;
	dec_enter(d, &e[3]);
}

int
proto_decode(const void *buf, size_t len, size_t max_len,
    struct proto_msg *out, const char **why)
{
	struct dec d = { .map = NULL, .why = NULL, .err = 0 };
	struct proto_msg m;
	msgpack_unpacked u;
	size_t off = 0;

	memset(&m, 0, sizeof(m));
	if (len > max_len)
		dec_fail(&d, HPCXL_ETOOBIG, "frame too large");
	else if (buf == NULL || msgcheck_walk(buf, len) != 0)
		dec_fail(
		    &d, HPCXL_EPROTO, "not one well-formed msgpack value");
	if (d.err != 0)
		goto out;
	msgpack_unpacked_init(&u);
	if (msgpack_unpack_next(&u, buf, len, &off) != MSGPACK_UNPACK_SUCCESS
	    || off != len)
		dec_fail(
		    &d, HPCXL_EPROTO, "not one well-formed msgpack value");
	else
		decode_envelope(&d, &u.data, &m);
	if (d.err == 0)
		decode_body(&d, &m);
	msgpack_unpacked_destroy(&u);
out:
	if (why != NULL)
		*why = d.why;
	if (d.err != 0) {
		proto_msg_free(&m);
		return d.err;
	}
	*out = m;
	return 0;
}

/* ---- ownership --------------------------------------------------------- */

static void
reply_free(struct proto_reply *r)
{
	uint32_t i;

	free(r->node);
	free(r->msg);
	free(r->version);
	free(r->backend);
	free(r->unhealthy);
	for (i = 0; i < r->nsessions; i++) {
		free(r->sessions[i].session);
		free(r->sessions[i].profile);
		free(r->sessions[i].owner);
		free(r->sessions[i].workers);
	}
	free(r->sessions);
}

void
proto_msg_free(struct proto_msg *m)
{
	if (m == NULL)
		return;
	switch (m->type) {
	case PROTO_OPEN:
		free(m->u.open.session);
		free(m->u.open.profile);
		free(m->u.open.workbook);
		break;
	case PROTO_CLOSE:
		free(m->u.close.session);
		break;
	case PROTO_STATUS:
		free(m->u.status.session);
		break;
	case PROTO_RENEW:
		free(m->u.renew.session);
		break;
	case PROTO_PING:
	case PROTO_CLEAR:
		break;
	case PROTO_REPLY:
		reply_free(&m->u.reply);
		break;
	}
	memset(m, 0, sizeof(*m));
}

static bool
dup_opt(const char *src, char **dst)
{
	*dst = NULL;
	return src == NULL || (*dst = strdup(src)) != NULL;
}

static bool
session_copy(const struct proto_session *src, struct proto_session *dst)
{
	size_t n = src->nworkers * sizeof(*src->workers);

	dst->nworkers = 0;
	dst->workers = NULL;
	if (!dup_opt(src->session, &dst->session)
	    || !dup_opt(src->profile, &dst->profile)
	    || !dup_opt(src->owner, &dst->owner))
		return false;
	if (n > 0 && (dst->workers = malloc(n)) == NULL)
		return false;
	if (n > 0)
		memcpy(dst->workers, src->workers, n);
	dst->nworkers = src->nworkers;
	return true;
}

int
proto_reply_copy(const struct proto_reply *src, struct proto_reply *dst)
{
	struct proto_reply r = *src;
	bool ok;
	uint32_t i;

	/* r must hold none of src's pointers before a dup can fail, or the
	 * cleanup would free src's strings. */
	r.node = r.msg = r.version = r.backend = r.unhealthy = NULL;
	r.nsessions = 0;
	r.sessions = NULL;
	ok = dup_opt(src->node, &r.node) && dup_opt(src->msg, &r.msg)
	    && dup_opt(src->version, &r.version)
	    && dup_opt(src->backend, &r.backend)
	    && dup_opt(src->unhealthy, &r.unhealthy);
	if (ok && src->nsessions > 0) {
		r.sessions = calloc(src->nsessions, sizeof(*r.sessions));
		ok = r.sessions != NULL;
	}
	for (i = 0; ok && i < src->nsessions; i++) {
		r.nsessions = i + 1;
		ok = session_copy(&src->sessions[i], &r.sessions[i]);
	}
	if (!ok) {
		reply_free(&r);
		return HPCXL_ENOMEM;
	}
	*dst = r;
	return 0;
}
