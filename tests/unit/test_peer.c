/* Unit tests for peer.c against real sockets: Unix socket credentials (socketpair and a client
 * forked under another uid/gid/groups), loopback TCP owners found through sock_diag (IPv4, IPv6,
 * v4-mapped), refusal of non-loopback and closed clients, and the peer_allowed truth table.
 * Cases that drop privileges in a child need root and are skipped otherwise. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/peer.h"
#include "common/macro.h"

#define NOBODY 65534
#define EXTRA_GROUP 12345

/* How a forked client connects: as whom, to where, and whether it closes at once. */
struct client_spec {
	bool drop;           /* become uid/gid NOBODY with groups below before socket() */
	const gid_t *groups; /* supplementary groups after the drop */
	size_t n_groups;
	int family; /* family of the client socket */
	const struct sockaddr *addr;
	socklen_t addr_len;
	bool close_early; /* close the socket and exit right after connect */
};

struct client {
	pid_t pid;
	int done; /* write end: closing it lets the child exit */
};

static bool is_root(void)
{
	return geteuid() == 0;
}

static bool has_group(const struct peer_cred *c, gid_t g)
{
	for (int i = 0; i < c->n_groups; i++)
		if (c->groups[i] == g)
			return true;
	return false;
}

/* The primary gid the user database gives uid, or (gid_t)-1 if uid has no entry. */
static gid_t db_primary_gid(uid_t uid)
{
	struct passwd *pw = getpwuid(uid);

	return pw ? pw->pw_gid : (gid_t)-1;
}

static int client_run(const struct client_spec *s)
{
	int fd;

	if (s->drop) {
		if (setgroups(s->n_groups, s->groups) < 0 || setgid(NOBODY) < 0 ||
		    setuid(NOBODY) < 0)
			return errno;
	}
	fd = socket(s->family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	if (connect(fd, s->addr, s->addr_len) < 0)
		return errno;
	if (s->close_early)
		close(fd);
	return 0;
}

/* Forks a client that connects per s and reports success before the parent goes on, so that the
 * connection is waiting in the listener's queue when this returns. */
static struct client client_start(const struct client_spec *s)
{
	int ready[2], done[2], status = -1;
	struct client c;

	assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
	assert_int_equal(pipe2(done, O_CLOEXEC), 0);
	c.pid = fork();
	assert_true(c.pid >= 0);
	if (c.pid == 0) {
		char b;

		close(ready[0]);
		close(done[1]);
		status = client_run(s);
		if (write(ready[1], &status, sizeof(status)) != sizeof(status))
			_exit(2);
		if (status != 0 || s->close_early)
			_exit(status ? 1 : 0);
		while (read(done[0], &b, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(done[0]);
	assert_int_equal(read(ready[0], &status, sizeof(status)), sizeof(status));
	close(ready[0]);
	assert_int_equal(status, 0);
	c.done = done[1];
	return c;
}

static void client_finish(struct client *c)
{
	int status;

	if (c->done >= 0)
		close(c->done);
	c->done = -1;
	assert_int_equal(waitpid(c->pid, &status, 0), c->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A listening TCP socket on addr:0 (family from the text); the bound address in *ret. Returns the
 * fd, or -errno (for callers that skip when the family is unavailable). */
static int tcp_listen(int family, const char *addr, struct sockaddr_storage *ret,
		      socklen_t *ret_len)
{
	struct sockaddr_storage sa = {};
	socklen_t len;
	int fd, zero = 0;

	if (family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&sa;

		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &in->sin_addr), 1);
		len = sizeof(*in);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;

		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
		len = sizeof(*in6);
	}
	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (family == AF_INET6)
		assert_int_equal(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)), 0);
	if (bind(fd, (struct sockaddr *)&sa, len) < 0 || listen(fd, 8) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	*ret_len = sizeof(*ret);
	assert_int_equal(getsockname(fd, (struct sockaddr *)ret, ret_len), 0);
	return fd;
}

static int accept_one(int lfd)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	assert_true(fd >= 0);
	return fd;
}

/* --- Unix sockets --- */

static void test_unix_socketpair(void **state)
{
	_cleanup_close_ int a = -1, b = -1;
	gid_t mine[64];
	struct peer_cred c;
	int sv[2], n;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a = sv[0];
	b = sv[1];
	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(peer_cred_unix(a, &c), 0);
	assert_int_equal(c.uid, getuid());
	assert_int_equal(c.gid, getgid());
	assert_int_equal(c.pid, getpid());

	n = getgroups((int)ELEMENTSOF(mine), mine);
	if (n >= 0) {
		assert_int_equal(c.n_groups, n);
		for (int i = 0; i < n; i++)
			assert_true(has_group(&c, mine[i]));
	}
}

/* A listener on an autobound abstract address: no file system permissions get in the way of a
 * client running as nobody. */
static int unix_listen(struct sockaddr_un *ret, socklen_t *ret_len)
{
	sa_family_t fam = AF_UNIX;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&fam, sizeof(fam)), 0);
	assert_int_equal(listen(fd, 8), 0);
	*ret_len = sizeof(*ret);
	assert_int_equal(getsockname(fd, (struct sockaddr *)ret, ret_len), 0);
	assert_true(*ret_len > sizeof(sa_family_t));
	return fd;
}

static void test_unix_dropped_child(void **state)
{
	static const gid_t groups[] = {EXTRA_GROUP};
	_cleanup_close_ int lfd = -1, fd = -1;
	struct sockaddr_un sa;
	socklen_t len;
	struct peer_cred c;
	struct client cl;

	(void)state;
	if (!is_root())
		skip();
	lfd = unix_listen(&sa, &len);
	cl = client_start(&(struct client_spec){.drop = true,
						.groups = groups,
						.n_groups = ELEMENTSOF(groups),
						.family = AF_UNIX,
						.addr = (struct sockaddr *)&sa,
						.addr_len = len});
	fd = accept_one(lfd);
	assert_int_equal(peer_cred_unix(fd, &c), 0);
	client_finish(&cl);

	assert_int_equal(c.uid, NOBODY);
	assert_int_equal(c.gid, NOBODY);
	assert_int_equal(c.pid, cl.pid);
	assert_int_equal(c.n_groups, 1);
	assert_int_equal(c.groups[0], EXTRA_GROUP);
	assert_true(peer_allowed(&c, EXTRA_GROUP));
	assert_true(peer_allowed(&c, NOBODY));
	assert_false(peer_allowed(&c, 0));
	assert_false(peer_allowed(&c, (gid_t)-1));
}

/* More supplementary groups than struct peer_cred holds: the first 64 (the kernel sorts them). */
static void test_unix_many_groups(void **state)
{
	_cleanup_close_ int lfd = -1, fd = -1;
	gid_t groups[100];
	struct sockaddr_un sa;
	socklen_t len;
	struct peer_cred c;
	struct client cl;

	(void)state;
	if (!is_root())
		skip();
	for (size_t i = 0; i < ELEMENTSOF(groups); i++)
		groups[i] = 20000 + (gid_t)i;
	lfd = unix_listen(&sa, &len);
	cl = client_start(&(struct client_spec){.drop = true,
						.groups = groups,
						.n_groups = ELEMENTSOF(groups),
						.family = AF_UNIX,
						.addr = (struct sockaddr *)&sa,
						.addr_len = len});
	fd = accept_one(lfd);
	assert_int_equal(peer_cred_unix(fd, &c), 0);
	client_finish(&cl);

	assert_int_equal(c.uid, NOBODY);
	assert_int_equal(c.n_groups, 64);
	for (int i = 0; i < 64; i++)
		assert_int_equal(c.groups[i], 20000 + i);
	assert_true(peer_allowed(&c, 20063));
	assert_false(peer_allowed(&c, 20064));
}

static void test_wrong_family(void **state)
{
	_cleanup_close_ int a = -1, b = -1, lfd = -1, cfd = -1, sfd = -1;
	struct sockaddr_storage sa;
	socklen_t len;
	struct peer_cred c;
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	a = sv[0];
	b = sv[1];
	assert_int_equal(peer_cred_tcp(a, &c), -EAFNOSUPPORT);

	lfd = tcp_listen(AF_INET, "127.0.0.1", &sa, &len);
	assert_true(lfd >= 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, len), 0);
	sfd = accept_one(lfd);
	assert_int_equal(peer_cred_unix(sfd, &c), -EAFNOSUPPORT);
}

/* --- loopback TCP --- */

/* Listens on addr, connects from this process, checks the owner is us. */
static void tcp_self(int family, const char *addr)
{
	_cleanup_close_ int lfd = -1, cfd = -1, sfd = -1;
	struct sockaddr_storage sa;
	socklen_t len;
	struct peer_cred c;
	gid_t pg = db_primary_gid(getuid());

	lfd = tcp_listen(family, addr, &sa, &len);
	if (lfd == -EAFNOSUPPORT || lfd == -EADDRNOTAVAIL)
		skip();
	assert_true(lfd >= 0);
	cfd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(cfd >= 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, len), 0);
	sfd = accept_one(lfd);

	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(peer_cred_tcp(sfd, &c), 0);
	assert_int_equal(c.uid, getuid());
	assert_int_equal(c.gid, (gid_t)-1);
	assert_int_equal(c.pid, 0);
	assert_true(c.n_groups >= 0 && c.n_groups <= 64);
	if (pg != (gid_t)-1)
		assert_true(has_group(&c, pg));
	else
		assert_int_equal(c.n_groups, 0);
}

/* Listens on addr, connects from a child running as nobody (from a client_family socket). */
static void tcp_dropped_child(int family, const char *addr, int client_family)
{
	static const gid_t groups[] = {EXTRA_GROUP};
	_cleanup_close_ int lfd = -1, sfd = -1;
	struct sockaddr_storage sa;
	struct sockaddr_in sin;
	socklen_t len;
	struct peer_cred c;
	struct client cl;
	gid_t pg = db_primary_gid(NOBODY);
	int r;

	if (!is_root())
		skip();
	lfd = tcp_listen(family, addr, &sa, &len);
	if (lfd == -EAFNOSUPPORT || lfd == -EADDRNOTAVAIL)
		skip();
	assert_true(lfd >= 0);
	if (client_family == AF_INET && family == AF_INET6) {
		/* an IPv4 client of a dual-stack listener bound to ::ffff:127.0.0.1 */
		sin = (struct sockaddr_in){.sin_family = AF_INET,
					   .sin_port = ((struct sockaddr_in6 *)&sa)->sin6_port,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		memset(&sa, 0, sizeof(sa));
		memcpy(&sa, &sin, sizeof(sin));
		len = sizeof(sin);
	}
	cl = client_start(&(struct client_spec){.drop = true,
						.groups = groups,
						.n_groups = ELEMENTSOF(groups),
						.family = client_family,
						.addr = (struct sockaddr *)&sa,
						.addr_len = len});
	sfd = accept_one(lfd);
	r = peer_cred_tcp(sfd, &c);
	client_finish(&cl);

	assert_int_equal(r, 0);
	assert_int_equal(c.uid, NOBODY);
	assert_int_equal(c.gid, (gid_t)-1);
	assert_int_equal(c.pid, 0);
	/* groups come from the user database, not from the process */
	assert_false(has_group(&c, EXTRA_GROUP));
	if (pg != (gid_t)-1)
		assert_true(has_group(&c, pg));
	assert_false(peer_allowed(&c, 0));
	assert_false(peer_allowed(&c, EXTRA_GROUP));
}

static void test_tcp4_self(void **state)
{
	(void)state;
	tcp_self(AF_INET, "127.0.0.1");
}

static void test_tcp4_self_other_loopback(void **state)
{
	(void)state;
	tcp_self(AF_INET, "127.0.0.2");
}

static void test_tcp4_dropped_child(void **state)
{
	(void)state;
	tcp_dropped_child(AF_INET, "127.0.0.1", AF_INET);
}

static void test_tcp6_self(void **state)
{
	(void)state;
	tcp_self(AF_INET6, "::1");
}

static void test_tcp6_dropped_child(void **state)
{
	(void)state;
	tcp_dropped_child(AF_INET6, "::1", AF_INET6);
}

static void test_tcp6_mapped_dropped_child(void **state)
{
	(void)state;
	tcp_dropped_child(AF_INET6, "::ffff:127.0.0.1", AF_INET);
}

/* A client that connected and closed at once leaves an orphaned or time-wait socket, which
 * sock_diag reports as uid 0: that must not be taken as the peer. */
static void test_tcp_closed_client(void **state)
{
	_cleanup_close_ int lfd = -1, sfd = -1;
	struct sockaddr_storage sa;
	socklen_t len;
	struct peer_cred c = {};
	struct client cl;

	(void)state;
	lfd = tcp_listen(AF_INET, "127.0.0.1", &sa, &len);
	assert_true(lfd >= 0);
	cl = client_start(&(struct client_spec){.drop = is_root(),
						.family = AF_INET,
						.addr = (struct sockaddr *)&sa,
						.addr_len = len,
						.close_early = true});
	client_finish(&cl);
	sfd = accept_one(lfd);
	assert_int_equal(peer_cred_tcp(sfd, &c), -ENOENT);
	assert_int_equal(c.uid, 0); /* untouched on failure */
}

/* A connection between two non-loopback addresses of this host is refused before any lookup. */
static void test_tcp_not_loopback(void **state)
{
	_cleanup_close_ int lfd = -1, cfd = -1, sfd = -1;
	struct sockaddr_storage sa;
	socklen_t len;
	struct ifaddrs *ifa = NULL;
	char host[INET_ADDRSTRLEN] = "";
	struct peer_cred c;

	(void)state;
	assert_int_equal(getifaddrs(&ifa), 0);
	for (struct ifaddrs *i = ifa; i; i = i->ifa_next) {
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
		    (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, host,
			  sizeof(host));
		break;
	}
	freeifaddrs(ifa);
	if (!host[0])
		skip();

	lfd = tcp_listen(AF_INET, host, &sa, &len);
	assert_true(lfd >= 0);
	cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_int_equal(connect(cfd, (struct sockaddr *)&sa, len), 0);
	sfd = accept_one(lfd);
	assert_int_equal(peer_cred_tcp(sfd, &c), -ENOENT);
}

/* --- the access decision --- */

static void test_allowed(void **state)
{
	struct peer_cred root = {.uid = 0, .gid = 0};
	struct peer_cred member_sup = {
		.uid = 1000, .gid = 1000, .groups = {27, 500}, .n_groups = 2};
	struct peer_cred member_gid = {.uid = 1001, .gid = 500};
	struct peer_cred outsider = {.uid = 1002, .gid = 1002, .groups = {27, 100}, .n_groups = 2};
	struct peer_cred unknown_gid = {.uid = 1003, .gid = (gid_t)-1};
	/* n_groups bounds the search: a stale entry past it does not count */
	struct peer_cred stale = {.uid = 1004, .gid = 1004, .groups = {27, 500}, .n_groups = 1};

	(void)state;
	assert_true(peer_allowed(&root, 500));
	assert_true(peer_allowed(&member_sup, 500));
	assert_true(peer_allowed(&member_gid, 500));
	assert_false(peer_allowed(&outsider, 500));
	assert_false(peer_allowed(&unknown_gid, 500));
	assert_false(peer_allowed(&stale, 500));

	/* root-only mode */
	assert_true(peer_allowed(&root, (gid_t)-1));
	assert_false(peer_allowed(&member_sup, (gid_t)-1));
	assert_false(peer_allowed(&member_gid, (gid_t)-1));
	assert_false(peer_allowed(&unknown_gid, (gid_t)-1));

	assert_false(peer_allowed(NULL, 500));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_socketpair),
		cmocka_unit_test(test_unix_dropped_child),
		cmocka_unit_test(test_unix_many_groups),
		cmocka_unit_test(test_wrong_family),
		cmocka_unit_test(test_tcp4_self),
		cmocka_unit_test(test_tcp4_self_other_loopback),
		cmocka_unit_test(test_tcp4_dropped_child),
		cmocka_unit_test(test_tcp6_self),
		cmocka_unit_test(test_tcp6_dropped_child),
		cmocka_unit_test(test_tcp6_mapped_dropped_child),
		cmocka_unit_test(test_tcp_closed_client),
		cmocka_unit_test(test_tcp_not_loopback),
		cmocka_unit_test(test_allowed),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
