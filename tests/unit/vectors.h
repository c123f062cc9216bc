/*
 * vectors.h - PROXY header test vectors, loaded from annotated text files
 * (tests/unit/cases/{valid,invalid}/NAME.txt).  The format is described
 * at the top of vectors.c.
 */
#ifndef PP_VECTORS_H
#define PP_VECTORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pp_parse.h"

#define PP_VEC_MAX_TLV 8

struct pp_vec_tlv {
	uint8_t type;
	bool ssl; /* a sub-TLV of the SSL TLV */
	uint8_t val[512];
	size_t len;
};

struct pp_vec {
	char name[128]; /* "valid/v1-tcp4.txt" */
	uint8_t *data;  /* header bytes, then payload */
	size_t len;     /* all bytes */
	size_t hdr_len; /* bytes before the payload */
	unsigned flags; /* PP_ACCEPT_*; default V1 | V2 */
	bool valid;
	enum pp_err err; /* expected error when !valid */
	size_t at;       /* 1-based byte that must fail, 0 when not stated */
	/* Expectations of a valid vector; -1 (or "") when not stated. */
	int version, draft, command, family, transport, crc;
	long tlv_len;
	char src[128], dst[128]; /* pp_vec_addr() form */
	struct pp_vec_tlv tlv[PP_VEC_MAX_TLV];
	size_t ntlv;
};

/*
 * Load every *.txt under dir/valid and dir/invalid, sorted by name.
 * Returns the number loaded and sets *out (free with pp_vec_free()); on
 * a malformed file prints the file and line to stderr and returns -1.
 */
long pp_vec_load(const char *dir, struct pp_vec **out);
void pp_vec_free(struct pp_vec *v, size_t n);

/* "PP_E_V1_SYNTAX" for an error code, and back (false when unknown). */
const char *pp_vec_err_name(enum pp_err err);
bool pp_vec_err_parse(const char *name, enum pp_err *err);

/*
 * Write sa in the text form the vectors use: "192.0.2.1:80",
 * "[2001:db8::1]:443" (RFC 5952 text), "unix:/path", or "none" for
 * AF_UNSPEC.  Returns buf.
 */
char *pp_vec_addr(const union pp_sockaddr *sa, socklen_t len, char *buf,
		  size_t size);

#endif /* PP_VECTORS_H */
