/* See image.h. qcow2's header is big-endian: magic "QFI\xfb" at 0, version at 4, backing file
 * offset at 8 (0: none), backing file name size at 16, cluster bits at 20, size at 24. */
#include "storage/image.h"

#include <errno.h>
#include <string.h>

#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_VERSION_OFFSET 4
#define QCOW2_BACKING_OFFSET 8
#define QCOW2_SIZE_OFFSET 24

static uint64_t be_read(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

int image_header_parse(const uint8_t *buf, size_t len, struct image_header *ret)
{
	struct image_header h = {.format = DISK_FORMAT_RAW};

	if (len < QCOW2_VERSION_OFFSET + 4 || memcmp(buf, QCOW2_MAGIC, 4) != 0) {
		*ret = h;
		return 0;
	}
	h.qcow2_version = (uint32_t)be_read(buf + QCOW2_VERSION_OFFSET, 4);
	if (h.qcow2_version != 2 && h.qcow2_version != 3) {
		*ret = h;
		return -EPROTONOSUPPORT;
	}
	h.format = DISK_FORMAT_QCOW2;
	if (len >= IMAGE_HEADER_PEEK) {
		h.size_known = true;
		h.virtual_size = be_read(buf + QCOW2_SIZE_OFFSET, 8);
		h.has_backing = be_read(buf + QCOW2_BACKING_OFFSET, 8) != 0;
	}
	*ret = h;
	return 0;
}
