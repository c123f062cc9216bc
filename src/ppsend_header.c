/*
 * ppsend_header.c - the header ppsend sends: the TLV area of --tlv (the
 * ssl-* values gathered in one SSL TLV), the PROXY v1 or v2 header from
 * the core encoder (pp_encode_v1(), pp_encode_v2()) or the 38-byte SPP
 * header, the real addresses where --src and --dst are not given, and
 * its --hexdump.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "pp_hex.h"
#include "ppsend_addr.h"
#include "ppsend_header.h"

#define PS_TLV_AREA_MAX 65535 /* the v2 length field */
#define PS_SSL_FLAGS 0x01     /* client connected over TLS */

/* TLVs in the order given; ssl-* values gather in one SSL TLV. */
static uint8_t ps_tlv[PS_TLV_AREA_MAX];
static size_t ps_tlv_len;
static uint8_t ps_ssl[PS_TLV_AREA_MAX];
static size_t ps_ssl_len;
static size_t ps_ssl_at; /* where the SSL TLV goes in ps_tlv */
static bool ps_have_ssl;

/* The header as sent, for --hexdump and to spot a server echoing it. */
uint8_t ps_hdr[PP_V2_MAX];
size_t ps_hdr_len;

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
			hi = pp_hex_digit((unsigned char)v[0]);
			lo = pp_hex_digit((unsigned char)v[1]);
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

/*
 * Add one --tlv TYPE=VALUE (arg) to the TLVs, in the order given; a
 * usage error when it is not one or the TLVs outgrow a v2 header.
 */
void
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

/* Whether any --tlv was given. */
bool
ps_have_tlvs(void)
{
	return ps_tlv_len > 0 || ps_have_ssl;
}

/* s, if given, else the real address; a usage error on a family clash. */
static void
ps_fill_addrs(const struct ps_opts *o, int fd, struct pp_header *h)
{
	union pp_sockaddr real_src, real_dst;
	char given[PS_ADDRSTRLEN], real[PS_ADDRSTRLEN];

	ps_endpoints(fd, &real_src, &real_dst);
	h->src = o->have_src ? o->src : real_src;
	h->dst = o->have_dst ? o->dst : real_dst;
	if (h->src.sa.sa_family != h->dst.sa.sa_family) {
		ps_msg("the header's addresses must be of one family: "
		       "%s %s is %s but the real %s %s is not; give %s too",
		       o->have_src ? "--src" : "--dst",
		       ps_fmt_addr(o->have_src ? &h->src : &h->dst, given,
				   sizeof(given)),
		       (o->have_src ? h->src : h->dst).sa.sa_family == AF_INET
			       ? "IPv4"
			       : "IPv6",
		       o->have_src ? "destination" : "source",
		       ps_fmt_addr(o->have_src ? &h->dst : &h->src, real,
				   sizeof(real)),
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

/*
 * Build the header for o on connected fd (its real addresses stand in
 * for --src and --dst when not given) into ps_hdr and ps_hdr_len.
 * Exits with EX_USAGE when the header cannot carry what o asks for.
 */
void
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

/*
 * --hexdump: print the connection fd and the header ps_hdr, like
 * hexdump -C, to stderr.
 */
void
ps_describe(const struct ps_opts *o, int fd)
{
	union pp_sockaddr a, b;
	char sa[PS_ADDRSTRLEN], sb[PS_ADDRSTRLEN];

	ps_endpoints(fd, &a, &b);
	fprintf(stderr, "ppsend: %s %s -> %s, %zu-byte %s %s header%s:\n",
		o->udp ? "udp" : "tcp", ps_fmt_addr(&a, sa, sizeof(sa)),
		ps_fmt_addr(&b, sb, sizeof(sb)), ps_hdr_len,
		o->spp ? "Simple Proxy Protocol" : "PROXY",
		o->spp ? "(SPP)" : ps_version_name(o),
		o->split > 0 ? " in two pieces" : "");
	ps_hexdump(ps_hdr, ps_hdr_len);
}
