/*
 * pp_cfgtext.c - the text syntax every PP_* variable shares: lists,
 * single words, numbers, IP addresses, and the one-line error.
 *
 * Syntax shared by every variable:
 *  - A list (PP_PORTS, PP_ALLOW, PP_DIRECT, PP_VERSIONS) is split into
 *    entries at any run of commas, spaces, tabs and newlines.  Empty
 *    entries ("1,,2", a leading or trailing comma) are ignored.
 *  - A single value (PP_TIMEOUT_MS, PP_SOCKNAME, PP_LOG, PP_LOG_TARGET,
 *    PP_V2_DRAFT, PP_INHERIT) may be surrounded by spaces, tabs and
 *    newlines; between them it is taken as one word, commas included.
 *  - A value with no entry or word at all is the same as an unset one and
 *    gets the default.  This holds for PP_ALLOW too: an empty PP_ALLOW
 *    means 127.0.0.0/8,::1, never "trust nobody" (a PROXY-only socket
 *    that trusts nobody is useless, and an empty value is much more often
 *    a shell variable that expanded to nothing).  An empty PP_PORTS is
 *    its default: no socket is touched.
 *  - Keywords (tcp, udp, proxied, syslog, ...) are lower case, exactly.
 *  - Numbers (ports, prefix lengths, PP_TIMEOUT_MS) are decimal digits
 *    only, no sign; leading zeros are allowed there ("080" is 80).  IPv4
 *    octets are the exception: a leading zero is an error, because
 *    inet_aton() and friends read "010" as octal 8.
 *
 * The first malformed entry stops the parse with one line naming the
 * variable, the entry as written (quoted; control characters shown as
 * \xNN, long entries cut short with "...") and a fixed reason.
 *
 * Nothing here allocates, does I/O or keeps state between calls.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "pp_cfgtext.h"
#include "pp_hex.h"
#include "pp_sockaddr.h"

/* An entry longer than this (as displayed) is shown cut short. */
#define PP_QUOTE_MAX 64

static bool
pp_is_sep(char ch)
{
	return ch == ',' || ch == ' ' || ch == '\t' || ch == '\n';
}

static bool
pp_is_blank(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n';
}

/*
 * The next list entry at or after *pos: sets *tok to its start, moves
 * *pos past it and returns its length (0 when the list is exhausted).
 */
size_t
pp_cfg_token(const char **pos, const char **tok)
{
	const char *s = *pos;

	while (*s != '\0' && pp_is_sep(*s))
		s++;
	*tok = s;
	while (*s != '\0' && !pp_is_sep(*s))
		s++;
	*pos = s;
	return (size_t)(s - *tok);
}

/* v without surrounding blanks: sets *word, returns its length. */
size_t
pp_cfg_trim(const char *v, const char **word)
{
	size_t n;

	while (pp_is_blank(*v))
		v++;
	n = strlen(v);
	while (n > 0 && pp_is_blank(v[n - 1]))
		n--;
	*word = v;
	return n;
}

/* Is a value unset or without any entry (the default applies)? */
bool
pp_cfg_empty(const char *v)
{
	if (v == NULL)
		return true;
	while (pp_is_sep(*v))
		v++;
	return *v == '\0';
}

bool
pp_cfg_word_is(const char *s, size_t n, const char *word)
{
	return strlen(word) == n && memcmp(s, word, n) == 0;
}

/*
 * Write the error line "NAME: 'entry': reason" into err, the entry shown
 * as written but with control bytes escaped and cut at PP_QUOTE_MAX.
 * Always returns -1.
 */
int
pp_cfg_fail(char *err, size_t errlen, const char *name, const char *tok,
	    size_t n, const char *reason)
{
	char q[PP_QUOTE_MAX + 1];
	size_t shown = 0, i, used = 0, limit;

	if (err == NULL || errlen == 0)
		return -1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)tok[i];

		shown += (ch < 0x20 || ch == 0x7f) ? 4 : 1;
	}
	limit = shown > PP_QUOTE_MAX ? PP_QUOTE_MAX - 3 : PP_QUOTE_MAX;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)tok[i];

		if (ch < 0x20 || ch == 0x7f) {
			if (used + 4 > limit)
				break;
			q[used++] = '\\';
			q[used++] = 'x';
			used += pp_hex_encode(&ch, 1, q + used);
		} else {
			if (used + 1 > limit)
				break;
			q[used++] = (char)ch;
		}
	}
	if (shown > PP_QUOTE_MAX) {
		memcpy(q + used, "...", 3);
		used += 3;
	}
	q[used] = '\0';
	snprintf(err, errlen, "%s: '%s': %s", name, q, reason);
	return -1;
}

/*
 * A decimal number of n digits, no sign, at most max.  A number too long
 * to hold is PP_NUM_RANGE if it is made of digits only.
 */
enum pp_num
pp_cfg_num(const char *s, size_t n, unsigned long max, unsigned long *out)
{
	unsigned long v = 0;
	bool big = false;
	size_t i;

	if (n == 0)
		return PP_NUM_NAN;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return PP_NUM_NAN;
		if (!big) {
			v = v * 10 + (unsigned long)(s[i] - '0');
			if (v > max)
				big = true;
		}
	}
	if (big)
		return PP_NUM_RANGE;
	*out = v;
	return PP_NUM_OK;
}

/*
 * A strict dotted quad (four decimal parts 0..255, no leading zeros, no
 * other characters), stored v4-mapped into out.
 */
bool
pp_cfg_ipv4(const char *s, size_t n, uint8_t out[16])
{
	uint8_t q[4];
	size_t i = 0;
	int part;

	for (part = 0; part < 4; part++) {
		unsigned v = 0;
		size_t start;

		if (part > 0) {
			if (i >= n || s[i] != '.')
				return false;
			i++;
		}
		start = i;
		while (i < n && i - start < 3 && s[i] >= '0' && s[i] <= '9') {
			v = v * 10 + (unsigned)(s[i] - '0');
			i++;
		}
		if (i == start || v > 255)
			return false;
		if (s[start] == '0' && i - start > 1)
			return false;
		q[part] = (uint8_t)v;
	}
	if (i != n)
		return false;
	pp_sa_map4(out, q);
	return true;
}

/* RFC 4291 text (with :: and a trailing dotted quad), no zone index. */
bool
pp_cfg_ipv6(const char *s, size_t n, uint8_t out[16])
{
	char buf[INET6_ADDRSTRLEN];

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return inet_pton(AF_INET6, buf, out) == 1;
}
