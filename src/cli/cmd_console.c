/* mvirt console [--history BYTES] NAME|ID: the VM's serial console on this terminal, over the
 * Console stream (bidi).
 *
 * With stdin a terminal, it is put in raw mode once the daemon has accepted the stream, every
 * byte typed goes to the guest, and Ctrl+] (0x1d) detaches. The saved mode is put back on every
 * way out: detach, the stream's end (the VM stopped, the daemon went away), errors, SIGTERM,
 * SIGHUP, SIGQUIT and SIGINT, fatal signals, and exit() (atexit). With stdin not a terminal
 * (a pipe, a file), its bytes are forwarded as they are (no escape character) and its end
 * half-closes the stream while the output keeps coming until the VM stops or a signal.
 *
 * One thread, one poll() loop over three fds: a self-pipe the signal handlers write (they do
 * nothing else, so SIGTERM and friends are handled in the loop), the stream's completion fd, and
 * stdin (only while no send is outstanding: gRPC allows one at a time, and not reading stdin
 * meanwhile passes the guest's pace back to the typist). Fatal signals cannot wait for the loop:
 * their handler restores the terminal itself (tcsetattr is async-signal-safe) and re-raises.
 *
 * Exit status: 0 after a detach or when the VM stopped (the daemon's notice says why), 1 for a
 * daemon error (the VM is not running, the stream broke), 3 unreachable, 128 + N after signal N. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "client.h"

#define ESCAPE_CHAR 0x1d /* Ctrl+] */
#define INPUT_CHUNK 4096
/* The daemon's answer to the first request: its response headers, or an error. */
#define ATTACH_TIMEOUT_MS (CLIENT_CALL_TIMEOUT_S * 1000)
/* How long after the headers an immediate error (a trailers-only answer, which gRPC core
 * reports as headers too) may still come before the stream counts as established. */
#define ATTACH_SETTLE_MS 100
/* Bytes typed before Ctrl+]: how long to wait for them to be sent before detaching. */
#define DETACH_FLUSH_MS 1000

/* Process-wide, for the signal handlers and atexit. */
static struct termios saved_termios;
static volatile sig_atomic_t raw_active;
static volatile sig_atomic_t got_signal;
static int signal_pipe[2] = {-1, -1};

struct session {
	struct client_stream *stream;
	const char *vm;
	bool tty;           /* stdin is a terminal: raw mode and the escape character */
	bool stdin_open;    /* stdin is still read */
	bool at_line_start; /* the last byte on the terminal was '\n' */
	bool detach;        /* Ctrl+] seen: leave once the bytes before it are sent */
	int signal;         /* the signal that ended the session; 0: none */
};

static void restore_terminal(void)
{
	if (raw_active) {
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
		raw_active = 0;
	}
}

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;

	got_signal = sig;
	(void)!write(signal_pipe[1], &b, 1);
	errno = saved;
}

static void on_fatal(int sig)
{
	/* SA_RESETHAND made the action the default: the raise is delivered when this returns. */
	if (raw_active)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
	raise(sig);
}

static int setup_signals(void)
{
	static const int loop_signals[] = {SIGTERM, SIGHUP, SIGQUIT, SIGINT};
	static const int fatal_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
	struct sigaction sa = {.sa_handler = on_signal};

	if (signal_pipe[0] < 0 && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* No SA_RESTART: a write to a stuck terminal must return so the loop sees the signal. */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < ELEMENTSOF(loop_signals); i++)
		if (sigaction(loop_signals[i], &sa, NULL) < 0)
			return -errno;
	sa.sa_handler = on_fatal;
	sa.sa_flags = SA_RESETHAND;
	for (size_t i = 0; i < ELEMENTSOF(fatal_signals); i++)
		if (sigaction(fatal_signals[i], &sa, NULL) < 0)
			return -errno;
	/* A closed stdout is reported by write() (EPIPE), so the terminal is restored first. */
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int enter_raw_mode(void)
{
	struct termios raw = saved_termios;

	cfmakeraw(&raw);
	raw_active = 1;
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) < 0) {
		raw_active = 0;
		return -errno;
	}
	return 0;
}

/* Writes all of data to fd; gives up (-EINTR) when a signal arrived meanwhile. */
static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0) {
			if (errno == EINTR && !got_signal)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A daemon notice on stderr, on a line of its own ("\r\n": raw mode has no output processing). */
static void print_notice(struct session *ss, const char *notice)
{
	const char *eol = raw_active ? "\r\n" : "\n";

	fprintf(stderr, "%s[mvirt: %s]%s", ss->at_line_start ? (raw_active ? "\r" : "") : eol,
		notice, eol);
	ss->at_line_start = true;
}

static int handle_response(struct session *ss, const Mvirt__ConsoleResponse *resp)
{
	int r;

	if (resp->output.len > 0) {
		if ((r = write_all(STDOUT_FILENO, resp->output.data, resp->output.len)) < 0)
			return r;
		ss->at_line_start = resp->output.data[resp->output.len - 1] == '\n';
	}
	if (!isempty(resp->notice))
		print_notice(ss, resp->notice);
	return 0;
}

static int send_input(struct session *ss, const char *data, size_t len)
{
	Mvirt__ConsoleRequest req = MVIRT__CONSOLE_REQUEST__INIT;
	int r;

	if (len == 0)
		return 0;
	req.input.data = (uint8_t *)data;
	req.input.len = len;
	r = client_stream_send(ss->stream, &req.base);
	if (r == -EPIPE) {
		/* The call is ending: its END tells why. */
		ss->stdin_open = false;
		return 0;
	}
	return r;
}

/* Reads what stdin has and forwards it; watches for the escape character on a terminal. */
static int read_input(struct session *ss)
{
	char buf[INPUT_CHUNK];
	ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
	const char *esc;

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		int r = n < 0 ? -errno : 0;

		ss->stdin_open = false;
		if (ss->tty) {
			/* A terminal that ends (EOF, EIO) has hung up: nobody is left to type. */
			ss->detach = true;
			return 0;
		}
		return r < 0 ? r : client_stream_close_send(ss->stream);
	}
	if (ss->tty && (esc = memchr(buf, ESCAPE_CHAR, (size_t)n))) {
		ss->detach = true;
		ss->stdin_open = false;
		n = esc - buf;
	}
	return send_input(ss, buf, (size_t)n);
}

/* Takes the stream's pending events. Returns 1 when the stream is over, 0, or -errno. */
static int drain_stream(struct session *ss)
{
	for (;;) {
		ProtobufCMessage *msg = NULL;
		int ev = client_stream_next(ss->stream, 0, &msg), r;

		switch (ev) {
		case CLIENT_STREAM_NONE:
			return 0;
		case CLIENT_STREAM_END:
			return 1;
		case CLIENT_STREAM_MESSAGE:
			r = handle_response(ss, (const Mvirt__ConsoleResponse *)msg);
			protobuf_c_message_free_unpacked(msg, NULL);
			if (r < 0)
				return r;
			break;
		case -EBADMSG: /* the END that follows says it */
		case -EINTR:
		case CLIENT_STREAM_HEADERS:
		case CLIENT_STREAM_SENT:
			break;
		default:
			return ev;
		}
	}
}

/* Empties the self-pipe; returns the signal that arrived (the last one), or 0. */
static int take_signal(struct session *ss)
{
	unsigned char b[16];

	while (read(signal_pipe[0], b, sizeof(b)) > 0)
		;
	ss->signal = got_signal;
	return ss->signal;
}

/* The attached session: returns 1 when the stream ended, 0 after a detach or a signal, or
 * -errno. */
static int session_loop(struct session *ss)
{
	int64_t detach_deadline = -1;

	for (;;) {
		struct pollfd pfd[3] = {
			{.fd = signal_pipe[0], .events = POLLIN},
			{.fd = client_stream_fd(ss->stream), .events = POLLIN},
			{.fd = STDIN_FILENO, .events = POLLIN},
		};
		bool want_input = ss->stdin_open && client_stream_can_send(ss->stream);
		int timeout = -1, r;

		if (ss->detach) {
			/* Leave once the bytes typed before Ctrl+] are sent, or at the deadline. */
			struct timespec ts;
			int64_t now;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
			if (detach_deadline < 0)
				detach_deadline = now + DETACH_FLUSH_MS;
			if (client_stream_can_send(ss->stream) || now >= detach_deadline)
				return 0;
			timeout = (int)(detach_deadline - now);
		}
		r = poll(pfd, want_input ? 3 : 2, timeout);
		if (r < 0 && errno != EINTR)
			return -errno;
		if (got_signal && take_signal(ss))
			return 0;
		if (r <= 0)
			continue;
		if (pfd[1].revents && (r = drain_stream(ss)) != 0)
			return r;
		if (want_input && pfd[2].revents && (r = read_input(ss)) < 0)
			return r;
	}
}

/* Waits for the daemon to accept the stream. Returns 1 when it is established (a first message,
 * if one came, in *ret_first), 0 when the call ended (see the stream's status) or a signal came,
 * or -errno. */
static int attach(struct session *ss, ProtobufCMessage **ret_first)
{
	bool headers = false;
	int timeout = ATTACH_TIMEOUT_MS;

	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = signal_pipe[0], .events = POLLIN},
			{.fd = client_stream_fd(ss->stream), .events = POLLIN},
		};
		ProtobufCMessage *msg = NULL;
		int r = poll(pfd, 2, timeout), ev;

		if (r < 0 && errno != EINTR)
			return -errno;
		if (got_signal && take_signal(ss))
			return 0;
		if (r == 0) {
			if (headers)
				return 1;
			return -ETIMEDOUT;
		}
		while ((ev = client_stream_next(ss->stream, 0, &msg)) != CLIENT_STREAM_NONE) {
			if (ev == CLIENT_STREAM_END)
				return 0;
			if (ev == CLIENT_STREAM_MESSAGE) {
				*ret_first = msg;
				return 1;
			}
			if (ev == CLIENT_STREAM_HEADERS && !headers) {
				headers = true;
				timeout = ATTACH_SETTLE_MS;
			}
			if (ev < 0 && ev != -EINTR && ev != -EBADMSG)
				return ev;
		}
	}
}

static int cmd_console_exec(struct cli *cli, const struct args *args)
{
	Mvirt__ConsoleRequest req = MVIRT__CONSOLE_REQUEST__INIT;
	const char *history = args_get(args, "history");
	struct session ss = {.vm = args->positional[0], .stdin_open = true, .at_line_start = true};
	ProtobufCMessage *first = NULL;
	int r, ended = 0;

	if (cli->output == CLI_OUTPUT_JSON)
		return cli_usage_error(cli, "console: -o json is not supported");
	if (history && cli_parse_u64(history, &req.history_bytes) < 0)
		return cli_usage_error(cli, "--history: '%s' is not a number of bytes", history);
	if ((r = setup_signals()) < 0)
		return cli_error("cannot set up signal handling: %s", strerror(-r));
	ss.tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &saved_termios) == 0;
	atexit(restore_terminal);

	if ((r = cli_stream_open(cli, "Console", &ss.stream)) != CLI_EXIT_OK)
		return r;
	req.vm = (char *)ss.vm;
	if (client_stream_send(ss.stream, &req.base) < 0) {
		r = cli_error("Console: cannot send the request");
		goto out;
	}
	r = attach(&ss, &first);
	if (r < 0) {
		r = r == -ETIMEDOUT ? cli_error("no answer from the daemon within %d seconds",
						CLIENT_CALL_TIMEOUT_S)
				    : cli_error("console: %s", strerror(-r));
		goto out;
	}
	if (ss.signal) {
		r = 128 + ss.signal;
		goto out;
	}
	if (r == 0) { /* refused: not running, no such VM ... */
		r = cli_report_status(cli, "Console", client_stream_status(ss.stream));
		if (r == CLI_EXIT_OK)
			r = cli_error("the daemon ended the console at once");
		goto out;
	}

	if (ss.tty) {
		if ((r = enter_raw_mode()) < 0) {
			r = cli_error("cannot put the terminal in raw mode: %s", strerror(-r));
			goto out;
		}
		/* After the switch: once this shows, keystrokes reach the guest unchanged. */
		fprintf(stderr, "Connected to %s; escape character is ^]\r\n", ss.vm);
	}
	r = 0;
	if (first) {
		r = handle_response(&ss, (const Mvirt__ConsoleResponse *)first);
		protobuf_c_message_free_unpacked(first, NULL);
	}
	if (r >= 0 && !ss.signal)
		r = session_loop(&ss);
	if (r > 0)
		ended = 1;
	if (got_signal)
		take_signal(&ss);
	restore_terminal();
	if (ss.tty && !ss.at_line_start)
		fputc('\n', stderr);

	if (ss.signal)
		r = 128 + ss.signal;
	else if (r < 0)
		r = cli_error("console: %s", strerror(-r));
	else if (ended)
		r = cli_report_status(cli, "Console", client_stream_status(ss.stream));
	else
		r = CLI_EXIT_OK; /* detached */
out:
	client_stream_free(ss.stream);
	restore_terminal();
	return r;
}

static const struct cmd_option console_options[] = {
	{"history", 0, "BYTES",
	 "first print the last BYTES of the console's output (default 0: only new output)"},
	{NULL},
};

const struct cmd_entry cmd_console_entry = {
	.name = "console",
	.usage = "[--history BYTES] NAME|ID",
	.summary = "attach this terminal to a VM's serial console",
	.help = "Attach to the serial console of a running VM: what the guest prints appears\n"
		"here, and what you type goes to the guest. Ctrl+] detaches; the VM keeps running.\n"
		"Several clients may attach at once. The terminal is put in raw mode while attached\n"
		"and restored however mvirt ends. When stdin is not a terminal, its bytes are sent\n"
		"as they are (no escape character) and its end stops the input only; output is\n"
		"printed until the VM stops or mvirt is interrupted. Notices of the daemon (e.g.\n"
		"output skipped because this client was too slow) appear as \"[mvirt: ...]\" on\n"
		"stderr.\n"
		"\n"
		"Exit status: 0 after Ctrl+] or when the VM stopped (the notice says why), 1 when\n"
		"the daemon refused (e.g. the VM is not running) or the stream broke, 3 when the\n"
		"daemon is unreachable, 128+N when ended by signal N (e.g. 143 for SIGTERM).",
	.options = console_options,
	.min_args = 1,
	.max_args = 1,
	.exec = cmd_console_exec,
};
