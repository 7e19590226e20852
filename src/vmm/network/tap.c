/* Tap devices through /dev/net/tun (tap.h). */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "network/tap.h"

int tap_create(const char *name)
{
	struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_TUN_EXCL};
	size_t len = name ? strlen(name) : 0;
	int fd, r;

	if (len == 0 || len >= IFNAMSIZ)
		return -EINVAL;
	memcpy(ifr.ifr_name, name, len);
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		r = errno == EEXIST ? -EBUSY : -errno;
		close(fd);
		return r;
	}
	return fd;
}
