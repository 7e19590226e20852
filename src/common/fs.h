/* File-system helpers shared by the daemon's parts. Silent: return 0 or -errno. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

/* Creates path and any missing parents (parents 0755, path itself mode); an existing
 * directory is fine. */
int mkdir_parents(const char *path, mode_t mode);

/* How many entries (but . and ..) the directory path holds; 0 when it cannot be read. */
size_t dir_count_entries(const char *path);
/* Removes a directory of plain files (no recursion), best effort. */
void remove_dir_files(const char *path);
/* Writes data to path through path.tmp + fsync + rename: readers see the old or the new file. */
int write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
/* Reads at most max bytes of path (no symlink) into *ret, NUL-terminated; returns the length. */
int read_file(const char *path, size_t max, char **ret);
