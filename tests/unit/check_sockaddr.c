/*
 * check_sockaddr.c - socket addresses: the normalised form of IPv4, IPv6
 * and IPv4-mapped IPv6, exact and normalised comparison, conversion
 * between the families, the log text and the kernel-style copy.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <string.h>
#include <sys/un.h>

#include "pp_sockaddr.h"
#include "suite.h"

/* An IPv6 address when ip has a ':', else IPv4. */
static union pp_inaddr
ip_port(const char *ip, unsigned port)
{
	union pp_inaddr a;
	int ok;

	memset(&a, 0, sizeof(a));
	if (strchr(ip, ':') != NULL) {
		a.sin6.sin6_family = AF_INET6;
		a.sin6.sin6_port = htons((uint16_t)port);
		ok = inet_pton(AF_INET6, ip, &a.sin6.sin6_addr);
	} else {
		a.sin.sin_family = AF_INET;
		a.sin.sin_port = htons((uint16_t)port);
		ok = inet_pton(AF_INET, ip, &a.sin.sin_addr);
	}
	ck_assert_int_eq(ok, 1);
	return a;
}

#define L4 ((socklen_t)sizeof(struct sockaddr_in))
#define L6 ((socklen_t)sizeof(struct sockaddr_in6))

START_TEST(norm_and_map)
{
	union pp_inaddr a = ip_port("192.0.2.1", 80),
			b = ip_port("::ffff:192.0.2.1", 81);
	union pp_inaddr c = ip_port("2001:db8::1", 443);
	uint8_t x[16], y[16],
		want[16] = { [10] = 0xff, [11] = 0xff, 192, 0, 2, 1 };
	uint16_t port = 7;
	char odd[1 + sizeof(struct sockaddr_in6)];

	ck_assert(pp_sa_norm(&a.sa, L4, x, &port));
	ck_assert_mem_eq(x, want, 16);
	ck_assert_uint_eq(port, htons(80));
	ck_assert(pp_sa_is_mapped(x));
	ck_assert(pp_sa_norm(&b.sa, L6, y, &port));
	ck_assert_mem_eq(y, want, 16);
	ck_assert_uint_eq(port, htons(81));
	ck_assert(pp_sa_norm(&c.sa, L6, y, &port));
	ck_assert(!pp_sa_is_mapped(y));
	ck_assert_uint_eq(pp_sa_port(&c.sa, L6), htons(443));
	/* The bytes level. */
	pp_sa_map4(y, &a.sin.sin_addr);
	ck_assert_mem_eq(y, want, 16);
	/* Short, NULL or another family: refused, outputs untouched. */
	port = 7;
	ck_assert(!pp_sa_norm(&a.sa, L4 - 1, x, &port));
	ck_assert(!pp_sa_norm(&c.sa, L4, x, &port));
	ck_assert(!pp_sa_norm(NULL, L6, x, &port));
	ck_assert(!pp_sa_norm(&a.sa, 1, x, &port));
	ck_assert_uint_eq(port, 7);
	a.sa.sa_family = AF_UNIX;
	ck_assert(!pp_sa_norm(&a.sa, L6, x, &port));
	ck_assert_uint_eq(pp_sa_port(&a.sa, L6), 0);
	/* Any alignment. */
	memcpy(odd + 1, &c, L6);
	ck_assert(pp_sa_norm((const struct sockaddr *)(odd + 1), L6, x, &port));
	ck_assert_mem_eq(x, &c.sin6.sin6_addr, 16);
}
END_TEST

START_TEST(compare)
{
	union pp_inaddr a = ip_port("192.0.2.1", 80),
			a2 = ip_port("192.0.2.1", 80);
	union pp_inaddr p = ip_port("192.0.2.1", 81),
			m = ip_port("::ffff:192.0.2.1", 80);
	union pp_inaddr c = ip_port("2001:db8::1", 80),
			d = ip_port("2001:db8::2", 80);

	ck_assert(pp_sa_equal(&a.sa, L4, &a2.sa, L4));
	ck_assert(!pp_sa_equal(&a.sa, L4, &p.sa, L4));
	ck_assert(!pp_sa_equal(&a.sa, L4, &m.sa, L6));
	ck_assert(!pp_sa_equal(&a.sa, L4, &a2.sa, L6));
	ck_assert(!pp_sa_equal(&c.sa, L6, &d.sa, L6));
	ck_assert(pp_sa_equal(&c.sa, L6, &c.sa, L6));
	ck_assert(!pp_sa_equal(&a.sa, 2, &a2.sa, 2));
	/* Normalised: IPv4 and its mapped form are one host. */
	ck_assert(pp_sa_same(&a.sa, L4, &m.sa, L6, true));
	ck_assert(pp_sa_same(&m.sa, L6, &a.sa, L4, true));
	ck_assert(!pp_sa_same(&p.sa, L4, &m.sa, L6, true));
	ck_assert(pp_sa_same(&p.sa, L4, &m.sa, L6, false));
	ck_assert(!pp_sa_same(&c.sa, L6, &d.sa, L6, false));
	ck_assert(!pp_sa_same(&a.sa, L4 - 1, &a2.sa, L4, false));
}
END_TEST

START_TEST(as_family)
{
	union pp_inaddr a = ip_port("192.0.2.1", 80),
			m = ip_port("::ffff:192.0.2.1", 81);
	union pp_inaddr c = ip_port("2001:db8::1", 443), out;
	socklen_t len = 0;
	char txt[INET6_ADDRSTRLEN];

	/* IPv4 on an IPv6 socket: mapped. */
	ck_assert(pp_sa_as_family(&a.sa, L4, AF_INET6, &out, &len));
	ck_assert_uint_eq(len, L6);
	ck_assert_uint_eq(out.sin6.sin6_family, AF_INET6);
	ck_assert_uint_eq(out.sin6.sin6_port, htons(80));
	inet_ntop(AF_INET6, &out.sin6.sin6_addr, txt, sizeof(txt));
	ck_assert_str_eq(txt, "::ffff:192.0.2.1");
	/* Mapped on an IPv4 socket: plain IPv4. */
	ck_assert(pp_sa_as_family(&m.sa, L6, AF_INET, &out, &len));
	ck_assert_uint_eq(len, L4);
	ck_assert_uint_eq(out.sin.sin_family, AF_INET);
	ck_assert_uint_eq(out.sin.sin_port, htons(81));
	ck_assert_uint_eq(out.sin.sin_addr.s_addr, a.sin.sin_addr.s_addr);
	/* Same family: copied whole (scope and flow kept). */
	c.sin6.sin6_scope_id = 3;
	ck_assert(pp_sa_as_family(&c.sa, L6, AF_INET6, &out, &len));
	ck_assert_uint_eq(len, L6);
	ck_assert_mem_eq(&out.sin6, &c.sin6, L6);
	ck_assert(pp_sa_as_family(&a.sa, L4, AF_INET, &out, &len));
	ck_assert_mem_eq(&out.sin, &a.sin, L4);
	/* What the family cannot hold. */
	ck_assert(!pp_sa_as_family(&c.sa, L6, AF_INET, &out, &len));
	ck_assert(!pp_sa_as_family(&a.sa, L4, AF_UNIX, &out, &len));
	ck_assert(!pp_sa_as_family(&a.sa, L4 - 1, AF_INET6, &out, &len));
}
END_TEST

START_TEST(from_norm)
{
	union pp_inaddr a = ip_port("192.0.2.1", 80), out;
	union pp_inaddr m = ip_port("::ffff:192.0.2.1", 80);
	union pp_inaddr c = ip_port("2001:db8::1", 443);
	uint8_t n4[16], n6[16];
	uint16_t port;
	socklen_t len = 0;

	ck_assert(pp_sa_norm(&a.sa, L4, n4, &port));
	/* IPv4 (mapped) on an IPv4 socket: plain IPv4, padding zeroed. */
	memset(&out, 0xa5, sizeof(out));
	ck_assert(pp_sa_from_norm(n4, port, AF_INET, &out, &len));
	ck_assert_uint_eq(len, L4);
	ck_assert_mem_eq(&out.sin, &a.sin, L4);
	/* On an IPv6 socket: mapped, flow and scope zero. */
	memset(&out, 0xa5, sizeof(out));
	ck_assert(pp_sa_from_norm(n4, port, AF_INET6, &out, &len));
	ck_assert_uint_eq(len, L6);
	ck_assert_mem_eq(&out.sin6, &m.sin6, L6);
	/* IPv6: only an IPv6 socket holds it. */
	ck_assert(pp_sa_norm(&c.sa, L6, n6, &port));
	ck_assert(pp_sa_from_norm(n6, port, AF_INET6, &out, &len));
	ck_assert_mem_eq(&out.sin6, &c.sin6, L6);
	ck_assert(!pp_sa_from_norm(n6, port, AF_INET, &out, &len));
	ck_assert(!pp_sa_from_norm(n4, port, AF_UNIX, &out, &len));
}
END_TEST

START_TEST(text)
{
	union pp_inaddr a = ip_port("192.0.2.1", 5000),
			c = ip_port("2001:db8::1", 25);
	struct sockaddr_un sun;
	char buf[PP_SA_FMT_MAX], ip[INET6_ADDRSTRLEN];
	unsigned port = 0;
	socklen_t off = (socklen_t)offsetof(struct sockaddr_un, sun_path);

	pp_sa_fmt(&a.sa, L4, buf, sizeof(buf));
	ck_assert_str_eq(buf, "192.0.2.1:5000");
	pp_sa_fmt(&c.sa, L6, buf, sizeof(buf));
	ck_assert_str_eq(buf, "[2001:db8::1]:25");
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	strcpy(sun.sun_path, "/run/x.sock");
	pp_sa_fmt((struct sockaddr *)&sun, off + 12, buf, sizeof(buf));
	ck_assert_str_eq(buf, "unix:/run/x.sock");
	pp_sa_fmt((struct sockaddr *)&sun, off, buf, sizeof(buf));
	ck_assert_str_eq(buf, "unix:(unnamed)");
	pp_sa_fmt(&a.sa, 1, buf, sizeof(buf));
	ck_assert_str_eq(buf, "(unknown)");
	pp_sa_fmt(&a.sa, L4, buf, 5);
	ck_assert_str_eq(buf, "192.");
	pp_sa_ip(&a, ip, sizeof(ip), &port);
	ck_assert_str_eq(ip, "192.0.2.1");
	ck_assert_uint_eq(port, 5000);
	pp_sa_ip(&c, ip, sizeof(ip), &port);
	ck_assert_str_eq(ip, "2001:db8::1");
	ck_assert_uint_eq(port, 25);
}
END_TEST

START_TEST(copy_out)
{
	union pp_inaddr c = ip_port("2001:db8::1", 25), out;
	socklen_t len = 4;

	memset(&out, 0xaa, sizeof(out));
	pp_sa_copy(&out.sa, &len, &c.sa, L6);
	ck_assert_uint_eq(len, L6);
	ck_assert_mem_eq(&out, &c, 4);
	ck_assert_uint_eq(((uint8_t *)&out)[4], 0xaa);
	len = sizeof(out);
	pp_sa_copy(&out.sa, &len, &c.sa, L6);
	ck_assert_uint_eq(len, L6);
	ck_assert_mem_eq(&out, &c, L6);
	pp_sa_copy(NULL, &len, &c.sa, L6);
	pp_sa_copy(&out.sa, NULL, &c.sa, L6);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("sockaddr");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, norm_and_map);
	tcase_add_test(tc, compare);
	tcase_add_test(tc, as_family);
	tcase_add_test(tc, from_norm);
	tcase_add_test(tc, text);
	tcase_add_test(tc, copy_out);
	return pp_suite_run(s, tc);
}
