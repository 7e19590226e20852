/* Unit tests of os/proc.c with real processes (this binary again, spawned by proc_spawn_raw): which strays a
 * restart stops, and that a process is re-adopted only under its own identity. */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "os/proc.h"

static char dir[] = "/tmp/mvproc-XXXXXX";

/* This test's binary again as a process that waits (see main) with arg among its arguments:
 * its cmdline is fixed from the start (posix_spawn returns once the exec happened) and it
 * never forks (a shell's subshell would briefly carry the same arguments). */
static pid_t spawn_with(const char *arg0, const char *arg)
{
	char *argv[] = {(char *)arg0, "--wait", (char *)arg, NULL};
	pid_t pid;

	assert_int_equal(
		proc_spawn_raw("/proc/self/exe", argv, NULL, -1, -1, -1, NULL, 0, false, &pid), 0);
	return pid;
}

static bool alive(pid_t pid)
{
	return waitpid(pid, NULL, WNOHANG) == 0;
}

/* Waits for pid; its terminating signal (0 if it exited). */
static int reap(pid_t pid)
{
	int st;

	assert_int_equal(waitpid(pid, &st, 0), pid);
	return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static void test_kill_strays_stops_only_unkept_matches(void **state)
{
	char prefix[128], mine[160], kept_arg[160], other[160], inside[160];
	pid_t kept, stray, elsewhere, not_at_start;
	(void)state;

	snprintf(prefix, sizeof(prefix), "path=%s/vms/", dir);
	snprintf(kept_arg, sizeof(kept_arg), "%skept/events", prefix);
	snprintf(mine, sizeof(mine), "%sstray/events", prefix);
	snprintf(other, sizeof(other), "path=%s-other/vms/x", dir);
	snprintf(inside, sizeof(inside), "x%sy", prefix);
	kept = spawn_with("mvsleeper", kept_arg);
	stray = spawn_with("mvsleeper", mine);
	elsewhere = spawn_with("mvsleeper", other);
	not_at_start = spawn_with("mvsleeper", inside);

	assert_int_equal(proc_kill_strays(NULL, prefix, (int[]){kept}, 1), 1);
	assert_int_equal(reap(stray), SIGTERM);
	assert_true(alive(kept));
	assert_true(alive(elsewhere));
	assert_true(alive(not_at_start));

	/* the name is matched against argv[0] only */
	assert_int_equal(proc_kill_strays("dnsmasq", prefix, NULL, 0), 0);
	assert_true(alive(kept));
	assert_int_equal(proc_kill_strays("sleeper", prefix, NULL, 0), 1);
	assert_int_equal(reap(kept), SIGTERM);

	/* nothing left that matches: nothing to do */
	assert_int_equal(proc_kill_strays(NULL, prefix, NULL, 0), 0);
	for (size_t i = 0; i < 2; i++) {
		pid_t p = i ? elsewhere : not_at_start;

		kill(p, SIGKILL);
		assert_int_equal(reap(p), SIGKILL);
	}
}

/* 'Z' once it exited and is not reaped yet, as /proc/PID/stat says. */
static char proc_state(pid_t pid)
{
	char path[64], buf[256], *p;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_non_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	p = strrchr(buf, ')');
	assert_non_null(p);
	return p[2];
}

/* SIGKILL, and back only once the stray is gone (a zombie here: it is our child). */
static void test_kill_strays_wait_returns_once_they_are_gone(void **state)
{
	char prefix[128], arg[160];
	pid_t stray, other;
	(void)state;

	snprintf(prefix, sizeof(prefix), "%s/pool/.tmp-", dir);
	snprintf(arg, sizeof(arg), "%sbase-1234", prefix);
	stray = spawn_with("mvsleeper", arg);
	other = spawn_with("mvsleeper", "unrelated");
	assert_int_equal(proc_kill_strays_wait(NULL, prefix, 5000), 1);
	assert_int_equal(proc_state(stray), 'Z');
	assert_int_equal(reap(stray), SIGKILL);
	assert_true(alive(other));
	assert_int_equal(proc_kill_strays_wait(NULL, prefix, 5000), 0);
	kill(other, SIGKILL);
	assert_int_equal(reap(other), SIGKILL);
}

static bool exited;
static struct proc_exit last_exit;

static void on_exit_(void *userdata, const struct proc_exit *e)
{
	(void)userdata;
	exited = true;
	last_exit = *e;
}

static void test_adopt_checks_identity_and_reports_exit(void **state)
{
	struct proc_id id = {0};
	struct proc *p = NULL;
	sd_event *ev = NULL;
	(void)state;

	assert_int_equal(sd_event_new(&ev), 0);
	id.pid = spawn_with("mvsleeper", "adoptee");
	assert_int_equal(proc_starttime(id.pid, &id.starttime), 0);
	assert_int_equal(proc_boot_id(id.boot_id), 0);

	/* the same pid with another start time, or from another boot, is someone else */
	id.starttime++;
	assert_int_equal(proc_adopt(ev, &id, on_exit_, NULL, &p), -ESRCH);
	id.starttime--;
	id.boot_id[0] = id.boot_id[0] == '0' ? '1' : '0';
	assert_int_equal(proc_adopt(ev, &id, on_exit_, NULL, &p), -ESRCH);
	assert_int_equal(proc_boot_id(id.boot_id), 0);

	assert_int_equal(proc_adopt(ev, &id, on_exit_, NULL, &p), 0);
	assert_int_equal(proc_get_id(p)->pid, id.pid);
	assert_int_equal(proc_signal(p, SIGKILL), 0);
	/* a child of ours here, so reaped by proc (it never sees the status of an adoptee) */
	for (int i = 0; i < 100 && !exited; i++)
		assert_true(sd_event_run(ev, 100 * 1000) >= 0);
	assert_true(exited);
	assert_false(last_exit.known);
	proc_free(p);
	(void)waitpid(id.pid, NULL, 0);
	sd_event_unref(ev);
}

int main(int argc, char **argv)
{
	if (argc == 3 && streq(argv[1], "--wait")) {
		sleep(60); /* a process that proc_kill_strays may stop */
		return 0;
	}

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill_strays_stops_only_unkept_matches),
		cmocka_unit_test(test_kill_strays_wait_returns_once_they_are_gone),
		cmocka_unit_test(test_adopt_checks_identity_and_reports_exit),
	};

	if (!mkdtemp(dir))
		return 1;
	int r = cmocka_run_group_tests(tests, NULL, NULL);
	(void)rmdir(dir);
	return r;
}
