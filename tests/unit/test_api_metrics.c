/* Unit tests of api_metrics.c's pure side: label values escaped as the text format wants
 * (backslash, double quote, newline; nothing else), and api_stats: the methods of the tables in
 * order, each ended call counted under its status, unary durations in the first bucket whose
 * bound they do not exceed (a bound itself included, beyond the last only in count), streams
 * without a duration, unserved methods and out-of-range codes in their catch-alls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_metrics.h"

static char *escaped(const char *s)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	assert_non_null(f);
	api_metrics_write_label_value(f, s);
	assert_int_equal(fclose(f), 0);
	return out;
}

static void test_label_escaping(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"web-1", "web-1"},
		{"", ""},
		{"a\\b", "a\\\\b"},
		{"say \"hi\"", "say \\\"hi\\\""},
		{"two\nlines", "two\\nlines"},
		{"\\\"\n", "\\\\\\\"\\n"},
		{"tab\there\r", "tab\there\r"}, /* only the three are escaped */
		{"caf\xc3\xa9", "caf\xc3\xa9"}, /* UTF-8 as it is */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *got = escaped(cases[i].in);
		assert_string_equal(got, cases[i].out);
		free(got);
	}
}

static void handle(struct api_call *call, const ProtobufCMessage *req)
{
	(void)call;
	(void)req;
}

static const struct api_method table_a[] = {
	{.path = "/x.S/A", .kind = API_METHOD_UNARY, .handle = handle},
	{.path = "/x.S/B", .kind = API_METHOD_SERVER_STREAM, .handle = handle},
	{.path = NULL},
};
static const struct api_method table_b[] = {
	{.path = "/x.T/C", .kind = API_METHOD_UNARY, .handle = handle},
	{.path = NULL},
};

static void test_stats(void **state)
{
	static const struct api_method *const tables[] = {table_a, table_b, NULL};
	struct api_stats s;

	(void)state;
	assert_int_equal(api_stats_init(&s, tables), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.methods[0]->path, "/x.S/A");
	assert_string_equal(s.methods[2]->path, "/x.T/C");

	api_stats_record(&s, 0, true, GRPC_STATUS_OK, 0);   /* first bucket */
	api_stats_record(&s, 0, true, GRPC_STATUS_OK, 250); /* a bound is in its bucket */
	api_stats_record(&s, 0, true, GRPC_STATUS_OK, 251); /* the next one */
	api_stats_record(&s, 0, true, GRPC_STATUS_NOT_FOUND, 61000000); /* beyond all bounds */
	assert_int_equal(s.m[0].calls[GRPC_STATUS_OK], 3);
	assert_int_equal(s.m[0].calls[GRPC_STATUS_NOT_FOUND], 1);
	assert_int_equal(s.m[0].bucket[0], 2);
	assert_int_equal(s.m[0].bucket[1], 1);
	assert_int_equal(s.m[0].count, 4);
	assert_int_equal(s.m[0].sum_us, 250 + 251 + 61000000);
	uint64_t in_buckets = 0;
	for (size_t b = 0; b < API_STATS_BUCKETS; b++)
		in_buckets += s.m[0].bucket[b];
	assert_int_equal(in_buckets, 3);

	api_stats_record(&s, 1, false, GRPC_STATUS_CANCELLED, 5000000); /* a stream */
	assert_int_equal(s.m[1].calls[GRPC_STATUS_CANCELLED], 1);
	assert_int_equal(s.m[1].count, 0);
	assert_int_equal(s.m[1].sum_us, 0);

	api_stats_record(&s, 3, true, GRPC_STATUS_UNIMPLEMENTED, 10);  /* not served */
	api_stats_record(&s, 99, true, GRPC_STATUS_UNIMPLEMENTED, 10); /* clamped to it */
	api_stats_record(&s, 2, true, (grpc_status_code)42, 10);       /* no such code */
	assert_int_equal(s.m[3].calls[GRPC_STATUS_UNIMPLEMENTED], 2);
	assert_int_equal(s.m[2].calls[GRPC_STATUS_UNKNOWN], 1);

	for (size_t b = 1; b < API_STATS_BUCKETS; b++)
		assert_true(api_stats_bucket_us[b] > api_stats_bucket_us[b - 1]);
	api_stats_done(&s);
	api_stats_done(&s); /* twice is harmless */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_stats),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
