/*
 * fdtab.c - the per-descriptor table.
 *
 * Layout: a fixed array of 1024 page pointers, each page 1024 entries,
 * allocated the first time a descriptor in its range becomes tracked and
 * never freed.  A descriptor whose page does not exist is untracked, so
 * the calls on sockets ppshim has nothing to say about cost two loads.
 *
 * Concurrency, without a global lock:
 * - Each entry is a seqlock.  A writer makes seq odd with a compare and
 *   swap (writers of the same entry exclude each other by spinning; they
 *   only meet when two threads close and reuse the same number at the
 *   same instant), writes, then makes seq even.  Readers copy the entry
 *   and retry while seq was odd or changed.  No reader ever blocks a
 *   writer, and a reader in a signal handler cannot deadlock.
 * - Writes happen only where the kernel hands out or takes back a
 *   number: accept, socket, socketpair, dup*, fcntl(F_DUPFD*), recvmsg
 *   with SCM_RIGHTS, open, pipe and the other calls of hook_newfd.c
 *   (which forget a stale entry of the number they return), close*.
 *   close clears the entry before the real close, so a number the
 *   kernel gives to another thread right after is never wiped by a
 *   late clear.
 * - Entries are not trusted blindly: a descriptor can be closed behind
 *   the hooks' back (fclose of an fdopen'ed socket, a raw syscall,
 *   close_range inside libc, a vfork child) and its number handed out
 *   where no hook sees it (libc's own calls, raw system calls).  So
 *   every entry is checked against the descriptor before it answers,
 *   with what the kernel says anyway where that is enough, and the
 *   socket's SO_COOKIE (a 64-bit number the kernel never reuses, one
 *   getsockopt) where it is not, off the hot path:
 *   - a connection (PP_FD_CONN): getpeername's real answer must be the
 *     real peer accept saw (address and port); getsockname's real
 *     local port must be the listener's, and the real peer (one
 *     getpeername) the one accept saw.  Hand-overs: the cookie.
 *   - a listener (PP_FD_LISTEN): accept fails on anything that is not
 *     listening; a peer of another family, or a connection that would
 *     be refused or left pending, makes pp_accept_proxy look at the
 *     connection's own local address (one getsockname) first and give
 *     it to the program untouched when PP_PORTS does not name it.
 *   - a UDP socket (PP_FD_UDP): every receive carries MSG_OOB, which
 *     UDP ignores and every other kind of socket refuses before taking
 *     a byte; a receive that fails with ENOTSOCK, or reports a source
 *     that is not an address of the socket's family, is another
 *     descriptor's; the cookie is compared before a datagram would be
 *     dropped.
 *   A mismatch forgets the entry (pp_fd_clear_if: only the entry that
 *   was looked at, never one a socket that got the number since
 *   wrote), and the call goes on as libc's.
 * - A signal handler may call a hook while its own thread is inside a
 *   write of the very entry it asks about (dup2 onto a tracked number,
 *   close, accept).  That writer cannot finish while the handler runs,
 *   so nobody here waits for a writer of its own thread (reentry.h):
 *   its readers answer "untracked" (the hooks then answer from the
 *   kernel), and its clears are left to the writer, which clears before
 *   it leaves (PP_SEQ_FORGET).  Pages are mapped with mmap, never
 *   malloc, which such a handler could find its thread inside.  Hooks
 *   that reach an entry's seqlock from a handler: writers close, dup,
 *   dup2, dup3, fcntl(F_DUPFD*), close_range, closefrom, accept, accept4,
 *   listen, bind, socket, connect (a PROXY-only datagram socket
 *   connected to an SPP client, udp_reply.c), the calls of
 *   hook_newfd.c, recvmsg and
 *   recvmmsg with SCM_RIGHTS, and the identity checks (getpeername,
 *   getsockname, accept, the datagram receive hooks) that forget a
 *   stale entry; readers getpeername, getsockname, the receive and send
 *   hooks of datagram sockets (send and write included), connect,
 *   execve and the other exec and spawn hooks.
 * - fork copies the table with the memory; nothing in here holds a lock
 *   across fork.
 */
#include "config.h"

#include <string.h>
#include <sys/mman.h>

#include "fdtab.h"
#include "pp_hot.h"
#include "stats.h"

/* See stats.h: the counters the slots of entries (info.stat) index. */
PP_HOT_DATA struct pp_state_file *_Atomic pp_stat_map;

/* After the rest of the hot data (pp_hot.h): only its first entries are
 * hot. */
PP_HOT_TABLE _Atomic(struct pp_fdent *) pp_fdtab[PP_FDTAB_PAGES];

static struct pp_fdent *
pp_fd_ent(int fd, bool create)
{
	struct pp_fdent *e = pp_fd_slot(fd), *page, *expected = NULL;
	unsigned idx = (unsigned)fd / PP_FDTAB_PAGE;
	size_t sz = PP_FDTAB_PAGE * sizeof(*page);
	void *p;

	if (e != NULL || !create || fd < 0 ||
	    (unsigned)fd >= PP_FDTAB_PAGE * PP_FDTAB_PAGES)
		return e;
	/* mmap, not malloc: a signal handler may get here while its
	 * thread is inside malloc (pages are zeroed, as calloc's). */
	p = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		 -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	page = p;
	if (!atomic_compare_exchange_strong(&pp_fdtab[idx], &expected, page)) {
		munmap(p, sz); /* another thread allocated it first */
		page = expected;
	}
	return &page[(unsigned)fd % PP_FDTAB_PAGE];
}

/* What a handler's clear leaves to the writer it interrupted. */
static void
pp_fd_wipe(void *arg)
{
	struct pp_fdent *e = arg;

	memset(&e->info, 0, sizeof(e->info));
	atomic_store_explicit(&e->kind, PP_FD_NONE, memory_order_release);
}

PP_HOT_CONN enum pp_fdkind
pp_fd_get(int fd, struct pp_fdinfo *out)
{
	struct pp_fdent *e = pp_fd_ent(fd, false);
	uint32_t s1;

	if (e == NULL)
		goto none;
	do {
		if (!pp_seq_read_begin(&e->seq, &s1))
			goto none; /* written by this thread: unknown now */
		memcpy(out, &e->info, sizeof(*out));
	} while (!pp_seq_read_ok(&e->seq, s1));
	return (enum pp_fdkind)out->kind;
none:
	memset(out, 0, sizeof(*out));
	return PP_FD_NONE;
}

PP_HOT_CONN bool
pp_fd_set(int fd, const struct pp_fdinfo *in)
{
	struct pp_fdent *e = pp_fd_ent(fd, true);

	if (e == NULL)
		return false;
	/* The fast path's kind before the write section: a handler's close
	 * arriving inside it must not take the entry for untracked. */
	if (in->kind != PP_FD_NONE)
		atomic_store_explicit(&e->kind, in->kind, memory_order_release);
	if (!pp_seq_write_begin(&e->seq)) {
		pp_seq_ask_forget(&e->seq);
		return false;
	}
	e->info = *in;
	atomic_store_explicit(&e->kind, in->kind, memory_order_release);
	pp_seq_write_end(&e->seq, pp_fd_wipe, e);
	return true;
}

PP_HOT_CONN void
pp_fd_clear(int fd)
{
	struct pp_fdent *e = pp_fd_ent(fd, false);

	if (e == NULL || !pp_fd_clearable(fd))
		return;
	if (!pp_seq_write_begin(&e->seq)) {
		pp_seq_ask_forget(&e->seq);
		return;
	}
	pp_fd_wipe(e);
	pp_seq_write_end(&e->seq, NULL, NULL);
}

bool
pp_fd_busy(int fd)
{
	struct pp_fdent *e = pp_fd_slot(fd);

	return e != NULL &&
	       (atomic_load_explicit(&e->seq, memory_order_relaxed) &
		PP_SEQ_BUSY) &&
	       pp_seq_mine(&e->seq);
}

bool
pp_fd_clear_if(int fd, const struct pp_fdinfo *was)
{
	struct pp_fdent *e = pp_fd_ent(fd, false);
	bool same;

	if (e == NULL ||
	    atomic_load_explicit(&e->kind, memory_order_acquire) != was->kind)
		return false;
	/* This thread is writing the entry (a signal handler): that
	 * writer decides what it is, not an earlier look. */
	if (!pp_seq_write_begin(&e->seq))
		return false;
	same = memcmp(&e->info, was, sizeof(*was)) == 0;
	if (same)
		pp_fd_wipe(e);
	pp_seq_write_end(&e->seq, pp_fd_wipe, e);
	return same;
}

void
pp_fd_clear_range(unsigned first, unsigned last)
{
	unsigned fd, max = PP_FDTAB_PAGE * PP_FDTAB_PAGES - 1;

	if (last > max)
		last = max;
	for (fd = first; fd <= last && fd >= first; fd++) {
		/* Skip whole pages that were never allocated. */
		if (fd % PP_FDTAB_PAGE == 0 &&
		    atomic_load_explicit(&pp_fdtab[fd / PP_FDTAB_PAGE],
					 memory_order_acquire) == NULL) {
			if (last - fd < PP_FDTAB_PAGE)
				break;
			fd += PP_FDTAB_PAGE - 1;
			continue;
		}
		pp_fd_clear((int)fd);
	}
}

void
pp_fd_copy(int oldfd, int newfd)
{
	struct pp_fdinfo info;

	if (oldfd == newfd)
		return;
	if (pp_fd_get(oldfd, &info) == PP_FD_NONE) {
		pp_fd_clear(newfd);
		return;
	}
	if (!pp_fd_set(newfd, &info))
		pp_fd_clear(newfd);
}

/* Is an entry of kind k one that pp_fd_foreach(want) visits? */
static bool
pp_fd_wanted(unsigned k, enum pp_fdkind want)
{
	return k != PP_FD_NONE && (want == PP_FD_NONE || k == (unsigned)want);
}

void
pp_fd_foreach(enum pp_fdkind kind, pp_fd_visit_fn fn, void *arg)
{
	struct pp_fdent *page;
	struct pp_fdinfo info;
	unsigned pg, i;
	int fd;

	for (pg = 0; pg < PP_FDTAB_PAGES; pg++) {
		page = atomic_load_explicit(&pp_fdtab[pg],
					    memory_order_acquire);
		if (page == NULL)
			continue;
		for (i = 0; i < PP_FDTAB_PAGE; i++) {
			/* The fast path's kind first: most entries are
			 * skipped without a copy. */
			if (!pp_fd_wanted(
				    atomic_load_explicit(&page[i].kind,
							 memory_order_relaxed),
				    kind))
				continue;
			fd = (int)(pg * PP_FDTAB_PAGE + i);
			if (!pp_fd_wanted(pp_fd_get(fd, &info), kind))
				continue;
			if (!fn(fd, &info, arg))
				return;
		}
	}
}
