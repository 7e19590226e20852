/* The process supervisor: spawns hypervisor processes, re-adopts them after a daemon restart,
 * and reports their exit on the event loop.
 *
 * A process is tracked by a pidfd, which is immune to pid reuse and becomes readable when the
 * process exits, whether or not it is our child (re-adopted processes are not). A process is
 * identified across daemon restarts by pid + start time (field 22 of /proc/PID/stat) + boot id,
 * so a reused pid is never mistaken for it. Spawned processes get their own session, no pipes
 * to the daemon, stdin from /dev/null, stdout/stderr to a log file and exactly the fds passed on
 * purpose, and they outlive the daemon. Silent except through its return values. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <systemd/sd-event.h>

#include "common/err.h"

#define PROC_BOOT_ID_LEN 36

struct proc;

struct proc_exit {
	bool known; /* false when the process was not our child (re-adopted): no status */
	int code;   /* exit code when !signal */
	int signal; /* terminating signal, 0 if it exited */
	bool core;  /* dumped core */
};

/* Identity of a process that survives a daemon restart. */
struct proc_id {
	pid_t pid;
	uint64_t starttime; /* clock ticks after boot */
	char boot_id[PROC_BOOT_ID_LEN + 1];
};

typedef void (*proc_exit_fn)(void *userdata, const struct proc_exit *exit);

struct proc_spec {
	const char *path;    /* executable, absolute */
	char *const *argv;   /* argv[0] included, NULL-terminated */
	const int *pass_fds; /* become fds 3, 4, ... in the child */
	size_t n_pass_fds;
	int log_fd; /* stdout and stderr of the child; -1: /dev/null */
};

#define PROC_MAX_PASS_FDS 16

/* The one way the daemon starts a program: posix_spawn with default signal dispositions, an
 * empty signal mask, stdin/stdout/stderr from in/out/err_fd (-1: /dev/null), fds[i] as fd
 * 3 + i, nothing else inherited, and its own session when new_session. envp NULL: the
 * daemon's environment. Does not wait. -errno when it cannot be executed. */
int proc_spawn_raw(const char *path, char *const argv[], char *const envp[], int in, int out,
		   int err_fd, const int *fds, size_t n_fds, bool new_session, pid_t *ret_pid);

/* Waits for the child pid (blocking the caller: only for tools that take milliseconds) at
 * most timeout_ms, then kills it. Always reaps it. 0 with its wait status, -ETIMEDOUT, or
 * -errno. */
int proc_wait_timeout(pid_t pid, uint32_t timeout_ms, int *ret_status);

/* Starts a supervised process (a hypervisor): own session, stdin /dev/null, stdout/stderr to
 * log_fd, pass_fds as 3, 4, .... -ENOENT/-EACCES/... with a message when it cannot be
 * executed. fn runs on the loop once, when it exits. */
int proc_spawn(sd_event *event, const struct proc_spec *spec, proc_exit_fn fn, void *userdata,
	       struct proc **ret, struct mv_error *err);

/* Watches an existing process named by id. -ESRCH when it is gone or the pid now belongs to
 * another process (start time or boot id differ). */
int proc_adopt(sd_event *event, const struct proc_id *id, proc_exit_fn fn, void *userdata,
	       struct proc **ret);

const struct proc_id *proc_get_id(const struct proc *p);

/* Sends sig through the pidfd (never to a reused pid). -ESRCH when already gone. */
int proc_signal(struct proc *p, int sig);

/* Stops watching; the process keeps running. NULL-safe. */
void proc_free(struct proc *p);

/* Reads the start time of pid from /proc; -ESRCH if it does not exist. */
int proc_starttime(pid_t pid, uint64_t *ret);
/* This boot's id (/proc/sys/kernel/random/boot_id). */
int proc_boot_id(char ret[PROC_BOOT_ID_LEN + 1]);

/* Sends SIGTERM to every process (but those in keep) whose argv[0] contains name (NULL: any)
 * and one of whose arguments starts with arg_prefix: processes of ours that a crash left
 * between spawning them and recording them. Returns how many, or -ENOMEM. */
int proc_kill_strays(const char *name, const char *arg_prefix, const int *keep, size_t n_keep);
/* The same with SIGKILL, waiting up to timeout_ms for them to be gone: helpers of a dead daemon
 * that may still write into files the caller is about to remove. Returns how many. */
int proc_kill_strays_wait(const char *name, const char *arg_prefix, int timeout_ms);

/* Describes an exit for people: "exited with status 1", "killed by signal 9 (SIGKILL)". */
void proc_exit_describe(const struct proc_exit *e, char *buf, size_t size);
