/*
 * fuzz_parse.c - libFuzzer target for the PROXY header parser.
 *
 * Input: one byte of options, then the bytes offered to the parser.  The
 * low 3 bits of the options byte are the PP_ACCEPT_* flags, the high 5
 * seed the way the bytes are torn.
 *
 * Every input is parsed three ways (pp_parse_buf(); one push into a
 * full-size buffer; many pushes of seeded sizes into a 232-byte buffer
 * that grows once the total is known) and the results must agree: same
 * status, same error, same header.  A complete header must also survive
 * re-encoding: a v2 INET/INET6 PROXY header re-encodes to the very same
 * bytes, a v1 header to one that parses to the same addresses.  The
 * same bytes are offered to the SPP parser, which must accept exactly
 * the inputs of 38 bytes or more that begin with its magic and point
 * inside them, and whose fields the reply's header (pp_spp_build)
 * writes back as the same 38 bytes.  Any disagreement aborts.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pp_parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PP_FUZZ_ASSERT(c)                                                      \
	do {                                                                   \
		if (!(c))                                                      \
			abort();                                               \
	} while (0)

static uint8_t pp_fuzz_big[PP_V2_MAX], pp_fuzz_big2[PP_V2_MAX];
static uint8_t pp_fuzz_out[PP_V2_MAX];

static bool
pp_fuzz_same_addr(const union pp_sockaddr *a, socklen_t al,
		  const union pp_sockaddr *b, socklen_t bl)
{
	if (al != bl || a->sa.sa_family != b->sa.sa_family)
		return false;
	switch (a->sa.sa_family) {
	case AF_INET:
		return a->sin.sin_port == b->sin.sin_port &&
		       a->sin.sin_addr.s_addr == b->sin.sin_addr.s_addr;
	case AF_INET6:
		return a->sin6.sin6_port == b->sin6.sin6_port &&
		       memcmp(&a->sin6.sin6_addr, &b->sin6.sin6_addr, 16) == 0;
	case AF_UNIX:
		return strcmp(a->sun.sun_path, b->sun.sun_path) == 0;
	default:
		return al == 0;
	}
}

/* The SPP parser on in[0..n): its answer, its pointers and the
 * family pp_spp_inet() gives. */
static void
pp_fuzz_spp(const uint8_t *in, size_t n)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	union pp_sockaddr sa;
	struct pp_spp s;
	uint8_t back[PP_SPP_LEN];
	bool want = n >= PP_SPP_LEN && in[0] == 0x56 && in[1] == 0xEC;

	PP_FUZZ_ASSERT(pp_parse_spp(in, n, &s) == want);
	if (!want)
		return;
	PP_FUZZ_ASSERT(s.client == in + 2 && s.proxy == in + 18);
	PP_FUZZ_ASSERT(memcmp(&s.cport, in + 34, 2) == 0 &&
		       memcmp(&s.pport, in + 36, 2) == 0);
	(void)pp_spp_inet(s.client, s.cport, &sa.sa);
	PP_FUZZ_ASSERT(sa.sa.sa_family ==
		       (memcmp(in + 2, mapped, 12) == 0 ? AF_INET : AF_INET6));
	pp_spp_build(back, s.client, s.cport, s.proxy, s.pport);
	PP_FUZZ_ASSERT(memcmp(back, in, PP_SPP_LEN) == 0);
}

static bool
pp_fuzz_same(const struct pp_header *a, const struct pp_header *b)
{
	return a->version == b->version && a->draft == b->draft &&
	       a->command == b->command && a->family == b->family &&
	       a->transport == b->transport && a->len == b->len &&
	       a->tlv_len == b->tlv_len && a->crc_checked == b->crc_checked &&
	       (a->tlv_len == 0 || memcmp(a->tlv, b->tlv, a->tlv_len) == 0) &&
	       pp_fuzz_same_addr(&a->src, a->srclen, &b->src, b->srclen) &&
	       pp_fuzz_same_addr(&a->dst, a->dstlen, &b->dst, b->dstlen);
}

static void
pp_fuzz_reencode(const struct pp_header *h, const uint8_t *orig)
{
	struct pp_header g;
	enum pp_err err;
	const uint8_t *val;
	size_t n, vlen;
	unsigned t;

	for (t = 0; t < 256; t += 17)
		if (pp_tlv_find(h->tlv, h->tlv_len, (uint8_t)t, &val, &vlen))
			PP_FUZZ_ASSERT(val >= h->tlv &&
				       val + vlen <= h->tlv + h->tlv_len);
	if (pp_tlv_ssl_find(h->tlv, h->tlv_len, PP_SUBTLV_SSL_VERSION, &val,
			    &vlen))
		PP_FUZZ_ASSERT(val > h->tlv &&
			       val + vlen <= h->tlv + h->tlv_len);

	if (h->version == 1) {
		n = pp_encode_v1(h, (char *)pp_fuzz_out, sizeof(pp_fuzz_out));
		PP_FUZZ_ASSERT(n > 0);
		PP_FUZZ_ASSERT(pp_parse_buf(pp_fuzz_out, n, PP_ACCEPT_V1, &g,
					    &err, NULL, 0) == PP_DONE);
		PP_FUZZ_ASSERT(g.family == h->family);
		PP_FUZZ_ASSERT(pp_fuzz_same_addr(&g.src, g.srclen, &h->src,
						 h->srclen));
		PP_FUZZ_ASSERT(pp_fuzz_same_addr(&g.dst, g.dstlen, &h->dst,
						 h->dstlen));
		return;
	}
	if (h->draft || h->command != PP_CMD_PROXY ||
	    (h->family != PP_FAM_INET && h->family != PP_FAM_INET6))
		return;
	/* the TLV area is copied as is (CRC32C included): same bytes */
	n = pp_encode_v2(h, false, pp_fuzz_out, sizeof(pp_fuzz_out));
	PP_FUZZ_ASSERT(n == h->len);
	PP_FUZZ_ASSERT(memcmp(pp_fuzz_out, orig, n) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pp_parser p1, p2;
	struct pp_header h0;
	enum pp_status st0, st1, st2 = PP_NEED_MORE;
	enum pp_err e0;
	uint8_t small[232];
	const uint8_t *in;
	size_t n, u1, off = 0, consumed = 0;
	unsigned flags, seed;
	char reason[96];

	if (size < 1)
		return 0;
	flags = data[0] & 7u;
	seed = data[0] >> 3;
	in = data + 1;
	n = size - 1;

	pp_fuzz_spp(in, n);
	st0 = pp_parse_buf(in, n, flags, &h0, &e0, reason, sizeof(reason));
	PP_FUZZ_ASSERT(strlen(reason) < sizeof(reason));

	pp_parser_init(&p1, pp_fuzz_big, sizeof(pp_fuzz_big), flags);
	st1 = pp_parser_push(&p1, in, n, &u1);

	pp_parser_init(&p2, small, sizeof(small), flags);
	while (off < n) {
		size_t len, used;

		seed = seed * 1103515245u + 12345u;
		len = 1 + (seed >> 16) % (seed & 1 ? 7 : 300);
		if (len > n - off)
			len = n - off;
		if (st2 == PP_NEED_MORE && pp_parser_total(&p2) > p2.cap)
			PP_FUZZ_ASSERT(pp_parser_setbuf(&p2, pp_fuzz_big2,
							sizeof(pp_fuzz_big2)));
		/* offer what fits, as a caller peeking into it would */
		if (st2 == PP_NEED_MORE && len > p2.cap - p2.have)
			len = p2.cap - p2.have;
		st2 = pp_parser_push(&p2, in + off, len, &used);
		if (st2 == PP_INVALID)
			break;
		PP_FUZZ_ASSERT(st2 == PP_DONE || used == len);
		consumed += used;
		off += len;
		if (st2 == PP_DONE) {
			/* done is final */
			PP_FUZZ_ASSERT(pp_parser_push(&p2, in, n, &used) ==
					       PP_DONE &&
				       used == 0);
			break;
		}
	}

	switch (st1) {
	case PP_DONE:
		PP_FUZZ_ASSERT(st0 == PP_DONE && st2 == PP_DONE);
		PP_FUZZ_ASSERT(u1 == p1.hdr.len && consumed == u1);
		PP_FUZZ_ASSERT(u1 <= n && u1 == pp_parser_total(&p1));
		PP_FUZZ_ASSERT(pp_fuzz_same(&h0, &p1.hdr));
		PP_FUZZ_ASSERT(pp_fuzz_same(&h0, &p2.hdr));
		PP_FUZZ_ASSERT(
			h0.tlv_len == 0 ||
			(h0.tlv >= in && h0.tlv + h0.tlv_len == in + u1));
		pp_fuzz_reencode(&h0, in);
		break;
	case PP_INVALID:
		PP_FUZZ_ASSERT(st0 == PP_INVALID && st2 == PP_INVALID);
		PP_FUZZ_ASSERT(e0 == p1.err && p2.err == p1.err);
		PP_FUZZ_ASSERT(p1.reason[0] != '\0');
		break;
	default:
		PP_FUZZ_ASSERT(u1 == n);
		PP_FUZZ_ASSERT(st0 == PP_INVALID && e0 == PP_E_TRUNCATED);
		PP_FUZZ_ASSERT(st2 == PP_NEED_MORE);
		PP_FUZZ_ASSERT(pp_parser_want(&p1) == pp_parser_want(&p2));
		break;
	}
	return 0;
}
