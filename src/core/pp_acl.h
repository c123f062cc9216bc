/*
 * pp_acl.h - a list of network prefixes (PP_ALLOW, PP_DIRECT), parsed
 * and matched (pp_acl.c).  Pure; fixed size, no allocation.
 */
#ifndef PP_ACL_H
#define PP_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PP_MAX_CIDRS 1024

/* One network prefix.  IPv4 is held v4-mapped (::ffff:a.b.c.d, plen+96). */
struct pp_cidr {
	uint8_t addr[16];
	uint8_t plen; /* 0..128 */
};

struct pp_acl {
	struct pp_cidr v[PP_MAX_CIDRS];
	size_t n;
};

/*
 * Parse a CIDR list into acl (replacing its contents); name is the
 * variable's name for the error line.  An empty list gives an empty acl
 * (the caller applies any default).  Returns 0, or -1 with one line in
 * err[0..errlen) (see pp_config_parse).
 */
int pp_parse_acl(struct pp_acl *acl, const char *name, const char *v, char *err,
		 size_t errlen);

/* Does the source address sa (AF_INET or AF_INET6) fall in acl? */
bool pp_acl_match(const struct pp_acl *acl, const struct sockaddr *sa,
		  socklen_t len);

#endif /* PP_ACL_H */
