/* Unit tests of ch_vm.c's pure side: ch_vm_info_parse reads the state out of a vm.info body
 * (VmInfo, cloud-hypervisor-openapi-v54.yaml) for each state the API defines, keeps a state it
 * does not know by name, and refuses bodies without a string state; ch_reply_vm_info reports a
 * failed call as -EIO; ch_vm_state_name names every state, and out-of-range ones "unknown". */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "common/macro.h"
#include "hypervisor/ch_vm.h"

static void test_every_state(void **state)
{
	static const struct {
		const char *name;
		enum ch_vm_state state;
	} cases[] = {
		{"Created", CH_VM_STATE_CREATED},
		{"Running", CH_VM_STATE_RUNNING},
		{"Shutdown", CH_VM_STATE_SHUTDOWN},
		{"Paused", CH_VM_STATE_PAUSED},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct ch_vm_info info;
		char body[128];

		snprintf(body, sizeof(body), "{\"config\": {}, \"state\": \"%s\"}", cases[i].name);
		assert_int_equal(ch_vm_info_parse(body, &info), 0);
		assert_int_equal(info.state, cases[i].state);
		assert_string_equal(info.state_name, cases[i].name);
		assert_string_equal(ch_vm_state_name(info.state), cases[i].name);
	}
}

static void test_full_vm_info(void **state)
{
	static const char body[] =
		"{\"config\": {\"cpus\": {\"boot_vcpus\": 2, \"max_vcpus\": 2},"
		" \"memory\": {\"size\": 268435456}, \"payload\": {\"kernel\": \"/k\"},"
		" \"disks\": [{\"path\": \"/d.img\", \"id\": \"_disk0\"}],"
		" \"serial\": {\"mode\": \"Null\"}, \"console\": {\"mode\": \"Off\"}},"
		" \"state\": \"Running\", \"memory_actual_size\": 268435456,"
		" \"device_tree\": {\"_disk0\": {\"id\": \"_disk0\", \"children\": []}}}";
	struct ch_vm_info info;

	(void)state;
	assert_int_equal(ch_vm_info_parse(body, &info), 0);
	assert_int_equal(info.state, CH_VM_STATE_RUNNING);
}

/* A state a newer cloud-hypervisor may add: known by name, unknown as a value. */
static void test_unknown_state_kept_by_name(void **state)
{
	struct ch_vm_info info;

	(void)state;
	assert_int_equal(ch_vm_info_parse("{\"state\": \"Migrating\"}", &info), 0);
	assert_int_equal(info.state, CH_VM_STATE_UNKNOWN);
	assert_string_equal(info.state_name, "Migrating");
	/* Case matters: the API's enum is exact. */
	assert_int_equal(ch_vm_info_parse("{\"state\": \"running\"}", &info), 0);
	assert_int_equal(info.state, CH_VM_STATE_UNKNOWN);
}

static void test_long_state_name_truncated(void **state)
{
	char body[256], name[100];
	struct ch_vm_info info;

	(void)state;
	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	snprintf(body, sizeof(body), "{\"state\": \"%s\"}", name);
	assert_int_equal(ch_vm_info_parse(body, &info), 0);
	assert_int_equal(info.state, CH_VM_STATE_UNKNOWN);
	assert_int_equal(strlen(info.state_name), sizeof(info.state_name) - 1);
}

static void test_bodies_without_a_state(void **state)
{
	static const char *const bodies[] = {
		"",
		"not json",
		"[\"Running\"]",
		"\"Running\"",
		"{}",
		"{\"state\": 1}",
		"{\"state\": null}",
		"{\"state\": [\"Running\"]}",
		"{\"config\": {\"state\": \"Running\"}}",
		"{\"state\": \"Running\"",
	};
	struct ch_vm_info info;

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(bodies); i++) {
		memset(&info, 0x55, sizeof(info));
		assert_int_equal(ch_vm_info_parse(bodies[i], &info), -EBADMSG);
		assert_int_equal(info.state, CH_VM_STATE_UNKNOWN);
		assert_string_equal(info.state_name, "");
	}
	assert_int_equal(ch_vm_info_parse(NULL, &info), -EBADMSG);
	assert_int_equal(info.state, CH_VM_STATE_UNKNOWN);
}

static void test_reply(void **state)
{
	struct ch_reply ok = {.http_status = 200, .body = "{\"state\": \"Paused\"}", .message = ""};
	struct ch_reply refused = {
		.http_status = 500, .body = "[\"Error from API\"]", .message = "Error from API"};
	struct ch_reply down = {.error = -ECONNREFUSED, .body = "", .message = "refused"};
	struct ch_vm_info info;

	(void)state;
	assert_int_equal(ch_reply_vm_info(&ok, &info), 0);
	assert_int_equal(info.state, CH_VM_STATE_PAUSED);
	assert_int_equal(ch_reply_vm_info(&refused, &info), -EIO);
	assert_int_equal(info.state, CH_VM_STATE_UNKNOWN);
	assert_int_equal(ch_reply_vm_info(&down, &info), -EIO);
	assert_int_equal(info.state, CH_VM_STATE_UNKNOWN);
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(ch_vm_state_name(CH_VM_STATE_UNKNOWN), "unknown");
	assert_string_equal(ch_vm_state_name((enum ch_vm_state)99), "unknown");
	assert_string_equal(ch_vm_state_name((enum ch_vm_state) - 1), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_state),
		cmocka_unit_test(test_full_vm_info),
		cmocka_unit_test(test_unknown_state_kept_by_name),
		cmocka_unit_test(test_long_state_name_truncated),
		cmocka_unit_test(test_bodies_without_a_state),
		cmocka_unit_test(test_reply),
		cmocka_unit_test(test_state_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
