/* Tests of validate.c: VM names, MAC addresses and VM configs. The configs name real files in a
 * temporary directory (a kernel, disks, a directory, symlinks), so that the stat()-based checks
 * run against real objects. Each case mutates a valid baseline and states the field prefix and
 * the cause the message must carry. */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/validate.h"
#include "model/vmdef.h"

#define N_EXTRA 17 /* extra disk images: enough for one more than VM_MAX_DISKS */

static char tmpdir[] = "/tmp/mvirt-test-validate-XXXXXX";
static const struct host_limits host = {.cpus = 4, .memory_mb = 8192};

/* "<tmpdir>/<leaf>", heap-allocated. */
static char *tmp_path(const char *leaf)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", tmpdir, leaf) > 0);
	return p;
}

static void touch(const char *leaf)
{
	char *p = tmp_path(leaf);
	FILE *f = fopen(p, "we");

	assert_non_null(f);
	assert_int_equal(fputs("data", f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	free(p);
}

static void set_str(char **field, const char *value)
{
	free(*field);
	*field = NULL;
	if (value) {
		*field = strdup(value);
		assert_non_null(*field);
	}
}

/* Like set_str, with a path inside tmpdir. */
static void set_tmp(char **field, const char *leaf)
{
	free(*field);
	*field = tmp_path(leaf);
}

static void free_disks(struct vm_config *c)
{
	for (size_t i = 0; i < c->n_disks; i++)
		free(c->disks[i].path);
	free(c->disks);
	c->disks = NULL;
	c->n_disks = 0;
}

static void free_nics(struct vm_config *c)
{
	for (size_t i = 0; i < c->n_nics; i++) {
		free(c->nics[i].tap);
		free(c->nics[i].network);
		free(c->nics[i].mac);
	}
	free(c->nics);
	c->nics = NULL;
	c->n_nics = 0;
}

/* Replaces the disks with n distinct raw images extra0.img... */
static void set_disks(struct vm_config *c, size_t n)
{
	free_disks(c);
	c->disks = calloc(n, sizeof(*c->disks));
	assert_non_null(c->disks);
	c->n_disks = n;
	for (size_t i = 0; i < n; i++) {
		char leaf[32];

		snprintf(leaf, sizeof(leaf), "extra%zu.img", i);
		c->disks[i].path = tmp_path(leaf);
		c->disks[i].format = DISK_FORMAT_RAW;
	}
}

/* Replaces the NICs with n tap NICs tap0... without MACs. */
static void set_nics(struct vm_config *c, size_t n)
{
	free_nics(c);
	c->nics = calloc(n, sizeof(*c->nics));
	assert_non_null(c->nics);
	c->n_nics = n;
	for (size_t i = 0; i < n; i++)
		assert_true(asprintf(&c->nics[i].tap, "tap%zu", i) > 0);
}

/* The valid baseline: kernel boot with initramfs and cmdline, the disk shorthand plus one disk,
 * a tap NIC with a MAC and a network NIC, user-data. */
static void base_config(struct vm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->vcpus = 2;
	c->memory_mb = 512;
	set_tmp(&c->kernel, "vmlinux");
	set_tmp(&c->initramfs, "initrd.img");
	set_str(&c->cmdline, "console=ttyS0 root=/dev/vda");
	set_tmp(&c->disk, "root.img");
	c->disks = calloc(1, sizeof(*c->disks));
	assert_non_null(c->disks);
	c->n_disks = 1;
	c->disks[0].path = tmp_path("data.img");
	c->disks[0].format = DISK_FORMAT_QCOW2;
	c->nics = calloc(2, sizeof(*c->nics));
	assert_non_null(c->nics);
	c->n_nics = 2;
	set_str(&c->nics[0].tap, "tap0");
	set_str(&c->nics[0].mac, "52:54:00:12:34:56");
	set_str(&c->nics[1].network, "default");
	set_str(&c->user_data, "#cloud-config\n");
}

/* Switches the baseline to firmware boot. */
static void to_firmware(struct vm_config *c)
{
	set_str(&c->kernel, NULL);
	set_str(&c->initramfs, NULL);
	set_str(&c->cmdline, NULL);
	set_tmp(&c->firmware, "CLOUDHV.fd");
}

/* A string of n copies of ch, heap-allocated. */
static char *repeat(char ch, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

/* ---- mutators, for the cases that change more than one string ---- */

static void m_vcpus_0(struct vm_config *c)
{
	c->vcpus = 0;
}
static void m_vcpus_host(struct vm_config *c)
{
	c->vcpus = 4;
}
static void m_vcpus_over(struct vm_config *c)
{
	c->vcpus = 5;
}
static void m_mem_32(struct vm_config *c)
{
	c->memory_mb = 32;
}
static void m_mem_min(struct vm_config *c)
{
	c->memory_mb = VM_MIN_MEMORY_MB;
}
static void m_mem_host(struct vm_config *c)
{
	c->memory_mb = 8192;
}
static void m_mem_over(struct vm_config *c)
{
	c->memory_mb = 8193;
}
static void m_kernel_too_long(struct vm_config *c)
{
	free(c->kernel);
	c->kernel = repeat('a', PATH_MAX);
	c->kernel[0] = '/';
}
static void m_no_initramfs(struct vm_config *c)
{
	set_str(&c->initramfs, NULL);
	set_str(&c->cmdline, "");
}
static void m_cmdline_max(struct vm_config *c)
{
	free(c->cmdline);
	c->cmdline = repeat('x', VM_CMDLINE_MAX);
}
static void m_cmdline_over(struct vm_config *c)
{
	free(c->cmdline);
	c->cmdline = repeat('x', VM_CMDLINE_MAX + 1);
}
static void m_no_disks(struct vm_config *c)
{
	set_str(&c->disk, NULL);
	free_disks(c);
}
static void m_disks_2(struct vm_config *c)
{
	set_disks(c, 2);
}
static void m_disks0_format_7(struct vm_config *c)
{
	c->disks[0].format = (enum disk_format)7;
}
static void m_disks0_format_unspecified(struct vm_config *c)
{
	c->disks[0].format = DISK_FORMAT_UNSPECIFIED;
}
static void m_disks_twice(struct vm_config *c)
{
	set_str(&c->disk, NULL);
	set_disks(c, 3);
	set_tmp(&c->disks[2].path, "extra0.img");
}
static void m_disks_max(struct vm_config *c)
{
	set_disks(c, VM_MAX_DISKS - 1); /* plus config.disk */
}
static void m_disks_over_with_disk(struct vm_config *c)
{
	set_disks(c, VM_MAX_DISKS);
}
static void m_disks_over(struct vm_config *c)
{
	set_str(&c->disk, NULL);
	set_disks(c, VM_MAX_DISKS + 1);
}
static void m_disks_only_max(struct vm_config *c)
{
	set_str(&c->disk, NULL);
	set_disks(c, VM_MAX_DISKS);
}
static void m_nic_both(struct vm_config *c)
{
	set_str(&c->nics[0].network, "default");
}
static void m_network_long(struct vm_config *c)
{
	free(c->nics[1].network);
	c->nics[1].network = repeat('n', VM_NAME_MAX + 1);
}
static void m_mac_dup_case(struct vm_config *c)
{
	set_str(&c->nics[0].mac, "52:54:00:ab:cd:ef");
	set_str(&c->nics[1].mac, "52:54:00:AB:CD:EF");
}
static void m_nics_max(struct vm_config *c)
{
	set_nics(c, VM_MAX_NICS);
}
static void m_nics_over(struct vm_config *c)
{
	set_nics(c, VM_MAX_NICS + 1);
}
static void m_user_data_max(struct vm_config *c)
{
	free(c->user_data);
	c->user_data = repeat('u', VM_USER_DATA_MAX);
}
static void m_user_data_over(struct vm_config *c)
{
	free(c->user_data);
	c->user_data = repeat('u', VM_USER_DATA_MAX + 1);
}
static void m_order_vcpus_memory(struct vm_config *c)
{
	c->vcpus = 0;
	c->memory_mb = 1;
}
static void m_order_memory_kernel(struct vm_config *c)
{
	c->memory_mb = 1;
	set_str(&c->kernel, "relative");
}
static void m_order_kernel_initramfs(struct vm_config *c)
{
	set_tmp(&c->kernel, "missing");
	set_tmp(&c->initramfs, "missing");
}
static void m_order_disk_disks(struct vm_config *c)
{
	set_str(&c->disk, "relative");
	set_str(&c->disks[0].path, "relative");
}
static void m_order_disks_nics(struct vm_config *c)
{
	c->disks[0].format = (enum disk_format)9;
	set_str(&c->nics[0].mac, "zz");
}
static void m_order_disks_index(struct vm_config *c)
{
	set_disks(c, 3);
	set_str(&c->disks[1].path, "relative");
	set_str(&c->disks[2].path, "relative");
}

/* The one string a case sets (after its mutator, if any). */
enum slot {
	S_NONE,
	S_KERNEL,
	S_INITRAMFS,
	S_CMDLINE,
	S_FIRMWARE,
	S_DISK,
	S_DISK0,
	S_DISK1,
	S_TAP0,
	S_NETWORK1,
	S_MAC0,
	S_MAC1,
	S_USER_DATA,
};

static char **slot_ptr(struct vm_config *c, enum slot s)
{
	switch (s) {
	case S_NONE:
		break;
	case S_KERNEL:
		return &c->kernel;
	case S_INITRAMFS:
		return &c->initramfs;
	case S_CMDLINE:
		return &c->cmdline;
	case S_FIRMWARE:
		return &c->firmware;
	case S_DISK:
		return &c->disk;
	case S_DISK0:
		return &c->disks[0].path;
	case S_DISK1:
		return &c->disks[1].path;
	case S_TAP0:
		return &c->nics[0].tap;
	case S_NETWORK1:
		return &c->nics[1].network;
	case S_MAC0:
		return &c->nics[0].mac;
	case S_MAC1:
		return &c->nics[1].mac;
	case S_USER_DATA:
		return &c->user_data;
	}
	return NULL;
}

struct config_case {
	const char *what;
	bool firmware;                       /* start from firmware boot instead of kernel boot */
	void (*mutate)(struct vm_config *c); /* optional */
	enum slot slot;                      /* optional: set this string to value; */
	const char *value;                   /* "@leaf": <tmpdir>/leaf; NULL: unset */
	const char *prefix; /* NULL: the config must be accepted; else the message starts so */
	const char *cause;  /* a substring the message must contain (after the prefix) */
	bool needs_blockdev;
};

#define ACCEPTED NULL, NULL
#define BAD_IFNAME "not a valid interface name"

static const struct config_case config_cases[] = {
	{"baseline", false, NULL, S_NONE, NULL, ACCEPTED},
	{"firmware boot", true, NULL, S_NONE, NULL, ACCEPTED},

	{"vcpus 0", false, m_vcpus_0, S_NONE, NULL, "config.vcpus: ", "must be at least 1"},
	{"vcpus = host", false, m_vcpus_host, S_NONE, NULL, ACCEPTED},
	{"vcpus > host", false, m_vcpus_over, S_NONE, NULL,
	 "config.vcpus: ", "5 exceeds the host's 4 CPUs"},

	{"memory 32", false, m_mem_32, S_NONE, NULL,
	 "config.memory_mb: ", "32 is below the minimum of 64 MiB"},
	{"memory min", false, m_mem_min, S_NONE, NULL, ACCEPTED},
	{"memory = host", false, m_mem_host, S_NONE, NULL, ACCEPTED},
	{"memory > host", false, m_mem_over, S_NONE, NULL,
	 "config.memory_mb: ", "8193 exceeds the host's 8192 MiB"},

	{"kernel relative", false, NULL, S_KERNEL, "vmlinux",
	 "config.kernel: ", "must be an absolute path"},
	{"kernel missing", false, NULL, S_KERNEL, "@nope/vmlinux",
	 "config.kernel: ", "nope/vmlinux: no such file"},
	{"kernel directory", false, NULL, S_KERNEL, "@subdir",
	 "config.kernel: ", "is a directory, not a regular file"},
	{"kernel char device", false, NULL, S_KERNEL, "/dev/null",
	 "config.kernel: ", "/dev/null is a character device, not a regular file"},
	{"kernel symlink followed", false, NULL, S_KERNEL, "@vmlinux-link", ACCEPTED},
	{"kernel dangling symlink", false, NULL, S_KERNEL, "@dangling",
	 "config.kernel: ", "no such file"},
	{"kernel below a file", false, NULL, S_KERNEL, "@vmlinux/x",
	 "config.kernel: ", "not a directory"},
	{"kernel too long", false, m_kernel_too_long, S_NONE, NULL, "config.kernel: ", "too long"},

	{"initramfs missing", false, NULL, S_INITRAMFS, "@missing.img",
	 "config.initramfs: ", "missing.img: no such file"},
	{"initramfs relative", false, NULL, S_INITRAMFS, "./initrd.img",
	 "config.initramfs: ", "must be an absolute path"},
	{"initramfs directory", false, NULL, S_INITRAMFS, "@subdir",
	 "config.initramfs: ", "is a directory"},
	{"initramfs without kernel", true, NULL, S_INITRAMFS, "@initrd.img",
	 "config.initramfs: ", "requires config.kernel"},
	{"kernel alone", false, m_no_initramfs, S_NONE, NULL, ACCEPTED},

	{"cmdline at max", false, m_cmdline_max, S_NONE, NULL, ACCEPTED},
	{"cmdline over max", false, m_cmdline_over, S_NONE, NULL,
	 "config.cmdline: ", "4097 bytes, at most 4096"},
	{"cmdline without kernel", true, NULL, S_CMDLINE, "console=ttyS0",
	 "config.cmdline: ", "requires config.kernel"},

	{"firmware with kernel", false, NULL, S_FIRMWARE, "@CLOUDHV.fd",
	 "config.firmware: ", "cannot be combined with config.kernel"},
	{"firmware directory", true, NULL, S_FIRMWARE, "@subdir",
	 "config.firmware: ", "is a directory"},
	{"firmware missing", true, NULL, S_FIRMWARE, "@nope.fd",
	 "config.firmware: ", "no such file"},
	{"no boot source", true, NULL, S_FIRMWARE, "",
	 "config.kernel: ", "required (or set config.firmware"},

	{"disk relative", false, NULL, S_DISK, "root.img",
	 "config.disk: ", "must be an absolute path"},
	{"disk char device", false, NULL, S_DISK, "/dev/null",
	 "config.disk: ", "/dev/null is a character device, not a regular file or block device"},
	{"disk directory", false, NULL, S_DISK, "@subdir", "config.disk: ", "is a directory"},
	{"disk missing", false, NULL, S_DISK, "@missing.img",
	 "config.disk: ", "missing.img: no such file"},
	{"disk block device", false, NULL, S_DISK, "/dev/loop0", ACCEPTED, true},
	{"no disks", false, m_no_disks, S_NONE, NULL, ACCEPTED},

	{"disks[1] relative", false, m_disks_2, S_DISK1, "data/extra1.img",
	 "config.disks[1].path: ", "must be an absolute path"},
	{"disks[0] directory", false, NULL, S_DISK0, "@subdir",
	 "config.disks[0].path: ", "is a directory"},
	{"disks[0] char device", false, NULL, S_DISK0, "/dev/null",
	 "config.disks[0].path: ", "is a character device"},
	{"disks[0] empty path", false, NULL, S_DISK0, "", "config.disks[0].path: ", "required"},
	{"disks[0] NULL path", false, NULL, S_DISK0, NULL, "config.disks[0].path: ", "required"},
	{"disks[0] format 7", false, m_disks0_format_7, S_NONE, NULL,
	 "config.disks[0].format: ", "unknown value 7"},
	{"disks[0] format unspecified", false, m_disks0_format_unspecified, S_NONE, NULL, ACCEPTED},
	{"disks[0] = disk", false, NULL, S_DISK0, "@root.img",
	 "config.disks[0].path: ", "same disk as config.disk"},
	{"disks[0] symlink to disk", false, NULL, S_DISK0, "@root-link.img",
	 "config.disks[0].path: ", "same disk as config.disk"},
	{"disks[0] hard link to disk", false, NULL, S_DISK0, "@root-hard.img",
	 "config.disks[0].path: ", "same disk as config.disk"},
	{"disks twice", false, m_disks_twice, S_NONE, NULL,
	 "config.disks[2].path: ", "same disk as config.disks[0]"},
	{"disk + disks at max", false, m_disks_max, S_NONE, NULL, ACCEPTED},
	{"disk + disks over max", false, m_disks_over_with_disk, S_NONE, NULL,
	 "config.disks: ", "17 disks (counting config.disk), at most 16"},
	{"disks over max", false, m_disks_over, S_NONE, NULL,
	 "config.disks: ", "17 disks, at most 16"},
	{"disks alone at max", false, m_disks_only_max, S_NONE, NULL, ACCEPTED},

	{"nic tap and network", false, m_nic_both, S_NONE, NULL,
	 "config.nics[0]: ", "set tap or network"},
	{"nic neither", false, NULL, S_NETWORK1, "", "config.nics[1]: ", "set tap or network"},
	{"tap 15 chars", false, NULL, S_TAP0, "abcdefghijklmno", ACCEPTED},
	{"tap 16 chars", false, NULL, S_TAP0, "abcdefghijklmnop",
	 "config.nics[0].tap: ", BAD_IFNAME},
	{"tap slash", false, NULL, S_TAP0, "tap/0",
	 "config.nics[0].tap: ", "'tap/0' is not a valid interface name"},
	{"tap space", false, NULL, S_TAP0, "tap 0", "config.nics[0].tap: ", BAD_IFNAME},
	{"tap tab", false, NULL, S_TAP0, "tap\t0", "config.nics[0].tap: ", "'tap?0' is not"},
	{"tap colon", false, NULL, S_TAP0, "eth0:1", "config.nics[0].tap: ", BAD_IFNAME},
	{"tap .", false, NULL, S_TAP0, ".", "config.nics[0].tap: ", BAD_IFNAME},
	{"tap ..", false, NULL, S_TAP0, "..", "config.nics[0].tap: ", BAD_IFNAME},
	{"tap other chars", false, NULL, S_TAP0, "Tap_0.x-y", ACCEPTED},
	{"network bad", false, NULL, S_NETWORK1, "Bad",
	 "config.nics[1].network: ", "'Bad' is invalid"},
	{"network too long", false, m_network_long, S_NONE, NULL,
	 "config.nics[1].network: ", "too long"},
	{"mac upper case", false, NULL, S_MAC0, "52:54:00:AB:cd:EF", ACCEPTED},
	{"mac short", false, NULL, S_MAC0, "52:54:00:12:34",
	 "config.nics[0].mac: ", "is not a MAC address"},
	{"mac long", false, NULL, S_MAC0, "52:54:00:12:34:56:78",
	 "config.nics[0].mac: ", "is not a MAC address"},
	{"mac dashes", false, NULL, S_MAC0, "52-54-00-12-34-56",
	 "config.nics[0].mac: ", "is not a MAC address"},
	{"mac non-hex", false, NULL, S_MAC0, "52:54:00:12:34:5g",
	 "config.nics[0].mac: ", "is not a MAC address"},
	{"mac multicast", false, NULL, S_MAC0, "01:00:5e:00:00:01",
	 "config.nics[0].mac: ", "multicast"},
	{"mac broadcast", false, NULL, S_MAC0, "ff:ff:ff:ff:ff:ff",
	 "config.nics[0].mac: ", "multicast"},
	{"mac zero", false, NULL, S_MAC0, "00:00:00:00:00:00",
	 "config.nics[0].mac: ", "not a usable address"},
	{"mac duplicate", false, NULL, S_MAC1, "52:54:00:12:34:56",
	 "config.nics[1].mac: ", "already used by config.nics[0]"},
	{"mac duplicate, other case", false, m_mac_dup_case, S_NONE, NULL,
	 "config.nics[1].mac: ", "already used by config.nics[0]"},
	{"nics at max", false, m_nics_max, S_NONE, NULL, ACCEPTED},
	{"nics over max", false, m_nics_over, S_NONE, NULL, "config.nics: ", "17 NICs, at most 16"},

	{"user_data at max", false, m_user_data_max, S_NONE, NULL, ACCEPTED},
	{"user_data over max", false, m_user_data_over, S_NONE, NULL,
	 "config.user_data: ", "1048577 bytes"},

	/* Two problems at once: the one earlier in field order is reported. */
	{"order vcpus < memory", false, m_order_vcpus_memory, S_NONE, NULL, "config.vcpus: ", ""},
	{"order memory < kernel", false, m_order_memory_kernel, S_NONE, NULL,
	 "config.memory_mb: ", ""},
	{"order kernel < initramfs", false, m_order_kernel_initramfs, S_NONE, NULL,
	 "config.kernel: ", ""},
	{"order initramfs < cmdline", false, m_cmdline_over, S_INITRAMFS, "@subdir",
	 "config.initramfs: ", ""},
	{"order cmdline < firmware", false, m_cmdline_over, S_FIRMWARE, "@CLOUDHV.fd",
	 "config.cmdline: ", ""},
	{"order firmware < disk", false, m_order_disk_disks, S_FIRMWARE, "@CLOUDHV.fd",
	 "config.firmware: ", ""},
	{"disk relative, firmware boot", true, NULL, S_DISK, "relative",
	 "config.disk: ", "must be an absolute path"},
	{"order disk < disks", false, m_order_disk_disks, S_NONE, NULL, "config.disk: ", ""},
	{"order disks < nics", false, m_order_disks_nics, S_NONE, NULL,
	 "config.disks[0].format: ", ""},
	{"order nics < user_data", false, m_user_data_over, S_TAP0, NULL, "config.nics[0]: ", ""},
	{"order disks[1] < disks[2]", false, m_order_disks_index, S_NONE, NULL,
	 "config.disks[1].path: ", ""},
};

static bool have_blockdev(void)
{
	struct stat st;

	return stat("/dev/loop0", &st) == 0 && S_ISBLK(st.st_mode);
}

static void test_config_cases(void **state)
{
	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(config_cases); i++) {
		const struct config_case *t = &config_cases[i];
		struct mv_error err = {0};
		struct vm_config c;
		int r;

		if (t->needs_blockdev && !have_blockdev()) {
			print_message("skipped (no block device): %s\n", t->what);
			continue;
		}
		base_config(&c);
		if (t->firmware)
			to_firmware(&c);
		if (t->mutate)
			t->mutate(&c);
		if (t->slot != S_NONE && t->value && t->value[0] == '@')
			set_tmp(slot_ptr(&c, t->slot), t->value + 1);
		else if (t->slot != S_NONE)
			set_str(slot_ptr(&c, t->slot), t->value);
		r = validate_vm_config(&c, &host, MV_ERR_INVALID, &err);
		vmdef_config_done(&c);

		if (!t->prefix) {
			if (r != 0)
				fail_msg("%s: expected success, got %d: %s", t->what, r, err.msg);
			assert_int_equal(err.code, 0);
			continue;
		}
		if (r != -EINVAL || err.code != -EINVAL)
			fail_msg("%s: expected -EINVAL, got %d (code %d): %s", t->what, r, err.code,
				 err.msg);
		if (strncmp(err.msg, t->prefix, strlen(t->prefix)) != 0 ||
		    !strstr(err.msg + strlen(t->prefix), t->cause))
			fail_msg("%s: message '%s' does not start with '%s' or lacks '%s'", t->what,
				 err.msg, t->prefix, t->cause);
	}
}

/* The messages quoted in the API documentation, word for word. */
static void test_config_exact_messages(void **state)
{
	struct mv_error err = {0};
	struct vm_config c;
	char *expected = NULL;

	(void)state;
	base_config(&c);
	c.memory_mb = 32;
	assert_int_equal(validate_vm_config(&c, &host, MV_ERR_INVALID, &err), -EINVAL);
	assert_string_equal(err.msg, "config.memory_mb: 32 is below the minimum of 64 MiB");
	vmdef_config_done(&c);

	mv_error_clear(&err);
	base_config(&c);
	set_tmp(&c.kernel, "x/vmlinux");
	assert_int_equal(validate_vm_config(&c, &host, MV_ERR_INVALID, &err), -EINVAL);
	assert_true(asprintf(&expected, "config.kernel: %s/x/vmlinux: no such file", tmpdir) > 0);
	assert_string_equal(err.msg, expected);
	free(expected);
	vmdef_config_done(&c);

	mv_error_clear(&err);
	base_config(&c);
	set_disks(&c, 2);
	set_str(&c.disks[1].path, "x.img");
	assert_int_equal(validate_vm_config(&c, &host, MV_ERR_INVALID, &err), -EINVAL);
	assert_string_equal(err.msg, "config.disks[1].path: must be an absolute path");
	vmdef_config_done(&c);

	mv_error_clear(&err);
	base_config(&c);
	c.disks[0].format = (enum disk_format)7;
	assert_int_equal(validate_vm_config(&c, &host, MV_ERR_INVALID, &err), -EINVAL);
	assert_string_equal(err.msg, "config.disks[0].format: unknown value 7");
	vmdef_config_done(&c);

	mv_error_clear(&err);
	base_config(&c);
	set_str(&c.nics[0].tap, NULL);
	assert_int_equal(validate_vm_config(&c, &host, MV_ERR_INVALID, &err), -EINVAL);
	assert_string_equal(err.msg, "config.nics[0]: set tap or network");
	vmdef_config_done(&c);

	/* A NULL error object is allowed. */
	base_config(&c);
	c.vcpus = 0;
	assert_int_equal(validate_vm_config(&c, &host, MV_ERR_INVALID, NULL), -EINVAL);
	vmdef_config_done(&c);
}

static void test_config_not_modified(void **state)
{
	struct vm_config c, copy;
	struct mv_error err = {0};

	(void)state;
	base_config(&c);
	assert_int_equal(vmdef_config_copy(&copy, &c), 0);
	assert_int_equal(validate_vm_config(&c, &host, MV_ERR_INVALID, &err), 0);
	assert_true(vmdef_config_equal(&c, &copy));
	vmdef_config_done(&c);
	vmdef_config_done(&copy);
}

static void assert_fd_is(int fd, const char *path)
{
	struct stat a, b;

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &a), 0);
	assert_int_equal(stat(path, &b), 0);
	assert_true(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
}

/* The files judged stay open for the hypervisor; nothing stays open on a failure. */
static void test_config_open_keeps_what_it_judged(void **state)
{
	struct vm_path_fds fds;
	struct vm_config c;
	struct mv_error err = {0};
	int before = dup(0);

	(void)state;
	close(before);
	base_config(&c);
	assert_int_equal(validate_vm_config_open(&c, &host, MV_ERR_PRECONDITION, &fds, &err), 0);
	assert_fd_is(fds.kernel, c.kernel);
	assert_fd_is(fds.initramfs, c.initramfs);
	assert_fd_is(fds.disk, c.disk);
	assert_fd_is(fds.disks[0], c.disks[0].path);
	assert_int_equal(fds.firmware, -1);
	assert_int_equal(fds.disks[1], -1);
	vm_path_fds_close(&fds);
	assert_int_equal(fds.kernel, -1);

	set_tmp(&c.disks[0].path, "missing.img");
	assert_int_equal(validate_vm_config_open(&c, &host, MV_ERR_PRECONDITION, &fds, &err),
			 -EINVAL);
	assert_int_equal(err.kind, MV_ERR_PRECONDITION);
	assert_int_equal(fds.kernel, -1);
	assert_int_equal(fds.disk, -1);
	assert_int_equal(dup(0), before); /* the lowest free fd is the same: nothing left open */
	close(before);
	vmdef_config_done(&c);
}

struct name_case {
	const char *name;
	bool ok;
};

static void test_names(void **state)
{
	char *longest = repeat('a', VM_NAME_MAX), *too_long = repeat('a', VM_NAME_MAX + 1);
	const struct name_case cases[] = {
		{"a", true},
		{"0", true},
		{"web-1", true},
		{"a.b_c-d", true},
		{"9lives", true},
		{"a..", true},
		{longest, true},
		{too_long, false},
		{"Bad_Name", false},
		{"A", false},
		{"-a", false},
		{".a", false},
		{"_a", false},
		{"a b", false},
		{"a/b", false},
		{"a:b", false},
		{"caf\xc3\xa9", false},
		{"a\n", false},
	};
	struct mv_error err = {0};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		int r;

		mv_error_clear(&err);
		r = validate_vm_name(cases[i].name, "name", &err);
		if (cases[i].ok && r != 0)
			fail_msg("'%s': expected valid, got %d: %s", cases[i].name, r, err.msg);
		if (!cases[i].ok && (r != -EINVAL || strncmp(err.msg, "name: ", 6) != 0))
			fail_msg("'%s': expected -EINVAL with 'name: ', got %d: %s", cases[i].name,
				 r, err.msg);
	}

	mv_error_clear(&err);
	assert_int_equal(validate_vm_name("Bad_Name", "name", &err), -EINVAL);
	assert_string_equal(err.msg, "name: 'Bad_Name' is invalid: use 1-63 characters a-z 0-9 . _ "
				     "-, starting with a letter or digit");

	mv_error_clear(&err);
	assert_int_equal(validate_vm_name("", "name", &err), -EINVAL);
	assert_string_equal(err.msg, "name: required");
	mv_error_clear(&err);
	assert_int_equal(validate_vm_name(NULL, "name", &err), -EINVAL);
	assert_string_equal(err.msg, "name: required");

	/* Control characters never reach the message. */
	mv_error_clear(&err);
	assert_int_equal(validate_vm_name("a\nb", "name", &err), -EINVAL);
	assert_null(strchr(err.msg, '\n'));

	/* The field name is the caller's. */
	mv_error_clear(&err);
	assert_int_equal(validate_vm_name("X", "config.nics[3].network", &err), -EINVAL);
	assert_int_equal(strncmp(err.msg, "config.nics[3].network: 'X'", 27), 0);

	free(longest);
	free(too_long);
}

static void test_mac(void **state)
{
	static const char *const good[] = {
		"52:54:00:12:34:56", "02:00:00:00:00:01", "fe:ff:ff:ff:ff:ff",
		"52:54:00:Ab:cD:eF", "00:00:00:00:00:01",
	};
	static const char *const bad[] = {
		"",
		"52:54:00:12:34",
		"52:54:00:12:34:56:",
		"52:54:00:12:34:5",
		"52:54:00:12:34:567",
		"5254.0012.3456",
		"52:54:00:12:34:5z",
		"g2:54:00:12:34:56",
		"52::54:00:12:34:5",
		" 52:54:00:12:34:56",
		"01:00:00:00:00:00",
		"03:54:00:12:34:56",
		"ff:ff:ff:ff:ff:ff",
		"00:00:00:00:00:00",
	};
	struct mv_error err = {0};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(good); i++) {
		mv_error_clear(&err);
		if (validate_mac(good[i], "mac", &err) != 0)
			fail_msg("'%s': expected valid: %s", good[i], err.msg);
	}
	for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
		mv_error_clear(&err);
		if (validate_mac(bad[i], "config.nics[2].mac", &err) != -EINVAL ||
		    strncmp(err.msg, "config.nics[2].mac: ", 20) != 0)
			fail_msg("'%s': expected -EINVAL naming the field, got: %s", bad[i],
				 err.msg);
	}
}

static int remove_tree(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static int group_setup(void **state)
{
	char *target = NULL, *lpath = NULL;

	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	touch("vmlinux");
	touch("initrd.img");
	touch("CLOUDHV.fd");
	touch("root.img");
	touch("data.img");
	for (int i = 0; i < N_EXTRA; i++) {
		char leaf[32];

		snprintf(leaf, sizeof(leaf), "extra%d.img", i);
		touch(leaf);
	}

	lpath = tmp_path("subdir");
	if (mkdir(lpath, 0755) < 0)
		return -1;
	free(lpath);

	target = tmp_path("vmlinux");
	lpath = tmp_path("vmlinux-link");
	if (symlink(target, lpath) < 0)
		return -1;
	free(lpath);
	free(target);

	lpath = tmp_path("dangling");
	if (symlink("/nonexistent/mvirt-test", lpath) < 0)
		return -1;
	free(lpath);

	lpath = tmp_path("root-link.img");
	if (symlink("root.img", lpath) < 0) /* relative target */
		return -1;
	free(lpath);

	target = tmp_path("root.img");
	lpath = tmp_path("root-hard.img");
	if (link(target, lpath) < 0)
		return -1;
	free(lpath);
	free(target);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return remove_tree();
}

/* "field: path ..." of validate_path, or "ok". */
static const char *judge(const char *path, enum path_kind kind, const struct path_policy *pol)
{
	static struct mv_error err;
	struct stat st;

	mv_error_clear(&err);
	if (validate_path(path, "f", kind, pol, &st, &err) == 0)
		return "ok";
	assert_int_equal(err.kind, MV_ERR_INVALID);
	return err.msg;
}

static void expect(const char *path, enum path_kind kind, const struct path_policy *pol,
		   const char *needle)
{
	const char *got = judge(path, kind, pol);

	if (!strstr(got, needle))
		fail_msg("%s: expected '%s', got '%s'", path, needle, got);
}

/* What a path names decides, whatever the way to it. */
static void test_paths_judged_by_what_they_name(void **state)
{
	char *own = tmp_path("own"), *pool = tmp_path("own/pool"), *db = tmp_path("own/db");
	char *in_own = tmp_path("own/console.log"), *in_pool = tmp_path("own/pool/vol");
	char *hard = tmp_path("db-hard"), *sym = tmp_path("sym-mem"), *good = tmp_path("good");
	char *sym_good = tmp_path("sym-good");
	const char *dirs[] = {own}, *pools[] = {pool}, *files[] = {db};
	const struct path_policy pol = {dirs, 1, pools, 1, files, 1};
	(void)state;

	assert_int_equal(mkdir(own, 0700), 0);
	assert_int_equal(mkdir(pool, 0700), 0);
	touch("own/db");
	touch("own/console.log");
	touch("own/pool/vol");
	touch("good");
	assert_int_equal(link(db, hard), 0);
	assert_int_equal(symlink("/proc/self/mem", sym), 0);
	assert_int_equal(symlink(good, sym_good), 0);

	expect("/proc/self/mem", PATH_FILE, NULL, "f: /proc/self/mem is a kernel file (procfs)");
	expect(sym, PATH_DISK, NULL, "is a kernel file (procfs)");
	expect("/proc/self/fd/0", PATH_FILE, NULL, "is a link into /proc");
	expect("/sys/kernel/notes", PATH_FILE, NULL, "is a kernel file (sysfs)");
	expect("/dev/null", PATH_DISK, NULL, "is a character device");
	expect(db, PATH_DISK, &pol, "is (a link to) mvirt-vmm's state database");
	expect(hard, PATH_DISK, &pol, "is (a link to) mvirt-vmm's state database");
	expect(in_own, PATH_FILE, &pol, "belongs to mvirt-vmm's own state or runtime files");
	expect(in_pool, PATH_DISK, &pol, "ok"); /* the storage manager's to judge */
	expect(good, PATH_FILE, &pol, "ok");
	expect(sym_good, PATH_FILE, &pol, "ok");
	expect(db, PATH_DISK, NULL, "ok"); /* no policy: only the kernel's files are known */
	expect("relative", PATH_FILE, NULL, "f: must be an absolute path");
	for (char **p = (char *[]){hard, sym, sym_good, in_pool, in_own, db, good, NULL}; *p; p++)
		assert_int_equal(unlink(*p), 0);
	assert_int_equal(rmdir(pool), 0);
	assert_int_equal(rmdir(own), 0);
	free(own), free(pool), free(db), free(in_own), free(in_pool), free(hard), free(sym);
	free(good), free(sym_good);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_cases),
		cmocka_unit_test(test_config_exact_messages),
		cmocka_unit_test(test_config_not_modified),
		cmocka_unit_test(test_config_open_keeps_what_it_judged),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_mac),
		cmocka_unit_test(test_paths_judged_by_what_they_name),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
