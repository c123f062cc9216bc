/*
 * udp.c - PROXY-only datagram sockets: one v2 header per datagram.
 *
 * Which sockets.  A datagram socket is PROXY-only when the address it is
 * bound to matches a PORT/udp entry of PP_PORTS.  bind() (hook_udp.c)
 * classifies it right after the kernel accepted the address, and the
 * constructor classifies the bound datagram sockets a program inherits
 * (fds 0-2 as inetd's "wait" services get them, and systemd's LISTEN_FDS
 * range).  The answer is a PP_FD_UDP entry in the descriptor table,
 * holding the socket's cookie, its family and its bound address.  Every
 * receive call on any other descriptor (read() on every file of the
 * program included) costs one table load and goes straight to libc.
 *
 * Identity.  The number of a PROXY-only socket may be closed behind the
 * hooks' back and given to another descriptor where no hook sees it.
 * Each receive asks the kernel at no extra cost: it carries MSG_OOB,
 * which UDP ignores and every other socket refuses (EINVAL, EOPNOTSUPP)
 * before taking a byte, a non-socket fails with ENOTSOCK, and a
 * datagram whose source is not an address of the entry's family is
 * another socket's.  Such a descriptor's entry is forgotten and the
 * call is libc's, every byte still there (a datagram already received
 * is delivered as the kernel gave it).  A UDP socket of the same family
 * is told apart by its cookie, compared before a datagram is dropped,
 * so its datagrams are never lost; one whose sources send valid headers
 * is not (see doc/security.md, section 4).
 *
 * Receiving.  The header length differs from one datagram to the next,
 * so the kernel cannot be asked to put the payload where the program
 * wants it.  Each datagram is received whole (MSG_TRUNC tells its real
 * length).  recvfrom, recv and read use the kernel's recvfrom (cheaper
 * than recvmsg), into the program's buffer when it holds 64 KiB (more
 * than any UDP payload), else into a private 64 KiB buffer.  A recvmsg
 * with one buffer receives into it followed by the private one for what
 * does not fit.  In the program's buffer the header is read in place
 * and the payload moved down over it.  A datagram longer than the
 * program's buffer is first put together in the private one, and so is
 * every datagram for a program that gives several buffers; its payload
 * is then copied into them.  The private buffer is one per
 * thread, mapped the first time that thread receives on a PROXY-only
 * socket and unmapped when it exits.  The caller's control buffer is
 * handed to the kernel as it is, so IP_PKTINFO, IPV6_PKTINFO,
 * timestamps and MSG_CTRUNC are exactly the kernel's: the real local
 * address, never an advertised one.
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
 * table, without an SPP header.
 * A dropped datagram is never seen by the program: the call receives
 * the next one, which blocks, or fails with EAGAIN, exactly when the
 * program's own call would.  Under MSG_PEEK a bad datagram is really
 * received (and so removed) before the next one is peeked.
 *
 * Replies.  A datagram that advertised a client records "client C came
 * through proxy P on local port L" in a table of at most PP_ROUTE_MAX
 * entries, least recently used evicted first, an entry older than
 * PP_ROUTE_IDLE_S seconds since C's last datagram ignored.  sendto,
 * sendmsg and sendmmsg to C on a PROXY-only socket of port L go to P
 * instead (the proxy expects the bare reply), and so does connect() to
 * C, so that send() and write() on the connected socket reach P too.
 * Any other destination is sent to as the program asked.  The table is
 * created on the first advertised datagram.  Lookups take no lock: each
 * hash bucket has a sequence number that writers make odd while they
 * change it, and a reader that saw it move looks again (taking the lock
 * after a few tries).  Writers hold one mutex, which only the
 * PROXY-only sockets ever take, and only when a client is new, came
 * through another proxy, or was last refreshed in an earlier second
 * (CLOCK_MONOTONIC_COARSE): the LRU order and the idle time are exact
 * to the second.  A client's further datagrams within that second cost
 * a look at one set of a small per-thread array of fingerprints ("this
 * client through this proxy, noted this second"), one cache line where
 * the table's bucket and entry are two or three.
 * A reply to the datagram the thread has just received, what servers
 * nearly always send, is routed from a copy of that datagram's route
 * kept by the thread, without searching the table.  A fork handler
 * re-initialises the mutex in the child.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "ident.h"
#include "shim.h"
#include "udp.h"

#define PP_UDP_BUF 65536u   /* larger than any UDP datagram's payload */
#define PP_ROUTE_MAX 65536u /* reply table entries (a power of two) */
#define PP_ROUTE_IDLE_S 120u
#define PP_WARN_EVERY_S 10u
#define PP_MMSG_MAX 1024u /* UIO_MAXIOV: the kernel's cap on vlen */
#define PP_INHERIT_MAX 4096
#define PP_FRESH_BITS 14 /* a thread's "noted this second" slots: 16384 */
#define PP_FRESH_WAYS 8  /* in sets of 8: one cache line */

/*
 * The hooks' per-thread state.  The library is loaded at start (it is
 * preloaded), so its thread-local variables can live in the static TLS
 * block, reached without a call to __tls_get_addr (PP_TLS, reentry.h).
 */

/* ===== The per-thread receive buffer ===== */

/* The receive buffer, the thread's fresh-route slots (see pp_rt_note),
 * then the buffer of a signal handler's receive that interrupted one of
 * the thread's (pp_udp_buf_take), in one mapping.  Pages never touched
 * cost no memory. */
#define PP_TFRESH_SZ (sizeof(uint64_t) << PP_FRESH_BITS)
#define PP_TMAP (PP_UDP_BUF + PP_TFRESH_SZ + PP_UDP_BUF)

static PP_TLS uint8_t *pp_tbuf;
static PP_TLS uint64_t *pp_tfresh;
static pthread_key_t pp_tbuf_key;
static pthread_once_t pp_tbuf_once = PTHREAD_ONCE_INIT;
static bool pp_tbuf_key_ok;

static void
pp_tbuf_free(void *p)
{
	munmap(p, PP_TMAP);
}

static void
pp_tbuf_key_init(void)
{
	pp_tbuf_key_ok = pthread_key_create(&pp_tbuf_key, pp_tbuf_free) == 0;
}

/* mmap rather than malloc: no allocator lock inside a receive call.
 * Called as section PP_HOLD_UDPBUF only (pp_udp_buf_take): a handler
 * never enters the pthread_once below while its thread is inside it. */
static uint8_t *
pp_udp_buf(void)
{
	void *p;

	if (pp_tbuf != NULL)
		return pp_tbuf;
	p = mmap(NULL, PP_TMAP, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	pthread_once(&pp_tbuf_once, pp_tbuf_key_init);
	if (pp_tbuf_key_ok)
		(void)pthread_setspecific(pp_tbuf_key, p);
	pp_tfresh = (uint64_t *)((uint8_t *)p + PP_UDP_BUF);
	pp_tbuf = p;
	return p;
}

/*
 * The buffer for one receive: the thread's; for a signal handler that
 * interrupted its thread inside a receive, the spare one beside it, so
 * that the interrupted receive finds its datagram intact; deeper still
 * (or before the thread's mapping exists), a mapping of its own.  *held
 * says which (a PP_HOLD_* bit, or 0 for a mapping of its own); give it
 * back with pp_udp_buf_give().  NULL when memory is short.
 */
static uint8_t *
pp_udp_buf_take(unsigned *held)
{
	void *p;

	*held = 0;
	if (pp_hold(PP_HOLD_UDPBUF)) {
		p = pp_udp_buf();
		if (p == NULL)
			pp_release(PP_HOLD_UDPBUF);
		else
			*held = PP_HOLD_UDPBUF;
		return p;
	}
	if (pp_tbuf != NULL && pp_hold(PP_HOLD_UDPBUF2)) {
		*held = PP_HOLD_UDPBUF2;
		return pp_tbuf + PP_UDP_BUF + PP_TFRESH_SZ;
	}
	p = mmap(NULL, PP_UDP_BUF, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void
pp_udp_buf_give(uint8_t *buf, unsigned held)
{
	if (held != 0)
		pp_release(held);
	else
		munmap(buf, PP_UDP_BUF);
}

/* ===== Addresses ===== */

static uint32_t
pp_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint32_t)ts.tv_sec;
}

/* An IPv4 or IPv6 address as 16 bytes (IPv4 as ::ffff:a.b.c.d) and a
 * port in network order.  False for anything else. */
static bool
pp_norm(const struct sockaddr *sa, socklen_t len, uint8_t a[16], uint16_t *port)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

	if (sa == NULL || len < sizeof(sa_family_t))
		return false;
	if (sa->sa_family == AF_INET && len >= sizeof(*in)) {
		memset(a, 0, 10);
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &in->sin_addr, 4);
		*port = in->sin_port;
		return true;
	}
	if (sa->sa_family == AF_INET6 && len >= sizeof(*in6)) {
		memcpy(a, &in6->sin6_addr, 16);
		*port = in6->sin6_port;
		return true;
	}
	return false;
}

static bool
pp_is_mapped(const uint8_t a[16])
{
	struct in6_addr in6;

	memcpy(&in6, a, sizeof(in6));
	return IN6_IS_ADDR_V4MAPPED(&in6);
}

/*
 * Express an address in the form a socket of family fam uses: IPv4 on an
 * IPv6 socket becomes ::ffff:a.b.c.d, a mapped address on an IPv4 socket
 * becomes plain IPv4.  False when fam cannot hold it.
 */
static bool
pp_as_family(const struct sockaddr *sa, socklen_t len, int fam,
	     union pp_inaddr *out, socklen_t *outlen)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
	uint8_t a[16];
	uint16_t port;

	/* Already in that family (the common case): no conversion. */
	if (sa != NULL && fam == AF_INET && len >= sizeof(*in) &&
	    sa->sa_family == AF_INET) {
		memset(out, 0, sizeof(*out));
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = in->sin_port;
		out->sin.sin_addr = in->sin_addr;
		*outlen = sizeof(out->sin);
		return true;
	}
	if (!pp_norm(sa, len, a, &port))
		return false;
	memset(out, 0, sizeof(*out));
	if (fam == AF_INET6) {
		if (sa->sa_family == AF_INET6)
			out->sin6 = *(const struct sockaddr_in6 *)sa;
		out->sin6.sin6_family = AF_INET6;
		out->sin6.sin6_port = port;
		memcpy(&out->sin6.sin6_addr, a, 16);
		*outlen = sizeof(out->sin6);
		return true;
	}
	if (fam == AF_INET && pp_is_mapped(a)) {
		out->sin.sin_family = AF_INET;
		out->sin.sin_port = port;
		memcpy(&out->sin.sin_addr, a + 12, 4);
		*outlen = sizeof(out->sin);
		return true;
	}
	return false;
}

/* ===== The reply table ===== */

/*
 * Entries are read without the lock: each bucket has a sequence number,
 * odd while a writer (who holds the mutex) changes the chain or an entry
 * on it; a reader copies what it needs and tries again if the number
 * moved.  Everything a reader loads is an atomic word, so the copy is
 * never a data race.  The LRU links are the writers' alone.
 */
#define PP_RKEY_W 5 /* struct pp_rkey in 32-bit words */
#define PP_REAL_W (sizeof(union pp_inaddr) / 4)
#define PP_RT_TRIES 4 /* lock-free attempts before taking the lock */

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

_Static_assert(sizeof(struct pp_rkey) == 4 * PP_RKEY_W, "key words");
_Static_assert(sizeof(union pp_inaddr) % 4 == 0, "address words");

struct pp_route {
	_Atomic uint32_t next; /* hash chain: index + 1, 0 ends it */
	_Atomic uint32_t seen; /* pp_now_s() when last refreshed */
	_Atomic uint32_t key[PP_RKEY_W];
	_Atomic uint32_t reallen;
	_Atomic uint32_t real[PP_REAL_W]; /* the proxy, as the kernel
					     reported it */
	uint32_t older, newer; /* LRU list: index + 1, under the mutex */
};

struct pp_rbucket {
	_Atomic uint32_t seq;  /* odd while a writer is inside */
	_Atomic uint32_t head; /* chain: index + 1, 0 when empty */
};

/* What a reader copies out of an entry. */
struct pp_rsnap {
	uint32_t seen;
	socklen_t reallen;
	union pp_realw real;
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
static bool
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
	uint32_t used;             /* entries handed out so far */
	uint32_t newest;           /* index + 1 */
	uint32_t oldest;           /* index + 1 */
	uint64_t seed;
	bool failed; /* the mapping failed once: never retry */
} pp_rt = { .mtx = PTHREAD_MUTEX_INITIALIZER };

static atomic_bool pp_rt_up;

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

/* Called with the lock held. */
static bool
pp_rt_create(void)
{
	size_t sz = PP_ROUTE_MAX *
		    (sizeof(struct pp_route) + sizeof(struct pp_rbucket));
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
	clock_gettime(CLOCK_MONOTONIC, &ts);
	pp_rt.seed = ((uint64_t)ts.tv_nsec << 32 | (uint64_t)ts.tv_sec) ^
		     (uint64_t)getpid() * 0x9e3779b97f4a7c15u;
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
static uint32_t
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

static void
pp_rt_copy(uint32_t i, struct pp_rsnap *out)
{
	const struct pp_route *e = &pp_rt.r[i - 1];
	unsigned j;

	out->seen = atomic_load_explicit(&e->seen, memory_order_relaxed);
	out->reallen = atomic_load_explicit(&e->reallen, memory_order_relaxed);
	for (j = 0; j < PP_REAL_W; j++)
		out->real.w[j] =
			atomic_load_explicit(&e->real[j], memory_order_relaxed);
}

/*
 * A copy of the entry for k (chain h) into *out; false when there is
 * none.  Table up.  Without the lock unless writers keep getting in the
 * way.
 */
static bool
pp_rt_get(const union pp_rkeyw *k, uint32_t h, struct pp_rsnap *out)
{
	struct pp_rbucket *b = &pp_rt.bucket[h];
	uint32_t s0, i;
	unsigned tries;

	for (tries = 0; tries < PP_RT_TRIES; tries++) {
		s0 = atomic_load_explicit(&b->seq, memory_order_acquire);
		if (s0 & 1)
			continue;
		i = pp_rt_find(k, h);
		if (i != 0)
			pp_rt_copy(i, out);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&b->seq, memory_order_relaxed) == s0)
			return i != 0;
	}
	/* This thread holds the lock (a signal handler interrupted it in
	 * the middle of this very bucket): no route for now. */
	if (!pp_lock(&pp_rt.mtx, PP_HOLD_ROUTES))
		return false;
	i = pp_rt_find(k, h);
	if (i != 0)
		pp_rt_copy(i, out);
	pp_unlock(&pp_rt.mtx, PP_HOLD_ROUTES);
	return i != 0;
}

/* A writer (lock held) enters and leaves bucket b. */
static void
pp_rt_wbegin(struct pp_rbucket *b)
{
	uint32_t s = atomic_load_explicit(&b->seq, memory_order_relaxed);

	atomic_store_explicit(&b->seq, s + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
}

static void
pp_rt_wend(struct pp_rbucket *b)
{
	uint32_t s = atomic_load_explicit(&b->seq, memory_order_relaxed);

	atomic_store_explicit(&b->seq, s + 1, memory_order_release);
}

static void
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

static void
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
static void
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

/* Store the proxy and the time in entry i; inside a write of its
 * bucket. */
static void
pp_rt_fill(uint32_t i, const union pp_realw *real, socklen_t reallen,
	   uint32_t now)
{
	struct pp_route *e = &pp_rt.r[i - 1];
	unsigned j;

	atomic_store_explicit(&e->seen, now, memory_order_relaxed);
	atomic_store_explicit(&e->reallen, reallen, memory_order_relaxed);
	for (j = 0; j < PP_REAL_W; j++)
		atomic_store_explicit(&e->real[j], real->w[j],
				      memory_order_relaxed);
}

static inline uint64_t
pp_w64(uint32_t a, uint32_t b)
{
	return (uint64_t)a << 32 | b;
}

/* One step of a 64-bit hash chain: the xor-shift after the multiply
 * carries the high bits, which a product alone never moves down. */
static inline uint64_t
pp_mix(uint64_t h, uint64_t w, uint64_t c)
{
	h = (h ^ w) * c;
	return h ^ (h >> 32);
}

/*
 * A 64-bit fingerprint of "client k came through proxy rw in second
 * now", never 0.  Its top bits choose the set of the thread's slots.
 */
static uint64_t
pp_fresh_mark(const union pp_rkeyw *k, const union pp_realw *rw,
	      socklen_t reallen, uint32_t now)
{
	const uint64_t c1 = 0x9e3779b97f4a7c15u, c2 = 0xc2b2ae3d27d4eb4fu;
	const uint32_t *a = k->w, *r = rw->w;
	uint64_t x, y;

	_Static_assert(PP_RKEY_W == 5 && PP_REAL_W == 7, "mark lanes");
	/* two independent chains, then mixed together (murmur3's fmix64) */
	x = pp_mix(pp_rt.seed, pp_w64(a[0], a[1]), c1);
	x = pp_mix(x, pp_w64(a[2], a[3]), c1);
	x = pp_mix(x, pp_w64(a[4], now), c1);
	y = pp_mix(~pp_rt.seed, pp_w64(r[0], r[1]), c2);
	y = pp_mix(y, pp_w64(r[2], r[3]), c2);
	y = pp_mix(y, pp_w64(r[4], r[5]), c2);
	y = pp_mix(y, pp_w64(r[6], reallen), c2);
	x ^= y << 31 | y >> 33;
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdu;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53u;
	x ^= x >> 33;
	return x | 1;
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

/* A route to note, prepared by pp_note_prep(). */
struct pp_note {
	union pp_rkeyw k;
	uint16_t family;            /* the receiving socket's */
	const union pp_inaddr *adv; /* the client as the program is told */
	union pp_realw rw;
	socklen_t reallen;
	uint32_t now;
	uint64_t mark; /* pp_fresh_mark(), or 0 */
	uint64_t *set; /* its set in this thread's array, or NULL */
};

/*
 * Get the note "client k came through proxy real" ready, and have the
 * processor fetch the thread's fresh set for it while the caller does
 * other work (copying the payload out) before pp_rt_note().  False when
 * real cannot be recorded.
 */
static bool
pp_note_prep(struct pp_note *nt, const struct sockaddr *real, socklen_t reallen)
{
	if (reallen > sizeof(nt->rw))
		return false;
	memset(&nt->rw, 0, sizeof(nt->rw));
	if (reallen == sizeof(struct sockaddr_in)) /* a fixed-size copy */
		memcpy(&nt->rw, real, sizeof(struct sockaddr_in));
	else
		memcpy(&nt->rw, real, reallen);
	nt->reallen = reallen;
	nt->now = pp_now_s();
	nt->mark = 0;
	nt->set = NULL;
	if (pp_tfresh != NULL && pp_udp_routing()) {
		nt->mark = pp_fresh_mark(&nt->k, &nt->rw, reallen, nt->now);
		nt->set = pp_fresh_set(nt->mark);
		__builtin_prefetch(nt->set);
	}
	return true;
}

/*
 * Client k came through proxy real: remember it (newest first).  An
 * entry that already says so and was refreshed this second is left
 * alone, without the lock: the LRU order and the idle time are exact to
 * the second.  Each thread keeps, in a small array of 8-way sets, the
 * fingerprints of what it noted (or found already noted) this second:
 * a client's further datagrams within the second then touch one cache
 * line of that array, not the table's bucket and entry.
 */
static void
pp_rt_note(struct pp_note *nt)
{
	const union pp_rkeyw *k = &nt->k;
	const union pp_realw *rwp = &nt->rw;
	struct pp_rsnap cur;
	struct pp_rbucket *b;
	struct pp_route *e;
	socklen_t reallen = nt->reallen;
	uint64_t mark = nt->mark, *set = nt->set;
	uint32_t h, i, now = nt->now;
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
	else if (pp_last.valid && pp_last.r.seen == now &&
		 pp_last.r.reallen == reallen &&
		 memcmp(&pp_last.k, k, sizeof(*k)) == 0 &&
		 memcmp(&pp_last.r.real, rwp, sizeof(*rwp)) == 0)
		goto remember;
	if (pp_udp_routing()) {
		if (set != NULL && pp_fresh_has(set, mark))
			goto remember;
		h = pp_rt_hash(k);
		if (pp_rt_get(k, h, &cur) && cur.seen == now &&
		    cur.reallen == reallen &&
		    memcmp(&cur.real, rwp, sizeof(*rwp)) == 0)
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
		pp_lru_unlink(i);
		pp_rt_wbegin(b);
		pp_rt_fill(i, rwp, reallen, now);
		pp_rt_wend(b);
	} else {
		if (pp_rt.used < PP_ROUTE_MAX) {
			i = ++pp_rt.used;
		} else {
			i = pp_rt.oldest;
			pp_lru_unlink(i);
			pp_chain_unlink(i);
		}
		e = &pp_rt.r[i - 1];
		pp_rt_wbegin(b);
		for (w = 0; w < PP_RKEY_W; w++)
			atomic_store_explicit(&e->key[w], k->w[w],
					      memory_order_relaxed);
		pp_rt_fill(i, rwp, reallen, now);
		atomic_store_explicit(
			&e->next,
			atomic_load_explicit(&b->head, memory_order_relaxed),
			memory_order_relaxed);
		atomic_store_explicit(&b->head, i, memory_order_relaxed);
		pp_rt_wend(b);
	}
	pp_lru_push(i);
	pp_unlock(&pp_rt.mtx, PP_HOLD_ROUTES);
	if (pp_tfresh != NULL && set == NULL && !nested) { /* a new table */
		mark = pp_fresh_mark(k, rwp, reallen, now);
		set = pp_fresh_set(mark);
	}
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
	pp_last.adv = *nt->adv;
	pp_last.r.seen = now;
	pp_last.r.reallen = reallen;
	pp_last.r.real = *rwp;
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

bool
pp_udp_route(int fd, const struct sockaddr *dst, socklen_t dlen,
	     union pp_inaddr *via, socklen_t *vialen)
{
	struct pp_lastroute last;
	union pp_rkeyw k;
	struct pp_rsnap cur;
	const struct pp_rsnap *r = &cur;
	uint16_t family, lport;
	uint32_t now;
	bool hit = false, fresh;
	int saved = errno;

	if (!pp_udp_routing() ||
	    pp_fd_brief(fd, &family, &lport, NULL) != PP_FD_UDP)
		goto out;
	now = pp_now_s();
	fresh = pp_last_get(&last) && now - last.r.seen <= PP_ROUTE_IDLE_S;
	k.k.lport = lport;
	if (fresh && last.k.k.lport == lport && last.family == family &&
	    pp_same_dst(&last.adv, dst, dlen))
		r = &last.r; /* the reply to what was just received */
	else if (!pp_norm(dst, dlen, k.k.aaddr, &k.k.aport))
		goto out;
	else if (fresh && memcmp(&last.k, &k, sizeof(k)) == 0)
		r = &last.r;
	else if (!pp_rt_get(&k, pp_rt_hash(&k), &cur) ||
		 now - cur.seen > PP_ROUTE_IDLE_S)
		goto out;
	hit = pp_as_family(&r->real.a.sa, r->reallen, family, via, vialen);
out:
	errno = saved;
	return hit;
}

/* ===== Classification ===== */

static bool
pp_udp_configured(void)
{
	size_t i;

	for (i = 0; i < pp_cfg.nports; i++)
		if (pp_cfg.ports[i].socktype == SOCK_DGRAM)
			return true;
	return false;
}

void
pp_udp_classify(int fd, bool clear)
{
	struct pp_fdinfo info;
	const struct pp_port *port = NULL;
	union pp_sockaddr sa;
	socklen_t len = sizeof(sa), olen = sizeof(int);
	int type = 0, saved = errno;

	if (!pp_active() || !pp_udp_configured() ||
	    getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) != 0 ||
	    type != SOCK_DGRAM || pp_real.getsockname(fd, &sa.sa, &len) != 0 ||
	    (sa.sa.sa_family != AF_INET && sa.sa.sa_family != AF_INET6) ||
	    len > sizeof(info.dst) ||
	    (port = pp_config_find(&pp_cfg, SOCK_DGRAM, &sa.sa, len)) == NULL) {
		if (clear && pp_fd_kind(fd) != PP_FD_NONE &&
		    !pp_foreign_process())
			pp_fd_clear(fd);
		goto out;
	}
	if (pp_foreign_process())
		goto out;
	memset(&info, 0, sizeof(info));
	info.kind = PP_FD_UDP;
	info.socktype = SOCK_DGRAM;
	info.family = sa.sa.sa_family;
	info.spp = port->spp;
	info.cookie = pp_socket_cookie(fd);
	memcpy(&info.dst, &sa, len); /* the bound address */
	info.dstlen = len;
	info.lport = sa.sa.sa_family == AF_INET6 ? sa.sin6.sin6_port
						 : sa.sin.sin_port;
	if (!pp_fd_set(fd, &info)) {
		pp_log(PP_LOG_ERROR,
		       "fd %d: cannot track a PROXY-only UDP "
		       "socket: its datagrams pass untouched",
		       fd);
		goto out;
	}
	if (pp_log_on(PP_LOG_DEBUG)) {
		char where[INET6_ADDRSTRLEN + 16];

		pp_sa_fmt(&sa.sa, len, where, sizeof(where));
		pp_log(PP_LOG_DEBUG, "fd %d bound to %s/udp is PROXY-only%s",
		       fd, where, info.spp ? " (SPP)" : "");
	}
out:
	errno = saved;
}

void
pp_udp_inherit(void)
{
	const char *v;
	char *end;
	long n, pid;
	int fd;

	if (!pp_active() || !pp_udp_configured())
		return;
	for (fd = 0; fd < 3; fd++)
		pp_udp_classify(fd, false);
	v = getenv("LISTEN_PID");
	if (v != NULL && *v != '\0') {
		pid = strtol(v, &end, 10);
		if (*end != '\0' || pid != (long)getpid())
			return;
	}
	v = getenv("LISTEN_FDS");
	if (v == NULL || *v == '\0')
		return;
	n = strtol(v, &end, 10);
	if (*end != '\0' || n <= 0)
		return;
	if (n > PP_INHERIT_MAX)
		n = PP_INHERIT_MAX;
	for (fd = 3; fd < 3 + n; fd++)
		pp_udp_classify(fd, false);
}

/* ===== Receiving ===== */

enum pp_verdict { PP_DG_DROP, PP_DG_REAL, PP_DG_ADV };

/*
 * The advertised source of a brief header in the form a socket of
 * family fam uses; false when fam cannot hold it.
 */
static bool
pp_brief_src(const struct pp_v2_brief *b, int fam, union pp_inaddr *out,
	     socklen_t *outlen)
{
	union pp_inaddr a;
	socklen_t alen = pp_v2_inet(b->family, b->src, b->sport, &a.sa);

	return pp_as_family(&a.sa, alen, fam, out, outlen);
}

/*
 * pp_judge() for a datagram from a PP_ALLOW source on an SPP socket: the
 * 38-byte header or nothing.
 */
static enum pp_verdict
pp_judge_spp(int family, const uint8_t *d, size_t n, size_t *skip,
	     union pp_inaddr *adv, socklen_t *advlen, const char **why)
{
	union pp_inaddr a;
	struct pp_spp h;
	socklen_t alen;

	if (!pp_parse_spp(d, n, &h)) {
		*why = n < PP_SPP_LEN ? "shorter than an SPP header"
				      : "no SPP header";
		return PP_DG_DROP;
	}
	*skip = PP_SPP_LEN;
	alen = pp_spp_inet(h.client, h.cport, &a.sa);
	if (pp_as_family(&a.sa, alen, family, adv, advlen))
		return PP_DG_ADV;
	*why = "IPv6 client on an IPv4 socket";
	return PP_DG_DROP;
}

/*
 * What datagram d[0..n) from src means.  *skip is set to the header
 * length to strip; for PP_DG_ADV *adv is the advertised client in the
 * socket's family.
 */
static enum pp_verdict
pp_judge(int family, bool spp, const union pp_sockaddr *src, socklen_t srclen,
	 const uint8_t *d, size_t n, size_t *skip, union pp_inaddr *adv,
	 socklen_t *advlen, const char **why)
{
	unsigned flags = pp_cfg.versions & (PP_ACCEPT_V2 | PP_ACCEPT_DRAFT);
	struct pp_v2_brief b;
	struct pp_header h;
	enum pp_err err;

	*skip = 0;
	if (!pp_acl_match(&pp_cfg.allow, &src->sa, srclen)) {
		if (pp_acl_match(&pp_cfg.direct, &src->sa, srclen))
			return PP_DG_REAL;
		*why = "source not in PP_ALLOW or PP_DIRECT";
		return PP_DG_DROP;
	}
	if (spp)
		return pp_judge_spp(family, d, n, skip, adv, advlen, why);
	/* What nearly every datagram carries, without the full parse. */
	if (pp_parse_v2_brief(d, n, flags, &b)) {
		*skip = b.len;
		if (b.transport == PP_TP_UNSPEC)
			return PP_DG_REAL;
		if (pp_brief_src(&b, family, adv, advlen))
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
	if (!pp_as_family(&h.src.sa, h.srclen, family, adv, advlen)) {
		*why = "IPv6 client on an IPv4 socket";
		return PP_DG_DROP;
	}
	return PP_DG_ADV;
}

static _Atomic uint32_t pp_last_warn;

static void
pp_dropped(int fd, const union pp_sockaddr *src, socklen_t srclen,
	   const char *why)
{
	enum pp_loglevel level = PP_LOG_INFO;
	uint32_t now, last;
	char who[INET6_ADDRSTRLEN + 16];

	if (!pp_log_on(PP_LOG_WARN))
		return;
	/* One warning every few seconds at most: a flood of bad datagrams
	 * must not become a flood of log lines.  The rest at info. */
	now = pp_now_s() + PP_WARN_EVERY_S; /* never 0 */
	last = atomic_load_explicit(&pp_last_warn, memory_order_relaxed);
	if ((last == 0 || now - last >= PP_WARN_EVERY_S) &&
	    atomic_compare_exchange_strong(&pp_last_warn, &last, now))
		level = PP_LOG_WARN;
	if (!pp_log_on(level))
		return;
	pp_sa_fmt(&src->sa, srclen, who, sizeof(who));
	pp_log(level, "fd %d: dropped a datagram from %s: %s", fd, who, why);
}

/* Scatter p[0..n) over the caller's buffers; returns what fitted. */
static size_t
pp_scatter(const struct msghdr *msg, const uint8_t *p, size_t n)
{
	size_t i, k, done = 0;

	for (i = 0; i < (size_t)msg->msg_iovlen && done < n; i++) {
		k = msg->msg_iov[i].iov_len;
		if (k > n - done)
			k = n - done;
		if (k > 0)
			memcpy(msg->msg_iov[i].iov_base, p + done, k);
		done += k;
	}
	return done;
}

/* Really receive (and forget) the datagram a MSG_PEEK looked at. */
static void
pp_consume(int fd, uint8_t *buf)
{
	struct iovec iov = { .iov_base = buf, .iov_len = 1 };
	struct msghdr m;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	(void)pp_real.recvmsg(fd, &m, MSG_DONTWAIT | MSG_TRUNC);
}

static ssize_t pp_udp_recv(int fd, struct msghdr *msg, int flags,
			   pp_recvmsg_fn via);
static inline __attribute__((always_inline)) ssize_t
pp_udp_recv_in(int fd, struct msghdr *msg, int flags, pp_recvmsg_fn via,
	       uint8_t *buf, uint16_t family, uint16_t lport, bool spp);

/*
 * Is fd still the datagram socket its entry describes?  The datagram
 * path asks the kernel at no cost of its own (see pp_udp_recv); this,
 * one getsockopt, is only asked before a datagram is dropped and when
 * the kernel refused the probe.  True when the kernel has no cookies
 * (nothing to compare: the entry is kept, as it always was).
 */
static bool
pp_udp_same(int fd)
{
	struct pp_fdinfo info;

	if (pp_fd_get(fd, &info) != PP_FD_UDP)
		return false;
	return info.cookie == 0 || pp_same_socket(fd, info.cookie);
}

/*
 * Forget the entry of fd, which the kernel's answer showed to be stale,
 * unless the number is by now a PROXY-only socket of its own (closed and
 * classified anew by another thread meanwhile).  Off the hot path.
 */
static void
pp_udp_forget(int fd)
{
	struct pp_fdinfo info;
	int saved = errno;

	if (!pp_foreign_process() && pp_fd_get(fd, &info) == PP_FD_UDP &&
	    !(info.cookie != 0 && pp_same_socket(fd, info.cookie)))
		(void)pp_fd_clear_if(fd, &info);
	errno = saved;
}

/* A source the kernel reports for a datagram of a socket of family fam:
 * an address of that family, whole. */
static bool
pp_udp_source(int fam, const union pp_sockaddr *src, socklen_t len)
{
	if (src->sa.sa_family != fam)
		return false;
	return len == (fam == AF_INET6 ? sizeof(struct sockaddr_in6)
				       : sizeof(struct sockaddr_in));
}

/*
 * The identity probe: MSG_OOB on every receive of the datagram path.
 * UDP ignores the flag; a stream socket (TCP, a socketpair, any UNIX
 * socket) and every other kind refuses it at once, EINVAL or
 * EOPNOTSUPP, before a byte is taken.  Turned off for good if a kernel
 * ever refuses it on the very socket (checked by cookie).
 */
static atomic_int pp_udp_probe = MSG_OOB;

ssize_t
pp_udp_recvmsg(int fd, struct msghdr *msg, int flags)
{
	return pp_udp_recvmsg_via(fd, msg, flags, pp_real.recvmsg);
}

/*
 * Receive one datagram for pp_udp_recvmsg_via() into m (whose name and
 * control fields are set).  With direct, into the caller's single
 * buffer d0[0..len0) first and the thread's buffer after it; otherwise
 * into the thread's buffer alone.  Sets *d to where the datagram's first
 * *have bytes now lie in one piece.
 */
static ssize_t
pp_udp_get(int fd, struct msghdr *m, int flags, pp_recvmsg_fn via, bool direct,
	   uint8_t *d0, size_t len0, uint8_t *buf, const uint8_t **d,
	   size_t *have)
{
	struct iovec iov[2];
	size_t k;
	ssize_t n;

	/* recvfrom, recv, read (no control buffer, no msg_flags): the
	 * kernel's cheaper recvfrom, straight into a buffer that holds any
	 * datagram, else into ours. */
	if (via == NULL) {
		*d = direct && len0 >= PP_UDP_BUF ? d0 : buf;
		*have = *d == d0 ? len0 : PP_UDP_BUF;
		n = pp_real.recvfrom(fd, (void *)*d, *have, flags | MSG_TRUNC,
				     m->msg_name, &m->msg_namelen);
		if (n >= 0 && (size_t)n < *have)
			*have = (size_t)n;
		return n;
	}

	iov[0].iov_base = d0;
	iov[0].iov_len = len0;
	iov[1].iov_base = buf;
	iov[1].iov_len = PP_UDP_BUF;
	m->msg_iov = direct ? iov : iov + 1;
	m->msg_iovlen = direct ? 2 : 1;
	n = via(fd, m, flags | MSG_TRUNC);
	if (n < 0)
		return n;
	if (!direct || (size_t)n <= len0 || len0 >= PP_UDP_BUF) {
		*d = direct ? d0 : buf;
		*have = direct ? len0 : PP_UDP_BUF;
		if ((size_t)n < *have)
			*have = (size_t)n;
		return n;
	}
	/* Longer than the caller's buffer: put it together in ours. */
	k = (size_t)n - len0;
	if (k > PP_UDP_BUF - len0)
		k = PP_UDP_BUF - len0;
	memmove(buf + len0, buf, k);
	memcpy(buf, d0, len0);
	*d = buf;
	*have = len0 + k;
	return n;
}

ssize_t
pp_udp_recvmsg_via(int fd, struct msghdr *msg, int flags, pp_recvmsg_fn via)
{
	return pp_udp_recv(fd, msg, flags, via != NULL ? via : pp_real.recvmsg);
}

/* The datagram path proper: through via, or with via NULL through
 * recvfrom (msg then has one buffer and no control buffer, and the
 * caller does not look at msg_flags). */
static ssize_t
pp_udp_recv(int fd, struct msghdr *msg, int flags, pp_recvmsg_fn via)
{
	uint16_t family, lport;
	uint8_t *buf;
	ssize_t n;
	unsigned own;
	bool spp;

	/* The error queue holds our own datagrams; a bad msg is the
	 * kernel's to refuse (EFAULT). */
	if ((flags & MSG_ERRQUEUE) || msg == NULL ||
	    pp_fd_brief(fd, &family, &lport, &spp) != PP_FD_UDP)
		return PP_UDP_PASS;
	if (msg->msg_iovlen > IOV_MAX) {
		errno = EMSGSIZE;
		return -1;
	}
	buf = pp_udp_buf_take(&own);
	if (buf == NULL) {
		errno = ENOMEM;
		return -1;
	}
	n = pp_udp_recv_in(fd, msg, flags, via, buf, family, lport, spp);
	pp_udp_buf_give(buf, own);
	return n;
}

/* pp_udp_recv() on PROXY-only socket fd (family, bound to port lport,
 * SPP rather than v2 when spp), with buf as the private buffer.  Inlined: a call of its own costs
 * the datagram path a few per cent of its instructions. */
static inline __attribute__((always_inline)) ssize_t
pp_udp_recv_in(int fd, struct msghdr *msg, int flags, pp_recvmsg_fn via,
	       uint8_t *buf, uint16_t family, uint16_t lport, bool spp)
{
	struct pp_note nt;
	union pp_sockaddr src;
	union pp_inaddr adv;
	struct msghdr m;
	enum pp_verdict v;
	const char *why = "";
	socklen_t advlen = 0;
	size_t skip, have = 0, plen, done, len0 = 0;
	const uint8_t *d = NULL;
	uint8_t *d0 = NULL;
	bool direct, note;
	ssize_t n;
	int saved = errno, probe, e;

	/* One buffer of the caller's (recvfrom, recv, read, most recvmsg):
	 * the datagram goes straight into it. */
	direct = msg->msg_iovlen == 1 && msg->msg_iov != NULL &&
		 msg->msg_iov[0].iov_base != NULL &&
		 msg->msg_iov[0].iov_len > 0;
	if (direct) {
		d0 = msg->msg_iov[0].iov_base;
		len0 = msg->msg_iov[0].iov_len;
	}
	probe = atomic_load_explicit(&pp_udp_probe, memory_order_relaxed);
	for (;;) {
		memset(&m, 0, sizeof(m));
		m.msg_name = &src;
		m.msg_namelen = sizeof(src);
		m.msg_control = msg->msg_control;
		m.msg_controllen = msg->msg_controllen;
		n = pp_udp_get(fd, &m, flags | probe, via, direct, d0, len0,
			       buf, &d, &have);
		/*
		 * The entry is checked before any answer, by the kernel's
		 * own: a number closed behind our back and reused is no
		 * socket now (ENOTSOCK), or a socket that refuses the
		 * probe, taking nothing, or not a datagram socket of the
		 * entry's family (its source says so).
		 */
		if (n < 0) {
			e = errno;
			if (e == ENOTSOCK)
				goto stale;
			if (probe == 0 || (e != EINVAL && e != EOPNOTSUPP))
				return -1;
			if (!pp_udp_same(fd))
				goto stale;
			probe = 0; /* this kernel refuses it on UDP */
			n = pp_udp_get(fd, &m, flags, via, direct, d0, len0,
				       buf, &d, &have);
			if (n < 0)
				return -1;
			atomic_store_explicit(&pp_udp_probe, 0,
					      memory_order_relaxed);
		}
		if (!pp_udp_source(family, &src, m.msg_namelen)) {
			/* No source: a stream socket's urgent byte answered
			 * the probe (TCP without SO_OOBINLINE). */
			if (m.msg_namelen == 0)
				goto stale;
			/* A datagram of another socket: delivered as the
			 * kernel gave it. */
			pp_udp_forget(fd);
			v = PP_DG_REAL;
			skip = 0;
			break;
		}
		v = pp_judge(family, spp, &src, m.msg_namelen, d, have, &skip,
			     &adv, &advlen, &why);
		if (v != PP_DG_DROP)
			break;
		/* Never drop a datagram of a socket that only has the
		 * number of a PROXY-only one. */
		if (!pp_udp_same(fd)) {
			pp_udp_forget(fd);
			v = PP_DG_REAL;
			skip = 0;
			break;
		}
		pp_dropped(fd, &src, m.msg_namelen, why);
		if (flags & MSG_PEEK)
			pp_consume(fd, buf);
	}
	/* The note's fresh set is fetched while the payload is copied. */
	note = v == PP_DG_ADV &&
	       pp_norm(&adv.sa, advlen, nt.k.k.aaddr, &nt.k.k.aport);
	if (note) {
		nt.k.k.lport = lport;
		nt.family = family;
		nt.adv = &adv;
		note = pp_note_prep(&nt, &src.sa, m.msg_namelen);
	}
	plen = (size_t)n - skip;
	if (d == d0) {
		done = have - skip;
		if (skip > 0 && done > 0)
			memmove(d0, d0 + skip, done);
	} else {
		done = pp_scatter(msg, d + skip, have - skip);
	}
	msg->msg_flags = m.msg_flags & ~MSG_TRUNC;
	if (done < plen)
		msg->msg_flags |= MSG_TRUNC;
	msg->msg_controllen = m.msg_controllen;
	if (v == PP_DG_ADV) {
		if (msg->msg_name != NULL)
			pp_sa_copy(msg->msg_name, &msg->msg_namelen, &adv.sa,
				   advlen);
		if (note)
			pp_rt_note(&nt);
	} else if (msg->msg_name != NULL) {
		pp_sa_copy(msg->msg_name, &msg->msg_namelen, &src.sa,
			   m.msg_namelen);
	}
	if (pp_log_on(PP_LOG_DEBUG)) {
		char real[INET6_ADDRSTRLEN + 16], as[INET6_ADDRSTRLEN + 16];

		pp_sa_fmt(&src.sa, m.msg_namelen, real, sizeof(real));
		if (v == PP_DG_ADV)
			pp_sa_fmt(&adv.sa, advlen, as, sizeof(as));
		pp_log(PP_LOG_DEBUG, "fd %d: datagram from %s as %s, %zu bytes",
		       fd, real, v == PP_DG_ADV ? as : "itself", plen);
	}
	errno = saved;
	return (flags & MSG_TRUNC) ? (ssize_t)plen : (ssize_t)done;
stale:
	/* Not the socket of the entry: forget it, and let the program's
	 * own call have the descriptor, every byte still in it. */
	pp_udp_forget(fd);
	errno = saved;
	return PP_UDP_PASS;
}

ssize_t
pp_udp_recvfrom(int fd, void *buf, size_t len, int flags, struct sockaddr *addr,
		socklen_t *alen)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr m;
	ssize_t n;

	memset(&m, 0, sizeof(m));
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (addr != NULL && alen != NULL) {
		m.msg_name = addr;
		m.msg_namelen = *alen;
	}
	n = pp_udp_recv(fd, &m, flags, NULL);
	if (n >= 0 && m.msg_name != NULL)
		*alen = m.msg_namelen;
	return n;
}

static int64_t
pp_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/*
 * The kernel's recvmmsg, one datagram at a time: waits for the first
 * exactly as the program's call would; with MSG_WAITFORONE takes only
 * what is already queued after that; the timeout, as in the kernel, is
 * looked at after each datagram and the time left written back.  An
 * error after at least one datagram ends the batch (the next call sees
 * it again, or EAGAIN).
 */
int
pp_udp_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		int64_t *tmo_ns, pp_recvmsg_fn via)
{
	struct timespec now;
	int64_t end = 0, left;
	unsigned int i;
	ssize_t n;
	int f, saved = errno;

	if (vec == NULL || vlen == 0)
		return PP_UDP_PASS; /* the kernel's answer is the right one */
	if (tmo_ns != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		end = pp_ns(&now) + *tmo_ns;
	}
	if (vlen > PP_MMSG_MAX)
		vlen = PP_MMSG_MAX;
	for (i = 0; i < vlen; i++) {
		f = flags & ~MSG_WAITFORONE;
		if (i > 0 && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		n = pp_udp_recvmsg_via(fd, &vec[i].msg_hdr, f, via);
		if (n == PP_UDP_PASS && i == 0)
			return PP_UDP_PASS;
		if (n < 0)
			break;
		vec[i].msg_len = (unsigned int)n;
		if (tmo_ns != NULL) {
			clock_gettime(CLOCK_MONOTONIC, &now);
			left = end - pp_ns(&now);
			if (left <= 0) {
				i++;
				break;
			}
		}
	}
	if (tmo_ns != NULL) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = end - pp_ns(&now);
		*tmo_ns = left < 0 ? 0 : left;
	}
	if (i == 0)
		return -1;
	errno = saved;
	return (int)i;
}
