#include "hpcxl/common/util.h"
#include "hpcxl/common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool
id_char_ok(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
	    || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

bool
util_valid_id(const char *s)
{
	size_t n;

	if (s == NULL || s[0] == '\0' || s[0] == '.' || s[0] == '-')
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		if (n >= HPCXL_ID_MAX || !id_char_ok(s[n]))
			return false;
	}
	return true;
}

bool
util_valid_identity(const char *s)
{
	size_t n;

	if (s == NULL || s[0] == '\0' || s[0] == ' ')
		return false;
	for (n = 0; s[n] != '\0'; n++) {
		if (n >= HPCXL_IDENTITY_MAX || s[n] < ' ' || s[n] > '~'
		    || s[n] == ',')
			return false;
	}
	return s[n - 1] != ' ';
}

int
util_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	/* strtoll would also take leading blanks and '+': config values and
	 * CLI numbers must be plain digits. */
	if (s == NULL || !((*s >= '0' && *s <= '9') || *s == '-'))
		return HPCXL_EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return HPCXL_EINVAL;
	*out = v;
	return 0;
}

uint64_t
util_random_u64(void)
{
	uint64_t v = 0;

	while (v == 0) {
		if (getrandom(&v, sizeof(v), 0) != (ssize_t)sizeof(v))
			v = (uint64_t)util_now_ms() ^ (uint64_t)rand() << 32;
	}
	return v;
}

int
util_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

void
util_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}
