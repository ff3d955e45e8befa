/*
 * decode -> encode -> decode -> encode. Whatever the decoder accepts the
 * encoder must accept too (proto.c: "the encoder refuses what the decoder
 * would refuse"), the second decode must give the same value, and the
 * second encode the same bytes as the first: the encoding of a value is
 * canonical. An input the first decode rejects asserts nothing more.
 */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_msg m;
	char *buf;
	size_t len;

	/* The larger of the two limits: requests and replies alike. */
	if (fuzz_decode(data, size, PROTO_MAX_REPLY, &m) != 0)
		return 0;
	/* fuzz_decode made sure the encoder takes m. */
	fuzz_require(proto_encode(&m, &buf, &len) == 0, "proto_encode failed");
	fuzz_check_encoding(&m, buf, len);
	fuzz_msg_free(&m);
	return 0;
}
