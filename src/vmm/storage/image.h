/* Disk image headers: what format an image is (qcow2 or raw) and what its header says, from
 * the first bytes of the image alone. Pure: no I/O, no allocation; the caller reads the bytes
 * (storage.c). Fed untrusted files, so it never reads past len (fuzzed: tests/fuzz). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/vmdef.h"

/* How many bytes the parser looks at: qcow2's magic, version, backing file offset and size,
 * cluster bits and virtual size. */
#define IMAGE_HEADER_PEEK 32

struct image_header {
	enum disk_format format; /* DISK_FORMAT_QCOW2 or DISK_FORMAT_RAW */
	uint32_t qcow2_version;  /* qcow2: the header's version (also when unsupported) */
	bool size_known;         /* qcow2: the header was long enough to hold the size */
	uint64_t virtual_size;   /* qcow2 and size_known: the guest-visible size in bytes */
	bool has_backing;        /* qcow2 and size_known: the header names a backing file */
};

/* Parses the first len bytes of an image (len may be shorter than IMAGE_HEADER_PEEK at the end
 * of a small file). Anything without the qcow2 magic is raw. Returns 0 with *ret filled, or
 * -EPROTONOSUPPORT for a qcow2 magic with a version other than 2 or 3 (ret->qcow2_version says
 * which). */
int image_header_parse(const uint8_t *buf, size_t len, struct image_header *ret);
