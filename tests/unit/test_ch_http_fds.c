/* Unit tests for requests that pass fds to the hypervisor (ch_http_fds.c through
 * ch_request_start_fds and ch_vm_add_net_fds): against a fake server in a child process that
 * reads the request with recvmsg, as cloud-hypervisor's micro_http does, uses the fds it got
 * and answers like cloud-hypervisor (keep-alive: the client must stop at Content-Length).
 * And the framing of the answers itself (ch_http_parse_answer), on crafted bytes. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/macro.h"
#include "hypervisor/ch_client.h"
#include "hypervisor/ch_http_parse.h"
#include "hypervisor/ch_vm.h"

enum scenario {
	ANSWER_200,  /* checks the request, writes "ok" to every fd, answers a PciDeviceInfo */
	ANSWER_500,  /* cloud-hypervisor's JSON error array */
	NEVER,       /* accepts and says nothing */
	NOT_HTTP,    /* garbage, then EOF */
	BODY_TO_EOF, /* 200 without Content-Length, body until close */
	ANSWER_BIG,  /* 200 with a body of CH_REPLY_MAX bytes, the most the client takes */
	ANSWER_OVER, /* 200 with a body one byte over, without Content-Length, until close */
};

#define REPLY_MAX (1024 * 1024) /* ch_client.c's CH_REPLY_MAX */

static const char BODY_200[] = "{\"id\":\"net0\",\"bdf\":\"0000:00:05.0\"}";
static const char BODY_500[] = "[\"Error from API\",\"The network device could not be added\"]";
static const char NET_JSON[] = "{\"id\":\"net0\",\"mac\":\"52:54:00:00:00:01\"}";

static char sock_path[108];
static pid_t server;

/* The request as the server saw it: 1 when line, headers, body and fds were as expected. */
static int check_request(const char *req, size_t len, int n_fds)
{
	char want[256];

	snprintf(want, sizeof(want),
		 "PUT /api/v1/vm.add-net HTTP/1.1\r\nHost: localhost\r\n"
		 "Accept: application/json\r\nContent-Type: application/json\r\n"
		 "Content-Length: %zu\r\n\r\n%s",
		 strlen(NET_JSON), NET_JSON);
	return len == strlen(want) && memcmp(req, want, len) == 0 && n_fds == 2;
}

static _Noreturn void serve(int lfd, enum scenario sc)
{
	char req[4096], ctl[CMSG_SPACE(sizeof(int) * 8)];
	int fds[8], n_fds = 0;
	size_t len = 0;
	int fd = accept(lfd, NULL, NULL);

	if (fd < 0)
		_exit(1);
	/* everything the client sends, with the fds of any part of it */
	while (len < sizeof(req) - 1) {
		struct iovec iov = {req + len, sizeof(req) - 1 - len};
		struct msghdr msg = {.msg_iov = &iov,
				     .msg_iovlen = 1,
				     .msg_control = ctl,
				     .msg_controllen = sizeof(ctl)};
		ssize_t n = recvmsg(fd, &msg, 0);

		if (n <= 0)
			break;
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
			if (c->cmsg_type == SCM_RIGHTS) {
				size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);

				memcpy(fds + n_fds, CMSG_DATA(c), k * sizeof(int));
				n_fds += (int)k;
			}
		len += (size_t)n;
		req[len] = '\0';
		if (strstr(req, "\r\n\r\n") && strstr(req, NET_JSON))
			break;
	}
	if (sc == ANSWER_200) {
		char head[256];
		int ok = check_request(req, len, n_fds);

		for (int i = 0; i < n_fds; i++)
			(void)!write(fds[i], "ok", 2);
		snprintf(
			head, sizeof(head),
			"HTTP/1.1 %d \r\nServer: Cloud Hypervisor API\r\nConnection: keep-alive\r\n"
			"Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			ok ? 200 : 400, strlen(BODY_200), BODY_200);
		(void)!write(fd, head, strlen(head));
		pause(); /* keep-alive: never closes */
	} else if (sc == ANSWER_500) {
		char head[256];

		snprintf(head, sizeof(head),
			 "HTTP/1.1 500 \r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 strlen(BODY_500), BODY_500);
		(void)!write(fd, head, strlen(head));
		pause();
	} else if (sc == ANSWER_BIG || sc == ANSWER_OVER) {
		size_t n = sc == ANSWER_BIG ? REPLY_MAX : REPLY_MAX + 1;
		char *big = malloc(n), head[128];

		if (!big)
			_exit(1);
		memset(big, 'x', n);
		if (sc == ANSWER_BIG)
			snprintf(head, sizeof(head), "HTTP/1.1 200 \r\nContent-Length: %zu\r\n\r\n",
				 n);
		else
			snprintf(head, sizeof(head), "HTTP/1.1 200 \r\nConnection: close\r\n\r\n");
		(void)!write(fd, head, strlen(head));
		for (size_t off = 0; off < n;) {
			ssize_t k = write(fd, big + off, n - off);

			if (k <= 0)
				_exit(0);
			off += (size_t)k;
		}
		if (sc == ANSWER_BIG)
			pause();
	} else if (sc == NEVER) {
		pause();
	} else if (sc == NOT_HTTP) {
		(void)!write(fd, "SSH-2.0-nope\r\n\r\n", 16);
	} else {
		static const char a[] = "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nplain body";

		(void)!write(fd, a, sizeof(a) - 1);
	}
	_exit(0);
}

static void server_start(enum scenario sc)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sock_path, sizeof(sock_path), "/tmp/test_ch_http_fds.%d.sock", (int)getpid());
	unlink(sock_path);
	memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
	assert_true(lfd >= 0);
	assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(lfd, 4), 0);
	server = fork();
	assert_true(server >= 0);
	if (server == 0)
		serve(lfd, sc);
	close(lfd);
}

static int teardown(void **state _unused_)
{
	if (server > 0) {
		kill(server, SIGKILL);
		waitpid(server, NULL, 0);
		server = 0;
	}
	unlink(sock_path);
	return 0;
}

struct result {
	bool done;
	int error;
	long status;
	char body[256], message[256];
	size_t body_len;
};

static void on_reply(void *userdata, const struct ch_reply *reply)
{
	struct result *res = userdata;

	res->done = true;
	res->error = reply->error;
	res->status = reply->http_status;
	snprintf(res->body, sizeof(res->body), "%s", reply->body);
	res->body_len = strlen(reply->body);
	snprintf(res->message, sizeof(res->message), "%s", reply->message);
}

/* Sends NET_JSON with the write ends of two pipes; reads what the server wrote to them. */
static void add_net(struct result *res, uint64_t timeout_ms, char got[2][8])
{
	sd_event *e = NULL;
	struct ch_client *c = NULL;
	int p[2][2], fds[2];

	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ch_client_new(e, &c), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pipe2(p[i], O_CLOEXEC | O_NONBLOCK), 0);
		fds[i] = p[i][1];
	}
	if (timeout_ms)
		assert_int_equal(ch_request_start_fds(c, sock_path, "PUT", "vm.add-net", NET_JSON,
						      fds, 2, timeout_ms, on_reply, res, NULL),
				 0);
	else
		assert_int_equal(
			ch_vm_add_net_fds(c, sock_path, NET_JSON, fds, 2, on_reply, res, NULL), 0);
	assert_false(res->done); /* never from inside the call */
	for (int i = 0; i < 2; i++)
		close(p[i][1]); /* the client holds its own copies until sent */
	while (!res->done)
		assert_true(sd_event_run(e, 5 * 1000000ULL) >= 0);
	for (int i = 0; i < 2; i++) {
		ssize_t n = read(p[i][0], got[i], 7);

		got[i][n > 0 ? n : 0] = '\0';
		close(p[i][0]);
	}
	ch_client_free(c);
	sd_event_unref(e);
}

static void test_fds_reach_the_hypervisor(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	server_start(ANSWER_200);
	add_net(&res, 0, got);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200); /* 400: the request was not as cloud-hypervisor wants */
	assert_string_equal(res.body, BODY_200);
	assert_string_equal(res.message, "");
	assert_string_equal(got[0], "ok");
	assert_string_equal(got[1], "ok");
}

static void test_error_array(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	server_start(ANSWER_500);
	add_net(&res, 0, got);
	assert_int_equal(res.status, 500);
	assert_string_equal(res.message, "Error from API: The network device could not be added");
}

static void test_timeout(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	server_start(NEVER);
	add_net(&res, 200, got);
	assert_int_equal(res.error, -ETIMEDOUT);
	assert_int_equal(res.status, 0);
	assert_non_null(strstr(res.message, sock_path));
}

static void test_not_http(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	server_start(NOT_HTTP);
	add_net(&res, 2000, got);
	assert_int_equal(res.error, -EBADMSG);
}

static void test_body_to_eof(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	server_start(BODY_TO_EOF);
	add_net(&res, 2000, got);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	assert_string_equal(res.body, "plain body");
}

/* A body of exactly the cap arrives whole (the buffer used to double past its bound and refuse
 * answers from about 1,044,000 bytes on); one byte more is refused. */
static void test_body_at_cap(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	server_start(ANSWER_BIG);
	add_net(&res, 5000, got);
	assert_int_equal(res.error, 0);
	assert_int_equal(res.status, 200);
	assert_int_equal(res.body_len, REPLY_MAX);
}

static void test_body_over_cap(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	server_start(ANSWER_OVER);
	add_net(&res, 5000, got);
	assert_int_equal(res.error, -EFBIG);
}

static void test_missing_socket(void **state _unused_)
{
	struct result res = {0};
	char got[2][8];

	snprintf(sock_path, sizeof(sock_path), "/tmp/test_ch_http_fds.none.%d", (int)getpid());
	add_net(&res, 2000, got);
	assert_int_equal(res.error, -ENOENT);
	assert_non_null(strstr(res.message, "No such file"));
}

static void test_bad_arguments(void **state _unused_)
{
	sd_event *e = NULL;
	struct ch_client *c = NULL;
	int fds[17] = {0};

	assert_int_equal(sd_event_new(&e), 0);
	assert_int_equal(ch_client_new(e, &c), 0);
	assert_int_equal(ch_request_start_fds(c, "/x", "GET", "vm.info", NULL, NULL, 0, 10,
					      on_reply, NULL, NULL),
			 -EINVAL);
	assert_int_equal(ch_request_start_fds(c, "/x", "PUT", "vm.add-net", "{}", fds, 17, 10,
					      on_reply, NULL, NULL),
			 -EINVAL);
	assert_int_equal(ch_request_start_fds(c, "/x", "PUT", "../x y", "{}", fds, 1, 10, on_reply,
					      NULL, NULL),
			 -EINVAL);
	assert_int_equal(ch_vm_add_net_fds(c, "/x", "{}", fds, 0, on_reply, NULL, NULL), -EINVAL);
	ch_client_free(c);
	sd_event_unref(e);
}

struct parsed {
	int r;
	long status;
	char body[64];
};

/* ch_http_parse_answer on s (not NUL-terminated), whole and then fed byte by byte, as reads
 * may split it: both must agree. */
static struct parsed parse_n(const char *s, size_t len, bool eof, size_t max_body)
{
	struct parsed p = {0}, q = {0};
	char *buf = malloc(len ? len : 1);
	size_t off = 0, blen = 0;

	assert_non_null(buf);
	memcpy(buf, s, len);
	p.r = ch_http_parse_answer(buf, len, eof, max_body, &p.status, &off, &blen);
	if (p.r == 1) {
		assert_true(blen < sizeof(p.body));
		memcpy(p.body, buf + off, blen);
	}
	for (size_t k = 1; k <= len; k++) {
		q.r = ch_http_parse_answer(buf, k, k == len && eof, max_body, &q.status, &off,
					   &blen);
		if (q.r != 0)
			break;
	}
	if (len == 0)
		q.r = ch_http_parse_answer(buf, 0, eof, max_body, &q.status, &off, &blen);
	assert_int_equal(q.r, p.r);
	if (p.r == 1) {
		assert_int_equal(q.status, p.status);
		assert_memory_equal(buf + off, p.body, blen);
	}
	free(buf);
	return p;
}

#define PARSE(lit, eof, max) parse_n(lit, sizeof(lit) - 1, eof, max)

static void expect_answer(struct parsed p, long status, const char *body)
{
	assert_int_equal(p.r, 1);
	assert_int_equal(p.status, status);
	assert_string_equal(p.body, body);
}

static void test_parse_answer(void **state _unused_)
{
	/* as cloud-hypervisor answers */
	expect_answer(PARSE("HTTP/1.1 204 \r\nServer: Cloud Hypervisor API\r\n\r\n", false, 64),
		      204, "");
	expect_answer(PARSE("HTTP/1.1 200 \r\nContent-Length: 2\r\n\r\n{}", false, 64), 200, "{}");
	expect_answer(
		PARSE("HTTP/1.0 500 Internal\r\ncontent-length:\t3 \r\n\r\nabcdef", false, 64), 500,
		"abc");
	expect_answer(PARSE("HTTP/1.1 200 OK\r\n\r\nto eof", true, 64), 200, "to eof");
	assert_int_equal(PARSE("HTTP/1.1 200 OK\r\n\r\nto eof", false, 64).r, 0);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nContent-Length: 5\r\n\r\nab", false, 64).r, 0);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nContent-Length: 5\r\n\r\nab", true, 64).r,
			 -EBADMSG);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nContent-Length: 5\r\n", false, 64).r, 0);
	assert_int_equal(PARSE("", false, 64).r, 0);
	assert_int_equal(PARSE("", true, 64).r, -EBADMSG);
	assert_int_equal(PARSE("SSH-2.0-nope\r\n", false, 64).r, -EBADMSG); /* at once */
	/* the cap, with and without Content-Length */
	expect_answer(PARSE("HTTP/1.1 200 \r\nContent-Length: 4\r\n\r\nabcd", false, 4), 200,
		      "abcd");
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nContent-Length: 5\r\n\r\n", false, 4).r, -EFBIG);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\n\r\nabcde", false, 4).r, -EFBIG);
	assert_int_equal(
		PARSE("HTTP/1.1 200 \r\nContent-Length: 99999999999999999999999\r\n\r\n", false, 4)
			.r,
		-EFBIG);
	/* what used to be misread (each has its file in tests/fuzz/corpus/ch_http/repro-*) */
	expect_answer(PARSE("HTTP/1.1 204 \r\n\r\nHTTP/1.1 200 \r\n\r\n", false, 64), 204, "");
	assert_int_equal(PARSE("HTTP/1.0 \r\n\r\n404 \r\n\r\n", true, 64).r, -EBADMSG);
	assert_int_equal(PARSE("HTTP/1.1 2000\r\n\r\n{}", true, 64).r, -EBADMSG);
	assert_int_equal(PARSE("HTTP/1.1 100 Continue\r\n\r\n", false, 64).r, -EBADMSG);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nContent-Length:\r\n5\r\n\r\nhello", false, 64).r,
			 -EBADMSG);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nContent-Length: +5\r\n\r\nhello", false, 64).r,
			 -EBADMSG);
	assert_int_equal(
		PARSE("HTTP/1.1 200 \r\nContent-Length: 5\r\nContent-Length: 2\r\n\r\nhello", false,
		      64)
			.r,
		-EBADMSG);
	assert_int_equal(
		PARSE("HTTP/1.1 200 \r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", true, 64).r,
		-EBADMSG);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nX: a\0b\r\n\r\n", true, 64).r, -EBADMSG);
	assert_int_equal(PARSE("HTTP/1.1 200 \r\nX: a\0", false, 64).r, -EBADMSG); /* at once */
	/* a NUL in the body is the body's */
	struct parsed p = PARSE("HTTP/1.1 500 \r\nContent-Length: 3\r\n\r\na\0b", false, 64);
	assert_int_equal(p.r, 1);
	assert_memory_equal(p.body, "a\0b", 3);
}

/* Header fields over CH_HTTP_HEADERS_MAX are refused, whether the blank line has arrived yet or
 * not (it used to depend on where the reads split). */
static void test_parse_headers_max(void **state _unused_)
{
	size_t n = CH_HTTP_HEADERS_MAX + 100, off, len;
	char *a = malloc(n);
	long status;

	assert_non_null(a);
	memset(a, 'p', n);
	memcpy(a, "HTTP/1.1 200 \r\nX-Pad: ", 22);
	memcpy(a + n - 4, "\r\n\r\n", 4);
	assert_int_equal(ch_http_parse_answer(a, n, false, 64, &status, &off, &len), -EBADMSG);
	assert_int_equal(
		ch_http_parse_answer(a, CH_HTTP_HEADERS_MAX, false, 64, &status, &off, &len),
		-EBADMSG);
	assert_int_equal(
		ch_http_parse_answer(a, CH_HTTP_HEADERS_MAX - 1, false, 64, &status, &off, &len),
		0);
	/* exactly the most */
	memcpy(a + CH_HTTP_HEADERS_MAX - 4, "\r\n\r\n", 4);
	assert_int_equal(
		ch_http_parse_answer(a, CH_HTTP_HEADERS_MAX, true, 64, &status, &off, &len), 1);
	assert_int_equal(off, CH_HTTP_HEADERS_MAX);
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fds_reach_the_hypervisor, teardown),
		cmocka_unit_test_teardown(test_error_array, teardown),
		cmocka_unit_test_teardown(test_timeout, teardown),
		cmocka_unit_test_teardown(test_not_http, teardown),
		cmocka_unit_test_teardown(test_body_to_eof, teardown),
		cmocka_unit_test_teardown(test_body_at_cap, teardown),
		cmocka_unit_test_teardown(test_body_over_cap, teardown),
		cmocka_unit_test_teardown(test_missing_socket, teardown),
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_parse_answer),
		cmocka_unit_test(test_parse_headers_max),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
