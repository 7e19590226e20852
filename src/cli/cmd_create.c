/* mvirt create NAME [OPTIONS]: defines a VM (CreateVm) and prints it.
 *
 * The CLI only parses: numbers, sizes, the key=value lists of --disk-spec, --nic and --network,
 * and reads the --user-data file. Every rule on the values (ranges, existing files, one of kernel
 * and firmware ...) is the daemon's to check, so its messages are the ones
 * users see. Relative paths are resolved against the current directory first, since the daemon
 * requires absolute paths.
 *
 * Every string in the request's config is owned here (heap) or protobuf_c_empty_string. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

#define USER_DATA_READ_MAX (4 * 1024 * 1024)

static void free_str(char *s)
{
	if (s && s != protobuf_c_empty_string)
		free(s);
}

void cli_config_done(Mvirt__VmConfig *c)
{
	free_str(c->kernel);
	free_str(c->initramfs);
	free_str(c->cmdline);
	free_str(c->firmware);
	free_str(c->user_data);
	free_str(c->meta_data);
	free_str(c->network_config);
	for (size_t i = 0; i < c->n_disks; i++) {
		free_str(c->disks[i]->path);
		free_str(c->disks[i]->volume);
		free(c->disks[i]);
	}
	free(c->disks);
	for (size_t i = 0; i < c->n_nics; i++) {
		free_str(c->nics[i]->tap);
		free_str(c->nics[i]->network);
		free_str(c->nics[i]->mac);
		free(c->nics[i]);
	}
	free(c->nics);
}

/* Absolute paths are kept as given (so /dev/disk/by-id/... stays stable); relative ones are
 * resolved against the current directory, or just prefixed with it when they do not exist, so
 * that the daemon names the missing file. */
static int make_absolute(const char *path, char **ret)
{
	_cleanup_free_ char *cwd = NULL;
	char *p = NULL;

	if (isempty(path) || path[0] == '/')
		return (*ret = strdup(path)) ? 0 : -ENOMEM;
	p = realpath(path, NULL);
	if (!p) {
		if (errno == ENOMEM)
			return -ENOMEM;
		if (!(cwd = getcwd(NULL, 0)))
			return -errno;
		if (asprintf(&p, "%s/%s", cwd, path) < 0)
			return -ENOMEM;
	}
	*ret = p;
	return 0;
}

/* "512", "512M", "512MiB", "2G", "2GiB" (case-insensitive) → MiB. */
static int parse_memory(const char *s, uint64_t *ret)
{
	_cleanup_free_ char *num = NULL;
	size_t n = strspn(s, "0123456789");
	const char *suffix = s + n;
	uint64_t v, mult;
	int r;

	if (!*suffix || !strcasecmp(suffix, "M") || !strcasecmp(suffix, "MiB") ||
	    !strcasecmp(suffix, "MB"))
		mult = 1;
	else if (!strcasecmp(suffix, "G") || !strcasecmp(suffix, "GiB") ||
		 !strcasecmp(suffix, "GB"))
		mult = 1024;
	else
		return -EINVAL;
	if (!(num = strndup(s, n)))
		return -ENOMEM;
	if ((r = cli_parse_u64(num, &v)) < 0)
		return r;
	if (v > UINT64_MAX / mult)
		return -ERANGE;
	*ret = v * mult;
	return 0;
}

static int parse_bool(const char *s, protobuf_c_boolean *ret)
{
	static const char *const yes[] = {"on", "true", "yes", "1"};
	static const char *const no[] = {"off", "false", "no", "0"};

	for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
		if (streq(s, yes[i])) {
			*ret = 1;
			return 0;
		}
		if (streq(s, no[i])) {
			*ret = 0;
			return 0;
		}
	}
	return -EINVAL;
}

static int add_disk(Mvirt__VmConfig *c, Mvirt__Disk **ret)
{
	Mvirt__Disk **disks = reallocarray(c->disks, c->n_disks + 1, sizeof(*disks));
	Mvirt__Disk *d;

	if (!disks)
		return -ENOMEM;
	c->disks = disks;
	if (!(d = malloc(sizeof(*d))))
		return -ENOMEM;
	mvirt__disk__init(d);
	c->disks[c->n_disks++] = d;
	*ret = d;
	return 0;
}

static int add_nic(Mvirt__VmConfig *c, Mvirt__Nic **ret)
{
	Mvirt__Nic **nics = reallocarray(c->nics, c->n_nics + 1, sizeof(*nics));
	Mvirt__Nic *nic;

	if (!nics)
		return -ENOMEM;
	c->nics = nics;
	if (!(nic = malloc(sizeof(*nic))))
		return -ENOMEM;
	mvirt__nic__init(nic);
	c->nics[c->n_nics++] = nic;
	*ret = nic;
	return 0;
}

/* Replaces *field (owned) with a copy of value, or with value made absolute. */
static int set_str(char **field, const char *value, bool path)
{
	char *s = NULL;
	int r;

	if (path) {
		if ((r = make_absolute(value, &s)) < 0)
			return r;
	} else if (!(s = strdup(value))) {
		return -ENOMEM;
	}
	free_str(*field);
	*field = s;
	return 0;
}

/* "path=P,format=raw|qcow2|auto,readonly=on|off". */
static int parse_disk_spec(struct cli *cli, const char *spec, Mvirt__VmConfig *c)
{
	_cleanup_free_ char *copy = strdup(spec);
	char *rest = copy, *item;
	Mvirt__Disk *d;
	int r;

	if (!copy || add_disk(c, &d) < 0)
		return cli_error("out of memory");
	while ((item = strsep(&rest, ","))) {
		char *value = strchr(item, '=');

		if (!value)
			return cli_usage_error(cli, "--disk-spec: '%s' is not key=value", item);
		*value++ = '\0';
		if (streq(item, "path")) {
			r = set_str(&d->path, value, true);
		} else if (streq(item, "format")) {
			if (streq(value, "raw"))
				d->format = MVIRT__DISK_FORMAT__DISK_FORMAT_RAW;
			else if (streq(value, "qcow2"))
				d->format = MVIRT__DISK_FORMAT__DISK_FORMAT_QCOW2;
			else if (streq(value, "auto"))
				d->format = MVIRT__DISK_FORMAT__DISK_FORMAT_UNSPECIFIED;
			else
				return cli_usage_error(
					cli,
					"--disk-spec: unknown format '%s' (raw, qcow2 or auto)",
					value);
			r = 0;
		} else if (streq(item, "readonly") || streq(item, "ro")) {
			if (parse_bool(value, &d->readonly) < 0)
				return cli_usage_error(
					cli, "--disk-spec: %s: '%s' is not on or off", item, value);
			r = 0;
		} else {
			return cli_usage_error(
				cli, "--disk-spec: unknown key '%s' (path, format, readonly)",
				item);
		}
		if (r < 0)
			return cli_error("--disk-spec: %s", strerror(-r));
	}
	if (isempty(d->path))
		return cli_usage_error(cli, "--disk-spec: path= is missing in '%s'", spec);
	return CLI_EXIT_OK;
}

int cli_parse_nic(struct cli *cli, const char *opt, const char *spec, bool short_form,
		  Mvirt__Nic *nic)
{
	_cleanup_free_ char *copy = strdup(spec);
	char *rest = copy, *item;
	char **field;

	if (!copy)
		return cli_error("out of memory");
	if (short_form) {
		item = strsep(&rest, ",");
		if (isempty(item))
			return cli_usage_error(cli, "%s: the network's name is missing in '%s'",
					       opt, spec);
		if (strchr(item, '='))
			return cli_usage_error(
				cli, "%s: '%s' is not a network name (NAME[,mac=MAC])", opt, item);
		if (set_str(&nic->network, item, false) < 0)
			return cli_error("out of memory");
	}
	while ((item = strsep(&rest, ","))) {
		char *value = strchr(item, '=');

		if (!value)
			return cli_usage_error(cli, "%s: '%s' is not key=value", opt, item);
		*value++ = '\0';
		if (streq(item, "mac"))
			field = &nic->mac;
		else if (!short_form && streq(item, "tap"))
			field = &nic->tap;
		else if (!short_form && streq(item, "network"))
			field = &nic->network;
		else if (short_form)
			return cli_usage_error(cli, "%s: unknown key '%s' (mac)", opt, item);
		else
			return cli_usage_error(cli, "%s: unknown key '%s' (tap, network, mac)", opt,
					       item);
		if (set_str(field, value, false) < 0)
			return cli_error("out of memory");
	}
	return CLI_EXIT_OK;
}

/* Reads a cloud-init file given to --OPT (user-data, meta-data, network-config). */
static int read_text_file(const char *opt, const char *path, char **ret)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	struct stat st;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return cli_error("--%s %s: %s", opt, path, strerror(errno));
	if (fstat(fd, &st) < 0)
		return cli_error("--%s %s: %s", opt, path, strerror(errno));
	if (!S_ISREG(st.st_mode))
		return cli_error("--%s %s: not a regular file", opt, path);
	if (!(buf = malloc(USER_DATA_READ_MAX + 1)))
		return cli_error("out of memory");
	for (;;) {
		ssize_t n = read(fd, buf + len, USER_DATA_READ_MAX + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return cli_error("--%s %s: %s", opt, path, strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > USER_DATA_READ_MAX)
			return cli_error("--%s %s: larger than %d MiB", opt, path,
					 USER_DATA_READ_MAX / (1024 * 1024));
	}
	if (memchr(buf, '\0', len))
		return cli_error("--%s %s: contains a NUL byte", opt, path);
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	return CLI_EXIT_OK;
}

int cli_build_config(struct cli *cli, const struct args *args, Mvirt__VmConfig *c)
{
	Mvirt__Disk *d;
	int r;

	for (size_t i = 0; i < args->n_values; i++) {
		const char *name = args->values[i].opt->name, *v = args->values[i].value;

		r = 0;
		if (streq(name, "vcpus")) {
			if (cli_parse_u32(v, &c->vcpus) < 0)
				return cli_usage_error(cli, "--vcpus: '%s' is not a number", v);
		} else if (streq(name, "memory")) {
			if (parse_memory(v, &c->memory_mb) < 0)
				return cli_usage_error(
					cli,
					"--memory: '%s' is not a size in MiB (e.g. 512, 512M, 2G)",
					v);
		} else if (streq(name, "kernel")) {
			r = set_str(&c->kernel, v, true);
		} else if (streq(name, "initramfs")) {
			r = set_str(&c->initramfs, v, true);
		} else if (streq(name, "cmdline")) {
			r = set_str(&c->cmdline, v, false);
		} else if (streq(name, "firmware")) {
			r = set_str(&c->firmware, v, true);
		} else if (streq(name, "disk") || streq(name, "disk-ro")) {
			if ((r = add_disk(c, &d)) == 0 && (r = set_str(&d->path, v, true)) == 0)
				d->readonly = streq(name, "disk-ro");
		} else if (streq(name, "disk-spec")) {
			if ((r = parse_disk_spec(cli, v, c)) != CLI_EXIT_OK)
				return r;
		} else if (streq(name, "nic") || streq(name, "network")) {
			Mvirt__Nic *nic;

			if (add_nic(c, &nic) < 0)
				return cli_error("out of memory");
			if ((r = cli_parse_nic(cli, streq(name, "network") ? "--network" : "--nic",
					       v, streq(name, "network"), nic)) != CLI_EXIT_OK)
				return r;
		} else if (streq(name, "volume") || streq(name, "volume-ro")) {
			if ((r = add_disk(c, &d)) == 0 && (r = set_str(&d->volume, v, false)) == 0)
				d->readonly = streq(name, "volume-ro");
		} else if (streq(name, "user-data") || streq(name, "meta-data") ||
			   streq(name, "network-config")) {
			char **field = streq(name, "user-data")   ? &c->user_data
				       : streq(name, "meta-data") ? &c->meta_data
								  : &c->network_config;

			free_str(*field);
			*field = NULL;
			if ((r = read_text_file(name, v, field)) != CLI_EXIT_OK)
				return r;
		} else if (streq(name, "autostart")) {
			/* create: a flag; set: on or off */
			if (*v && parse_bool(v, &c->autostart) < 0)
				return cli_usage_error(cli, "--autostart: '%s' is not on or off",
						       v);
			if (!*v)
				c->autostart = 1;
		} else if (streq(name, "autostart-order")) {
			if (cli_parse_u32(v, &c->autostart_order) < 0)
				return cli_usage_error(
					cli, "--autostart-order: '%s' is not a number", v);
		}
		if (r < 0)
			return cli_error("--%s %s: %s", name, v, strerror(-r));
	}
	return CLI_EXIT_OK;
}

void cli_print_vm(const ProtobufCMessage *msg)
{
	cmd_show_print_vm((const Mvirt__Vm *)msg);
}

static int cmd_create_exec(struct cli *cli, const struct args *args)
{
	Mvirt__CreateVmRequest req = MVIRT__CREATE_VM_REQUEST__INIT;
	Mvirt__VmConfig config = MVIRT__VM_CONFIG__INIT;
	ProtobufCMessage *resp = NULL;
	int r;

	req.name = args->positional[0];
	req.config = &config;
	if ((r = cli_build_config(cli, args, &config)) == CLI_EXIT_OK &&
	    (r = cli_call(cli, "CreateVm", &req.base, &resp)) == CLI_EXIT_OK) {
		r = cli_print_result(cli, resp, cli_print_vm);
		protobuf_c_message_free_unpacked(resp, NULL);
	}
	cli_config_done(&config);
	return r;
}

static const struct cmd_option create_options[] = {
	{"vcpus", 0, "N", "number of virtual CPUs"},
	{"memory", 0, "SIZE", "memory in MiB, or with a suffix: 512M, 2G"},
	{"kernel", 0, "PATH", "kernel for direct boot (vmlinux with PVH note, or bzImage)"},
	{"initramfs", 0, "PATH", "initramfs for direct kernel boot"},
	{"cmdline", 0, "STR", "kernel command line"},
	{"firmware", 0, "PATH", "firmware to boot instead of a kernel (e.g. CLOUDHV.fd)"},
	{"disk", 0, "PATH",
	 "a read-write disk image or block device, format detected (repeatable)"},
	{"disk-ro", 0, "PATH", "a read-only disk (repeatable)"},
	{"disk-spec", 0, "SPEC",
	 "a disk as path=PATH[,format=raw|qcow2|auto][,readonly=on|off] (repeatable)"},
	{"network", 0, "NET",
	 "a NIC on the mvirt network NET, as NET or NET,mac=MAC: short for --nic network=NET "
	 "(repeatable)"},
	{"nic", 0, "SPEC", "a NIC as tap=NAME or network=NAME, then [,mac=MAC] (repeatable)"},
	{"volume", 0, "NAME", "a read-write disk that is a storage volume (repeatable)"},
	{"volume-ro", 0, "NAME", "a read-only volume disk (repeatable)"},
	{"user-data", 0, "FILE", "cloud-init user-data, attached as a NoCloud seed"},
	{"meta-data", 0, "FILE", "cloud-init meta-data (default: instance-id and hostname)"},
	{"network-config", 0, "FILE", "cloud-init network-config"},
	{"autostart", 0, NULL, "start the VM when mvirt-vmm starts after a host boot"},
	{"autostart-order", 0, "N", "autostart position: lower first, then by name (default 0)"},
	{NULL},
};

const struct cmd_entry cmd_create_entry = {
	.name = "create",
	.usage = "NAME --vcpus N --memory SIZE (--kernel PATH | --firmware PATH) [OPTIONS]",
	.summary = "define a new VM",
	.help = "Define a new VM, in state stopped, and show it. NAME: lower-case letters, digits,\n"
		"'.', '_' and '-', starting with a letter or digit. Relative paths are taken from\n"
		"the current directory. Disks and NICs are attached in the order given (--network\n"
		"and --nic NICs alike).",
	.options = create_options,
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_create_exec,
};
