/*
 * pp_hex.h - bytes as lowercase hex digits and back (pp_hex.c).
 *
 * Pure: no I/O, no state, no allocation; safe between vfork and exec
 * and in a signal handler.
 */
#ifndef PP_HEX_H
#define PP_HEX_H

#include <stdbool.h>
#include <stddef.h>

/* The value of hex digit c (0-9, a-f, A-F), -1 for any other byte. */
static inline int
pp_hex_digit(unsigned c)
{
	if (c >= '0' && c <= '9')
		return (int)(c - '0');
	if (c >= 'a' && c <= 'f')
		return (int)(c - 'a' + 10);
	if (c >= 'A' && c <= 'F')
		return (int)(c - 'A' + 10);
	return -1;
}

/* The lowercase digit for the low four bits of v. */
static inline char
pp_hex_char(unsigned v)
{
	return "0123456789abcdef"[v & 15u];
}

/*
 * Write the n bytes at in as 2n lowercase hex digits at out (no NUL is
 * added).  Returns 2n.
 */
size_t pp_hex_encode(const void *in, size_t n, char *out);

/*
 * Decode the n characters at s, two hex digits (either case) a byte,
 * into out.  Returns true and sets *len to n / 2; false when n is odd,
 * the bytes would not fit in cap, or a character is not a hex digit
 * (out may then be partly written).
 */
bool pp_hex_decode(const char *s, size_t n, void *out, size_t cap, size_t *len);

#endif /* PP_HEX_H */
