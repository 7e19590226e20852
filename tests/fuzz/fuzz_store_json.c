/* Fuzzes the store's JSON codec (store/store_json.c) with arbitrary vms.config and
 * networks.config documents, as a damaged or hand-edited database would hold them. Whatever
 * store_config_from_json() or store_net_config_from_json() accepts must encode again, and
 * decoding that encoding must give the same document: a config read from the store survives
 * being written back.
 * fuzz-dict: json.dict */
#include <errno.h>
#include <string.h>

#include "common/macro.h"
#include "fuzz.h"
#include "store/store_json.h"

static struct json_object *reencode(struct json_object *o)
{
	struct vm_config c;
	struct json_object *out = NULL;
	const char *field = NULL;
	int r = store_config_from_json(o, &c, &field);

	FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r == -EBADMSG)
		FUZZ_ASSERT(field && field[0]);
	if (r == 0 && store_config_to_json(&c, &out) < 0)
		out = NULL;
	vmdef_config_done(&c);
	return out;
}

static struct json_object *reencode_net(struct json_object *o)
{
	struct net_config c;
	struct json_object *out = NULL;
	const char *field = NULL;
	int r = store_net_config_from_json(o, &c, &field);

	FUZZ_ASSERT(r == 0 || r == -EBADMSG || r == -ENOMEM);
	if (r == -EBADMSG)
		FUZZ_ASSERT(field && field[0]);
	if (r == 0 && store_net_config_to_json(&c, &out) < 0)
		out = NULL;
	net_config_done(&c);
	return out;
}

/* The round trip of reencode (or reencode_net) on o. */
static void check_round_trip(struct json_object *o,
			     struct json_object *(*reencode_fn)(struct json_object *))
{
	struct json_object *once = reencode_fn(o);

	if (once) {
		struct json_object *twice = reencode_fn(once);
		FUZZ_ASSERT(twice);
		FUZZ_ASSERT(
			streq(json_object_to_json_string(once), json_object_to_json_string(twice)));
		json_object_put(twice);
		json_object_put(once);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_tokener *tok = json_tokener_new();
	if (!tok)
		return 0;
	struct json_object *o = json_tokener_parse_ex(tok, (const char *)data, (int)size);
	json_tokener_free(tok);
	if (!o)
		return 0;

	check_round_trip(o, reencode);
	check_round_trip(o, reencode_net);
	json_object_put(o);
	return 0;
}
