/*
 * Unit tests of the CLI's host list expansion (controller/cli/hostlist.c):
 * every form (plain hosts, ranges, lists in brackets, zero padding, several
 * groups, comma-separated items, blanks) and every error, with the message
 * naming the bad item; and that nothing is expanded from a list that has
 * an error or too many hosts.
 */
#include "hostlist.h"

#include "hpcxl/common/err.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

TestSuite(hostlist, .timeout = 30);

/* ---- helpers ----------------------------------------------------------- */

/* The hosts made so far, joined with spaces. */
struct hosts {
	char joined[4096];
	size_t n;
	size_t stop_at; /* the callback returns 7 at this host (1-based) */
};

static int
collect(const char *host, void *arg)
{
	struct hosts *h = arg;
	size_t len = strlen(h->joined);

	cr_assert_lt(len + strlen(host) + 2, sizeof(h->joined));
	snprintf(h->joined + len, sizeof(h->joined) - len, "%s%s",
	    h->n > 0 ? " " : "", host);
	h->n++;
	return h->n == h->stop_at ? 7 : 0;
}

/* Expands list (at most max hosts) and checks the result is want. */
static void
assert_expands(const char *list, size_t max, const char *want)
{
	struct hosts h = { .n = 0 };
	char err[HOSTLIST_ERR_MAX] = "";
	int rv = hostlist_expand(list, max, collect, &h, err, sizeof(err));

	cr_assert_eq(rv, 0, "'%s': %d (%s)", list, rv, err);
	cr_assert_str_eq(h.joined, want, "'%s'", list);
}

/* Expects list to be refused with code, without a host made, and with a
 * message that quotes the item and says why. */
static void
assert_refused(
    const char *list, size_t max, int code, const char *item, const char *why)
{
	struct hosts h = { .n = 0 };
	char err[HOSTLIST_ERR_MAX] = "";
	char quoted[HOSTLIST_ERR_MAX];
	int rv = hostlist_expand(list, max, collect, &h, err, sizeof(err));

	cr_assert_eq(rv, code, "'%s': %d, want %d (%s)", list, rv, code, err);
	cr_assert_eq(
	    h.n, 0, "'%s': %zu hosts made before the error", list, h.n);
	snprintf(quoted, sizeof(quoted), "host list '%s'", item);
	cr_assert_not_null(strstr(err, quoted), "'%s': message '%s' lacks %s",
	    list, err, quoted);
	cr_assert_not_null(
	    strstr(err, why), "'%s': message '%s' lacks '%s'", list, err, why);
}

/* ---- forms ------------------------------------------------------------- */

/* A list and the hosts it makes, in order. */
static const struct {
	const char *list;
	const char *hosts;
} forms[] = {
	/* Plain hosts. */
	{ "n1", "n1" },
	{ "a,b,c", "a b c" },
	{ "node-1.ib_0", "node-1.ib_0" },
	/* A range keeps the width of its low bound, as in Slurm. */
	{ "n[001-010]", "n001 n002 n003 n004 n005 n006 n007 n008 n009 n010" },
	{ "n[8-11]", "n8 n9 n10 n11" },
	{ "n[08-11]", "n08 n09 n10 n11" },
	{ "n[1-010]", "n1 n2 n3 n4 n5 n6 n7 n8 n9 n10" },
	{ "gpu[07]", "gpu07" },
	{ "n[0-0]", "n0" },
	/* Numbers and ranges in one group, in the order written. */
	{ "gpu[1-4,7]", "gpu1 gpu2 gpu3 gpu4 gpu7" },
	{ "gpu[7,1-2,009]", "gpu7 gpu1 gpu2 gpu009" },
	/* Items and groups mixed; text after a group. */
	{ "a,b,c[1-2]", "a b c1 c2" },
	{ "c[1-2],a", "c1 c2 a" },
	{ "n[1-2]-ib", "n1-ib n2-ib" },
	{ "[1-3]", "1 2 3" },
	/* Several groups: the first varies slowest. */
	{ "r[1-2]n[1-3]", "r1n1 r1n2 r1n3 r2n1 r2n2 r2n3" },
	{ "r[1,3]n[01-02]x", "r1n01x r1n02x r3n01x r3n02x" },
	{ "n[1-2][5-6]", "n15 n16 n25 n26" },
	/* Blanks around items and empty items are skipped. */
	{ " a , ,b ,\tc[1-2]\t,", "a b c1 c2" },
	{ "", "" },
	{ " , ,", "" },
};

Test(hostlist, every_form)
{
	size_t i;

	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
		assert_expands(forms[i].list, 100, forms[i].hosts);
}

Test(hostlist, limits_are_inclusive)
{
	char host[HOSTLIST_HOST_MAX + 8];

	assert_expands("n[1-4]", 4, "n1 n2 n3 n4");
	assert_expands("a,b[1-2]", 3, "a b1 b2");
	assert_expands("n[9999999999]", 1, "n9999999999");
	memset(host, 'h', HOSTLIST_HOST_MAX);
	host[HOSTLIST_HOST_MAX] = '\0';
	assert_expands(host, 1, host);
	/* The widest number counts: 62 + 2 digits. */
	memset(host, 'h', HOSTLIST_HOST_MAX - 2);
	strcpy(host + HOSTLIST_HOST_MAX - 2, "[9-10]");
	{
		struct hosts h = { .n = 0 };

		cr_assert_eq(
		    hostlist_expand(host, 10, collect, &h, NULL, 0), 0);
		cr_assert_eq(h.n, 2);
	}
}

static int
count_only(const char *host, void *arg)
{
	(*(size_t *)arg)++;
	return 0;
}

Test(hostlist, many_hosts)
{
	size_t n = 0;

	cr_assert_eq(
	    hostlist_expand("n[00001-65536]", 65536, count_only, &n, NULL, 0),
	    0);
	cr_assert_eq(n, 65536);
}

Test(hostlist, callback_stops_the_expansion)
{
	struct hosts h = { .stop_at = 2 };

	cr_assert_eq(
	    hostlist_expand("n[1-5],m", 100, collect, &h, NULL, 0), 7);
	cr_assert_str_eq(h.joined, "n1 n2");
}

Test(hostlist, item_length_skips_commas_in_brackets)
{
	cr_assert_eq(hostlist_item_len("gpu[1-4,7],b"), 10);
	cr_assert_eq(hostlist_item_len("a,b"), 1);
	cr_assert_eq(hostlist_item_len(",b"), 0);
	cr_assert_eq(hostlist_item_len("abc"), 3);
	cr_assert_eq(hostlist_item_len("r[1,2]n[3,4],x"), 12);
	/* A URL with an IPv6 address: its brackets hold no comma. */
	cr_assert_eq(hostlist_item_len("tcp://[::1]:7420,x"), 16);
	/* An unclosed bracket takes the rest (and is refused later). */
	cr_assert_eq(hostlist_item_len("n[1,2"), 5);
}

/* ---- errors ------------------------------------------------------------ */

/* A malformed list, the item its message names, and why. */
static const struct {
	const char *list;
	const char *item;
	const char *why;
} malformed[] = {
	{ "n[3-1]", "n[3-1]", "range '3-1' is reversed" },
	{ "n[1-2,010-9]", "n[1-2,010-9]", "range '010-9' is reversed" },
	/* Unbalanced or nested brackets. */
	{ "n[1-2", "n[1-2", "'[' without ']'" },
	{ "n1-2]", "n1-2]", "']' without '['" },
	{ "n[1]]", "n[1]]", "']' without '['" },
	{ "n[[1]]", "n[[1]]", "'[' inside brackets" },
	{ "n[1[2]]", "n[1[2]]", "'[' inside brackets" },
	/* Empty ranges. */
	{ "n[]", "n[]", "empty range" },
	{ "n[1,]", "n[1,]", "empty range" },
	{ "n[,1]", "n[,1]", "empty range" },
	{ "n[1,,2]", "n[1,,2]", "empty range" },
	/* Ranges that are not N or N-M. */
	{ "n[-3]", "n[-3]", "'-3' is not a number N or a range N-M" },
	{ "n[1-]", "n[1-]", "'1-' is not a number" },
	{ "n[1-2-3]", "n[1-2-3]", "'1-2-3' is not a number" },
	{ "n[a-b]", "n[a-b]", "'a-b' is not a number" },
	{ "n[1 - 2]", "n[1 - 2]", "'1 - 2' is not a number" },
	{ "n[+1]", "n[+1]", "'+1' is not a number" },
	{ "n[-]", "n[-]", "'-' is not a number" },
	/* Numbers of more than ten digits, leading zeros included. */
	{ "n[12345678901]", "n[12345678901]",
	    "has a number of more than 10 digits" },
	{ "n[1-12345678901]", "n[1-12345678901]", "more than 10 digits" },
	{ "n[00000000001]", "n[00000000001]", "more than 10 digits" },
	/* Characters no host name has. */
	{ "n/1", "n/1", "invalid character '/'" },
	{ "a b", "a b", "invalid character ' '" },
	{ "n%h", "n%h", "invalid character '%'" },
	{ "node:7420", "node:7420", "a URL needs '://'" },
	{ "n\001", "n\001", "invalid byte 0x01" },
	{ "n\xc3\xa9", "n\xc3\xa9", "invalid byte 0xc3" },
	/* The good items before a bad one are not expanded either. */
	{ "a,b[1-2],n[3-1]", "n[3-1]", "reversed" },
};

Test(hostlist, every_error)
{
	size_t i;

	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		assert_refused(malformed[i].list, 1000, HPCXL_EINVAL,
		    malformed[i].item, malformed[i].why);
}

Test(hostlist, host_names_too_long)
{
	char host[HOSTLIST_HOST_MAX + 8];

	memset(host, 'h', HOSTLIST_HOST_MAX + 1);
	host[HOSTLIST_HOST_MAX + 1] = '\0';
	assert_refused(
	    host, 1000, HPCXL_EINVAL, host, "longer than 64 characters");
	memset(host, 'h', HOSTLIST_HOST_MAX - 1);
	strcpy(host + HOSTLIST_HOST_MAX - 1, "[9-10]");
	assert_refused(
	    host, 1000, HPCXL_EINVAL, host, "longer than 64 characters");
}

Test(hostlist, too_many_hosts)
{
	assert_refused(
	    "n[1-5]", 4, HPCXL_ETOOBIG, "n[1-5]", "more than 4 hosts");
	/* The limit is for the whole list; the item that crosses it is named,
	 * and nothing of the items before it is made. */
	assert_refused(
	    "a,b,c[1-2]", 3, HPCXL_ETOOBIG, "c[1-2]", "more than 3 hosts");
	/* A count that does not fit in 64 bits is still too many. */
	assert_refused("a[0-9999999999]b[0-9999999999]c[0-9999999999]", 65536,
	    HPCXL_ETOOBIG, "a[0-9999999999]b[0-9999999999]c[0-9999999999]",
	    "more than 65536 hosts");
	assert_refused("n[1-5]", 0, HPCXL_ETOOBIG, "n[1-5]", "more than 0");
}

Test(hostlist, long_items_are_cut_in_messages)
{
	char list[600], err[HOSTLIST_ERR_MAX];
	struct hosts h = { .n = 0 };

	memset(list, 'x', sizeof(list) - 1);
	list[sizeof(list) - 1] = '\0';
	list[300] = '/';
	cr_assert_eq(hostlist_expand(list, 10, collect, &h, err, sizeof(err)),
	    HPCXL_EINVAL);
	cr_assert_lt(strlen(err), sizeof(err) - 1, "message cut: %s", err);
	cr_assert_not_null(strstr(err, "...'"), "%s", err);
	cr_assert_not_null(strstr(err, "invalid character '/'"), "%s", err);
}
