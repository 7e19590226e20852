/* The storage manager: disk images. For now it knows image formats; volumes and pools come
 * with the storage issue. Silent: returns -errno. */
#pragma once

#include "err.h"
#include "vmdef.h"

/* Reads the image header of path (a regular file or block device) and returns its format:
 * qcow2 when it starts with the qcow2 magic "QFI\xfb" and a supported version (2 or 3),
 * raw otherwise. Never trusts the file name. */
int storage_detect_format(const char *path, enum disk_format *ret, struct mv_error *err);
