/*
 * One survey over tls+tcp:// without nng: a blocking mbedTLS client that
 * speaks the SP framing of PROTOCOL.md §1.4 itself (connection header,
 * 8-byte length, survey id, body).
 *
 * Why not nng: in nng 1.5.2 a TLS client connection that ends (closed by
 * us, or by an agent that stops or refuses the caller) can leave the
 * surveyor's pipe waiting forever for a receive its TLS layer never
 * completes; that pipe then holds nng's one reaper thread, and every later
 * close in the process hangs, Criterion's own included. The tests of who
 * may do what connect as many identities, and are refused on purpose.
 */
#ifndef HPCXL_TESTS_SP_TLS_H
#define HPCXL_TESTS_SP_TLS_H

#include <stdbool.h>
#include <stddef.h>

/* The PEM files a client shows, and the name the agent's certificate
 * must carry. p256_only: offer only P-256 for the key exchange; mbedTLS's
 * default offer lets the agent pick a larger curve, which costs several
 * times the CPU per handshake on both sides (the stress test makes
 * thousands of handshakes; what it tests is the agent's close path). */
struct sp_tls_client {
	const char *cert, *key, *ca;
	const char *server_name;
	bool p256_only;
};

/*
 * Connects to url (tls+tcp://HOST:PORT, tls+tcp4, tls+tcp6) as c, sends
 * frame as one survey and waits up to timeout_ms for its reply. Returns 0
 * with the reply's body in *body (malloc'd, *len bytes), or -1 (no TLS
 * session, connection closed, wrong survey id, timeout), with why on
 * stderr.
 */
int sp_tls_survey(const char *url, const struct sp_tls_client *c,
    const void *frame, size_t len, int timeout_ms, unsigned char **body,
    size_t *body_len);

/*
 * A controller that hangs up before the reply: connects to url as c,
 * completes the handshake, sends frame as one survey and closes the
 * connection (close_notify, then the socket) without reading. Returns 0,
 * or -1 with why on stderr.
 */
int sp_tls_survey_hangup(const char *url, const struct sp_tls_client *c,
    const void *frame, size_t len, int timeout_ms);

/*
 * A client that hangs up before SP's handshake: connects to url as c,
 * completes the TLS handshake and closes the connection (close_notify,
 * then the socket) without sending a byte of SP. Returns 0, or -1 with
 * why on stderr.
 */
int sp_tls_hangup_after_handshake(
    const char *url, const struct sp_tls_client *c, int timeout_ms);

#endif
