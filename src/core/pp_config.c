/*
 * pp_config.c - the PP_* variables parsed into a struct pp_config, and the
 * matching of listening sockets against its PP_PORTS entries.  The text
 * syntax every variable shares is pp_cfgtext.c's (see the rules there),
 * the CIDR lists pp_acl.c's.
 *
 * Nothing here allocates, does I/O or keeps state between calls.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pp_cfgtext.h"
#include "pp_config.h"
#include "pp_sockaddr.h"

#define PP_DEFAULT_ALLOW "127.0.0.0/8,::1"
#define PP_DEFAULT_TIMEOUT_MS 3000u
#define PP_MAX_TIMEOUT_MS 3600000u

/* The "path too long" reason below spells out this limit. */
_Static_assert(sizeof(((struct pp_port *)0)->path) == 108,
	       "sun_path is expected to be 108 bytes");

/* Every reason a value can be refused for (the manual lists them). */
#define PP_R_NOT_IP6 "not an IPv6 address"
#define PP_R_PORTS_MANY "too many entries (max 64)"
#define PP_R_NEED_BRACKETS "IPv6 address needs brackets"
#define PP_R_WILDCARD "write the port alone for any address"
#define PP_R_NO_BRACKET "missing ']'"
#define PP_R_NO_PORT "missing port"
#define PP_R_PORT_NAN "port not a number"
#define PP_R_PORT_RANGE "port out of range"
#define PP_R_PROTO "unknown protocol (want tcp or udp)"
#define PP_R_HDR "unknown datagram header (want udp+spp)"
#define PP_R_SPP_TCP "SPP is for datagrams only (want udp+spp)"
#define PP_R_UNIX_DGRAM "UNIX entries are stream only"
#define PP_R_UNIX_REL "path must be absolute (or @name)"
#define PP_R_UNIX_ABSTRACT "empty abstract name"
#define PP_R_UNIX_LONG "path too long (max 107 bytes)"
#define PP_R_NAN "not a number"
#define PP_R_TIMEOUT "out of range (1..3600000)"
#define PP_R_VERSIONS "want 1, 2 or 1,2"
#define PP_R_SOCKNAME "want proxied or real"
#define PP_R_LOG "want none, error, warn, info or debug"
#define PP_R_TARGET "want stderr or syslog"
#define PP_R_BOOL "want 0 or 1"

/*
 * unix:/path or unix:@name (s is what follows "unix:").  A trailing /tcp
 * is the default transport and is dropped (so a socket file named "tcp"
 * is written unix:/dir/tcp/tcp); /udp is refused.  The path is kept as
 * written, "@name" included.
 */
static const char *
pp_parse_unix(const char *s, size_t n, struct pp_port *p)
{
	p->is_unix = true;
	p->socktype = SOCK_STREAM;
	if (n >= 4 && memcmp(s + n - 4, "/udp", 4) == 0)
		return PP_R_UNIX_DGRAM;
	if (n >= 4 && memcmp(s + n - 4, "/tcp", 4) == 0)
		n -= 4;
	if (n == 0 || (s[0] != '/' && s[0] != '@'))
		return PP_R_UNIX_REL;
	if (s[0] == '@' && n == 1)
		return PP_R_UNIX_ABSTRACT;
	if (n >= sizeof(p->path))
		return PP_R_UNIX_LONG;
	memcpy(p->path, s, n);
	p->path[n] = '\0';
	return NULL;
}

/*
 * One PP_PORTS entry: PORT, IPV4:PORT, [IPV6]:PORT, each with an optional
 * /tcp, /udp or /udp+spp, or a unix: entry.  Returns NULL when valid, else the
 * reason.
 */
static const char *
pp_parse_port_entry(const char *s, size_t n, struct pp_port *p)
{
	const char *slash, *colon, *portp;
	size_t en = n, portn;
	unsigned long port = 0;

	memset(p, 0, sizeof(*p));
	p->socktype = SOCK_STREAM;
	if (n >= 5 && memcmp(s, "unix:", 5) == 0)
		return pp_parse_unix(s + 5, n - 5, p);

	slash = memchr(s, '/', n);
	if (slash != NULL) {
		const char *proto = slash + 1;
		size_t pn = n - (size_t)(proto - s);

		const char *plus = memchr(proto, '+', pn);
		size_t wn = plus != NULL ? (size_t)(plus - proto) : pn;

		if (pp_cfg_word_is(proto, wn, "tcp"))
			p->socktype = SOCK_STREAM;
		else if (pp_cfg_word_is(proto, wn, "udp"))
			p->socktype = SOCK_DGRAM;
		else
			return PP_R_PROTO;
		if (plus != NULL) {
			if (!pp_cfg_word_is(plus + 1, pn - wn - 1, "spp"))
				return p->socktype == SOCK_DGRAM ? PP_R_HDR
								 : PP_R_PROTO;
			if (p->socktype != SOCK_DGRAM)
				return PP_R_SPP_TCP;
			p->spp = true;
		}
		en = (size_t)(slash - s);
	}

	if (en > 0 && s[0] == '[') {
		const char *close = memchr(s, ']', en);
		size_t after;

		if (close == NULL)
			return PP_R_NO_BRACKET;
		if (!pp_cfg_ipv6(s + 1, (size_t)(close - s) - 1, p->addr))
			return PP_R_NOT_IP6;
		after = en - (size_t)(close - s) - 1;
		if (after == 0 || close[1] != ':')
			return PP_R_NO_PORT;
		portp = close + 2;
		portn = after - 1;
	} else if ((colon = memchr(s, ':', en)) != NULL) {
		size_t alen = (size_t)(colon - s);

		portp = colon + 1;
		portn = en - alen - 1;
		if (memchr(portp, ':', portn) != NULL)
			return PP_R_NEED_BRACKETS;
		if (pp_cfg_word_is(s, alen, "*"))
			return PP_R_WILDCARD;
		if (!pp_cfg_ipv4(s, alen, p->addr))
			return PP_R_NOT_IP;
	} else {
		p->any_addr = true;
		portp = s;
		portn = en;
	}

	if (portn == 0)
		return PP_R_NO_PORT;
	switch (pp_cfg_num(portp, portn, 65535, &port)) {
	case PP_NUM_OK:
		break;
	case PP_NUM_NAN:
		return PP_R_PORT_NAN;
	case PP_NUM_RANGE:
		return PP_R_PORT_RANGE;
	}
	if (port == 0)
		return PP_R_PORT_RANGE;
	p->port = (uint16_t)port;
	return NULL;
}

/*
 * Parse a PP_PORTS list into c->ports (replacing them).  Returns 0, or -1
 * with err filled.
 */
int
pp_parse_ports(struct pp_config *c, const char *v, char *err, size_t errlen)
{
	const char *pos = v != NULL ? v : "", *tok;
	size_t n;

	c->nports = 0;
	while ((n = pp_cfg_token(&pos, &tok)) > 0) {
		const char *why;

		if (c->nports == PP_MAX_PORTS)
			return pp_cfg_fail(err, errlen, "PP_PORTS", tok, n,
					   PP_R_PORTS_MANY);
		why = pp_parse_port_entry(tok, n, &c->ports[c->nports]);
		if (why != NULL)
			return pp_cfg_fail(err, errlen, "PP_PORTS", tok, n,
					   why);
		c->nports++;
	}
	return 0;
}

static int
pp_parse_timeout(struct pp_config *c, const char *v, char *err, size_t errlen)
{
	const char *w;
	size_t n = pp_cfg_trim(v, &w);
	unsigned long ms = 0;

	switch (pp_cfg_num(w, n, PP_MAX_TIMEOUT_MS, &ms)) {
	case PP_NUM_OK:
		break;
	case PP_NUM_NAN:
		return pp_cfg_fail(err, errlen, "PP_TIMEOUT_MS", w, n,
				   PP_R_NAN);
	case PP_NUM_RANGE:
		return pp_cfg_fail(err, errlen, "PP_TIMEOUT_MS", w, n,
				   PP_R_TIMEOUT);
	}
	if (ms == 0)
		return pp_cfg_fail(err, errlen, "PP_TIMEOUT_MS", w, n,
				   PP_R_TIMEOUT);
	c->timeout_ms = (unsigned)ms;
	return 0;
}

/* PP_VERSIONS: entries 1 and 2, in any order (repeats are harmless). */
static int
pp_parse_versions(struct pp_config *c, const char *v, char *err, size_t errlen)
{
	const char *pos = v, *tok;
	unsigned versions = 0;
	size_t n;

	while ((n = pp_cfg_token(&pos, &tok)) > 0) {
		if (pp_cfg_word_is(tok, n, "1"))
			versions |= PP_ACCEPT_V1;
		else if (pp_cfg_word_is(tok, n, "2"))
			versions |= PP_ACCEPT_V2;
		else
			return pp_cfg_fail(err, errlen, "PP_VERSIONS", tok, n,
					   PP_R_VERSIONS);
	}
	c->versions = versions;
	return 0;
}

/*
 * A single keyword out of words[0..nwords): sets *idx to its index.
 * Returns 0, or -1 with err filled with reason.
 */
static int
pp_parse_keyword(const char *name, const char *v, const char *const *words,
		 int nwords, int *idx, const char *reason, char *err,
		 size_t errlen)
{
	const char *w;
	size_t n = pp_cfg_trim(v, &w);
	int i = 0;

	for (i = 0; i < nwords; i++) {
		if (pp_cfg_word_is(w, n, words[i])) {
			*idx = i;
			return 0;
		}
	}
	return pp_cfg_fail(err, errlen, name, w, n, reason);
}

/*
 * Fill *c from the variables that get() returns.  Variables are checked
 * in the order of the contract's table and the first malformed one stops
 * the parse: then -1 is returned, err holds the line and *c must not be
 * used.  Returns 0 on success.
 */
int
pp_config_parse(struct pp_config *c, pp_getenv_fn get, char *err, size_t errlen)
{
	return pp_config_parse_io(c, get, NULL, err, errlen);
}

int
pp_config_parse_io(struct pp_config *c, pp_getenv_fn get,
		   const struct pp_aclio *io, char *err, size_t errlen)
{
	static const char *const sockname[] = { "proxied", "real" };
	static const char *const level[] = { "none", "error", "warn", "info",
					     "debug" };
	static const char *const target[] = { "stderr", "syslog" };
	static const char *const boolean[] = { "0", "1" };
	const char *v;
	int i = 0;

	memset(c, 0, sizeof(*c));
	if (err != NULL && errlen > 0)
		err[0] = '\0';
	c->timeout_ms = PP_DEFAULT_TIMEOUT_MS;
	c->versions = PP_ACCEPT_V1 | PP_ACCEPT_V2;
	c->sockname_real = false;
	c->log_level = PP_LOG_WARN;
	c->log_target = PP_TARGET_STDERR;

	if (pp_parse_ports(c, get("PP_PORTS"), err, errlen) != 0)
		return -1;
	/* An empty PP_ALLOW is the default, see the top of this file. */
	v = get("PP_ALLOW");
	if (pp_cfg_empty(v))
		v = PP_DEFAULT_ALLOW;
	if (pp_parse_acl_io(&c->allow, "PP_ALLOW", v, io, err, errlen) != 0)
		return -1;
	if (pp_parse_acl_io(&c->direct, "PP_DIRECT", get("PP_DIRECT"), io, err,
			    errlen) != 0)
		return -1;
	v = get("PP_TIMEOUT_MS");
	if (!pp_cfg_empty(v) && pp_parse_timeout(c, v, err, errlen) != 0)
		return -1;
	v = get("PP_VERSIONS");
	if (!pp_cfg_empty(v) && pp_parse_versions(c, v, err, errlen) != 0)
		return -1;
	v = get("PP_SOCKNAME");
	if (!pp_cfg_empty(v)) {
		if (pp_parse_keyword("PP_SOCKNAME", v, sockname, 2, &i,
				     PP_R_SOCKNAME, err, errlen) != 0)
			return -1;
		c->sockname_real = i == 1;
	}
	v = get("PP_LOG");
	if (!pp_cfg_empty(v)) {
		if (pp_parse_keyword("PP_LOG", v, level, 5, &i, PP_R_LOG, err,
				     errlen) != 0)
			return -1;
		c->log_level = (enum pp_loglevel)i;
	}
	v = get("PP_LOG_TARGET");
	if (!pp_cfg_empty(v)) {
		if (pp_parse_keyword("PP_LOG_TARGET", v, target, 2, &i,
				     PP_R_TARGET, err, errlen) != 0)
			return -1;
		c->log_target = i == 1 ? PP_TARGET_SYSLOG : PP_TARGET_STDERR;
	}
	v = get("PP_V2_DRAFT");
	if (!pp_cfg_empty(v)) {
		if (pp_parse_keyword("PP_V2_DRAFT", v, boolean, 2, &i,
				     PP_R_BOOL, err, errlen) != 0)
			return -1;
		c->v2_draft = i == 1;
	}
	v = get("PP_INHERIT");
	if (!pp_cfg_empty(v)) {
		if (pp_parse_keyword("PP_INHERIT", v, boolean, 2, &i, PP_R_BOOL,
				     err, errlen) != 0)
			return -1;
		c->inherit = i == 1;
	}
	/* The draft layout is a form of version 2: only with v2 on. */
	if (c->v2_draft && (c->versions & PP_ACCEPT_V2) != 0)
		c->versions |= PP_ACCEPT_DRAFT;
	return 0;
}

/*
 * Does the AF_UNIX address sun (n bytes of sun_path) match unix entry p?
 * A path matches the same path exactly (as the server spelled it when
 * binding).  "@name" matches the abstract address "\0name", also when the
 * server padded it with NULs up to the length it passed to bind().
 */
static bool
pp_unix_match(const struct pp_port *p, const struct sockaddr_un *sun, size_t n)
{
	size_t plen;

	if (n == 0)
		return false; /* unnamed */
	if (p->path[0] == '@') {
		size_t i;

		plen = strlen(p->path + 1);
		if (sun->sun_path[0] != '\0' || n - 1 < plen ||
		    memcmp(sun->sun_path + 1, p->path + 1, plen) != 0)
			return false;
		for (i = 1 + plen; i < n; i++)
			if (sun->sun_path[i] != '\0')
				return false;
		return true;
	}
	plen = strlen(p->path);
	return sun->sun_path[0] != '\0' && strnlen(sun->sun_path, n) == plen &&
	       memcmp(sun->sun_path, p->path, plen) == 0;
}

/*
 * Is a listening socket of type socktype (SOCK_STREAM or SOCK_DGRAM;
 * SOCK_NONBLOCK and SOCK_CLOEXEC are ignored) bound to local address sa
 * PROXY-only?  Matching rule:
 *  - the entry's transport must be the socket's (unix: entries are
 *    SOCK_STREAM);
 *  - an entry without an address matches any local address with its port,
 *    wildcard binds (0.0.0.0, ::) included;
 *  - an entry with an address matches a socket bound to exactly that
 *    address: 0.0.0.0:80 is the IPv4 wildcard bind only, [::]:80 the IPv6
 *    one only, and an IPv4 address also matches an IPv6 socket bound to
 *    its v4-mapped form (::ffff:a.b.c.d);
 *  - a unix: entry matches an AF_UNIX socket by path, see pp_unix_match().
 * A NULL sa, a short len or another family never matches.
 */
bool
pp_config_match(const struct pp_config *c, int socktype,
		const struct sockaddr *sa, socklen_t len)
{
	return pp_config_find(c, socktype, sa, len) != NULL;
}

const struct pp_port *
pp_config_find(const struct pp_config *c, int socktype,
	       const struct sockaddr *sa, socklen_t len)
{
	uint8_t a[16];
	uint16_t port;
	size_t i;

	socktype &= ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (sa == NULL || len < (socklen_t)sizeof(sa_family_t))
		return NULL;
	if (sa->sa_family == AF_UNIX) {
		struct sockaddr_un sun;
		size_t off = offsetof(struct sockaddr_un, sun_path), n;

		if (socktype != SOCK_STREAM || (size_t)len <= off)
			return NULL;
		n = (size_t)len - off;
		if (n > sizeof(sun.sun_path))
			n = sizeof(sun.sun_path);
		memcpy(&sun, sa, off + n);
		for (i = 0; i < c->nports; i++)
			if (c->ports[i].is_unix &&
			    pp_unix_match(&c->ports[i], &sun, n))
				return &c->ports[i];
		return NULL;
	}
	if (!pp_sa_norm(sa, len, a, &port))
		return NULL;
	port = ntohs(port);
	for (i = 0; i < c->nports; i++) {
		const struct pp_port *p = &c->ports[i];

		if (p->is_unix || p->socktype != socktype || p->port != port)
			continue;
		if (p->any_addr || memcmp(p->addr, a, 16) == 0)
			return p;
	}
	return NULL;
}

/* The PP_LOG keyword for a level ("warn"), "?" for an unknown value. */
const char *
pp_loglevel_name(enum pp_loglevel l)
{
	switch (l) {
	case PP_LOG_NONE:
		return "none";
	case PP_LOG_ERROR:
		return "error";
	case PP_LOG_WARN:
		return "warn";
	case PP_LOG_INFO:
		return "info";
	case PP_LOG_DEBUG:
		return "debug";
	}
	return "?";
}

/* The PP_LOG_TARGET keyword for a target, "?" for an unknown value. */
const char *
pp_logtarget_name(enum pp_logtarget t)
{
	switch (t) {
	case PP_TARGET_STDERR:
		return "stderr";
	case PP_TARGET_SYSLOG:
		return "syslog";
	}
	return "?";
}
