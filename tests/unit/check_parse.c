/*
 * check_parse.c - unit tests of the PROXY header parser and CRC32C.
 *
 * The vectors in tests/unit/cases are each fed whole, one byte at a
 * time and torn at random points; the rest are generated: one-field
 * mutations of good headers, encoder round trips, CRC32C test vectors,
 * buffer growth.  Exit status: the number of failed tests.
 *
 * "check_parse --write-corpus DIR" writes each vector as a seed for the
 * parser fuzz target (tests/fuzz/fuzz_parse.c) instead of testing.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "pp_parse.h"
#include "suite.h"
#include "vectors.h"

#ifndef VECTOR_DIR
#define VECTOR_DIR "tests/unit/cases"
#endif

#define PP_ALL (PP_ACCEPT_V1 | PP_ACCEPT_V2 | PP_ACCEPT_DRAFT)

static struct pp_vec *vecs;
static size_t *valid_idx, *invalid_idx;
static size_t nvalid, ninvalid;

/* ===== helpers ===== */

/* xorshift64*: deterministic, seeded per test. */
static uint64_t rng;

static void
rng_seed(uint64_t s)
{
	rng = s * 0x9E3779B97F4A7C15ull + 0x1234567ull;
	if (rng == 0)
		rng = 1;
}

static uint64_t
rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545F4914F6CDD1Dull;
}

static size_t
rnd_below(size_t n)
{
	return n ? (size_t)(rnd() % n) : 0;
}

static uint8_t *
xmalloc(size_t n)
{
	uint8_t *p = malloc(n ? n : 1);

	ck_assert_ptr_nonnull(p);
	return p;
}

static bool
is_binary(const struct pp_vec *v)
{
	return v->data[0] == 0x0D;
}

/* Compare a parsed header with what the vector expects. */
/* Headers a (over bytes at base a0) and b (over b0) are the same. */
static void
same_header(const struct pp_vec *v, const struct pp_header *a,
	    const uint8_t *a0, const struct pp_header *b, const uint8_t *b0)
{
	ck_assert_msg(a->version == b->version && a->draft == b->draft &&
			      a->command == b->command &&
			      a->family == b->family &&
			      a->transport == b->transport &&
			      a->len == b->len && a->tlv_len == b->tlv_len &&
			      a->crc_checked == b->crc_checked,
		      "%s: header fields differ", v->name);
	ck_assert_msg((a->tlv == NULL) == (b->tlv == NULL) &&
			      (a->tlv == NULL || a->tlv - a0 == b->tlv - b0),
		      "%s: TLV areas differ", v->name);
	ck_assert_uint_eq(a->srclen, b->srclen);
	ck_assert_uint_eq(a->dstlen, b->dstlen);
	ck_assert_msg(memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
			      memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0,
		      "%s: address bytes differ", v->name);
}

static void
check_header(const struct pp_vec *v, const struct pp_header *h,
	     const uint8_t *base)
{
	char a[256];
	size_t i;

	ck_assert_msg(h->len == v->hdr_len, "%s: len %zu, want %zu", v->name,
		      h->len, v->hdr_len);
	if (v->version >= 0)
		ck_assert_int_eq(h->version, v->version);
	if (v->draft >= 0)
		ck_assert_int_eq(h->draft, v->draft);
	if (v->command >= 0)
		ck_assert_int_eq(h->command, v->command);
	if (v->family >= 0)
		ck_assert_int_eq(h->family, v->family);
	if (v->transport >= 0)
		ck_assert_int_eq(h->transport, v->transport);
	if (v->crc >= 0)
		ck_assert_int_eq(h->crc_checked, v->crc);
	if (v->tlv_len >= 0)
		ck_assert_uint_eq(h->tlv_len, (size_t)v->tlv_len);
	if (v->src[0] != '\0')
		ck_assert_str_eq(pp_vec_addr(&h->src, h->srclen, a, sizeof(a)),
				 v->src);
	if (v->dst[0] != '\0')
		ck_assert_str_eq(pp_vec_addr(&h->dst, h->dstlen, a, sizeof(a)),
				 v->dst);
	/* lengths agree with the families */
	switch (h->src.sa.sa_family) {
	case AF_INET:
		ck_assert_uint_eq(h->srclen, sizeof(struct sockaddr_in));
		ck_assert_uint_eq(h->dstlen, sizeof(struct sockaddr_in));
		ck_assert_int_eq(h->dst.sa.sa_family, AF_INET);
		break;
	case AF_INET6:
		ck_assert_uint_eq(h->srclen, sizeof(struct sockaddr_in6));
		ck_assert_uint_eq(h->dstlen, sizeof(struct sockaddr_in6));
		ck_assert_int_eq(h->dst.sa.sa_family, AF_INET6);
		break;
	case AF_UNIX:
		ck_assert_uint_eq(h->srclen,
				  offsetof(struct sockaddr_un, sun_path) +
					  strlen(h->src.sun.sun_path) + 1);
		ck_assert_uint_eq(h->dstlen,
				  offsetof(struct sockaddr_un, sun_path) +
					  strlen(h->dst.sun.sun_path) + 1);
		break;
	default:
		ck_assert_int_eq(h->src.sa.sa_family, AF_UNSPEC);
		ck_assert_int_eq(h->dst.sa.sa_family, AF_UNSPEC);
		ck_assert_uint_eq(h->srclen, 0);
		ck_assert_uint_eq(h->dstlen, 0);
		break;
	}
	if (h->tlv_len > 0) {
		ck_assert_ptr_nonnull(h->tlv);
		ck_assert(h->tlv >= base &&
			  h->tlv + h->tlv_len == base + h->len);
	}
	for (i = 0; i < v->ntlv; i++) {
		const struct pp_vec_tlv *t = &v->tlv[i];
		const uint8_t *val = NULL;
		size_t vlen = 0;
		bool found = t->ssl ? pp_tlv_ssl_find(h->tlv, h->tlv_len,
						      t->type, &val, &vlen)
				    : pp_tlv_find(h->tlv, h->tlv_len, t->type,
						  &val, &vlen);

		ck_assert_msg(found, "%s: TLV 0x%02x not found", v->name,
			      t->type);
		ck_assert_uint_eq(vlen, t->len);
		ck_assert(memcmp(val, t->val, vlen) == 0);
	}
}

/*
 * Feed d[0..len) in the chunks chosen by next_chunk(); the parser starts
 * with a buffer of cap bytes and grows to PP_V2_MAX when it learns the
 * total is larger (grow) .  Returns the status, *consumed the sum of used.
 */
static enum pp_status
feed_torn(struct pp_parser *p, uint8_t *big, const uint8_t *d, size_t len,
	  size_t hdr_len, bool grow, bool follow_want)
{
	enum pp_status st = PP_NEED_MORE;
	size_t off = 0, consumed = 0, maxchunk;

	switch (rnd_below(3)) {
	case 0:
		maxchunk = 4;
		break;
	case 1:
		maxchunk = 64;
		break;
	default:
		maxchunk = len;
		break;
	}
	while (off < len) {
		size_t n = 1 + rnd_below(maxchunk), used = 12345;
		size_t want = pp_parser_want(p);

		if (follow_want && want > 0 && st == PP_NEED_MORE)
			n = want < n ? want : n;
		if (n > len - off)
			n = len - off;
		if (grow && st == PP_NEED_MORE && pp_parser_total(p) > p->cap)
			ck_assert(pp_parser_setbuf(p, big, PP_V2_MAX));
		/* a caller with a small buffer offers what fits in it */
		if (grow && st == PP_NEED_MORE && n > p->cap - p->have)
			n = p->cap - p->have;
		st = pp_parser_push(p, d + off, n, &used);
		if (st == PP_INVALID)
			return st;
		if (st == PP_NEED_MORE) {
			ck_assert_uint_eq(used, n);
			if (follow_want && want > 0)
				ck_assert_uint_le(n, want);
		} else if (consumed < hdr_len) {
			ck_assert_uint_eq(used, hdr_len - consumed);
		} else {
			ck_assert_uint_eq(used, 0);
		}
		consumed += used;
		off += n;
	}
	if (st == PP_DONE)
		ck_assert_uint_eq(consumed, hdr_len);
	return st;
}

/* ===== vectors ===== */

START_TEST(vec_valid_whole)
{
	const struct pp_vec *v = &vecs[valid_idx[_i]];
	uint8_t *buf = xmalloc(PP_V2_MAX);
	struct pp_parser p;
	struct pp_header h;
	enum pp_status st;
	enum pp_err err;
	char reason[96];
	size_t used;

	pp_parser_init(&p, buf, PP_V2_MAX, v->flags);
	st = pp_parser_push(&p, v->data, v->len, &used);
	ck_assert_msg(st == PP_DONE, "%s: status %d (%s: %s)", v->name, st,
		      pp_vec_err_name(p.err), p.reason);
	ck_assert_uint_eq(used, v->hdr_len);
	ck_assert_uint_eq(pp_parser_total(&p), v->hdr_len);
	ck_assert_uint_eq(pp_parser_want(&p), 0);
	check_header(v, pp_parser_header(&p), buf);
	/* done is final */
	st = pp_parser_push(&p, v->data + used, v->len - used, &used);
	ck_assert_int_eq(st, PP_DONE);
	ck_assert_uint_eq(used, 0);

	/* one shot, no copy */
	memset(&h, 0xA5, sizeof(h));
	st = pp_parse_buf(v->data, v->len, v->flags, &h, &err, reason,
			  sizeof(reason));
	ck_assert_msg(st == PP_DONE, "%s: parse_buf %d (%s)", v->name, st,
		      reason);
	ck_assert_int_eq(err, PP_OK);
	check_header(v, &h, v->data);
	/* pp_parse_buf's shortcut for plain v2 headers and the state
	 * machine agree on every field and address byte */
	same_header(v, pp_parser_header(&p), buf, &h, v->data);
	/* and a datagram cut short is invalid, not "more" */
	st = pp_parse_buf(v->data, v->hdr_len - 1, v->flags, &h, &err, NULL, 0);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(err, PP_E_TRUNCATED);
	free(buf);
}
END_TEST

START_TEST(vec_valid_bytewise)
{
	const struct pp_vec *v = &vecs[valid_idx[_i]];
	uint8_t *buf = xmalloc(PP_V2_MAX);
	struct pp_parser p;
	size_t k, more = 0;

	pp_parser_init(&p, buf, PP_V2_MAX, v->flags);
	ck_assert_uint_eq(pp_parser_want(&p), 0);
	for (k = 0; k < v->len; k++) {
		size_t used = 99;
		enum pp_status st = pp_parser_push(&p, v->data + k, 1, &used);

		if (k + 1 < v->hdr_len) {
			ck_assert_msg(st == PP_NEED_MORE,
				      "%s: byte %zu: status %d (%s)", v->name,
				      k + 1, st, p.reason);
			ck_assert_uint_eq(used, 1);
			more++;
			if (!is_binary(v))
				ck_assert_uint_eq(pp_parser_want(&p), 0);
			else if (k + 1 < PP_V2_FIXED)
				ck_assert_uint_eq(pp_parser_want(&p),
						  PP_V2_FIXED - (k + 1));
			else
				ck_assert_uint_eq(pp_parser_want(&p),
						  v->hdr_len - (k + 1));
			if (is_binary(v) && k + 1 >= PP_V2_FIXED)
				ck_assert_uint_eq(pp_parser_total(&p),
						  v->hdr_len);
		} else {
			ck_assert_int_eq(st, PP_DONE);
			ck_assert_uint_eq(used, k + 1 == v->hdr_len ? 1 : 0);
		}
	}
	ck_assert_uint_eq(more, v->hdr_len - 1);
	check_header(v, pp_parser_header(&p), buf);
	free(buf);
}
END_TEST

START_TEST(vec_valid_torn)
{
	const struct pp_vec *v = &vecs[valid_idx[_i]];
	uint8_t *big = xmalloc(PP_V2_MAX), small[232];
	int iters = v->len > 10000 ? 40 : 300, it;

	rng_seed((uint64_t)_i + 1);
	for (it = 0; it < iters; it++) {
		struct pp_parser p;
		bool grow = it % 2 == 1;
		enum pp_status st;

		if (grow)
			pp_parser_init(&p, small, sizeof(small), v->flags);
		else
			pp_parser_init(&p, big, PP_V2_MAX, v->flags);
		st = feed_torn(&p, big, v->data, v->len, v->hdr_len, grow,
			       it % 3 == 0);
		ck_assert_msg(st == PP_DONE, "%s: iteration %d: %d (%s)",
			      v->name, it, st, p.reason);
		check_header(v, pp_parser_header(&p), p.buf);
	}
	free(big);
}
END_TEST

START_TEST(vec_invalid)
{
	const struct pp_vec *v = &vecs[invalid_idx[_i]];
	uint8_t *buf = xmalloc(PP_V2_MAX);
	struct pp_parser p;
	enum pp_status st = PP_NEED_MORE;
	enum pp_err err;
	char reason[96];
	size_t used, k;
	int it;

	/* whole */
	pp_parser_init(&p, buf, PP_V2_MAX, v->flags);
	st = pp_parser_push(&p, v->data, v->len, &used);
	ck_assert_msg(st == PP_INVALID && p.err == v->err,
		      "%s: status %d, %s (%s), want %s", v->name, st,
		      pp_vec_err_name(p.err), p.reason,
		      pp_vec_err_name(v->err));
	ck_assert(p.reason[0] != '\0');
	st = pp_parser_push(&p, v->data, v->len, &used);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_uint_eq(used, 0);

	/* one shot */
	st = pp_parse_buf(v->data, v->len, v->flags, NULL, &err, reason,
			  sizeof(reason));
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_msg(err == v->err, "%s: parse_buf %s (%s)", v->name,
		      pp_vec_err_name(err), reason);

	/* one byte at a time: fails at the stated byte */
	pp_parser_init(&p, buf, PP_V2_MAX, v->flags);
	for (k = 0; k < v->len; k++) {
		st = pp_parser_push(&p, v->data + k, 1, &used);
		if (st != PP_NEED_MORE)
			break;
	}
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_msg(p.err == v->err, "%s: bytewise %s (%s)", v->name,
		      pp_vec_err_name(p.err), p.reason);
	if (v->at > 0)
		ck_assert_msg(k + 1 == v->at,
			      "%s: failed at byte %zu (%s), "
			      "expected %zu",
			      v->name, k + 1, p.reason, v->at);

	/* torn */
	rng_seed((uint64_t)_i + 1000);
	for (it = 0; it < 100; it++) {
		pp_parser_init(&p, buf, PP_V2_MAX, v->flags);
		st = feed_torn(&p, buf, v->data, v->len, v->len, false,
			       it % 2 == 0);
		ck_assert_int_eq(st, PP_INVALID);
		ck_assert_int_eq(p.err, v->err);
	}
	free(buf);
}
END_TEST

START_TEST(vec_count)
{
	/* enough cases, of both kinds */
	ck_assert_uint_ge(nvalid + ninvalid, 80);
	ck_assert_uint_ge(nvalid, 30);
	ck_assert_uint_ge(ninvalid, 30);
}
END_TEST

/* ===== one-field mutations ===== */

/* Assert d[0..len) fails with err at byte `at` (1-based), fed any way. */
static void
expect_fail_at(const uint8_t *d, size_t len, unsigned flags, enum pp_err err,
	       size_t at)
{
	uint8_t buf[512];
	struct pp_parser p;
	enum pp_status st = PP_NEED_MORE;
	enum pp_err e;
	size_t used, k;

	pp_parser_init(&p, buf, sizeof(buf), flags);
	st = pp_parser_push(&p, d, len, &used);
	ck_assert_msg(st == PP_INVALID && p.err == err,
		      "whole: status %d %s (%s), want %s", st,
		      pp_vec_err_name(p.err), p.reason, pp_vec_err_name(err));
	st = pp_parse_buf(d, len, flags, NULL, &e, NULL, 0);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(e, err);
	pp_parser_init(&p, buf, sizeof(buf), flags);
	for (k = 0; k < len; k++) {
		st = pp_parser_push(&p, d + k, 1, &used);
		if (st != PP_NEED_MORE)
			break;
	}
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(p.err, err);
	ck_assert_msg(k + 1 == at, "failed at byte %zu (%s), want %zu", k + 1,
		      p.reason, at);
}

static size_t
good_v2(uint8_t *out, size_t cap)
{
	static const uint8_t authority[] = { 0x02, 0x00, 0x04, 'h',
					     'o',  's',  't' };
	struct pp_header h;

	memset(&h, 0, sizeof(h));
	h.command = PP_CMD_PROXY;
	h.family = PP_FAM_INET;
	h.transport = PP_TP_STREAM;
	h.src.sin.sin_family = AF_INET;
	h.src.sin.sin_addr.s_addr = htonl(0xC0000201);
	h.src.sin.sin_port = htons(56324);
	h.dst.sin.sin_family = AF_INET;
	h.dst.sin.sin_addr.s_addr = htonl(0xC6336402);
	h.dst.sin.sin_port = htons(443);
	h.tlv = authority;
	h.tlv_len = sizeof(authority);
	return pp_encode_v2(&h, false, out, cap);
}

START_TEST(mut_version)
{
	uint8_t g[64], m[64];
	size_t n = good_v2(g, sizeof(g));
	unsigned v;

	ck_assert_uint_eq(n, 16 + 12 + 7);
	for (v = 0; v < 16; v++) {
		if (v == 2)
			continue;
		memcpy(m, g, n);
		m[12] = (uint8_t)(v << 4 | 1);
		expect_fail_at(m, n, PP_ALL, PP_E_VERSION, 13);
	}
	/* the draft's 0x02 without the flag */
	memcpy(m, g, n);
	m[12] = 0x02;
	expect_fail_at(m, n, PP_ACCEPT_V1 | PP_ACCEPT_V2, PP_E_VERSION, 13);
	/* the final layout on a draft-only parser */
	expect_fail_at(g, n, PP_ACCEPT_DRAFT, PP_E_VERSION, 13);
	/* a binary header on a v1-only parser, v1 on v2-only */
	expect_fail_at(g, n, PP_ACCEPT_V1, PP_E_VERSION, 1);
	expect_fail_at((const uint8_t *)"PROXY UNKNOWN\r\n", 15, PP_ACCEPT_V2,
		       PP_E_VERSION, 1);
	expect_fail_at(g, n, 0, PP_E_VERSION, 1);
}
END_TEST

START_TEST(mut_command)
{
	uint8_t g[64], m[64];
	size_t n = good_v2(g, sizeof(g));
	unsigned c;

	for (c = 2; c < 16; c++) {
		memcpy(m, g, n);
		m[12] = (uint8_t)(0x20 | c);
		expect_fail_at(m, n, PP_ALL, PP_E_V2_COMMAND, 13);
		/* draft command byte */
		memcpy(m, g, n);
		m[12] = 0x02;
		m[13] = (uint8_t)c;
		expect_fail_at(m, n, PP_ALL, PP_E_V2_COMMAND, 14);
	}
}
END_TEST

START_TEST(mut_family)
{
	uint8_t g[64], m[64];
	size_t n = good_v2(g, sizeof(g));
	unsigned f, cmd;

	for (cmd = 0; cmd < 2; cmd++) {
		for (f = 4; f < 16; f++) {
			memcpy(m, g, n);
			m[12] = (uint8_t)(0x20 | cmd);
			m[13] = (uint8_t)(f << 4 | 1);
			expect_fail_at(m, n, PP_ALL, PP_E_V2_FAMILY, 14);
		}
		for (f = 3; f < 16; f++) {
			memcpy(m, g, n);
			m[12] = (uint8_t)(0x20 | cmd);
			m[13] = (uint8_t)(0x10 | f);
			expect_fail_at(m, n, PP_ALL, PP_E_V2_FAMILY, 14);
		}
	}
}
END_TEST

START_TEST(mut_length)
{
	static const unsigned short_lens[] = { 0, 4, 11 };
	uint8_t g[64], m[64], small[232];
	uint8_t *big = xmalloc(PP_V2_MAX);
	size_t n = good_v2(g, sizeof(g)), i, used;
	struct pp_parser p;
	struct pp_header h;
	enum pp_status st;
	enum pp_err err;

	for (i = 0; i < sizeof(short_lens) / sizeof(short_lens[0]); i++) {
		memcpy(m, g, n);
		m[14] = 0;
		m[15] = (uint8_t)short_lens[i];
		expect_fail_at(m, n, PP_ALL, PP_E_V2_LENGTH, 16);
	}
	/* 13, 14: a tail too short for a TLV header, known at byte 16 */
	for (i = 13; i <= 14; i++) {
		memcpy(m, g, n);
		m[15] = (uint8_t)i;
		expect_fail_at(m, n, PP_ALL, PP_E_V2_TLV, 16);
	}
	/* 12: the TLV becomes payload */
	memcpy(m, g, n);
	m[15] = 12;
	st = pp_parse_buf(m, n, PP_ALL, &h, &err, NULL, 0);
	ck_assert_int_eq(st, PP_DONE);
	ck_assert_uint_eq(h.len, 28);
	ck_assert_uint_eq(h.tlv_len, 0);
	/* 16: the TLV runs past the end (its header says 4, 1 remains) */
	memcpy(m, g, n);
	m[15] = 16;
	expect_fail_at(m, n, PP_ALL, PP_E_V2_TLV, 31);

	/* 65535: valid so far, the parser waits for the rest */
	memcpy(m, g, n);
	m[14] = m[15] = 0xFF;
	pp_parser_init(&p, big, PP_V2_MAX, PP_ALL);
	st = pp_parser_push(&p, m, n, &used);
	ck_assert_int_eq(st, PP_NEED_MORE);
	ck_assert_uint_eq(used, n);
	ck_assert_uint_eq(pp_parser_total(&p), PP_V2_MAX);
	ck_assert_uint_eq(pp_parser_want(&p), PP_V2_MAX - n);
	st = pp_parse_buf(m, n, PP_ALL, &h, &err, NULL, 0);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(err, PP_E_TRUNCATED);
	/* and in a small buffer it is too long once a push needs more room */
	memset(big, 0x04, PP_V2_MAX);
	pp_parser_init(&p, small, sizeof(small), PP_ALL);
	st = pp_parser_push(&p, m, n, &used);
	ck_assert_int_eq(st, PP_NEED_MORE);
	st = pp_parser_push(&p, big, sizeof(small) - n, &used);
	ck_assert_int_eq(st, PP_NEED_MORE);
	st = pp_parser_push(&p, big, 1, &used);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(p.err, PP_E_TOO_LONG);
	free(big);
}
END_TEST

START_TEST(mut_signature)
{
	static const uint8_t flips[] = { 0xFF, 0x01, 0x80, 0x20 };
	uint8_t g[64], m[64];
	size_t n = good_v2(g, sizeof(g)), i, f;

	for (i = 0; i < 12; i++) {
		for (f = 0; f < sizeof(flips); f++) {
			memcpy(m, g, n);
			m[i] ^= flips[f];
			if (i == 0 && m[0] == 'P')
				continue;
			expect_fail_at(m, n, PP_ALL, PP_E_SIGNATURE, i + 1);
		}
	}
}
END_TEST

/*
 * v1: replace the byte at each position by each of a set of bytes.  The
 * one-shot parse (which takes the fast path for whole lines) and the
 * byte-by-byte parse (the incremental path) must agree.
 */
START_TEST(mut_v1_bytes)
{
	static const char *const goods[] = {
		"PROXY TCP6 2001:db8::1 ::ffff:192.0.2.1 56324 443\r\n",
		"PROXY TCP4 192.0.2.10 198.51.100.255 0 65535\r\n",
		"PROXY UNKNOWN 1.2.3.4\r\n",
	};
	static const uint8_t subs[] = { ' ', '\r', '\n', '\t', 0,   0xFF,
					'x', '0',  '9',  '5',  ':', '.',
					'P', 'f',  'F',  'U' };
	uint8_t m[PP_V1_MAX + 8], buf[PP_V1_MAX];
	size_t g, i, s, k, used;
	unsigned done = 0, bad = 0;

	for (g = 0; g < sizeof(goods) / sizeof(goods[0]); g++) {
		size_t n = strlen(goods[g]);

		for (i = 0; i < n; i++) {
			for (s = 0; s < sizeof(subs); s++) {
				struct pp_parser p;
				enum pp_status st, st1 = PP_NEED_MORE;
				enum pp_err e;
				struct pp_header h;

				memcpy(m, goods[g], n);
				memcpy(m + n, "payload", 7);
				if (m[i] == subs[s])
					continue;
				m[i] = subs[s];
				st = pp_parse_buf(m, n + 7, PP_ALL, &h, &e,
						  NULL, 0);
				pp_parser_init(&p, buf, sizeof(buf), PP_ALL);
				for (k = 0; k < n + 7; k++) {
					st1 = pp_parser_push(&p, m + k, 1,
							     &used);
					if (st1 != PP_NEED_MORE)
						break;
				}
				ck_assert_int_eq(st, st1);
				ck_assert_int_eq(e, p.err);
				if (i < 6)
					ck_assert_int_eq(e, PP_E_SIGNATURE);
				if (st == PP_DONE) {
					done++;
					ck_assert_uint_le(h.len, n);
					ck_assert_uint_eq(h.len, p.hdr.len);
					ck_assert_mem_eq(&h.src, &p.hdr.src,
							 sizeof(h.src));
					ck_assert_mem_eq(&h.dst, &p.hdr.dst,
							 sizeof(h.dst));
				} else {
					bad++;
					ck_assert_int_eq(st, PP_INVALID);
					/* the bytes before it are fine */
					ck_assert_uint_ge(k, i);
				}
			}
		}
	}
	ck_assert_uint_gt(done, 0); /* some digits are still valid */
	ck_assert_uint_gt(bad, done);
}
END_TEST

/* ===== CRC32C ===== */

START_TEST(crc_vectors)
{
	uint8_t b[32];
	size_t i;

	memset(b, 0, sizeof(b));
	ck_assert_uint_eq(pp_crc32c(0, b, 32), 0x8A9136AA);
	ck_assert_uint_eq(pp_crc32c_sw(0, b, 32), 0x8A9136AA);
	memset(b, 0xFF, sizeof(b));
	ck_assert_uint_eq(pp_crc32c(0, b, 32), 0x62A8AB43);
	ck_assert_uint_eq(pp_crc32c_sw(0, b, 32), 0x62A8AB43);
	for (i = 0; i < 32; i++)
		b[i] = (uint8_t)i;
	ck_assert_uint_eq(pp_crc32c(0, b, 32), 0x46DD794E);
	ck_assert_uint_eq(pp_crc32c_sw(0, b, 32), 0x46DD794E);
	for (i = 0; i < 32; i++)
		b[i] = (uint8_t)(31 - i);
	ck_assert_uint_eq(pp_crc32c(0, b, 32), 0x113FDB5C);
	ck_assert_uint_eq(pp_crc32c_sw(0, b, 32), 0x113FDB5C);
	ck_assert_uint_eq(pp_crc32c(0, "123456789", 9), 0xE3069283);
	ck_assert_uint_eq(pp_crc32c_sw(0, "123456789", 9), 0xE3069283);
	ck_assert_uint_eq(pp_crc32c(0, b, 0), 0);
	ck_assert_uint_eq(pp_crc32c(0x12345678, NULL, 0), 0x12345678);
}
END_TEST

START_TEST(crc_hw_sw_agree)
{
	uint8_t *b = xmalloc(4096 + 16);
	int it;

	rng_seed(42);
	for (it = 0; it < 3000; it++) {
		size_t off = rnd_below(16),
		       len = rnd_below(it < 2000 ? 80 : 4096);
		uint32_t seed = (uint32_t)rnd();
		size_t i;

		for (i = 0; i < len; i++)
			b[off + i] = (uint8_t)rnd();
		ck_assert_uint_eq(pp_crc32c(seed, b + off, len),
				  pp_crc32c_sw(seed, b + off, len));
	}
	free(b);
}
END_TEST

START_TEST(crc_incremental)
{
	uint8_t b[300];
	size_t i, cut;

	rng_seed(7);
	for (i = 0; i < sizeof(b); i++)
		b[i] = (uint8_t)rnd();
	for (cut = 0; cut <= sizeof(b); cut++) {
		uint32_t whole = pp_crc32c(0, b, sizeof(b));
		uint32_t c = pp_crc32c(0, b, cut);

		ck_assert_uint_eq(pp_crc32c(c, b + cut, sizeof(b) - cut),
				  whole);
		c = pp_crc32c_sw(0, b, cut);
		ck_assert_uint_eq(pp_crc32c_sw(c, b + cut, sizeof(b) - cut),
				  whole);
	}
}
END_TEST

/* ===== encoder round trips ===== */

static void
rnd_inet6(struct in6_addr *a)
{
	size_t i;

	for (i = 0; i < 8; i++) {
		uint16_t g = rnd_below(2) ? 0 : (uint16_t)rnd();

		a->s6_addr[2 * i] = (uint8_t)(g >> 8);
		a->s6_addr[2 * i + 1] = (uint8_t)g;
	}
	if (rnd_below(4) == 0) { /* ::ffff:a.b.c.d */
		memset(a->s6_addr, 0, 10);
		a->s6_addr[10] = a->s6_addr[11] = 0xFF;
	}
}

static void
rnd_header(struct pp_header *h, int version)
{
	size_t l;

	memset(h, 0, sizeof(*h));
	h->version = (uint8_t)version;
	h->command = version == 1 ? PP_CMD_PROXY
				  : (enum pp_command)(rnd_below(4) != 0);
	h->family = (enum pp_family)rnd_below(version == 1 ? 3 : 4);
	h->transport = h->family == PP_FAM_UNSPEC && version == 1 ? PP_TP_UNSPEC
		       : version == 1                             ? PP_TP_STREAM
				      : (enum pp_transport)rnd_below(3);
	switch (h->family) {
	case PP_FAM_INET:
		h->src.sin.sin_family = h->dst.sin.sin_family = AF_INET;
		h->src.sin.sin_addr.s_addr = (uint32_t)rnd();
		h->dst.sin.sin_addr.s_addr = (uint32_t)rnd();
		h->src.sin.sin_port = (uint16_t)rnd();
		h->dst.sin.sin_port = (uint16_t)rnd();
		h->srclen = h->dstlen = sizeof(struct sockaddr_in);
		break;
	case PP_FAM_INET6:
		h->src.sin6.sin6_family = h->dst.sin6.sin6_family = AF_INET6;
		rnd_inet6(&h->src.sin6.sin6_addr);
		rnd_inet6(&h->dst.sin6.sin6_addr);
		h->src.sin6.sin6_port = (uint16_t)rnd();
		h->dst.sin6.sin6_port = (uint16_t)rnd();
		h->srclen = h->dstlen = sizeof(struct sockaddr_in6);
		break;
	case PP_FAM_UNIX:
		h->src.sun.sun_family = h->dst.sun.sun_family = AF_UNIX;
		l = rnd_below(108);
		memset(h->src.sun.sun_path, 'a' + (int)rnd_below(26), l);
		h->srclen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					l + 1);
		l = rnd_below(108);
		memset(h->dst.sun.sun_path, '/', l);
		h->dstlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
					l + 1);
		break;
	default:
		break;
	}
}

/* Random well-formed TLVs (no CRC32C) into t; returns their length. */
static size_t
rnd_tlvs(uint8_t *t, size_t cap)
{
	static const uint8_t types[] = { 0x01, 0x02, 0x04, 0x05, 0x20, 0x30,
					 0xE0, 0xEA, 0xEE, 0xF0, 0x00, 0x99 };
	size_t n = 0, k = rnd_below(5), i;

	while (k-- > 0) {
		uint8_t type = types[rnd_below(sizeof(types))];
		size_t vl = rnd_below(type == 0x05 ? 129 : 200);

		if (type == 0x20) {
			size_t q = 5;

			vl = 5;
			if (n + 3 + 5 + 40 > cap)
				break;
			memset(t + n + 3, 0, 5);
			while (rnd_below(2) && vl + 3 + 8 <= 45) {
				size_t sl = rnd_below(8);

				t[n + 3 + q] = (uint8_t)(0x21 + rnd_below(5));
				t[n + 3 + q + 1] = 0;
				t[n + 3 + q + 2] = (uint8_t)sl;
				for (i = 0; i < sl; i++)
					t[n + 3 + q + 3 + i] = (uint8_t)rnd();
				q += 3 + sl;
				vl = q;
			}
		} else {
			if (n + 3 + vl > cap)
				break;
			for (i = 0; i < vl; i++)
				t[n + 3 + i] = (uint8_t)rnd();
		}
		t[n] = type;
		t[n + 1] = (uint8_t)(vl >> 8);
		t[n + 2] = (uint8_t)vl;
		n += 3 + vl;
	}
	return n;
}

static void
same_addr(const union pp_sockaddr *a, socklen_t al, const union pp_sockaddr *b,
	  socklen_t bl)
{
	char x[256], y[256];

	ck_assert_uint_eq(al, bl);
	ck_assert_str_eq(pp_vec_addr(a, al, x, sizeof(x)),
			 pp_vec_addr(b, bl, y, sizeof(y)));
}

START_TEST(roundtrip_v2)
{
	uint8_t *out = xmalloc(PP_V2_MAX), *buf = xmalloc(PP_V2_MAX);
	uint8_t tlv[2048];
	int it;

	rng_seed(2);
	for (it = 0; it < 3000; it++) {
		struct pp_header h, g;
		struct pp_parser p;
		bool crc = rnd_below(2), draft = rnd_below(8) == 0;
		bool skip;
		size_t n, used;
		enum pp_status st;
		enum pp_err err;

		rnd_header(&h, 2);
		h.draft = draft;
		if (!draft) {
			h.tlv_len = rnd_tlvs(tlv, sizeof(tlv));
			h.tlv = tlv;
		} else {
			crc = false;
		}
		n = pp_encode_v2(&h, crc, out, PP_V2_MAX);
		ck_assert_uint_gt(n, 0);
		ck_assert_uint_eq(pp_encode_v2(&h, crc, out, n - 1), 0);
		st = pp_parse_buf(out, n, PP_ALL, &g, &err, NULL, 0);
		ck_assert_msg(st == PP_DONE, "iteration %d: %s", it,
			      pp_vec_err_name(err));
		pp_parser_init(&p, buf, PP_V2_MAX, PP_ALL);
		ck_assert_int_eq(pp_parser_push(&p, out, n, &used), PP_DONE);
		ck_assert_uint_eq(used, n);
		ck_assert_uint_eq(g.len, n);
		ck_assert_int_eq(g.version, 2);
		ck_assert_int_eq(g.draft, draft);
		ck_assert_int_eq(g.command, h.command);
		ck_assert_int_eq(g.family, h.family);
		ck_assert_int_eq(g.transport, h.transport);
		skip = h.command == PP_CMD_LOCAL || h.family == PP_FAM_UNSPEC;
		if (skip) {
			ck_assert_int_eq(g.src.sa.sa_family, AF_UNSPEC);
			ck_assert_uint_eq(g.tlv_len, 0);
			ck_assert(!g.crc_checked);
			continue;
		}
		same_addr(&g.src, g.srclen, &h.src, h.srclen);
		same_addr(&g.dst, g.dstlen, &h.dst, h.dstlen);
		ck_assert_int_eq(g.crc_checked, crc);
		ck_assert_uint_eq(g.tlv_len, h.tlv_len + (crc ? 7 : 0));
		ck_assert(h.tlv_len == 0 ||
			  memcmp(g.tlv, h.tlv, h.tlv_len) == 0);
		same_addr(&p.hdr.src, p.hdr.srclen, &h.src, h.srclen);
		ck_assert_uint_eq(p.hdr.tlv_len, g.tlv_len);
	}
	free(out);
	free(buf);
}
END_TEST

START_TEST(roundtrip_v1)
{
	char out[PP_V1_MAX + 1];
	int it;

	rng_seed(1);
	for (it = 0; it < 5000; it++) {
		struct pp_header h, g;
		enum pp_status st;
		enum pp_err err;
		char reason[96];
		size_t n;

		rnd_header(&h, 1);
		n = pp_encode_v1(&h, out, sizeof(out));
		ck_assert_uint_gt(n, 0);
		ck_assert_uint_le(n, PP_V1_MAX);
		ck_assert_uint_eq(pp_encode_v1(&h, out, n - 1), 0);
		ck_assert_uint_eq(pp_encode_v1(&h, out, n), n);
		st = pp_parse_buf(out, n, PP_ALL, &g, &err, reason,
				  sizeof(reason));
		ck_assert_msg(st == PP_DONE, "%.*s: %s", (int)n, out, reason);
		ck_assert_uint_eq(g.len, n);
		ck_assert_int_eq(g.version, 1);
		ck_assert_int_eq(g.family, h.family);
		ck_assert_int_eq(g.transport, h.transport);
		ck_assert_int_eq(g.command, PP_CMD_PROXY);
		if (h.family != PP_FAM_UNSPEC) {
			same_addr(&g.src, g.srclen, &h.src, h.srclen);
			same_addr(&g.dst, g.dstlen, &h.dst, h.dstlen);
		} else {
			ck_assert_int_eq(g.src.sa.sa_family, AF_UNSPEC);
		}
	}
	/* UNIX has no v1 form */
	{
		struct pp_header h;

		memset(&h, 0, sizeof(h));
		h.command = PP_CMD_PROXY;
		h.family = PP_FAM_UNIX;
		h.src.sun.sun_family = h.dst.sun.sun_family = AF_UNIX;
		ck_assert_uint_eq(pp_encode_v1(&h, out, sizeof(out)), 0);
	}
}
END_TEST

/* ===== buffers ===== */

static size_t
longest_v2(uint8_t *out)
{
	static uint8_t tlv[65516];
	struct pp_header h;

	memset(&h, 0, sizeof(h));
	h.command = PP_CMD_PROXY;
	h.family = PP_FAM_INET;
	h.transport = PP_TP_STREAM;
	h.src.sin.sin_family = h.dst.sin.sin_family = AF_INET;
	h.src.sin.sin_addr.s_addr = htonl(0x0A000001);
	h.dst.sin.sin_addr.s_addr = htonl(0x0A000002);
	/* one TLV of 65513 value bytes, then the CRC TLV: 12+65516+7 */
	tlv[0] = 0xEA;
	tlv[1] = (uint8_t)(65513 >> 8);
	tlv[2] = (uint8_t)(65513 & 0xFF);
	memset(tlv + 3, 0x42, 65513);
	h.tlv = tlv;
	h.tlv_len = sizeof(tlv);
	return pp_encode_v2(&h, true, out, PP_V2_MAX);
}

START_TEST(setbuf_grow)
{
	uint8_t *hdr = xmalloc(PP_V2_MAX + 10), *big = xmalloc(PP_V2_MAX);
	uint8_t small[232];
	size_t n = longest_v2(hdr), used;
	struct pp_parser p;
	enum pp_status st;
	int it;

	ck_assert_uint_eq(n, PP_V2_MAX);
	memcpy(hdr + n, "0123456789", 10);

	/* whole: 16 bytes, learn the total, grow, the rest */
	pp_parser_init(&p, small, sizeof(small), PP_ACCEPT_V2);
	st = pp_parser_push(&p, hdr, 16, &used);
	ck_assert_int_eq(st, PP_NEED_MORE);
	ck_assert_uint_eq(pp_parser_total(&p), PP_V2_MAX);
	ck_assert_uint_eq(pp_parser_want(&p), PP_V2_MAX - 16);
	ck_assert(!pp_parser_setbuf(&p, big, 15)); /* smaller than held */
	ck_assert_ptr_eq(p.buf, small);
	ck_assert(pp_parser_setbuf(&p, big, PP_V2_MAX));
	st = pp_parser_push(&p, hdr + 16, n + 10 - 16, &used);
	ck_assert_int_eq(st, PP_DONE);
	ck_assert_uint_eq(used, n - 16);
	ck_assert(pp_parser_header(&p)->crc_checked);
	ck_assert(pp_parser_header(&p)->tlv >= big &&
		  pp_parser_header(&p)->tlv < big + PP_V2_MAX);

	/* without growing: too long exactly when byte 233 must be stored */
	pp_parser_init(&p, small, sizeof(small), PP_ACCEPT_V2);
	st = pp_parser_push(&p, hdr, sizeof(small), &used);
	ck_assert_int_eq(st, PP_NEED_MORE);
	st = pp_parser_push(&p, hdr + sizeof(small), 1, &used);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(p.err, PP_E_TOO_LONG);
	pp_parser_init(&p, small, sizeof(small), PP_ACCEPT_V2);
	st = pp_parser_push(&p, hdr, n, &used);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(p.err, PP_E_TOO_LONG);

	/* torn, growing when the total is known */
	rng_seed(99);
	for (it = 0; it < 30; it++) {
		pp_parser_init(&p, small, sizeof(small), PP_ACCEPT_V2);
		st = feed_torn(&p, big, hdr, n + 10, n, true, it % 2 == 0);
		ck_assert_int_eq(st, PP_DONE);
		ck_assert(pp_parser_header(&p)->crc_checked);
	}

	/* a corrupted last byte fails the CRC */
	hdr[n - 20] ^= 1;
	pp_parser_init(&p, big, PP_V2_MAX, PP_ACCEPT_V2);
	st = pp_parser_push(&p, hdr, n, &used);
	ck_assert_int_eq(st, PP_INVALID);
	ck_assert_int_eq(p.err, PP_E_V2_CRC);
	free(hdr);
	free(big);
}
END_TEST

START_TEST(setbuf_after_done)
{
	static const char line[] = "PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n";
	uint8_t a[PP_V1_MAX], b[PP_V1_MAX], v2[64];
	struct pp_parser p;
	size_t used, n = good_v2(v2, sizeof(v2));

	pp_parser_init(&p, a, sizeof(a), PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, v2, n, &used), PP_DONE);
	ck_assert_ptr_eq(pp_parser_header(&p)->tlv, a + 28);
	ck_assert(pp_parser_setbuf(&p, b, sizeof(b)));
	ck_assert_ptr_eq(pp_parser_header(&p)->tlv, b + 28);
	ck_assert(memcmp(b, v2, n) == 0);

	/* a v1 line longer than a small buffer */
	pp_parser_init(&p, a, 20, PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, line, sizeof(line) - 1, &used),
			 PP_INVALID);
	ck_assert_int_eq(p.err, PP_E_TOO_LONG);
	/* and one that fits exactly */
	pp_parser_init(&p, a, sizeof(line) - 1, PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, line, sizeof(line) - 1, &used),
			 PP_DONE);
}
END_TEST

/*
 * A whole v2 INET or INET6 header without TLVs in the first push takes
 * a short path past the state machine: the same header as pushed byte
 * by byte, the same bytes kept, and the same failures where the short
 * path does not apply (a buffer too small, v2 not accepted).
 */
static void
brief_one(const uint8_t *h, size_t n, size_t hlen)
{
	uint8_t a[PP_V1_MAX], b[PP_V1_MAX];
	struct pp_parser p, q;
	size_t used, i, u;

	pp_parser_init(&p, a, sizeof(a), PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, h, n, &used), PP_DONE);
	ck_assert_uint_eq(used, hlen);
	ck_assert_uint_eq(pp_parser_want(&p), 0);
	ck_assert_uint_eq(pp_parser_total(&p), hlen);
	ck_assert(memcmp(a, h, hlen) == 0);
	ck_assert_ptr_null(pp_parser_header(&p)->tlv);

	pp_parser_init(&q, b, sizeof(b), PP_ALL);
	for (i = 0; i < hlen - 1; i++)
		ck_assert_int_eq(pp_parser_push(&q, h + i, 1, &u),
				 PP_NEED_MORE);
	ck_assert_int_eq(pp_parser_push(&q, h + i, n - i, &u), PP_DONE);
	ck_assert_uint_eq(u, 1);
	ck_assert_mem_eq(&p.hdr, &q.hdr, offsetof(struct pp_header, tlv));
	ck_assert_uint_eq(p.hdr.tlv_len, 0);
	ck_assert_int_eq(p.hdr.crc_checked, false);

	/* one byte short: the state machine waits for it */
	pp_parser_init(&p, a, sizeof(a), PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, h, hlen - 1, &used), PP_NEED_MORE);
	ck_assert_int_eq(pp_parser_push(&p, h + hlen - 1, 1, &used), PP_DONE);
	ck_assert_mem_eq(&p.hdr, &q.hdr, offsetof(struct pp_header, tlv));

	/* a buffer one byte too small */
	pp_parser_init(&p, a, hlen - 1, PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, h, n, &used), PP_INVALID);
	ck_assert_int_eq(p.err, PP_E_TOO_LONG);

	/* v2 not accepted */
	pp_parser_init(&p, a, sizeof(a), PP_ACCEPT_V1 | PP_ACCEPT_DRAFT);
	ck_assert_int_eq(pp_parser_push(&p, h, n, &used), PP_INVALID);
	ck_assert_int_eq(p.err, PP_E_VERSION);
}

START_TEST(brief_push)
{
	struct pp_header e;
	uint8_t h[80];
	size_t n;

	/* INET, STREAM: 192.0.2.1:1 -> 198.51.100.2:2, then a request */
	memset(&e, 0, sizeof(e));
	e.command = PP_CMD_PROXY;
	e.family = PP_FAM_INET;
	e.transport = PP_TP_STREAM;
	e.src.sin.sin_family = e.dst.sin.sin_family = AF_INET;
	e.src.sin.sin_addr.s_addr = htonl(0xC0000201);
	e.src.sin.sin_port = htons(1);
	e.dst.sin.sin_addr.s_addr = htonl(0xC6336402);
	e.dst.sin.sin_port = htons(2);
	n = pp_encode_v2(&e, false, h, sizeof(h));
	ck_assert_uint_eq(n, 28);
	memcpy(h + n, "GET / HTTP/1.0\r\n", 16);
	brief_one(h, n + 16, n);

	/* INET6, DGRAM: 2001:db8::1:443 -> 2001:db8::2:53, then bytes */
	memset(&e, 0, sizeof(e));
	e.command = PP_CMD_PROXY;
	e.family = PP_FAM_INET6;
	e.transport = PP_TP_DGRAM;
	e.src.sin6.sin6_family = e.dst.sin6.sin6_family = AF_INET6;
	ck_assert_int_eq(
		inet_pton(AF_INET6, "2001:db8::1", &e.src.sin6.sin6_addr), 1);
	ck_assert_int_eq(
		inet_pton(AF_INET6, "2001:db8::2", &e.dst.sin6.sin6_addr), 1);
	e.src.sin6.sin6_port = htons(443);
	e.dst.sin6.sin6_port = htons(53);
	n = pp_encode_v2(&e, false, h, sizeof(h));
	ck_assert_uint_eq(n, 52);
	memset(h + n, 'x', 20);
	brief_one(h, n + 20, n);
}
END_TEST

/* ===== odds and ends ===== */

START_TEST(misc_api)
{
	uint8_t buf[PP_V1_MAX], tlv[16];
	const uint8_t *val;
	struct pp_parser p;
	char reason[5];
	enum pp_err err;
	size_t used, vlen;
	int e;

	pp_parser_init(&p, buf, sizeof(buf), PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, "", 0, &used), PP_NEED_MORE);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(pp_parser_want(&p), 0);
	ck_assert_uint_eq(pp_parser_total(&p), 0);
	ck_assert_int_eq(pp_parser_push(&p, "\r", 1, &used), PP_NEED_MORE);
	ck_assert_uint_eq(pp_parser_want(&p), 15);
	pp_parser_init(&p, buf, sizeof(buf), PP_ALL);
	ck_assert_int_eq(pp_parser_push(&p, "PROXY", 5, &used), PP_NEED_MORE);
	ck_assert_uint_eq(pp_parser_want(&p), 0);

	for (e = PP_OK; e <= PP_E_V2_ADDR; e++) {
		ck_assert_ptr_nonnull(pp_strerror((enum pp_err)e));
		ck_assert_str_ne(pp_strerror((enum pp_err)e), "unknown error");
	}

	/* reason is truncated to fit */
	ck_assert_int_eq(pp_parse_buf("XYZ", 3, PP_ALL, NULL, &err, reason,
				      sizeof(reason)),
			 PP_INVALID);
	ck_assert_int_eq(err, PP_E_SIGNATURE);
	ck_assert_uint_eq(strlen(reason), 4);
	ck_assert_int_eq(pp_parse_buf("", 0, PP_ALL, NULL, &err, NULL, 0),
			 PP_INVALID);
	ck_assert_int_eq(err, PP_E_TRUNCATED);

	/* TLV lookups stay inside a malformed area */
	memcpy(tlv, "\x02\x00\x02hi\x20\x00\x09\x00", 9);
	ck_assert(pp_tlv_find(tlv, 5, 0x02, &val, &vlen));
	ck_assert_uint_eq(vlen, 2);
	ck_assert(!pp_tlv_find(tlv, 9, 0x20, &val, &vlen));
	ck_assert(!pp_tlv_find(tlv, 4, 0x02, &val, &vlen));
	ck_assert(!pp_tlv_find(tlv, 2, 0x02, &val, &vlen));
	ck_assert(!pp_tlv_find(NULL, 0, 0x02, &val, &vlen));
	ck_assert(!pp_tlv_ssl_find(tlv, 9, 0x21, &val, &vlen));
	memcpy(tlv, "\x20\x00\x04\x00\x00\x00\x00", 7);
	ck_assert(!pp_tlv_ssl_find(tlv, 7, 0x21, &val, &vlen));
}
END_TEST

/* ===== main ===== */

static int
write_corpus(const char *dir, long n)
{
	long i;

	for (i = 0; i < n; i++) {
		const struct pp_vec *v = &vecs[i];
		const char *base = strchr(v->name, '/') + 1;
		char path[1024];
		uint8_t first;
		FILE *f;

		snprintf(path, sizeof(path), "%s/%s-%.*s.bin", dir,
			 v->valid ? "valid" : "invalid",
			 (int)(strlen(base) - 4), base);
		f = fopen(path, "wb");
		if (f == NULL) {
			perror(path);
			return 1;
		}
		/* tests/fuzz/fuzz_parse.c: flags in the low bits */
		first = (uint8_t)(v->flags | (unsigned)(i % 32) << 3);
		fputc(first, f);
		fwrite(v->data, 1, v->len, f);
		fclose(f);
	}
	printf("wrote %ld seeds to %s\n", n, dir);
	return 0;
}

/* ===== SPP ===== */

/* An SPP header for client c and proxy p (text addresses: IPv4 ones
 * are written IPv4-mapped) and ports, into out[38]. */
static void
spp_make(uint8_t *out, const char *c, const char *p, uint16_t cp, uint16_t pp)
{
	const char *a[2] = { c, p };
	int i;

	out[0] = 0x56;
	out[1] = 0xEC;
	for (i = 0; i < 2; i++) {
		uint8_t *d = out + 2 + 16 * i;

		if (strchr(a[i], ':') != NULL) {
			ck_assert_int_eq(inet_pton(AF_INET6, a[i], d), 1);
		} else {
			memset(d, 0, 10);
			d[10] = d[11] = 0xff;
			ck_assert_int_eq(inet_pton(AF_INET, a[i], d + 12), 1);
		}
	}
	out[34] = (uint8_t)(cp >> 8);
	out[35] = (uint8_t)cp;
	out[36] = (uint8_t)(pp >> 8);
	out[37] = (uint8_t)pp;
}

START_TEST(spp_v4_client)
{
	uint8_t d[64];
	struct pp_spp s;
	union pp_sockaddr sa;
	socklen_t n;
	char txt[INET6_ADDRSTRLEN];

	spp_make(d, "192.0.2.7", "198.51.100.1", 40000, 27015);
	memcpy(d + 38, "hello", 5);
	ck_assert(pp_parse_spp(d, 43, &s));
	ck_assert_ptr_eq(s.client, d + 2);
	ck_assert_ptr_eq(s.proxy, d + 18);
	ck_assert_uint_eq(ntohs(s.cport), 40000);
	ck_assert_uint_eq(ntohs(s.pport), 27015);
	n = pp_spp_inet(s.client, s.cport, &sa.sa);
	ck_assert_uint_eq(n, sizeof(struct sockaddr_in));
	ck_assert_int_eq(sa.sa.sa_family, AF_INET);
	ck_assert_uint_eq(ntohs(sa.sin.sin_port), 40000);
	inet_ntop(AF_INET, &sa.sin.sin_addr, txt, sizeof(txt));
	ck_assert_str_eq(txt, "192.0.2.7");
	n = pp_spp_inet(s.proxy, s.pport, &sa.sa);
	ck_assert_int_eq(sa.sa.sa_family, AF_INET);
	inet_ntop(AF_INET, &sa.sin.sin_addr, txt, sizeof(txt));
	ck_assert_str_eq(txt, "198.51.100.1");
	ck_assert_uint_eq(ntohs(sa.sin.sin_port), 27015);
}
END_TEST

START_TEST(spp_v6_client)
{
	uint8_t d[38];
	struct pp_spp s;
	union pp_sockaddr sa;
	char txt[INET6_ADDRSTRLEN];

	spp_make(d, "2001:db8::7", "2001:db8::1", 1, 65535);
	ck_assert(pp_parse_spp(d, 38, &s)); /* an empty payload */
	ck_assert_uint_eq(pp_spp_inet(s.client, s.cport, &sa.sa),
			  sizeof(struct sockaddr_in6));
	ck_assert_int_eq(sa.sa.sa_family, AF_INET6);
	inet_ntop(AF_INET6, &sa.sin6.sin6_addr, txt, sizeof(txt));
	ck_assert_str_eq(txt, "2001:db8::7");
	ck_assert_uint_eq(ntohs(sa.sin6.sin6_port), 1);
	ck_assert_uint_eq(ntohs(s.pport), 65535);
	/* ::ffff:0:0/96 only is IPv4: ::a.b.c.d (compatible) and
	 * 64:ff9b::/96 (NAT64) stay IPv6 */
	spp_make(d, "::192.0.2.7", "2001:db8::1", 1, 2);
	ck_assert(pp_parse_spp(d, 38, &s));
	pp_spp_inet(s.client, s.cport, &sa.sa);
	ck_assert_int_eq(sa.sa.sa_family, AF_INET6);
	spp_make(d, "64:ff9b::192.0.2.7", "2001:db8::1", 1, 2);
	ck_assert(pp_parse_spp(d, 38, &s));
	pp_spp_inet(s.client, s.cport, &sa.sa);
	ck_assert_int_eq(sa.sa.sa_family, AF_INET6);
}
END_TEST

/* Every length short of 38 and every wrong magic is refused, and
 * leaves *s alone. */
START_TEST(spp_malformed)
{
	uint8_t d[38];
	struct pp_spp s, before;
	size_t n;
	unsigned m;

	spp_make(d, "192.0.2.7", "198.51.100.1", 1, 2);
	memset(&before, 0xa5, sizeof(before));
	for (n = 0; n < PP_SPP_LEN; n++) {
		s = before;
		ck_assert(!pp_parse_spp(d, n, &s));
		ck_assert(memcmp(&s, &before, sizeof(s)) == 0);
	}
	ck_assert(!pp_parse_spp(NULL, 38, &s));
	for (m = 0; m < 65536; m++) {
		d[0] = (uint8_t)(m >> 8);
		d[1] = (uint8_t)m;
		ck_assert(pp_parse_spp(d, 38, &s) == (m == 0x56EC));
	}
	/* byte-swapped magic (a little-endian sender) */
	d[0] = 0xEC;
	d[1] = 0x56;
	ck_assert(!pp_parse_spp(d, 38, &s));
	/* a PROXY v2 signature is no SPP header */
	ck_assert(!pp_parse_spp("\r\n\r\n\0\r\nQUIT\n\x21\x12\0\x0c"
				"0123456789abcdef0123456789abcdef01234",
				38, &s));
}
END_TEST

static Suite *
parse_suite(void)
{
	Suite *s = suite_create("parse");
	TCase *tc;

	tc = tcase_create("vectors");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, vec_count);
	tcase_add_loop_test(tc, vec_valid_whole, 0, (int)nvalid);
	tcase_add_loop_test(tc, vec_valid_bytewise, 0, (int)nvalid);
	tcase_add_loop_test(tc, vec_valid_torn, 0, (int)nvalid);
	tcase_add_loop_test(tc, vec_invalid, 0, (int)ninvalid);
	suite_add_tcase(s, tc);

	tc = tcase_create("mutations");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, mut_version);
	tcase_add_test(tc, mut_command);
	tcase_add_test(tc, mut_family);
	tcase_add_test(tc, mut_length);
	tcase_add_test(tc, mut_signature);
	tcase_add_test(tc, mut_v1_bytes);
	suite_add_tcase(s, tc);

	tc = tcase_create("crc32c");
	tcase_add_test(tc, crc_vectors);
	tcase_add_test(tc, crc_hw_sw_agree);
	tcase_add_test(tc, crc_incremental);
	suite_add_tcase(s, tc);

	tc = tcase_create("roundtrip");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, roundtrip_v1);
	tcase_add_test(tc, roundtrip_v2);
	suite_add_tcase(s, tc);

	tc = tcase_create("buffers");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, setbuf_grow);
	tcase_add_test(tc, setbuf_after_done);
	tcase_add_test(tc, brief_push);
	tcase_add_test(tc, misc_api);
	suite_add_tcase(s, tc);

	tc = tcase_create("spp");
	tcase_add_test(tc, spp_v4_client);
	tcase_add_test(tc, spp_v6_client);
	tcase_add_test(tc, spp_malformed);
	suite_add_tcase(s, tc);
	return s;
}

int
main(int argc, char **argv)
{
	long n, i;
	int failed;

	n = pp_vec_load(VECTOR_DIR, &vecs);
	if (n < 0)
		return 99;
	if (argc == 3 && strcmp(argv[1], "--write-corpus") == 0)
		return write_corpus(argv[2], n);
	valid_idx = calloc((size_t)n + 1, sizeof(*valid_idx));
	invalid_idx = calloc((size_t)n + 1, sizeof(*invalid_idx));
	if (valid_idx == NULL || invalid_idx == NULL)
		return 99;
	for (i = 0; i < n; i++) {
		if (vecs[i].valid)
			valid_idx[nvalid++] = (size_t)i;
		else
			invalid_idx[ninvalid++] = (size_t)i;
	}
	printf("%zu valid and %zu invalid vectors\n", nvalid, ninvalid);
	failed = pp_suite_run(parse_suite(), NULL);
	pp_vec_free(vecs, (size_t)n);
	free(valid_idx);
	free(invalid_idx);
	return failed;
}
