#!/usr/bin/env python3
"""pages.py: pages of memory touched between two system calls, from a
trace of valgrind's lackey (--trace-mem=yes).

On a kernel with page-table isolation and no PCID every system call
empties the TLB: each distinct page a program touches between two system
calls costs a page walk.  This counts them, for code (I) and data (D),
in each stretch between two of the system calls that libc's FUNCS make
(the socket calls of an echo server; the vDSO's clock is no system call
on a real machine, so clock_gettime does not cut a stretch).

Usage: pages.py TRACE MAPS [FUNC...]
  TRACE  lackey's log
  MAPS   a copy of /proc/PID/maps of the traced process (valgrind maps
         the program's libraries itself: their addresses are there)
  FUNC   libc functions whose system calls cut the trace (default:
         recvfrom recvmsg recvmmsg sendto sendmsg sendmmsg)
Prints: PAGES stretches=N i=I d=D (means per stretch, over the last
two thirds of the trace: the first third is start-up and warm-up).
"""

import subprocess
import sys


def libc_of(maps):
    """(path, load address) of libc in a maps file."""
    for line in open(maps):
        f = line.split()
        if len(f) >= 6 and "/libc.so" in f[5] and int(f[2], 16) == 0:
            return f[5], int(f[0].split("-")[0], 16)
    sys.exit("pages.py: no libc in " + maps)


def syscall_sites(path, base, funcs):
    """Addresses of the syscall instructions of funcs in libc at base."""
    starts = {}
    out = subprocess.run(["nm", "-D", path], capture_output=True,
                         text=True, check=True).stdout
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[1] in "TtWi" and f[2].split("@")[0] in funcs:
            starts[int(f[0], 16)] = f[2]
    dis = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path],
                         capture_output=True, text=True, check=True).stdout
    sites, inside = set(), False
    for line in dis.splitlines():
        if line.endswith(">:"):
            inside = int(line.split()[0], 16) in starts
        elif inside and line.rstrip().endswith("syscall"):
            sites.add(base + int(line.split(":")[0], 16))
    return sites


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    trace, maps = sys.argv[1], sys.argv[2]
    funcs = set(sys.argv[3:]) or {"recvfrom", "recvmsg", "recvmmsg",
                                   "sendto", "sendmsg", "sendmmsg"}
    path, base = libc_of(maps)
    sites = syscall_sites(path, base, funcs)
    if not sites:
        sys.exit("pages.py: no system call found in " + " ".join(funcs))
    stretches = []
    ipages, dpages = set(), set()
    with open(trace, errors="replace") as f:
        for line in f:
            kind = line[:2].strip()
            if kind not in ("I", "L", "S", "M"):
                continue
            try:
                addr = int(line[3:].split(",")[0], 16)
            except ValueError:
                continue
            if kind == "I":
                ipages.add(addr >> 12)
                if addr in sites:
                    stretches.append((len(ipages), len(dpages)))
                    ipages, dpages = set(), set()
            else:
                dpages.add(addr >> 12)
    steady = stretches[len(stretches) // 3:]
    if not steady:
        sys.exit("pages.py: no system call of %s in the trace" %
                 " ".join(sorted(funcs)))
    n = len(steady)
    print("PAGES stretches=%d i=%.2f d=%.2f" % (
        n, sum(s[0] for s in steady) / n, sum(s[1] for s in steady) / n))


main()
