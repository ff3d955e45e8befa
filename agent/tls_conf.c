#include "tls_conf.h"
#include "caller.h"

#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include <errno.h>
#include <mbedtls/error.h>
#include <mbedtls/oid.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

/* Key exchange curves, cheapest first: the server's order decides. */
static const mbedtls_ecp_group_id cheap_curves_first[] = {
	MBEDTLS_ECP_DP_CURVE25519,
	MBEDTLS_ECP_DP_SECP256R1,
	MBEDTLS_ECP_DP_SECP384R1,
	MBEDTLS_ECP_DP_SECP521R1,
	MBEDTLS_ECP_DP_NONE,
};

const char *
tls_conf_strerror(int rv, char *buf, size_t len)
{
	mbedtls_strerror(rv, buf, len);
	return buf;
}

/* mbedTLS's random source: the kernel's (getrandom(2) is thread-safe and
 * never runs dry once the pool is seeded, long before an agent starts). */
static int
conf_random(void *arg, unsigned char *buf, size_t len)
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

/* pem is NUL-terminated text; mbedTLS wants the NUL counted. */
static int
parse_crt(mbedtls_x509_crt *crt, const char *pem)
{
	return mbedtls_x509_crt_parse(
	    crt, (const unsigned char *)pem, strlen(pem) + 1);
}

static int
conf_fill(struct tls_conf *c, const struct tls_pem *pem)
{
	int rv;

	if ((rv = mbedtls_ssl_config_defaults(&c->ssl, MBEDTLS_SSL_IS_SERVER,
	         MBEDTLS_SSL_TRANSPORT_STREAM, MBEDTLS_SSL_PRESET_DEFAULT))
	        != 0
	    || (rv = parse_crt(&c->own, pem->cert)) != 0
	    || (rv = mbedtls_pk_parse_key(&c->key,
	            (const unsigned char *)pem->key, strlen(pem->key) + 1,
	            NULL, 0))
	        != 0
	    || (rv = parse_crt(&c->ca, pem->ca)) != 0
	    || (rv = mbedtls_ssl_conf_own_cert(&c->ssl, &c->own, &c->key))
	        != 0)
		return rv;
	mbedtls_ssl_conf_ca_chain(&c->ssl, &c->ca, NULL);
	mbedtls_ssl_conf_authmode(&c->ssl, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_min_version(
	    &c->ssl, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_max_version(
	    &c->ssl, MBEDTLS_SSL_MAJOR_VERSION_3, MBEDTLS_SSL_MINOR_VERSION_3);
	mbedtls_ssl_conf_curves(&c->ssl, cheap_curves_first);
	mbedtls_ssl_conf_rng(&c->ssl, conf_random, NULL);
	return 0;
}

int
tls_conf_init(
    struct tls_conf *c, const struct tls_pem *pem, char *err, size_t errlen)
{
	char why[160];
	int rv;

	mbedtls_ssl_config_init(&c->ssl);
	mbedtls_x509_crt_init(&c->ca);
	mbedtls_x509_crt_init(&c->own);
	mbedtls_pk_init(&c->key);
	if (pem->cert == NULL || pem->key == NULL || pem->ca == NULL) {
		snprintf(err, errlen,
		    "a certificate, its key and a CA are "
		    "needed");
		return HPCXL_ECONFIG;
	}
	if ((rv = conf_fill(c, pem)) != 0) {
		snprintf(err, errlen, "TLS setup: %s",
		    tls_conf_strerror(rv, why, sizeof(why)));
		return HPCXL_ECONFIG;
	}
	return 0;
}

void
tls_conf_fini(struct tls_conf *c)
{
	mbedtls_ssl_config_free(&c->ssl);
	mbedtls_x509_crt_free(&c->ca);
	mbedtls_x509_crt_free(&c->own);
	mbedtls_pk_free(&c->key);
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

/* The CN as a C string, or NULL with why. */
static const char *
peer_cn(const mbedtls_ssl_context *ssl, char *out, const char **why)
{
	const mbedtls_x509_crt *crt = mbedtls_ssl_get_peer_cert(ssl);
	const mbedtls_x509_name *cn;

	if (crt == NULL || mbedtls_ssl_get_verify_result(ssl) != 0) {
		*why = "no verified certificate from the peer";
		return NULL;
	}
	if ((cn = subject_cn(crt, why)) == NULL)
		return NULL;
	if (cn->val.len == 0 || cn->val.len > HPCXL_IDENTITY_MAX) {
		*why = "its certificate's CN is empty or too long";
		return NULL;
	}
	if (memchr(cn->val.p, '\0', cn->val.len) != NULL) {
		*why = "its certificate's CN holds a NUL byte";
		return NULL;
	}
	memcpy(out, cn->val.p, cn->val.len);
	out[cn->val.len] = '\0';
	return out;
}

int
tls_conf_identity(
    const mbedtls_ssl_context *ssl, char *out, char *whybuf, size_t whylen)
{
	const char *why = NULL;

	if (peer_cn(ssl, out, &why) == NULL)
		snprintf(whybuf, whylen, "%s", why);
	else if (!util_valid_identity(out))
		snprintf(whybuf, whylen,
		    "its certificate's CN is not an identity (printable "
		    "ASCII, no comma, no space at either end)");
	else if (caller_identity_reserved(out))
		snprintf(whybuf, whylen,
		    "its certificate's CN '%s' is a reserved identity", out);
	else
		return 0;
	return HPCXL_EREFUSED;
}
