/* The error object of mvirt: a negative errno plus a message for the user.
 *
 * Operations a user can trigger (API calls, CLI commands) fill a struct mv_error with a message
 * that names the VM, the field and the cause; lower layers return -errno and stay silent. Only
 * the API layer maps the code to a gRPC status (see api.c). */
#pragma once

#include "common/macro.h"

#define MV_ERROR_MAX 1024

struct mv_error {
	int code;               /* -errno, 0 while unset */
	char msg[MV_ERROR_MAX]; /* NUL-terminated, "" while unset */
};

/* Records code and a formatted message in err (which may be NULL) and returns code, so that
 * callers write `return mv_err(err, -EINVAL, "...")`. The first error recorded wins: a message
 * already set is kept, so a low-level cause is not overwritten by a generic one. */
int mv_err(struct mv_error *err, int code, const char *fmt, ...) _printf_(3, 4);

/* Prefixes the message already in err (e.g. "vm 'a': " + cause). Returns err->code, or 0 when
 * err is NULL: callers return their own code, e.g. `return mv_err_prefix(err, ...), r;`. */
int mv_err_prefix(struct mv_error *err, const char *fmt, ...) _printf_(2, 3);

void mv_error_clear(struct mv_error *err);
