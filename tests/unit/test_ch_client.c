/* Unit tests for the hypervisor REST client (ch_client.c over ch_http_fds.c): a real sd-event
 * loop in the test, and tiny fake HTTP servers in forked children, each on a Unix socket in a
 * temp dir, answering by scenario (closing after the answer, or keeping the connection alive
 * as cloud-hypervisor does). Every wait is bounded; no sleep decides a result. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "common/macro.h"
#include "hypervisor/ch_client.h"
#include "hypervisor/ch_http_parse.h"

#define MIB (1024 * 1024)
#define WAIT_MAX_MS 10000

enum scenario {
	SRV_NO_CONTENT, /* 204, empty */
	SRV_JSON,       /* 200 + JSON */
	SRV_ERROR_500,  /* 500 + cloud-hypervisor error array */
	SRV_NOT_FOUND,  /* 404 + error array */
	SRV_TEXT_500,   /* 500 + plain text */
	SRV_EMPTY_500,  /* 500, empty */
	SRV_HANG,       /* reads the request, never answers, keeps the connection */
	SRV_ECHO,       /* 200 + the raw request as received */
	SRV_BIG,        /* 200 + 2 MiB, with Content-Length */
	SRV_BIG_STREAM, /* 200 + 2 MiB, no Content-Length (ends at close) */
	SRV_EXACT_MAX,  /* 200 + exactly 1 MiB */
	SRV_KEEP_JSON,  /* 200 + JSON with Content-Length, then keeps the connection open */
	SRV_KEEP_204,   /* 204 without Content-Length, keep-alive, like cloud-hypervisor */
	SRV_SPLIT,      /* 200 + JSON written a few bytes at a time, with pauses */
	SRV_NOT_HTTP,   /* garbage, then close */
	SRV_CLOSE,      /* reads the request, closes without a word */
	SRV_TRUNCATED,  /* 200 with Content-Length 100, 10 bytes of body, close */
	SRV_COUNT,      /* reads a body of any size; 200 + its length, "bad" if not all 'b' */
};

static const char JSON_PING[] =
	"{\"build_version\":\"v54.0.0\",\"version\":\"54.0.0\",\"pid\":42,\"features\":[\"kvm\"]}";
static const char ERROR_500[] =
	"[\"Error from API\",\"The VM could not be created\",\"VM is already created\"]";
static const char ERROR_404[] =
	"[\"Error from API\",\"The VM info is not available\",\"VM is not created\"]";

#define MAX_SERVERS 4

struct server {
	pid_t pid;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct fixture {
	sd_event *event;
	struct ch_client *client;
	struct server servers[MAX_SERVERS];
	int n_servers;
};

static char tmpdir[] = "/tmp/test_ch_client.XXXXXX";

/* ---- the fake server (child process) ---- */

static void write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* Reads one request (headers + Content-Length body) into buf; returns its length. */
static size_t read_request(int fd, char *buf, size_t cap)
{
	size_t len = 0, want = 0;
	char *end = NULL;

	while (len < cap - 1) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = '\0';
		if (!end) {
			end = strstr(buf, "\r\n\r\n");
			if (end) {
				const char *cl = strcasestr(buf, "\r\nContent-Length:");

				want = (size_t)(end + 4 - buf);
				if (cl && cl < end)
					want += strtoul(cl + 17, NULL, 10);
			}
		}
		if (end && len >= want)
			break;
	}
	buf[len] = '\0';
	return len;
}

static void respond(int fd, int status, const char *reason, const char *body, size_t len,
		    bool content_length)
{
	char head[256];
	int n;

	if (content_length)
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: fake\r\nContent-Type: application/json\r\n"
			     "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			     status, reason, len);
	else
		n = snprintf(head, sizeof(head),
			     "HTTP/1.1 %d %s\r\nServer: fake\r\nConnection: close\r\n\r\n", status,
			     reason);
	write_all(fd, head, (size_t)n);
	write_all(fd, body, len);
}

/* SRV_COUNT: reads the head, then Content-Length bytes of any size; req gets the count, or
 * "bad" if a byte was not 'b' or the body ended early. */
static void count_body(int fd, char *req, size_t cap)
{
	size_t len = 0, want = 0, got = 0;
	char *end = NULL, buf[65536];
	bool bad = false;

	while (!end && len < cap - 1) {
		ssize_t n = read(fd, req + len, 1);

		if (n <= 0)
			break;
		req[++len] = '\0';
		end = strstr(req, "\r\n\r\n");
	}
	if (end) {
		const char *cl = strcasestr(req, "\r\nContent-Length:");

		if (cl)
			want = strtoul(cl + 17, NULL, 10);
	}
	while (got < want) {
		ssize_t n = read(fd, buf, sizeof(buf) < want - got ? sizeof(buf) : want - got);

		if (n <= 0)
			break;
		for (ssize_t i = 0; i < n; i++)
			bad |= buf[i] != 'b';
		got += (size_t)n;
	}
	if (bad || got < want)
		snprintf(req, cap, "bad");
	else
		snprintf(req, cap, "%zu", got);
}

static void serve_one(int fd, enum scenario sc)
{
	static char req[64 * 1024];
	size_t len = 0;
	char *big;

	if (sc == SRV_COUNT)
		count_body(fd, req, sizeof(req));
	else
		len = read_request(fd, req, sizeof(req));

	switch (sc) {
	case SRV_NO_CONTENT:
		write_all(fd, "HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n", 46);
		break;
	case SRV_JSON:
		respond(fd, 200, "OK", JSON_PING, strlen(JSON_PING), true);
		break;
	case SRV_ERROR_500:
		respond(fd, 500, "Internal Server Error", ERROR_500, strlen(ERROR_500), true);
		break;
	case SRV_NOT_FOUND:
		respond(fd, 404, "Not Found", ERROR_404, strlen(ERROR_404), true);
		break;
	case SRV_TEXT_500:
		respond(fd, 500, "Internal Server Error", "  oops: broken\r\n", 16, true);
		break;
	case SRV_EMPTY_500:
		respond(fd, 500, "Internal Server Error", "", 0, true);
		break;
	case SRV_HANG:
		return; /* the connection stays open until the child dies */
	case SRV_ECHO:
		respond(fd, 200, "OK", req, len, true);
		break;
	case SRV_BIG:
	case SRV_BIG_STREAM:
	case SRV_EXACT_MAX: {
		size_t n = sc == SRV_EXACT_MAX ? MIB : 2 * MIB;

		big = malloc(n);
		if (!big)
			_exit(3);
		memset(big, 'x', n);
		respond(fd, 200, "OK", big, n, sc != SRV_BIG_STREAM);
		free(big);
		break;
	}
	case SRV_KEEP_JSON:
	case SRV_KEEP_204: {
		char head[256];
		int n = sc == SRV_KEEP_204
				? snprintf(
					  head, sizeof(head),
					  "HTTP/1.1 204 No Content\r\nServer: Cloud Hypervisor API\r\n"
					  "Connection: keep-alive\r\n\r\n")
				: snprintf(
					  head, sizeof(head),
					  "HTTP/1.1 200 OK\r\nServer: Cloud Hypervisor API\r\n"
					  "Connection: keep-alive\r\nContent-Type: application/json\r\n"
					  "Content-Length: %zu\r\n\r\n%s",
					  strlen(JSON_PING), JSON_PING);

		write_all(fd, head, (size_t)n);
		/* until the client hangs up: it must not wait for this EOF */
		while (read(fd, req, sizeof(req)) > 0)
			;
		break;
	}
	case SRV_SPLIT: {
		char all[512];
		int n = snprintf(all, sizeof(all),
				 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				 "Content-Length: %zu\r\n\r\n%s",
				 strlen(JSON_PING), JSON_PING);

		for (int off = 0; off < n; off += 7) {
			write_all(fd, all + off, (size_t)(n - off < 7 ? n - off : 7));
			usleep(2000);
		}
		break;
	}
	case SRV_NOT_HTTP:
		write_all(fd, "SSH-2.0-OpenSSH_9.2\r\n", strlen("SSH-2.0-OpenSSH_9.2\r\n"));
		break;
	case SRV_CLOSE:
		break;
	case SRV_TRUNCATED: {
		static const char cut[] =
			"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";

		write_all(fd, cut, sizeof(cut) - 1);
		break;
	}
	case SRV_COUNT:
		respond(fd, 200, "OK", req, strlen(req), true);
		break;
	}
	shutdown(fd, SHUT_WR);
	close(fd);
}

static _Noreturn void server_run(int lfd, enum scenario sc)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	signal(SIGPIPE, SIG_IGN);
	/* Hold no copy of the parent's fds (its client sockets, its epoll). */
	if (dup2(lfd, 3) < 0)
		_exit(2);
	close_range(4, ~0U, 0);
	for (;;) {
		int fd = accept4(3, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		serve_one(fd, sc);
	}
}

/* Starts a server for sc on tmpdir/name; the socket listens before this returns. */
static const char *server_start(struct fixture *f, const char *name, enum scenario sc)
{
	struct server *s = &f->servers[f->n_servers];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd;

	assert_true(f->n_servers < MAX_SERVERS);
	snprintf(s->path, sizeof(s->path), "%s/%s", tmpdir, name);
	unlink(s->path);
	memcpy(sa.sun_path, s->path, strlen(s->path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 64), 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0)
		server_run(fd, sc);
	close(fd);
	f->n_servers++;
	return s->path;
}

static void servers_stop(struct fixture *f)
{
	for (int i = 0; i < f->n_servers; i++) {
		kill(f->servers[i].pid, SIGKILL);
		waitpid(f->servers[i].pid, NULL, 0);
		unlink(f->servers[i].path);
	}
	f->n_servers = 0;
}

/* ---- the client side ---- */

struct result {
	int calls;
	bool from_start; /* the callback ran inside ch_request_start */
	int error;
	long status;
	bool ok;
	char *body;
	char *message;
	size_t body_len;
	uint64_t done_usec;
	int order;
	/* re-entrancy hooks, run inside the callback */
	struct fixture *f;
	struct ch_request *cancel_other;
	struct ch_request *self; /* cancelled from its own callback: a no-op */
	bool free_client;
	const char *start_path;
	struct result *start_result;
	int start_rc;
};

static bool in_start;
static int completions;

static uint64_t now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void result_clear(struct result *res)
{
	free(res->body);
	free(res->message);
	res->body = res->message = NULL;
}

static void on_reply(void *userdata, const struct ch_reply *reply)
{
	struct result *res = userdata;

	res->calls++;
	res->from_start = in_start;
	res->error = reply->error;
	res->status = reply->http_status;
	res->ok = ch_reply_ok(reply);
	free(res->body);
	free(res->message);
	res->body = reply->body ? strdup(reply->body) : NULL;
	res->body_len = reply->body ? strlen(reply->body) : 0;
	res->message = reply->message ? strdup(reply->message) : NULL;
	res->done_usec = now_usec();
	res->order = ++completions;

	if (res->self)
		ch_request_cancel(res->self);
	if (res->cancel_other)
		ch_request_cancel(res->cancel_other);
	if (res->start_path)
		res->start_rc = ch_request_start(res->f->client, res->start_path, "GET", "vmm.ping",
						 NULL, 2000, on_reply, res->start_result, NULL);
	if (res->free_client) {
		ch_client_free(res->f->client);
		res->f->client = NULL;
	}
}

static int start(struct fixture *f, const char *path, const char *method, const char *endpoint,
		 const char *body, uint64_t timeout_ms, struct result *res, struct ch_request **ret)
{
	int r;

	in_start = true;
	r = ch_request_start(f->client, path, method, endpoint, body, timeout_ms, on_reply, res,
			     ret);
	in_start = false;
	return r;
}

/* Runs the loop until *count reaches target or WAIT_MAX_MS pass. */
static bool run_until(sd_event *e, const int *count, int target)
{
	uint64_t deadline = now_usec() + WAIT_MAX_MS * 1000ULL;

	while (*count < target && now_usec() < deadline)
		assert_true(sd_event_run(e, 10 * 1000) >= 0);
	return *count >= target;
}

/* Runs the loop for ms milliseconds (only to let I/O happen; never decides a result). */
static void run_for(sd_event *e, unsigned ms)
{
	uint64_t deadline = now_usec() + ms * 1000ULL;

	while (now_usec() < deadline)
		assert_true(sd_event_run(e, 5 * 1000) >= 0);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own fd */
}

static int group_setup(void **state _unused_)
{
	signal(SIGPIPE, SIG_IGN);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state _unused_)
{
	return rmdir(tmpdir);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (!f || sd_event_new(&f->event) < 0 || ch_client_new(f->event, &f->client) < 0)
		return -1;
	completions = 0;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	ch_client_free(f->client);
	sd_event_unref(f->event);
	servers_stop(f);
	free(f);
	return 0;
}

/* One request to a fresh server; waits for the reply. */
static void request_once(struct fixture *f, enum scenario sc, const char *method,
			 const char *endpoint, const char *body, struct result *res)
{
	const char *path = server_start(f, "api.sock", sc);

	assert_int_equal(start(f, path, method, endpoint, body, 5000, res, NULL), 0);
	assert_int_equal(res->calls, 0);
	assert_true(run_until(f->event, &res->calls, 1));
	assert_int_equal(res->calls, 1);
	assert_false(res->from_start);
}

/* ---- tests: what the client maps ---- */

/* The shared objects mapped into this process, one per line, sorted, in buf. */
static void mapped_objects(char *buf, size_t cap)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/self/maps", "re");
	char line[4096], *names[512];
	size_t n = 0, len = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) && n < ELEMENTSOF(names)) {
		char *p = strchr(line, '/');
		bool seen = false;

		if (!p || !strstr(p, ".so"))
			continue;
		p[strcspn(p, "\n")] = '\0';
		for (size_t i = 0; i < n && !seen; i++)
			seen = streq(names[i], p);
		if (!seen)
			assert_non_null(names[n++] = strdup(p));
	}
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
			char *t = names[j];

			names[j] = names[j - 1];
			names[j - 1] = t;
		}
	buf[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		int k = snprintf(buf + len, cap - len, "%s\n", names[i]);

		assert_true(k > 0 && (size_t)k < cap - len);
		len += (size_t)k;
		free(names[i]);
	}
}

/* The first request of the process (this test runs first) maps no library: the client is
 * the project's own code (it used to dlopen libcurl and 32 libraries with it here). */
static void test_first_request_maps_nothing(void **state)
{
	static char before[64 * 1024], after[64 * 1024];
	struct fixture *f = *state;
	struct result res = {0};
	const char *path;

	mapped_objects(before, sizeof(before));
	assert_non_null(strstr(before, "/libsystemd")); /* the listing sees libraries */
	path = server_start(f, "api.sock", SRV_JSON);
	assert_int_equal(start(f, path, "GET", "vmm.ping", NULL, 5000, &res, NULL), 0);
	assert_int_equal(res.calls, 0);
	assert_true(run_until(f->event, &res.calls, 1));
	assert_false(res.from_start);
	assert_true(res.ok);
	assert_string_equal(res.body, JSON_PING);
	mapped_objects(after, sizeof(after));
	assert_string_equal(after, before);
	result_clear(&res);
}

/* ---- tests: requests ---- */

static void test_no_content(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_NO_CONTENT, "PUT", "vm.boot", NULL, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 204);
	assert_true(res.ok);
	assert_string_equal(res.body, "");
	assert_string_equal(res.message, "");
	result_clear(&res);
}

static void test_json_body(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_JSON, "GET", "vmm.ping", NULL, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	assert_true(res.ok);
	assert_string_equal(res.body, JSON_PING);
	assert_string_equal(res.message, "");
	result_clear(&res);
}

static void test_error_array_500(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_ERROR_500, "PUT", "vm.create", "{}", &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 500);
	assert_false(res.ok);
	assert_string_equal(res.message,
			    "Error from API: The VM could not be created: VM is already created");
	assert_string_equal(res.body, ERROR_500);
	result_clear(&res);
}

static void test_not_found_404(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_NOT_FOUND, "GET", "vm.info", NULL, &res);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 404);
	assert_false(res.ok);
	assert_string_equal(res.message,
			    "Error from API: The VM info is not available: VM is not created");
	result_clear(&res);
}

static void test_error_text_500(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_TEXT_500, "PUT", "vm.pause", NULL, &res);
	assert_int_equal(res.status, 500);
	assert_false(res.ok);
	assert_string_equal(res.message, "oops: broken");
	result_clear(&res);
}

static void test_error_empty_500(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_EMPTY_500, "PUT", "vm.pause", NULL, &res);
	assert_int_equal(res.status, 500);
	assert_false(res.ok);
	assert_string_equal(res.message, "HTTP 500");
	assert_string_equal(res.body, "");
	result_clear(&res);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	const char *path = server_start(f, "hang.sock", SRV_HANG);
	struct result res = {0};
	uint64_t t0 = now_usec();

	assert_int_equal(start(f, path, "GET", "vm.info", NULL, 200, &res, NULL), 0);
	assert_true(run_until(f->event, &res.calls, 1));
	assert_int_equal(res.calls, 1);
	assert_int_equal(res.error, -ETIMEDOUT);
	assert_int_equal(res.status, 0);
	assert_false(res.ok);
	assert_true(res.done_usec - t0 >= 200 * 1000);
	assert_true(res.done_usec - t0 < 2000 * 1000);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s: Connection timed out (no answer within 200 ms)",
			 path);
		assert_string_equal(res.message, want);
	}
	result_clear(&res);
}

static void test_missing_socket(void **state)
{
	struct fixture *f = *state;
	struct result res = {0};
	char path[256];

	snprintf(path, sizeof(path), "%s/absent.sock", tmpdir);
	assert_int_equal(start(f, path, "GET", "vmm.ping", NULL, 2000, &res, NULL), 0);
	assert_int_equal(res.calls, 0);
	assert_true(run_until(f->event, &res.calls, 1));
	assert_false(res.from_start);
	assert_int_equal(res.error, -ENOENT);
	assert_int_equal(res.status, 0);
	assert_false(res.ok);
	assert_string_equal(res.body, "");
	{
		char want[512];

		snprintf(want, sizeof(want), "%s: No such file or directory", path);
		assert_string_equal(res.message, want);
	}
	result_clear(&res);
}

static void test_refused(void **state)
{
	struct fixture *f = *state;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct result res = {0};
	int fd;

	/* bound, then closed: the socket file exists, nobody listens */
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/dead.sock", tmpdir);
	unlink(sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	assert_int_equal(start(f, sa.sun_path, "GET", "vmm.ping", NULL, 2000, &res, NULL), 0);
	assert_true(run_until(f->event, &res.calls, 1));
	assert_int_equal(res.error, -ECONNREFUSED);
	assert_int_equal(res.status, 0);
	assert_false(res.from_start);
	{
		char want[512];

		snprintf(want, sizeof(want), "%s: Connection refused", sa.sun_path);
		assert_string_equal(res.message, want);
	}
	unlink(sa.sun_path);
	result_clear(&res);
}

static void test_path_too_long(void **state)
{
	struct fixture *f = *state;
	struct result res = {0};
	char path[300];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(start(f, path, "GET", "vmm.ping", NULL, 2000, &res, NULL), 0);
	assert_int_equal(res.calls, 0);
	assert_true(run_until(f->event, &res.calls, 1));
	assert_false(res.from_start);
	assert_int_equal(res.error, -ENAMETOOLONG);
	assert_non_null(strstr(res.message, path));
	assert_non_null(strstr(res.message, ": File name too long"));
	result_clear(&res);
}

static void test_too_big(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_BIG, "GET", "vm.info", NULL, &res);
	assert_int_equal(res.error, -EFBIG);
	assert_false(res.ok);
	assert_int_equal(res.status, 0);
	assert_string_equal(res.body, "");
	assert_non_null(strstr(res.message, ": response body larger than 1048576 bytes"));
	result_clear(&res);
}

static void test_too_big_stream(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_BIG_STREAM, "GET", "vm.info", NULL, &res);
	assert_int_equal(res.error, -EFBIG);
	assert_false(res.ok);
	result_clear(&res);
}

static void test_exact_max(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_EXACT_MAX, "GET", "vm.info", NULL, &res);
	assert_int_equal(res.error, 0);
	assert_true(res.ok);
	assert_int_equal(res.body_len, MIB);
	result_clear(&res);
}

static void test_concurrent(void **state)
{
	struct fixture *f = *state;
	const char *hang = server_start(f, "hang.sock", SRV_HANG);
	const char *fast = server_start(f, "fast.sock", SRV_JSON);
	struct result slow = {0}, quick[5] = {0};
	uint64_t t0 = now_usec();

	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 500, &slow, NULL), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(start(f, fast, "GET", "vmm.ping", NULL, 5000, &quick[i], NULL), 0);
	assert_true(run_until(f->event, &completions, 6));
	for (int i = 0; i < 5; i++) {
		assert_int_equal(quick[i].calls, 1);
		assert_true(quick[i].ok);
		assert_string_equal(quick[i].body, JSON_PING);
		assert_true(quick[i].order < slow.order);
		assert_true(quick[i].done_usec - t0 < 500 * 1000);
		result_clear(&quick[i]);
	}
	assert_int_equal(slow.calls, 1);
	assert_int_equal(slow.error, -ETIMEDOUT);
	assert_true(slow.done_usec - t0 >= 500 * 1000);
	result_clear(&slow);
}

static void test_cancel(void **state)
{
	struct fixture *f = *state;
	const char *fast = server_start(f, "fast.sock", SRV_NO_CONTENT);
	const char *hang = server_start(f, "hang.sock", SRV_HANG);
	struct result a = {0}, b = {0}, c = {0}, d = {0};
	struct ch_request *ra = NULL, *rc = NULL;

	/* before the loop ever ran */
	assert_int_equal(start(f, fast, "PUT", "vm.boot", NULL, 2000, &a, &ra), 0);
	assert_non_null(ra);
	ch_request_cancel(ra);
	assert_int_equal(start(f, fast, "PUT", "vm.boot", NULL, 2000, &b, NULL), 0);
	assert_true(run_until(f->event, &b.calls, 1));
	assert_true(b.ok);

	/* in flight: c would time out at 100 ms, long before d does at 300 ms */
	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 100, &c, &rc), 0);
	run_for(f->event, 30);
	ch_request_cancel(rc);
	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 300, &d, NULL), 0);
	assert_true(run_until(f->event, &d.calls, 1));
	assert_int_equal(d.error, -ETIMEDOUT);

	assert_int_equal(a.calls, 0);
	assert_int_equal(c.calls, 0);
	assert_int_equal(completions, 2);
	ch_request_cancel(NULL);
	result_clear(&b);
	result_clear(&d);
}

static bool has_header(const char *req, const char *line)
{
	char needle[256];

	snprintf(needle, sizeof(needle), "\r\n%s\r\n", line);
	return strcasestr(req, needle) != NULL;
}

static void test_request_as_sent(void **state)
{
	struct fixture *f = *state;
	const char *echo = server_start(f, "echo.sock", SRV_ECHO);
	const char *json = "{\"cpus\":{\"boot_vcpus\":1,\"max_vcpus\":1}}";
	struct result put = {0}, bare = {0}, get = {0};
	char body[128], path[128], cl[64];
	const char *end;

	/* the caller's buffers are scribbled over right after start: the client copied them */
	snprintf(body, sizeof(body), "%s", json);
	snprintf(path, sizeof(path), "%s", echo);
	assert_int_equal(start(f, path, "PUT", "vm.create", body, 2000, &put, NULL), 0);
	memset(body, 'Z', sizeof(body) - 1);
	memset(path, 'Z', sizeof(path) - 1);
	assert_int_equal(start(f, echo, "PUT", "vm.boot", NULL, 2000, &bare, NULL), 0);
	assert_int_equal(start(f, echo, "GET", "vm.info", NULL, 2000, &get, NULL), 0);
	assert_true(run_until(f->event, &completions, 3));

	assert_true(put.ok);
	assert_true(strncmp(put.body, "PUT /api/v1/vm.create HTTP/1.1\r\n", 32) == 0);
	assert_true(has_header(put.body, "Host: localhost"));
	assert_true(has_header(put.body, "Content-Type: application/json"));
	assert_true(has_header(put.body, "Accept: application/json"));
	snprintf(cl, sizeof(cl), "Content-Length: %zu", strlen(json));
	assert_true(has_header(put.body, cl));
	assert_null(strcasestr(put.body, "Expect:"));
	end = strstr(put.body, "\r\n\r\n");
	assert_non_null(end);
	assert_string_equal(end + 4, json);

	assert_true(bare.ok);
	assert_string_equal(bare.body, "PUT /api/v1/vm.boot HTTP/1.1\r\nHost: localhost\r\n"
				       "Accept: application/json\r\nContent-Length: 0\r\n\r\n");
	assert_true(strncmp(bare.body, "PUT /api/v1/vm.boot HTTP/1.1\r\n", 30) == 0);
	assert_true(has_header(bare.body, "Content-Length: 0"));
	assert_null(strcasestr(bare.body, "Content-Type"));
	assert_null(strcasestr(bare.body, "Expect:"));
	end = strstr(bare.body, "\r\n\r\n");
	assert_non_null(end);
	assert_string_equal(end + 4, "");

	assert_true(get.ok);
	assert_string_equal(get.body, "GET /api/v1/vm.info HTTP/1.1\r\nHost: localhost\r\n"
				      "Accept: application/json\r\n\r\n");
	assert_true(has_header(get.body, "Accept: application/json"));
	assert_null(strcasestr(get.body, "Content-Length"));

	result_clear(&put);
	result_clear(&bare);
	result_clear(&get);
}

/* A callback starts a new request and cancels a pending one. */
static void test_reentrant_start_cancel(void **state)
{
	struct fixture *f = *state;
	const char *fast = server_start(f, "fast.sock", SRV_JSON);
	const char *hang = server_start(f, "hang.sock", SRV_HANG);
	struct result first = {0}, chained = {0}, victim = {0};
	struct ch_request *rv = NULL;

	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 300, &victim, &rv), 0);
	first.f = f;
	first.cancel_other = rv;
	first.start_path = fast;
	first.start_result = &chained;
	assert_int_equal(start(f, fast, "GET", "vmm.ping", NULL, 2000, &first, &first.self), 0);

	assert_true(run_until(f->event, &chained.calls, 1));
	assert_int_equal(first.calls, 1);
	assert_int_equal(first.start_rc, 0);
	assert_true(chained.ok);
	assert_false(chained.from_start);
	assert_string_equal(chained.body, JSON_PING);
	/* the victim would have timed out at 300 ms */
	run_for(f->event, 400);
	assert_int_equal(victim.calls, 0);
	result_clear(&first);
	result_clear(&chained);
}

/* A callback frees the client: the other requests are cancelled, nothing is touched after. */
static void test_reentrant_free(void **state)
{
	struct fixture *f = *state;
	const char *fast = server_start(f, "fast.sock", SRV_NO_CONTENT);
	const char *hang = server_start(f, "hang.sock", SRV_HANG);
	struct result r[3] = {0}, sentinel = {0};
	struct ch_client *other = NULL;

	for (int i = 0; i < 3; i++) {
		r[i].f = f;
		r[i].free_client = true;
		assert_int_equal(start(f, fast, "PUT", "vm.boot", NULL, 2000, &r[i], NULL), 0);
	}
	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 100, &sentinel, NULL), 0);
	assert_true(run_until(f->event, &completions, 1));
	assert_null(f->client);

	/* by the time another client's request times out, the freed ones would have answered */
	assert_int_equal(ch_client_new(f->event, &other), 0);
	f->client = other;
	{
		struct result late = {0};

		assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 300, &late, NULL), 0);
		assert_true(run_until(f->event, &late.calls, 1));
		assert_int_equal(late.error, -ETIMEDOUT);
		result_clear(&late);
	}
	assert_int_equal(r[0].calls + r[1].calls + r[2].calls, 1);
	assert_int_equal(sentinel.calls, 0);
	for (int i = 0; i < 3; i++)
		result_clear(&r[i]);
}

static void test_invalid_args(void **state)
{
	struct fixture *f = *state;
	struct result res = {0};
	const char *p = "/nonexistent/api.sock";

	struct ch_client *none = NULL;

	assert_int_equal(ch_client_new(NULL, &none), -EINVAL);
	assert_null(none);
	assert_int_equal(start(f, NULL, "GET", "vm.info", NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, "", "GET", "vm.info", NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, NULL, "vm.info", NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, "POST", "vm.info", NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, "PUT\r\nX: y", "vm.info", NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, "GET", NULL, NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, "GET", "", NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, "GET", "vm.info HTTP/1.0\r\n", NULL, 100, &res, NULL),
			 -EINVAL);
	assert_int_equal(start(f, p, "GET", "vm.info", NULL, 0, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, "GET", "vm.info", "{}", 100, &res, NULL), -EINVAL);
	assert_int_equal(start(f, p, "GET", "vm.info?x=1", NULL, 100, &res, NULL), -EINVAL);
	assert_int_equal(
		ch_request_start(f->client, p, "GET", "vm.info", NULL, 100, NULL, &res, NULL),
		-EINVAL);
	assert_int_equal(
		ch_request_start(NULL, p, "GET", "vm.info", NULL, 100, on_reply, &res, NULL),
		-EINVAL);
	ch_client_free(NULL);
	run_for(f->event, 20);
	assert_int_equal(res.calls, 0);
}

/* Freeing a client with requests in flight cancels them. */
static void test_free_with_pending(void **state)
{
	struct fixture *f = *state;
	const char *hang = server_start(f, "hang.sock", SRV_HANG);
	const char *fast = server_start(f, "fast.sock", SRV_NO_CONTENT);
	struct result res[4] = {0};

	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 100, &res[0], NULL), 0);
	assert_int_equal(start(f, fast, "PUT", "vm.boot", NULL, 100, &res[1], NULL), 0);
	run_for(f->event, 10);
	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 100, &res[2], NULL), 0);
	assert_int_equal(start(f, "/x/y.sock", "GET", "vm.info", NULL, 100, &res[3], NULL), 0);
	/* res[1] may have completed already; nothing may complete after the free */
	int calls_at_free = res[1].calls;

	assert_int_equal(res[0].calls + res[2].calls + res[3].calls, 0);
	ch_client_free(f->client);
	f->client = NULL;
	run_for(f->event, 300);
	assert_int_equal(res[0].calls + res[2].calls + res[3].calls, 0);
	assert_int_equal(res[1].calls, calls_at_free);
	result_clear(&res[1]);
}

static void test_no_fd_leak(void **state)
{
	struct fixture *f = *state;
	const char *ok = server_start(f, "ok.sock", SRV_JSON);
	const char *err = server_start(f, "err.sock", SRV_ERROR_500);
	const char *hang = server_start(f, "hang.sock", SRV_HANG);
	const char *big = server_start(f, "big.sock", SRV_BIG_STREAM);
	struct result res[24] = {0};
	struct ch_request *cancelled = NULL;
	sd_event *e = NULL;
	int before, after;

	/* the fixture's loop and client already exist */
	ch_client_free(f->client);
	f->client = NULL;
	sd_event_unref(f->event);
	f->event = NULL;

	before = count_fds();
	assert_int_equal(sd_event_new(&e), 0);
	f->event = e;
	assert_int_equal(ch_client_new(e, &f->client), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(start(f, ok, "GET", "vmm.ping", NULL, 2000, &res[i], NULL), 0);
		assert_int_equal(start(f, err, "PUT", "vm.create", "{}", 2000, &res[4 + i], NULL),
				 0);
		assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 150, &res[8 + i], NULL), 0);
		assert_int_equal(start(f, big, "GET", "vm.info", NULL, 2000, &res[12 + i], NULL),
				 0);
		assert_int_equal(start(f, "/nonexistent/x.sock", "GET", "vmm.ping", NULL, 2000,
				       &res[16 + i], NULL),
				 0);
	}
	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 5000, &res[20], &cancelled), 0);
	assert_true(run_until(e, &completions, 20));
	ch_request_cancel(cancelled);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(res[i].calls, 1);
		assert_int_equal(res[i].error, i < 8    ? 0
					       : i < 12 ? -ETIMEDOUT
					       : i < 16 ? -EFBIG
							: -ENOENT);
		result_clear(&res[i]);
	}
	/* a request in flight at free time */
	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 5000, &res[21], NULL), 0);
	run_for(e, 20);
	ch_client_free(f->client);
	f->client = NULL;
	sd_event_unref(e);
	f->event = NULL;
	after = count_fds();
	assert_int_equal(after, before);

	assert_int_equal(sd_event_new(&f->event), 0);
}

static int on_noop_timer(sd_event_source *s _unused_, uint64_t usec _unused_,
			 void *userdata _unused_)
{
	return 0;
}

/* A client whose requests are over holds no fd: each request's connection goes when it ends,
 * whether it completed or was cancelled. */
static void test_idle_holds_no_fds(void **state)
{
	struct fixture *f = *state;
	const char *ok = server_start(f, "ok.sock", SRV_JSON);
	const char *hang = server_start(f, "hang.sock", SRV_HANG);
	struct result a = {0}, b = {0}, c = {0};
	struct ch_request *rb = NULL;
	sd_event_source *t = NULL;
	int idle;

	/* sd-event's CLOCK_MONOTONIC timerfd is created at the first timer and kept */
	assert_true(sd_event_add_time_relative(f->event, &t, CLOCK_MONOTONIC, 1000, 1,
					       on_noop_timer, NULL) >= 0);
	run_for(f->event, 5);
	sd_event_source_unref(t);
	idle = count_fds();

	/* the connection is made from the loop, and closed before the reply is delivered */
	assert_int_equal(start(f, ok, "GET", "vmm.ping", NULL, 2000, &a, NULL), 0);
	assert_true(run_until(f->event, &a.calls, 1));
	assert_true(a.ok);
	assert_int_equal(count_fds(), idle);

	/* cancelled in flight, outside any callback */
	assert_int_equal(start(f, hang, "GET", "vm.info", NULL, 5000, &b, &rb), 0);
	run_for(f->event, 30);
	assert_true(count_fds() > idle);
	ch_request_cancel(rb);
	assert_int_equal(count_fds(), idle);
	assert_int_equal(b.calls, 0);

	/* and the client still works afterwards */
	assert_int_equal(start(f, ok, "GET", "vmm.ping", NULL, 2000, &c, NULL), 0);
	assert_true(run_until(f->event, &c.calls, 1));
	assert_true(c.ok);
	assert_int_equal(count_fds(), idle);
	result_clear(&a);
	result_clear(&c);
}

/* cloud-hypervisor keeps the connection alive: the answer ends at its Content-Length (or with
 * the head of a 204), not at an EOF that never comes. */
static void test_keep_alive(void **state)
{
	struct fixture *f = *state;
	const char *json = server_start(f, "json.sock", SRV_KEEP_JSON);
	const char *empty = server_start(f, "204.sock", SRV_KEEP_204);
	struct result get = {0}, put = {0};
	uint64_t t0 = now_usec();

	assert_int_equal(start(f, json, "GET", "vmm.ping", NULL, 5000, &get, NULL), 0);
	assert_int_equal(start(f, empty, "PUT", "vm.boot", NULL, 5000, &put, NULL), 0);
	assert_true(run_until(f->event, &completions, 2));
	assert_true(get.ok);
	assert_int_equal(get.status, 200);
	assert_string_equal(get.body, JSON_PING);
	assert_true(put.ok);
	assert_int_equal(put.status, 204);
	assert_string_equal(put.body, "");
	assert_string_equal(put.message, "");
	assert_true(get.done_usec - t0 < 2000 * 1000);
	assert_true(put.done_usec - t0 < 2000 * 1000);
	result_clear(&get);
	result_clear(&put);
}

/* An answer that arrives a few bytes at a time. */
static void test_split_answer(void **state)
{
	struct result res = {0};

	request_once(*state, SRV_SPLIT, "GET", "vmm.ping", NULL, &res);
	assert_int_equal(res.error, 0);
	assert_true(res.ok);
	assert_string_equal(res.body, JSON_PING);
	result_clear(&res);
}

/* Not HTTP, no answer at all, an answer cut short: -EBADMSG, with the socket in the message. */
static void test_bad_answers(void **state)
{
	static const enum scenario scs[] = {SRV_NOT_HTTP, SRV_CLOSE, SRV_TRUNCATED};

	for (size_t i = 0; i < ELEMENTSOF(scs); i++) {
		struct fixture *f = *state;
		struct result res = {0};
		char want[512];

		request_once(f, scs[i], "GET", "vm.info", NULL, &res);
		assert_int_equal(res.error, -EBADMSG);
		assert_int_equal(res.status, 0);
		assert_false(res.ok);
		assert_string_equal(res.body, "");
		snprintf(want, sizeof(want), "%s: not an HTTP/1.1 answer we can read",
			 f->servers[f->n_servers - 1].path);
		assert_string_equal(res.message, want);
		result_clear(&res);
		servers_stop(f);
	}
}

/* A request body far larger than a socket buffer goes out whole, in as many sends as it takes. */
static void test_large_request(void **state)
{
	struct fixture *f = *state;
	const char *count = server_start(f, "count.sock", SRV_COUNT);
	size_t n = 3 * MIB;
	char *body = malloc(n + 1);
	struct result res = {0};

	assert_non_null(body);
	memset(body, 'b', n);
	body[n] = '\0';
	assert_int_equal(start(f, count, "PUT", "vm.create", body, 10000, &res, NULL), 0);
	free(body); /* copied */
	assert_true(run_until(f->event, &res.calls, 1));
	assert_int_equal(res.error, 0);
	assert_true(res.ok);
	assert_string_equal(res.body, "3145728");
	result_clear(&res);
}

/* Any timeout is taken: one too large for the clock means no timeout, not an error. */
static void test_huge_timeout(void **state)
{
	struct fixture *f = *state;
	const char *path = server_start(f, "api.sock", SRV_JSON);
	struct result res = {0};

	assert_int_equal(start(f, path, "GET", "vmm.ping", NULL, UINT64_MAX, &res, NULL), 0);
	assert_true(run_until(f->event, &res.calls, 1));
	assert_true(res.ok);
	assert_string_equal(res.body, JSON_PING);
	result_clear(&res);
}

/* A request whose failure was found at start (a path too long) can still be cancelled before
 * the loop delivers it; and one cancelled while connected to a server that keeps the connection
 * never calls back. */
static void test_cancel_pending_failure(void **state)
{
	struct fixture *f = *state;
	const char *keep = server_start(f, "keep.sock", SRV_HANG);
	struct result a = {0}, b = {0};
	struct ch_request *ra = NULL, *rb = NULL;
	char path[300];

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	assert_int_equal(start(f, path, "GET", "vmm.ping", NULL, 100, &a, &ra), 0);
	ch_request_cancel(ra);
	assert_int_equal(start(f, keep, "GET", "vm.info", NULL, 100, &b, &rb), 0);
	run_for(f->event, 20);
	ch_request_cancel(rb);
	run_for(f->event, 200);
	assert_int_equal(a.calls + b.calls, 0);
}

/* The message of a failed answer (ch_reply_message, which both transports use), on bodies
 * that are not NUL-terminated (the buffers below hold no terminator after len). */
static void expect_message(const char *body, size_t len, long status, const char *want)
{
	char *copy = malloc(len ? len : 1), *msg;

	assert_non_null(copy);
	memcpy(copy, body, len);
	msg = ch_reply_message(copy, len, status);
	assert_non_null(msg);
	assert_string_equal(msg, want);
	free(msg);
	free(copy);
}

#define EXPECT_MESSAGE(body, status, want) expect_message(body, sizeof(body) - 1, status, want)

static void test_reply_message(void **state _unused_)
{
	EXPECT_MESSAGE("[\"Error from API\",\"The VM could not be created\"]", 500,
		       "Error from API: The VM could not be created");
	EXPECT_MESSAGE("[\"one\"] trailing", 500, "one");
	EXPECT_MESSAGE("  oops: broken\r\n", 500, "oops: broken");
	EXPECT_MESSAGE(" \t\r\n", 503, "HTTP 503");
	EXPECT_MESSAGE("", 404, "HTTP 404");
	/* not an array of strings: the body as it is */
	EXPECT_MESSAGE("[1,\"x\"]", 500, "[1,\"x\"]");
	EXPECT_MESSAGE("[]", 500, "[]");
	EXPECT_MESSAGE("{\"error\":\"x\"}", 500, "{\"error\":\"x\"}");
	/* no words in the array: the body says more than nothing */
	EXPECT_MESSAGE("[\"\"]", 500, "[\"\"]");
	/* a NUL does not end the message (it used to cut it there): '?' for it, as for bad UTF-8 */
	EXPECT_MESSAGE("VM is gone\0 (and more)", 500, "VM is gone? (and more)");
	EXPECT_MESSAGE("[\"bad\\u0000name\"]", 500, "bad?name");
	EXPECT_MESSAGE("caf\xc3\xa9 \xff\xc3", 500, "caf\xc3\xa9 ??");
	EXPECT_MESSAGE("[\"caf\\u00e9\",\"\xc0\xaf\"]", 500, "caf\xc3\xa9: ??");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		/* first: the first request of the process */
		cmocka_unit_test_setup_teardown(test_first_request_maps_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_content, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_array_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_found_404, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_text_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_empty_500, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_big_stream, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exact_max, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_request_as_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reentrant_start_cancel, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reentrant_free, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalid_args, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_with_pending, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_fd_leak, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_holds_no_fds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keep_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_request, setup, teardown),
		cmocka_unit_test_setup_teardown(test_huge_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_pending_failure, setup, teardown),
		cmocka_unit_test(test_reply_message),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
