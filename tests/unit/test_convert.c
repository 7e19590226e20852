/* Unit tests of api_convert.c: vm_record -> Mvirt__Vm -> wire -> Mvirt__Vm -> vm_config round
 * trips, timestamps, empty strings, unknown enum values. Run under ASan to catch leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api_convert.h"
#include "common/macro.h"

/* A record with every field set: two disks (one with an unknown format), two nics. */
static void record_full(struct vm_record *r)
{
	static const struct vm_disk disks[] = {
		{.path = (char *)"/var/lib/mvirt/a.qcow2",
		 .readonly = false,
		 .format = DISK_FORMAT_QCOW2},
		{.path = (char *)"/dev/vdb", .readonly = true, .format = DISK_FORMAT_RAW},
		{.path = (char *)"/x", .readonly = false, .format = (enum disk_format)7},
	};
	static const struct vm_nic nics[] = {
		{.tap = (char *)"tap0", .mac = (char *)"52:54:00:12:34:56"},
		{.network = (char *)"default"},
	};
	struct vm_record src = {
		.id = "0b9c6b52-3c1e-4a8e-9a1f-6f0e7d1c2b3a",
		.name = (char *)"web-1",
		.state = VM_STATE_RUNNING,
		.state_reason = (char *)"started by user",
		.config =
			{
				.vcpus = 4,
				.memory_mb = UINT64_C(1) << 40,
				.kernel = (char *)"/boot/vmlinux",
				.initramfs = (char *)"/boot/initrd",
				.cmdline = (char *)"console=ttyS0 root=/dev/vda",
				.firmware = (char *)"/usr/share/CLOUDHV.fd",
				.disk = (char *)"/var/lib/mvirt/root.img",
				.disks = (struct vm_disk *)disks,
				.n_disks = ELEMENTSOF(disks),
				.nics = (struct vm_nic *)nics,
				.n_nics = ELEMENTSOF(nics),
				.user_data = (char *)"#cloud-config\nhostname: web-1\n",
			},
		.created_at_us = INT64_C(1700000000123456),
		.started_at_us = INT64_C(1700000100000001),
	};

	assert_int_equal(vmdef_record_copy(r, &src), 0);
}

/* to_pb, pack, unpack: returns the unpacked message (free with mvirt__vm__free_unpacked). */
static Mvirt__Vm *through_wire(const struct vm_record *r)
{
	Mvirt__Vm pb;
	uint8_t *buf;
	size_t len;
	Mvirt__Vm *out;

	assert_int_equal(api_convert_vm_to_pb(r, NULL, &pb), 0);
	len = protobuf_c_message_get_packed_size(&pb.base);
	buf = malloc(len ? len : 1);
	assert_non_null(buf);
	assert_int_equal(protobuf_c_message_pack(&pb.base, buf), len);
	api_convert_vm_pb_done(&pb);
	out = mvirt__vm__unpack(NULL, len, buf);
	free(buf);
	assert_non_null(out);
	return out;
}

static void test_round_trip(void **state)
{
	struct vm_record r = {};
	struct vm_config back = {};
	Mvirt__Vm *pb;

	(void)state;
	record_full(&r);
	pb = through_wire(&r);

	assert_string_equal(pb->id, r.id);
	assert_string_equal(pb->name, "web-1");
	assert_int_equal(pb->state, MVIRT__VM_STATE__VM_STATE_RUNNING);
	assert_string_equal(pb->state_reason, "started by user");
	assert_non_null(pb->config);
	assert_int_equal(pb->config->n_disks, 3);
	assert_int_equal(pb->config->n_nics, 2);

	assert_int_equal(api_convert_config_from_pb(pb->config, &back), 0);
	assert_true(vmdef_config_equal(&back, &r.config));
	assert_int_equal(back.memory_mb, UINT64_C(1) << 40);
	assert_int_equal(back.disks[2].format, 7); /* unknown enum value preserved */
	assert_true(back.disks[1].readonly);
	assert_null(back.nics[0].network); /* "" on the wire becomes NULL */
	assert_null(back.nics[1].tap);
	assert_null(back.nics[1].mac);
	assert_string_equal(back.nics[1].network, "default");

	/* the comparison must be able to fail */
	free(back.disks[0].path);
	back.disks[0].path = strdup("/other");
	assert_false(vmdef_config_equal(&back, &r.config));

	vmdef_config_done(&back);
	mvirt__vm__free_unpacked(pb, NULL);
	vmdef_record_done(&r);
}

static void test_timestamps(void **state)
{
	static const struct {
		int64_t us, sec;
		int32_t nanos;
	} cases[] = {
		{INT64_C(1700000000123456), INT64_C(1700000000), 123456000},
		{INT64_C(1000000), 1, 0},
		{INT64_C(999999), 0, 999999000},
		{-1, -1, 999999000},
		{INT64_C(-1000000), -1, 0},
		{INT64_C(-1500000), -2, 500000000},
		{INT64_MIN, INT64_C(-9223372036855), 224192000},
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		struct vm_record r = {.state = VM_STATE_STOPPED,
				      .created_at_us = cases[i].us,
				      .started_at_us = cases[i].us};
		Mvirt__Vm pb;

		assert_int_equal(api_convert_vm_to_pb(&r, NULL, &pb), 0);
		assert_non_null(pb.created_at);
		assert_int_equal(pb.created_at->seconds, cases[i].sec);
		assert_int_equal(pb.created_at->nanos, cases[i].nanos);
		assert_non_null(pb.started_at);
		assert_int_equal(pb.started_at->seconds, cases[i].sec);
		assert_int_equal(pb.started_at->nanos, cases[i].nanos);
		assert_true(pb.created_at->nanos >= 0 && pb.created_at->nanos < 1000000000);
		api_convert_vm_pb_done(&pb);
	}
}

static void test_never_started(void **state)
{
	struct vm_record r = {};
	Mvirt__Vm *pb;

	(void)state;
	record_full(&r);
	r.started_at_us = 0;
	pb = through_wire(&r);
	assert_null(pb->started_at);
	assert_non_null(pb->created_at);
	assert_int_equal(pb->created_at->seconds, INT64_C(1700000000));
	assert_int_equal(pb->created_at->nanos, 123456000);
	mvirt__vm__free_unpacked(pb, NULL);
	vmdef_record_done(&r);
}

static void test_empty_strings(void **state)
{
	struct vm_record r = {.state = VM_STATE_STOPPED};
	struct vm_config back = {};
	Mvirt__Vm pb, *wire;

	(void)state;
	/* NULL and "" both become the shared empty string, which done() must not free */
	r.state_reason = strdup("");
	assert_non_null(r.state_reason);
	assert_int_equal(api_convert_vm_to_pb(&r, NULL, &pb), 0);
	assert_ptr_equal(pb.id, protobuf_c_empty_string);
	assert_ptr_equal(pb.name, protobuf_c_empty_string);
	assert_ptr_equal(pb.state_reason, protobuf_c_empty_string);
	assert_non_null(pb.config);
	assert_ptr_equal(pb.config->kernel, protobuf_c_empty_string);
	assert_ptr_equal(pb.config->user_data, protobuf_c_empty_string);
	assert_int_equal(pb.config->n_disks, 0);
	assert_null(pb.config->disks);
	assert_null(pb.started_at);
	api_convert_vm_pb_done(&pb);
	assert_ptr_equal(pb.name, protobuf_c_empty_string); /* done leaves an empty message */
	api_convert_vm_pb_done(&pb);                        /* and is idempotent */

	wire = through_wire(&r);
	assert_int_equal(api_convert_config_from_pb(wire->config, &back), 0);
	assert_null(back.kernel);
	assert_null(back.initramfs);
	assert_null(back.cmdline);
	assert_null(back.firmware);
	assert_null(back.disk);
	assert_null(back.user_data);
	assert_null(back.disks);
	assert_null(back.nics);
	vmdef_config_done(&back);
	mvirt__vm__free_unpacked(wire, NULL);
	vmdef_record_done(&r);
}

/* from_pb on a message built by hand, as a client would send it. */
static void test_from_pb_direct(void **state)
{
	Mvirt__Disk d = MVIRT__DISK__INIT, *dp[] = {&d};
	Mvirt__Nic n = MVIRT__NIC__INIT, *np[] = {&n};
	Mvirt__VmConfig pb = MVIRT__VM_CONFIG__INIT;
	struct vm_config c = {};

	(void)state;
	d.path = (char *)"/img";
	d.format = (Mvirt__DiskFormat)99;
	n.tap = (char *)"";
	n.network = (char *)"lan";
	pb.vcpus = 2;
	pb.memory_mb = 512;
	pb.kernel = (char *)"/k";
	pb.cmdline = (char *)"";
	pb.disks = dp;
	pb.n_disks = 1;
	pb.nics = np;
	pb.n_nics = 1;

	assert_int_equal(api_convert_config_from_pb(&pb, &c), 0);
	assert_int_equal(c.vcpus, 2);
	assert_int_equal(c.memory_mb, 512);
	assert_string_equal(c.kernel, "/k");
	assert_ptr_not_equal(c.kernel, pb.kernel); /* copied, not borrowed */
	assert_null(c.cmdline);
	assert_null(c.initramfs);
	assert_int_equal(c.n_disks, 1);
	assert_string_equal(c.disks[0].path, "/img");
	assert_int_equal(c.disks[0].format, 99);
	assert_int_equal(c.n_nics, 1);
	assert_null(c.nics[0].tap);
	assert_string_equal(c.nics[0].network, "lan");
	vmdef_config_done(&c);

	/* an absent config message is an empty config */
	memset(&c, 0xff, sizeof(c));
	assert_int_equal(api_convert_config_from_pb(NULL, &c), 0);
	assert_int_equal(c.vcpus, 0);
	assert_null(c.kernel);
	assert_int_equal(c.n_disks, 0);
	assert_null(c.disks);
}

static void test_unknown_state(void **state)
{
	struct vm_record r = {.state = (enum vm_state)42, .created_at_us = 1};
	Mvirt__Vm *pb;

	(void)state;
	pb = through_wire(&r);
	assert_int_equal(pb->state, 42);
	mvirt__vm__free_unpacked(pb, NULL);
}

/* The message owns copies: changing the record afterwards does not change it. */
static void test_no_borrowed_pointers(void **state)
{
	struct vm_record r = {};
	Mvirt__Vm pb;

	(void)state;
	record_full(&r);
	assert_int_equal(api_convert_vm_to_pb(&r, NULL, &pb), 0);
	vmdef_record_done(&r);
	assert_string_equal(pb.name, "web-1");
	assert_string_equal(pb.config->kernel, "/boot/vmlinux");
	assert_string_equal(pb.config->disks[1]->path, "/dev/vdb");
	assert_string_equal(pb.config->nics[0]->mac, "52:54:00:12:34:56");
	api_convert_vm_pb_done(&pb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),           cmocka_unit_test(test_timestamps),
		cmocka_unit_test(test_never_started),        cmocka_unit_test(test_empty_strings),
		cmocka_unit_test(test_from_pb_direct),       cmocka_unit_test(test_unknown_state),
		cmocka_unit_test(test_no_borrowed_pointers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
