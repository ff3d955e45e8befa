/*
 * Unit tests of the translation between SP's tcp and ipc framings
 * (agent/spframe.c), which every ipc connection of the agent goes
 * through: a stream of messages framed for tcp, cut in chunks of every
 * size, must come out framed for ipc byte for byte as nng 1.5.2's ipc
 * transport writes it, and back again; a wrong type byte must be caught;
 * a handshake header is valid exactly as nng checks it.
 */
#include "spframe.h"

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#define STREAM_MAX 65536

struct stream {
	unsigned char bytes[STREAM_MAX];
	size_t len;
};

static void
put_be64(unsigned char *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)v;
}

/* The handshake header, then messages of the given body lengths, framed
 * for ipc (with the type byte) or for tcp. */
static void
make_stream(struct stream *s, const size_t *bodies, size_t n, bool ipc)
{
	static const unsigned char header[8]
	    = { 0, 'S', 'P', 0, 0, 0x63, 0, 0 };

	memcpy(s->bytes, header, sizeof(header));
	s->len = sizeof(header);
	for (size_t i = 0; i < n; i++) {
		if (ipc)
			s->bytes[s->len++] = SPFRAME_IPC_TYPE;
		put_be64(s->bytes + s->len, bodies[i]);
		s->len += 8;
		for (size_t b = 0; b < bodies[i]; b++)
			s->bytes[s->len++] = (unsigned char)(i * 31 + b);
	}
	cr_assert_leq(s->len, STREAM_MAX);
}

/* Feeds in through a translator in chunks of chunk bytes (0: random
 * sizes from 1 to 40), checking each chunk's output bound. */
static void
translate(
    const struct stream *in, bool to_ipc, size_t chunk, struct stream *out)
{
	struct spframe f;
	size_t at = 0;

	spframe_init(&f, to_ipc);
	out->len = 0;
	while (at < in->len) {
		size_t n = chunk != 0 ? chunk : 1 + (size_t)rand() % 40;
		unsigned char buf[SPFRAME_GROWTH(64)],
		    framed[SPFRAME_GROWTH(64)];
		/* From ipc the translation may run in place; to ipc it grows.
		 */
		unsigned char *to = to_ipc ? framed : buf;
		long m;

		if (n > in->len - at)
			n = in->len - at;
		memcpy(buf, in->bytes + at, n);
		m = spframe_move(&f, buf, n, to);
		cr_assert_geq(m, 0, "a good stream refused at byte %zu", at);
		cr_assert_leq((size_t)m, to_ipc ? SPFRAME_GROWTH(n) : n);
		memcpy(out->bytes + out->len, to, (size_t)m);
		out->len += (size_t)m;
		at += n;
	}
}

static void
expect_same(const struct stream *got, const struct stream *want)
{
	cr_assert_eq(
	    got->len, want->len, "%zu bytes, want %zu", got->len, want->len);
	cr_assert(memcmp(got->bytes, want->bytes, want->len) == 0);
}

/* Empty bodies, bodies shorter and longer than a length, and one past a
 * relay buffer. */
static const size_t bodies[] = { 0, 1, 7, 8, 9, 0, 0, 100, 4096, 9000, 3 };
#define NBODIES (sizeof(bodies) / sizeof(bodies[0]))

Test(spframe, tcp_to_ipc_matches_ipc_framing_in_any_chunking)
{
	static struct stream tcp, ipc, got;

	make_stream(&tcp, bodies, NBODIES, false);
	make_stream(&ipc, bodies, NBODIES, true);
	for (size_t chunk = 0; chunk <= 17; chunk++) {
		translate(&tcp, true, chunk, &got);
		expect_same(&got, &ipc);
	}
}

Test(spframe, ipc_to_tcp_matches_tcp_framing_in_any_chunking)
{
	static struct stream tcp, ipc, got;

	make_stream(&tcp, bodies, NBODIES, false);
	make_stream(&ipc, bodies, NBODIES, true);
	for (size_t chunk = 0; chunk <= 17; chunk++) {
		translate(&ipc, false, chunk, &got);
		expect_same(&got, &tcp);
	}
}

Test(spframe, random_streams_go_there_and_back)
{
	static struct stream tcp, ipc, back;
	size_t lens[64];

	srand(7);
	for (int round = 0; round < 50; round++) {
		size_t n = 1 + (size_t)rand() % 64;

		for (size_t i = 0; i < n; i++)
			lens[i] = rand() % 4 == 0 ? 0 : (size_t)rand() % 600;
		make_stream(&tcp, lens, n, false);
		translate(&tcp, true, 0, &ipc);
		translate(&ipc, false, 0, &back);
		expect_same(&back, &tcp);
	}
}

Test(spframe, a_wrong_type_byte_is_refused)
{
	static struct stream ipc;
	size_t one[] = { 5, 5 };
	struct spframe f;
	long m;

	make_stream(&ipc, one, 2, true);
	ipc.bytes[8 + 1 + 8 + 5] = 2; /* the second message's type */
	spframe_init(&f, false);
	m = spframe_move(&f, ipc.bytes, ipc.len, ipc.bytes);
	cr_assert_eq(m, -1, "a stream with message type 2 was passed on");
}

Test(spframe, the_header_passes_as_is_even_byte_by_byte)
{
	static const unsigned char header[8]
	    = { 0, 'S', 'P', 0, 0, 0x62, 0, 0 };
	unsigned char out[SPFRAME_GROWTH(1)];
	struct spframe f;

	spframe_init(&f, true);
	for (size_t i = 0; i < sizeof(header); i++) {
		cr_assert_eq(spframe_move(&f, header + i, 1, out), 1);
		cr_assert_eq(out[0], header[i]);
	}
}

Test(spframe, a_handshake_header_is_valid_only_as_nng_checks_it)
{
	static const unsigned char surveyor[8]
	    = { 0, 'S', 'P', 0, 0, 0x62, 0, 0 };
	unsigned char h[8];

	cr_assert(spframe_header_valid(surveyor));
	/* Any protocol: nng checks the peer's later, without a pause. */
	memcpy(h, surveyor, 8);
	h[4] = 0x12;
	h[5] = 0x34;
	cr_assert(spframe_header_valid(h));
	/* Every other byte matters. */
	for (int i = 0; i < 8; i++) {
		if (i == 4 || i == 5)
			continue;
		memcpy(h, surveyor, 8);
		h[i] ^= 0x01;
		cr_assert_not(spframe_header_valid(h), "byte %d changed", i);
	}
	cr_assert_not(spframe_header_valid((const unsigned char *)"GET / HT"));
}
