/* Unit tests for the console fan-out (console.c): a real sd-event loop, and a fake serial port
 * in the test itself (a listening AF_UNIX socket in a temp dir, as cloud-hypervisor binds it)
 * that accepts the console's connection and writes guest output into it. The loop runs until
 * what a test waits for has happened, bounded by WAIT_MAX_MS; no sleep decides a result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "common/macro.h"
#include "vm/console.h"

#define WAIT_MAX_MS 10000

/* What a viewer saw. */
struct sink {
	char *buf;
	size_t len;
	unsigned calls;
	unsigned closed;
	char reason[128];
	struct console_viewer *viewer;
	/* behaviours for the removal tests */
	bool remove_self;
	struct sink *remove_other;
};

struct fixture {
	char dir[64];
	char sock[128];
	char log[160];
	char log1[170];
	char marker[180];
	sd_event *event;
	int listen_fd;
	int conn_fd;
	struct console *console;
};

/* ---- the fake serial port ---- */

static int port_listen(struct fixture *f)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, f->sock, strlen(f->sock) + 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop until pred(arg) holds; fails the test after WAIT_MAX_MS. */
static void run_until(struct fixture *f, bool (*pred)(struct fixture *, void *), void *arg)
{
	uint64_t end = now_ms() + WAIT_MAX_MS;

	while (!pred(f, arg)) {
		assert_true(now_ms() < end);
		assert_true(sd_event_run(f->event, 10 * 1000) >= 0);
	}
}

static bool accepted(struct fixture *f, void *arg)
{
	(void)arg;
	if (f->conn_fd < 0)
		f->conn_fd = accept4(f->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	return f->conn_fd >= 0;
}

/* Accepts the console's connection (it connects at once or within a retry). */
static void port_accept(struct fixture *f)
{
	run_until(f, accepted, NULL);
}

/* Writes all of data as the guest, letting the loop drain the socket meanwhile. */
static void port_write(struct fixture *f, const void *data, size_t len)
{
	const char *p = data;
	uint64_t end = now_ms() + WAIT_MAX_MS;

	while (len > 0) {
		ssize_t n = write(f->conn_fd, p, len);

		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		assert_true(n < 0 && errno == EAGAIN);
		assert_true(now_ms() < end);
		assert_true(sd_event_run(f->event, 10 * 1000) >= 0);
	}
}

static void port_close(struct fixture *f)
{
	if (f->conn_fd >= 0)
		close(f->conn_fd);
	f->conn_fd = -1;
	if (f->listen_fd >= 0)
		close(f->listen_fd);
	f->listen_fd = -1;
	(void)unlink(f->sock);
}

/* ---- viewers ---- */

static void sink_output(void *userdata, const void *data, size_t len)
{
	struct sink *s = userdata;
	char *p = realloc(s->buf, s->len + len + 1);

	assert_non_null(p);
	memcpy(p + s->len, data, len);
	s->buf = p;
	s->len += len;
	s->buf[s->len] = '\0';
	s->calls++;
	if (s->remove_other) {
		console_viewer_remove(s->remove_other->viewer);
		s->remove_other->viewer = NULL;
		s->remove_other = NULL;
	}
	if (s->remove_self) {
		console_viewer_remove(s->viewer);
		s->viewer = NULL;
		s->remove_self = false;
	}
}

static void sink_closed(void *userdata, const char *reason)
{
	struct sink *s = userdata;

	s->closed++;
	snprintf(s->reason, sizeof(s->reason), "%s", reason);
	s->viewer = NULL;
}

static const struct console_viewer_ops sink_ops = {
	.output = sink_output,
	.closed = sink_closed,
};

static void sink_add(struct fixture *f, struct sink *s, size_t history)
{
	assert_int_equal(console_viewer_add(f->console, &sink_ops, s, history, &s->viewer), 0);
}

/* Detaches the viewer if still attached, frees what it saw. */
static void sink_done(struct sink *s)
{
	console_viewer_remove(s->viewer);
	free(s->buf);
	memset(s, 0, sizeof(*s));
}

struct want {
	struct sink *sink;
	size_t len;
};

static bool sink_has(struct fixture *f, void *arg)
{
	struct want *w = arg;

	(void)f;
	return w->sink->len >= w->len;
}

static void wait_len(struct fixture *f, struct sink *s, size_t len)
{
	struct want w = {s, len};

	run_until(f, sink_has, &w);
	assert_int_equal(s->len, len);
}

/* Deterministic, non-repeating over short spans: a misplaced byte shows. */
static char *pattern(size_t offset, size_t len)
{
	char *p = malloc(len);

	assert_non_null(p);
	for (size_t i = 0; i < len; i++) {
		size_t k = offset + i;
		p[i] = (char)('!' + (k * 7 + k / 251) % 90);
	}
	return p;
}

static char *read_file(const char *path, size_t *ret_len)
{
	struct stat st;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	assert_true(fd >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(read(fd, buf, (size_t)st.st_size), st.st_size);
	close(fd);
	*ret_len = (size_t)st.st_size;
	return buf;
}

static off_t file_size(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* ---- fixture ---- */

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_console.XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->sock, sizeof(f->sock), "%s/serial.sock", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/console.log", f->dir);
	snprintf(f->log1, sizeof(f->log1), "%s.1", f->log);
	snprintf(f->marker, sizeof(f->marker), "%s.truncated", f->log);
	assert_int_equal(sd_event_new(&f->event), 0);
	f->conn_fd = -1;
	f->listen_fd = port_listen(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	console_free(f->console, NULL);
	port_close(f);
	sd_event_unref(f->event);
	(void)unlink(f->log);
	(void)unlink(f->log1);
	(void)unlink(f->marker);
	(void)rmdir(f->dir);
	free(f);
	return 0;
}

static void open_console(struct fixture *f)
{
	assert_int_equal(console_new(f->event, f->sock, f->log, &f->console), 0);
	port_accept(f);
}

/* ---- tests ---- */

static void test_output_reaches_log_and_viewers_in_order(void **state)
{
	struct fixture *f = *state;
	struct sink a = {0}, b = {0};
	char *log;
	size_t len;
	int fd;

	/* An existing log is appended to, never truncated (it survives daemon restarts). */
	fd = open(f->log, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "old boot\n", 9), 9);
	close(fd);

	open_console(f);
	sink_add(f, &a, 0);
	sink_add(f, &b, 0);
	port_write(f, "hello ", 6);
	wait_len(f, &a, 6);
	port_write(f, "world\n", 6);
	port_write(f, "third line\n", 11);
	wait_len(f, &a, 23);
	wait_len(f, &b, 23);
	assert_memory_equal(a.buf, "hello world\nthird line\n", 23);
	assert_memory_equal(b.buf, a.buf, 23);

	log = read_file(f->log, &len);
	assert_int_equal(len, 9 + 23);
	assert_memory_equal(log, "old boot\nhello world\nthird line\n", len);
	free(log);
	assert_int_equal(file_size(f->log1), -1);

	/* The log is private: 0600. */
	struct stat st;
	assert_int_equal(stat(f->log, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	sink_done(&a);
	sink_done(&b);
}

static void test_history_from_the_window(void **state)
{
	struct fixture *f = *state;
	const size_t total = 100 * 1024; /* more than the window: it has wrapped */
	struct sink all = {0}, h = {0};
	char *data = pattern(0, total);

	open_console(f);

	/* Before anything was printed: no history, however much is asked. */
	sink_add(f, &h, 4096);
	assert_int_equal(h.len, 0);
	sink_done(&h);

	sink_add(f, &all, 0);
	port_write(f, data, 1000);
	wait_len(f, &all, 1000);
	/* Less printed than asked: all of it. */
	sink_add(f, &h, 5000);
	assert_int_equal(h.len, 1000);
	assert_memory_equal(h.buf, data, 1000);
	sink_done(&h);

	for (size_t off = 1000; off < total; off += 7000)
		port_write(f, data + off, off + 7000 <= total ? 7000 : total - off);
	wait_len(f, &all, total);
	assert_memory_equal(all.buf, data, total);

	/* The last N bytes, for N small, N crossing the ring's end, N the whole window. */
	const size_t sizes[] = {1, 1000, CONSOLE_RING_SIZE - 10, CONSOLE_RING_SIZE};
	for (size_t i = 0; i < ELEMENTSOF(sizes); i++) {
		sink_add(f, &h, sizes[i]);
		assert_int_equal(h.len, sizes[i]);
		assert_memory_equal(h.buf, data + total - sizes[i], sizes[i]);
		sink_done(&h);
	}
	/* More than the window holds: the window (the rest is in the log). */
	sink_add(f, &h, 10 * CONSOLE_RING_SIZE);
	assert_int_equal(h.len, CONSOLE_RING_SIZE);
	assert_memory_equal(h.buf, data + total - CONSOLE_RING_SIZE, CONSOLE_RING_SIZE);

	/* Then live output, with nothing repeated. */
	port_write(f, "live", 4);
	wait_len(f, &h, CONSOLE_RING_SIZE + 4);
	assert_memory_equal(h.buf + CONSOLE_RING_SIZE, "live", 4);
	sink_done(&h);
	sink_done(&all);
	free(data);
}

static void test_viewers_removed_from_their_callback(void **state)
{
	struct fixture *f = *state;
	struct sink a = {0}, b = {0}, c = {0}, watch = {0};

	open_console(f);
	/* Viewers are told newest first: watch, a, c, b. a removes itself; c removes b, whose
	 * turn comes next in the same fan-out. */
	sink_add(f, &b, 0);
	sink_add(f, &c, 0);
	sink_add(f, &a, 0);
	sink_add(f, &watch, 0);
	a.remove_self = true;
	c.remove_other = &b;

	port_write(f, "x", 1);
	wait_len(f, &watch, 1);
	assert_int_equal(a.calls, 1);
	assert_int_equal(c.calls, 1);
	assert_int_equal(b.calls, 0);
	assert_null(a.viewer);
	assert_null(b.viewer);

	port_write(f, "yz", 2);
	wait_len(f, &watch, 3);
	wait_len(f, &c, 3);
	assert_int_equal(a.len, 1);
	assert_int_equal(b.len, 0);

	/* The first viewer of the list removes itself too. */
	watch.remove_self = true;
	port_write(f, "1", 1);
	wait_len(f, &c, 4);
	assert_int_equal(watch.len, 4);
	port_write(f, "2", 1);
	wait_len(f, &c, 5);
	assert_int_equal(watch.len, 4);
	assert_memory_equal(c.buf, "xyz12", 5);

	/* console_free tells only the viewers still attached. */
	console_free(f->console, "vm stopped: test");
	f->console = NULL;
	assert_int_equal(c.closed, 1);
	assert_int_equal(a.closed + b.closed + watch.closed, 0);
	sink_done(&a);
	sink_done(&b);
	sink_done(&c);
	sink_done(&watch);
}

static void test_rotation_and_log_read(void **state)
{
	struct fixture *f = *state;
	const size_t total = CONSOLE_LOG_MAX + 320 * 1024; /* whole chunks */
	const size_t chunk = 16 * 1024;
	struct sink all = {0};
	char *data = pattern(0, total + CONSOLE_LOG_MAX), *buf = NULL;
	size_t len, cur;
	off_t old;
	bool truncated;

	assert_int_equal(console_log_read(f->log, 0, &buf, &len, &truncated), -ENOENT);

	open_console(f);
	sink_add(f, &all, 0);
	for (size_t off = 0; off < total; off += chunk)
		port_write(f, data + off, chunk);
	wait_len(f, &all, total);

	old = file_size(f->log1);
	cur = (size_t)file_size(f->log);
	assert_true(old > 0 && old <= CONSOLE_LOG_MAX);
	assert_true(cur > 0 && cur <= CONSOLE_LOG_MAX);
	assert_int_equal((size_t)old + cur, total);

	/* Everything, across both files, in order. */
	assert_int_equal(console_log_read(f->log, 0, &buf, &len, &truncated), 0);
	assert_int_equal(len, total);
	assert_memory_equal(buf, data, total);
	assert_false(truncated);
	free(TAKE_PTR(buf));

	/* A tail inside the current file. */
	assert_int_equal(console_log_read(f->log, 100, &buf, &len, &truncated), 0);
	assert_int_equal(len, 100);
	assert_memory_equal(buf, data + total - 100, 100);
	assert_true(truncated);
	free(TAKE_PTR(buf));

	/* A tail reaching into the rotated file. */
	assert_int_equal(console_log_read(f->log, cur + 500, &buf, &len, &truncated), 0);
	assert_int_equal(len, cur + 500);
	assert_memory_equal(buf, data + total - cur - 500, cur + 500);
	assert_true(truncated);
	free(TAKE_PTR(buf));

	/* Exactly all of it, and more than there is. */
	assert_int_equal(console_log_read(f->log, total, &buf, &len, &truncated), 0);
	assert_int_equal(len, total);
	assert_false(truncated);
	free(TAKE_PTR(buf));
	assert_int_equal(console_log_read(f->log, 2 * total, &buf, &len, &truncated), 0);
	assert_int_equal(len, total);
	assert_memory_equal(buf, data, total);
	assert_false(truncated);
	free(TAKE_PTR(buf));

	/* A second rotation drops the oldest output. */
	for (size_t off = total; off < total + CONSOLE_LOG_MAX; off += chunk)
		port_write(f, data + off, chunk);
	wait_len(f, &all, total + CONSOLE_LOG_MAX);
	old = file_size(f->log1);
	cur = (size_t)file_size(f->log);
	assert_true((size_t)old + cur < total + CONSOLE_LOG_MAX);
	assert_int_equal(console_log_read(f->log, 0, &buf, &len, &truncated), 0);
	assert_int_equal(len, (size_t)old + cur);
	assert_memory_equal(buf, data + total + CONSOLE_LOG_MAX - len, len);
	assert_true(truncated);
	free(TAKE_PTR(buf));

	sink_done(&all);
	free(data);
}

static bool disconnected(struct fixture *f, void *arg)
{
	(void)arg;
	return console_write(f->console, "", 0) == -ENOTCONN;
}

static void test_reconnect_after_reboot(void **state)
{
	struct fixture *f = *state;
	struct sink s = {0};
	uint64_t until;
	char *log;
	size_t len;

	open_console(f);
	sink_add(f, &s, 0);
	port_write(f, "boot 1\n", 7);
	wait_len(f, &s, 7);

	/* The guest reboots: cloud-hypervisor closes, unlinks and re-binds the socket. */
	port_close(f);
	run_until(f, disconnected, NULL);
	assert_int_equal(console_write(f->console, "lost", 4), -ENOTCONN);
	/* Nobody listens for a while: the console keeps retrying, quietly. */
	until = now_ms() + 200;
	while (now_ms() < until)
		assert_true(sd_event_run(f->event, 10 * 1000) >= 0);
	assert_int_equal(s.closed, 0);

	f->listen_fd = port_listen(f);
	port_accept(f);
	port_write(f, "boot 2\n", 7);
	wait_len(f, &s, 14);
	assert_memory_equal(s.buf, "boot 1\nboot 2\n", 14);
	assert_int_equal(console_write(f->console, "in", 2), 2);

	log = read_file(f->log, &len);
	assert_int_equal(len, 14);
	assert_memory_equal(log, "boot 1\nboot 2\n", 14);
	free(log);
	sink_done(&s);
}

static void test_connects_once_the_socket_appears(void **state)
{
	struct fixture *f = *state;
	struct sink s = {0};

	port_close(f);
	assert_int_equal(console_new(f->event, f->sock, f->log, &f->console), 0);
	assert_int_equal(console_write(f->console, "x", 1), -ENOTCONN);
	sink_add(f, &s, 0);
	f->listen_fd = port_listen(f);
	port_accept(f);
	port_write(f, "late\n", 5);
	wait_len(f, &s, 5);
	sink_done(&s);
}

static bool readable(struct fixture *f, void *arg)
{
	struct want *w = arg;
	ssize_t n = read(f->conn_fd, w->sink->buf + w->sink->len, 64 - w->sink->len);

	if (n > 0)
		w->sink->len += (size_t)n;
	return w->sink->len >= w->len;
}

static void test_write_reaches_the_guest(void **state)
{
	struct fixture *f = *state;
	struct sink got = {0};
	struct want w = {&got, 11};

	open_console(f);
	got.buf = calloc(1, 64);
	assert_non_null(got.buf);
	assert_int_equal(console_write(f->console, "hello", 5), 5);
	assert_int_equal(console_write(f->console, " guest", 6), 6);
	run_until(f, readable, &w);
	assert_memory_equal(got.buf, "hello guest", 11);
	/* Input is not output: nothing of it in the log. */
	assert_int_equal(file_size(f->log), 0);
	sink_done(&got);
}

static void test_free_tells_every_viewer(void **state)
{
	struct fixture *f = *state;
	struct sink a = {0}, b = {0};

	open_console(f);
	sink_add(f, &a, 0);
	sink_add(f, &b, 0);
	port_write(f, "bye\n", 4);
	wait_len(f, &a, 4);
	console_free(f->console, "vm stopped: guest powered off");
	f->console = NULL;
	assert_int_equal(a.closed, 1);
	assert_int_equal(b.closed, 1);
	assert_string_equal(a.reason, "vm stopped: guest powered off");
	assert_string_equal(b.reason, "vm stopped: guest powered off");
	/* The log stays. */
	assert_int_equal(file_size(f->log), 4);
	sink_done(&a);
	sink_done(&b);

	/* Without a reason, a default one. */
	assert_int_equal(console_new(f->event, f->sock, f->log, &f->console), 0);
	sink_add(f, &a, 0);
	console_free(f->console, NULL);
	f->console = NULL;
	assert_int_equal(a.closed, 1);
	assert_string_equal(a.reason, "console closed");
	sink_done(&a);
	console_free(NULL, "nothing");
	console_viewer_remove(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_output_reaches_log_and_viewers_in_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_history_from_the_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_viewers_removed_from_their_callback, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotation_and_log_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconnect_after_reboot, setup, teardown),
		cmocka_unit_test_setup_teardown(test_connects_once_the_socket_appears, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_write_reaches_the_guest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_tells_every_viewer, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
