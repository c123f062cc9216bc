#!/usr/bin/env python3
"""Hooks called before ppshim's constructor behave like later ones.

libearly.so is preloaded after libppshim.so, so its constructor runs
first; it listens on a PROXY-only port and accepts one connection before
ppshim's constructor has run.  The header must be stripped and the
advertised client reported all the same.  A configuration error must
still stop the process with status 78 before main.

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_early.py [NAME...]
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import pptest as pp  # noqa: E402
from pptest import check, eq, test  # noqa: E402

EARLY = os.path.join(pp.BUILDDIR, "tests/helpers/.libs/libearly.so")
VFORKCLOSE = os.path.join(pp.BUILDDIR, "tests/helpers/vforkclose")


def start(argv, port, libs=(), **env):
    """argv with the library (and libs after it) preloaded, port
    PROXY-only for 127.0.0.1; outside valgrind, as the process must run
    its constructors in the order the preload list gives."""
    preload = ":".join(x for x in (pp.ASAN_LIB, pp.LIB) + libs if x)
    env = dict({"LD_PRELOAD": preload, "PP_PORTS": str(port),
                "PP_ALLOW": "127.0.0.1", "ASAN_OPTIONS": "detect_leaks=0"},
               **env)
    return pp.Proc(argv, env=env, valgrind=False)


def advertise(proc, port, ready, header):
    """Waits for the ready line, then connects to port and sends header;
    returns the exit status once the process is done."""
    proc.wait_line("^%s$" % ready, timeout=5)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
        c.sendall(header)
        return proc.wait_exit(10)


def run_early(port, **env):
    return start(["/bin/echo", "main-ran"], port, (EARLY,),
                 EARLY_PORT=str(port), **env)


@test
def accept_before_constructor():
    port = pp.free_port()
    p = run_early(port)
    rc = advertise(p, port, "early listening",
                   b"PROXY TCP4 192.0.2.44 198.51.100.9 4444 25\r\n")
    eq(rc, 0, "exit status%s" % p.tail())
    out = "\n".join(p.lines())
    check("early peer=192.0.2.44:4444 name=192.0.2.44:4444" in out,
          "no early peer line: %r" % out)
    check("main-ran" in out, "main did not run: %r" % out)


@test
def config_error_still_exits_78():
    p = run_early(pp.free_port(), PP_ALLOW="10.0.0.0/33")
    eq(p.wait_exit(10), 78, "exit status%s" % p.tail())
    out, err = "\n".join(p.lines()), "\n".join(p.lines("err"))
    check("PP_ALLOW: '10.0.0.0/33'" in err, "no error message: %r" % err)
    check("main-ran" not in out and "early listening" not in out,
          "ran past the error: %r" % out)


@test
def vfork_child_close_keeps_parent_addresses():
    port = pp.free_port()
    p = start([VFORKCLOSE, str(port)], port)
    rc = advertise(p, port, "listening",
                   b"PROXY TCP4 192.0.2.45 198.51.100.9 4545 25\r\n")
    eq(rc, 0, "exit status%s" % p.tail())
    check("peer 192.0.2.45:4545" in "\n".join(p.lines()),
          "no peer line%s" % p.tail())


if __name__ == "__main__":
    if not os.path.isfile(EARLY):
        pp.skip_all("libearly.so not built: %s" % EARLY)
    pp.main("preloaded before ppshim")
