/*
 * ppsend.c - a diagnostic PROXY protocol client: ppsend [options] HOST PORT
 *
 * Connects to HOST PORT (TCP, or UDP with --udp), sends one PROXY header
 * built from the options (the addresses default to the real ones of the
 * connection), then behaves like netcat: stdin goes to the server, the
 * server's bytes go to stdout.  With --expect REGEX it waits for the
 * server's first line instead and says whether it matches, which makes a
 * one-line health check of a server behind ppshim or any PROXY receiver.
 *
 * The header itself comes from the core encoder (pp_encode_v1(),
 * pp_encode_v2()); this file builds the TLV area and does the I/O.
 *
 * Exit statuses:
 *   0   relay finished (the server closed, or the --timeout after stdin
 *       ended); with --expect, the first line matched
 *   1   --expect: the first line did not match, or no line came within
 *       --timeout, or the server sent the header back
 *   2   connection errors: name not resolved, connection refused, reset
 *       (a receiver refusing the header), closed before a line, no UDP
 *       reply, system errors
 *   64  usage error
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "pp_parse.h"

#define PS_EXIT_OK 0
#define PS_EXIT_NOMATCH 1
#define PS_EXIT_CONN 2

#define PS_DEFAULT_TIMEOUT_MS 5000
#define PS_TLV_AREA_MAX 65535 /* the v2 length field */
#define PS_LINE_MAX 4096      /* longest first line --expect looks at */
#define PS_IO_SIZE 65536
#define PS_UDP_MAX 65507  /* largest UDP payload over IPv4 */
#define PS_SSL_FLAGS 0x01 /* client connected over TLS */

/* The options, once parsed and checked. */
struct ps_opts {
	int version; /* 1, 2, or 0 until decided */
	bool udp;
	bool spp; /* the 38-byte SPP header instead (implies udp) */
	bool local;
	bool unknown;
	bool crc;
	bool draft;
	bool hexdump;
	bool have_src;
	bool have_dst;
	union pp_sockaddr src;
	union pp_sockaddr dst;
	bool have_bind;
	union pp_sockaddr bind;
	long split;    /* 0: one piece */
	long delay_ms; /* -1: not given */
	int timeout_ms;
	bool timeout_set;
	bool have_expect;
	const char *expect;
	regex_t re;
	const char *host;
	const char *port;
};

/* TLVs in the order given; ssl-* values gather in one SSL TLV. */
static uint8_t ps_tlv[PS_TLV_AREA_MAX];
static size_t ps_tlv_len;
static uint8_t ps_ssl[PS_TLV_AREA_MAX];
static size_t ps_ssl_len;
static size_t ps_ssl_at; /* where the SSL TLV goes in ps_tlv */
static bool ps_have_ssl;

/* The header as sent, for --hexdump and to spot a server echoing it. */
static uint8_t ps_hdr[PP_V2_MAX];
static size_t ps_hdr_len;

static uint8_t ps_io[PS_IO_SIZE];

struct ps_tlv_name {
	const char *name;
	uint8_t type;
	bool ssl_sub;
};

/* clang-format off */
static const struct ps_tlv_name ps_tlv_names[] = {
	{ "alpn",        PP_TLV_ALPN,           false },
	{ "authority",   PP_TLV_AUTHORITY,      false },
	{ "noop",        PP_TLV_NOOP,           false },
	{ "unique-id",   PP_TLV_UNIQUE_ID,      false },
	{ "netns",       PP_TLV_NETNS,          false },
	{ "ssl-version", PP_SUBTLV_SSL_VERSION, true },
	{ "ssl-cn",      PP_SUBTLV_SSL_CN,      true },
	{ "ssl-cipher",  PP_SUBTLV_SSL_CIPHER,  true },
	{ "ssl-sig-alg", PP_SUBTLV_SSL_SIG_ALG, true },
	{ "ssl-key-alg", PP_SUBTLV_SSL_KEY_ALG, true },
};
/* clang-format on */

#define PS_NTLV_NAMES (sizeof(ps_tlv_names) / sizeof(ps_tlv_names[0]))

enum {
	PS_OPT_SRC = 0x100,
	PS_OPT_DST,
	PS_OPT_LOCAL,
	PS_OPT_UNKNOWN,
	PS_OPT_TLV,
	PS_OPT_CRC,
	PS_OPT_DRAFT,
	PS_OPT_SPLIT,
	PS_OPT_DELAY,
	PS_OPT_BIND,
	PS_OPT_HEXDUMP,
	PS_OPT_UDP,
	PS_OPT_SPP,
	PS_OPT_TIMEOUT,
	PS_OPT_EXPECT,
	PS_OPT_HELP,
	PS_OPT_VERSION,
};

static const struct option ps_longopts[] = {
	{ "src", required_argument, NULL, PS_OPT_SRC },
	{ "dst", required_argument, NULL, PS_OPT_DST },
	{ "local", no_argument, NULL, PS_OPT_LOCAL },
	{ "unknown", no_argument, NULL, PS_OPT_UNKNOWN },
	{ "tlv", required_argument, NULL, PS_OPT_TLV },
	{ "crc32c", no_argument, NULL, PS_OPT_CRC },
	{ "draft", no_argument, NULL, PS_OPT_DRAFT },
	{ "split", required_argument, NULL, PS_OPT_SPLIT },
	{ "delay", required_argument, NULL, PS_OPT_DELAY },
	{ "bind", required_argument, NULL, PS_OPT_BIND },
	{ "hexdump", no_argument, NULL, PS_OPT_HEXDUMP },
	{ "udp", no_argument, NULL, PS_OPT_UDP },
	{ "spp", no_argument, NULL, PS_OPT_SPP },
	{ "timeout", required_argument, NULL, PS_OPT_TIMEOUT },
	{ "expect", required_argument, NULL, PS_OPT_EXPECT },
	{ "help", no_argument, NULL, PS_OPT_HELP },
	{ "version", no_argument, NULL, PS_OPT_VERSION },
	{ NULL, 0, NULL, 0 },
};

static void ps_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
ps_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("ppsend: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void ps_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

static void
ps_usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("ppsend: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\nTry 'ppsend --help' for more information.\n", stderr);
	exit(EX_USAGE);
}

static void
ps_help(void)
{
	printf("Usage: ppsend [OPTION]... HOST PORT\n"
	       "Connect to HOST PORT, send a PROXY protocol header, then "
	       "relay stdin to the\n"
	       "server and the server's answer to stdout (like netcat), or "
	       "with --expect\n"
	       "check the server's first line.\n\n"
	       "Header:\n"
	       "  -1                 version 1 (text)\n"
	       "  -2                 version 2 (binary); without -1 or -2: "
	       "version 2 when\n"
	       "                     an option needs it (--udp, --local, "
	       "--tlv, --crc32c,\n"
	       "                     --draft), version 1 otherwise\n"
	       "  --src ADDR:PORT    advertised source (default: the real "
	       "local address);\n"
	       "                     IPv6 as [ADDR]:PORT\n"
	       "  --dst ADDR:PORT    advertised destination (default: the "
	       "real server address)\n"
	       "  --local            v2 LOCAL command (a health check: real "
	       "addresses count)\n"
	       "  --unknown          v1 PROXY UNKNOWN\n"
	       "  --tlv TYPE=VALUE   add a v2 TLV (repeatable); TYPE a number "
	       "or alpn,\n"
	       "                     authority, unique-id, noop, netns, "
	       "ssl-version, ssl-cn,\n"
	       "                     ssl-cipher, ssl-sig-alg, ssl-key-alg; "
	       "VALUE text, or hex\n"
	       "                     after 0x\n"
	       "  --crc32c           add a CRC32C TLV\n"
	       "  --draft            the 2012 draft v2 layout\n\n"
	       "Sending:\n"
	       "  --udp              UDP: each read of stdin is one datagram,"
	       " header first\n"
	       "  --spp              UDP with the 38-byte Simple Proxy "
	       "Protocol header of\n"
	       "                     Cloudflare Spectrum and EdgeOne "
	       "(--src the client,\n"
	       "                     --dst the proxy); an SPP header on a "
	       "reply is decoded\n"
	       "                     to stderr and removed\n"
	       "  --bind ADDR[:PORT] local address (and port) to connect "
	       "from\n"
	       "  --split N          send the first N header bytes, then the "
	       "rest\n"
	       "  --delay MS         pause between the two pieces (with "
	       "--split)\n"
	       "  --hexdump          print the connection and the header to "
	       "stderr\n\n"
	       "Checking:\n"
	       "  --expect REGEX     wait for the server's first line; exit "
	       "0 if it matches\n"
	       "                     the POSIX extended REGEX, 1 if not\n"
	       "  --timeout MS       connect, first-line and UDP reply "
	       "timeout (default %d);\n"
	       "                     for a TCP relay, how long to wait for "
	       "the server after\n"
	       "                     stdin ends (default: until it closes)\n\n"
	       "  --help             this help\n"
	       "  --version          the version\n\n"
	       "Exit status: 0 done or matched, 1 no match, 2 connection "
	       "refused, reset,\n"
	       "closed or timed out, 64 usage error.  See ppsend(1).\n",
	       PS_DEFAULT_TIMEOUT_MS);
}

/* ===== Option parsing ===== */

/* A decimal number in [min, max], or a usage error naming the option. */
static long
ps_number(const char *opt, const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (*s == '\0' || *end != '\0' || errno != 0 || v < min || v > max)
		ps_usage_error("%s: '%s': expected a number from %ld to %ld",
			       opt, s, min, max);
	return v;
}

/* Parse a port 0..65535 in decimal; false when s is not one. */
static bool
ps_port(const char *s, uint16_t *port)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || errno != 0 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

/*
 * Parse ADDR (IPv4 or IPv6, optionally in brackets) with an optional
 * :PORT, into *a.  need_port makes the port mandatory.  Returns false on
 * any syntax error.
 */
static bool
ps_parse_addr(const char *s, bool need_port, union pp_sockaddr *a)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *host, *port = NULL;
	uint16_t p = 0;
	char *q;

	if (strlen(s) >= sizeof(buf))
		return false;
	strcpy(buf, s);
	host = buf;
	if (buf[0] == '[') {
		q = strchr(buf, ']');
		if (q == NULL)
			return false;
		*q = '\0';
		host = buf + 1;
		if (q[1] == ':')
			port = q + 2;
		else if (q[1] != '\0')
			return false;
	} else {
		q = strrchr(buf, ':');
		/* One colon: ADDR:PORT; more: a bare IPv6 address. */
		if (q != NULL && strchr(buf, ':') == q) {
			*q = '\0';
			port = q + 1;
		}
	}
	if (port != NULL && !ps_port(port, &p))
		return false;
	if (port == NULL && need_port)
		return false;
	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, host, &a->sin.sin_addr) == 1 && buf[0] != '[') {
		a->sin.sin_family = AF_INET;
		a->sin.sin_port = htons(p);
		return true;
	}
	if (inet_pton(AF_INET6, host, &a->sin6.sin6_addr) == 1) {
		a->sin6.sin6_family = AF_INET6;
		a->sin6.sin6_port = htons(p);
		return true;
	}
	return false;
}

static socklen_t
ps_salen(const union pp_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->sin6) : sizeof(a->sin);
}

/* "1.2.3.4:5" or "[::1]:5" into buf. */
static const char *
ps_fmt_addr(const union pp_sockaddr *a, char *buf, size_t size)
{
	char h[INET6_ADDRSTRLEN];

	if (a->sa.sa_family == AF_INET) {
		inet_ntop(AF_INET, &a->sin.sin_addr, h, sizeof(h));
		snprintf(buf, size, "%s:%u", h, ntohs(a->sin.sin_port));
	} else if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->sin6.sin6_addr, h, sizeof(h));
		snprintf(buf, size, "[%s]:%u", h, ntohs(a->sin6.sin6_port));
	} else {
		snprintf(buf, size, "(family %d)", a->sa.sa_family);
	}
	return buf;
}

static int
ps_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * Decode a --tlv VALUE into out[0..cap): text as is, or hex digits after
 * "0x".  Returns the length, or a usage error.
 */
static size_t
ps_tlv_value(const char *arg, const char *v, uint8_t *out, size_t cap)
{
	size_t n = 0, len;
	int hi, lo;

	if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
		v += 2;
		len = strlen(v);
		if (len % 2 != 0)
			ps_usage_error("--tlv '%s': odd number of hex digits",
				       arg);
		for (; *v != '\0'; v += 2) {
			hi = ps_hexval(v[0]);
			lo = ps_hexval(v[1]);
			if (hi < 0 || lo < 0)
				ps_usage_error("--tlv '%s': '%c%c' is not hex",
					       arg, v[0], v[1]);
			if (n == cap)
				goto too_long;
			out[n++] = (uint8_t)(hi << 4 | lo);
		}
		return n;
	}
	len = strlen(v);
	if (len > cap)
		goto too_long;
	memcpy(out, v, len);
	return len;
too_long:
	ps_usage_error("--tlv '%.40s...': the TLVs exceed the %d bytes a v2 "
		       "header can carry",
		       arg, PS_TLV_AREA_MAX);
}

/* Append type, 16-bit length, value to area (size PS_TLV_AREA_MAX). */
static void
ps_tlv_append(const char *arg, uint8_t *area, size_t *len, uint8_t type,
	      const char *value)
{
	size_t n;

	if (PS_TLV_AREA_MAX - *len < 3)
		ps_usage_error("--tlv '%.40s': the TLVs exceed the %d bytes a "
			       "v2 header can carry",
			       arg, PS_TLV_AREA_MAX);
	n = ps_tlv_value(arg, value, area + *len + 3,
			 PS_TLV_AREA_MAX - *len - 3);
	area[*len] = type;
	area[*len + 1] = (uint8_t)(n >> 8);
	area[*len + 2] = (uint8_t)n;
	*len += 3 + n;
}

/* One --tlv TYPE=VALUE. */
static void
ps_add_tlv(const char *arg)
{
	const char *eq = strchr(arg, '=');
	char name[32];
	size_t nlen, i;
	unsigned long t;
	char *end;

	if (eq == NULL || eq == arg)
		ps_usage_error("--tlv '%s': expected TYPE=VALUE", arg);
	nlen = (size_t)(eq - arg);
	if (nlen >= sizeof(name))
		ps_usage_error("--tlv '%s': unknown TLV type", arg);
	memcpy(name, arg, nlen);
	name[nlen] = '\0';
	for (i = 0; i < PS_NTLV_NAMES; i++) {
		if (strcmp(name, ps_tlv_names[i].name) != 0)
			continue;
		if (!ps_tlv_names[i].ssl_sub) {
			ps_tlv_append(arg, ps_tlv, &ps_tlv_len,
				      ps_tlv_names[i].type, eq + 1);
			return;
		}
		if (!ps_have_ssl) {
			ps_have_ssl = true;
			ps_ssl_at = ps_tlv_len;
		}
		ps_tlv_append(arg, ps_ssl, &ps_ssl_len, ps_tlv_names[i].type,
			      eq + 1);
		return;
	}
	errno = 0;
	t = strtoul(name, &end, 0);
	if (name[0] < '0' || name[0] > '9' || *end != '\0' || errno != 0 ||
	    t > 255)
		ps_usage_error("--tlv '%s': unknown TLV type '%s' (a number "
			       "0-255 or 0x00-0xff, or alpn, authority, "
			       "unique-id, noop, netns, ssl-version, ssl-cn, "
			       "ssl-cipher, ssl-sig-alg, ssl-key-alg)",
			       arg, name);
	ps_tlv_append(arg, ps_tlv, &ps_tlv_len, (uint8_t)t, eq + 1);
}

/*
 * The final TLV area: the TLVs in order, the SSL TLV (client flags,
 * verify, sub-TLVs) where the first ssl-* option was.  Into out, which
 * holds PS_TLV_AREA_MAX bytes; returns its length.
 */
static size_t
ps_build_tlvs(uint8_t *out)
{
	size_t n = 0, body;

	if (!ps_have_ssl) {
		memcpy(out, ps_tlv, ps_tlv_len);
		return ps_tlv_len;
	}
	body = 5 + ps_ssl_len;
	if (ps_tlv_len + 3 + body > PS_TLV_AREA_MAX || body > 65535)
		ps_usage_error("--tlv: the TLVs exceed the %d bytes a v2 "
			       "header can carry",
			       PS_TLV_AREA_MAX);
	memcpy(out, ps_tlv, ps_ssl_at);
	n = ps_ssl_at;
	out[n++] = PP_TLV_SSL;
	out[n++] = (uint8_t)(body >> 8);
	out[n++] = (uint8_t)body;
	out[n++] = PS_SSL_FLAGS;
	memset(out + n, 0, 4); /* verify: 0, the certificate was verified */
	n += 4;
	memcpy(out + n, ps_ssl, ps_ssl_len);
	n += ps_ssl_len;
	memcpy(out + n, ps_tlv + ps_ssl_at, ps_tlv_len - ps_ssl_at);
	n += ps_tlv_len - ps_ssl_at;
	return n;
}

static void
ps_parse_opts(int argc, char **argv, struct ps_opts *o)
{
	bool needs_v2 = false;
	int c, rc;
	char ebuf[256];

	/* getopt names the program in its messages: the short name. */
	argv[0] = (char *)"ppsend";
	memset(o, 0, sizeof(*o));
	o->delay_ms = -1;
	o->timeout_ms = PS_DEFAULT_TIMEOUT_MS;
	while ((c = getopt_long(argc, argv, "12", ps_longopts, NULL)) != -1) {
		switch (c) {
		case '1':
		case '2':
			if (o->version != 0 && o->version != c - '0')
				ps_usage_error("-1 and -2 exclude each other");
			o->version = c - '0';
			break;
		case PS_OPT_SRC:
			if (!ps_parse_addr(optarg, true, &o->src))
				ps_usage_error("--src '%s': expected ADDR:PORT "
					       "or [IPV6ADDR]:PORT",
					       optarg);
			o->have_src = true;
			break;
		case PS_OPT_DST:
			if (!ps_parse_addr(optarg, true, &o->dst))
				ps_usage_error("--dst '%s': expected ADDR:PORT "
					       "or [IPV6ADDR]:PORT",
					       optarg);
			o->have_dst = true;
			break;
		case PS_OPT_LOCAL:
			o->local = true;
			break;
		case PS_OPT_UNKNOWN:
			o->unknown = true;
			break;
		case PS_OPT_TLV:
			ps_add_tlv(optarg);
			needs_v2 = true;
			break;
		case PS_OPT_CRC:
			o->crc = true;
			break;
		case PS_OPT_DRAFT:
			o->draft = true;
			break;
		case PS_OPT_SPLIT:
			o->split = ps_number("--split", optarg, 1, PP_V2_MAX);
			break;
		case PS_OPT_DELAY:
			o->delay_ms = ps_number("--delay", optarg, 0, 3600000);
			break;
		case PS_OPT_BIND:
			if (!ps_parse_addr(optarg, false, &o->bind))
				ps_usage_error("--bind '%s': expected ADDR, "
					       "ADDR:PORT or [IPV6ADDR]:PORT",
					       optarg);
			o->have_bind = true;
			break;
		case PS_OPT_HEXDUMP:
			o->hexdump = true;
			break;
		case PS_OPT_UDP:
			o->udp = true;
			break;
		case PS_OPT_SPP:
			o->spp = true;
			o->udp = true;
			break;
		case PS_OPT_TIMEOUT:
			o->timeout_ms =
				(int)ps_number("--timeout", optarg, 1, INT_MAX);
			o->timeout_set = true;
			break;
		case PS_OPT_EXPECT:
			if (o->have_expect)
				regfree(&o->re);
			rc = regcomp(&o->re, optarg, REG_EXTENDED | REG_NOSUB);
			if (rc != 0) {
				regerror(rc, &o->re, ebuf, sizeof(ebuf));
				ps_usage_error("--expect '%s': %s", optarg,
					       ebuf);
			}
			o->expect = optarg;
			o->have_expect = true;
			break;
		case PS_OPT_HELP:
			ps_help();
			exit(PS_EXIT_OK);
		case PS_OPT_VERSION:
			printf("ppsend (%s) %s\n", PACKAGE_NAME,
			       PACKAGE_VERSION);
			exit(PS_EXIT_OK);
		default:
			fputs("Try 'ppsend --help' for more information.\n",
			      stderr);
			exit(EX_USAGE);
		}
	}
	if (argc - optind != 2)
		ps_usage_error(argc - optind < 2 ? "HOST and PORT are needed"
						 : "too many arguments");
	o->host = argv[optind];
	o->port = argv[optind + 1];

	if (o->spp) {
		if (o->version != 0)
			ps_usage_error("--spp sends an SPP header, not a "
				       "PROXY one: drop -%d",
				       o->version);
		if (o->local || o->unknown || o->draft || o->crc ||
		    ps_tlv_len > 0 || ps_have_ssl)
			ps_usage_error("--spp has only addresses and ports: "
				       "drop --local, --unknown, --draft, "
				       "--tlv and --crc32c");
		o->version = 2; /* for the checks below: a binary header */
	}
	/* Decide the version, then refuse what it cannot express. */
	needs_v2 = needs_v2 || o->udp || o->local || o->crc || o->draft;
	if (o->version == 0)
		o->version = needs_v2 ? 2 : 1;
	if (o->version == 1) {
		if (o->udp)
			ps_usage_error("--udp needs version 2: version 1 "
				       "cannot describe a datagram");
		if (o->local)
			ps_usage_error("--local is a version 2 command (use "
				       "--unknown with -1)");
		if (ps_tlv_len > 0 || ps_have_ssl || o->crc)
			ps_usage_error("--tlv and --crc32c need version 2");
		if (o->draft)
			ps_usage_error("--draft is a version 2 layout");
	} else if (o->unknown) {
		ps_usage_error("--unknown is a version 1 header (use --local "
			       "with -2)");
	}
	if (o->unknown && (o->have_src || o->have_dst))
		ps_usage_error("--unknown sends no addresses: drop --src and "
			       "--dst");
	if (o->draft && (ps_tlv_len > 0 || ps_have_ssl || o->crc))
		ps_usage_error("--draft headers have no TLVs: drop --tlv and "
			       "--crc32c");
	if (o->have_src && o->have_dst &&
	    o->src.sa.sa_family != o->dst.sa.sa_family)
		ps_usage_error("--src and --dst must be of one family (both "
			       "IPv4 or both IPv6)");
	if (o->delay_ms >= 0 && o->split == 0)
		ps_usage_error("--delay needs --split");
	if (o->udp && o->split > 0)
		ps_usage_error("--split is for TCP: a UDP header travels in "
			       "each datagram whole");
}

/* ===== Time ===== */

static long long
ps_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Milliseconds left until deadline (never negative), for poll(). */
static int
ps_left(long long deadline)
{
	long long left = deadline - ps_now_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

static void
ps_sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ===== Connecting ===== */

/* Why each address of HOST failed, printed only when all of them did. */
static char ps_failures[2048];

static void ps_note_failure(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static void
ps_note_failure(const char *fmt, ...)
{
	size_t n = strlen(ps_failures);
	va_list ap;

	if (n + 1 >= sizeof(ps_failures))
		return;
	va_start(ap, fmt);
	vsnprintf(ps_failures + n, sizeof(ps_failures) - n, fmt, ap);
	va_end(ap);
	n = strlen(ps_failures);
	if (n + 1 < sizeof(ps_failures))
		strcpy(ps_failures + n, "\n");
}

/* Connect fd to ai within timeout_ms; 0, or -1 with errno set. */
static int
ps_connect_one(int fd, const struct addrinfo *ai, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len;
	int rc, err;

	if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		return -1;
	do {
		rc = poll(&pfd, 1, timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	err = 0;
	len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -1;
	errno = err;
	return err == 0 ? 0 : -1;
}

/*
 * A socket of type stype connected to host:port, from o->bind when
 * given, within o->timeout_ms per address, trying each address of HOST
 * in turn.  Non-blocking on return.  Exits with PS_EXIT_CONN (after
 * saying why for each address) when none works.
 */
static int
ps_connect(const struct ps_opts *o, int stype)
{
	struct addrinfo hints, *res, *ai;
	char where[INET6_ADDRSTRLEN + 8], b[INET6_ADDRSTRLEN + 8];
	union pp_sockaddr peer;
	int fd = -1, rc, err, one = 1;

	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = stype;
	hints.ai_family = o->have_bind ? o->bind.sa.sa_family : AF_UNSPEC;
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		ps_msg("%s port %s: %s%s", o->host, o->port,
		       rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc),
		       o->have_bind ? " (looking for an address in the family "
				      "of --bind)"
				    : "");
		exit(PS_EXIT_CONN);
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		memset(&peer, 0, sizeof(peer));
		memcpy(&peer, ai->ai_addr, ai->ai_addrlen);
		ps_fmt_addr(&peer, where, sizeof(where));
		fd = socket(ai->ai_family,
			    ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			ps_note_failure("  socket for %s: %s", where,
					strerror(errno));
			continue;
		}
		if (o->have_bind) {
			setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one,
				   sizeof(one));
			if (bind(fd, &o->bind.sa, ps_salen(&o->bind)) != 0) {
				ps_msg("--bind %s: %s",
				       ps_fmt_addr(&o->bind, b, sizeof(b)),
				       strerror(errno));
				exit(PS_EXIT_CONN);
			}
		}
		if (stype == SOCK_STREAM)
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				   sizeof(one));
		if (ps_connect_one(fd, ai, o->timeout_ms) == 0)
			break;
		err = errno;
		ps_note_failure("  connect to %s: %s%s", where, strerror(err),
				err == ECONNREFUSED ? " (nothing listens there)"
				: err == ETIMEDOUT ? " (no answer: a firewall?)"
						   : "");
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr, "ppsend: cannot connect to %s port %s:\n%s",
			o->host, o->port, ps_failures);
		exit(PS_EXIT_CONN);
	}
	return fd;
}

/* ===== The header ===== */

/* s, if given, else the real address; a usage error on a family clash. */
static void
ps_fill_addrs(const struct ps_opts *o, int fd, struct pp_header *h)
{
	union pp_sockaddr real_src, real_dst;
	socklen_t len;
	char b[INET6_ADDRSTRLEN + 8];

	memset(&real_src, 0, sizeof(real_src));
	memset(&real_dst, 0, sizeof(real_dst));
	len = sizeof(real_src);
	getsockname(fd, &real_src.sa, &len);
	len = sizeof(real_dst);
	getpeername(fd, &real_dst.sa, &len);
	h->src = o->have_src ? o->src : real_src;
	h->dst = o->have_dst ? o->dst : real_dst;
	if (h->src.sa.sa_family != h->dst.sa.sa_family) {
		ps_msg("the header's addresses must be of one family: "
		       "%s %s is %s but the real %s %s is not; give %s too",
		       o->have_src ? "--src" : "--dst",
		       ps_fmt_addr(o->have_src ? &h->src : &h->dst, b,
				   sizeof(b)),
		       (o->have_src ? h->src : h->dst).sa.sa_family == AF_INET
			       ? "IPv4"
			       : "IPv6",
		       o->have_src ? "destination" : "source",
		       ps_fmt_addr(o->have_src ? &h->dst : &h->src, b,
				   sizeof(b)),
		       o->have_src ? "--dst" : "--src");
		exit(EX_USAGE);
	}
	h->family =
		h->src.sa.sa_family == AF_INET6 ? PP_FAM_INET6 : PP_FAM_INET;
	h->srclen = ps_salen(&h->src);
	h->dstlen = ps_salen(&h->dst);
}

/* An address as SPP writes it: 16 bytes, IPv4 as ::ffff:a.b.c.d; and
 * its port. */
static void
ps_spp_put(const union pp_sockaddr *a, uint8_t *addr, uint8_t *port)
{
	if (a->sa.sa_family == AF_INET) {
		memset(addr, 0, 10);
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &a->sin.sin_addr, 4);
		memcpy(port, &a->sin.sin_port, 2);
	} else {
		memcpy(addr, &a->sin6.sin6_addr, 16);
		memcpy(port, &a->sin6.sin6_port, 2);
	}
}

/* Build the header for o on connected fd into ps_hdr. */
static void
ps_make_header(const struct ps_opts *o, int fd)
{
	static uint8_t area[PS_TLV_AREA_MAX];
	struct pp_header h;

	memset(&h, 0, sizeof(h));
	if (o->spp) {
		ps_fill_addrs(o, fd, &h);
		ps_hdr[0] = PP_SPP_MAGIC >> 8;
		ps_hdr[1] = PP_SPP_MAGIC & 0xff;
		ps_spp_put(&h.src, ps_hdr + 2, ps_hdr + 34);
		ps_spp_put(&h.dst, ps_hdr + 18, ps_hdr + 36);
		ps_hdr_len = PP_SPP_LEN;
		return;
	}
	h.version = (uint8_t)o->version;
	h.draft = o->draft;
	h.command = o->local ? PP_CMD_LOCAL : PP_CMD_PROXY;
	h.transport = o->udp ? PP_TP_DGRAM : PP_TP_STREAM;
	if (o->unknown) {
		h.family = PP_FAM_UNSPEC;
		h.transport = PP_TP_UNSPEC;
	} else if (o->local && !o->have_src && !o->have_dst) {
		/* What HAProxy's health checks send: no addresses. */
		h.family = PP_FAM_UNSPEC;
		h.transport = PP_TP_UNSPEC;
	} else {
		ps_fill_addrs(o, fd, &h);
	}
	if (o->version == 1) {
		ps_hdr_len = pp_encode_v1(&h, (char *)ps_hdr, sizeof(ps_hdr));
	} else {
		h.tlv_len = ps_build_tlvs(area);
		h.tlv = area;
		ps_hdr_len = pp_encode_v2(&h, o->crc, ps_hdr, sizeof(ps_hdr));
	}
	if (ps_hdr_len == 0 && o->version == 2) {
		size_t block = h.family == PP_FAM_INET6  ? 36
			       : h.family == PP_FAM_INET ? 12
							 : 0;

		ps_msg("the addresses (%zu bytes) and TLVs (%zu bytes%s) "
		       "exceed the 65535 bytes a v2 header can carry",
		       block, h.tlv_len + (o->crc ? 7 : 0),
		       o->crc ? " with the CRC32C" : "");
		exit(EX_USAGE);
	}
	if (ps_hdr_len == 0) {
		ps_msg("cannot encode this header");
		exit(EX_USAGE);
	}
	if (o->split > 0 && (size_t)o->split >= ps_hdr_len)
		ps_usage_error("--split %ld: the header is only %zu bytes "
			       "long",
			       o->split, ps_hdr_len);
}

/* Print p[0..n) like hexdump -C. */
static void
ps_hexdump(const uint8_t *p, size_t n)
{
	char hex[16 * 3 + 2], asc[17];
	size_t off, i, k;

	for (off = 0; off < n; off += 16) {
		k = 0;
		for (i = 0; i < 16; i++) {
			if (off + i < n) {
				snprintf(hex + k, sizeof(hex) - k, "%02x ",
					 p[off + i]);
				asc[i] = p[off + i] >= 0x20 && p[off + i] < 0x7f
						 ? (char)p[off + i]
						 : '.';
			} else {
				snprintf(hex + k, sizeof(hex) - k, "   ");
				asc[i] = '\0';
			}
			k += 3;
			if (i == 7)
				hex[k++] = ' ';
		}
		hex[k] = '\0';
		asc[16] = '\0';
		fprintf(stderr, "%08zx  %s |%s|\n", off, hex, asc);
	}
	fprintf(stderr, "%08zx\n", n);
}

static const char *
ps_version_name(const struct ps_opts *o)
{
	if (o->version == 1)
		return "v1";
	return o->draft ? "v2 (2012 draft)" : "v2";
}

static void
ps_describe(const struct ps_opts *o, int fd)
{
	union pp_sockaddr a, b;
	socklen_t len;
	char sa[INET6_ADDRSTRLEN + 8], sb[INET6_ADDRSTRLEN + 8];

	memset(&a, 0, sizeof(a));
	memset(&b, 0, sizeof(b));
	len = sizeof(a);
	getsockname(fd, &a.sa, &len);
	len = sizeof(b);
	getpeername(fd, &b.sa, &len);
	fprintf(stderr, "ppsend: %s %s -> %s, %zu-byte %s %s header%s:\n",
		o->udp ? "udp" : "tcp", ps_fmt_addr(&a, sa, sizeof(sa)),
		ps_fmt_addr(&b, sb, sizeof(sb)), ps_hdr_len,
		o->spp ? "Simple Proxy Protocol" : "PROXY",
		o->spp ? "(SPP)" : ps_version_name(o),
		o->split > 0 ? " in two pieces" : "");
	ps_hexdump(ps_hdr, ps_hdr_len);
}

/* ===== I/O ===== */

static bool
ps_is_reset(int err)
{
	return err == ECONNRESET || err == EPIPE || err == ECONNABORTED;
}

/* Report a reset; received says whether the server had sent anything. */
static void ps_die_reset(size_t received) __attribute__((noreturn));

static void
ps_die_reset(size_t received)
{
	if (received == 0) {
		ps_msg("connection reset by peer: the server (or ppshim in "
		       "front of it) refused the header");
		ps_msg("is this source trusted there (PP_ALLOW), and does it "
		       "accept this header version (PP_VERSIONS)?");
	} else {
		ps_msg("connection reset by peer after %zu bytes from the "
		       "server",
		       received);
	}
	exit(PS_EXIT_CONN);
}

/* Send the header bytes p[0..n) on non-blocking fd; exits on errors. */
static void
ps_send_all(int fd, const uint8_t *p, size_t n)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	ssize_t w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				poll(&pfd, 1, -1);
				continue;
			}
			if (ps_is_reset(errno))
				ps_die_reset(0);
			ps_msg("send: %s", strerror(errno));
			exit(PS_EXIT_CONN);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* Write to stdout whole; false when stdout went away. */
static bool
ps_write_out(const uint8_t *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(STDOUT_FILENO, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN) {
				struct pollfd pfd = { STDOUT_FILENO, POLLOUT,
						      0 };

				poll(&pfd, 1, -1);
				continue;
			}
			if (errno != EPIPE)
				ps_msg("stdout: %s", strerror(errno));
			return false;
		}
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static void
ps_send_header(const struct ps_opts *o, int fd)
{
	if (o->hexdump)
		ps_describe(o, fd);
	if (o->split > 0) {
		ps_send_all(fd, ps_hdr, (size_t)o->split);
		if (o->delay_ms > 0)
			ps_sleep_ms(o->delay_ms);
		ps_send_all(fd, ps_hdr + o->split,
			    ps_hdr_len - (size_t)o->split);
	} else {
		ps_send_all(fd, ps_hdr, ps_hdr_len);
	}
}

/* Whether data starts with the header we sent (n >= ps_hdr_len). */
static bool
ps_echoed(const uint8_t *data, size_t n)
{
	return n >= ps_hdr_len && memcmp(data, ps_hdr, ps_hdr_len) == 0;
}

static void
ps_echo_note(void)
{
	ps_msg("the server sent the PROXY header back: this port is not "
	       "PROXY-only (ppshim not loaded into the server, or PP_PORTS "
	       "does not name this port)");
}

/*
 * Match the first line (line[0..n), without its line ending) against
 * --expect, print it and exit.
 */
static void ps_match_exit(const struct ps_opts *o, char *line, size_t n)
	__attribute__((noreturn));

static void
ps_match_exit(const struct ps_opts *o, char *line, size_t n)
{
	int rc;

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	line[n] = '\0';
	rc = regexec(&o->re, line, 0, NULL, 0);
	ps_write_out((const uint8_t *)line, n);
	ps_write_out((const uint8_t *)"\n", 1);
	if (rc == 0)
		exit(PS_EXIT_OK);
	ps_msg("the first line does not match '%s'", o->expect);
	exit(PS_EXIT_NOMATCH);
}

/* What the server sent so far, for --expect and the echo check. */
struct ps_rx {
	char line[PS_LINE_MAX + 1]; /* the first PS_LINE_MAX bytes */
	size_t line_len;
	uint8_t first[PP_V2_MAX]; /* the first ps_hdr_len bytes */
	size_t received;          /* bytes in all */
	bool echo_checked;
};

static void
ps_rx_add(struct ps_rx *rx, const uint8_t *p, size_t n)
{
	size_t k;

	if (rx->received < ps_hdr_len) {
		k = ps_hdr_len - rx->received;
		memcpy(rx->first + rx->received, p, k < n ? k : n);
	}
	if (rx->line_len < PS_LINE_MAX) {
		k = PS_LINE_MAX - rx->line_len;
		memcpy(rx->line + rx->line_len, p, k < n ? k : n);
		rx->line_len += k < n ? k : n;
	}
	rx->received += n;
}

/* Whether the bytes so far could still be our header coming back. */
static bool
ps_rx_maybe_echo(const struct ps_rx *rx)
{
	return rx->received < ps_hdr_len &&
	       memcmp(rx->first, ps_hdr, rx->received) == 0;
}

/*
 * --expect: decide on the first line when it is complete (or final: the
 * server closed, or the time is up).  Returns only when undecided.
 */
static void
ps_rx_decide(const struct ps_opts *o, struct ps_rx *rx, bool final)
{
	char *nl;

	if (ps_echoed(rx->first, rx->received)) {
		ps_echo_note();
		exit(PS_EXIT_NOMATCH);
	}
	if (!final && ps_rx_maybe_echo(rx))
		return;
	nl = memchr(rx->line, '\n', rx->line_len);
	if (nl != NULL)
		ps_match_exit(o, rx->line, (size_t)(nl - rx->line));
	if (rx->line_len == PS_LINE_MAX || (final && rx->line_len > 0))
		ps_match_exit(o, rx->line, rx->line_len);
}

/*
 * The TCP exchange after the header: stdin to the socket (half-closed at
 * stdin's end), the socket to stdout; with --expect, only the first line
 * counts and the socket is never half-closed.
 */
static int
ps_relay_tcp(const struct ps_opts *o, int fd)
{
	static struct ps_rx rx;
	uint8_t *buf = ps_io + PS_IO_SIZE / 2;
	size_t out_len = 0, out_off = 0;
	bool in_open = true, shut = false;
	long long deadline = -1;
	struct pollfd pfd[2];
	ssize_t n;
	int rc;

	if (o->have_expect)
		deadline = ps_now_ms() + o->timeout_ms;
	for (;;) {
		/* Half-close at the end of stdin, as nc -N does; but not for
		 * --expect: a proxy may abort a client that closes before the
		 * server has spoken (HAProxy does when its server connection
		 * is not up yet). */
		if (!in_open && out_len == 0 && !shut && !o->have_expect) {
			shutdown(fd, SHUT_WR);
			shut = true;
			if (o->timeout_set)
				deadline = ps_now_ms() + o->timeout_ms;
		}
		pfd[0].fd = in_open && out_len == 0 ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN | (out_len > 0 ? POLLOUT : 0);
		rc = poll(pfd, 2, deadline < 0 ? -1 : ps_left(deadline));
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			ps_msg("poll: %s", strerror(errno));
			return PS_EXIT_CONN;
		}
		if (rc == 0) {
			if (!o->have_expect)
				return PS_EXIT_OK;
			ps_rx_decide(o, &rx, true);
			ps_msg("no line from the server within %d ms: does it "
			       "wait for the client to speak first?",
			       o->timeout_ms);
			return PS_EXIT_NOMATCH;
		}
		if (pfd[0].revents & POLLNVAL) {
			in_open = false; /* no stdin at all */
		} else if (pfd[0].revents != 0) {
			n = read(STDIN_FILENO, ps_io, PS_IO_SIZE / 2);
			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				ps_msg("stdin: %s", strerror(errno));
				in_open = false;
			} else if (n == 0) {
				in_open = false;
			} else if (n > 0) {
				out_len = (size_t)n;
				out_off = 0;
			}
		}
		if (out_len > 0 && (pfd[1].revents & (POLLOUT | POLLERR))) {
			n = send(fd, ps_io + out_off, out_len, MSG_NOSIGNAL);
			if (n < 0 && ps_is_reset(errno))
				ps_die_reset(rx.received);
			if (n < 0 && errno != EAGAIN && errno != EINTR) {
				ps_msg("send: %s", strerror(errno));
				return PS_EXIT_CONN;
			}
			if (n > 0) {
				out_off += (size_t)n;
				out_len -= (size_t)n;
			}
		}
		if (!(pfd[1].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(fd, buf, PS_IO_SIZE / 2, 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (ps_is_reset(errno))
				ps_die_reset(rx.received);
			ps_msg("recv: %s", strerror(errno));
			return PS_EXIT_CONN;
		}
		ps_rx_add(&rx, buf, (size_t)n);
		if (o->have_expect) {
			ps_rx_decide(o, &rx, n == 0);
			if (n > 0)
				continue;
			ps_msg("the server closed the connection without "
			       "sending a line (a receiver that rejects the "
			       "header may close this way)");
			return PS_EXIT_CONN;
		}
		if (!rx.echo_checked && rx.received >= ps_hdr_len) {
			rx.echo_checked = true;
			if (ps_echoed(rx.first, rx.received))
				ps_echo_note();
		}
		if (n == 0)
			return PS_EXIT_OK;
		if (!ps_write_out(buf, (size_t)n))
			return PS_EXIT_OK;
	}
}

/*
 * A reply on an SPP exchange: when it begins with an SPP header, say
 * what the header holds on stderr and move the payload to the front of
 * p.  Returns the payload's length (n when there is no header).
 */
static size_t
ps_spp_reply(uint8_t *p, size_t n)
{
	union pp_sockaddr c, x;
	struct pp_spp h;
	char sc[INET6_ADDRSTRLEN + 8], sx[INET6_ADDRSTRLEN + 8];

	if (!pp_parse_spp(p, n, &h)) {
		fprintf(stderr,
			"ppsend: reply without an SPP header (%zu "
			"bytes)\n",
			n);
		return n;
	}
	memset(&c, 0, sizeof(c));
	memset(&x, 0, sizeof(x));
	(void)pp_spp_inet(h.client, h.cport, &c.sa);
	(void)pp_spp_inet(h.proxy, h.pport, &x.sa);
	fprintf(stderr, "ppsend: reply SPP header: client %s proxy %s\n",
		ps_fmt_addr(&c, sc, sizeof(sc)),
		ps_fmt_addr(&x, sx, sizeof(sx)));
	memmove(p, p + PP_SPP_LEN, n - PP_SPP_LEN);
	return n - PP_SPP_LEN;
}

/*
 * The UDP exchange: each read of stdin becomes one datagram behind the
 * header (one datagram with the header alone when stdin is empty);
 * replies go to stdout.  Ends --timeout after the last activity once
 * stdin is done.
 */
static int
ps_relay_udp(const struct ps_opts *o, int fd)
{
	static uint8_t dgram[PS_UDP_MAX];
	size_t room = PS_UDP_MAX > ps_hdr_len ? PS_UDP_MAX - ps_hdr_len : 0;
	bool in_open = true, sent = false;
	long long deadline = -1;
	unsigned long replies = 0;
	struct pollfd pfd[2];
	ssize_t n;
	int rc;

	if (room == 0) {
		ps_msg("the header (%zu bytes) leaves no room in a datagram",
		       ps_hdr_len);
		return EX_USAGE;
	}
	memcpy(dgram, ps_hdr, ps_hdr_len);
	if (o->hexdump)
		ps_describe(o, fd);
	for (;;) {
		pfd[0].fd = in_open ? STDIN_FILENO : -1;
		pfd[0].events = POLLIN;
		pfd[1].fd = fd;
		pfd[1].events = POLLIN;
		rc = poll(pfd, 2, deadline < 0 ? -1 : ps_left(deadline));
		if (rc < 0) {
			if (errno == EINTR)
				continue;
			ps_msg("poll: %s", strerror(errno));
			return PS_EXIT_CONN;
		}
		if (rc == 0) {
			if (replies > 0)
				return o->have_expect ? PS_EXIT_NOMATCH
						      : PS_EXIT_OK;
			ps_msg("no reply within %d ms: the datagram was "
			       "dropped (a source not in PP_ALLOW, or a bad "
			       "header), or nothing answers there",
			       o->timeout_ms);
			return o->have_expect ? PS_EXIT_NOMATCH : PS_EXIT_CONN;
		}
		if (pfd[0].revents != 0) {
			n = read(STDIN_FILENO, dgram + ps_hdr_len, room);
			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				ps_msg("stdin: %s", strerror(errno));
				n = 0;
			}
			if (n == 0) {
				in_open = false;
				deadline = ps_now_ms() + o->timeout_ms;
			}
			if (n > 0 || (n == 0 && !sent)) {
				if (send(fd, dgram, ps_hdr_len + (size_t)n, 0) <
				    0) {
					if (errno == ECONNREFUSED)
						goto unreachable;
					ps_msg("send: %s", strerror(errno));
					return PS_EXIT_CONN;
				}
				sent = true;
				if (!in_open)
					deadline = ps_now_ms() + o->timeout_ms;
			}
		}
		if (!(pfd[1].revents & (POLLIN | POLLERR)))
			continue;
		n = recv(fd, ps_io, sizeof(ps_io), 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			if (errno == ECONNREFUSED)
				goto unreachable;
			ps_msg("recv: %s", strerror(errno));
			return PS_EXIT_CONN;
		}
		replies++;
		if (!in_open)
			deadline = ps_now_ms() + o->timeout_ms;
		if (o->spp)
			n = (ssize_t)ps_spp_reply(ps_io, (size_t)n);
		if (ps_echoed(ps_io, (size_t)n)) {
			ps_echo_note();
			if (o->have_expect)
				return PS_EXIT_NOMATCH;
		}
		if (o->have_expect) {
			char *line = (char *)ps_io;
			size_t len = 0;

			while (len < (size_t)n && len < PS_LINE_MAX &&
			       ps_io[len] != '\n')
				len++;
			ps_match_exit(o, line, len);
		}
		if (!ps_write_out(ps_io, (size_t)n))
			return PS_EXIT_OK;
	}
unreachable:
	ps_msg("port unreachable: nothing listens on UDP %s port %s", o->host,
	       o->port);
	return PS_EXIT_CONN;
}

int
main(int argc, char **argv)
{
	struct ps_opts o;
	int fd, rc;

	signal(SIGPIPE, SIG_IGN);
	ps_parse_opts(argc, argv, &o);
	fd = ps_connect(&o, o.udp ? SOCK_DGRAM : SOCK_STREAM);
	ps_make_header(&o, fd);
	if (o.udp) {
		rc = ps_relay_udp(&o, fd);
	} else {
		ps_send_header(&o, fd);
		rc = ps_relay_tcp(&o, fd);
	}
	/* o dies with main's frame: LeakSanitizer would report the regex. */
	if (o.have_expect)
		regfree(&o.re);
	return rc;
}
