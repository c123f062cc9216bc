/*
 * hook_vfork.c - noticing vfork without a system call per close.
 *
 * A vfork child shares the parent's memory until it execs; calls it makes
 * in between must not change the parent's descriptor table (a child that
 * closes descriptors before exec would otherwise wipe the parent's
 * advertised addresses).  Telling such a child from its parent takes a
 * getpid() system call, which the close hook would pay for every proxied
 * connection.  Instead, vfork is interposed by a trampoline that records
 * "this process has used vfork" and jumps to libc's vfork: a jump, not a
 * call, so vfork returns straight to its caller in both processes and no
 * stack frame of ours is shared between them.  Until a process has used
 * vfork, pp_claim_table() is one memory load.
 *
 * Only x86_64 has the trampoline; elsewhere pp_vfork_seen starts true
 * and every check makes the system call, as before.
 */
#include "config.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <unistd.h>

#include "hook_vfork.h"
#include "shim.h"

#if defined(__x86_64__) && defined(__ELF__)
atomic_bool pp_vfork_seen;

/* Bound by pp_real_bind(); until then the trampoline calls fork(),
 * which is always a correct vfork. */
void *pp_vfork_real;

__asm__(".text\n"
	".globl vfork\n"
	".type vfork, @function\n"
	"vfork:\n"
	"	movb $1, pp_vfork_seen(%rip)\n"
	"	mfence\n"
	"	movq pp_vfork_real(%rip), %rax\n"
	"	testq %rax, %rax\n"
	"	jz 1f\n"
	"	jmp *%rax\n"
	"1:	jmp fork@PLT\n"
	".size vfork, .-vfork\n");
#else
atomic_bool pp_vfork_seen = true;
void *pp_vfork_real;
#endif
