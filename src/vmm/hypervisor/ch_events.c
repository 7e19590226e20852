/* See ch_events.h. A byte-at-a-time state machine: outside an object every byte but '{' is
 * ignored; inside one, bytes are collected while the brace depth is tracked outside JSON strings
 * (a backslash escapes the next byte inside a string). When the depth returns to zero the
 * collected text is parsed with json-c and, if it is an event, handed to the callback.
 * Invariants: depth > 0 exactly while inside an object; buf holds that object's bytes so far
 * (none while skipping); len <= cap <= CH_EVENT_MAX_OBJECT; between objects depth, len,
 * in_string, escape and skipping are all zero. Called by whoever reads cloud-hypervisor's
 * event-monitor pipe, on each read. */
#include "hypervisor/ch_events.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/macro.h"

#define INITIAL_CAP 1024

void ch_event_parser_init(struct ch_event_parser *p)
{
	*p = (struct ch_event_parser){0};
}

void ch_event_parser_done(struct ch_event_parser *p)
{
	if (!p)
		return;
	free(p->buf);
	*p = (struct ch_event_parser){0};
}

/* Appends c to the object being collected; an object longer than CH_EVENT_MAX_OBJECT bytes is
 * dropped (skipping), and so is one that cannot be stored for lack of memory. */
static int collect(struct ch_event_parser *p, char c)
{
	if (p->skipping)
		return 0;
	if (p->len >= CH_EVENT_MAX_OBJECT) {
		p->skipping = true;
		p->len = 0;
		return 0;
	}
	if (p->len >= p->cap) {
		size_t cap = p->cap ? p->cap * 2 : INITIAL_CAP;
		char *b;

		if (cap > CH_EVENT_MAX_OBJECT)
			cap = CH_EVENT_MAX_OBJECT;
		if (!(b = realloc(p->buf, cap))) {
			p->skipping = true;
			p->len = 0;
			return -ENOMEM;
		}
		p->buf = b;
		p->cap = cap;
	}
	p->buf[p->len++] = c;
	return 0;
}

/* Copies the string member key of o into dst; false if absent, not a string, empty, or too
 * long: an event always names its source and what happened. */
static bool get_string(struct json_object *o, const char *key, char *dst, size_t size)
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return false;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (n == 0 || n >= size || memchr(s, '\0', n))
		return false;
	memcpy(dst, s, n);
	dst[n] = '\0';
	return true;
}

/* Reads timestamp.secs and timestamp.nanos; members that are absent or invalid read as 0. */
static void get_timestamp(struct json_object *o, struct ch_event *ev)
{
	struct json_object *ts, *v;
	int64_t n;

	if (!json_object_object_get_ex(o, "timestamp", &ts) ||
	    !json_object_is_type(ts, json_type_object))
		return;
	if (json_object_object_get_ex(ts, "secs", &v) && json_object_is_type(v, json_type_int))
		ev->secs = json_object_get_uint64(v);
	if (json_object_object_get_ex(ts, "nanos", &v) && json_object_is_type(v, json_type_int)) {
		n = json_object_get_int64(v);
		if (n >= 0 && n < 1000000000)
			ev->nanos = (uint32_t)n;
	}
}

/* Parses the complete object in buf[0..len); true and *ev filled if it is an event. */
static bool parse_event(const char *buf, size_t len, struct ch_event *ev)
{
	struct json_tokener *tok;
	struct json_object *o;
	bool ok = false;

	if (!(tok = json_tokener_new()))
		return false;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (o && json_tokener_get_error(tok) == json_tokener_success &&
	    json_tokener_get_parse_end(tok) == len && json_object_is_type(o, json_type_object)) {
		*ev = (struct ch_event){0};
		ok = get_string(o, "source", ev->source, sizeof(ev->source)) &&
		     get_string(o, "event", ev->event, sizeof(ev->event));
		if (ok)
			get_timestamp(o, ev);
	}
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

int ch_event_parser_feed(struct ch_event_parser *p, const char *data, size_t len, ch_event_fn fn,
			 void *userdata)
{
	int delivered = 0, r = 0;
	size_t i;

	for (i = 0; i < len; i++) {
		char c = data[i];
		struct ch_event ev;

		if (p->depth == 0) {
			if (c != '{')
				continue;
			p->depth = 1;
			if (collect(p, c) < 0)
				r = -ENOMEM;
			continue;
		}
		if (collect(p, c) < 0)
			r = -ENOMEM;
		if (p->in_string) {
			if (p->escape)
				p->escape = false;
			else if (c == '\\')
				p->escape = true;
			else if (c == '"')
				p->in_string = false;
			continue;
		}
		if (c == '"')
			p->in_string = true;
		else if (c == '{')
			p->depth++;
		else if (c == '}' && --p->depth == 0) {
			if (!p->skipping && parse_event(p->buf, p->len, &ev)) {
				fn(userdata, &ev);
				delivered++;
			}
			p->skipping = false;
			p->len = 0;
		}
	}
	return r < 0 ? r : delivered;
}
