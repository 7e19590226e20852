/* See proc.h.
 *
 * Spawning in a multi-threaded daemon (gRPC has threads): everything the child needs is
 * prepared before fork(); between fork and exec the child only calls async-signal-safe
 * functions. An exec failure travels back through a close-on-exec pipe: EOF means exec
 * succeeded, an int means it failed with that errno. */
#include "proc.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "macro.h"

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

/* Child side: async-signal-safe only. Never returns. */
static _Noreturn void child_exec(const struct proc_spec *spec, int devnull, int errpipe)
{
	int high[16], ep;
	sigset_t none;
	int e;

	setsid();
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (int sig = 1; sig < NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			signal(sig, SIG_DFL);

	/* Move the error pipe and the fds to pass out of the way of 0..2+n first. */
	ep = fcntl(errpipe, F_DUPFD_CLOEXEC, 256);
	if (ep < 0)
		ep = errpipe;
	errpipe = ep;
	for (size_t i = 0; i < spec->n_pass_fds; i++) {
		high[i] = fcntl(spec->pass_fds[i], F_DUPFD_CLOEXEC, 64);
		if (high[i] < 0)
			goto fail;
	}
	if (dup2(devnull, 0) < 0)
		goto fail;
	if (dup2(spec->log_fd >= 0 ? spec->log_fd : devnull, 1) < 0 ||
	    dup2(spec->log_fd >= 0 ? spec->log_fd : devnull, 2) < 0)
		goto fail;
	for (size_t i = 0; i < spec->n_pass_fds; i++)
		if (dup2(high[i], 3 + (int)i) < 0) /* dup2 clears FD_CLOEXEC on the copy */
			goto fail;
	/* Everything else goes, except the error pipe, which is close-on-exec. */
	if (errpipe > 3 + (int)spec->n_pass_fds)
		close_range(3 + (unsigned)spec->n_pass_fds, (unsigned)errpipe - 1, 0);
	close_range((unsigned)errpipe + 1, ~0U, 0);
	execv(spec->path, spec->argv);
fail:
	e = errno;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

int proc_spawn(sd_event *event, const struct proc_spec *spec, proc_exit_fn fn, void *userdata,
	       struct proc **ret, struct mv_error *err)
{
	_cleanup_close_ int devnull = -1;
	int pipefd[2] = {-1, -1};
	struct proc *p = NULL;
	pid_t pid;
	ssize_t n;
	int e = 0, r;

	if (spec->n_pass_fds > 16)
		return mv_err(err, -E2BIG, "too many fds to pass");
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->pidfd = -1;
	p->fn = fn;
	p->userdata = userdata;
	p->child = true;
	r = proc_boot_id(p->id.boot_id);
	if (r < 0) {
		mv_err(err, r, "cannot read the boot id: %s", strerror(-r));
		goto fail;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
		r = mv_err(err, -errno, "cannot prepare to spawn %s: %m", spec->path);
		goto fail;
	}

	pid = fork();
	if (pid < 0) {
		r = mv_err(err, -errno, "cannot fork: %m");
		goto fail;
	}
	if (pid == 0) {
		close(pipefd[0]);
		child_exec(spec, devnull, pipefd[1]);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	p->id.pid = pid;
	p->pidfd = pidfd_open_(pid);

	do
		n = read(pipefd[0], &e, sizeof(e));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(e) || p->pidfd < 0) {
		if (p->pidfd < 0)
			e = errno;
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		r = mv_err(err, -e, "cannot execute %s: %s", spec->path, strerror(e));
		goto fail;
	}
	r = proc_starttime(pid, &p->id.starttime);
	if (r >= 0)
		r = proc_watch(p, event);
	if (r < 0) {
		(void)kill(pid, SIGKILL);
		(void)waitpid(pid, NULL, 0);
		mv_err(err, r, "cannot watch process %d: %s", (int)pid, strerror(-r));
		goto fail;
	}
	close(pipefd[0]);
	*ret = p;
	return 0;
fail:
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	if (p && p->pidfd >= 0)
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
