/* One SP survey over TLS with mbedTLS alone (see sp_tls.h). */
#include "sp_tls.h"

#include "hpcxl/common/proto.h"
#include "hpcxl/common/util.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* The connection header of a surveyor, and of the respondent it expects
 * (PROTOCOL.md §1.4). */
static const unsigned char surveyor_header[8]
    = { 0x00, 'S', 'P', 0x00, 0x00, 0x62, 0x00, 0x00 };
static const unsigned char respondent_header[8]
    = { 0x00, 'S', 'P', 0x00, 0x00, 0x63, 0x00, 0x00 };

struct tls_link {
	mbedtls_net_context net;
	mbedtls_ssl_context ssl;
	mbedtls_ssl_config conf;
	mbedtls_x509_crt ca, crt;
	mbedtls_pk_context key;
	mbedtls_entropy_context entropy;
	mbedtls_ctr_drbg_context drbg;
};

static void
link_init(struct tls_link *l)
{
	mbedtls_net_init(&l->net);
	mbedtls_ssl_init(&l->ssl);
	mbedtls_ssl_config_init(&l->conf);
	mbedtls_x509_crt_init(&l->ca);
	mbedtls_x509_crt_init(&l->crt);
	mbedtls_pk_init(&l->key);
	mbedtls_entropy_init(&l->entropy);
	mbedtls_ctr_drbg_init(&l->drbg);
}

static void
link_free(struct tls_link *l)
{
	mbedtls_ssl_close_notify(&l->ssl);
	mbedtls_net_free(&l->net);
	mbedtls_ssl_free(&l->ssl);
	mbedtls_ssl_config_free(&l->conf);
	mbedtls_x509_crt_free(&l->ca);
	mbedtls_x509_crt_free(&l->crt);
	mbedtls_pk_free(&l->key);
	mbedtls_ctr_drbg_free(&l->drbg);
	mbedtls_entropy_free(&l->entropy);
}

static int
say(const char *what, int mbed)
{
	char text[160];

	mbedtls_strerror(mbed, text, sizeof(text));
	fprintf(stderr, "sp_tls: %s: %s\n", what, text);
	return -1;
}

/* Host and port of tls+tcp[46]://HOST:PORT ([v6] brackets dropped). */
static int
split_url(const char *url, char *host, size_t hlen, char *port, size_t plen)
{
	const char *start = strstr(url, "://"), *colon = strrchr(url, ':');
	size_t n;

	if (start == NULL || colon == NULL || colon < start + 3)
		return -1;
	start += 3;
	n = (size_t)(colon - start);
	if (n > 1 && start[0] == '[' && start[n - 1] == ']') {
		start++;
		n -= 2;
	}
	if (n == 0 || n >= hlen || strlen(colon + 1) >= plen)
		return -1;
	memcpy(host, start, n);
	host[n] = '\0';
	snprintf(port, plen, "%s", colon + 1);
	return 0;
}

/* The one curve a p256_only client offers (the list ends with NONE). */
static const mbedtls_ecp_group_id p256_only[]
    = { MBEDTLS_ECP_DP_SECP256R1, MBEDTLS_ECP_DP_NONE };

/* The client's configuration: its files, the agent's CA, the name. */
static int
link_setup(struct tls_link *l, const struct sp_tls_client *c, int timeout_ms)
{
	int rv;

	if ((rv = mbedtls_ctr_drbg_seed(
	         &l->drbg, mbedtls_entropy_func, &l->entropy, NULL, 0))
	        != 0
	    || (rv = mbedtls_x509_crt_parse_file(&l->ca, c->ca)) != 0
	    || (rv = mbedtls_x509_crt_parse_file(&l->crt, c->cert)) != 0
	    || (rv = mbedtls_pk_parse_keyfile(&l->key, c->key, NULL)) != 0
	    || (rv = mbedtls_ssl_config_defaults(&l->conf,
	            MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
	            MBEDTLS_SSL_PRESET_DEFAULT))
	        != 0)
		return say("setting up", rv);
	mbedtls_ssl_conf_authmode(&l->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
	mbedtls_ssl_conf_ca_chain(&l->conf, &l->ca, NULL);
	mbedtls_ssl_conf_rng(&l->conf, mbedtls_ctr_drbg_random, &l->drbg);
	mbedtls_ssl_conf_read_timeout(&l->conf, (uint32_t)timeout_ms);
	if (c->p256_only)
		mbedtls_ssl_conf_curves(&l->conf, p256_only);
	if ((rv = mbedtls_ssl_conf_own_cert(&l->conf, &l->crt, &l->key)) != 0
	    || (rv = mbedtls_ssl_setup(&l->ssl, &l->conf)) != 0
	    || (rv = mbedtls_ssl_set_hostname(&l->ssl, c->server_name)) != 0)
		return say("setting up", rv);
	return 0;
}

static int
link_connect(struct tls_link *l, const char *url)
{
	char host[256], port[16];
	int rv, one = 1;

	if (split_url(url, host, sizeof(host), port, sizeof(port)) != 0) {
		fprintf(stderr, "sp_tls: not a TLS URL: %s\n", url);
		return -1;
	}
	if ((rv = mbedtls_net_connect(
	         &l->net, host, port, MBEDTLS_NET_PROTO_TCP))
	    != 0)
		return say("connect", rv);
	/* mbedTLS writes each handshake message of a flight on its own:
	 * with Nagle's algorithm every flight waited for the agent's delayed
	 * ACK (about 40 ms a handshake). */
	(void)setsockopt(
	    l->net.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	mbedtls_ssl_set_bio(&l->ssl, &l->net, mbedtls_net_send, NULL,
	    mbedtls_net_recv_timeout);
	while ((rv = mbedtls_ssl_handshake(&l->ssl)) != 0) {
		if (rv != MBEDTLS_ERR_SSL_WANT_READ
		    && rv != MBEDTLS_ERR_SSL_WANT_WRITE)
			return say("handshake", rv);
	}
	return 0;
}

static int
write_all(struct tls_link *l, const unsigned char *buf, size_t len)
{
	while (len > 0) {
		int rv = mbedtls_ssl_write(&l->ssl, buf, len);

		if (rv == MBEDTLS_ERR_SSL_WANT_READ
		    || rv == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (rv <= 0)
			return say("write", rv);
		buf += rv;
		len -= (size_t)rv;
	}
	return 0;
}

/* Exactly len bytes, or -1 (timeout, close, error). */
static int
read_exact(struct tls_link *l, unsigned char *buf, size_t len)
{
	while (len > 0) {
		int rv = mbedtls_ssl_read(&l->ssl, buf, len);

		if (rv == MBEDTLS_ERR_SSL_WANT_READ
		    || rv == MBEDTLS_ERR_SSL_WANT_WRITE)
			continue;
		if (rv == 0)
			return say("read", MBEDTLS_ERR_SSL_CONN_EOF);
		if (rv < 0)
			return say("read", rv);
		buf += rv;
		len -= (size_t)rv;
	}
	return 0;
}

static void
put_be(unsigned char *out, uint64_t v, int nbytes)
{
	for (int i = nbytes - 1; i >= 0; i--, v >>= 8)
		out[i] = (unsigned char)(v & 0xff);
}

static uint64_t
get_be(const unsigned char *in, int nbytes)
{
	uint64_t v = 0;

	for (int i = 0; i < nbytes; i++)
		v = v << 8 | in[i];
	return v;
}

/*
 * Our connection header, then the survey: length, survey id, body, in one
 * record: as two small writes, Nagle's algorithm held the second until the
 * agent's delayed ACK of the first (tens of ms a survey).
 */
static int
send_survey(struct tls_link *l, uint32_t id, const void *frame, size_t len)
{
	size_t hl = sizeof(surveyor_header);
	unsigned char *msg = malloc(hl + len + 12);
	int rv;

	if (msg == NULL)
		return -1;
	memcpy(msg, surveyor_header, hl);
	put_be(msg + hl, len + 4, 8);
	put_be(msg + hl + 8, id, 4);
	memcpy(msg + hl + 12, frame, len);
	rv = write_all(l, msg, hl + len + 12);
	free(msg);
	return rv;
}

/* The agent's connection header, then one message answering id. */
static int
read_reply(struct tls_link *l, uint32_t id, unsigned char **body, size_t *len)
{
	unsigned char hdr[8], word[8], *msg;
	uint64_t n;

	if (read_exact(l, hdr, sizeof(hdr)) != 0
	    || memcmp(hdr, respondent_header, sizeof(hdr)) != 0
	    || read_exact(l, word, sizeof(word)) != 0)
		return -1;
	n = get_be(word, 8);
	if (n < 4 || n > PROTO_MAX_REPLY + 4 || (msg = malloc(n)) == NULL)
		return -1;
	if (read_exact(l, msg, n) != 0 || get_be(msg, 4) != id) {
		free(msg);
		return -1;
	}
	memmove(msg, msg + 4, n - 4);
	*body = msg;
	*len = n - 4;
	return 0;
}

/* One survey; body NULL: hang up once it is sent, without reading;
 * frame NULL too: once the TLS handshake is done, sending nothing. */
static int
survey(const char *url, const struct sp_tls_client *c, const void *frame,
    size_t len, int timeout_ms, unsigned char **body, size_t *body_len)
{
	uint32_t id = (uint32_t)util_random_u64() | 0x80000000u;
	struct tls_link l;
	int rv;

	link_init(&l);
	rv = link_setup(&l, c, timeout_ms);
	if (rv == 0)
		rv = link_connect(&l, url);
	if (rv == 0 && frame != NULL)
		rv = send_survey(&l, id, frame, len);
	if (rv == 0 && body != NULL)
		rv = read_reply(&l, id, body, body_len);
	link_free(&l);
	return rv;
}

int
sp_tls_survey(const char *url, const struct sp_tls_client *c,
    const void *frame, size_t len, int timeout_ms, unsigned char **body,
    size_t *body_len)
{
	return survey(url, c, frame, len, timeout_ms, body, body_len);
}

int
sp_tls_survey_hangup(const char *url, const struct sp_tls_client *c,
    const void *frame, size_t len, int timeout_ms)
{
	return survey(url, c, frame, len, timeout_ms, NULL, NULL);
}

int
sp_tls_hangup_after_handshake(
    const char *url, const struct sp_tls_client *c, int timeout_ms)
{
	return survey(url, c, NULL, 0, timeout_ms, NULL, NULL);
}
