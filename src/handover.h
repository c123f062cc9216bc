/*
 * handover.h - carrying advertised addresses across exec.
 *
 * When a process that knows the advertised addresses of a connection
 * execs a program (inetd, tcpserver, sshd's re-exec, a fork+exec
 * server), the execve hook describes every connection the new image
 * inherits in one environment variable, PPSHIM_HANDOVER, added to the
 * environment the program passes to exec (so it survives programs that
 * build a fresh environment for the child).  The library in the new image
 * reads it at load and takes each entry only when the descriptor named
 * in it is still the very socket it describes: the entry carries the
 * socket's SO_COOKIE, which the kernel never reuses.  A stale or forged
 * entry therefore cannot make an unrelated socket report an advertised
 * address.
 *
 * Value: entries separated by ';', each
 *   FD,COOKIE,FLAGS,SRC,DST[,TLV=HEX]...
 * with COOKIE in hex, FLAGS a bit set (1: has source, 2: has destination;
 * 0: the header was read and the real addresses stand),
 * SRC and DST the sockaddr bytes in hex (empty when absent), and TLV one
 * of the exported TLV names (authority, alpn, unique_id, ssl_version,
 * ssl_cn, ssl_cipher) with its value bytes in hex.
 */
#ifndef PP_HANDOVER_H
#define PP_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fdtab.h"

#define PP_HANDOVER_VAR "PPSHIM_HANDOVER"

/* The TLVs a per-connection program can use (PP_TLV_* variables). */
enum pp_tlvname {
	PP_XTLV_AUTHORITY,
	PP_XTLV_ALPN,
	PP_XTLV_UNIQUE_ID,
	PP_XTLV_SSL_VERSION,
	PP_XTLV_SSL_CN,
	PP_XTLV_SSL_CIPHER,
	PP_XTLV_COUNT
};

#define PP_XTLV_MAX 255 /* longest value kept */

struct pp_tlvset {
	uint16_t len[PP_XTLV_COUNT];
	bool present[PP_XTLV_COUNT];
	uint8_t val[PP_XTLV_COUNT][PP_XTLV_MAX];
};

/* One inherited connection. */
struct pp_handover {
	int fd;
	struct pp_fdinfo info; /* kind PP_FD_CONN, cookie, src, dst */
	struct pp_tlvset tlvs;
};

/* "authority", ... and "PP_TLV_AUTHORITY", ... */
const char *pp_tlv_label(enum pp_tlvname t);
const char *pp_tlv_envname(enum pp_tlvname t);

/*
 * Fill *t from a validated v2 TLV area (values longer than PP_XTLV_MAX
 * are cut there).
 */
void pp_tlvset_from_area(struct pp_tlvset *t, const uint8_t *tlv,
			 size_t tlv_len);

/*
 * Append the entry for h to out (NUL-terminated, at most cap bytes in
 * all, a ';' first when out is not empty).  Returns false when it does
 * not fit (out unchanged).
 */
bool pp_handover_append(char *out, size_t cap, const struct pp_handover *h);

/*
 * Parse value, calling take() for each well-formed entry (malformed ones
 * are skipped).  Returns the number of entries passed to take().
 */
size_t pp_handover_parse(const char *value,
			 void (*take)(const struct pp_handover *h, void *arg),
			 void *arg);

/*
 * The PP_TLV_* value for a TLV: the bytes when all are printable ASCII
 * (0x20..0x7e), else "hex:" and the bytes in hex.  Writes at most cap
 * bytes including the NUL.
 */
void pp_tlv_envvalue(const uint8_t *v, size_t len, char *out, size_t cap);

/*
 * An environment that pp_tcpvars_rewrite() edits: the process's own, or
 * one being built for exec.  get returns the value of name or NULL; set
 * gives a present name a new value; unset removes name.
 */
struct pp_envops {
	const char *(*get)(void *arg, const char *name);
	void (*set)(void *arg, const char *name, const char *value);
	void (*unset)(void *arg, const char *name);
	void *arg;
};

/*
 * Rewrite tcpserver's TCPREMOTEIP and TCPREMOTEPORT (when info has an
 * advertised source) and TCPLOCALIP and TCPLOCALPORT (an advertised
 * destination, unless sockname_real: PP_SOCKNAME=real), where env holds
 * them, to the advertised addresses; variables env lacks are never
 * added.  When TCPREMOTEIP changes, TCPREMOTEHOST and TCPREMOTEINFO,
 * looked up for the proxy, are removed.  Async-signal-safe when env's
 * functions are (the exec hook calls it after vfork).
 */
void pp_tcpvars_rewrite(const struct pp_fdinfo *info, bool sockname_real,
			const struct pp_envops *env);

#endif /* PP_HANDOVER_H */
