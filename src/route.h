/*
 * route.h - the reply routes of datagram clients that arrived through a
 * proxy: "client C came through proxy P on local port L", noted by the
 * receive path (udp.c) and looked up by the send hooks (hook_udp.c).
 */
#ifndef PP_ROUTE_H
#define PP_ROUTE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "fdtab.h"
#include "pp_parse.h"

/* Table entries, and hash chains (a power of two).  Fixed: the table is
 * one mapping, whose pages cost memory only once touched.  A unit test
 * may build route.c with a smaller one. */
#ifndef PP_ROUTE_MAX
#define PP_ROUTE_MAX 65536u
#endif
/* A route unused (no datagram from its client) for longer is ignored. */
#define PP_ROUTE_IDLE_S 120u
/* A thread's "noted this second" fingerprints: 16384, in sets of 8 (one
 * cache line each); PP_RT_FRESH_SZ bytes (pp_rt_fresh_attach). */
#define PP_FRESH_BITS 14
#define PP_FRESH_WAYS 8
#define PP_RT_FRESH_SZ (sizeof(uint64_t) << PP_FRESH_BITS)

#define PP_RKEY_W 5 /* struct pp_rkey in 32-bit words */
#define PP_REAL_W (sizeof(union pp_inaddr) / 4)
#define PP_SPPW_W 5 /* union pp_sppw in 32-bit words */

/* What a route is found by. */
struct pp_rkey {
	uint16_t lport;    /* local port it arrived on (network order) */
	uint16_t aport;    /* advertised client port (network order) */
	uint8_t aaddr[16]; /* advertised client address, IPv4 mapped */
};

union pp_rkeyw {
	struct pp_rkey k;
	uint32_t w[PP_RKEY_W];
};

union pp_realw {
	union pp_inaddr a;
	uint32_t w[PP_REAL_W];
};

/*
 * What a route of a client that arrived by SPP adds to its key, for the
 * header of its replies: the proxy address and port of the header it
 * came with.  on is 0 for a route without SPP (v2): the rest is then
 * never read.  Kept beside the table, touched by SPP routes only.
 */
union pp_sppw {
	struct {
		uint8_t paddr[16]; /* the header's proxy address */
		uint16_t pport;    /* the header's proxy port (network order) */
		uint16_t on;       /* 1: an SPP route */
	} s;
	uint32_t w[PP_SPPW_W];
};

/* A route to note: the caller fills k, family, adv and sw (sw.s.on at
 * least) and then pp_note_prep() the rest. */
struct pp_note {
	union pp_rkeyw k;
	uint16_t family;            /* the receiving socket's */
	const union pp_inaddr *adv; /* the client as the program is told */
	union pp_sppw sw;           /* SPP: the header's proxy */
	union pp_realw rw;
	socklen_t reallen;
	uint32_t now;
	uint32_t moves; /* (route.c) the table's moves when prepared */
	uint64_t mark;  /* the fingerprint (see pp_rt_note), or 0 */
	uint64_t *set;  /* its set in this thread's array, or NULL */
	bool same;      /* the thread's last route said it at pp_last_gen */
	unsigned gen;   /* (route.c) when pp_note_prep looked */
};

/*
 * The clock pp_now_s() calls: libc's clock_gettime, or the vDSO's own
 * entry when the binding of the real functions found it (real.c).  Each
 * datagram reads the clock; straight to the vDSO, that does not walk
 * through libc's wrapper and the dynamic linker's data first, two pages
 * fewer between two system calls (pp_hot.h).
 */
typedef int (*pp_clock_fn)(clockid_t, struct timespec *);
extern pp_clock_fn pp_rt_clock;

/*
 * The seconds clock of the routes (CLOCK_MONOTONIC_COARSE): what the
 * callers pass as now.  A unit test passes its own.
 */
static inline uint32_t
pp_now_s(void)
{
	struct timespec ts;

	(void)pp_rt_clock(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/*
 * Give this thread its fingerprint slots: PP_RT_FRESH_SZ bytes, zeroed,
 * kept as long as the thread runs (udp.c places them in the thread's
 * receive buffer mapping).  Without them every note searches the table.
 */
void pp_rt_fresh_attach(uint64_t *slots);

/*
 * Get the note "client nt->k came through proxy real", at second now,
 * ready, and have the processor fetch the thread's fingerprint set for
 * it while the caller does other work (copying the payload out) before
 * pp_rt_note().  False when real cannot be recorded.
 */
bool pp_note_prep(struct pp_note *nt, const struct sockaddr *real,
		  socklen_t reallen, uint32_t now);

/*
 * Note nt (prepared by pp_note_prep): remember it, newest first, evicting
 * the least recently used route when the table is full.  Takes the
 * table's lock, as section PP_HOLD_ROUTES, only when the table changes;
 * from a signal handler whose thread holds it, notes nothing.
 */
void pp_rt_note(struct pp_note *nt);

/* Is the reply table in use at all (one load, for sendmmsg)? */
bool pp_udp_routing(void);

/* Where a reply to a client goes (pp_rt_lookup). */
struct pp_reply {
	union pp_inaddr via; /* the proxy, in the socket's family */
	socklen_t vialen;
	bool spp;                /* the client arrived by SPP: */
	uint8_t hdr[PP_SPP_LEN]; /* the header the reply carries */
};

/*
 * Is dst an advertised client that a proxy delivered on local port
 * lport (network order) no more than PP_ROUTE_IDLE_S before second now?
 * Then out->via is that proxy's address, in family (the socket's), and
 * true is returned; for a client that arrived by SPP out->spp is set
 * and out->hdr is the header of its last datagram (client and proxy in
 * their places), which the reply carries.  Lock-free unless writers
 * keep changing the bucket.  Never changes errno.
 */
bool pp_rt_lookup(uint16_t family, uint16_t lport, const struct sockaddr *dst,
		  socklen_t dlen, uint32_t now, struct pp_reply *out);

/*
 * pp_rt_lookup() for dst, a destination the program gave for fd, when
 * fd is a PROXY-only datagram socket, at the current second.  Never
 * changes errno.
 */
bool pp_udp_route(int fd, const struct sockaddr *dst, socklen_t dlen,
		  struct pp_reply *out);

#endif /* PP_ROUTE_H */
