/* Tests of storage.c (image format detection and sizes on real files, the volume name rule;
 * the storage manager itself is tested in test_pool.c) and sysinfo.c (host facts, and the
 * hypervisor's --version run against small shell scripts: output, timeouts, reaping, fds). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "os/sysinfo.h"
#include "storage/storage.h"
#include "storage/storage_internal.h"

#define LEAKED_FD 57 /* a non-O_CLOEXEC fd the hypervisor child must not see */

static char tmpdir[] = "/tmp/mvirt-test-storage-XXXXXX";

static char *tmp_path(const char *leaf)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", tmpdir, leaf) > 0);
	return p;
}

/* Writes data to <tmpdir>/leaf with the given mode; returns the path (heap). */
static char *write_file(const char *leaf, const void *data, size_t len, mode_t mode)
{
	char *p = tmp_path(leaf);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	assert_int_equal(close(fd), 0);
	assert_int_equal(chmod(p, mode), 0);
	return p;
}

static char *write_script(const char *leaf, const char *body, mode_t mode)
{
	return write_file(leaf, body, strlen(body), mode);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void assert_no_children(void)
{
	errno = 0;
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

/* ---- storage_detect_format ---- */

struct format_case {
	const char *what;
	const char *leaf;
	const char *data;
	size_t len;
	int ret;
	enum disk_format format;
	const char *cause; /* a substring of the message, for failures */
};

static void test_detect_format(void **state)
{
	static const char raw_mbr[512] = {[510] = 0x55, [511] = (char)0xaa};
	const struct format_case cases[] = {
		{"raw", "raw.img", raw_mbr, sizeof(raw_mbr), 0, DISK_FORMAT_RAW, NULL},
		{"qcow2 v3", "v3.qcow2", "QFI\xfb\0\0\0\3", 8, 0, DISK_FORMAT_QCOW2, NULL},
		{"qcow2 v2", "v2.img", "QFI\xfb\0\0\0\2rest", 12, 0, DISK_FORMAT_QCOW2, NULL},
		{"qcow2 v7", "v7.qcow2", "QFI\xfb\0\0\0\7", 8, -EINVAL, 0,
		 "qcow2 version 7 is not supported"},
		{"qcow2 v1", "v1.qcow2", "QFI\xfb\0\0\0\1", 8, -EINVAL, 0, "qcow2 version 1"},
		{"qcow2 v2^24", "big.qcow2", "QFI\xfb\2\0\0\0", 8, -EINVAL, 0,
		 "qcow2 version 33554432"},
		{"magic only", "short.img", "QFI\xfb\0\0", 6, 0, DISK_FORMAT_RAW, NULL},
		{"almost magic", "almost.img", "QFI\xfa\0\0\0\3", 8, 0, DISK_FORMAT_RAW, NULL},
		{"empty", "empty.img", "", 0, 0, DISK_FORMAT_RAW, NULL},
	};
	int fds_before = count_fds();

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const struct format_case *t = &cases[i];
		_cleanup_free_ char *p = write_file(t->leaf, t->data, t->len, 0644);
		enum disk_format f = (enum disk_format)99;
		struct mv_error err = {0};
		int r = storage_detect_format(p, MV_ERR_INVALID, &f, &err);

		if (r != t->ret)
			fail_msg("%s: expected %d, got %d: %s", t->what, t->ret, r, err.msg);
		if (r == 0 && f != t->format)
			fail_msg("%s: expected format %d, got %d", t->what, t->format, f);
		if (r < 0) {
			assert_int_equal(err.code, r);
			if (!strstr(err.msg, p) || !strstr(err.msg, t->cause))
				fail_msg("%s: message '%s' lacks the path or '%s'", t->what,
					 err.msg, t->cause);
			assert_int_equal(f, 99); /* not written on failure */
		}
	}
	assert_int_equal(count_fds(), fds_before);
}

static void test_detect_format_errors(void **state)
{
	_cleanup_free_ char *missing = tmp_path("missing.img");
	_cleanup_free_ char *dir = tmp_path("adir");
	enum disk_format f = DISK_FORMAT_UNSPECIFIED;
	struct mv_error err = {0};

	(void)state;
	assert_int_equal(storage_detect_format(missing, MV_ERR_INVALID, &f, &err), -ENOENT);
	assert_int_equal(err.code, -ENOENT);
	assert_non_null(strstr(err.msg, missing));

	assert_int_equal(mkdir(dir, 0755), 0);
	mv_error_clear(&err);
	assert_int_equal(storage_detect_format(dir, MV_ERR_INVALID, &f, &err), -EINVAL);
	assert_non_null(strstr(err.msg, dir));

	/* A FIFO must not block: O_NONBLOCK open, then rejected as not a file. */
	_cleanup_free_ char *fifo = tmp_path("fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	mv_error_clear(&err);
	assert_int_equal(storage_detect_format(fifo, MV_ERR_INVALID, &f, &err), -EINVAL);

	/* A NULL error object is allowed. */
	assert_int_equal(storage_detect_format(missing, MV_ERR_INVALID, &f, NULL), -ENOENT);
}

static void test_detect_format_qemu_img(void **state)
{
	_cleanup_free_ char *p2 = NULL, *p3 = NULL, *praw = NULL, *cmd = NULL;
	enum disk_format f;

	(void)state;
	if (access("/usr/bin/qemu-img", X_OK) < 0)
		skip(); /* before any allocation: skip() longjmps past the cleanups */
	p2 = tmp_path("made-v2.qcow2");
	p3 = tmp_path("made-v3.qcow2");
	praw = tmp_path("made.raw");

	assert_true(asprintf(&cmd,
			     "/usr/bin/qemu-img create -q -f qcow2 -o compat=0.10 '%s' 1M && "
			     "/usr/bin/qemu-img create -q -f qcow2 '%s' 1M && "
			     "/usr/bin/qemu-img create -q -f raw '%s' 1M",
			     p2, p3, praw) > 0);
	assert_int_equal(system(cmd), 0);

	assert_int_equal(storage_detect_format(p2, MV_ERR_INVALID, &f, NULL), 0);
	assert_int_equal(f, DISK_FORMAT_QCOW2);
	assert_int_equal(storage_detect_format(p3, MV_ERR_INVALID, &f, NULL), 0);
	assert_int_equal(f, DISK_FORMAT_QCOW2);
	assert_int_equal(storage_detect_format(praw, MV_ERR_INVALID, &f, NULL), 0);
	assert_int_equal(f, DISK_FORMAT_RAW);
}

/* ---- storage_image_size, storage_check_name ---- */

static void test_image_size(void **state)
{
	/* magic, version 3, then zeros up to the size field at offset 24: 5 GiB + 512 */
	uint8_t q[64] = {'Q', 'F', 'I', 0xfb, 0, 0, 0, 3};
	_cleanup_free_ char *qp = NULL, *rp = NULL, *sp = NULL;
	int fd;
	uint64_t size = 0;

	(void)state;
	q[24 + 3] = 0x01;
	q[24 + 4] = 0x40;
	q[24 + 6] = 0x02;
	qp = write_file("size.qcow2", q, sizeof(q), 0644);
	fd = open(qp, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(storage_image_size(fd, DISK_FORMAT_QCOW2, &size), 0);
	assert_int_equal(size, (5ULL << 30) + 512);
	/* the same bytes read as raw: the file's size */
	assert_int_equal(storage_image_size(fd, DISK_FORMAT_RAW, &size), 0);
	assert_int_equal(size, sizeof(q));
	close(fd);

	/* a header cut short is not a qcow2 image */
	sp = write_file("short.qcow2", q, 20, 0644);
	fd = open(sp, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(storage_image_size(fd, DISK_FORMAT_QCOW2, &size), -EBADMSG);
	close(fd);

	rp = write_file("sparse.raw", "", 0, 0644);
	assert_int_equal(truncate(rp, 7 << 20), 0);
	fd = open(rp, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(storage_image_size(fd, DISK_FORMAT_RAW, &size), 0);
	assert_int_equal(size, 7 << 20);
	close(fd);
}

static void test_check_name(void **state)
{
	struct mv_error err = {0};

	(void)state;
	assert_int_equal(storage_check_name("web-1.disk_0", 12, "name", NULL), 0);
	/* the length given counts: a NUL inside is refused, whatever follows it */
	assert_int_equal(storage_check_name("ok\0../../etc/passwd", 19, "name", &err), -EINVAL);
	assert_string_equal(err.msg, "name: contains a NUL byte");
	mv_error_clear(&err);
	assert_int_equal(storage_check_name("../x", 4, "source", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "source: '../x' is invalid"));
	assert_int_equal(storage_check_name(NULL, 0, "name", NULL), -EINVAL);
}

/* ---- sysinfo_host_read ---- */

static void test_host_read(void **state)
{
	struct sysinfo_host h;
	struct sysinfo si;
	struct utsname u;
	char hostname[256] = "";

	(void)state;
	memset(&h, 0xaa, sizeof(h));
	assert_int_equal(sysinfo_host_read(&h), 0);

	assert_true(h.cpus >= 1);
	assert_int_equal(h.cpus, sysconf(_SC_NPROCESSORS_ONLN));

	/* MemTotal (kB) is sysinfo's totalram; both floor to the same MiB. */
	assert_int_equal(sysinfo(&si), 0);
	assert_int_equal(h.memory_mb, (uint64_t)si.totalram * si.mem_unit / (1024 * 1024));
	assert_true(h.memory_mb >= 64);

	assert_int_equal(gethostname(hostname, sizeof(hostname) - 1), 0);
	assert_string_equal(h.hostname, hostname);
	assert_int_equal(uname(&u), 0);
	assert_string_equal(h.kernel_release, u.release);
	assert_true(strlen(h.kernel_release) > 0);
}

/* ---- sysinfo_hypervisor_version ---- */

struct version_case {
	const char *what;
	const char *script; /* body of an executable /bin/sh script */
	int ret;
	const char *version; /* expected on success */
};

static void test_hypervisor_version(void **state)
{
	const struct version_case cases[] = {
		{"plain", "#!/bin/sh\necho 'cloud-hypervisor v54.0.0'\n", 0,
		 "cloud-hypervisor v54.0.0"},
		{"argv", "#!/bin/sh\necho \"$# $1\"\n", 0, "1 --version"},
		{"trimmed first line",
		 "#!/bin/sh\nprintf ' \\t cloud-hypervisor v1.2 \\r\\nsecond line\\n'\n", 0,
		 "cloud-hypervisor v1.2"},
		{"no newline", "#!/bin/sh\nprintf 'v9'\n", 0, "v9"},
		{"stderr captured", "#!/bin/sh\necho 'on stderr' >&2\n", 0, "on stderr"},
		{"stdin is /dev/null", "#!/bin/sh\nreadlink /proc/$$/fd/0\n", 0, "/dev/null"},
		{"no inherited fds",
		 "#!/bin/sh\nif [ -e /proc/$$/fd/57 ]; then echo leaked; else echo clean; fi\n", 0,
		 "clean"},
		{"long output kept bounded",
		 "#!/bin/sh\necho first\nhead -c 200000 /dev/zero | tr '\\0' x\necho\n", 0,
		 "first"},
		{"failure", "#!/bin/sh\necho 'oops'\nexit 3\n", -EIO, NULL},
		{"killed", "#!/bin/sh\necho v1\nkill -9 $$\n", -EIO, NULL},
		{"empty output", "#!/bin/sh\nexit 0\n", -EIO, NULL},
		{"blank output", "#!/bin/sh\necho '   '\n", -EIO, NULL},
		{"not a script", "not a script\n", -EIO, NULL},
	};
	int fds_before, leak;

	(void)state;
	/* An fd without O_CLOEXEC, which the child must still not inherit. */
	leak = open("/dev/null", O_RDONLY);
	assert_true(leak >= 0);
	assert_int_equal(dup2(leak, LEAKED_FD), LEAKED_FD);
	close(leak);
	fds_before = count_fds();

	for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
		const struct version_case *t = &cases[i];
		_cleanup_free_ char *p = write_script("hv", t->script, 0755);
		char *version = (char *)"unset";
		int r = sysinfo_hypervisor_version(p, &version);

		if (r != t->ret)
			fail_msg("%s: expected %d, got %d", t->what, t->ret, r);
		if (r == 0) {
			if (!streq(version, t->version))
				fail_msg("%s: expected '%s', got '%s'", t->what, t->version,
					 version);
			free(version);
		} else {
			assert_string_equal(version, "unset");
		}
		assert_no_children();
	}
	assert_int_equal(count_fds(), fds_before);
	close(LEAKED_FD);
}

static void test_hypervisor_version_not_executable(void **state)
{
	_cleanup_free_ char *plain = write_script("plain", "#!/bin/sh\necho v1\n", 0644);
	_cleanup_free_ char *missing = tmp_path("missing");
	char *version = NULL;

	(void)state;
	assert_int_equal(sysinfo_hypervisor_version(plain, &version), -ENOENT);
	assert_int_equal(sysinfo_hypervisor_version(missing, &version), -ENOENT);
	assert_int_equal(sysinfo_hypervisor_version(tmpdir, &version), -ENOENT); /* a directory */
	assert_int_equal(sysinfo_hypervisor_version("", &version), -ENOENT);
	assert_int_equal(sysinfo_hypervisor_version(NULL, &version), -ENOENT);
	assert_null(version);
	assert_no_children();
}

/* Each case must give up after the 2 s deadline, kill the child and reap it. */
static void test_hypervisor_version_timeout(void **state)
{
	static const char *const scripts[] = {
		/* silent and slow */
		"#!/bin/sh\nexec sleep 10\n",
		/* prints its version, then hangs with stdout open */
		"#!/bin/sh\necho v1\nexec sleep 10\n",
		/* closes its output, then hangs: EOF alone is not the end */
		"#!/bin/sh\necho v1\nexec >&- 2>&- sleep 10\n",
		/* output without end */
		"#!/bin/sh\nexec yes\n",
	};

	(void)state;
	for (size_t i = 0; i < ELEMENTSOF(scripts); i++) {
		_cleanup_free_ char *p = write_script("slow", scripts[i], 0755);
		char *version = NULL;
		int64_t start = now_ms(), elapsed;
		int r = sysinfo_hypervisor_version(p, &version);

		elapsed = now_ms() - start;
		if (r != -ETIMEDOUT)
			fail_msg("script %zu: expected -ETIMEDOUT, got %d", i, r);
		assert_null(version);
		if (elapsed < 1900 || elapsed > 4000)
			fail_msg("script %zu: took %lld ms", i, (long long)elapsed);
		assert_no_children();
	}
}

/* A child that exits at once while a grandchild keeps the output pipe open is done when the
 * child is. */
static void test_hypervisor_version_grandchild(void **state)
{
	_cleanup_free_ char *p =
		write_script("bg", "#!/bin/sh\necho 'hv v2'\nsleep 10 &\nexit 0\n", 0755);
	char *version = NULL;
	int64_t start = now_ms();

	(void)state;
	assert_int_equal(sysinfo_hypervisor_version(p, &version), 0);
	assert_string_equal(version, "hv v2");
	assert_true(now_ms() - start < 1500);
	free(version);
	assert_no_children();
}

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect_format),
		cmocka_unit_test(test_detect_format_errors),
		cmocka_unit_test(test_detect_format_qemu_img),
		cmocka_unit_test(test_image_size),
		cmocka_unit_test(test_check_name),
		cmocka_unit_test(test_host_read),
		cmocka_unit_test(test_hypervisor_version),
		cmocka_unit_test(test_hypervisor_version_not_executable),
		cmocka_unit_test(test_hypervisor_version_timeout),
		cmocka_unit_test(test_hypervisor_version_grandchild),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
