/*
 * pp_hot.h - which code goes together: the per-call paths on few pages.
 *
 * On a kernel with page-table isolation and no PCID, every system call
 * empties the TLB, so each page a hook runs through between two system
 * calls costs a page walk, every time.  Spread over the library's text
 * as the files fall, one datagram's receive and reply ran through 17
 * pages of the library's code.
 *
 * The marks below put a function in a .text.sorted.* section; the
 * linker's default script gathers those at the start of .text, sorted by
 * name, so each group's functions lie next to one another, in the order
 * of the groups:
 *
 *   PP_HOT_CALL   what every call through a hook runs, on any descriptor
 *                 (the pass-through of read, recv, send, close, accept4);
 *   PP_HOT_DGRAM  every datagram of a PROXY-only socket, and its reply;
 *   PP_WARM_DGRAM the datagram path's other calls and branches (the mmsg
 *                 calls, the reply table's writes, connected replies),
 *                 kept out of the way of the one before;
 *   PP_HOT_CONN   every proxied connection, from accept to hand-over.
 *
 * Mark nothing that runs once, fails or logs.  An inlined function needs
 * no mark: it is where its caller is.
 *
 * The same for data: the variables those paths read on every call (the
 * libc entry points, the descriptor table's root, the reply table's
 * header, the counters' mapping...) go in one section of their own,
 * which the linker places whole, after .data, instead of each where its
 * file's .data or .bss falls (a 43 KB configuration between them).  It
 * holds initialised data only: mark small variables.  The descriptor
 * table's root, 8 KB of which the first entries are hot, goes in a
 * section of its own that the linker places next (after the first, in
 * the order it meets them), so that it does not push the rest apart.
 *
 * Other linkers, or a script that does not know .text.sorted, lay it
 * all out as it comes: slower on such kernels, never wrong.
 */
#ifndef PP_HOT_H
#define PP_HOT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__ELF__) && (defined(__GNUC__) || defined(__clang__))
#define PP_SECTION_(name) __attribute__((section(name)))
#else
#define PP_SECTION_(name)
#endif

#define PP_HOT_CALL PP_SECTION_(".text.sorted.ppshim.1")
#define PP_HOT_DGRAM PP_SECTION_(".text.sorted.ppshim.2")
#define PP_WARM_DGRAM PP_SECTION_(".text.sorted.ppshim.3")
#define PP_HOT_CONN PP_SECTION_(".text.sorted.ppshim.4")

#define PP_HOT_DATA PP_SECTION_("ppshim_hot")
#define PP_HOT_TABLE PP_SECTION_("ppshim_hot_table")

/*
 * memcpy of a length known only at run time, inline up to 256 bytes (a
 * datagram's payload, a socket address): libc's memcpy is one more page
 * of code between two system calls.  16 bytes at a time, the last 16
 * overlapping; below 16, two overlapping words.
 */
static inline void
pp_copy_hot(void *to, const void *from, size_t n)
{
	uint8_t *dst = to;
	const uint8_t *src = from;
	size_t i;

	if (n > 256) {
		memcpy(dst, src, n);
	} else if (n >= 16) {
		for (i = 0; i + 16 < n; i += 16)
			__builtin_memcpy(dst + i, src + i, 16);
		__builtin_memcpy(dst + n - 16, src + n - 16, 16);
	} else if (n >= 8) {
		__builtin_memcpy(dst, src, 8);
		__builtin_memcpy(dst + n - 8, src + n - 8, 8);
	} else if (n >= 4) {
		__builtin_memcpy(dst, src, 4);
		__builtin_memcpy(dst + n - 4, src + n - 4, 4);
	} else {
		for (i = 0; i < n; i++)
			dst[i] = src[i];
	}
}

#endif
