/* Checks on a request's wire bytes that protobuf-c's unpacking does not make. Pure. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

struct api_wire_fault {
	char path[256];    /* the field's full path: "config.disks[0].path" */
	const char *cause; /* "contains a NUL byte", "is not valid UTF-8 (byte 3)" */
	char cause_buf[64];
};

/* Every string field, at any depth, of a message of type desc must be a proto3 string: valid
 * UTF-8 (protobuf-c does not check; one bad byte stored would make every later answer that
 * carries it unparseable by standard clients) and without NUL (protobuf-c cuts a string at its
 * first NUL without a word: "a\0../x" would arrive as "a"). Returns 0 when they are, 1 with
 * *ret filled for the first that is not. Malformed input is left to protobuf_c_message_unpack
 * to refuse (0). */
int api_wire_check_strings(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
			   struct api_wire_fault *ret);
