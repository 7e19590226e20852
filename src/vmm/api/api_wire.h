/* Checks on a request's wire bytes that protobuf-c's unpacking cannot make. Pure. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* protobuf-c cuts a string at its first NUL byte without a word ("a\0../x" arrives as "a").
 * Returns the name of a string field (at any depth) of a message of type desc whose wire bytes
 * hold a NUL, or NULL. Malformed input is left to protobuf_c_message_unpack to refuse. */
const char *api_wire_find_nul(const ProtobufCMessageDescriptor *desc, const uint8_t *data,
			      size_t len);
