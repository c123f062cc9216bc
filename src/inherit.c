/*
 * inherit.c - connections a process holds when it starts.
 *
 * 1. Hand-over: a preloaded parent that exec'ed us described, in
 *    PPSHIM_HANDOVER, each connection we inherit (hook_exec.c).  An
 *    entry is taken only for the descriptor that is still that very
 *    socket (same SO_COOKIE); when the number changed on the way (file
 *    actions of posix_spawn, a launcher's dup2 inside libc), the open
 *    descriptors are searched for the cookie.  No header is read, no
 *    byte of the connection is touched.
 *
 * 2. PP_INHERIT=1: for a connected stream socket on fds 0-2 or in the
 *    LISTEN_FDS range whose local address is PROXY-only and that no
 *    hand-over covers (systemd Accept=yes, an unpreloaded inetd), the
 *    header is read here, before main, bounded by PP_TIMEOUT_MS, and the
 *    ACLs applied.  A refused connection ends the process before main:
 *    exit status 77 (EX_NOPERM) for an untrusted source, 76 (EX_PROTOCOL)
 *    for a missing or invalid header; the client gets a reset.  Listening
 *    sockets are never read.  Without PP_INHERIT=1 nothing is read: a
 *    header is configuration, never a guess.
 *
 * 3. The header of a connection is read once.  After 1 and 2, the
 *    process's own environment gets PPSHIM_HANDOVER describing the
 *    connections it holds, and PP_INHERIT=0: children that libc starts
 *    by itself (system, popen), which copy the environment and go
 *    through no hook, take the hand-over and read nothing.  A program
 *    that clears its environment drops PP_INHERIT with it.
 *
 * Either way, TCPREMOTEIP, TCPREMOTEPORT, TCPLOCALIP and TCPLOCALPORT
 * present in the environment are rewritten to the advertised values
 * (PP_INHERIT only: with a hand-over, the exec hook already did), and the
 * PP_TLV_* variables exported.
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "handover.h"
#include "hdrio.h"
#include "hook_exec.h"
#include "ident.h"
#include "inherit.h"
#include "pp_listenfds.h"
#include "pp_sockaddr.h"
#include "shim.h"
#include "tlvcache.h"
#include "trust.h"

#define PP_UNMATCHED_MAX 32

struct pp_takectx {
	struct pp_handover miss[PP_UNMATCHED_MAX];
	size_t nmiss;
};

/* Does t hold any TLV worth keeping for the exec hook? */
static bool
pp_tlvset_any(const struct pp_tlvset *t)
{
	int i;

	for (i = 0; i < PP_XTLV_COUNT; i++)
		if (t->present[i])
			return true;
	return false;
}

static void
pp_register(int fd, const struct pp_handover *h)
{
	struct pp_fdinfo info = h->info;

	info.kind = PP_FD_CONN;
	if (!pp_fd_set(fd, &info))
		return;
	if (pp_tlvset_any(&h->tlvs))
		pp_tlvcache_put(info.cookie, &h->tlvs);
}

static void
pp_take(const struct pp_handover *h, void *arg)
{
	struct pp_takectx *ctx = arg;

	if (pp_same_socket(h->fd, h->info.cookie))
		pp_register(h->fd, h);
	/* Other numbers may hold the same socket (posix_spawn's dup2). */
	if (ctx->nmiss < PP_UNMATCHED_MAX)
		ctx->miss[ctx->nmiss++] = *h;
}

/* Look for the sockets of unmatched entries under other numbers. */
static void
pp_search_fds(struct pp_takectx *ctx)
{
	struct dirent *de;
	uint64_t cookie;
	DIR *d;
	size_t i;
	long fd;
	char *end;

	d = opendir("/proc/self/fd");
	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		fd = strtol(de->d_name, &end, 10);
		if (*end != '\0' || fd < 0 || fd == dirfd(d))
			continue;
		cookie = pp_socket_cookie((int)fd);
		if (cookie == 0)
			continue;
		for (i = 0; i < ctx->nmiss; i++)
			if (ctx->miss[i].info.cookie == cookie)
				pp_register((int)fd, &ctx->miss[i]);
	}
	closedir(d);
}

static const char *
pp_env_get(void *arg, const char *name)
{
	(void)arg;
	return getenv(name);
}

static void
pp_env_set(void *arg, const char *name, const char *value)
{
	(void)arg;
	setenv(name, value, 1);
}

static void
pp_env_unset(void *arg, const char *name)
{
	(void)arg;
	unsetenv(name);
}

/* This process's own environment, for pp_tcpvars_rewrite. */
static const struct pp_envops pp_procenv = { pp_env_get, pp_env_set,
					     pp_env_unset, NULL };

static void
pp_export(const struct pp_fdinfo *info, const struct pp_tlvset *tlvs)
{
	char val[2 * PP_XTLV_MAX + 8];
	int i;

	pp_tcpvars_rewrite(info, pp_cfg.sockname_real, &pp_procenv);
	for (i = 0; i < PP_XTLV_COUNT; i++) {
		if (!tlvs->present[i]) {
			unsetenv(pp_tlv_envname((enum pp_tlvname)i));
			continue;
		}
		pp_tlv_envvalue(tlvs->val[i], tlvs->len[i], val, sizeof(val));
		setenv(pp_tlv_envname((enum pp_tlvname)i), val, 1);
	}
}

/* Refuse the inherited connection: reset it and end the process. */
static void
pp_inherit_refuse(int fd, const union pp_sockaddr *peer, socklen_t peerlen,
		  const char *why, int status)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };
	char who[INET6_ADDRSTRLEN + 16];

	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	pp_sa_fmt(&peer->sa, peerlen, who, sizeof(who));
	pp_log(PP_LOG_WARN, "refused inherited connection from %s: %s", who,
	       why);
	_exit(status);
}

/* Take inherited connection fd (one of 0..nfds-1), reading its header. */
static void
pp_inherit_one(int fd, int nfds)
{
	struct pp_fdinfo info;
	struct pp_tlvset tlvs;
	union pp_sockaddr local, peer;
	socklen_t llen = sizeof(local), plen = sizeof(peer), olen;
	int type = 0, listening = 1;
	uint64_t cookie;
	enum pp_trust trust;
	char why[PP_WHY_MAX];
	int i;

	if (pp_fd_kind(fd) == PP_FD_CONN)
		return; /* handed over, or done under another number */
	olen = sizeof(type);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &olen) != 0 ||
	    type != SOCK_STREAM)
		return;
	olen = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen) != 0 ||
	    listening)
		return;
	if (pp_real.getsockname(fd, &local.sa, &llen) != 0 ||
	    !pp_config_match(&pp_cfg, SOCK_STREAM, &local.sa, llen) ||
	    pp_real.getpeername(fd, &peer.sa, &plen) != 0)
		return;
	if (local.sa.sa_family != AF_UNIX &&
	    (trust = pp_trust(&peer.sa, plen)) != PP_TRUST_PROXY) {
		if (trust == PP_TRUST_DIRECT)
			return;
		pp_inherit_refuse(fd, &peer, plen, "untrusted source", 77);
	}
	if (pp_read_header_wait(fd, local.sa.sa_family, &peer, plen, &info,
				&tlvs, why) != 0)
		pp_inherit_refuse(fd, &peer, plen, why, 76);
	cookie = pp_socket_cookie(fd);
	info.kind = PP_FD_CONN;
	info.cookie = cookie;
	info.family = local.sa.sa_family;
	/* The same socket under the other inherited numbers (0 and 1). */
	for (i = 0; i < nfds; i++)
		if (i == fd || pp_socket_cookie(i) == cookie)
			pp_fd_set(i, &info);
	if (pp_tlvset_any(&tlvs))
		pp_tlvcache_put(cookie, &tlvs);
	pp_export(&info, &tlvs);
}

/* The variables describe the connection that landed on 0, 1 or 2. */
static void
pp_export_handed_over(void)
{
	struct pp_fdinfo info;
	struct pp_tlvset tlvs;
	int fd;

	for (fd = 0; fd < 3; fd++) {
		if (pp_fd_get(fd, &info) != PP_FD_CONN)
			continue;
		pp_tlvcache_get(info.cookie, &tlvs);
		pp_export(&info, &tlvs);
		return;
	}
}

int
pp_listen_fds(void)
{
	int n = pp_listen_fds_parse(getenv("LISTEN_FDS"), getenv("LISTEN_PID"),
				    (long)getpid());

	return n > 0 ? n : 0;
}

/* The connections on 0-2 and in the LISTEN_FDS range. */
static void
pp_inherit_read(void)
{
	int nfds = PP_LISTEN_FDS_START + pp_listen_fds(), fd;

	for (fd = 0; fd < nfds; fd++)
		pp_inherit_one(fd, nfds);
}

void
pp_inherit_load(void)
{
	const char *v = getenv(PP_HANDOVER_VAR);
	struct pp_takectx *ctx;

	if (v != NULL && *v != '\0') {
		ctx = calloc(1, sizeof(*ctx));
		if (ctx != NULL) {
			pp_handover_parse(v, pp_take, ctx);
			if (ctx->nmiss > 0)
				pp_search_fds(ctx);
			free(ctx);
		}
		pp_export_handed_over();
	}
	if (pp_cfg.inherit && pp_active())
		pp_inherit_read();
	if ((v != NULL && *v != '\0') || pp_cfg.inherit) {
		/* Children libc starts (system, popen) copy this environment:
		 * they find the hand-over there, and never read a header of
		 * their own from the client's payload. */
		pp_handover_environ();
		if (pp_cfg.inherit)
			setenv("PP_INHERIT", "0", 1);
	}
}
