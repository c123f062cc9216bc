/*
 * udp_judge.c - what a datagram on a PROXY-only socket means
 * (udp_judge.h).
 *
 * Each datagram gets a verdict from its real source:
 *   - PP_ALLOW: it must begin with a v2 header (the final layout, or the
 *     2012 draft with PP_V2_DRAFT=1; never v1: text over UDP is not a
 *     thing any sender does).  PROXY with INET or INET6 and transport
 *     DGRAM or STREAM: the header is stripped and the advertised source
 *     reported (an IPv4 client on an IPv6 socket as ::ffff:a.b.c.d; an
 *     IPv6 client on an IPv4 socket is dropped).  LOCAL, the UNSPEC or
 *     UNIX family, or the UNSPEC transport: stripped, real source
 *     reported (dnsdist's health checks are LOCAL).  No header, an
 *     invalid one, a CRC32C mismatch: dropped.
 *   - PP_DIRECT only: passed untouched with the real source.
 *   - anyone else: dropped.
 * A socket whose PP_PORTS entry is PORT/udp+spp (the entry's spp flag)
 * takes the 38-byte SPP header of Spectrum and EdgeOne from PP_ALLOW
 * instead (pp_judge_spp): shorter datagrams, a wrong magic and v2 headers
 * are dropped, the client reported as for v2.  Replies follow the same
 * routes (route.c), with the client's SPP header in front
 * (udp_reply.c).
 */
#include "config.h"

#include <string.h>

#include "pp_hot.h"
#include "shim.h"
#include "pp_sockaddr.h"
#include "udp_judge.h"
#include "trust.h"

/* adv from a client address (16 bytes: IPv4 mapped) and port, in the
 * form a socket of family fam reports; false when fam cannot hold it. */
static bool
pp_advert_set(struct pp_advert *adv, int fam)
{
	return pp_sa_from_norm(adv->norm, adv->port, fam, &adv->addr,
			       &adv->len);
}

/*
 * pp_judge() for a datagram from a PP_ALLOW source on an SPP socket: the
 * 38-byte header or nothing.
 */
static enum pp_verdict
pp_judge_spp(int family, const uint8_t *d, size_t n, size_t *skip,
	     struct pp_advert *adv, const char **why)
{
	struct pp_spp h;

	if (!pp_parse_spp(d, n, &h)) {
		*why = n < PP_SPP_LEN ? "shorter than an SPP header"
				      : "no SPP header";
		return PP_DG_DROP;
	}
	*skip = PP_SPP_LEN;
	/* SPP writes an IPv4 client IPv4-mapped: already the table's form. */
	memcpy(adv->norm, h.client, 16);
	adv->port = h.cport;
	if (pp_advert_set(adv, family))
		return PP_DG_ADV;
	*why = "IPv6 client on an IPv4 socket";
	return PP_DG_DROP;
}

/*
 * What the datagram path reads of pp_cfg.versions, copied on first use
 * beside the rest of its data (pp_hot.h): the configuration's page would
 * be one more per datagram.  The configuration no longer changes by
 * then (shim.h), so threads that race to copy it write the same value.
 */
#define PP_DG_COPIED 0x80000000u
static PP_HOT_DATA _Atomic unsigned pp_dg_versions;

static inline unsigned
pp_dg_flags(void)
{
	unsigned v =
		atomic_load_explicit(&pp_dg_versions, memory_order_relaxed);

	if (__builtin_expect(v == 0, 0)) {
		v = (pp_cfg.versions & (PP_ACCEPT_V2 | PP_ACCEPT_DRAFT)) |
		    PP_DG_COPIED;
		atomic_store_explicit(&pp_dg_versions, v, memory_order_relaxed);
	}
	return v & ~PP_DG_COPIED;
}

PP_HOT_DGRAM enum pp_verdict
pp_judge(int family, bool spp, const union pp_sockaddr *src, socklen_t srclen,
	 const uint8_t *d, size_t n, size_t *skip, struct pp_advert *adv,
	 const char **why)
{
	unsigned flags = pp_dg_flags();
	struct pp_v2_brief b;
	struct pp_header h;
	enum pp_trust trust;
	enum pp_err err;

	*skip = 0;
	trust = pp_trust(&src->sa, srclen);
	if (trust != PP_TRUST_PROXY) {
		if (trust == PP_TRUST_DIRECT)
			return PP_DG_REAL;
		*why = "source not in PP_ALLOW or PP_DIRECT";
		return PP_DG_DROP;
	}
	if (spp)
		return pp_judge_spp(family, d, n, skip, adv, why);
	/* What nearly every datagram carries, without the full parse: the
	 * client's bytes go straight into both forms. */
	if (pp_parse_v2_brief(d, n, flags, &b)) {
		*skip = b.len;
		if (b.transport == PP_TP_UNSPEC)
			return PP_DG_REAL;
		if (b.family == PP_FAM_INET)
			pp_sa_map4(adv->norm, b.src);
		else
			memcpy(adv->norm, b.src, 16);
		adv->port = b.sport;
		if (pp_advert_set(adv, family))
			return PP_DG_ADV;
		*why = "IPv6 client on an IPv4 socket";
		return PP_DG_DROP;
	}
	if (pp_parse_buf(d, n, flags, &h, &err, NULL, 0) != PP_DONE) {
		*why = err == PP_E_SIGNATURE ? "no v2 header"
					     : pp_strerror(err);
		return PP_DG_DROP;
	}
	*skip = h.len;
	if (h.command == PP_CMD_LOCAL ||
	    (h.family != PP_FAM_INET && h.family != PP_FAM_INET6) ||
	    h.transport == PP_TP_UNSPEC)
		return PP_DG_REAL;
	if (!pp_sa_norm(&h.src.sa, h.srclen, adv->norm, &adv->port) ||
	    !pp_advert_set(adv, family)) {
		*why = "IPv6 client on an IPv4 socket";
		return PP_DG_DROP;
	}
	return PP_DG_ADV;
}
