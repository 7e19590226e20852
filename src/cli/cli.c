/* See cli.h: the helpers shared by the commands (table lookup, daemon calls, error reporting).
 * The help text itself is usage.c's. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "output.h"
#include "usage.h"

#define SYSTEM_SOCKET "/run/mvirt/mvirt.sock"
#define DEFAULT_TCP "127.0.0.1:50051"

const struct cmd_option cli_global_options[] = {
	{"server", 's', "ADDR", "daemon address: unix:/path, /path or host:port"},
	{"output", 'o', "FORMAT", "output format: table (default) or json"},
	{"help", 'h', NULL, "show this help"},
	{NULL},
};

const struct cmd_entry *cmd_find(const struct cmd_entry *group, const char *name)
{
	for (const struct cmd_entry *const *e = group->children; e && *e; e++)
		if (streq((*e)->name, name) || ((*e)->alias && streq((*e)->alias, name)))
			return *e;
	return NULL;
}

const struct cmd_entry *cmd_path_last(const struct cmd_path *path)
{
	return path->n > 0 ? path->entries[path->n - 1] : &cmd_root;
}

int cmd_path_push(struct cmd_path *path, const struct cmd_entry *e)
{
	if (path->n >= ELEMENTSOF(path->entries))
		return -E2BIG;
	path->entries[path->n++] = e;
	return 0;
}

static void vmessage(const char *fmt, va_list ap)
{
	fputs("mvirt: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

int cli_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	return CLI_EXIT_FAILURE;
}

static void usage_hint(const struct cli *cli)
{
	struct cmd_path root = {.entries = {&cmd_root}, .n = 1};
	char name[128];

	usage_path(cli && cli->path.n > 0 ? &cli->path : &root, 0, name, sizeof(name));
	fprintf(stderr, "Run '%s --help' for usage.\n", name);
}

int cli_usage_error(const struct cli *cli, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	usage_hint(cli);
	return CLI_EXIT_USAGE;
}

int cli_group_usage_error(const struct cli *cli, const char *fmt, ...)
{
	const struct cmd_entry *group = cmd_path_last(&cli->path);
	const char *noun = group->child_noun ? group->child_noun : "command";
	va_list ap;

	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	fprintf(stderr, "%c%ss:\n", toupper((unsigned char)noun[0]), noun + 1);
	usage_print_children(group, stderr);
	usage_hint(cli);
	return CLI_EXIT_USAGE;
}

int cli_parse_u64(const char *s, uint64_t *ret)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end)
		return -EINVAL;
	*ret = v;
	return 0;
}

int cli_parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r;

	if ((r = cli_parse_u64(s, &v)) < 0)
		return r;
	if (v > UINT32_MAX)
		return -ERANGE;
	*ret = (uint32_t)v;
	return 0;
}

static bool is_socket(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* Turns an address as users write it into a gRPC target: "/p" and "./p" → "unix:/abs/p";
 * "unix:...", "host:port" and other gRPC target forms are kept. Returns 0, -EINVAL or -ENOMEM. */
static int server_target(const char *addr, char **ret)
{
	_cleanup_free_ char *cwd = NULL;

	if (isempty(addr))
		return -EINVAL;
	if (addr[0] == '/')
		return asprintf(ret, "unix:%s", addr) < 0 ? -ENOMEM : 0;
	if (addr[0] == '.') {
		if (!(cwd = getcwd(NULL, 0)))
			return -errno;
		return asprintf(ret, "unix:%s/%s", cwd, addr) < 0 ? -ENOMEM : 0;
	}
	if (!strchr(addr, ':'))
		return -EINVAL;
	return (*ret = strdup(addr)) ? 0 : -ENOMEM;
}

/* $MVIRT_SERVER, else an existing daemon socket, else the local TCP port. */
static int default_server(const char **ret_addr, char **ret)
{
	const char *env = getenv("MVIRT_SERVER");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	_cleanup_free_ char *user_sock = NULL;

	if (!isempty(env)) {
		*ret_addr = env;
		return server_target(env, ret);
	}
	if (geteuid() != 0 && !isempty(xdg)) {
		if (asprintf(&user_sock, "%s/mvirt/mvirt.sock", xdg) < 0)
			return -ENOMEM;
		if (is_socket(user_sock))
			return server_target(user_sock, ret);
	}
	if (is_socket(SYSTEM_SOCKET))
		return server_target(SYSTEM_SOCKET, ret);
	return (*ret = strdup(DEFAULT_TCP)) ? 0 : -ENOMEM;
}

static int resolve_server(struct cli *cli)
{
	const char *addr = cli->server_addr;
	int r;

	r = addr ? server_target(addr, &cli->server) : default_server(&addr, &cli->server);
	if (r == -EINVAL)
		return cli_usage_error(cli,
				       "invalid server address '%s' (unix:/path, /path or "
				       "host:port)",
				       strempty(addr));
	if (r < 0)
		return cli_error("cannot determine the server address: %s", strerror(-r));
	return CLI_EXIT_OK;
}

void cli_done(struct cli *cli)
{
	client_free(cli->client);
	cli->client = NULL;
	free(cli->server);
	cli->server = NULL;
}

/* Resolves the server and creates the client at the first call. Returns an exit status. */
static int cli_connect(struct cli *cli)
{
	int r;

	if (!cli->server && (r = resolve_server(cli)) != CLI_EXIT_OK)
		return r;
	if (!cli->client && (r = client_new(cli->server, &cli->client)) < 0)
		return cli_error("cannot create a client for %s: %s", cli->server, strerror(-r));
	return CLI_EXIT_OK;
}

int cli_report_status(const struct cli *cli, const char *method, const struct client_status *st)
{
	if (st->code == GRPC_STATUS_OK && !st->unreachable)
		return CLI_EXIT_OK;
	if (st->unreachable) {
		cli_error("cannot reach mvirt-vmm at %s: %s", cli->server,
			  st->message[0] ? st->message : client_status_code_name(st->code));
		if (strstr(st->message, strerror(EACCES)))
			fputs("The daemon's socket is open to root and to its access group only.\n",
			      stderr);
		else
			fputs("Is the daemon running? Start it (e.g. 'systemctl start mvirt-vmm') or "
			      "choose another address with --server or $MVIRT_SERVER.\n",
			      stderr);
		return CLI_EXIT_UNREACHABLE;
	}
	if (st->message[0])
		return cli_error("%s", st->message);
	return cli_error("%s failed (%s)", method, client_status_code_name(st->code));
}

int cli_call(struct cli *cli, const char *method, const ProtobufCMessage *req,
	     ProtobufCMessage **ret_resp)
{
	return cli_call_service(cli, &mvirt__vm_service__descriptor, method, req, ret_resp);
}

static int call_service(struct cli *cli, const ProtobufCServiceDescriptor *service,
			const char *method, const ProtobufCMessage *req,
			ProtobufCMessage **ret_resp, int *ret_code)
{
	struct client_status st;
	int r;

	*ret_code = GRPC_STATUS_UNAVAILABLE;
	if ((r = cli_connect(cli)) != CLI_EXIT_OK)
		return r;
	r = client_call(cli->client, service, method, req, ret_resp, &st);
	if (r >= 0) {
		*ret_code = GRPC_STATUS_OK;
		return CLI_EXIT_OK;
	}
	if (st.code == GRPC_STATUS_OK)
		st.code = GRPC_STATUS_INTERNAL;
	*ret_code = st.code;
	return cli_report_status(cli, method, &st);
}

int cli_call_service(struct cli *cli, const ProtobufCServiceDescriptor *service, const char *method,
		     const ProtobufCMessage *req, ProtobufCMessage **ret_resp)
{
	int code;

	return call_service(cli, service, method, req, ret_resp, &code);
}

int cli_call_code(struct cli *cli, const char *method, const ProtobufCMessage *req,
		  ProtobufCMessage **ret_resp, int *ret_code)
{
	return call_service(cli, &mvirt__vm_service__descriptor, method, req, ret_resp, ret_code);
}

int cli_stream_open(struct cli *cli, const char *method, struct client_stream **ret)
{
	return cli_stream_open_service(cli, &mvirt__vm_service__descriptor, method, ret);
}

int cli_stream_open_service(struct cli *cli, const ProtobufCServiceDescriptor *service,
			    const char *method, struct client_stream **ret)
{
	struct client_status st;
	int r;

	if ((r = cli_connect(cli)) != CLI_EXIT_OK)
		return r;
	r = client_stream_open(cli->client, service, method, ret, &st);
	if (r >= 0)
		return CLI_EXIT_OK;
	if (st.code == GRPC_STATUS_OK)
		st.code = GRPC_STATUS_INTERNAL;
	return cli_report_status(cli, method, &st);
}

int cli_print_result(const struct cli *cli, const ProtobufCMessage *msg,
		     void (*table)(const ProtobufCMessage *msg))
{
	int r;

	if (cli->output == CLI_OUTPUT_JSON) {
		if ((r = output_json(msg)) < 0)
			return cli_error("cannot convert the response to JSON: %s", strerror(-r));
	} else if (table) {
		table(msg);
	}
	if (fflush(stdout) != 0)
		return cli_error("cannot write the output: %s", strerror(errno));
	return CLI_EXIT_OK;
}

int cli_for_each_arg(struct cli *cli, const struct args *args, size_t first,
		     int (*one)(struct cli *cli, const char *arg, void *userdata), void *userdata)
{
	int ret = CLI_EXIT_OK;

	for (size_t i = first; i < args->n_positional; i++) {
		int r = one(cli, args->positional[i], userdata);

		if (r == CLI_EXIT_FAILURE)
			ret = r;
		else if (r != CLI_EXIT_OK)
			return r;
	}
	if (fflush(stdout) != 0)
		return cli_error("cannot write the output: %s", strerror(errno));
	return ret;
}
