/* See console.h. */
#include "vm/console.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "common/macro.h"

#define CONSOLE_RETRY_USEC (50 * 1000ULL)

struct console_viewer {
	struct console *console;
	const struct console_viewer_ops *ops;
	void *userdata;
	struct console_viewer *prev, *next;
};

struct console {
	sd_event *event;
	char *socket_path;
	char *log_path;
	int log_fd;
	uint64_t log_size;
	int fd; /* the serial socket, -1 while disconnected */
	sd_event_source *io, *retry;

	/* the last CONSOLE_RING_SIZE bytes: ring[(start + i) % SIZE] for i < len */
	char *ring;
	size_t ring_start, ring_len;

	struct console_viewer *viewers;
	struct console_viewer *dispatch_next; /* next viewer of a fan-out in progress */
};

static void console_disconnect(struct console *c);
static int console_connect(struct console *c);

static int on_retry(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct console *c = userdata;

	(void)s;
	(void)usec;
	c->retry = sd_event_source_disable_unref(c->retry);
	if (console_connect(c) < 0)
		(void)sd_event_add_time_relative(c->event, &c->retry, CLOCK_MONOTONIC,
						 CONSOLE_RETRY_USEC, 0, on_retry, c);
	return 0;
}

static void schedule_retry(struct console *c)
{
	if (!c->retry)
		(void)sd_event_add_time_relative(c->event, &c->retry, CLOCK_MONOTONIC,
						 CONSOLE_RETRY_USEC, 0, on_retry, c);
}

/* Moves console.log to console.log.1 and starts a new one. Replacing an older console.log.1
 * drops output: console.log.truncated then says so (for console_log_read). */
static void log_rotate(struct console *c)
{
	_cleanup_free_ char *old = NULL, *marker = NULL;
	struct stat st;
	bool dropping;
	int fd;

	if (asprintf(&old, "%s.1", c->log_path) < 0) {
		old = NULL;
		return;
	}
	dropping = lstat(old, &st) == 0;
	if (rename(c->log_path, old) < 0)
		return;
	if (dropping && asprintf(&marker, "%s.truncated", c->log_path) >= 0) {
		fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd >= 0)
			close(fd);
	} else if (dropping) {
		marker = NULL;
	}
	fd = open(c->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return; /* keep writing to the old file rather than lose output */
	close(c->log_fd);
	c->log_fd = fd;
	c->log_size = 0;
}

static void ring_append(struct console *c, const char *data, size_t len)
{
	if (len > CONSOLE_RING_SIZE) {
		data += len - CONSOLE_RING_SIZE;
		len = CONSOLE_RING_SIZE;
	}
	for (size_t done = 0; done < len;) {
		size_t end = (c->ring_start + c->ring_len) % CONSOLE_RING_SIZE;
		size_t n = CONSOLE_RING_SIZE - end;

		if (n > len - done)
			n = len - done;
		memcpy(c->ring + end, data + done, n);
		done += n;
		c->ring_len += n;
		if (c->ring_len > CONSOLE_RING_SIZE) {
			c->ring_start = (c->ring_start + c->ring_len - CONSOLE_RING_SIZE) %
					CONSOLE_RING_SIZE;
			c->ring_len = CONSOLE_RING_SIZE;
		}
	}
}

static void fan_out(struct console *c, const char *data, size_t len)
{
	/* The log is the record: a short write (disk full) loses output, never blocks the
	 * guest. */
	if (c->log_size + len > CONSOLE_LOG_MAX)
		log_rotate(c);
	if (write(c->log_fd, data, len) > 0)
		c->log_size += len;
	ring_append(c, data, len);
	/* A viewer may remove itself (or the next one) from its callback. */
	for (struct console_viewer *v = c->viewers; v; v = c->dispatch_next) {
		c->dispatch_next = v->next;
		v->ops->output(v->userdata, data, len);
	}
	c->dispatch_next = NULL;
}

static int on_readable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct console *c = userdata;
	char buf[16384];
	ssize_t n;

	(void)s;
	(void)revents;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n > 0) {
			fan_out(c, buf, (size_t)n);
			if ((size_t)n < sizeof(buf))
				return 0; /* let other sources run; more comes with the next wake-up */
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		/* EOF or error: the VM rebooted (socket re-bound) or is going away. */
		console_disconnect(c);
		schedule_retry(c);
		return 0;
	}
}

static int console_connect(struct console *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	_cleanup_close_ int fd = -1;
	int r;

	if (strlen(c->socket_path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, c->socket_path, strlen(c->socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	r = sd_event_add_io(c->event, &c->io, fd, EPOLLIN, on_readable, c);
	if (r < 0)
		return r;
	c->fd = TAKE_FD(fd);
	return 0;
}

static void console_disconnect(struct console *c)
{
	c->io = sd_event_source_disable_unref(c->io);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

int console_new(sd_event *event, const char *socket_path, const char *log_path,
		struct console **ret)
{
	struct console *c = calloc(1, sizeof(*c));
	struct stat st;
	int r;

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->log_fd = -1;
	c->event = event;
	c->socket_path = strdup(socket_path);
	c->log_path = strdup(log_path);
	c->ring = malloc(CONSOLE_RING_SIZE);
	if (!c->socket_path || !c->log_path || !c->ring) {
		console_free(c, NULL);
		return -ENOMEM;
	}
	c->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (c->log_fd < 0) {
		r = -errno;
		console_free(c, NULL);
		return r;
	}
	if (fstat(c->log_fd, &st) == 0)
		c->log_size = (uint64_t)st.st_size;
	if (console_connect(c) < 0)
		schedule_retry(c);
	*ret = c;
	return 0;
}

void console_free(struct console *c, const char *reason)
{
	if (!c)
		return;
	while (c->viewers) {
		struct console_viewer *v = c->viewers;

		c->viewers = v->next;
		if (v->ops->closed)
			v->ops->closed(v->userdata, reason ? reason : "console closed");
		free(v);
	}
	console_disconnect(c);
	sd_event_source_disable_unref(c->retry);
	if (c->log_fd >= 0)
		close(c->log_fd);
	free(c->ring);
	free(c->socket_path);
	free(c->log_path);
	free(c);
}

int console_write(struct console *c, const void *data, size_t len)
{
	ssize_t n;

	if (c->fd < 0)
		return -ENOTCONN;
	n = send(c->fd, data, len, MSG_NOSIGNAL); /* no SIGPIPE from a port going away */
	if (n < 0)
		return errno == EAGAIN ? 0 : -errno;
	return (int)n;
}

int console_viewer_add(struct console *c, const struct console_viewer_ops *ops, void *userdata,
		       size_t history, struct console_viewer **ret)
{
	struct console_viewer *v = calloc(1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	v->console = c;
	v->ops = ops;
	v->userdata = userdata;
	if (history > c->ring_len)
		history = c->ring_len;
	if (history > 0) {
		size_t from = (c->ring_start + c->ring_len - history) % CONSOLE_RING_SIZE;
		size_t first = CONSOLE_RING_SIZE - from;

		if (first > history)
			first = history;
		ops->output(userdata, c->ring + from, first);
		if (first < history)
			ops->output(userdata, c->ring, history - first);
	}
	v->next = c->viewers;
	if (c->viewers)
		c->viewers->prev = v;
	c->viewers = v;
	*ret = v;
	return 0;
}

void console_viewer_remove(struct console_viewer *v)
{
	struct console *c;

	if (!v)
		return;
	c = v->console;
	if (c->dispatch_next == v)
		c->dispatch_next = v->next;
	if (v->prev)
		v->prev->next = v->next;
	else
		c->viewers = v->next;
	if (v->next)
		v->next->prev = v->prev;
	free(v);
}

/* Appends the last `want` bytes of path (all if want is 0) to *buf. */
static int read_tail(const char *path, uint64_t want, char **buf, size_t *len, bool *more)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	uint64_t from = 0, n;
	char *p;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0)
		return -errno;
	if (want > 0 && (uint64_t)st.st_size > want) {
		from = (uint64_t)st.st_size - want;
		*more = true;
	}
	n = (uint64_t)st.st_size - from;
	p = realloc(*buf, *len + n + 1);
	if (!p)
		return -ENOMEM;
	*buf = p;
	for (uint64_t done = 0; done < n;) {
		ssize_t r = pread(fd, p + *len + done, n - done, (off_t)(from + done));
		if (r < 0)
			return -errno;
		if (r == 0) {
			n = done; /* shrank meanwhile */
			break;
		}
		done += (uint64_t)r;
	}
	*len += n;
	p[*len] = '\0';
	return 0;
}

int console_log_read(const char *log_path, uint64_t tail, char **ret, size_t *ret_len,
		     bool *ret_truncated)
{
	_cleanup_free_ char *old = NULL, *marker = NULL, *buf = NULL;
	struct stat st_cur, st_old;
	bool more = false, have_old;
	size_t len = 0;
	int r;

	if (stat(log_path, &st_cur) < 0)
		return -errno;
	if (asprintf(&old, "%s.1", log_path) < 0) {
		old = NULL;
		return -ENOMEM;
	}
	if (asprintf(&marker, "%s.truncated", log_path) < 0) {
		marker = NULL;
		return -ENOMEM;
	}
	have_old = stat(old, &st_old) == 0;
	/* The rotated file holds the older part: read it only if the current one is short. */
	if (have_old && (tail == 0 || (uint64_t)st_cur.st_size < tail)) {
		r = read_tail(old, tail ? tail - (uint64_t)st_cur.st_size : 0, &buf, &len, &more);
		if (r < 0 && r != -ENOENT)
			return r;
		/* All of console.log.1 was read: was there output before it? */
		if (!more && access(marker, F_OK) == 0)
			more = true;
	} else if (have_old) {
		more = true;
	}
	r = read_tail(log_path, tail, &buf, &len, &more);
	if (r < 0)
		return r;
	if (!buf) {
		buf = strdup("");
		if (!buf)
			return -ENOMEM;
	}
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	*ret_truncated = more;
	return 0;
}
