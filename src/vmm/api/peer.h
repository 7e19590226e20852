/* Who is at the other end of an accepted connection, and may they use the API?
 *
 * Unix sockets: SO_PEERCRED (uid, gid, pid) and SO_PEERGROUPS (supplementary groups).
 * Loopback TCP: the client socket's owner uid looked up with NETLINK_SOCK_DIAG
 * (inet_diag), then the user's groups from the user database (getgrouplist).
 * Allowed: uid 0, or membership (primary or supplementary) in the access group. Silent. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct peer_cred {
	uid_t uid;
	gid_t gid; /* (gid_t)-1 when unknown (TCP) */
	pid_t pid; /* 0 when unknown (TCP) */
	gid_t groups[64];
	int n_groups;
};

/* Credentials of the process behind a connected AF_UNIX socket fd. */
int peer_cred_unix(int fd, struct peer_cred *ret);

/* Credentials of the owner of the client socket of a connected loopback AF_INET/AF_INET6
 * socket fd (the accepted server side). -ENOENT if the peer socket is not on this host,
 * -EPROTONOSUPPORT if sock_diag is unavailable. */
int peer_cred_tcp(int fd, struct peer_cred *ret);

/* True when cred may use the API: uid 0 or in group access_gid ((gid_t)-1 = root only). */
bool peer_allowed(const struct peer_cred *cred, gid_t access_gid);
