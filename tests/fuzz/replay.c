/* Replays fuzz corpora as an ordinary test: every file in the directories (or the files)
 * named on the command line is fed once to LLVMFuzzerTestOneInput, one TAP line per file.
 * A crash or a broken invariant aborts the run, which count-results counts as a failure,
 * and the last "# input" line on stdout names the file that did it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_INPUTS 4096
#define MAX_INPUT_SIZE (1024 * 1024)

static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_path(char **paths, size_t *n, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (*n == MAX_INPUTS)
			return -1;
		paths[(*n)++] = strdup(path);
		return 0;
	}
	DIR *d = opendir(path);
	if (!d) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	struct dirent *de;
	int r = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (*n == MAX_INPUTS) {
			r = -1;
			break;
		}
		if (asprintf(&paths[(*n)++], "%s/%s", path, de->d_name) < 0) {
			r = -1;
			break;
		}
	}
	closedir(d);
	return r;
}

/* Reads the file into an allocation of exactly its size, so ASan sees any read past it. */
static uint8_t *read_input(const char *path, size_t *ret_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	uint8_t *buf = malloc(MAX_INPUT_SIZE);
	size_t len = 0;
	ssize_t k;
	while (buf && len < MAX_INPUT_SIZE && (k = read(fd, buf + len, MAX_INPUT_SIZE - len)) > 0)
		len += (size_t)k;
	close(fd);
	if (!buf)
		return NULL;
	uint8_t *exact = malloc(len ? len : 1);
	if (exact)
		memcpy(exact, buf, len);
	free(buf);
	*ret_size = len;
	return exact;
}

int main(int argc, char **argv)
{
	static char *paths[MAX_INPUTS];
	size_t n = 0;

	for (int i = 1; i < argc; i++)
		if (add_path(paths, &n, argv[i]) < 0) {
			printf("1..1\nnot ok 1 - cannot list %s\n", argv[i]);
			return 1;
		}
	if (n == 0) {
		printf("1..1\nnot ok 1 - empty corpus\n");
		return 1;
	}
	qsort(paths, n, sizeof(paths[0]), compare_strings);

	printf("1..%zu\n", n);
	int failed = 0;
	for (size_t i = 0; i < n; i++) {
		size_t size = 0;
		uint8_t *data = read_input(paths[i], &size);
		if (!data) {
			printf("not ok %zu - %s: cannot read\n", i + 1, paths[i]);
			failed = 1;
			free(paths[i]);
			continue;
		}
		printf("# input %s (%zu bytes)\n", paths[i], size);
		fflush(stdout);
		LLVMFuzzerTestOneInput(data, size);
		printf("ok %zu - %s\n", i + 1,
		       strrchr(paths[i], '/') ? strrchr(paths[i], '/') + 1 : paths[i]);
		free(data);
		free(paths[i]);
	}
	return failed;
}
