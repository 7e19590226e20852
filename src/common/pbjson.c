/* See pbjson.h. Walks a protobuf-c message through its descriptor: each field's storage is found
 * at msg + field->offset, its presence or element count at msg + field->quantifier_offset. */
#include "common/pbjson.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/macro.h"

/* Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range of the JSON mapping. */
#define TIMESTAMP_MIN_SECONDS INT64_C(-62135596800)
#define TIMESTAMP_MAX_SECONDS INT64_C(253402300799)
#define NANOS_PER_SECOND 1000000000

static int message_to_json(const ProtobufCMessage *msg, struct json_object **ret);

static void json_putp(struct json_object **p)
{
	json_object_put(*p);
}
#define _cleanup_json_ _cleanup_(json_putp)

static const void *member_at(const ProtobufCMessage *msg, unsigned offset)
{
	return (const char *)msg + offset;
}

/* The shortest of %.{min..max}g that reads back as v, so 0.1 prints as 0.1. */
static struct json_object *new_number(double v, int min_digits, int max_digits, bool is_float)
{
	char buf[64];

	if (isnan(v))
		return json_object_new_string("NaN");
	if (isinf(v))
		return json_object_new_string(v > 0 ? "Infinity" : "-Infinity");
	for (int p = min_digits; p <= max_digits; p++) {
		snprintf(buf, sizeof(buf), "%.*g", p, v);
		if (is_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v)
			break;
	}
	return json_object_new_double_s(v, buf);
}

static struct json_object *new_base64(const ProtobufCBinaryData *b)
{
	static const char tab[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	_cleanup_free_ char *out = NULL;
	struct json_object *o;
	size_t i, j = 0;

	if (b->len > (SIZE_MAX - 1) / 4 * 3 - 3)
		return NULL;
	out = malloc((b->len + 2) / 3 * 4 + 1);
	if (!out)
		return NULL;
	for (i = 0; i + 2 < b->len; i += 3) {
		uint32_t v =
			(uint32_t)b->data[i] << 16 | (uint32_t)b->data[i + 1] << 8 | b->data[i + 2];
		out[j++] = tab[v >> 18 & 63];
		out[j++] = tab[v >> 12 & 63];
		out[j++] = tab[v >> 6 & 63];
		out[j++] = tab[v & 63];
	}
	if (i < b->len) {
		uint32_t v = (uint32_t)b->data[i] << 16;
		if (i + 1 < b->len)
			v |= (uint32_t)b->data[i + 1] << 8;
		out[j++] = tab[v >> 18 & 63];
		out[j++] = tab[v >> 12 & 63];
		out[j++] = i + 1 < b->len ? tab[v >> 6 & 63] : '=';
		out[j++] = '=';
	}
	o = json_object_new_string_len(out, (int)j);
	return o;
}

static struct json_object *new_int64_string(int64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRId64, v);
	return json_object_new_string(buf);
}

static struct json_object *new_uint64_string(uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return json_object_new_string(buf);
}

static struct json_object *new_enum(const ProtobufCEnumDescriptor *desc, int v)
{
	const ProtobufCEnumValue *ev = desc ? protobuf_c_enum_descriptor_get_value(desc, v) : NULL;

	if (ev)
		return json_object_new_string(ev->name);
	return json_object_new_int(v);
}

/* Converts one value of field (a single element, not an array) stored at p. */
static int value_to_json(const ProtobufCFieldDescriptor *field, const void *p,
			 struct json_object **ret)
{
	struct json_object *o = NULL;

	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		o = json_object_new_int(*(const int32_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		o = json_object_new_int64(*(const uint32_t *)p);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		o = new_int64_string(*(const int64_t *)p);
		break;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		o = new_uint64_string(*(const uint64_t *)p);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		o = new_number(*(const float *)p, 6, 9, true);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		o = new_number(*(const double *)p, 15, 17, false);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		o = json_object_new_boolean(*(const protobuf_c_boolean *)p != 0);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		o = new_enum(field->descriptor, *(const int *)p);
		break;
	case PROTOBUF_C_TYPE_STRING:
		o = json_object_new_string(strempty(*(char *const *)p));
		break;
	case PROTOBUF_C_TYPE_BYTES:
		o = new_base64(p);
		break;
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
		if (!sub) /* a NULL element of a repeated field: malformed */
			return -EINVAL;
		return message_to_json(sub, ret);
	}
	default:
		return -EINVAL;
	}
	if (!o)
		return -ENOMEM;
	*ret = o;
	return 0;
}

static size_t element_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_ENUM:
		return sizeof(int);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	default: /* the 32-bit types and float */
		return 4;
	}
}

static int repeated_to_json(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field,
			    struct json_object **ret)
{
	size_t n = *(const size_t *)member_at(msg, field->quantifier_offset);
	const char *elems = *(const char *const *)member_at(msg, field->offset);
	size_t size = element_size(field->type);
	_cleanup_json_ struct json_object *arr = json_object_new_array();
	int r;

	if (!arr)
		return -ENOMEM;
	if (n > 0 && !elems)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		struct json_object *o;

		if ((r = value_to_json(field, elems + i * size, &o)) < 0)
			return r;
		if (json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			return -ENOMEM;
		}
	}
	*ret = TAKE_PTR(arr);
	return 0;
}

/* Whether a non-repeated field is to be emitted (see pbjson.h for the rules). */
static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
	const void *p = member_at(msg, field->offset);

	if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)member_at(msg, field->quantifier_offset) == field->id;
	if (field->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(const void *const *)p != NULL;
	if (field->label != PROTOBUF_C_LABEL_OPTIONAL)
		return true;
	if (field->type == PROTOBUF_C_TYPE_STRING) {
		const char *s = *(const char *const *)p;
		return s && s != field->default_value;
	}
	return *(const protobuf_c_boolean *)member_at(msg, field->quantifier_offset) != 0;
}

int pbjson_format_timestamp(int64_t seconds, int32_t nanos, char *buf, size_t size)
{
	struct tm tm;
	time_t t;
	int n, m;

	if (seconds < TIMESTAMP_MIN_SECONDS || seconds > TIMESTAMP_MAX_SECONDS || nanos < 0 ||
	    nanos >= NANOS_PER_SECOND)
		return -EINVAL;
	t = (time_t)seconds;
	if (!gmtime_r(&t, &tm))
		return -EINVAL;
	n = snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
		     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	if (n < 0 || (size_t)n >= size)
		return -EINVAL;
	if (nanos == 0)
		m = snprintf(buf + n, size - (size_t)n, "Z");
	else if (nanos % 1000000 == 0)
		m = snprintf(buf + n, size - (size_t)n, ".%03dZ", nanos / 1000000);
	else if (nanos % 1000 == 0)
		m = snprintf(buf + n, size - (size_t)n, ".%06dZ", nanos / 1000);
	else
		m = snprintf(buf + n, size - (size_t)n, ".%09dZ", nanos);
	if (m < 0 || (size_t)m >= size - (size_t)n)
		return -EINVAL;
	return 0;
}

static int timestamp_to_json(const ProtobufCMessage *msg, struct json_object **ret)
{
	const ProtobufCFieldDescriptor *fs, *fn;
	char buf[64];
	struct json_object *o;
	int r;

	fs = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "seconds");
	fn = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "nanos");
	if (!fs || !fn || fs->type != PROTOBUF_C_TYPE_INT64 || fn->type != PROTOBUF_C_TYPE_INT32)
		return -EINVAL;
	r = pbjson_format_timestamp(*(const int64_t *)member_at(msg, fs->offset),
				    *(const int32_t *)member_at(msg, fn->offset), buf, sizeof(buf));
	if (r < 0)
		return r;
	if (!(o = json_object_new_string(buf)))
		return -ENOMEM;
	*ret = o;
	return 0;
}

/* google.protobuf.Duration: "1.5s", "-0.000001s" (same fractional rule as Timestamp). */
static int duration_to_json(const ProtobufCMessage *msg, struct json_object **ret)
{
	const ProtobufCFieldDescriptor *fs, *fn;
	char buf[64];
	struct json_object *o;
	int64_t s;
	int32_t ns;
	uint64_t abs_s;
	int abs_ns;
	const char *sign;

	fs = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "seconds");
	fn = protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, "nanos");
	if (!fs || !fn || fs->type != PROTOBUF_C_TYPE_INT64 || fn->type != PROTOBUF_C_TYPE_INT32)
		return -EINVAL;
	s = *(const int64_t *)member_at(msg, fs->offset);
	ns = *(const int32_t *)member_at(msg, fn->offset);
	if (ns <= -NANOS_PER_SECOND || ns >= NANOS_PER_SECOND || (s > 0 && ns < 0) ||
	    (s < 0 && ns > 0))
		return -EINVAL;
	sign = s < 0 || ns < 0 ? "-" : "";
	abs_s = s < 0 ? -(uint64_t)s : (uint64_t)s;
	abs_ns = ns < 0 ? -ns : ns;
	if (abs_ns == 0)
		snprintf(buf, sizeof(buf), "%s%" PRIu64 "s", sign, abs_s);
	else if (abs_ns % 1000000 == 0)
		snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%03ds", sign, abs_s, abs_ns / 1000000);
	else if (abs_ns % 1000 == 0)
		snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%06ds", sign, abs_s, abs_ns / 1000);
	else
		snprintf(buf, sizeof(buf), "%s%" PRIu64 ".%09ds", sign, abs_s, abs_ns);
	if (!(o = json_object_new_string(buf)))
		return -ENOMEM;
	*ret = o;
	return 0;
}

static bool is_wrapper(const char *name)
{
	static const char *const wrappers[] = {
		"google.protobuf.DoubleValue", "google.protobuf.FloatValue",
		"google.protobuf.Int64Value",  "google.protobuf.UInt64Value",
		"google.protobuf.Int32Value",  "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue",   "google.protobuf.StringValue",
		"google.protobuf.BytesValue",
	};

	for (size_t i = 0; i < ELEMENTSOF(wrappers); i++)
		if (streq(name, wrappers[i]))
			return true;
	return false;
}

static int message_to_json(const ProtobufCMessage *msg, struct json_object **ret)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	_cleanup_json_ struct json_object *obj = NULL;
	int r;

	if (!desc || desc->magic != PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC)
		return -EINVAL;
	if (streq(desc->name, "google.protobuf.Timestamp"))
		return timestamp_to_json(msg, ret);
	if (streq(desc->name, "google.protobuf.Duration"))
		return duration_to_json(msg, ret);
	if (is_wrapper(desc->name)) {
		const ProtobufCFieldDescriptor *f =
			protobuf_c_message_descriptor_get_field_by_name(desc, "value");
		if (!f || f->label == PROTOBUF_C_LABEL_REPEATED)
			return -EINVAL;
		return value_to_json(f, member_at(msg, f->offset), ret);
	}

	if (!(obj = json_object_new_object()))
		return -ENOMEM;
	for (unsigned i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *field = &desc->fields[i];
		struct json_object *v;

		if (field->label == PROTOBUF_C_LABEL_REPEATED)
			r = repeated_to_json(msg, field, &v);
		else if (!field_present(msg, field))
			continue;
		else
			r = value_to_json(field, member_at(msg, field->offset), &v);
		if (r < 0)
			return r;
		if (json_object_object_add(obj, field->name, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	*ret = TAKE_PTR(obj);
	return 0;
}

int pbjson_from_message(const ProtobufCMessage *msg, struct json_object **ret)
{
	if (!msg || !ret)
		return -EINVAL;
	return message_to_json(msg, ret);
}

/* ---- JSON → message ---------------------------------------------------------------------- */

/* The path of the member being parsed ("disks[1].format"), for messages. */
struct parse_ctx {
	char path[256];
	char *err;
	size_t err_size;
};

_printf_(3, 4) static int parse_fail(struct parse_ctx *ctx, int r, const char *fmt, ...)
{
	char cause[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cause, sizeof(cause), fmt, ap);
	va_end(ap);
	if (ctx->err && ctx->err_size > 0)
		snprintf(ctx->err, ctx->err_size, "%s%s%s", ctx->path, ctx->path[0] ? ": " : "",
			 cause);
	return r;
}

/* Appends "name" (or "[i]" when name is NULL) to the path; returns the old length to restore. */
static size_t path_push(struct parse_ctx *ctx, const char *name, size_t index)
{
	size_t len = strlen(ctx->path);

	if (name)
		snprintf(ctx->path + len, sizeof(ctx->path) - len, "%s%s", len ? "." : "", name);
	else
		snprintf(ctx->path + len, sizeof(ctx->path) - len, "[%zu]", index);
	return len;
}

static int parse_message(struct parse_ctx *ctx, const ProtobufCMessageDescriptor *desc,
			 struct json_object *o, ProtobufCMessage **ret);

/* An integer: a JSON integer, or a decimal string (how 64-bit values are written). */
static int parse_integer(struct parse_ctx *ctx, struct json_object *v, bool is_signed, int64_t min,
			 uint64_t max, uint64_t *ret)
{
	const char *s;
	char *end;

	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		if (!is_signed && i < 0)
			return parse_fail(ctx, -ERANGE, "must not be negative");
		if (is_signed ? (i < min || (i > 0 && (uint64_t)i > max))
			      : json_object_get_uint64(v) > max)
			return parse_fail(ctx, -ERANGE, "out of range");
		*ret = is_signed ? (uint64_t)i : json_object_get_uint64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return parse_fail(ctx, -EINVAL, "expected a number");
	s = json_object_get_string(v);
	errno = 0;
	if (is_signed) {
		long long i = strtoll(s, &end, 10);

		if (!*s || *end || errno == ERANGE || i < min || (i > 0 && (uint64_t)i > max))
			return parse_fail(ctx, -EINVAL, "'%.32s' is not a number in range", s);
		*ret = (uint64_t)i;
	} else {
		unsigned long long u = strtoull(s, &end, 10);

		if (*s < '0' || *s > '9' || *end || errno == ERANGE || u > max)
			return parse_fail(ctx, -EINVAL, "'%.32s' is not a number in range", s);
		*ret = u;
	}
	return 0;
}

/* One value of field into the storage at p (an element, for a repeated field). */
static int parse_value(struct parse_ctx *ctx, const ProtobufCFieldDescriptor *field,
		       struct json_object *v, void *p)
{
	uint64_t u;
	int r;

	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		if ((r = parse_integer(ctx, v, true, INT32_MIN, INT32_MAX, &u)) < 0)
			return r;
		*(int32_t *)p = (int32_t)(int64_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		if ((r = parse_integer(ctx, v, false, 0, UINT32_MAX, &u)) < 0)
			return r;
		*(uint32_t *)p = (uint32_t)u;
		return 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		if ((r = parse_integer(ctx, v, true, INT64_MIN, INT64_MAX, &u)) < 0)
			return r;
		*(int64_t *)p = (int64_t)u;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		if ((r = parse_integer(ctx, v, false, 0, UINT64_MAX, &u)) < 0)
			return r;
		*(uint64_t *)p = u;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return parse_fail(ctx, -EINVAL, "expected true or false");
		*(protobuf_c_boolean *)p = json_object_get_boolean(v);
		return 0;
	case PROTOBUF_C_TYPE_ENUM: {
		const ProtobufCEnumDescriptor *ed = field->descriptor;
		const ProtobufCEnumValue *ev = NULL;

		if (json_object_is_type(v, json_type_string))
			ev = protobuf_c_enum_descriptor_get_value_by_name(
				ed, json_object_get_string(v));
		else if (json_object_is_type(v, json_type_int))
			ev = protobuf_c_enum_descriptor_get_value(ed, json_object_get_int(v));
		if (!ev) {
			char names[192] = "";
			size_t len = 0;

			for (unsigned i = 0; i < ed->n_values && len < sizeof(names); i++)
				len += (size_t)snprintf(names + len, sizeof(names) - len, "%s%s",
							i ? ", " : "", ed->values[i].name);
			return parse_fail(ctx, -EINVAL, "expected one of %s", names);
		}
		*(int *)p = ev->value;
		return 0;
	}
	case PROTOBUF_C_TYPE_STRING: {
		char *s;

		if (!json_object_is_type(v, json_type_string))
			return parse_fail(ctx, -EINVAL, "expected a string");
		if (!(s = strdup(json_object_get_string(v))))
			return -ENOMEM;
		*(char **)p = s;
		return 0;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *md = field->descriptor;

		if (streq(md->name, "google.protobuf.Timestamp") ||
		    streq(md->name, "google.protobuf.Duration") || is_wrapper(md->name))
			return parse_fail(ctx, -EOPNOTSUPP, "%s is not supported here", md->name);
		return parse_message(ctx, md, v, (ProtobufCMessage **)p);
	}
	default:
		return parse_fail(ctx, -EOPNOTSUPP, "this field type is not supported here");
	}
}

static int parse_repeated(struct parse_ctx *ctx, const ProtobufCFieldDescriptor *field,
			  struct json_object *v, ProtobufCMessage *msg)
{
	size_t n, size = element_size(field->type);
	size_t *count = (size_t *)((char *)msg + field->quantifier_offset);
	void **elems = (void **)((char *)msg + field->offset);
	int r;

	if (!json_object_is_type(v, json_type_array))
		return parse_fail(ctx, -EINVAL, "expected an array");
	n = json_object_array_length(v);
	if (n == 0)
		return 0;
	if (!(*elems = calloc(n, size)))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = path_push(ctx, NULL, i);

		r = parse_value(ctx, field, json_object_array_get_idx(v, i),
				(char *)*elems + i * size);
		if (r < 0)
			return r; /* *count elements are set: the message frees them */
		ctx->path[len] = '\0';
		(*count)++;
	}
	return 0;
}

static int parse_message(struct parse_ctx *ctx, const ProtobufCMessageDescriptor *desc,
			 struct json_object *o, ProtobufCMessage **ret)
{
	ProtobufCMessage *msg;
	int r = 0;

	if (!json_object_is_type(o, json_type_object))
		return parse_fail(ctx, -EINVAL, "expected an object");
	if (!(msg = malloc(desc->sizeof_message)))
		return -ENOMEM;
	desc->message_init(msg);
	json_object_object_foreach(o, key, v)
	{
		const ProtobufCFieldDescriptor *field =
			protobuf_c_message_descriptor_get_field_by_name(desc, key);
		size_t len = path_push(ctx, key, 0);

		if (!field) {
			r = parse_fail(ctx, -EINVAL, "unknown field (not in %s)", desc->name);
			break;
		}
		if (json_object_is_type(v, json_type_null)) {
			ctx->path[len] = '\0';
			continue; /* the default */
		}
		if (field->label == PROTOBUF_C_LABEL_REPEATED) {
			r = parse_repeated(ctx, field, v, msg);
		} else {
			r = parse_value(ctx, field, v, (char *)msg + field->offset);
			if (r >= 0 && (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
				*(uint32_t *)((char *)msg + field->quantifier_offset) = field->id;
			else if (r >= 0 && field->label == PROTOBUF_C_LABEL_OPTIONAL &&
				 field->type != PROTOBUF_C_TYPE_STRING &&
				 field->type != PROTOBUF_C_TYPE_MESSAGE)
				*(protobuf_c_boolean *)((char *)msg + field->quantifier_offset) = 1;
		}
		if (r < 0)
			break;
		ctx->path[len] = '\0';
	}
	if (r < 0) {
		protobuf_c_message_free_unpacked(msg, NULL);
		return r;
	}
	*ret = msg;
	return 0;
}

int pbjson_to_message(const ProtobufCMessageDescriptor *desc, struct json_object *o,
		      ProtobufCMessage **ret, char *err, size_t err_size)
{
	struct parse_ctx ctx = {.err = err, .err_size = err_size};

	if (err && err_size > 0)
		err[0] = '\0';
	if (!desc || !o || !ret)
		return -EINVAL;
	return parse_message(&ctx, desc, o, ret);
}
