/* See output.h. */
#include "output.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/pbjson.h"

struct table {
	size_t ncols;
	size_t nrows; /* the header included */
	char **cells; /* nrows * ncols */
};

struct table *table_new(size_t ncols, const char *const *headers)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	if (table_add_row(t, headers) < 0) {
		table_free(t);
		return NULL;
	}
	return t;
}

int table_add_row(struct table *t, const char *const *cells)
{
	char **c = reallocarray(t->cells, (t->nrows + 1) * t->ncols, sizeof(*c));

	if (!c)
		return -ENOMEM;
	t->cells = c;
	c += t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		c[i] = strdup(strempty(cells[i]));
		if (!c[i]) {
			while (i > 0)
				free(c[--i]);
			return -ENOMEM;
		}
	}
	t->nrows++;
	return 0;
}

void table_print(const struct table *t)
{
	_cleanup_free_ size_t *width = calloc(t->ncols, sizeof(*width));

	if (!width)
		return;
	for (size_t r = 0; r < t->nrows; r++)
		for (size_t i = 0; i < t->ncols; i++) {
			size_t len = strlen(t->cells[r * t->ncols + i]);
			if (len > width[i])
				width[i] = len;
		}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			const char *cell = t->cells[r * t->ncols + i];
			if (i + 1 < t->ncols)
				printf("%-*s  ", (int)width[i], cell);
			else
				printf("%s\n", cell);
		}
	}
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

void output_kv(const char *key, const char *fmt, ...)
{
	size_t len = strlen(key) + 1;
	va_list ap;

	if (*key)
		printf("%s:%*s", key, len < OUTPUT_KEY_WIDTH ? (int)(OUTPUT_KEY_WIDTH - len) : 1,
		       "");
	else
		printf("%*s", OUTPUT_KEY_WIDTH, "");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
}

int output_json(const ProtobufCMessage *msg)
{
	struct json_object *obj = NULL;
	int r;

	if ((r = pbjson_from_message(msg, &obj)) < 0)
		return r;
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return 0;
}

int output_json_line(const ProtobufCMessage *msg)
{
	struct json_object *obj = NULL;
	int r;

	if ((r = pbjson_from_message(msg, &obj)) < 0)
		return r;
	puts(json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
							 JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(obj);
	return 0;
}

void output_format_mib(uint64_t mib, char *buf, size_t size)
{
	if (mib < 1024)
		snprintf(buf, size, "%" PRIu64 " MiB", mib);
	else if (mib < 1024 * 1024)
		snprintf(buf, size, "%.1f GiB", (double)mib / 1024);
	else
		snprintf(buf, size, "%.1f TiB", (double)mib / (1024 * 1024));
}

void output_format_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t size)
{
	struct tm tm;
	time_t t;

	if (!ts) {
		snprintf(buf, size, "-");
		return;
	}
	t = (time_t)ts->seconds;
	if (!localtime_r(&t, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
		snprintf(buf, size, "@%" PRId64, ts->seconds);
}

void output_format_time_ms(const Google__Protobuf__Timestamp *ts, char *buf, size_t size)
{
	char date[32];
	struct tm tm;
	time_t t;

	if (!ts) {
		snprintf(buf, size, "-");
		return;
	}
	t = (time_t)ts->seconds;
	if (!localtime_r(&t, &tm) || strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm) == 0)
		snprintf(buf, size, "@%" PRId64, ts->seconds);
	else
		snprintf(buf, size, "%s.%03d", date,
			 ts->nanos >= 0 && ts->nanos < 1000000000 ? ts->nanos / 1000000 : 0);
}

/* The name of value in desc without prefix, lowercased, '_' turned into sep. */
static void format_enum(const ProtobufCEnumDescriptor *desc, int value, const char *prefix,
			char sep, char *buf, size_t size)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc, value);

	if (!v || !startswith(v->name, prefix)) {
		snprintf(buf, size, "%d", value);
		return;
	}
	snprintf(buf, size, "%s", v->name + strlen(prefix));
	for (size_t i = 0; buf[i]; i++)
		buf[i] = buf[i] == '_' ? sep : (char)tolower((unsigned char)buf[i]);
}

void output_format_state(Mvirt__VmState state, char *buf, size_t size)
{
	format_enum(&mvirt__vm_state__descriptor, (int)state, "VM_STATE_", '_', buf, size);
}

void output_format_event_type(Mvirt__VmEventType type, char *buf, size_t size)
{
	format_enum(&mvirt__vm_event_type__descriptor, (int)type, "VM_EVENT_TYPE_", '-', buf, size);
}

const char *output_dash(const char *s)
{
	return isempty(s) ? "-" : s;
}
