/*
 * SP's framing over ipc:// and over tcp://, and the translation between
 * them, for the front's ipc relays (front.h). After the same 8-byte
 * handshake header ("\0SP\0", the protocol, two zero bytes) the two
 * transports of nng 1.5.2 frame each message differently:
 *
 *   tcp   [length: 8 bytes, big-endian][body]
 *   ipc   [type: 1 byte, always 1][length: 8 bytes, big-endian][body]
 *
 * A translator is fed a byte stream in chunks of any size and writes the
 * other framing: from ipc it drops each type byte (never more bytes out
 * than in), to ipc it adds one before each length (at most
 * SPFRAME_GROWTH(n) bytes out for n in).
 */
#ifndef HPCXL_AGENT_SPFRAME_H
#define HPCXL_AGENT_SPFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The most bytes to_ipc writes for n bytes in: every 8 bytes may hold a
 * whole length (an empty message), each gains a type byte. */
#define SPFRAME_GROWTH(n) ((n) + (n) / 8 + 1)

/* The handshake header both transports begin with, each way. */
#define SPFRAME_HEADER_LEN 8

/* The type byte of every message over ipc. */
#define SPFRAME_IPC_TYPE 1

struct spframe {
	bool to_ipc; /* else from ipc */
	uint8_t header_left; /* of the handshake header, passed as is */
	uint8_t length_got; /* bytes of the current length seen */
	bool in_length; /* between the type byte and the body */
	uint64_t length; /* as read so far */
	uint64_t body_left;
};

/* True when h (SPFRAME_HEADER_LEN bytes) is a handshake header as nng
 * 1.5.2 checks it: "\0SP\0", any protocol, two zero bytes. */
bool spframe_header_valid(const unsigned char *h);

/* A translator at the start of a connection. */
void spframe_init(struct spframe *f, bool to_ipc);

/*
 * Translates in[0..n) to out, which has room for SPFRAME_GROWTH(n) bytes
 * (from ipc: n; out may be in). Returns the bytes written, or -1 when the
 * stream is not SP over ipc (a type byte other than 1): the connection is
 * to be dropped.
 */
long spframe_move(
    struct spframe *f, const unsigned char *in, size_t n, unsigned char *out);

#endif
