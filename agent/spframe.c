/* SP's ipc and tcp framings (see spframe.h). */
#include "spframe.h"

#include <string.h>

bool
spframe_header_valid(const unsigned char *h)
{
	return h[0] == 0 && h[1] == 'S' && h[2] == 'P' && h[3] == 0
	    && h[6] == 0 && h[7] == 0;
}

void
spframe_init(struct spframe *f, bool to_ipc)
{
	memset(f, 0, sizeof(*f));
	f->to_ipc = to_ipc;
	f->header_left = SPFRAME_HEADER_LEN;
}

/* At a message's start: the type byte is taken or given. Returns false on
 * a bad type byte. */
static bool
frame_start(struct spframe *f, const unsigned char **in, size_t *n,
    unsigned char **out)
{
	if (f->to_ipc)
		*(*out)++ = SPFRAME_IPC_TYPE;
	else {
		if (**in != SPFRAME_IPC_TYPE)
			return false;
		(*in)++;
		(*n)--;
	}
	f->in_length = true;
	f->length_got = 0;
	f->length = 0;
	return true;
}

static void
length_byte(struct spframe *f, unsigned char b)
{
	f->length = f->length << 8 | b;
	if (++f->length_got == sizeof(uint64_t)) {
		f->in_length = false;
		f->body_left = f->length;
	}
}

/* Copies what runs as is (header, body): at most n bytes. */
static size_t
pass_through(
    struct spframe *f, const unsigned char *in, size_t n, unsigned char *out)
{
	size_t k;

	if (f->header_left > 0) {
		k = n < f->header_left ? n : f->header_left;
		f->header_left -= (uint8_t)k;
	} else {
		k = n < f->body_left ? n : (size_t)f->body_left;
		f->body_left -= k;
	}
	memmove(out, in, k);
	return k;
}

long
spframe_move(
    struct spframe *f, const unsigned char *in, size_t n, unsigned char *out)
{
	unsigned char *start = out;

	while (n > 0) {
		if (f->header_left > 0 || f->body_left > 0) {
			size_t k = pass_through(f, in, n, out);

			in += k;
			out += k;
			n -= k;
		} else if (!f->in_length) {
			if (!frame_start(f, &in, &n, &out))
				return -1;
		} else {
			length_byte(f, *in);
			*out++ = *in++;
			n--;
		}
	}
	return (long)(out - start);
}
