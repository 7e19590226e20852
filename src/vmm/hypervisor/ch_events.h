/* Parser for cloud-hypervisor's --event-monitor stream: JSON objects, pretty-printed and
 * separated by blank lines, e.g.
 *   {"timestamp":{"secs":0,"nanos":322298},"source":"vmm","event":"starting","properties":null}
 * Objects are found by brace balance (strings and escapes respected), not by lines, and may
 * arrive split across any number of reads. Pure and silent. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CH_EVENT_MAX_OBJECT (64 * 1024)

struct ch_event {
	uint64_t secs;
	uint32_t nanos;
	char source[32]; /* "vmm", "vm", "guest", "virtio-device" */
	char event[64];  /* "starting", "booted", "shutdown", "panic", ... */
};

typedef void (*ch_event_fn)(void *userdata, const struct ch_event *ev);

struct ch_event_parser {
	char *buf; /* the object being collected */
	size_t len, cap;
	int depth;
	bool in_string, escape;
	bool skipping; /* an object was too large: drop bytes until it ends */
};

void ch_event_parser_init(struct ch_event_parser *p);
void ch_event_parser_done(struct ch_event_parser *p);

/* Feeds len bytes; calls fn for every complete, well-formed event object. Objects that are not
 * valid JSON or lack "source"/"event" are skipped; bytes between objects are ignored; an object
 * larger than CH_EVENT_MAX_OBJECT is skipped. Returns the number of events delivered, or
 * -ENOMEM. */
int ch_event_parser_feed(struct ch_event_parser *p, const char *data, size_t len, ch_event_fn fn,
			 void *userdata);
