/* The storage manager (see storage.h): disk image formats, read from the image header only.
 * Callers: the VM manager, when a VM is created with a disk whose format is unspecified. */
#include "storage.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_HEADER_PEEK 8 /* magic + big-endian uint32 version */

static const char *errno_cause(int e)
{
	const char *d = strerrordesc_np(e);

	return d ? d : "unknown error";
}

/* Reads up to size bytes at offset 0, retrying short reads and EINTR; returns the number of
 * bytes read (less than size only at end of file) or -errno. */
static ssize_t read_head(int fd, uint8_t *buf, size_t size)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, (off_t)done);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (ssize_t)done;
}

int storage_detect_format(const char *path, enum disk_format *ret, struct mv_error *err)
{
	_cleanup_close_ int fd = -1;
	uint8_t head[QCOW2_HEADER_PEEK];
	struct stat st;
	uint32_t version;
	ssize_t n;

	/* O_NONBLOCK: a FIFO must not hang the caller; it has no effect on files and disks. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return mv_err(err, -errno, "%s: %s", path, errno_cause(errno));
	if (fstat(fd, &st) < 0)
		return mv_err(err, -errno, "%s: %s", path, errno_cause(errno));
	if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))
		return mv_err(err, -EINVAL, "%s: not a regular file or block device", path);

	n = read_head(fd, head, sizeof(head));
	if (n < 0)
		return mv_err(err, (int)n, "%s: %s", path, errno_cause((int)-n));

	if ((size_t)n < sizeof(head) || memcmp(head, QCOW2_MAGIC, 4) != 0) {
		*ret = DISK_FORMAT_RAW;
		return 0;
	}

	version = (uint32_t)head[4] << 24 | (uint32_t)head[5] << 16 | (uint32_t)head[6] << 8 |
		  (uint32_t)head[7];
	if (version != 2 && version != 3)
		return mv_err(err, -EINVAL, "%s: qcow2 version %" PRIu32 " is not supported", path,
			      version);
	*ret = DISK_FORMAT_QCOW2;
	return 0;
}
