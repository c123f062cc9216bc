/*
 * parsebench - how long the core parser takes per header, and how fast
 * CRC32C runs.
 *
 * Each header is built once with the core encoder, then parsed in a
 * loop of a few million iterations, timed with CLOCK_MONOTONIC: with
 * pp_parse_buf() (the datagram path, no copy) and with the push parser
 * fed the whole header at once (the stream path: pp_parser_init() and
 * one pp_parser_push() per header, which copies the header into the
 * parser's buffer).  Every measurement is repeated and the best and the
 * median repetition are printed; the best is the figure to compare with
 * the targets, the median shows the noise.
 *
 * Usage: parsebench [-n ITERATIONS] [-k REPEATS]
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bstat.h"
#include "crc32c.h"
#include "pp_parse.h"

#define PB_FLAGS (PP_ACCEPT_V1 | PP_ACCEPT_V2)

struct pb_case {
	const char *name;
	uint8_t buf[1024];
	size_t len;
};

static volatile size_t pb_sink;

static void
pb_addrs4(struct pp_header *h)
{
	h->family = PP_FAM_INET;
	h->src.sin.sin_family = AF_INET;
	inet_pton(AF_INET, "203.0.113.195", &h->src.sin.sin_addr);
	h->src.sin.sin_port = htons(51234);
	h->srclen = sizeof(h->src.sin);
	h->dst.sin.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.10", &h->dst.sin.sin_addr);
	h->dst.sin.sin_port = htons(443);
	h->dstlen = sizeof(h->dst.sin);
}

static void
pb_addrs6(struct pp_header *h)
{
	h->family = PP_FAM_INET6;
	h->src.sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:85a3:8d3:1319:8a2e:370:7348",
		  &h->src.sin6.sin6_addr);
	h->src.sin6.sin6_port = htons(51234);
	h->srclen = sizeof(h->src.sin6);
	h->dst.sin6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "2001:db8:1f70::999:de8:7648:6e8",
		  &h->dst.sin6.sin6_addr);
	h->dst.sin6.sin6_port = htons(443);
	h->dstlen = sizeof(h->dst.sin6);
}

/* A TLV area as a TLS-terminating load balancer sends it. */
static size_t
pb_tlvs(uint8_t *t)
{
	static const char *authority = "www.example.com";
	static const char *cn = "client.example.com";
	static const char *ver = "TLSv1.3";
	size_t o = 0, n, ssl;

#define PB_TLV(type, val, len)                                                 \
	do {                                                                   \
		t[o] = (type);                                                 \
		t[o + 1] = (uint8_t)((len) >> 8);                              \
		t[o + 2] = (uint8_t)(len);                                     \
		memcpy(t + o + 3, (val), (len));                               \
		o += 3 + (len);                                                \
	} while (0)
	PB_TLV(PP_TLV_ALPN, "h2", 2);
	n = strlen(authority);
	PB_TLV(PP_TLV_AUTHORITY, authority, n);
	PB_TLV(PP_TLV_UNIQUE_ID, "0123456789abcdef0123456789abcdef", 32);
	/* SSL: client flags, verify, then sub-TLVs. */
	ssl = o;
	t[o] = PP_TLV_SSL;
	o += 3;
	t[o++] = 0x07;
	memset(t + o, 0, 4);
	o += 4;
	n = strlen(ver);
	PB_TLV(PP_SUBTLV_SSL_VERSION, ver, n);
	n = strlen(cn);
	PB_TLV(PP_SUBTLV_SSL_CN, cn, n);
	t[ssl + 1] = (uint8_t)((o - ssl - 3) >> 8);
	t[ssl + 2] = (uint8_t)(o - ssl - 3);
#undef PB_TLV
	return o;
}

static void
pb_build(struct pb_case *c, const char *name, int version, bool v6, bool tlvs,
	 bool crc)
{
	struct pp_header h;
	uint8_t area[512];

	memset(&h, 0, sizeof(h));
	c->name = name;
	h.version = (uint8_t)version;
	h.command = PP_CMD_PROXY;
	h.transport = PP_TP_STREAM;
	if (v6)
		pb_addrs6(&h);
	else
		pb_addrs4(&h);
	if (tlvs) {
		h.tlv = area;
		h.tlv_len = pb_tlvs(area);
	}
	if (version == 1)
		c->len = pp_encode_v1(&h, (char *)c->buf, sizeof(c->buf));
	else
		c->len = pp_encode_v2(&h, crc, c->buf, sizeof(c->buf));
	if (c->len == 0) {
		fprintf(stderr, "parsebench: cannot encode %s\n", name);
		exit(1);
	}
}

/* ns per call of one repetition of n iterations. */
static double
pb_time_buf(const struct pb_case *c, long n)
{
	struct pp_header h;
	enum pp_err err;
	int64_t t0, t1;
	size_t sum = 0;
	long i;

	t0 = bs_now_ns();
	for (i = 0; i < n; i++) {
		if (pp_parse_buf(c->buf, c->len, PB_FLAGS, &h, &err, NULL, 0) !=
		    PP_DONE) {
			fprintf(stderr, "parsebench: %s does not parse\n",
				c->name);
			exit(1);
		}
		sum += h.len;
	}
	t1 = bs_now_ns();
	pb_sink += sum;
	return (double)(t1 - t0) / (double)n;
}

static double
pb_time_push(const struct pb_case *c, long n)
{
	struct pp_parser p;
	uint8_t store[PP_V1_MAX + 1024];
	int64_t t0, t1;
	size_t used, sum = 0;
	long i;

	t0 = bs_now_ns();
	for (i = 0; i < n; i++) {
		pp_parser_init(&p, store, sizeof(store), PB_FLAGS);
		if (pp_parser_push(&p, c->buf, c->len, &used) != PP_DONE) {
			fprintf(stderr, "parsebench: %s does not push\n",
				c->name);
			exit(1);
		}
		sum += used;
	}
	t1 = bs_now_ns();
	pb_sink += sum;
	return (double)(t1 - t0) / (double)n;
}

static double
pb_time_crc(uint32_t (*fn)(uint32_t, const void *, size_t), const uint8_t *buf,
	    size_t len, long n)
{
	int64_t t0, t1;
	uint32_t c = 0;
	long i;

	t0 = bs_now_ns();
	for (i = 0; i < n; i++)
		c = fn(c, buf, len);
	t1 = bs_now_ns();
	pb_sink += c;
	/* GB/s */
	return (double)len * (double)n / (double)(t1 - t0);
}

/* Lowest, median and highest of k repetitions of expr. */
#define PB_REPEAT(k, lo, med, hi, expr)                                        \
	do {                                                                   \
		double pb_v[64];                                               \
		int pb_i;                                                      \
		for (pb_i = 0; pb_i < (k); pb_i++)                             \
			pb_v[pb_i] = (expr);                                   \
		med = bs_quantile(pb_v, (size_t)(k), 0.5);                     \
		lo = pb_v[0];                                                  \
		hi = pb_v[(k)-1];                                              \
	} while (0)

int
main(int argc, char **argv)
{
	struct pb_case cases[6];
	long n = 2000000;
	int k = 7, c, i, nc = 0;
	double b1, m1, b2, m2, x;
	static uint8_t big[65536];
	static const size_t sizes[] = { 64, 1024, 65536 };

	while ((c = getopt(argc, argv, "n:k:")) != -1) {
		switch (c) {
		case 'n':
			n = atol(optarg);
			break;
		case 'k':
			k = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: parsebench [-n N] [-k K]\n");
			return 64;
		}
	}
	if (n < 1 || k < 1 || k > 64)
		return 64;
	pb_build(&cases[nc++], "v1 TCP4", 1, false, false, false);
	pb_build(&cases[nc++], "v1 TCP6", 1, true, false, false);
	pb_build(&cases[nc++], "v2 IPv4", 2, false, false, false);
	pb_build(&cases[nc++], "v2 IPv6", 2, true, false, false);
	pb_build(&cases[nc++], "v2 IPv4 + CRC32C", 2, false, false, true);
	pb_build(&cases[nc++], "v2 IPv6 + TLVs + CRC32C", 2, true, true, true);

	printf("parser: ns per header, best (median) of %d runs of %ld\n", k,
	       n);
	printf("%-26s %6s %18s %18s\n", "header", "bytes", "pp_parse_buf",
	       "push (whole)");
	for (i = 0; i < nc; i++) {
		(void)pb_time_buf(&cases[i], n / 10); /* warm up */
		PB_REPEAT(k, b1, m1, x, pb_time_buf(&cases[i], n));
		PB_REPEAT(k, b2, m2, x, pb_time_push(&cases[i], n));
		printf("%-26s %6zu %9.1f (%6.1f) %9.1f (%6.1f)\n",
		       cases[i].name, cases[i].len, b1, m1, b2, m2);
		printf("PARSE case=\"%s\" bytes=%zu buf_ns=%.1f push_ns=%.1f\n",
		       cases[i].name, cases[i].len, b1, b2);
	}

	for (i = 0; i < (int)sizeof(big); i++)
		big[i] = (uint8_t)(i * 131 + 7);
	printf("\nCRC32C: GB/s, best (median) of %d runs\n", k);
	printf("%-10s %18s %18s\n", "bytes", "pp_crc32c", "pp_crc32c_sw");
	for (i = 0; i < (int)(sizeof(sizes) / sizeof(sizes[0])); i++) {
		long m = (long)(256LL * 1024 * 1024 / sizes[i]);

		PB_REPEAT(k, x, m1, b1,
			  pb_time_crc(pp_crc32c, big, sizes[i], m));
		PB_REPEAT(k, x, m2, b2,
			  pb_time_crc(pp_crc32c_sw, big, sizes[i], m / 4));
		printf("%-10zu %9.2f (%6.2f) %9.2f (%6.2f)\n", sizes[i], b1, m1,
		       b2, m2);
		printf("CRC bytes=%zu hw_gbps=%.2f sw_gbps=%.2f\n", sizes[i],
		       b1, b2);
	}
	(void)x;
	return pb_sink == 42 ? 1 : 0;
}
