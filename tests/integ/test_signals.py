#!/usr/bin/env python3
"""test_signals.py - signal handlers that call the hooks on the thread
they interrupt, while that thread is itself inside the library.

POSIX makes accept, close, getpeername, recvfrom and sendto
async-signal-safe, so a program may call them from a handler at any
moment.  tests/helpers/sigreenter runs with the library preloaded; a
timer signal every few tens of microseconds interrupts its main thread
at random points of its own calls (descriptor-table writes, the UDP
reply table's lock and the thread's receive buffer, the pending lists'
locks and malloc), and the handler calls the hooks on the same
descriptors.  Each test asserts that the program finishes (no deadlock),
that every answer is the advertised or the real address (never a torn
one), and that nothing is lost: every datagram intact, every connection
accepted.  Without the re-entry rules of src/reentry.h each of these
hangs within seconds.

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_signals.py [NAME...]
"""

import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import pptest as pp  # noqa: E402
from pptest import SLOW, Skip, check, eq, test, v1  # noqa: E402

HELPER = os.path.join(pp.BUILDDIR, "tests", "helpers", "sigreenter")
SECONDS = 2
# The timer's period: short enough to land inside the library's short
# sections often, long enough that the handler leaves the main thread
# time to progress (the UDP handler makes three system calls); longer
# under instrumentation.
PERIOD_US = {"dup2": 25 * SLOW, "accept": 25 * SLOW, "udp": 100 * SLOW}


def sigreenter(mode, ports, port):
    if not os.access(HELPER, os.X_OK):
        raise Skip("not built: %s" % HELPER)
    return pp.Proc([HELPER, "-m", mode, "-p", str(port), "-s", str(SECONDS),
                    "-i", str(PERIOD_US[mode])],
                   env={"PP_PORTS": ports, "PP_ALLOW": "127.0.0.1",
                        "PP_TIMEOUT_MS": "5000"})


def fields(line):
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}


def finish(proc, bound):
    """Waits for the program to exit within bound seconds (its own run is
    SECONDS): a deadlock fails here.  Returns the fields of its done
    line."""
    rc = proc.wait_exit(bound)
    done = [ln for ln in proc.lines() if ln.startswith("done ")]
    sig = [ln for ln in proc.lines() if ln.startswith("signals ")]
    check(done and sig, "no summary: %s" % proc.tail())
    f = fields(done[-1])
    f["signals"] = int(sig[-1].split()[1])
    print("# %s; %d signals" % (done[-1], f["signals"]))
    eq(rc, 0, "exit status (%s)" % proc.tail())
    # Under valgrind a signal reaches the program only where valgrind's
    # scheduler looks for one, far less often than the timer fires: one
    # run of the dup2 loop got exactly 100 in its 2 s.
    least = 20 if pp.VALGRIND else 100
    check(f["signals"] > least, "the handler hardly ran: %r" % f)
    return f


@test(timeout=60)
def handler_getpeername_close_inside_dup2():
    """The main thread dup2s the proxied connection and a plain socket
    onto a tracked number in a loop (each a descriptor-table write); the
    handler asks getpeername of both numbers and now and then closes the
    tracked one.  Afterwards the table says what each number is."""
    port = pp.free_port()
    proc = sigreenter("dup2", str(port), port)
    proc.wait_line("^listening ", timeout=10)
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    pp.defer(s.close)
    s.sendall(v1(src=pp.CLIENT4, dst=pp.SERVER4, sport=4242, dport=80))
    f = finish(proc, SECONDS + 20)
    _, final = proc.wait_line("^final ", timeout=1)
    g = fields(final)
    eq((g["adv"], g["other"], g["torn"]), (2, 1, 0),
       "answers after the storm (%s)" % final)
    check(f["closes"] > 0, "the handler never closed: %r" % f)


@test(timeout=60)
def handler_recvfrom_sendto_inside_udp_receive():
    """The main thread receives PROXY datagrams into a buffer smaller than
    64 KiB (the thread's private buffer) from ever new advertised clients
    (the reply table's lock) and replies; the handler sends, receives and
    replies too.  Every datagram arrives whole with its advertised
    source, and the replies reach the proxy."""
    port = pp.free_port()
    proc = sigreenter("udp", "%d/udp" % port, port)
    f = finish(proc, SECONDS + 20)
    eq(f["torn"], 0, "datagrams received torn or from a wrong source")
    eq(f["received"], f["sent"], "datagrams received of those sent")
    # A reply whose route a handler could not note (its thread held the
    # table's lock) goes where the program sent it: most are routed.
    check(f["routed"] * 2 > f["received"],
          "replies routed to the proxy: %r" % f)


@test(timeout=60)
def handler_accept_inside_accept():
    """The main thread accepts on a PROXY-only listener, most headers in
    two pieces (the pending list, its lock and malloc, the worker and its
    knocks); the handler accepts on the same listener.  Every connection
    is accepted once, with the advertised address in accept's answer and
    getpeername's alike; a handler that interrupted the library's own
    locks gets EAGAIN."""
    port = pp.free_port()
    proc = sigreenter("accept", str(port), port)
    f = finish(proc, SECONDS + 30)
    eq(f["torn"], 0, "connections with a torn or differing address")
    eq(f["accepted"], f["conns"], "connections accepted of those made")
    eq(f["real"], 0, "connections reported with the real address")


if __name__ == "__main__":
    pp.main("test_signals")
