/* Fuzzes the image-header parser (storage/image.c) with arbitrary file heads: it must never
 * read past len, and its answer must follow from the bytes as image.h says. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "storage/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct image_header h;
	int r = image_header_parse(data, size, &h);
	bool magic = size >= 8 && memcmp(data, "QFI\xfb", 4) == 0;

	FUZZ_ASSERT(r == 0 || r == -EPROTONOSUPPORT);
	FUZZ_ASSERT(h.format == DISK_FORMAT_RAW || h.format == DISK_FORMAT_QCOW2);
	if (!magic) {
		FUZZ_ASSERT(r == 0 && h.format == DISK_FORMAT_RAW && !h.size_known);
		return 0;
	}
	if (r == -EPROTONOSUPPORT) {
		FUZZ_ASSERT(h.qcow2_version != 2 && h.qcow2_version != 3);
		return 0;
	}
	FUZZ_ASSERT(h.format == DISK_FORMAT_QCOW2);
	FUZZ_ASSERT(h.qcow2_version == 2 || h.qcow2_version == 3);
	FUZZ_ASSERT(h.size_known == (size >= IMAGE_HEADER_PEEK));
	FUZZ_ASSERT(h.size_known || (!h.has_backing && h.virtual_size == 0));
	return 0;
}
