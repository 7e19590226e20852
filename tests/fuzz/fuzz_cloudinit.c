/* Fuzzes the cloud-init seed builder (vm/cloudinit.c) as a property, with what a VM definition
 * and the daemon's configuration may give it: any contents and sizes for user-data, meta-data
 * and network-config, the instance id and host name the default meta-data is made of, and
 * the name of the directory the image is built in. mkfs.vfat and mcopy run for real, so an
 * input costs a few milliseconds (tens under ASan); without them the target checks nothing
 * and says so once. Input: a byte of flags (bit 0: meta-data given, else the default; bit 1:
 * network-config given), three 3-byte big-endian sizes, then user-data, meta-data,
 * network-config, instance id, host name and directory name (any bytes but '/', made under a
 * private temporary directory) separated by NUL bytes. A nonzero size stretches its file (its
 * bytes repeated, "x" for none) to exactly size % (cap + 2) bytes, so that short inputs reach
 * every size up to one byte over each cap, and every cluster boundary.
 * Invariants:
 * - the build succeeds exactly when the inputs are valid (user-data present, each file within
 *   its cap, a default meta-data only from plain words), else fails with -EINVAL and a message;
 * - on success the directory holds the image alone, labelled CIDATA, whose root holds exactly
 *   user-data, meta-data and (when given and not empty) network-config, each with the bytes
 *   given (meta-data: the default when none was given);
 * - on failure it holds nothing: no image, no temporary file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/err.h"
#include "common/macro.h"
#include "fuzz.h"
#include "model/validate.h"
#include "vm/cloudinit.h"

/* both tools within libFuzzer's -timeout=10: a hung one fails the build, with its name */
#define TOOL_TIMEOUT_MS 4000

static const char *const file_names[] = {"user-data", "meta-data", "network-config"};

/* The next NUL-separated field, as a string (heap); "" past the end. */
static char *next_field(const uint8_t **p, const uint8_t *end)
{
	const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
	size_t n = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
	char *s = strndup((const char *)*p, n);

	FUZZ_ASSERT(s);
	*p = nul ? nul + 1 : end;
	return s;
}

/* s repeated (or "x" when empty) to exactly want bytes; s itself when want is 0. */
static char *stretch(char *s, size_t want)
{
	const char *pat = *s ? s : "x";
	size_t n = strlen(pat);
	char *t;

	if (want == 0)
		return s;
	t = malloc(want + 1);
	FUZZ_ASSERT(t);
	for (size_t i = 0; i < want; i++)
		t[i] = pat[i % n];
	t[want] = '\0';
	free(s);
	return t;
}

static size_t be24(const uint8_t *p)
{
	return (size_t)p[0] << 16 | (size_t)p[1] << 8 | p[2];
}

/* The characters cloudinit.c puts unquoted into the default meta-data. */
static bool plain_word(const char *s)
{
	if (!*s)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._") ==
	       strlen(s);
}

static bool have_tool(const char *name)
{
	char *cmd = NULL;
	int r;

	FUZZ_ASSERT(asprintf(&cmd, "PATH=\"$PATH:/usr/sbin:/sbin\" command -v %s >/dev/null 2>&1",
			     name) > 0);
	r = system(cmd);
	free(cmd);
	return r == 0;
}

/* Runs argv (from $PATH) with no input or output and pass_fd as its fd 3; its exit status,
 * or -1. */
static int run(char *const argv[], int pass_fd)
{
	posix_spawn_file_actions_t fa;
	char *envp[] = {(char *)"MTOOLS_SKIP_CHECK=1", (char *)"LC_ALL=C", NULL, NULL};
	char *path_env = NULL;
	pid_t pid;
	int status, r;

	FUZZ_ASSERT(asprintf(&path_env, "PATH=%s", strempty(getenv("PATH"))) > 0);
	envp[2] = path_env;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, pass_fd, 3);
	r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(path_env);
	if (r != 0)
		return -1;
	while (waitpid(pid, &status, 0) < 0)
		FUZZ_ASSERT(errno == EINTR);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* The whole file (heap, NUL-terminated) and its size; NULL if it cannot be read. */
static char *slurp(const char *path, size_t *ret_len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 4096;
	char *buf;
	ssize_t n;

	if (fd < 0)
		return NULL;
	buf = malloc(cap + 1);
	FUZZ_ASSERT(buf);
	while ((n = read(fd, buf + len, cap - len)) > 0) {
		len += (size_t)n;
		if (len == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			FUZZ_ASSERT(buf);
		}
	}
	close(fd);
	FUZZ_ASSERT(n == 0);
	buf[len] = '\0';
	*ret_len = len;
	return buf;
}

/* The names in dir, sorted and joined with '/'; "" when empty (heap). */
static char *dir_names(const char *dir)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	char *out = strdup("");

	FUZZ_ASSERT(n >= 0 && out);
	for (int i = 0; i < n; i++) {
		const char *name = list[i]->d_name;

		if (strcmp(name, ".") != 0 && strcmp(name, "..") != 0) {
			char *t = NULL;

			FUZZ_ASSERT(asprintf(&t, "%s%s%s", out, *out ? "/" : "", name) > 0);
			free(out);
			out = t;
		}
		free(list[i]);
	}
	free(list);
	return out;
}

/* Removes dir and everything under it (two levels: the image and the read-back copies). */
static void remove_all(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	FUZZ_ASSERT(d);
	while ((de = readdir(d))) {
		char *p = NULL;
		struct stat st;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		FUZZ_ASSERT(asprintf(&p, "%s/%s", dir, de->d_name) > 0);
		FUZZ_ASSERT(lstat(p, &st) == 0);
		if (S_ISDIR(st.st_mode))
			remove_all(p);
		else
			FUZZ_ASSERT(unlink(p) == 0);
		free(p);
	}
	closedir(d);
	FUZZ_ASSERT(rmdir(dir) == 0);
}

/* The volume label in the boot sector: at 43 for FAT12/16, at 71 for FAT32. */
static void check_label(const char *img)
{
	char bs[90];
	int fd = open(img, O_RDONLY | O_CLOEXEC);

	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(pread(fd, bs, sizeof(bs), 0) == (ssize_t)sizeof(bs));
	close(fd);
	if (memcmp(bs + 82, "FAT32   ", 8) == 0)
		FUZZ_ASSERT(memcmp(bs + 71, "CIDATA     ", 11) == 0);
	else
		FUZZ_ASSERT(memcmp(bs + 43, "CIDATA     ", 11) == 0);
}

/* Copies every file of the image's root out to dir/out and compares them with want[]. */
static void check_contents(const char *dir, const char *img, const char *const want[3])
{
	char *out = NULL, *names, expect[64] = "";
	/* by fd, as cloudinit.c gives it: mtools expands "$VAR", '\\' and more in -i's name */
	char *mcopy[] = {"mcopy", "-Q", "-n", "-i", "/proc/self/fd/3", "::*", NULL, NULL};
	int fd = open(img, O_RDONLY | O_CLOEXEC);

	FUZZ_ASSERT(fd >= 0);
	FUZZ_ASSERT(asprintf(&out, "%s/out", dir) > 0);
	FUZZ_ASSERT(mkdir(out, 0700) == 0);
	mcopy[6] = out;
	FUZZ_ASSERT(run(mcopy, fd) == 0);
	close(fd);

	/* alphabetical, as dir_names lists them */
	snprintf(expect, sizeof(expect), "meta-data%s/user-data", want[2] ? "/network-config" : "");
	names = dir_names(out);
	FUZZ_ASSERT(strcmp(names, expect) == 0);
	free(names);
	for (size_t i = 0; i < 3; i++) {
		char *p = NULL, *got;
		size_t len = 0;

		if (!want[i])
			continue;
		FUZZ_ASSERT(asprintf(&p, "%s/%s", out, file_names[i]) > 0);
		got = slurp(p, &len);
		FUZZ_ASSERT(got);
		FUZZ_ASSERT(len == strlen(want[i]) && memcmp(got, want[i], len) == 0);
		free(got);
		free(p);
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int tools = -1;
	const uint8_t *p = data + 10, *end = data + size;
	char *ud, *md, *nc, *id, *host, *sub, *dir = NULL, *where = NULL, *path = NULL, *names;
	char *meta_default = NULL;
	const char *tmp = getenv("TMPDIR"); /* only if absolute: the build wants that */
	struct mv_error err = {0};
	bool meta_given, net_given, valid;
	int r;

	if (tools < 0) {
		tools = have_tool("mkfs.vfat") && have_tool("mcopy");
		if (!tools)
			fprintf(stderr, "fuzz_cloudinit: mkfs.vfat or mcopy is not installed: "
					"nothing is checked\n");
	}
	if (!tools || size < 10)
		return 0;
	meta_given = data[0] & 1;
	net_given = data[0] & 2;
	ud = stretch(next_field(&p, end), be24(data + 1) % (VM_USER_DATA_MAX + 2));
	md = stretch(next_field(&p, end), be24(data + 4) % (VM_META_DATA_MAX + 2));
	nc = stretch(next_field(&p, end), be24(data + 7) % (VM_META_DATA_MAX + 2));
	id = next_field(&p, end);
	host = next_field(&p, end);
	sub = next_field(&p, end);
	for (char *c = sub; *c; c++)
		if (*c == '/')
			*c = '_';
	if (strlen(sub) > 200 || strcmp(sub, ".") == 0 || strcmp(sub, "..") == 0)
		sub[0] = '\0'; /* a name the system refuses, or the private directory itself */

	struct cloudinit_seed seed = {
		.user_data = ud,
		.meta_data = meta_given ? md : NULL,
		.network_config = net_given ? nc : NULL,
		.instance_id = id,
		.hostname = host,
		.timeout_ms = TOOL_TIMEOUT_MS,
	};
	valid = *ud && strlen(ud) <= VM_USER_DATA_MAX &&
		(!meta_given || strlen(md) <= VM_META_DATA_MAX) &&
		(!net_given || strlen(nc) <= VM_META_DATA_MAX) &&
		((meta_given && *md) || (plain_word(id) && plain_word(host)));

	FUZZ_ASSERT(asprintf(&dir, "%s/mvirt-fuzz-cloudinit-XXXXXX",
			     tmp && tmp[0] == '/' ? tmp : "/tmp") > 0);
	FUZZ_ASSERT(mkdtemp(dir));
	FUZZ_ASSERT(asprintf(&where, "%s%s%s", dir, *sub ? "/" : "", sub) > 0);
	if (*sub)
		FUZZ_ASSERT(mkdir(where, 0700) == 0);
	FUZZ_ASSERT(asprintf(&path, "%s/seed.img", where) > 0);
	r = cloudinit_seed_build(&seed, path, &err);
	names = dir_names(where);
	if (valid) {
		const char *want[3] = {ud, NULL, net_given && *nc ? nc : NULL};

		if (r < 0)
			fprintf(stderr, "fuzz_cloudinit: %s\n", err.msg);
		FUZZ_ASSERT(r == 0);
		FUZZ_ASSERT(strcmp(names, "seed.img") == 0);
		if (meta_given && *md) {
			want[1] = md;
		} else {
			FUZZ_ASSERT(asprintf(&meta_default, "instance-id: %s\nlocal-hostname: %s\n",
					     id, host) > 0);
			want[1] = meta_default;
		}
		check_label(path);
		check_contents(where, path, want);
	} else {
		FUZZ_ASSERT(r == -EINVAL && err.msg[0]);
		FUZZ_ASSERT(strcmp(names, "") == 0);
	}
	remove_all(dir);

	free(names);
	free(meta_default);
	free(path);
	free(where);
	free(dir);
	free(sub);
	free(ud);
	free(md);
	free(nc);
	free(id);
	free(host);
	return 0;
}
