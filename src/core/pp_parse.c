/*
 * pp_parse.c - the PROXY protocol header parser.
 *
 * The parser is pure: it does no I/O, allocates nothing and has no global
 * mutable state.  Everything it knows lives in struct pp_parser, which the
 * caller owns; header bytes are kept in storage the caller supplies.
 *
 * The state machine
 * -----------------
 *
 * A parser is in one of six stages (the low bits of p->state):
 *
 *   START  nothing seen.  The first byte decides: 'P' starts a v1 line,
 *          0x0D a binary header (final v2 or the 2012 draft); anything
 *          else is PP_E_SIGNATURE at once.  A layout the parser was not
 *          asked to accept is PP_E_VERSION at that same first byte.
 *   V1     inside a v1 line.  The line is a sequence of fields ("PROXY",
 *          the protocol word, source, destination, source port,
 *          destination port, or for UNKNOWN an ignored tail), each ended
 *          by one terminator byte (SP, or CR for the last).  The parser
 *          remembers which field it is in and where it started
 *          (p->pos); each push rescans only the current field, so a line
 *          fed one byte at a time costs at most a few times its length,
 *          and a line fed whole is scanned once.  A field that is not
 *          complete yet is checked as a prefix: the parser fails at the
 *          first byte after which no completion can be valid.  A line
 *          that arrives complete in one piece first goes through a
 *          straight scan (pp_v1_fast(): IPv6 addresses of plain hex
 *          groups through a lookup table, any other IPv6 text field by
 *          field) that accepts exactly the same lines; what it refuses
 *          is rescanned incrementally, which finds the error and the
 *          byte where it became certain.  The fuzz target checks that
 *          both agree.
 *   BIN    inside the 16 fixed bytes of a binary header, checked one
 *          byte at a time as they arrive: every signature byte, the
 *          version/command byte, the family/transport byte, then the
 *          length.  Once the length is in, the total is known
 *          (pp_parser_total()) and a length shorter than the address
 *          block of the family fails at once.
 *   BODY   the rest of a binary header.  Bytes are taken in bulk (never
 *          past the total).  The address block is decoded once it is
 *          complete (a UNIX path without a NUL fails as soon as its 108
 *          bytes are in); TLVs are walked as their headers arrive
 *          (p->pos is the offset of the next TLV), so a TLV that runs
 *          past the end fails as soon as its 3-byte header is in.  The
 *          CRC32C, if present, is checked when the last byte arrives.
 *   DONE   complete; p->hdr describes the header.
 *   FAIL   invalid; p->err and p->reason say why.
 *
 * pp_parser_push() copies what may belong to the header into the caller's
 * buffer (never more than the header needs once its length is known, and
 * at most 107 bytes of a v1 line) and then advances the machine over the
 * new bytes.  Bytes after the end of the header are never counted in
 * *used.  pp_parse_buf() runs the same machine directly over a caller's
 * complete buffer, without copying.
 *
 * What is accepted
 * ----------------
 *
 * v1 (strict; anything else is invalid):
 *
 *   "PROXY" SP "TCP4" SP ipv4 SP ipv4 SP port SP port CRLF
 *   "PROXY" SP "TCP6" SP ipv6 SP ipv6 SP port SP port CRLF
 *   "PROXY" SP "UNKNOWN" CRLF
 *   "PROXY" SP "UNKNOWN" SP <any bytes except CR and LF> CRLF
 *
 *   - exactly one space between fields; no leading or trailing spaces,
 *     no tabs; the words are upper case;
 *   - the line ends with CR LF and nothing else: a lone LF, or a CR not
 *     immediately followed by LF, is invalid;
 *   - at most 107 bytes including CR LF (PP_E_V1_TOO_LONG once the 106th
 *     byte is in and the line cannot end by the 107th);
 *   - ipv4 is a dotted quad of exactly four decimal parts 0..255, with no
 *     leading zeros ("0" itself is fine, "010" is not), no sign, no
 *     spaces, no shortened forms ("127.1") and no hex or octal;
 *   - ipv6 is RFC 4291 text: eight groups of 1 to 4 hex digits (either
 *     case), or fewer with one "::" standing for at least one zero group,
 *     optionally ending in a dotted quad (same rules as ipv4) that stands
 *     for the last two groups; no zone ("%eth0"), no brackets, no prefix
 *     length.  The parser's own validator is used (not inet_pton()), so
 *     the rules do not depend on the C library;
 *   - an address of the other family (an IPv6 address after TCP4, a
 *     dotted quad alone after TCP6) is invalid;
 *   - ports are decimal 0..65535 with no leading zeros and no sign;
 *   - UNKNOWN reports command PROXY with family and transport UNSPEC: the
 *     receiver keeps the real addresses; its tail is not interpreted.
 *
 * v2, final layout:
 *
 *   - the 12-byte signature, checked byte by byte;
 *   - version nibble 2; command 0 (LOCAL) or 1 (PROXY);
 *   - family 0..3 and transport 0..2, checked for every command;
 *   - total length 16 + the 16-bit length field, up to 16 + 65535;
 *   - PROXY with INET, INET6 or UNIX: the length must cover the address
 *     block (12, 36 or 216 bytes); what follows it up to the end must be
 *     well-formed TLVs: each TLV's 3-byte header and its value lie within
 *     the header; CRC32C has length 4, appears at most once and must
 *     match; UNIQUE_ID is at most 128 bytes; SSL is at least 5 bytes and
 *     its sub-TLVs lie exactly within it; other types (registered or not)
 *     are skipped.  UNIX paths must contain a NUL within their 108 bytes;
 *   - LOCAL (any valid family), and PROXY with family UNSPEC: the length
 *     may be anything (0 included) and the bytes after the 16 fixed ones
 *     are skipped without interpretation: no address is reported
 *     (AF_UNSPEC), no TLV area, no CRC check.  Senders put arbitrary
 *     things there, and the receiver keeps the real addresses anyway.
 *
 * 2012 draft layout (only with PP_ACCEPT_DRAFT; without it a byte 13 of
 * 0x02 is PP_E_VERSION at once):
 *
 *   - signature, then 0x02, a command byte (0 LOCAL, 1 PROXY), a
 *     family/transport byte as in v2, and a one-byte length of what
 *     follows; PROXY with INET, INET6 or UNIX needs the length to cover
 *     the address block; bytes after it are skipped (the draft has no
 *     TLVs); LOCAL and UNSPEC skip everything as in v2.
 *
 * Checks happen at the earliest byte that can decide them; the vectors in
 * tests/unit/cases state that byte for many cases.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "crc32c.h"
#include "pp_hex.h"
#include "pp_hot.h"
#include "pp_parse.h"

static const uint8_t pp_v2_sig[12] = {
	0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A,
};

/* Stages (p->state & PP_ST_STAGE) and flags kept in p->state. */
enum {
	PP_ST_START = 0,
	PP_ST_V1 = 1,
	PP_ST_BIN = 2,
	PP_ST_BODY = 3,
	PP_ST_DONE = 4,
	PP_ST_FAIL = 5,
};
#define PP_ST_STAGE 0x0f
#define PP_ST_DRAFT 0x10 /* binary header in the draft layout */
#define PP_ST_CRC 0x20   /* a CRC32C TLV was seen */
#define PP_ST_SKIP 0x40  /* body skipped uninterpreted */
#define PP_ST_ADDR 0x80  /* address block decoded */
#define PP_ST_FSHIFT 8   /* v1: current field, 4 bits */

/* v1 fields. */
enum {
	PP_F_PROXY,
	PP_F_PROTO,
	PP_F_SRC,
	PP_F_DST,
	PP_F_SPORT,
	PP_F_DPORT,
	PP_F_TAIL, /* UNKNOWN: ignored up to CR */
	PP_F_LF,   /* CR seen, LF expected */
};

#define PP_UNIX_PATH 108

static inline unsigned
pp_stage(const struct pp_parser *p)
{
	return (unsigned)p->state & PP_ST_STAGE;
}

static inline void
pp_set_stage(struct pp_parser *p, unsigned stage)
{
	p->state = (int)(((unsigned)p->state & ~(unsigned)PP_ST_STAGE) | stage);
}

static inline void
pp_set_flag(struct pp_parser *p, unsigned flag)
{
	p->state = (int)((unsigned)p->state | flag);
}

static inline bool
pp_has_flag(const struct pp_parser *p, unsigned flag)
{
	return ((unsigned)p->state & flag) != 0;
}

static __attribute__((format(printf, 3, 4))) enum pp_status
pp_fail(struct pp_parser *p, enum pp_err err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->reason, sizeof(p->reason), fmt, ap);
	va_end(ap);
	p->err = err;
	pp_set_stage(p, PP_ST_FAIL);
	return PP_INVALID;
}

static inline uint16_t
pp_be16(const uint8_t *b)
{
	return (uint16_t)((unsigned)b[0] << 8 | b[1]);
}

/* Two bytes as they stand (a port in network order). */
static inline uint16_t
pp_ne16(const uint8_t *b)
{
	uint16_t v;

	memcpy(&v, b, 2);
	return v;
}

static inline uint32_t
pp_be32(const uint8_t *b)
{
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 |
	       (uint32_t)b[2] << 8 | b[3];
}

/* ===== v1 text fields ===== */

/*
 * A dotted quad, continuing after `parts` complete parts whose value is
 * acc (so that an IPv6 tail can hand over its first part).  With complete
 * false, s[0..n) need only be a prefix of a valid quad.
 */
static bool
pp_v4_scan(const uint8_t *s, size_t n, bool complete, unsigned parts,
	   uint32_t acc, uint32_t *out)
{
	unsigned nd = 0, v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned c = s[i];

		if (c >= '0' && c <= '9') {
			if (nd > 0 && v == 0)
				return false; /* leading zero */
			v = v * 10 + (c - '0');
			if (v > 255)
				return false;
			nd++;
		} else if (c == '.') {
			if (nd == 0 || parts == 3)
				return false;
			acc = acc << 8 | v;
			parts++;
			nd = 0;
			v = 0;
		} else {
			return false;
		}
	}
	if (!complete)
		return true;
	if (nd == 0 || parts != 3)
		return false;
	*out = acc << 8 | v;
	return true;
}

static void
pp_v6_build(const uint16_t *g, unsigned ng, int gap, struct in6_addr *out)
{
	unsigned i, at;

	memset(out, 0, sizeof(*out));
	if (gap < 0)
		gap = (int)ng;
	for (i = 0; i < (unsigned)gap; i++) {
		out->s6_addr[2 * i] = (uint8_t)(g[i] >> 8);
		out->s6_addr[2 * i + 1] = (uint8_t)g[i];
	}
	at = 8 - (ng - (unsigned)gap);
	for (; i < ng; i++, at++) {
		out->s6_addr[2 * at] = (uint8_t)(g[i] >> 8);
		out->s6_addr[2 * at + 1] = (uint8_t)g[i];
	}
}

/*
 * RFC 4291 section 2.2 text.  ng counts the groups ended so far, gap is
 * the number of groups before "::" (-1 while there is none).  A group may
 * start only while it can still fit (8 groups, or 7 when "::" stands for
 * at least one); a '.' turns the current group into the first part of a
 * dotted quad, which stands for the last two groups.
 */
static bool
pp_v6_scan(const uint8_t *s, size_t n, bool complete, struct in6_addr *out)
{
	uint16_t g[10];
	unsigned ng = 0, nd = 0, v = 0, dv = 0, colons = 0;
	int gap = -1;
	bool dec = true;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned c = s[i];
		int x;

		if (c == ':') {
			if (nd > 0) {
				g[ng++] = (uint16_t)v;
				if (ng > (gap >= 0 ? 6u : 7u))
					return false;
				nd = 0;
				colons = 1;
			} else if (colons == 0 && i == 0) {
				colons = 1;
			} else if (colons == 1) {
				if (gap >= 0)
					return false;
				gap = (int)ng;
				colons = 2;
			} else {
				return false;
			}
			continue;
		}
		if (c == '.') {
			uint32_t q;

			if (nd == 0 || !dec)
				return false;
			if (gap >= 0 ? ng > 5 : ng != 6)
				return false;
			if (!pp_v4_scan(s + i + 1, n - i - 1, complete, 1, dv,
					&q))
				return false;
			if (!complete)
				return true;
			g[ng++] = (uint16_t)(q >> 16);
			g[ng++] = (uint16_t)q;
			pp_v6_build(g, ng, gap, out);
			return true;
		}
		x = pp_hex_digit(c);
		if (x < 0)
			return false;
		if (nd == 0) {
			if (colons == 1 && ng == 0)
				return false; /* single leading colon */
			if (gap >= 0 && ng >= 7)
				return false;
			v = 0;
			dv = 0;
			dec = true;
		}
		if (++nd > 4)
			return false;
		v = v << 4 | (unsigned)x;
		if (x > 9 || (nd > 1 && dv == 0))
			dec = false;
		else
			dv = dv * 10 + (unsigned)x;
		if (dv > 255)
			dec = false;
		colons = 0;
	}
	if (!complete)
		return true;
	if (nd > 0)
		g[ng++] = (uint16_t)v;
	else if (colons != 2)
		return false; /* empty, or ends with a single colon */
	if (gap < 0 && ng != 8)
		return false;
	pp_v6_build(g, ng, gap, out);
	return true;
}

static bool
pp_port_scan(const uint8_t *s, size_t n, bool complete, uint16_t *out)
{
	unsigned v = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned c = s[i];

		if (c < '0' || c > '9')
			return false;
		if (i > 0 && v == 0)
			return false; /* leading zero */
		v = v * 10 + (c - '0');
		if (v > 65535)
			return false;
	}
	if (!complete)
		return true;
	if (n == 0)
		return false;
	*out = (uint16_t)v;
	return true;
}

static bool
pp_word_prefix(const uint8_t *s, size_t n, const char *word, bool complete)
{
	size_t wl = strlen(word);

	if (n > wl || (complete && n != wl))
		return false;
	return memcmp(s, word, n) == 0;
}

static const char *const pp_v1_field_name[] = {
	"PROXY",          "protocol",
	"source address", "destination address",
	"source port",    "destination port",
	"tail",           "LF",
};

/* Why a v1 field failed. */
struct pp_v1_why {
	enum pp_err err;
	const char *msg;
};

/*
 * Check v1 field f, s[0..n) (a prefix of it unless complete); on success
 * with complete, store what it says in p->hdr.  Returns false (and fills
 * *w) when the field is not valid; the parser state is not changed then.
 */
static bool
pp_v1_field(struct pp_parser *p, unsigned f, const uint8_t *s, size_t n,
	    bool complete, struct pp_v1_why *w)
{
	struct pp_header *h = &p->hdr;
	union pp_sockaddr *sa;

	switch (f) {
	case PP_F_PROXY:
		w->err = PP_E_SIGNATURE;
		w->msg = "v1: line does not start with \"PROXY \"";
		return pp_word_prefix(s, n, "PROXY", complete);
	case PP_F_PROTO:
		w->err = PP_E_V1_SYNTAX;
		w->msg = "v1: protocol not TCP4, TCP6 or UNKNOWN";
		if (pp_word_prefix(s, n, "TCP4", complete)) {
			if (complete) {
				h->family = PP_FAM_INET;
				h->transport = PP_TP_STREAM;
			}
		} else if (pp_word_prefix(s, n, "TCP6", complete)) {
			if (complete) {
				h->family = PP_FAM_INET6;
				h->transport = PP_TP_STREAM;
			}
		} else if (pp_word_prefix(s, n, "UNKNOWN", complete)) {
			if (complete) {
				h->family = PP_FAM_UNSPEC;
				h->transport = PP_TP_UNSPEC;
			}
		} else {
			return false;
		}
		return true;
	case PP_F_SRC:
	case PP_F_DST:
		sa = f == PP_F_SRC ? &h->src : &h->dst;
		w->err = PP_E_V1_ADDR;
		if (h->family == PP_FAM_INET) {
			uint32_t a = 0;

			w->msg = f == PP_F_SRC ? "v1: bad IPv4 source address"
					       : "v1: bad IPv4 destination "
						 "address";
			if (!pp_v4_scan(s, n, complete, 0, 0, &a))
				return false;
			if (complete) {
				sa->sin.sin_family = AF_INET;
				sa->sin.sin_addr.s_addr = htonl(a);
			}
		} else {
			struct in6_addr a6;

			w->msg = f == PP_F_SRC ? "v1: bad IPv6 source address"
					       : "v1: bad IPv6 destination "
						 "address";
			if (!pp_v6_scan(s, n, complete, &a6))
				return false;
			if (complete) {
				sa->sin6.sin6_family = AF_INET6;
				sa->sin6.sin6_addr = a6;
			}
		}
		return true;
	case PP_F_SPORT:
	case PP_F_DPORT: {
		uint16_t port = 0;

		w->err = PP_E_V1_PORT;
		w->msg = f == PP_F_SPORT ? "v1: bad source port"
					 : "v1: bad destination port";
		if (!pp_port_scan(s, n, complete, &port))
			return false;
		if (complete) {
			sa = f == PP_F_SPORT ? &h->src : &h->dst;
			if (h->family == PP_FAM_INET)
				sa->sin.sin_port = htons(port);
			else
				sa->sin6.sin6_port = htons(port);
		}
		return true;
	}
	default:
		return true;
	}
}

static enum pp_status
pp_v1_done(struct pp_parser *p, size_t len)
{
	struct pp_header *h = &p->hdr;

	h->version = 1;
	h->command = PP_CMD_PROXY;
	h->len = len;
	if (h->family == PP_FAM_INET) {
		h->srclen = h->dstlen = sizeof(struct sockaddr_in);
	} else if (h->family == PP_FAM_INET6) {
		h->srclen = h->dstlen = sizeof(struct sockaddr_in6);
	}
	p->have = len;
	p->total = len;
	pp_set_stage(p, PP_ST_DONE);
	return PP_DONE;
}

/*
 * Fast-path scanners for a complete field in s[0..end): a dotted quad or a
 * port, under the same rules as pp_v4_scan() and pp_port_scan().  They
 * return where they stopped (the caller checks the terminator), or NULL.
 */
static const uint8_t *
pp_v4_fast(const uint8_t *s, const uint8_t *end, uint32_t *out)
{
	uint32_t acc = 0;
	unsigned part, v, c;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (s == end || *s != '.')
				return NULL;
			s++;
		}
		if (s == end || (v = (unsigned)*s - '0') > 9)
			return NULL;
		s++;
		if (v != 0 && s < end && (c = (unsigned)*s - '0') <= 9) {
			v = v * 10 + c;
			s++;
			if (s < end && (c = (unsigned)*s - '0') <= 9) {
				v = v * 10 + c;
				s++;
				if (v > 255)
					return NULL;
			}
		}
		acc = acc << 8 | v;
	}
	*out = acc;
	return s;
}

static const uint8_t *
pp_port_fast(const uint8_t *s, const uint8_t *end, uint16_t *out)
{
	unsigned v, c, i;

	if (s == end || (v = (unsigned)*s - '0') > 9)
		return NULL;
	s++;
	if (v != 0) {
		for (i = 0; i < 4 && s < end && (c = (unsigned)*s - '0') <= 9;
		     i++, s++)
			v = v * 10 + c;
		if (v > 65535)
			return NULL;
	}
	*out = (uint16_t)v;
	return s;
}

/* A hex digit's value + 1, 0 for any other byte. */
static const uint8_t pp_hex1[256] = {
	['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,
	['6'] = 7,  ['7'] = 8,  ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12,
	['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16, ['A'] = 11, ['B'] = 12,
	['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

/*
 * IPv6 text made only of hex groups and at most one "::" (no embedded
 * dotted quad), under the rules of pp_v6_scan(): at most 4 digits a
 * group, 8 groups, or at most 7 around "::".  Returns where it stopped
 * (the caller checks the terminator; a '.', a fifth digit or a third
 * colon stops it there too, and the caller then falls back to the full
 * scan), or NULL when the text is not of that form.
 */
static const uint8_t *
pp_v6_fast(const uint8_t *s, const uint8_t *end, struct in6_addr *out)
{
	uint16_t g[8];
	unsigned ng = 0, nd, v, x;
	int gap = -1;

	if (end - s >= 2 && s[0] == ':' && s[1] == ':') {
		gap = 0;
		s += 2;
	}
	while (s < end && (x = pp_hex1[*s]) != 0) {
		if (ng == (gap >= 0 ? 7u : 8u))
			return NULL;
		v = x - 1;
		s++;
		for (nd = 1; nd < 4 && s < end && (x = pp_hex1[*s]) != 0;
		     nd++, s++)
			v = v << 4 | (x - 1);
		g[ng++] = (uint16_t)v;
		if (s == end || *s != ':')
			break;
		if (end - s >= 2 && s[1] == ':') {
			if (gap >= 0 || ng == 8)
				return NULL;
			gap = (int)ng;
			s += 2;
			continue;
		}
		s++;
		if (s == end || pp_hex1[*s] == 0)
			return NULL; /* a single colon ends no group */
	}
	if (gap < 0 && ng != 8)
		return NULL;
	pp_v6_build(g, ng, gap, out);
	return s;
}

/*
 * The fast path: a whole valid line in b[0..n), checked field by field
 * without the prefix logic.  Returns false, having changed nothing that
 * matters, when the line is not complete or not valid: the incremental
 * path then finds out which (and where).  Both accept the same lines.
 */
static bool
pp_v1_fast(struct pp_parser *p, const uint8_t *b, size_t n)
{
	struct pp_header *h = &p->hdr;
	const uint8_t *lf, *s, *end, *t;
	struct pp_v1_why why;
	unsigned f;

	lf = memchr(b, '\n', n < PP_V1_MAX ? n : PP_V1_MAX);
	if (lf == NULL || lf - b < 8 || lf[-1] != '\r' ||
	    memcmp(b, "PROXY ", 6) != 0)
		return false;
	s = b + 6;
	end = lf - 1; /* the CR */
	if (end - s >= 5 && memcmp(s, "TCP", 3) == 0 && s[4] == ' ' &&
	    (s[3] == '4' || s[3] == '6')) {
		h->family = s[3] == '4' ? PP_FAM_INET : PP_FAM_INET6;
		h->transport = PP_TP_STREAM;
		s += 5;
	} else if (end - s >= 7 && memcmp(s, "UNKNOWN", 7) == 0 &&
		   (s + 7 == end || s[7] == ' ') &&
		   memchr(s + 7, '\r', (size_t)(end - (s + 7))) == NULL) {
		h->family = PP_FAM_UNSPEC;
		h->transport = PP_TP_UNSPEC;
		pp_v1_done(p, (size_t)(lf - b) + 1);
		return true;
	} else {
		return false;
	}
	if (h->family == PP_FAM_INET) {
		uint32_t sa, da;
		uint16_t sp, dp;

		if ((s = pp_v4_fast(s, end, &sa)) == NULL || *s++ != ' ' ||
		    (s = pp_v4_fast(s, end, &da)) == NULL || *s++ != ' ' ||
		    (s = pp_port_fast(s, end, &sp)) == NULL || *s++ != ' ' ||
		    (s = pp_port_fast(s, end, &dp)) == NULL || s != end)
			return false;
		h->src.sin.sin_family = AF_INET;
		h->src.sin.sin_addr.s_addr = htonl(sa);
		h->src.sin.sin_port = htons(sp);
		h->dst.sin.sin_family = AF_INET;
		h->dst.sin.sin_addr.s_addr = htonl(da);
		h->dst.sin.sin_port = htons(dp);
		pp_v1_done(p, (size_t)(lf - b) + 1);
		return true;
	}
	{
		struct in6_addr sa, da;
		uint16_t sp, dp;
		const uint8_t *q = s;

		if ((q = pp_v6_fast(q, end, &sa)) != NULL && *q++ == ' ' &&
		    (q = pp_v6_fast(q, end, &da)) != NULL && *q++ == ' ' &&
		    (q = pp_port_fast(q, end, &sp)) != NULL && *q++ == ' ' &&
		    (q = pp_port_fast(q, end, &dp)) != NULL && q == end) {
			h->src.sin6.sin6_family = AF_INET6;
			h->src.sin6.sin6_addr = sa;
			h->src.sin6.sin6_port = htons(sp);
			h->dst.sin6.sin6_family = AF_INET6;
			h->dst.sin6.sin6_addr = da;
			h->dst.sin6.sin6_port = htons(dp);
			pp_v1_done(p, (size_t)(lf - b) + 1);
			return true;
		}
	}
	/* Anything else (a dotted quad inside, say): field by field. */
	for (f = PP_F_SRC; f <= PP_F_DPORT; f++) {
		if (f == PP_F_DPORT) {
			t = end;
		} else {
			t = memchr(s, ' ', (size_t)(end - s));
			if (t == NULL)
				return false;
		}
		if (!pp_v1_field(p, f, s, (size_t)(t - s), true, &why))
			return false;
		s = t + 1;
	}
	pp_v1_done(p, (size_t)(lf - b) + 1);
	return true;
}

/* Advance a v1 line over b[0..n). */
static enum pp_status
pp_v1(struct pp_parser *p, const uint8_t *b, size_t n)
{
	/* a field must end by byte 106 for CR LF to fit in 107 */
	size_t lim = n < PP_V1_MAX - 1 ? n : PP_V1_MAX - 1;
	unsigned f = ((unsigned)p->state >> PP_ST_FSHIFT) & 0xf;
	size_t fs = p->pos;

	if (fs == 0 && pp_v1_fast(p, b, n))
		return PP_DONE;
	for (;;) {
		struct pp_v1_why why, why2;
		size_t t;
		uint8_t term;

		if (f == PP_F_LF) {
			if (fs >= n)
				break;
			if (b[fs] != '\n')
				return pp_fail(p, PP_E_V1_SYNTAX,
					       "v1: CR not followed by LF");
			return pp_v1_done(p, fs + 1);
		}
		t = fs;
		if (f == PP_F_TAIL) {
			while (t < lim && b[t] != '\r' && b[t] != '\n')
				t++;
		} else {
			while (t < lim && b[t] != ' ' && b[t] != '\r' &&
			       b[t] != '\n')
				t++;
		}
		if (t == lim) {
			if (!pp_v1_field(p, f, b + fs, t - fs, false, &why))
				return pp_fail(p, why.err, "%s", why.msg);
			if (lim == PP_V1_MAX - 1)
				return pp_fail(p, PP_E_V1_TOO_LONG,
					       "v1: no CRLF within %d bytes",
					       PP_V1_MAX);
			break;
		}
		term = b[t];
		if (!pp_v1_field(p, f, b + fs, t - fs, true, &why)) {
			/*
			 * A byte of the field itself may be wrong; otherwise
			 * the terminator is what decides, and a wrong one is
			 * reported first.
			 */
			if (!pp_v1_field(p, f, b + fs, t - fs, false, &why2))
				return pp_fail(p, why2.err, "%s", why2.msg);
			if (f != PP_F_PROXY && term == '\n')
				return pp_fail(p, PP_E_V1_SYNTAX,
					       "v1: lone LF");
			if (f != PP_F_PROXY && t == fs)
				return pp_fail(p, PP_E_V1_SYNTAX,
					       "v1: empty %s (extra space?)",
					       pp_v1_field_name[f]);
			return pp_fail(p, why.err, "%s", why.msg);
		}
		if (f == PP_F_PROXY) {
			/* "PROXY" and its space are the signature */
			if (term != ' ')
				return pp_fail(p, PP_E_SIGNATURE,
					       "v1: no space after \"PROXY\"");
		} else if (term == '\n') {
			return pp_fail(p, PP_E_V1_SYNTAX, "v1: lone LF");
		}
		switch (f) {
		case PP_F_PROXY:
			f = PP_F_PROTO;
			break;
		case PP_F_PROTO:
			if (p->hdr.family == PP_FAM_UNSPEC)
				f = term == ' ' ? PP_F_TAIL : PP_F_LF;
			else if (term == ' ')
				f = PP_F_SRC;
			else
				return pp_fail(p, PP_E_V1_SYNTAX,
					       "v1: line ends after protocol");
			break;
		case PP_F_SRC:
		case PP_F_DST:
		case PP_F_SPORT:
			if (term != ' ')
				return pp_fail(p, PP_E_V1_SYNTAX,
					       "v1: line ends after %s",
					       pp_v1_field_name[f]);
			f++;
			break;
		case PP_F_DPORT:
			if (term != '\r')
				return pp_fail(p, PP_E_V1_SYNTAX,
					       "v1: extra field after "
					       "destination port");
			f = PP_F_LF;
			break;
		default: /* PP_F_TAIL: term is CR */
			f = PP_F_LF;
			break;
		}
		fs = t + 1;
	}
	p->state = (int)(((unsigned)p->state & ~(0xfu << PP_ST_FSHIFT)) |
			 f << PP_ST_FSHIFT);
	p->pos = fs;
	p->have = n;
	return PP_NEED_MORE;
}

/* ===== v2 and the draft ===== */

static const char *const pp_fam_name[] = { "UNSPEC", "INET", "INET6", "UNIX" };

static size_t
pp_addr_block(enum pp_family fam)
{
	switch (fam) {
	case PP_FAM_INET:
		return 12;
	case PP_FAM_INET6:
		return 36;
	case PP_FAM_UNIX:
		return 2 * PP_UNIX_PATH;
	default:
		return 0;
	}
}

PP_HOT_CONN static enum pp_status
pp_famtp(struct pp_parser *p, uint8_t c)
{
	unsigned fam = c >> 4, tp = c & 0x0f;

	if (fam > 3)
		return pp_fail(p, PP_E_V2_FAMILY, "v2: bad family %u", fam);
	if (tp > 2)
		return pp_fail(p, PP_E_V2_FAMILY, "v2: bad transport %u", tp);
	p->hdr.family = (enum pp_family)fam;
	p->hdr.transport = (enum pp_transport)tp;
	return PP_NEED_MORE;
}

/*
 * The length is in: the total is known.  PROXY with a real family needs
 * its address block, and what follows it must be empty or hold at least
 * one TLV header (that is decided here, before any body byte).
 */
static enum pp_status pp_body(struct pp_parser *p, const uint8_t *b, size_t n);

static enum pp_status
pp_bin_len(struct pp_parser *p, const uint8_t *b, size_t n)
{
	struct pp_header *h = &p->hdr;
	bool draft = pp_has_flag(p, PP_ST_DRAFT);
	size_t len = draft ? b[15] : pp_be16(b + 14);
	size_t block = 0;

	if (h->command == PP_CMD_PROXY && h->family != PP_FAM_UNSPEC) {
		block = pp_addr_block(h->family);
		if (len < block)
			return pp_fail(p, PP_E_V2_LENGTH,
				       "v2: length %zu shorter than the %s "
				       "address block (%zu)",
				       len, pp_fam_name[h->family], block);
		if (!draft && len > block && len - block < 3)
			return pp_fail(p, PP_E_V2_TLV,
				       "v2: %zu bytes after the address block, "
				       "too short for a TLV",
				       len - block);
	} else {
		pp_set_flag(p, PP_ST_SKIP);
	}
	p->total = PP_V2_FIXED + len;
	p->pos = PP_V2_FIXED + block;
	p->have = PP_V2_FIXED;
	pp_set_stage(p, PP_ST_BODY);
	return pp_body(p, b, n);
}

/* Check the 16 fixed bytes of a binary header as they arrive. */
PP_HOT_CONN static enum pp_status
pp_bin(struct pp_parser *p, const uint8_t *b, size_t n)
{
	struct pp_header *h = &p->hdr;
	size_t i = p->have, end = n < PP_V2_FIXED ? n : PP_V2_FIXED;
	bool draft = pp_has_flag(p, PP_ST_DRAFT);

	/* the whole signature at once when it is all there and right */
	if (i == 0 && end == PP_V2_FIXED &&
	    memcmp(b, pp_v2_sig, sizeof(pp_v2_sig)) == 0)
		i = sizeof(pp_v2_sig);
	for (; i < end; i++) {
		uint8_t c = b[i];

		if (i < sizeof(pp_v2_sig)) {
			if (c != pp_v2_sig[i])
				return pp_fail(p, PP_E_SIGNATURE,
					       "v2: bad signature byte %zu",
					       i + 1);
			continue;
		}
		if (i == 12) {
			h->version = 2;
			if ((c & 0xf0) == 0x20) {
				if (!(p->flags & PP_ACCEPT_V2))
					return pp_fail(p, PP_E_VERSION,
						       "v2: final layout not "
						       "accepted");
				if ((c & 0x0f) > 1)
					return pp_fail(p, PP_E_V2_COMMAND,
						       "v2: bad command %u",
						       c & 0x0fu);
				h->command = (enum pp_command)(c & 0x0f);
			} else if (c == 0x02) {
				if (!(p->flags & PP_ACCEPT_DRAFT))
					return pp_fail(p, PP_E_VERSION,
						       "v2: draft layout not "
						       "enabled");
				pp_set_flag(p, PP_ST_DRAFT);
				draft = true;
				h->draft = true;
			} else {
				return pp_fail(p, PP_E_VERSION,
					       "v2: bad version %u", c >> 4);
			}
		} else if (i == 13) {
			if (!draft) {
				if (pp_famtp(p, c) == PP_INVALID)
					return PP_INVALID;
			} else if (c > 1) {
				return pp_fail(p, PP_E_V2_COMMAND,
					       "draft: bad command 0x%02x", c);
			} else {
				h->command = (enum pp_command)c;
			}
		} else if (i == 14) {
			if (draft && pp_famtp(p, c) == PP_INVALID)
				return PP_INVALID;
		} else {
			return pp_bin_len(p, b, n);
		}
	}
	p->have = end;
	return PP_NEED_MORE;
}

PP_WARM_DGRAM socklen_t
pp_v2_inet(enum pp_family fam, const uint8_t *addr, uint16_t port,
	   struct sockaddr *out)
{
	struct sockaddr_in in;
	struct sockaddr_in6 in6;

	if (fam == PP_FAM_INET) {
		memset(&in, 0, sizeof(in));
		in.sin_family = AF_INET;
		in.sin_port = port;
		memcpy(&in.sin_addr, addr, 4);
		memcpy(out, &in, sizeof(in));
		return sizeof(in);
	}
	memset(&in6, 0, sizeof(in6));
	in6.sin6_family = AF_INET6;
	in6.sin6_port = port;
	memcpy(&in6.sin6_addr, addr, 16);
	memcpy(out, &in6, sizeof(in6));
	return sizeof(in6);
}

/*
 * Decode the address block once it is in.  Returns PP_DONE when decoded,
 * PP_NEED_MORE when not complete yet, PP_INVALID on a UNIX path without
 * a NUL (each path is judged as soon as its 108 bytes are in).
 */
static enum pp_status
pp_v2_addr(struct pp_parser *p, const uint8_t *b, size_t end)
{
	struct pp_header *h = &p->hdr;
	const uint8_t *a = b + PP_V2_FIXED;
	size_t l;

	switch (h->family) {
	case PP_FAM_INET:
		if (end < PP_V2_FIXED + 12)
			return PP_NEED_MORE;
		h->srclen =
			pp_v2_inet(PP_FAM_INET, a, pp_ne16(a + 8), &h->src.sa);
		h->dstlen = pp_v2_inet(PP_FAM_INET, a + 4, pp_ne16(a + 10),
				       &h->dst.sa);
		break;
	case PP_FAM_INET6:
		if (end < PP_V2_FIXED + 36)
			return PP_NEED_MORE;
		h->srclen = pp_v2_inet(PP_FAM_INET6, a, pp_ne16(a + 32),
				       &h->src.sa);
		h->dstlen = pp_v2_inet(PP_FAM_INET6, a + 16, pp_ne16(a + 34),
				       &h->dst.sa);
		break;
	default: /* PP_FAM_UNIX */
		if (end < PP_V2_FIXED + PP_UNIX_PATH)
			return PP_NEED_MORE;
		if (!memchr(a, 0, PP_UNIX_PATH))
			return pp_fail(p, PP_E_V2_ADDR,
				       "v2: UNIX source path without a NUL");
		if (end < PP_V2_FIXED + 2 * PP_UNIX_PATH)
			return PP_NEED_MORE;
		if (!memchr(a + PP_UNIX_PATH, 0, PP_UNIX_PATH))
			return pp_fail(p, PP_E_V2_ADDR,
				       "v2: UNIX destination path without a "
				       "NUL");
		h->src.sun.sun_family = AF_UNIX;
		h->dst.sun.sun_family = AF_UNIX;
		l = strlen((const char *)a);
		memcpy(h->src.sun.sun_path, a, l + 1);
		h->srclen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					l + 1);
		l = strlen((const char *)a + PP_UNIX_PATH);
		memcpy(h->dst.sun.sun_path, a + PP_UNIX_PATH, l + 1);
		h->dstlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					l + 1);
		break;
	}
	pp_set_flag(p, PP_ST_ADDR);
	return PP_DONE;
}

/* The sub-TLVs of a complete SSL TLV value v[0..len), len >= 5. */
static enum pp_status
pp_v2_ssl(struct pp_parser *p, const uint8_t *v, size_t len)
{
	size_t q = 5;

	while (q < len) {
		size_t sl;

		if (len - q < 3)
			return pp_fail(p, PP_E_V2_TLV,
				       "v2: SSL sub-TLV header runs past the "
				       "SSL TLV");
		sl = pp_be16(v + q + 1);
		if (sl > len - q - 3)
			return pp_fail(p, PP_E_V2_TLV,
				       "v2: SSL sub-TLV 0x%02x runs past the "
				       "SSL TLV",
				       v[q]);
		q += 3 + sl;
	}
	return PP_NEED_MORE;
}

/*
 * Walk the TLVs whose headers are in b[0..end).  Returns PP_NEED_MORE
 * when every TLV seen so far is fine (p->pos is the next one to look at),
 * PP_INVALID otherwise.
 */
static enum pp_status
pp_v2_tlvs(struct pp_parser *p, const uint8_t *b, size_t end)
{
	size_t total = p->total;

	while (p->pos < total) {
		size_t q = p->pos, vlen, next;
		uint8_t type;

		if (end < q || end - q < 3)
			break;
		type = b[q];
		vlen = pp_be16(b + q + 1);
		if (vlen > total - q - 3)
			return pp_fail(p, PP_E_V2_TLV,
				       "v2: TLV 0x%02x runs past header end",
				       type);
		next = q + 3 + vlen;
		if (next < total && total - next < 3)
			return pp_fail(p, PP_E_V2_TLV,
				       "v2: %zu bytes after TLV 0x%02x, too "
				       "short for a TLV",
				       total - next, type);
		switch (type) {
		case PP_TLV_CRC32C:
			if (vlen != 4)
				return pp_fail(p, PP_E_V2_TLV,
					       "v2: CRC32C TLV of length %zu",
					       vlen);
			if (pp_has_flag(p, PP_ST_CRC))
				return pp_fail(p, PP_E_V2_TLV,
					       "v2: duplicate CRC32C TLV");
			pp_set_flag(p, PP_ST_CRC);
			break;
		case PP_TLV_UNIQUE_ID:
			if (vlen > 128)
				return pp_fail(p, PP_E_V2_TLV,
					       "v2: UNIQUE_ID TLV of %zu bytes "
					       "(at most 128)",
					       vlen);
			break;
		case PP_TLV_SSL:
			if (vlen < 5)
				return pp_fail(p, PP_E_V2_TLV,
					       "v2: SSL TLV of %zu bytes (at "
					       "least 5)",
					       vlen);
			if (end < next)
				return PP_NEED_MORE; /* value not all in */
			if (pp_v2_ssl(p, b + q + 3, vlen) == PP_INVALID)
				return PP_INVALID;
			break;
		default:
			break;
		}
		p->pos = next;
	}
	return PP_NEED_MORE;
}

/* The body of a binary header, b[16..n) of which is new or unchecked. */
PP_HOT_CONN static enum pp_status
pp_body(struct pp_parser *p, const uint8_t *b, size_t n)
{
	struct pp_header *h = &p->hdr;
	size_t total = p->total, end = n < total ? n : total;
	size_t start;

	if (!pp_has_flag(p, PP_ST_SKIP)) {
		if (!pp_has_flag(p, PP_ST_ADDR)) {
			enum pp_status st = pp_v2_addr(p, b, end);

			if (st == PP_INVALID)
				return PP_INVALID;
			if (st == PP_NEED_MORE)
				goto more;
		}
		if (!pp_has_flag(p, PP_ST_DRAFT) &&
		    pp_v2_tlvs(p, b, end) == PP_INVALID)
			return PP_INVALID;
	}
more:
	if (end < total) {
		p->have = end;
		return PP_NEED_MORE;
	}

	h->len = total;
	if (!pp_has_flag(p, PP_ST_SKIP) && !pp_has_flag(p, PP_ST_DRAFT)) {
		start = PP_V2_FIXED + pp_addr_block(h->family);
		h->tlv_len = total - start;
		h->tlv = h->tlv_len > 0 ? b + start : NULL;
	}
	if (pp_has_flag(p, PP_ST_CRC)) {
		static const uint8_t zero[4];
		const uint8_t *v = NULL;
		size_t vlen = 0, off;
		uint32_t c;

		pp_tlv_find(h->tlv, h->tlv_len, PP_TLV_CRC32C, &v, &vlen);
		off = (size_t)(v - b);
		c = pp_crc32c(0, b, off);
		c = pp_crc32c(c, zero, 4);
		c = pp_crc32c(c, v + 4, total - off - 4);
		if (c != pp_be32(v))
			return pp_fail(p, PP_E_V2_CRC,
				       "v2: CRC32C mismatch (header 0x%08x, "
				       "computed 0x%08x)",
				       (unsigned)pp_be32(v), (unsigned)c);
		h->crc_checked = true;
	}
	p->have = total;
	pp_set_stage(p, PP_ST_DONE);
	return PP_DONE;
}

/* Advance over b[0..n), of which b[0..p->have) were seen before. */
PP_HOT_CONN static enum pp_status
pp_advance(struct pp_parser *p, const uint8_t *b, size_t n)
{
	switch (pp_stage(p)) {
	case PP_ST_START:
		if (n == 0)
			return PP_NEED_MORE;
		if (b[0] == 'P') {
			if (!(p->flags & PP_ACCEPT_V1))
				return pp_fail(p, PP_E_VERSION,
					       "v1 header not accepted");
			pp_set_stage(p, PP_ST_V1);
			p->hdr.version = 1;
			return pp_v1(p, b, n);
		}
		if (b[0] == 0x0D) {
			if (!(p->flags & (PP_ACCEPT_V2 | PP_ACCEPT_DRAFT)))
				return pp_fail(p, PP_E_VERSION,
					       "v2 header not accepted");
			pp_set_stage(p, PP_ST_BIN);
			return pp_bin(p, b, n);
		}
		return pp_fail(p, PP_E_SIGNATURE,
			       "not a PROXY header (first byte 0x%02x)", b[0]);
	case PP_ST_V1:
		return pp_v1(p, b, n);
	case PP_ST_BIN:
		return pp_bin(p, b, n);
	case PP_ST_BODY:
		return pp_body(p, b, n);
	case PP_ST_DONE:
		return PP_DONE;
	default:
		return PP_INVALID;
	}
}

/* pp_parse_v2_brief's work, inlined into the datagram path and into the
 * first push of a connection's parser. */
static inline bool
pp_v2_brief(const uint8_t *d, size_t len, unsigned flags, struct pp_v2_brief *b)
{
	unsigned fam, tp;
	size_t body, alen;

	if (!(flags & PP_ACCEPT_V2) || len < PP_V2_FIXED + 12 ||
	    d[12] != 0x21 || memcmp(d, pp_v2_sig, sizeof(pp_v2_sig)) != 0)
		return false;
	fam = d[13] >> 4;
	tp = d[13] & 0x0f;
	body = pp_be16(d + 14);
	if (tp > 2)
		return false;
	if (fam == PP_FAM_INET && body == 12)
		alen = 4;
	else if (fam == PP_FAM_INET6 && body == 36 && len >= PP_V2_FIXED + 36)
		alen = 16;
	else
		return false;
	/* Offsets from alen rather than two constant layouts: the compiler
	 * made the constant ones a vector add of a table in .rodata, one
	 * more page for the datagram path (pp_hot.h). */
	b->src = d + PP_V2_FIXED;
	b->dst = b->src + alen;
	b->sport = pp_ne16(b->dst + alen);
	b->dport = pp_ne16(b->dst + alen + 2);
	b->family = (enum pp_family)fam;
	b->transport = (enum pp_transport)tp;
	b->len = PP_V2_FIXED + body;
	return true;
}

PP_HOT_DGRAM bool
pp_parse_v2_brief(const void *buf, size_t len, unsigned flags,
		  struct pp_v2_brief *b)
{
	return pp_v2_brief(buf, len, flags, b);
}

/* *h, cleared before, from a brief header, as the state machine would
 * have left it. */
static inline void
pp_v2_fill(const struct pp_v2_brief *b, struct pp_header *h)
{
	h->version = 2;
	h->command = PP_CMD_PROXY;
	h->family = b->family;
	h->transport = b->transport;
	h->len = b->len;
	h->srclen = pp_v2_inet(b->family, b->src, b->sport, &h->src.sa);
	h->dstlen = pp_v2_inet(b->family, b->dst, b->dport, &h->dst.sa);
}

/* ===== The interface ===== */

PP_HOT_CONN void
pp_parser_init(struct pp_parser *p, uint8_t *buf, size_t cap, unsigned flags)
{
	memset(p, 0, sizeof(*p));
	p->buf = buf;
	p->cap = cap;
	p->flags = flags;
}

bool
pp_parser_setbuf(struct pp_parser *p, uint8_t *buf, size_t cap)
{
	if (cap < p->have)
		return false;
	if (p->have > 0 && buf != p->buf)
		memmove(buf, p->buf, p->have);
	if (p->hdr.tlv != NULL)
		p->hdr.tlv = buf + (p->hdr.tlv - p->buf);
	p->buf = buf;
	p->cap = cap;
	return true;
}

PP_HOT_CONN enum pp_status
pp_parser_push(struct pp_parser *p, const void *data, size_t len, size_t *used)
{
	const uint8_t *d = data;
	struct pp_v2_brief b;
	enum pp_status st = PP_NEED_MORE;
	size_t off = 0;

	*used = 0;
	if (pp_stage(p) == PP_ST_DONE)
		return PP_DONE;
	if (pp_stage(p) == PP_ST_FAIL)
		return PP_INVALID;
	/* What nearly every connection brings in its first bytes: a whole
	 * v2 header without TLVs.  The state machine would give the same
	 * header (the fuzzer compares the two), in many more steps.  The
	 * header is still all zero from pp_parser_init. */
	if (pp_stage(p) == PP_ST_START && p->have == 0 &&
	    pp_v2_brief(d, len, p->flags, &b) && b.len <= p->cap) {
		memcpy(p->buf, d, b.len);
		pp_v2_fill(&b, &p->hdr);
		p->total = p->have = b.len;
		pp_set_stage(p, PP_ST_DONE);
		*used = b.len;
		return PP_DONE;
	}
	while (off < len) {
		size_t room, take, before = p->have;

		switch (pp_stage(p)) {
		case PP_ST_START:
			/* a v1 line may be taken whole (it is at most 107
			 * bytes); a binary header up to its length field */
			room = d[off] == 'P' ? PP_V1_MAX : PP_V2_FIXED;
			break;
		case PP_ST_V1:
			room = PP_V1_MAX - p->have;
			break;
		case PP_ST_BODY:
			room = p->total - p->have;
			break;
		default: /* PP_ST_BIN */
			room = PP_V2_FIXED - p->have;
			break;
		}
		take = len - off < room ? len - off : room;
		if (take > p->cap - p->have) {
			take = p->cap - p->have;
			if (take == 0) {
				if (p->total > 0)
					st = pp_fail(p, PP_E_TOO_LONG,
						     "header of %zu bytes "
						     "exceeds the %zu-byte "
						     "buffer",
						     p->total, p->cap);
				else
					st = pp_fail(p, PP_E_TOO_LONG,
						     "header exceeds the "
						     "%zu-byte buffer",
						     p->cap);
				break;
			}
		}
		memcpy(p->buf + p->have, d + off, take);
		st = pp_advance(p, p->buf, p->have + take);
		if (st == PP_INVALID) {
			off += take;
			break;
		}
		off += p->have - before;
		if (st == PP_DONE)
			break;
	}
	*used = off;
	return st;
}

PP_HOT_CONN size_t
pp_parser_want(const struct pp_parser *p)
{
	switch (pp_stage(p)) {
	case PP_ST_BIN:
		return PP_V2_FIXED - p->have;
	case PP_ST_BODY:
		return p->total - p->have;
	default:
		return 0;
	}
}

PP_HOT_CONN size_t
pp_parser_total(const struct pp_parser *p)
{
	return p->total;
}

PP_HOT_CONN const struct pp_header *
pp_parser_header(const struct pp_parser *p)
{
	return &p->hdr;
}

enum pp_status
pp_parse_buf(const void *buf, size_t len, unsigned flags, struct pp_header *h,
	     enum pp_err *err, char *reason, size_t reasonlen)
{
	struct pp_parser q;
	struct pp_v2_brief b;
	enum pp_status st;

	if (h != NULL && pp_v2_brief(buf, len, flags, &b)) {
		memset(h, 0, sizeof(*h));
		pp_v2_fill(&b, h);
		if (err != NULL)
			*err = PP_OK;
		if (reason != NULL && reasonlen > 0)
			reason[0] = '\0';
		return PP_DONE;
	}
	pp_parser_init(&q, NULL, 0, flags);
	st = pp_advance(&q, buf, len);
	if (st == PP_NEED_MORE) {
		if (q.total > 0)
			st = pp_fail(&q, PP_E_TRUNCATED,
				     "header incomplete: %zu of %zu bytes", len,
				     q.total);
		else
			st = pp_fail(&q, PP_E_TRUNCATED,
				     "header incomplete after %zu bytes", len);
	}
	if (h != NULL)
		*h = q.hdr;
	if (err != NULL)
		*err = q.err;
	if (reason != NULL && reasonlen > 0) {
		size_t l = strnlen(q.reason, sizeof(q.reason));

		if (l >= reasonlen)
			l = reasonlen - 1;
		memcpy(reason, q.reason, l);
		reason[l] = '\0';
	}
	return st;
}

const char *
pp_strerror(enum pp_err err)
{
	switch (err) {
	case PP_OK:
		return "no error";
	case PP_E_SIGNATURE:
		return "not a PROXY protocol header";
	case PP_E_VERSION:
		return "PROXY protocol version not accepted";
	case PP_E_V1_SYNTAX:
		return "v1: malformed line";
	case PP_E_V1_ADDR:
		return "v1: bad address";
	case PP_E_V1_PORT:
		return "v1: bad port";
	case PP_E_V1_TOO_LONG:
		return "v1: no CRLF within 107 bytes";
	case PP_E_V2_COMMAND:
		return "v2: bad command";
	case PP_E_V2_FAMILY:
		return "v2: bad family or transport";
	case PP_E_V2_LENGTH:
		return "v2: length shorter than the address block";
	case PP_E_V2_TLV:
		return "v2: malformed TLV";
	case PP_E_V2_CRC:
		return "v2: CRC32C mismatch";
	case PP_E_TOO_LONG:
		return "header longer than the buffer";
	case PP_E_TRUNCATED:
		return "header incomplete";
	case PP_E_V2_ADDR:
		return "v2: UNIX path without a NUL";
	}
	return "unknown error";
}

bool
pp_tlv_find(const uint8_t *tlv, size_t tlv_len, uint8_t type,
	    const uint8_t **val, size_t *vlen)
{
	size_t q = 0;

	while (tlv_len - q >= 3) {
		size_t l = pp_be16(tlv + q + 1);

		if (l > tlv_len - q - 3)
			return false;
		if (tlv[q] == type) {
			*val = tlv + q + 3;
			*vlen = l;
			return true;
		}
		q += 3 + l;
	}
	return false;
}

bool
pp_tlv_ssl_find(const uint8_t *tlv, size_t tlv_len, uint8_t subtype,
		const uint8_t **val, size_t *vlen)
{
	const uint8_t *ssl;
	size_t sl;

	if (!pp_tlv_find(tlv, tlv_len, PP_TLV_SSL, &ssl, &sl) || sl < 5)
		return false;
	return pp_tlv_find(ssl + 5, sl - 5, subtype, val, vlen);
}

/* ===== Encoders ===== */

size_t
pp_encode_v1(const struct pp_header *h, char *out, size_t cap)
{
	char tmp[PP_V1_MAX + 1], a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
	int n;

	if (h->command == PP_CMD_LOCAL || h->family == PP_FAM_UNSPEC) {
		n = snprintf(tmp, sizeof(tmp), "PROXY UNKNOWN\r\n");
	} else if (h->family == PP_FAM_INET && h->src.sa.sa_family == AF_INET &&
		   h->dst.sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &h->src.sin.sin_addr, a, sizeof(a));
		inet_ntop(AF_INET, &h->dst.sin.sin_addr, b, sizeof(b));
		n = snprintf(tmp, sizeof(tmp), "PROXY TCP4 %s %s %u %u\r\n", a,
			     b, ntohs(h->src.sin.sin_port),
			     ntohs(h->dst.sin.sin_port));
	} else if (h->family == PP_FAM_INET6 &&
		   h->src.sa.sa_family == AF_INET6 &&
		   h->dst.sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &h->src.sin6.sin6_addr, a, sizeof(a));
		inet_ntop(AF_INET6, &h->dst.sin6.sin6_addr, b, sizeof(b));
		n = snprintf(tmp, sizeof(tmp), "PROXY TCP6 %s %s %u %u\r\n", a,
			     b, ntohs(h->src.sin6.sin6_port),
			     ntohs(h->dst.sin6.sin6_port));
	} else {
		return 0;
	}
	if (n <= 0 || (size_t)n > PP_V1_MAX || (size_t)n > cap)
		return 0;
	memcpy(out, tmp, (size_t)n);
	if ((size_t)n < cap)
		out[n] = '\0';
	return (size_t)n;
}

/* Write the address block of h at a; false when h's addresses do not
 * match its family (a LOCAL header then gets a zero block). */
static bool
pp_encode_addr(const struct pp_header *h, uint8_t *a)
{
	size_t l1, l2;

	switch (h->family) {
	case PP_FAM_INET:
		if (h->src.sa.sa_family != AF_INET ||
		    h->dst.sa.sa_family != AF_INET)
			break;
		memcpy(a, &h->src.sin.sin_addr, 4);
		memcpy(a + 4, &h->dst.sin.sin_addr, 4);
		memcpy(a + 8, &h->src.sin.sin_port, 2);
		memcpy(a + 10, &h->dst.sin.sin_port, 2);
		return true;
	case PP_FAM_INET6:
		if (h->src.sa.sa_family != AF_INET6 ||
		    h->dst.sa.sa_family != AF_INET6)
			break;
		memcpy(a, &h->src.sin6.sin6_addr, 16);
		memcpy(a + 16, &h->dst.sin6.sin6_addr, 16);
		memcpy(a + 32, &h->src.sin6.sin6_port, 2);
		memcpy(a + 34, &h->dst.sin6.sin6_port, 2);
		return true;
	case PP_FAM_UNIX:
		if (h->src.sa.sa_family != AF_UNIX ||
		    h->dst.sa.sa_family != AF_UNIX)
			break;
		l1 = strnlen(h->src.sun.sun_path, PP_UNIX_PATH);
		l2 = strnlen(h->dst.sun.sun_path, PP_UNIX_PATH);
		if (l1 == PP_UNIX_PATH || l2 == PP_UNIX_PATH)
			break;
		memset(a, 0, 2 * PP_UNIX_PATH);
		memcpy(a, h->src.sun.sun_path, l1);
		memcpy(a + PP_UNIX_PATH, h->dst.sun.sun_path, l2);
		return true;
	default:
		return true;
	}
	memset(a, 0, pp_addr_block(h->family));
	return h->command == PP_CMD_LOCAL;
}

size_t
pp_encode_v2(const struct pp_header *h, bool add_crc, uint8_t *out, size_t cap)
{
	size_t block, len, total, q;

	if ((unsigned)h->command > 1 || (unsigned)h->family > 3 ||
	    (unsigned)h->transport > 2)
		return 0;
	block = pp_addr_block(h->family);
	if (h->draft) {
		if (h->tlv_len > 0 || add_crc)
			return 0;
		len = block;
	} else {
		len = block + h->tlv_len + (add_crc ? 7 : 0);
		if (len > 65535)
			return 0;
	}
	total = PP_V2_FIXED + len;
	if (total > cap)
		return 0;
	memcpy(out, pp_v2_sig, sizeof(pp_v2_sig));
	if (h->draft) {
		out[12] = 0x02;
		out[13] = (uint8_t)h->command;
		out[14] = (uint8_t)(h->family << 4 | h->transport);
		out[15] = (uint8_t)len;
	} else {
		out[12] = (uint8_t)(0x20 | h->command);
		out[13] = (uint8_t)(h->family << 4 | h->transport);
		out[14] = (uint8_t)(len >> 8);
		out[15] = (uint8_t)len;
	}
	if (!pp_encode_addr(h, out + PP_V2_FIXED))
		return 0;
	q = PP_V2_FIXED + block;
	if (h->tlv_len > 0) {
		memcpy(out + q, h->tlv, h->tlv_len);
		q += h->tlv_len;
	}
	if (add_crc) {
		uint32_t c;

		out[q] = PP_TLV_CRC32C;
		out[q + 1] = 0;
		out[q + 2] = 4;
		memset(out + q + 3, 0, 4);
		c = pp_crc32c(0, out, total);
		out[q + 3] = (uint8_t)(c >> 24);
		out[q + 4] = (uint8_t)(c >> 16);
		out[q + 5] = (uint8_t)(c >> 8);
		out[q + 6] = (uint8_t)c;
	}
	return total;
}
