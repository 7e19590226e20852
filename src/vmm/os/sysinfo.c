/* Host facts (see sysinfo.h): CPUs, memory, hostname, kernel release, and the version string of
 * the hypervisor binary.
 *
 * sysinfo_hypervisor_version() runs a binary the admin configured: without a shell, with
 * /dev/null as stdin, no inherited fds beyond 0-2, default signal dispositions, a 2 s deadline
 * and a 4 KiB cap on what is kept of its output. The child is always reaped before returning.
 * Callers: the API layer (GetSystemInfo, GetVersion). */
#include "os/sysinfo.h"

#include "os/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/macro.h"

#define VERSION_TIMEOUT_MS 2000
#define VERSION_OUTPUT_MAX 4096

extern char **environ;

/* MemTotal from /proc/meminfo, in MiB. */
static int read_memtotal_mb(uint64_t *ret)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *line = NULL;
	size_t size = 0;

	f = fopen("/proc/meminfo", "re");
	if (!f)
		return -errno;

	while (getline(&line, &size, f) > 0) {
		unsigned long long kb;
		char *end;

		if (strncmp(line, "MemTotal:", 9) != 0)
			continue;
		errno = 0;
		kb = strtoull(line + 9, &end, 10);
		if (errno != 0 || end == line + 9 || strncmp(end, " kB", 3) != 0)
			return -EIO;
		*ret = kb / 1024;
		return 0;
	}
	return -EIO;
}

int sysinfo_host_read(struct sysinfo_host *ret)
{
	struct sysinfo_host h = {0};
	struct utsname u;
	long cpus;
	int r;

	errno = 0;
	cpus = sysconf(_SC_NPROCESSORS_ONLN);
	if (cpus < 1)
		return errno > 0 ? -errno : -EIO;
	h.cpus = cpus > UINT32_MAX ? UINT32_MAX : (uint32_t)cpus;

	r = read_memtotal_mb(&h.memory_mb);
	if (r < 0)
		return r;

	if (gethostname(h.hostname, sizeof(h.hostname) - 1) < 0)
		return -errno;
	if (uname(&u) < 0)
		return -errno;
	snprintf(h.kernel_release, sizeof(h.kernel_release), "%s", u.release);

	*ret = h;
	return 0;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads what is available on fd into buf (up to VERSION_OUTPUT_MAX, the rest is discarded).
 * Returns 1 at end of file, 0 when nothing more is available now, or -errno. */
static int read_some(int fd, char *buf, size_t *len)
{
	char discard[512];

	for (;;) {
		ssize_t n;

		if (*len < VERSION_OUTPUT_MAX)
			n = read(fd, buf + *len, VERSION_OUTPUT_MAX - *len);
		else
			n = read(fd, discard, sizeof(discard));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? 0 : -errno;
		}
		if (n == 0)
			return 1;
		if (*len < VERSION_OUTPUT_MAX)
			*len += (size_t)n;
	}
}

/* The first line of buf, without surrounding whitespace; -EIO when that is empty. */
static int first_line(const char *buf, size_t len, char **ret)
{
	const char *nl = memchr(buf, '\n', len);
	size_t start = 0, end = nl ? (size_t)(nl - buf) : len;
	char *s;

	while (start < end && (buf[start] == ' ' || (buf[start] >= '\t' && buf[start] <= '\r')))
		start++;
	while (end > start &&
	       (buf[end - 1] == ' ' || (buf[end - 1] >= '\t' && buf[end - 1] <= '\r')))
		end--;
	if (end == start)
		return -EIO;
	s = strndup(buf + start, end - start);
	if (!s)
		return -ENOMEM;
	*ret = s;
	return 0;
}

int sysinfo_hypervisor_version(const char *path, char **ret_version)
{
	_cleanup_close_ int null_fd = -1, out_r = -1, out_w = -1, pidfd = -1;
	char buf[VERSION_OUTPUT_MAX];
	bool eof = false, reaped = false;
	int64_t deadline;
	size_t len = 0;
	struct stat st;
	pid_t pid = 0;
	char *const argv[] = {(char *)path, (char *)"--version", NULL};
	int fds[2], status = 0, r;

	if (isempty(path) || stat(path, &st) < 0 || !S_ISREG(st.st_mode) || access(path, X_OK) < 0)
		return -ENOENT;

	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (null_fd < 0)
		return -errno;
	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	out_r = fds[0];
	out_w = fds[1];
	/* Only our end is non-blocking: the child's stdout stays an ordinary blocking pipe. */
	if (fcntl(out_r, F_SETFL, O_NONBLOCK) < 0)
		return -errno;

	r = proc_spawn_raw(path, argv, NULL, null_fd, out_w, out_w, NULL, 0, false, &pid);
	if (r == -ENOENT || r == -EACCES)
		return -ENOENT; /* the file changed since the check above */
	if (r == -ENOMEM || r == -EAGAIN)
		return r;
	if (r < 0)
		return -EIO;
	deadline = now_ms() + VERSION_TIMEOUT_MS;
	close(TAKE_FD(out_w));

	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		r = -errno;
		goto finish;
	}

	/* Collect output until the child exits; once it has, whatever it wrote is in the pipe, so
	 * a final drain is enough even if a grandchild still holds the write end. */
	while (!reaped) {
		struct pollfd p[2] = {
			{.fd = eof ? -1 : out_r, .events = POLLIN},
			{.fd = pidfd, .events = POLLIN},
		};
		int64_t left = deadline - now_ms();

		if (left <= 0) {
			r = -ETIMEDOUT;
			goto finish;
		}
		if (poll(p, ELEMENTSOF(p), (int)left) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto finish;
		}
		if (p[0].revents) {
			r = read_some(out_r, buf, &len);
			if (r < 0)
				goto finish;
			eof = r > 0;
		}
		if (p[1].revents & POLLIN) {
			while (waitpid(pid, &status, 0) < 0)
				if (errno != EINTR) {
					r = -errno;
					goto finish;
				}
			reaped = true;
		}
	}
	if (!eof && (r = read_some(out_r, buf, &len)) < 0)
		goto finish;

	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		r = -EIO;
	else
		r = first_line(buf, len, ret_version);

finish:
	if (!reaped) {
		if (pidfd < 0 || pidfd_send_signal(pidfd, SIGKILL, NULL, 0) < 0)
			kill(pid, SIGKILL);
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
	}
	return r;
}
