/*
 * fuzz_config.c - fuzz target for the PP_* parser and the socket and
 * source matching (src/core/pp_config.c, pp_cfgtext.c, pp_acl.c).
 *
 * Input layout: one selector byte, then values.  selector % 11 picks:
 *   0 PP_PORTS  1 PP_ALLOW  2 PP_DIRECT  3 PP_TIMEOUT_MS  4 PP_VERSIONS
 *   5 PP_SOCKNAME  6 PP_LOG  7 PP_LOG_TARGET  8 PP_V2_DRAFT  9 PP_INHERIT
 * and the rest of the input, up to its first NUL, is that variable's value;
 *   10 all ten: the rest is split at NULs into their values, in that order.
 *
 * Besides "no crash, no sanitizer report", it checks what the parser
 * promises: an error line of the documented shape, values within their
 * bounds, and every parsed entry matching an address built from itself.
 * A broken promise aborts.
 */
#include "config.h"

#include <netinet/in.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pp_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_NVARS 10
#define PP_FZ_VERSIONS (PP_ACCEPT_V1 | PP_ACCEPT_V2 | PP_ACCEPT_DRAFT)

static const char *const fz_names[FZ_NVARS] = {
	"PP_PORTS",    "PP_ALLOW",    "PP_DIRECT", "PP_TIMEOUT_MS",
	"PP_VERSIONS", "PP_SOCKNAME", "PP_LOG",    "PP_LOG_TARGET",
	"PP_V2_DRAFT", "PP_INHERIT",
};

/* The values of the current input (the lookup has no context pointer). */
static const char *fz_vals[FZ_NVARS];

static struct pp_config fz_cfg;

static const size_t fz_sun_off = offsetof(struct sockaddr_un, sun_path);

static const char *
fz_get(const char *name)
{
	int i;

	for (i = 0; i < FZ_NVARS; i++)
		if (strcmp(name, fz_names[i]) == 0)
			return fz_vals[i];
	abort(); /* the parser asked for a variable nobody knows */
}

static void
fz_check(bool ok)
{
	if (!ok)
		abort();
}

/* An error line is "PP_NAME: '...': reason", one line, in bounds. */
static void
fz_check_err(const char *err, size_t errlen)
{
	size_t n = strnlen(err, errlen), i;
	bool named = false;

	fz_check(n > 0 && n < errlen);
	fz_check(memchr(err, '\n', n) == NULL);
	for (i = 0; i < FZ_NVARS; i++) {
		size_t l = strlen(fz_names[i]);

		if (strncmp(err, fz_names[i], l) == 0 &&
		    strncmp(err + l, ": '", 3) == 0)
			named = true;
	}
	fz_check(named);
	fz_check(strstr(err, "': ") != NULL);
}

/* An error in a list file: "NAME: /fuzz:LINE: 'entry': reason". */
static void
fz_check_file_err(const char *err, size_t errlen, const char *name)
{
	size_t n = strnlen(err, errlen), l = strlen(name);
	const char *p = err + l + 8;

	fz_check(n > 0 && n < errlen);
	fz_check(memchr(err, '\n', n) == NULL);
	fz_check(strncmp(err, name, l) == 0 &&
		 strncmp(err + l, ": /fuzz:", 8) == 0);
	fz_check(*p >= '1' && *p <= '9');
	while (*p >= '0' && *p <= '9')
		p++;
	fz_check(strncmp(p, ": '", 3) == 0);
	fz_check(strstr(p, "': ") != NULL);
}

static socklen_t
fz_sa6(struct sockaddr_in6 *sin6, const uint8_t addr[16], uint16_t port)
{
	memset(sin6, 0, sizeof(*sin6));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(port);
	memcpy(&sin6->sin6_addr, addr, 16);
	return sizeof(*sin6);
}

static bool
fz_is_mapped(const uint8_t a[16])
{
	static const uint8_t pfx[12] = { [10] = 0xff, [11] = 0xff };

	return memcmp(a, pfx, 12) == 0;
}

static socklen_t
fz_sa4(struct sockaddr_in *sin, const uint8_t mapped[16], uint16_t port)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	memcpy(&sin->sin_addr, mapped + 12, 4);
	return sizeof(*sin);
}

/* Every entry of acl contains its own address. */
static void
fz_check_acl(const struct pp_acl *acl)
{
	size_t i;

	fz_check(acl->n <= PP_MAX_CIDRS);
	for (i = 0; i < acl->n; i++) {
		const struct pp_cidr *c = &acl->v[i];
		struct sockaddr_in6 sin6;
		struct sockaddr_in sin;
		socklen_t len;

		fz_check(c->plen <= 128);
		len = fz_sa6(&sin6, c->addr, 1);
		fz_check(pp_acl_match(acl, (struct sockaddr *)&sin6, len));
		fz_check(!pp_acl_match(acl, (struct sockaddr *)&sin6, len - 1));
		if (fz_is_mapped(c->addr) && c->plen >= 96) {
			len = fz_sa4(&sin, c->addr, 1);
			fz_check(pp_acl_match(acl, (struct sockaddr *)&sin,
					      len));
		}
	}
}

/* Every PP_PORTS entry matches a socket bound where it says. */
static void
fz_check_ports(const struct pp_config *c)
{
	static const uint8_t any[16];
	size_t i;

	fz_check(c->nports <= PP_MAX_PORTS);
	for (i = 0; i < c->nports; i++) {
		const struct pp_port *p = &c->ports[i];
		union {
			struct sockaddr sa;
			struct sockaddr_in sin;
			struct sockaddr_in6 sin6;
			struct sockaddr_un sun;
		} u;
		socklen_t len;

		fz_check(p->socktype == SOCK_STREAM ||
			 p->socktype == SOCK_DGRAM);
		if (p->is_unix) {
			size_t n = strnlen(p->path, sizeof(p->path));

			fz_check(n > 0 && n < sizeof(p->path));
			fz_check(p->socktype == SOCK_STREAM);
			memset(&u, 0, sizeof(u));
			u.sun.sun_family = AF_UNIX;
			memcpy(u.sun.sun_path, p->path, n);
			if (p->path[0] == '@')
				u.sun.sun_path[0] = '\0';
			len = (socklen_t)(fz_sun_off + n);
			fz_check(pp_config_match(c, SOCK_STREAM, &u.sa, len));
			fz_check(!pp_config_match(c, SOCK_DGRAM, &u.sa, len));
			continue;
		}
		fz_check(p->port != 0);
		len = fz_sa6(&u.sin6, p->any_addr ? any : p->addr, p->port);
		fz_check(pp_config_match(c, p->socktype, &u.sa, len));
		if (p->any_addr || fz_is_mapped(p->addr)) {
			len = fz_sa4(&u.sin, p->addr, p->port);
			fz_check(pp_config_match(c, p->socktype, &u.sa, len));
		}
	}
}

/* Some fixed sockets and sources, for coverage only. */
static void
fz_probe(const struct pp_config *c)
{
	static const uint8_t addrs[][16] = {
		{ 0 },
		{ [15] = 1 },
		{ [10] = 0xff, [11] = 0xff, [12] = 127, [15] = 1 },
		{ [10] = 0xff, [11] = 0xff, [12] = 10, [15] = 1 },
		{ 0x20, 0x01, 0x0d, 0xb8, [15] = 0x53 },
		{ 0xfe, 0x80, [15] = 1 },
	};
	static const uint16_t ports[] = { 25, 53, 80, 443, 65535 };
	struct sockaddr_un sun;
	struct sockaddr_in6 sin6;
	struct sockaddr_in sin;
	size_t i, j;
	socklen_t len;

	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		len = fz_sa6(&sin6, addrs[i], 1234);
		(void)pp_acl_match(&c->allow, (struct sockaddr *)&sin6, len);
		(void)pp_acl_match(&c->direct, (struct sockaddr *)&sin6, len);
		len = fz_sa4(&sin, addrs[i], 1234);
		(void)pp_acl_match(&c->allow, (struct sockaddr *)&sin, len);
		for (j = 0; j < sizeof(ports) / sizeof(ports[0]); j++) {
			len = fz_sa6(&sin6, addrs[i], ports[j]);
			(void)pp_config_match(c, SOCK_STREAM,
					      (struct sockaddr *)&sin6, len);
			(void)pp_config_match(c, SOCK_DGRAM,
					      (struct sockaddr *)&sin6, len);
			len = fz_sa4(&sin, addrs[i], ports[j]);
			(void)pp_config_match(c, SOCK_STREAM,
					      (struct sockaddr *)&sin, len);
		}
	}
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, "/run/app.sock", 14);
	for (len = 0; len <= (socklen_t)sizeof(sun); len += 7)
		(void)pp_config_match(c, SOCK_STREAM, (struct sockaddr *)&sun,
				      len);
	sun.sun_path[0] = '\0';
	(void)pp_config_match(c, SOCK_STREAM, (struct sockaddr *)&sun,
			      sizeof(sun));
	(void)pp_acl_match(&c->allow, (struct sockaddr *)&sun, sizeof(sun));
}

/* The parse must behave the same with a short error buffer. */
static void
fz_short_err(int rc)
{
	char small[8];
	size_t len;

	for (len = 1; len <= sizeof(small); len += 3) {
		memset(small, 'X', sizeof(small));
		fz_check(pp_config_parse(&fz_cfg, fz_get, small, len) == rc);
		fz_check(memchr(small, '\0', len) != NULL);
	}
	fz_check(pp_config_parse(&fz_cfg, fz_get, NULL, 0) == rc);
}

/* A list file whose content is the fuzzer's input. */
static const char *fz_file;
static size_t fz_file_len;
static char fz_filebuf[PP_ACL_FILE_MAX + 1];

static long
fz_read(void *ctx, const char *path, char *out, size_t cap, int *e)
{
	(void)ctx;
	(void)path;
	if (fz_file_len > cap) {
		*e = EFBIG;
		return -1;
	}
	memcpy(out, fz_file, fz_file_len);
	return (long)fz_file_len;
}

static const struct pp_aclio fz_io = { .read = fz_read,
				       .buf = fz_filebuf,
				       .cap = sizeof(fz_filebuf) };

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[PP_ERRMSG_MAX];
	char *buf, *p, *end;
	unsigned sel;
	int i, rc;

	if (size < 1)
		return 0;
	sel = data[0] % 11u;
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	memcpy(buf, data + 1, size - 1);
	buf[size - 1] = '\0';
	memset(fz_vals, 0, sizeof(fz_vals));
	if (sel < FZ_NVARS) {
		fz_vals[sel] = buf;
	} else {
		p = buf;
		end = buf + size - 1;
		for (i = 0; i < FZ_NVARS && p <= end; i++) {
			fz_vals[i] = p;
			p += strlen(p) + 1;
		}
	}

	memset(err, 'X', sizeof(err));
	rc = pp_config_parse(&fz_cfg, fz_get, err, sizeof(err));
	fz_check(rc == 0 || rc == -1);
	if (rc == 0) {
		fz_check(err[0] == '\0');
		fz_check(fz_cfg.allow.n > 0);
		fz_check(fz_cfg.timeout_ms >= 1 &&
			 fz_cfg.timeout_ms <= 3600000);
		fz_check(fz_cfg.versions != 0);
		fz_check((fz_cfg.versions & ~PP_FZ_VERSIONS) == 0);
		fz_check(fz_cfg.log_level <= PP_LOG_DEBUG);
		fz_check(pp_loglevel_name(fz_cfg.log_level)[0] != '?');
		fz_check(pp_logtarget_name(fz_cfg.log_target)[0] != '?');
		fz_check_acl(&fz_cfg.allow);
		fz_check_acl(&fz_cfg.direct);
		fz_check_ports(&fz_cfg);
		fz_probe(&fz_cfg);
	} else {
		fz_check_err(err, sizeof(err));
	}
	fz_short_err(rc);

	/* The list parsers on their own, with the raw value. */
	if (sel == 0) {
		rc = pp_parse_ports(&fz_cfg, buf, err, sizeof(err));
		if (rc == 0)
			fz_check_ports(&fz_cfg);
	} else if (sel == 1 || sel == 2) {
		rc = pp_parse_acl(&fz_cfg.allow, fz_names[sel], buf, err,
				  sizeof(err));
		if (rc == 0)
			fz_check_acl(&fz_cfg.allow);
		/* The same bytes as the content of a list file. */
		fz_file = buf;
		fz_file_len = size - 1;
		rc = pp_parse_acl_io(&fz_cfg.allow, fz_names[sel], "@/fuzz",
				     &fz_io, err, sizeof(err));
		fz_check(rc == 0 || rc == -1);
		if (rc == 0)
			fz_check_acl(&fz_cfg.allow);
		else
			fz_check_file_err(err, sizeof(err), fz_names[sel]);
	}
	free(buf);
	return 0;
}
