/* Fuzzes pbjson_to_message (common/pbjson.c), the way back from JSON that `mvirt edit` reads a
 * user's edited file with, on mvirt.VmConfig (and mvirt.UpdateVmRequest: nested and repeated
 * messages, enums, 64-bit integers). Invariants: it fails with -EINVAL, -ERANGE, -EOPNOTSUPP or
 * -ENOMEM and a message, or gives a message that pbjson_from_message writes back into JSON
 * that parses again into the same message (the same packed bytes).
 * fuzz-dict: json.dict */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/pbjson.h"
#include "fuzz.h"
#include "mvirt.pb-c.h"

static uint8_t *packed(const ProtobufCMessage *m, size_t *ret_n)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *b = malloc(n + 1);

	FUZZ_ASSERT(b);
	FUZZ_ASSERT(protobuf_c_message_pack(m, b) == n);
	*ret_n = n;
	return b;
}

static void check(const ProtobufCMessageDescriptor *desc, struct json_object *o)
{
	ProtobufCMessage *m = NULL, *again = NULL;
	struct json_object *back = NULL;
	char err[256];
	int r = pbjson_to_message(desc, o, &m, err, sizeof(err));

	if (r < 0) {
		FUZZ_ASSERT(r == -EINVAL || r == -ERANGE || r == -EOPNOTSUPP || r == -ENOMEM);
		FUZZ_ASSERT(r == -ENOMEM || err[0]);
		return;
	}
	FUZZ_ASSERT(m && m->descriptor == desc);
	if (pbjson_from_message(m, &back) == 0) {
		size_t n1, n2;
		uint8_t *b1, *b2;

		FUZZ_ASSERT(pbjson_to_message(desc, back, &again, err, sizeof(err)) == 0);
		b1 = packed(m, &n1);
		b2 = packed(again, &n2);
		FUZZ_ASSERT(n1 == n2 && memcmp(b1, b2, n1) == 0);
		free(b1);
		free(b2);
		protobuf_c_message_free_unpacked(again, NULL);
		json_object_put(back);
	}
	protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	FUZZ_ASSERT(tok);
	o = json_tokener_parse_ex(tok, (const char *)data, (int)(size > 1 << 20 ? 1 << 20 : size));
	if (o) {
		check(&mvirt__vm_config__descriptor, o);
		check(&mvirt__update_vm_request__descriptor, o);
		json_object_put(o);
	}
	json_tokener_free(tok);
	return 0;
}
