/* Tests of cloudinit.c: seeds built with the real dosfstools and mtools, read back with mtools
 * (mdir, mtype, mlabel); failures (a tool that fails, hangs or is missing, oversize input, an
 * existing target) leave nothing behind. Fake tools are shell scripts put first in $PATH. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "model/validate.h"
#include "vm/cloudinit.h"

#define LEAKED_FD 57 /* a non-O_CLOEXEC fd the tools must not see */

static char tmpdir[] = "/tmp/mvirt-test-cloudinit-XXXXXX";
static char *saved_path;
static int saved_cwd = -1; /* a test that changes directory: teardown goes back */

static char *tmp_path(const char *leaf)
{
	char *p = NULL;

	assert_true(asprintf(&p, "%s/%s", tmpdir, leaf) > 0);
	return p;
}

static bool have_tool(const char *name)
{
	char *cmd = NULL;
	int r;

	assert_true(asprintf(&cmd, "PATH=$PATH:/usr/sbin:/sbin command -v %s >/dev/null", name) >
		    0);
	r = system(cmd);
	free(cmd);
	return r == 0;
}

static void require_tools(void)
{
	if (!have_tool("mkfs.vfat") || !have_tool("mcopy") || !have_tool("mtype") ||
	    !have_tool("mdir") || !have_tool("mlabel"))
		skip(); /* needs dosfstools and mtools (scripts/packages.txt) */
}

/* Runs cmd (sh) and returns its stdout (heap) and exit status. */
static char *run(const char *cmd, int *ret_status)
{
	FILE *f = popen(cmd, "re");
	char *out = NULL;
	size_t n = 0, cap = 0;
	int c, st;

	assert_non_null(f);
	while ((c = fgetc(f)) != EOF) {
		if (n + 1 >= cap) {
			cap = cap ? cap * 2 : 4096;
			out = realloc(out, cap);
			assert_non_null(out);
		}
		out[n++] = (char)c;
	}
	if (!out)
		out = calloc(1, 1);
	else
		out[n] = '\0';
	st = pclose(f);
	if (ret_status)
		*ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	return out;
}

/* The bytes of file in the FAT image img, via mtype; asserts that mtype succeeds. */
static char *image_file(const char *img, const char *file)
{
	char *cmd = NULL, *out;
	int st;

	assert_true(asprintf(&cmd, "MTOOLS_SKIP_CHECK=1 mtype -i '%s' '::%s' 2>/dev/null", img,
			     file) > 0);
	out = run(cmd, &st);
	free(cmd);
	assert_int_equal(st, 0);
	return out;
}

/* The long file names in the image's root directory, sorted, one per line. */
static char *image_names(const char *img)
{
	char *cmd = NULL, *out;
	int st;

	assert_true(asprintf(&cmd, "MTOOLS_SKIP_CHECK=1 mdir -b -i '%s' :: | sed 's|^::/||' | sort",
			     img) > 0);
	out = run(cmd, &st);
	free(cmd);
	assert_int_equal(st, 0);
	return out;
}

static char *image_label(const char *img)
{
	char *cmd = NULL, *out;
	int st;

	assert_true(asprintf(&cmd, "MTOOLS_SKIP_CHECK=1 mlabel -s -i '%s' ::", img) > 0);
	out = run(cmd, &st);
	free(cmd);
	assert_int_equal(st, 0);
	return out;
}

/* The entries of tmpdir other than those in keep (NULL-terminated), for leftover checks. */
static int count_entries_except(const char *const *keep)
{
	DIR *d = opendir(tmpdir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d))) {
		bool kept = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0;

		for (size_t i = 0; keep && keep[i]; i++)
			kept = kept || strcmp(de->d_name, keep[i]) == 0;
		if (!kept) {
			print_message("leftover: %s\n", de->d_name);
			n++;
		}
	}
	closedir(d);
	return n;
}

/* A script name in <tmpdir>/fakebin, which setup puts first in PATH. */
static void fake_tool(const char *name, const char *body)
{
	char *leaf = NULL, *p;
	FILE *f;

	assert_true(asprintf(&leaf, "fakebin/%s", name) > 0);
	p = tmp_path(leaf);
	f = fopen(p, "we");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s\n", body);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(p, 0755), 0);
	free(p);
	free(leaf);
}

static int setup(void **state)
{
	char *bin, *path = NULL;

	(void)state;
	memcpy(tmpdir + sizeof(tmpdir) - 7, "XXXXXX", 6); /* mkdtemp filled them in */
	if (!mkdtemp(tmpdir))
		return -1;
	bin = tmp_path("fakebin");
	if (mkdir(bin, 0755) < 0)
		return -1;
	saved_path = strdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
	if (asprintf(&path, "%s:%s", bin, saved_path) < 0)
		return -1;
	setenv("PATH", path, 1);
	free(path);
	free(bin);
	return 0;
}

static int teardown(void **state)
{
	char *cmd = NULL;

	(void)state;
	if (saved_cwd >= 0) {
		(void)!fchdir(saved_cwd);
		close(saved_cwd);
		saved_cwd = -1;
	}
	setenv("PATH", saved_path, 1);
	free(saved_path);
	if (asprintf(&cmd, "rm -rf '%s'", tmpdir) > 0)
		(void)system(cmd);
	free(cmd);
	return 0;
}

static void test_seed_holds_the_files_and_the_label(void **state)
{
	const char *ud = "#cloud-config\n# marker 42 \xc3\xa9t\xc3\xa9\nruncmd:\n  - [echo, hi]\n";
	const char *md = "instance-id: given\nlocal-hostname: host-a\n";
	const char *nc = "version: 2\nethernets: {}\n";
	struct cloudinit_seed seed = {.user_data = ud,
				      .meta_data = md,
				      .network_config = nc,
				      .instance_id = "ignored",
				      .hostname = "ignored"};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img"), *s;
	const char *keep[] = {"fakebin", "seed.img", NULL};
	struct stat st;

	(void)state;
	require_tools();
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), 0);
	assert_int_equal(err.code, 0);

	s = image_label(img);
	assert_non_null(strstr(s, "Volume label is CIDATA"));
	free(s);
	s = image_names(img);
	assert_string_equal(s, "meta-data\nnetwork-config\nuser-data\n");
	free(s);
	s = image_file(img, "user-data");
	assert_string_equal(s, ud);
	free(s);
	s = image_file(img, "meta-data");
	assert_string_equal(s, md);
	free(s);
	s = image_file(img, "network-config");
	assert_string_equal(s, nc);
	free(s);

	assert_int_equal(stat(img, &st), 0);
	assert_int_equal(st.st_size,
			 (off_t)cloudinit_seed_size_kib(strlen(ud) + strlen(md) + strlen(nc)) *
				 1024);
	assert_int_equal(count_entries_except(keep), 0);
	unlink(img);
	free(img);
}

static void test_default_meta_data_and_no_network_config(void **state)
{
	struct cloudinit_seed seed = {.user_data = "#cloud-config\n",
				      .instance_id = "0b5a5c1e-8f5e-4a8e-9f62-6f0c3b1d2e4f",
				      .hostname = "web-1"};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img"), *s;

	(void)state;
	require_tools();
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), 0);
	s = image_names(img);
	assert_string_equal(s, "meta-data\nuser-data\n");
	free(s);
	s = image_file(img, "meta-data");
	assert_string_equal(s, "instance-id: 0b5a5c1e-8f5e-4a8e-9f62-6f0c3b1d2e4f\n"
			       "local-hostname: web-1\n");
	free(s);
	s = image_file(img, "user-data");
	assert_string_equal(s, "#cloud-config\n");
	free(s);
	unlink(img);
	free(img);
}

static void test_default_meta_data_needs_plain_words(void **state)
{
	struct cloudinit_seed seed = {.user_data = "#cloud-config\n",
				      .instance_id = "id",
				      .hostname = "evil\nuser-data: x"};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img");
	const char *keep[] = {"fakebin", NULL};

	(void)state;
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "meta-data"));
	seed.hostname = NULL;
	mv_error_clear(&err);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EINVAL);
	assert_int_equal(count_entries_except(keep), 0);
	free(img);
}

static void test_largest_user_data_fits(void **state)
{
	char *ud = malloc(VM_USER_DATA_MAX + 1), *md = malloc(VM_META_DATA_MAX + 1);
	struct cloudinit_seed seed = {.user_data = ud, .meta_data = md, .network_config = md};
	struct mv_error err = {0};
	char *img = tmp_path("big.img"), *s;
	struct stat st;

	(void)state;
	require_tools();
	assert_non_null(ud);
	assert_non_null(md);
	for (size_t i = 0; i < VM_USER_DATA_MAX; i++)
		ud[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
	ud[VM_USER_DATA_MAX] = '\0';
	for (size_t i = 0; i < VM_META_DATA_MAX; i++)
		md[i] = i % 32 == 31 ? '\n' : '#';
	md[VM_META_DATA_MAX] = '\0';
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), 0);
	s = image_file(img, "user-data");
	assert_int_equal(strlen(s), VM_USER_DATA_MAX);
	assert_memory_equal(s, ud, VM_USER_DATA_MAX);
	free(s);
	s = image_file(img, "network-config");
	assert_string_equal(s, md);
	free(s);
	assert_int_equal(stat(img, &st), 0);
	/* About 1.2 MiB of files: the image stays a few MiB. */
	assert_true(st.st_size <= 3 * 1024 * 1024);
	unlink(img);
	free(img);
	free(ud);
	free(md);
}

static void test_size_caps(void **state)
{
	char *big = malloc(VM_USER_DATA_MAX + 2);
	struct cloudinit_seed seed = {.instance_id = "i", .hostname = "h"};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img");
	const char *keep[] = {"fakebin", NULL};

	(void)state;
	assert_non_null(big);
	memset(big, 'x', VM_USER_DATA_MAX + 1);
	big[VM_USER_DATA_MAX + 1] = '\0';
	seed.user_data = big;
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "user-data: is 1048577 bytes"));

	big[VM_META_DATA_MAX + 1] = '\0';
	seed.user_data = "#cloud-config\n";
	seed.meta_data = big;
	mv_error_clear(&err);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "meta-data"));
	seed.meta_data = NULL;
	seed.network_config = big;
	mv_error_clear(&err);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "network-config"));

	seed.network_config = NULL;
	seed.user_data = "";
	mv_error_clear(&err);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "user-data: required"));

	assert_int_equal(count_entries_except(keep), 0);
	assert_int_equal(cloudinit_seed_size_kib(0), CLOUDINIT_OVERHEAD_KIB);
	assert_int_equal(cloudinit_seed_size_kib(1), CLOUDINIT_OVERHEAD_KIB + 1);
	assert_int_equal(cloudinit_seed_size_kib(1024), CLOUDINIT_OVERHEAD_KIB + 1);
	assert_int_equal(cloudinit_seed_size_kib(1025), CLOUDINIT_OVERHEAD_KIB + 2);
	free(big);
	free(img);
}

/* A failing mcopy (after mkfs.vfat made the image): its stderr is in the message, nothing is
 * left, and it saw none of our fds. */
static void test_tool_failure_leaves_nothing(void **state)
{
	struct cloudinit_seed seed = {
		.user_data = "#cloud-config\n", .instance_id = "i", .hostname = "h"};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img"), *mark = tmp_path("fakebin/ran");
	const char *keep[] = {"fakebin", NULL};
	int leak;

	(void)state;
	require_tools();
	fake_tool("mcopy", "[ -e /proc/$$/fd/57 ] && echo LEAKED >&2\n"
			   "[ -e \"$3\" ] && : > \"$(dirname \"$0\")/ran\"\n"
			   "echo 'mcopy: disk full, sorry' >&2\necho 'second line' >&2\nexit 3");
	leak = open("/dev/null", O_RDONLY);
	assert_true(leak >= 0);
	assert_int_equal(dup2(leak, LEAKED_FD), LEAKED_FD);
	close(leak);

	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EIO);
	close(LEAKED_FD);
	assert_string_equal(err.msg,
			    "mcopy exited with status 3: mcopy: disk full, sorry second line");
	assert_int_equal(access(mark, F_OK), 0); /* it ran, with the image made by mkfs.vfat */
	assert_int_equal(access(img, F_OK), -1);
	unlink(mark);
	assert_int_equal(count_entries_except(keep), 0);
	free(mark);
	free(img);
}

static void test_hung_tool_is_killed(void **state)
{
	struct cloudinit_seed seed = {.user_data = "#cloud-config\n",
				      .instance_id = "i",
				      .hostname = "h",
				      .timeout_ms = 300};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img");
	const char *keep[] = {"fakebin", NULL};
	struct timespec a, b;
	double secs;

	(void)state;
	fake_tool("mkfs.vfat", "exec sleep 30");
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	assert_true(secs >= 0.25 && secs < 5);
	assert_string_equal(err.msg, "mkfs.vfat did not finish within 300 ms (killed)");
	assert_int_equal(count_entries_except(keep), 0);
	/* Reaped: no child of ours is left. */
	assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	free(img);
}

static void test_missing_tool(void **state)
{
	struct cloudinit_seed seed = {
		.user_data = "#cloud-config\n", .instance_id = "i", .hostname = "h"};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img"), *bin = tmp_path("fakebin");
	const char *keep[] = {"fakebin", NULL};

	(void)state;
	if (!have_tool("mkfs.vfat"))
		skip();
	/* mkfs.vfat is still found in /usr/sbin or /sbin, mcopy (in /usr/bin) is not. */
	setenv("PATH", bin, 1);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -ENOMEDIUM);
	assert_non_null(strstr(err.msg, "mcopy not found"));
	assert_non_null(strstr(err.msg, "mtools"));
	assert_int_equal(count_entries_except(keep), 0);
	free(img);
	free(bin);
}

static void test_existing_target_is_kept(void **state)
{
	struct cloudinit_seed seed = {
		.user_data = "#cloud-config\n", .instance_id = "i", .hostname = "h"};
	struct mv_error err = {0};
	char *img = tmp_path("seed.img"), buf[16] = {0};
	const char *keep[] = {"fakebin", "seed.img", NULL};
	int fd;

	(void)state;
	fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "mine", 4), 4);
	close(fd);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -EEXIST);
	fd = open(img, O_RDONLY | O_CLOEXEC);
	assert_int_equal(read(fd, buf, sizeof(buf) - 1), 4);
	close(fd);
	assert_string_equal(buf, "mine");
	assert_int_equal(count_entries_except(keep), 0);
	unlink(img);
	free(img);
}

static void test_missing_directory(void **state)
{
	struct cloudinit_seed seed = {
		.user_data = "#cloud-config\n", .instance_id = "i", .hostname = "h"};
	struct mv_error err = {0};
	char *img = tmp_path("no/such/dir/seed.img");

	(void)state;
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "temporary directory"));
	free(img);
}

/* A relative path is refused before any tool runs: mtools would take "a:b/user-data" for a
 * file on drive A: and mkfs.vfat "-v/seed.img" for options. Any absolute one works. */
static void test_path_must_be_absolute(void **state)
{
	struct cloudinit_seed seed = {
		.user_data = "#cloud-config\n", .instance_id = "i", .hostname = "h"};
	const char *keep[] = {"fakebin", "a:b", "-v", NULL};
	struct mv_error err = {0};
	char *a = tmp_path("a:b"), *v = tmp_path("-v"), *img = tmp_path("-v/a:b seed.img"), *ud;

	(void)state;
	require_tools();
	saved_cwd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	assert_true(saved_cwd >= 0);
	assert_int_equal(mkdir(a, 0700), 0);
	assert_int_equal(mkdir(v, 0700), 0);
	assert_int_equal(chdir(tmpdir), 0);
	assert_int_equal(cloudinit_seed_build(&seed, "a:b/seed.img", &err), -EINVAL);
	assert_non_null(strstr(err.msg, "absolute"));
	memset(&err, 0, sizeof(err));
	assert_int_equal(cloudinit_seed_build(&seed, "-v/seed.img", &err), -EINVAL);
	assert_int_equal(cloudinit_seed_build(&seed, "", &err), -EINVAL);
	assert_int_equal(fchdir(saved_cwd), 0);
	close(saved_cwd);
	saved_cwd = -1;
	assert_int_equal(count_entries_except(keep), 0);
	assert_int_equal(rmdir(a), 0);

	memset(&err, 0, sizeof(err));
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), 0);
	ud = image_file(img, "user-data");
	assert_string_equal(ud, "#cloud-config\n");
	free(ud);
	unlink(img);
	free(img);
	free(v);
	free(a);
}

/* mtools reads the image name after -i as configuration: it expands "$HOME" and '\\', takes
 * "@@" for an offset, '|' and line breaks for syntax. A runtime directory may hold any of them
 * (the daemon's configuration names it); mcopy used to fail there. */
static void test_any_directory_name(void **state)
{
	struct cloudinit_seed seed = {
		.user_data = "#cloud-config\n", .instance_id = "i", .hostname = "h"};
	const char *keep[] = {"fakebin", "$HOME \\x@@1|\n* a:b", "plain.img", NULL};
	struct mv_error err = {0};
	char *dir = tmp_path(keep[1]), *img = NULL, *plain = tmp_path("plain.img"), *ud;

	(void)state;
	require_tools();
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_true(asprintf(&img, "%s/seed.img", dir) > 0);
	assert_int_equal(cloudinit_seed_build(&seed, img, &err), 0);
	assert_string_equal(err.msg, "");
	assert_int_equal(rename(img, plain), 0); /* for image_file's mtype */
	ud = image_file(plain, "user-data");
	assert_string_equal(ud, "#cloud-config\n");
	assert_int_equal(count_entries_except(keep), 0);
	assert_int_equal(rmdir(dir), 0); /* nothing left in it */
	unlink(plain);
	free(ud);
	free(plain);
	free(img);
	free(dir);
}

/* What a daemon that died during a build leaves behind is removed with the seed; nothing
 * else is touched. */
static void test_remove_cleans_a_crashed_build(void **state)
{
	char *img = tmp_path("seed.img"), *left = tmp_path("seed.img.tmp-Ab12Cd"),
	     *left_ud = tmp_path("seed.img.tmp-Ab12Cd/user-data"),
	     *left_img = tmp_path("seed.img.tmp-Ab12Cd/seed.img"), *other = tmp_path("seed.imgx"),
	     *odir = tmp_path("other.tmp-Ab12Cd");
	const char *keep[] = {"fakebin", "seed.imgx", "other.tmp-Ab12Cd", NULL};
	int fd;

	(void)state;
	assert_int_equal(mkdir(left, 0700), 0);
	assert_int_equal(mkdir(odir, 0700), 0);
	const char *files[] = {img, left_ud, left_img, other};
	for (size_t i = 0; i < 4; i++) {
		fd = open(files[i], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		assert_true(fd >= 0);
		close(fd);
	}
	cloudinit_seed_remove(img);
	assert_int_equal(access(img, F_OK), -1);
	assert_int_equal(access(left, F_OK), -1);
	assert_int_equal(access(other, F_OK), 0);
	assert_int_equal(access(odir, F_OK), 0);
	assert_int_equal(count_entries_except(keep), 0);
	cloudinit_seed_remove(img); /* nothing there: fine */
	free(img);
	free(left);
	free(left_ud);
	free(left_img);
	free(other);
	free(odir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_seed_holds_the_files_and_the_label, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_default_meta_data_and_no_network_config, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_default_meta_data_needs_plain_words, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_largest_user_data_fits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_size_caps, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tool_failure_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hung_tool_is_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_tool, setup, teardown),
		cmocka_unit_test_setup_teardown(test_existing_target_is_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_directory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_path_must_be_absolute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_any_directory_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remove_cleans_a_crashed_build, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
