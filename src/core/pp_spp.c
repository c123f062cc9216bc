/*
 * pp_spp.c - the Simple Proxy Protocol (SPP) header of Cloudflare
 * Spectrum and Tencent EdgeOne's L4 proxy: 38 bytes before the payload of
 * each proxied UDP datagram.
 *
 *   offset  size  field
 *        0     2  magic, 0x56EC
 *        2    16  client address (IPv6, or ::ffff:a.b.c.d for IPv4)
 *       18    16  proxy address (where the proxy received the datagram)
 *       34     2  client port
 *       36     2  proxy port
 *
 * All in network order.  The header has no version, length or checksum:
 * the magic and the length are all there is to check.  A reply to the
 * proxy carries the same header (pp_spp_build).  Pure functions, no
 * state.
 */
#include "config.h"

#include <string.h>

#include "pp_hot.h"
#include "pp_parse.h"

PP_HOT_DGRAM bool
pp_parse_spp(const void *buf, size_t len, struct pp_spp *s)
{
	const uint8_t *d = buf;

	if (d == NULL || len < PP_SPP_LEN ||
	    ((unsigned)d[0] << 8 | d[1]) != PP_SPP_MAGIC)
		return false;
	s->client = d + 2;
	s->proxy = d + 18;
	memcpy(&s->cport, d + 34, 2);
	memcpy(&s->pport, d + 36, 2);
	return true;
}

socklen_t
pp_spp_inet(const uint8_t *addr, uint16_t port, struct sockaddr *out)
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0,    0,
					    0, 0, 0, 0, 0xff, 0xff };

	if (memcmp(addr, mapped, sizeof(mapped)) == 0)
		return pp_v2_inet(PP_FAM_INET, addr + 12, port, out);
	return pp_v2_inet(PP_FAM_INET6, addr, port, out);
}

PP_HOT_DGRAM void
pp_spp_build(uint8_t *out, const uint8_t *client, uint16_t cport,
	     const uint8_t *proxy, uint16_t pport)
{
	out[0] = PP_SPP_MAGIC >> 8;
	out[1] = PP_SPP_MAGIC & 0xff;
	memcpy(out + 2, client, 16);
	memcpy(out + 18, proxy, 16);
	memcpy(out + 34, &cport, 2);
	memcpy(out + 36, &pport, 2);
}
