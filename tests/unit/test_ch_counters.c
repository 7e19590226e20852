/* Unit tests of ch_vm_counters_parse: a VmCounters body (cloud-hypervisor-openapi-v54.yaml:
 * {device: {counter: int64}}) is walked device by device, counter by counter; values up to
 * u64's range survive, negative ones read as 0, members that are not integers or not objects
 * are skipped, a body that is not a JSON object is -EBADMSG, the callback's error stops the walk,
 * and more than CH_COUNTERS_MAX counters is -E2BIG. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "hypervisor/ch_vm.h"

struct seen {
	char text[1024];
	size_t n;
	int stop_at; /* return -EIO at this counter (1-based); 0: never */
};

static int collect(void *userdata, const char *device, const char *name, uint64_t value)
{
	struct seen *s = userdata;
	size_t len = strlen(s->text);

	s->n++;
	if (s->stop_at && (int)s->n == s->stop_at)
		return -EIO;
	snprintf(s->text + len, sizeof(s->text) - len, "%s.%s=%llu;", device, name,
		 (unsigned long long)value);
	return 0;
}

static void test_shape(void **state)
{
	struct seen s = {0};

	(void)state;
	assert_int_equal(ch_vm_counters_parse("{\"_disk0\": {\"read_bytes\": 512, \"read_ops\": 1},"
					      " \"net525400aabbcc\": {\"rx_bytes\": "
					      "18446744073709551615, \"tx_frames\": -3}}",
					      collect, &s),
			 0);
	assert_string_equal(s.text, "_disk0.read_bytes=512;_disk0.read_ops=1;"
				    "net525400aabbcc.rx_bytes=18446744073709551615;"
				    "net525400aabbcc.tx_frames=0;");
}

static void test_skipped_members(void **state)
{
	struct seen s = {0};

	(void)state;
	assert_int_equal(ch_vm_counters_parse("{\"a\": 1, \"b\": [1], \"c\": {\"x\": \"1\", \"y\": "
					      "1.5, \"z\": null, \"k\": 7}}",
					      collect, &s),
			 0);
	assert_string_equal(s.text, "c.k=7;");
	memset(&s, 0, sizeof(s));
	assert_int_equal(ch_vm_counters_parse("{}", collect, &s), 0);
	assert_int_equal(s.n, 0);
}

static void test_bad_bodies(void **state)
{
	static const char *const bodies[] = {"", "[]", "null", "42", "{\"a\":", "not json"};
	struct seen s = {0};

	(void)state;
	for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
		assert_int_equal(ch_vm_counters_parse(bodies[i], collect, &s), -EBADMSG);
	assert_int_equal(ch_vm_counters_parse(NULL, collect, &s), -EBADMSG);
	assert_int_equal(s.n, 0);
}

static void test_callback_error_stops(void **state)
{
	struct seen s = {.stop_at = 2};

	(void)state;
	assert_int_equal(
		ch_vm_counters_parse("{\"d\": {\"a\": 1, \"b\": 2, \"c\": 3}}", collect, &s), -EIO);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.text, "d.a=1;");
}

static int count_only(void *userdata, const char *device, const char *name, uint64_t value)
{
	(void)device;
	(void)name;
	(void)value;
	(*(size_t *)userdata)++;
	return 0;
}

static void test_too_many(void **state)
{
	size_t cap = 64 + (CH_COUNTERS_MAX + 1) * 16, len, n = 0;
	char *body = malloc(cap);

	(void)state;
	assert_non_null(body);
	len = (size_t)snprintf(body, cap, "{\"d\": {");
	for (int i = 0; i <= CH_COUNTERS_MAX; i++)
		len += (size_t)snprintf(body + len, cap - len, "%s\"c%d\": 1", i ? "," : "", i);
	snprintf(body + len, cap - len, "}}");
	assert_int_equal(ch_vm_counters_parse(body, count_only, &n), -E2BIG);
	assert_int_equal(n, CH_COUNTERS_MAX);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shape),      cmocka_unit_test(test_skipped_members),
		cmocka_unit_test(test_bad_bodies), cmocka_unit_test(test_callback_error_stops),
		cmocka_unit_test(test_too_many),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
