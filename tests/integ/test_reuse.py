#!/usr/bin/env python3
"""test_reuse.py - a descriptor number the library tracks, closed behind its
back and given to another descriptor, never answers from the old entry.

The server is tests/helpers/reuse with the library preloaded.  It holds
one of the three kinds of entry (an accepted connection with advertised
addresses, a PROXY-only listener, a PROXY-only UDP socket), after a real
client sent it a real header; closes that descriptor without the library
seeing it (a raw close system call, or fclose of an fdopen'ed stream);
gives the number to another descriptor (socketpair, a socket received with
SCM_RIGHTS, socket + connect, a UDP socket, pipe, open, eventfd,
memfd_create); and reports whether the new descriptor reads its data intact
and what getpeername and getsockname say for it, against what its other end
sees.  With -R the new descriptor comes from raw system calls, so that the
library's hooks see nothing of it and only its identity checks are left
(doc/security.md, section 4).

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_reuse.py [NAME...]
"""

import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import pptest as pp  # noqa: E402
from pptest import CLIENT4, SERVER4, Fail, check, eq, test, v1, v2  # noqa

REUSE = os.path.join(pp.BUILDDIR, "tests", "helpers", "reuse")
CLOSES = ("raw", "fclose")


def fields(line):
    return dict(w.split("=", 1) for w in line.split()[1:] if "=" in w)


def run(kind, way, close, raw, silent=False):
    """One server: the entry of KIND made, closed by CLOSE, its number
    reused by WAY (raw system calls with raw).  Returns the "after"
    fields."""
    what = "%s closed by %s, reused by %s%s" % (kind, close, way,
                                               " (raw)" if raw else "")
    port = pp.free_port()
    env = {"PP_PORTS": "%d%s" % (port, "/udp" if kind == "udp" else "")}
    argv = [REUSE, "-k", kind, "-p", str(port), "-c", close, "-w", way]
    argv += ["-R"] if raw else []
    argv += ["-s"] if silent else []
    proc = pp.Proc(argv, env=env, name="reuse")
    proc.wait_line("^listening ", timeout=10)
    # A real client with a real header: the entry is a PROXY one.
    if kind == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        pp.defer(s.close)
        s.sendto(v2(transport="DGRAM") + b"dgram", ("127.0.0.1", port))
        _, before = proc.wait_line("^before ", timeout=10)
        eq(fields(before).get("peer"), "%s:5000" % CLIENT4,
           what + ": advertised source before")
    else:
        s = pp.connect(("127.0.0.1", port))
        pp.defer(s.close)
        s.sendall(v1() + b"line\n")
        _, before = proc.wait_line("^before ", timeout=10)
        f = fields(before)
        eq(f.get("peer"), "%s:5000" % CLIENT4, what + ": peer before")
        eq(f.get("sock"), "%s:25" % SERVER4, what + ": sock before")
    _, after = proc.wait_line("^(after|error) ", timeout=15)
    check(after.startswith("after "), "%s: %s" % (what, after))
    f = fields(after)
    eq(f.get("same"), "1", what + ": the number was reused")
    eq(f.get("data"), "ok", what + ": data read intact")
    eq(f.get("peer"), f.get("want_peer"), what + ": getpeername")
    eq(f.get("sock"), f.get("want_sock"), what + ": getsockname")
    proc.stop()
    return f


def each(kind, way, raw_too=True):
    for close in CLOSES:
        for raw in ((False, True) if raw_too else (False,)):
            run(kind, way, close, raw)


def make(kind, way, raw_too=True):
    def reused():
        each(kind, way, raw_too)
    reused.__name__ = "%s_reused_by_%s" % (
        {"conn": "connection", "listen": "listener", "udp": "udp"}[kind],
        way)
    test(timeout=90)(reused)


# Every kind of entry, its number taken by a socketpair, by a socket
# received with SCM_RIGHTS (for a connection: another connection of the
# same PROXY-only port, so the local address alone cannot tell them
# apart), and by socket + connect (a listener: socket + bind + listen).
for _kind in ("conn", "listen", "udp"):
    for _way in ("socketpair", "scm", "socket"):
        make(_kind, _way)

# A UDP socket on another port: the same family, no header in its
# datagrams, only the cookie tells it from the PROXY-only one.
make("udp", "udp")

# The other calls that hand out numbers; they are not sockets, and every
# hook that looks at the table asks the kernel first.
for _kind in ("conn", "udp"):
    for _way in ("pipe", "open", "eventfd", "memfd"):
        make(_kind, _way, raw_too=False)


@test(timeout=60)
def listener_reused_silent_client_served_at_once():
    # A client of the new listener that waits for the server to speak
    # first (SMTP, FTP) must be served at once, not held as a connection
    # whose header is late.
    for close in CLOSES:
        for way in ("scm", "socket"):
            run("listen", way, close, True, silent=True)


if __name__ == "__main__":
    if not os.access(REUSE, os.X_OK):
        pp.skip_all("reuse not built: %s" % REUSE)
    pp.main("reused descriptor numbers")
