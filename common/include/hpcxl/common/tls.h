/*
 * Mutual TLS material shared by the agent and libhpcxl: the PEM files of a
 * certificate, its key and a CA, read and checked here so that every
 * mistake is named with its file (a missing or unreadable file, a file with
 * no certificate, an encrypted key, a key that is not the certificate's)
 * before nng or the agent's front sees them, and the client's nng TLS
 * configurations built from them.
 *
 * nng 1.5.2 on Debian uses mbedTLS 2.28 (TLS 1.2): its configurations match
 * a peer's name against DNS names only (subjectAltName dNSName, else the
 * CN), never against an IP address SAN.
 */
#ifndef HPCXL_COMMON_TLS_H
#define HPCXL_COMMON_TLS_H

#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>

#include <stdbool.h>
#include <stddef.h>

/* Longest TLS file read: a certificate chain or a CA bundle fits. */
#define TLS_FILE_MAX (1024 * 1024)

/* The text of the files, NUL-terminated; NULL where no file was given. */
struct tls_pem {
	char *cert; /* our certificate, then its chain */
	char *key; /* the certificate's private key, unencrypted */
	char *ca; /* the CA certificates a peer's certificate must chain to */
};

/*
 * Reads and checks the files named (NULL: not given). cert and key go
 * together. Returns 0 and fills *t (free with tls_pem_free()), or
 * HPCXL_ECONFIG with a message naming the file in err (HPCXL_ENOMEM).
 */
int tls_pem_load(struct tls_pem *t, const char *cert_file,
    const char *key_file, const char *ca_file, char *err, size_t errlen);

void tls_pem_free(struct tls_pem *t);

/* True when url's scheme is one of nng's TLS over TCP ("tls+tcp://"...). */
bool tls_url(const char *url);

/*
 * A new nng TLS configuration for a client (libhpcxl's dialers) from t: our
 * certificate and key when t has them, the CA when it has one, the agent's
 * certificate required and checked, and the name it must carry
 * (server_name: the host of the node's URL). The agent does not use nng's
 * TLS (agent/front.h). Returns 0 and *out (release with
 * nng_tls_config_free()), or HPCXL_ECONFIG with why in err.
 */
int tls_client_config_new(const struct tls_pem *t, const char *server_name,
    nng_tls_config **out, char *err, size_t errlen);

#endif
