/* Unit tests for the API server's edges that need no running server: the error → gRPC status
 * map (api_status.c), listen-address parsing (listener.c) and the wire-level NUL check
 * (api_wire.c). */
#include <setjmp.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/api.h"
#include "api/api_wire.h"
#include "common/utf8.h"
#include "api/listener.h"
#include "mvirt.pb-c.h"

/* Every kind has its status, and the status follows the kind alone: an error made with an
 * errno that "looks like" another status keeps its kind's. */
static void test_status_map(void **state)
{
	static const struct {
		enum mv_error_kind kind;
		grpc_status_code status;
	} table[] = {
		{MV_ERR_NONE, GRPC_STATUS_INTERNAL},
		{MV_ERR_INVALID, GRPC_STATUS_INVALID_ARGUMENT},
		{MV_ERR_NOT_FOUND, GRPC_STATUS_NOT_FOUND},
		{MV_ERR_EXISTS, GRPC_STATUS_ALREADY_EXISTS},
		{MV_ERR_PRECONDITION, GRPC_STATUS_FAILED_PRECONDITION},
		{MV_ERR_ABORTED, GRPC_STATUS_ABORTED},
		{MV_ERR_TIMEOUT, GRPC_STATUS_DEADLINE_EXCEEDED},
		{MV_ERR_EXHAUSTED, GRPC_STATUS_RESOURCE_EXHAUSTED},
		{MV_ERR_DENIED, GRPC_STATUS_PERMISSION_DENIED},
		{MV_ERR_UNAVAILABLE, GRPC_STATUS_UNAVAILABLE},
		{MV_ERR_UNSUPPORTED, GRPC_STATUS_UNIMPLEMENTED},
		{MV_ERR_INTERNAL, GRPC_STATUS_INTERNAL},
	};
	struct mv_error err = {0};
	bool seen[_MV_ERR_KIND_MAX] = {false};

	(void)state;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		assert_int_equal(api_status_from_kind(table[i].kind), table[i].status);
		assert_string_not_equal(mv_error_kind_name(table[i].kind), "unknown");
		seen[table[i].kind] = true;
	}
	for (int k = 0; k < _MV_ERR_KIND_MAX; k++)
		assert_true(seen[k]); /* the table above covers every kind */
	assert_int_equal(api_status_from_kind(_MV_ERR_KIND_MAX), GRPC_STATUS_INTERNAL);

	/* The kind decides, not the errno. */
	assert_int_equal(mv_err_precondition(&err, -ENOENT, "hypervisor missing: %m"), -ENOENT);
	assert_int_equal(api_status_from_kind(err.kind), GRPC_STATUS_FAILED_PRECONDITION);
	assert_string_equal(err.msg, "hypervisor missing: No such file or directory");
	/* The first error wins, prefixes keep the kind. */
	assert_int_equal(mv_err_invalid(&err, "later"), -EINVAL);
	mv_err_prefix(&err, "vm 'a': ");
	assert_int_equal(err.kind, MV_ERR_PRECONDITION);
	assert_string_equal(err.msg, "vm 'a': hypervisor missing: No such file or directory");
	/* A bare -errno becomes an internal error. */
	mv_error_clear(&err);
	assert_int_equal(mv_err_ensure(&err, -ENOMEM), -ENOMEM);
	assert_int_equal(err.kind, MV_ERR_INTERNAL);
	assert_string_equal(err.msg, "Cannot allocate memory");
	assert_int_equal(mv_err_ensure(&err, -EIO), -EIO);
	assert_string_equal(err.msg, "Cannot allocate memory");
}

static void test_listen_addresses(void **state)
{
	static const char *const good[] = {
		"unix:/run/mvirt/mvirt.sock",
		"/tmp/x.sock",
		"127.0.0.1:50051",
		"localhost:1",
		"127.1.2.3:65535",
		"[::1]:50051",
	};
	static const struct {
		const char *addr, *needle;
	} bad[] = {
		{"0.0.0.0:50051", "not a loopback"},
		{"192.168.1.1:50051", "not a loopback"},
		{"[::]:50051", "not a loopback"},
		{"127.0.0.1:0", "invalid port"},
		{"127.0.0.1:65536", "invalid port"},
		{"127.0.0.1:", "invalid port"},
		{"127.0.0.1", "expected"},
		{"unix:relative.sock", "absolute"},
		{"example.com:80", "not an IP address"},
		{"[::1:80", "unbalanced"},
	};
	char longpath[200];

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(good); i++) {
		struct mv_error err = {0};
		int r = listener_check_address(good[i], &err);
		if (r < 0)
			fail_msg("%s: %s", good[i], err.msg);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		struct mv_error err = {0};
		assert_int_equal(listener_check_address(bad[i].addr, &err), -EINVAL);
		if (!strstr(err.msg, bad[i].needle) || !strstr(err.msg, bad[i].addr))
			fail_msg("%s: unexpected message '%s'", bad[i].addr, err.msg);
	}
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	struct mv_error err = {0};
	assert_int_equal(listener_check_address(longpath, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "too long"));
}

/* Packs msg and scans it: "path: cause" of the first bad string field, or NULL. */
static const char *scan_wire(const ProtobufCMessageDescriptor *desc, const uint8_t *buf, size_t n)
{
	static struct api_wire_fault f;
	static char out[512];

	if (!api_wire_check_strings(desc, buf, n, &f))
		return NULL;
	snprintf(out, sizeof(out), "%s: %s", f.path, f.cause);
	return out;
}

static const char *scan(const ProtobufCMessage *msg)
{
	static uint8_t buf[4096];
	size_t n = protobuf_c_message_pack(msg, buf);

	return scan_wire(msg->descriptor, buf, n);
}

static void test_wire_nul(void **state)
{
	Mvirt__CreateVmRequest req = MVIRT__CREATE_VM_REQUEST__INIT;
	Mvirt__VmConfig cfg = MVIRT__VM_CONFIG__INIT;
	Mvirt__Disk disk = MVIRT__DISK__INIT, *disks[] = {&disk};
	static const uint8_t truncated[] = {0x0a, 0x05, 'a', 'b'};   /* field 1, len 5, 2 bytes */
	static const uint8_t nul_name[] = {0x0a, 0x03, 'a', 0, 'b'}; /* name = "a\0b" */
	static const uint8_t nested[] = {0x12, 0x05, 0x1a, 0x03, 'k', 0, 'x'}; /* config.kernel */

	(void)state;
	/* protobuf-c packs C strings, so NULs are written by hand on the wire. */
	assert_string_equal(
		scan_wire(&mvirt__create_vm_request__descriptor, nul_name, sizeof(nul_name)),
		"name: contains a NUL byte");
	assert_string_equal(
		scan_wire(&mvirt__create_vm_request__descriptor, nested, sizeof(nested)),
		"config.kernel: contains a NUL byte");
	/* malformed: left to the unpacker */
	assert_null(scan_wire(&mvirt__create_vm_request__descriptor, truncated, sizeof(truncated)));
	/* clean messages, nested and repeated */
	req.name = (char *)"ok";
	req.config = &cfg;
	cfg.vcpus = 2;
	cfg.kernel = (char *)"/k";
	disk.path = (char *)"/d";
	cfg.n_disks = 1;
	cfg.disks = disks;
	assert_null(scan(&req.base));
	/* bytes fields may hold NULs */
	Mvirt__ConsoleRequest creq = MVIRT__CONSOLE_REQUEST__INIT;
	uint8_t in[] = {'a', 0, 'b'};
	creq.vm = (char *)"vm";
	creq.input.data = in;
	creq.input.len = sizeof(in);
	assert_null(scan(&creq.base));
}

static void test_utf8(void **state)
{
	static const struct {
		const char *s;
		bool ok;
	} cases[] = {
		{"", true},
		{"plain ascii", true},
		{"gr\xc3\xbc\xc3\x9f", true}, /* grüß */
		{"\xe2\x82\xac", true},       /* € */
		{"\xf0\x9f\x98\x80", true},   /* U+1F600 */
		{"\xf4\x8f\xbf\xbf", true},   /* U+10FFFF, the last */
		{"\xed\x9f\xbf", true},       /* U+D7FF, before the surrogates */
		{"\xff", false},              /* never in UTF-8 */
		{"\x80", false},              /* a lone continuation byte */
		{"\xc3", false},              /* cut short */
		{"\xc3(", false},             /* bad continuation */
		{"\xc0\xaf", false},          /* overlong '/' */
		{"\xe0\x80\xaf", false},      /* overlong, 3 bytes */
		{"\xf0\x80\x80\xaf", false},  /* overlong, 4 bytes */
		{"\xed\xa0\x80", false},      /* U+D800, a surrogate */
		{"\xf4\x90\x80\x80", false},  /* above U+10FFFF */
		{"\xf5\x80\x80\x80", false},  /* above U+10FFFF */
		{"ok\xe2\x82", false},        /* cut short at the end */
	};
	size_t off = 99;

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++)
		if (utf8_valid(cases[i].s, strlen(cases[i].s), NULL) != cases[i].ok)
			fail_msg("case %zu: expected %s", i, cases[i].ok ? "valid" : "invalid");
	assert_false(utf8_valid("ab\xff", 3, &off));
	assert_int_equal(off, 2);
	char bad[] = "ok \xc3\xa9 \xff\xc0\xaf \xe2\x82 end\xe2\x82\xac";
	assert_string_equal(utf8_sanitize(bad), "ok \xc3\xa9 ??? ?? end\xe2\x82\xac");
}

/* Invalid UTF-8 anywhere: named by its full path, with the index of a repeated field. */
static void test_wire_utf8_paths(void **state)
{
	Mvirt__CreateVmRequest req = MVIRT__CREATE_VM_REQUEST__INIT;
	Mvirt__VmConfig cfg = MVIRT__VM_CONFIG__INIT;
	Mvirt__Disk d0 = MVIRT__DISK__INIT, d1 = MVIRT__DISK__INIT, *disks[] = {&d0, &d1};
	Mvirt__Nic n0 = MVIRT__NIC__INIT, n1 = MVIRT__NIC__INIT, *nics[] = {&n0, &n1};

	(void)state;
	req.name = (char *)"web";
	req.config = &cfg;
	cfg.kernel = (char *)"/k";
	cfg.n_disks = 2;
	cfg.disks = disks;
	d0.path = (char *)"/d0";
	d1.path = (char *)"/d1\xff";
	assert_string_equal(scan(&req.base),
			    "config.disks[1].path: is not valid UTF-8 (byte 3 of 4)");
	d1.path = (char *)"/d1";
	cfg.n_nics = 2;
	cfg.nics = nics;
	n1.tap = (char *)"t\xc0\xaf";
	assert_string_equal(scan(&req.base),
			    "config.nics[1].tap: is not valid UTF-8 (byte 1 of 3)");
	n1.tap = (char *)"tap1";
	cfg.user_data = (char *)"#cloud-config\n\xed\xa0\x80";
	assert_string_equal(scan(&req.base),
			    "config.user_data: is not valid UTF-8 (byte 14 of 17)");
	cfg.user_data = (char *)"#cloud-config\nhostname: gr\xc3\xbc\xc3\x9f\n";
	assert_null(scan(&req.base));
	req.name = (char *)"\x80";
	assert_string_equal(scan(&req.base), "name: is not valid UTF-8 (byte 0 of 1)");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_map),      cmocka_unit_test(test_listen_addresses),
		cmocka_unit_test(test_wire_nul),        cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_wire_utf8_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
