#!/usr/bin/env python3
"""caps.py - what this host can do, found out by doing it (stdlib only).

Tests that need something of the host (running a 32-bit program, a
network namespace, IPv6 on lo, a daemon) ask here, and report SKIP with
the reason when the answer is no.  Every probe really does the thing: a
32-bit program is built *and run*, a namespace is created, a socket
option is set and read back.  The compiler alone proves nothing: gcc
-m32 builds on kernels that cannot execute the result.

Each probe runs once per process; its answer is (ok, detail), detail
saying why not (or what was found).  A capability that is present and
then misbehaves is the test's business: it fails loudly there.

Run as a program:
  caps.py                  one line per capability (the CI report)
  caps.py --skips DIR...   the SKIP lines of the test logs under DIR...,
                           counted by reason
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile

SO_COOKIE = 57
TCP_DEFER_ACCEPT = 9

_memo = {}


def _once(fn):
    def probe():
        if fn.__name__ not in _memo:
            try:
                _memo[fn.__name__] = fn()
            except Exception as e:  # a probe never takes a test down
                _memo[fn.__name__] = (False, "probe failed: %s" % e)
        return _memo[fn.__name__]
    probe.__name__ = fn.__name__
    probe.__doc__ = fn.__doc__
    return probe


def _run(argv, timeout=20, **kw):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=timeout, **kw)
    except FileNotFoundError:
        return None, "%s not found" % argv[0]
    except subprocess.TimeoutExpired:
        return None, "%s timed out" % argv[0]
    except OSError as e:
        return None, "%s: %s" % (argv[0], e.strerror)
    return p.returncode, p.stdout.decode(errors="replace").strip()


def _last_line(text):
    lines = [x for x in text.splitlines() if x.strip()]
    return lines[-1][:160] if lines else ""


def _build_and_run(cc, flags, what):
    """Builds a program that exits 42 with cc and flags, and runs it."""
    if shutil.which(cc) is None:
        return False, "%s not installed" % cc
    tmp = tempfile.mkdtemp(prefix="ppshim-caps-")
    try:
        src = os.path.join(tmp, "t.c")
        exe = os.path.join(tmp, "t")
        with open(src, "w") as f:
            f.write("int main(void) { return 42; }\n")
        rc, out = _run([cc] + flags + ["-o", exe, src])
        if rc != 0:
            return False, "cannot build %s (%s): %s" % (
                what, " ".join([cc] + flags), _last_line(out))
        try:
            p = subprocess.run([exe], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=20)
        except OSError as e:
            return False, "the kernel cannot run %s (%s)" % (
                what, e.strerror or e)
        if p.returncode != 42:
            return False, "%s ran but exited %d, not 42" % (
                what, p.returncode)
        return True, "built and ran %s" % what
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@_once
def exec32():
    """A 32-bit x86 program builds and runs."""
    if os.uname().machine != "x86_64":
        return False, "not an x86-64 machine"
    ok, why = _build_and_run("gcc", ["-m32"], "a 32-bit program")
    if ok or why.startswith("cannot build"):
        return ok, why
    return False, why + ": no IA-32 emulation in this kernel?"


@_once
def exec32_static():
    """A 32-bit x86 statically linked program builds and runs."""
    ok, why = exec32()
    if not ok:
        return ok, why
    return _build_and_run("gcc", ["-m32", "-static"],
                          "a static 32-bit program")


@_once
def musl():
    """musl-gcc builds a program that runs."""
    return _build_and_run("musl-gcc", [], "a musl program")


@_once
def i386_multiarch():
    """Debian's i386 architecture is configured and its C library is
    installed (a 32-bit program linked against /lib/i386-linux-gnu)."""
    rc, out = _run(["dpkg", "--print-foreign-architectures"])
    if rc is None:
        return False, out
    if "i386" not in out.split():
        return False, "i386 is not a dpkg foreign architecture"
    if not os.path.exists("/lib/i386-linux-gnu/libc.so.6"):
        return False, "libc6:i386 not installed"
    ok, why = exec32()
    return (True, "libc6:i386 runs") if ok else (False, why)


@_once
def netns():
    """unshare -n gives a new network namespace whose lo can be used."""
    if shutil.which("unshare") is None:
        return False, "unshare not installed (util-linux)"
    rc, out = _run(["unshare", "-n", "sh", "-c",
                    "ip link set lo up 2>/dev/null || "
                    "ifconfig lo up 2>/dev/null; exit 0"])
    if rc != 0:
        return False, "unshare -n failed: %s" % _last_line(out)
    return True, "unshare -n works"


@_once
def utsns():
    """unshare --uts gives a namespace whose host name can be set."""
    if shutil.which("unshare") is None:
        return False, "unshare not installed (util-linux)"
    rc, out = _run(["unshare", "--uts", "hostname", "mail.ppshim.test"])
    if rc != 0:
        return False, "unshare --uts failed: %s" % _last_line(out)
    return True, "unshare --uts works"


@_once
def ipv6_lo():
    """A TCP connection to ::1 works."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as ls:
            ls.bind(("::1", 0))
            ls.listen(1)
            with socket.create_connection(ls.getsockname()[:2], 5):
                pass
        return True, "::1 answers"
    except OSError as e:
        return False, "no IPv6 on loopback (%s)" % (e.strerror or e)


@_once
def so_cookie():
    """getsockopt(SO_COOKIE) answers a non-zero cookie."""
    try:
        with socket.socket() as s:
            v = s.getsockopt(socket.SOL_SOCKET, SO_COOKIE, 8)
        if len(v) == 8 and v != b"\0" * 8:
            return True, "SO_COOKIE answers"
        return False, "SO_COOKIE answered %r" % v
    except OSError as e:
        return False, "SO_COOKIE unsupported (%s)" % (e.strerror or e)


@_once
def tcp_defer_accept():
    """TCP_DEFER_ACCEPT can be set on a listener and is read back."""
    try:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            s.setsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT, 3)
            v = s.getsockopt(socket.IPPROTO_TCP, TCP_DEFER_ACCEPT)
        if v > 0:
            return True, "TCP_DEFER_ACCEPT set and read back"
        return False, "TCP_DEFER_ACCEPT reads back %d" % v
    except OSError as e:
        return False, "TCP_DEFER_ACCEPT unsupported (%s)" % (e.strerror or e)


@_once
def mountns():
    """unshare -m gives a private mount namespace where a tmpfs can be
    mounted over /dev and a file bound over another (what test_matrix.py
    does for a private /dev/log and a daemon's compiled-in paths)."""
    if shutil.which("unshare") is None:
        return False, "unshare not installed (util-linux)"
    tmp = tempfile.mkdtemp(prefix="ppshim-caps-")
    try:
        src = os.path.join(tmp, "src")
        with open(src, "w") as f:
            f.write("ppshim-mountns\n")
        dst = os.path.join(tmp, "dst")
        open(dst, "w").close()
        rc, out = _run(["unshare", "-m", "sh", "-c",
                        "mount --make-rprivate / && "
                        "mount -t tmpfs ppshim-probe /dev && "
                        "mount --bind \"$0\" \"$1\" && cat \"$1\"",
                        src, dst])
    finally:
        shutil.rmtree(tmp, True)
    if rc != 0 or "ppshim-mountns" not in out:
        return False, "unshare -m failed: %s" % _last_line(out or "")
    return True, "unshare -m, tmpfs and bind mounts work"


# Programs the tests start, and the argument that makes each print its
# version and exit without doing anything else.
PROGRAMS = [
    ("haproxy", ["-v"]), ("nginx", ["-v"]), ("curl", ["--version"]),
    ("xinetd", ["-version"]), ("tcpserver", None), ("dnsdist", ["--version"]),
    ("dnsmasq", ["--version"]), ("vsftpd", ["-v"]), ("exim4", ["-bV"]),
    ("sshd", ["-V"]), ("stunnel4", ["-version"]), ("setcap", ["-v"]),
    ("valgrind", ["--version"]), ("clang", ["--version"]),
]


def _program(name, args):
    path = shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/sbin/" + name)
         if os.access(p, os.X_OK)), None)
    if path is None:
        return False, "%s not installed" % name
    if args is None:
        return True, path
    rc, out = _run([path] + args, timeout=10, stdin=subprocess.DEVNULL)
    if rc is None:
        return False, "%s does not start: %s" % (name, out)
    return True, "%s" % path


def program(name, args=()):
    """Is program name installed and does it start?  (ok, detail)"""
    key = "program:" + name
    if key not in _memo:
        _memo[key] = _program(name, list(args) if args is not None else None)
    return _memo[key]


# (label, probe, what skips without it)
PROBES = [
    ("32-bit exec", exec32,
     "test_wrapper's 32-bit --force runs; tests/abi.sh m32"),
    ("32-bit static exec", exec32_static,
     "test_wrapper's static 32-bit --force run"),
    ("i386 multiarch", i386_multiarch,
     None),
    ("musl-gcc", musl, "tests/abi.sh musl"),
    ("network namespaces (unshare -n)", netns,
     "the tests of a host without ::1"),
    ("UTS namespaces (unshare --uts)", utsns,
     "test_daemons' holdup_sendmail"),
    ("IPv6 on lo", ipv6_lo, "the IPv6 tests"),
    ("mount namespaces (unshare -m)", mountns,
     "test_matrix's OpenSMTPD, Courier, Cyrus and inetutils-ftpd"),
    ("SO_COOKIE", so_cookie, None),
    ("TCP_DEFER_ACCEPT", tcp_defer_accept, None),
]


def report():
    """One line per capability: 'NAME: yes' or 'NAME: no (WHY; what
    skips)'."""
    for label, probe, users in PROBES:
        ok, why = probe()
        if ok:
            print("%s: yes" % label)
        elif users:
            print("%s: no (%s; skipped: %s)" % (label, why, users))
        else:
            print("%s: no (%s; no test is skipped for it)" % (label, why))
    missing = []
    for name, args in PROGRAMS:
        ok, why = program(name, args)
        if not ok:
            missing.append(why)
    print("programs: %s" % ("all present" if not missing else
                            "; ".join(missing) + " (their tests skip)"))


_SKIP = re.compile(r"#\s*SKIP:?\s*(.*)$", re.I)


def _logs(paths):
    for top in paths:
        if os.path.isfile(top):
            yield top
        for root, _, files in os.walk(top):
            for f in sorted(files):
                if f.endswith(".log") and f != "test-suite.log":
                    yield os.path.join(root, f)


def skip_summary(paths):
    """Counts the SKIP lines ('ok ... # SKIP why', '1..0 # SKIP why') of
    the test logs in paths (files, or directories searched for *.log) by
    reason, and prints the counts."""
    counts = {}
    for log in _logs(paths):
        try:
            with open(log, errors="replace") as fh:
                for line in fh:
                    m = _SKIP.search(line)
                    if m and line.startswith(("ok ", "1..0")):
                        why = m.group(1).strip() or "(no reason given)"
                        counts[why] = counts.get(why, 0) + 1
        except OSError:
            pass
    print("skipped checks: %d" % sum(counts.values()))
    for why, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print("%5d  %s" % (n, why))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--skips":
        skip_summary(sys.argv[2:])
    else:
        report()
