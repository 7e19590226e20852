/* UTF-8 as proto3 strings (and JSON) require it: RFC 3629, no overlong forms, no surrogates,
 * nothing above U+10FFFF. Pure. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..n) is valid UTF-8 (a NUL byte is valid UTF-8; callers that refuse NULs check
 * them apart). On false, *ret_offset (if not NULL) is the offset of the first bad byte. */
bool utf8_valid(const char *s, size_t n, size_t *ret_offset);

/* Makes the NUL-terminated s valid UTF-8 in place: every byte that does not begin a valid
 * sequence becomes '?'. For text from outside that the daemon keeps or serves (a hypervisor's
 * error message), where refusing is not an option. Returns s. */
char *utf8_sanitize(char *s);
