#!/usr/bin/env python3
"""test_lists.py - PP_ALLOW and PP_DIRECT lists read from files, and
followed while the server runs.

The server (tests/helpers/srv, or udpsrv for datagrams) runs under the
library with PP_ALLOW=@FILE; the test edits FILE the way an operator or
scripts/ppshim-ranges does (a rename over it, or a write in place) and
checks, through real connections from chosen loopback sources, that:
  - a source added is trusted within the stated delay (the files are
    looked at once a second: a change is in effect within two);
  - a source removed is refused;
  - an edit that does not parse, or a file that vanishes, keeps the
    last good list, with one error line naming the file and the line;
  - each change logs how many entries were added and removed;
  - at load, a missing or bad file is a configuration error (exit 78)
    naming the file, the line and the entry, in the library and in the
    ppshim wrapper alike.
"""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import pptest as pp  # noqa: E402
from pptest import (SLOW, check, eq, exchange, expect_conn,  # noqa: E402
                    start_srv, test, v1, v2)

# A change is in effect within two seconds; the checks allow for a loaded
# machine on top (a list that is never followed fails them by far).
DELAY = 2.0
PATIENCE = 6.0 * SLOW
LB = "127.0.0.21"         # the load balancer the file lists at first
NEW = "127.0.0.22"        # the one added later
UDPSRV = os.path.join(pp.BUILDDIR, "tests", "helpers", "udpsrv")
PPSHIM = os.path.join(pp.BUILDDIR, "src", "ppshim")


def list_file(text, name="allow"):
    d = pp.tempdir()
    path = os.path.join(d, name)
    replace(path, text)
    return path


def replace(path, text):
    """Write text to a new file and rename it over path (atomic)."""
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def rewrite_in_place(path, text):
    """Truncate and write path itself: same inode, new size and time."""
    with open(path, "w") as f:
        f.write(text)


def served(srv, src):
    """A v1 header from src: True when the server saw it as proxied."""
    sport = pp.next_sport()
    r = exchange(srv.target, v1(sport=sport) + b"x", src=src)
    if r.refused:
        return False
    expect_conn(srv, r, peer="192.0.2.1:%d" % sport, payload=b"x",
                what="from " + src)
    return True


def until(what, fn, want=True):
    """Polls fn() until it returns want; returns the seconds it took."""
    t0 = time.monotonic()
    while True:
        if fn() == want:
            return time.monotonic() - t0
        if time.monotonic() - t0 > PATIENCE:
            raise pp.Fail("%s: not after %.1fs" % (what, PATIENCE))
        time.sleep(0.1)


def tcp_srv(allow, direct=None, log="warn"):
    e = {"PP_PORTS": "{port}", "PP_ALLOW": allow, "PP_LOG": log}
    if direct is not None:
        e["PP_DIRECT"] = direct
    return start_srv("-b", env=e)


def log_after(srv, start, pattern, timeout=5, src=LB):
    """The log line pattern, after line start of stderr.  The files are
    looked at from the accept path, as connections arrive: connections
    from src keep coming until the line is there."""
    import re
    deadline = time.monotonic() + timeout * SLOW
    while True:
        for ln in srv.lines("err")[start:]:
            if re.search(pattern, ln):
                return ln
        if time.monotonic() > deadline:
            raise pp.Fail("no log line %r; stderr: %r" % (
                pattern, srv.lines("err")[start:]))
        exchange(srv.target, v1() + b"x", src=src)
        time.sleep(0.1)


def n_err(srv):
    return len(srv.lines("err"))


@test(timeout=60)
def allow_file_followed_live():
    path = list_file("# the load balancer\n%s\n" % LB)
    srv = tcp_srv("@" + path)
    check(served(srv, LB), "the listed source is served")
    check(not served(srv, NEW), "an unlisted source is refused")
    mark = n_err(srv)
    time.sleep(1.0)  # a change in the second of the last look
    replace(path, "%s\n%s  # a second one\n" % (LB, NEW))
    dt = until("the added source served", lambda: served(srv, NEW))
    print("# added source trusted after %.2fs" % dt)
    check(dt < DELAY + 2.0 * SLOW, "took %.2fs" % dt)
    log_after(srv, mark, r"PP_ALLOW: list changed: 1 added, 0 removed "
              r"\(2 entries\)")
    # Removed again, by a write in place this time.
    mark = n_err(srv)
    time.sleep(1.0)
    rewrite_in_place(path, "%s\n" % LB)
    until("the removed source refused", lambda: served(srv, NEW), False)
    log_after(srv, mark, r"PP_ALLOW: list changed: 0 added, 1 removed "
              r"\(1 entry\)")
    check(served(srv, LB), "the listed source is still served")


@test(timeout=60)
def bad_edit_keeps_the_last_good_list():
    path = list_file("%s\n%s\n" % (LB, NEW))
    srv = tcp_srv("@" + path)
    check(served(srv, NEW), "listed source served")
    mark = n_err(srv)
    time.sleep(1.0)
    replace(path, "%s\n10.0.0.1/8\n" % LB)  # host bits: does not parse
    line = log_after(srv, mark, r"PP_ALLOW: %s:2: '10\.0\.0\.1/8': host "
                     r"bits set beyond prefix; keeping the last good list "
                     r"\(2 entries\)" % path, timeout=PATIENCE)
    # Never fail open, never half a list: both sources still served.
    check(served(srv, NEW) and served(srv, LB), "the last good list holds")
    # Connections for three more looks at the same bad file: no new line.
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:
        check(served(srv, LB), "the last good list holds")
        time.sleep(0.2)
    errs = [ln for ln in srv.lines("err")[mark:] if "keeping" in ln]
    eq(len(errs), 1, "one error line for one bad state (%r)" % line)
    # The file vanishes: the list stays, one more error.
    mark = n_err(srv)
    os.unlink(path)
    log_after(srv, mark, r"PP_ALLOW: '@%s': no such file; keeping the last "
              r"good list" % path, timeout=PATIENCE)
    check(served(srv, NEW), "the last good list holds without its file")
    # Back, good: followed again.
    mark = n_err(srv)
    replace(path, "%s\n" % LB)
    until("followed again", lambda: served(srv, NEW), False)
    log_after(srv, mark, r"list changed: 0 added, 1 removed")


@test(timeout=60)
def direct_file_and_inline_entries():
    allow = list_file("%s\n" % LB, "allow")
    direct = list_file("# nobody yet\n", "direct")
    srv = tcp_srv("127.0.0.23, @" + allow, direct="@" + direct)
    check(served(srv, "127.0.0.23"), "inline entry beside the file")
    check(served(srv, LB), "file entry beside the inline one")
    # A direct source is served as is, no header.
    def direct_ok():
        r = exchange(srv.target, b"hello\n", src=NEW)
        return not r.refused and any(
            "peer=%s:" % NEW in ln for ln in srv.conn_lines())
    check(not direct_ok(), "not direct yet")
    time.sleep(1.0)
    replace(direct, "%s/32\n" % NEW)
    until("direct source served as is", direct_ok)


@test(timeout=60)
def datagram_source_added_live():
    if not os.access(UDPSRV, os.X_OK):
        raise pp.Skip("udpsrv not built")
    path = list_file("%s\n" % LB)
    port = pp.free_port()
    srv = pp.Proc([UDPSRV, "-l", "127.0.0.1", "-p", str(port)],
                  env={"PP_PORTS": "%d/udp" % port, "PP_ALLOW": "@" + path})
    srv.wait_line("^listening ", timeout=10)
    hdr = v2(transport="DGRAM")

    def heard(src, tag):
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind((src, 0))
        try:
            c.sendto(hdr + tag, ("127.0.0.1", port))
            time.sleep(0.1)
        finally:
            c.close()
        return any(tag.decode() in ln for ln in srv.lines())

    check(heard(LB, b"one"), "listed proxy heard")
    check(not heard(NEW, b"two"), "unlisted proxy dropped")
    time.sleep(1.0)
    replace(path, "%s\n%s\n" % (LB, NEW))
    n = [0]

    def heard_new():
        n[0] += 1
        return heard(NEW, b"late%d" % n[0])
    until("added proxy heard", heard_new)


@test(timeout=60)
def datagram_source_removed_live():
    """A proxy the thread has just trusted, removed from the file: its
    datagrams are dropped from the swap on (the library remembers the
    last source it judged, never past a change of the lists)."""
    if not os.access(UDPSRV, os.X_OK):
        raise pp.Skip("udpsrv not built")
    path = list_file("%s\n%s\n" % (LB, NEW))
    port = pp.free_port()
    srv = pp.Proc([UDPSRV, "-l", "127.0.0.1", "-p", str(port)],
                  env={"PP_PORTS": "%d/udp" % port, "PP_ALLOW": "@" + path,
                       "PP_LOG": "warn"})
    srv.wait_line("^listening ", timeout=10)
    hdr = v2(transport="DGRAM")
    n = [0]

    def heard(src):
        n[0] += 1
        tag = "dg%d" % n[0]
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind((src, 0))
        try:
            c.sendto(hdr + tag.encode(), ("127.0.0.1", port))
            time.sleep(0.1)
        finally:
            c.close()
        return any(tag in ln for ln in srv.lines())

    def swapped():
        return any("PP_ALLOW: list changed: 0 added, 1 removed" in ln
                   for ln in srv.lines("err"))

    check(heard(LB), "listed proxy heard")
    check(heard(NEW), "second listed proxy heard")
    check(heard(NEW), "second listed proxy heard again")
    time.sleep(1.0)
    replace(path, "%s\n" % LB)
    # The files are looked at from the receive path: datagrams from NEW
    # keep coming until the swap is logged; each one sent after that
    # must be dropped.
    t0 = time.monotonic()
    while True:
        done = swapped()
        got = heard(NEW)
        if done:
            check(not got, "removed proxy heard after the swap")
            break
        if time.monotonic() - t0 > PATIENCE:
            raise pp.Fail("no swap after %.1fs: %r" % (
                PATIENCE, srv.lines("err")))
    for _ in range(3):
        check(not heard(NEW), "removed proxy dropped")
    check(heard(LB), "the listed proxy still heard")


LOAD_ERRORS = [
    # (file content or None for no file, entry, what the line says)
    (None, "@{dir}/missing", r"PP_ALLOW: '@{dir}/missing': no such file"),
    ("127.0.0.1\n# fine\n10.0.0.0/33\n", "@{file}",
     r"PP_ALLOW: {file}:3: '10\.0\.0\.0/33': prefix length out of range"),
    ("@/etc/hosts\n", "@{file}",
     r"PP_ALLOW: {file}:1: '@/etc/hosts': a list file cannot name another"),
    ("127.0.0.1\n", "@relative/allow",
     r"PP_ALLOW: '@relative/allow': a list file's path must be absolute"),
    (None, "@{dir}", r"PP_ALLOW: '@{dir}': is a directory"),
    # The library follows at most eight files a list.
    ("127.0.0.1\n", " ".join(["@{file}"] * 9),
     r"PP_ALLOW: '@{file}': too many list files \(max 8\)"),
]


def load_error_cases():
    for text, entry, msg in LOAD_ERRORS:
        d = pp.tempdir()
        f = os.path.join(d, "allow")
        if text is not None:
            replace(f, text)
        sub = {"{dir}": d, "{file}": f}
        for k, v in sub.items():
            entry = entry.replace(k, v)
            msg = msg.replace(k, v)
        yield entry, msg


@test(timeout=60)
def load_errors_exit_78_naming_file_and_line():
    import re
    for entry, msg in load_error_cases():
        p = pp.Proc([pp.SRV, "-p", str(pp.free_port())],
                    env={"PP_PORTS": "25", "PP_ALLOW": entry})
        rc = p.wait_exit(10)
        eq(rc, pp.EX_CONFIG, entry + ": exit status")
        eq(p.lines(), [], entry + ": srv's main ran")
        msgs = p.log_lines()
        check(len(msgs) == 1 and re.search(msg, msgs[0]),
              "%s: want %r, got %r" % (entry, msg, msgs))


def wrapper(*args):
    """The built wrapper, run like a user would; under a sanitizer build
    its runtime goes first in LD_PRELOAD, where the wrapper keeps it."""
    import subprocess
    e = pp.child_env(preload=False)
    if pp.ASAN_LIB:
        e["LD_PRELOAD"] = pp.ASAN_LIB
    return subprocess.run([PPSHIM, "--library", pp.LIB] + list(args),
                          capture_output=True, text=True, timeout=10, env=e)


@test(timeout=60)
def wrapper_reads_the_files_too():
    import re
    if not os.access(PPSHIM, os.X_OK):
        raise pp.Skip("ppshim not built")
    for entry, msg in load_error_cases():
        r = wrapper("--ports=25", "--allow=" + entry, "--", "/bin/true")
        eq(r.returncode, pp.EX_CONFIG, entry + ": wrapper exit status")
        check(re.search("ppshim: " + msg, r.stderr),
              "%s: wrapper says %r" % (entry, r.stderr))
    good = list_file("%s\n" % LB)
    r = wrapper("--ports=25", "--allow=@" + good, "--", "/bin/true")
    eq(r.returncode, 0, "a good file: %r" % r.stderr)


if __name__ == "__main__":
    pp.main("lists from files")
