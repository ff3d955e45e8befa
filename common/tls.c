/*
 * TLS files and configurations (see tls.h). The files are parsed here with
 * mbedTLS, the library nng's TLS engine is built on, only to say precisely
 * what is wrong with them: nng itself would take a key that does not match
 * its certificate and fail every handshake later, without a word about why.
 */
#include "hpcxl/common/tls.h"
#include "hpcxl/common/err.h"
#include "hpcxl/common/util.h"

#include <mbedtls/error.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PEM_CERT_MARK "-----BEGIN CERTIFICATE-----"

/* Reads path whole into a NUL-terminated *out; a PEM file has no NUL. */
static int
tls_read_file(const char *path, char **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "re");
	char *text;
	size_t len;
	int rv = HPCXL_ECONFIG;

	if (f == NULL) {
		util_set_err(err, errlen, "%s: cannot read the file: %s", path,
		    strerror(errno));
		return HPCXL_ECONFIG;
	}
	if ((text = malloc(TLS_FILE_MAX + 2)) == NULL) {
		fclose(f);
		return HPCXL_ENOMEM;
	}
	len = fread(text, 1, TLS_FILE_MAX + 1, f);
	if (ferror(f))
		util_set_err(err, errlen, "%s: cannot read the file: %s", path,
		    strerror(errno));
	else if (len > TLS_FILE_MAX)
		util_set_err(err, errlen,
		    "%s: larger than %d bytes: not a PEM file", path,
		    TLS_FILE_MAX);
	else if (len == 0)
		util_set_err(err, errlen, "%s: the file is empty", path);
	else if (memchr(text, '\0', len) != NULL)
		util_set_err(err, errlen,
		    "%s: contains a NUL byte: not a PEM file", path);
	else
		rv = 0;
	fclose(f);
	if (rv != 0) {
		free(text);
		return rv;
	}
	text[len] = '\0';
	*out = text;
	return 0;
}

/* mbedTLS's text for one of its error codes. */
static const char *
tls_mbed_text(int code, char *buf, size_t len)
{
	mbedtls_strerror(code, buf, len);
	return buf;
}

/* Parses every certificate of pem (the text of path) into crt. */
static int
tls_parse_certs(mbedtls_x509_crt *crt, const char *path, const char *pem,
    char *err, size_t errlen)
{
	int rv = mbedtls_x509_crt_parse(
	    crt, (const unsigned char *)pem, strlen(pem) + 1);
	char why[128];

	if (rv == 0)
		return 0;
	if (strstr(pem, PEM_CERT_MARK) == NULL)
		util_set_err(err, errlen,
		    "%s: no certificate in it (expected PEM, '%s')", path,
		    PEM_CERT_MARK);
	else if (rv < 0)
		util_set_err(err, errlen,
		    "%s: cannot read its certificate: %s", path,
		    tls_mbed_text(rv, why, sizeof(why)));
	else
		util_set_err(err, errlen,
		    "%s: %d of its certificates cannot be read", path, rv);
	return HPCXL_ECONFIG;
}

static int
tls_parse_key(mbedtls_pk_context *key, const char *path, const char *pem,
    char *err, size_t errlen)
{
	int rv = mbedtls_pk_parse_key(
	    key, (const unsigned char *)pem, strlen(pem) + 1, NULL, 0);
	char why[128];

	if (rv == 0)
		return 0;
	if (rv == MBEDTLS_ERR_PK_PASSWORD_REQUIRED)
		util_set_err(err, errlen,
		    "%s: the key is encrypted: hpcxl reads it at start and "
		    "needs it unencrypted (keep it mode 0600)",
		    path);
	else
		util_set_err(err, errlen, "%s: no private key in it: %s", path,
		    tls_mbed_text(rv, why, sizeof(why)));
	return HPCXL_ECONFIG;
}

/* The certificate and key of our own side: both readable, and the key the
 * one of the first certificate of the chain. */
static int
tls_check_own(const char *cert_file, const char *cert_pem,
    const char *key_file, const char *key_pem, char *err, size_t errlen)
{
	mbedtls_x509_crt crt;
	mbedtls_pk_context key;
	int rv;

	mbedtls_x509_crt_init(&crt);
	mbedtls_pk_init(&key);
	rv = tls_parse_certs(&crt, cert_file, cert_pem, err, errlen);
	if (rv == 0)
		rv = tls_parse_key(&key, key_file, key_pem, err, errlen);
	if (rv == 0 && mbedtls_pk_check_pair(&crt.pk, &key) != 0) {
		util_set_err(err, errlen,
		    "%s: the key does not match the certificate in %s",
		    key_file, cert_file);
		rv = HPCXL_ECONFIG;
	}
	mbedtls_pk_free(&key);
	mbedtls_x509_crt_free(&crt);
	return rv;
}

static int
tls_check_ca(const char *ca_file, const char *ca_pem, char *err, size_t errlen)
{
	mbedtls_x509_crt crt;
	int rv;

	mbedtls_x509_crt_init(&crt);
	rv = tls_parse_certs(&crt, ca_file, ca_pem, err, errlen);
	mbedtls_x509_crt_free(&crt);
	return rv;
}

static int
tls_read_own(struct tls_pem *t, const char *cert_file, const char *key_file,
    char *err, size_t errlen)
{
	int rv;

	if (cert_file == NULL && key_file == NULL)
		return 0;
	if (cert_file == NULL || key_file == NULL) {
		util_set_err(err, errlen,
		    cert_file == NULL ? "the key %s comes without its "
		                        "certificate (tls_cert)"
		                      : "the certificate %s comes without its "
		                        "key (tls_key)",
		    cert_file == NULL ? key_file : cert_file);
		return HPCXL_ECONFIG;
	}
	if ((rv = tls_read_file(cert_file, &t->cert, err, errlen)) != 0
	    || (rv = tls_read_file(key_file, &t->key, err, errlen)) != 0)
		return rv;
	return tls_check_own(
	    cert_file, t->cert, key_file, t->key, err, errlen);
}

int
tls_pem_load(struct tls_pem *t, const char *cert_file, const char *key_file,
    const char *ca_file, char *err, size_t errlen)
{
	int rv;

	memset(t, 0, sizeof(*t));
	rv = tls_read_own(t, cert_file, key_file, err, errlen);
	if (rv == 0 && ca_file != NULL
	    && (rv = tls_read_file(ca_file, &t->ca, err, errlen)) == 0)
		rv = tls_check_ca(ca_file, t->ca, err, errlen);
	if (rv != 0)
		tls_pem_free(t);
	return rv;
}

void
tls_pem_free(struct tls_pem *t)
{
	free(t->cert);
	free(t->key);
	free(t->ca);
	memset(t, 0, sizeof(*t));
}

bool
tls_url(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0
	    || strncmp(url, "tls+tcp4://", 11) == 0
	    || strncmp(url, "tls+tcp6://", 11) == 0;
}

int
tls_client_config_new(const struct tls_pem *t, const char *server_name,
    nng_tls_config **out, char *err, size_t errlen)
{
	nng_tls_config *cfg;
	int rv;

	if ((rv = nng_tls_config_alloc(&cfg, NNG_TLS_MODE_CLIENT)) != 0) {
		util_set_err(
		    err, errlen, "cannot set up TLS: %s", nng_strerror(rv));
		return rv == NNG_ENOMEM ? HPCXL_ENOMEM : HPCXL_ECONFIG;
	}
	if (t->cert != NULL)
		rv = nng_tls_config_own_cert(cfg, t->cert, t->key, NULL);
	if (rv == 0 && t->ca != NULL)
		rv = nng_tls_config_ca_chain(cfg, t->ca, NULL);
	if (rv == 0)
		rv = nng_tls_config_auth_mode(cfg, NNG_TLS_AUTH_MODE_REQUIRED);
	if (rv == 0)
		rv = nng_tls_config_server_name(cfg, server_name);
	if (rv != 0) {
		nng_tls_config_free(cfg);
		util_set_err(
		    err, errlen, "cannot set up TLS: %s", nng_strerror(rv));
		return rv == NNG_ENOMEM ? HPCXL_ENOMEM : HPCXL_ECONFIG;
	}
	*out = cfg;
	return 0;
}
