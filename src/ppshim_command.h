/*
 * ppshim_command.h - COMMAND: finding it as execvp(3) would, deciding
 * whether the preload takes effect in it, and executing it.
 */
#ifndef WS_COMMAND_H
#define WS_COMMAND_H

#include <stdbool.h>
#include <sys/stat.h>

#include "ppshim_elf.h"

/*
 * Find COMMAND and make sure the loader will honour the preload for it,
 * and the library see its sockets.  Returns 0 with *path (malloc'd),
 * *st and *elf set, or the status to exit with (a message printed): 127
 * when not found, 126 when not executable, or (unless force) run in
 * secure-execution mode, statically linked or a Go program; EX_OSERR.
 * *path is NULL or malloc'd in every case.
 */
int ws_check_command(const char *cmd, bool force, char **path, struct stat *st,
		     struct ws_elf *elf);

/*
 * Execute the checked file path (headers in elf) with argv[0..argc), as
 * execvp(3) would but never handing an ELF file to the shell.  Returns
 * only on failure, with the status to exit with (126, 127), the reason
 * printed.
 */
int ws_exec_command(const char *path, int argc, char **argv,
		    const struct ws_elf *elf);

#endif
