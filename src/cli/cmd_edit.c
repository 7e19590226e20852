/* mvirt edit VM: the VM's config as JSON in an editor, applied with UpdateVm.
 *
 * The config (GetVm) goes into a private temporary file (mode 0600, in $TMPDIR or /tmp) that
 * $EDITOR, else $VISUAL, else vi, edits (run by /bin/sh, so the variable may hold arguments).
 * The edited file is parsed (pbjson_to_message) and, when it differs from what was read, sent
 * as the whole new config, with the config_version that was read: a config someone else
 * changed meanwhile is refused (ABORTED) instead of overwritten. Unchanged: nothing is sent.
 *
 * When the file does not parse or the daemon refuses it, its message is printed and, with a
 * terminal on stdin, "edit again? [Y/n]" reopens the same file; otherwise (and after a
 * concurrent change) the file is kept, its path printed, and the exit status is 1. */
#include <errno.h>
#include <fcntl.h>
#include <grpc/status.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "common/fs.h"
#include "common/pbjson.h"

#define EDIT_FILE_MAX (16 * 1024 * 1024)

static const char *editor(void)
{
	const char *vars[] = {"EDITOR", "VISUAL"};

	for (size_t i = 0; i < ELEMENTSOF(vars); i++) {
		const char *e = getenv(vars[i]);

		if (!isempty(e))
			return e;
	}
	return "vi";
}

/* Runs the editor on path and waits for it (SIGINT and SIGQUIT are the editor's meanwhile).
 * Returns an exit status. */
static int run_editor(const char *path)
{
	_cleanup_free_ char *cmd = NULL;
	struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
	int status;
	pid_t pid;

	if (asprintf(&cmd, "%s \"$1\"", editor()) < 0)
		return cli_error("out of memory");
	sigaction(SIGINT, &ign, &old_int);
	sigaction(SIGQUIT, &ign, &old_quit);
	pid = fork();
	if (pid == 0) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGQUIT, &old_quit, NULL);
		execl("/bin/sh", "sh", "-c", cmd, "sh", path, (char *)NULL);
		_exit(127);
	}
	while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (pid < 0)
		return cli_error("cannot run the editor: %s", strerror(errno));
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return cli_error("the editor (%s) failed (status %d); the VM is unchanged",
				 editor(),
				 WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
	return CLI_EXIT_OK;
}

/* Writes the config as indented JSON into a new private file; its path in *ret. */
static int write_config(const Mvirt__Vm *vm, char **ret)
{
	_cleanup_free_ char *path = NULL;
	struct json_object *o = NULL;
	const char *tmp = getenv("TMPDIR"), *text;
	_cleanup_close_ int fd = -1;
	size_t len;
	int r;

	if (asprintf(&path, "%s/mvirt-edit-%s-XXXXXX.json", isempty(tmp) ? "/tmp" : tmp, vm->name) <
	    0)
		return cli_error("out of memory");
	if ((fd = mkostemps(path, 5, O_CLOEXEC)) < 0)
		return cli_error("cannot create a temporary file %s: %s", path, strerror(errno));
	if ((r = pbjson_from_message(&vm->config->base, &o)) < 0) {
		unlink(path);
		return cli_error("cannot convert the config to JSON: %s", strerror(-r));
	}
	text = json_object_to_json_string_length(o,
						 JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE,
						 &len);
	r = text && write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 ? 0 : -errno;
	json_object_put(o);
	if (r < 0 || !text) {
		unlink(path);
		return cli_error("cannot write %s: %s", path, strerror(text ? -r : ENOMEM));
	}
	*ret = TAKE_PTR(path);
	return CLI_EXIT_OK;
}

/* Parses the edited file into *ret; prints why not (path: member: cause) and returns
 * CLI_EXIT_FAILURE when it does not parse. */
static int read_config(const char *path, Mvirt__VmConfig **ret)
{
	_cleanup_free_ char *text = NULL;
	struct json_tokener *tok = NULL;
	struct json_object *o = NULL;
	ProtobufCMessage *msg = NULL;
	char why[512];
	int n, r;

	if ((n = read_file(path, EDIT_FILE_MAX, &text)) < 0)
		return cli_error("cannot read %s: %s", path, strerror(-n));
	if (!(tok = json_tokener_new()))
		return cli_error("out of memory");
	o = json_tokener_parse_ex(tok, text, n);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    text[json_tokener_get_parse_end(tok) +
		 strspn(text + json_tokener_get_parse_end(tok), " \t\r\n")] != '\0') {
		r = cli_error("%s: not valid JSON: %s (at byte %zu)", path,
			      o ? "text after the object"
				: json_tokener_error_desc(json_tokener_get_error(tok)),
			      json_tokener_get_parse_end(tok));
		json_object_put(o);
		json_tokener_free(tok);
		return r;
	}
	json_tokener_free(tok);
	r = pbjson_to_message(&mvirt__vm_config__descriptor, o, &msg, why, sizeof(why));
	json_object_put(o);
	if (r == -ENOMEM)
		return cli_error("out of memory");
	if (r < 0)
		return cli_error("%s: config.%s", path, why);
	*ret = (Mvirt__VmConfig *)msg;
	return CLI_EXIT_OK;
}

static bool same_config(const Mvirt__VmConfig *a, const Mvirt__VmConfig *b)
{
	size_t na = protobuf_c_message_get_packed_size(&a->base);
	size_t nb = protobuf_c_message_get_packed_size(&b->base);
	_cleanup_free_ uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);

	if (!pa || !pb || na != nb)
		return false;
	protobuf_c_message_pack(&a->base, pa);
	protobuf_c_message_pack(&b->base, pb);
	return memcmp(pa, pb, na) == 0;
}

/* With a terminal on stdin: asks whether to edit again (default yes). */
static bool ask_again(void)
{
	char line[64];

	if (!isatty(STDIN_FILENO))
		return false;
	fputs("edit again? [Y/n] ", stderr);
	fflush(stderr);
	if (!fgets(line, sizeof(line), stdin))
		return false;
	line[strcspn(line, "\r\n")] = '\0';
	return isempty(line) || streq(line, "y") || streq(line, "Y") || streq(line, "yes");
}

static int cmd_edit_exec(struct cli *cli, const struct args *args)
{
	Mvirt__GetVmRequest get = MVIRT__GET_VM_REQUEST__INIT;
	Mvirt__UpdateVmRequest req = MVIRT__UPDATE_VM_REQUEST__INIT;
	Mvirt__Vm *vm = NULL;
	_cleanup_free_ char *path = NULL;
	bool keep = false;
	int r;

	get.vm = args->positional[0];
	if ((r = cli_call(cli, "GetVm", &get.base, (ProtobufCMessage **)&vm)) != CLI_EXIT_OK)
		return r;
	if (!vm->config || (r = write_config(vm, &path)) != CLI_EXIT_OK)
		goto out;
	if (vm->state != MVIRT__VM_STATE__VM_STATE_STOPPED &&
	    vm->state != MVIRT__VM_STATE__VM_STATE_CRASHED)
		fprintf(stderr,
			"mvirt: vm %s is not stopped: only autostart and autostart_order can "
			"change until it is\n",
			vm->name);
	for (;;) {
		Mvirt__VmConfig *config = NULL;
		ProtobufCMessage *resp = NULL;
		int code;

		if ((r = run_editor(path)) != CLI_EXIT_OK)
			break;
		if ((r = read_config(path, &config)) == CLI_EXIT_OK) {
			if (same_config(config, vm->config)) {
				protobuf_c_message_free_unpacked(&config->base, NULL);
				if (cli->output == CLI_OUTPUT_JSON)
					r = cli_print_result(cli, &vm->base, NULL);
				else
					printf("vm %s: unchanged\n", vm->name);
				break;
			}
			req.vm = vm->id;
			req.config = config;
			req.config_version = vm->config_version;
			r = cli_call_code(cli, "UpdateVm", &req.base, &resp, &code);
			protobuf_c_message_free_unpacked(&config->base, NULL);
			if (r == CLI_EXIT_OK) {
				r = cli_print_result(cli, resp, cli_print_vm);
				protobuf_c_message_free_unpacked(resp, NULL);
				break;
			}
			if (r != CLI_EXIT_FAILURE || code == GRPC_STATUS_ABORTED ||
			    code == GRPC_STATUS_NOT_FOUND) {
				keep = r != CLI_EXIT_FAILURE || code == GRPC_STATUS_ABORTED;
				break; /* re-editing this file cannot help */
			}
		}
		if (!ask_again()) {
			keep = true;
			break;
		}
	}
	if (keep)
		fprintf(stderr, "mvirt: your edit is kept in %s\n", path);
	else
		unlink(path);
out:
	protobuf_c_message_free_unpacked(&vm->base, NULL);
	return r;
}

const struct cmd_entry cmd_edit_entry = {
	.name = "edit",
	.usage = "VM",
	.summary = "edit a stopped VM's config in $EDITOR",
	.help = "Open the VM's config as JSON in $EDITOR (else $VISUAL, else vi) and apply it\n"
		"when the editor exits. The VM must be stopped (autostart and autostart_order\n"
		"change at any time). The daemon checks the new config as create does; when it\n"
		"refuses it (or the JSON does not parse), its message is shown and, on a terminal,\n"
		"the same file can be edited again. If someone else changed the config meanwhile,\n"
		"nothing is overwritten: the edit is refused and the file kept. No change: nothing\n"
		"is sent.",
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_edit_exec,
};
