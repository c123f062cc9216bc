/*
 * hdrio.c - the header job: read the PROXY header of one connection
 * without consuming a byte past it.
 *
 * A job peeks at what has arrived, feeds it to the parser (core/
 * pp_parse.c), then consumes exactly the header bytes; the same job is
 * continued by the accept engine (accept.c, one non-blocking attempt),
 * the worker (pending.c, as bytes arrive) and a process that takes it
 * from a pool (pool.c).  pp_job_finish decides what the connection
 * reports and logs it; pp_read_header_wait reads the header of an
 * inherited connection (inherit.c) with a timeout.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "handover.h"
#include "hdrio.h"
#include "knock.h"
#include "pp_hot.h"
#include "pp_sockaddr.h"
#include "shim.h"

/* A TLV value as printable text, other bytes as \xNN. */
static void
pp_fmt_tlv(const uint8_t *v, size_t n, char *out, size_t cap)
{
	size_t o = 0, i;

	for (i = 0; i < n && o + 5 < cap; i++) {
		if (v[i] > 0x20 && v[i] < 0x7f && v[i] != '\\')
			out[o++] = (char)v[i];
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x",
					      v[i]);
	}
	out[o] = '\0';
}

/* Reset a connection we refuse, so the client sees RST, not a close. */
void
pp_reset(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	pp_real.close(fd);
}

/* Refuse a connection: reset it and log why with the peer at level;
 * keeps errno.  No lock. */
void
pp_refuse(int fd, const union pp_sockaddr *peer, socklen_t peerlen,
	  enum pp_loglevel level, const char *why)
{
	char who[INET6_ADDRSTRLEN + 16];
	int saved = errno;

	pp_reset(fd);
	if (pp_log_on(level)) {
		pp_sa_fmt(&peer->sa, peerlen, who, sizeof(who));
		pp_log(level, "refused %s: %s", who, why);
	}
	errno = saved;
}

/* Start reading the header of connection fd (no allocation). */
PP_HOT_CONN void
pp_job_init(struct pp_job *j, int fd, int family, const union pp_sockaddr *peer,
	    socklen_t peerlen)
{
	j->fd = fd;
	j->family = family;
	j->lport = 0;
	j->stat = 0;
	j->peer = *peer;
	j->peerlen = peerlen;
	j->heap = NULL;
	pp_parser_init(&j->p, j->inline_buf, sizeof(j->inline_buf),
		       pp_cfg.versions);
}

/*
 * malloc and free on the accept path, as section PP_HOLD_MALLOC: a
 * signal handler's accept must not allocate while its thread is inside
 * the allocator (pp_accept_proxy checks).
 */
void *
pp_alloc(size_t n)
{
	void *p;

	if (!pp_hold(PP_HOLD_MALLOC))
		return NULL;
	p = malloc(n);
	pp_release(PP_HOLD_MALLOC);
	return p;
}

/* free() of pp_alloc, as section PP_HOLD_MALLOC. */
void
pp_dealloc(void *p)
{
	if (p == NULL || !pp_hold(PP_HOLD_MALLOC))
		return; /* unreachable from a handler: never leaked */
	free(p);
	pp_release(PP_HOLD_MALLOC);
}

/* Free what a job allocated (the job itself is the caller's). */
PP_HOT_CONN void
pp_job_free(struct pp_job *j)
{
	pp_dealloc(j->heap);
	j->heap = NULL;
}

static bool
pp_job_grow(struct pp_job *j, size_t total)
{
	uint8_t *nb = pp_alloc(total);

	if (nb == NULL || !pp_parser_setbuf(&j->p, nb, total)) {
		pp_dealloc(nb);
		return false;
	}
	pp_dealloc(j->heap);
	j->heap = nb;
	return true;
}

/*
 * Push data into the parser, moving it to a larger buffer as soon as the
 * header's total length is known to exceed the one it has.  *used is the
 * number of bytes that belong to the header.
 */
PP_HOT_CONN enum pp_status
pp_job_push(struct pp_job *j, const uint8_t *data, size_t n, size_t *used)
{
	enum pp_status st = PP_NEED_MORE;
	size_t off = 0, chunk, u, total;

	*used = 0;
	while (off < n) {
		total = pp_parser_total(&j->p);
		if (total > j->p.cap && !pp_job_grow(j, total))
			break; /* the push below reports the header too long */
		chunk = n - off;
		if (total == 0 && chunk > j->p.cap - j->p.have)
			chunk = j->p.cap - j->p.have;
		if (chunk == 0)
			break;
		st = pp_parser_push(&j->p, data + off, chunk, &u);
		off += u;
		*used += u;
		if (st != PP_NEED_MORE || u < chunk)
			return st;
	}
	if (off < n) {
		st = pp_parser_push(&j->p, data + off, n - off, &u);
		*used += u;
	}
	return st;
}

/* Copy a reason into the caller's buffer, printable bytes only (errors
 * only: never on the path of a good connection). */
void
pp_why(char why[PP_WHY_MAX], const char *text)
{
	size_t i;

	for (i = 0; i + 1 < PP_WHY_MAX && text[i] != '\0'; i++)
		why[i] = text[i] >= 0x20 && text[i] <= 0x7e ? text[i] : '?';
	why[i] = '\0';
}

/*
 * Read as much of the header as has arrived, never a byte past it.
 * Returns PP_STEP_MORE when the socket has nothing more for now, and
 * with PP_STEP_BAD the reason in why (a copy: the parser's own text dies
 * with the job).
 */
PP_HOT_CONN enum pp_step
pp_job_step(struct pp_job *j, char why[PP_WHY_MAX])
{
	uint8_t scratch[PP_SCRATCH];
	enum pp_status st;
	size_t want, total, used;
	ssize_t n;

	for (;;) {
		want = pp_parser_want(&j->p);
		total = pp_parser_total(&j->p);
		if (total > j->p.cap && !pp_job_grow(j, total)) {
			pp_why(why, "out of memory for the header");
			return PP_STEP_BAD;
		}
		if (want > 0)
			n = pp_real.recv(
				j->fd, scratch,
				want < sizeof(scratch) ? want : sizeof(scratch),
				MSG_DONTWAIT);
		else
			n = pp_real.recv(j->fd, scratch, sizeof(scratch),
					 MSG_PEEK | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return PP_STEP_MORE;
			pp_why(why, errno == ECONNRESET ? "reset by the client"
							: "receive error");
			return PP_STEP_BAD;
		}
		if (n == 0) {
			pp_why(why,
			       j->p.have
				       ? "closed before the header was complete"
				       : "closed without a header");
			return PP_STEP_BAD;
		}
		if (j->p.have == 0 && (size_t)n >= sizeof(pp_knock) &&
		    memcmp(scratch, pp_knock, sizeof(pp_knock)) == 0)
			return PP_STEP_KNOCK;
		st = pp_job_push(j, scratch, (size_t)n, &used);
		/* Take the header bytes the peek saw off the socket.  They
		 * are in the parser already: MSG_TRUNC has TCP drop them
		 * without copying them out again.  Not those of an invalid
		 * header: the connection is refused, or given back intact if
		 * its listener turns out to be another socket. */
		if (want == 0 && used > 0 && st != PP_INVALID &&
		    pp_real.recv(j->fd, scratch, used,
				 MSG_DONTWAIT | MSG_TRUNC) != (ssize_t)used) {
			pp_why(why, "receive error");
			return PP_STEP_BAD;
		}
		if (st == PP_DONE)
			return PP_STEP_DONE;
		if (st == PP_INVALID) {
			pp_why(why, j->p.reason[0] ? j->p.reason
						   : pp_strerror(j->p.err));
			return PP_STEP_BAD;
		}
	}
}

/* Put one advertised address into the form the socket's family has. */
static void
pp_adv_addr(const union pp_sockaddr *a, int family, union pp_inaddr *out,
	    socklen_t *outlen)
{
	if (a->sa.sa_family == AF_INET && family == AF_INET6) {
		(void)pp_sa_as_family(&a->sa, sizeof(a->sin), AF_INET6, out,
				      outlen);
	} else if (a->sa.sa_family == AF_INET) {
		out->sin = a->sin;
		*outlen = sizeof(out->sin);
	} else {
		out->sin6 = a->sin6;
		*outlen = sizeof(out->sin6);
	}
}

/*
 * A complete header: decide what the connection reports, log it.
 * Returns false (with the reason in why) when the advertised client
 * cannot be represented on this socket.
 */
PP_HOT_CONN bool
pp_job_finish(struct pp_job *j, struct pp_fdinfo *info, char why[PP_WHY_MAX])
{
	const struct pp_header *h = pp_parser_header(&j->p);
	char real[INET6_ADDRSTRLEN + 16], src[INET6_ADDRSTRLEN + 16];
	/* Not initialised here: "= \"\"" would zero all 600 bytes on every
	 * connection, logged or not. */
	char dst[INET6_ADDRSTRLEN + 16], extra[600];
	const uint8_t *v;
	size_t vlen, o;

	memset(info, 0, sizeof(*info));
	/* Tracked even with the real addresses: a program exec'ed on it
	 * must know the header was read already. */
	info->kind = PP_FD_CONN;
	info->family = (uint16_t)j->family;
	if ((j->peer.sa.sa_family == AF_INET &&
	     j->peerlen == sizeof(struct sockaddr_in)) ||
	    (j->peer.sa.sa_family == AF_INET6 &&
	     j->peerlen == sizeof(struct sockaddr_in6))) {
		memcpy(&info->rpeer, &j->peer, j->peerlen);
		info->rpeerlen = j->peerlen;
		info->lport = j->lport;
	}
	if (h->command == PP_CMD_LOCAL || h->transport == PP_TP_UNSPEC ||
	    (h->family != PP_FAM_INET && h->family != PP_FAM_INET6)) {
		if (pp_log_on(PP_LOG_INFO)) {
			pp_sa_fmt(&j->peer.sa, j->peerlen, real, sizeof(real));
			pp_log(PP_LOG_INFO, "local %s (v%u %s)", real,
			       h->version,
			       h->command == PP_CMD_LOCAL ? "LOCAL"
			       : h->family == PP_FAM_UNIX ? "UNIX"
							  : "UNSPEC");
		}
		return true;
	}
	if (h->family == PP_FAM_INET6 && j->family == AF_INET) {
		pp_why(why, "IPv6 client on an IPv4 socket");
		return false;
	}
	info->has_src = true;
	/* Known whatever PP_SOCKNAME says: each process that asks (this
	 * one, or a program it hands the connection to) applies its own. */
	info->has_dst = true;
	pp_adv_addr(&h->src, j->family, &info->src, &info->srclen);
	pp_adv_addr(&h->dst, j->family, &info->dst, &info->dstlen);
	if (pp_log_on(PP_LOG_INFO)) {
		pp_sa_fmt(&j->peer.sa, j->peerlen, real, sizeof(real));
		pp_sa_fmt(&h->src.sa, h->srclen, src, sizeof(src));
		pp_sa_fmt(&h->dst.sa, h->dstlen, dst, sizeof(dst));
		o = 0;
		extra[0] = '\0';
		if (h->tlv_len > 0 &&
		    pp_tlv_find(h->tlv, h->tlv_len, PP_TLV_UNIQUE_ID, &v,
				&vlen)) {
			o = (size_t)snprintf(extra, sizeof(extra),
					     " unique_id=");
			pp_fmt_tlv(v, vlen, extra + o, sizeof(extra) - o);
			o = strlen(extra);
		}
		if (h->tlv_len > 0 &&
		    pp_tlv_find(h->tlv, h->tlv_len, PP_TLV_AUTHORITY, &v,
				&vlen) &&
		    o + 12 < sizeof(extra)) {
			o += (size_t)snprintf(extra + o, sizeof(extra) - o,
					      " authority=");
			pp_fmt_tlv(v, vlen, extra + o, sizeof(extra) - o);
		}
		pp_log(PP_LOG_INFO, "proxied %s as %s -> %s (v%u%s)", real, src,
		       dst, h->version, extra);
	}
	return true;
}

/* See hdrio.h.  Takes no lock; allocates through pp_alloc. */
int
pp_read_header_wait(int fd, int family, const union pp_sockaddr *peer,
		    socklen_t peerlen, struct pp_fdinfo *info,
		    struct pp_tlvset *tlvs, char why[PP_WHY_MAX])
{
	int64_t deadline = pp_now_ms() + pp_cfg.timeout_ms, now;
	const struct pp_header *h;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct pp_job job;
	enum pp_step st;
	int ret = -1;

	memset(tlvs, 0, sizeof(*tlvs));
	why[0] = '\0';
	pp_job_init(&job, fd, family, peer, peerlen);
	for (;;) {
		st = pp_job_step(&job, why);
		if (st == PP_STEP_DONE)
			break;
		if (st == PP_STEP_KNOCK) {
			pp_why(why, "not a PROXY header");
			goto out;
		}
		if (st == PP_STEP_BAD)
			goto out;
		now = pp_now_ms();
		if (now >= deadline) {
			pp_why(why, "timeout waiting for the header");
			goto out;
		}
		(void)poll(&pfd, 1, (int)(deadline - now));
	}
	if (!pp_job_finish(&job, info, why))
		goto out;
	h = pp_parser_header(&job.p);
	if (h->tlv_len > 0)
		pp_tlvset_from_area(tlvs, h->tlv, h->tlv_len);
	ret = 0;
out:
	pp_job_free(&job);
	return ret;
}
