/*
 * A allocation-free pre-pass over a msgpack buffer.
 *
 * msgpack-c allocates count * sizeof(msgpack_object) for an array or map as
 * soon as it reads the header, before it knows whether the elements exist.
 * A 6-byte frame claiming 2^32 elements would ask for ~100 GB. This walk
 * rejects any container whose element count exceeds the bytes left (each
 * element takes at least one byte), and any nesting deeper than MAX_DEPTH.
 */
#include "hpcxl/common/err.h"
#include "hpcxl/common/proto.h"

#include <stdint.h>

#define MAX_DEPTH 16

struct cursor {
	const uint8_t *p;
	size_t left;
};

static int
take(struct cursor *c, size_t n, const uint8_t **out)
{
	if (n > c->left)
		return HPCXL_EPROTO;
	if (out != NULL)
		*out = c->p;
	c->p += n;
	c->left -= n;
	return 0;
}

static int
take_be(struct cursor *c, size_t width, uint64_t *v)
{
	const uint8_t *b;
	size_t i;

	if (take(c, width, &b) != 0)
		return HPCXL_EPROTO;
	*v = 0;
	for (i = 0; i < width; i++)
		*v = (*v << 8) | b[i];
	return 0;
}

static int walk_value(struct cursor *c, int depth);

static int
walk_container(struct cursor *c, uint64_t elems, int depth)
{
	uint64_t i;
	int rv;

	if (depth >= MAX_DEPTH || elems > c->left)
		return HPCXL_EPROTO;
	for (i = 0; i < elems; i++) {
		if ((rv = walk_value(c, depth + 1)) != 0)
			return rv;
	}
	return 0;
}

/* Size-prefixed types: width of the length field, then skip that many. */
static int
walk_sized(struct cursor *c, size_t len_width, size_t extra)
{
	uint64_t n;

	if (take_be(c, len_width, &n) != 0 || n > c->left)
		return HPCXL_EPROTO;
	return take(c, (size_t)n + extra, NULL);
}

static int
walk_counted(struct cursor *c, size_t width, int per_elem, int depth)
{
	uint64_t n;

	if (take_be(c, width, &n) != 0)
		return HPCXL_EPROTO;
	return walk_container(c, n * (uint64_t)per_elem, depth);
}

static int
walk_value(struct cursor *c, int depth)
{
	const uint8_t *b;
	uint8_t t;

	if (take(c, 1, &b) != 0)
		return HPCXL_EPROTO;
	t = *b;
	if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3)
		return 0; /* fixint, nil, bool */
	if ((t & 0xe0) == 0xa0)
		return take(c, t & 0x1f, NULL); /* fixstr */
	if ((t & 0xf0) == 0x90)
		return walk_container(c, t & 0x0f, depth); /* fixarray */
	if ((t & 0xf0) == 0x80)
		return walk_container(c, 2u * (t & 0x0f), depth); /* fixmap */
	switch (t) {
	case 0xcc:
	case 0xd0:
		return take(c, 1, NULL);
	case 0xcd:
	case 0xd1:
		return take(c, 2, NULL);
	case 0xce:
	case 0xd2:
	case 0xca:
		return take(c, 4, NULL);
	case 0xcf:
	case 0xd3:
	case 0xcb:
		return take(c, 8, NULL);
	case 0xd4:
		return take(c, 2, NULL); /* fixext 1 */
	case 0xd5:
		return take(c, 3, NULL);
	case 0xd6:
		return take(c, 5, NULL);
	case 0xd7:
		return take(c, 9, NULL);
	case 0xd8:
		return take(c, 17, NULL);
	case 0xd9:
	case 0xc4:
		return walk_sized(c, 1, 0);
	case 0xda:
	case 0xc5:
		return walk_sized(c, 2, 0);
	case 0xdb:
	case 0xc6:
		return walk_sized(c, 4, 0);
	case 0xc7:
		return walk_sized(c, 1, 1); /* ext: len, type, data */
	case 0xc8:
		return walk_sized(c, 2, 1);
	case 0xc9:
		return walk_sized(c, 4, 1);
	case 0xdc:
		return walk_counted(c, 2, 1, depth);
	case 0xdd:
		return walk_counted(c, 4, 1, depth);
	case 0xde:
		return walk_counted(c, 2, 2, depth);
	case 0xdf:
		return walk_counted(c, 4, 2, depth);
	default:
		return HPCXL_EPROTO; /* 0xc1: never used */
	}
}

int
msgcheck_walk(const void *buf, size_t len)
{
	struct cursor c = { buf, len };

	if (walk_value(&c, 0) != 0 || c.left != 0)
		return HPCXL_EPROTO;
	return 0;
}
