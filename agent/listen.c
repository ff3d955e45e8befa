#include "listen.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define LISTEN_IPC_PREFIX "ipc://"

struct listen_setup {
	struct tls_pem tls; /* the TLS front's files, read and checked */
	bool has_tls; /* some URL is tls+tcp:// */
	gid_t ipc_gid;
	bool ipc_chown; /* ipc_group was given */
};

/* ---- the rules --------------------------------------------------------- */

/* 127.0.0.0/8, ::1 or "localhost"; a name is never resolved (it could
 * resolve to anything later), so other names count as not loopback. */
bool
listen_host_is_loopback(const char *host)
{
	struct in6_addr a6;
	struct in_addr a4;

	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

static bool
listen_scheme_is_tcp(const char *scheme)
{
	return strcmp(scheme, "tcp") == 0 || strcmp(scheme, "tcp4") == 0
	    || strcmp(scheme, "tcp6") == 0;
}

enum listen_kind
listen_url_kind(const char *url)
{
	enum listen_kind kind = LISTEN_UNSUPPORTED;
	nng_url *u;

	if (tls_url(url))
		return LISTEN_TLS;
	if (strncmp(url, LISTEN_IPC_PREFIX, strlen(LISTEN_IPC_PREFIX)) == 0)
		return LISTEN_IPC;
	if (nng_url_parse(&u, url) != 0)
		return LISTEN_UNSUPPORTED;
	if (listen_scheme_is_tcp(u->u_scheme))
		kind = listen_host_is_loopback(u->u_hostname)
		    ? LISTEN_TCP_LOOPBACK
		    : LISTEN_TCP_OPEN;
	nng_url_free(u);
	return kind;
}

/* Says why url may not be listened on; 0 when it may. */
static int
listen_check_url(const struct config *c, const char *url)
{
	switch (listen_url_kind(url)) {
	case LISTEN_TLS:
	case LISTEN_TCP_LOOPBACK:
	case LISTEN_IPC:
		return 0;
	case LISTEN_TCP_OPEN:
		if (c->allow_insecure) {
			log_warn("listening on %s with plain tcp:// "
			         "(--insecure): whoever reaches it can run "
			         "and close sessions, and reads every "
			         "request; use tls+tcp://",
			    url);
			return 0;
		}
		log_err("listen URL '%s': plain tcp:// is not authenticated "
		        "or encrypted, so the agent uses it on loopback only "
		        "(127.0.0.0/8, ::1, localhost); use tls+tcp:// with "
		        "tls_cert, tls_key and tls_ca, or allow it with "
		        "--insecure (allow_insecure = true) on a network you "
		        "trust",
		    url);
		return HPCXL_ECONFIG;
	case LISTEN_UNSUPPORTED:
	case LISTEN_FRONT: /* never a URL's kind */
		break;
	}
	log_err("listen URL '%s': the agent listens on tls+tcp://HOST:PORT, "
	        "tcp://HOST:PORT (loopback) or ipc:///PATH only",
	    url);
	return HPCXL_ECONFIG;
}

static bool
listen_any_tls(const struct config *c)
{
	for (size_t i = 0; i < c->nlisten; i++) {
		if (listen_url_kind(c->listen[i]) == LISTEN_TLS)
			return true;
	}
	return false;
}

/* ---- TLS --------------------------------------------------------------- */

/* The name of the first TLS setting c lacks, or NULL. */
static const char *
listen_tls_missing(const struct config *c)
{
	if (c->tls_cert == NULL)
		return "tls_cert (--tls-cert)";
	if (c->tls_key == NULL)
		return "tls_key (--tls-key)";
	if (c->tls_ca == NULL)
		return "tls_ca (--tls-ca)";
	return NULL;
}

static int
listen_tls_load(const struct config *c, struct listen_setup *ls)
{
	const char *missing = listen_tls_missing(c);
	char err[1024] = "";
	int rv;

	if (missing != NULL) {
		log_err("tls+tcp:// listen URLs need tls_cert, tls_key and "
		        "tls_ca: %s is not set",
		    missing);
		return HPCXL_ECONFIG;
	}
	rv = tls_pem_load(
	    &ls->tls, c->tls_cert, c->tls_key, c->tls_ca, err, sizeof(err));
	ls->has_tls = rv == 0;
	if (rv != 0)
		log_err("%s", err[0] != '\0' ? err : hpcxl_strerror(rv));
	return rv;
}

/* ---- ipc --------------------------------------------------------------- */

static int
listen_group_lookup(const char *group, gid_t *gid)
{
	struct group gr, *found = NULL;
	size_t len = 4096;
	char *buf = NULL;
	int rv;

	if (group[strspn(group, "0123456789")] == '\0') {
		*gid = (gid_t)strtoul(group, NULL, 10);
		return 0;
	}
	do {
		char *bigger = realloc(buf, len *= 2);

		if (bigger == NULL) {
			free(buf);
			return HPCXL_ENOMEM;
		}
		buf = bigger;
		rv = getgrnam_r(group, &gr, buf, len, &found);
	} while (rv == ERANGE && len < 1024 * 1024);
	if (found != NULL)
		*gid = gr.gr_gid;
	free(buf);
	if (found != NULL)
		return 0;
	log_err("ipc_group '%s': %s", group,
	    rv != 0 ? strerror(rv) : "no such group");
	return HPCXL_ECONFIG;
}

/* ---- the setup --------------------------------------------------------- */

static int
listen_setup_fill(const struct config *c, struct listen_setup *ls)
{
	int rv = 0;

	for (size_t i = 0; i < c->nlisten && rv == 0; i++)
		rv = listen_check_url(c, c->listen[i]);
	if (rv == 0 && listen_any_tls(c))
		rv = listen_tls_load(c, ls);
	else if (rv == 0 && (c->tls_cert || c->tls_key || c->tls_ca))
		log_notice("TLS files are set but no listen URL is "
		           "tls+tcp://: they are not used");
	if (rv == 0 && c->ipc_group != NULL) {
		rv = listen_group_lookup(c->ipc_group, &ls->ipc_gid);
		ls->ipc_chown = true;
	}
	return rv;
}

int
listen_setup_new(const struct config *c, struct listen_setup **out)
{
	struct listen_setup *ls = calloc(1, sizeof(*ls));
	int rv;

	if (ls == NULL)
		return HPCXL_ENOMEM;
	if ((rv = listen_setup_fill(c, ls)) != 0) {
		listen_setup_free(ls);
		return rv;
	}
	*out = ls;
	return 0;
}

const struct tls_pem *
listen_setup_tls(const struct listen_setup *ls)
{
	return ls->has_tls ? &ls->tls : NULL;
}

bool
listen_setup_ipc_group(const struct listen_setup *ls, gid_t *gid)
{
	*gid = ls->ipc_gid;
	return ls->ipc_chown;
}

void
listen_setup_free(struct listen_setup *ls)
{
	if (ls == NULL)
		return;
	if (ls->has_tls)
		tls_pem_free(&ls->tls);
	free(ls);
}
