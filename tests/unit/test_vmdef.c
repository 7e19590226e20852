/* Unit tests of vmdef.c, the plain data model: deep copies (independent of their source, the
 * hypervisor process included), NULL-safe destructors, member-by-member equality (NULL equals
 * ""), and the enum names. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "model/vmdef.h"

static char *xstrdup(const char *s)
{
	char *p = strdup(s);

	assert_non_null(p);
	return p;
}

/* A record with every member set, two disks and two nics; free with vmdef_record_done(). */
static void full_record(struct vm_record *r)
{
	memset(r, 0, sizeof(*r));
	memcpy(r->id, "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718", sizeof(r->id));
	r->name = xstrdup("web-1");
	r->state = VM_STATE_RUNNING;
	r->state_reason = xstrdup("started by user");
	r->created_at_us = 1700000000123456;
	r->started_at_us = 1700000100654321;
	r->process.pid = 4242;
	r->process.starttime = ((uint64_t)1 << 40) + 12345;
	memcpy(r->process.boot_id, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9",
	       sizeof(r->process.boot_id));
	r->config.vcpus = 4;
	r->config.memory_mb = 4096;
	r->config.kernel = xstrdup("/boot/vmlinuz");
	r->config.initramfs = xstrdup("/boot/initrd.img");
	r->config.cmdline = xstrdup("console=ttyS0 root=/dev/vda");
	r->config.firmware = xstrdup("/usr/share/ovmf/OVMF.fd");
	r->config.disk = xstrdup("/var/lib/mvirt/disks/web-1.raw");
	r->config.user_data = xstrdup("#cloud-config\nhostname: web-1\n");
	r->config.autostart = true;
	r->config.autostart_order = 3;
	r->config.version = ((uint64_t)1 << 33) + 5;
	r->config.n_disks = 2;
	r->config.disks = calloc(2, sizeof(*r->config.disks));
	assert_non_null(r->config.disks);
	r->config.disks[0] = (struct vm_disk){xstrdup("/d/a.raw"), false, DISK_FORMAT_RAW};
	r->config.disks[1] = (struct vm_disk){xstrdup("/d/b.qcow2"), true, DISK_FORMAT_QCOW2};
	r->config.n_nics = 2;
	r->config.nics = calloc(2, sizeof(*r->config.nics));
	assert_non_null(r->config.nics);
	r->config.nics[0] =
		(struct vm_nic){xstrdup("tap0"), xstrdup("default"), xstrdup("52:54:00:12:34:56")};
	r->config.nics[1] = (struct vm_nic){xstrdup("tap1"), NULL, xstrdup("52:54:00:ab:cd:ef")};
}

static void test_copy_is_deep(void **state)
{
	struct vm_record a, b;

	(void)state;
	full_record(&a);
	assert_int_equal(vmdef_record_copy(&b, &a), 0);
	assert_true(vmdef_record_equal(&a, &b));

	/* No pointer is shared. */
	assert_ptr_not_equal(a.name, b.name);
	assert_ptr_not_equal(a.state_reason, b.state_reason);
	assert_ptr_not_equal(a.config.kernel, b.config.kernel);
	assert_ptr_not_equal(a.config.user_data, b.config.user_data);
	assert_ptr_not_equal(a.config.disks, b.config.disks);
	assert_ptr_not_equal(a.config.disks[1].path, b.config.disks[1].path);
	assert_ptr_not_equal(a.config.nics, b.config.nics);
	assert_ptr_not_equal(a.config.nics[0].mac, b.config.nics[0].mac);

	/* Changing the source does not change the copy. */
	a.name[0] = 'X';
	a.config.disks[1].path[1] = 'X';
	a.config.nics[0].mac[0] = 'X';
	a.config.disks[0].readonly = true;
	a.process.boot_id[0] = 'X';
	a.process.pid = 1;
	assert_false(vmdef_record_equal(&a, &b));
	assert_string_equal(b.name, "web-1");
	assert_string_equal(b.config.disks[1].path, "/d/b.qcow2");
	assert_string_equal(b.config.nics[0].mac, "52:54:00:12:34:56");
	assert_false(b.config.disks[0].readonly);
	assert_null(b.config.nics[1].network);

	/* The copy outlives its source (ASan checks there is no use after free). */
	vmdef_record_done(&a);
	assert_string_equal(b.config.user_data, "#cloud-config\nhostname: web-1\n");
	assert_string_equal(b.id, "6f1c2a4e-9b3d-4e8f-a1b2-c3d4e5f60718");
	assert_int_equal(b.created_at_us, 1700000000123456);
	assert_int_equal(b.started_at_us, 1700000100654321);
	assert_int_equal(b.config.disks[1].format, DISK_FORMAT_QCOW2);
	assert_int_equal(b.process.pid, 4242);
	assert_true(b.process.starttime == ((uint64_t)1 << 40) + 12345);
	assert_string_equal(b.process.boot_id, "0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9");
	vmdef_record_done(&b);
}

static void test_copy_empty(void **state)
{
	struct vm_record a = {.state = VM_STATE_STOPPED}, b;
	struct vm_config c;

	(void)state;
	memset(&b, 0xa5, sizeof(b));
	assert_int_equal(vmdef_record_copy(&b, &a), 0);
	assert_null(b.name);
	assert_null(b.state_reason);
	assert_null(b.config.kernel);
	assert_null(b.config.disks);
	assert_null(b.config.nics);
	assert_int_equal(b.config.n_disks, 0);
	assert_int_equal(b.config.n_nics, 0);
	assert_string_equal(b.id, "");
	assert_int_equal(b.process.pid, 0);
	assert_int_equal(b.process.starttime, 0);
	assert_string_equal(b.process.boot_id, "");
	assert_true(vmdef_record_equal(&a, &b));
	vmdef_record_done(&b);

	full_record(&a);
	assert_int_equal(vmdef_config_copy(&c, &a.config), 0);
	assert_true(vmdef_config_equal(&c, &a.config));
	vmdef_config_done(&c);
	vmdef_record_done(&a);
}

static void test_done_is_null_safe_and_zeroes(void **state)
{
	struct vm_record r;
	struct vm_record *heap;

	(void)state;
	vmdef_record_done(NULL);
	vmdef_config_done(NULL);
	vmdef_record_free(NULL);

	full_record(&r);
	vmdef_record_done(&r);
	assert_null(r.name);
	assert_null(r.config.disks);
	assert_int_equal(r.config.n_disks, 0);
	assert_int_equal(r.config.n_nics, 0);
	vmdef_record_done(&r); /* twice is harmless after zeroing */

	heap = malloc(sizeof(*heap));
	assert_non_null(heap);
	full_record(heap);
	vmdef_record_free(heap);
}

static void test_equal_null_and_empty(void **state)
{
	struct vm_record a, b;

	(void)state;
	full_record(&a);
	assert_int_equal(vmdef_record_copy(&b, &a), 0);

	free(a.state_reason);
	a.state_reason = NULL;
	free(b.state_reason);
	b.state_reason = xstrdup("");
	free(a.config.nics[1].tap);
	a.config.nics[1].tap = xstrdup("");
	free(b.config.nics[1].tap);
	b.config.nics[1].tap = NULL;
	assert_true(vmdef_record_equal(&a, &b));
	assert_true(vmdef_record_equal(&b, &a));

	/* NULL is not equal to a non-empty string. */
	free(b.state_reason);
	b.state_reason = xstrdup("x");
	assert_false(vmdef_record_equal(&a, &b));
	assert_false(vmdef_record_equal(&b, &a));
	vmdef_record_done(&a);
	vmdef_record_done(&b);
}

/* Each mutation changes one member; equality must notice every one of them. */
static void mut_id(struct vm_record *r)
{
	r->id[35] = 'x';
}
static void mut_name(struct vm_record *r)
{
	r->name[0] = 'W';
}
static void mut_state(struct vm_record *r)
{
	r->state = VM_STATE_PAUSED;
}
static void mut_reason(struct vm_record *r)
{
	free(r->state_reason);
	r->state_reason = NULL;
}
static void mut_created(struct vm_record *r)
{
	r->created_at_us++;
}
static void mut_started(struct vm_record *r)
{
	r->started_at_us = 0;
}
static void mut_pid(struct vm_record *r)
{
	r->process.pid = 4243;
}
static void mut_starttime_high(struct vm_record *r)
{
	r->process.starttime ^= (uint64_t)1 << 40; /* the low 32 bits stay */
}
static void mut_starttime_low(struct vm_record *r)
{
	r->process.starttime++;
}
static void mut_boot_id(struct vm_record *r)
{
	r->process.boot_id[35] = 'a';
}
static void mut_boot_id_empty(struct vm_record *r)
{
	r->process.boot_id[0] = '\0';
}
static void mut_autostart(struct vm_record *r)
{
	r->config.autostart = false;
}
static void mut_autostart_order(struct vm_record *r)
{
	r->config.autostart_order = 4;
}
static void mut_version(struct vm_record *r)
{
	r->config.version -= (uint64_t)1 << 33;
}
static void mut_vcpus(struct vm_record *r)
{
	r->config.vcpus = 5;
}
static void mut_memory(struct vm_record *r)
{
	r->config.memory_mb += (uint64_t)1 << 40;
}
static void mut_kernel(struct vm_record *r)
{
	r->config.kernel[1] = 'B';
}
static void mut_initramfs(struct vm_record *r)
{
	free(r->config.initramfs);
	r->config.initramfs = NULL;
}
static void mut_cmdline(struct vm_record *r)
{
	r->config.cmdline[0] = 'C';
}
static void mut_firmware(struct vm_record *r)
{
	r->config.firmware[1] = 'U';
}
static void mut_disk(struct vm_record *r)
{
	r->config.disk[1] = 'V';
}
static void mut_user_data(struct vm_record *r)
{
	r->config.user_data[0] = ' ';
}
static void mut_n_disks(struct vm_record *r)
{
	r->config.n_disks = 1;
}
static void mut_disk_path(struct vm_record *r)
{
	r->config.disks[1].path[1] = 'e';
}
static void mut_disk_readonly(struct vm_record *r)
{
	r->config.disks[1].readonly = false;
}
static void mut_disk_format(struct vm_record *r)
{
	r->config.disks[0].format = DISK_FORMAT_UNSPECIFIED;
}
static void mut_n_nics(struct vm_record *r)
{
	r->config.n_nics = 1;
}
static void mut_nic_tap(struct vm_record *r)
{
	r->config.nics[0].tap[3] = '9';
}
static void mut_nic_network(struct vm_record *r)
{
	r->config.nics[1].network = xstrdup("other");
}
static void mut_nic_mac(struct vm_record *r)
{
	r->config.nics[1].mac[16] = '0';
}

typedef void (*mutation_fn)(struct vm_record *r);

/* Applies each of muts to a fresh copy of base: equality must notice every one of them, and
 * config equality must notice exactly those that touch the config. */
static void check_mutations(const struct vm_record *base, const mutation_fn *muts, size_t n,
			    bool touch_config)
{
	for (size_t i = 0; i < n; i++) {
		struct vm_record m;
		size_t n_disks, n_nics;

		assert_int_equal(vmdef_record_copy(&m, base), 0);
		assert_true(vmdef_record_equal(base, &m));
		n_disks = m.config.n_disks;
		n_nics = m.config.n_nics;
		muts[i](&m);
		if (vmdef_record_equal(base, &m) || vmdef_record_equal(&m, base))
			fail_msg("%s mutation %zu went unnoticed",
				 touch_config ? "config" : "record", i);
		assert_int_equal(vmdef_config_equal(&base->config, &m.config), !touch_config);
		/* restore the counts so that done() frees what was allocated */
		m.config.n_disks = n_disks;
		m.config.n_nics = n_nics;
		vmdef_record_done(&m);
	}
}

static void test_equal_notices_every_member(void **state)
{
	static const mutation_fn record_muts[] = {
		mut_id,      mut_name,           mut_state,
		mut_reason,  mut_created,        mut_started,
		mut_pid,     mut_starttime_high, mut_starttime_low,
		mut_boot_id, mut_boot_id_empty,
	};
	static const mutation_fn config_muts[] = {
		mut_vcpus,     mut_memory,          mut_kernel,        mut_initramfs,
		mut_cmdline,   mut_firmware,        mut_disk,          mut_user_data,
		mut_n_disks,   mut_disk_path,       mut_disk_readonly, mut_disk_format,
		mut_n_nics,    mut_nic_tap,         mut_nic_network,   mut_nic_mac,
		mut_autostart, mut_autostart_order, mut_version,
	};
	struct vm_record base;

	(void)state;
	full_record(&base);
	check_mutations(&base, record_muts, sizeof(record_muts) / sizeof(record_muts[0]), false);
	check_mutations(&base, config_muts, sizeof(config_muts) / sizeof(config_muts[0]), true);
	vmdef_record_done(&base);
}

static void test_config_equal(void **state)
{
	struct vm_record a, b;

	(void)state;
	full_record(&a);
	assert_int_equal(vmdef_record_copy(&b, &a), 0);
	/* Record-only members do not affect config equality. */
	b.state = VM_STATE_CRASHED;
	b.name[0] = 'z';
	b.process = (struct vm_process){0};
	assert_true(vmdef_config_equal(&a.config, &b.config));
	assert_false(vmdef_record_equal(&a, &b));
	b.config.disks[0].readonly = true;
	assert_false(vmdef_config_equal(&a.config, &b.config));
	vmdef_record_done(&a);
	vmdef_record_done(&b);
}

/* The members the daemon keeps (plain_paths, version) and autostart's: equal notices them all,
 * same_settings none of the daemon's, and autostart's only when asked to. */
static void test_same_settings(void **state)
{
	struct vm_record a, b;

	(void)state;
	full_record(&a);
	assert_int_equal(vmdef_record_copy(&b, &a), 0);
	b.config.version = a.config.version + 1;
	b.config.plain_paths = a.config.plain_paths ^ 1;
	assert_false(vmdef_config_equal(&a.config, &b.config));
	assert_true(vmdef_config_same_settings(&a.config, &b.config, true));
	b.config.autostart = !a.config.autostart;
	assert_false(vmdef_config_equal(&a.config, &b.config));
	assert_false(vmdef_config_same_settings(&a.config, &b.config, true));
	assert_true(vmdef_config_same_settings(&a.config, &b.config, false));
	b.config.autostart = a.config.autostart;
	b.config.autostart_order = 7;
	assert_false(vmdef_config_same_settings(&a.config, &b.config, true));
	assert_true(vmdef_config_same_settings(&a.config, &b.config, false));
	b.config.vcpus++;
	assert_false(vmdef_config_same_settings(&a.config, &b.config, false));
	/* copies keep them */
	vmdef_record_done(&a);
	assert_int_equal(vmdef_record_copy(&a, &b), 0);
	assert_true(vmdef_config_equal(&a.config, &b.config));
	assert_int_equal(a.config.autostart_order, 7);
	vmdef_record_done(&a);
	vmdef_record_done(&b);
}

static void test_config_fields(void **state)
{
	static const char *const names[] = {
		"vcpus",     "memory_mb",       "kernel",    "initramfs",
		"cmdline",   "firmware",        "disk",      "disks",
		"nics",      "user_data",       "meta_data", "network_config",
		"autostart", "autostart_order",
	};
	uint32_t all = 0;
	struct vm_record a, b;

	(void)state;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint32_t bit = vmdef_config_field_from_name(names[i]);

		assert_int_not_equal(bit, 0);
		assert_int_equal(all & bit, 0); /* one bit each */
		all |= bit;
	}
	assert_int_equal(all, VM_FIELD_ALL);
	assert_int_equal(vmdef_config_field_from_name("plain_paths"), 0);
	assert_int_equal(vmdef_config_field_from_name("version"), 0);
	assert_int_equal(vmdef_config_field_from_name("Vcpus"), 0);
	assert_int_equal(vmdef_config_field_from_name(""), 0);
	assert_int_equal(vmdef_config_field_from_name(NULL), 0);

	/* swap moves exactly the named members, both ways */
	full_record(&a);
	memset(&b, 0, sizeof(b));
	b.config.vcpus = 9;
	b.config.cmdline = xstrdup("new");
	vmdef_config_swap_fields(&a.config, &b.config,
				 VM_FIELD_VCPUS | VM_FIELD_CMDLINE | VM_FIELD_DISKS);
	assert_int_equal(a.config.vcpus, 9);
	assert_string_equal(a.config.cmdline, "new");
	assert_int_equal(a.config.n_disks, 0);
	assert_non_null(a.config.kernel);
	assert_int_not_equal(b.config.vcpus, 9);
	assert_string_not_equal(b.config.cmdline, "new");
	assert_int_not_equal(b.config.n_disks, 0);
	assert_null(b.config.kernel);
	vmdef_record_done(&a);
	vmdef_config_done(&b.config);
}

static void test_vm_state_name(void **state)
{
	(void)state;
	assert_string_equal(vm_state_name(VM_STATE_STOPPED), "stopped");
	assert_string_equal(vm_state_name(VM_STATE_STARTING), "starting");
	assert_string_equal(vm_state_name(VM_STATE_RUNNING), "running");
	assert_string_equal(vm_state_name(VM_STATE_PAUSED), "paused");
	assert_string_equal(vm_state_name(VM_STATE_STOPPING), "stopping");
	assert_string_equal(vm_state_name(VM_STATE_CRASHED), "crashed");
	assert_string_equal(vm_state_name((enum vm_state)0), "unknown");
	assert_string_equal(vm_state_name((enum vm_state)7), "unknown");
	assert_string_equal(vm_state_name((enum vm_state) - 1), "unknown");
}

static void test_disk_format_names(void **state)
{
	static const enum disk_format all[] = {DISK_FORMAT_RAW, DISK_FORMAT_QCOW2};
	enum disk_format f;

	(void)state;
	assert_string_equal(disk_format_name(DISK_FORMAT_RAW), "raw");
	assert_string_equal(disk_format_name(DISK_FORMAT_QCOW2), "qcow2");
	assert_string_equal(disk_format_name(DISK_FORMAT_UNSPECIFIED), "unspecified");
	assert_string_equal(disk_format_name((enum disk_format)3), "unknown");

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		f = DISK_FORMAT_UNSPECIFIED;
		assert_int_equal(disk_format_from_name(disk_format_name(all[i]), &f), 0);
		assert_int_equal(f, all[i]);
	}
	assert_int_equal(disk_format_from_name("raw", &f), 0);
	assert_int_equal(f, DISK_FORMAT_RAW);
	assert_int_equal(disk_format_from_name("qcow2", &f), 0);
	assert_int_equal(f, DISK_FORMAT_QCOW2);
	assert_int_equal(disk_format_from_name("unspecified", &f), -EINVAL);
	assert_int_equal(disk_format_from_name("RAW", &f), -EINVAL);
	assert_int_equal(disk_format_from_name("", &f), -EINVAL);
	assert_int_equal(disk_format_from_name("qcow", &f), -EINVAL);
	assert_int_equal(disk_format_from_name("raw ", &f), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_copy_is_deep),
		cmocka_unit_test(test_copy_empty),
		cmocka_unit_test(test_done_is_null_safe_and_zeroes),
		cmocka_unit_test(test_equal_null_and_empty),
		cmocka_unit_test(test_equal_notices_every_member),
		cmocka_unit_test(test_config_equal),
		cmocka_unit_test(test_same_settings),
		cmocka_unit_test(test_config_fields),
		cmocka_unit_test(test_vm_state_name),
		cmocka_unit_test(test_disk_format_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
