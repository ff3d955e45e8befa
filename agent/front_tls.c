/* The front's TLS connections (front.h, front_impl.h): mutual TLS over
 * mbedTLS on a non-blocking socket, the caller's identity from the client
 * certificate (tls_conf.h). */
#include "front_impl.h"
#include "tls_conf.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"

#include <errno.h>
#include <mbedtls/net_sockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- mbedTLS on a non-blocking socket --------------------------------- */

/* mbedTLS's I/O callbacks; send() with MSG_NOSIGNAL, whatever SIGPIPE's
 * disposition in the process. */
static int
bio_send(void *ctx, const unsigned char *buf, size_t len)
{
	ssize_t n = send(*(int *)ctx, buf, len, MSG_NOSIGNAL);

	if (n >= 0)
		return (int)n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_WRITE;
	return MBEDTLS_ERR_NET_SEND_FAILED;
}

static int
bio_recv(void *ctx, unsigned char *buf, size_t len)
{
	ssize_t n = recv(*(int *)ctx, buf, len, 0);

	if (n >= 0)
		return (int)n; /* 0: the peer closed (mbedTLS: CONN_EOF) */
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return MBEDTLS_ERR_SSL_WANT_READ;
	return MBEDTLS_ERR_NET_RECV_FAILED;
}

/* The front's code for mbedTLS's result rv of a read, write or handshake
 * (rv itself when it is a count). */
static int
tls_result(int rv)
{
	if (rv == MBEDTLS_ERR_SSL_WANT_READ)
		return FRONT_WAIT_IN;
	if (rv == MBEDTLS_ERR_SSL_WANT_WRITE)
		return FRONT_WAIT_OUT;
	if (rv == MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY
	    || rv == MBEDTLS_ERR_SSL_CONN_EOF)
		return 0;
	return rv < 0 ? FRONT_BROKEN : rv;
}

static void
sockaddr_text(const struct sockaddr_storage *sa, char *out, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;

		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(in->sin_port));
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else
		snprintf(out, len, "?");
}

/* ---- the operations ---------------------------------------------------- */

static int
tls_init(struct front *f, struct relay *r)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);

	mbedtls_ssl_init(&r->ssl);
	if (getpeername(r->outer, (struct sockaddr *)&sa, &len) != 0)
		sa.ss_family = AF_UNSPEC;
	sockaddr_text(&sa, r->peer, sizeof(r->peer));
	front_nodelay(r->outer);
	mbedtls_ssl_set_bio(&r->ssl, &r->outer, bio_send, bio_recv, NULL);
	return mbedtls_ssl_setup(&r->ssl, front_tls_config(f)) == 0
	    ? 0
	    : HPCXL_ENOMEM;
}

static int
tls_start(struct relay *r, char *why, size_t whylen)
{
	char text[160];
	int rv = mbedtls_ssl_handshake(&r->ssl);

	if (rv == MBEDTLS_ERR_SSL_WANT_READ
	    || rv == MBEDTLS_ERR_SSL_WANT_WRITE)
		return tls_result(rv);
	if (rv != 0) {
		snprintf(why, whylen, "TLS handshake failed: %s",
		    tls_conf_strerror(rv, text, sizeof(text)));
		return FRONT_BROKEN;
	}
	return tls_conf_identity(&r->ssl, r->identity, why, whylen) == 0
	    ? 0
	    : FRONT_BROKEN;
}

static int
tls_read(struct relay *r, unsigned char *buf, size_t len)
{
	return tls_result(mbedtls_ssl_read(&r->ssl, buf, len));
}

static int
tls_write(struct relay *r, const unsigned char *buf, size_t len)
{
	int rv = tls_result(mbedtls_ssl_write(&r->ssl, buf, len));

	return rv == 0 ? FRONT_BROKEN : rv; /* writes have no "end" */
}

static void
tls_finish(struct relay *r)
{
	(void)mbedtls_ssl_close_notify(&r->ssl);
}

static void
tls_fini(struct relay *r)
{
	mbedtls_ssl_free(&r->ssl);
}

const struct front_ops front_tls_ops = {
	.name = "TLS",
	.init = tls_init,
	.start = tls_start,
	.read = tls_read,
	.write = tls_write,
	.finish = tls_finish,
	.fini = tls_fini,
};

/* ---- listening --------------------------------------------------------- */

/* tls+tcp://HOST:PORT (tls+tcp4, tls+tcp6; [v6]:PORT; an empty host or
 * "*": every address) into its parts. */
static int
url_split(const char *url, int *family, char *host, size_t hostlen, char *port,
    size_t portlen)
{
	const char *rest, *colon, *end;
	size_t n;

	if (strncmp(url, "tls+tcp://", 10) == 0)
		*family = AF_UNSPEC, rest = url + 10;
	else if (strncmp(url, "tls+tcp4://", 11) == 0)
		*family = AF_INET, rest = url + 11;
	else if (strncmp(url, "tls+tcp6://", 11) == 0)
		*family = AF_INET6, rest = url + 11;
	else
		return HPCXL_ECONFIG;
	if (*rest == '[') {
		if ((end = strchr(rest, ']')) == NULL || end[1] != ':')
			return HPCXL_ECONFIG;
		rest++;
		colon = end + 1;
	} else if ((colon = end = strrchr(rest, ':')) == NULL)
		return HPCXL_ECONFIG;
	n = (size_t)(end - rest);
	if (n >= hostlen || strlen(colon + 1) >= portlen || colon[1] == '\0'
	    || strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return HPCXL_ECONFIG;
	memcpy(host, rest, n);
	host[n] = '\0';
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	snprintf(port, portlen, "%s", colon + 1);
	return 0;
}

/* A listening socket on ai; dual: an IPv6 wildcard that takes IPv4 too. */
static int
listen_socket(const struct addrinfo *ai, bool dual)
{
	int one = 1, zero = 0;
	int fd = socket(ai->ai_family,
	    ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);

	if (fd < 0)
		return -1;
	/* As nng's tcp listener: a restarted agent rebinds at once. */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (dual)
		(void)setsockopt(
		    fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
	    || listen(fd, SOMAXCONN) != 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

/* The first of host's addresses (NULL: the wildcard) that binds; -1 with
 * errno, or with *why when the name does not resolve. */
static int
listen_resolved(const char *host, const char *port, int family, bool dual,
    const char **why)
{
	struct addrinfo hints = { .ai_family = family,
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *ai = NULL, *a;
	int rv, fd = -1;

	if ((rv = getaddrinfo(host, port, &hints, &ai)) != 0) {
		*why = gai_strerror(rv);
		errno = EADDRNOTAVAIL;
		return -1;
	}
	for (a = ai; a != NULL && fd < 0; a = a->ai_next)
		fd = listen_socket(a, dual && a->ai_family == AF_INET6);
	freeaddrinfo(ai);
	return fd;
}

/*
 * An empty host (or "*") is every address. Without a family
 * (tls+tcp://:7420) that means IPv6 and IPv4 on one socket, so that a
 * client whose "localhost" or node name resolves to an IPv6 address first
 * (Debian's /etc/hosts has ::1 localhost) finds the agent; IPv4 alone
 * where the kernel has no IPv6. A named host: the first of its addresses
 * that binds.
 */
static int
listen_host(const char *host, const char *port, int family, const char **why)
{
	int fd;

	if (host[0] != '\0')
		return listen_resolved(host, port, family, false, why);
	if (family != AF_UNSPEC)
		return listen_resolved(NULL, port, family, false, why);
	if ((fd = listen_resolved(NULL, port, AF_INET6, true, why)) >= 0
	    || (errno != EAFNOSUPPORT && errno != EADDRNOTAVAIL))
		return fd;
	*why = NULL;
	return listen_resolved(NULL, port, AF_INET, false, why);
}

/* The URL as bound: url with its port replaced by the real one. */
static void
bound_url(const char *url, int fd, char *bound, size_t len)
{
	struct sockaddr_storage sa;
	socklen_t salen = sizeof(sa);
	unsigned port = 0;
	const char *colon = strrchr(url, ':');

	if (getsockname(fd, (struct sockaddr *)&sa, &salen) == 0)
		port = ntohs(sa.ss_family == AF_INET6
		        ? ((struct sockaddr_in6 *)(void *)&sa)->sin6_port
		        : ((struct sockaddr_in *)(void *)&sa)->sin_port);
	snprintf(bound, len, "%.*s:%u", (int)(colon - url), url, port);
}

int
front_tls_listen(struct front *f, const char *url, char *bound, size_t len)
{
	char host[256], port[8];
	const char *why = NULL;
	int rv, fd, family;

	if (url_split(url, &family, host, sizeof(host), port, sizeof(port))
	    != 0) {
		log_err("cannot listen on %s: not tls+tcp://HOST:PORT", url);
		return HPCXL_ECONFIG;
	}
	if ((fd = listen_host(host, port, family, &why)) < 0) {
		log_err("cannot listen on %s: %s", url,
		    why != NULL ? why : strerror(errno));
		return why != NULL ? HPCXL_ECONFIG : HPCXL_ETRANSPORT;
	}
	if ((rv = front_add_listener(f, fd, &front_tls_ops, NULL)) != 0) {
		close(fd);
		log_err("cannot listen on %s: %s", url, hpcxl_strerror(rv));
		return rv;
	}
	bound_url(url, fd, bound, len);
	return 0;
}
