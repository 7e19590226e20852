/* Unit tests of ch_config.c, the VmConfig builder: golden files for three typical VMs (compared
 * as parsed JSON, so member order and whitespace do not matter), and the cases
 * cloud-hypervisor cannot express or that must not overflow. The golden files live in
 * tests/unit/golden/ and are checked against the OpenAPI spec by golden/check_schema.py. */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hypervisor/ch_config.h"

/* Where the golden files are: $MVIRT_GOLDEN_DIR, else beside this source file as the compiler
 * saw it (meson passes a path relative to the build dir, where meson runs tests), else from the
 * executable (build/tests/unit/test_ch_config -> tests/unit/golden). */
static char *golden_dirs[3];

/* path up to its last slash (exclusive) plus suffix; NULL if path has no slash. */
static char *beside(const char *path, const char *suffix)
{
	const char *slash = strrchr(path, '/');
	char *s;

	if (!slash)
		return NULL;
	if (asprintf(&s, "%.*s%s", (int)(slash - path), path, suffix) < 0)
		return NULL;
	return s;
}

static void find_golden_dirs(void)
{
	const char *env = getenv("MVIRT_GOLDEN_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	golden_dirs[0] = env ? strdup(env) : NULL;
	golden_dirs[1] = strchr(__FILE__, '/') ? beside(__FILE__, "/golden") : strdup("golden");
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		golden_dirs[2] = beside(exe, "/../../../tests/unit/golden");
	}
}

static void free_golden_dirs(void)
{
	size_t i;

	for (i = 0; i < ELEMENTSOF(golden_dirs); i++)
		free(golden_dirs[i]);
}

static struct json_object *load_golden(const char *name)
{
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < ELEMENTSOF(golden_dirs); i++) {
		struct json_object *o;

		if (!golden_dirs[i])
			continue;
		snprintf(path, sizeof(path), "%s/%s", golden_dirs[i], name);
		if (access(path, R_OK) < 0)
			continue;
		o = json_object_from_file(path);
		if (!o)
			fail_msg("%s: not valid JSON: %s", path, json_util_get_last_err());
		return o;
	}
	fail_msg("golden file %s not found (set MVIRT_GOLDEN_DIR)", name);
	return NULL;
}

/* Builds launch's JSON, parses it and compares it with the golden file. */
static void assert_golden(const struct ch_launch *launch, const char *golden)
{
	struct mv_error err = {0};
	struct json_object *got, *want;
	char *text = NULL;

	assert_int_equal(ch_config_json(launch, &text, &err), 0);
	assert_non_null(text);
	assert_int_equal(err.code, 0);
	got = json_tokener_parse(text);
	if (!got)
		fail_msg("output is not valid JSON: %s", text);
	want = load_golden(golden);
	if (!json_object_equal(got, want))
		fail_msg("%s differs:\n  got  %s\n  want %s", golden, text,
			 json_object_to_json_string_ext(
				 want, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(got);
	json_object_put(want);
	free(text);
}

static void test_full(void **state)
{
	struct vm_nic nics[] = {{.tap = "mvtap0", .mac = "52:54:00:12:34:56"}};
	struct vm_config c = {
		.vcpus = 2,
		.memory_mb = 512,
		.kernel = "/var/lib/mvirt/images/vmlinux",
		.initramfs = "/var/lib/mvirt/images/initrd.img",
		.cmdline = "console=ttyS0 root=/dev/vda1 rw panic=-1 msg=\"hi\"",
		.nics = nics,
		.n_nics = 1,
	};
	struct ch_disk disks[] = {
		{"/var/lib/mvirt/disks/web-1.raw", DISK_FORMAT_RAW, false, false},
		{"/var/lib/mvirt/disks/base.qcow2", DISK_FORMAT_QCOW2, true, true},
	};
	struct ch_launch l = {&c, disks, 2, "/run/mvirt/vms/web-1/serial.sock"};

	(void)state;
	assert_golden(&l, "ch_config_full.json");
}

static void test_firmware(void **state)
{
	/* cmdline/initramfs are empty strings: treated as unset. */
	struct vm_config c = {
		.vcpus = 4,
		.memory_mb = 2048,
		.firmware = "/usr/share/cloud-hypervisor/CLOUDHV.fd",
		.kernel = "",
	};
	/* A qcow2 image without a backing file: no backing_files. */
	struct ch_disk disks[] = {
		{"/var/lib/mvirt/disks/db-1.qcow2", DISK_FORMAT_QCOW2, false, false}};
	struct ch_launch l = {&c, disks, 1, "/run/mvirt/vms/db-1/serial.sock"};

	(void)state;
	assert_golden(&l, "ch_config_firmware.json");
}

static void test_minimal(void **state)
{
	/* 64 MiB = 67108864 bytes; empty optional members are left out. */
	struct vm_config c = {
		.vcpus = 1,
		.memory_mb = 64,
		.kernel = "/boot/vmlinux",
		.initramfs = "",
		.cmdline = "",
		.firmware = "",
	};
	struct ch_launch l = {&c, NULL, 0, "/tmp/s.sock"};

	(void)state;
	assert_golden(&l, "ch_config_minimal.json");
}

/* The text keeps slashes as they are ("\/" would be valid JSON, but noisy in logs). */
static void test_text_form(void **state)
{
	struct vm_config c = {.vcpus = 1, .memory_mb = 64, .kernel = "/boot/vmlinux"};
	struct ch_launch l = {&c, NULL, 0, "/run/x/serial.sock"};
	char *text = NULL;

	(void)state;
	assert_int_equal(ch_config_json(&l, &text, NULL), 0);
	assert_non_null(strstr(text, "\"kernel\":\"/boot/vmlinux\""));
	assert_non_null(strstr(text, "\"socket\":\"/run/x/serial.sock\""));
	assert_null(strstr(text, "\\/"));
	assert_null(strchr(text, '\n'));
	free(text);
}

/* Files the manager opened itself go by the names it gives (/proc/self/fd/N); an override
 * for a file the config does not name adds nothing. */
static void test_payload_overrides(void **state)
{
	struct vm_config c = {.vcpus = 1, .memory_mb = 64, .kernel = "/boot/vmlinux"};
	struct ch_launch l = {&c, NULL, 0, "/s"};
	char *text = NULL;

	(void)state;
	l.kernel = "/proc/self/fd/4";
	l.initramfs = "/proc/self/fd/5";
	l.firmware = "/proc/self/fd/6";
	assert_int_equal(ch_config_json(&l, &text, NULL), 0);
	assert_non_null(strstr(text, "\"payload\":{\"kernel\":\"/proc/self/fd/4\"}"));
	free(text);
	c = (struct vm_config){.vcpus = 1, .memory_mb = 64, .firmware = "/usr/share/fw.bin"};
	assert_int_equal(ch_config_json(&l, &text, NULL), 0);
	assert_non_null(strstr(text, "\"payload\":{\"firmware\":\"/proc/self/fd/6\"}"));
	free(text);
}

static int64_t memory_size_of(const char *text)
{
	struct json_object *o = json_tokener_parse(text), *mem, *size;
	int64_t v;

	assert_non_null(o);
	assert_true(json_object_object_get_ex(o, "memory", &mem));
	assert_true(json_object_object_get_ex(mem, "size", &size));
	assert_true(json_object_is_type(size, json_type_int));
	v = json_object_get_int64(size);
	json_object_put(o);
	return v;
}

static void test_memory_large(void **state)
{
	struct vm_config c = {.vcpus = 1, .kernel = "/boot/vmlinux"};
	struct ch_launch l = {&c, NULL, 0, "/s"};
	struct mv_error err = {0};
	char *text = NULL;

	(void)state;
	c.memory_mb = UINT64_C(1) << 20; /* 1 TiB */
	assert_int_equal(ch_config_json(&l, &text, &err), 0);
	assert_true(memory_size_of(text) == INT64_C(1099511627776));
	assert_non_null(strstr(text, "\"size\":1099511627776"));
	free(text);
	text = NULL;

	/* 16 TiB - 1 MiB and the largest size an int64 holds in MiB. */
	c.memory_mb = (UINT64_C(1) << 24) - 1;
	assert_int_equal(ch_config_json(&l, &text, &err), 0);
	assert_true(memory_size_of(text) == (INT64_C(1) << 44) - (INT64_C(1) << 20));
	free(text);
	text = NULL;
	c.memory_mb = (uint64_t)INT64_MAX >> 20;
	assert_int_equal(ch_config_json(&l, &text, &err), 0);
	assert_true(memory_size_of(text) == (int64_t)(((uint64_t)INT64_MAX >> 20) << 20));
	free(text);
	text = NULL;

	/* One more MiB would not fit in the schema's int64: refused, not wrapped. */
	c.memory_mb = ((uint64_t)INT64_MAX >> 20) + 1;
	assert_int_equal(ch_config_json(&l, &text, &err), -EINVAL);
	assert_null(text);
	assert_non_null(strstr(err.msg, "config.memory_mb"));
	mv_error_clear(&err);
	c.memory_mb = UINT64_MAX;
	assert_int_equal(ch_config_json(&l, &text, &err), -EINVAL);
	assert_null(text);
}

/* NICs on mvirt networks stay out of vm.create (their taps are fds, which only vm.add-net
 * takes) and get a NetConfig of their own, named by their index. */
static void test_network_nics_added_apart(void **state)
{
	struct vm_nic nics[] = {
		{.tap = "mvtap0"},
		{.network = "default", .mac = "52:54:00:12:34:57"},
	};
	struct vm_config c = {
		.vcpus = 1, .memory_mb = 64, .kernel = "/boot/vmlinux", .nics = nics, .n_nics = 2};
	struct ch_launch l = {&c, NULL, 0, "/s"};
	struct json_object *o, *want;
	char *text = NULL;

	(void)state;
	assert_int_equal(ch_config_json(&l, &text, NULL), 0);
	o = json_tokener_parse(text);
	want = json_tokener_parse("[{\"tap\":\"mvtap0\"}]");
	assert_true(json_object_equal(json_object_object_get(o, "net"), want));
	json_object_put(o);
	json_object_put(want);
	free(text);

	assert_int_equal(ch_config_net_json(&nics[1], &text), 0);
	assert_string_equal(text, "{\"id\":\"net525400123457\",\"mac\":\"52:54:00:12:34:57\"}");
	free(text);
	/* a tap of the user's, hot-added: the tap by name */
	nics[0].mac = "52:54:00:AB:cd:01";
	assert_int_equal(ch_config_net_json(&nics[0], &text), 0);
	assert_string_equal(
		text,
		"{\"id\":\"net525400abcd01\",\"tap\":\"mvtap0\",\"mac\":\"52:54:00:AB:cd:01\"}");
	nics[0].mac = NULL;
	free(text);

	/* only network NICs: no "net" section at all */
	c.nics = &nics[1];
	c.n_nics = 1;
	assert_int_equal(ch_config_json(&l, &text, NULL), 0);
	o = json_tokener_parse(text);
	assert_null(json_object_object_get(o, "net"));
	json_object_put(o);
	free(text);
}

/* A tap NIC without a MAC gets none: cloud-hypervisor picks one. */
static void test_nic_without_mac(void **state)
{
	struct vm_nic nics[] = {{.tap = "t0", .mac = ""}, {.tap = "t1"}};
	struct vm_config c = {
		.vcpus = 1, .memory_mb = 64, .kernel = "/boot/vmlinux", .nics = nics, .n_nics = 2};
	struct ch_launch l = {&c, NULL, 0, "/s"};
	struct json_object *o, *want;
	char *text = NULL;

	(void)state;
	assert_int_equal(ch_config_json(&l, &text, NULL), 0);
	o = json_tokener_parse(text);
	want = json_tokener_parse("[{\"tap\":\"t0\"},{\"tap\":\"t1\"}]");
	assert_non_null(o);
	assert_non_null(want);
	assert_true(json_object_equal(json_object_object_get(o, "net"), want));
	json_object_put(o);
	json_object_put(want);
	free(text);
}

/* backing_files is emitted for qcow2 overlays only; on a raw disk it means nothing. */
static void test_backing_files_only_for_qcow2_overlays(void **state)
{
	struct vm_config c = {.vcpus = 1, .memory_mb = 64, .kernel = "/boot/vmlinux"};
	struct ch_disk disks[] = {
		{"/d/overlay.qcow2", DISK_FORMAT_QCOW2, false, true},
		{"/d/plain.qcow2", DISK_FORMAT_QCOW2, false, false},
		{"/d/seed.img", DISK_FORMAT_RAW, true, true},
	};
	struct ch_launch l = {&c, disks, 3, "/s"};
	struct json_object *o, *want;
	char *text = NULL;

	(void)state;
	assert_int_equal(ch_config_json(&l, &text, NULL), 0);
	o = json_tokener_parse(text);
	want = json_tokener_parse(
		"[{\"path\":\"/d/overlay.qcow2\",\"image_type\":\"Qcow2\",\"backing_files\":true},"
		"{\"path\":\"/d/plain.qcow2\",\"image_type\":\"Qcow2\"},"
		"{\"path\":\"/d/seed.img\",\"readonly\":true,\"image_type\":\"Raw\"}]");
	assert_non_null(o);
	assert_non_null(want);
	assert_true(json_object_equal(json_object_object_get(o, "disks"), want));
	json_object_put(o);
	json_object_put(want);
	free(text);
}

static void expect_einval(const struct ch_launch *l, const char *msg_part)
{
	struct mv_error err = {0};
	char *text = NULL;

	assert_int_equal(ch_config_json(l, &text, &err), -EINVAL);
	assert_null(text);
	if (!strstr(err.msg, msg_part))
		fail_msg("message '%s' does not mention '%s'", err.msg, msg_part);
}

static void test_invalid(void **state)
{
	struct vm_nic no_tap[] = {{.mac = "52:54:00:12:34:57"}};
	struct vm_config c = {.vcpus = 1, .memory_mb = 64, .kernel = "/boot/vmlinux"};
	struct ch_disk unresolved[] = {
		{"/d/a.raw", DISK_FORMAT_RAW, false, false},
		{"/d/b.img", DISK_FORMAT_UNSPECIFIED, false, false},
	};
	struct ch_disk no_path[] = {{"", DISK_FORMAT_RAW, false, false}};
	struct ch_launch l = {&c, NULL, 0, "/s"};

	(void)state;
	c.vcpus = 0;
	expect_einval(&l, "config.vcpus");
	c.vcpus = 1;
	c.memory_mb = 0;
	expect_einval(&l, "config.memory_mb");
	c.memory_mb = 64;
	c.kernel = NULL;
	expect_einval(&l, "kernel or firmware");
	c.kernel = "/boot/vmlinux";
	c.firmware = "/fw.fd";
	expect_einval(&l, "config.firmware");
	c.firmware = NULL;
	c.nics = no_tap;
	c.n_nics = 1;
	expect_einval(&l, "config.nics[0]");
	c.nics = NULL;
	c.n_nics = 0;
	l.disks = unresolved;
	l.n_disks = 2;
	expect_einval(&l, "/d/b.img");
	l.disks = no_path;
	l.n_disks = 1;
	expect_einval(&l, "disk 0");
	l.disks = NULL;
	l.n_disks = 0;
	l.serial_socket = NULL;
	expect_einval(&l, "serial");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_firmware),
		cmocka_unit_test(test_minimal),
		cmocka_unit_test(test_text_form),
		cmocka_unit_test(test_payload_overrides),
		cmocka_unit_test(test_memory_large),
		cmocka_unit_test(test_network_nics_added_apart),
		cmocka_unit_test(test_nic_without_mac),
		cmocka_unit_test(test_backing_files_only_for_qcow2_overlays),
		cmocka_unit_test(test_invalid),
	};

	int r;

	find_golden_dirs();
	r = cmocka_run_group_tests(tests, NULL, NULL);
	free_golden_dirs();
	return r;
}
