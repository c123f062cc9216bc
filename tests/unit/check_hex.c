/*
 * check_hex.c - the hex codec: lowercase encoding, and decoding that
 * refuses odd lengths, overlong input and anything but hex digits.
 */
#include "config.h"

#include <check.h>
#include <stdint.h>
#include <string.h>

#include "pp_hex.h"
#include "suite.h"

START_TEST(digits)
{
	unsigned c;
	int n = 0;

	ck_assert_int_eq(pp_hex_digit('0'), 0);
	ck_assert_int_eq(pp_hex_digit('9'), 9);
	ck_assert_int_eq(pp_hex_digit('a'), 10);
	ck_assert_int_eq(pp_hex_digit('F'), 15);
	for (c = 0; c < 256; c++)
		if (pp_hex_digit(c) >= 0)
			n++;
	ck_assert_int_eq(n, 22);
	ck_assert_int_eq(pp_hex_digit('g'), -1);
	ck_assert_int_eq(pp_hex_digit('/'), -1);
	ck_assert_int_eq(pp_hex_digit(0x80 | '1'), -1);
	ck_assert_int_eq(pp_hex_char(0), '0');
	ck_assert_int_eq(pp_hex_char(11), 'b');
	ck_assert_int_eq(pp_hex_char(0x3f), 'f');
}
END_TEST

START_TEST(encode)
{
	const uint8_t in[] = { 0x00, 0x0f, 0xa5, 0xff, 0x10 };
	char out[16];

	memset(out, '#', sizeof(out));
	ck_assert_uint_eq(pp_hex_encode(in, sizeof(in), out), 10);
	ck_assert_mem_eq(out, "000fa5ff10", 10);
	ck_assert_int_eq(out[10], '#'); /* no NUL added */
	ck_assert_uint_eq(pp_hex_encode(in, 0, out), 0);
}
END_TEST

START_TEST(decode)
{
	uint8_t out[8], all[256];
	char text[512];
	size_t len = 99;
	unsigned i;

	ck_assert(pp_hex_decode("00Ff7a", 6, out, sizeof(out), &len));
	ck_assert_uint_eq(len, 3);
	ck_assert_uint_eq(out[0], 0x00);
	ck_assert_uint_eq(out[1], 0xff);
	ck_assert_uint_eq(out[2], 0x7a);
	ck_assert(pp_hex_decode("", 0, out, 0, &len));
	ck_assert_uint_eq(len, 0);
	/* Strict: odd length, too long for cap, a non-digit. */
	len = 99;
	ck_assert(!pp_hex_decode("abc", 3, out, sizeof(out), &len));
	ck_assert(!pp_hex_decode("0011", 4, out, 1, &len));
	ck_assert(!pp_hex_decode("0g", 2, out, sizeof(out), &len));
	ck_assert(!pp_hex_decode(" 1", 2, out, sizeof(out), &len));
	ck_assert(!pp_hex_decode("1\0", 2, out, sizeof(out), &len));
	ck_assert(!pp_hex_decode("0x11", 4, out, sizeof(out), &len));
	ck_assert_uint_eq(len, 99);
	/* Only n characters are read. */
	ck_assert(pp_hex_decode("12zz", 2, out, 1, &len));
	ck_assert_uint_eq(out[0], 0x12);
	/* Every byte round-trips. */
	for (i = 0; i < 256; i++)
		all[i] = (uint8_t)i;
	pp_hex_encode(all, 256, text);
	memset(all, 0, sizeof(all));
	ck_assert(pp_hex_decode(text, 512, all, sizeof(all), &len));
	ck_assert_uint_eq(len, 256);
	for (i = 0; i < 256; i++)
		ck_assert_uint_eq(all[i], i);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("hex");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, digits);
	tcase_add_test(tc, encode);
	tcase_add_test(tc, decode);
	return pp_suite_run(s, tc);
}
