/*
 * pp_cfgtext.h - the text syntax shared by the PP_* variables
 * (pp_cfgtext.c), for the parsers of pp_config.c and pp_acl.c.  Pure.
 */
#ifndef PP_CFGTEXT_H
#define PP_CFGTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A reason shared by the parsers (the manual lists them all). */
#define PP_R_NOT_IP "not an IP address"

enum pp_num { PP_NUM_OK = 0, PP_NUM_NAN, PP_NUM_RANGE };

/*
 * The next list entry at or after *pos: sets *tok to its start, moves
 * *pos past it and returns its length (0 when the list is exhausted).
 */
size_t pp_cfg_token(const char **pos, const char **tok);

/* v without surrounding blanks: sets *word, returns its length. */
size_t pp_cfg_trim(const char *v, const char **word);

/* Is a value unset (NULL) or without any entry (the default applies)? */
bool pp_cfg_empty(const char *v);

/* Are the n bytes at s exactly word? */
bool pp_cfg_word_is(const char *s, size_t n, const char *word);

/*
 * Write the error line "NAME: 'entry': reason" into err[0..errlen), the
 * entry (n bytes at tok) shown as written but with control bytes escaped
 * and cut short when long.  Always returns -1.
 */
int pp_cfg_fail(char *err, size_t errlen, const char *name, const char *tok,
		size_t n, const char *reason);

/*
 * A decimal number of n digits, no sign, at most max, into *out.  A
 * number too long to hold is PP_NUM_RANGE if it is made of digits only.
 */
enum pp_num pp_cfg_num(const char *s, size_t n, unsigned long max,
		       unsigned long *out);

/* A strict dotted quad (no leading zeros), stored IPv4-mapped in out. */
bool pp_cfg_ipv4(const char *s, size_t n, uint8_t out[16]);

/* RFC 4291 text (with :: and a trailing dotted quad), no zone index. */
bool pp_cfg_ipv6(const char *s, size_t n, uint8_t out[16]);

#endif /* PP_CFGTEXT_H */
