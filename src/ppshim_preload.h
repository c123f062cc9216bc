/*
 * ppshim_preload.h - the library the wrapper preloads: its default path,
 * the checks that it will load into COMMAND, and LD_PRELOAD.
 */
#ifndef WS_PRELOAD_H
#define WS_PRELOAD_H

#include <stdbool.h>

#include "ppshim_elf.h"

/*
 * The library to preload when --library is not given: PREFIX/$LIB/...
 * where the loader expands $LIB, else LIBDIR/libppshim.so.  A static
 * string.
 */
const char *ws_default_library(void);

/*
 * Check that library can be preloaded into the program at path (headers
 * in elf): a readable ELF file of the same class, found for the
 * program's ABI if its path has $LIB in it.  Returns 0 with *lib set to
 * its absolute path (malloc'd, $LIB kept), or the status to exit with,
 * the reason printed (EX_UNAVAILABLE, EX_OSERR; EX_UNAVAILABLE for the
 * other class, unless force).  *lib is NULL or malloc'd in every case.
 */
int ws_check_library(const char *library, const char *path,
		     const struct ws_elf *elf, bool force, char **lib);

/*
 * Add lib to LD_PRELOAD unless it is already an element; entries that
 * are there stay, in front (an ASan runtime must stay first).  Returns 0
 * or -errno.
 */
int ws_preload_add(const char *lib);

#endif
