/*
 * udpbench - datagrams per second through UDP echo servers, in
 * alternating slices (see bstat.h).
 *
 * For each target one socket is connected to the server; a window of
 * datagrams is kept in flight, and every echo that comes back lets the
 * next datagram go.  Each datagram is a PROXY v2 header (PROXY, INET,
 * DGRAM, the advertised source changing from one datagram to the next),
 * or an SPP header (the 38 bytes of Spectrum and EdgeOne, the client
 * changing likewise), followed by the payload, or the payload alone.  The payload carries
 * the slice number, a sequence number and the send time, so each echo
 * gives a round-trip time and late echoes of an earlier slice are
 * ignored.  A window that got no echo for 20 ms is counted lost and sent
 * again.
 *
 * Usage: udpbench [options] -t NAME=[ADDR:]PORT[/v2|spp|none[/PID]] ...
 *   -w N     datagrams in flight (32)
 *   -b N     payload bytes (64, at least 24)
 *   -s SEC   slice length (0.5); -r N rounds (1); -W N warm-up rounds (1)
 *   -P N     distinct advertised sources (4096)
 *   -R A/B, -A A/B   paired ratios, as loadgen
 *   -o FILE  the slices as CSV; -v one line per slice on stderr
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bstat.h"
#include "target.h"
#include "pp_parse.h"

#define UB_MAX 2048
#define UB_LOST_MS 20

struct ub_target {
	struct bt_target id; /* name, address, mode, server pid */
	bool v2;             /* a header: v2, or SPP when spp */
	bool spp;
	int fd;
	uint8_t *hdrs; /* npool headers of hlen bytes */
	size_t hlen;
};

/* The first bytes of every payload. */
struct ub_stamp {
	uint32_t slice;
	uint32_t pad;
	uint64_t seq;
	int64_t sent_ns;
};

static struct ub_target targets[BS_MAX_SLOTS];
static int ntargets;
static int window = 32, npool = 4096;
static size_t payload = 64;

static void
usage(void)
{
	fprintf(stderr,
		"usage: udpbench [-w N] [-b N] [-s SEC] [-r N] [-W N] [-P N] "
		"[-R A/B] [-A A/B]\n"
		"                [-o FILE] [-v] "
		"-t NAME=[ADDR:]PORT[/v2|spp|none[/PID]] ...\n");
	exit(64);
}

static bool
parse_target(const char *spec, struct ub_target *t)
{
	const char *m = t->id.mode;

	if (!bt_parse_target(spec, &t->id))
		return false;
	t->spp = strcmp(m, "spp") == 0;
	t->v2 = t->spp || m[0] == '\0' || strcmp(m, "v2") == 0;
	return t->v2 || strcmp(m, "none") == 0;
}

/* npool SPP headers: client 10.x.y.z (IPv4-mapped) and port as for v2,
 * proxy the target's address and port. */
static void
setup_spp(struct ub_target *t)
{
	uint8_t *d;
	uint32_t a, ip;
	uint16_t port;
	int i;

	t->hlen = PP_SPP_LEN;
	t->hdrs = calloc((size_t)npool, PP_SPP_LEN);
	if (t->hdrs == NULL) {
		fprintf(stderr, "udpbench: cannot build headers\n");
		exit(1);
	}
	for (i = 0; i < npool; i++) {
		d = t->hdrs + PP_SPP_LEN * (size_t)i;
		a = (uint32_t)i + 1;
		ip = htonl(0x0A000000u | a);
		port = htons((uint16_t)(1024 + (a * 2654435761u >> 8) % 64000));
		d[0] = 0x56;
		d[1] = 0xEC;
		d[12] = d[13] = d[28] = d[29] = 0xff;
		memcpy(d + 14, &ip, 4);
		memcpy(d + 30, &t->id.addr.sin_addr, 4);
		memcpy(d + 34, &port, 2);
		memcpy(d + 36, &t->id.addr.sin_port, 2);
	}
}

static void
setup_target(struct ub_target *t)
{
	struct pp_header h;
	uint8_t tmp[64];
	int i, bufsz = 1 << 20;

	t->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (t->fd < 0 || connect(t->fd, (struct sockaddr *)&t->id.addr,
				 sizeof(t->id.addr)) != 0) {
		perror("udpbench: socket");
		exit(1);
	}
	(void)setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &bufsz, sizeof(bufsz));
	if (!t->v2)
		return;
	if (t->spp) {
		setup_spp(t);
		return;
	}
	memset(&h, 0, sizeof(h));
	h.version = 2;
	h.command = PP_CMD_PROXY;
	h.family = PP_FAM_INET;
	h.transport = PP_TP_DGRAM;
	h.dst.sin = t->id.addr;
	h.dstlen = sizeof(h.dst.sin);
	h.src.sin.sin_family = AF_INET;
	h.srclen = sizeof(h.src.sin);
	t->hlen = pp_encode_v2(&h, false, tmp, sizeof(tmp));
	t->hdrs = malloc(t->hlen * (size_t)npool);
	if (t->hlen == 0 || t->hdrs == NULL) {
		fprintf(stderr, "udpbench: cannot build headers\n");
		exit(1);
	}
	for (i = 0; i < npool; i++) {
		uint32_t a = (uint32_t)i + 1;

		h.src.sin.sin_addr.s_addr = htonl(0x0A000000u | a);
		h.src.sin.sin_port = htons(
			(uint16_t)(1024 + (a * 2654435761u >> 8) % 64000));
		(void)pp_encode_v2(&h, false, t->hdrs + t->hlen * (size_t)i,
				   t->hlen);
	}
}

static bool
send_one(struct ub_target *t, uint32_t slice, uint64_t seq)
{
	uint8_t buf[UB_MAX];
	struct ub_stamp st = { .slice = slice, .seq = seq };
	size_t off = 0;

	if (t->v2) {
		memcpy(buf, t->hdrs + t->hlen * (seq % (uint64_t)npool),
		       t->hlen);
		off = t->hlen;
	}
	st.sent_ns = bs_now_ns();
	memset(buf + off, 'x', payload);
	memcpy(buf + off, &st, sizeof(st));
	return send(t->fd, buf, off + payload, 0) >= 0;
}

static void
run_slice(struct ub_target *t, uint32_t slice, double secs, struct bs_slice *s)
{
	struct pollfd pfd = { .fd = t->fd, .events = POLLIN };
	uint8_t buf[UB_MAX];
	struct ub_stamp st;
	double start = bs_now(), deadline = start + secs, end = start;
	uint64_t seq = 0;
	double *lat;
	size_t nlat = 0, cap = 1 << 16;
	int out = 0, i, k;
	ssize_t n;
	size_t skip;
	bool sending = true;

	lat = malloc(cap * sizeof(*lat));
	if (lat == NULL)
		exit(1);
	for (i = 0; i < window; i++)
		if (send_one(t, slice, seq++))
			out++;
	while (out > 0) {
		k = poll(&pfd, 1, UB_LOST_MS);
		if (k == 0) {
			/* The window went quiet: count it lost. */
			s->errors += (uint64_t)out;
			out = 0;
			if (!sending || bs_now() >= deadline)
				break;
			for (i = 0; i < window; i++)
				if (send_one(t, slice, seq++))
					out++;
			continue;
		}
		for (;;) {
			n = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n < 0)
				break;
			/* An SPP echo comes back with its header in front. */
			skip = t->spp ? PP_SPP_LEN : 0;
			if ((size_t)n < skip + sizeof(st))
				continue;
			memcpy(&st, (const char *)buf + skip, sizeof(st));
			if (st.slice != slice)
				continue; /* late echo of an earlier slice */
			out--;
			s->count++;
			end = bs_now();
			if (nlat == cap) {
				double *nl =
					realloc(lat, 2 * cap * sizeof(*lat));

				if (nl == NULL)
					exit(1);
				lat = nl;
				cap *= 2;
			}
			lat[nlat++] = (double)(bs_now_ns() - st.sent_ns) / 1e3;
			if (sending && end >= deadline)
				sending = false;
			if (sending && send_one(t, slice, seq++))
				out++;
		}
	}
	s->secs = end - start;
	s->p50_us = bs_quantile(lat, nlat, 0.5);
	s->p99_us = bs_quantile(lat, nlat, 0.99);
	s->max_us = nlat ? lat[nlat - 1] : 0;
	free(lat);
}

int
main(int argc, char **argv)
{
	struct bs_run run = { .unit = "dgram", .aa = -1 };
	const char *ratios[BS_MAX_RATIOS], *csv = NULL;
	bool aa[BS_MAX_RATIOS], verbose = false;
	int nr = 0, rounds = 1, warm = 1, c, r, i, k;
	double slice_s = 0.5;
	uint32_t sliceno = 0;

	while ((c = getopt(argc, argv, "t:w:b:s:r:W:P:R:A:o:v")) != -1) {
		switch (c) {
		case 't':
			if (ntargets >= BS_MAX_SLOTS ||
			    !parse_target(optarg, &targets[ntargets]))
				usage();
			ntargets++;
			break;
		case 'w':
			window = atoi(optarg);
			break;
		case 'b':
			payload = (size_t)atol(optarg);
			break;
		case 's':
			slice_s = atof(optarg);
			break;
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'W':
			warm = atoi(optarg);
			break;
		case 'P':
			npool = atoi(optarg);
			break;
		case 'R':
		case 'A':
			if (nr >= BS_MAX_RATIOS)
				usage();
			aa[nr] = c == 'A';
			ratios[nr++] = optarg;
			break;
		case 'o':
			csv = optarg;
			break;
		case 'v':
			verbose = true;
			break;
		default:
			usage();
		}
	}
	if (ntargets == 0 || optind != argc || window < 1 || rounds < 1 ||
	    warm < 0 || slice_s <= 0 || npool < 1 || npool > 1 << 20 ||
	    payload < sizeof(struct ub_stamp) || payload > 1400)
		usage();
	run.nslots = ntargets;
	for (k = 0; k < ntargets; k++) {
		run.names[k] = targets[k].id.name;
		run.pids[k] = targets[k].id.pid;
		setup_target(&targets[k]);
	}
	for (i = 0; i < nr; i++)
		if (!bs_add_ratio(&run, ratios[i], aa[i])) {
			fprintf(stderr, "udpbench: bad ratio %s\n", ratios[i]);
			return 64;
		}
	for (r = -warm; r < rounds; r++) {
		for (i = 0; i < ntargets; i++) {
			struct bs_slice s;
			double c0 = 0, c1 = 0, t0 = 0, t1 = 0, cli0;

			memset(&s, 0, sizeof(s));
			k = bs_order(&run, r < 0 ? 0 : r, i);
			s.slot = k;
			s.round = r;
			s.srv_cpu = s.srv_ticks = -1;
			if (targets[k].id.pid > 0)
				bs_proc_cpu(targets[k].id.pid, &c0, &t0);
			cli0 = bs_self_cpu();
			run_slice(&targets[k], ++sliceno, slice_s, &s);
			s.cli_cpu = bs_self_cpu() - cli0;
			if (targets[k].id.pid > 0 &&
			    bs_proc_cpu(targets[k].id.pid, &c1, &t1)) {
				s.srv_cpu = c1 - c0;
				s.srv_ticks = t1 - t0;
			}
			if (verbose)
				fprintf(stderr,
					"round %d %-10s %8.0f/s p50 %7.1f us "
					"lost %llu\n",
					r, targets[k].id.name,
					s.secs > 0 ? s.count / s.secs : 0,
					s.p50_us, (unsigned long long)s.errors);
			if (r >= 0)
				bs_add(&run, &s);
		}
	}
	printf("udpbench: %d target(s), %d round(s) of %.2f s slices, "
	       "window %d, payload %zu bytes\n",
	       ntargets, rounds, slice_s, window, payload);
	bs_report(&run);
	if (csv != NULL)
		bs_dump(&run, csv);
	return 0;
}
