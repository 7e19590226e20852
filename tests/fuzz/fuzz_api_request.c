/* Fuzzes what a client's request goes through before a handler sees it: the wire scan for
 * strings that are not proto3 strings (api/api_wire.c), protobuf-c's unpacking, and, for
 * CreateVm, the conversion and validation of the config (model/validate.c). The first byte
 * picks the method (of every mvirt service, in descriptor order), the rest is the message.
 * Invariants: a message the scan passed and protobuf-c unpacked holds only valid UTF-8; a
 * refusal names a field; validation either passes or names a field. */
#include <string.h>

#include "api/api_convert.h"
#include "api/api_wire.h"
#include "common/utf8.h"
#include "fuzz.h"
#include "model/validate.h"
#include "mvirt.pb-c.h"

static const ProtobufCServiceDescriptor *const services[] = {
	&mvirt__vm_service__descriptor,
	&mvirt__volume_service__descriptor,
	&mvirt__network_service__descriptor,
};

static const ProtobufCMessageDescriptor *pick(uint8_t b)
{
	unsigned n = 0;

	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		n += services[i]->n_methods;
	b %= n;
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		if (b < services[i]->n_methods)
			return services[i]->methods[b].input;
		b -= services[i]->n_methods;
	}
	return NULL;
}

/* Every string of m, at any depth, is valid UTF-8. */
static void check_strings(const ProtobufCMessage *m, int depth)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	FUZZ_ASSERT(depth < 32);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *base = (const char *)m + f->offset;
		size_t n = 1;
		const void *const *items = (const void *const *)base;

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			n = *(const size_t *)((const char *)m + f->quantifier_offset);
			items = *(const void *const *const *)base;
		}
		for (size_t k = 0; k < n; k++) {
			const void *v = items[k];

			if (!v)
				continue;
			if (f->type == PROTOBUF_C_TYPE_STRING)
				FUZZ_ASSERT(utf8_valid(v, strlen(v), NULL));
			else
				check_strings(v, depth + 1);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const ProtobufCMessageDescriptor *desc;
	struct api_wire_fault fault;
	ProtobufCMessage *msg;

	if (size < 1)
		return 0;
	desc = pick(data[0]);
	FUZZ_ASSERT(desc);
	if (api_wire_check_strings(desc, data + 1, size - 1, &fault)) {
		FUZZ_ASSERT(fault.path[0] && fault.cause && fault.cause[0]);
		return 0;
	}
	msg = protobuf_c_message_unpack(desc, NULL, size - 1, data + 1);
	if (!msg)
		return 0;
	check_strings(msg, 0);
	if (desc == &mvirt__create_vm_request__descriptor) {
		const Mvirt__CreateVmRequest *req = (const Mvirt__CreateVmRequest *)msg;
		struct vm_config c;
		struct mv_error err = {0};

		if (req->config && api_convert_config_from_pb(req->config, &c) == 0) {
			if (validate_vm_config(&c, NULL, MV_ERR_INVALID, &err) < 0)
				FUZZ_ASSERT(strncmp(err.msg, "config.", 7) == 0);
			vmdef_config_done(&c);
		}
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	return 0;
}
