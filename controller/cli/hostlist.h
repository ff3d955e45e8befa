/*
 * Slurm-style host lists: "n[001-128]", "gpu[1-4,7]", "a,b,c[1-2]",
 * "r[1-2]n[1-3]".
 *
 * A list is comma-separated items (commas inside brackets do not split);
 * blanks around an item are dropped and empty items skipped. An item is
 * host-name characters [A-Za-z0-9._-] and bracket groups of numbers N and
 * ranges N-M. A number keeps the width of the range's low bound, as in Slurm
 * ("n[001-010]" is n001 ... n010, "n[1-10]" is n1 ... n10). Several groups
 * make every combination, the first group varying slowest ("r[1-2]n[1-2]" is
 * r1n1 r1n2 r2n1 r2n2).
 */
#ifndef HPCXL_CLI_HOSTLIST_H
#define HPCXL_CLI_HOSTLIST_H

#include <stddef.h>

/* Longest host name: hosts become roster node names. */
#define HOSTLIST_HOST_MAX 64
/* Most digits of a number in brackets. */
#define HOSTLIST_DIGITS_MAX 10
/* Room enough for any message of hostlist_expand(). */
#define HOSTLIST_ERR_MAX 256

/* Bytes of the first item of list: up to its first comma outside brackets,
 * or its end. */
size_t hostlist_item_len(const char *list);

/*
 * Calls fn(host, arg) for every host of list, in order. The whole list is
 * checked first: fn is not called at all when the list is malformed or has
 * more than max hosts. Returns 0; HPCXL_EINVAL (malformed) or HPCXL_ETOOBIG
 * (more than max hosts) with a message naming the bad item in err (errlen
 * bytes; HOSTLIST_ERR_MAX is enough); or the first non-zero value of fn,
 * which stops the expansion.
 */
int hostlist_expand(const char *list, size_t max,
    int (*fn)(const char *host, void *arg), void *arg, char *err,
    size_t errlen);

#endif
