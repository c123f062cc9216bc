/*
 * check_route.c - the reply routes of datagram clients (route.c), built
 * with a table of PP_ROUTE_MAX = 64 entries: a note found by a lookup,
 * one client through two proxies, a re-note that refreshes, expiry by
 * the clock the caller passes, least recently used eviction, the
 * thread's fingerprints that spare a repeated note any write, lookups
 * in a forked child while another thread notes, and threads noting and
 * looking up at once, none ever finding a route that was not noted.
 * Routes of clients that arrived by SPP keep the header's proxy fields
 * and give the reply's header back; a repeated SPP note writes nothing,
 * a changed one does, and a racing reader never sees one route's header
 * with another's proxy.
 */
#include "config.h"

#include <check.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/wait.h>

#include "pp_sockaddr.h"
#include "route.h"
#include "suite.h"

_Static_assert(PP_ROUTE_MAX == 64, "built with a small table");

#define T0 1000u /* the tests' clock starts here */
#define LPORT 5000

static struct sockaddr_in
v4(uint32_t ip, uint16_t port)
{
	struct sockaddr_in a;

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(ip);
	a.sin_port = htons(port);
	return a;
}

/* Client n (198.18.x.y:1024+n) and its proxy v (10.v.x.y:20000+4n+v):
 * no two share an address or a port. */
static struct sockaddr_in
client(uint32_t n)
{
	return v4(0xc6120000u + n, (uint16_t)(1024 + n));
}

static struct sockaddr_in
proxy(uint32_t n, uint32_t v)
{
	return v4(0x0a000000u | v << 16 | n, (uint16_t)(20000 + 4 * n + v));
}

/* The SPP fields of client n's header through proxy v: proxy address
 * 2001:db8::n:v, port 27000 + v. */
static union pp_sppw
spp_fields(uint32_t n, uint32_t v)
{
	union pp_sppw sw;

	memset(&sw, 0, sizeof(sw));
	sw.s.paddr[0] = 0x20;
	sw.s.paddr[1] = 0x01;
	sw.s.paddr[2] = 0x0d;
	sw.s.paddr[3] = 0xb8;
	sw.s.paddr[12] = (uint8_t)(n >> 8);
	sw.s.paddr[13] = (uint8_t)n;
	sw.s.paddr[15] = (uint8_t)v;
	sw.s.pport = htons((uint16_t)(27000 + v));
	sw.s.on = 1;
	return sw;
}

/* nt prepared (pp_note_prep) for note_raw() below, adv its client as
 * the program is told. */
static bool
prep_raw(struct pp_note *nt, union pp_inaddr *adv, uint16_t lport,
	 struct sockaddr_in c, const struct sockaddr *p, socklen_t plen,
	 uint32_t now, const union pp_sppw *sw)
{
	memset(nt, 0, sizeof(*nt));
	adv->sin = c;
	if (!pp_sa_norm(&adv->sa, sizeof(c), nt->k.k.aaddr, &nt->k.k.aport))
		return false;
	nt->k.k.lport = htons(lport);
	nt->family = AF_INET;
	nt->adv = adv;
	if (sw != NULL)
		nt->sw = *sw;
	return pp_note_prep(nt, p, plen, now);
}

/* "client c came through proxy p on local port lport", at second now,
 * with an SPP header's fields sw (NULL: a v2 header).  No Check call:
 * also for threads whose process forks (a child would inherit Check's
 * lock held), so false rather than a failed assertion. */
static bool
note_raw(uint16_t lport, struct sockaddr_in c, const struct sockaddr *p,
	 socklen_t plen, uint32_t now, const union pp_sppw *sw)
{
	union pp_inaddr adv;
	struct pp_note nt;

	if (!prep_raw(&nt, &adv, lport, c, p, plen, now, sw))
		return false;
	pp_rt_note(&nt);
	return true;
}

static void
note_spp_at(uint16_t lport, struct sockaddr_in c, const struct sockaddr *p,
	    socklen_t plen, uint32_t now, const union pp_sppw *sw)
{
	ck_assert(note_raw(lport, c, p, plen, now, sw));
}

static void
note_at(uint16_t lport, struct sockaddr_in c, const struct sockaddr *p,
	socklen_t plen, uint32_t now)
{
	note_spp_at(lport, c, p, plen, now, NULL);
}

static void
note_spp(struct sockaddr_in c, struct sockaddr_in p, uint32_t now,
	 union pp_sppw sw)
{
	note_spp_at(LPORT, c, (const struct sockaddr *)&p, sizeof(p), now, &sw);
}

/* Is h the SPP header of client c through the proxy fields sw? */
static bool
spp_hdr_is(const uint8_t *h, struct sockaddr_in c, const union pp_sppw *sw)
{
	uint8_t want[PP_SPP_LEN], mapped[16];

	memset(mapped, 0, 10);
	mapped[10] = mapped[11] = 0xff;
	memcpy(mapped + 12, &c.sin_addr, 4);
	pp_spp_build(want, mapped, c.sin_port, sw->s.paddr, sw->s.pport);
	return memcmp(h, want, PP_SPP_LEN) == 0;
}

static void
note(struct sockaddr_in c, struct sockaddr_in p, uint32_t now)
{
	note_at(LPORT, c, (const struct sockaddr *)&p, sizeof(p), now);
}

/* The proxy noted for c on port lport at second now, as an IPv4 socket
 * sees it; port 0 when there is none. */
static struct sockaddr_in
find_at(uint16_t lport, struct sockaddr_in c, uint32_t now)
{
	struct pp_reply r;

	memset(&r, 0, sizeof(r));
	if (!pp_rt_lookup(AF_INET, htons(lport), (const struct sockaddr *)&c,
			  sizeof(c), now, &r))
		return v4(0, 0);
	ck_assert_uint_eq(r.vialen, sizeof(r.via.sin));
	ck_assert_int_eq(r.via.sin.sin_family, AF_INET);
	return r.via.sin;
}

/* The full answer of an IPv4 socket's lookup of c on LPORT at now, in
 * this thread (away: in another, without this thread's last route). */
static bool
lookup(struct sockaddr_in c, uint32_t now, struct pp_reply *r)
{
	memset(r, 0, sizeof(*r));
	return pp_rt_lookup(AF_INET, htons(LPORT), (const struct sockaddr *)&c,
			    sizeof(c), now, r);
}

struct lookup_away {
	struct sockaddr_in c;
	uint32_t now;
	struct pp_reply r;
	bool hit;
};

static void *
lookup_away_main(void *arg)
{
	struct lookup_away *a = arg;

	a->hit = lookup(a->c, a->now, &a->r);
	return NULL;
}

static bool
lookup_away(struct sockaddr_in c, uint32_t now, struct pp_reply *r)
{
	struct lookup_away a = { .c = c, .now = now };
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, lookup_away_main, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	*r = a.r;
	return a.hit;
}

static bool
same(struct sockaddr_in a, struct sockaddr_in b)
{
	return a.sin_addr.s_addr == b.sin_addr.s_addr &&
	       a.sin_port == b.sin_port;
}

#define ck_route(got, want) ck_assert(same((got), (want)))
#define ck_no_route(got) ck_assert_uint_eq((got).sin_port, 0)

/* find_at() on a thread of its own: the table alone, never the copy a
 * thread keeps of the route it noted last. */
struct away {
	uint16_t lport;
	struct sockaddr_in c, got;
	uint32_t now;
};

static void *
find_away_main(void *arg)
{
	struct away *a = arg;

	a->got = find_at(a->lport, a->c, a->now);
	return NULL;
}

static struct sockaddr_in
find_away_at(uint16_t lport, struct sockaddr_in c, uint32_t now)
{
	struct away a = { .lport = lport, .c = c, .now = now };
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, find_away_main, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	return a.got;
}

static struct sockaddr_in
find_away(struct sockaddr_in c, uint32_t now)
{
	return find_away_at(LPORT, c, now);
}

/* This thread's fingerprint slots: its own, freed with the thread. */
static _Thread_local uint64_t fresh_slots[PP_RT_FRESH_SZ / sizeof(uint64_t)]
	__attribute__((aligned(64)));

static void
attach_fresh(void)
{
	memset(fresh_slots, 0, sizeof(fresh_slots));
	pp_rt_fresh_attach(fresh_slots);
}

START_TEST(note_then_lookup)
{
	struct sockaddr_in c = client(1), p = proxy(1, 0), un;
	struct pp_reply r;
	struct pp_fdinfo info;

	ck_assert(!pp_udp_routing());
	ck_no_route(find_at(LPORT, c, T0));
	note(c, p, T0);
	ck_assert(pp_udp_routing());
	ck_route(find_at(LPORT, c, T0), p);
	ck_route(find_away(c, T0), p);
	/* Another local port, another client: not routed. */
	ck_no_route(find_at(LPORT + 1, c, T0));
	ck_no_route(find_away_at(LPORT + 1, c, T0));
	ck_no_route(find_at(LPORT, client(2), T0));
	ck_no_route(find_away(client(2), T0));
	/* On an IPv6 socket the proxy is ::ffff:10.0.0.1. */
	r.vialen = 0;
	ck_assert(pp_rt_lookup(AF_INET6, htons(LPORT),
			       (const struct sockaddr *)&c, sizeof(c), T0, &r));
	ck_assert_uint_eq(r.vialen, sizeof(r.via.sin6));
	ck_assert(IN6_IS_ADDR_V4MAPPED(&r.via.sin6.sin6_addr));
	ck_assert_mem_eq(&r.via.sin6.sin6_addr.s6_addr[12], &p.sin_addr, 4);
	ck_assert_uint_eq(r.via.sin6.sin6_port, p.sin_port);
	/* Not an IP address: no route. */
	memset(&un, 0, sizeof(un));
	un.sin_family = AF_UNIX;
	ck_no_route(find_at(LPORT, un, T0));
	/* By descriptor, at the real clock's second. */
	note(client(3), proxy(3, 0), pp_now_s());
	memset(&info, 0, sizeof(info));
	info.kind = PP_FD_UDP;
	info.socktype = SOCK_DGRAM;
	info.family = AF_INET;
	info.lport = htons(LPORT);
	ck_assert(pp_fd_set(40, &info));
	c = client(3);
	ck_assert(pp_udp_route(40, (const struct sockaddr *)&c, sizeof(c), &r));
	ck_route(r.via.sin, proxy(3, 0));
	ck_assert(
		!pp_udp_route(41, (const struct sockaddr *)&c, sizeof(c), &r));
	pp_fd_clear(40);
}
END_TEST

START_TEST(one_client_two_proxies)
{
	struct sockaddr_in c = client(7), p1 = proxy(7, 1), p2 = proxy(7, 2);
	struct sockaddr_in6 p6;
	struct pp_reply r;

	/* Through one proxy to one port, another to another port. */
	note_at(LPORT, c, (const struct sockaddr *)&p1, sizeof(p1), T0);
	note_at(LPORT + 1, c, (const struct sockaddr *)&p2, sizeof(p2), T0);
	ck_route(find_away_at(LPORT, c, T0), p1);
	ck_route(find_away_at(LPORT + 1, c, T0), p2);
	ck_route(find_at(LPORT, c, T0), p1);
	ck_route(find_at(LPORT + 1, c, T0), p2);
	/* Then through the other proxy to the first port, in the same
	 * second: the newest proxy is the route. */
	note_at(LPORT, c, (const struct sockaddr *)&p2, sizeof(p2), T0);
	ck_route(find_at(LPORT, c, T0), p2);
	ck_route(find_away_at(LPORT, c, T0), p2);
	/* Back to the first: the route follows again. */
	note(client(8), proxy(8, 0), T0);
	note_at(LPORT, c, (const struct sockaddr *)&p1, sizeof(p1), T0);
	ck_route(find_away_at(LPORT, c, T0), p1);
	/* An IPv6 proxy: an IPv4 socket cannot reach it, an IPv6 one can. */
	memset(&p6, 0, sizeof(p6));
	p6.sin6_family = AF_INET6;
	p6.sin6_port = htons(9999);
	p6.sin6_addr.s6_addr[0] = 0xfd;
	p6.sin6_addr.s6_addr[15] = 7;
	note_at(LPORT, c, (const struct sockaddr *)&p6, sizeof(p6), T0);
	ck_no_route(find_at(LPORT, c, T0));
	ck_assert(pp_rt_lookup(AF_INET6, htons(LPORT),
			       (const struct sockaddr *)&c, sizeof(c), T0, &r));
	ck_assert_uint_eq(r.vialen, sizeof(p6));
	ck_assert_mem_eq(&r.via.sin6.sin6_addr, &p6.sin6_addr, 16);
	ck_assert_uint_eq(r.via.sin6.sin6_port, p6.sin6_port);
}
END_TEST

START_TEST(expiry_and_refresh)
{
	struct sockaddr_in c = client(5), p = proxy(5, 0);

	note(c, p, T0);
	/* Idle for PP_ROUTE_IDLE_S seconds: still routed; one more: not,
	 * from the thread's copy and from the table alike. */
	ck_route(find_at(LPORT, c, T0 + PP_ROUTE_IDLE_S), p);
	ck_route(find_away(c, T0 + PP_ROUTE_IDLE_S), p);
	ck_no_route(find_at(LPORT, c, T0 + PP_ROUTE_IDLE_S + 1));
	ck_no_route(find_away(c, T0 + PP_ROUTE_IDLE_S + 1));
	/* A later datagram from the client refreshes its route. */
	note(c, p, T0 + 100);
	ck_route(find_away(c, T0 + 100 + PP_ROUTE_IDLE_S), p);
	ck_no_route(find_away(c, T0 + 101 + PP_ROUTE_IDLE_S));
	/* Even after another client was noted in between (the table, not
	 * the thread's last route, is refreshed). */
	note(client(6), proxy(6, 0), T0 + 150);
	note(c, p, T0 + 200);
	note(client(6), proxy(6, 0), T0 + 200);
	ck_route(find_at(LPORT, c, T0 + 200 + PP_ROUTE_IDLE_S), p);
	ck_route(find_away(c, T0 + 200 + PP_ROUTE_IDLE_S), p);
	ck_no_route(find_at(LPORT, c, T0 + 201 + PP_ROUTE_IDLE_S));
}
END_TEST

/* Clients first..first+n-1, through their proxy 0, at second now. */
static void
fill(uint32_t first, uint32_t n, uint32_t now)
{
	uint32_t i;

	for (i = first; i < first + n; i++)
		note(client(i), proxy(i, 0), now);
}

START_TEST(lru_eviction)
{
	uint32_t i;

	fill(100, PP_ROUTE_MAX, T0);
	for (i = 100; i < 100 + PP_ROUTE_MAX; i++)
		ck_route(find_away(client(i), T0), proxy(i, 0));
	/* The oldest noted again in the same second: nothing is written,
	 * so its place in the order stays (the order is exact to the
	 * second), and the next new client takes it. */
	note(client(100), proxy(100, 0), T0);
	note(client(1), proxy(1, 0), T0);
	ck_no_route(find_away(client(100), T0));
	ck_route(find_away(client(101), T0), proxy(101, 0));
	/* The oldest refreshed in a later second is the newest then: the
	 * next new client takes the place of the one after it. */
	note(client(101), proxy(101, 0), T0 + 1);
	note(client(2), proxy(2, 0), T0 + 1);
	ck_route(find_away(client(101), T0 + 1), proxy(101, 0));
	ck_no_route(find_away(client(102), T0 + 1));
	ck_route(find_away(client(103), T0 + 1), proxy(103, 0));
	ck_route(find_away(client(1), T0 + 1), proxy(1, 0));
	ck_route(find_away(client(2), T0 + 1), proxy(2, 0));
	/* A full round of new clients leaves only them. */
	fill(1000, PP_ROUTE_MAX, T0 + 2);
	for (i = 100; i < 100 + PP_ROUTE_MAX; i++)
		ck_no_route(find_away(client(i), T0 + 2));
	for (i = 1000; i < 1000 + PP_ROUTE_MAX; i++)
		ck_route(find_away(client(i), T0 + 2), proxy(i, 0));
}
END_TEST

struct fill_away {
	uint32_t first, n;
};

static void *
fill_main(void *arg)
{
	const struct fill_away *f = arg;

	fill(f->first, f->n, T0);
	return NULL;
}

/* Another thread, without fingerprints, notes n new clients from
 * client(first) on at T0. */
static void
fill_away(uint32_t first, uint32_t n)
{
	struct fill_away f = { .first = first, .n = n };
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, fill_main, &f), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/* ... a table's worth: every earlier route is evicted. */
static void
evict_all_away(uint32_t first)
{
	fill_away(first, PP_ROUTE_MAX);
}

START_TEST(fingerprint_spares_the_table)
{
	struct sockaddr_in a = client(1), b = client(2);

	attach_fresh();
	note(a, proxy(1, 0), T0);
	note(b, proxy(2, 0), T0);
	/* a again, in the same second, through the same proxy: this
	 * thread's fingerprint says it is noted, so the table is neither
	 * searched nor written, and a stays older than b: the first client
	 * past a full table takes a's place. */
	note(a, proxy(1, 0), T0);
	fill_away(100, PP_ROUTE_MAX - 1);
	ck_no_route(find_away(a, T0));
	ck_route(find_away(b, T0), proxy(2, 0));
	/* Once evicted, the same note is written back: the eviction made
	 * the fingerprint stale. */
	note(a, proxy(1, 0), T0);
	ck_route(find_away(a, T0), proxy(1, 0));
	evict_all_away(200);
	/* Through another proxy, or a second later: written. */
	note(a, proxy(1, 1), T0);
	ck_route(find_away(a, T0), proxy(1, 1));
	note(b, proxy(2, 0), T0 + 1);
	ck_route(find_away(b, T0 + 1), proxy(2, 0));
}
END_TEST

/*
 * A client's second datagram in a second needs no fingerprint: the
 * thread's last route already says it.  A signal handler that notes the
 * same client through another proxy between pp_note_prep() and
 * pp_rt_note() makes that answer stale; the interrupted note must still
 * land, as the newest.
 */
START_TEST(last_route_answer_goes_stale_under_a_handler)
{
	struct sockaddr_in c = client(3), p1 = proxy(3, 1), p2 = proxy(3, 2);
	union pp_inaddr adv;
	struct pp_note nt;

	attach_fresh();
	note(c, p1, T0);
	ck_assert(prep_raw(&nt, &adv, LPORT, c, (const struct sockaddr *)&p1,
			   sizeof(p1), T0, NULL));
	ck_assert(nt.same);
	ck_assert(nt.set == NULL);
	note(c, p2, T0); /* the handler */
	ck_route(find_away(c, T0), p2);
	pp_rt_note(&nt);
	ck_route(find_away(c, T0), p1);
	ck_route(find_at(LPORT, c, T0), p1);
	/* Left alone, the same answer is taken as it is: nothing written. */
	ck_assert(prep_raw(&nt, &adv, LPORT, c, (const struct sockaddr *)&p1,
			   sizeof(p1), T0, NULL));
	ck_assert(nt.same);
	evict_all_away(100);
	pp_rt_note(&nt);
	ck_no_route(find_away(c, T0));
	/* A second later it is not the same. */
	ck_assert(prep_raw(&nt, &adv, LPORT, c, (const struct sockaddr *)&p1,
			   sizeof(p1), T0 + 1, NULL));
	ck_assert(!nt.same);
	ck_assert(nt.set != NULL);
	pp_rt_note(&nt);
	ck_route(find_away(c, T0 + 1), p1);
}
END_TEST

struct note_away {
	struct sockaddr_in c, p;
};

static void *
note_away_main(void *arg)
{
	const struct note_away *a = arg;

	note(a->c, a->p, T0);
	return NULL;
}

/* note(c, p, T0) on a thread of its own. */
static void
note_away(struct sockaddr_in c, struct sockaddr_in p)
{
	struct note_away a = { .c = c, .p = p };
	pthread_t t;

	ck_assert_int_eq(pthread_create(&t, NULL, note_away_main, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
}

/*
 * A client back through its first proxy in the same second, after a
 * datagram through another one (on this thread or another): the table
 * names the first again, for a reply from any thread.  Neither this
 * thread's fingerprint of the first note nor its last route may stand
 * for the table once another note moved the client.
 */
START_TEST(client_back_through_its_first_proxy)
{
	struct sockaddr_in c = client(4), p1 = proxy(4, 1), p2 = proxy(4, 2);

	attach_fresh();
	/* Moved by this thread: the fingerprint of c through p1. */
	note(c, p1, T0);
	note(c, p2, T0);
	ck_route(find_away(c, T0), p2);
	note(c, p1, T0);
	ck_route(find_away(c, T0), p1);
	/* Moved by another thread: this thread's last route. */
	note_away(c, p2);
	ck_route(find_away(c, T0), p2);
	note(c, p1, T0);
	ck_route(find_away(c, T0), p1);
	ck_route(find_at(LPORT, c, T0), p1);
	/* Unmoved, the fingerprint and the last route still spare the
	 * table: c stays older than client 5 (see
	 * fingerprint_spares_the_table). */
	note(client(5), proxy(5, 0), T0);
	note(c, p1, T0);
	note(c, p1, T0);
	fill_away(100, PP_ROUTE_MAX - 1);
	ck_no_route(find_away(c, T0));
	ck_route(find_away(client(5), T0), proxy(5, 0));
}
END_TEST

static void *
renote_main(void *arg)
{
	(void)arg;
	note(client(1), proxy(1, 0), T0);
	return NULL;
}

START_TEST(without_fingerprints_the_table_decides)
{
	pthread_t t;

	note(client(1), proxy(1, 0), T0);
	note(client(2), proxy(2, 0), T0);
	evict_all_away(100);
	/* The same note from this thread, without fingerprints: the table
	 * is searched, the route is missing, and it is written again. */
	note(client(1), proxy(1, 0), T0);
	ck_route(find_away(client(1), T0), proxy(1, 0));
	evict_all_away(200);
	ck_assert_int_eq(pthread_create(&t, NULL, renote_main, NULL), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_route(find_away(client(1), T0), proxy(1, 0));
}
END_TEST

START_TEST(spp_route_gives_the_header_back)
{
	struct sockaddr_in a = client(1), b = client(2);
	union pp_sppw sw = spp_fields(1, 0), sw2 = spp_fields(1, 1);
	struct pp_reply r;
	uint8_t mapped[16];

	note_spp(a, proxy(1, 0), T0, sw);
	note(b, proxy(2, 0), T0);
	/* From the thread's last route and from the table alike. */
	ck_assert(lookup(a, T0, &r));
	ck_route(r.via.sin, proxy(1, 0));
	ck_assert(r.spp);
	ck_assert(spp_hdr_is(r.hdr, a, &sw));
	ck_assert(lookup_away(a, T0, &r));
	ck_assert(r.spp);
	ck_assert(spp_hdr_is(r.hdr, a, &sw));
	/* The layout: magic, client, proxy, client port, proxy port. */
	ck_assert_uint_eq(r.hdr[0], 0x56);
	ck_assert_uint_eq(r.hdr[1], 0xEC);
	memset(mapped, 0, 10);
	mapped[10] = mapped[11] = 0xff;
	memcpy(mapped + 12, &a.sin_addr, 4);
	ck_assert_mem_eq(r.hdr + 2, mapped, 16);
	ck_assert_mem_eq(r.hdr + 18, sw.s.paddr, 16);
	ck_assert_mem_eq(r.hdr + 34, &a.sin_port, 2);
	ck_assert_mem_eq(r.hdr + 36, &sw.s.pport, 2);
	/* A v2 route has none. */
	ck_assert(lookup(b, T0, &r) && !r.spp);
	ck_assert(lookup_away(b, T0, &r) && !r.spp);
	/* Other proxy fields in the same second, through the same real
	 * proxy: the route follows them. */
	note_spp(a, proxy(1, 0), T0, sw2);
	ck_assert(lookup_away(a, T0, &r) && r.spp);
	ck_assert(spp_hdr_is(r.hdr, a, &sw2));
	/* The same client by v2 now: no header any more. */
	note(a, proxy(1, 0), T0);
	ck_assert(lookup_away(a, T0, &r) && !r.spp);
	ck_assert(lookup(a, T0, &r) && !r.spp);
	/* And by SPP again. */
	note_spp(a, proxy(1, 0), T0, sw);
	ck_assert(lookup_away(a, T0, &r) && r.spp);
	ck_assert(spp_hdr_is(r.hdr, a, &sw));
	/* Expired like any route. */
	ck_assert(!lookup_away(a, T0 + PP_ROUTE_IDLE_S + 1, &r));
}
END_TEST

START_TEST(spp_fingerprint_spares_the_table)
{
	struct sockaddr_in a = client(1), b = client(2);
	union pp_sppw sw2 = spp_fields(1, 1);
	struct pp_reply r;

	attach_fresh();
	note_spp(a, proxy(1, 0), T0, spp_fields(1, 0));
	note(b, proxy(2, 0), T0);
	/* The same SPP note in the same second: nothing written, so a is
	 * the oldest when the table is full. */
	note_spp(a, proxy(1, 0), T0, spp_fields(1, 0));
	fill_away(100, PP_ROUTE_MAX - 1);
	ck_assert(!lookup_away(a, T0, &r));
	ck_assert(lookup_away(b, T0, &r));
	/* Other proxy fields: written, with them. */
	note_spp(a, proxy(1, 0), T0, sw2);
	ck_assert(lookup_away(a, T0, &r) && r.spp);
	ck_assert(spp_hdr_is(r.hdr, a, &sw2));
	/* The same client and proxy by v2: written, without a header. */
	evict_all_away(200);
	note(a, proxy(1, 0), T0);
	ck_assert(lookup_away(a, T0, &r) && !r.spp);
}
END_TEST

static atomic_bool stop;

static void *
noter_main(void *arg)
{
	uint32_t i = 0, now = T0;

	(void)arg;
	attach_fresh();
	while (!atomic_load(&stop)) {
		struct sockaddr_in p = proxy(200 + i % 32, i % 3);

		/* No Check call here: the main thread forks meanwhile. */
		(void)note_raw(LPORT, client(200 + i % 32),
			       (const struct sockaddr *)&p, sizeof(p), now,
			       NULL);
		/* A pause now and then: a mutex is not fair, and a loop that
		 * takes it back at once could keep fork's prepare handler
		 * waiting for as long as a loaded machine lets it. */
		if (++i % 100 == 0) {
			now++;
			usleep(100);
		}
	}
	return NULL;
}

/* In a child: the parent's routes are there, and the lock works.  No
 * Check call (its lock may have been held by the noting thread at the
 * fork); the lookups reach the table, not the thread's last route
 * (client 9, then 3, were noted last). */
static int
child_checks(void)
{
	struct sockaddr_in p2 = proxy(2, 0), p3 = proxy(3, 0);
	struct pp_reply r;

	signal(SIGALRM, SIG_DFL);
	alarm(10); /* a lock inherited held would hang here */
	if (!lookup(client(1), T0, &r) || !same(r.via.sin, proxy(1, 0)))
		return 1;
	if (!note_raw(LPORT, client(2), (const struct sockaddr *)&p2,
		      sizeof(p2), T0, NULL) ||
	    !note_raw(LPORT, client(3), (const struct sockaddr *)&p3,
		      sizeof(p3), T0, NULL))
		return 2;
	if (!lookup(client(2), T0, &r) || !same(r.via.sin, proxy(2, 0)))
		return 3;
	return 0;
}

START_TEST(forked_child_finds_routes)
{
	pthread_t t;
	pid_t pid;
	int i, st;

	note(client(1), proxy(1, 0), T0);
	note(client(9), proxy(9, 0), T0);
	ck_assert_int_eq(pthread_create(&t, NULL, noter_main, NULL), 0);
	/* Forks while another thread holds the lock now and then. */
	for (i = 0; i < 50; i++) {
		pid = fork();
		ck_assert_int_ge(pid, 0);
		if (pid == 0)
			_exit(child_checks());
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0,
			      "child %d: status %#x", i, st);
	}
	atomic_store(&stop, true);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	/* The parent's table is as it was. */
	ck_route(find_away(client(1), T0), proxy(1, 0));
	ck_no_route(find_away(client(2), T0));
}
END_TEST

/*
 * Threads noting and looking up clients 0..NCLIENTS-1 (four times the
 * table) through proxies 0..3 (3 is IPv6), all at T0: every route found
 * must be one that was noted for that client, never a mix of two.
 */
#define NCLIENTS 256
#define NTHREADS 4
#define ROUNDS 100000

static atomic_uint bad, hits;

static void
note_any(uint32_t n, uint32_t v)
{
	struct sockaddr_in6 p6;
	struct sockaddr_in p;

	if (v == 1) {
		note_spp(client(n), proxy(n, 1), T0, spp_fields(n, 1));
		return;
	}
	if (v < 3) {
		p = proxy(n, v);
		note(client(n), p, T0);
		return;
	}
	memset(&p6, 0, sizeof(p6));
	p6.sin6_family = AF_INET6;
	p6.sin6_port = htons((uint16_t)(20000 + 4 * n + 3));
	p6.sin6_addr.s6_addr[0] = 0xfd;
	p6.sin6_addr.s6_addr[14] = (uint8_t)(n >> 8);
	p6.sin6_addr.s6_addr[15] = (uint8_t)n;
	note_at(LPORT, client(n), (const struct sockaddr *)&p6, sizeof(p6), T0);
}

/* Is via (from an IPv6 socket's lookup) one of client n's proxies? */
static bool
noted_for(uint32_t n, const union pp_inaddr *via, socklen_t vialen)
{
	const uint8_t *a = via->sin6.sin6_addr.s6_addr;
	struct sockaddr_in p;
	uint32_t v;

	if (vialen != sizeof(via->sin6) || via->sin6.sin6_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&via->sin6.sin6_addr)) {
		for (v = 0; v < 3; v++) {
			p = proxy(n, v);
			if (memcmp(a + 12, &p.sin_addr, 4) == 0 &&
			    via->sin6.sin6_port == p.sin_port)
				return true;
		}
		return false;
	}
	return via->sin6.sin6_port == htons((uint16_t)(20000 + 4 * n + 3)) &&
	       a[0] == 0xfd && a[14] == (uint8_t)(n >> 8) &&
	       a[15] == (uint8_t)n;
}

/* An SPP route of client n is its proxy 1's, with its own header; the
 * others have none. */
static bool
spp_as_noted(uint32_t n, const struct pp_reply *r)
{
	struct sockaddr_in p = proxy(n, 1);
	union pp_sppw sw = spp_fields(n, 1);
	bool via1 = IN6_IS_ADDR_V4MAPPED(&r->via.sin6.sin6_addr) &&
		    memcmp(&r->via.sin6.sin6_addr.s6_addr[12], &p.sin_addr,
			   4) == 0 &&
		    r->via.sin6.sin6_port == p.sin_port;

	if (!r->spp)
		return !via1;
	return via1 && spp_hdr_is(r->hdr, client(n), &sw);
}

static void *
racer_main(void *arg)
{
	uint32_t seed = (uint32_t)(uintptr_t)arg * 2654435761u + 1, n, i;
	struct pp_reply r;
	struct sockaddr_in c;

	if ((uintptr_t)arg % 2 == 0)
		attach_fresh();
	for (i = 0; i < ROUNDS; i++) {
		seed = seed * 1103515245u + 12345u;
		n = (seed >> 8) % NCLIENTS;
		if ((seed >> 20) % 2 == 0) {
			note_any(n, (seed >> 24) % 4);
			continue;
		}
		c = client(n);
		r.vialen = 0;
		if (!pp_rt_lookup(AF_INET6, htons(LPORT),
				  (const struct sockaddr *)&c, sizeof(c), T0,
				  &r))
			continue;
		atomic_fetch_add(&hits, 1);
		if (!noted_for(n, &r.via, r.vialen) || !spp_as_noted(n, &r))
			atomic_fetch_add(&bad, 1);
	}
	return NULL;
}

START_TEST(threads_never_see_a_torn_route)
{
	pthread_t t[NTHREADS];
	uintptr_t i;

	for (i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(
			pthread_create(&t[i], NULL, racer_main, (void *)i), 0);
	for (i = 0; i < NTHREADS; i++)
		ck_assert_int_eq(pthread_join(t[i], NULL), 0);
	ck_assert_uint_gt(atomic_load(&hits), 0);
	ck_assert_uint_eq(atomic_load(&bad), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("route");
	TCase *tc = tcase_create("core");

	/* Each test runs in a child of its own (Check's fork mode), with a
	 * table not yet created. */
	tcase_add_test(tc, note_then_lookup);
	tcase_add_test(tc, one_client_two_proxies);
	tcase_add_test(tc, expiry_and_refresh);
	tcase_add_test(tc, lru_eviction);
	tcase_add_test(tc, fingerprint_spares_the_table);
	tcase_add_test(tc, client_back_through_its_first_proxy);
	tcase_add_test(tc, without_fingerprints_the_table_decides);
	tcase_add_test(tc, last_route_answer_goes_stale_under_a_handler);
	tcase_add_test(tc, spp_route_gives_the_header_back);
	tcase_add_test(tc, spp_fingerprint_spares_the_table);
	tcase_add_test(tc, forked_child_finds_routes);
	tcase_add_test(tc, threads_never_see_a_torn_route);
	tcase_set_timeout(tc, 60);
	return pp_suite_run(s, tc);
}
