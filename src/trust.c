/*
 * trust.c - which sources may send a header and which may connect
 * without one (PP_ALLOW, PP_DIRECT), with the lists that name files
 * followed while the program runs (trust.h).
 *
 * A list without files is pp_cfg's, read once: pp_trust() is two scans
 * and nothing else.  A list that names files (PP_ALLOW=@/etc/ppshim/lb)
 * is published through an atomic pointer:
 *
 * - Looking.  At most once a second (a coarse clock from the vDSO, no
 *   system call), the first hook that asks claims the look with a
 *   compare-and-swap and stats each file.  A file whose identity, size
 *   or modification time changed makes the whole list be parsed again
 *   (the variable's value as copied at load, files read with raw system
 *   calls into a buffer mapped at load: nothing allocated, nothing the
 *   program sees).  A signal handler that asks while its own thread is
 *   looking finds the look claimed and uses the current list.
 * - Swapping.  A list that parses is written into the next of a ring of
 *   PP_RING buffers and published with a release store; the loaded
 *   list of the previous good version is never written.  A list that
 *   does not parse, or a file that vanished, keeps the current list: one
 *   error line per bad state, never fail open.
 * - Reading.  A reader loads the generation, then the pointer, scans,
 *   and trusts its answer unless PP_RING - 1 writes began meanwhile:
 *   only then can its buffer have been reused (after seconds, since
 *   writes are a second apart at least), and it scans again.
 *
 * Each thread remembers the last answer it gave (pp_memo): for a proxy,
 * the PP_ALLOW entry that holds it; otherwise the one address.  A
 * proxy's address, or its entry, rarely changes from one datagram or
 * connection to the next, and gets the same answer without a scan while
 * no list has been swapped since (pp_swaps, counted after each swap is
 * published).  A swap therefore reaches the very next question: a source
 * removed is refused at once.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pp_cfgtext.h"
#include "pp_hot.h"
#include "pp_sockaddr.h"
#include "reentry.h"
#include "shim.h"
#include "trust.h"

#define PP_RING 4

/* What a file looked like when it was last read (err: stat failed). */
struct pp_filesig {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	int err;
};

struct pp_live {
	const char *name;              /* "PP_ALLOW" */
	const struct pp_acl *boot;     /* pp_cfg's, parsed at load */
	char *spec;                    /* the variable's value, copied */
	char *paths[PP_ACL_FILES_MAX]; /* the files it names */
	size_t nfiles;
	struct pp_filesig seen[PP_ACL_FILES_MAX];
	_Atomic(const struct pp_acl *) cur;
	_Atomic uint32_t gen; /* writes begun */
	struct pp_acl *ring;  /* PP_RING buffers, mapped */
	unsigned next;
};

static struct pp_live pp_lists[2] = {
	{ .name = "PP_ALLOW" },
	{ .name = "PP_DIRECT" },
};
static PP_HOT_DATA bool pp_following;         /* a list names files */
static PP_HOT_DATA _Atomic uint32_t pp_swaps; /* lists published since load */
static PP_HOT_DATA _Atomic long pp_looked;    /* second of the last look */
static atomic_flag pp_looking = ATOMIC_FLAG_INIT;
static char *pp_filebuf; /* (PP_ACL_FILE_MAX + 1) bytes, mapped */

/* Reads path into buf with the library's own descriptor (real.h: raw). */
static long
pp_read_file(void *ctx, const char *path, char *buf, size_t cap, int *err)
{
	size_t got = 0;
	long n;
	int fd;

	(void)ctx;
	fd = (int)syscall(SYS_openat, AT_FDCWD, path,
			  O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		*err = errno;
		return -1;
	}
	do {
		n = syscall(SYS_read, fd, buf + got, cap - got);
		if (n > 0)
			got += (size_t)n;
	} while ((n > 0 && got < cap) || (n < 0 && errno == EINTR));
	*err = n < 0 ? errno : 0;
	/* One byte more than fits: too large, rather than cut short. */
	if (n > 0 && got == cap) {
		char extra;

		if (syscall(SYS_read, fd, &extra, 1) == 1)
			*err = EFBIG;
	}
	syscall(SYS_close, fd);
	return *err != 0 ? -1 : (long)got;
}

static const struct pp_aclio pp_io_template = {
	.read = pp_read_file,
	.cap = (PP_ACL_FILE_MAX + 1),
};

static void
pp_sig_take(const char *path, struct pp_filesig *s)
{
	struct stat st;

	memset(s, 0, sizeof(*s));
	if (stat(path, &st) != 0) {
		s->err = errno;
		return;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->size = st.st_size;
	s->mtime = st.st_mtim;
}

static bool
pp_sig_same(const struct pp_filesig *a, const struct pp_filesig *b)
{
	return a->err == b->err && a->dev == b->dev && a->ino == b->ino &&
	       a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/*
 * The files named in spec ("@path" entries), into l->paths.  The parser
 * has already refused more than PP_ACL_FILES_MAX of them.
 */
static bool
pp_live_setup(struct pp_live *l, const char *spec)
{
	const char *pos = spec, *tok;
	size_t n;

	l->spec = strdup(spec);
	if (l->spec == NULL)
		return false;
	while ((n = pp_cfg_token(&pos, &tok)) > 0) {
		if (n < 2 || tok[0] != '@' || l->nfiles == PP_ACL_FILES_MAX)
			continue;
		l->paths[l->nfiles] = strndup(tok + 1, n - 1);
		if (l->paths[l->nfiles] == NULL)
			return false;
		pp_sig_take(l->paths[l->nfiles], &l->seen[l->nfiles]);
		l->nfiles++;
	}
	return true;
}

bool
pp_trust_prepare(struct pp_aclio *io)
{
	const char *v;
	size_t i;

	for (i = 0; i < 2; i++) {
		v = getenv(pp_lists[i].name);
		if (v != NULL && strchr(v, '@') != NULL &&
		    !pp_live_setup(&pp_lists[i], v))
			return false;
		pp_following |= pp_lists[i].nfiles > 0;
	}
	*io = pp_io_template;
	if (!pp_following)
		return true;
	pp_filebuf = mmap(NULL, (PP_ACL_FILE_MAX + 1), PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (pp_filebuf == MAP_FAILED) {
		pp_filebuf = NULL;
		return false;
	}
	io->buf = pp_filebuf;
	return true;
}

void
pp_trust_start(void)
{
	struct timespec ts;

	pp_lists[0].boot = &pp_cfg.allow;
	pp_lists[1].boot = &pp_cfg.direct;
	atomic_store_explicit(&pp_lists[0].cur, &pp_cfg.allow,
			      memory_order_release);
	atomic_store_explicit(&pp_lists[1].cur, &pp_cfg.direct,
			      memory_order_release);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	atomic_store_explicit(&pp_looked, (long)ts.tv_sec,
			      memory_order_relaxed);
}

static bool
pp_acl_has(const struct pp_acl *a, const struct pp_cidr *c)
{
	size_t i;

	for (i = 0; i < a->n; i++)
		if (a->v[i].plen == c->plen &&
		    memcmp(a->v[i].addr, c->addr, 16) == 0)
			return true;
	return false;
}

/* Entries of a not in b. */
static size_t
pp_acl_minus(const struct pp_acl *a, const struct pp_acl *b)
{
	size_t i, n = 0;

	for (i = 0; i < a->n; i++)
		n += !pp_acl_has(b, &a->v[i]);
	return n;
}

/* Parse l's list again into the next ring buffer; publish it when good. */
static void
pp_live_reload(struct pp_live *l)
{
	char err[PP_ERRMSG_MAX];
	struct pp_aclio io = pp_io_template;
	const struct pp_acl *old;
	struct pp_acl *next;
	size_t added, removed;

	if (l->ring == NULL) {
		void *m = mmap(NULL, PP_RING * sizeof(struct pp_acl),
			       PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED) {
			pp_log(PP_LOG_ERROR,
			       "%s: no memory to read the list again; "
			       "keeping the last good list",
			       l->name);
			return;
		}
		l->ring = m;
	}
	io.buf = pp_filebuf;
	next = &l->ring[l->next];
	/* Readers that may still scan this buffer see the count move. */
	atomic_fetch_add_explicit(&l->gen, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	old = atomic_load_explicit(&l->cur, memory_order_relaxed);
	if (pp_parse_acl_io(next, l->name, l->spec, &io, err, sizeof(err)) !=
	    0) {
		pp_log(PP_LOG_ERROR, "%s; keeping the last good list (%zu %s)",
		       err, old->n, old->n == 1 ? "entry" : "entries");
		return;
	}
	added = pp_acl_minus(next, old);
	removed = pp_acl_minus(old, next);
	if (added == 0 && removed == 0 && next->n == old->n)
		return;
	atomic_store_explicit(&l->cur, next, memory_order_release);
	/* After the store: a reader that sees the new count scans the new
	 * list (pp_trust). */
	atomic_fetch_add_explicit(&pp_swaps, 1, memory_order_release);
	l->next = (l->next + 1) % PP_RING;
	pp_log(PP_LOG_WARN, "%s: list changed: %zu added, %zu removed (%zu %s)",
	       l->name, added, removed, next->n,
	       next->n == 1 ? "entry" : "entries");
}

static void
pp_live_look(void)
{
	struct pp_filesig now[PP_ACL_FILES_MAX];
	bool changed;
	size_t i, f;

	for (i = 0; i < 2; i++) {
		struct pp_live *l = &pp_lists[i];

		changed = false;
		for (f = 0; f < l->nfiles; f++) {
			pp_sig_take(l->paths[f], &now[f]);
			if (!pp_sig_same(&now[f], &l->seen[f])) {
				changed = true;
				l->seen[f] = now[f];
			}
		}
		if (changed)
			pp_live_reload(l);
	}
}

static void
pp_trust_poll(void)
{
	int saved = errno;

	if (atomic_flag_test_and_set_explicit(&pp_looking,
					      memory_order_acquire))
		return;
	pp_live_look();
	atomic_flag_clear_explicit(&pp_looking, memory_order_release);
	errno = saved;
}

/* Out of line: pp_trust() stays small for lists without files. */
static __attribute__((noinline)) void
pp_live_tick(void)
{
	struct timespec ts;
	long last;

	if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
		return;
	last = atomic_load_explicit(&pp_looked, memory_order_relaxed);
	if ((long)ts.tv_sec == last ||
	    !atomic_compare_exchange_strong_explicit(
		    &pp_looked, &last, (long)ts.tv_sec, memory_order_relaxed,
		    memory_order_relaxed))
		return;
	pp_trust_poll();
}

/* pp_acl_find on the current version of a followed list. */
static int
pp_live_find(struct pp_live *l, const struct sockaddr *sa, socklen_t len)
{
	const struct pp_acl *a;
	uint32_t g;
	int m;

	for (;;) {
		g = atomic_load_explicit(&l->gen, memory_order_acquire);
		a = atomic_load_explicit(&l->cur, memory_order_acquire);
		m = pp_acl_find(a, sa, len);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&l->gen, memory_order_relaxed) - g <
		    PP_RING - 1)
			return m;
	}
}

/*
 * What this thread judged last: the answer for each address a of the
 * family (0: none) with (a & m) == w, word by word in network order (an
 * IPv4 address in word 0, an IPv6 one in all four), and pp_swaps when it
 * was given.  A proxy answer holds for the whole PP_ALLOW entry that
 * gave it: any address in it is a proxy, whatever PP_DIRECT says, so
 * that the many addresses of a load balancer's nodes are judged once.
 * The other answers hold for the one address.
 * A signal handler may ask on the same thread: pp_memo_seq is odd while
 * the thread writes the memo, which a handler then neither trusts nor
 * writes, and a reader uses what it read only when the count did not
 * move meanwhile.
 */
struct pp_memo {
	uint32_t w[4];
	uint32_t m[4];
	uint32_t swaps;
	sa_family_t family;
	uint8_t trust;
};

static PP_TLS struct pp_memo pp_memo;
static PP_TLS unsigned pp_memo_seq;

/* The mask of the first bits bits of a 32-bit word in network order:
 * none for 0 or less, all for 32 or more. */
static inline uint32_t
pp_memo_mask(int bits)
{
	if (bits <= 0)
		return 0;
	return bits >= 32 ? UINT32_MAX : htonl(UINT32_MAX << (32 - bits));
}

/* The memo for sa answered with the entry of prefix length plen (in
 * pp_acl_find's 128-bit form; 128 for the one address), in *m; false
 * for anything but a whole AF_INET or AF_INET6 address (never
 * remembered). */
static inline bool
pp_memo_key(const struct sockaddr *sa, socklen_t len, int plen,
	    struct pp_memo *m)
{
	const union pp_inaddr *a = (const union pp_inaddr *)sa;
	uint32_t w[4];
	int i;

	if (sa == NULL || len < (socklen_t)sizeof(struct sockaddr_in))
		return false;
	m->family = sa->sa_family;
	if (m->family == AF_INET) {
		m->m[0] = pp_memo_mask(plen - 96);
		m->w[0] = a->sin.sin_addr.s_addr & m->m[0];
		m->w[1] = m->w[2] = m->w[3] = 0;
		m->m[1] = m->m[2] = m->m[3] = 0;
		return true;
	}
	if (m->family != AF_INET6 ||
	    len < (socklen_t)sizeof(struct sockaddr_in6))
		return false;
	memcpy(w, &a->sin6.sin6_addr, 16);
	for (i = 0; i < 4; i++) {
		m->m[i] = pp_memo_mask(plen - 32 * i);
		m->w[i] = w[i] & m->m[i];
	}
	return true;
}

/* The list sa is in, scanned; *plen the prefix length of the PP_ALLOW
 * entry that holds it, else 128. */
static enum pp_trust
pp_trust_scan(const struct sockaddr *sa, socklen_t len, int *plen)
{
	int m;

	*plen = 128;
	if (__builtin_expect(!pp_following, 1)) {
		if ((m = pp_acl_find(&pp_cfg.allow, sa, len)) >= 0) {
			*plen = m;
			return PP_TRUST_PROXY;
		}
		return pp_acl_match(&pp_cfg.direct, sa, len) ? PP_TRUST_DIRECT
							     : PP_TRUST_NONE;
	}
	if ((m = pp_live_find(&pp_lists[0], sa, len)) >= 0) {
		*plen = m;
		return PP_TRUST_PROXY;
	}
	return pp_live_find(&pp_lists[1], sa, len) >= 0 ? PP_TRUST_DIRECT
							: PP_TRUST_NONE;
}

/* Does the memo answer for sa (anything but a whole AF_INET or AF_INET6
 * address never matches)?  Read inside pp_memo_seq. */
static inline bool
pp_memo_has(const struct sockaddr *sa, socklen_t len)
{
	const union pp_inaddr *a = (const union pp_inaddr *)sa;
	uint32_t w[4];

	if (sa == NULL || len < (socklen_t)sizeof(struct sockaddr_in) ||
	    pp_memo.family != sa->sa_family)
		return false;
	if (sa->sa_family == AF_INET)
		return (a->sin.sin_addr.s_addr & pp_memo.m[0]) == pp_memo.w[0];
	if (sa->sa_family != AF_INET6 ||
	    len < (socklen_t)sizeof(struct sockaddr_in6))
		return false;
	memcpy(w, &a->sin6.sin6_addr, 16);
	return (w[0] & pp_memo.m[0]) == pp_memo.w[0] &&
	       (w[1] & pp_memo.m[1]) == pp_memo.w[1] &&
	       (w[2] & pp_memo.m[2]) == pp_memo.w[2] &&
	       (w[3] & pp_memo.m[3]) == pp_memo.w[3];
}

/* pp_trust() when the memo does not answer: scan, and remember the
 * answer with swaps (pp_swaps before the scan) unless the memo was
 * being written or changed (s: pp_memo_seq before the look). */
PP_HOT_CONN static __attribute__((noinline)) enum pp_trust
pp_trust_miss(const struct sockaddr *sa, socklen_t len, unsigned s,
	      uint32_t swaps)
{
	struct pp_memo k;
	int plen;
	enum pp_trust t = pp_trust_scan(sa, len, &plen);

	k.swaps = swaps;
	k.trust = (uint8_t)t;
	if (s & 1 || pp_memo_seq != s || !pp_memo_key(sa, len, plen, &k))
		return t;
	pp_memo_seq = s + 1;
	atomic_signal_fence(memory_order_seq_cst);
	pp_memo = k;
	atomic_signal_fence(memory_order_seq_cst);
	pp_memo_seq = s + 2;
	return t;
}

PP_HOT_DGRAM enum pp_trust
pp_trust(const struct sockaddr *sa, socklen_t len)
{
	unsigned s = pp_memo_seq;
	uint32_t swaps;
	enum pp_trust t;
	bool hit;

	if (__builtin_expect(pp_following, 0))
		pp_live_tick();
	/* Acquire: a count that shows a swap comes with its list. */
	swaps = atomic_load_explicit(&pp_swaps, memory_order_acquire);
	atomic_signal_fence(memory_order_seq_cst);
	hit = !(s & 1) && pp_memo.swaps == swaps && pp_memo_has(sa, len);
	t = (enum pp_trust)pp_memo.trust;
	atomic_signal_fence(memory_order_seq_cst);
	if (hit && pp_memo_seq == s)
		return t;
	return pp_trust_miss(sa, len, s, swaps);
}

void
pp_trust_atfork_child(void)
{
	atomic_flag_clear_explicit(&pp_looking, memory_order_relaxed);
}

bool
pp_trust_any_direct(void)
{
	return pp_cfg.direct.n > 0 || pp_lists[1].nfiles > 0;
}
