/* File-system helpers shared by the daemon's parts. Silent: return 0 or -errno. */
#pragma once

#include <sys/types.h>

/* Creates path and any missing parents (parents 0755, path itself mode); an existing
 * directory is fine. */
int mkdir_parents(const char *path, mode_t mode);
