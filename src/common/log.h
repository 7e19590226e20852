/* Logging for the daemon: to stderr, or under systemd to the journal as structured entries
 * (journald adds its own timestamps). Messages are prefixed with their subject by the caller
 * ("vm web-1: boot failed: ..."); log once, where the decision is made. Library-like modules
 * do not log. A line about a VM ("vm NAME: ...") gets the journal fields MVIRT_VM_NAME and,
 * when the daemon registered a lookup (log_set_vm_id_lookup), MVIRT_VM_ID:
 *   journalctl -u mvirt-vmm MVIRT_VM_NAME=web-1 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#include "common/macro.h"

#define LOG_LINE_MAX 2048
#define LOG_VM_NAME_MAX 64 /* VM names and ids are shorter */

enum log_level {
	LOG_LEVEL_ERR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

void log_set_max_level(enum log_level level);
enum log_level log_get_max_level(void);

/* Always returns -abs(error) (or 0 if error is 0), so callers can `return log_error_errno(r, ...)`.
 * "%m" in fmt prints strerror(abs(error)), not whatever errno holds; errno is preserved. */
int log_full_errno(enum log_level level, int error, const char *fmt, ...) _printf_(3, 4);

/* The id of the VM named name, or NULL; called on the thread that registered it only (the
 * event loop's, which owns the VMs). The string needs to live until the call returns. */
typedef const char *(*log_vm_id_fn)(const char *name, void *userdata);
void log_set_vm_id_lookup(log_vm_id_fn fn, void *userdata);

/* Whether stderr is the journal stream systemd connected ($JOURNAL_STREAM = its dev:inode). */
bool log_stderr_is_journal(void);

/* The journal entry of one message, as sd_journal_sendv takes it: PRIORITY,
 * SYSLOG_IDENTIFIER, MVIRT_VM_NAME and MVIRT_VM_ID (for a "vm NAME: ..." message; the id when
 * vm_id is not NULL), then MESSAGE. Fills f, returns the number of iovecs. Pure. */
struct log_fields {
	struct iovec iov[5];
	char buf[4][LOG_VM_NAME_MAX + 32];
	char message[LOG_LINE_MAX + 8];
};
size_t log_journal_fields(const char *msg, enum log_level level, const char *vm_id,
			  struct log_fields *f);

#define log_error(...) log_full_errno(LOG_LEVEL_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_LEVEL_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_LEVEL_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_LEVEL_WARNING, (e), __VA_ARGS__)

#define log_oom() log_full_errno(LOG_LEVEL_ERR, ENOMEM, "out of memory")
