/* The mvirt CLI: the command table, the context every command runs in, and the helpers commands
 * share (calling the daemon, reporting errors).
 *
 * The command table is a tree of one type, struct cmd_entry: cmd_root ("mvirt", main.c) is a
 * group whose children are the top-level commands (cmd_table); a child may itself be a group
 * ("volume", whose children are "volume create", ...). Each command is one declarative entry in
 * its cmd_*.c file. main.c walks the tree along argv, parses the options from the entries,
 * handles --help and the positional-argument count, then calls the leaf's exec; usage.c prints
 * every help and usage text from the same entries. Commands print their result to stdout and
 * their errors to stderr and return an exit status (enum cli_exit). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "args.h"
#include "common/macro.h"
#include "mvirt.pb-c.h"

enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_FAILURE = 1,     /* the daemon refused or failed, or a local file is unusable */
	CLI_EXIT_USAGE = 2,       /* bad command line */
	CLI_EXIT_UNREACHABLE = 3, /* no connection to the daemon */
};

enum cli_output {
	CLI_OUTPUT_TABLE,
	CLI_OUTPUT_JSON,
};

struct client;
struct client_status;
struct client_stream;
struct cli;

struct cmd_entry {
	const char *name;
	const char *alias;                /* NULL: none */
	const char *usage;                /* what follows the name in the usage line: "NAME|ID" */
	const char *summary;              /* one line, for the command list */
	const char *help;                 /* paragraph(s) under the usage line; NULL: the summary */
	const char *footer;               /* paragraph(s) at the end of the help; NULL: none */
	const struct cmd_option *options; /* NULL-name-terminated; NULL: none */
	int min_args;
	int max_args;                                          /* -1: unlimited */
	int (*exec)(struct cli *cli, const struct args *args); /* NULL for a group */

	/* A group has children instead of exec: its first positional argument names one. */
	const struct cmd_entry *const *children; /* NULL-terminated; NULL: not a group */
	const char *child_noun; /* what a child is called in help and errors: "command", "verb" */
	/* The children's options form one namespace (an option means the same in every child that
	 * takes it): they may also come before the child's name, and one given to a child that
	 * does not take it is reported as not applying rather than unknown. */
	bool shared_options;
};

/* Where a command sits in the table: entries[0] is &cmd_root, entries[n - 1] the command. */
#define CMD_DEPTH_MAX 4
struct cmd_path {
	const struct cmd_entry *entries[CMD_DEPTH_MAX];
	size_t n;
};

struct cli {
	struct cmd_path path; /* the command named so far (main.c fills it while parsing) */
	enum cli_output output;
	const char *server_addr; /* from --server (borrowed from argv); NULL: the default */
	char *server;            /* the gRPC target, resolved at the first call */
	struct client *client;   /* created at the first call */
};

/* Frees what the calls left in cli (server, client). */
void cli_done(struct cli *cli);

extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_create_entry;
extern const struct cmd_entry cmd_set_entry;
extern const struct cmd_entry cmd_edit_entry;
extern const struct cmd_entry cmd_show_entry;
extern const struct cmd_entry cmd_delete_entry;
extern const struct cmd_entry cmd_start_entry;
extern const struct cmd_entry cmd_stop_entry;
extern const struct cmd_entry cmd_kill_entry;
extern const struct cmd_entry cmd_reboot_entry;
extern const struct cmd_entry cmd_pause_entry;
extern const struct cmd_entry cmd_resume_entry;
extern const struct cmd_entry cmd_console_entry;
extern const struct cmd_entry cmd_logs_entry;
extern const struct cmd_entry cmd_events_entry;
extern const struct cmd_entry cmd_volume_entry;
extern const struct cmd_entry cmd_network_entry;
extern const struct cmd_entry cmd_nic_entry;
extern const struct cmd_entry cmd_version_entry;
extern const struct cmd_entry cmd_sysinfo_entry;
extern const struct cmd_entry cmd_metrics_entry;
extern const struct cmd_entry cmd_help_entry;

extern const struct cmd_entry cmd_root;

/* The root's children, NULL-terminated, in the order `mvirt help` lists them. */
extern const struct cmd_entry *const cmd_table[];
/* The child of group named or aliased name, or NULL (also when group is not a group). */
const struct cmd_entry *cmd_find(const struct cmd_entry *group, const char *name);
/* The last entry of path: the command named so far. */
const struct cmd_entry *cmd_path_last(const struct cmd_path *path);
/* Appends e to path. Returns 0, or -E2BIG when the path is full (a table deeper than
 * CMD_DEPTH_MAX). */
int cmd_path_push(struct cmd_path *path, const struct cmd_entry *e);

/* The global options (-s, -o, -h), accepted before and after every command name. */
extern const struct cmd_option cli_global_options[];

/* Calls method of mvirt.VmService with req and stores the response in *ret_resp (free it with
 * protobuf_c_message_free_unpacked). The first call picks the server: cli->server_addr, else
 * $MVIRT_SERVER, else an existing daemon socket, else 127.0.0.1:50051. Returns CLI_EXIT_OK, or
 * prints the error to stderr and returns CLI_EXIT_FAILURE (the daemon answered with an error),
 * CLI_EXIT_UNREACHABLE or CLI_EXIT_USAGE (a malformed address). */
int cli_call(struct cli *cli, const char *method, const ProtobufCMessage *req,
	     ProtobufCMessage **ret_resp);
/* Like cli_call and cli_stream_open, for a method of another service (mvirt.VolumeService,
 * mvirt.NetworkService). */
int cli_call_service(struct cli *cli, const ProtobufCServiceDescriptor *service, const char *method,
		     const ProtobufCMessage *req, ProtobufCMessage **ret_resp);
int cli_stream_open_service(struct cli *cli, const ProtobufCServiceDescriptor *service,
			    const char *method, struct client_stream **ret);
/* Opens a stream of method (see client_stream_open) on the server cli_call would use, stored in
 * *ret (free it with client_stream_free before cli_done). Returns CLI_EXIT_OK, or prints the
 * error and returns an exit status as cli_call does. */
int cli_stream_open(struct cli *cli, const char *method, struct client_stream **ret);
/* The exit status for the final status st of a call of method: CLI_EXIT_OK for OK, else prints
 * the daemon's message (or why the daemon is unreachable, with a hint) and returns
 * CLI_EXIT_FAILURE or CLI_EXIT_UNREACHABLE. */
int cli_report_status(const struct cli *cli, const char *method, const struct client_status *st);

/* Print "mvirt: <message>" to stderr and return CLI_EXIT_FAILURE. */
int cli_error(const char *fmt, ...) _printf_(1, 2);
/* Print "mvirt: <message>" plus a hint to run --help for the command named so far
 * (cli->path), and return CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...) _printf_(2, 3);
/* Like cli_usage_error, for a group (the last entry of cli->path) given no child or an unknown
 * one: lists the group's children between the message and the hint. */
int cli_group_usage_error(const struct cli *cli, const char *fmt, ...) _printf_(2, 3);

/* The result of a command: the message as JSON with -o json, else table(msg) (may be NULL:
 * nothing to print). Returns an exit status. */
int cli_print_result(const struct cli *cli, const ProtobufCMessage *msg,
		     void (*table)(const ProtobufCMessage *msg));

/* Parses a decimal number without sign or junk. Returns 0, -EINVAL or -ERANGE. */
int cli_parse_u32(const char *s, uint32_t *ret);
int cli_parse_u64(const char *s, uint64_t *ret);

/* Shared by show and create: the key: value block of a VM. */
void cmd_show_print_vm(const Mvirt__Vm *vm);
/* Runs one(cli, args->positional[i], userdata) for each i from first on, in turn, as rm(1)
 * does: one the daemon refuses (CLI_EXIT_FAILURE) is reported and the others are still tried,
 * any other failure (an unreachable daemon) ends it. Returns CLI_EXIT_FAILURE when any was
 * refused, after flushing stdout. */
int cli_for_each_arg(struct cli *cli, const struct args *args, size_t first,
		     int (*one)(struct cli *cli, const char *arg, void *userdata), void *userdata);
/* cmd_show_print_vm for cli_print_result (msg: a Vm). */
void cli_print_vm(const ProtobufCMessage *msg);
/* Fills c (initialized by the caller) from the VM config options of create and set (--vcpus,
 * --memory, --kernel, ..., --disk..., --nic..., --autostart), in command-line order, which is
 * the order of the disks and NICs. Its strings and arrays are owned: free them with
 * cli_config_done. Returns an exit status (cmd_create.c). */
int cli_build_config(struct cli *cli, const struct args *args, Mvirt__VmConfig *c);
void cli_config_done(Mvirt__VmConfig *c);
/* Like cli_call, also telling the call's gRPC status code (GRPC_STATUS_OK on success; an
 * unreachable daemon: UNAVAILABLE) in *ret_code, for commands that act on the kind of refusal. */
int cli_call_code(struct cli *cli, const char *method, const ProtobufCMessage *req,
		  ProtobufCMessage **ret_resp, int *ret_code);
/* Fills nic (initialized, its strings owned: free with the message) from a NIC spec as
 * --nic takes it ("tap=NAME" or "network=NAME", then optionally ",mac=MAC") or, short_form,
 * as --network does ("NAME[,mac=MAC]"). opt: the option or argument as messages name it
 * ("--nic", "SPEC").
 * Returns an exit status (cmd_create.c). */
int cli_parse_nic(struct cli *cli, const char *opt, const char *spec, bool short_form,
		  Mvirt__Nic *nic);
