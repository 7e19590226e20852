/* The error object of mvirt: what kind of failure it is, a negative errno, and a message for
 * the user.
 *
 * Operations a user can trigger (API calls, CLI commands) fill a struct mv_error with a message
 * that names the VM, the field and the cause, and with its kind, chosen where the error is
 * made: the code that finds a bad field knows it is a bad argument, the code that finds a VM
 * running knows it is a failed precondition. The API layer maps the kind, never the errno, to
 * a gRPC status (api/api_status.c). The errno is the detail that C callers test (-ENOMEM,
 * -ENOENT) and that "%m" prints in the message. Lower layers that have no user to answer
 * return -errno and stay silent. */
#pragma once

#include <errno.h>
#include <stddef.h>

#include "common/macro.h"

#define MV_ERROR_MAX 1024

enum mv_error_kind {
	MV_ERR_NONE = 0,     /* no error recorded */
	MV_ERR_INVALID,      /* the request is wrong: a bad field value (INVALID_ARGUMENT) */
	MV_ERR_NOT_FOUND,    /* what the request names does not exist */
	MV_ERR_EXISTS,       /* what the request would create exists already */
	MV_ERR_PRECONDITION, /* right request, wrong moment: state, a file gone, a refusal */
	MV_ERR_ABORTED,      /* interrupted by another operation (kill during a stop) */
	MV_ERR_TIMEOUT,      /* something the daemon waited for did not answer in time */
	MV_ERR_EXHAUSTED,    /* a limit or a resource ran out: disk full, queue full */
	MV_ERR_DENIED,       /* the caller may not do this */
	MV_ERR_UNAVAILABLE,  /* the daemon is shutting down, or a resource is busy: retry */
	MV_ERR_UNSUPPORTED,  /* not implemented by this daemon */
	MV_ERR_INTERNAL,     /* a fault of the daemon or its host, not of the request */
	_MV_ERR_KIND_MAX,
};

struct mv_error {
	enum mv_error_kind kind; /* MV_ERR_NONE while unset */
	int code;                /* -errno, 0 while unset */
	char msg[MV_ERROR_MAX];  /* NUL-terminated, "" while unset */
};

/* Records kind, code and a formatted message in err (which may be NULL) and returns code, so
 * that callers write `return mv_err_invalid(err, "...")`. "%m" in fmt prints strerror(-code).
 * The first error recorded wins: one already set is kept, so a low-level cause is not
 * overwritten by a generic one. */
int mv_err_kind(struct mv_error *err, enum mv_error_kind kind, int code, const char *fmt, ...)
	_printf_(4, 5);

/* The kinds with their usual errno; the others take the errno that says what went wrong. */
#define mv_err_invalid(err, ...) mv_err_kind((err), MV_ERR_INVALID, -EINVAL, __VA_ARGS__)
#define mv_err_not_found(err, ...) mv_err_kind((err), MV_ERR_NOT_FOUND, -ENOENT, __VA_ARGS__)
#define mv_err_exists(err, ...) mv_err_kind((err), MV_ERR_EXISTS, -EEXIST, __VA_ARGS__)
#define mv_err_precondition(err, code, ...)                                                        \
	mv_err_kind((err), MV_ERR_PRECONDITION, (code), __VA_ARGS__)
#define mv_err_aborted(err, ...) mv_err_kind((err), MV_ERR_ABORTED, -ECANCELED, __VA_ARGS__)
#define mv_err_timeout(err, ...) mv_err_kind((err), MV_ERR_TIMEOUT, -ETIMEDOUT, __VA_ARGS__)
#define mv_err_exhausted(err, code, ...) mv_err_kind((err), MV_ERR_EXHAUSTED, (code), __VA_ARGS__)
#define mv_err_denied(err, code, ...) mv_err_kind((err), MV_ERR_DENIED, (code), __VA_ARGS__)
#define mv_err_unavailable(err, ...) mv_err_kind((err), MV_ERR_UNAVAILABLE, -ESHUTDOWN, __VA_ARGS__)
#define mv_err_unsupported(err, ...)                                                               \
	mv_err_kind((err), MV_ERR_UNSUPPORTED, -EOPNOTSUPP, __VA_ARGS__)
#define mv_err_internal(err, code, ...) mv_err_kind((err), MV_ERR_INTERNAL, (code), __VA_ARGS__)
#define mv_err_oom(err) mv_err_kind((err), MV_ERR_INTERNAL, -ENOMEM, "out of memory")

/* Prefixes the message already in err (e.g. "vm 'a': " + cause); kind and code stay. Returns
 * err->code, or 0 when err is NULL: callers return their own code, e.g.
 * `return mv_err_prefix(err, ...), r;`. */
int mv_err_prefix(struct mv_error *err, const char *fmt, ...) _printf_(2, 3);

/* Makes sure a failure r < 0 is recorded: when err holds nothing yet, records r as an
 * internal error with strerror's text. Returns r. For callers that got an -errno from a
 * function that may fail without filling err (out of memory). */
int mv_err_ensure(struct mv_error *err, int r);

void mv_error_clear(struct mv_error *err);

/* "invalid", "not-found", ... ("none" for MV_ERR_NONE); for logs and tests. */
const char *mv_error_kind_name(enum mv_error_kind kind);

/* Copies s into buf (size > 0) for quoting in a message, with bytes that are not printable
 * ASCII shown as '?', so that user input cannot inject control characters into error
 * messages. Returns buf. */
const char *mv_printable(const char *s, char *buf, size_t size);
