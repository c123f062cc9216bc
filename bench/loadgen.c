/*
 * loadgen - short HTTP connections, each with a PROXY header or none.
 *
 * Every connection: socket, connect, one write of the header (v1, v2 or
 * none) followed by "GET / HTTP/1.0\r\n\r\n", read until the server
 * closes, close.  Several connections are in flight per thread (epoll,
 * non-blocking connect); a new one starts as soon as one ends.  The
 * advertised source changes from one connection to the next (10.x.y.z
 * and a varying port, from a pool of distinct headers).
 *
 * Ports: the server closes first (HTTP/1.0), so its side would hold the
 * TIME_WAIT; the client closes with SO_LINGER 0 (RST, no state left on
 * either side) unless -k.  Sources are bound round-robin to 127.1.0.1,
 * 127.1.0.2, ... (-S) with IP_BIND_ADDRESS_NO_PORT, so the kernel picks
 * the port per 4-tuple and loopback never runs out of ephemeral ports.
 *
 * Several targets (-t, one per mode) are measured in alternating slices:
 * each round gives every target one slice (-s seconds), in an order
 * rotated from round to round, and the report compares neighbouring
 * slices (bstat.c).  With -n the slices are count-limited instead.
 *
 * Nuisance connections (-q silent, -Q trickling, -g garbage per second)
 * are kept up by a separate thread on the targets named by -N while the
 * load runs: silent ones never send a byte, trickling ones send their
 * header and request one byte every 100 ms, garbage ones send 64 bytes
 * that are no header.
 *
 * Usage: loadgen [options] -t NAME=[ADDR:]PORT[/MODE[/PID]] [-t ...]
 *   MODE: v1, v2 (default) or none; PID: the server process whose CPU
 *   time is measured per slice (all its threads).
 *   -c N     connections in flight per thread (8)
 *   -j N     threads (1)
 *   -s SEC   slice length (0.5)
 *   -r N     rounds (1); -w N warm-up rounds, not reported (1)
 *   -n N     count mode: each slice ends after N connections
 *   -T SEC   the longest a slice may take before it is abandoned (60)
 *   -S N     source addresses (256; 0: let the kernel choose)
 *   -P N     distinct advertised sources per target (16384)
 *   -C       v2 headers carry a CRC32C TLV
 *   -k       close normally (FIN) rather than with RST
 *   -R A/B   print the paired ratio of target A to target B (repeatable)
 *   -A A/B   the same, marked as the A/A check of the run
 *   -q N, -Q N, -g N, -N NAMES   nuisance connections (see above)
 *   -o FILE  the slices as CSV
 *   -v       one line per slice on stderr
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bstat.h"
#include "target.h"
#include "pp_parse.h"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define LG_REQUEST "GET / HTTP/1.0\r\n\r\n"
#define LG_MAX_THREADS 16
#define LG_MAX_NUISANCE 256
#define LG_TRICKLE_MS 100
#define LG_EVENTS 64

enum lg_mode { LG_NONE, LG_V1, LG_V2 };

struct lg_target {
	struct bt_target id; /* name, address, mode, server pid */
	enum lg_mode mode;
	bool nuisance; /* -N named it */
	char *pool;    /* npool payloads of stride bytes */
	uint16_t *plen;
	size_t stride;
};

struct lg_conn {
	int fd;
	int64_t t0;
	uint32_t payload;
	uint16_t sent;
	bool ok;   /* the status line said 200 */
	bool seen; /* the status line was looked at */
};

struct lg_thread {
	pthread_t tid;
	int id;
	int ep;
	struct lg_conn *conns;
	double *lat; /* microseconds */
	size_t nlat, latcap;
	uint64_t count, errors;
	double end;
	uint32_t next_payload;
	uint32_t next_src;
};

static struct {
	int inflight, threads, rounds, warmup, nsrc, npool;
	double slice, maxslice;
	uint64_t limit;
	bool crc, fin, verbose;
	int silent, trickle, garbage;
	const char *csv;
} opt = {
	.inflight = 8,
	.threads = 1,
	.rounds = 1,
	.warmup = 1,
	.nsrc = 256,
	.npool = 16384,
	.slice = 0.5,
	.maxslice = 60,
};

static struct lg_target targets[BS_MAX_SLOTS];
static _Atomic int first_errno; /* of the first failed connection */
static int ntargets;
static struct lg_thread threads[LG_MAX_THREADS];
static pthread_barrier_t bar;

/* The slice being run (written by main between the barriers). */
static struct {
	int target;
	double start, deadline, hard;
	bool quit;
} cur;
static atomic_uint_fast64_t issued;
static atomic_bool stop_nuisance;

static void
die(const char *what)
{
	perror(what);
	exit(1);
}

static void
usage(void)
{
	fprintf(stderr,
		"usage: loadgen [-c N] [-j N] [-s SEC] [-r N] [-w N] [-n N] "
		"[-T SEC]\n"
		"               [-S N] [-P N] [-C] [-k] [-R A/B] [-A A/B] "
		"[-q N] [-Q N]\n"
		"               [-g N] [-N NAMES] [-o FILE] [-v]\n"
		"               -t NAME=[ADDR:]PORT[/v1|v2|none[/PID]] ...\n");
	exit(64);
}

static bool
parse_target(const char *spec, struct lg_target *t)
{
	const char *m = t->id.mode;

	if (!bt_parse_target(spec, &t->id))
		return false;
	if (strcmp(m, "v1") == 0)
		t->mode = LG_V1;
	else if (strcmp(m, "none") == 0)
		t->mode = LG_NONE;
	else if (m[0] == '\0' || strcmp(m, "v2") == 0)
		t->mode = LG_V2;
	else
		return false;
	return true;
}

/* The advertised source of payload i: 10.x.y.z, port 1024..65023. */
static void
adv_source(uint32_t i, struct sockaddr_in *sin)
{
	uint32_t a = i + 1;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(0x0A000000u | (a & 0xFFFFFFu));
	sin->sin_port =
		htons((uint16_t)(1024 + (a * 2654435761u >> 8) % 64000));
}

/* Build the payload pool of t: header (per its mode) + request. */
static void
build_pool(struct lg_target *t)
{
	struct pp_header h;
	size_t n, rl = strlen(LG_REQUEST);
	uint32_t i;
	char *p;

	t->stride = PP_V1_MAX + 64 + rl;
	t->pool = malloc(t->stride * (size_t)opt.npool);
	t->plen = malloc(sizeof(*t->plen) * (size_t)opt.npool);
	if (t->pool == NULL || t->plen == NULL)
		die("malloc");
	for (i = 0; i < (uint32_t)opt.npool; i++) {
		p = t->pool + t->stride * i;
		memset(&h, 0, sizeof(h));
		h.version = t->mode == LG_V1 ? 1 : 2;
		h.command = PP_CMD_PROXY;
		h.family = PP_FAM_INET;
		h.transport = PP_TP_STREAM;
		adv_source(i, &h.src.sin);
		h.srclen = sizeof(h.src.sin);
		h.dst.sin = t->id.addr;
		h.dstlen = sizeof(h.dst.sin);
		n = 0;
		if (t->mode == LG_V1)
			n = pp_encode_v1(&h, p, t->stride - rl);
		else if (t->mode == LG_V2)
			n = pp_encode_v2(&h, opt.crc, (uint8_t *)p,
					 t->stride - rl);
		if (t->mode != LG_NONE && n == 0) {
			fprintf(stderr, "loadgen: cannot encode a header\n");
			exit(1);
		}
		memcpy(p + n, LG_REQUEST, rl);
		t->plen[i] = (uint16_t)(n + rl);
	}
}

/* Open a non-blocking connection to t from source number src. */
static int
lg_open(const struct lg_target *t, uint32_t src)
{
	struct linger lin = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_in sin;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (!opt.fin)
		(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lin, sizeof(lin));
	if (opt.nsrc > 0) {
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_addr.s_addr =
			htonl(0x7F010001u + src % (uint32_t)opt.nsrc);
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one,
				 sizeof(one));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
			close(fd);
			return -1;
		}
	}
	if (connect(fd, (const struct sockaddr *)&t->id.addr,
		    sizeof(t->id.addr)) != 0 &&
	    errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
lat_add(struct lg_thread *th, double us)
{
	double *n;

	if (th->nlat == th->latcap) {
		th->latcap = th->latcap ? th->latcap * 2 : 65536;
		n = realloc(th->lat, th->latcap * sizeof(*n));
		if (n == NULL)
			die("realloc");
		th->lat = n;
	}
	th->lat[th->nlat++] = us;
}

/* May this thread start one more connection in the current slice? */
static bool
may_start(void)
{
	if (bs_now() >= cur.deadline)
		return false;
	if (opt.limit == 0)
		return true;
	return atomic_fetch_add(&issued, 1) < opt.limit;
}

/* Send what is left of the payload; false on a hard error. */
static bool
conn_send(struct lg_conn *c, const struct lg_target *t)
{
	const char *p = t->pool + t->stride * c->payload;
	size_t len = t->plen[c->payload];
	ssize_t n;

	while (c->sent < len) {
		n = send(c->fd, p + c->sent, len - c->sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == ENOTCONN;
		}
		c->sent = (uint16_t)(c->sent + n);
	}
	return true;
}

/* Start connection slot c; false when it could not be started. */
static bool
conn_start(struct lg_thread *th, struct lg_conn *c, uint32_t idx)
{
	const struct lg_target *t = &targets[cur.target];
	struct epoll_event ev;

	c->fd = lg_open(t, th->next_src++);
	if (c->fd < 0) {
		int zero = 0;

		atomic_compare_exchange_strong(&first_errno, &zero, errno);
		th->errors++;
		return false;
	}
	c->t0 = bs_now_ns();
	c->payload = th->next_payload++ % (uint32_t)opt.npool;
	c->sent = 0;
	c->ok = c->seen = false;
	/* On loopback the handshake has mostly finished inside connect. */
	if (!conn_send(c, t))
		goto fail;
	ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
	ev.data.u32 = idx;
	if (epoll_ctl(th->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		goto fail;
	return true;
fail:
	th->errors++;
	close(c->fd);
	c->fd = -1;
	return false;
}

/* Handle events on c; returns true when the connection is over. */
static bool
conn_event(struct lg_thread *th, struct lg_conn *c, uint32_t events)
{
	const struct lg_target *t = &targets[cur.target];
	char buf[4096];
	ssize_t n;

	if (c->sent < t->plen[c->payload]) {
		if (!conn_send(c, t))
			goto bad;
		if (c->sent < t->plen[c->payload] &&
		    !(events & (EPOLLERR | EPOLLHUP)))
			return false;
	}
	for (;;) {
		n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			if (!c->seen && n >= 12) {
				c->seen = true;
				c->ok = memcmp(buf, "HTTP/1.", 7) == 0 &&
					memcmp(buf + 8, " 200", 4) == 0;
			}
			continue;
		}
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return false;
		goto bad;
	}
	if (!c->ok)
		goto bad;
	th->count++;
	lat_add(th, (double)(bs_now_ns() - c->t0) / 1e3);
	close(c->fd);
	c->fd = -1;
	return true;
bad:
	th->errors++;
	close(c->fd);
	c->fd = -1;
	return true;
}

static void
run_slice(struct lg_thread *th)
{
	struct epoll_event evs[LG_EVENTS];
	int i, n, active = 0;
	uint32_t k;

	th->count = th->errors = 0;
	th->nlat = 0;
	th->end = cur.start;
	for (i = 0; i < opt.inflight; i++) {
		th->conns[i].fd = -1;
		if (may_start() && conn_start(th, &th->conns[i], (uint32_t)i))
			active++;
	}
	while (active > 0) {
		n = epoll_wait(th->ep, evs, LG_EVENTS, 100);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		for (i = 0; i < n; i++) {
			k = evs[i].data.u32;
			if (th->conns[k].fd < 0)
				continue;
			if (!conn_event(th, &th->conns[k], evs[i].events))
				continue;
			active--;
			th->end = bs_now();
			/* Failed starts count as errors; retry a few. */
			for (int tries = 0; tries < 4 && may_start(); tries++)
				if (conn_start(th, &th->conns[k], k)) {
					active++;
					break;
				}
		}
		if (bs_now() > cur.hard) {
			for (i = 0; i < opt.inflight; i++)
				if (th->conns[i].fd >= 0) {
					close(th->conns[i].fd);
					th->conns[i].fd = -1;
					th->errors++;
				}
			break;
		}
	}
}

static void *
thread_main(void *arg)
{
	struct lg_thread *th = arg;

	for (;;) {
		pthread_barrier_wait(&bar);
		if (cur.quit)
			return NULL;
		run_slice(th);
		pthread_barrier_wait(&bar);
	}
}

/* ===== Nuisance connections ===== */

enum nu_kind { NU_SILENT, NU_TRICKLE, NU_GARBAGE };

struct nu_conn {
	int fd;
	int target;
	enum nu_kind kind;
	uint32_t payload;
	uint16_t sent;
	int64_t next_ns; /* trickle: next byte */
	bool seen, ok;
};

static struct {
	uint64_t silent_opened, silent_closed;
	uint64_t trickle_ok, trickle_bad;
	uint64_t garbage_sent, garbage_refused, garbage_answered;
} nu_stats;

static int
nu_open(struct nu_conn *c)
{
	const struct lg_target *t = &targets[c->target];
	static const char junk[] = "GARBAGE\r\nthis is no PROXY header, "
				   "just 64 bytes of something else.....";

	c->fd = lg_open(t, (uint32_t)rand());
	c->sent = 0;
	c->seen = c->ok = false;
	c->next_ns = bs_now_ns() + LG_TRICKLE_MS * 1000000LL;
	c->payload = (uint32_t)rand() % (uint32_t)opt.npool;
	if (c->fd < 0)
		return -1;
	if (c->kind == NU_SILENT)
		nu_stats.silent_opened++;
	if (c->kind == NU_GARBAGE) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };

		(void)poll(&p, 1, 100);
		if (send(c->fd, junk, sizeof(junk) - 1, MSG_NOSIGNAL) > 0)
			nu_stats.garbage_sent++;
	}
	return 0;
}

/* Something happened on c (readable, hung up): read it to its end. */
static void
nu_readable(struct nu_conn *c)
{
	char buf[2048];
	ssize_t n;

	for (;;) {
		n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			if (!c->seen && n >= 12) {
				c->seen = true;
				c->ok = memcmp(buf + 8, " 200", 4) == 0;
			}
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		break;
	}
	/* Over: EOF or reset. */
	switch (c->kind) {
	case NU_SILENT:
		nu_stats.silent_closed++;
		break;
	case NU_TRICKLE:
		if (c->ok)
			nu_stats.trickle_ok++;
		else
			nu_stats.trickle_bad++;
		break;
	case NU_GARBAGE:
		if (c->seen)
			nu_stats.garbage_answered++;
		else
			nu_stats.garbage_refused++;
		break;
	}
	close(c->fd);
	c->fd = -1;
}

static void *
nuisance_main(void *arg)
{
	static struct nu_conn nc[LG_MAX_NUISANCE];
	struct pollfd pfd[LG_MAX_NUISANCE];
	int n = 0, i, k, g0;
	int64_t now, gnext = bs_now_ns();

	(void)arg;
	for (k = 0; k < ntargets; k++) {
		if (!targets[k].nuisance)
			continue;
		for (i = 0; i < opt.silent && n < LG_MAX_NUISANCE; i++)
			nc[n++] = (struct nu_conn){ .fd = -1,
						    .target = k,
						    .kind = NU_SILENT };
		for (i = 0; i < opt.trickle && n < LG_MAX_NUISANCE; i++)
			nc[n++] = (struct nu_conn){ .fd = -1,
						    .target = k,
						    .kind = NU_TRICKLE };
	}
	g0 = n;
	for (k = 0; k < ntargets && opt.garbage > 0; k++)
		if (targets[k].nuisance && n < LG_MAX_NUISANCE)
			nc[n++] = (struct nu_conn){ .fd = -1,
						    .target = k,
						    .kind = NU_GARBAGE };
	while (!atomic_load(&stop_nuisance)) {
		now = bs_now_ns();
		for (i = 0; i < g0; i++) {
			if (nc[i].fd < 0)
				(void)nu_open(&nc[i]);
			if (nc[i].fd < 0 || nc[i].kind != NU_TRICKLE ||
			    nc[i].next_ns > now)
				continue;
			const struct lg_target *t = &targets[nc[i].target];
			if (nc[i].sent < t->plen[nc[i].payload] &&
			    send(nc[i].fd,
				 t->pool + t->stride * nc[i].payload +
					 nc[i].sent,
				 1, MSG_NOSIGNAL) == 1)
				nc[i].sent++;
			nc[i].next_ns = now + LG_TRICKLE_MS * 1000000LL;
		}
		/* Garbage: one connection per target, opened at the rate. */
		if (now >= gnext && opt.garbage > 0) {
			for (i = g0; i < n; i++) {
				if (nc[i].fd >= 0) {
					close(nc[i].fd);
					nc[i].fd = -1;
				}
				(void)nu_open(&nc[i]);
			}
			gnext = now + 1000000000LL / opt.garbage;
		}
		for (i = 0; i < n; i++) {
			pfd[i].fd = nc[i].fd;
			pfd[i].events = POLLIN | POLLRDHUP;
			pfd[i].revents = 0;
		}
		if (poll(pfd, (nfds_t)n, 10) <= 0)
			continue;
		for (i = 0; i < n; i++)
			if (pfd[i].revents && nc[i].fd >= 0)
				nu_readable(&nc[i]);
	}
	for (i = 0; i < n; i++)
		if (nc[i].fd >= 0)
			close(nc[i].fd);
	return NULL;
}

/* ===== Main: rounds of slices ===== */

static void
merge(struct bs_slice *s, double t0)
{
	double *all, end = t0;
	size_t n = 0;
	int k;

	s->count = s->errors = 0;
	for (k = 0; k < opt.threads; k++) {
		s->count += threads[k].count;
		s->errors += threads[k].errors;
		n += threads[k].nlat;
		if (threads[k].end > end)
			end = threads[k].end;
	}
	s->secs = end - t0;
	all = malloc((n + 1) * sizeof(*all));
	if (all == NULL)
		die("malloc");
	for (k = 0, n = 0; k < opt.threads; k++) {
		memcpy(all + n, threads[k].lat, threads[k].nlat * sizeof(*all));
		n += threads[k].nlat;
	}
	s->p50_us = bs_quantile(all, n, 0.5);
	s->p99_us = bs_quantile(all, n, 0.99);
	s->max_us = n ? all[n - 1] : 0;
	free(all);
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int
main(int argc, char **argv)
{
	struct bs_run run = { .unit = "conn", .aa = -1 };
	const char *ratios[BS_MAX_RATIOS], *nuisance = NULL;
	bool aa[BS_MAX_RATIOS];
	int nr = 0, c, r, i, k;
	pthread_t nt;
	char *tok, *save;

	while ((c = getopt(argc, argv,
			   "t:c:j:s:r:w:n:T:S:P:CkR:A:q:Q:g:N:o:v")) != -1) {
		switch (c) {
		case 't':
			if (ntargets >= BS_MAX_SLOTS ||
			    !parse_target(optarg, &targets[ntargets]))
				usage();
			ntargets++;
			break;
		case 'c':
			opt.inflight = atoi(optarg);
			break;
		case 'j':
			opt.threads = atoi(optarg);
			break;
		case 's':
			opt.slice = atof(optarg);
			break;
		case 'r':
			opt.rounds = atoi(optarg);
			break;
		case 'w':
			opt.warmup = atoi(optarg);
			break;
		case 'n':
			opt.limit = strtoull(optarg, NULL, 10);
			break;
		case 'T':
			opt.maxslice = atof(optarg);
			break;
		case 'S':
			opt.nsrc = atoi(optarg);
			break;
		case 'P':
			opt.npool = atoi(optarg);
			break;
		case 'C':
			opt.crc = true;
			break;
		case 'k':
			opt.fin = true;
			break;
		case 'R':
		case 'A':
			if (nr >= BS_MAX_RATIOS)
				usage();
			aa[nr] = c == 'A';
			ratios[nr++] = optarg;
			break;
		case 'q':
			opt.silent = atoi(optarg);
			break;
		case 'Q':
			opt.trickle = atoi(optarg);
			break;
		case 'g':
			opt.garbage = atoi(optarg);
			break;
		case 'N':
			nuisance = optarg;
			break;
		case 'o':
			opt.csv = optarg;
			break;
		case 'v':
			opt.verbose = true;
			break;
		default:
			usage();
		}
	}
	if (ntargets == 0 || optind != argc || opt.inflight < 1 ||
	    opt.threads < 1 || opt.threads > LG_MAX_THREADS || opt.rounds < 1 ||
	    opt.warmup < 0 || opt.slice <= 0 || opt.npool < 1 ||
	    opt.npool > 1 << 24 || opt.nsrc < 0)
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();
	run.nslots = ntargets;
	for (k = 0; k < ntargets; k++) {
		run.names[k] = targets[k].id.name;
		run.pids[k] = targets[k].id.pid;
		targets[k].nuisance = nuisance == NULL;
		build_pool(&targets[k]);
	}
	if (nuisance != NULL) {
		char *list = strdup(nuisance);

		for (tok = strtok_r(list, ",", &save); tok != NULL;
		     tok = strtok_r(NULL, ",", &save)) {
			k = bs_slot(&run, tok);
			if (k < 0)
				usage();
			targets[k].nuisance = true;
		}
		free(list);
	}
	for (i = 0; i < nr; i++)
		if (!bs_add_ratio(&run, ratios[i], aa[i])) {
			fprintf(stderr, "loadgen: bad ratio %s\n", ratios[i]);
			return 64;
		}
	if (pthread_barrier_init(&bar, NULL, (unsigned)opt.threads + 1) != 0)
		die("pthread_barrier_init");
	for (k = 0; k < opt.threads; k++) {
		threads[k].id = k;
		threads[k].next_payload = (uint32_t)k * 7919u;
		threads[k].next_src = (uint32_t)k * 131u;
		threads[k].ep = epoll_create1(EPOLL_CLOEXEC);
		threads[k].conns =
			calloc((size_t)opt.inflight, sizeof(struct lg_conn));
		if (threads[k].ep < 0 || threads[k].conns == NULL)
			die("setup");
		if (pthread_create(&threads[k].tid, NULL, thread_main,
				   &threads[k]) != 0)
			die("pthread_create");
	}
	if ((opt.silent || opt.trickle || opt.garbage) &&
	    pthread_create(&nt, NULL, nuisance_main, NULL) != 0)
		die("pthread_create");
	for (r = -opt.warmup; r < opt.rounds; r++) {
		for (i = 0; i < ntargets; i++) {
			struct bs_slice s;
			double c0, c1, t0 = 0, t1 = 0, cli0;

			memset(&s, 0, sizeof(s));
			k = bs_order(&run, r < 0 ? 0 : r, i);
			s.slot = k;
			s.round = r;
			s.srv_cpu = s.srv_ticks = -1;
			if (targets[k].id.pid > 0)
				bs_proc_cpu(targets[k].id.pid, &c0, &t0);
			cli0 = bs_self_cpu();
			atomic_store(&issued, 0);
			cur.target = k;
			cur.start = bs_now();
			cur.deadline = opt.limit ? cur.start + opt.maxslice
						 : cur.start + opt.slice;
			cur.hard = cur.start + opt.maxslice + opt.slice;
			pthread_barrier_wait(&bar);
			pthread_barrier_wait(&bar);
			merge(&s, cur.start);
			s.cli_cpu = bs_self_cpu() - cli0;
			if (targets[k].id.pid > 0 &&
			    bs_proc_cpu(targets[k].id.pid, &c1, &t1)) {
				s.srv_cpu = c1 - c0;
				s.srv_ticks = t1 - t0;
			}
			if (opt.verbose)
				fprintf(stderr,
					"round %d %-10s %8.0f/s p50 %7.1f "
					"p99 %8.1f us cpu %6.2f us/conn "
					"errors %llu\n",
					r, targets[k].id.name,
					s.secs > 0 ? s.count / s.secs : 0,
					s.p50_us, s.p99_us,
					s.count && s.srv_cpu >= 0
						? s.srv_cpu * 1e6 / s.count
						: -1.0,
					(unsigned long long)s.errors);
			if (r >= 0)
				bs_add(&run, &s);
		}
	}
	cur.quit = true;
	pthread_barrier_wait(&bar);
	for (k = 0; k < opt.threads; k++)
		pthread_join(threads[k].tid, NULL);
	if (opt.silent || opt.trickle || opt.garbage) {
		atomic_store(&stop_nuisance, true);
		pthread_join(nt, NULL);
	}
	printf("loadgen: %d target(s), %d round(s) of %s, %d in flight x %d "
	       "thread(s), %d source address(es), close by %s\n",
	       ntargets, opt.rounds,
	       opt.limit ? "count-limited slices" : "slices", opt.inflight,
	       opt.threads, opt.nsrc, opt.fin ? "FIN" : "RST");
	bs_report(&run);
	if (opt.silent || opt.trickle || opt.garbage)
		printf("NUISANCE silent_opened=%llu silent_closed=%llu "
		       "trickle_ok=%llu trickle_bad=%llu garbage_sent=%llu "
		       "garbage_refused=%llu garbage_answered=%llu\n",
		       (unsigned long long)nu_stats.silent_opened,
		       (unsigned long long)nu_stats.silent_closed,
		       (unsigned long long)nu_stats.trickle_ok,
		       (unsigned long long)nu_stats.trickle_bad,
		       (unsigned long long)nu_stats.garbage_sent,
		       (unsigned long long)nu_stats.garbage_refused,
		       (unsigned long long)nu_stats.garbage_answered);
	if (first_errno != 0)
		printf("loadgen: the first connection that could not be "
		       "opened failed with: %s\n",
		       strerror(first_errno));
	if (opt.csv != NULL)
		bs_dump(&run, opt.csv);
	return 0;
}
