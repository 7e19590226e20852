/* See api_wire.h. */
#include "api/api_wire.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/utf8.h"

#define MAX_DEPTH 16
#define MAX_COUNTED 128 /* fields of a message whose occurrences are counted (for [i]) */

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

/* Appends f's name (and [index] when repeated) to the path at ret->path[at..). */
static size_t path_push(struct api_wire_fault *ret, size_t at, const ProtobufCFieldDescriptor *f,
			unsigned index)
{
	int n;

	if (f->label == PROTOBUF_C_LABEL_REPEATED)
		n = snprintf(ret->path + at, sizeof(ret->path) - at, "%s%s[%u]", at ? "." : "",
			     f->name, index);
	else
		n = snprintf(ret->path + at, sizeof(ret->path) - at, "%s%s", at ? "." : "",
			     f->name);
	if (n < 0 || (size_t)n >= sizeof(ret->path) - at)
		return sizeof(ret->path) - 1;
	return at + (size_t)n;
}

static bool string_fault(const uint8_t *p, size_t n, struct api_wire_fault *ret)
{
	size_t off;

	if (memchr(p, 0, n)) {
		ret->cause = "contains a NUL byte";
		return true;
	}
	if (!utf8_valid((const char *)p, n, &off)) {
		snprintf(ret->cause_buf, sizeof(ret->cause_buf),
			 "is not valid UTF-8 (byte %zu of %zu)", off, n);
		ret->cause = ret->cause_buf;
		return true;
	}
	return false;
}

static bool check(const ProtobufCMessageDescriptor *desc, const uint8_t *p, size_t len, int depth,
		  size_t at, struct api_wire_fault *ret)
{
	const uint8_t *end = p + len;
	unsigned counts[MAX_COUNTED] = {0};

	if (depth > MAX_DEPTH)
		return false;
	while (p < end) {
		const ProtobufCFieldDescriptor *f;
		uint64_t key, n;
		unsigned index = 0;

		if (!wire_varint(&p, end, &key))
			return false;
		switch (key & 7) {
		case 0:
			if (!wire_varint(&p, end, &n))
				return false;
			break;
		case 1:
			if (end - p < 8)
				return false;
			p += 8;
			break;
		case 5:
			if (end - p < 4)
				return false;
			p += 4;
			break;
		case 2:
			if (!wire_varint(&p, end, &n) || n > (uint64_t)(end - p))
				return false;
			f = protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3));
			if (f) {
				size_t i = (size_t)(f - desc->fields);

				if (i < MAX_COUNTED)
					index = counts[i]++;
			}
			if (f && f->type == PROTOBUF_C_TYPE_STRING && string_fault(p, n, ret)) {
				path_push(ret, at, f, index);
				return true;
			}
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
			    check(f->descriptor, p, n, depth + 1, path_push(ret, at, f, index),
				  ret))
				return true;
			p += n;
			break;
		default:
			return false;
		}
	}
	return false;
}

int api_wire_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
			   struct api_wire_fault *ret)
{
	*ret = (struct api_wire_fault){0};
	return check(desc, data, len, 0, 0, ret) ? 1 : 0;
}
