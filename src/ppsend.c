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
 * This file holds the options, the help and main; ppsend_connect.c
 * connects, ppsend_header.c builds the header (the header itself comes
 * from the core encoder), ppsend_relay.c does the exchange and
 * ppsend_addr.c reads and prints addresses.
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

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sysexits.h>

#include "ppsend.h"
#include "ppsend_addr.h"
#include "ppsend_connect.h"
#include "ppsend_header.h"
#include "ppsend_relay.h"

#define PS_DEFAULT_TIMEOUT_MS 5000

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

/* "ppsend: " and the message, as one line on stderr. */
static void __attribute__((format(printf, 1, 0)))
ps_vmsg(const char *fmt, va_list ap)
{
	fputs("ppsend: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

/* The hint at --help after a usage error, and exit with EX_USAGE. */
static void __attribute__((noreturn)) ps_usage_exit(void)
{
	fputs("Try 'ppsend --help' for more information.\n", stderr);
	exit(EX_USAGE);
}

/* Print "ppsend: " and the message, as one line on stderr. */
void
ps_msg(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ps_vmsg(fmt, ap);
	va_end(ap);
}

/*
 * Print the message as ps_msg() does, then the hint at --help, and exit
 * with EX_USAGE.
 */
void
ps_usage_error(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	ps_vmsg(fmt, ap);
	va_end(ap);
	ps_usage_exit();
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

/* --src, --dst, --bind: ADDR[:PORT] into *a, or a usage error. */
static void
ps_addr_opt(const char *opt, const char *arg, bool need_port,
	    union pp_sockaddr *a, bool *have)
{
	if (!ps_parse_addr(arg, need_port, a))
		ps_usage_error("%s '%s': expected %s", opt, arg,
			       need_port
				       ? "ADDR:PORT or [IPV6ADDR]:PORT"
				       : "ADDR, ADDR:PORT or [IPV6ADDR]:PORT");
	*have = true;
}

/*
 * Parse and check the options into *o, HOST and PORT included; exits
 * after --help, --version or a usage error.
 */
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
			ps_addr_opt("--src", optarg, true, &o->src,
				    &o->have_src);
			break;
		case PS_OPT_DST:
			ps_addr_opt("--dst", optarg, true, &o->dst,
				    &o->have_dst);
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
			ps_addr_opt("--bind", optarg, false, &o->bind,
				    &o->have_bind);
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
			ps_usage_exit();
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
		    ps_have_tlvs())
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
		if (ps_have_tlvs() || o->crc)
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
	if (o->draft && (ps_have_tlvs() || o->crc))
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
