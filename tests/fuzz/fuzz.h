/*
 * What the libFuzzer targets of tests/fuzz share (see README.md there).
 *
 * The targets check documented promises (proto.h, config.h, PROTOCOL.md)
 * on whatever the code under test returns, and abort() when one is broken:
 * libFuzzer reports an abort like a crash and saves the input.
 */
#ifndef HPCXL_TESTS_FUZZ_H
#define HPCXL_TESTS_FUZZ_H

#include "hpcxl/common/proto.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* libFuzzer's entry points (declared here for -Wmissing-prototypes). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* Aborts with "fuzz: what" on stderr unless ok. */
void fuzz_require(bool ok, const char *what);

/*
 * Checks that proto_encode() takes m. The encoder refuses what the decoder
 * would refuse (proto.c, PROTOCOL.md §7) and reads every string to its
 * end: a decoded value it refuses means the two disagree on the rules.
 */
void fuzz_require_encodes(const struct proto_msg *m);

/*
 * proto_decode() with its contract checked: on failure the error code, the
 * reason and the untouched out-struct; on success a value the encoder
 * takes (fuzz_require_encodes). Returns what proto_decode returned.
 */
int fuzz_decode(
    const void *buf, size_t len, size_t max_len, struct proto_msg *out);

/*
 * The encoding buf[0..len) of m: it must decode (whatever its size) to a
 * value equal to m, which must encode to the same bytes again. Frees buf.
 */
void fuzz_check_encoding(const struct proto_msg *m, char *buf, size_t len);

/* proto_msg_free(), checked: the message must be all zero after it. */
void fuzz_msg_free(struct proto_msg *m);

/* Deep equality of decoded messages (strings by content). */
bool fuzz_reply_equal(
    const struct proto_reply *a, const struct proto_reply *b);
bool fuzz_msg_equal(const struct proto_msg *a, const struct proto_msg *b);

/*
 * A file that holds the current input, for loaders that take a path (the
 * agent's config_load_file() opens its file twice). It is a memfd opened
 * as /proc/self/fd/N: nothing on disk, so a crash leaves no file behind.
 */
const char *fuzz_file_path(void);
/* Makes the file hold exactly data[0..size). */
void fuzz_file_set(const uint8_t *data, size_t size);

#endif
