/* Unit tests of ch_events.c, the --event-monitor stream parser: a realistic pretty-printed
 * stream fed in one go, byte by byte and in pseudo-random chunks (fixed seeds) must give the
 * same exact events; strings with braces and escapes, nested properties, garbage between
 * objects, invalid and oversized objects (skipped, the stream goes on). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/macro.h"
#include "hypervisor/ch_events.h"

#define MAX_EVENTS 64

struct recorder {
	struct ch_event ev[MAX_EVENTS];
	size_t n;
};

static void record(void *userdata, const struct ch_event *ev)
{
	struct recorder *r = userdata;

	assert_true(r->n < MAX_EVENTS);
	r->ev[r->n++] = *ev;
}

struct expect {
	uint64_t secs;
	uint32_t nanos;
	const char *source;
	const char *event;
};

static void assert_events(const struct recorder *r, const struct expect *want, size_t n)
{
	size_t i;

	assert_int_equal(r->n, n);
	for (i = 0; i < n; i++) {
		assert_true(r->ev[i].secs == want[i].secs);
		assert_int_equal(r->ev[i].nanos, want[i].nanos);
		assert_string_equal(r->ev[i].source, want[i].source);
		assert_string_equal(r->ev[i].event, want[i].event);
	}
}

/* What cloud-hypervisor v54 writes for a boot, a device activation, a guest panic and a
 * power-off: serde's pretty printer (2-space indent), a blank line after each object. */
static const char stream[] = "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 0,\n"
			     "    \"nanos\": 322298\n"
			     "  },\n"
			     "  \"source\": \"vmm\",\n"
			     "  \"event\": \"starting\",\n"
			     "  \"properties\": null\n"
			     "}\n"
			     "\n"
			     "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 0,\n"
			     "    \"nanos\": 11983025\n"
			     "  },\n"
			     "  \"source\": \"vm\",\n"
			     "  \"event\": \"booting\",\n"
			     "  \"properties\": null\n"
			     "}\n"
			     "\n"
			     "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 0,\n"
			     "    \"nanos\": 25102114\n"
			     "  },\n"
			     "  \"source\": \"vm\",\n"
			     "  \"event\": \"booted\",\n"
			     "  \"properties\": null\n"
			     "}\n"
			     "\n"
			     "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 1,\n"
			     "    \"nanos\": 104571960\n"
			     "  },\n"
			     "  \"source\": \"virtio-device\",\n"
			     "  \"event\": \"activated\",\n"
			     "  \"properties\": {\n"
			     "    \"id\": \"_disk0\"\n"
			     "  }\n"
			     "}\n"
			     "\n"
			     "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 42,\n"
			     "    \"nanos\": 999999999\n"
			     "  },\n"
			     "  \"source\": \"guest\",\n"
			     "  \"event\": \"panic\",\n"
			     "  \"properties\": null\n"
			     "}\n"
			     "\n"
			     "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 3600,\n"
			     "    \"nanos\": 5\n"
			     "  },\n"
			     "  \"source\": \"vm\",\n"
			     "  \"event\": \"shutdown\",\n"
			     "  \"properties\": null\n"
			     "}\n"
			     "\n"
			     "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 3600,\n"
			     "    \"nanos\": 1204\n"
			     "  },\n"
			     "  \"source\": \"vm\",\n"
			     "  \"event\": \"deleted\",\n"
			     "  \"properties\": null\n"
			     "}\n"
			     "\n"
			     "{\n"
			     "  \"timestamp\": {\n"
			     "    \"secs\": 3600,\n"
			     "    \"nanos\": 20961\n"
			     "  },\n"
			     "  \"source\": \"vmm\",\n"
			     "  \"event\": \"shutdown\",\n"
			     "  \"properties\": null\n"
			     "}\n"
			     "\n";

static const struct expect stream_events[] = {
	{0, 322298, "vmm", "starting"},    {0, 11983025, "vm", "booting"},
	{0, 25102114, "vm", "booted"},     {1, 104571960, "virtio-device", "activated"},
	{42, 999999999, "guest", "panic"}, {3600, 5, "vm", "shutdown"},
	{3600, 1204, "vm", "deleted"},     {3600, 20961, "vmm", "shutdown"},
};

/* Feeds text in chunks of 1..max_chunk bytes chosen by a fixed-seed LCG (max_chunk 0: in one
 * go); checks the per-call counts add up. */
static void feed_chunks(const char *text, size_t len, size_t max_chunk, uint32_t seed,
			struct recorder *rec)
{
	struct ch_event_parser p;
	size_t off = 0, before = rec->n;
	int total = 0, r;

	ch_event_parser_init(&p);
	while (off < len) {
		size_t n = len - off;

		if (max_chunk) {
			seed = seed * 1103515245u + 12345u;
			n = 1 + (seed >> 16) % max_chunk;
			if (n > len - off)
				n = len - off;
		}
		r = ch_event_parser_feed(&p, text + off, n, record, rec);
		assert_true(r >= 0);
		total += r;
		off += n;
	}
	assert_int_equal((size_t)total, rec->n - before);
	ch_event_parser_done(&p);
}

static void test_stream_in_one_go(void **state)
{
	struct recorder rec = {0};

	(void)state;
	feed_chunks(stream, strlen(stream), 0, 0, &rec);
	assert_events(&rec, stream_events, ELEMENTSOF(stream_events));
}

static void test_stream_byte_by_byte(void **state)
{
	struct recorder rec = {0};

	(void)state;
	feed_chunks(stream, strlen(stream), 1, 0, &rec);
	assert_events(&rec, stream_events, ELEMENTSOF(stream_events));
}

static void test_stream_random_chunks(void **state)
{
	uint32_t seed;

	(void)state;
	for (seed = 1; seed <= 50; seed++) {
		struct recorder rec = {0};

		feed_chunks(stream, strlen(stream), 1 + seed % 97, seed, &rec);
		assert_events(&rec, stream_events, ELEMENTSOF(stream_events));
	}
}

/* Braces and escaped quotes inside strings do not count; a string ending in an escaped
 * backslash ends there. */
static void test_strings_with_braces(void **state)
{
	static const char text[] =
		"{\"timestamp\":{\"secs\":7,\"nanos\":8},\"source\":\"vm\","
		"\"event\":\"odd}{\\\"name\",\"properties\":{\"msg\":\"} } { \\\" {\"}}\n\n"
		"{\"source\":\"guest\",\"event\":\"panic\",\"properties\":{\"path\":\"C:\\\\\"},"
		"\"timestamp\":{\"secs\":9,\"nanos\":10}}\n\n"
		"{\"source\":\"vm\",\"event\":\"{\",\"timestamp\":{\"secs\":11,\"nanos\":12}}";
	static const struct expect want[] = {
		{7, 8, "vm", "odd}{\"name"},
		{9, 10, "guest", "panic"},
		{11, 12, "vm", "{"},
	};
	struct recorder rec = {0};

	(void)state;
	feed_chunks(text, strlen(text), 0, 0, &rec);
	assert_events(&rec, want, ELEMENTSOF(want));
	memset(&rec, 0, sizeof(rec));
	feed_chunks(text, strlen(text), 1, 0, &rec);
	assert_events(&rec, want, ELEMENTSOF(want));
}

static void test_nested_properties(void **state)
{
	static const char text[] =
		"{\n"
		"  \"timestamp\": {\"secs\": 1, \"nanos\": 2},\n"
		"  \"source\": \"virtio-device\",\n"
		"  \"event\": \"reset\",\n"
		"  \"properties\": {\n"
		"    \"a\": {\"b\": {\"c\": [{\"d\": 1}, {}, {\"e\": \"}\"}]}},\n"
		"    \"f\": {}\n"
		"  }\n"
		"}\n"
		"\n"
		"{\"timestamp\":{\"secs\":3,\"nanos\":4},\"source\":\"vm\","
		"\"event\":\"paused\",\"properties\":null}";
	static const struct expect want[] = {
		{1, 2, "virtio-device", "reset"},
		{3, 4, "vm", "paused"},
	};
	struct recorder rec = {0};

	(void)state;
	feed_chunks(text, strlen(text), 3, 7, &rec);
	assert_events(&rec, want, ELEMENTSOF(want));
}

/* Bytes outside objects, stray closing braces and quotes included, are ignored. */
static void test_garbage_between_objects(void **state)
{
	static const char text[] =
		"warning: not json } ] \" \n"
		"{\"timestamp\":{\"secs\":1,\"nanos\":1},\"source\":\"vm\",\"event\":\"booting\"}"
		"}}} \"unterminated \n null 123 ]\n"
		"{\"timestamp\":{\"secs\":2,\"nanos\":2},\"source\":\"vm\",\"event\":\"booted\"}"
		"\r\n\t\n";
	static const struct expect want[] = {
		{1, 1, "vm", "booting"},
		{2, 2, "vm", "booted"},
	};
	struct recorder rec = {0};

	(void)state;
	feed_chunks(text, strlen(text), 0, 0, &rec);
	assert_events(&rec, want, ELEMENTSOF(want));
	memset(&rec, 0, sizeof(rec));
	feed_chunks(text, strlen(text), 5, 3, &rec);
	assert_events(&rec, want, ELEMENTSOF(want));
}

/* Balanced but not an event: bad JSON, missing or mistyped members, members too long for
 * struct ch_event. Each is skipped and the next object still parsed. */
static void test_invalid_objects_skipped(void **state)
{
	static const char text[] =
		"{\"source\":\"vm\",\"event\":broken}\n\n"
		"{\"source\":\"vm\",\"event\":\"a\",}\n\n"
		"{\"source\":\"vm\" \"event\":\"a\"}\n\n"
		"{\"source\":\"vm\"}\n\n"
		"{\"event\":\"booted\"}\n\n"
		"{\"source\":1,\"event\":\"booted\"}\n\n"
		"{\"source\":\"vm\",\"event\":null}\n\n"
		"{\"source\":\"0123456789012345678901234567890123\",\"event\":\"x\"}\n\n"
		"{\"source\":\"vm\",\"event\":\"x\\u0000y\"}\n\n"
		"{\"source\":\"\",\"event\":\"shutdown\"}\n\n"
		"{\"source\":\"vm\",\"event\":\"\"}\n\n"
		"{}\n\n"
		"{\"timestamp\":{\"secs\":5,\"nanos\":6},\"source\":\"vm\",\"event\":\"resumed\"}\n\n"
		"{\"source\":\"vm\",\"event\":\"rebooted\",\"timestamp\":\"soon\"}\n\n";
	static const struct expect want[] = {
		{5, 6, "vm", "resumed"},
		{0, 0, "vm", "rebooted"},
	};
	struct recorder rec = {0};

	(void)state;
	feed_chunks(text, strlen(text), 0, 0, &rec);
	assert_events(&rec, want, ELEMENTSOF(want));
}

/* The longest source and event that fit (31 and 63 bytes) are delivered whole. */
static void test_longest_names(void **state)
{
	char text[256];
	struct recorder rec = {0};
	char source[32], event[64];

	(void)state;
	memset(source, 's', 31);
	source[31] = '\0';
	memset(event, 'e', 63);
	event[63] = '\0';
	snprintf(text, sizeof(text), "{\"source\":\"%s\",\"event\":\"%s\"}", source, event);
	feed_chunks(text, strlen(text), 0, 0, &rec);
	assert_int_equal(rec.n, 1);
	assert_string_equal(rec.ev[0].source, source);
	assert_string_equal(rec.ev[0].event, event);
}

/* A valid event of exactly size bytes: {"source":"vm","event":"big","properties":"xxx..."}. */
static char *event_of_size(size_t size)
{
	static const char head[] = "{\"source\":\"vm\",\"event\":\"big\",\"properties\":\"";
	static const char tail[] = "\"}";
	char *s = malloc(size + 1);

	assert_non_null(s);
	assert_true(size >= strlen(head) + strlen(tail));
	memcpy(s, head, strlen(head));
	memset(s + strlen(head), 'x', size - strlen(head) - strlen(tail));
	memcpy(s + size - strlen(tail), tail, strlen(tail) + 1);
	assert_int_equal(strlen(s), size);
	return s;
}

/* Plants, inside the string value of an event_of_size() text at base, braces and quotes that a
 * parser must read as string content or escapes: '{' in the string, an escaped quote followed by
 * '{', an escaped backslash that lets the quote after it end the string, a balanced {} outside
 * any string, then a quote reopening the string. A parser that lost track of strings or escapes
 * ends with the wrong depth and swallows the next object. */
static void plant(char *s, size_t base)
{
	memcpy(s + base, "{", 1);
	memcpy(s + base + 10, "\\\"{", 3);
	memcpy(s + base + 200, "\\\\\"", 3);
	memcpy(s + base + 300, "{", 1);
	memcpy(s + base + 400, "}", 1);
	memcpy(s + base + 500, "\"", 1);
}

static void test_oversized_skipped(void **state)
{
	static const char next[] =
		"\n\n{\"timestamp\":{\"secs\":1,\"nanos\":2},\"source\":\"vm\",\"event\":\"after\"}";
	static const struct expect want[] = {{1, 2, "vm", "after"}};
	static const struct expect want_fit[] = {{0, 0, "vm", "big"}, {1, 2, "vm", "after"}};
	struct recorder rec = {0};
	size_t sizes[] = {CH_EVENT_MAX_OBJECT + 1, 3 * CH_EVENT_MAX_OBJECT};
	size_t i;
	char *big, *text;

	(void)state;
	for (i = 0; i < ELEMENTSOF(sizes); i++) {
		big = event_of_size(sizes[i]);
		plant(big, 100); /* while collecting */
		if (sizes[i] > 2 * CH_EVENT_MAX_OBJECT)
			plant(big, sizes[i] - 1000); /* while skipping */
		assert_int_equal(asprintf(&text, "%s%s", big, next),
				 (int)(sizes[i] + strlen(next)));
		memset(&rec, 0, sizeof(rec));
		feed_chunks(text, strlen(text), 0, 0, &rec);
		assert_events(&rec, want, ELEMENTSOF(want));
		memset(&rec, 0, sizeof(rec));
		feed_chunks(text, strlen(text), 4096, 11, &rec);
		assert_events(&rec, want, ELEMENTSOF(want));
		free(text);
		free(big);
	}

	/* Exactly CH_EVENT_MAX_OBJECT bytes still fits. */
	big = event_of_size(CH_EVENT_MAX_OBJECT);
	assert_true(asprintf(&text, "%s%s", big, next) > 0);
	memset(&rec, 0, sizeof(rec));
	feed_chunks(text, strlen(text), 1000, 5, &rec);
	assert_events(&rec, want_fit, ELEMENTSOF(want_fit));
	free(text);
	free(big);
}

/* One parser over several feeds: an object split between calls is delivered by the call that
 * completes it, and the parser can be reused after done(). */
static void test_split_and_reuse(void **state)
{
	static const char a[] = "{\"source\":\"vm\",\"ev";
	static const char b[] = "ent\":\"pausing\"}\n\n{\"source\":\"vm\",\"event\":\"paus";
	static const char c[] = "ed\"}";
	struct ch_event_parser p;
	struct recorder rec = {0};

	(void)state;
	ch_event_parser_init(&p);
	assert_int_equal(ch_event_parser_feed(&p, a, strlen(a), record, &rec), 0);
	assert_int_equal(ch_event_parser_feed(&p, b, strlen(b), record, &rec), 1);
	assert_int_equal(ch_event_parser_feed(&p, "", 0, record, &rec), 0);
	assert_int_equal(ch_event_parser_feed(&p, c, strlen(c), record, &rec), 1);
	assert_int_equal(rec.n, 2);
	assert_string_equal(rec.ev[0].event, "pausing");
	assert_string_equal(rec.ev[1].event, "paused");
	ch_event_parser_done(&p);
	ch_event_parser_done(&p);
	ch_event_parser_done(NULL);

	/* done() in the middle of an object: a fresh start afterwards. */
	ch_event_parser_init(&p);
	assert_int_equal(ch_event_parser_feed(&p, a, strlen(a), record, &rec), 0);
	ch_event_parser_done(&p);
	ch_event_parser_init(&p);
	assert_int_equal(ch_event_parser_feed(&p, c, strlen(c), record, &rec), 0);
	assert_int_equal(ch_event_parser_feed(&p, "{\"source\":\"vm\",\"event\":\"resumed\"}", 33,
					      record, &rec),
			 1);
	assert_int_equal(rec.n, 3);
	assert_string_equal(rec.ev[2].event, "resumed");
	assert_true(rec.ev[2].secs == 0);
	assert_int_equal(rec.ev[2].nanos, 0);
	ch_event_parser_done(&p);
}

/* Large timestamps survive; nonsense ones read as 0 without dropping the event. */
static void test_timestamps(void **state)
{
	static const char text[] =
		"{\"timestamp\":{\"secs\":18446744073709551615,\"nanos\":999999999},"
		"\"source\":\"vm\",\"event\":\"a\"}"
		"{\"timestamp\":{\"secs\":1700000000,\"nanos\":1000000000},\"source\":\"vm\","
		"\"event\":\"b\"}"
		"{\"timestamp\":{\"secs\":-1,\"nanos\":-1},\"source\":\"vm\",\"event\":\"c\"}"
		"{\"timestamp\":{\"secs\":\"1\",\"nanos\":1.5},\"source\":\"vm\",\"event\":\"d\"}";
	static const struct expect want[] = {
		{UINT64_MAX, 999999999, "vm", "a"},
		{1700000000, 0, "vm", "b"},
		{0, 0, "vm", "c"},
		{0, 0, "vm", "d"},
	};
	struct recorder rec = {0};

	(void)state;
	feed_chunks(text, strlen(text), 0, 0, &rec);
	assert_events(&rec, want, ELEMENTSOF(want));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stream_in_one_go),
		cmocka_unit_test(test_stream_byte_by_byte),
		cmocka_unit_test(test_stream_random_chunks),
		cmocka_unit_test(test_strings_with_braces),
		cmocka_unit_test(test_nested_properties),
		cmocka_unit_test(test_garbage_between_objects),
		cmocka_unit_test(test_invalid_objects_skipped),
		cmocka_unit_test(test_longest_names),
		cmocka_unit_test(test_oversized_skipped),
		cmocka_unit_test(test_split_and_reuse),
		cmocka_unit_test(test_timestamps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
