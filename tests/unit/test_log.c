/* Unit tests for the journal side of the daemon's logging (common/log.c): which stderr counts
 * as the journal ($JOURNAL_STREAM), and the fields of an entry, VM lines included. journald
 * need not run: the entry is checked as built, before sd_journal_sendv. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/log.h"

/* The entry's fields as "NAME=value" strings, NULL-terminated, in buf. */
static size_t fields(const char *msg, enum log_level level, const char *id, char out[][2100])
{
	struct log_fields f;
	size_t n = log_journal_fields(msg, level, id, &f);

	for (size_t i = 0; i < n; i++) {
		assert_true(f.iov[i].iov_len < 2100);
		memcpy(out[i], f.iov[i].iov_base, f.iov[i].iov_len);
		out[i][f.iov[i].iov_len] = '\0';
	}
	return n;
}

static void test_vm_line_fields(void **state)
{
	static char f[5][2100];
	size_t n;

	(void)state;
	n = fields("vm web-1: started (boot took 1.2 s)", LOG_LEVEL_INFO,
		   "3f0c8a4e-1111-2222-3333-444455556666", f);
	assert_int_equal(n, 5);
	assert_string_equal(f[0], "PRIORITY=6");
	assert_string_equal(f[1], "SYSLOG_IDENTIFIER=mvirt-vmm");
	assert_string_equal(f[2], "MVIRT_VM_NAME=web-1");
	assert_string_equal(f[3], "MVIRT_VM_ID=3f0c8a4e-1111-2222-3333-444455556666");
	assert_string_equal(f[4], "MESSAGE=vm web-1: started (boot took 1.2 s)");

	/* a VM line whose VM is not known (deleted): the name alone */
	n = fields("vm old: deleted", LOG_LEVEL_WARNING, NULL, f);
	assert_int_equal(n, 4);
	assert_string_equal(f[0], "PRIORITY=4");
	assert_string_equal(f[2], "MVIRT_VM_NAME=old");
	assert_string_equal(f[3], "MESSAGE=vm old: deleted");
}

static void test_other_lines_have_no_vm_fields(void **state)
{
	static char f[5][2100];
	static const char *const lines[] = {
		"listening on unix:/run/mvirt/mvirt.sock",
		"vm: no name",                 /* no name before the colon */
		"vm Web: not a VM name",       /* capitals: not a VM name */
		"vmx a: another subject",      /* only "vm " */
		"vm a b: a space in the name", /* the name ends at the colon */
		"vm abc",                      /* no colon at all */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		size_t n = fields(lines[i], LOG_LEVEL_ERR, "some-id", f);

		assert_int_equal(n, 3);
		assert_string_equal(f[0], "PRIORITY=3");
		assert_null(strstr(f[1], "MVIRT_"));
		assert_non_null(strstr(f[2], lines[i]));
	}
	/* a name as long as VM names may be (63) is kept whole */
	char line[128] = "vm ";
	memset(line + 3, 'a', 63);
	memcpy(line + 66, ": x", sizeof(": x"));
	assert_int_equal(fields(line, LOG_LEVEL_INFO, NULL, f), 4);
	assert_int_equal(strlen(f[2]), strlen("MVIRT_VM_NAME=") + 63);
}

static void test_stderr_is_journal(void **state)
{
	char path[] = "/tmp/mvirt-test-log-XXXXXX", value[64];
	int saved = dup(STDERR_FILENO), fd = mkstemp(path);
	struct stat st;

	(void)state;
	assert_true(fd >= 0 && saved >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);

	unsetenv("JOURNAL_STREAM");
	assert_false(log_stderr_is_journal());
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", value, 1);
	assert_true(log_stderr_is_journal());
	/* inherited by a child whose stderr went elsewhere: not the journal */
	snprintf(value, sizeof(value), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino + 1);
	setenv("JOURNAL_STREAM", value, 1);
	assert_false(log_stderr_is_journal());
	setenv("JOURNAL_STREAM", "garbage", 1);
	assert_false(log_stderr_is_journal());
	unsetenv("JOURNAL_STREAM");

	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	close(fd);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_vm_line_fields),
		cmocka_unit_test(test_other_lines_have_no_vm_fields),
		cmocka_unit_test(test_stderr_is_journal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
