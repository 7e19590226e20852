/* See api_wire.h. */
#include "api/api_wire.h"

#include <stdbool.h>
#include <string.h>

/* Reads a varint at *p (bounded by end); false when malformed. */
static bool wire_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (int shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return true;
		}
	}
	return false;
}

/* protobuf-c cuts a string at its first NUL byte without a word, so "a\0../x" would arrive as
 * "a". Finds a string field (at any depth) whose wire bytes hold a NUL and returns its name, or
 * NULL. Malformed input is left to protobuf_c_message_unpack to refuse. */
static const char *find_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len,
			    int depth)
{
	const uint8_t *end = p + len;

	if (depth > 16)
		return NULL;
	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		uint64_t key, n;

		if (!wire_varint(&p, end, &key))
			return NULL;
		switch (key & 7) {
		case 0:
			if (!wire_varint(&p, end, &n))
				return NULL;
			break;
		case 1:
			p += 8;
			break;
		case 5:
			p += 4;
			break;
		case 2:
			if (!wire_varint(&p, end, &n) || n > (uint64_t)(end - p))
				return NULL;
			f = protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, n))
				return f->name;
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const char *inner = find_nul(f->descriptor, p, n, depth + 1);
				if (inner)
					return inner;
			}
			p += n;
			break;
		default:
			return NULL;
		}
	}
	return NULL;
}

const char *api_wire_find_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
			      size_t len)
{
	return find_nul(desc, data, len, 0);
}
