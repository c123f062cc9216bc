/*
 * pp_acl.c - the CIDR lists PP_ALLOW and PP_DIRECT: parsed into a struct
 * pp_acl, and a source address matched against one.  The list syntax is
 * pp_cfgtext.c's.
 *
 * Nothing here allocates, does I/O or keeps state between calls.
 */
#include "config.h"

#include <string.h>

#include "pp_acl.h"
#include "pp_cfgtext.h"
#include "pp_sockaddr.h"

/* Why an entry is refused (the manual lists every reason). */
#define PP_R_PLEN_NAN "prefix length not a number"
#define PP_R_PLEN_RANGE "prefix length out of range"
#define PP_R_HOST_BITS "host bits set beyond prefix"
#define PP_R_ACL_MANY "too many entries (max 1024)"

/* Are all bits of addr after the first plen zero? */
static bool
pp_host_bits_clear(const uint8_t addr[16], unsigned plen)
{
	unsigned i = plen / 8;

	if (plen % 8 != 0) {
		if ((addr[i] & (0xffu >> (plen % 8))) != 0)
			return false;
		i++;
	}
	for (; i < 16; i++)
		if (addr[i] != 0)
			return false;
	return true;
}

/* Does the 16-byte address a fall within prefix c? */
static bool
pp_cidr_contains(const struct pp_cidr *c, const uint8_t a[16])
{
	unsigned whole = c->plen / 8u, rest = c->plen % 8u;
	uint8_t mask;

	if (memcmp(a, c->addr, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	mask = (uint8_t)(0xffu << (8 - rest));
	return ((a[whole] ^ c->addr[whole]) & mask) == 0;
}

/*
 * One CIDR entry: ADDR or ADDR/LEN, IPv4 or IPv6.  Returns NULL when it
 * is valid (and fills *out), else the reason.
 */
static const char *
pp_parse_cidr(const char *s, size_t n, struct pp_cidr *out)
{
	const char *slash = memchr(s, '/', n);
	size_t alen = slash != NULL ? (size_t)(slash - s) : n;
	bool v4 = memchr(s, ':', alen) == NULL;
	unsigned long max = v4 ? 32 : 128, plen = max;

	if (v4 ? !pp_cfg_ipv4(s, alen, out->addr)
	       : !pp_cfg_ipv6(s, alen, out->addr))
		return PP_R_NOT_IP;
	if (slash != NULL) {
		switch (pp_cfg_num(slash + 1, n - alen - 1, max, &plen)) {
		case PP_NUM_OK:
			break;
		case PP_NUM_NAN:
			return PP_R_PLEN_NAN;
		case PP_NUM_RANGE:
			return PP_R_PLEN_RANGE;
		}
	}
	if (v4)
		plen += 96;
	if (!pp_host_bits_clear(out->addr, (unsigned)plen))
		return PP_R_HOST_BITS;
	out->plen = (uint8_t)plen;
	return NULL;
}

/*
 * Parse a CIDR list into acl (replacing its contents); name is the
 * variable's name for the error line.  An empty list gives an empty acl
 * (the caller applies any default).  Returns 0, or -1 with err filled.
 */
int
pp_parse_acl(struct pp_acl *acl, const char *name, const char *v, char *err,
	     size_t errlen)
{
	const char *pos = v != NULL ? v : "", *tok;
	size_t n;

	acl->n = 0;
	while ((n = pp_cfg_token(&pos, &tok)) > 0) {
		const char *why;

		if (acl->n == PP_MAX_CIDRS)
			return pp_cfg_fail(err, errlen, name, tok, n,
					   PP_R_ACL_MANY);
		why = pp_parse_cidr(tok, n, &acl->v[acl->n]);
		if (why != NULL)
			return pp_cfg_fail(err, errlen, name, tok, n, why);
		acl->n++;
	}
	return 0;
}

/*
 * Is the source address sa (AF_INET or AF_INET6, len bytes long) in acl?
 * IPv4 sources match IPv4 entries also when they arrive v4-mapped on an
 * IPv6 socket; an IPv6 entry covering ::ffff:0:0/96 (::/0 included)
 * matches IPv4 sources.  Any other family, a NULL sa or a short len never
 * matches.  Allocation-free and lock-free; a linear scan.
 */
bool
pp_acl_match(const struct pp_acl *acl, const struct sockaddr *sa, socklen_t len)
{
	uint8_t a[16];
	uint16_t port;
	size_t i;

	if (!pp_sa_norm(sa, len, a, &port))
		return false;
	for (i = 0; i < acl->n; i++)
		if (pp_cidr_contains(&acl->v[i], a))
			return true;
	return false;
}
