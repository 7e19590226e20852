/* Logging for the daemon: to stderr (journald adds its own timestamps under systemd).
 * Messages are prefixed with their subject by the caller ("vm web-1: boot failed: ...");
 * log once, where the decision is made. Library-like modules do not log. */
#pragma once

#include "common/macro.h"

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

#define log_error(...) log_full_errno(LOG_LEVEL_ERR, 0, __VA_ARGS__)
#define log_warning(...) log_full_errno(LOG_LEVEL_WARNING, 0, __VA_ARGS__)
#define log_notice(...) log_full_errno(LOG_LEVEL_NOTICE, 0, __VA_ARGS__)
#define log_info(...) log_full_errno(LOG_LEVEL_INFO, 0, __VA_ARGS__)
#define log_debug(...) log_full_errno(LOG_LEVEL_DEBUG, 0, __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_LEVEL_ERR, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_LEVEL_WARNING, (e), __VA_ARGS__)

#define log_oom() log_full_errno(LOG_LEVEL_ERR, ENOMEM, "out of memory")
