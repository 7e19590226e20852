/* See log.h. Writes "<N>message" lines when stderr is the journal (systemd parses the
 * priority prefix), plain "mvirt-vmm: message" lines otherwise. */
#include "common/log.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static enum log_level max_level = LOG_LEVEL_INFO;

void log_set_max_level(enum log_level level)
{
	max_level = level;
}

enum log_level log_get_max_level(void)
{
	return max_level;
}

int log_full_errno(enum log_level level, int error, const char *fmt, ...)
{
	char buf[2048];
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
	if (getenv("JOURNAL_STREAM"))
		fprintf(stderr, "<%d>%s\n", (int)level, buf);
	else
		fprintf(stderr, "mvirt-vmm: %s\n", buf);
	errno = saved;
	return -error;
}
