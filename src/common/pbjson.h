/* Generic protobuf-c message → JSON (json-c) conversion, driven only by the descriptors.
 *
 * Follows the proto3 JSON mapping with these choices: field names stay as in the .proto
 * (snake_case); scalars are always emitted, defaults included (0, false, ""); repeated fields
 * are arrays (empty ones too); enums are their value names (a number not in the enum stays a
 * number); 64-bit integers are strings; bytes are base64; unset message fields, unset proto2 /
 * proto3-`optional` fields and inactive oneof members are omitted. Well-known types:
 * google.protobuf.Timestamp is an RFC 3339 UTC string, the wrappers (UInt32Value ...) are their
 * plain value. Map fields come out as arrays of {"key", "value"} objects.
 *
 * Silent library code: used by the CLI for `-o json` (and, the other way, for `mvirt edit`). */
#pragma once

#include <json-c/json.h>
#include <protobuf-c/protobuf-c.h>

/* Converts msg (borrowed) to a new JSON object stored in *ret (the caller owns it: release with
 * json_object_put). Returns 0, -EINVAL for a malformed message (bad magic, timestamp out of
 * range) or -ENOMEM. */
int pbjson_from_message(const ProtobufCMessage *msg, struct json_object **ret);

/* Formats a google.protobuf.Timestamp value as RFC 3339 UTC ("2026-11-28T21:30:00.123Z", with 0,
 * 3, 6 or 9 fractional digits as needed) into buf. Returns 0, or -EINVAL when seconds/nanos are
 * outside the range the mapping allows (years 1..9999, nanos 0..999999999) or buf is too small. */
int pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t size);

/* The other way: a new message of desc (free it with protobuf_c_message_free_unpacked(msg, NULL))
 * from o, a JSON object as pbjson_from_message writes one: members by their .proto names,
 * integers as numbers or (64-bit ones) decimal strings, enums by name or number, nested
 * messages, arrays for repeated fields, null for the default. Unknown members are refused.
 * Bytes, floats, maps and the well-known types are not supported (-EOPNOTSUPP). Returns 0, or
 * -EINVAL/-ERANGE/-EOPNOTSUPP with "path.of.member: cause" in err (size err_size, may be NULL),
 * or -ENOMEM. */
int pbjson_to_message(const ProtobufCMessageDescriptor *desc, struct json_object *o,
		      ProtobufCMessage **ret, char *err, size_t err_size);
