/*
 * check_handover.c - PPSHIM_HANDOVER encoding and parsing, the PP_TLV_*
 * values, the TLV cache the exec hook reads, and the rewrite of
 * tcpserver's variables.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "handover.h"
#include "pp_parse.h"
#include "suite.h"
#include "tlvcache.h"

static struct pp_handover
sample(int fd, uint64_t cookie)
{
	struct pp_handover h;

	memset(&h, 0, sizeof(h));
	h.fd = fd;
	h.info.kind = PP_FD_CONN;
	h.info.cookie = cookie;
	h.info.has_src = true;
	h.info.has_dst = true;
	h.info.src.sin.sin_family = AF_INET;
	h.info.src.sin.sin_port = htons(40000);
	inet_pton(AF_INET, "192.0.2.10", &h.info.src.sin.sin_addr);
	h.info.srclen = sizeof(struct sockaddr_in);
	h.info.dst.sin6.sin6_family = AF_INET6;
	h.info.dst.sin6.sin6_port = htons(25);
	inet_pton(AF_INET6, "2001:db8::25", &h.info.dst.sin6.sin6_addr);
	h.info.dstlen = sizeof(struct sockaddr_in6);
	h.info.family = AF_INET;
	return h;
}

static struct pp_handover got[8];
static size_t ngot;

static void
take(const struct pp_handover *h, void *arg)
{
	(void)arg;
	if (ngot < 8)
		got[ngot++] = *h;
}

START_TEST(round_trip)
{
	struct pp_handover a = sample(0, 0x1234abcdULL), b = sample(7, 99);
	char buf[4096] = "";

	memcpy(a.tlvs.val[PP_XTLV_AUTHORITY], "www.example", 11);
	a.tlvs.len[PP_XTLV_AUTHORITY] = 11;
	a.tlvs.present[PP_XTLV_AUTHORITY] = true;
	b.info.has_dst = false;
	ck_assert(pp_handover_append(buf, sizeof(buf), &a));
	ck_assert(pp_handover_append(buf, sizeof(buf), &b));
	ck_assert_ptr_nonnull(strchr(buf, ';'));
	ngot = 0;
	ck_assert_uint_eq(pp_handover_parse(buf, take, NULL), 2);
	ck_assert_int_eq(got[0].fd, 0);
	ck_assert_uint_eq(got[0].info.cookie, 0x1234abcdULL);
	ck_assert(got[0].info.has_src && got[0].info.has_dst);
	ck_assert_mem_eq(&got[0].info.src.sin, &a.info.src.sin,
			 sizeof(struct sockaddr_in));
	ck_assert_mem_eq(&got[0].info.dst.sin6, &a.info.dst.sin6,
			 sizeof(struct sockaddr_in6));
	ck_assert_int_eq(got[0].info.srclen, sizeof(struct sockaddr_in));
	ck_assert(got[0].tlvs.present[PP_XTLV_AUTHORITY]);
	ck_assert_mem_eq(got[0].tlvs.val[PP_XTLV_AUTHORITY], "www.example", 11);
	ck_assert_int_eq(got[1].fd, 7);
	ck_assert(!got[1].info.has_dst);
}
END_TEST

START_TEST(real_addresses_entry)
{
	struct pp_handover a = sample(3, 5);
	char buf[256] = "";

	a.info.has_src = a.info.has_dst = false;
	ck_assert(pp_handover_append(buf, sizeof(buf), &a));
	ck_assert_str_eq(buf, "3,5,0,,");
	ngot = 0;
	ck_assert_uint_eq(pp_handover_parse(buf, take, NULL), 1);
	ck_assert(!got[0].info.has_src && !got[0].info.has_dst);
}
END_TEST

START_TEST(does_not_fit)
{
	struct pp_handover a = sample(0, 1);
	char buf[40] = "";

	ck_assert(!pp_handover_append(buf, sizeof(buf), &a));
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(malformed_skipped)
{
	static const char *const bad[] = {
		"",
		"x",
		"0,1,3",                                   /* too few fields */
		"-1,1,1,0200,",                            /* negative fd */
		"0,0,1,02009c40c000020a0000000000000000,", /* cookie 0 */
		"0,zz,1,02009c40c000020a0000000000000000,",
		"0,1,4,02009c40c000020a0000000000000000,", /* flags */
		"0,1,1,0200,",                             /* short sockaddr */
		"0,1,1,02009c40c000020a000000000000000,",  /* odd hex */
		"0,1,1,0a009c40c000020a0000000000000000,", /* AF_INET6 len */
		"0,1,1,02009c40c000020a0000000000000000,,bogus=41",
		"0,1,1,02009c40c000020a0000000000000000,,authority",
		"99999999999,1,1,02009c40c000020a0000000000000000,",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ngot = 0;
		ck_assert_msg(pp_handover_parse(bad[i], take, NULL) == 0,
			      "accepted '%s'", bad[i]);
	}
	/* A bad entry does not spoil a good one beside it. */
	ngot = 0;
	ck_assert_uint_eq(
		pp_handover_parse("x;4,a,1,02009c40c000020a0000000000000000,;",
				  take, NULL),
		1);
	ck_assert_int_eq(got[0].fd, 4);
	ck_assert_uint_eq(got[0].info.cookie, 10);
}
END_TEST

START_TEST(env_values)
{
	char out[64];

	pp_tlv_envvalue((const uint8_t *)"h2", 2, out, sizeof(out));
	ck_assert_str_eq(out, "h2");
	pp_tlv_envvalue((const uint8_t *)"a\nb\x80", 4, out, sizeof(out));
	ck_assert_str_eq(out, "hex:610a6280");
	pp_tlv_envvalue((const uint8_t *)"", 0, out, sizeof(out));
	ck_assert_str_eq(out, "");
	ck_assert_str_eq(pp_tlv_envname(PP_XTLV_SSL_CN), "PP_TLV_SSL_CN");
}
END_TEST

START_TEST(tlvs_from_area)
{
	/* AUTHORITY "ex", then SSL (client 1, verify 0) with CN "cn". */
	static const uint8_t area[] = {
		0x02, 0x00, 0x02, 'e', 'x',  0x20, 0x00, 0x0a, 0x01,
		0,    0,    0,    0,   0x22, 0x00, 0x02, 'c',  'n',
	};
	struct pp_tlvset t;

	pp_tlvset_from_area(&t, area, sizeof(area));
	ck_assert(t.present[PP_XTLV_AUTHORITY]);
	ck_assert_mem_eq(t.val[PP_XTLV_AUTHORITY], "ex", 2);
	ck_assert(t.present[PP_XTLV_SSL_CN]);
	ck_assert_mem_eq(t.val[PP_XTLV_SSL_CN], "cn", 2);
	ck_assert(!t.present[PP_XTLV_ALPN]);
}
END_TEST

START_TEST(cache)
{
	struct pp_tlvset t, out;
	uint64_t c;

	memset(&t, 0, sizeof(t));
	t.present[PP_XTLV_ALPN] = true;
	t.len[PP_XTLV_ALPN] = 2;
	memcpy(t.val[PP_XTLV_ALPN], "h2", 2);
	pp_tlvcache_put(777, &t);
	ck_assert(pp_tlvcache_get(777, &out));
	ck_assert_mem_eq(out.val[PP_XTLV_ALPN], "h2", 2);
	ck_assert(!pp_tlvcache_get(778, &out));
	ck_assert(!out.present[PP_XTLV_ALPN]);
	/* Older entries make way for newer ones. */
	for (c = 1000; c < 1200; c++)
		pp_tlvcache_put(c, &t);
	ck_assert(!pp_tlvcache_get(777, &out));
	ck_assert(pp_tlvcache_get(1199, &out));
}
END_TEST

/* A small environment of NAME=value strings for pp_tcpvars_rewrite. */
struct fakeenv {
	char v[8][64];
	size_t n;
};

static const char *
fe_get(void *arg, const char *name)
{
	struct fakeenv *e = arg;
	size_t i, l = strlen(name);

	for (i = 0; i < e->n; i++)
		if (strncmp(e->v[i], name, l) == 0 && e->v[i][l] == '=')
			return e->v[i] + l + 1;
	return NULL;
}

static void
fe_set(void *arg, const char *name, const char *value)
{
	char *old = (char *)fe_get(arg, name);

	ck_assert_ptr_nonnull(old); /* never added */
	snprintf(old - strlen(name) - 1, 64, "%s=%s", name, value);
}

static void
fe_unset(void *arg, const char *name)
{
	struct fakeenv *e = arg;
	const char *v = fe_get(arg, name);
	size_t i;

	if (v == NULL)
		return;
	i = (size_t)((v - strlen(name) - 1 - e->v[0]) / 64);
	memmove(e->v[i], e->v[i + 1], (e->n - i - 1) * 64);
	e->n--;
}

static bool
fe_has(struct fakeenv *e, const char *entry)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (strcmp(e->v[i], entry) == 0)
			return true;
	return false;
}

START_TEST(tcpserver_vars)
{
	struct pp_handover h = sample(0, 1);
	struct fakeenv e = { { "TCPREMOTEIP=127.0.0.1", "TCPREMOTEPORT=5555",
			       "TCPREMOTEHOST=proxy", "TCPREMOTEINFO=x",
			       "TCPLOCALPORT=2525", "OTHER=1" },
			     6 };
	const struct pp_envops ops = { fe_get, fe_set, fe_unset, &e };

	pp_tcpvars_rewrite(&h.info, false, &ops);
	ck_assert_uint_eq(e.n, 4);
	ck_assert(fe_has(&e, "TCPREMOTEIP=192.0.2.10"));
	ck_assert(fe_has(&e, "TCPREMOTEPORT=40000"));
	ck_assert(fe_has(&e, "TCPLOCALPORT=25"));
	ck_assert(fe_has(&e, "OTHER=1"));
	/* TCPLOCALIP was absent: not added.  The proxy's names are gone. */
	ck_assert_ptr_null(fe_get(&e, "TCPLOCALIP"));
	ck_assert_ptr_null(fe_get(&e, "TCPREMOTEHOST"));
	ck_assert_ptr_null(fe_get(&e, "TCPREMOTEINFO"));
}
END_TEST

START_TEST(tcpserver_vars_kept)
{
	struct pp_handover h = sample(0, 1);
	struct fakeenv e = { { "TCPREMOTEIP=192.0.2.10", "TCPREMOTEPORT=1",
			       "TCPREMOTEHOST=client", "TCPLOCALIP=10.0.0.1",
			       "TCPLOCALPORT=2525" },
			     5 };
	const struct pp_envops ops = { fe_get, fe_set, fe_unset, &e };

	/* Same address: the looked-up name stays; PP_SOCKNAME=real keeps
	 * the local pair. */
	pp_tcpvars_rewrite(&h.info, true, &ops);
	ck_assert_uint_eq(e.n, 5);
	ck_assert(fe_has(&e, "TCPREMOTEPORT=40000"));
	ck_assert(fe_has(&e, "TCPREMOTEHOST=client"));
	ck_assert(fe_has(&e, "TCPLOCALIP=10.0.0.1"));
	ck_assert(fe_has(&e, "TCPLOCALPORT=2525"));
	/* Without advertised addresses nothing changes. */
	h.info.has_src = h.info.has_dst = false;
	ck_assert(fe_has(&e, "TCPREMOTEIP=192.0.2.10"));
	pp_tcpvars_rewrite(&h.info, false, &ops);
	ck_assert(fe_has(&e, "TCPLOCALIP=10.0.0.1"));
	/* An IPv6 destination. */
	h.info.has_dst = true;
	pp_tcpvars_rewrite(&h.info, false, &ops);
	ck_assert(fe_has(&e, "TCPLOCALIP=2001:db8::25"));
	ck_assert(fe_has(&e, "TCPLOCALPORT=25"));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("handover");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, round_trip);
	tcase_add_test(tc, real_addresses_entry);
	tcase_add_test(tc, does_not_fit);
	tcase_add_test(tc, malformed_skipped);
	tcase_add_test(tc, env_values);
	tcase_add_test(tc, tlvs_from_area);
	tcase_add_test(tc, cache);
	tcase_add_test(tc, tcpserver_vars);
	tcase_add_test(tc, tcpserver_vars_kept);
	return pp_suite_run(s, tc);
}
