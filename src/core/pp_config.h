/*
 * pp_config.h - the PP_* environment variables parsed into one immutable
 * structure, and the matching of sockets and sources against it.
 *
 * Pure: no I/O.  The parser takes a lookup function instead of reading
 * the environment itself, so unit tests and fuzzers drive it directly.
 * No allocation: lists have fixed upper bounds, and a longer list is a
 * configuration error.
 */
#ifndef PP_CONFIG_H
#define PP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "pp_acl.h"
#include "pp_parse.h"

#define PP_MAX_PORTS 64
#define PP_ERRMSG_MAX 256

enum pp_loglevel {
	PP_LOG_NONE = 0,
	PP_LOG_ERROR,
	PP_LOG_WARN,
	PP_LOG_INFO,
	PP_LOG_DEBUG,
};

enum pp_logtarget { PP_TARGET_STDERR = 0, PP_TARGET_SYSLOG };

/* One PP_PORTS entry. */
struct pp_port {
	int socktype;     /* SOCK_STREAM or SOCK_DGRAM */
	bool is_unix;     /* unix:/path, path in path[] */
	bool any_addr;    /* PORT alone: matches any local address */
	uint8_t addr[16]; /* v4-mapped for IPv4, when !any_addr */
	uint16_t port;    /* host order */
	bool spp;         /* PORT/udp+spp: SPP headers, not PROXY v2 */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

struct pp_config {
	/* The scalars first: the hooks read some of them on every call,
	 * and the lists after them are tens of KB (src/core/pp_hot.h). */
	unsigned timeout_ms; /* PP_TIMEOUT_MS */
	unsigned versions;   /* PP_ACCEPT_V1 | PP_ACCEPT_V2 (| DRAFT) */
	bool sockname_real;  /* PP_SOCKNAME=real */
	enum pp_loglevel log_level;
	enum pp_logtarget log_target;
	bool v2_draft; /* PP_V2_DRAFT=1 (also sets PP_ACCEPT_DRAFT) */
	bool inherit;  /* PP_INHERIT=1 */
	size_t nports;
	struct pp_port ports[PP_MAX_PORTS];
	struct pp_acl allow;  /* PP_ALLOW */
	struct pp_acl direct; /* PP_DIRECT */
};

/* Returns the value of a variable, or NULL when unset (getenv's shape). */
typedef const char *(*pp_getenv_fn)(const char *name);

/*
 * Fill *c from the variables that get() returns, applying the contract's
 * defaults to unset (or empty, except PP_PORTS and PP_DIRECT) ones.
 * Returns 0 on success.  On the first malformed value returns -1 and
 * writes one line, without newline, into err[0..errlen) of the form
 *   PP_ALLOW: '10.0.0.0/33': prefix length out of range
 * (the "ppshim: " prefix is the caller's).
 */
int pp_config_parse(struct pp_config *c, pp_getenv_fn get, char *err,
		    size_t errlen);

/* The same, reading the files that PP_ALLOW and PP_DIRECT name through io
 * (pp_acl.h); pp_config_parse() refuses them. */
int pp_config_parse_io(struct pp_config *c, pp_getenv_fn get,
		       const struct pp_aclio *io, char *err, size_t errlen);

/* The individual value parsers, same error convention (for tests). */
int pp_parse_ports(struct pp_config *c, const char *v, char *err,
		   size_t errlen);
/*
 * Is a listening socket of this type (SOCK_STREAM/SOCK_DGRAM) bound to
 * local address sa (AF_INET, AF_INET6 or AF_UNIX) PROXY-only?  An entry
 * with an address matches the same address (IPv4 also as v4-mapped on
 * an IPv6 socket); an entry without one matches any local address.
 */
bool pp_config_match(const struct pp_config *c, int socktype,
		     const struct sockaddr *sa, socklen_t len);

/*
 * The entry pp_config_match() matches: the first of c->ports, in the
 * order PP_PORTS lists them, that says so.  NULL when none.
 */
const struct pp_port *pp_config_find(const struct pp_config *c, int socktype,
				     const struct sockaddr *sa, socklen_t len);

/* Text for a level or target, for logs and the wrapper. */
const char *pp_loglevel_name(enum pp_loglevel l);
const char *pp_logtarget_name(enum pp_logtarget t);

#endif /* PP_CONFIG_H */
