/*
 * ppsend_header.h - the header ppsend sends: the TLVs of --tlv, the
 * PROXY v1/v2 or SPP header built from the options, and its --hexdump.
 */
#ifndef PS_HEADER_H
#define PS_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ppsend.h"

/* The header as built, to send, for --hexdump and to spot an echo. */
extern uint8_t ps_hdr[PP_V2_MAX];
extern size_t ps_hdr_len;

/*
 * Add one --tlv TYPE=VALUE (arg) to the TLVs, in the order given; a
 * usage error when it is not one or the TLVs outgrow a v2 header.
 */
void ps_add_tlv(const char *arg);

/* Whether any --tlv was given. */
bool ps_have_tlvs(void);

/*
 * Build the header for o on connected fd (its real addresses stand in
 * for --src and --dst when not given) into ps_hdr and ps_hdr_len.
 * Exits with EX_USAGE when the header cannot carry what o asks for.
 */
void ps_make_header(const struct ps_opts *o, int fd);

/*
 * --hexdump: print the connection fd and the header ps_hdr, like
 * hexdump -C, to stderr.
 */
void ps_describe(const struct ps_opts *o, int fd);

#endif
