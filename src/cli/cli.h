/* The mvirt CLI: the command table, the context every command runs in, and the helpers commands
 * share (calling the daemon, reporting errors).
 *
 * Each command is one declarative struct cmd_entry in its own cmd_*.c file, listed in
 * cmd_table (main.c). main.c parses the global options and the command's options from the entry,
 * handles --help and the positional-argument count, then calls entry->exec. Commands print their
 * result to stdout and their errors to stderr and return an exit status (enum cli_exit). */
#pragma once

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
	const struct cmd_option *options; /* NULL-name-terminated; NULL: none */
	int min_args;
	int max_args; /* -1: unlimited */
	int (*exec)(struct cli *cli, const struct args *args);
};

struct cli {
	const struct cmd_entry *cmd;
	enum cli_output output;
	const char *server_addr; /* from --server (borrowed from argv); NULL: the default */
	char *server;            /* the gRPC target, resolved at the first call */
	struct client *client;   /* created at the first call */
};

/* Frees what the calls left in cli (server, client). */
void cli_done(struct cli *cli);

extern const struct cmd_entry cmd_list_entry;
extern const struct cmd_entry cmd_create_entry;
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
extern const struct cmd_entry cmd_version_entry;
extern const struct cmd_entry cmd_sysinfo_entry;
extern const struct cmd_entry cmd_help_entry;

/* NULL-terminated, in the order `mvirt help` lists them. */
extern const struct cmd_entry *const cmd_table[];
/* The command named or aliased name, or NULL. */
const struct cmd_entry *cmd_find(const char *name);

/* The global options (-s, -o, -h), accepted before and after the command name. */
extern const struct cmd_option cli_global_options[];

/* Prints the general usage (with the command list) or one command's usage to f. */
void cli_print_usage(FILE *f);
void cli_print_cmd_usage(const struct cmd_entry *e, FILE *f);

/* Calls method of mvirt.VmService with req and stores the response in *ret_resp (free it with
 * protobuf_c_message_free_unpacked). The first call picks the server: cli->server_addr, else
 * $MVIRT_SERVER, else an existing daemon socket, else 127.0.0.1:50051. Returns CLI_EXIT_OK, or
 * prints the error to stderr and returns CLI_EXIT_FAILURE (the daemon answered with an error),
 * CLI_EXIT_UNREACHABLE or CLI_EXIT_USAGE (a malformed address). */
int cli_call(struct cli *cli, const char *method, const ProtobufCMessage *req,
	     ProtobufCMessage **ret_resp);
/* Like cli_call and cli_stream_open, for a method of another service (mvirt.VolumeService). */
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
/* Print "mvirt: <message>" plus a hint to run --help, and return CLI_EXIT_USAGE. */
int cli_usage_error(const struct cli *cli, const char *fmt, ...) _printf_(2, 3);

/* The result of a command: the message as JSON with -o json, else table(msg) (may be NULL:
 * nothing to print). Returns an exit status. */
int cli_print_result(const struct cli *cli, const ProtobufCMessage *msg,
		     void (*table)(const ProtobufCMessage *msg));

/* Parses a decimal number without sign or junk. Returns 0, -EINVAL or -ERANGE. */
int cli_parse_u32(const char *s, uint32_t *ret);
int cli_parse_u64(const char *s, uint64_t *ret);

/* Shared by show and create: the key: value block of a VM. */
void cmd_show_print_vm(const Mvirt__Vm *vm);
