/*
 * check_config.c - unit tests for the PP_* configuration parser and the
 * ACL and port matching (src/core/pp_config.c, pp_cfgtext.c, pp_acl.c).
 *
 * Every refused value is checked against the exact error line, since the
 * line is what the operator reads before the process exits.
 */
#include "config.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "pp_config.h"
#include "suite.h"

/* ===== A fake environment for pp_config_parse() ===== */

#define PP_T_NVARS 16

static struct {
	const char *name;
	const char *value;
} pp_t_env[PP_T_NVARS];

static struct pp_config cfg;
static char err[PP_ERRMSG_MAX];

static void
env_clear(void)
{
	memset(pp_t_env, 0, sizeof(pp_t_env));
}

static void
env_set(const char *name, const char *value)
{
	int i;

	for (i = 0; i < PP_T_NVARS; i++) {
		if (pp_t_env[i].name == NULL ||
		    strcmp(pp_t_env[i].name, name) == 0) {
			pp_t_env[i].name = name;
			pp_t_env[i].value = value;
			return;
		}
	}
	ck_abort_msg("fake environment full");
}

static const char *
env_get(const char *name)
{
	int i;

	for (i = 0; i < PP_T_NVARS && pp_t_env[i].name != NULL; i++)
		if (strcmp(pp_t_env[i].name, name) == 0)
			return pp_t_env[i].value;
	return NULL;
}

/* Parse with the environment as set. */
static int
parse_env(void)
{
	memset(err, 'X', sizeof(err));
	return pp_config_parse(&cfg, env_get, err, sizeof(err));
}

/* Parse with only name=value set. */
static int
parse_one(const char *name, const char *value)
{
	env_clear();
	env_set(name, value);
	return parse_env();
}

/* name=value must parse. */
#define ck_good(name, value)                                                   \
	do {                                                                   \
		int rc_ = parse_one((name), (value));                          \
		ck_assert_msg(rc_ == 0, "%s=%s refused: %s", (name), (value),  \
			      err);                                            \
		ck_assert_str_eq(err, "");                                     \
	} while (0)

/* name=value must be refused with exactly the line want. */
#define ck_bad(name, value, want)                                              \
	do {                                                                   \
		int rc_ = parse_one((name), (value));                          \
		ck_assert_msg(rc_ == -1, "%s=%s accepted", (name), (value));   \
		ck_assert_str_eq(err, (want));                                 \
	} while (0)

/* ===== Socket addresses ===== */

static socklen_t
sa4(struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof(*ss));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
	return sizeof(*sin);
}

static socklen_t
sa6(struct sockaddr_storage *ss, const char *addr, unsigned port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons((uint16_t)port);
	ck_assert_int_eq(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
	return sizeof(*sin6);
}

/* A UNIX address; abstract names start with '@'; pad: length sizeof. */
static socklen_t
saun(struct sockaddr_storage *ss, const char *path, bool pad)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n = strlen(path), off = offsetof(struct sockaddr_un, sun_path);

	memset(ss, 0, sizeof(*ss));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@') {
		sun->sun_path[0] = '\0';
		if (!pad)
			return (socklen_t)(off + n);
	}
	if (pad)
		return sizeof(*sun);
	return (socklen_t)(off + n + 1);
}

static bool
allow4(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sa4(&ss, addr, 1234);

	return pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, len);
}

static bool
allow6(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len = sa6(&ss, addr, 1234);

	return pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, len);
}

static bool
port4(int type, const char *addr, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len = sa4(&ss, addr, port);

	return pp_config_match(&cfg, type, (struct sockaddr *)&ss, len);
}

static bool
port6(int type, const char *addr, unsigned port)
{
	struct sockaddr_storage ss;
	socklen_t len = sa6(&ss, addr, port);

	return pp_config_match(&cfg, type, (struct sockaddr *)&ss, len);
}

static bool
portun(int type, const char *path, bool pad)
{
	struct sockaddr_storage ss;
	socklen_t len = saun(&ss, path, pad);

	return pp_config_match(&cfg, type, (struct sockaddr *)&ss, len);
}

/* Entry i of acl is addr/plen (addr as IPv6 text, plen 0..128). */
static void
ck_cidr(const struct pp_acl *acl, size_t i, const char *addr, unsigned plen)
{
	uint8_t want[16];

	ck_assert_uint_lt(i, acl->n);
	ck_assert_int_eq(inet_pton(AF_INET6, addr, want), 1);
	ck_assert_msg(memcmp(acl->v[i].addr, want, 16) == 0,
		      "entry %zu is not %s", i, addr);
	ck_assert_uint_eq(acl->v[i].plen, plen);
}

/* ===== Defaults ===== */

static void
ck_defaults(void)
{
	ck_assert_uint_eq(cfg.nports, 0);
	ck_assert_uint_eq(cfg.allow.n, 2);
	ck_cidr(&cfg.allow, 0, "::ffff:127.0.0.0", 104);
	ck_cidr(&cfg.allow, 1, "::1", 128);
	ck_assert_uint_eq(cfg.direct.n, 0);
	ck_assert_uint_eq(cfg.timeout_ms, 3000);
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V1 | PP_ACCEPT_V2);
	ck_assert(!cfg.sockname_real);
	ck_assert_int_eq(cfg.log_level, PP_LOG_WARN);
	ck_assert_int_eq(cfg.log_target, PP_TARGET_STDERR);
	ck_assert(!cfg.v2_draft);
	ck_assert(!cfg.inherit);
}

static const char *const all_vars[] = {
	"PP_PORTS",    "PP_ALLOW",    "PP_DIRECT", "PP_TIMEOUT_MS",
	"PP_VERSIONS", "PP_SOCKNAME", "PP_LOG",    "PP_LOG_TARGET",
	"PP_V2_DRAFT", "PP_INHERIT",
};

START_TEST(test_defaults_unset)
{
	env_clear();
	ck_assert_int_eq(parse_env(), 0);
	ck_assert_str_eq(err, "");
	ck_defaults();
}
END_TEST

START_TEST(test_defaults_empty)
{
	size_t i;

	env_clear();
	for (i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
		env_set(all_vars[i], "");
	ck_assert_int_eq(parse_env(), 0);
	ck_defaults();

	/* Separators alone are no entry at all: the default again. */
	for (i = 0; i < sizeof(all_vars) / sizeof(all_vars[0]); i++)
		env_set(all_vars[i], " \t\n ");
	ck_assert_int_eq(parse_env(), 0);
	ck_defaults();
	env_set("PP_ALLOW", " , ,, ");
	env_set("PP_PORTS", ",");
	env_set("PP_VERSIONS", ",");
	ck_assert_int_eq(parse_env(), 0);
	ck_defaults();
}
END_TEST

START_TEST(test_loglevel_name)
{
	ck_assert_str_eq(pp_loglevel_name(PP_LOG_NONE), "none");
	ck_assert_str_eq(pp_loglevel_name(PP_LOG_ERROR), "error");
	ck_assert_str_eq(pp_loglevel_name(PP_LOG_WARN), "warn");
	ck_assert_str_eq(pp_loglevel_name(PP_LOG_INFO), "info");
	ck_assert_str_eq(pp_loglevel_name(PP_LOG_DEBUG), "debug");
	ck_assert_str_eq(pp_loglevel_name((enum pp_loglevel)42), "?");
	ck_assert_str_eq(pp_logtarget_name(PP_TARGET_STDERR), "stderr");
	ck_assert_str_eq(pp_logtarget_name(PP_TARGET_SYSLOG), "syslog");
}
END_TEST

/* ===== Single values ===== */

START_TEST(test_timeout)
{
	ck_good("PP_TIMEOUT_MS", "1");
	ck_assert_uint_eq(cfg.timeout_ms, 1);
	ck_good("PP_TIMEOUT_MS", "3600000");
	ck_assert_uint_eq(cfg.timeout_ms, 3600000);
	ck_good("PP_TIMEOUT_MS", " 5000\n");
	ck_assert_uint_eq(cfg.timeout_ms, 5000);
	ck_good("PP_TIMEOUT_MS", "0250");
	ck_assert_uint_eq(cfg.timeout_ms, 250);

	ck_bad("PP_TIMEOUT_MS", "0",
	       "PP_TIMEOUT_MS: '0': out of range (1..3600000)");
	ck_bad("PP_TIMEOUT_MS", "3600001",
	       "PP_TIMEOUT_MS: '3600001': out of range (1..3600000)");
	ck_bad("PP_TIMEOUT_MS", "99999999999999999999999",
	       "PP_TIMEOUT_MS: '99999999999999999999999': "
	       "out of range (1..3600000)");
	ck_bad("PP_TIMEOUT_MS", "-1", "PP_TIMEOUT_MS: '-1': not a number");
	ck_bad("PP_TIMEOUT_MS", "+5", "PP_TIMEOUT_MS: '+5': not a number");
	ck_bad("PP_TIMEOUT_MS", "3s", "PP_TIMEOUT_MS: '3s': not a number");
	ck_bad("PP_TIMEOUT_MS", "0x10", "PP_TIMEOUT_MS: '0x10': not a number");
	ck_bad("PP_TIMEOUT_MS", " 1 000 ",
	       "PP_TIMEOUT_MS: '1 000': not a number");
	ck_bad("PP_TIMEOUT_MS", "1,000",
	       "PP_TIMEOUT_MS: '1,000': not a number");
	ck_bad("PP_TIMEOUT_MS", "9999999999999999999x",
	       "PP_TIMEOUT_MS: '9999999999999999999x': not a number");
}
END_TEST

START_TEST(test_versions)
{
	ck_good("PP_VERSIONS", "1");
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V1);
	ck_good("PP_VERSIONS", "2");
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V2);
	ck_good("PP_VERSIONS", "1,2");
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V1 | PP_ACCEPT_V2);
	ck_good("PP_VERSIONS", "2 1");
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V1 | PP_ACCEPT_V2);
	ck_good("PP_VERSIONS", ",1,,2,");
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V1 | PP_ACCEPT_V2);
	ck_good("PP_VERSIONS", "2,2");
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V2);

	ck_bad("PP_VERSIONS", "3", "PP_VERSIONS: '3': want 1, 2 or 1,2");
	ck_bad("PP_VERSIONS", "1,3", "PP_VERSIONS: '3': want 1, 2 or 1,2");
	ck_bad("PP_VERSIONS", "12", "PP_VERSIONS: '12': want 1, 2 or 1,2");
	ck_bad("PP_VERSIONS", "v2", "PP_VERSIONS: 'v2': want 1, 2 or 1,2");
	ck_bad("PP_VERSIONS", "1;2", "PP_VERSIONS: '1;2': want 1, 2 or 1,2");
}
END_TEST

START_TEST(test_draft)
{
	ck_good("PP_V2_DRAFT", "1");
	ck_assert(cfg.v2_draft);
	ck_assert_uint_eq(cfg.versions,
			  PP_ACCEPT_V1 | PP_ACCEPT_V2 | PP_ACCEPT_DRAFT);
	ck_good("PP_V2_DRAFT", "0");
	ck_assert(!cfg.v2_draft);
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V1 | PP_ACCEPT_V2);

	/* The draft is a form of v2: not without v2. */
	env_clear();
	env_set("PP_V2_DRAFT", "1");
	env_set("PP_VERSIONS", "1");
	ck_assert_int_eq(parse_env(), 0);
	ck_assert(cfg.v2_draft);
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V1);
	env_set("PP_VERSIONS", "2");
	ck_assert_int_eq(parse_env(), 0);
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V2 | PP_ACCEPT_DRAFT);

	ck_bad("PP_V2_DRAFT", "yes", "PP_V2_DRAFT: 'yes': want 0 or 1");
	ck_bad("PP_V2_DRAFT", "2", "PP_V2_DRAFT: '2': want 0 or 1");
	ck_bad("PP_V2_DRAFT", "01", "PP_V2_DRAFT: '01': want 0 or 1");
}
END_TEST

START_TEST(test_keywords)
{
	ck_good("PP_SOCKNAME", "proxied");
	ck_assert(!cfg.sockname_real);
	ck_good("PP_SOCKNAME", "real");
	ck_assert(cfg.sockname_real);
	ck_good("PP_SOCKNAME", "\treal \n");
	ck_assert(cfg.sockname_real);
	ck_bad("PP_SOCKNAME", "Real",
	       "PP_SOCKNAME: 'Real': want proxied or real");
	ck_bad("PP_SOCKNAME", "real,",
	       "PP_SOCKNAME: 'real,': want proxied or real");

	ck_good("PP_LOG", "none");
	ck_assert_int_eq(cfg.log_level, PP_LOG_NONE);
	ck_good("PP_LOG", "error");
	ck_assert_int_eq(cfg.log_level, PP_LOG_ERROR);
	ck_good("PP_LOG", "warn");
	ck_assert_int_eq(cfg.log_level, PP_LOG_WARN);
	ck_good("PP_LOG", "info");
	ck_assert_int_eq(cfg.log_level, PP_LOG_INFO);
	ck_good("PP_LOG", "debug");
	ck_assert_int_eq(cfg.log_level, PP_LOG_DEBUG);
	ck_bad("PP_LOG", "warning",
	       "PP_LOG: 'warning': want none, error, warn, info or debug");
	ck_bad("PP_LOG", "WARN",
	       "PP_LOG: 'WARN': want none, error, warn, info or debug");
	ck_bad("PP_LOG", "3",
	       "PP_LOG: '3': want none, error, warn, info or debug");

	ck_good("PP_LOG_TARGET", "stderr");
	ck_assert_int_eq(cfg.log_target, PP_TARGET_STDERR);
	ck_good("PP_LOG_TARGET", "syslog");
	ck_assert_int_eq(cfg.log_target, PP_TARGET_SYSLOG);
	ck_bad("PP_LOG_TARGET", "file",
	       "PP_LOG_TARGET: 'file': want stderr or syslog");
	ck_bad("PP_LOG_TARGET", "stderr syslog",
	       "PP_LOG_TARGET: 'stderr syslog': want stderr or syslog");

	ck_good("PP_INHERIT", "1");
	ck_assert(cfg.inherit);
	ck_good("PP_INHERIT", "0");
	ck_assert(!cfg.inherit);
	ck_bad("PP_INHERIT", "true", "PP_INHERIT: 'true': want 0 or 1");
	ck_bad("PP_INHERIT", "-1", "PP_INHERIT: '-1': want 0 or 1");
}
END_TEST

/* ===== The error line itself ===== */

START_TEST(test_error_quoting)
{
	char v[201], want[PP_ERRMSG_MAX];

	/* Control characters are escaped, the rest shown as written. */
	ck_bad("PP_LOG", "w\033[2Jarn",
	       "PP_LOG: 'w\\x1b[2Jarn': want none, error, warn, info or "
	       "debug");
	ck_bad("PP_LOG", "caf\xc3\xa9",
	       "PP_LOG: 'caf\xc3\xa9': want none, error, warn, info or "
	       "debug");

	/* Long entries are cut to 61 characters and "...". */
	memset(v, 'a', 200);
	v[200] = '\0';
	snprintf(want, sizeof(want),
		 "PP_LOG: '%.61s...': want none, error, warn, info or debug",
		 v);
	ck_bad("PP_LOG", v, want);

	/* 64 characters are shown whole. */
	v[64] = '\0';
	snprintf(want, sizeof(want),
		 "PP_LOG: '%s': want none, error, warn, info or debug", v);
	ck_bad("PP_LOG", v, want);

	/* A short buffer gets a truncated, terminated line. */
	env_clear();
	env_set("PP_LOG", "bad");
	ck_assert_int_eq(pp_config_parse(&cfg, env_get, err, 10), -1);
	ck_assert_str_eq(err, "PP_LOG: '");
	ck_assert_int_eq(pp_config_parse(&cfg, env_get, NULL, 0), -1);
	ck_assert_int_eq(pp_config_parse(&cfg, env_get, err, 0), -1);
}
END_TEST

START_TEST(test_first_error_wins)
{
	env_clear();
	env_set("PP_INHERIT", "x");
	env_set("PP_LOG", "x");
	env_set("PP_PORTS", "80 http");
	env_set("PP_ALLOW", "x");
	ck_assert_int_eq(parse_env(), -1);
	ck_assert_str_eq(err, "PP_PORTS: 'http': port not a number");
	env_set("PP_PORTS", "80");
	ck_assert_int_eq(parse_env(), -1);
	ck_assert_str_eq(err, "PP_ALLOW: 'x': not an IP address");
	env_set("PP_ALLOW", "");
	ck_assert_int_eq(parse_env(), -1);
	ck_assert_str_eq(err,
			 "PP_LOG: 'x': want none, error, warn, info or debug");
	env_set("PP_LOG", "info");
	ck_assert_int_eq(parse_env(), -1);
	ck_assert_str_eq(err, "PP_INHERIT: 'x': want 0 or 1");
	env_set("PP_INHERIT", "1");
	ck_assert_int_eq(parse_env(), 0);
	ck_assert_str_eq(err, "");
}
END_TEST

/* ===== PP_ALLOW and PP_DIRECT ===== */

START_TEST(test_acl_valid)
{
	ck_good("PP_ALLOW", "10.0.0.0/8, 192.0.2.7, ::1, fd00::/8");
	ck_assert_uint_eq(cfg.allow.n, 4);
	ck_cidr(&cfg.allow, 0, "::ffff:10.0.0.0", 104);
	ck_cidr(&cfg.allow, 1, "::ffff:192.0.2.7", 128);
	ck_cidr(&cfg.allow, 2, "::1", 128);
	ck_cidr(&cfg.allow, 3, "fd00::", 8);
	ck_assert_uint_eq(cfg.direct.n, 0);

	ck_good("PP_ALLOW", "0.0.0.0/0 ::/0 ::ffff:0:0/96");
	ck_cidr(&cfg.allow, 0, "::ffff:0.0.0.0", 96);
	ck_cidr(&cfg.allow, 1, "::", 0);
	ck_cidr(&cfg.allow, 2, "::ffff:0.0.0.0", 96);

	ck_good("PP_ALLOW", "FD00:0DB8::/32\t::ffff:192.0.2.1 "
			    "64:ff9b::192.0.2.0/120 10.0.0.0/08 "
			    "1:2:3:4:5:6:7:8 255.255.255.255/32");
	ck_cidr(&cfg.allow, 0, "fd00:db8::", 32);
	ck_cidr(&cfg.allow, 1, "::ffff:192.0.2.1", 128);
	ck_cidr(&cfg.allow, 2, "64:ff9b::c000:200", 120);
	ck_cidr(&cfg.allow, 3, "::ffff:10.0.0.0", 104);
	ck_cidr(&cfg.allow, 4, "1:2:3:4:5:6:7:8", 128);
	ck_cidr(&cfg.allow, 5, "::ffff:255.255.255.255", 128);

	ck_good("PP_DIRECT", "198.51.100.0/24,,2001:db8::/32,");
	ck_assert_uint_eq(cfg.direct.n, 2);
	ck_cidr(&cfg.direct, 0, "::ffff:198.51.100.0", 120);
	ck_cidr(&cfg.direct, 1, "2001:db8::", 32);
	ck_assert_uint_eq(cfg.allow.n, 2); /* the default stays */
}
END_TEST

START_TEST(test_acl_invalid)
{
	ck_bad("PP_ALLOW", "10.0.0.0/33",
	       "PP_ALLOW: '10.0.0.0/33': prefix length out of range");
	ck_bad("PP_ALLOW", "::/129",
	       "PP_ALLOW: '::/129': prefix length out of range");
	ck_bad("PP_ALLOW", "::ffff:0:0/999999999999999999999",
	       "PP_ALLOW: '::ffff:0:0/999999999999999999999': "
	       "prefix length out of range");
	ck_bad("PP_ALLOW", "10.0.0.0/",
	       "PP_ALLOW: '10.0.0.0/': prefix length not a number");
	ck_bad("PP_ALLOW", "10.0.0.0/-1",
	       "PP_ALLOW: '10.0.0.0/-1': prefix length not a number");
	ck_bad("PP_ALLOW", "10.0.0.0/8/8",
	       "PP_ALLOW: '10.0.0.0/8/8': prefix length not a number");
	ck_bad("PP_ALLOW", "10.0.0.0/0x8",
	       "PP_ALLOW: '10.0.0.0/0x8': prefix length not a number");
	ck_bad("PP_ALLOW", "10.0.0.1/8",
	       "PP_ALLOW: '10.0.0.1/8': host bits set beyond prefix");
	ck_bad("PP_ALLOW", "10.128.64.0/17",
	       "PP_ALLOW: '10.128.64.0/17': host bits set beyond prefix");
	ck_bad("PP_ALLOW", "fd00::1/8",
	       "PP_ALLOW: 'fd00::1/8': host bits set beyond prefix");
	ck_bad("PP_ALLOW", "::1/0",
	       "PP_ALLOW: '::1/0': host bits set beyond prefix");
	ck_bad("PP_ALLOW", "0.0.0.1/0",
	       "PP_ALLOW: '0.0.0.1/0': host bits set beyond prefix");
	ck_bad("PP_ALLOW", "2001:db8::40/121",
	       "PP_ALLOW: '2001:db8::40/121': host bits set beyond prefix");

	ck_bad("PP_ALLOW", "256.0.0.0",
	       "PP_ALLOW: '256.0.0.0': not an IP address");
	ck_bad("PP_ALLOW", "10.0.0", "PP_ALLOW: '10.0.0': not an IP address");
	ck_bad("PP_ALLOW", "10.0.0.0.0",
	       "PP_ALLOW: '10.0.0.0.0': not an IP address");
	ck_bad("PP_ALLOW", "010.0.0.1",
	       "PP_ALLOW: '010.0.0.1': not an IP address");
	ck_bad("PP_ALLOW", "1.2.3.04",
	       "PP_ALLOW: '1.2.3.04': not an IP address");
	ck_bad("PP_ALLOW", "1.2.3.4a",
	       "PP_ALLOW: '1.2.3.4a': not an IP address");
	ck_bad("PP_ALLOW", "1.2.3.", "PP_ALLOW: '1.2.3.': not an IP address");
	ck_bad("PP_ALLOW", "1..2.3", "PP_ALLOW: '1..2.3': not an IP address");
	ck_bad("PP_ALLOW", "1000.2.3.4",
	       "PP_ALLOW: '1000.2.3.4': not an IP address");
	ck_bad("PP_ALLOW", "127.1", "PP_ALLOW: '127.1': not an IP address");
	ck_bad("PP_ALLOW", "2130706433",
	       "PP_ALLOW: '2130706433': not an IP address");
	ck_bad("PP_ALLOW", "0x7f.0.0.1",
	       "PP_ALLOW: '0x7f.0.0.1': not an IP address");
	ck_bad("PP_ALLOW", "+1.2.3.4",
	       "PP_ALLOW: '+1.2.3.4': not an IP address");
	ck_bad("PP_ALLOW", "/8", "PP_ALLOW: '/8': not an IP address");
	ck_bad("PP_ALLOW", "localhost",
	       "PP_ALLOW: 'localhost': not an IP address");
	ck_bad("PP_ALLOW", "1::2::3", "PP_ALLOW: '1::2::3': not an IP address");
	ck_bad("PP_ALLOW", "fe80::1%eth0",
	       "PP_ALLOW: 'fe80::1%eth0': not an IP address");
	ck_bad("PP_ALLOW", "[::1]", "PP_ALLOW: '[::1]': not an IP address");
	ck_bad("PP_ALLOW", "::ffff:010.0.0.1",
	       "PP_ALLOW: '::ffff:010.0.0.1': not an IP address");
	ck_bad("PP_ALLOW", "1:2:3:4:5:6:7:8:9",
	       "PP_ALLOW: '1:2:3:4:5:6:7:8:9': not an IP address");
	ck_bad("PP_ALLOW", "12345::", "PP_ALLOW: '12345::': not an IP address");
	ck_bad("PP_ALLOW", "::1 , 10.0.0.0 /8",
	       "PP_ALLOW: '/8': not an IP address");
	ck_bad("PP_ALLOW", "10.0.0.0;10.1.0.0",
	       "PP_ALLOW: '10.0.0.0;10.1.0.0': not an IP address");

	/* The other list, same rules, its own name. */
	ck_bad("PP_DIRECT", "192.0.3.0/23",
	       "PP_DIRECT: '192.0.3.0/23': host bits set beyond prefix");
	ck_bad("PP_DIRECT", "10.0.0.1 nope",
	       "PP_DIRECT: 'nope': not an IP address");
}
END_TEST

START_TEST(test_acl_direct_api)
{
	struct pp_acl acl;

	memset(err, 0, sizeof(err));
	ck_assert_int_eq(
		pp_parse_acl(&acl, "PP_X", "1.2.3.4 ::/0", err, sizeof(err)),
		0);
	ck_assert_uint_eq(acl.n, 2);
	ck_assert_int_eq(pp_parse_acl(&acl, "PP_X", "", err, sizeof(err)), 0);
	ck_assert_uint_eq(acl.n, 0);
	ck_assert_int_eq(pp_parse_acl(&acl, "PP_X", NULL, err, sizeof(err)), 0);
	ck_assert_uint_eq(acl.n, 0);
	ck_assert_int_eq(
		pp_parse_acl(&acl, "PP_X", "1.2.3.4/40", err, sizeof(err)), -1);
	ck_assert_str_eq(err, "PP_X: '1.2.3.4/40': prefix length out of "
			      "range");
}
END_TEST

/* A list of n distinct IPv4 /32 entries, separated by sep. */
static char *
acl_list(size_t n, const char *sep)
{
	char *s = malloc(n * 24 + 1), *p = s;
	size_t i;

	ck_assert_ptr_nonnull(s);
	*p = '\0';
	for (i = 0; i < n; i++)
		p += sprintf(p, "%s10.0.%zu.%zu", i > 0 ? sep : "", i / 256,
			     i % 256);
	return s;
}

START_TEST(test_acl_limits)
{
	char *s = acl_list(PP_MAX_CIDRS, ", ");

	ck_good("PP_ALLOW", s);
	ck_assert_uint_eq(cfg.allow.n, 1024);
	ck_cidr(&cfg.allow, 1023, "::ffff:10.0.3.255", 128);
	ck_assert(allow4("10.0.3.255"));
	ck_assert(allow4("10.0.0.0"));
	ck_assert(!allow4("10.0.4.0"));
	free(s);

	s = acl_list(PP_MAX_CIDRS + 1, ",");
	ck_bad("PP_ALLOW", s,
	       "PP_ALLOW: '10.0.4.0': too many entries (max 1024)");
	free(s);

	s = acl_list(PP_MAX_CIDRS + 1, "\t");
	ck_bad("PP_DIRECT", s,
	       "PP_DIRECT: '10.0.4.0': too many entries (max 1024)");
	free(s);
}
END_TEST

START_TEST(test_acl_match)
{
	struct sockaddr_storage ss;
	socklen_t len;

	/* The default: loopback, both families. */
	ck_good("PP_ALLOW", "");
	ck_assert(allow4("127.0.0.1"));
	ck_assert(allow4("127.255.255.255"));
	ck_assert(!allow4("128.0.0.1"));
	ck_assert(!allow4("126.255.255.255"));
	ck_assert(allow6("::1"));
	ck_assert(allow6("::ffff:127.0.0.1"));
	ck_assert(!allow6("::2"));
	ck_assert(!allow6("::7f00:1"));

	/* 0.0.0.0/0: all IPv4, also v4-mapped, no IPv6. */
	ck_good("PP_ALLOW", "0.0.0.0/0");
	ck_assert(allow4("0.0.0.0"));
	ck_assert(allow4("203.0.113.9"));
	ck_assert(allow6("::ffff:203.0.113.9"));
	ck_assert(!allow6("::1"));
	ck_assert(!allow6("2001:db8::1"));

	/* ::/0: everything. */
	ck_good("PP_ALLOW", "::/0");
	ck_assert(allow6("::1"));
	ck_assert(allow6("2001:db8::1"));
	ck_assert(allow6("::ffff:10.0.0.1"));
	ck_assert(allow4("10.0.0.1"));

	/* ::ffff:0:0/96: all IPv4. */
	ck_good("PP_ALLOW", "::ffff:0:0/96");
	ck_assert(allow4("192.0.2.1"));
	ck_assert(allow6("::ffff:192.0.2.1"));
	ck_assert(!allow6("::192.0.2.1"));

	/* Host entries. */
	ck_good("PP_ALLOW", "192.0.2.7 ::1");
	ck_assert(allow4("192.0.2.7"));
	ck_assert(allow6("::ffff:192.0.2.7"));
	ck_assert(!allow4("192.0.2.8"));
	ck_assert(!allow4("192.0.2.6"));
	ck_assert(!allow4("127.0.0.1"));
	ck_assert(allow6("::1"));
	ck_assert(!allow6("::ffff:0.0.0.1"));

	/* An IPv6 spelling of an IPv4 host is the same entry. */
	ck_good("PP_ALLOW", "::ffff:192.0.2.7");
	ck_assert(allow4("192.0.2.7"));

	/* Odd prefix lengths. */
	ck_good("PP_ALLOW", "10.128.0.0/17");
	ck_assert(allow4("10.128.0.0"));
	ck_assert(allow4("10.128.127.255"));
	ck_assert(!allow4("10.128.128.0"));
	ck_assert(!allow4("10.129.0.0"));
	ck_assert(!allow4("10.0.0.1"));
	ck_good("PP_ALLOW", "2001:db8::/121");
	ck_assert(allow6("2001:db8::"));
	ck_assert(allow6("2001:db8::7f"));
	ck_assert(!allow6("2001:db8::80"));
	ck_assert(!allow6("2001:db9::1"));
	ck_good("PP_ALLOW", "128.0.0.0/1 fe80::/10");
	ck_assert(allow4("200.1.1.1"));
	ck_assert(!allow4("100.1.1.1"));
	ck_assert(allow6("febf::1"));
	ck_assert(!allow6("fec0::1"));
	ck_good("PP_ALLOW", "192.0.2.6/31");
	ck_assert(allow4("192.0.2.6"));
	ck_assert(allow4("192.0.2.7"));
	ck_assert(!allow4("192.0.2.8"));

	/* Several entries: any one. */
	ck_good("PP_ALLOW", "10.0.0.0/8, fd00::/8");
	ck_assert(allow6("fd12::1"));
	ck_assert(allow4("10.255.0.1"));
	ck_assert(!allow4("11.0.0.0"));
	ck_assert(!allow6("fe00::1"));

	/* The first entry that holds the source, as a 128-bit prefix. */
	ck_good("PP_ALLOW", "10.1.0.0/16, 10.0.0.0/8, ::/0, fd00::/8");
	len = sa4(&ss, "10.1.2.3", 1);
	ck_assert_int_eq(pp_acl_find(&cfg.allow, (struct sockaddr *)&ss, len),
			 96 + 16);
	len = sa4(&ss, "10.2.2.3", 1);
	ck_assert_int_eq(pp_acl_find(&cfg.allow, (struct sockaddr *)&ss, len),
			 96 + 8);
	len = sa6(&ss, "::ffff:10.1.0.9", 1);
	ck_assert_int_eq(pp_acl_find(&cfg.allow, (struct sockaddr *)&ss, len),
			 96 + 16);
	len = sa6(&ss, "fd00::1", 1);
	ck_assert_int_eq(pp_acl_find(&cfg.allow, (struct sockaddr *)&ss, len),
			 0);
	ck_good("PP_ALLOW", "10.0.0.0/8");
	len = sa4(&ss, "11.0.0.1", 1);
	ck_assert_int_eq(pp_acl_find(&cfg.allow, (struct sockaddr *)&ss, len),
			 -1);
	ck_assert_int_eq(pp_acl_find(&cfg.allow, NULL, len), -1);

	/* Not an IP source, or not a whole one. */
	ck_good("PP_ALLOW", "::/0");
	len = saun(&ss, "/run/x", false);
	ck_assert(!pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, len));
	len = sa4(&ss, "10.0.0.1", 1);
	ck_assert(pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, len));
	ck_assert(!pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, len - 1));
	ck_assert(!pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, 0));
	ck_assert(!pp_acl_match(&cfg.allow, NULL, len));
	ss.ss_family = AF_UNSPEC;
	ck_assert(
		!pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, sizeof(ss)));
	len = sa6(&ss, "::1", 1);
	ck_assert(pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, len));
	ck_assert(!pp_acl_match(&cfg.allow, (struct sockaddr *)&ss, len - 1));

	/* An empty list matches nothing. */
	ck_assert_uint_eq(cfg.direct.n, 0);
	ck_assert(!pp_acl_match(&cfg.direct, (struct sockaddr *)&ss, len));
}
END_TEST

/* ===== PP_PORTS ===== */

START_TEST(test_ports_valid)
{
	uint8_t a[16];

	ck_good("PP_PORTS", "80, 10.0.0.1:8080 [::1]:8443/tcp 53/udp "
			    "unix:/run/app.sock unix:@ctl 0.0.0.0:25 [::]:25 "
			    "080 65535 1/udp unix:/srv/tcp/tcp "
			    "[::ffff:192.0.2.1]:443");
	ck_assert_uint_eq(cfg.nports, 13);

	ck_assert(cfg.ports[0].any_addr);
	ck_assert(!cfg.ports[0].is_unix);
	ck_assert_uint_eq(cfg.ports[0].port, 80);
	ck_assert_int_eq(cfg.ports[0].socktype, SOCK_STREAM);

	ck_assert(!cfg.ports[1].any_addr);
	ck_assert_uint_eq(cfg.ports[1].port, 8080);
	inet_pton(AF_INET6, "::ffff:10.0.0.1", a);
	ck_assert(memcmp(cfg.ports[1].addr, a, 16) == 0);

	ck_assert(!cfg.ports[2].any_addr);
	ck_assert_uint_eq(cfg.ports[2].port, 8443);
	ck_assert_int_eq(cfg.ports[2].socktype, SOCK_STREAM);
	inet_pton(AF_INET6, "::1", a);
	ck_assert(memcmp(cfg.ports[2].addr, a, 16) == 0);

	ck_assert(cfg.ports[3].any_addr);
	ck_assert_uint_eq(cfg.ports[3].port, 53);
	ck_assert_int_eq(cfg.ports[3].socktype, SOCK_DGRAM);

	ck_assert(cfg.ports[4].is_unix);
	ck_assert_str_eq(cfg.ports[4].path, "/run/app.sock");
	ck_assert_int_eq(cfg.ports[4].socktype, SOCK_STREAM);
	ck_assert(cfg.ports[5].is_unix);
	ck_assert_str_eq(cfg.ports[5].path, "@ctl");

	ck_assert(!cfg.ports[6].any_addr);
	inet_pton(AF_INET6, "::ffff:0.0.0.0", a);
	ck_assert(memcmp(cfg.ports[6].addr, a, 16) == 0);
	ck_assert(!cfg.ports[7].any_addr);
	inet_pton(AF_INET6, "::", a);
	ck_assert(memcmp(cfg.ports[7].addr, a, 16) == 0);

	ck_assert_uint_eq(cfg.ports[8].port, 80);
	ck_assert_uint_eq(cfg.ports[9].port, 65535);
	ck_assert_uint_eq(cfg.ports[10].port, 1);
	ck_assert_int_eq(cfg.ports[10].socktype, SOCK_DGRAM);
	ck_assert_str_eq(cfg.ports[11].path, "/srv/tcp");
	inet_pton(AF_INET6, "::ffff:192.0.2.1", a);
	ck_assert(memcmp(cfg.ports[12].addr, a, 16) == 0);
}
END_TEST

START_TEST(test_ports_invalid)
{
	char v[200], want[PP_ERRMSG_MAX];

	ck_bad("PP_PORTS", "0", "PP_PORTS: '0': port out of range");
	ck_bad("PP_PORTS", "65536", "PP_PORTS: '65536': port out of range");
	ck_bad("PP_PORTS", "10.0.0.1:0",
	       "PP_PORTS: '10.0.0.1:0': port out of range");
	ck_bad("PP_PORTS", "99999999999999999999/udp",
	       "PP_PORTS: '99999999999999999999/udp': port out of range");
	ck_bad("PP_PORTS", "http", "PP_PORTS: 'http': port not a number");
	ck_bad("PP_PORTS", "80x", "PP_PORTS: '80x': port not a number");
	ck_bad("PP_PORTS", "-1", "PP_PORTS: '-1': port not a number");
	ck_bad("PP_PORTS", "[::1]:+80",
	       "PP_PORTS: '[::1]:+80': port not a number");
	ck_bad("PP_PORTS", "10.0.0.1:", "PP_PORTS: '10.0.0.1:': missing port");
	ck_bad("PP_PORTS", "/tcp", "PP_PORTS: '/tcp': missing port");
	ck_bad("PP_PORTS", "[::1]", "PP_PORTS: '[::1]': missing port");
	ck_bad("PP_PORTS", "[::1]:", "PP_PORTS: '[::1]:': missing port");
	ck_bad("PP_PORTS", "[::1]80", "PP_PORTS: '[::1]80': missing port");
	ck_bad("PP_PORTS", "::1:80",
	       "PP_PORTS: '::1:80': IPv6 address needs brackets");
	ck_bad("PP_PORTS", "fe80::1",
	       "PP_PORTS: 'fe80::1': IPv6 address needs brackets");
	ck_bad("PP_PORTS", "*:80",
	       "PP_PORTS: '*:80': write the port alone for any address");
	ck_bad("PP_PORTS", "localhost:80",
	       "PP_PORTS: 'localhost:80': not an IP address");
	ck_bad("PP_PORTS", ":80", "PP_PORTS: ':80': not an IP address");
	ck_bad("PP_PORTS", "10.0.0.256:80",
	       "PP_PORTS: '10.0.0.256:80': not an IP address");
	ck_bad("PP_PORTS", "[10.0.0.1]:80",
	       "PP_PORTS: '[10.0.0.1]:80': not an IPv6 address");
	ck_bad("PP_PORTS", "[]:80", "PP_PORTS: '[]:80': not an IPv6 address");
	ck_bad("PP_PORTS", "[fe80::1%lo]:80",
	       "PP_PORTS: '[fe80::1%lo]:80': not an IPv6 address");
	ck_bad("PP_PORTS", "[::1:80", "PP_PORTS: '[::1:80': missing ']'");
	ck_bad("PP_PORTS", "80/sctp",
	       "PP_PORTS: '80/sctp': unknown protocol (want tcp or udp)");
	ck_bad("PP_PORTS", "80/",
	       "PP_PORTS: '80/': unknown protocol (want tcp or udp)");
	ck_bad("PP_PORTS", "80/TCP",
	       "PP_PORTS: '80/TCP': unknown protocol (want tcp or udp)");
	ck_bad("PP_PORTS", "80/tcp/udp",
	       "PP_PORTS: '80/tcp/udp': unknown protocol (want tcp or udp)");
	ck_bad("PP_PORTS", "27015/tcp+spp",
	       "PP_PORTS: '27015/tcp+spp': SPP is for datagrams only (want "
	       "udp+spp)");
	ck_bad("PP_PORTS", "27015+spp",
	       "PP_PORTS: '27015+spp': port not a number");
	ck_bad("PP_PORTS", "27015/udp+",
	       "PP_PORTS: '27015/udp+': unknown datagram header (want "
	       "udp+spp)");
	ck_bad("PP_PORTS", "27015/udp+SPP",
	       "PP_PORTS: '27015/udp+SPP': unknown datagram header (want "
	       "udp+spp)");
	ck_bad("PP_PORTS", "27015/udp+v2",
	       "PP_PORTS: '27015/udp+v2': unknown datagram header (want "
	       "udp+spp)");
	ck_bad("PP_PORTS", "27015/udp+spp+spp",
	       "PP_PORTS: '27015/udp+spp+spp': unknown datagram header (want "
	       "udp+spp)");
	ck_bad("PP_PORTS", "27015/+spp",
	       "PP_PORTS: '27015/+spp': unknown protocol (want tcp or udp)");
	ck_bad("PP_PORTS", "27015/tcp+x",
	       "PP_PORTS: '27015/tcp+x': unknown protocol (want tcp or udp)");
	ck_bad("PP_PORTS", "unix:/run/dns.sock/udp",
	       "PP_PORTS: 'unix:/run/dns.sock/udp': UNIX entries are stream "
	       "only");
	ck_bad("PP_PORTS", "unix:run/app.sock",
	       "PP_PORTS: 'unix:run/app.sock': path must be absolute (or "
	       "@name)");
	ck_bad("PP_PORTS",
	       "unix:", "PP_PORTS: 'unix:': path must be absolute (or @name)");
	ck_bad("PP_PORTS", "unix:/tcp",
	       "PP_PORTS: 'unix:/tcp': path must be absolute (or @name)");
	ck_bad("PP_PORTS", "unix:@", "PP_PORTS: 'unix:@': empty abstract name");

	/* The longest path that fits sun_path with its NUL is 107 bytes. */
	memcpy(v, "unix:/", 6);
	memset(v + 6, 'p', 106);
	v[112] = '\0';
	ck_good("PP_PORTS", v);
	ck_assert_uint_eq(strlen(cfg.ports[0].path), 107);
	v[112] = 'p';
	v[113] = '\0';
	snprintf(want, sizeof(want),
		 "PP_PORTS: '%.61s...': path too long (max 107 bytes)", v);
	ck_bad("PP_PORTS", v, want);
	v[5] = '@';
	snprintf(want, sizeof(want),
		 "PP_PORTS: '%.61s...': path too long (max 107 bytes)", v);
	ck_bad("PP_PORTS", v, want);
	v[112] = '\0';
	ck_good("PP_PORTS", v);
}
END_TEST

START_TEST(test_ports_limits)
{
	char v[600], *p = v;
	unsigned i;

	for (i = 1; i <= PP_MAX_PORTS; i++)
		p += sprintf(p, "%s%u", i > 1 ? " " : "", i);
	ck_good("PP_PORTS", v);
	ck_assert_uint_eq(cfg.nports, 64);
	ck_assert_uint_eq(cfg.ports[63].port, 64);
	sprintf(p, ",,65/udp");
	ck_bad("PP_PORTS", v, "PP_PORTS: '65/udp': too many entries (max 64)");

	memset(err, 0, sizeof(err));
	ck_assert_int_eq(pp_parse_ports(&cfg, "1 2 3", err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.nports, 3);
	ck_assert_int_eq(pp_parse_ports(&cfg, NULL, err, sizeof(err)), 0);
	ck_assert_uint_eq(cfg.nports, 0);
}
END_TEST

START_TEST(test_ports_match_inet)
{
	/* No entry: nothing matches. */
	ck_good("PP_PORTS", "");
	ck_assert(!port4(SOCK_STREAM, "0.0.0.0", 80));

	/* A port alone: any local address, wildcards included. */
	ck_good("PP_PORTS", "80");
	ck_assert(port4(SOCK_STREAM, "0.0.0.0", 80));
	ck_assert(port4(SOCK_STREAM, "10.0.0.1", 80));
	ck_assert(port6(SOCK_STREAM, "::", 80));
	ck_assert(port6(SOCK_STREAM, "2001:db8::1", 80));
	ck_assert(port4(SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, "10.0.0.1",
			80));
	ck_assert(!port4(SOCK_STREAM, "10.0.0.1", 81));
	ck_assert(!port4(SOCK_DGRAM, "10.0.0.1", 80));
	ck_assert(!port6(SOCK_DGRAM, "::", 80));

	/* An address: exactly that one, IPv4 also v4-mapped. */
	ck_good("PP_PORTS", "10.0.0.1:80");
	ck_assert(port4(SOCK_STREAM, "10.0.0.1", 80));
	ck_assert(port6(SOCK_STREAM, "::ffff:10.0.0.1", 80));
	ck_assert(!port4(SOCK_STREAM, "10.0.0.2", 80));
	ck_assert(!port4(SOCK_STREAM, "0.0.0.0", 80));
	ck_assert(!port6(SOCK_STREAM, "::", 80));
	ck_assert(!port4(SOCK_STREAM, "10.0.0.1", 8080));

	/* The wildcard addresses are addresses like the others. */
	ck_good("PP_PORTS", "0.0.0.0:25");
	ck_assert(port4(SOCK_STREAM, "0.0.0.0", 25));
	ck_assert(!port4(SOCK_STREAM, "10.0.0.1", 25));
	ck_assert(!port6(SOCK_STREAM, "::", 25));
	ck_good("PP_PORTS", "[::]:25");
	ck_assert(port6(SOCK_STREAM, "::", 25));
	ck_assert(!port4(SOCK_STREAM, "0.0.0.0", 25));
	ck_assert(!port6(SOCK_STREAM, "::1", 25));

	/* IPv6 hosts, with a transport. */
	ck_good("PP_PORTS", "[::1]:8443/tcp [2001:db8::53]:53/udp");
	ck_assert(port6(SOCK_STREAM, "::1", 8443));
	ck_assert(!port6(SOCK_DGRAM, "::1", 8443));
	ck_assert(port6(SOCK_DGRAM, "2001:db8::53", 53));
	ck_assert(!port6(SOCK_STREAM, "2001:db8::53", 53));
	ck_assert(!port4(SOCK_STREAM, "127.0.0.1", 8443));

	/* tcp and udp on one port are two entries. */
	ck_good("PP_PORTS", "53/udp");
	ck_assert(port4(SOCK_DGRAM, "0.0.0.0", 53));
	ck_assert(!port4(SOCK_STREAM, "0.0.0.0", 53));
	ck_good("PP_PORTS", "53/udp 53");
	ck_assert(port4(SOCK_DGRAM, "0.0.0.0", 53));
	ck_assert(port4(SOCK_STREAM, "0.0.0.0", 53));
	ck_assert(!port4(SOCK_SEQPACKET, "0.0.0.0", 53));
}
END_TEST

/* /udp+spp: a datagram entry that says SPP; the first entry that
 * matches a socket is the one that decides. */
START_TEST(test_ports_spp)
{
	struct sockaddr_storage ss;
	const struct pp_port *p;
	socklen_t len;

	ck_good("PP_PORTS", "27015/udp+spp 53/udp [::1]:5353/udp+spp 80");
	ck_assert_uint_eq(cfg.nports, 4);
	ck_assert(cfg.ports[0].spp);
	ck_assert_int_eq(cfg.ports[0].socktype, SOCK_DGRAM);
	ck_assert_uint_eq(cfg.ports[0].port, 27015);
	ck_assert(!cfg.ports[1].spp);
	ck_assert(cfg.ports[2].spp);
	ck_assert(!cfg.ports[3].spp);
	ck_assert(port4(SOCK_DGRAM, "0.0.0.0", 27015));
	ck_assert(!port4(SOCK_STREAM, "0.0.0.0", 27015));
	ck_assert(port6(SOCK_DGRAM, "::1", 5353));
	len = sa4(&ss, "127.0.0.1", 27015);
	p = pp_config_find(&cfg, SOCK_DGRAM, (struct sockaddr *)&ss, len);
	ck_assert_ptr_nonnull(p);
	ck_assert(p->spp);
	len = sa4(&ss, "127.0.0.1", 53);
	p = pp_config_find(&cfg, SOCK_DGRAM, (struct sockaddr *)&ss, len);
	ck_assert_ptr_nonnull(p);
	ck_assert(!p->spp);
	len = sa4(&ss, "127.0.0.1", 80);
	ck_assert_ptr_null(
		pp_config_find(&cfg, SOCK_DGRAM, (struct sockaddr *)&ss, len));

	/* in list order: the address entry first, then the port alone */
	ck_good("PP_PORTS", "127.0.0.2:9000/udp+spp 9000/udp");
	len = sa4(&ss, "127.0.0.2", 9000);
	p = pp_config_find(&cfg, SOCK_DGRAM, (struct sockaddr *)&ss, len);
	ck_assert(p != NULL && p->spp);
	len = sa4(&ss, "127.0.0.3", 9000);
	p = pp_config_find(&cfg, SOCK_DGRAM, (struct sockaddr *)&ss, len);
	ck_assert(p != NULL && !p->spp);
}
END_TEST

START_TEST(test_ports_match_edge)
{
	struct sockaddr_storage ss;
	socklen_t len;

	ck_good("PP_PORTS", "80 unix:/run/app.sock");
	len = sa4(&ss, "10.0.0.1", 80);
	ck_assert(pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				  len));
	ck_assert(!pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				   len - 1));
	ck_assert(!pp_config_match(&cfg, SOCK_STREAM, NULL, len));
	ck_assert(
		!pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss, 0));
	len = sa6(&ss, "::", 80);
	ck_assert(!pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				   len - 1));
	ss.ss_family = AF_UNSPEC;
	ck_assert(!pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				   sizeof(ss)));
}
END_TEST

START_TEST(test_ports_match_unix)
{
	struct sockaddr_storage ss;
	socklen_t len;

	ck_good("PP_PORTS", "unix:/run/app.sock unix:@ctl 8080");
	ck_assert(portun(SOCK_STREAM, "/run/app.sock", false));
	ck_assert(portun(SOCK_STREAM, "/run/app.sock", true));
	ck_assert(!portun(SOCK_DGRAM, "/run/app.sock", false));
	ck_assert(!portun(SOCK_SEQPACKET, "/run/app.sock", false));
	ck_assert(!portun(SOCK_STREAM, "/run/app.sock2", false));
	ck_assert(!portun(SOCK_STREAM, "/run/app", false));
	ck_assert(!portun(SOCK_STREAM, "run/app.sock", false));
	ck_assert(!portun(SOCK_STREAM, "/run/other.sock", true));

	/* A path without its NUL in the length. */
	len = saun(&ss, "/run/app.sock", false);
	ck_assert(pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				  len - 1));
	ck_assert(!pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				   len - 2));
	/* Unnamed. */
	ck_assert(!pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				   sizeof(sa_family_t)));

	/* Abstract, exact or padded with NULs. */
	ck_assert(portun(SOCK_STREAM, "@ctl", false));
	ck_assert(portun(SOCK_STREAM, "@ctl", true));
	ck_assert(!portun(SOCK_STREAM, "@ctl2", false));
	ck_assert(!portun(SOCK_STREAM, "@ct", false));
	ck_assert(!portun(SOCK_STREAM, "@ct", true));
	ck_assert(!portun(SOCK_STREAM, "/ctl", false));
	/* A file whose name starts with '@' is not the abstract one. */
	len = saun(&ss, "/x", false);
	memcpy(((struct sockaddr_un *)&ss)->sun_path, "@ctl", 5);
	ck_assert(!pp_config_match(&cfg, SOCK_STREAM, (struct sockaddr *)&ss,
				   len + 3));

	/* A UNIX entry never matches an IP socket and the reverse. */
	ck_good("PP_PORTS", "unix:/run/app.sock");
	ck_assert(!port4(SOCK_STREAM, "0.0.0.0", 80));
	ck_good("PP_PORTS", "80");
	ck_assert(!portun(SOCK_STREAM, "/run/app.sock", false));
}
END_TEST

/* ===== A whole configuration ===== */

START_TEST(test_full)
{
	env_clear();
	env_set("PP_PORTS", "25 [::1]:53/udp unix:/run/smtpd.sock");
	env_set("PP_ALLOW", "10.0.0.0/8");
	env_set("PP_DIRECT", "192.0.2.10");
	env_set("PP_TIMEOUT_MS", "10000");
	env_set("PP_VERSIONS", "2");
	env_set("PP_SOCKNAME", "real");
	env_set("PP_LOG", "debug");
	env_set("PP_LOG_TARGET", "syslog");
	env_set("PP_V2_DRAFT", "1");
	env_set("PP_INHERIT", "1");
	ck_assert_int_eq(parse_env(), 0);
	ck_assert_uint_eq(cfg.nports, 3);
	ck_assert_uint_eq(cfg.allow.n, 1);
	ck_assert_uint_eq(cfg.direct.n, 1);
	ck_assert_uint_eq(cfg.timeout_ms, 10000);
	ck_assert_uint_eq(cfg.versions, PP_ACCEPT_V2 | PP_ACCEPT_DRAFT);
	ck_assert(cfg.sockname_real);
	ck_assert_int_eq(cfg.log_level, PP_LOG_DEBUG);
	ck_assert_int_eq(cfg.log_target, PP_TARGET_SYSLOG);
	ck_assert(cfg.v2_draft);
	ck_assert(cfg.inherit);
	ck_assert(!allow4("127.0.0.1"));
	ck_assert(allow4("10.1.2.3"));
}
END_TEST

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;

	tc = tcase_create("values");
	tcase_add_test(tc, test_defaults_unset);
	tcase_add_test(tc, test_defaults_empty);
	tcase_add_test(tc, test_loglevel_name);
	tcase_add_test(tc, test_timeout);
	tcase_add_test(tc, test_versions);
	tcase_add_test(tc, test_draft);
	tcase_add_test(tc, test_keywords);
	tcase_add_test(tc, test_error_quoting);
	tcase_add_test(tc, test_first_error_wins);
	tcase_add_test(tc, test_full);
	suite_add_tcase(s, tc);

	tc = tcase_create("acl");
	tcase_add_test(tc, test_acl_valid);
	tcase_add_test(tc, test_acl_invalid);
	tcase_add_test(tc, test_acl_direct_api);
	tcase_add_test(tc, test_acl_limits);
	tcase_add_test(tc, test_acl_match);
	suite_add_tcase(s, tc);

	tc = tcase_create("ports");
	tcase_add_test(tc, test_ports_valid);
	tcase_add_test(tc, test_ports_invalid);
	tcase_add_test(tc, test_ports_limits);
	tcase_add_test(tc, test_ports_match_inet);
	tcase_add_test(tc, test_ports_match_edge);
	tcase_add_test(tc, test_ports_spp);
	tcase_add_test(tc, test_ports_match_unix);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pp_suite_run(config_suite(), NULL);
}
