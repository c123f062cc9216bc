/*
 * route.c - the reply routes of datagram clients that arrived through a
 * proxy (route.h).
 *
 * A datagram that advertised a client records "client C came through
 * proxy P on local port L" in a table of at most PP_ROUTE_MAX entries,
 * least recently used evicted first, an entry older than PP_ROUTE_IDLE_S
 * seconds since C's last datagram ignored.  sendto, sendmsg and sendmmsg
 * to C on a PROXY-only socket of port L go to P instead, and so does
 * connect() to C, so that send() and write() on the connected socket
 * reach P too (hook_udp.c).  A v2 proxy expects the bare reply; a client
 * that arrived by SPP gets the header of its datagram back on each reply
 * (udp_reply.c), so its route also keeps the header's proxy address and
 * port: in an array beside the entries, which only SPP routes touch
 * (one bit of the entry's reallen word says an entry has them), so that
 * v2 routes cost no more memory or cache lines than before.  Any other
 * destination is sent to as the program asked.  The table is
 * created on the first advertised datagram.  Lookups take no lock: each
 * hash bucket has a sequence number (the seqlock of reentry.h) that
 * writers make odd while they change it, and a reader that saw it move
 * looks again (taking the lock after a few tries).  Writers hold one
 * mutex, which only the PROXY-only sockets ever take, and only when a
 * client is new, came through another proxy, or was last refreshed in
 * an earlier second (pp_now_s, CLOCK_MONOTONIC_COARSE; the callers pass
 * the second as now): the LRU order and the idle time are exact to the
 * second.  A client's further datagrams within that second cost a look
 * at one set of a small per-thread array of fingerprints ("this client
 * through this proxy, noted this second"), one cache line where the
 * table's bucket and entry are two or three; a fingerprint, like the
 * thread's last route below, holds only while no entry has changed
 * proxy or been evicted since it was made (pp_rt_moves).
 * A reply to the datagram the thread has just received, what servers
 * nearly always send, is routed from a copy of that datagram's route
 * kept by the thread, without searching the table.  A fork handler
 * re-initialises the mutex in the child.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "pp_hot.h"
#include "reentry.h"
#include "route.h"
#include "pp_sockaddr.h"
#include "stats.h"

/* This thread's fingerprint slots (pp_rt_fresh_attach), or NULL. */
static PP_TLS uint64_t *pp_tfresh;

void
pp_rt_fresh_attach(uint64_t *slots)
{
	pp_tfresh = slots;
}

/*
 * Entries are read without the lock: each bucket has a sequence number
 * (reentry.h), busy while a writer (who holds the mutex) changes the
 * chain or an entry on it; a reader waits out another thread's writer,
 * copies what it needs and tries again if the number moved.  Everything
 * a reader loads is an atomic word, so the copy is never a data race.
 * The LRU links are the writers' alone.
 */
#define PP_RT_TRIES 4 /* lock-free attempts before taking the lock */

_Static_assert(PP_ROUTE_MAX > 0 && (PP_ROUTE_MAX & (PP_ROUTE_MAX - 1)) == 0,
	       "a power of two");
_Static_assert(sizeof(struct pp_rkey) == 4 * PP_RKEY_W, "key words");
_Static_assert(sizeof(union pp_inaddr) % 4 == 0, "address words");

struct pp_route {
	_Atomic uint32_t next; /* hash chain: index + 1, 0 ends it */
	_Atomic uint32_t seen; /* pp_now_s() when last refreshed */
	_Atomic uint32_t key[PP_RKEY_W];
	_Atomic uint32_t reallen;         /* | PP_RT_SPP for an SPP route */
	_Atomic uint32_t real[PP_REAL_W]; /* the proxy, as the kernel
					     reported it */
	uint32_t older, newer; /* LRU list: index + 1, under the mutex */
};

/* In an entry's reallen word: the entry's SPP fields are set. */
#define PP_RT_SPP 0x80000000u

/* The SPP fields of entry i (union pp_sppw), at the same index of their
 * own array; read and written as the entry is. */
struct pp_rspp {
	_Atomic uint32_t w[PP_SPPW_W];
};

struct pp_rbucket {
	_Atomic uint32_t seq;  /* PP_SEQ_BUSY while a writer is inside */
	_Atomic uint32_t head; /* chain: index + 1, 0 when empty */
};

/* What a reader copies out of an entry. */
struct pp_rsnap {
	uint32_t seen;
	socklen_t reallen;
	union pp_realw real;
	union pp_sppw sw; /* sw.s.on 0 for a v2 route */
};

/*
 * The route this thread noted last: a server answers the datagram it
 * has just received, so the reply's destination is nearly always this
 * key, and the table need not be searched again for it.  It says what
 * the table said for the key a moment ago (the proxy that delivered
 * this thread's latest datagram from that client).
 *
 * A signal handler may receive or send on the same thread.  pp_last is
 * written only by pp_rt_note() when it is not interrupting itself
 * (pp_noting), between two steps of pp_last_gen, which is odd meanwhile;
 * a reader copies it and uses the copy only when the count did not move.
 */
struct pp_lastroute {
	bool valid;
	uint16_t family;     /* of the socket it arrived on */
	uint32_t moves;      /* pp_rt_moves when it was noted */
	union pp_rkeyw k;    /* k.k.lport: that socket's port */
	union pp_inaddr adv; /* the client as the program was told */
	struct pp_rsnap r;
};

static PP_TLS struct pp_lastroute pp_last;
static PP_TLS unsigned pp_last_gen;
static PP_TLS bool pp_noting;

/* A consistent copy of pp_last into *out; false when there is none. */
static bool
pp_last_get(struct pp_lastroute *out)
{
	unsigned g = pp_last_gen;

	atomic_signal_fence(memory_order_seq_cst);
	if ((g & 1) || !pp_last.valid)
		return false;
	*out = pp_last;
	atomic_signal_fence(memory_order_seq_cst);
	return pp_last_gen == g;
}

/* Is dst the very address a (family, port, address)? */
PP_HOT_DGRAM static bool
pp_same_dst(const union pp_inaddr *a, const struct sockaddr *dst,
	    socklen_t dlen)
{
	const union pp_inaddr *d = (const union pp_inaddr *)dst;

	if (dst == NULL || dlen < sizeof(sa_family_t) ||
	    dst->sa_family != a->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return dlen >= sizeof(d->sin) &&
		       d->sin.sin_port == a->sin.sin_port &&
		       d->sin.sin_addr.s_addr == a->sin.sin_addr.s_addr;
	return dlen >= sizeof(d->sin6) &&
	       d->sin6.sin6_port == a->sin6.sin6_port &&
	       memcmp(&d->sin6.sin6_addr, &a->sin6.sin6_addr, 16) == 0;
}

#define PP_MARK_SECRETS 13

/*
 * The reply table.  Its lock is reached from a signal handler by every
 * receive hook on a PROXY-only datagram socket (recv, recvfrom, recvmsg,
 * recvmmsg, read: pp_rt_note) and by sendto, sendmsg, sendmmsg and
 * connect to a client on one (pp_rt_get, after PP_RT_TRIES); taken as
 * section PP_HOLD_ROUTES, so a handler whose thread holds it notes no
 * route and finds none in the bucket being changed (reentry.h).
 */
static struct {
	pthread_mutex_t mtx;
	struct pp_route *r;        /* PP_ROUTE_MAX entries */
	struct pp_rbucket *bucket; /* PP_ROUTE_MAX chains */
	struct pp_rspp *spp;       /* PP_ROUTE_MAX entries' SPP fields */
	uint32_t used;             /* entries handed out so far */
	uint32_t newest;           /* index + 1 */
	uint32_t oldest;           /* index + 1 */
	uint64_t seed;
	uint64_t sec[PP_MARK_SECRETS]; /* pp_fresh_mark's, from seed */
	bool failed; /* the mapping failed once: never retry */
} pp_rt PP_HOT_DATA = { .mtx = PTHREAD_MUTEX_INITIALIZER };

static PP_HOT_DATA atomic_bool pp_rt_up;

/*
 * How many times an entry of the table stopped saying what it said: its
 * client came through another proxy (or the same one with other SPP
 * fields), or the entry was evicted.  A thread's fingerprints and its
 * last route stand for "the table says so" only while the count is the
 * one they were made at: otherwise a client back through its first
 * proxy, after a datagram through another one in the same second (on
 * any thread), would leave the table naming the other, and a reply from
 * any other thread would go there.  Written under the lock.
 */
static PP_HOT_DATA _Atomic uint32_t pp_rt_moves;

PP_HOT_DATA pp_clock_fn pp_rt_clock = clock_gettime;

/* Did the prepare handler take the lock (not when fork is called from a
 * signal handler whose thread holds it)? */
static PP_TLS bool pp_rt_fork_held;

static void
pp_rt_atfork_prepare(void)
{
	pp_rt_fork_held = pp_lock(&pp_rt.mtx, PP_HOLD_ROUTES);
}

static void
pp_rt_atfork_parent(void)
{
	if (pp_rt_fork_held)
		pp_unlock(&pp_rt.mtx, PP_HOLD_ROUTES);
}

/* The child has the table (its sockets are the parent's too) and a
 * fresh lock.  No bucket is odd: writers hold the lock while one is. */
static void
pp_rt_atfork_child(void)
{
	if (!pp_rt_fork_held)
		return; /* in use below the handler: left to its holder */
	pthread_mutex_init(&pp_rt.mtx, NULL);
	pp_release(PP_HOLD_ROUTES);
}

static void pp_mark_secrets(uint64_t seed);

/* Called with the lock held. */
static bool
pp_rt_create(void)
{
	size_t sz = PP_ROUTE_MAX *
		    (sizeof(struct pp_route) + sizeof(struct pp_rbucket) +
		     sizeof(struct pp_rspp));
	struct timespec ts;
	void *p;

	if (pp_rt.r != NULL)
		return true;
	if (pp_rt.failed)
		return false;
	/* Untouched pages cost nothing: the table grows in memory only as
	 * distinct clients show up. */
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED) {
		pp_rt.failed = true;
		pp_log(PP_LOG_ERROR, "no memory for the UDP reply table: "
				     "replies go where the program sends them");
		return false;
	}
	pp_rt.r = p;
	pp_rt.bucket = (struct pp_rbucket *)(pp_rt.r + PP_ROUTE_MAX);
	pp_rt.spp = (struct pp_rspp *)(pp_rt.bucket + PP_ROUTE_MAX);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pp_rt.seed = ((uint64_t)ts.tv_nsec << 32 | (uint64_t)ts.tv_sec) ^
		     (uint64_t)getpid() * 0x9e3779b97f4a7c15u;
	pp_mark_secrets(pp_rt.seed);
	pthread_atfork(pp_rt_atfork_prepare, pp_rt_atfork_parent,
		       pp_rt_atfork_child);
	atomic_store_explicit(&pp_rt_up, true, memory_order_release);
	return true;
}

static uint32_t
pp_rt_hash(const union pp_rkeyw *k)
{
	uint64_t h = pp_rt.seed;
	unsigned i;

	for (i = 0; i < PP_RKEY_W; i++) {
		h = (h ^ k->w[i]) * 0x9e3779b97f4a7c15u;
		h ^= h >> 29;
	}
	h ^= h >> 32;
	return (uint32_t)h & (PP_ROUTE_MAX - 1);
}

static bool
pp_rt_is(const struct pp_route *e, const union pp_rkeyw *k)
{
	unsigned i;

	for (i = 0; i < PP_RKEY_W; i++)
		if (atomic_load_explicit(&e->key[i], memory_order_relaxed) !=
		    k->w[i])
			return false;
	return true;
}

/* Index + 1 of the entry for k in chain h, 0 when none.  Lock held, or
 * inside a read of bucket h (at most PP_ROUTE_MAX steps: a reader racing
 * a writer may wander, and the sequence number then sends it back). */
PP_WARM_DGRAM static uint32_t
pp_rt_find(const union pp_rkeyw *k, uint32_t h)
{
	uint32_t i, steps = 0;

	i = atomic_load_explicit(&pp_rt.bucket[h].head, memory_order_relaxed);
	while (i != 0 && steps++ < PP_ROUTE_MAX) {
		if (pp_rt_is(&pp_rt.r[i - 1], k))
			return i;
		i = atomic_load_explicit(&pp_rt.r[i - 1].next,
					 memory_order_relaxed);
	}
	return 0;
}

PP_WARM_DGRAM static void
pp_rt_copy(uint32_t i, struct pp_rsnap *out)
{
	const struct pp_route *e = &pp_rt.r[i - 1];
	const struct pp_rspp *x = &pp_rt.spp[i - 1];
	uint32_t rl;
	unsigned j;

	out->seen = atomic_load_explicit(&e->seen, memory_order_relaxed);
	rl = atomic_load_explicit(&e->reallen, memory_order_relaxed);
	out->reallen = rl & ~PP_RT_SPP;
	for (j = 0; j < PP_REAL_W; j++)
		out->real.w[j] =
			atomic_load_explicit(&e->real[j], memory_order_relaxed);
	out->sw.s.on = 0;
	if (rl & PP_RT_SPP)
		for (j = 0; j < PP_SPPW_W; j++)
			out->sw.w[j] = atomic_load_explicit(
				&x->w[j], memory_order_relaxed);
}

/*
 * A copy of the entry for k (chain h) into *out; false when there is
 * none.  Table up.  Without the lock unless writers keep getting in the
 * way.
 */
PP_WARM_DGRAM static bool
pp_rt_get(const union pp_rkeyw *k, uint32_t h, struct pp_rsnap *out)
{
	_Atomic uint32_t *seq = &pp_rt.bucket[h].seq;
	uint32_t s0, i;
	unsigned tries;

	for (tries = 0; tries < PP_RT_TRIES; tries++) {
		/* This thread is inside a write of this very bucket (a
		 * signal handler interrupted it): no route for now. */
		if (!pp_seq_read_begin(seq, &s0))
			return false;
		i = pp_rt_find(k, h);
		if (i != 0)
			pp_rt_copy(i, out);
		if (pp_seq_read_ok(seq, s0))
			return i != 0;
	}
	/* Writers keep changing the bucket: wait for them.  This thread
	 * holds the lock (a handler interrupted it): no route for now. */
	if (!pp_lock(&pp_rt.mtx, PP_HOLD_ROUTES))
		return false;
	i = pp_rt_find(k, h);
	if (i != 0)
		pp_rt_copy(i, out);
	pp_unlock(&pp_rt.mtx, PP_HOLD_ROUTES);
	return i != 0;
}

/*
 * A writer (lock held) enters and leaves bucket b: the seqlock of
 * reentry.h, whose write section is recorded for a signal handler of
 * this thread, which then finds no route in that bucket rather than
 * waiting for it.  The lock makes the writer the only one: the section
 * is never busy at its start (no wait), and never entered twice by one
 * thread (a handler does not get the lock), so it always begins.  No
 * one asks a route writer to forget (PP_SEQ_FORGET is never set).
 */
static void
pp_rt_wbegin(struct pp_rbucket *b)
{
	(void)pp_seq_write_begin(&b->seq);
}

static void
pp_rt_wend(struct pp_rbucket *b)
{
	pp_seq_write_end(&b->seq, NULL, NULL);
}

PP_WARM_DGRAM static void
pp_lru_unlink(uint32_t i)
{
	struct pp_route *e = &pp_rt.r[i - 1];

	if (e->older != 0)
		pp_rt.r[e->older - 1].newer = e->newer;
	else
		pp_rt.oldest = e->newer;
	if (e->newer != 0)
		pp_rt.r[e->newer - 1].older = e->older;
	else
		pp_rt.newest = e->older;
	e->older = e->newer = 0;
}

PP_WARM_DGRAM static void
pp_lru_push(uint32_t i)
{
	struct pp_route *e = &pp_rt.r[i - 1];

	e->older = pp_rt.newest;
	e->newer = 0;
	if (pp_rt.newest != 0)
		pp_rt.r[pp_rt.newest - 1].newer = i;
	pp_rt.newest = i;
	if (pp_rt.oldest == 0)
		pp_rt.oldest = i;
}

/* Take entry i off its chain.  Lock held. */
PP_WARM_DGRAM static void
pp_chain_unlink(uint32_t i)
{
	union pp_rkeyw k;
	struct pp_route *e = &pp_rt.r[i - 1];
	struct pp_rbucket *b;
	_Atomic uint32_t *link;
	uint32_t j, next;
	unsigned w;

	for (w = 0; w < PP_RKEY_W; w++)
		k.w[w] = atomic_load_explicit(&e->key[w], memory_order_relaxed);
	b = &pp_rt.bucket[pp_rt_hash(&k)];
	next = atomic_load_explicit(&e->next, memory_order_relaxed);
	pp_rt_wbegin(b);
	for (link = &b->head;
	     (j = atomic_load_explicit(link, memory_order_relaxed)) != 0;
	     link = &pp_rt.r[j - 1].next) {
		if (j == i) {
			atomic_store_explicit(link, next, memory_order_relaxed);
			break;
		}
	}
	atomic_store_explicit(&e->next, 0, memory_order_relaxed);
	pp_rt_wend(b);
}

/* Store the proxy, its SPP fields and the time of note nt in entry i;
 * inside a write of its bucket. */
PP_WARM_DGRAM static void
pp_rt_fill(uint32_t i, const struct pp_note *nt)
{
	struct pp_route *e = &pp_rt.r[i - 1];
	struct pp_rspp *x = &pp_rt.spp[i - 1];
	uint32_t rl = (uint32_t)nt->reallen;
	unsigned j;

	atomic_store_explicit(&e->seen, nt->now, memory_order_relaxed);
	for (j = 0; j < PP_REAL_W; j++)
		atomic_store_explicit(&e->real[j], nt->rw.w[j],
				      memory_order_relaxed);
	if (nt->sw.s.on) {
		rl |= PP_RT_SPP;
		for (j = 0; j < PP_SPPW_W; j++)
			atomic_store_explicit(&x->w[j], nt->sw.w[j],
					      memory_order_relaxed);
	}
	atomic_store_explicit(&e->reallen, rl, memory_order_relaxed);
}

/* The 64-bit word at byte i of p. */
static inline uint64_t
pp_lane(const void *p, size_t i)
{
	uint64_t v;

	memcpy(&v, (const uint8_t *)p + i, sizeof(v));
	return v;
}

/* Are proxies a and b the same words?  No call, no loop. */
static inline bool
pp_realw_eq(const union pp_realw *a, const union pp_realw *b)
{
	_Static_assert(PP_REAL_W == 7, "real words");
	return ((pp_lane(a, 0) ^ pp_lane(b, 0)) |
		(pp_lane(a, 8) ^ pp_lane(b, 8)) |
		(pp_lane(a, 16) ^ pp_lane(b, 16)) | (a->w[6] ^ b->w[6])) == 0;
}

/* Are keys a and b the same words? */
static inline bool
pp_rkeyw_eq(const union pp_rkeyw *a, const union pp_rkeyw *b)
{
	_Static_assert(PP_RKEY_W == 5, "key words");
	return ((pp_lane(a, 0) ^ pp_lane(b, 0)) |
		(pp_lane(a, 8) ^ pp_lane(b, 8)) | (a->w[4] ^ b->w[4])) == 0;
}

/* Do the SPP fields a and b say the same (both v2, or the same proxy)? */
static inline bool
pp_sppw_same(const union pp_sppw *a, const union pp_sppw *b)
{
	if (a->s.on != b->s.on)
		return false;
	return !a->s.on || memcmp(a, b, sizeof(*a)) == 0;
}

/* Does snapshot r name the proxy (and SPP fields) note nt names? */
static inline bool
pp_rsnap_proxy_is(const struct pp_rsnap *r, const struct pp_note *nt)
{
	return r->reallen == nt->reallen && pp_realw_eq(&r->real, &nt->rw) &&
	       pp_sppw_same(&r->sw, &nt->sw);
}

/* Does snapshot r say what note nt says (same proxy, SPP fields and
 * second)? */
static inline bool
pp_rsnap_says(const struct pp_rsnap *r, const struct pp_note *nt)
{
	return r->seen == nt->now && pp_rsnap_proxy_is(r, nt);
}

/* An entry stops saying what it said (pp_rt_moves); under the lock,
 * before the change. */
static void
pp_rt_moved(void)
{
	atomic_store_explicit(
		&pp_rt_moves,
		atomic_load_explicit(&pp_rt_moves, memory_order_relaxed) + 1,
		memory_order_release);
}

/*
 * 64 bits of a product of 128, folded: every bit of a and b moves both
 * halves.  Where the compiler has no 128-bit integer (32-bit targets),
 * or built with PP_MUM_PORTABLE (a unit test's second build), the
 * product is put together from four of 32 bits: the same bits.
 */
static inline uint64_t
pp_mum(uint64_t a, uint64_t b)
{
#if defined(__SIZEOF_INT128__) && !defined(PP_MUM_PORTABLE)
	unsigned __int128 r = (unsigned __int128)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
#else
	uint64_t al = (uint32_t)a, ah = a >> 32, bl = (uint32_t)b, bh = b >> 32;
	uint64_t ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
	uint64_t mid = (ll >> 32) + (uint32_t)lh + (uint32_t)hl;
	uint64_t lo = mid << 32 | (uint32_t)ll;
	uint64_t hi = hh + (lh >> 32) + (hl >> 32) + (mid >> 32);

	return lo ^ hi;
#endif
}

/* pp_fresh_mark's secrets, from the table's seed (splitmix64). */
static void
pp_mark_secrets(uint64_t seed)
{
	uint64_t z;
	unsigned i;

	for (i = 0; i < PP_MARK_SECRETS; i++) {
		seed += 0x9e3779b97f4a7c15u;
		z = seed;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
		pp_rt.sec[i] = (z ^ (z >> 31)) | 1;
	}
}

/*
 * A 64-bit fingerprint of "client k came through proxy rw (with the SPP
 * fields sw) in second now, at the table's moves count moves", never 0.
 * Its top bits choose the set of the thread's slots.  The words, keyed
 * with the table's secrets, are multiplied in pairs into 128 bits and
 * folded (wyhash's mum), and the sum folded once more.  Table up.
 */
PP_HOT_DGRAM static uint64_t
pp_fresh_mark(const union pp_rkeyw *k, const union pp_realw *rw,
	      socklen_t reallen, const union pp_sppw *sw, uint32_t now,
	      uint32_t moves)
{
	const uint64_t *c = pp_rt.sec;
	uint64_t h;

	_Static_assert(PP_RKEY_W == 5 && PP_REAL_W == 7 && PP_SPPW_W == 5,
		       "mark lanes");
	h = pp_mum(pp_lane(k, 0) ^ c[0], pp_lane(k, 8) ^ c[1]);
	/* The moves count keys the second and the ports: c[12] is odd, so
	 * two counts give words whose low halves differ, which the second
	 * in the high half cannot make up for. */
	h += pp_mum((k->w[4] | (uint64_t)now << 32) ^
			    (c[2] + (uint64_t)moves * c[12]),
		    pp_lane(rw, 0) ^ c[3]);
	/* An IPv4 proxy (what nearly every datagram comes from) is its
	 * first lane, family included: the rest of rw is zero
	 * (pp_note_prep), so it is left out. */
	if (reallen != sizeof(struct sockaddr_in)) {
		h += pp_mum(pp_lane(rw, 8) ^ c[4], pp_lane(rw, 16) ^ c[5]);
		h += pp_mum((rw->w[6] | (uint64_t)reallen << 32) ^ c[6], c[7]);
	}
	if (sw->s.on) {
		h += pp_mum(pp_lane(sw, 0) ^ c[8], pp_lane(sw, 8) ^ c[9]);
		h += pp_mum(sw->w[4] ^ c[10], c[7]);
	}
	return pp_mum(h ^ c[11], c[3]) | 1;
}

/* The set of this thread's fresh slots where mark belongs. */
static inline uint64_t *
pp_fresh_set(uint64_t mark)
{
	return pp_tfresh + ((mark >> (64 - PP_FRESH_BITS)) &
			    ~(uint64_t)(PP_FRESH_WAYS - 1));
}

static inline bool
pp_fresh_has(const uint64_t *set, uint64_t mark)
{
	unsigned i;

	for (i = 0; i < PP_FRESH_WAYS; i++)
		if (set[i] == mark)
			return true;
	return false;
}

/*
 * Does the thread's last route say exactly what nt says: the same
 * client on a socket of the same family and port, through the same
 * proxy, this second?  Then nothing is left to note.  pp_note_prep()
 * asks, with pp_last_gen even before and after; pp_rt_note() takes the
 * answer if the count has not moved since (no signal handler of the
 * thread noted a route in between), else asks again.
 */
static inline bool
pp_last_says(const struct pp_note *nt)
{
	/* The key first: what differs when clients take turns. */
	return pp_rkeyw_eq(&pp_last.k, &nt->k) && pp_last.valid &&
	       pp_last.family == nt->family && pp_last.moves == nt->moves &&
	       pp_rsnap_says(&pp_last.r, nt);
}

PP_HOT_DGRAM bool
pp_note_prep(struct pp_note *nt, const struct sockaddr *real, socklen_t reallen,
	     uint32_t now)
{
	if (reallen > sizeof(nt->rw))
		return false;
	memset(&nt->rw, 0, sizeof(nt->rw));
	if (reallen == sizeof(struct sockaddr_in)) /* a fixed-size copy */
		memcpy(&nt->rw, real, sizeof(struct sockaddr_in));
	else
		memcpy(&nt->rw, real, reallen);
	nt->reallen = reallen;
	nt->now = now;
	nt->moves = atomic_load_explicit(&pp_rt_moves, memory_order_acquire);
	nt->mark = 0;
	nt->set = NULL;
	nt->gen = pp_last_gen;
	atomic_signal_fence(memory_order_seq_cst);
	nt->same = !(nt->gen & 1) && pp_last_says(nt);
	atomic_signal_fence(memory_order_seq_cst);
	nt->same = nt->same && pp_last_gen == nt->gen;
	/* A client's further datagrams this second need no fingerprint
	 * (pp_rt_note computes it after all if pp_last changes first). */
	if (pp_tfresh != NULL && pp_udp_routing() && !nt->same) {
		nt->mark = pp_fresh_mark(&nt->k, &nt->rw, reallen, &nt->sw,
					 nt->now, nt->moves);
		nt->set = pp_fresh_set(nt->mark);
		__builtin_prefetch(nt->set);
	}
	return true;
}

/*
 * Client k came through proxy real (pp_rt_note): remember it.  An
 * entry that already says so and was refreshed this second is left
 * alone, without the lock: the LRU order and the idle time are exact to
 * the second.  Each thread keeps, in a small array of 8-way sets, the
 * fingerprints of what it noted (or found already noted) this second:
 * a client's further datagrams within the second then touch one cache
 * line of that array, not the table's bucket and entry.
 */
PP_HOT_DGRAM void
pp_rt_note(struct pp_note *nt)
{
	const union pp_rkeyw *k = &nt->k;
	struct pp_rsnap cur;
	struct pp_rbucket *b;
	struct pp_route *e;
	uint64_t mark = nt->mark, *set = nt->set;
	uint32_t h, i, now = nt->now, moves;
	unsigned w;
	bool nested;

	/* Interrupting itself (a signal handler): the table only. */
	nested = pp_noting;
	pp_noting = true;
	atomic_signal_fence(memory_order_seq_cst);
	if (nested)
		set = NULL;
	/* The same client through the same proxy as the thread's last
	 * datagram, in the same second: nothing to do. */
	else if (nt->same && (pp_last_gen == nt->gen || pp_last_says(nt)))
		goto out;
	if (pp_udp_routing()) {
		if (set != NULL && pp_fresh_has(set, mark))
			goto remember;
		h = pp_rt_hash(k);
		if (pp_rt_get(k, h, &cur) && pp_rsnap_says(&cur, nt))
			goto fresh;
	}
	/* A signal handler whose thread holds the lock: not noted. */
	if (!pp_lock(&pp_rt.mtx, PP_HOLD_ROUTES))
		goto out;
	if (!pp_rt_create()) {
		pp_unlock(&pp_rt.mtx, PP_HOLD_ROUTES);
		goto out;
	}
	h = pp_rt_hash(k);
	b = &pp_rt.bucket[h];
	i = pp_rt_find(k, h);
	if (i != 0) {
		pp_rt_copy(i, &cur);
		if (!pp_rsnap_proxy_is(&cur, nt))
			pp_rt_moved();
		pp_lru_unlink(i);
		pp_rt_wbegin(b);
		pp_rt_fill(i, nt);
		pp_rt_wend(b);
	} else {
		if (pp_rt.used < PP_ROUTE_MAX) {
			i = ++pp_rt.used;
		} else {
			i = pp_rt.oldest;
			pp_rt_moved();
			pp_lru_unlink(i);
			pp_chain_unlink(i);
		}
		e = &pp_rt.r[i - 1];
		pp_rt_wbegin(b);
		for (w = 0; w < PP_RKEY_W; w++)
			atomic_store_explicit(&e->key[w], k->w[w],
					      memory_order_relaxed);
		pp_rt_fill(i, nt);
		atomic_store_explicit(
			&e->next,
			atomic_load_explicit(&b->head, memory_order_relaxed),
			memory_order_relaxed);
		atomic_store_explicit(&b->head, i, memory_order_relaxed);
		pp_rt_wend(b);
	}
	pp_lru_push(i);
	/* The table says this note as of the moves count now, which this
	 * write (or another since pp_note_prep) may have stepped: the
	 * fingerprint and the last route stand for that count. */
	moves = atomic_load_explicit(&pp_rt_moves, memory_order_relaxed);
	pp_unlock(&pp_rt.mtx, PP_HOLD_ROUTES);
	if (pp_tfresh != NULL && !nested &&
	    (set == NULL /* a new table */ || moves != nt->moves)) {
		mark = pp_fresh_mark(k, &nt->rw, nt->reallen, &nt->sw, now,
				     moves);
		set = pp_fresh_set(mark);
	}
	nt->moves = moves;
fresh:
	/* Newest first; the oldest of the set goes (marks of an earlier
	 * second never match again anyway). */
	if (set != NULL) {
		memmove(set + 1, set, (PP_FRESH_WAYS - 1) * sizeof(*set));
		set[0] = mark;
	}
remember:
	if (nested)
		goto out;
	pp_last_gen++;
	atomic_signal_fence(memory_order_seq_cst);
	pp_last.k = *k;
	pp_last.family = nt->family;
	pp_last.moves = nt->moves;
	pp_last.adv = *nt->adv;
	pp_last.r.seen = now;
	pp_last.r.reallen = nt->reallen;
	pp_last.r.real = nt->rw;
	pp_last.r.sw = nt->sw;
	pp_last.valid = true;
	atomic_signal_fence(memory_order_seq_cst);
	pp_last_gen++;
out:
	atomic_signal_fence(memory_order_seq_cst);
	pp_noting = nested;
}

bool
pp_udp_routing(void)
{
	return atomic_load_explicit(&pp_rt_up, memory_order_acquire);
}

/* out->via: the proxy of route r, in family (the socket's). */
static inline bool
pp_via(const struct pp_rsnap *r, uint16_t family, struct pp_reply *out)
{
	/* What nearly every reply is: an IPv4 proxy, an IPv4 socket. */
	if (family == AF_INET && r->reallen == sizeof(struct sockaddr_in) &&
	    r->real.a.sa.sa_family == AF_INET) {
		out->via.sin = (struct sockaddr_in){
			.sin_family = AF_INET,
			.sin_port = r->real.a.sin.sin_port,
			.sin_addr = r->real.a.sin.sin_addr,
		};
		out->vialen = sizeof(struct sockaddr_in);
		return true;
	}
	return pp_sa_as_family(&r->real.a.sa, r->reallen, family, &out->via,
			       &out->vialen);
}

/* out for the route of key k (client k->k.aaddr) and snapshot r. */
static inline bool
pp_reply_from(const union pp_rkeyw *k, const struct pp_rsnap *r,
	      uint16_t family, struct pp_reply *out)
{
	bool hit = pp_via(r, family, out);

	out->spp = hit && r->sw.s.on;
	if (out->spp)
		pp_spp_build(out->hdr, k->k.aaddr, k->k.aport, r->sw.s.paddr,
			     r->sw.s.pport);
	return hit;
}

/*
 * The reply to the datagram this thread received last (what a server
 * nearly always sends): out from pp_last as it stands, without copying
 * it, when dst is that client on a socket of the same family and port
 * and the route is fresh at second now.  False (out then unspecified)
 * for anything else, or when a signal handler noted a route meanwhile:
 * pp_rt_find_route() then looks further.
 */
static inline bool
pp_last_reply(uint16_t family, uint16_t lport, const struct sockaddr *dst,
	      socklen_t dlen, uint32_t now, struct pp_reply *out)
{
	unsigned g = pp_last_gen;
	bool hit;

	atomic_signal_fence(memory_order_seq_cst);
	hit = !(g & 1) && pp_last.valid &&
	      now - pp_last.r.seen <= PP_ROUTE_IDLE_S &&
	      pp_last.k.k.lport == lport && pp_last.family == family &&
	      pp_same_dst(&pp_last.adv, dst, dlen) &&
	      pp_reply_from(&pp_last.k, &pp_last.r, family, out);
	atomic_signal_fence(memory_order_seq_cst);
	return hit && pp_last_gen == g;
}

/* pp_rt_lookup() once the table is up. */
static bool
pp_rt_find_route(uint16_t family, uint16_t lport, const struct sockaddr *dst,
		 socklen_t dlen, uint32_t now, struct pp_reply *out)
{
	struct pp_lastroute last;
	union pp_rkeyw k;
	const union pp_rkeyw *kp = &k;
	struct pp_rsnap cur;
	const struct pp_rsnap *r = &cur;
	bool hit = false, fresh;
	int saved = errno;

	fresh = pp_last_get(&last) && now - last.r.seen <= PP_ROUTE_IDLE_S;
	k.k.lport = lport;
	if (fresh && last.k.k.lport == lport && last.family == family &&
	    pp_same_dst(&last.adv, dst, dlen)) {
		r = &last.r; /* the reply to what was just received */
		kp = &last.k;
	} else if (!pp_sa_norm(dst, dlen, k.k.aaddr, &k.k.aport)) {
		goto out;
	} else if (fresh && memcmp(&last.k, &k, sizeof(k)) == 0) {
		r = &last.r;
	} else if (!pp_rt_get(&k, pp_rt_hash(&k), &cur) ||
		   now - cur.seen > PP_ROUTE_IDLE_S) {
		goto out;
	}
	hit = pp_reply_from(kp, r, family, out);
out:
	errno = saved;
	return hit;
}

bool
pp_rt_lookup(uint16_t family, uint16_t lport, const struct sockaddr *dst,
	     socklen_t dlen, uint32_t now, struct pp_reply *out)
{
	return pp_udp_routing() &&
	       (pp_last_reply(family, lport, dst, dlen, now, out) ||
		pp_rt_find_route(family, lport, dst, dlen, now, out));
}

PP_HOT_DGRAM bool
pp_udp_route(int fd, const struct sockaddr *dst, socklen_t dlen,
	     struct pp_reply *out)
{
	struct pp_fddgram fi;
	uint32_t now;

	if (!pp_udp_routing() || pp_fd_dgram(fd, &fi) != PP_FD_UDP)
		return false;
	now = pp_now_s();
	if (!pp_last_reply(fi.family, fi.lport, dst, dlen, now, out) &&
	    !pp_rt_find_route(fi.family, fi.lport, dst, dlen, now, out))
		return false;
	pp_stat_inc(fi.stat, PP_ST_ROUTED);
	return true;
}
