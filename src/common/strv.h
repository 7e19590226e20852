/* NULL-terminated arrays of strings ("string vectors"), each element and the array malloc()ed.
 * Silent: return 0 or -ENOMEM. */
#pragma once

#include <stddef.h>

/* Frees each element and the array. NULL-safe. */
void strv_free(char **v);
/* The number of elements before the NULL (0 for NULL). */
size_t strv_len(char *const *v);
/* Appends a copy of str to *v, which holds *n elements (NULL and 0 for an empty vector); on
 * failure *v is unchanged but may have moved, and stays valid. */
int strv_push(char ***v, size_t *n, const char *str);
/* "a, b, c" into buf (always NUL-terminated), cut with "..." when it does not fit. */
void strv_join(char *const *v, char *buf, size_t size);
