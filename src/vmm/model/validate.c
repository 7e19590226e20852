/* Validation of VM names and VM configs (see validate.h).
 *
 * validate_vm_config() walks the config in the field order of mvirt.VmConfig (vcpus, memory_mb,
 * kernel, initramfs, cmdline, firmware, disk, disks, nics, user_data) and reports the first
 * problem only, as "<field as the API spells it>: <cause>". Empty strings count as unset, like
 * proto3 does. Callers: the API layer on CreateVm, before anything is stored. */
#include "model/validate.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/macro.h"

#define NAME_RULE "use 1-63 characters a-z 0-9 . _ -, starting with a letter or digit"
#define IFNAME_MAX 15 /* IFNAMSIZ - 1 */
#define FIELD_MAX 64

static const char *errno_cause(int e)
{
	const char *d;

	switch (e) {
	case ENOENT:
		return "no such file";
	case EACCES:
		return "permission denied";
	case ENOTDIR:
		return "a component of the path is not a directory";
	case ELOOP:
		return "too many levels of symbolic links";
	case ENAMETOOLONG:
		return "file name too long";
	}
	d = strerrordesc_np(e);
	return d ? d : "unknown error";
}

static const char *file_type_name(mode_t mode)
{
	if (S_ISDIR(mode))
		return "a directory";
	if (S_ISCHR(mode))
		return "a character device";
	if (S_ISBLK(mode))
		return "a block device";
	if (S_ISFIFO(mode))
		return "a FIFO";
	if (S_ISSOCK(mode))
		return "a socket";
	return "a special file";
}

static bool is_name_char(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
}

int validate_vm_name(const char *name, const char *field, struct mv_error *err)
{
	char quoted[VM_NAME_MAX + 1];
	size_t len, i;

	if (!field)
		field = "name";
	if (isempty(name))
		return mv_err_invalid(err, "%s: required", field);

	len = strlen(name);
	if (len > VM_NAME_MAX)
		return mv_err_invalid(err, "%s: is too long (%zu characters, at most %d)", field,
				      len, VM_NAME_MAX);

	for (i = 0; i < len; i++) {
		char ch = name[i];

		if (is_name_char(ch) || (i > 0 && (ch == '.' || ch == '_' || ch == '-')))
			continue;
		return mv_err_invalid(err, "%s: '%s' is invalid: " NAME_RULE, field,
				      mv_printable(name, quoted, sizeof(quoted)));
	}
	return 0;
}

int validate_mac(const char *mac, const char *field, struct mv_error *err)
{
	char quoted[32];
	unsigned octet[6];
	size_t i;

	if (!field)
		field = "mac";
	if (isempty(mac))
		return mv_err_invalid(err, "%s: required", field);

	/* "xx:xx:xx:xx:xx:xx" is exactly 17 characters. */
	if (strnlen(mac, 18) != 17)
		goto syntax;
	for (i = 0; i < 6; i++) {
		int hi = hex_value(mac[3 * i]), lo = hex_value(mac[3 * i + 1]);

		if (hi < 0 || lo < 0 || (i < 5 && mac[3 * i + 2] != ':'))
			goto syntax;
		octet[i] = (unsigned)(hi << 4 | lo);
	}

	if (octet[0] & 1)
		return mv_err_invalid(err, "%s: %s is a multicast address; use a unicast one",
				      field, mac);
	if ((octet[0] | octet[1] | octet[2] | octet[3] | octet[4] | octet[5]) == 0)
		return mv_err_invalid(err, "%s: %s is not a usable address", field, mac);
	return 0;

syntax:
	return mv_err_invalid(
		err, "%s: '%s' is not a MAC address: use six hex pairs like 52:54:00:12:34:56",
		field, mv_printable(mac, quoted, sizeof(quoted)));
}

/* The kernel's own filesystems: their files are interfaces, never images. */
static const char *kernel_fs_name(const struct statfs *fs)
{
	switch ((unsigned long)fs->f_type) {
	case PROC_SUPER_MAGIC:
		return "procfs";
	case SYSFS_MAGIC:
		return "sysfs";
	case DEBUGFS_MAGIC:
		return "debugfs";
	case TRACEFS_MAGIC:
		return "tracefs";
	case SECURITYFS_MAGIC:
		return "securityfs";
	case CGROUP_SUPER_MAGIC:
	case CGROUP2_SUPER_MAGIC:
		return "cgroupfs";
	case BPF_FS_MAGIC:
		return "bpffs";
	case EFIVARFS_MAGIC:
		return "efivarfs";
	case DEVPTS_SUPER_MAGIC:
		return "devpts";
	case 0x62656570: /* CONFIGFS_MAGIC, not in linux/magic.h */
		return "configfs";
	}
	return NULL;
}

static bool under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0' || streq(dir, "/"));
}

/* Why the opened object at real (its resolved path) with st is the daemon's own, or NULL. */
static const char *own_cause(const struct path_policy *policy, const char *real,
			     const struct stat *st)
{
	struct stat own;

	if (!policy)
		return NULL;
	for (size_t i = 0; i < policy->n_own_files; i++)
		if (stat(policy->own_files[i], &own) == 0 && own.st_dev == st->st_dev &&
		    own.st_ino == st->st_ino)
			return "is (a link to) mvirt-vmm's state database";
	for (size_t i = 0; i < policy->n_pool_dirs; i++)
		if (under(real, policy->pool_dirs[i]))
			return NULL; /* the storage manager says which of these may be used */
	for (size_t i = 0; i < policy->n_own_dirs; i++)
		if (under(real, policy->own_dirs[i]))
			return "belongs to mvirt-vmm's own state or runtime files";
	return NULL;
}

static int open_path(const char *path, uint64_t resolve)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = resolve};
	long fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	if (fd < 0 && errno == ENOSYS) /* before Linux 5.6: no magic-link guard, the rest holds */
		fd = open(path, O_PATH | O_CLOEXEC);
	return fd < 0 ? -errno : (int)fd;
}

/* Judges path (see validate_path); the opened O_PATH fd goes to *ret_fd when ret_fd is set
 * (the caller closes it), else it is closed. */
static int check_path(const char *path, const char *field, enum path_kind kind,
		      const struct path_policy *policy, bool plain, struct stat *ret_st,
		      int *ret_fd, struct mv_error *err)
{
	_cleanup_close_ int fd = -1;
	char quoted[96], real[PATH_MAX], link[64];
	struct statfs fs;
	struct stat st;
	const char *cause, *fsname;
	ssize_t n;

	mv_printable(path, quoted, sizeof(quoted));
	if (path[0] != '/')
		return mv_err_invalid(err, "%s: must be an absolute path", field);
	if (strnlen(path, PATH_MAX) >= PATH_MAX)
		return mv_err_invalid(err, "%s: is too long (at most %d bytes)", field,
				      PATH_MAX - 1);
	fd = open_path(path,
		       plain ? RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS : RESOLVE_NO_MAGICLINKS);
	if (plain && fd == -ELOOP) {
		char target[160], shown[150];
		ssize_t t = readlink(path, real, sizeof(real) - 1);

		target[0] = '\0';
		if (t > 0) {
			real[t] = '\0';
			snprintf(target, sizeof(target), " (to %s)",
				 mv_printable(real, shown, sizeof(shown)));
		}
		return mv_err_invalid(
			err,
			"%s: %s had no symbolic link in it when the VM was created and "
			"now is reached through a symbolic link%s; refusing to follow "
			"it (recreate the VM to use it)",
			field, quoted, target);
	}
	if (fd == -ELOOP && (startswith(path, "/proc/") || startswith(path, "/dev/fd/")))
		return mv_err_invalid(err,
				      "%s: %s is a link into /proc (a process's file), "
				      "not a file of its own",
				      field, quoted);
	if (fd < 0)
		return mv_err_invalid(err, "%s: %s: %s", field, quoted, errno_cause(-fd));
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, real, sizeof(real) - 1);
	if (fstat(fd, &st) < 0 || fstatfs(fd, &fs) < 0 || n <= 0)
		return mv_err_invalid(err, "%s: %s: %s", field, quoted, errno_cause(errno));
	real[n] = '\0';
	if ((fsname = kernel_fs_name(&fs)) || under(real, "/proc") || under(real, "/sys"))
		return mv_err_invalid(err, "%s: %s is a kernel file (%s), not an image", field,
				      quoted, fsname ? fsname : real);
	if (!(S_ISREG(st.st_mode) || (kind == PATH_DISK && S_ISBLK(st.st_mode))))
		return mv_err_invalid(err, "%s: %s is %s, not a regular file%s", field, quoted,
				      file_type_name(st.st_mode),
				      kind == PATH_DISK ? " or block device" : "");
	if (under(real, "/dev") && !S_ISBLK(st.st_mode))
		return mv_err_invalid(err, "%s: %s is a file under /dev, not an image", field,
				      quoted);
	if ((cause = own_cause(policy, real, &st)))
		return mv_err_invalid(err, "%s: %s %s", field, quoted, cause);
	*ret_st = st;
	if (ret_fd)
		*ret_fd = TAKE_FD(fd);
	return 0;
}

int validate_path(const char *path, const char *field, enum path_kind kind,
		  const struct path_policy *policy, struct stat *ret_st, struct mv_error *err)
{
	return check_path(path, field, kind, policy, false, ret_st, NULL, err);
}

_Static_assert(VM_MAX_DISKS <= 28, "a plain_paths bit for every disk (VM_PLAIN_DISKS)");

static uint32_t plain_bit(const char *path, uint32_t bit)
{
	int fd;

	if (isempty(path) ||
	    (fd = open_path(path, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)) < 0)
		return 0;
	close(fd);
	return bit;
}

uint32_t validate_plain_paths(const struct vm_config *c)
{
	uint32_t m = plain_bit(c->kernel, VM_PLAIN_KERNEL) |
		     plain_bit(c->initramfs, VM_PLAIN_INITRAMFS) |
		     plain_bit(c->firmware, VM_PLAIN_FIRMWARE) | plain_bit(c->disk, VM_PLAIN_DISK);

	for (size_t i = 0; i < c->n_disks && i < VM_MAX_DISKS; i++)
		m |= plain_bit(c->disks[i].path, VM_PLAIN_DISKS(i));
	return m;
}

/* True when a and b are the same disk: the same inode, or the same block device (two device
 * nodes may name one device). */
static bool same_disk(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

static bool known_format(enum disk_format f)
{
	switch (f) {
	case DISK_FORMAT_UNSPECIFIED:
	case DISK_FORMAT_RAW:
	case DISK_FORMAT_QCOW2:
		return true;
	}
	return false;
}

/* The `disk` shorthand and `disks`, as one list: no more than VM_MAX_DISKS in all, each path
 * an existing file or block device, no file twice. */
static int check_disks(const struct vm_config *c, const struct path_policy *policy,
		       struct vm_path_fds *fds, struct mv_error *err)
{
	/* seen[k] / seen_field[k]: the disks checked so far, for duplicate detection. */
	struct stat seen[VM_MAX_DISKS];
	char seen_field[VM_MAX_DISKS][FIELD_MAX];
	size_t n_seen = 0, total, i, k;
	int r;

	total = c->n_disks + (isempty(c->disk) ? 0 : 1);
	if (total > VM_MAX_DISKS)
		return mv_err_invalid(err, "config.disks: %zu disks%s, at most %d", total,
				      isempty(c->disk) ? "" : " (counting config.disk)",
				      VM_MAX_DISKS);

	if (!isempty(c->disk)) {
		r = check_path(c->disk, "config.disk", PATH_DISK, policy,
			       c->plain_paths & VM_PLAIN_DISK, &seen[0], fds ? &fds->disk : NULL,
			       err);
		if (r < 0)
			return r;
		snprintf(seen_field[0], FIELD_MAX, "config.disk");
		n_seen = 1;
	}

	for (i = 0; i < c->n_disks; i++) {
		const struct vm_disk *d = &c->disks[i];
		char field[FIELD_MAX];
		struct stat st;

		if (!isempty(d->volume)) {
			/* Resolved and checked by the VM manager, which knows the volumes. */
			if (!isempty(d->path))
				return mv_err_invalid(
					err, "config.disks[%zu]: set path or volume, not both", i);
			snprintf(field, sizeof(field), "config.disks[%zu].volume", i);
			r = validate_vm_name(d->volume, field, err);
			if (r < 0)
				return r;
			continue;
		}
		snprintf(field, sizeof(field), "config.disks[%zu].path", i);
		if (isempty(d->path))
			return mv_err_invalid(err, "%s: required (or set config.disks[%zu].volume)",
					      field, i);
		r = check_path(d->path, field, PATH_DISK, policy,
			       c->plain_paths & VM_PLAIN_DISKS(i), &st, fds ? &fds->disks[i] : NULL,
			       err);
		if (r < 0)
			return r;
		for (k = 0; k < n_seen; k++)
			if (same_disk(&seen[k], &st))
				return mv_err_invalid(err, "%s: %s refers to the same disk as %s",
						      field, d->path, seen_field[k]);

		if (!known_format(d->format))
			return mv_err_invalid(err, "config.disks[%zu].format: unknown value %d", i,
					      (int)d->format);

		seen[n_seen] = st;
		snprintf(seen_field[n_seen], FIELD_MAX, "config.disks[%zu]", i);
		n_seen++;
	}
	return 0;
}

/* Linux's dev_valid_name(): 1-15 bytes, not "." or "..", no '/', ':' or whitespace. */
static bool ifname_valid(const char *s)
{
	size_t len = strnlen(s, IFNAME_MAX + 1), i;

	if (len == 0 || len > IFNAME_MAX)
		return false;
	if (streq(s, ".") || streq(s, ".."))
		return false;
	for (i = 0; i < len; i++)
		if (s[i] == '/' || s[i] == ':' || s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))
			return false;
	return true;
}

int validate_vm_nics(const struct vm_config *c, struct mv_error *err)
{
	size_t i, k;
	int r;

	if (c->n_nics > VM_MAX_NICS)
		return mv_err_invalid(err, "config.nics: %zu NICs, at most %d", c->n_nics,
				      VM_MAX_NICS);

	for (i = 0; i < c->n_nics; i++) {
		const struct vm_nic *n = &c->nics[i];
		char field[FIELD_MAX], quoted[IFNAME_MAX + 2];

		if (isempty(n->tap) == isempty(n->network))
			return mv_err_invalid(err, "config.nics[%zu]: set tap or network%s", i,
					      isempty(n->tap) ? "" : ", not both");

		if (!isempty(n->tap) && !ifname_valid(n->tap))
			return mv_err_invalid(
				err,
				"config.nics[%zu].tap: '%s' is not a valid interface name: "
				"use 1-15 characters without '/', ':' or whitespace",
				i, mv_printable(n->tap, quoted, sizeof(quoted)));

		if (!isempty(n->network)) {
			snprintf(field, sizeof(field), "config.nics[%zu].network", i);
			r = validate_vm_name(n->network, field, err);
			if (r < 0)
				return r;
		}

		if (isempty(n->mac))
			continue;
		snprintf(field, sizeof(field), "config.nics[%zu].mac", i);
		r = validate_mac(n->mac, field, err);
		if (r < 0)
			return r;
		for (k = 0; k < i; k++)
			if (!isempty(c->nics[k].mac) && strcasecmp(c->nics[k].mac, n->mac) == 0)
				return mv_err_invalid(err,
						      "%s: %s is already used by config.nics[%zu]",
						      field, n->mac, k);
	}
	return 0;
}

static int check_config(const struct vm_config *c, const struct host_limits *host,
			struct vm_path_fds *fds, struct mv_error *err)
{
	const struct path_policy *paths = host ? host->paths : NULL;
	bool has_kernel = !isempty(c->kernel);
	struct stat st;
	size_t len;
	int r;

	if (c->vcpus == 0)
		return mv_err_invalid(err, "config.vcpus: must be at least 1");
	if (host && host->cpus > 0 && c->vcpus > host->cpus)
		return mv_err_invalid(
			err, "config.vcpus: %" PRIu32 " exceeds the host's %" PRIu32 " CPUs",
			c->vcpus, host->cpus);

	if (c->memory_mb < VM_MIN_MEMORY_MB)
		return mv_err_invalid(
			err, "config.memory_mb: %" PRIu64 " is below the minimum of %d MiB",
			c->memory_mb, VM_MIN_MEMORY_MB);
	if (host && host->memory_mb > 0 && c->memory_mb > host->memory_mb)
		return mv_err_invalid(
			err, "config.memory_mb: %" PRIu64 " exceeds the host's %" PRIu64 " MiB",
			c->memory_mb, host->memory_mb);

	if (has_kernel) {
		r = check_path(c->kernel, "config.kernel", PATH_FILE, paths,
			       c->plain_paths & VM_PLAIN_KERNEL, &st, fds ? &fds->kernel : NULL,
			       err);
		if (r < 0)
			return r;
	}

	if (!isempty(c->initramfs)) {
		if (!has_kernel)
			return mv_err_invalid(err, "config.initramfs: requires config.kernel");
		r = check_path(c->initramfs, "config.initramfs", PATH_FILE, paths,
			       c->plain_paths & VM_PLAIN_INITRAMFS, &st,
			       fds ? &fds->initramfs : NULL, err);
		if (r < 0)
			return r;
	}

	if (!isempty(c->cmdline)) {
		if (!has_kernel)
			return mv_err_invalid(err, "config.cmdline: requires config.kernel");
		len = strlen(c->cmdline);
		if (len > VM_CMDLINE_MAX)
			return mv_err_invalid(err, "config.cmdline: is %zu bytes, at most %d", len,
					      VM_CMDLINE_MAX);
	}

	if (!isempty(c->firmware)) {
		if (has_kernel)
			return mv_err_invalid(
				err, "config.firmware: cannot be combined with config.kernel");
		r = check_path(c->firmware, "config.firmware", PATH_FILE, paths,
			       c->plain_paths & VM_PLAIN_FIRMWARE, &st, fds ? &fds->firmware : NULL,
			       err);
		if (r < 0)
			return r;
	} else if (!has_kernel)
		return mv_err_invalid(
			err,
			"config.kernel: required (or set config.firmware to boot a disk through firmware)");

	r = check_disks(c, paths, fds, err);
	if (r < 0)
		return r;

	r = validate_vm_nics(c, err);
	if (r < 0)
		return r;

	if (!isempty(c->user_data)) {
		len = strlen(c->user_data);
		if (len > VM_USER_DATA_MAX)
			return mv_err_invalid(err, "config.user_data: is %zu bytes, at most %d",
					      len, VM_USER_DATA_MAX);
	}
	if (!isempty(c->meta_data) && (len = strlen(c->meta_data)) > VM_META_DATA_MAX)
		return mv_err_invalid(err, "config.meta_data: is %zu bytes, at most %d", len,
				      VM_META_DATA_MAX);
	if (!isempty(c->network_config) && (len = strlen(c->network_config)) > VM_META_DATA_MAX)
		return mv_err_invalid(err, "config.network_config: is %zu bytes, at most %d", len,
				      VM_META_DATA_MAX);
	if ((!isempty(c->meta_data) || !isempty(c->network_config)) && isempty(c->user_data))
		return mv_err_invalid(err, "config.user_data: required when config.meta_data or "
					   "config.network_config is set");
	return 0;
}

void vm_path_fds_init(struct vm_path_fds *fds)
{
	fds->kernel = fds->initramfs = fds->firmware = fds->disk = -1;
	for (size_t i = 0; i < ELEMENTSOF(fds->disks); i++)
		fds->disks[i] = -1;
}

void vm_path_fds_close(struct vm_path_fds *fds)
{
	closep(&fds->kernel);
	closep(&fds->initramfs);
	closep(&fds->firmware);
	closep(&fds->disk);
	for (size_t i = 0; i < ELEMENTSOF(fds->disks); i++)
		closep(&fds->disks[i]);
	vm_path_fds_init(fds);
}

static int validate(const struct vm_config *c, const struct host_limits *host,
		    enum mv_error_kind bad, struct vm_path_fds *fds, struct mv_error *err)
{
	struct mv_error e = {0};
	int r = check_config(c, host, fds, &e);

	if (r < 0)
		return mv_err_kind(err, bad, r, "%s", e.msg);
	return 0;
}

int validate_vm_config(const struct vm_config *c, const struct host_limits *host,
		       enum mv_error_kind bad, struct mv_error *err)
{
	return validate(c, host, bad, NULL, err);
}

int validate_vm_config_open(const struct vm_config *c, const struct host_limits *host,
			    enum mv_error_kind bad, struct vm_path_fds *ret, struct mv_error *err)
{
	int r;

	vm_path_fds_init(ret);
	r = validate(c, host, bad, ret, err);
	if (r < 0)
		vm_path_fds_close(ret);
	return r;
}
