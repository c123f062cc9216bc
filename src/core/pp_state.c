/*
 * pp_state.c - the pure helpers of the state file (pp_state.h): counter
 * names, error classes, the configuration text, a process's start time.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "pp_state.h"

/* clang-format off */
static const char *const pp_stat_names[PP_ST_N] = {
	[PP_ST_PROXIED_V1] = "proxied_v1",
	[PP_ST_PROXIED_V2] = "proxied_v2",
	[PP_ST_LOCAL] = "local",
	[PP_ST_DIRECT] = "direct",
	[PP_ST_UNTRUSTED] = "untrusted",
	[PP_ST_BAD_SIGNATURE] = "bad_signature",
	[PP_ST_BAD_VERSION] = "bad_version",
	[PP_ST_BAD_SYNTAX] = "bad_syntax",
	[PP_ST_BAD_FAMILY] = "bad_family",
	[PP_ST_BAD_TRUNCATED] = "bad_truncated",
	[PP_ST_BAD_TOO_LONG] = "bad_too_long",
	[PP_ST_BAD_TLV] = "bad_tlv",
	[PP_ST_CRC] = "crc_mismatch",
	[PP_ST_TIMEOUT] = "timed_out",
	[PP_ST_DROPPED] = "dgram_dropped",
	[PP_ST_ROUTED] = "replies_routed",
	[PP_ST_PENDING] = "pending",
	[PP_ST_PROXIED_SPP] = "proxied_spp",
};

/* The variables the configuration text shows, in this order. */
static const char *const pp_state_vars[] = {
	"PP_PORTS", "PP_ALLOW", "PP_DIRECT", "PP_TIMEOUT_MS", "PP_VERSIONS",
	"PP_SOCKNAME", "PP_LOG", "PP_LOG_TARGET", "PP_V2_DRAFT",
	"PP_INHERIT", "PP_STATE_DIR",
};
/* clang-format on */

const char *
pp_stat_name(unsigned i)
{
	return i < PP_ST_N ? pp_stat_names[i] : NULL;
}

enum pp_stat
pp_stat_of_error(enum pp_err err)
{
	switch (err) {
	case PP_E_SIGNATURE:
		return PP_ST_BAD_SIGNATURE;
	case PP_E_VERSION:
		return PP_ST_BAD_VERSION;
	case PP_E_V1_SYNTAX:
	case PP_E_V1_ADDR:
	case PP_E_V1_PORT:
	case PP_E_V2_COMMAND:
	case PP_E_V2_ADDR:
		return PP_ST_BAD_SYNTAX;
	case PP_E_V2_FAMILY:
		return PP_ST_BAD_FAMILY;
	case PP_E_V1_TOO_LONG:
	case PP_E_TOO_LONG:
		return PP_ST_BAD_TOO_LONG;
	case PP_E_V2_LENGTH:
	case PP_E_V2_TLV:
		return PP_ST_BAD_TLV;
	case PP_E_V2_CRC:
		return PP_ST_CRC;
	case PP_OK:
	case PP_E_TRUNCATED:
		break;
	}
	return PP_ST_BAD_TRUNCATED;
}

size_t
pp_state_config_text(const char *(*get)(const char *), char *out, size_t cap)
{
	size_t i, o = 0, n;
	const char *v;
	char line[PP_STATE_CONFIG];

	if (cap == 0)
		return 0;
	out[0] = '\0';
	for (i = 0; i < sizeof(pp_state_vars) / sizeof(pp_state_vars[0]); i++) {
		v = get(pp_state_vars[i]);
		if (v == NULL)
			continue;
		n = (size_t)snprintf(line, sizeof(line), "%s=%s\n",
				     pp_state_vars[i], v);
		if (n >= sizeof(line))
			n = sizeof(line) - 1;
		if (o + n >= cap) {
			/* Cut: as much as fits, then "...\n". */
			if (cap - o > 5) {
				n = cap - o - 5;
				memcpy(out + o, line, n);
				memcpy(out + o + n, "...\n", 5);
				o += n + 4;
			}
			break;
		}
		memcpy(out + o, line, n + 1);
		o += n;
	}
	return o;
}

bool
pp_state_valid(const void *map, size_t len)
{
	const struct pp_state_file *f = map;

	return len >= sizeof(*f) &&
	       memcmp(f->magic, PP_STATE_MAGIC, sizeof(f->magic)) == 0 &&
	       f->version == PP_STATE_VERSION && f->size == sizeof(*f) &&
	       f->nslots == PP_STATE_SLOTS && f->ncounters == PP_STATE_COUNTERS;
}

uint64_t
pp_state_starttime(const char *buf, size_t len)
{
	const char *p = NULL, *end = buf + len;
	uint64_t v = 0;
	size_t i;
	int field;

	/* The command may hold spaces and parentheses: the last ')'. */
	for (i = 0; i < len; i++)
		if (buf[i] == ')')
			p = buf + i;
	if (p == NULL)
		return 0;
	/* After ')' come fields 3, 4, ...: field 22 is the 20th. */
	p++;
	for (field = 2; field < 22; field++) {
		while (p < end && *p == ' ')
			p++;
		if (field == 21)
			break;
		while (p < end && *p != ' ')
			p++;
	}
	if (p >= end || *p < '0' || *p > '9')
		return 0;
	while (p < end && *p >= '0' && *p <= '9')
		v = v * 10 + (uint64_t)(*p++ - '0');
	return v;
}

bool
pp_state_path(const char *dir, long pid, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/ppshim-%ld.state", dir, pid);

	return n > 0 && (size_t)n < cap;
}
