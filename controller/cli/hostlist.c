/*
 * Slurm-style host list expansion (see hostlist.h). Two passes: the first
 * checks every item and counts its hosts without making any, so that a
 * malformed or huge list is refused before anything is expanded; the second
 * makes the hosts, one at a time, in a fixed buffer.
 */
#include "hostlist.h"

#include "hpcxl/common/err.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Most bytes of the input quoted in a message: the input may be huge. */
#define QUOTE_MAX 80
#define QUOTED(len) ((int)((len) < QUOTE_MAX ? (len) : QUOTE_MAX))

/* One item of a list, [s, end), and where its messages go. */
struct item {
	const char *s;
	const char *end;
	char *err;
	size_t errlen;
};

/* A number N or a range N-M of a bracket group. */
struct range {
	uint64_t lo;
	uint64_t hi;
	int width; /* digits of lo as written: every number keeps it */
};

struct expansion {
	int (*fn)(const char *host, void *arg);
	void *arg;
	char host[HOSTLIST_HOST_MAX + 1];
};

static int item_error(const struct item *it, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
item_error(const struct item *it, int code, const char *fmt, ...)
{
	size_t len = (size_t)(it->end - it->s);
	char why[160];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (it->err != NULL && it->errlen > 0)
		snprintf(it->err, it->errlen, "host list '%.*s%s': %s",
		    QUOTED(len), it->s, len > QUOTE_MAX ? "..." : "", why);
	return code;
}

static uint64_t
add_capped(uint64_t a, uint64_t b)
{
	uint64_t sum;

	return __builtin_add_overflow(a, b, &sum) ? UINT64_MAX : sum;
}

static uint64_t
mul_capped(uint64_t a, uint64_t b)
{
	uint64_t product;

	return __builtin_mul_overflow(a, b, &product) ? UINT64_MAX : product;
}

static int
decimal_digits(uint64_t v)
{
	int n = 1;

	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

static bool
host_char(char c)
{
	return isalnum((unsigned char)c) || c == '.' || c == '_' || c == '-';
}

/* True when [s, end) is one or more decimal digits. */
static bool
all_digits(const char *s, const char *end)
{
	if (s == end)
		return false;
	for (; s < end; s++) {
		if (!isdigit((unsigned char)*s))
			return false;
	}
	return true;
}

static uint64_t
number_of(const char *s, const char *end)
{
	uint64_t v = 0;

	for (; s < end; s++)
		v = v * 10 + (uint64_t)(*s - '0');
	return v;
}

/* Parses the range text [s, end): "N" or "N-M". */
static int
parse_range(
    const struct item *it, const char *s, const char *end, struct range *r)
{
	size_t len = (size_t)(end - s);
	const char *dash = memchr(s, '-', len);
	const char *lo_end = dash != NULL ? dash : end;
	const char *hi = dash != NULL ? dash + 1 : s;

	if (len == 0)
		return item_error(it, HPCXL_EINVAL, "empty range in brackets");
	if (!all_digits(s, lo_end) || !all_digits(hi, end))
		return item_error(it, HPCXL_EINVAL,
		    "'%.*s' is not a number N or a range N-M", QUOTED(len), s);
	if (lo_end - s > HOSTLIST_DIGITS_MAX || end - hi > HOSTLIST_DIGITS_MAX)
		return item_error(it, HPCXL_EINVAL,
		    "'%.*s' has a number of more than %d digits", QUOTED(len),
		    s, HOSTLIST_DIGITS_MAX);
	r->lo = number_of(s, lo_end);
	r->hi = number_of(hi, end);
	r->width = (int)(lo_end - s);
	if (r->lo > r->hi)
		return item_error(it, HPCXL_EINVAL, "range '%.*s' is reversed",
		    QUOTED(len), s);
	return 0;
}

/* Parses the range at *p of the group that ends at close; *p becomes the
 * next range, or NULL after the last one. */
static int
next_range(
    const struct item *it, const char **p, const char *close, struct range *r)
{
	const char *comma = memchr(*p, ',', (size_t)(close - *p));
	const char *end = comma != NULL ? comma : close;
	int rv = parse_range(it, *p, end, r);

	*p = comma != NULL ? comma + 1 : NULL;
	return rv;
}

/* Finds the ']' that closes the group opened at open. */
static int
group_close(const struct item *it, const char *open, const char **close)
{
	const char *p;

	for (p = open + 1; p < it->end && *p != ']'; p++) {
		if (*p == '[')
			return item_error(
			    it, HPCXL_EINVAL, "'[' inside brackets");
	}
	if (p == it->end)
		return item_error(it, HPCXL_EINVAL, "'[' without ']'");
	*close = p;
	return 0;
}

/* Counts the numbers of the group [open, close] and the most characters
 * one of them takes. */
static int
group_check(const struct item *it, const char *open, const char *close,
    uint64_t *count, size_t *width)
{
	const char *p = open + 1;
	struct range r = { 0 }; /* next_range() fills it on success */
	int rv, w;

	*count = 0;
	*width = 0;
	do {
		if ((rv = next_range(it, &p, close, &r)) != 0)
			return rv;
		*count = add_capped(*count, r.hi - r.lo + 1);
		w = decimal_digits(r.hi) > r.width ? decimal_digits(r.hi)
		                                   : r.width;
		if ((size_t)w > *width)
			*width = (size_t)w;
	} while (p != NULL);
	return 0;
}

/* Writes a character that is not allowed so that it can be read. */
static int
bad_char(const struct item *it, char c)
{
	const char *hint = "host names are A-Z a-z 0-9 . _ - and [ranges]; "
	                   "a URL needs '://'";

	if (isprint((unsigned char)c))
		return item_error(
		    it, HPCXL_EINVAL, "invalid character '%c' (%s)", c, hint);
	return item_error(it, HPCXL_EINVAL, "invalid byte 0x%02x (%s)",
	    (unsigned char)c, hint);
}

/* Checks an item and counts its hosts (UINT64_MAX when there are more). */
static int
item_check(const struct item *it, uint64_t *count)
{
	const char *p, *close = NULL;
	uint64_t n = 1, group_count = 0;
	size_t len = 0, width;
	int rv;

	for (p = it->s; p < it->end; p++) {
		if (*p == '[') {
			if ((rv = group_close(it, p, &close)) != 0
			    || (rv = group_check(
			            it, p, close, &group_count, &width))
			        != 0)
				return rv;
			n = mul_capped(n, group_count);
			len += width;
			p = close;
		} else if (*p == ']') {
			return item_error(it, HPCXL_EINVAL, "']' without '['");
		} else if (!host_char(*p)) {
			return bad_char(it, *p);
		} else {
			len++;
		}
	}
	if (len > HOSTLIST_HOST_MAX)
		return item_error(it, HPCXL_EINVAL,
		    "host names longer than %d characters", HOSTLIST_HOST_MAX);
	*count = n;
	return 0;
}

/* Makes every host of the checked item from p on, after the hlen bytes of
 * x->host made so far. The first group is the outermost loop. */
static int
expand_from(
    struct expansion *x, const struct item *it, const char *p, size_t hlen)
{
	const char *close, *next;
	struct range r = { 0 }; /* next_range() fills it on success */
	uint64_t v;
	int n, rv;

	while (p < it->end && *p != '[')
		x->host[hlen++] = *p++;
	if (p == it->end) {
		x->host[hlen] = '\0';
		return x->fn(x->host, x->arg);
	}
	close = memchr(p, ']', (size_t)(it->end - p));
	next = p + 1;
	do {
		if ((rv = next_range(it, &next, close, &r)) != 0)
			return rv;
		for (v = r.lo; v <= r.hi; v++) {
			n = snprintf(x->host + hlen, sizeof(x->host) - hlen,
			    "%0*" PRIu64, r.width, v);
			rv = expand_from(x, it, close + 1, hlen + (size_t)n);
			if (rv != 0)
				return rv;
		}
	} while (next != NULL);
	return 0;
}

size_t
hostlist_item_len(const char *list)
{
	bool in_brackets = false;
	size_t i;

	for (i = 0; list[i] != '\0'; i++) {
		if (list[i] == '[')
			in_brackets = true;
		else if (list[i] == ']')
			in_brackets = false;
		else if (list[i] == ',' && !in_brackets)
			break;
	}
	return i;
}

/* Takes the next non-empty item of the list at *p, without its blanks;
 * false at the end of the list. */
static bool
next_item(const char **p, struct item *it)
{
	size_t len;

	while (**p != '\0') {
		len = hostlist_item_len(*p);
		it->s = *p;
		it->end = *p + len;
		*p += (*p)[len] == ',' ? len + 1 : len;
		while (it->s < it->end && isspace((unsigned char)*it->s))
			it->s++;
		while (it->end > it->s && isspace((unsigned char)it->end[-1]))
			it->end--;
		if (it->s < it->end)
			return true;
	}
	return false;
}

int
hostlist_expand(const char *list, size_t max,
    int (*fn)(const char *host, void *arg), void *arg, char *err,
    size_t errlen)
{
	struct item it = { .err = err, .errlen = errlen };
	struct expansion x = { .fn = fn, .arg = arg };
	uint64_t total = 0, count = 0;
	const char *p;
	int rv;

	for (p = list; next_item(&p, &it);) {
		if ((rv = item_check(&it, &count)) != 0)
			return rv;
		total = add_capped(total, count);
		if (total > max)
			return item_error(
			    &it, HPCXL_ETOOBIG, "more than %zu hosts", max);
	}
	for (p = list; next_item(&p, &it);) {
		if ((rv = expand_from(&x, &it, it.s, 0)) != 0)
			return rv;
	}
	return 0;
}
