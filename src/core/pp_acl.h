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

/* The longest path a list may name ("@PATH"), with its NUL. */
#define PP_ACL_PATH_MAX 1024
/* The largest list file, in bytes (a struct pp_aclio's cap is one more). */
#define PP_ACL_FILE_MAX (256 * 1024)
/* The most files ("@PATH" entries) one list may name. */
#define PP_ACL_FILES_MAX 8

/*
 * How a list reads the files it names.  read() fills buf[0..cap) with
 * the file at path and returns the number of bytes, or -1 with *err an
 * errno value (EFBIG when the file holds more than cap bytes).  buf is
 * the caller's, cap bytes long (the parser writes into it, and asks
 * read() for one byte less, for a NUL).
 */
struct pp_aclio {
	long (*read)(void *ctx, const char *path, char *buf, size_t cap,
		     int *err);
	void *ctx;
	char *buf;
	size_t cap;
};

/*
 * Parse a CIDR list into acl (replacing its contents); name is the
 * variable's name for the error line.  An entry "@PATH" (an absolute
 * path) stands for the entries of that file, read through io: one or
 * more a line, "#" starting a comment; an error there names the file and
 * the line.  At most PP_ACL_FILES_MAX such entries; io NULL refuses
 * them.  An empty list gives an empty acl (the caller applies any
 * default).  Returns 0, or -1 with one line in err[0..errlen) (see
 * pp_config_parse).
 */
int pp_parse_acl_io(struct pp_acl *acl, const char *name, const char *v,
		    const struct pp_aclio *io, char *err, size_t errlen);

/* pp_parse_acl_io() without files. */
int pp_parse_acl(struct pp_acl *acl, const char *name, const char *v, char *err,
		 size_t errlen);

/* Does the source address sa (AF_INET or AF_INET6) fall in acl? */
bool pp_acl_match(const struct pp_acl *acl, const struct sockaddr *sa,
		  socklen_t len);

/* The prefix length of the first entry of acl that holds sa, IPv4
 * entries counted as v4-mapped (a.b.c.d/n as 96 + n); -1 when none. */
int pp_acl_find(const struct pp_acl *acl, const struct sockaddr *sa,
		socklen_t len);

#endif /* PP_ACL_H */
