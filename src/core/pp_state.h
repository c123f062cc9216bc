/*
 * pp_state.h - the state file: the layout of the per-process counters
 * file that the library writes and `ppshim status` reads.
 *
 * One file per process, <dir>/ppshim-<pid>.state (dir: PP_STATE_DIR, else
 * /run/ppshim), mapped MAP_SHARED by the library, read by anyone allowed
 * to.  The layout is fixed and versioned: a reader checks magic, version
 * and size before it trusts anything else.  Each listener slot is claimed
 * once (used: 0 free, 1 being filled, 2 ready) and then only its counters
 * change, by relaxed atomic adds; a reader takes each counter with one
 * atomic load and never sees a torn value.  Little else is promised: the
 * counters of one slot are not read as a consistent set.
 *
 * Pure helpers below (no I/O): the counter names, the class of a parser
 * error, the configuration text, the start time of a process.
 */
#ifndef PP_STATE_H
#define PP_STATE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pp_parse.h"

#define PP_STATE_MAGIC "PPSHIMST" /* 8 bytes, no NUL */
#define PP_STATE_VERSION 1u
#define PP_STATE_SLOTS 32    /* listeners per process; more are not counted */
#define PP_STATE_CONFIG 2048 /* PP_* values as loaded, NUL-terminated */
#define PP_STATE_ADDR 120    /* "ADDR:PORT" or "unix:/path", NUL-terminated */
#define PP_STATE_COUNTERS 24 /* room per slot; PP_ST_N are in use */

/* Counter indexes: fixed, a new one only takes a new index. */
enum pp_stat {
	PP_ST_PROXIED_V1 = 0, /* PROXY header v1, accepted */
	PP_ST_PROXIED_V2,     /* PROXY header v2 (or draft), accepted */
	PP_ST_LOCAL,          /* LOCAL, UNKNOWN, UNSPEC: real addresses */
	PP_ST_DIRECT,         /* PP_DIRECT source, passed untouched */
	PP_ST_UNTRUSTED,      /* source in neither list: refused */
	PP_ST_BAD_SIGNATURE,  /* not a PROXY header at all */
	PP_ST_BAD_VERSION,    /* a version PP_VERSIONS does not accept */
	PP_ST_BAD_SYNTAX,     /* malformed fields, command or addresses */
	PP_ST_BAD_FAMILY,     /* family/transport invalid or unusable here */
	PP_ST_BAD_TRUNCATED,  /* closed or failed before the header ended */
	PP_ST_BAD_TOO_LONG,   /* longer than the protocol allows */
	PP_ST_BAD_TLV,        /* TLV area or length malformed */
	PP_ST_CRC,            /* v2 CRC32C TLV mismatch */
	PP_ST_TIMEOUT,        /* no complete header within PP_TIMEOUT_MS */
	PP_ST_DROPPED,        /* UDP: datagrams dropped */
	PP_ST_ROUTED,         /* UDP: replies routed back to the proxy */
	PP_ST_PENDING,        /* gauge: connections waiting for a header */
	PP_ST_PROXIED_SPP,    /* UDP: SPP header, accepted */
	PP_ST_N
};

/* Transports of a slot. */
enum pp_state_tp { PP_STATE_TCP = 1, PP_STATE_UDP = 2, PP_STATE_UNIX = 3 };

struct pp_state_slot {
	_Atomic uint32_t used;    /* 0 free, 1 being filled, 2 ready */
	uint32_t transport;       /* enum pp_state_tp */
	char addr[PP_STATE_ADDR]; /* the local address, as text */
	_Atomic uint64_t c[PP_STATE_COUNTERS];
};

struct pp_state_file {
	char magic[8];      /* PP_STATE_MAGIC */
	uint32_t version;   /* PP_STATE_VERSION */
	uint32_t size;      /* sizeof(struct pp_state_file) */
	uint32_t nslots;    /* PP_STATE_SLOTS */
	uint32_t ncounters; /* PP_STATE_COUNTERS */
	int32_t pid;        /* the process that made the file */
	uint32_t reserved;
	uint64_t start_ticks; /* its start time, /proc/PID/stat field 22 */
	int64_t created;      /* when the file was made, Unix seconds */
	char config[PP_STATE_CONFIG];
	struct pp_state_slot slot[PP_STATE_SLOTS];
};

/* The key of counter i in `ppshim status --json` ("proxied_v1"...),
 * NULL when i >= PP_ST_N. */
const char *pp_stat_name(unsigned i);

/* The counter an invalid header with parser error err goes to:
 * PP_ST_CRC for a CRC mismatch, PP_ST_BAD_* otherwise (PP_OK, a
 * connection that ended or failed first, is PP_ST_BAD_TRUNCATED). */
enum pp_stat pp_stat_of_error(enum pp_err err);

/*
 * The configuration as text: one "NAME=value\n" line for each PP_*
 * variable get() returns a value for, in a fixed order, into
 * out[0..cap) (NUL-terminated; a line that does not fit is cut and
 * ends with "...\n").  Returns the length written.
 */
size_t pp_state_config_text(const char *(*get)(const char *), char *out,
			    size_t cap);

/* Is map[0..len) a state file this reader understands (magic, version,
 * size, slot and counter counts)? */
bool pp_state_valid(const void *map, size_t len);

/*
 * The start time of a process from the text of /proc/PID/stat
 * (buf[0..len)): field 22, after the command in parentheses.  Returns
 * 0 when it cannot be found.
 */
uint64_t pp_state_starttime(const char *buf, size_t len);

/* The file name of process pid's state file in dir into out[0..cap);
 * false when it does not fit. */
bool pp_state_path(const char *dir, long pid, char *out, size_t cap);

#endif /* PP_STATE_H */
