/* See log.h. Under systemd with stderr connected to the journal ($JOURNAL_STREAM names
 * stderr's device and inode, as systemd.exec(5) documents), each line goes to journald as a
 * structured entry (sd_journal_sendv) with MVIRT_VM_NAME / MVIRT_VM_ID for lines about a VM;
 * when journald's socket is not there at the first line (or refuses an entry), lines go to
 * stderr with a "<N>" priority prefix, which journald parses. Elsewhere: plain
 * "mvirt-vmm: message" lines on stderr. */
#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
/* no CODE_FILE/CODE_LINE/CODE_FUNC: they would all name journal_send() */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

static enum log_level max_level = LOG_LEVEL_INFO;
static log_vm_id_fn vm_id_lookup;
static void *vm_id_userdata;
static pthread_t vm_id_thread;

void log_set_max_level(enum log_level level)
{
	max_level = level;
}

enum log_level log_get_max_level(void)
{
	return max_level;
}

void log_set_vm_id_lookup(log_vm_id_fn fn, void *userdata)
{
	vm_id_lookup = fn;
	vm_id_userdata = userdata;
	vm_id_thread = pthread_self();
}

bool log_stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	int n = 0;

	if (!e || sscanf(e, "%llu:%llu%n", &dev, &ino, &n) != 2 || e[n] != '\0')
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/* The VM name a "vm NAME: ..." message is about (the house prefix of VM lines), into buf. */
static bool message_vm_name(const char *msg, char *buf, size_t size)
{
	size_t n;

	if (strncmp(msg, "vm ", 3) != 0)
		return false;
	msg += 3;
	n = strspn(msg, "abcdefghijklmnopqrstuvwxyz0123456789._-");
	if (n == 0 || n >= size || msg[n] != ':')
		return false;
	memcpy(buf, msg, n);
	buf[n] = '\0';
	return true;
}

size_t log_journal_fields(const char *msg, enum log_level level, const char *vm_id,
			  struct log_fields *f)
{
	char name[LOG_VM_NAME_MAX];
	size_t n = 0;

	snprintf(f->buf[n++], sizeof(f->buf[0]), "PRIORITY=%d", (int)level);
	snprintf(f->buf[n++], sizeof(f->buf[0]), "SYSLOG_IDENTIFIER=mvirt-vmm");
	if (message_vm_name(msg, name, sizeof(name))) {
		snprintf(f->buf[n++], sizeof(f->buf[0]), "MVIRT_VM_NAME=%s", name);
		if (vm_id && *vm_id && strlen(vm_id) < LOG_VM_NAME_MAX)
			snprintf(f->buf[n++], sizeof(f->buf[0]), "MVIRT_VM_ID=%s", vm_id);
	}
	for (size_t i = 0; i < n; i++)
		f->iov[i] = (struct iovec){.iov_base = f->buf[i], .iov_len = strlen(f->buf[i])};
	snprintf(f->message, sizeof(f->message), "MESSAGE=%s", msg);
	f->iov[n++] = (struct iovec){.iov_base = f->message, .iov_len = strlen(f->message)};
	return n;
}

/* One entry to journald; false if it would not take it. */
static bool journal_send(const char *msg, enum log_level level)
{
	struct log_fields f;
	char name[LOG_VM_NAME_MAX];
	const char *id = NULL;
	size_t n;

	if (vm_id_lookup && pthread_equal(pthread_self(), vm_id_thread) &&
	    message_vm_name(msg, name, sizeof(name)))
		id = vm_id_lookup(name, vm_id_userdata);
	n = log_journal_fields(msg, level, id, &f);
	return sd_journal_sendv(f.iov, (int)n) >= 0;
}

int log_full_errno(enum log_level level, int error, const char *fmt, ...)
{
	static int journal = -1; /* unknown yet; 0: not; 1: entries; 2: "<N>" lines on stderr */
	char buf[LOG_LINE_MAX];
	va_list ap;
	int saved = errno;

	if (error < 0)
		error = -error;
	if (level > max_level) {
		errno = saved;
		return -error;
	}
	errno = error; /* "%m" prints the error passed in, as systemd's log functions do */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (journal < 0) /* sd_journal_sendv drops entries silently when journald is absent */
		journal = !log_stderr_is_journal() ? 0 : access(JOURNAL_SOCKET, W_OK) == 0 ? 1 : 2;
	if (!journal)
		fprintf(stderr, "mvirt-vmm: %s\n", buf);
	else if (journal == 2 || !journal_send(buf, level)) /* the stream takes "<N>" lines */
		fprintf(stderr, "<%d>%s\n", (int)level, buf);
	errno = saved;
	return -error;
}
