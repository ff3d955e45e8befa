/*
 * The agent's side of the codec: the body of a request message, decoded
 * as agent/server.c does it, with the agent's limit (PROTO_MAX_REQUEST).
 * A reply decodes too (the agent then refuses it as a request): its
 * fields are checked and freed like those of any other message.
 */
#include "fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_msg m;

	if (fuzz_decode(data, size, PROTO_MAX_REQUEST, &m) == 0)
		fuzz_msg_free(&m);
	return 0;
}
