#!/usr/bin/env python3
"""test_exec.py - connections that cross exec (CONTRACT.md: the hand-over
across exec, PP_INHERIT, TCPREMOTEIP, PP_TLV_*).

The program that serves each connection is tests/helpers/whoami: it reports
getpeername(0), getsockname(0) and the environment in one line on the
connection.  It is started by:
  - tests/helpers/forkexec, a preloaded server that accepts and forks and
    execs (every exec variant) or posix_spawns it;
  - ucspi-tcp's tcpserver, preloaded behind HAProxy, or not preloaded with
    whoami reading its own header (PP_INHERIT=1);
  - systemd-socket-activate -a (inetd style and LISTEN_FDS style), never
    preloaded, with PP_INHERIT=1;
  - xinetd, preloaded.
Every positive test asserts an advertised address that only the library can
produce; tests of what must not happen (a forged hand-over, no PP_INHERIT)
assert the real address.

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_exec.py [NAME...]
"""

import os
import re
import socket
import struct
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pptest as pp  # noqa: E402
from pptest import (ASAN_LIB, CLIENT4, CLIENT6, LIB, SERVER4,  # noqa: E402
                    SERVER6, SLOW, Fail, Proc, Skip, all_tlvs, check, eq,
                    exchange, free_port, test, v1, v2, wait_listening)

HELPERS = os.path.join(pp.BUILDDIR, "tests", "helpers")
WHOAMI = os.path.join(HELPERS, "whoami")
FORKEXEC = os.path.join(HELPERS, "forkexec")

# The source HAProxy's clients connect from.
CLIENT = "127.0.0.5"

EXEC_MODES = ["execve", "execv", "execvp", "execvpe", "execl", "execlp",
              "execle", "fexecve", "posix_spawn", "posix_spawnp"]

# What all_tlvs() carries, as whoami reports it.
TLV_FIELDS = {"PP_TLV_AUTHORITY": "example.com", "PP_TLV_ALPN": "h2",
              "PP_TLV_UNIQUE_ID": "u" * 32, "PP_TLV_SSL_CN": "client"}
NO_TLV_FIELDS = {k: "-" for k in TLV_FIELDS}


def preload():
    """LD_PRELOAD for a process started through a launcher."""
    return ":".join(x for x in (ASAN_LIB, LIB) if x)


def need_helpers():
    for path in (WHOAMI, FORKEXEC):
        if not os.access(path, os.X_OK):
            raise Skip("helper not built: %s" % path)


def parse_whoami(data):
    """The fields of the first whoami line in data, or None."""
    line = data.partition(b"\n")[0].decode(errors="replace")
    if not line.startswith("whoami "):
        return None
    return dict(w.partition("=")[::2] for w in line.split()[1:])


def expect(fields, what, **want):
    check(fields is not None, "%s: no whoami line" % what)
    for key, value in want.items():
        eq(fields.get(key), str(value), "%s: %s" % (what, key))


def expect_noted(failures, fields, what, **want):
    """expect(), with a failure appended to the list failures instead of
    raised (a case that goes on with its other variants)."""
    try:
        expect(fields, what, **want)
    except Fail as e:
        failures.append(str(e))


def ask(target, data, what, src=None, shutdown=True, timeout=5):
    """One connection; returns (fields, the bytes after whoami's line,
    Result)."""
    r = exchange(target, data, src=src, shutdown=shutdown, timeout=timeout)
    fields = parse_whoami(r.data)
    check(fields is not None, "%s: whoami did not answer: %r" % (what, r))
    return fields, r.data.partition(b"\n")[2], r


def advertised(sport, tlvs=False):
    """What whoami must report behind v1()/v2() with source port sport."""
    want = {"peer": "%s:%d" % (CLIENT4, sport), "sock": "%s:25" % SERVER4,
            "TCPREMOTEIP": CLIENT4, "TCPREMOTEPORT": sport,
            "TCPLOCALIP": SERVER4, "TCPLOCALPORT": 25,
            "TCPREMOTEHOST": "-", "TCPREMOTEINFO": "-"}
    want.update(TLV_FIELDS if tlvs else NO_TLV_FIELDS)
    return want


def real(r, port):
    """What whoami must report when nothing is advertised."""
    return {"peer": "127.0.0.1:%d" % r.local[1],
            "sock": "127.0.0.1:%d" % port}


def start(argv, name, env=None, preload_it=True, port=None, ready=None,
          valgrind=True, host="127.0.0.1"):
    """Starts a launcher listening on port (argv may contain {port});
    waits for the line matching ready on stdout, or for the port.
    Returns (proc, port)."""
    def launch(p):
        args = [a.replace("{port}", str(p)) for a in argv]
        e = {k: v.replace("{port}", str(p)) for k, v in (env or {}).items()}
        return Proc(args, env=e, preload=preload_it, name=name,
                    valgrind=valgrind)

    def is_ready(proc, p):
        if ready:
            proc.wait_line(ready, timeout=10)
        else:
            wait_listening(proc, p)
    return pp.start_on_free_port(launch, is_ready, port,
                                 lambda: free_port(host),
                                 ("in use", "already used"), name)


def start_forkexec(*opts, args=(), env=None, host="127.0.0.1", prog=None):
    """forkexec, preloaded, its port PROXY-only, running whoami ARGS (or
    the program list prog)."""
    need_helpers()
    e = {"PP_PORTS": "{port}", "PATH": HELPERS + ":/usr/bin:/bin"}
    e.update(env or {})
    mode = opts[opts.index("-m") + 1] if "-m" in opts else "execve"
    # The PATH-searching calls are given a bare name.
    if prog is None:
        prog = ["whoami" if mode.endswith(("p", "pe")) else WHOAMI]
    argv = [FORKEXEC] + list(opts) + ["-l", host, "-p", "{port}", "--"
                                      ] + list(prog) + list(args)
    proc, port = start(argv, "forkexec", env=e, ready="^listening ",
                       host=host)
    return proc, (host, port)


@test
def sockname_follows_the_program_that_asks():
    # PP_SOCKNAME is each process's own: a launcher that accepts with one
    # setting hands the connection over, and the program it runs answers
    # getsockname with its own (vsftpd under inetd needs real).
    for launcher, child in (("proxied", "real"), ("real", "proxied")):
        proc, target = start_forkexec(
            env={"PP_SOCKNAME": launcher},
            prog=["/usr/bin/env", "PP_SOCKNAME=" + child, WHOAMI])
        what = "launcher %s, program %s" % (launcher, child)
        fields, _, r = ask(target, v1(sport=4100), what)
        want = {"peer": "%s:4100" % CLIENT4}
        want["sock"] = ("127.0.0.1:%d" % target[1] if child == "real"
                        else "%s:25" % SERVER4)
        expect(fields, what, **want)
        proc.stop()


# ===== A preloaded server that forks and execs =====

def check_exec_mode(mode):
    """v1 and v2 (with TLVs), server speaks first and client speaks first,
    all reported by whoami under forkexec -m mode."""
    for args in ((), ("-r",)):
        fe, target = start_forkexec("-m", mode, args=args)
        for name, hdr_fn, tlvs in (("v1", lambda p: v1(sport=p), False),
                                   ("v2", lambda p: v2(sport=p,
                                                       tlvs=all_tlvs()),
                                    True)):
            sport = pp.next_sport()
            what = "%s %s %s" % (mode, name, "client first" if args
                                 else "server first")
            line = b"hello %d\n" % sport if args else b""
            fields, rest, _ = ask(target, hdr_fn(sport) + line, what)
            expect(fields, what, **advertised(sport, tlvs))
            eq(rest, line, what + ": the client's line")
        fe.stop()


def exec_mode_test(mode):
    def fn():
        check_exec_mode(mode)
    fn.__name__ = "forkexec_%s_advertised" % mode
    return fn


for _mode in EXEC_MODES:
    test(exec_mode_test(_mode))


@test
def forkexec_payload_intact():
    # The hand-over reads nothing: every byte after the header reaches the
    # exec'ed program, also when it came in the same segment as the header.
    fe, target = start_forkexec(args=("-r", "-e"))
    payload = b"first line\n" + os.urandom(256 * 1024)
    for name, hdr in (("v1", v1(sport=4000)),
                      ("v2", v2(sport=4000, tlvs=all_tlvs(), crc=True))):
        fields, rest, _ = ask(target, hdr + payload, name)
        expect(fields, name, **advertised(4000, name == "v2"))
        check(rest == payload, "%s: data differs: sent %d bytes, got %d "
              "(first %r)" % (name, len(payload), len(rest), rest[:40]))


@test
def forkexec_child_with_pp_inherit_does_not_wait():
    # The header was read by the parent: a child given PP_INHERIT=1 (by
    # env(1), itself preloaded) must neither wait for another header nor
    # abort, also after LOCAL.  The client keeps its side open, as a
    # waiting child would need it to.
    for mode in ("execve", "posix_spawn"):
        fe, target = start_forkexec(
            "-m", mode, prog=["/usr/bin/env", "PP_INHERIT=1", WHOAMI])
        sport = pp.next_sport()
        fields, _, r = ask(target, v1(sport=sport), mode, shutdown=False)
        expect(fields, mode, **advertised(sport))
        check(r.elapsed < 1.0 * SLOW, "%s: whoami took %.2fs" % (
            mode, r.elapsed))
        fields, _, r = ask(target, v2(cmd="LOCAL", family="UNSPEC"),
                           mode + " LOCAL", shutdown=False)
        expect(fields, mode + " LOCAL", **real(r, target[1]))
        check(r.elapsed < 1.0 * SLOW, "%s LOCAL: whoami took %.2fs" % (
            mode, r.elapsed))
        fe.stop()


@test(ipv6=True)
def forkexec_ipv6():
    fe, target = start_forkexec(args=("-r",), host="::1")
    for name, hdr, tlvs in (("v1", v1("TCP6", sport=4006), False),
                            ("v2", v2(family="INET6", sport=4006,
                                      tlvs=all_tlvs()), True),
                            ("v1 IPv4 client", v1(sport=4006), False)):
        fields, rest, _ = ask(target, hdr + b"x\n", name)
        want = advertised(4006, tlvs)
        if "IPv4" in name:
            want.update(peer="[::ffff:%s]:4006" % CLIENT4,
                        sock="[::ffff:%s]:25" % SERVER4,
                        TCPREMOTEIP="::ffff:" + CLIENT4,
                        TCPLOCALIP="::ffff:" + SERVER4)
        else:
            want.update(peer="[%s]:4006" % CLIENT6, sock="[%s]:25" % SERVER6,
                        TCPREMOTEIP=CLIENT6, TCPLOCALIP=SERVER6)
        expect(fields, name, **want)
        eq(rest, b"x\n", name + ": data")


@test(timeout=120)
def forkexec_200_shell_children():
    count = max(200 // pp.LOAD_DIV, 10)
    fe, target = start_forkexec("-k", str(count))
    r = exchange(target, v1(sport=4200), timeout=60)
    first, _, rest = r.data.partition(b"\n")
    eq(first.decode(errors="replace"), "children=%d ok=%d" % (count, count),
       "sh -c true children")
    # The program exec'ed after them still gets the hand-over.
    expect(parse_whoami(rest), "after the children", **advertised(4200))


@test
def posix_spawn_dup2_moves_the_socket():
    # The file actions move the connection onto 0 and 1 in the child: the
    # hand-over must find it there by its cookie, whether the original
    # number is closed in the child (default), kept (-K), or close-on-exec
    # in the server (-C).
    failures = []
    for opts in ((), ("-K",), ("-C",), ("-C", "-K")):
        for mode in ("posix_spawn", "posix_spawnp"):
            fe, target = start_forkexec("-m", mode, *opts)
            what = " ".join((mode,) + opts)
            sport = pp.next_sport()
            fields, _, _ = ask(target, v2(sport=sport, tlvs=all_tlvs()),
                               what)
            expect_noted(failures, fields, what, **advertised(sport, True))
            fe.stop()
    check(not failures, "; ".join(failures))


@test
def program_gets_its_own_connection_variables():
    # The server still holds an earlier connection (with TLVs) when it
    # starts the program for a later one (without): the program's
    # TCPREMOTEIP, TCPREMOTEPORT and PP_TLV_* describe its own connection.
    failures = []
    for mode in ("execve", "posix_spawn", "posix_spawnp"):
        fe, target = start_forkexec("-m", mode, "-H")
        for n, (hdr, tlvs) in enumerate(((v2(sport=4100, tlvs=all_tlvs()),
                                          True), (v1(sport=4101), False))):
            what = "%s connection %d" % (mode, n + 1)
            # The server keeps the connection open: read just the line.
            s = pp.connect(target)
            pp.defer(s.close)
            s.sendall(hdr)
            fields = parse_whoami(pp.read_line(s).encode() + b"\n")
            expect_noted(failures, fields, what,
                         **advertised(4100 + n, tlvs))
        fe.stop()
    check(not failures, "; ".join(failures))


@test
def fork_exec_cloexec_and_kept_socket():
    # The same with fork, dup2 and exec (the dup2 is seen by the library).
    failures = []
    for opts in (("-K",), ("-C",), ("-C", "-K")):
        fe, target = start_forkexec(*opts)
        what = " ".join(opts)
        sport = pp.next_sport()
        fields, _, _ = ask(target, v1(sport=sport), what)
        expect_noted(failures, fields, what, **advertised(sport))
        fe.stop()
    check(not failures, "; ".join(failures))


# ===== tcpserver =====

def tcpserver_bin():
    return pp.find("tcpserver", "/usr/bin/tcpserver")


def start_tcpserver(prog, env=None, preload_it=False):
    """tcpserver -v -R -H -l0 on 127.0.0.1 running prog (a list, may hold
    {port}); with preload_it, tcpserver itself is preloaded with its port
    PROXY-only."""
    need_helpers()
    argv = [tcpserver_bin(), "-v", "-R", "-H", "-l0", "127.0.0.1",
            "{port}"] + list(prog)
    proc, port = start(argv, "tcpserver", env=env, preload_it=preload_it,
                       valgrind=False)
    return proc, ("127.0.0.1", port)


def inherit_prog(*args, **env):
    """env LD_PRELOAD=... VAR=... whoami ARGS (env itself not preloaded)."""
    e = {"LD_PRELOAD": preload(), "PP_PORTS": "{port}",
         "PP_ALLOW": "127.0.0.1"}
    e.update(env)
    return (["/usr/bin/env"] + ["%s=%s" % kv for kv in e.items() if kv[1]] +
            [WHOAMI] + list(args))


@test
def tcpserver_unpreloaded_pp_inherit():
    for args in (("-r", "-e"), ()):
        ts, target = start_tcpserver(inherit_prog(
            *args, PP_INHERIT="1", TCPREMOTEHOST="proxy.invalid"))
        for name, hdr, tlvs in (("v1", v1(sport=4001), False),
                                ("v2", v2(sport=4001, tlvs=all_tlvs()),
                                 True)):
            what = "%s %s" % (name, " ".join(args) or "server first")
            data = b"line\n" + os.urandom(4096) if args else b""
            fields, rest, _ = ask(target, hdr + data, what)
            expect(fields, what, **advertised(4001, tlvs))
            check(rest == data, "%s: data differs: %r" % (what, rest[:40]))
        ts.stop()


@test
def tcpserver_unpreloaded_without_pp_inherit():
    # No PP_INHERIT=1: the header is never guessed at; whoami reads it as
    # the client's first line and sees the real address.
    ts, target = start_tcpserver(inherit_prog("-r"))
    hdr = v1(sport=4002)
    fields, rest, r = ask(target, hdr, "no PP_INHERIT")
    expect(fields, "no PP_INHERIT", TCPREMOTEIP="127.0.0.1",
           **real(r, target[1]))
    eq(rest, hdr, "the header as data")


@test
def tcpserver_unpreloaded_pp_inherit_refusals():
    # Untrusted source (exit 77) and a bad header (exit 76): whoami's main
    # never runs, the client gets nothing.
    for what, allow, data, status in (
            ("untrusted", "127.0.0.9", v1(), 77),
            ("bad header", "127.0.0.1", b"PROXY TCP4 garbage\r\n", 76)):
        ts, target = start_tcpserver(inherit_prog("-r", PP_INHERIT="1",
                                                  PP_ALLOW=allow))
        r = exchange(target, data + b"line\n")
        check(r.refused, "%s: expected an abort, got %r" % (what, r))
        # tcpserver -v logs "end PID status S", S the raw wait status.
        ts.wait_line(r"end \d+ status %d$" % (status << 8), timeout=5,
                     stream="err")
        ts.stop()


def printable(line):
    """Only printable ASCII (undecodable bytes became U+FFFD)."""
    return all(" " <= ch <= "~" for ch in line)


@test
def pp_inherit_refusal_log_is_printable():
    # The reason of a refused inherited connection is logged from storage
    # of the caller's: the line is the reason itself, never bytes of a
    # frame that is gone.
    for what, data, reason in (
            ("bad header", b"PROXY TCP4 garbage\r\n", "v1"),
            ("no header", b"hello there, no header at all\r\n",
             "not a PROXY header|signature|v1|v2"),
            ("closed early", b"PROXY TCP4 1.2.3.4",
             "closed before the header was complete")):
        ts, target = start_tcpserver(inherit_prog("-r", PP_INHERIT="1"))
        r = exchange(target, data)
        check(r.refused, "%s: expected an abort, got %r" % (what, r))
        ts.wait_line(r"end \d+ status %d$" % (76 << 8), timeout=5,
                     stream="err")
        lines = [ln for ln in ts.lines("err")
                 if "refused inherited connection" in ln]
        check(len(lines) == 1, "%s: one refusal line: %r" % (what, lines))
        check(printable(lines[0]), "%s: non-printable bytes in %r" % (
            what, lines[0]))
        why = lines[0].split(": ", 2)[-1]
        check(re.search(reason, why), "%s: reason %r, want /%s/" % (
            what, why, reason))
        ts.stop()


@test
def config_error_never_reaches_the_client():
    # inetd style with fd 2 on the connection too: a configuration error
    # ends the program with 78 before main, and the client receives
    # nothing (the line goes to syslog); an early warning (empty
    # PP_PORTS) is not written into the connection either.
    for what, env, status in (
            ("config error", {"PP_PORTS": "{port}",
                              "PP_ALLOW": "10.0.0.0/33"}, 78),
            ("early warning", {"PP_ALLOW": "127.0.0.1"}, 0)):
        e = {"LD_PRELOAD": preload()}
        e.update(env)
        cmd = "exec 2>&1; exec /usr/bin/env %s %s" % (
            " ".join("%s=%s" % kv for kv in e.items()), WHOAMI)
        ts, target = start_tcpserver(["/bin/sh", "-c", cmd])
        r = exchange(target, b"")
        ts.wait_line(r"end \d+ status %d$" % (status << 8), timeout=5,
                     stream="err")
        check(b"ppshim" not in r.data, "%s: the client received %r" % (
            what, r.data))
        if status:
            eq(r.data, b"", what + ": bytes the client received")
        else:
            check(r.data.startswith(b"whoami "), "%s: %r" % (what, r))
        ts.stop()


@test
def pp_inherit_in_a_process_that_accepts_is_refused():
    # PP_INHERIT=1 is for the program started per connection.  A process
    # that has it and accepts on a PROXY-only listener refuses those
    # connections and says why, once, in a printable line.
    if pp.VALGRIND:
        # The valgrind launcher is a program that loads the library too:
        # it turns PP_INHERIT off for the image it executes, as it must.
        raise Skip("under valgrind the launcher turns PP_INHERIT off for "
                   "the program")
    fe, target = start_forkexec(env={"PP_INHERIT": "1"})
    for n in range(2):
        r = exchange(target, v1(sport=pp.next_sport()))
        check(r.refused, "connection %d: expected an abort, got %r" % (
            n, r))
    fe.wait_line("PP_INHERIT=1 is for a program started per connection",
                 stream="err")
    lines = [ln for ln in fe.lines("err") if "PP_INHERIT=1 is for" in ln]
    eq(len(lines), 1, "error lines: %r" % lines)
    check(printable(lines[0]), "non-printable bytes in %r" % lines[0])


SPAWNER = os.path.join(HELPERS, "spawner")
HOSTILE = b"PROXY TCP4 6.6.6.6 7.7.7.7 666 25\r\n"


def fnv1a(data):
    h = 2166136261
    for b in data:
        h = ((h ^ b) * 16777619) & 0xffffffff
    return "%08x" % h


def start_spawner_service(mode):
    """tcpserver (not preloaded) running spawner -m MODE whoami with
    PP_INHERIT=1: an inetd-style service that starts a child by MODE."""
    if not os.access(SPAWNER, os.X_OK):
        raise Skip("helper not built: %s" % SPAWNER)
    e = {"LD_PRELOAD": preload(), "PP_PORTS": "{port}",
         "PP_ALLOW": "127.0.0.1", "PP_INHERIT": "1"}
    if ASAN_LIB:
        e["ASAN_OPTIONS"] = "detect_leaks=0"
    return start_tcpserver(["/usr/bin/env"] + ["%s=%s" % kv
                                               for kv in e.items()] +
                           [SPAWNER, "-m", mode, WHOAMI])


@test(timeout=90)
def pp_inherit_children_never_read_the_payload():
    # A PP_INHERIT=1 service reads the real header at load, then starts a
    # child by system(), popen(), posix_spawn() and fork+execve.  The
    # client's first bytes after the header are a header of its own
    # choosing: the child reports the advertised (or, after LOCAL, the
    # real) address, never 6.6.6.6; it eats no byte (the service reads
    # all of the payload); the service's system("true") returns 0 (no
    # child exits 76); and the connection closes cleanly (no reset from a
    # SO_LINGER 0 a child set).
    failures = []
    for mode in ("system", "popen", "posix_spawn", "execve"):
        ts, target = start_spawner_service(mode)
        for name in ("v1", "v2 LOCAL"):
            what = "%s %s" % (mode, name)
            sport = pp.next_sport()
            hdr = (v1(sport=sport) if name == "v1"
                   else v2(cmd="LOCAL", family="UNSPEC"))
            payload = HOSTILE + b"rest of the request\r\n" + os.urandom(
                8192)
            r = exchange(target, hdr + payload, timeout=10)
            try:
                check(r.status == "eof", "%s: connection ended %s: %r" % (
                    what, r.status, r))
                fields = parse_whoami(r.data)
                check(fields is not None, "%s: no whoami line: %r" % (
                    what, r))
                check("6.6.6.6" not in r.data.partition(b"\n")[0].decode(
                    errors="replace"), "%s: the client chose its address: "
                    "%r" % (what, r.data[:300]))
                if name == "v1":
                    expect(fields, what, peer="%s:%d" % (CLIENT4, sport),
                           sock="%s:25" % SERVER4, TCPREMOTEIP=CLIENT4,
                           TCPREMOTEPORT=sport)
                else:
                    expect(fields, what, TCPREMOTEIP="127.0.0.1",
                           **real(r, target[1]))
                last = r.data.rstrip(b"\n").rpartition(b"\n")[2].decode(
                    errors="replace")
                eq(last, "spawner true=0 read=%d sum=%s" % (
                    len(payload), fnv1a(payload)), what + ": service")
            except Fail as e:
                failures.append(str(e))
        ts.stop()
    check(not failures, "; ".join(failures))


def handover_entries(value):
    """[(fd, source port or None, the entry)] of a PPSHIM_HANDOVER."""
    out = []
    for entry in ([] if value in (None, "-") else value.split(";")):
        f = entry.split(",")
        src = f[3]
        port = int(src[4:8], 16) if len(src) >= 8 else None
        out.append((int(f[0]), port, entry))
    return out


@test
def posix_spawn_hands_over_only_what_the_child_gets():
    # A preloaded server holds three proxied connections a, b, c (a
    # close-on-exec, c closed by a file action) and posix_spawns whoami
    # with dup2(X, 0) and dup2(X, 1).  The helper's environment describes
    # only the descriptors it receives, under its own numbers: with X = b
    # nothing of a (its TLVs included) or c; with X = a (close-on-exec,
    # but dup2 carries it across) a on 0 and 1, never under its own
    # number, and nothing of c.
    if not os.access(SPAWNER, os.X_OK):
        raise Skip("helper not built: %s" % SPAWNER)
    for x in ("b", "a"):
        proc, port = start([SPAWNER, "-s", "-p", "{port}", "-d", x, WHOAMI],
                           "spawner", env={"PP_PORTS": "{port}",
                                           "PP_ALLOW": "127.0.0.1"},
                           ready="^listening ")
        target = ("127.0.0.1", port)
        base = pp.next_sport()
        ports = {"a": base + 1, "b": base + 2, "c": base + 3}
        hdrs = {"a": v2(sport=ports["a"], tlvs=all_tlvs()),
                "b": v1(sport=ports["b"]),
                "c": v2(sport=ports["c"], tlvs=all_tlvs())}
        socks = {}
        for k in ("a", "b", "c"):
            socks[k] = pp.connect(target)
            pp.defer(socks[k].close)
            socks[k].sendall(hdrs[k])
        _, rnd = proc.wait_line("^round ", timeout=10)
        fds = {k: int(v) for k, v in (w.split("=") for w in
                                     rnd.split()[1:])}
        fields = parse_whoami(pp.read_line(socks[x]).encode() + b"\n")
        what = "dup2 of %s (%s)" % (x, rnd)
        expect(fields, what, peer="%s:%d" % (CLIENT4, ports[x]),
               sock="%s:25" % SERVER4, TCPREMOTEIP="-",
               PP_TLV_AUTHORITY="example.com" if x == "a" else "-")
        entries = handover_entries(fields.get("PPSHIM_HANDOVER"))
        got = sorted((fd, p) for fd, p, _ in entries)
        # b is not close-on-exec: the helper holds it under its own
        # number either way.
        want = [(0, ports[x]), (1, ports[x]), (fds["b"], ports["b"])]
        eq(got, sorted(want), what + ": hand-over entries")
        check(ports["c"] not in [p for _, p, _ in entries],
              what + ": c was closed by a file action")
        if x == "b":
            check(all("authority=" not in e for _, _, e in entries),
                  what + ": a's TLVs reached the helper: %r" % entries)
        proc.stop()


@test
def forged_and_stale_handover_ignored():
    # A PPSHIM_HANDOVER naming fd 0 that does not describe the socket on
    # fd 0 (a made-up cookie, or a real one from an earlier connection)
    # must never make it report an advertised address.
    fe, target = start_forkexec()
    fields, _, _ = ask(target, v1(sport=4003), "earlier connection")
    stale = fields.get("PPSHIM_HANDOVER", "-")
    check(stale.startswith("0,"), "no hand-over seen: %r" % stale)
    fe.stop()

    def sa_hex(ip, port):
        return (struct.pack("=H", socket.AF_INET) + struct.pack("!H", port) +
                socket.inet_aton(ip) + bytes(8)).hex()
    fake = ";".join("%d,%x,3,%s,%s,authority=%s" % (
        fd, 0x1234567 + fd, sa_hex("203.0.113.9", 999),
        sa_hex("203.0.113.10", 25), b"forged".hex()) for fd in (0, 1, 2))
    for what, value in (("made-up cookie", fake), ("stale entry", stale)):
        ts, target = start_tcpserver(inherit_prog(
            "-r", PPSHIM_HANDOVER=value))
        fields, _, r = ask(target, b"hello\n", what)
        expect(fields, what, TCPREMOTEIP="127.0.0.1",
               TCPREMOTEPORT=r.local[1], PP_TLV_AUTHORITY="-",
               **real(r, target[1]))
        ts.stop()
    # Nor may it stop PP_INHERIT=1 from reading the real header.
    ts, target = start_tcpserver(inherit_prog(
        "-r", PPSHIM_HANDOVER=fake, PP_INHERIT="1"))
    fields, rest, _ = ask(target, v1(sport=4003) + b"hello\n",
                          "made-up cookie, PP_INHERIT=1")
    expect(fields, "made-up cookie, PP_INHERIT=1", **advertised(4003))
    eq(rest, b"hello\n", "made-up cookie, PP_INHERIT=1: data")


# ===== HAProxy in front of a preloaded tcpserver =====

def start_haproxy(backend):
    """HAProxy relaying frontends fv1 (v1) and fv2 (v2 with a unique id:
    the client's address and port in hex) to backend; returns their
    ports."""
    return pp.HAProxy(backend, [
        ("fv1", "send-proxy", []),
        ("fv2", "send-proxy-v2 proxy-v2-options unique-id",
         ["unique-id-format %{+X}o%ci:%cp"])]).ports


def behind_haproxy(backend_port, what):
    """Connects from CLIENT through both frontends; checks whoami saw
    CLIENT."""
    ports = start_haproxy("127.0.0.1:%d" % backend_port)
    for name in ("fv1", "fv2"):
        w = "%s %s" % (what, name)
        # The client waits for the banner with its side open (HAProxy may
        # close the server side early after a client's early FIN).
        fields, _, r = ask(("127.0.0.1", ports[name]), b"", w, src=CLIENT,
                           shutdown=False)
        expect(fields, w, peer="%s:%d" % (CLIENT, r.local[1]),
               sock="127.0.0.1:%d" % ports[name], TCPREMOTEIP=CLIENT,
               TCPREMOTEPORT=r.local[1], TCPLOCALPORT=ports[name])
        if name == "fv2":
            # %{+X}o%ci:%cp: the client's address and port in hex.
            eq(fields.get("PP_TLV_UNIQUE_ID"), "7F000005:%X" % r.local[1],
               w + ": PP_TLV_UNIQUE_ID")


@test
def haproxy_to_preloaded_tcpserver():
    ts, target = start_tcpserver([WHOAMI], preload_it=True,
                                 env={"PP_PORTS": "{port}",
                                      "PP_ALLOW": "127.0.0.1"})
    behind_haproxy(target[1], "tcpserver")


@test
def haproxy_to_unpreloaded_tcpserver_pp_inherit():
    ts, target = start_tcpserver(inherit_prog(PP_INHERIT="1"))
    behind_haproxy(target[1], "PP_INHERIT")


# ===== systemd-socket-activate (never preloaded) =====

def start_activate(inetd, args):
    need_helpers()
    tool = pp.find("systemd-socket-activate", "/usr/bin/systemd-socket-activate")
    argv = [tool, "-a", "-l", "127.0.0.1:{port}"]
    if inetd:
        argv.append("--inetd")
    env = {"LD_PRELOAD": preload(), "PP_INHERIT": "1",
           "PP_PORTS": "{port}", "PP_ALLOW": "127.0.0.1"}
    if ASAN_LIB:
        env["ASAN_OPTIONS"] = "detect_leaks=0"
    argv += ["--setenv=%s=%s" % kv for kv in env.items()]
    argv += [WHOAMI] + list(args)
    proc, port = start(argv, "systemd-socket-activate", preload_it=False,
                       valgrind=False)
    return proc, ("127.0.0.1", port)


def check_launched_whoami(target, sport):
    """A v1 and a v2 connection (source port sport) to the whoami that a
    launcher runs with the connection on its fds: the advertised
    addresses, and none of the TCP* variables (the launcher sets none of
    them); the data after the header reaches whoami."""
    for name, hdr, tlvs in (("v1", v1(sport=sport), False),
                            ("v2", v2(sport=sport, tlvs=all_tlvs()), True)):
        fields, rest, _ = ask(target, hdr + b"data\n", name)
        want = advertised(sport, tlvs)
        for key in ("TCPREMOTEIP", "TCPREMOTEPORT", "TCPLOCALIP",
                    "TCPLOCALPORT"):
            want[key] = "-"
        expect(fields, name, **want)
        eq(rest, b"data\n", name + ": data")


def check_activate(inetd, args):
    proc, target = start_activate(inetd, args)
    check_launched_whoami(target, 4004)


@test
def systemd_socket_activate_inetd():
    check_activate(True, ("-r", "-e"))


@test
def systemd_socket_activate_listen_fds():
    # Without --inetd the connection is fd 3, with LISTEN_FDS=1.
    check_activate(False, ("-r", "-e", "-f", "3"))


# ===== xinetd, preloaded =====

XINETD_CFG = """\
service ppshim-whoami
{{
    type        = UNLISTED
    socket_type = stream
    protocol    = tcp
    wait        = no
    bind        = 127.0.0.1
    port        = {port}
    server      = {whoami}
    server_args = -r
    env         = LD_PRELOAD={preload}
{user}}}
"""


@test
def xinetd_preloaded():
    need_helpers()
    xinetd = pp.find("xinetd", "/usr/sbin/xinetd")
    tmp = pp.tempdir()
    port = free_port()
    user = "    user        = root\n" if os.geteuid() == 0 else ""
    cfg = os.path.join(tmp, "xinetd.conf")
    with open(cfg, "w") as f:
        f.write(XINETD_CFG.format(port=port, whoami=WHOAMI,
                                  preload=preload(), user=user))
    start([xinetd, "-dontfork", "-pidfile", os.path.join(tmp, "pid"),
           "-f", cfg], "xinetd", port=port, valgrind=False,
          env={"PP_PORTS": str(port), "PP_ALLOW": "127.0.0.1"})
    check_launched_whoami(("127.0.0.1", port), 4005)


if __name__ == "__main__":
    pp.main("connections across exec")
