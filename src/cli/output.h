/* Formatting for the CLI's human-readable output: aligned tables, key: value blocks, sizes,
 * times and VM states. Also the JSON form of a message (-o json). Writes to stdout only; the
 * formatting helpers write into caller-provided buffers. Used by the cmd_*.c files. */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "common/macro.h"
#include "mvirt.pb-c.h"

#define OUTPUT_KEY_WIDTH 12

struct table;

/* A table with ncols columns, headers given as ncols strings. Returns NULL when out of memory. */
struct table *table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (copied). Returns 0 or -ENOMEM. */
int table_add_row(struct table *t, const char *const *cells);
/* Prints header and rows, columns separated by two spaces, the last one unpadded. */
void table_print(const struct table *t);
void table_free(struct table *t);

/* "key:" padded to OUTPUT_KEY_WIDTH, then the formatted value and a newline. An empty key
 * continues the previous one (blank padding, no colon). */
void output_kv(const char *key, const char *fmt, ...) _printf_(2, 3);

/* Prints msg as pretty JSON on stdout. Returns 0 or -errno. */
int output_json(const ProtobufCMessage *msg);
/* Prints msg as compact JSON on one line of stdout (for streams: one object per line). Returns
 * 0 or -errno. */
int output_json_line(const ProtobufCMessage *msg);

/* "512 MiB", "1.0 GiB", "1.5 TiB". */
void output_format_mib(uint64_t mib, char *buf, size_t size);
/* Local time "2026-11-28 22:30:00 CET"; "-" when ts is NULL. */
void output_format_time(const Google__Protobuf__Timestamp *ts, char *buf, size_t size);
/* Local time with milliseconds, "2026-11-28 22:30:00.123"; "-" when ts is NULL. */
void output_format_time_ms(const Google__Protobuf__Timestamp *ts, char *buf, size_t size);
/* "stopped", "running", ...; the number for a value the CLI does not know. */
void output_format_state(Mvirt__VmState state, char *buf, size_t size);
/* "started", "config-changed", ...; the number for a value the CLI does not know. */
void output_format_event_type(Mvirt__VmEventType type, char *buf, size_t size);
/* s, or "-" when empty. */
const char *output_dash(const char *s);
