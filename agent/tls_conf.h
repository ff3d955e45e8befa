/*
 * The TLS side of the agent's front (front.h): an mbedTLS server
 * configuration made from the agent's certificate, key and CA, and the
 * caller's identity read from a finished handshake.
 *
 * What a connection gets: TLS 1.2 (mbedTLS 2.28 has no 1.3), mbedTLS's
 * default cipher suites, a client certificate required and verified against
 * the CA, no session tickets or caches. Key exchange prefers the cheap
 * curves (X25519, then P-256) to mbedTLS's default order, which starts
 * with secp521r1: a handshake costs several times less CPU on both sides,
 * and every client in use (nng's mbedTLS engine, OpenSSL) offers them.
 */
#ifndef HPCXL_AGENT_TLS_CONF_H
#define HPCXL_AGENT_TLS_CONF_H

#include "hpcxl/common/tls.h"

#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stddef.h>

struct tls_conf {
	mbedtls_ssl_config ssl;
	mbedtls_x509_crt ca;
	mbedtls_x509_crt own; /* our certificate and its chain */
	mbedtls_pk_context key; /* mbedTLS points into these */
};

/*
 * Fills c from pem (which must hold a certificate, its key and a CA).
 * Returns 0, or HPCXL_ECONFIG with mbedTLS's reason in err; c needs
 * tls_conf_fini() either way.
 */
int tls_conf_init(
    struct tls_conf *c, const struct tls_pem *pem, char *err, size_t errlen);

void tls_conf_fini(struct tls_conf *c);

/*
 * The caller's identity after ssl's handshake: the single CN of the
 * verified client certificate, if it is an identity (util_valid_identity())
 * and not a reserved one (caller.h). Returns 0 with the identity in out (at
 * least HPCXL_IDENTITY_MAX + 1 bytes), or HPCXL_EREFUSED with why (a
 * sentence for a log line) in whybuf.
 */
int tls_conf_identity(
    const mbedtls_ssl_context *ssl, char *out, char *whybuf, size_t whylen);

/* mbedTLS's text for its error code rv, in buf. */
const char *tls_conf_strerror(int rv, char *buf, size_t len);

#endif
