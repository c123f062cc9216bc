/*
 * ppshim_elf.h - what the wrapper reads in an ELF file: its class, and
 * what the dynamic loader will make of an executable (its loader, a Go
 * toolchain's marks).  Both classes, in the machine's own byte order.
 */
#ifndef WS_ELF_H
#define WS_ELF_H

#include <stdbool.h>

/* What an executable's headers say, as far as the preload goes. */
struct ws_elf {
	int cls;          /* ELFCLASS32, ELFCLASS64; 0 not ELF; -1 unreadable */
	unsigned machine; /* e_machine */
	bool parsed;      /* our byte order, an executable: below is known */
	bool interp;      /* PT_INTERP: a dynamic loader runs it */
	bool go;          /* built by the Go toolchain */
	char interp_path[256];
};

/*
 * The ELF class of a file (ELFCLASS32 or ELFCLASS64), 0 when it is not
 * an ELF file (a script, a libtool .la), -1 when it cannot be read.
 */
int ws_elf_class(const char *path);

/*
 * Read what the loader will make of the file at path into *e.  Never
 * fails: what cannot be read is left unknown (e->parsed false), and the
 * callers then let the loader decide as before.
 */
void ws_elf_inspect(const char *path, struct ws_elf *e);

/*
 * Is path the dynamic loader that runs this very program?  Run as a
 * command ("ld.so PROGRAM") it has no PT_INTERP of its own, and it does
 * read LD_PRELOAD.
 */
bool ws_is_own_loader(const char *path);

/* A name for an ELF machine ("x86-64", "i386"...), for messages. */
const char *ws_machine_name(int cls, unsigned machine);

#endif
