/* mvirt volume VERB ...: the storage manager's volumes (mvirt.VolumeService).
 *
 *   create NAME --size SIZE [--format raw|qcow2] [--pool POOL]
 *   import NAME FILE [--format raw|qcow2] [--pool POOL]
 *   clone SRC NAME | resize NAME SIZE | rm NAME | ls [--pool POOL] [-q] | show NAME
 *
 * A group entry of the command table whose children are the verbs, one entry each; main.c
 * dispatches to them and usage.c prints their help. The verbs share one option namespace
 * (--format, --pool mean the same wherever they apply). The CLI only parses sizes and formats
 * and makes FILE absolute; the daemon checks everything else. import follows the ImportVolume
 * stream: a progress bar on stderr when it is a terminal, plain lines (every 10%) otherwise; an
 * interrupt (Ctrl-C) cancels the call, and the daemon removes the partial volume. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"
#include "output.h"
#include "stream.h"

#define BAR_WIDTH 30

/* ---- formatting ---- */

static const char *format_name(Mvirt__DiskFormat f)
{
	switch (f) {
	case MVIRT__DISK_FORMAT__DISK_FORMAT_RAW:
		return "raw";
	case MVIRT__DISK_FORMAT__DISK_FORMAT_QCOW2:
		return "qcow2";
	default:
		return "unknown";
	}
}

/* "10.0 GiB", "512 B". */
static void format_bytes(uint64_t n, char *buf, size_t size)
{
	static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
	double v = (double)n;
	size_t u = 0;

	while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

/* "a, b" or "-". */
static void print_list(const char *key, char **items, size_t n)
{
	if (n == 0) {
		output_kv(key, "-");
		return;
	}
	for (size_t i = 0; i < n; i++)
		output_kv(i == 0 ? key : "", "%s", items[i]);
}

static void print_volume(const Mvirt__Volume *v)
{
	char buf[64], buf2[64];

	output_kv("name", "%s", v->name);
	output_kv("pool", "%s", v->pool);
	output_kv("path", "%s", output_dash(v->path));
	output_kv("format", "%s", format_name(v->format));
	format_bytes(v->virtual_size, buf, sizeof(buf));
	output_kv("size", "%s (%llu bytes)", buf, (unsigned long long)v->virtual_size);
	format_bytes(v->allocated_bytes, buf2, sizeof(buf2));
	output_kv("allocated", "%s", buf2);
	output_kv("backing", "%s", output_dash(v->backing_volume));
	print_list("chain", v->backing_chain, v->n_backing_chain);
	print_list("clones", v->clones, v->n_clones);
	print_list("used by", v->used_by, v->n_used_by);
	output_format_time(v->created_at, buf, sizeof(buf));
	output_kv("created", "%s", buf);
	output_kv("status", "%s", output_dash(v->status));
}

static void print_volume_msg(const ProtobufCMessage *msg)
{
	print_volume((const Mvirt__Volume *)msg);
}

static void print_list_table(const ProtobufCMessage *msg)
{
	const Mvirt__ListVolumesResponse *resp = (const Mvirt__ListVolumesResponse *)msg;
	static const char *const headers[] = {"NAME",      "POOL",    "FORMAT", "SIZE",
					      "ALLOCATED", "BACKING", "STATUS"};
	struct table *t = table_new(ELEMENTSOF(headers), headers);

	if (!t) {
		cli_error("out of memory");
		return;
	}
	for (size_t i = 0; i < resp->n_volumes; i++) {
		const Mvirt__Volume *v = resp->volumes[i];
		char size[32], alloc[32];

		format_bytes(v->virtual_size, size, sizeof(size));
		format_bytes(v->allocated_bytes, alloc, sizeof(alloc));
		if (table_add_row(t,
				  (const char *const[]){v->name, v->pool, format_name(v->format),
							size, alloc, output_dash(v->backing_volume),
							output_dash(v->status)}) < 0) {
			cli_error("out of memory");
			break;
		}
	}
	table_print(t);
	table_free(t);
	if (resp->n_unknown_files > 0) {
		printf("\nFiles in pools that are not volumes (left alone):\n");
		for (size_t i = 0; i < resp->n_unknown_files; i++)
			printf("  %s\n", resp->unknown_files[i]);
	}
}

/* ---- parsing ---- */

/* "1048576" (bytes), "512M", "10G", "10GiB", "1T": whole numbers, binary units. */
static int parse_size(const char *s, uint64_t *ret)
{
	static const char units[] = "KMGTP";
	_cleanup_free_ char *num = NULL;
	size_t n = strspn(s, "0123456789");
	const char *suffix = s + n, *u;
	unsigned shift = 0;
	uint64_t v;
	int r;

	if (*suffix) {
		if (!(u = strchr(units, (char)(*suffix & ~0x20))) || !*u)
			return -EINVAL;
		shift = 10 * (unsigned)(u - units + 1);
		suffix++;
		if (*suffix && strcasecmp(suffix, "iB") != 0 && strcasecmp(suffix, "B") != 0)
			return -EINVAL;
	}
	if (!(num = strndup(s, n)))
		return -ENOMEM;
	if ((r = cli_parse_u64(num, &v)) < 0)
		return r;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*ret = v << shift;
	return 0;
}

static int parse_format(struct cli *cli, const struct args *args, Mvirt__DiskFormat *ret)
{
	const char *f = args_get(args, "format");

	if (!f)
		*ret = MVIRT__DISK_FORMAT__DISK_FORMAT_UNSPECIFIED;
	else if (streq(f, "raw"))
		*ret = MVIRT__DISK_FORMAT__DISK_FORMAT_RAW;
	else if (streq(f, "qcow2"))
		*ret = MVIRT__DISK_FORMAT__DISK_FORMAT_QCOW2;
	else
		return cli_usage_error(cli, "--format: unknown format '%s' (raw or qcow2)", f);
	return CLI_EXIT_OK;
}

static int absolute_path(const char *path, char **ret)
{
	_cleanup_free_ char *cwd = NULL;

	if (path[0] == '/')
		return (*ret = strdup(path)) ? 0 : -ENOMEM;
	if (!(cwd = getcwd(NULL, 0)))
		return -errno;
	return asprintf(ret, "%s/%s", cwd, path) < 0 ? -ENOMEM : 0;
}

/* ---- verbs ---- */

static const ProtobufCServiceDescriptor *const volume_service = &mvirt__volume_service__descriptor;

/* Calls method and prints the response with table (or as JSON). */
static int call_print(struct cli *cli, const char *method, const ProtobufCMessage *req,
		      void (*table)(const ProtobufCMessage *msg))
{
	ProtobufCMessage *resp = NULL;
	int r;

	if ((r = cli_call_service(cli, volume_service, method, req, &resp)) != CLI_EXIT_OK)
		return r;
	r = cli_print_result(cli, resp, table);
	protobuf_c_message_free_unpacked(resp, NULL);
	return r;
}

static const struct cmd_option create_options[] = {
	{"size", 0, "SIZE", "bytes, or a number with K, M, G, T (binary: 10G = 10 GiB)"},
	{"format", 'f', "FORMAT", "raw (default: a sparse file) or qcow2"},
	{"pool", 'p', "POOL", "the storage pool (default: \"default\")"},
	{NULL},
};

static const struct cmd_option import_options[] = {
	{"format", 'f', "FORMAT",
	 "raw or qcow2: converts the image (default: its format, from its header)"},
	{"pool", 'p', "POOL", "the storage pool (default: \"default\")"},
	{NULL},
};

static const struct cmd_option ls_options[] = {
	{"pool", 'p', "POOL", "only the volumes of this pool"},
	{"quiet", 'q', NULL, "only the names, one per line (-o json still prints the whole list)"},
	{NULL},
};

static const char *pool_arg(const struct args *args)
{
	const char *pool = args_get(args, "pool");

	return pool ? pool : protobuf_c_empty_string;
}

static int verb_create(struct cli *cli, const struct args *args)
{
	Mvirt__CreateVolumeRequest req = MVIRT__CREATE_VOLUME_REQUEST__INIT;
	const char *size = args_get(args, "size");
	int r;

	if (!size)
		return cli_usage_error(cli, "volume create: --size is required");
	if (parse_size(size, &req.size_bytes) < 0)
		return cli_usage_error(cli, "--size: '%s' is not a size (e.g. 10G, 512M, 1048576)",
				       size);
	if ((r = parse_format(cli, args, &req.format)) != CLI_EXIT_OK)
		return r;
	req.name = args->positional[0];
	req.pool = (char *)pool_arg(args);
	return call_print(cli, "CreateVolume", &req.base, print_volume_msg);
}

static int verb_clone(struct cli *cli, const struct args *args)
{
	Mvirt__CloneVolumeRequest req = MVIRT__CLONE_VOLUME_REQUEST__INIT;

	req.source = args->positional[0];
	req.name = args->positional[1];
	return call_print(cli, "CloneVolume", &req.base, print_volume_msg);
}

static int verb_resize(struct cli *cli, const struct args *args)
{
	Mvirt__ResizeVolumeRequest req = MVIRT__RESIZE_VOLUME_REQUEST__INIT;

	if (parse_size(args->positional[1], &req.size_bytes) < 0)
		return cli_usage_error(cli, "volume resize: '%s' is not a size (e.g. 20G)",
				       args->positional[1]);
	req.name = args->positional[0];
	return call_print(cli, "ResizeVolume", &req.base, print_volume_msg);
}

static void print_deleted(const ProtobufCMessage *msg)
{
	(void)msg;
}

static int verb_rm(struct cli *cli, const struct args *args)
{
	Mvirt__DeleteVolumeRequest req = MVIRT__DELETE_VOLUME_REQUEST__INIT;
	int r;

	req.name = args->positional[0];
	r = call_print(cli, "DeleteVolume", &req.base, print_deleted);
	if (r == CLI_EXIT_OK && cli->output == CLI_OUTPUT_TABLE)
		printf("deleted volume %s\n", req.name);
	return r;
}

/* ls -q: the volume names alone, one per line (for scripts and shell completion). */
static void print_names(const ProtobufCMessage *msg)
{
	const Mvirt__ListVolumesResponse *resp = (const Mvirt__ListVolumesResponse *)msg;

	for (size_t i = 0; i < resp->n_volumes; i++)
		printf("%s\n", resp->volumes[i]->name);
}

static int verb_ls(struct cli *cli, const struct args *args)
{
	Mvirt__ListVolumesRequest req = MVIRT__LIST_VOLUMES_REQUEST__INIT;

	req.pool = (char *)pool_arg(args);
	return call_print(cli, "ListVolumes", &req.base,
			  args_has(args, "quiet") ? print_names : print_list_table);
}

static int verb_show(struct cli *cli, const struct args *args)
{
	Mvirt__GetVolumeRequest req = MVIRT__GET_VOLUME_REQUEST__INIT;

	req.name = args->positional[0];
	return call_print(cli, "GetVolume", &req.base, print_volume_msg);
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
	(void)sig;
	interrupted = 1;
}

struct import {
	struct cli *cli;
	const char *name;
	bool tty;
	int last_step;   /* plain lines: the last 10% step printed */
	bool drawn;      /* tty: a bar is on the line */
	bool cancelling; /* interrupted: the call is being cancelled */
};

static void progress_show(struct import *p, uint64_t done, uint64_t total)
{
	char d[32], t[32];
	unsigned pct = total ? (unsigned)(done * 100.0 / (double)total) : 0;

	if (pct > 100)
		pct = 100;
	format_bytes(done, d, sizeof(d));
	format_bytes(total, t, sizeof(t));
	if (p->tty) {
		char bar[BAR_WIDTH + 1];
		size_t fill = (size_t)pct * BAR_WIDTH / 100;

		memset(bar, '#', fill);
		memset(bar + fill, '-', BAR_WIDTH - fill);
		bar[BAR_WIDTH] = '\0';
		fprintf(stderr, "\r[%s] %3u%%  %s / %s\033[K", bar, pct, d, t);
		p->drawn = true;
	} else if ((int)(pct / 10) > p->last_step) {
		p->last_step = (int)(pct / 10);
		fprintf(stderr, "import: %u%% (%s of %s)\n", pct, d, t);
	}
	fflush(stderr);
}

static void progress_end(struct import *p)
{
	if (p->drawn)
		fputc('\n', stderr);
	p->drawn = false;
}

/* Before each wait: an interrupt cancels the call (once); the daemon then removes the partial
 * volume. */
static int import_wait(void *userdata, struct client_stream *s)
{
	struct import *im = userdata;

	if (interrupted && !im->cancelling) {
		im->cancelling = true;
		client_stream_cancel(s);
	}
	return -1;
}

static int import_event(void *userdata, int ev, const ProtobufCMessage *msg)
{
	struct import *im = userdata;
	const Mvirt__VolumeProgress *p = (const Mvirt__VolumeProgress *)msg;

	if (ev != CLIENT_STREAM_MESSAGE || im->cancelling)
		return CLI_EXIT_OK;
	progress_show(im, p->done_bytes, p->total_bytes);
	if (!p->volume)
		return CLI_EXIT_OK;
	progress_end(im);
	return cli_print_result(im->cli, &p->volume->base, print_volume_msg);
}

static int import_end(void *userdata, const struct client_status *st)
{
	struct import *im = userdata;

	(void)st;
	progress_end(im);
	if (im->cancelling)
		return cli_error(
			"import of '%s' interrupted; the daemon removes the partial volume",
			im->name);
	return -1;
}

static int verb_import(struct cli *cli, const struct args *args)
{
	static const struct stream_ops ops = {
		.wait = import_wait, .event = import_event, .end = import_end};
	Mvirt__ImportVolumeRequest req = MVIRT__IMPORT_VOLUME_REQUEST__INIT;
	struct import im = {.cli = cli, .tty = isatty(STDERR_FILENO), .last_step = -1};
	struct sigaction sa = {.sa_handler = on_interrupt}, old_int, old_term;
	_cleanup_free_ char *source = NULL;
	int r;

	if ((r = parse_format(cli, args, &req.format)) != CLI_EXIT_OK)
		return r;
	if ((r = absolute_path(args->positional[1], &source)) < 0)
		return cli_error("%s: %s", args->positional[1], strerror(-r));
	req.name = args->positional[0];
	req.source_path = source;
	req.pool = (char *)pool_arg(args);
	im.name = req.name;
	/* No SA_RESTART: an interrupt wakes the wait, and import_wait then cancels the call. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	r = stream_run(cli, volume_service, "ImportVolume", &req.base, &ops, &im);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	return r;
}

static const struct cmd_entry volume_create_entry = {
	.name = "create",
	.usage = "NAME --size SIZE [--format raw|qcow2] [--pool POOL]",
	.summary = "a new empty volume: a sparse raw file (default) or a qcow2 image",
	.options = create_options,
	.min_args = 1,
	.max_args = 1,
	.exec = verb_create,
};

static const struct cmd_entry volume_import_entry = {
	.name = "import",
	.usage = "NAME FILE [--format raw|qcow2] [--pool POOL]",
	.summary = "copy an image file into a new volume",
	.help = "Copy the image FILE (a path on the daemon's host) into a new volume. Its format is\n"
		"read from its header; --format converts it. Shows progress; Ctrl-C cancels, and the\n"
		"daemon removes the partial volume.",
	.options = import_options,
	.min_args = 2,
	.max_args = 2,
	.exec = verb_import,
};

static const struct cmd_entry volume_clone_entry = {
	.name = "clone",
	.usage = "SRC NAME",
	.summary = "a thin copy: a qcow2 overlay backed by SRC, or a reflink/sparse copy of raw",
	.min_args = 2,
	.max_args = 2,
	.exec = verb_clone,
};

static const struct cmd_entry volume_resize_entry = {
	.name = "resize",
	.usage = "NAME SIZE",
	.summary = "grow a volume (never shrinks); not while a VM using it runs",
	.help = "Grow the volume NAME to SIZE: bytes, or a number with K, M, G, T (binary units:\n"
		"10G = 10 GiB). Volumes never shrink; a volume in use by a running VM is refused.",
	.min_args = 2,
	.max_args = 2,
	.exec = verb_resize,
};

static const struct cmd_entry volume_rm_entry = {
	.name = "rm",
	.alias = "delete",
	.usage = "NAME",
	.summary = "delete a volume no VM uses and no clone is backed by",
	.min_args = 1,
	.max_args = 1,
	.exec = verb_rm,
};

static const struct cmd_entry volume_ls_entry = {
	.name = "ls",
	.alias = "list",
	.usage = "[--pool POOL] [-q]",
	.summary = "list the volumes, and files in pools that are not volumes",
	.options = ls_options,
	.min_args = 0,
	.max_args = 0,
	.exec = verb_ls,
};

static const struct cmd_entry volume_show_entry = {
	.name = "show",
	.alias = "info",
	.usage = "NAME",
	.summary = "format, sizes, backing chain, clones, VMs using it, status",
	.min_args = 1,
	.max_args = 1,
	.exec = verb_show,
};

static const struct cmd_entry *const volume_verbs[] = {
	&volume_create_entry, &volume_import_entry, &volume_clone_entry, &volume_resize_entry,
	&volume_rm_entry,     &volume_ls_entry,     &volume_show_entry,  NULL,
};

const struct cmd_entry cmd_volume_entry = {
	.name = "volume",
	.alias = "vol",
	.usage = "VERB [ARGS]",
	.summary = "manage storage volumes (create, import, clone, resize, rm, ls, show)",
	.help = "Manage the disk images of the storage manager, kept in pool directories\n"
		"(\"default\": STATE-DIR/volumes). A VM disk can be a volume (mvirt create --volume NAME).",
	.children = volume_verbs,
	.child_noun = "verb",
	.shared_options = true,
};
