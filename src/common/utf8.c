/* See utf8.h. */
#include "utf8.h"

#include <stdint.h>
#include <string.h>

/* The length of the sequence at p (at most n bytes left), 0 when it is not valid. Table 3-7 of
 * the Unicode standard: the second byte's range depends on the first byte. */
static size_t seq_len(const uint8_t *p, size_t n)
{
	uint8_t b = p[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		len = 2;
	else if (b >= 0xe0 && b <= 0xef) {
		len = 3;
		if (b == 0xe0)
			lo = 0xa0; /* overlong below U+0800 */
		else if (b == 0xed)
			hi = 0x9f; /* U+D800..U+DFFF: surrogates */
	} else if (b >= 0xf0 && b <= 0xf4) {
		len = 4;
		if (b == 0xf0)
			lo = 0x90; /* overlong below U+10000 */
		else if (b == 0xf4)
			hi = 0x8f; /* above U+10FFFF */
	} else
		return 0; /* a continuation byte, 0xc0/0xc1 (overlong), or 0xf5.. */
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

bool utf8_valid(const char *s, size_t n, size_t *ret_offset)
{
	const uint8_t *p = (const uint8_t *)s;
	size_t i = 0;

	while (i < n) {
		size_t len = seq_len(p + i, n - i);

		if (len == 0) {
			if (ret_offset)
				*ret_offset = i;
			return false;
		}
		i += len;
	}
	return true;
}

char *utf8_sanitize(char *s)
{
	uint8_t *p = (uint8_t *)s;
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t len = seq_len(p + i, n - i);

		if (len == 0) {
			p[i++] = '?';
			continue;
		}
		i += len;
	}
	return s;
}
