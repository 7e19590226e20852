/* See console.h. */
#include "console.h"

#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "macro.h"

#define CONSOLE_RETRY_USEC (50 * 1000ULL)

struct console {
	sd_event *event;
	char *socket_path;
	int log_fd;
	int fd; /* the serial socket, -1 while disconnected */
	sd_event_source *io, *retry;
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
			/* The log is the record: a short write (disk full) loses output, never
			 * blocks the guest. */
			(void)!write(c->log_fd, buf, (size_t)n);
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

	if (!c)
		return -ENOMEM;
	c->fd = -1;
	c->log_fd = -1;
	c->event = event;
	c->socket_path = strdup(socket_path);
	if (!c->socket_path) {
		console_free(c);
		return -ENOMEM;
	}
	c->log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (c->log_fd < 0) {
		int r = -errno;
		console_free(c);
		return r;
	}
	if (console_connect(c) < 0)
		schedule_retry(c);
	*ret = c;
	return 0;
}

void console_free(struct console *c)
{
	if (!c)
		return;
	console_disconnect(c);
	sd_event_source_disable_unref(c->retry);
	if (c->log_fd >= 0)
		close(c->log_fd);
	free(c->socket_path);
	free(c);
}

int console_write(struct console *c, const void *data, size_t len)
{
	ssize_t n;

	if (c->fd < 0)
		return -ENOTCONN;
	n = write(c->fd, data, len);
	if (n < 0)
		return -errno;
	return (int)n;
}
