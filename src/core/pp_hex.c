/*
 * pp_hex.c - the hex codec: bytes to lowercase hex digits and strict
 * decoding back (see pp_hex.h).
 */
#include "config.h"

#include <stdint.h>

#include "pp_hex.h"

size_t
pp_hex_encode(const void *in, size_t n, char *out)
{
	const uint8_t *b = in;
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = pp_hex_char(b[i] >> 4);
		out[2 * i + 1] = pp_hex_char(b[i]);
	}
	return 2 * n;
}

bool
pp_hex_decode(const char *s, size_t n, void *out, size_t cap, size_t *len)
{
	uint8_t *b = out;
	size_t i;
	int hi, lo;

	if (n % 2 != 0 || n / 2 > cap)
		return false;
	for (i = 0; i < n / 2; i++) {
		hi = pp_hex_digit((unsigned char)s[2 * i]);
		lo = pp_hex_digit((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	*len = n / 2;
	return true;
}
