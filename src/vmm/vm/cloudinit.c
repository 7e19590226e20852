/* See cloudinit.h. A seed is built in a private temporary directory beside the target:
 * the three files are written there, mkfs.vfat creates the image, mcopy copies the files in,
 * and the image is renamed to the target without replacing anything. The temporary directory
 * is removed on every path out. Called by the VM manager (vm_runtime.c) when a VM with user_data
 * starts.
 *
 * Children get stdin and stdout on /dev/null, stderr on a memfd (read back for the error
 * message), no other fd but the image for mcopy (fd 3, which it opens as /proc/self/fd/3),
 * default signal handling and a fixed environment (PATH, LC_ALL=C, TZ=UTC,
 * MTOOLS_SKIP_CHECK=1). They are waited for with a pidfd and poll(), so a hung tool costs at
 * most the timeout. */
#include "os/proc.h"
#include "vm/cloudinit.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "common/macro.h"
#include "model/validate.h"

#define TOOL_MESSAGE_MAX 400
#define FALLBACK_PATH "/usr/sbin:/sbin"
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const seed_files[] = {"user-data", "meta-data", "network-config", "seed.img",
					 NULL};

uint64_t cloudinit_seed_size_kib(uint64_t total)
{
	return CLOUDINIT_OVERHEAD_KIB + (total + 1023) / 1024;
}

/* Characters that need no quoting in YAML and no escaping anywhere. */
static bool plain_word(const char *s)
{
	if (isempty(s))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

/* The search path for the tools: $PATH (or a default), then the sbin directories, which an
 * unprivileged user's PATH often lacks and mkfs.vfat lives in. */
static char *tool_search_path(void)
{
	const char *env = getenv("PATH");
	char *p;

	if (asprintf(&p, "%s:%s", isempty(env) ? DEFAULT_PATH : env, FALLBACK_PATH) < 0)
		return NULL;
	return p;
}

/* The executable named name in search (colon-separated), or -ENOENT. */
static int find_tool(const char *search, const char *name, char **ret)
{
	const char *dir = search;

	while (dir) {
		const char *end = strchr(dir, ':');
		size_t len = end ? (size_t)(end - dir) : strlen(dir);
		_cleanup_free_ char *p = NULL;
		struct stat st;

		if (len > 0 && dir[0] == '/') {
			if (asprintf(&p, "%.*s/%s", (int)len, dir, name) < 0) {
				p = NULL;
				return -ENOMEM;
			}
			if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0) {
				*ret = TAKE_PTR(p);
				return 0;
			}
		}
		dir = end ? end + 1 : NULL;
	}
	return -ENOENT;
}

/* What the tool wrote on stderr, on one line, capped; "" when nothing. */
static void tool_message(int fd, char *buf, size_t size)
{
	char raw[TOOL_MESSAGE_MAX];
	size_t o = 0;
	ssize_t n;
	bool space = false;

	n = pread(fd, raw, sizeof(raw), 0);
	for (ssize_t i = 0; i < n && o + 1 < size; i++) {
		unsigned char c = (unsigned char)raw[i];

		if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
			space = o > 0;
			continue;
		}
		if (space && o + 2 < size) {
			buf[o++] = ' ';
			space = false;
		}
		buf[o++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	buf[o] = '\0';
}

/* Runs argv[0] (looked up in search) to completion, with pass_fd (unless -1) as its fd 3.
 * Fills err with the tool's stderr text when it fails. */
static int run_tool(const char *search, char *const argv[], int pass_fd, uint32_t timeout_ms,
		    struct mv_error *err)
{
	_cleanup_free_ char *exe = NULL, *path_env = NULL;
	_cleanup_close_ int errfd = -1;
	char msg[TOOL_MESSAGE_MAX + 1];
	pid_t pid;
	int r, status;

	r = find_tool(search, argv[0], &exe);
	if (r == -ENOENT)
		return mv_err_precondition(
			err, -ENOMEDIUM,
			"%s not found (searched %s); install Debian's dosfstools and mtools",
			argv[0], search);
	if (r < 0)
		return r;
	if (asprintf(&path_env, "PATH=%s", search) < 0) {
		path_env = NULL;
		return -ENOMEM;
	}
	char *envp[] = {path_env, (char *)"LC_ALL=C", (char *)"TZ=UTC",
			(char *)"MTOOLS_SKIP_CHECK=1", NULL};

	errfd = memfd_create("mvirt-cloudinit-stderr", MFD_CLOEXEC);
	if (errfd < 0)
		return mv_err_internal(err, -errno, "cannot create a buffer for %s's messages: %m",
				       argv[0]);

	r = proc_spawn_raw(exe, argv, envp, -1, -1, errfd, pass_fd >= 0 ? &pass_fd : NULL,
			   pass_fd >= 0 ? 1 : 0, true, &pid);
	if (r < 0)
		return mv_err_internal(err, r, "cannot execute %s: %m", exe);
	r = proc_wait_timeout(pid, timeout_ms, &status);
	if (r == -ETIMEDOUT)
		return mv_err_timeout(err, "%s did not finish within %u ms (killed)", argv[0],
				      timeout_ms);
	if (r < 0)
		return mv_err_internal(err, r, "cannot wait for %s: %m", argv[0]);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	tool_message(errfd, msg, sizeof(msg));
	if (WIFSIGNALED(status))
		return mv_err_internal(err, -EIO, "%s was killed by signal %d%s%s", argv[0],
				       WTERMSIG(status), *msg ? ": " : "", msg);
	return mv_err_internal(err, -EIO, "%s exited with status %d%s%s", argv[0],
			       WEXITSTATUS(status), *msg ? ": " : "", msg);
}

static int write_file(int dirfd, const char *name, const char *data, struct mv_error *err)
{
	_cleanup_close_ int fd = -1;
	size_t len = strlen(data), done = 0;

	fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return mv_err_internal(err, -errno, "cannot create %s: %m", name);
	while (done < len) {
		ssize_t n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return mv_err_internal(err, -errno, "cannot write %s: %m", name);
		done += (size_t)n;
	}
	if (close(TAKE_FD(fd)) < 0)
		return mv_err_internal(err, -errno, "cannot write %s: %m", name);
	return 0;
}

static int check_size(const char *field, const char *s, size_t max, struct mv_error *err)
{
	size_t len = strlen(strempty(s));

	if (len > max)
		return mv_err_invalid(err, "%s: is %zu bytes, at most %zu", field, len, max);
	return 0;
}

/* Removes the temporary directory and what this module may have put in it. */
static void tmpdir_remove(int dirfd, const char *dir)
{
	for (size_t i = 0; seed_files[i]; i++)
		(void)unlinkat(dirfd, seed_files[i], 0);
	(void)rmdir(dir);
}

void cloudinit_seed_remove(const char *path)
{
	_cleanup_free_ char *dir_copy = strdup(path), *base_copy = strdup(path), *prefix = NULL;
	DIR *d;
	struct dirent *de;

	(void)unlink(path);
	if (!dir_copy || !base_copy || asprintf(&prefix, "%s.tmp-", basename(base_copy)) < 0) {
		prefix = NULL;
		return;
	}
	d = opendir(dirname(dir_copy));
	if (!d)
		return;
	while ((de = readdir(d))) {
		_cleanup_close_ int fd = -1;

		if (!startswith(de->d_name, prefix))
			continue;
		fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		for (size_t i = 0; seed_files[i]; i++)
			(void)unlinkat(fd, seed_files[i], 0);
		(void)unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
}

int cloudinit_seed_build(const struct cloudinit_seed *seed, const char *path, struct mv_error *err)
{
	_cleanup_free_ char *tmp = NULL, *meta = NULL, *search = NULL, *img = NULL, *ud = NULL,
			    *md = NULL, *nc = NULL;
	_cleanup_close_ int dirfd = -1, imgfd = -1;
	uint32_t timeout = seed->timeout_ms ? seed->timeout_ms : CLOUDINIT_TIMEOUT_MS_DEFAULT;
	bool net = !isempty(seed->network_config);
	char kib[32];
	uint64_t total;
	int r;

	/* The tools take a relative path for an option ("-x/seed.img") or an mtools drive
	 * ("a:b/user-data"); an absolute one is a plain file to both. */
	if (isempty(path) || path[0] != '/')
		return mv_err_internal(err, -EINVAL, "%s: the seed image's path must be absolute",
				       strempty(path));
	if (isempty(seed->user_data))
		return mv_err_invalid(err, "user-data: required for a cloud-init seed");
	if ((r = check_size("user-data", seed->user_data, VM_USER_DATA_MAX, err)) < 0 ||
	    (r = check_size("meta-data", seed->meta_data, VM_META_DATA_MAX, err)) < 0 ||
	    (r = check_size("network-config", seed->network_config, VM_META_DATA_MAX, err)) < 0)
		return r;
	if (!isempty(seed->meta_data)) {
		meta = strdup(seed->meta_data);
	} else {
		if (!plain_word(seed->instance_id) || !plain_word(seed->hostname))
			return mv_err_invalid(
				err, "meta-data: the default needs an instance id and a host name "
				     "of letters, digits, '.', '_' and '-'");
		if (asprintf(&meta, "instance-id: %s\nlocal-hostname: %s\n", seed->instance_id,
			     seed->hostname) < 0)
			meta = NULL;
	}
	search = tool_search_path();
	if (!meta || !search || asprintf(&tmp, "%s.tmp-XXXXXX", path) < 0) {
		tmp = NULL;
		return -ENOMEM;
	}
	if (access(path, F_OK) == 0)
		return mv_err_exists(err, "%s: already exists", path);
	if (!mkdtemp(tmp))
		return mv_err_internal(err, -errno, "cannot create a temporary directory %s: %m",
				       tmp);
	dirfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		r = mv_err_internal(err, -errno, "cannot open %s: %m", tmp);
		(void)rmdir(tmp);
		return r;
	}

	if (asprintf(&img, "%s/seed.img", tmp) < 0 || asprintf(&ud, "%s/user-data", tmp) < 0 ||
	    asprintf(&md, "%s/meta-data", tmp) < 0 || asprintf(&nc, "%s/network-config", tmp) < 0) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = write_file(dirfd, "user-data", seed->user_data, err)) < 0 ||
	    (r = write_file(dirfd, "meta-data", meta, err)) < 0 ||
	    (net && (r = write_file(dirfd, "network-config", seed->network_config, err)) < 0))
		goto out;

	total = strlen(seed->user_data) + strlen(meta) + strlen(strempty(seed->network_config));
	snprintf(kib, sizeof(kib), "%llu", (unsigned long long)cloudinit_seed_size_kib(total));
	char *mkfs[] = {(char *)"mkfs.vfat",
			(char *)"-n",
			(char *)CLOUDINIT_LABEL,
			(char *)"-C",
			img,
			kib,
			NULL};
	r = run_tool(search, mkfs, -1, timeout, err);
	if (r < 0)
		goto out;
	/* mtools reads the name after -i as it reads its configuration: it expands "$VAR" and
	 * '\', and takes "@@" for an offset and '|' or a line break for syntax. So the image
	 * goes by a name made of none of them, and its path (in the daemon's runtime directory,
	 * whatever the configuration says) is opened here. Sources are plain paths to mcopy. */
	imgfd = openat(dirfd, "seed.img", O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (imgfd < 0) {
		r = mv_err_internal(err, -errno, "cannot open %s: %m", img);
		goto out;
	}
	/* -Q: stop at the first file that cannot be copied. */
	char *mcopy[] = {(char *)"mcopy",
			 (char *)"-Q",
			 (char *)"-i",
			 (char *)"/proc/self/fd/3",
			 ud,
			 md,
			 net ? nc : (char *)"::",
			 net ? (char *)"::" : NULL,
			 NULL};
	r = run_tool(search, mcopy, imgfd, timeout, err);
	if (r < 0)
		goto out;
	if (renameat2(AT_FDCWD, img, AT_FDCWD, path, RENAME_NOREPLACE) < 0) {
		r = mv_err_internal(err, -errno, "cannot move the seed image to %s: %m", path);
		goto out;
	}
	r = 0;
out:
	tmpdir_remove(dirfd, tmp);
	return r;
}
