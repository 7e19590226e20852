/* See strv.h. */
#include "common/strv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

size_t strv_len(char *const *v)
{
	size_t n = 0;

	while (v && v[n])
		n++;
	return n;
}

int strv_push(char ***v, size_t *n, const char *str)
{
	char **p = reallocarray(*v, *n + 2, sizeof(char *));

	if (!p)
		return -ENOMEM;
	*v = p;
	p[*n] = strdup(str);
	if (!p[*n])
		return -ENOMEM;
	p[++*n] = NULL;
	return 0;
}

void strv_join(char *const *v, char *buf, size_t size)
{
	size_t len = 0;

	if (size == 0)
		return;
	buf[0] = '\0';
	for (size_t i = 0; v && v[i]; i++) {
		int n = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", v[i]);

		if (n < 0 || (size_t)n >= size - len) {
			if (size > 4)
				memcpy(buf + size - 4, "...", 4);
			return;
		}
		len += (size_t)n;
	}
}
