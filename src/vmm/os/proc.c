/* See proc.h.
 *
 * Spawning in a multi-threaded daemon (gRPC has threads) uses posix_spawn, which does only
 * async-signal-safe work between clone and exec and reports exec failures itself. */
#include "os/proc.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/macro.h"

struct proc {
	struct proc_id id;
	int pidfd;
	bool child; /* ours to reap */
	sd_event_source *source;
	proc_exit_fn fn;
	void *userdata;
};

static int pidfd_open_(pid_t pid)
{
	return (int)syscall(SYS_pidfd_open, pid, 0);
}

int proc_starttime(pid_t pid, uint64_t *ret)
{
	char path[64], buf[1024], *p;
	_cleanup_close_ int fd = -1;
	unsigned long long v;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may contain spaces and ')': fields resume after the last ')'. Field 3 (state)
	 * follows; starttime is field 22, i.e. the 20th after the ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (!p)
			return -EIO;
	}
	if (sscanf(p, " %llu", &v) != 1)
		return -EIO;
	*ret = v;
	return 0;
}

int proc_boot_id(char ret[PROC_BOOT_ID_LEN + 1])
{
	_cleanup_close_ int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, ret, PROC_BOOT_ID_LEN);
	if (n != PROC_BOOT_ID_LEN)
		return -EIO;
	ret[PROC_BOOT_ID_LEN] = '\0';
	return 0;
}

static int on_pidfd(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct proc *p = userdata;
	struct proc_exit e = {0};
	siginfo_t si;

	(void)s;
	(void)revents;
	if (p->child) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PIDFD, (id_t)fd, &si, WEXITED | WNOHANG) < 0 || si.si_pid == 0)
			return 0; /* not yet: spurious wake-up */
		e.known = true;
		if (si.si_code == CLD_EXITED) {
			e.code = si.si_status;
		} else {
			e.signal = si.si_status;
			e.core = si.si_code == CLD_DUMPED;
		}
	}
	/* Not our child: the pidfd is readable once the process has exited; the zombie is PID
	 * 1's to reap, and we never wait for that. */
	sd_event_source_set_enabled(p->source, SD_EVENT_OFF);
	p->fn(p->userdata, &e);
	return 0;
}

static int proc_watch(struct proc *p, sd_event *event)
{
	return sd_event_add_io(event, &p->source, p->pidfd, EPOLLIN, on_pidfd, p);
}

int proc_spawn_raw(const char *path, char *const argv[], char *const envp[], int in, int out,
		   int err_fd, const int *fds, size_t n_fds, bool new_session, pid_t *ret_pid)
{
	_cleanup_close_ int devnull = -1;
	int tmp[3 + PROC_MAX_PASS_FDS], n_tmp = 0, r;
	const int n_target = 3 + (int)n_fds;
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;

	if (n_fds > PROC_MAX_PASS_FDS)
		return -E2BIG;
	if (in < 0 || out < 0 || err_fd < 0) {
		devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
		if (devnull < 0)
			return -errno;
	}
	/* Copies of every fd to place, numbered above every target: placing one never overwrites
	 * another still to be placed, and dup2 never meets an fd onto itself (which would keep
	 * its close-on-exec flag). The copies are close-on-exec and closed below. */
	const int src[3] = {in >= 0 ? in : devnull, out >= 0 ? out : devnull,
			    err_fd >= 0 ? err_fd : devnull};
	for (int i = 0; i < n_target; i++, n_tmp++) {
		tmp[i] = fcntl(i < 3 ? src[i] : fds[i - 3], F_DUPFD_CLOEXEC, n_target);
		if (tmp[i] < 0) {
			r = -errno;
			goto out;
		}
	}

	/* posix_spawn: vfork-like (no copy of the daemon's address space), async-signal-safe in
	 * the child, and an exec failure comes back as its return value. */
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	if (new_session)
		flags |= POSIX_SPAWN_SETSID;
	posix_spawnattr_setflags(&attr, flags);
	for (int i = 0; i < n_target; i++)
		posix_spawn_file_actions_adddup2(&fa, tmp[i], i);
	/* Nothing else crosses over, whatever the daemon has open. */
	posix_spawn_file_actions_addclosefrom_np(&fa, n_target);
	r = -posix_spawn(ret_pid, path, &fa, &attr, argv, envp ? envp : environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
out:
	for (int i = 0; i < n_tmp; i++)
		close(tmp[i]);
	return r;
}

int proc_wait_timeout(pid_t pid, uint32_t timeout_ms, int *ret_status)
{
	_cleanup_close_ int pidfd = pidfd_open_(pid);
	struct timespec ts;
	uint64_t now, deadline;
	bool timed_out = false;
	int status;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000 + timeout_ms;
	while (pidfd >= 0) {
		struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
		int n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		if (now >= deadline) {
			timed_out = true;
			break;
		}
		n = poll(&pfd, 1, (int)(deadline - now));
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR) {
			timed_out = true; /* cannot wait with a bound: stop it */
			break;
		}
	}
	if (pidfd < 0 || timed_out)
		(void)kill(pid, SIGKILL); /* our unreaped child: the pid cannot be reused yet */
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (pidfd < 0 || timed_out)
		return -ETIMEDOUT;
	*ret_status = status;
	return 0;
}

int proc_spawn(sd_event *event, const struct proc_spec *spec, proc_exit_fn fn, void *userdata,
	       struct proc **ret, struct mv_error *err)
{
	struct proc *p;
	pid_t pid;
	int r;

	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pidfd = -1;
	p->fn = fn;
	p->userdata = userdata;
	p->child = true;
	r = proc_boot_id(p->id.boot_id);
	if (r < 0) {
		mv_err_internal(err, r, "cannot read the boot id: %m");
		goto fail;
	}
	/* Own session: the hypervisor outlives the daemon and gets none of its signals. */
	r = proc_spawn_raw(spec->path, spec->argv, NULL, -1, spec->log_fd, spec->log_fd,
			   spec->pass_fds, spec->n_pass_fds, true, &pid);
	if (r < 0) {
		mv_err_internal(err, r, "cannot execute %s: %m", spec->path);
		goto fail;
	}
	p->id.pid = pid;
	p->pidfd = pidfd_open_(pid);
	if (p->pidfd < 0)
		r = -errno;
	if (r >= 0)
		r = proc_starttime(pid, &p->id.starttime);
	if (r >= 0)
		r = proc_watch(p, event);
	if (r < 0) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		mv_err_internal(err, r, "cannot watch process %d: %m", (int)pid);
		goto fail;
	}
	*ret = p;
	return 0;
fail:
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
	return r;
}

int proc_adopt(sd_event *event, const struct proc_id *id, proc_exit_fn fn, void *userdata,
	       struct proc **ret)
{
	char boot_id[PROC_BOOT_ID_LEN + 1];
	uint64_t st;
	struct proc *p;
	int r;

	if (id->pid <= 0 || proc_boot_id(boot_id) < 0 || !streq(boot_id, id->boot_id))
		return -ESRCH;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->id = *id;
	p->fn = fn;
	p->userdata = userdata;
	p->pidfd = pidfd_open_(id->pid);
	if (p->pidfd < 0) {
		r = errno == ESRCH ? -ESRCH : -errno;
		goto fail;
	}
	/* Checked after pidfd_open: if the start time still matches now, the pidfd refers to
	 * the same process, whatever happens to the pid later. */
	r = proc_starttime(id->pid, &st);
	if (r < 0 || st != id->starttime) {
		r = -ESRCH;
		goto fail;
	}
	/* A zombie (exited, not yet reaped by PID 1) still has its start time: it is gone all
	 * the same. The pidfd is readable once the process has exited. */
	if (poll(&(struct pollfd){.fd = p->pidfd, .events = POLLIN}, 1, 0) > 0) {
		r = -ESRCH;
		goto fail;
	}
	/* Not our child (p->child is false): its exit status goes to PID 1. */
	r = proc_watch(p, event);
	if (r < 0)
		goto fail;
	*ret = p;
	return 0;
fail:
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
	return r;
}

const struct proc_id *proc_get_id(const struct proc *p)
{
	return &p->id;
}

int proc_signal(struct proc *p, int sig)
{
	if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

void proc_free(struct proc *p)
{
	if (!p)
		return;
	sd_event_source_disable_unref(p->source);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
}

void proc_exit_describe(const struct proc_exit *e, char *buf, size_t size)
{
	if (!e->known)
		snprintf(buf, size, "exited (status unknown: not started by this mvirt-vmm)");
	else if (e->signal)
		snprintf(buf, size, "killed by signal %d (SIG%s)%s", e->signal,
			 sigabbrev_np(e->signal) ? sigabbrev_np(e->signal) : "?",
			 e->core ? ", core dumped" : "");
	else
		snprintf(buf, size, "exited with status %d", e->code);
}

/* Whether pid (not in keep, not this process) has argv[0] containing name (NULL: any) and an
 * argument starting with arg_prefix; its command in cmd. */
static bool stray_match(int pid, const char *name, const char *arg_prefix, const int *keep,
			size_t n_keep, char *cmd, size_t size)
{
	char path[64];
	ssize_t n;
	int fd;

	if (pid <= 0 || pid == getpid())
		return false;
	for (size_t i = 0; i < n_keep; i++)
		if (keep[i] == pid)
			return false;
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return false;
	n = read(fd, cmd, size - 1);
	close(fd);
	if (n <= 0)
		return false;
	cmd[n] = '\0';
	if (name && !strstr(cmd, name))
		return false;
	for (const char *a = cmd + strlen(cmd) + 1; a < cmd + n; a += strlen(a) + 1)
		if (startswith(a, arg_prefix))
			return true;
	return false;
}

int proc_kill_strays(const char *name, const char *arg_prefix, const int *keep, size_t n_keep)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;
	int killed = 0;

	if (!proc)
		return -errno;
	while ((de = readdir(proc))) {
		char cmd[4096];
		int pid = (int)strtol(de->d_name, NULL, 10);

		if (stray_match(pid, name, arg_prefix, keep, n_keep, cmd, sizeof(cmd)) &&
		    kill(pid, SIGTERM) == 0) {
			log_notice("stopped pid %d (%s ... %s), left by a crash", pid, cmd,
				   arg_prefix);
			killed++;
		}
	}
	closedir(proc);
	return killed;
}

int proc_kill_strays_wait(const char *name, const char *arg_prefix, int timeout_ms)
{
	DIR *proc = opendir("/proc");
	struct pollfd fds[64];
	struct dirent *de;
	size_t n = 0;
	int killed = 0;
	uint64_t end;

	if (!proc)
		return -errno;
	while ((de = readdir(proc)) && n < ELEMENTSOF(fds)) {
		char cmd[4096];
		int pid = (int)strtol(de->d_name, NULL, 10), pidfd;

		if (!stray_match(pid, name, arg_prefix, NULL, 0, cmd, sizeof(cmd)))
			continue;
		/* By pidfd, so that a pid reused meanwhile is not hit. */
		if ((pidfd = pidfd_open_(pid)) < 0)
			continue;
		if (syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0) < 0) {
			close(pidfd);
			continue;
		}
		log_notice("killed pid %d (%s ... %s), left by a crash", pid, cmd, arg_prefix);
		fds[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
		killed++;
	}
	closedir(proc);
	end = clock_mono_us() + (uint64_t)timeout_ms * 1000;
	for (size_t i = 0; i < n; i++) {
		uint64_t now = clock_mono_us();

		/* readable once the process is gone (it is not ours to reap) */
		(void)poll(&fds[i], 1, now < end ? (int)((end - now) / 1000) : 0);
		close(fds[i].fd);
	}
	return killed;
}
