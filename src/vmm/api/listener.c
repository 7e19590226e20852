/* See listener.h. */
#include "api/listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "api/peer.h"
#include "common/log.h"

struct listener {
	char *address;
	char *unix_path; /* NULL for TCP, and for a socket of systemd's (it is not ours to unlink) */
	int family;      /* AF_UNIX, AF_INET, AF_INET6 */
	int fd;
	sd_event_source *source;
	sd_event_source *resume; /* while accepting is paused: out of file descriptors */
	uint64_t pause_us;       /* the current pause, doubled while fds stay out */
	struct api_server *api;
	gid_t access_gid;
};

#define PAUSE_MIN_US (50 * 1000)
#define PAUSE_MAX_US (1000 * 1000)

static int on_resume(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct listener *l = userdata;

	(void)s, (void)usec;
	l->resume = sd_event_source_unref(l->resume);
	(void)sd_event_source_set_enabled(l->source, SD_EVENT_ON);
	return 0;
}

/* accept() found no free fd (EMFILE/ENFILE): the connection waits in the backlog, and a
 * level-triggered listener would wake again at once and spin; so stop listening for a while
 * (50 ms, doubling to 1 s while it lasts) and try again. */
static void pause_accepting(struct listener *l, int e)
{
	if (l->resume)
		return;
	l->pause_us = !l->pause_us                     ? PAUSE_MIN_US
		      : l->pause_us * 2 > PAUSE_MAX_US ? PAUSE_MAX_US
						       : l->pause_us * 2;
	if (l->pause_us == PAUSE_MIN_US)
		log_warning("listen %s: out of file descriptors (%s); pausing new connections "
			    "until some are free",
			    l->address, strerrorname_np(e));
	if (sd_event_add_time_relative(sd_event_source_get_event(l->source), &l->resume,
				       CLOCK_MONOTONIC, l->pause_us, 0, on_resume, l) < 0) {
		l->resume = NULL;
		return; /* keep listening: better a busy loop than a dead listener */
	}
	(void)sd_event_source_set_enabled(l->source, SD_EVENT_OFF);
}

union sockaddr_any {
	struct sockaddr sa;
	struct sockaddr_un un;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
	struct sockaddr_storage ss;
};

/* Fills sa from addr; returns the sockaddr length or -EINVAL with a message. */
static int parse_address(const char *addr, union sockaddr_any *sa, struct mv_error *err)
{
	const char *path = NULL;
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port_s, *h = addr;
	char *end;
	unsigned long port;
	size_t hl;

	memset(sa, 0, sizeof(*sa));
	if (!strncmp(addr, "unix:", 5))
		path = addr + 5;
	else if (addr[0] == '/')
		path = addr;
	if (path) {
		if (path[0] != '/')
			return mv_err_invalid(
				err, "listen address '%s': the socket path must be absolute", addr);
		if (strlen(path) >= sizeof(sa->un.sun_path))
			return mv_err_invalid(err,
					      "listen address '%s': socket path too long (max %zu)",
					      addr, sizeof(sa->un.sun_path) - 1);
		sa->un.sun_family = AF_UNIX;
		memcpy(sa->un.sun_path, path, strlen(path) + 1);
		return (int)sizeof(sa->un);
	}

	colon = strrchr(addr, ':');
	if (!colon || colon == addr)
		return mv_err_invalid(
			err, "listen address '%s': expected unix:/path, HOST:PORT or [::1]:PORT",
			addr);
	port_s = colon + 1;
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (!*port_s || *end || errno || port == 0 || port > 65535)
		return mv_err_invalid(err, "listen address '%s': invalid port '%s'", addr, port_s);
	hl = (size_t)(colon - addr);
	if (addr[0] == '[') {
		if (hl < 2 || addr[hl - 1] != ']')
			return mv_err_invalid(err, "listen address '%s': unbalanced '['", addr);
		h++;
		hl -= 2;
	}
	if (hl >= sizeof(host))
		return mv_err_invalid(err, "listen address '%s': invalid host", addr);
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (streq(host, "localhost"))
		memcpy(host, "127.0.0.1", sizeof("127.0.0.1"));

	if (inet_pton(AF_INET, host, &sa->in.sin_addr) == 1) {
		sa->in.sin_family = AF_INET;
		sa->in.sin_port = htons((uint16_t)port);
		if ((ntohl(sa->in.sin_addr.s_addr) >> 24) != 127)
			goto not_loopback;
		return (int)sizeof(sa->in);
	}
	if (inet_pton(AF_INET6, host, &sa->in6.sin6_addr) == 1) {
		sa->in6.sin6_family = AF_INET6;
		sa->in6.sin6_port = htons((uint16_t)port);
		if (!IN6_IS_ADDR_LOOPBACK(&sa->in6.sin6_addr))
			goto not_loopback;
		return (int)sizeof(sa->in6);
	}
	return mv_err_invalid(err, "listen address '%s': '%s' is not an IP address or localhost",
			      addr, host);
not_loopback:
	return mv_err_invalid(
		err,
		"listen address '%s': not a loopback address; mvirt-vmm serves other hosts only "
		"once TLS is supported",
		addr);
}

int listener_check_address(const char *addr, struct mv_error *err)
{
	union sockaddr_any sa;
	int r = parse_address(addr, &sa, err);

	return r < 0 ? r : 0;
}

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct listener *l = userdata;

	(void)s;
	(void)revents;
	for (;;) {
		struct peer_cred cred;
		bool allowed;
		int cfd, r;

		cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (cfd >= 0 && l->pause_us) {
			log_info("listen %s: file descriptors are free again; accepting",
				 l->address);
			l->pause_us = 0;
		}
		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno == EMFILE || errno == ENFILE) {
				pause_accepting(l, errno);
				return 0;
			}
			if (errno != EAGAIN)
				log_warning_errno(errno, "listen %s: accept failed: %m",
						  l->address);
			return 0;
		}
		if (l->family == AF_UNIX) {
			r = peer_cred_unix(cfd, &cred);
		} else {
			int one = 1;
			(void)setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			r = peer_cred_tcp(cfd, &cred);
		}
		if (r < 0) {
			log_warning_errno(r, "listen %s: cannot identify the peer, denying: %m",
					  l->address);
			allowed = false;
		} else {
			allowed = peer_allowed(&cred, l->access_gid);
			if (!allowed)
				log_notice(
					"listen %s: uid %u is neither root nor in the access group: "
					"permission denied",
					l->address, (unsigned)cred.uid);
		}
		api_server_add_connection(l->api, cfd, allowed, r < 0 ? (uid_t)-1 : cred.uid);
	}
}

/* Returns 0 if nothing serves path (it can be replaced), -EADDRINUSE if something accepts. */
static int unix_path_free(const char *path, const union sockaddr_any *sa, struct mv_error *err)
{
	struct stat st;
	_cleanup_close_ int fd = -1;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : mv_err_internal(err, -errno, "unix:%s: %m", path);
	if (!S_ISSOCK(st.st_mode))
		return mv_err_exists(err, "unix:%s: exists and is not a socket; not replacing it",
				     path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return mv_err_internal(err, -errno, "socket: %m");
	if (connect(fd, &sa->sa, sizeof(sa->un)) == 0)
		return mv_err_internal(
			err, -EADDRINUSE,
			"unix:%s: another process is serving this socket (is another mvirt-vmm "
			"running?)",
			path);
	if (unlink(path) < 0 && errno != ENOENT)
		return mv_err_internal(err, -errno, "unix:%s: cannot remove the stale socket: %m",
				       path);
	return 0;
}

/* Starts accepting on l->fd, a listening socket. */
static int listener_watch(struct listener *l, sd_event *event, struct mv_error *err)
{
	int r = sd_event_add_io(event, &l->source, l->fd, EPOLLIN, on_accept, l);

	if (r < 0)
		return mv_err_internal(err, r, "listen %s: cannot watch the socket: %m",
				       l->address);
	return 0;
}

int listener_open(sd_event *event, const char *addr, struct api_server *api, gid_t access_gid,
		  struct listener **ret, struct mv_error *err)
{
	union sockaddr_any sa;
	struct listener *l;
	int len, r, one = 1;

	len = parse_address(addr, &sa, err);
	if (len < 0)
		return len;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->fd = -1;
	l->api = api;
	l->access_gid = access_gid;
	l->family = sa.sa.sa_family;
	l->address = strdup(addr);
	if (!l->address) {
		r = -ENOMEM;
		goto fail;
	}

	l->fd = socket(sa.sa.sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->fd < 0) {
		r = mv_err_internal(err, -errno, "listen %s: socket: %m", addr);
		goto fail;
	}
	if (sa.sa.sa_family == AF_UNIX) {
		r = unix_path_free(sa.un.sun_path, &sa, err);
		if (r < 0)
			goto fail;
	} else {
		/* SO_REUSEADDR only skips TIME_WAIT; without SO_REUSEPORT a second listener on
		 * the same port fails with EADDRINUSE, which is what we want. */
		(void)setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (sa.sa.sa_family == AF_INET6)
			(void)setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	}
	if (bind(l->fd, &sa.sa, (socklen_t)len) < 0) {
		r = mv_err_internal(err, -errno, "listen %s: bind: %m%s", addr,
				    errno == EADDRINUSE ? " (is another mvirt-vmm running?)" : "");
		goto fail;
	}
	if (sa.sa.sa_family == AF_UNIX) {
		l->unix_path = strdup(sa.un.sun_path);
		if (!l->unix_path) {
			r = -ENOMEM;
			goto fail;
		}
		if (chmod(l->unix_path, 0660) < 0 ||
		    (access_gid != (gid_t)-1 && chown(l->unix_path, 0, access_gid) < 0 &&
		     geteuid() == 0)) {
			r = mv_err_internal(err, -errno,
					    "listen %s: cannot set the socket's mode/owner: %m",
					    addr);
			goto fail;
		}
	}
	if (listen(l->fd, SOMAXCONN) < 0) {
		r = mv_err_internal(err, -errno, "listen %s: listen: %m", addr);
		goto fail;
	}
	r = listener_watch(l, event, err);
	if (r < 0)
		goto fail;
	*ret = l;
	return 0;
fail:
	listener_free(l);
	return r;
}

/* The name of a bound socket, as --listen spells it: "unix:/path", "127.0.0.1:PORT",
 * "[::1]:PORT". */
static int socket_address(int fd, char **ret, struct mv_error *err)
{
	union sockaddr_any sa;
	socklen_t len = sizeof(sa);
	char host[INET6_ADDRSTRLEN];
	int r;

	memset(&sa, 0, sizeof(sa));
	if (getsockname(fd, &sa.sa, &len) < 0)
		return mv_err_internal(err, -errno, "socket fd %d: getsockname: %m", fd);
	switch (sa.sa.sa_family) {
	case AF_UNIX:
		if (len <= offsetof(struct sockaddr_un, sun_path) || sa.un.sun_path[0] == '\0')
			return mv_err_invalid(err,
					      "socket fd %d: an unnamed or abstract Unix "
					      "socket; only a socket file can be served",
					      fd);
		sa.un.sun_path[sizeof(sa.un.sun_path) - 1] = '\0';
		r = asprintf(ret, "unix:%s", sa.un.sun_path);
		break;
	case AF_INET:
		inet_ntop(AF_INET, &sa.in.sin_addr, host, sizeof(host));
		r = asprintf(ret, "%s:%u", host, (unsigned)ntohs(sa.in.sin_port));
		break;
	case AF_INET6:
		inet_ntop(AF_INET6, &sa.in6.sin6_addr, host, sizeof(host));
		r = asprintf(ret, "[%s]:%u", host, (unsigned)ntohs(sa.in6.sin6_port));
		break;
	default:
		return mv_err_invalid(err, "socket fd %d: address family %d is not served", fd,
				      sa.sa.sa_family);
	}
	if (r < 0) {
		*ret = NULL;
		return mv_err_oom(err);
	}
	return 0;
}

int listener_adopt(sd_event *event, int fd, struct api_server *api, gid_t access_gid,
		   struct listener **ret, struct mv_error *err)
{
	_cleanup_free_ char *addr = NULL;
	union sockaddr_any sa;
	struct listener *l;
	int r, flags;

	r = socket_address(fd, &addr, err);
	if (r < 0)
		return r;
	/* the same rules as for an address of --listen: loopback only */
	r = parse_address(addr, &sa, err);
	if (r < 0)
		return mv_err_prefix(err, "socket from systemd: "), r;
	if (sd_is_socket(fd, sa.sa.sa_family, SOCK_STREAM, 1) <= 0)
		return mv_err_invalid(err, "socket from systemd %s: not a listening stream socket",
				      addr);
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0 ||
	    fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return mv_err_internal(err, -errno, "socket from systemd %s: fcntl: %m", addr);
	l = calloc(1, sizeof(*l));
	if (!l)
		return mv_err_oom(err);
	l->api = api;
	l->access_gid = access_gid;
	l->family = sa.sa.sa_family;
	l->address = TAKE_PTR(addr);
	l->fd = fd;
	r = listener_watch(l, event, err);
	if (r < 0) {
		l->fd = -1; /* the caller's still */
		listener_free(l);
		return r;
	}
	*ret = l;
	return 0;
}

bool listener_serves(const char *addr, const char *other)
{
	union sockaddr_any a, b;
	int la, lb;

	if ((la = parse_address(addr, &a, NULL)) < 0 || (lb = parse_address(other, &b, NULL)) < 0)
		return false;
	if (a.sa.sa_family == AF_UNIX && b.sa.sa_family == AF_UNIX)
		return streq(a.un.sun_path, b.un.sun_path);
	return la == lb && memcmp(&a, &b, (size_t)la) == 0;
}

void listener_free(struct listener *l)
{
	if (!l)
		return;
	sd_event_source_disable_unref(l->resume);
	sd_event_source_disable_unref(l->source);
	if (l->fd >= 0) {
		close(l->fd);
		if (l->unix_path)
			(void)unlink(l->unix_path);
	}
	free(l->unix_path);
	free(l->address);
	free(l);
}

const char *listener_address(const struct listener *l)
{
	return l->address;
}
