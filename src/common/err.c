/* See err.h. */
#include "common/err.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

int mv_err_kind(struct mv_error *err, enum mv_error_kind kind, int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	if (!err || err->kind != MV_ERR_NONE)
		return code;
	err->kind = kind == MV_ERR_NONE ? MV_ERR_INTERNAL : kind;
	/* A resource that ran out is that, wherever it was noticed: the caller may retry once
	 * fds, space or memory are back (RESOURCE_EXHAUSTED), which a fault is not. */
	if (err->kind == MV_ERR_INTERNAL &&
	    (code == -EMFILE || code == -ENFILE || code == -ENOSPC || code == -EDQUOT))
		err->kind = MV_ERR_EXHAUSTED;
	err->code = code;
	errno = code < 0 ? -code : code; /* for %m */
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	errno = saved;
	return code;
}

int mv_err_prefix(struct mv_error *err, const char *fmt, ...)
{
	char old[MV_ERROR_MAX];
	va_list ap;
	int n;

	if (!err)
		return 0;
	memcpy(old, err->msg, sizeof(old));
	va_start(ap, fmt);
	n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof(err->msg))
		memccpy(err->msg + n, old, '\0', sizeof(err->msg) - (size_t)n);
	err->msg[sizeof(err->msg) - 1] = '\0';
	return err->code;
}

int mv_err_ensure(struct mv_error *err, int r)
{
	if (r < 0 && err && err->kind == MV_ERR_NONE)
		mv_err_internal(err, r, "%m");
	return r;
}

void mv_error_clear(struct mv_error *err)
{
	if (!err)
		return;
	err->kind = MV_ERR_NONE;
	err->code = 0;
	err->msg[0] = '\0';
}

const char *mv_error_kind_name(enum mv_error_kind kind)
{
	static const char *const names[] = {
		[MV_ERR_NONE] = "none",
		[MV_ERR_INVALID] = "invalid",
		[MV_ERR_NOT_FOUND] = "not-found",
		[MV_ERR_EXISTS] = "exists",
		[MV_ERR_PRECONDITION] = "precondition",
		[MV_ERR_ABORTED] = "aborted",
		[MV_ERR_TIMEOUT] = "timeout",
		[MV_ERR_EXHAUSTED] = "exhausted",
		[MV_ERR_DENIED] = "denied",
		[MV_ERR_UNAVAILABLE] = "unavailable",
		[MV_ERR_UNSUPPORTED] = "unsupported",
		[MV_ERR_INTERNAL] = "internal",
	};

	_Static_assert(ELEMENTSOF(names) == _MV_ERR_KIND_MAX, "a name for every kind");
	return (size_t)kind < ELEMENTSOF(names) && names[kind] ? names[kind] : "unknown";
}

const char *mv_printable(const char *s, char *buf, size_t size)
{
	size_t i;

	for (i = 0; s[i] && i + 1 < size; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	buf[i] = '\0';
	return buf;
}
