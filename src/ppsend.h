/*
 * ppsend.h - what ppsend's files share: its exit statuses, the options
 * once parsed and checked, and its two ways of saying something on
 * stderr.
 */
#ifndef PS_PPSEND_H
#define PS_PPSEND_H

#include <regex.h>
#include <stdbool.h>

#include "pp_parse.h"

#define PS_EXIT_OK 0
#define PS_EXIT_NOMATCH 1
#define PS_EXIT_CONN 2

/* The options, once parsed and checked. */
struct ps_opts {
	int version; /* 1, 2, or 0 until decided */
	bool udp;
	bool spp; /* the 38-byte SPP header instead (implies udp) */
	bool local;
	bool unknown;
	bool crc;
	bool draft;
	bool hexdump;
	bool have_src;
	bool have_dst;
	union pp_sockaddr src;
	union pp_sockaddr dst;
	bool have_bind;
	union pp_sockaddr bind;
	long split;    /* 0: one piece */
	long delay_ms; /* -1: not given */
	int timeout_ms;
	bool timeout_set;
	bool have_expect;
	const char *expect;
	regex_t re;
	const char *host;
	const char *port;
};

/* Print "ppsend: " and the message, as one line on stderr. */
void ps_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Print the message as ps_msg() does, then the hint at --help, and exit
 * with EX_USAGE.
 */
void ps_usage_error(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

#endif
