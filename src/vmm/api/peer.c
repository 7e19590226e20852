/* Peer credentials of accepted API connections, and the access decision.
 *
 * Owns: reading who is behind a connected socket and deciding whether they may use the API.
 * Unix sockets: the kernel's SO_PEERCRED / SO_PEERGROUPS (the credentials captured at connect()).
 * Loopback TCP: the uid that created the client socket, asked of the kernel with one exact
 * NETLINK_SOCK_DIAG lookup, then that user's groups from the user database.
 * Invariants: a struct peer_cred is written only on success; a TCP answer is accepted only for a
 * live socket (non-zero inode) whose 4-tuple is exactly the peer's, because closed, time-wait and
 * request sockets report uid 0 and a lookup may fall back to a listener.
 * Called by listener.c for every accepted connection. Silent. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>

#include "api/peer.h"
#include "common/macro.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59
#endif

#define PEER_GROUPS_MAX ((int)ELEMENTSOF(((struct peer_cred *)0)->groups))
#define PWBUF_MAX (1024 * 1024)
#define DIAG_TIMEOUT_SEC 1

/* One end of a TCP connection in inet_diag's layout: addresses and port in network byte order,
 * IPv4 (also v4-mapped IPv6) in addr[0] with the rest zero. */
struct endpoint {
	int family;
	uint32_t addr[4];
	uint16_t port;
};

static void groups_add(struct peer_cred *c, const gid_t *groups, size_t n)
{
	for (size_t i = 0; i < n && c->n_groups < PEER_GROUPS_MAX; i++)
		c->groups[c->n_groups++] = groups[i];
}

/* Appends the groups the user database gives uid (primary included) to c; none if uid has no
 * passwd entry. */
static int groups_from_db(uid_t uid, struct peer_cred *c)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	struct passwd pw, *pwp = NULL;
	long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
	size_t bufsz = sz > 0 ? (size_t)sz : 4096;
	int n, r;

	for (;;) {
		free(buf);
		buf = malloc(bufsz);
		if (!buf)
			return -ENOMEM;
		r = getpwuid_r(uid, &pw, buf, bufsz, &pwp);
		if (r != ERANGE)
			break;
		if (bufsz >= PWBUF_MAX)
			return -ERANGE;
		bufsz *= 2;
	}
	if (!pwp) {
		/* glibc may report "no such user" as any of these instead of 0 */
		if (r == 0 || r == ENOENT || r == ESRCH || r == EBADF || r == EPERM)
			return 0;
		return -r;
	}

	n = PEER_GROUPS_MAX;
	groups = malloc(sizeof(gid_t) * (size_t)n);
	if (!groups)
		return -ENOMEM;
	if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) {
		if (n <= PEER_GROUPS_MAX || n > NGROUPS_MAX)
			return -EIO;
		free(groups);
		groups = malloc(sizeof(gid_t) * (size_t)n);
		if (!groups)
			return -ENOMEM;
		if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0)
			return -EIO;
	}
	groups_add(c, groups, (size_t)n);
	return 0;
}

/* Fills c->groups from SO_PEERGROUPS, keeping the first PEER_GROUPS_MAX. -ENOPROTOOPT on kernels
 * without it. */
static int groups_from_socket(int fd, struct peer_cred *c)
{
	_cleanup_free_ gid_t *big = NULL;
	gid_t groups[PEER_GROUPS_MAX];
	socklen_t len = sizeof(groups), need;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		groups_add(c, groups, len / sizeof(gid_t));
		return 0;
	}
	if (errno != ERANGE)
		return -errno;

	/* The kernel stored the size it needs in len and copied nothing. The captured
	 * credentials are immutable, so one retry with that size is enough. */
	need = len;
	if (need <= sizeof(groups) || need > NGROUPS_MAX * sizeof(gid_t))
		return -EIO;
	big = malloc(need);
	if (!big)
		return -ENOMEM;
	len = need;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, big, &len) < 0)
		return -errno;
	groups_add(c, big, len / sizeof(gid_t));
	return 0;
}

int peer_cred_unix(int fd, struct peer_cred *ret)
{
	struct peer_cred c = {};
	struct ucred uc;
	socklen_t len = sizeof(int);
	int domain, r;

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0)
		return -errno;
	if (domain != AF_UNIX)
		return -EAFNOSUPPORT;

	len = sizeof(uc);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
		return -errno;
	if (len != sizeof(uc))
		return -EIO;
	c.uid = uc.uid;
	c.gid = uc.gid;
	c.pid = uc.pid;

	r = groups_from_socket(fd, &c);
	if (r == -ENOPROTOOPT)
		r = groups_from_db(uc.uid, &c);
	if (r < 0)
		return r;

	*ret = c;
	return 0;
}

/* Converts a sockaddr to an endpoint; v4-mapped IPv6 becomes IPv4 so that both ends of a
 * connection and the kernel's answer compare alike. */
static int endpoint_from_sockaddr(const struct sockaddr_storage *sa, struct endpoint *ret)
{
	struct endpoint e = {};

	if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

		e.family = AF_INET;
		e.addr[0] = in->sin_addr.s_addr;
		e.port = in->sin_port;
	} else if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

		e.port = in6->sin6_port;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			e.family = AF_INET;
			memcpy(&e.addr[0], &in6->sin6_addr.s6_addr[12], sizeof(uint32_t));
		} else {
			e.family = AF_INET6;
			memcpy(e.addr, &in6->sin6_addr, sizeof(e.addr));
		}
	} else
		return -EAFNOSUPPORT;

	*ret = e;
	return 0;
}

/* The same conversion for an address as the kernel reports it in an inet_diag_msg. */
static struct endpoint endpoint_from_diag(int family, const uint32_t addr[4], uint16_t port)
{
	struct endpoint e = {.family = family, .port = port};
	struct in6_addr a6;

	memcpy(&a6, addr, sizeof(a6));
	if (family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&a6)) {
		e.family = AF_INET;
		e.addr[0] = addr[3];
	} else if (family == AF_INET) {
		e.addr[0] = addr[0];
	} else {
		memcpy(e.addr, addr, sizeof(e.addr));
	}
	return e;
}

static bool endpoint_eq(const struct endpoint *a, const struct endpoint *b)
{
	return a->family == b->family && a->port == b->port &&
	       memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static bool endpoint_is_loopback(const struct endpoint *e)
{
	struct in6_addr a6;

	if (e->family == AF_INET)
		return (ntohl(e->addr[0]) >> 24) == 127;
	memcpy(&a6, e->addr, sizeof(a6));
	return IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Checks one reply message against the socket we asked for: 1 with *ret_uid set when it is the
 * live client socket, 0 when the message is not our reply, -errno otherwise. */
static int diag_parse(const struct nlmsghdr *h, uint32_t seq, const struct endpoint *client,
		      const struct endpoint *server, uid_t *ret_uid)
{
	const struct inet_diag_msg *m;
	struct endpoint src, dst;

	if (h->nlmsg_seq != seq)
		return 0;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);

		if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*e)))
			return -EIO;
		return e->error < 0 ? e->error : 0;
	}
	if (h->nlmsg_type == NLMSG_DONE)
		return -ENOENT;
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
		return -EIO;

	m = NLMSG_DATA(h);
	src = endpoint_from_diag(m->idiag_family, m->id.idiag_src, m->id.idiag_sport);
	dst = endpoint_from_diag(m->idiag_family, m->id.idiag_dst, m->id.idiag_dport);
	if (!endpoint_eq(&src, client) || !endpoint_eq(&dst, server) || m->idiag_inode == 0)
		return -ENOENT;
	*ret_uid = m->idiag_uid;
	return 1;
}

/* Asks sock_diag for the owner of the TCP socket whose local end is client and remote end is
 * server. */
static int diag_lookup_uid(const struct endpoint *client, const struct endpoint *server,
			   uid_t *ret_uid)
{
	static const uint32_t seq = 1;
	_cleanup_close_ int nl = -1;
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = {
		.h = {.nlmsg_len = sizeof(req),
		      .nlmsg_type = SOCK_DIAG_BY_FAMILY,
		      .nlmsg_flags = NLM_F_REQUEST,
		      .nlmsg_seq = seq},
		.r = {.sdiag_family = (uint8_t)client->family,
		      .sdiag_protocol = IPPROTO_TCP,
		      .idiag_states = ~0U,
		      .id = {.idiag_sport = client->port,
			     .idiag_dport = server->port,
			     .idiag_cookie = {INET_DIAG_NOCOOKIE, INET_DIAG_NOCOOKIE}}},
	};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = DIAG_TIMEOUT_SEC};
	union {
		struct nlmsghdr h;
		char buf[8192];
	} resp;
	int r;

	memcpy(req.r.id.idiag_src, client->addr, sizeof(req.r.id.idiag_src));
	memcpy(req.r.id.idiag_dst, server->addr, sizeof(req.r.id.idiag_dst));

	nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (nl < 0)
		return errno == EPROTONOSUPPORT || errno == EAFNOSUPPORT ? -EPROTONOSUPPORT
									 : -errno;
	if (setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	if (sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return -errno;

	for (;;) {
		struct sockaddr_nl from = {};
		struct iovec iov = {.iov_base = resp.buf, .iov_len = sizeof(resp.buf)};
		struct msghdr mh = {.msg_name = &from,
				    .msg_namelen = sizeof(from),
				    .msg_iov = &iov,
				    .msg_iovlen = 1};
		ssize_t n = recvmsg(nl, &mh, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		if (mh.msg_flags & MSG_TRUNC)
			return -EIO;
		if (from.nl_pid != 0)
			continue;

		size_t left = (size_t)n;
		for (const struct nlmsghdr *h = &resp.h; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			r = diag_parse(h, seq, client, server, ret_uid);
			if (r != 0)
				return r < 0 ? r : 0;
		}
	}
}

int peer_cred_tcp(int fd, struct peer_cred *ret)
{
	struct sockaddr_storage local_sa, peer_sa;
	socklen_t len;
	struct endpoint local, peer;
	struct peer_cred c = {.gid = (gid_t)-1};
	int proto, r;

	len = sizeof(proto);
	if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) < 0)
		return -errno;
	len = sizeof(local_sa);
	if (getsockname(fd, (struct sockaddr *)&local_sa, &len) < 0)
		return -errno;
	len = sizeof(peer_sa);
	if (getpeername(fd, (struct sockaddr *)&peer_sa, &len) < 0)
		return -errno;
	if ((r = endpoint_from_sockaddr(&local_sa, &local)) < 0)
		return r;
	if ((r = endpoint_from_sockaddr(&peer_sa, &peer)) < 0)
		return r;
	if (proto != IPPROTO_TCP)
		return -ESOCKTNOSUPPORT;
	if (!endpoint_is_loopback(&peer) || peer.family != local.family)
		return -ENOENT;

	if ((r = diag_lookup_uid(&peer, &local, &c.uid)) < 0)
		return r;
	if ((r = groups_from_db(c.uid, &c)) < 0)
		return r;

	*ret = c;
	return 0;
}

bool peer_allowed(const struct peer_cred *cred, gid_t access_gid)
{
	if (!cred)
		return false;
	if (cred->uid == 0)
		return true;
	if (access_gid == (gid_t)-1)
		return false;
	if (cred->gid == access_gid)
		return true;
	for (int i = 0; i < cred->n_groups && i < PEER_GROUPS_MAX; i++)
		if (cred->groups[i] == access_gid)
			return true;
	return false;
}
