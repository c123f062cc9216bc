/*
 * pending.c - connections whose header has not arrived yet: the pending
 * list, the worker thread that finishes them, the ready list, and the
 * fork handlers of that machinery.
 *
 * Pending connections are finished by one worker thread, started the
 * first time one exists (all signals blocked, so the program's signals
 * still go to its own threads).  It polls them, reads their headers as
 * bytes arrive (hdrio.c), resets those whose PP_TIMEOUT_MS ran out, and
 * moves the complete ones to a ready list, or to the listener's pool
 * (pool.c), then knocks (knock.c).  It holds no descriptor of its own:
 * it waits on a condition variable while nothing is pending, and polls
 * with a short cap so that new pending connections are picked up
 * without a wake-up descriptor.
 *
 * After fork the child closes its copies of pending and ready
 * connections (the parent serves them) and starts its own worker when it
 * needs one.  Every use of a pending descriptor is preceded by a check of
 * its SO_COOKIE, so a number closed behind our back (close_range in the
 * program) is never read from or reset.  See accept.c for the whole
 * design.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handover.h"
#include "hdrio.h"
#include "ident.h"
#include "knock.h"
#include "pending.h"
#include "pool.h"
#include "pp_hot.h"
#include "pp_sockaddr.h"
#include "shim.h"
#include "stats.h"
#include "tlvcache.h"

#define PP_WORKER_TICK_MS 20
#define PP_KNOCKS_PER_ROUND 64
#define PP_REKNOCK_MS 200
#define PP_MAX_KNOCKS 300 /* a minute of knocking, then give up */

/*
 * The pending and ready lists.  Taken by the worker (all signals
 * blocked: never re-entered) and, on the program's threads, by accept
 * and accept4 on a PROXY-only listener (pp_ready_take, pp_pend_add).
 * From a signal handler, only accept/accept4 reach it; they take it as
 * section PP_HOLD_PENDING and, when their thread is inside it already,
 * fail with EAGAIN before taking a connection (pp_accept_proxy).
 */
static pthread_mutex_t pp_pmtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pp_pcond = PTHREAD_COND_INITIALIZER;
static struct pp_pend *pp_pending;
static struct pp_pend *pp_readyq;
atomic_uint pp_nready;
static bool pp_worker_up;
/* Connections this process put in a pool, until they leave it. */
static struct pp_pend *pp_pooled;

static void *pp_worker(void *arg);

static struct pp_pend **
pp_readyq_tail(struct pp_pend **head)
{
	while (*head != NULL)
		head = &(*head)->next;
	return head;
}

/* Start the worker if this process has none.  Called with pp_pmtx held. */
static void
pp_worker_start(void)
{
	sigset_t all, old;
	pthread_attr_t attr;
	pthread_t t;

	if (pp_worker_up)
		return;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&t, &attr, pp_worker, NULL) == 0)
		pp_worker_up = true;
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
}

/* Hand a job the first attempt could not finish to the worker. */
void
pp_pend_add(struct pp_job *j, int lfd, uint64_t lcookie, int64_t deadline)
{
	struct pp_pend *pd = pp_alloc(sizeof(*pd));
	static const char why[] = "out of memory";

	if (pd == NULL)
		goto fail;
	memset(pd, 0, sizeof(*pd));
	pd->job = *j;
	if (j->heap == NULL && !pp_parser_setbuf(&pd->job.p, pd->job.inline_buf,
						 sizeof(pd->job.inline_buf)))
		goto fail;
	pd->lfd = lfd;
	pd->lcookie = lcookie;
	pd->cookie = pp_socket_cookie(j->fd);
	pd->deadline = deadline;
	/* Not the program's yet: keep it out of anything it execs. */
	(void)pp_real.fcntl(j->fd, F_SETFD, FD_CLOEXEC);
	if (!pp_lock(&pp_pmtx, PP_HOLD_PENDING))
		goto fail; /* unreachable: pp_accept_proxy checked */
	pd->next = pp_pending;
	pp_pending = pd;
	pp_stat_add(j->stat, PP_ST_PENDING, 1);
	pp_worker_start();
	pthread_cond_signal(&pp_pcond);
	pp_unlock(&pp_pmtx, PP_HOLD_PENDING);
	return;
fail:
	pp_dealloc(pd);
	pp_refuse(j->fd, &j->peer, j->peerlen, PP_LOG_WARN, why);
	pp_job_free(j);
}

/* Take a ready connection of listener lcookie, or NULL. */
struct pp_pend *
pp_ready_take(uint64_t lcookie)
{
	struct pp_pend **pp, *pd = NULL;

	if (!pp_lock(&pp_pmtx, PP_HOLD_PENDING))
		return NULL; /* unreachable: pp_accept_proxy checked */
	for (pp = &pp_readyq; *pp != NULL; pp = &(*pp)->next) {
		if ((*pp)->lcookie == lcookie) {
			pd = *pp;
			*pp = pd->next;
			atomic_fetch_sub(&pp_nready, 1);
			break;
		}
	}
	pp_unlock(&pp_pmtx, PP_HOLD_PENDING);
	return pd;
}

/*
 * Count one more knock for ready connection pd, due again in
 * PP_REKNOCK_MS, and queue its listener in knocks/kcookies (room for
 * PP_KNOCKS_PER_ROUND, *nk used).  Called with pp_pmtx held.
 */
static void
pp_knock_again(struct pp_pend *pd, int64_t now, int *knocks, uint64_t *kcookies,
	       int *nk)
{
	pd->knocks++;
	pd->deadline = now + PP_REKNOCK_MS;
	if (*nk < PP_KNOCKS_PER_ROUND) {
		knocks[*nk] = pd->lfd;
		kcookies[(*nk)++] = pd->lcookie;
	}
}

/*
 * The worker's poll set and snapshot of the pending list, grown as
 * needed; only the worker touches them.  Kept here rather than on its
 * stack: a fork child, which has no worker, frees them (pp_conn_forget)
 * or starts its own with them.
 */
static struct pollfd *pp_wk_pfd;
static struct pp_pend **pp_wk_snap;
static size_t pp_wk_cap;

/*
 * The worker: finish pending headers, expire them, knock for the ready
 * ones.  Holds pp_pmtx only while it walks the lists, never across poll.
 * It runs with every signal blocked, so nothing here is re-entered and
 * its locks and allocations need no pp_hold (reentry.h).
 */
static void *
pp_worker(void *arg)
{
	struct pp_pend *pd, **pp;
	size_t n, i;
	int64_t now, next;
	int knocks[PP_KNOCKS_PER_ROUND], nk;
	uint64_t kcookies[PP_KNOCKS_PER_ROUND];
	char why[PP_WHY_MAX];
	enum pp_step st;

	(void)arg;
	for (;;) {
		pthread_mutex_lock(&pp_pmtx);
		while (pp_pending == NULL && pp_readyq == NULL &&
		       pp_pooled == NULL)
			pthread_cond_wait(&pp_pcond, &pp_pmtx);
		n = 0;
		for (pd = pp_pending; pd != NULL; pd = pd->next)
			n++;
		if (n > pp_wk_cap) {
			struct pollfd *np =
				realloc(pp_wk_pfd, n * sizeof(*pp_wk_pfd));
			struct pp_pend **ns =
				realloc(pp_wk_snap, n * sizeof(*pp_wk_snap));

			if (np != NULL)
				pp_wk_pfd = np;
			if (ns != NULL)
				pp_wk_snap = ns;
			if (np == NULL || ns == NULL) {
				pthread_mutex_unlock(&pp_pmtx);
				poll(NULL, 0, PP_WORKER_TICK_MS);
				continue;
			}
			pp_wk_cap = n;
		}
		now = pp_now_ms();
		next = now + PP_WORKER_TICK_MS;
		for (i = 0, pd = pp_pending; pd != NULL; pd = pd->next, i++) {
			pp_wk_snap[i] = pd;
			pp_wk_pfd[i].fd = pd->job.fd;
			pp_wk_pfd[i].events = POLLIN;
			pp_wk_pfd[i].revents = 0;
			if (pd->deadline < next)
				next = pd->deadline;
		}
		for (pd = pp_readyq; pd != NULL; pd = pd->next)
			if (pd->deadline < next)
				next = pd->deadline;
		for (pd = pp_pooled; pd != NULL; pd = pd->next)
			if (pd->deadline < next)
				next = pd->deadline;
		pthread_mutex_unlock(&pp_pmtx);

		(void)poll(pp_wk_pfd, n, next > now ? (int)(next - now) : 0);

		now = pp_now_ms();
		nk = 0;
		pthread_mutex_lock(&pp_pmtx);
		for (i = 0; i < n; i++) {
			pd = pp_wk_snap[i];
			if (pp_wk_pfd[i].revents == 0 && pd->deadline > now)
				continue;
			if (!pp_same_socket(pd->job.fd, pd->cookie)) {
				/* Closed behind our back: not ours to touch. */
				pd->state = PP_PEND_DEAD;
				continue;
			}
			st = pp_wk_pfd[i].revents ? pp_job_step(&pd->job, why)
						  : PP_STEP_MORE;
			if (st == PP_STEP_MORE && pd->deadline <= now) {
				st = PP_STEP_BAD;
				pp_stat_inc(pd->job.stat, PP_ST_TIMEOUT);
				pp_why(why, "timeout waiting for the header");
			} else if (st == PP_STEP_BAD) {
				pp_stat_bad(pd->job.stat, pd->job.p.err);
			}
			if (st == PP_STEP_DONE &&
			    !pp_job_finish(&pd->job, &pd->info, why)) {
				st = PP_STEP_BAD;
				pp_stat_bad(pd->job.stat, PP_E_V2_FAMILY);
			}
			switch (st) {
			case PP_STEP_MORE:
				break;
			case PP_STEP_DONE:
				pp_stat_done(
					pd->job.stat,
					pp_parser_header(&pd->job.p)->version,
					pd->info.has_src);
				pd->state = pp_pool_put(pd, now)
						    ? PP_PEND_POOLED
						    : PP_PEND_READY;
				pd->deadline = now + PP_REKNOCK_MS;
				pd->knocks = 1;
				if (nk < PP_KNOCKS_PER_ROUND) {
					knocks[nk] = pd->lfd;
					kcookies[nk++] = pd->lcookie;
				}
				break;
			case PP_STEP_BAD:
				pp_refuse(pd->job.fd, &pd->job.peer,
					  pd->job.peerlen, PP_LOG_WARN, why);
				pd->state = PP_PEND_DEAD;
				break;
			case PP_STEP_KNOCK:
				pp_real.close(pd->job.fd);
				pd->state = PP_PEND_DEAD;
				break;
			}
		}
		/* Unlink what is finished; move the ready ones. */
		for (pp = &pp_pending; *pp != NULL;) {
			pd = *pp;
			if (pd->state == PP_PEND_READING) {
				pp = &pd->next;
				continue;
			}
			*pp = pd->next;
			pp_stat_add(pd->job.stat, PP_ST_PENDING, -1);
			if (pd->state == PP_PEND_DEAD) {
				pp_job_free(&pd->job);
				free(pd);
				continue;
			}
			if (pd->state == PP_PEND_POOLED) {
				pp_job_free(&pd->job);
				pd->next = pp_pooled;
				pp_pooled = pd;
				continue;
			}
			pd->next = NULL;
			*pp_readyq_tail(&pp_readyq) = pd;
			atomic_fetch_add(&pp_nready, 1);
		}
		/*
		 * Ready connections nobody took: knock again (the knock may
		 * have gone to another process sharing the listener), and
		 * drop those whose listener is gone.
		 */
		for (pp = &pp_readyq; *pp != NULL;) {
			pd = *pp;
			if (pd->deadline > now) {
				pp = &pd->next;
				continue;
			}
			if (!pp_same_socket(pd->lfd, pd->lcookie) ||
			    pd->knocks >= PP_MAX_KNOCKS) {
				*pp = pd->next;
				atomic_fetch_sub(&pp_nready, 1);
				if (pp_same_socket(pd->job.fd, pd->cookie))
					pp_refuse(pd->job.fd, &pd->job.peer,
						  pd->job.peerlen, PP_LOG_WARN,
						  "the program did not accept "
						  "it");
				pp_job_free(&pd->job);
				free(pd);
				continue;
			}
			pp_knock_again(pd, now, knocks, kcookies, &nk);
			pp = &pd->next;
		}
		/*
		 * Connections put in a pool: knock again while they are still
		 * there (a knock can be taken by a process that cannot reach
		 * the pool); reset them when nobody took them for a minute.
		 */
		for (pp = &pp_pooled; *pp != NULL;) {
			bool expired;
			int where;

			pd = *pp;
			if (pd->deadline > now) {
				pp = &pd->next;
				continue;
			}
			where = pp_pool_state(pd, now, &expired);
			if (expired ||
			    (where == 2 && pd->knocks >= PP_MAX_KNOCKS))
				pp_pool_drop_head(pd, now);
			if (where == 0 || pd->knocks >= PP_MAX_KNOCKS ||
			    !pp_same_socket(pd->lfd, pd->lcookie)) {
				*pp = pd->next;
				free(pd);
				continue;
			}
			pp_knock_again(pd, now, knocks, kcookies, &nk);
			pp = &pd->next;
		}
		pthread_mutex_unlock(&pp_pmtx);
		for (i = 0; i < (size_t)nk; i++)
			pp_send_knock(knocks[i], kcookies[i]);
	}
	return NULL;
}

/* Give a connection to the program: flags, table entry, address. */
PP_HOT_CONN int
pp_hand_over(int fd, const struct pp_fdinfo *info, const struct pp_job *j,
	     struct sockaddr *addr, socklen_t *alen)
{
	const union pp_sockaddr *peer = &j->peer;
	socklen_t peerlen = j->peerlen;

	if (info->kind == PP_FD_CONN) {
		const struct pp_header *h = pp_parser_header(&j->p);
		struct pp_fdinfo reg = *info;
		struct pp_tlvset tlvs;

		/* The identity check uses the real peer (no system call);
		 * the cookie only where that cannot work, or for the TLVs,
		 * which are kept by cookie for the exec hook. */
		if (reg.rpeerlen == 0 || reg.lport == 0 || h->tlv_len > 0)
			reg.cookie = pp_socket_cookie(fd);
		/* A signal handler's accept got the number of an entry its
		 * interrupted thread is writing (it closed that descriptor):
		 * no entry, so the real addresses, in accept's answer too. */
		if (pp_fd_busy(fd)) {
			pp_fd_clear(fd);
			pp_sa_copy(addr, alen, &peer->sa, peerlen);
			return fd;
		}
		if (!pp_fd_set(fd, &reg)) {
			pp_refuse(fd, peer, peerlen, PP_LOG_ERROR,
				  "out of memory for the descriptor table");
			return -1;
		}
		if (h->tlv_len > 0) {
			pp_tlvset_from_area(&tlvs, h->tlv, h->tlv_len);
			pp_tlvcache_put(reg.cookie, &tlvs);
		}
	}
	if (info->kind == PP_FD_CONN && info->has_src) {
		pp_sa_copy(addr, alen, &info->src.sa, info->srclen);
	} else {
		pp_sa_copy(addr, alen, &peer->sa, peerlen);
	}
	return fd;
}

/* A connection finished by the worker, made to look freshly accepted. */
int
pp_hand_ready(struct pp_pend *pd, int flags, struct sockaddr *addr,
	      socklen_t *alen)
{
	int fd = pd->job.fd, fl;

	if (!pp_same_socket(fd, pd->cookie)) {
		fd = -1;
		goto out;
	}
	fl = pp_real.fcntl(fd, F_GETFL);
	if (fl >= 0)
		(void)pp_real.fcntl(fd, F_SETFL,
				    (flags & SOCK_NONBLOCK) ? fl | O_NONBLOCK
							    : fl & ~O_NONBLOCK);
	(void)pp_real.fcntl(fd, F_SETFD,
			    (flags & SOCK_CLOEXEC) ? FD_CLOEXEC : 0);
	fd = pp_hand_over(fd, &pd->info, &pd->job, addr, alen);
out:
	pp_job_free(&pd->job);
	pp_dealloc(pd);
	return fd;
}

/* The locks the fork handlers took: not those the forking thread held
 * already (fork from a handler that interrupted an accept). */
static PP_TLS unsigned pp_fork_held;

/* Before fork: open the pools, then take the pool, knock and pending
 * locks, each unless this thread holds it already (pp_fork_held). */
void
pp_conn_atfork_prepare(void)
{
	pp_pool_open_all();
	pp_fork_held = 0;
	if (pp_lock(&pp_poolmtx, PP_HOLD_POOL))
		pp_fork_held |= PP_HOLD_POOL;
	if (pp_lock(&pp_kmtx, PP_HOLD_KNOCKS))
		pp_fork_held |= PP_HOLD_KNOCKS;
	if (pp_lock(&pp_pmtx, PP_HOLD_PENDING))
		pp_fork_held |= PP_HOLD_PENDING;
}

/* After fork, in the parent: release what pp_conn_atfork_prepare took. */
void
pp_conn_atfork_parent(void)
{
	if (pp_fork_held & PP_HOLD_PENDING)
		pp_unlock(&pp_pmtx, PP_HOLD_PENDING);
	if (pp_fork_held & PP_HOLD_KNOCKS)
		pp_unlock(&pp_kmtx, PP_HOLD_KNOCKS);
	if (pp_fork_held & PP_HOLD_POOL)
		pp_unlock(&pp_poolmtx, PP_HOLD_POOL);
}

/*
 * In a child: the pending and ready connections are the parent's to
 * serve; close the child's copies of them and start afresh.  free_lists
 * is false after a fork that did not run the pthread_atfork handlers
 * (a raw clone), where malloc's state may be mid-update: the lists are
 * then dropped, a few kilobytes at most, and the locks, which a thread
 * that does not exist in the child may hold, are made anew.  After an
 * ordinary fork the child handler has unlocked them already (the child's
 * one thread holds them): re-initialising a locked mutex is undefined,
 * and ThreadSanitizer then believes them held forever.
 */
void
pp_conn_forget(bool free_lists)
{
	struct pp_pend *pd, *next;
	struct pp_pend *lists[3] = { pp_pending, pp_readyq, pp_pooled };
	int i;

	for (i = 0; i < 3; i++) {
		for (pd = lists[i]; pd != NULL; pd = next) {
			next = pd->next;
			if (pp_same_socket(pd->job.fd, pd->cookie))
				syscall(SYS_close, pd->job.fd);
			if (free_lists) {
				pp_job_free(&pd->job);
				free(pd);
			}
		}
	}
	if (free_lists) {
		free(pp_wk_pfd);
		free(pp_wk_snap);
	}
	pp_wk_pfd = NULL;
	pp_wk_snap = NULL;
	pp_wk_cap = 0;
	pp_pending = NULL;
	pp_readyq = NULL;
	pp_pooled = NULL;
	atomic_store(&pp_nready, 0);
	pp_worker_up = false;
	memset(pp_knocks, 0, sizeof(pp_knocks));
	atomic_store(&pp_nknocks, 0);
	if (!free_lists) {
		pthread_mutex_init(&pp_pmtx, NULL);
		pthread_mutex_init(&pp_kmtx, NULL);
		pthread_mutex_init(&pp_poolmtx, NULL);
	}
	pthread_cond_init(&pp_pcond, NULL);
}

/* After fork, in the child: release the locks and drop the parent's
 * pending and ready connections. */
void
pp_conn_atfork_child(void)
{
	pp_init_atfork_child();
	pp_conn_atfork_parent();
	/* Forked from a handler that interrupted this thread's use of the
	 * lists: they stay as they are for it. */
	if (pp_fork_held == (PP_HOLD_POOL | PP_HOLD_PENDING | PP_HOLD_KNOCKS))
		pp_conn_forget(true);
}
