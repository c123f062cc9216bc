/*
 * hdrio.h - the header job: reading the PROXY header of one connection
 * without consuming a byte past it (hdrio.c).  A job belongs to one
 * thread at a time (accept, then the worker or a pool); none of these
 * functions takes a lock, except pp_alloc/pp_dealloc (section
 * PP_HOLD_MALLOC, see reentry.h).
 */
#ifndef PP_HDRIO_H
#define PP_HDRIO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "fdtab.h"
#include "log.h"
#include "pp_parse.h"

#define PP_INLINE_BUF 536 /* HAProxy's usual maximum header */
#define PP_SCRATCH 4096

/*
 * The reason a connection is refused, as logged: a copy in storage the
 * caller owns (never a pointer into a parser or a frame that is gone).
 */
#define PP_WHY_MAX 128

/* One connection whose header is being read. */
struct pp_job {
	int fd;
	int family;     /* the listener's (and so the connection's) family */
	uint16_t lport; /* the listener's port, network order (0: unknown) */
	uint8_t stat;   /* the listener's counters' slot (stats.h), 0: none */
	union pp_sockaddr peer;
	socklen_t peerlen;
	struct pp_parser p;
	uint8_t *heap; /* p.buf when the header outgrew inline[] */
	uint8_t inline_buf[PP_INLINE_BUF];
};

enum pp_step { PP_STEP_MORE, PP_STEP_DONE, PP_STEP_BAD, PP_STEP_KNOCK };

/* CLOCK_MONOTONIC in milliseconds (deadlines of jobs, knocks, pools). */
static inline int64_t
pp_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* malloc on the accept path, as section PP_HOLD_MALLOC (NULL when the
 * allocation fails); pp_dealloc frees it the same way. */
void *pp_alloc(size_t n);
void pp_dealloc(void *p);

/* Reset a connection we refuse, so the client sees RST, not a close. */
void pp_reset(int fd);

/* Reset connection fd and log "refused PEER: why" at level; keeps
 * errno. */
void pp_refuse(int fd, const union pp_sockaddr *peer, socklen_t peerlen,
	       enum pp_loglevel level, const char *why);

/* Start job j on connection fd of a listener of family (no allocation). */
void pp_job_init(struct pp_job *j, int fd, int family,
		 const union pp_sockaddr *peer, socklen_t peerlen);

/* Free what job j allocated (the job itself is the caller's). */
void pp_job_free(struct pp_job *j);

/*
 * Push data into the parser, moving it to a larger buffer as soon as the
 * header's total length is known to exceed the one it has.  *used is the
 * number of bytes that belong to the header.
 */
enum pp_status pp_job_push(struct pp_job *j, const uint8_t *data, size_t n,
			   size_t *used);

/* Copy a reason into why, printable bytes only. */
void pp_why(char why[PP_WHY_MAX], const char *text);

/*
 * Read as much of the header as has arrived, never a byte past it.
 * Returns PP_STEP_MORE when the socket has nothing more for now, and
 * with PP_STEP_BAD the reason in why; PP_STEP_KNOCK for a knock's bytes.
 */
enum pp_step pp_job_step(struct pp_job *j, char why[PP_WHY_MAX]);

/*
 * A complete header: fill *info with what the connection reports, log
 * it.  Returns false (with the reason in why) when the advertised
 * client cannot be represented on this socket.
 */
bool pp_job_finish(struct pp_job *j, struct pp_fdinfo *info,
		   char why[PP_WHY_MAX]);

struct pp_tlvset;

/*
 * Read the header of connection fd (accepted by someone else: an
 * inherited socket), waiting at most PP_TIMEOUT_MS.  Returns 0 with
 * *info (kind PP_FD_CONN, or PP_FD_NONE for LOCAL/UNKNOWN/UNSPEC) and
 * *tlvs filled, or -1 with the reason copied into why (PP_WHY_MAX
 * bytes, NUL-terminated).  Does not close fd.
 */
int pp_read_header_wait(int fd, int family, const union pp_sockaddr *peer,
			socklen_t peerlen, struct pp_fdinfo *info,
			struct pp_tlvset *tlvs, char why[PP_WHY_MAX]);

#endif /* PP_HDRIO_H */
