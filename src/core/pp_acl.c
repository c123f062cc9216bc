/*
 * pp_acl.c - the CIDR lists PP_ALLOW and PP_DIRECT: parsed into a struct
 * pp_acl, and a source address matched against one.  The list syntax is
 * pp_cfgtext.c's.
 *
 * Nothing here allocates, does I/O or keeps state between calls: a list
 * that names a file ("@/etc/ppshim/lb") has it read by the caller's
 * struct pp_aclio, into the caller's buffer.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pp_acl.h"
#include "pp_cfgtext.h"
#include "pp_hot.h"
#include "pp_sockaddr.h"

/* Why an entry is refused (the manual lists every reason). */
#define PP_R_PLEN_NAN "prefix length not a number"
#define PP_R_PLEN_RANGE "prefix length out of range"
#define PP_R_HOST_BITS "host bits set beyond prefix"
#define PP_R_ACL_MANY "too many entries (max 1024)"
#define PP_R_FILE_REL "a list file's path must be absolute"
#define PP_R_FILE_LONG "path too long"
#define PP_R_FILE_HERE "a list file is read only by the library and ppshim"
#define PP_R_FILE_NEST "a list file cannot name another"
#define PP_R_FILE_MISSING "no such file"
#define PP_R_FILE_BIG "file larger than 256 KiB"
#define PP_R_FILE_MANY "too many list files (max 8)"

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

/* One entry (n bytes at tok) appended to acl; name is for the error. */
static int
pp_acl_add(struct pp_acl *acl, const char *name, const char *tok, size_t n,
	   char *err, size_t errlen)
{
	const char *why;

	if (acl->n == PP_MAX_CIDRS)
		return pp_cfg_fail(err, errlen, name, tok, n, PP_R_ACL_MANY);
	why = pp_parse_cidr(tok, n, &acl->v[acl->n]);
	if (why != NULL)
		return pp_cfg_fail(err, errlen, name, tok, n, why);
	acl->n++;
	return 0;
}

/* Why a file could not be read, in words that need no locale. */
static const char *
pp_file_errstr(int e)
{
	switch (e) {
	case ENOENT:
		return PP_R_FILE_MISSING;
	case EACCES:
	case EPERM:
		return "permission denied";
	case EISDIR:
		return "is a directory";
	case ENOTDIR:
		return "a component of the path is not a directory";
	case ELOOP:
		return "too many symbolic links";
	case EFBIG:
		return PP_R_FILE_BIG;
	default:
		return "cannot be read";
	}
}

/*
 * The entries of the file an "@PATH" entry (n bytes at tok) names,
 * appended to acl: one or more per line, separated as in the variable,
 * "#" starting a comment to the end of the line.  Errors name the file
 * and the line: "PP_ALLOW: /etc/ppshim/lb:7: '10.0.0.0/33': reason".
 */
static int
pp_acl_file(struct pp_acl *acl, const char *name, const char *tok, size_t n,
	    const struct pp_aclio *io, char *err, size_t errlen)
{
	char path[PP_ACL_PATH_MAX], where[PP_ACL_PATH_MAX + 64];
	char *line, *end, *hash;
	unsigned lineno = 0;
	long len;
	int e = 0;

	if (n < 2 || tok[1] != '/')
		return pp_cfg_fail(err, errlen, name, tok, n, PP_R_FILE_REL);
	if (n - 1 >= sizeof(path))
		return pp_cfg_fail(err, errlen, name, tok, n, PP_R_FILE_LONG);
	if (io == NULL || io->read == NULL || io->buf == NULL || io->cap < 2)
		return pp_cfg_fail(err, errlen, name, tok, n, PP_R_FILE_HERE);
	memcpy(path, tok + 1, n - 1);
	path[n - 1] = '\0';
	/* One byte kept for the NUL after the last line. */
	len = io->read(io->ctx, path, io->buf, io->cap - 1, &e);
	if (len < 0)
		return pp_cfg_fail(err, errlen, name, tok, n,
				   pp_file_errstr(e));
	io->buf[len] = '\0';
	for (line = io->buf; line != NULL && *line != '\0'; line = end) {
		const char *pos = line, *t;
		size_t tn;

		lineno++;
		end = strchr(line, '\n');
		if (end != NULL)
			*end++ = '\0';
		hash = strchr(line, '#');
		if (hash != NULL)
			*hash = '\0';
		snprintf(where, sizeof(where), "%s: %s:%u", name, path, lineno);
		while ((tn = pp_cfg_token(&pos, &t)) > 0) {
			if (t[0] == '@')
				return pp_cfg_fail(err, errlen, where, t, tn,
						   PP_R_FILE_NEST);
			if (pp_acl_add(acl, where, t, tn, err, errlen) != 0)
				return -1;
		}
	}
	return 0;
}

int
pp_parse_acl_io(struct pp_acl *acl, const char *name, const char *v,
		const struct pp_aclio *io, char *err, size_t errlen)
{
	const char *pos = v != NULL ? v : "", *tok;
	size_t n, files = 0;

	acl->n = 0;
	while ((n = pp_cfg_token(&pos, &tok)) > 0) {
		if (tok[0] != '@') {
			if (pp_acl_add(acl, name, tok, n, err, errlen) != 0)
				return -1;
			continue;
		}
		/* The library follows this many files, and no more. */
		if (++files > PP_ACL_FILES_MAX)
			return pp_cfg_fail(err, errlen, name, tok, n,
					   PP_R_FILE_MANY);
		if (pp_acl_file(acl, name, tok, n, io, err, errlen) != 0)
			return -1;
	}
	return 0;
}

int
pp_parse_acl(struct pp_acl *acl, const char *name, const char *v, char *err,
	     size_t errlen)
{
	return pp_parse_acl_io(acl, name, v, NULL, err, errlen);
}

/*
 * Is the source address sa (AF_INET or AF_INET6, len bytes long) in acl?
 * IPv4 sources match IPv4 entries also when they arrive v4-mapped on an
 * IPv6 socket; an IPv6 entry covering ::ffff:0:0/96 (::/0 included)
 * matches IPv4 sources.  Any other family, a NULL sa or a short len never
 * matches.  Allocation-free and lock-free; a linear scan.  Returns the
 * prefix length of the first entry that holds sa, in the 128-bit form
 * where an IPv4 entry a.b.c.d/n is ::ffff:a.b.c.d/(96 + n), or -1.
 */
PP_HOT_CONN int
pp_acl_find(const struct pp_acl *acl, const struct sockaddr *sa, socklen_t len)
{
	uint8_t a[16];
	uint16_t port;
	size_t i;

	if (!pp_sa_norm(sa, len, a, &port))
		return -1;
	for (i = 0; i < acl->n; i++)
		if (pp_cidr_contains(&acl->v[i], a))
			return acl->v[i].plen;
	return -1;
}

/* Is sa in acl (pp_acl_find)? */
bool
pp_acl_match(const struct pp_acl *acl, const struct sockaddr *sa, socklen_t len)
{
	return pp_acl_find(acl, sa, len) >= 0;
}
