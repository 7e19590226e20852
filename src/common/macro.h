/* Small helpers shared by every part of mvirt: cleanup attributes and ownership transfer,
 * in the manner of systemd's macro.h. Header-only. */
#pragma once

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Exchanges two lvalues of one type. */
#define SWAP(a, b)                                                                                 \
	do {                                                                                       \
		__typeof__(a) _t = (a);                                                            \
		(a) = (b);                                                                         \
		(b) = _t;                                                                          \
	} while (0)

/* Returns the value of ptr and sets ptr to NULL: ownership leaves the variable. */
#define TAKE_PTR(ptr)                                                                              \
	({                                                                                         \
		__typeof__(ptr) _p_ = (ptr);                                                       \
		(ptr) = NULL;                                                                      \
		_p_;                                                                               \
	})

#define TAKE_FD(fd)                                                                                \
	({                                                                                         \
		int _fd_ = (fd);                                                                   \
		(fd) = -1;                                                                         \
		_fd_;                                                                              \
	})

static inline void freep(void *p)
{
	free(*(void **)p);
}

static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

static inline void fclosep(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Declares name##p(), a cleanup helper calling func on a pointer unless it is NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
	static inline void func##p(type *p)                                                        \
	{                                                                                          \
		if (*p)                                                                            \
			func(*p);                                                                  \
	}

#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))

static inline const char *strempty(const char *s)
{
	return s ? s : "";
}

static inline int isempty(const char *s)
{
	return !s || !*s;
}

/* The value of one hexadecimal digit, or -1. */
static inline int hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

#define streq(a, b) (strcmp((a), (b)) == 0)
/* Whether s begins with prefix. */
#define startswith(s, prefix) (strncmp((s), (prefix), strlen(prefix)) == 0)
