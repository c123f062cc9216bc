/*
 * ppshim_kernel.h - whether the running kernel can execute COMMAND, and
 * the one line the wrapper prints when it cannot.
 */
#ifndef WS_KERNEL_H
#define WS_KERNEL_H

#include <stdbool.h>

#include "ppshim_elf.h"

/*
 * Is elf (parsed) an i386 program that this x86-64 kernel will refuse,
 * built without IA-32 support?  Asked by running a probe program; false
 * when it ran, or when the probe itself could not be made.
 */
bool ws_kernel_refuses_ia32(const struct ws_elf *elf);

/*
 * Print the one line for an ELF COMMAND at path that the kernel will not
 * execute (ENOEXEC), with a guess at why from elf.
 */
void ws_noexec_message(const char *path, const struct ws_elf *elf);

#endif
