/*
 * udp_judge.h - what a datagram on a PROXY-only socket means, from its
 * real source and its first bytes.
 */
#ifndef PP_UDP_JUDGE_H
#define PP_UDP_JUDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "fdtab.h"
#include "pp_parse.h"
#include "pp_sockaddr.h"

enum pp_verdict {
	PP_DG_DROP, /* not for the program: *why says why */
	PP_DG_REAL, /* the program gets it from its real source */
	PP_DG_ADV,  /* the program gets it from the advertised client */
};

/* The advertised client of a PP_DG_ADV datagram, in both the forms the
 * receive path needs, each written once from the header's bytes. */
struct pp_advert {
	union pp_inaddr addr; /* as the program is told: the socket's family */
	socklen_t len;
	uint8_t norm[16]; /* pp_sa_norm's form: the reply table's key */
	uint16_t port;    /* network order */
};

/*
 * The verdict on datagram d[0..n) (n: the bytes received of it) from
 * src, for a socket of family family (SPP rather than v2 when spp).
 * *skip is set to the header length to strip; for PP_DG_ADV *adv is the
 * advertised client; for PP_DG_DROP *why is a static string.  Reads
 * pp_cfg, which must be ready.
 */
enum pp_verdict pp_judge(int family, bool spp, const union pp_sockaddr *src,
			 socklen_t srclen, const uint8_t *d, size_t n,
			 size_t *skip, struct pp_advert *adv, const char **why);

#endif /* PP_UDP_JUDGE_H */
