/* Fuzzes the event-monitor parser (hypervisor/ch_events.c) with arbitrary streams. The first
 * byte picks a chunk size: the same stream fed whole and fed in chunks must give the same
 * events, as cloud-hypervisor's writes arrive split at any point. Every event's strings must
 * be terminated inside their arrays.
 * fuzz-dict: json.dict */
#include <string.h>

#include "common/macro.h"
#include "fuzz.h"
#include "hypervisor/ch_events.h"

#define MAX_EVENTS 256

struct events {
	struct ch_event ev[MAX_EVENTS];
	size_t n, total;
};

static void collect(void *userdata, const struct ch_event *ev)
{
	struct events *e = userdata;

	FUZZ_ASSERT(memchr(ev->source, '\0', sizeof(ev->source)));
	FUZZ_ASSERT(memchr(ev->event, '\0', sizeof(ev->event)));
	FUZZ_ASSERT(ev->source[0] && ev->event[0]);
	if (e->n < MAX_EVENTS)
		e->ev[e->n++] = *ev;
	e->total++;
}

static void feed(const char *data, size_t size, size_t chunk, struct events *e)
{
	struct ch_event_parser p;
	size_t delivered = 0;

	ch_event_parser_init(&p);
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;
		int r = ch_event_parser_feed(&p, data + off, n, collect, e);
		FUZZ_ASSERT(r >= 0);
		delivered += (size_t)r;
	}
	FUZZ_ASSERT(delivered == e->total);
	ch_event_parser_done(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct events whole, chunked;

	if (size < 1)
		return 0;
	size_t chunk = (size_t)data[0] % 17 + 1;
	const char *stream = (const char *)data + 1;
	size--;

	memset(&whole, 0, sizeof(whole));
	memset(&chunked, 0, sizeof(chunked));
	feed(stream, size, size ? size : 1, &whole);
	feed(stream, size, chunk, &chunked);
	FUZZ_ASSERT(whole.total == chunked.total);
	for (size_t i = 0; i < whole.n; i++) {
		FUZZ_ASSERT(whole.ev[i].secs == chunked.ev[i].secs);
		FUZZ_ASSERT(whole.ev[i].nanos == chunked.ev[i].nanos);
		FUZZ_ASSERT(streq(whole.ev[i].source, chunked.ev[i].source));
		FUZZ_ASSERT(streq(whole.ev[i].event, chunked.ev[i].event));
	}
	return 0;
}
