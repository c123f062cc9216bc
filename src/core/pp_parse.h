/*
 * pp_parse.h - the PROXY protocol header parser (v1 text, v2 binary, and
 * the 2012 draft binary layout behind a flag).
 *
 * Pure: no I/O, no allocation, no global state.  The parser is a push
 * state machine: the caller feeds whatever bytes it has and learns after
 * every push whether the header is still incomplete, already invalid, or
 * complete.  Bytes that follow the header are never taken: the push
 * reports how many of the offered bytes belong to the header, so a
 * caller that peeks at a socket can consume exactly those.
 *
 * The header bytes are copied into storage that the caller provides
 * (pp_parser_init()).  A caller that starts with a small buffer learns
 * the total length of a v2 header as soon as its 16 fixed bytes are in
 * (pp_parser_total()) and may move the parser to a larger buffer with
 * pp_parser_setbuf() before pushing more.
 *
 * A datagram is parsed in one call with pp_parse_buf(), which needs no
 * copy.
 */
#ifndef PP_PARSE_H
#define PP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#define PP_V1_MAX 107                   /* v1 line including CRLF */
#define PP_V2_FIXED 16                  /* signature, ver/cmd, fam/tp, len */
#define PP_V2_MAX (PP_V2_FIXED + 65535) /* longest v2 header */
#define PP_DRAFT_FIXED 16               /* draft: sig, ver, cmd, fam, len */

/* Which layouts a parser accepts (pp_parser_init() flags). */
#define PP_ACCEPT_V1 0x1u
#define PP_ACCEPT_V2 0x2u
#define PP_ACCEPT_DRAFT 0x4u /* the 2012 draft binary layout */

enum pp_status {
	PP_NEED_MORE = 0, /* valid so far, header incomplete */
	PP_DONE = 1,      /* header complete, pp_parser_header() valid */
	PP_INVALID = -1,  /* can never become a valid header */
};

enum pp_err {
	PP_OK = 0,
	PP_E_SIGNATURE,   /* neither "PROXY " nor the v2 signature */
	PP_E_VERSION,     /* a version this parser does not accept */
	PP_E_V1_SYNTAX,   /* v1: bad protocol word, spacing, CR/LF */
	PP_E_V1_ADDR,     /* v1: address not valid text for its family */
	PP_E_V1_PORT,     /* v1: port not 0..65535 in canonical decimal */
	PP_E_V1_TOO_LONG, /* v1: no CRLF within 107 bytes */
	PP_E_V2_COMMAND,  /* v2: command not LOCAL or PROXY */
	PP_E_V2_FAMILY,   /* v2: family or transport nibble invalid */
	PP_E_V2_LENGTH,   /* v2: length shorter than the address block */
	PP_E_V2_TLV,      /* v2: TLV malformed or running past the end */
	PP_E_V2_CRC,      /* v2: CRC32C TLV does not match */
	PP_E_TOO_LONG,    /* header longer than the caller's buffer */
	PP_E_TRUNCATED,   /* pp_parse_buf(): header not complete in buf */
	PP_E_V2_ADDR,     /* v2: UNIX path without a NUL in 108 bytes */
};

enum pp_command { PP_CMD_LOCAL = 0, PP_CMD_PROXY = 1 };
enum pp_family {
	PP_FAM_UNSPEC = 0,
	PP_FAM_INET = 1,
	PP_FAM_INET6 = 2,
	PP_FAM_UNIX = 3,
};
enum pp_transport {
	PP_TP_UNSPEC = 0,
	PP_TP_STREAM = 1,
	PP_TP_DGRAM = 2,
};

/* Registered TLV types (HAProxy doc/proxy-protocol.txt, section 2.2). */
#define PP_TLV_ALPN 0x01
#define PP_TLV_AUTHORITY 0x02
#define PP_TLV_CRC32C 0x03
#define PP_TLV_NOOP 0x04
#define PP_TLV_UNIQUE_ID 0x05
#define PP_TLV_SSL 0x20
#define PP_SUBTLV_SSL_VERSION 0x21
#define PP_SUBTLV_SSL_CN 0x22
#define PP_SUBTLV_SSL_CIPHER 0x23
#define PP_SUBTLV_SSL_SIG_ALG 0x24
#define PP_SUBTLV_SSL_KEY_ALG 0x25
#define PP_TLV_NETNS 0x30

union pp_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;
	struct sockaddr_un sun;
	struct sockaddr_storage ss;
};

/*
 * A complete header.  v1 TCP4/TCP6 is reported as PROXY, INET/INET6,
 * STREAM; v1 UNKNOWN as PROXY, UNSPEC, UNSPEC.  src and dst are filled
 * (with their lengths) for PROXY with INET, INET6 and UNIX; for the
 * others (and for every LOCAL header, whose bytes after the first 16 are
 * skipped uninterpreted) their family is AF_UNSPEC and their length 0.
 */
struct pp_header {
	uint8_t version; /* 1 or 2 (the draft reports 2 with draft set) */
	bool draft;
	enum pp_command command;
	enum pp_family family;
	enum pp_transport transport;
	union pp_sockaddr src, dst;
	socklen_t srclen, dstlen;
	size_t len;         /* total header length in bytes */
	const uint8_t *tlv; /* TLV area (inside the parsed bytes) */
	size_t tlv_len;     /* its length, 0 when there is none */
	bool crc_checked;   /* a CRC32C TLV was present and matched */
};

struct pp_parser {
	uint8_t *buf;   /* caller storage for the header bytes */
	size_t cap;     /* its size */
	size_t have;    /* header bytes held so far */
	size_t total;   /* total header length once known, else 0 */
	unsigned flags; /* PP_ACCEPT_* */
	int state;      /* private */
	size_t pos;     /* private: v1 field start, v2 TLV cursor */
	enum pp_err err;
	char reason[96]; /* human reason once PP_INVALID */
	struct pp_header hdr;
};

/*
 * Start a parser accepting the layouts in flags, keeping header bytes in
 * buf[0..cap).  cap of PP_V1_MAX covers every v1 header; headers longer
 * than cap fail with PP_E_TOO_LONG unless the caller moves the parser to
 * a larger buffer first (pp_parser_setbuf()).
 */
void pp_parser_init(struct pp_parser *p, uint8_t *buf, size_t cap,
		    unsigned flags);

/*
 * Move the parser to new storage of cap bytes, copying the bytes held.
 * Returns false (and changes nothing) when cap < p->have.
 */
bool pp_parser_setbuf(struct pp_parser *p, uint8_t *buf, size_t cap);

/*
 * Offer len bytes that follow those pushed before.  *used is set to how
 * many of them belong to the header (all of them while PP_NEED_MORE, the
 * header's tail on PP_DONE, 0 or more on PP_INVALID).  After PP_DONE or
 * PP_INVALID further pushes return the same status and use nothing.
 */
enum pp_status pp_parser_push(struct pp_parser *p, const void *data, size_t len,
			      size_t *used);

/*
 * How many more bytes can be read without risk of reading past the
 * header: the exact remainder once the total is known (v2, draft), the
 * bytes missing from the fixed part of a binary header, and for v1 (or a
 * prefix that may still be either) 0, meaning "unknown: peek".
 */
size_t pp_parser_want(const struct pp_parser *p);

/* Total header length once known (v2 and draft after 16 bytes), else 0. */
size_t pp_parser_total(const struct pp_parser *p);

/* The parsed header; valid only after PP_DONE, points into p->buf. */
const struct pp_header *pp_parser_header(const struct pp_parser *p);

/*
 * The header nearly every datagram and most connections carry: final
 * layout, PROXY, INET or INET6, no TLV.  The addresses point into the
 * parsed bytes, in network order, as the ports are.
 */
struct pp_v2_brief {
	enum pp_family family;       /* PP_FAM_INET or PP_FAM_INET6 */
	enum pp_transport transport; /* any of the three */
	size_t len;                  /* header length: 28 or 52 */
	const uint8_t *src, *dst;    /* 4 or 16 bytes each */
	uint16_t sport, dport;
};

/*
 * True when buf[0..len) begins with such a header (and flags accept v2),
 * described in *b: a few loads, no state machine, nothing else written.
 * False for anything else, valid or not: pp_parse_buf() then tells.
 * Where it is true, pp_parse_buf() gives the same header.
 */
bool pp_parse_v2_brief(const void *buf, size_t len, unsigned flags,
		       struct pp_v2_brief *b);

/*
 * The Simple Proxy Protocol (SPP) of Cloudflare Spectrum and Tencent
 * EdgeOne: a fixed 38-byte header before each datagram's payload, all
 * fields in network order: magic 0x56EC, client address (16 bytes, IPv6
 * or IPv4-mapped), proxy address (16), client port, proxy port.
 */
#define PP_SPP_LEN 38
#define PP_SPP_MAGIC 0x56ECu

struct pp_spp {
	const uint8_t *client, *proxy; /* 16 bytes each, into the datagram */
	uint16_t cport, pport;         /* network order */
};

/*
 * True when buf[0..len) begins with an SPP header (len >= 38 and the
 * magic right), described in *s; false otherwise, *s then untouched.
 * Any address is accepted: what it means is the caller's to judge.
 * Pure; reads at most 38 bytes.
 */
bool pp_parse_spp(const void *buf, size_t len, struct pp_spp *s);

/*
 * The socket address of an SPP address (16 bytes, network order) with
 * port (network order) into out, which has room for a struct
 * sockaddr_in6: AF_INET for an IPv4-mapped address, else AF_INET6.
 * Returns its length.
 */
socklen_t pp_spp_inet(const uint8_t *addr, uint16_t port, struct sockaddr *out);

/*
 * Write the SPP header for client (16 bytes, IPv6 or IPv4-mapped) port
 * cport and proxy (16 bytes) port pport (ports in network order) into
 * out[0..PP_SPP_LEN): the layout pp_parse_spp() reads.  Pure.
 */
void pp_spp_build(uint8_t *out, const uint8_t *client, uint16_t cport,
		  const uint8_t *proxy, uint16_t pport);

/*
 * The socket address of a v2 INET (4 bytes at addr) or INET6 (16 bytes)
 * address with port (network order) into out, which has room for a
 * struct sockaddr_in6; returns its length.
 */
socklen_t pp_v2_inet(enum pp_family fam, const uint8_t *addr, uint16_t port,
		     struct sockaddr *out);

/*
 * Parse a header at the start of buf[0..len), typically a datagram.  On
 * PP_DONE *h describes it (h->tlv points into buf) and h->len is where
 * the payload starts; a header not complete within len is PP_INVALID
 * (PP_NEED_MORE is never returned).  reason, when not NULL, receives the
 * human reason of a failure (reasonlen bytes, NUL-terminated).
 */
enum pp_status pp_parse_buf(const void *buf, size_t len, unsigned flags,
			    struct pp_header *h, enum pp_err *err, char *reason,
			    size_t reasonlen);

/* A short fixed description of an error code ("v2: CRC32C mismatch"). */
const char *pp_strerror(enum pp_err err);

/*
 * Find TLV type in a validated TLV area (the one of a pp_header).  On
 * success *val and *vlen describe the first occurrence; returns false
 * when absent.  pp_tlv_ssl_find() looks for a sub-TLV of the SSL TLV.
 */
bool pp_tlv_find(const uint8_t *tlv, size_t tlv_len, uint8_t type,
		 const uint8_t **val, size_t *vlen);
bool pp_tlv_ssl_find(const uint8_t *tlv, size_t tlv_len, uint8_t subtype,
		     const uint8_t **val, size_t *vlen);

/*
 * Encoders, for tests, benchmarks and the diagnostic client.  They write
 * a header for h (version, command, family, transport, src, dst; the TLV
 * area h->tlv/h->tlv_len is appended verbatim for v2) into out[0..cap)
 * and return its length, or 0 when it does not fit or h cannot be
 * expressed in that version.  pp_encode_v2() with add_crc appends a
 * CRC32C TLV and fills it in.
 */
size_t pp_encode_v1(const struct pp_header *h, char *out, size_t cap);
size_t pp_encode_v2(const struct pp_header *h, bool add_crc, uint8_t *out,
		    size_t cap);

#endif /* PP_PARSE_H */
