/*
 * An nng TLS engine over mbedTLS 2.28 that remembers its peers' CNs (see
 * tls_engine.h for why and how the agent reads them). Written from the
 * contract of <nng/supplemental/tls/engine.h>; what a connection does on
 * the wire is what nng 1.5.2's own mbedTLS engine does: TLS 1.2, mbedTLS's
 * default preset (cipher suites, curves), no session tickets or caches,
 * a client verifies its peer unless told otherwise, a server asks for a
 * certificate only when its configuration's auth mode says so.
 */
#include "tls_engine.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/log.h"
#include "hpcxl/common/util.h"

#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/oid.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/version.h>
#include <mbedtls/x509_crl.h>
#include <mbedtls/x509_crt.h>
#include <nng/supplemental/tls/engine.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

/* The CN is read from the certificate mbedTLS keeps after the handshake. */
#ifndef MBEDTLS_SSL_KEEP_PEER_CERTIFICATE
#error                                                                        \
    "mbedTLS must keep the peer certificate (the caller's CN is read from it)"
#endif

/* A certificate and its key, as the configuration shows them to peers. */
struct own_cert {
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	struct own_cert *next;
};

struct nng_tls_engine_config {
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca;
	mbedtls_x509_crl crl;
	struct own_cert *own; /* mbedTLS points into these: freed last */
	char *server_name; /* the name a server's certificate must carry */
};

struct nng_tls_engine_conn {
	mbedtls_ssl_context ssl;
	bool handshake_done;
	/* The peer certificate's CN once the handshake is done; "" with
	 * peer_cn_why saying why when there is none to give. */
	char peer_cn[HPCXL_IDENTITY_MAX + 1];
	const char *peer_cn_why;
};

/* ---- the CN query (tls_engine.h) ------------------------------------- */

struct peer_cn_query {
	char *cn;
	size_t len;
	const char *why;
	bool answered;
};

/* Set only while tls_engine_peer_cn() waits in nng_pipe_get_bool() on
 * this thread: the engine's "verified" op answers it. */
static _Thread_local struct peer_cn_query *pending_query;

static void
answer_query(const struct nng_tls_engine_conn *c, bool verified)
{
	struct peer_cn_query *q = pending_query;

	q->answered = true;
	if (!verified)
		q->why = "the connection is not verified";
	else if (c->peer_cn[0] == '\0')
		q->why = c->peer_cn_why;
	else if (strlen(c->peer_cn) >= q->len)
		q->why = "its certificate's CN is too long";
	else {
		memcpy(q->cn, c->peer_cn, strlen(c->peer_cn) + 1);
		q->why = NULL;
	}
}

int
tls_engine_peer_cn(nng_pipe pipe, char *cn, size_t len, const char **why)
{
	struct peer_cn_query q = { .cn = cn, .len = len };
	bool verified = false;
	int rv;

	pending_query = &q;
	rv = nng_pipe_get_bool(pipe, NNG_OPT_TLS_VERIFIED, &verified);
	pending_query = NULL;
	if (rv != 0 || !q.answered)
		q.why = "not a TLS connection of the agent";
	if (why != NULL)
		*why = q.why;
	return q.why == NULL ? 0 : HPCXL_ENOTFOUND;
}

/* ---- errors and randomness ------------------------------------------- */

/* nng's codes for mbedTLS's: the ones nng's own engine maps, the same way
 * (a refused peer certificate is NNG_EPEERAUTH in nng's statistics). */
static int
engine_error(int mbed)
{
	switch (mbed) {
	case MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE:
	case MBEDTLS_ERR_SSL_CA_CHAIN_REQUIRED:
	case MBEDTLS_ERR_SSL_PEER_VERIFY_FAILED:
	case MBEDTLS_ERR_SSL_NO_USABLE_CIPHERSUITE:
		return NNG_EPEERAUTH;
	case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
		return NNG_ECONNREFUSED;
	case MBEDTLS_ERR_SSL_ALLOC_FAILED:
		return NNG_ENOMEM;
	case MBEDTLS_ERR_SSL_TIMEOUT:
		return NNG_ETIMEDOUT;
	case MBEDTLS_ERR_SSL_CONN_EOF:
		return NNG_ECLOSED;
	default:
		return NNG_ECRYPTO;
	}
}

/* mbedTLS's random source: the kernel's (getrandom(2) is thread-safe and
 * never runs dry once the pool is seeded, which it is long before an agent
 * starts). */
static int
engine_random(void *arg, unsigned char *buf, size_t len)
{
	(void)arg;
	while (len > 0) {
		ssize_t n = getrandom(buf, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- configurations -------------------------------------------------- */

static void
config_fini(nng_tls_engine_config *cfg)
{
	struct own_cert *o;

	mbedtls_ssl_config_free(&cfg->conf);
	while ((o = cfg->own) != NULL) {
		cfg->own = o->next;
		mbedtls_x509_crt_free(&o->crt);
		mbedtls_pk_free(&o->key);
		free(o);
	}
	mbedtls_x509_crt_free(&cfg->ca);
	mbedtls_x509_crl_free(&cfg->crl);
	free(cfg->server_name);
}

/* TLS 1.2 at both ends until version() says otherwise, as nng's engine. */
static void
config_set_versions(mbedtls_ssl_config *conf, int min_minor, int max_minor)
{
	mbedtls_ssl_conf_min_version(
	    conf, MBEDTLS_SSL_MAJOR_VERSION_3, min_minor);
	mbedtls_ssl_conf_max_version(
	    conf, MBEDTLS_SSL_MAJOR_VERSION_3, max_minor);
}

static int
config_init(nng_tls_engine_config *cfg, nng_tls_mode mode)
{
	bool server = mode == NNG_TLS_MODE_SERVER;
	int rv;

	mbedtls_ssl_config_init(&cfg->conf);
	mbedtls_x509_crt_init(&cfg->ca);
	mbedtls_x509_crl_init(&cfg->crl);
	rv = mbedtls_ssl_config_defaults(&cfg->conf,
	    server ? MBEDTLS_SSL_IS_SERVER : MBEDTLS_SSL_IS_CLIENT,
	    MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT);
	if (rv != 0) {
		config_fini(cfg);
		return engine_error(rv);
	}
	/* A client checks its server; a server asks for a certificate only
	 * when auth() says so (the agent's always does: tls_config_new()). */
	mbedtls_ssl_conf_authmode(&cfg->conf,
	    server ? MBEDTLS_SSL_VERIFY_NONE : MBEDTLS_SSL_VERIFY_REQUIRED);
	config_set_versions(&cfg->conf, MBEDTLS_SSL_MINOR_VERSION_3,
	    MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_rng(&cfg->conf, engine_random, NULL);
	return 0;
}

static int
config_server_name(nng_tls_engine_config *cfg, const char *name)
{
	char *copy = strdup(name);

	if (copy == NULL)
		return NNG_ENOMEM;
	free(cfg->server_name);
	cfg->server_name = copy;
	return 0;
}

static int
config_auth(nng_tls_engine_config *cfg, nng_tls_auth_mode mode)
{
	switch (mode) {
	case NNG_TLS_AUTH_MODE_NONE:
		mbedtls_ssl_conf_authmode(&cfg->conf, MBEDTLS_SSL_VERIFY_NONE);
		return 0;
	case NNG_TLS_AUTH_MODE_OPTIONAL:
		mbedtls_ssl_conf_authmode(
		    &cfg->conf, MBEDTLS_SSL_VERIFY_OPTIONAL);
		return 0;
	case NNG_TLS_AUTH_MODE_REQUIRED:
		mbedtls_ssl_conf_authmode(
		    &cfg->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
		return 0;
	}
	return NNG_EINVAL;
}

/* pem is NUL-terminated text; mbedTLS wants the NUL counted. */
static size_t
pem_len(const char *pem)
{
	return strlen(pem) + 1;
}

static int
config_ca_chain(nng_tls_engine_config *cfg, const char *certs, const char *crl)
{
	int rv = mbedtls_x509_crt_parse(
	    &cfg->ca, (const unsigned char *)certs, pem_len(certs));

	if (rv == 0 && crl != NULL)
		rv = mbedtls_x509_crl_parse(
		    &cfg->crl, (const unsigned char *)crl, pem_len(crl));
	if (rv != 0)
		return engine_error(rv);
	mbedtls_ssl_conf_ca_chain(&cfg->conf, &cfg->ca, &cfg->crl);
	return 0;
}

static int
own_cert_parse(
    struct own_cert *o, const char *cert, const char *key, const char *pass)
{
	int rv = mbedtls_x509_crt_parse(
	    &o->crt, (const unsigned char *)cert, pem_len(cert));

	if (rv == 0)
		rv = mbedtls_pk_parse_key(&o->key, (const unsigned char *)key,
		    pem_len(key), (const unsigned char *)pass,
		    pass != NULL ? strlen(pass) : 0);
	return rv;
}

/* May be called more than once (an RSA and an EC certificate, say). */
static int
config_own_cert(nng_tls_engine_config *cfg, const char *cert, const char *key,
    const char *pass)
{
	struct own_cert *o = calloc(1, sizeof(*o));
	int rv;

	if (o == NULL)
		return NNG_ENOMEM;
	mbedtls_x509_crt_init(&o->crt);
	mbedtls_pk_init(&o->key);
	rv = own_cert_parse(o, cert, key, pass);
	if (rv == 0)
		rv = mbedtls_ssl_conf_own_cert(&cfg->conf, &o->crt, &o->key);
	if (rv != 0) {
		mbedtls_x509_crt_free(&o->crt);
		mbedtls_pk_free(&o->key);
		free(o);
		return engine_error(rv);
	}
	o->next = cfg->own;
	cfg->own = o;
	return 0;
}

/* mbedTLS's minor version of an nng TLS version; -1 when it has none. */
static int
version_minor(nng_tls_version v, bool as_max)
{
	switch (v) {
	case NNG_TLS_1_0:
		return MBEDTLS_SSL_MINOR_VERSION_1;
	case NNG_TLS_1_1:
		return MBEDTLS_SSL_MINOR_VERSION_2;
	case NNG_TLS_1_2:
		return MBEDTLS_SSL_MINOR_VERSION_3;
	case NNG_TLS_1_3:
		/* Not in mbedTLS 2.28: "up to 1.3" is up to 1.2. */
		return as_max ? MBEDTLS_SSL_MINOR_VERSION_3 : -1;
	}
	return -1;
}

static int
config_version(
    nng_tls_engine_config *cfg, nng_tls_version min, nng_tls_version max)
{
	int lo = version_minor(min, false), hi = version_minor(max, true);

	if (min > max || lo < 0 || hi < 0)
		return NNG_ENOTSUP;
	config_set_versions(&cfg->conf, lo, hi);
	return 0;
}

/* ---- connections ------------------------------------------------------ */

/* What mbedTLS wants from an I/O callback, for nng's answer rv about n
 * bytes. */
static int
bio_result(int rv, size_t n, int would_block, int failed)
{
	if (rv == NNG_EAGAIN)
		return would_block;
	return rv == 0 ? (int)n : failed;
}

static int
bio_send(void *tls, const unsigned char *buf, size_t len)
{
	size_t n = len;
	int rv = nng_tls_engine_send(tls, buf, &n);

	return bio_result(
	    rv, n, MBEDTLS_ERR_SSL_WANT_WRITE, MBEDTLS_ERR_NET_SEND_FAILED);
}

static int
bio_recv(void *tls, unsigned char *buf, size_t len)
{
	size_t n = len;
	int rv = nng_tls_engine_recv(tls, buf, &n);

	return bio_result(
	    rv, n, MBEDTLS_ERR_SSL_WANT_READ, MBEDTLS_ERR_NET_RECV_FAILED);
}

/* The context is made first: fini may follow a failed init. */
static int
conn_init(nng_tls_engine_conn *c, void *tls, nng_tls_engine_config *cfg)
{
	int rv;

	mbedtls_ssl_init(&c->ssl);
	mbedtls_ssl_set_bio(&c->ssl, tls, bio_send, bio_recv, NULL);
	if ((rv = mbedtls_ssl_setup(&c->ssl, &cfg->conf)) != 0)
		return engine_error(rv);
	if (cfg->server_name != NULL
	    && (rv = mbedtls_ssl_set_hostname(&c->ssl, cfg->server_name)) != 0)
		return engine_error(rv);
	return 0;
}

static void
conn_fini(nng_tls_engine_conn *c)
{
	mbedtls_ssl_free(&c->ssl);
}

/* A close-notify, whether or not it gets through; the TCP connection is
 * nng's to close. */
static void
conn_close(nng_tls_engine_conn *c)
{
	(void)mbedtls_ssl_close_notify(&c->ssl);
}

/* mbedTLS's result of a read or write: a count, or nng's error. */
static int
io_result(int rv, size_t *szp)
{
	if (rv == MBEDTLS_ERR_SSL_WANT_READ
	    || rv == MBEDTLS_ERR_SSL_WANT_WRITE)
		return NNG_EAGAIN;
	if (rv < 0)
		return engine_error(rv);
	*szp = (size_t)rv;
	return 0;
}

static int
conn_recv(nng_tls_engine_conn *c, uint8_t *buf, size_t *szp)
{
	return io_result(mbedtls_ssl_read(&c->ssl, buf, *szp), szp);
}

static int
conn_send(nng_tls_engine_conn *c, const uint8_t *buf, size_t *szp)
{
	return io_result(mbedtls_ssl_write(&c->ssl, buf, *szp), szp);
}

/* The single CN attribute of crt's subject, or NULL with why. */
static const mbedtls_x509_name *
subject_cn(const mbedtls_x509_crt *crt, const char **why)
{
	const mbedtls_x509_name *n, *cn = NULL;

	for (n = &crt->subject; n != NULL; n = n->next) {
		if (n->oid.p == NULL
		    || MBEDTLS_OID_CMP(MBEDTLS_OID_AT_CN, &n->oid))
			continue;
		if (cn != NULL) {
			/* Which one names the caller? Neither. */
			*why
			    = "its certificate's subject has more than one CN";
			return NULL;
		}
		cn = n;
	}
	if (cn == NULL)
		*why = "its certificate's subject has no CN";
	return cn;
}

/* Keeps the peer certificate's CN, as bytes: whether they make an
 * identity is the caller module's to say. */
static void
conn_keep_peer_cn(nng_tls_engine_conn *c)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(&c->ssl);
	const mbedtls_x509_name *cn;

	c->peer_cn[0] = '\0';
	c->peer_cn_why = "no certificate from the peer";
	if (crt == NULL || (cn = subject_cn(crt, &c->peer_cn_why)) == NULL)
		return;
	if (cn->val.len == 0 || cn->val.len >= sizeof(c->peer_cn)) {
		c->peer_cn_why = "its certificate's CN is empty or too long";
		return;
	}
	if (memchr(cn->val.p, '\0', cn->val.len) != NULL) {
		c->peer_cn_why = "its certificate's CN holds a NUL byte";
		return;
	}
	memcpy(c->peer_cn, cn->val.p, cn->val.len);
	c->peer_cn[cn->val.len] = '\0';
	c->peer_cn_why = NULL;
}

static int
conn_handshake(nng_tls_engine_conn *c)
{
	int rv = mbedtls_ssl_handshake(&c->ssl);

	if (rv == MBEDTLS_ERR_SSL_WANT_READ
	    || rv == MBEDTLS_ERR_SSL_WANT_WRITE)
		return NNG_EAGAIN;
	if (rv != 0)
		return engine_error(rv);
	if (!c->handshake_done) {
		conn_keep_peer_cn(c);
		c->handshake_done = true;
	}
	return 0;
}

/* nng's NNG_OPT_TLS_VERIFIED, and the agent's way to the CN. */
static bool
conn_verified(nng_tls_engine_conn *c)
{
	bool verified = mbedtls_ssl_get_verify_result(&c->ssl) == 0;

	if (pending_query != NULL)
		answer_query(c, verified && c->handshake_done);
	return verified;
}

/* ---- the engine ------------------------------------------------------- */

static nng_tls_engine_config_ops config_ops = {
	.size = sizeof(nng_tls_engine_config),
	.init = config_init,
	.fini = config_fini,
	.server = config_server_name,
	.auth = config_auth,
	.ca_chain = config_ca_chain,
	.own_cert = config_own_cert,
	.version = config_version,
};

static nng_tls_engine_conn_ops conn_ops = {
	.size = sizeof(nng_tls_engine_conn),
	.init = conn_init,
	.fini = conn_fini,
	.close = conn_close,
	.handshake = conn_handshake,
	.recv = conn_recv,
	.send = conn_send,
	.verified = conn_verified,
};

static const nng_tls_engine agent_engine = {
	.version = NNG_TLS_ENGINE_VERSION,
	.config_ops = &config_ops,
	.conn_ops = &conn_ops,
	.name = "hpcxl-mbed",
	.description
	= "hpcxl-agent's engine (peer CN) over " MBEDTLS_VERSION_STRING_FULL,
	.fips_mode = false,
};

int
tls_engine_register(void)
{
	int rv;

	/* nng registers its own engine when it starts (nni_init), which
	 * would replace ours: start it first. Asking for the engine's name
	 * is a public call that does. */
	(void)nng_tls_engine_name();
	if ((rv = nng_tls_engine_register(&agent_engine)) != 0) {
		log_err("cannot register the agent's TLS engine: %s",
		    nng_strerror(rv));
		return HPCXL_ESYSTEM;
	}
	return 0;
}
