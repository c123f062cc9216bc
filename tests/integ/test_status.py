#!/usr/bin/env python3
"""test_status.py - the counters of PROXY-only sockets and `ppshim status`
(libppshim(8) COUNTERS, ppshim(1) status).

The test server (tests/helpers/srv, udpsrv for datagrams) runs under the
library with PP_STATE_DIR set to a temporary directory; the test plays the
proxy, its clients and strangers with a scripted mix of connections and
datagrams, then reads the state file itself (the layout of
src/core/pp_state.h) and through `ppshim status`, and expects exactly the
mix.  Then processes that name the library in LD_PRELOAD without having
it: a setuid program run by an ordinary user, a static one.

Run by make check; by hand from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 SRCDIR/tests/integ/test_status.py [NAME...]
"""

import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pptest as pp  # noqa: E402
from pptest import (SLOW, Fail, Skip, check, defer, eq, test, v1,  # noqa
                    v2)

WRAPPER = os.path.join(pp.BUILDDIR, "src", "ppshim")
UDPSRV = os.path.join(pp.BUILDDIR, "tests", "helpers", "udpsrv")

# The layout of src/core/pp_state.h, version 1.
HEAD = struct.Struct("=8sIIIIiIQq")
CONFIG_LEN = 2048
SLOTS = 32
ADDR_LEN = 120
NCOUNTERS = 24
SLOT = struct.Struct("=II%ds%dQ" % (ADDR_LEN, NCOUNTERS))
NAMES = ["proxied_v1", "proxied_v2", "local", "direct", "untrusted",
         "bad_signature", "bad_version", "bad_syntax", "bad_family",
         "bad_truncated", "bad_too_long", "bad_tlv", "crc_mismatch",
         "timed_out", "dgram_dropped", "replies_routed", "pending",
         "proxied_spp"]


def read_state(path):
    """The state file as {"pid", "config", "slots": [(transport, addr,
    {name: value})]}."""
    with open(path, "rb") as f:
        data = f.read()
    magic, ver, size, nslots, ncount, pid, _, _, _ = HEAD.unpack_from(data)
    eq(magic, b"PPSHIMST", "magic")
    eq((ver, nslots, ncount), (1, SLOTS, NCOUNTERS), "version and counts")
    eq(size, len(data), "size")
    eq(size, HEAD.size + CONFIG_LEN + SLOTS * SLOT.size, "layout size")
    config = data[HEAD.size:HEAD.size + CONFIG_LEN].split(b"\0")[0]
    slots = []
    for i in range(SLOTS):
        used, tp, addr, *c = SLOT.unpack_from(
            data, HEAD.size + CONFIG_LEN + i * SLOT.size)
        if used == 2:
            slots.append(({1: "tcp", 2: "udp", 3: "unix"}[tp],
                          addr.split(b"\0")[0].decode(),
                          dict(zip(NAMES, c))))
    return {"pid": pid, "config": config.decode(), "slots": slots}


def state_path(tmp, pid):
    return os.path.join(tmp, "ppshim-%d.state" % pid)


def wait_state(tmp, pid, want, slot=0):
    """Waits (the worker finishes pending headers) until the counters of
    slot equal want (missing names: 0); returns the state."""
    full = {n: 0 for n in NAMES}
    full.update(want)
    deadline = time.monotonic() + 5 * SLOW
    while True:
        st = read_state(state_path(tmp, pid))
        got = st["slots"][slot][2] if len(st["slots"]) > slot else None
        if got == full:
            return st
        if time.monotonic() > deadline:
            diff = {k: (got or {}).get(k) for k in full
                    if (got or {}).get(k) != full[k]}
            raise Fail("counters: got %r, want %r (differ: %r)" % (
                got, full, diff))
        time.sleep(0.05)


def status(*args, env=None):
    """Runs `ppshim status ARGS`; returns (exit status, stdout)."""
    e = pp.child_env(env, preload=False)
    r = subprocess.run([WRAPPER, "status"] + list(args), env=e,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def status_json(*args, env=None):
    rc, out, err = status("--json", *args, env=env)
    try:
        return rc, json.loads(out)
    except ValueError:
        raise Fail("ppshim status --json: not JSON: %r %s" % (out, err))


def proc_of(doc, pid):
    for p in doc["processes"]:
        if p["pid"] == pid:
            return p
    raise Fail("pid %d not in %r" % (pid, doc))


def served(srv, r, what):
    check(r.status == "eof" and r.data.startswith(b"conn "),
          "%s: not served: %r" % (what, r))


def refused_conn(srv, data, what, src=None, pieces=None):
    r = pp.exchange(srv.target, data, src=src, pieces=pieces)
    check(r.refused, "%s: expected an abort, got %r" % (what, r))


@test(timeout=60)
def tcp_mix_counted_exactly():
    tmp = pp.tempdir()
    srv = pp.start_srv(env={"PP_PORTS": "{port}", "PP_STATE_DIR": tmp,
                            "PP_ALLOW": "127.0.0.1",
                            "PP_DIRECT": "127.0.0.2",
                            "PP_TIMEOUT_MS": "300"})
    for i in range(3):
        served(srv, pp.exchange(srv.target, v1(sport=7000 + i) + b"x"),
               "good v1")
    for i in range(2):
        served(srv, pp.exchange(srv.target, v2(sport=7100 + i) + b"x"),
               "good v2")
    # The header in two pieces: finished by the worker, counted the same.
    h = v2(sport=7200)
    served(srv, pp.exchange(srv.target, b"x", pieces=[h[:10], h[10:]],
                            pause=0.1), "good v2 in two pieces")
    served(srv, pp.exchange(srv.target, v2(cmd="LOCAL", family="UNSPEC",
                                           transport="UNSPEC") + b"x"),
           "LOCAL")
    served(srv, pp.exchange(srv.target, b"hello\n", src="127.0.0.2"),
           "direct")
    refused_conn(srv, b"GET / HTTP/1.0\r\n\r\n", "no header")
    refused_conn(srv, b"SSH-2.0-OpenSSH\r\n", "no header 2")
    refused_conn(srv, b"PROXY TCP4 192.0.2.1\r\n", "v1 syntax")
    refused_conn(srv, v1(), "untrusted", src="127.0.0.3")
    refused_conn(srv, v1(), "untrusted 2", src="127.0.0.4")
    bad = bytearray(v2(crc=True))
    bad[-1] ^= 0xff
    refused_conn(srv, bytes(bad) + b"x", "CRC mismatch")
    # Silent: the worker gives up after PP_TIMEOUT_MS.
    s = pp.connect(srv.target)
    defer(s.close)
    s.settimeout(3 * SLOW)
    try:
        got = s.recv(10)
    except ConnectionResetError:
        got = b""
    eq(got, b"", "silent connection ends")
    want = {"proxied_v1": 3, "proxied_v2": 3, "local": 1, "direct": 1,
            "untrusted": 2, "bad_signature": 2, "bad_syntax": 1,
            "crc_mismatch": 1, "timed_out": 1}
    st = wait_state(tmp, srv.pid, want)
    eq(st["pid"], srv.pid, "pid in the file")
    eq(len(st["slots"]), 1, "listeners")
    eq(st["slots"][0][:2], ("tcp", "127.0.0.1:%d" % srv.port), "listener")
    check("PP_PORTS=%d\n" % srv.port in st["config"] and
          "PP_TIMEOUT_MS=300\n" in st["config"],
          "configuration text: %r" % st["config"])
    mode = os.stat(state_path(tmp, srv.pid)).st_mode & 0o777
    check(mode & 0o133 == 0, "file mode %o" % mode)

    # ppshim status PID, for a person and for scripts.
    rc, out, err = status(str(srv.pid))
    eq(rc, 0, "ppshim status exit status (%s)" % err)
    check("libppshim loaded" in out and "PROXY-only tcp 127.0.0.1:%d" %
          srv.port in out, "status output:\n" + out)
    for k, v in want.items():
        check(any(ln.split() == [k, str(v)] for ln in out.splitlines()),
              "status shows %s %d:\n%s" % (k, v, out))
    rc, doc = status_json(str(srv.pid))
    eq(rc, 0, "ppshim status --json exit status")
    p = proc_of(doc, srv.pid)
    eq(p["loaded"], True, "loaded")
    eq(p["config_source"], "state", "config source")
    eq(p["config"].get("PP_ALLOW"), "127.0.0.1", "config PP_ALLOW")
    eq(len(p["listeners"]), 1, "json listeners")
    full = {n: 0 for n in NAMES}
    full.update(want)
    eq(p["listeners"][0]["counters"], full, "json counters")
    eq(p["listeners"][0]["transport"], "tcp", "json transport")

    # Without PID: found among the others.
    rc, doc = status_json(env={"PP_STATE_DIR": tmp})
    eq(proc_of(doc, srv.pid)["listeners"][0]["counters"], full,
       "json counters, no PID given")
    rc, out, _ = status()
    # By pid: the command name is valgrind's under make valgrind.
    check(re.search(r"^%d [^:\n]+: libppshim loaded" % srv.pid, out, re.M),
          "ppshim status without PID:\n" + out)


@test
def file_made_lazily_and_removed_at_exit():
    tmp = pp.tempdir()
    # A process without a PROXY-only socket makes no file.
    plain = pp.start_srv(env={"PP_PORTS": "1", "PP_STATE_DIR": tmp})
    pp.exchange(plain.target, b"x")
    eq(os.listdir(tmp), [], "files of a process without PROXY-only socket")
    srv = pp.start_srv("-c", "1", env={"PP_PORTS": "{port}",
                                       "PP_STATE_DIR": tmp})
    check(os.path.exists(state_path(tmp, srv.pid)), "state file made")
    served(srv, pp.exchange(srv.target, v1() + b"x"), "good v1")
    eq(srv.wait_exit(), 0, "srv -c 1 exit status")
    eq(os.listdir(tmp), [], "files after a normal exit")
    # A file left by a killed process is removed by the reader.
    srv = pp.start_srv(env={"PP_PORTS": "{port}", "PP_STATE_DIR": tmp})
    pid = srv.pid
    srv.kill_now()
    check(os.path.exists(state_path(tmp, pid)), "file of a killed process")
    status(env={"PP_STATE_DIR": tmp})
    check(not os.path.exists(state_path(tmp, pid)), "stale file removed")
    rc, _, err = status(str(pid))
    eq(rc, 2, "status of a process that is gone (%s)" % err)


@test
def fork_children_count_into_parent_file():
    tmp = pp.tempdir()
    srv = pp.start_srv("-m", "fork", env={"PP_PORTS": "{port}",
                                          "PP_STATE_DIR": tmp})
    for i in range(4):
        served(srv, pp.exchange(srv.target, v1(sport=7300 + i) + b"x"),
               "good v1")
    refused_conn(srv, b"GET /\r\n\r\n", "no header")
    wait_state(tmp, srv.pid, {"proxied_v1": 4, "bad_signature": 1})
    eq(sorted(os.listdir(tmp)), ["ppshim-%d.state" % srv.pid],
       "one file for the group")


@test
def udp_mix_counted_exactly():
    if not os.access(UDPSRV, os.X_OK):
        raise Skip("udpsrv not built")
    tmp = pp.tempdir()
    port = None
    srv = None
    for _ in range(20):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            srv = pp.Proc([UDPSRV, "-l", "127.0.0.1", "-p", str(port)],
                          env={"PP_PORTS": "%d/udp" % port,
                               "PP_STATE_DIR": tmp,
                               "PP_ALLOW": "127.0.0.1",
                               "PP_DIRECT": "127.0.0.2"})
            pp.wait_listening_line(srv, port)
            break
        except Fail:
            srv.kill_now()
            srv = None
    check(srv is not None, "udpsrv did not start")

    def client(src):
        c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        c.bind((src, 0))
        c.settimeout(3 * SLOW)
        defer(c.close)
        return c

    def hdr(**kw):
        return v2(transport="DGRAM", dport=53, **kw)

    proxy = client("127.0.0.1")
    for i in range(3):
        proxy.sendto(hdr(sport=5000 + i) + b"q%d" % i, ("127.0.0.1", port))
        data, _ = proxy.recvfrom(70000)
        check(data.endswith(b"q%d" % i), "echo %r" % data)
    proxy.sendto(v2(cmd="LOCAL", family="UNSPEC", transport="UNSPEC") +
                 b"hc", ("127.0.0.1", port))
    proxy.recvfrom(70000)
    direct = client("127.0.0.2")
    direct.sendto(b"plain", ("127.0.0.1", port))
    direct.recvfrom(70000)
    proxy.sendto(b"no header", ("127.0.0.1", port))
    proxy.sendto(b"PROXY TCP4 broken", ("127.0.0.1", port))
    client("127.0.0.3").sendto(hdr() + b"stranger", ("127.0.0.1", port))
    # The last one is served after the dropped ones: all were judged.
    proxy.sendto(hdr(sport=5009) + b"last", ("127.0.0.1", port))
    proxy.recvfrom(70000)
    st = wait_state(tmp, srv.pid, {"proxied_v2": 4, "local": 1,
                                   "direct": 1, "dgram_dropped": 3,
                                   "replies_routed": 4})
    eq(st["slots"][0][:2], ("udp", "127.0.0.1:%d" % port), "listener")
    rc, doc = status_json(str(srv.pid))
    eq(rc, 0, "status exit status")
    ls = proc_of(doc, srv.pid)["listeners"]
    eq((ls[0]["transport"], ls[0]["counters"]["dgram_dropped"]),
       ("udp", 3), "json udp listener")


def long_sleeper(argv, env, user=False):
    """Starts argv (no output expected) with LD_PRELOAD naming the library,
    not through pp.Proc (which refuses programs the library cannot enter).
    """
    e = pp.child_env(env, preload=True)
    p = subprocess.Popen(argv, env=e, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop():
        if p.poll() is None:
            p.kill()
        p.wait()
    defer(stop)
    return p


def exec_target(p, path, timeout=5):
    """Waits until process p runs path (after setpriv's exec)."""
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        try:
            if os.readlink("/proc/%d/exe" % p.pid) == path:
                time.sleep(0.1)  # the loader has run by then
                return
        except OSError:
            pass
        if p.poll() is not None:
            raise Fail("%s exited: %s" % (path, p.stderr.read()))
        time.sleep(0.02)
    raise Fail("%s never ran" % path)


def mapped(pid):
    with open("/proc/%d/maps" % pid) as f:
        return "libppshim" in f.read()


@test
def setuid_program_reported_without_library():
    if os.geteuid() != 0:
        raise Skip("needs root (to make a setuid-root copy and drop to "
                   "nobody)")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise Skip("setpriv not installed")
    sleep = shutil.which("sleep")
    tmp = None
    for base in (pp.BUILDDIR, "/var/tmp", None):
        d = pp.tempdir() if base is None else None
        if d is None:
            try:
                d = __import__("tempfile").mkdtemp(prefix="ppshim-suid-",
                                                   dir=base)
                defer(shutil.rmtree, d, True)
            except OSError:
                continue
        os.chmod(d, 0o755)
        tmp = d
        target = os.path.join(d, "sleep-suid")
        shutil.copy(sleep, target)
        os.chmod(target, 0o4755)
        p = long_sleeper([setpriv, "--reuid=nobody", "--regid=nogroup",
                          "--clear-groups", target, "60"],
                         {"PP_PORTS": "1"})
        try:
            exec_target(p, target)
        except Fail as e:
            raise Skip("cannot run a setuid copy as nobody: %s" % e)
        if not mapped(p.pid):
            break
        p.kill()
        tmp = None  # nosuid mount: the bit is ignored there; try another
    if tmp is None:
        raise Skip("no directory honours the setuid bit")
    rc, out, err = status(str(p.pid))
    eq(rc, 1, "status exit status for a process without the library")
    check("NOT loaded" in out and "AT_SECURE" in out,
          "status output:\n" + out + err)
    rc, doc = status_json(str(p.pid))
    q = proc_of(doc, p.pid)
    eq((q["loaded"], q["reason_code"]), (False, "secure"), "json reason")
    eq(q["config"].get("PP_PORTS"), "1", "configuration from environ")
    eq(q["config_source"], "environ", "config source")
    # Without PID: listed, with the same answer, and exit status 1.
    rc, doc = status_json()
    eq(proc_of(doc, p.pid)["reason_code"], "secure", "listed without PID")
    eq(rc, 1, "status exit status without PID")


@test
def static_program_reported_as_static():
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise Skip("no C compiler")
    tmp = pp.tempdir()
    src = os.path.join(tmp, "st.c")
    exe = os.path.join(tmp, "st")
    with open(src, "w") as f:
        f.write("#include <unistd.h>\nint main(void)"
                "{ sleep(60); return 0; }\n")
    r = subprocess.run([cc, "-static", "-o", exe, src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise Skip("cannot link statically: %s" %
                   r.stdout.decode().strip().splitlines()[-1:])
    p = long_sleeper([exe], {"PP_PORTS": "1"})
    exec_target(p, exe)
    check(not mapped(p.pid), "library mapped into a static program")
    rc, doc = status_json(str(p.pid))
    q = proc_of(doc, p.pid)
    eq((rc, q["loaded"], q["reason_code"]), (1, False, "static"),
       "json reason")
    rc, out, _ = status(str(p.pid))
    check("statically linked" in out, "status output:\n" + out)


@test
def usage_and_help():
    rc, out, _ = status("--help")
    eq(rc, 0, "status --help")
    check("--json" in out, "help text: " + out)
    rc, _, err = status("--bogus")
    eq(rc, 2, "unknown option")
    rc, _, err = status("12x")
    eq(rc, 2, "not a PID")
    r = subprocess.run([WRAPPER, "--help"], stdout=subprocess.PIPE)
    check(b"ppshim status" in r.stdout, "ppshim --help names status")


if __name__ == "__main__":
    pp.main("state file and ppshim status")
