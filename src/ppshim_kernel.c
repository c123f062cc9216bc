/*
 * ppshim_kernel.c - what the running kernel can execute: its machine
 * against COMMAND's, the probe that asks an x86-64 kernel whether it
 * runs i386 programs (a 93-byte one from a memfd), and the message when
 * the kernel cannot run COMMAND.
 */
#include "config.h"

#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ppshim_kernel.h"

/* The running kernel's machine ("x86_64"), or "unknown". */
static const char *
ws_kernel_machine(void)
{
	static struct utsname u;

	if (u.machine[0] == '\0' && uname(&u) != 0)
		return "unknown";
	return u.machine;
}

/*
 * Why the kernel may have refused (ENOEXEC) to run an ELF file: a guess
 * from its class and machine against the running kernel's, for the one
 * line the user reads.
 */
static const char *
ws_enoexec_hint(const struct ws_elf *elf)
{
	static char hint[128];
	const char *kernel = ws_kernel_machine();

	if (!elf->parsed)
		return "not an executable for this machine (byte order or "
		       "file type)";
	if (strcmp(kernel, "x86_64") == 0) {
		if (elf->machine == EM_386)
			return "32-bit x86 on a kernel without IA-32 support?";
		if (elf->machine == EM_X86_64 && elf->cls == ELFCLASS32)
			return "x32 on a kernel without x32 support?";
	}
	(void)snprintf(hint, sizeof(hint), "built for %s, the kernel is %s",
		       ws_machine_name(elf->cls, elf->machine), kernel);
	return hint;
}

/* The one line for an ELF COMMAND that the kernel will not execute. */
void
ws_noexec_message(const char *path, const struct ws_elf *elf)
{
	fprintf(stderr,
		"ppshim: %s: cannot execute: the kernel cannot run this ELF "
		"file (%s)\n",
		path, ws_enoexec_hint(elf));
}

/*
 * Can the kernel run 32-bit x86 programs?  Asked by doing it: a child
 * execs a 93-byte i386 program that only calls exit(0), from a memfd.
 * Returns false only when the kernel refused it (ENOEXEC); true when it
 * ran, or when the probe itself could not be made (no memfd, no fork):
 * then the exec of COMMAND tells.
 */
static bool
ws_kernel_runs_ia32(void)
{
	/* clang-format off */
	static const unsigned char prog[] = {
		/* Elf32_Ehdr: ET_EXEC, EM_386, entry 0x08048054, one phdr */
		0x7f, 'E', 'L', 'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		2, 0, 3, 0, 1, 0, 0, 0, 0x54, 0x80, 0x04, 0x08,
		0x34, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x34, 0, 0x20, 0, 1, 0, 0x28, 0, 0, 0, 0, 0,
		/* Elf32_Phdr: PT_LOAD of the whole file at 0x08048000, R+X */
		1, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x04, 0x08,
		0, 0x80, 0x04, 0x08, 0x5d, 0, 0, 0, 0x5d, 0, 0, 0,
		5, 0, 0, 0, 0, 0x10, 0, 0,
		/* xor %ebx,%ebx; mov $1,%eax (exit); int $0x80 */
		0x31, 0xdb, 0xb8, 0x01, 0, 0, 0, 0xcd, 0x80,
	};
	/* clang-format on */
	char *const argv[] = { (char *)"ppshim-ia32-probe", NULL };
	char *const envp[] = { NULL };
	int fd, status;
	pid_t pid;

	fd = (int)syscall(SYS_memfd_create, "ppshim-ia32-probe", 1u);
	if (fd < 0)
		return true;
	if (write(fd, prog, sizeof(prog)) != (ssize_t)sizeof(prog)) {
		close(fd);
		return true;
	}
	pid = fork();
	if (pid == 0) {
		fexecve(fd, argv, envp);
		_exit(errno == ENOEXEC ? 126 : 127);
	}
	close(fd);
	if (pid < 0)
		return true;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return true;
	return !(WIFEXITED(status) && WEXITSTATUS(status) == 126);
}

/*
 * Is elf (parsed) an i386 program that this x86-64 kernel will refuse,
 * built without IA-32 support?  Asked by running a probe program; false
 * when it ran, or when the probe itself could not be made.
 */
bool
ws_kernel_refuses_ia32(const struct ws_elf *elf)
{
	return elf->machine == EM_386 &&
	       strcmp(ws_kernel_machine(), "x86_64") == 0 &&
	       !ws_kernel_runs_ia32();
}
