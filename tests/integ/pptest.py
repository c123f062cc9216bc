"""pptest: shared helpers for the ppshim integration tests (stdlib only).

What is here:
  - PROXY header builders: v1, v2 (TLVs, CRC32C), the 2012 draft layout;
  - processes: the test server (tests/helpers/srv) or any command, started
    with the library preloaded in the child's environment only, their output
    lines collected with timeouts, stopped by PID;
  - clients: connect from a chosen loopback source, send, read until EOF or
    reset, all with timeouts;
  - a small runner: each test is a function; prints TAP: the plan "1..N",
    then "ok N name", "ok N name # SKIP reason" or "not ok N name: reason",
    or "1..0 # SKIP reason" when the file cannot run at all.  Run by hand it
    exits 0 (all passed), 1 (a failure) or 77 (the library or the server is
    missing, or every test skipped).  Under make check's TAP driver
    (PPSHIM_TAP=1) the results are in the output: it exits 0 once it has
    reported them, and any other status (a crash) is an error.

Environment (set by make check, see Makefile.am):
  PPSHIM_LIB       absolute path of the built libppshim.so
  PPSHIM_BUILDDIR  the build directory (tests/helpers/srv lives there)
  PPSHIM_ASAN_LIB  libasan to put first in LD_PRELOAD (sanitizer builds)
  PPSHIM_VALGRIND  valgrind to run preloaded servers under (make valgrind)
  PPSHIM_TAP       1 when the TAP driver reads the results (exit status)

Running one file by hand, from the build directory:
  PPSHIM_BUILDDIR=$PWD python3 $srcdir/tests/integ/test_tcp.py [NAME...]

Everything uses loopback only: 127.0.0.0/8 and ::1.
"""

import atexit
import errno
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import caps

# ===== Environment =====

BUILDDIR = os.environ.get("PPSHIM_BUILDDIR") or os.getcwd()
LIB = os.environ.get("PPSHIM_LIB") or os.path.join(
    BUILDDIR, "src", ".libs", "libppshim.so")
ASAN_LIB = os.environ.get("PPSHIM_ASAN_LIB", "")
VALGRIND = os.environ.get("PPSHIM_VALGRIND", "")
SRV = os.environ.get("PPSHIM_SRV") or os.path.join(
    BUILDDIR, "tests", "helpers", "srv")

# Under make check the TAP driver reads the results (Makefile.am).
TAP_DRIVER = os.environ.get("PPSHIM_TAP") == "1"

EX_SKIP = 77
EX_CONFIG = 78
VALGRIND_ERROR = 99

# Functional time bounds are multiplied by this under instrumentation.
SLOW = 20 if VALGRIND else (3 if ASAN_LIB else 1)
# Counts of connections in load tests are divided by this.
LOAD_DIV = 10 if VALGRIND else 1

# Documentation addresses used as advertised endpoints (never contacted).
CLIENT4, SERVER4 = "192.0.2.1", "198.51.100.7"
CLIENT6, SERVER6 = "2001:db8::1", "2001:db8::2"


class Fail(Exception):
    """A test assertion failed."""


class Skip(Exception):
    """The test cannot run here."""


class TestTimeout(Exception):
    """The per-test time limit was reached."""


def check(cond, msg):
    if not cond:
        raise Fail(msg)


def eq(got, want, what):
    if got != want:
        raise Fail("%s: got %r, want %r" % (what, got, want))


def have_ipv6():
    return caps.ipv6_lo()[0]


def require(probe):
    """Skips the calling test, with the probe's reason, unless the host
    can do what probe (a function of caps.py) checks."""
    ok, why = probe()
    if not ok:
        raise Skip(why)


def environment_problem():
    """Returns why the tests cannot run here, or None."""
    if not os.path.isfile(LIB):
        return "library not built: %s" % LIB
    if not (os.path.isfile(SRV) and os.access(SRV, os.X_OK)):
        return "test server not built: %s" % SRV
    return None


def check_lib_is_elf():
    # The loader ignores a non-ELF preload (the .la) with a warning and the
    # server would run without the shim: never let that pass silently.
    with open(LIB, "rb") as f:
        if f.read(4) != b"\x7fELF":
            print("Bail out! %s is not an ELF object" % LIB)
            sys.exit(99)


# ===== CRC32C (Castagnoli), reflected, as used by the v2 CRC32C TLV =====

def _crc32c_table():
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283

# ===== PROXY headers =====

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"

TLV_ALPN, TLV_AUTHORITY, TLV_CRC32C, TLV_NOOP, TLV_UNIQUE_ID = 1, 2, 3, 4, 5
TLV_SSL, TLV_SSL_VERSION, TLV_SSL_CN, TLV_SSL_CIPHER = 0x20, 0x21, 0x22, 0x23
TLV_NETNS = 0x30

_FAMILY = {"UNSPEC": 0, "INET": 1, "INET6": 2, "UNIX": 3}
_TRANSPORT = {"UNSPEC": 0, "STREAM": 1, "DGRAM": 2}
_COMMAND = {"LOCAL": 0, "PROXY": 1}


def v1(proto="TCP4", src=None, dst=None, sport=5000, dport=25):
    """A v1 header, e.g. b'PROXY TCP4 192.0.2.1 198.51.100.7 5000 25\\r\\n'."""
    if proto == "UNKNOWN":
        return b"PROXY UNKNOWN\r\n"
    if src is None:
        src = CLIENT4 if proto == "TCP4" else CLIENT6
    if dst is None:
        dst = SERVER4 if proto == "TCP4" else SERVER6
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport,
                                          dport)).encode()


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


def ssl_tlv(version=b"TLSv1.3", cn=b"client", cipher=b"TLS_AES_128_GCM"):
    """The SSL TLV: client flags, verify result, then sub-TLVs."""
    body = struct.pack("!BI", 0x07, 0)
    body += tlv(TLV_SSL_VERSION, version) + tlv(TLV_SSL_CN, cn)
    body += tlv(TLV_SSL_CIPHER, cipher)
    return tlv(TLV_SSL, body)


def v2_addresses(family, src, dst, sport, dport):
    if family == "INET":
        return (socket.inet_pton(socket.AF_INET, src or CLIENT4) +
                socket.inet_pton(socket.AF_INET, dst or SERVER4) +
                struct.pack("!HH", sport, dport))
    if family == "INET6":
        return (socket.inet_pton(socket.AF_INET6, src or CLIENT6) +
                socket.inet_pton(socket.AF_INET6, dst or SERVER6) +
                struct.pack("!HH", sport, dport))
    if family == "UNIX":
        return ((src or "/run/client.sock").encode().ljust(108, b"\0") +
                (dst or "/run/server.sock").encode().ljust(108, b"\0"))
    return b""


def v2(cmd="PROXY", family="INET", transport="STREAM", src=None, dst=None,
       sport=5000, dport=25, tlvs=b"", crc=False, extra=b"",
       ver_cmd=None, fam_byte=None, length=None, addresses=None):
    """A final-layout v2 header.

    tlvs is raw TLV bytes (see tlv()); crc=True appends a CRC32C TLV with the
    right checksum; extra is appended after the TLVs and counted in the
    length.  ver_cmd, fam_byte, length and addresses override the computed
    fields, to build invalid headers.
    """
    if ver_cmd is None:
        ver_cmd = 0x20 | _COMMAND[cmd]
    if fam_byte is None:
        fam_byte = (_FAMILY[family] << 4) | _TRANSPORT[transport]
    if addresses is None:
        addresses = v2_addresses(family, src, dst, sport, dport)
    body = addresses + tlvs + extra
    if crc:
        body += tlv(TLV_CRC32C, b"\0\0\0\0")
    if length is None:
        length = len(body)
    hdr = V2_SIG + bytes([ver_cmd, fam_byte]) + struct.pack("!H", length)
    hdr += body
    if crc:
        # Checksum over the whole header with the value zeroed, stored
        # big-endian in the last 4 bytes (the CRC TLV is last).
        hdr = hdr[:-4] + struct.pack("!I", crc32c(hdr))
    return hdr


def v2_draft(cmd=1, fam_byte=0x11, src=None, dst=None, sport=5000,
             dport=25):
    """The 2012 draft layout: version byte, command byte, family byte,
    one-byte length, addresses, no TLVs."""
    family = {1: "INET", 2: "INET6"}[fam_byte >> 4]
    addr = v2_addresses(family, src, dst, sport, dport)
    return V2_SIG + bytes([0x02, cmd, fam_byte, len(addr)]) + addr


def all_tlvs():
    """One of each registered TLV a sender may put in a header."""
    return (tlv(TLV_ALPN, b"h2") + tlv(TLV_AUTHORITY, b"example.com") +
            tlv(TLV_NOOP, b"\0" * 3) + tlv(TLV_UNIQUE_ID, b"u" * 32) +
            ssl_tlv() + tlv(TLV_NETNS, b"ns1") + tlv(0xEA, b"vpce-1234") +
            tlv(0xF0, b""))


# ===== Addresses and ports =====

def family_of(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def free_port(host="127.0.0.1"):
    """A port that is free now on host, outside the ephemeral range so that
    client sockets do not take it before the server binds it."""
    bind_host = host
    for _ in range(200):
        port = random.randint(20000, 32000)
        try:
            with socket.socket(family_of(bind_host), socket.SOCK_STREAM) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family_of(bind_host) == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind((bind_host, port))
            return port
        except OSError:
            continue
    raise Fail("no free port found")


def parse_conn(line):
    """'conn a=1 b=2' -> {'a': '1', 'b': '2'}; None for other lines."""
    if not line.startswith("conn "):
        return None
    fields = {}
    for word in line.split()[1:]:
        key, _, value = word.partition("=")
        fields[key] = value
    return fields


def addr_port(fields, key):
    """Splits '1.2.3.4:5' or '[::1]:5' into ('1.2.3.4', 5)."""
    text = fields[key]
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


# ===== Per-test cleanup =====

_cleanups = []
_live = set()


def defer(fn, *args):
    """Runs fn(*args) when the current test ends, in reverse order."""
    _cleanups.append((fn, args))


def run_cleanups():
    errors = []
    while _cleanups:
        fn, args = _cleanups.pop()
        try:
            fn(*args)
        except Exception as e:  # report, but run the other cleanups
            errors.append("%s: %s" % (getattr(fn, "__name__", fn), e))
    return errors


def tempdir():
    path = tempfile.mkdtemp(prefix="ppshim-test-")
    defer(shutil.rmtree, path, True)
    return path


@atexit.register
def _kill_leftovers():
    for p in list(_live):
        p.kill_now()


# ===== Processes =====

def child_env(env=None, preload=True):
    """The environment for a child: the driver's, minus any PP_* and
    LD_PRELOAD, plus env; with preload, LD_PRELOAD names the library (after
    the ASan runtime in sanitizer builds).  The driver's own environment is
    never changed."""
    e = {k: v for k, v in os.environ.items()
         if not k.startswith("PP_") and k != "LD_PRELOAD"}
    if ASAN_LIB:
        # Config errors exit 78 through exit(): keep LSan from turning that
        # into its own exit status.  Leaks are valgrind's job here.
        e.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    if preload:
        e["LD_PRELOAD"] = ":".join(x for x in (ASAN_LIB, LIB) if x)
    e.update(env or {})
    return e


# Threads still running when a server exits (srv's own in -m threads, the
# library's header readers) leave their TLS block "possibly lost": not a
# leak of anyone's making.
VALGRIND_SUPP = """\
{
   thread-tls-of-running-threads
   Memcheck:Leak
   match-leak-kinds: possible
   fun:calloc
   ...
   fun:_dl_allocate_tls
   ...
   fun:pthread_create*
}
"""
_supp_file = []


def valgrind_argv(leak_check="full"):
    if not _supp_file:
        fd, path = tempfile.mkstemp(prefix="ppshim-vg-", suffix=".supp")
        with os.fdopen(fd, "w") as f:
            f.write(VALGRIND_SUPP)
        atexit.register(os.unlink, path)
        _supp_file.append(path)
    return VALGRIND.split() + ["--error-exitcode=%d" % VALGRIND_ERROR,
                               "--leak-check=%s" % leak_check, "-q",
                               "--suppressions=%s" % _supp_file[0]]


def _elf_abi(path):
    """(ELF class, C library) of an executable: the class 1 or 2, the C
    library "musl" or "glibc" as its PT_INTERP names it (None for a static
    program); (None, None) for what is not ELF."""
    try:
        with open(path, "rb") as f:
            data = f.read(65536)
    except OSError:
        return None, None
    if len(data) < 64 or data[:4] != b"\x7fELF":
        return None, None
    bo = "<" if data[5] == 1 else ">"
    if data[4] == 2:
        phoff, = struct.unpack_from(bo + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(bo + "HH", data, 0x36)
        fmt, opos, szpos = bo + "IIQQQQQQ", 2, 5
    else:
        phoff, = struct.unpack_from(bo + "I", data, 0x1c)
        phentsize, phnum = struct.unpack_from(bo + "HH", data, 0x2a)
        fmt, opos, szpos = bo + "IIIIIIII", 1, 4
    for i in range(phnum):
        at = phoff + i * phentsize
        if at + struct.calcsize(fmt) > len(data):
            break
        ph = struct.unpack_from(fmt, data, at)
        if ph[0] == 3:  # PT_INTERP
            interp = data[ph[opos]:ph[opos] + ph[szpos]]
            return data[4], "musl" if b"musl" in interp else "glibc"
    return data[4], None


def foreign_program(path):
    """Why the library cannot be preloaded into the program at path, or
    None.  The library of a musl or 32-bit build (tests/abi.sh) is loaded
    only by programs of that C library and ELF class: the system's
    daemons and shells are then skipped, not failed."""
    path = path if os.sep in path else (shutil.which(path) or path)
    cls, libc = _elf_abi(path)
    libcls, _ = _elf_abi(LIB)
    _, ourlibc = _elf_abi(SRV)
    if cls is None or libc is None:
        return None
    if libcls is not None and cls != libcls:
        return "%s is %d-bit, the library %d-bit" % (
            path, 32 * cls, 32 * libcls)
    if ourlibc is not None and libc != ourlibc:
        return "%s uses %s, the library was built for %s" % (
            path, libc, ourlibc)
    return None


def _stat_rest(pid):
    """The fields of /proc/PID/stat after the command name (the state
    first), or None when pid is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except OSError:
        return None
    return text[text.rfind(")") + 2:].split()


def _stat_fields(pid):
    """(ppid, start time) of pid, or None when it is gone."""
    rest = _stat_rest(pid)
    return None if rest is None else (int(rest[1]), int(rest[19]))


def descendants(pid):
    """The live descendants of pid, each as (pid, start time): enough to
    tell them from a later process that reuses the number."""
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat_fields(int(name))
            if st is not None:
                children.setdefault(st[0], []).append((int(name), st[1]))
    found, todo = [], [pid]
    while todo:
        for kid in children.get(todo.pop(), []):
            found.append(kid)
            todo.append(kid[0])
    return found


def stop_pids(procs, timeout=5):
    """SIGTERM each (pid, start time) still running, a bounded wait, then
    SIGKILL: never a process that merely got the same number."""
    def alive():
        def running(p, t):
            rest = _stat_rest(p)
            return rest is not None and rest[0] != "Z" and int(rest[19]) == t
        return [(p, t) for p, t in procs if running(p, t)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        left = alive()
        for p, _ in left:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        end = time.monotonic() + timeout * SLOW
        while left and time.monotonic() < end:
            time.sleep(0.05)
            left = alive()
        if not left:
            return


class Proc:
    """A child process whose stdout and stderr lines are collected.

    With preload (the default) the library is preloaded, and under make
    valgrind the process runs under memcheck; stop() then fails the test if
    valgrind found errors.  leak_check "no" is for third-party servers,
    whose own leaks at exit are not the library's.
    """

    def __init__(self, argv, env=None, preload=True, valgrind=True,
                 leak_check="full", cwd=None, name=None):
        self.name = name or os.path.basename(argv[0])
        foreign = foreign_program(argv[0]) if preload else None
        if foreign:
            raise Skip("cannot preload the library: " + foreign)
        self.under_valgrind = bool(VALGRIND and preload and valgrind)
        if self.under_valgrind:
            argv = valgrind_argv(leak_check) + list(argv)
        self.argv = list(argv)
        self.out = []
        self.err = []
        self.cond = threading.Condition()
        self.p = subprocess.Popen(self.argv, env=child_env(env, preload),
                                  stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, cwd=cwd)
        self.pid = self.p.pid
        self.returncode = None
        _live.add(self)
        defer(self.stop)
        self.readers = [
            threading.Thread(target=self._read, args=(self.p.stdout,
                                                      self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.p.stderr,
                                                      self.err), daemon=True),
        ]
        for t in self.readers:
            t.start()

    def _read(self, stream, lines):
        for raw in iter(stream.readline, b""):
            with self.cond:
                lines.append(raw.decode(errors="replace").rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, pattern, timeout=5, start=0, stream="out"):
        """Waits for a line matching the regex pattern at index >= start.
        Returns (index, line); fails the test on timeout or exit."""
        lines = self.out if stream == "out" else self.err
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        with self.cond:
            while True:
                for i in range(start, len(lines)):
                    if rx.search(lines[i]):
                        return i, lines[i]
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Fail("%s: no line matching %r within %.1fs%s" % (
                        self.name, pattern, timeout * SLOW, self.tail()))
                if self.p.poll() is not None and not any(
                        t.is_alive() for t in self.readers):
                    raise Fail("%s exited (%s) before a line matching %r%s" %
                               (self.name, self.p.returncode, pattern,
                                self.tail()))
                self.cond.wait(min(left, 0.1))

    def lines(self, stream="out"):
        with self.cond:
            return list(self.out if stream == "out" else self.err)

    def conn_lines(self):
        return [ln for ln in self.lines() if ln.startswith("conn ")]

    def log_lines(self):
        """The library's lines on stderr."""
        return [ln for ln in self.lines("err") if "ppshim" in ln]

    def tail(self, n=8):
        out = self.lines()[-n:]
        err = self.lines("err")[-n:]
        return "\n  stdout: %r\n  stderr: %r" % (out, err)

    def wait_exit(self, timeout=10):
        try:
            self.returncode = self.p.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            raise Fail("%s did not exit within %ss" % (self.name,
                                                       timeout * SLOW))
        for t in self.readers:
            t.join(2)
        _live.discard(self)
        return self.returncode

    def kill_now(self):
        if self.p.poll() is None:
            try:
                self.p.kill()
            except OSError:
                pass
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                pass
        _live.discard(self)

    def stop(self, timeout=5):
        """SIGTERM, a bounded wait, then SIGKILL; the same for whatever of
        its descendants outlives it (a prefork master that dies before
        its workers).  Fails when valgrind reported errors."""
        kin = descendants(self.pid) if self.p.poll() is None else []
        if self.p.poll() is None:
            try:
                self.p.send_signal(signal.SIGTERM)
                self.p.wait(timeout * SLOW)
            except subprocess.TimeoutExpired:
                self.kill_now()
        self.returncode = self.p.wait()
        stop_pids(kin, timeout)
        for t in self.readers:
            t.join(2)
        _live.discard(self)
        if self.under_valgrind and self.returncode == VALGRIND_ERROR:
            raise Fail("valgrind found errors in %s:\n%s" % (
                self.name, "\n".join(self.lines("err")[-60:])))
        return self.returncode

    def alive(self):
        return self.p.poll() is None

    def fd_count(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


class Srv(Proc):
    """tests/helpers/srv, started and waited for ("listening")."""

    def __init__(self, argv, env, preload, host, port, path):
        super().__init__(argv, env=env, preload=preload, name="srv")
        self.host, self.port, self.path = host, port, path
        self.extra = None

    @property
    def target(self):
        return self.path if self.path else (self.host_for_clients(),
                                            self.port)

    def host_for_clients(self):
        return {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host,
                                                         self.host)

    @property
    def extra_target(self):
        return (self.host_for_clients(), self.extra)


def start_on_free_port(launch, ready, port=None, pick=free_port,
                       busy=("in use",), what="srv"):
    """Starts a server on a port, retrying on another when a free one was
    taken before the server bound it.  launch(p) returns the started Proc
    on port p, ready(proc, p) waits until it serves (raises Fail); p is
    port, or pick() when port is None (only then a start is retried, when
    the server's stderr has a line containing one of busy).  Returns
    (proc, p)."""
    for _ in range(5):
        p = port or pick()
        proc = launch(p)
        try:
            ready(proc, p)
            return proc, p
        except Fail:
            proc.kill_now()
            if port is None and any(b in ln for ln in proc.lines("err")
                                    for b in busy):
                continue
            raise
    raise Fail("%s could not bind a port" % what)


def start_srv(*args, env=None, host="127.0.0.1", port=None, unix=None,
              preload=True, extra_port=False):
    """Starts srv with the given options and waits until it listens.

    env values may contain {port}, {extra} and {path}, replaced by the
    listener's port, the extra listener's port (-e) and the unix path.
    """
    def launch(p):
        ep = free_port(host) if extra_port else None
        argv = [SRV] + list(args)
        if unix:
            argv += ["-u", unix]
        else:
            argv += ["-l", host, "-p", str(p)]
        if ep:
            argv += ["-e", str(ep)]
        e = {k: v.replace("{port}", str(p)).replace("{extra}", str(ep))
             .replace("{path}", unix or "") for k, v in (env or {}).items()}
        srv = Srv(argv, e, preload, host, p, unix)
        srv.extra = ep
        return srv
    srv, _ = start_on_free_port(launch, wait_listening_line, port,
                                lambda: free_port(host),
                                ("Address already in use",))
    return srv


def wait_listening_line(proc, port):
    """Waits until a test server (srv, udpsrv) prints its "listening"
    line."""
    proc.wait_line("^listening ", timeout=10)


def listening_ports():
    """The TCP ports in LISTEN state on this host (from /proc/net)."""
    ports = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A":
                        ports.add(int(cols[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def wait_listening(proc, port, timeout=10):
    """Waits until something listens on port, without connecting to it (a
    connection would reach the server behind a proxy)."""
    deadline = time.monotonic() + timeout * SLOW
    while port not in listening_ports():
        if not proc.alive():
            raise Fail("%s exited (%s)%s" % (proc.name, proc.p.returncode,
                                             proc.tail()))
        if time.monotonic() > deadline:
            raise Fail("%s: nothing listens on %d%s" % (proc.name, port,
                                                        proc.tail()))
        time.sleep(0.05)


# ===== Clients =====

class Result:
    """What a client saw: status 'eof', 'reset' or 'timeout', the bytes it
    received, its own address, and the elapsed time."""

    def __init__(self, status, data, local, elapsed):
        self.status, self.data, self.local = status, data, local
        self.elapsed = elapsed
        head, nl, rest = data.partition(b"\n")
        self.line = head.decode(errors="replace") if nl else ""
        self.rest = rest if nl else data
        self.fields = parse_conn(self.line) if self.line else None

    @property
    def refused(self):
        """Aborted before the server saw anything: no byte came back."""
        return self.status in ("eof", "reset") and not self.data

    def __repr__(self):
        return "<%s after %.2fs, %d bytes: %r>" % (
            self.status, self.elapsed, len(self.data), self.data[:160])


def connect(target, src=None, timeout=5):
    """A connected socket to (host, port) or a unix path, from src."""
    if isinstance(target, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    else:
        s = socket.socket(family_of(target[0]), socket.SOCK_STREAM)
        if src:
            s.bind((src, 0))
    s.settimeout(timeout * SLOW)
    try:
        s.connect(target)
    except BaseException:
        s.close()
        raise
    return s


def local_port(sock):
    try:
        return sock.getsockname()[1]
    except (OSError, IndexError):
        return None


def pump(s, data=b"", shutdown=True, timeout=5):
    """Sends data while reading, half-closes after it when shutdown, and
    reads until EOF, reset or timeout.  Returns (status, received)."""
    s.setblocking(False)
    out = memoryview(data)
    got = bytearray()
    sent_fin = False
    deadline = time.monotonic() + timeout * SLOW
    while True:
        if not out and shutdown and not sent_fin:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            sent_fin = True
        left = deadline - time.monotonic()
        if left <= 0:
            return "timeout", bytes(got)
        wr = [s] if out else []
        r, w, _ = select.select([s], wr, [], min(left, 0.5))
        if w:
            try:
                n = s.send(out[:65536])
                out = out[n:]
            except BlockingIOError:
                pass
            except OSError as e:
                if e.errno in (errno.EPIPE, errno.ECONNRESET):
                    out = memoryview(b"")
                    sent_fin = True
                else:
                    raise
        if r:
            try:
                chunk = s.recv(65536)
            except BlockingIOError:
                continue
            except OSError as e:
                if e.errno == errno.ECONNRESET:
                    return "reset", bytes(got)
                raise
            if not chunk:
                return "eof", bytes(got)
            got += chunk


def exchange(target, data=b"", src=None, pieces=None, pause=0.03,
             shutdown=True, timeout=5):
    """Connects, sends (pieces with pauses between them, then data), reads
    everything back.  Returns a Result."""
    t0 = time.monotonic()
    local = None
    try:
        # An abort can come before connect() returns: connect() with a
        # timeout polls, then reads SO_ERROR, which may be ECONNRESET.
        s = connect(target, src, timeout)
    except ConnectionResetError:
        return Result("reset", b"", None, time.monotonic() - t0)
    try:
        local = s.getsockname()
        for piece in pieces or ():
            s.sendall(piece)
            time.sleep(pause)
        status, got = pump(s, data, shutdown, timeout)
    except ConnectionResetError:
        status, got = "reset", b""
    finally:
        s.close()
    return Result(status, got, local, time.monotonic() - t0)


def rst_close(s):
    """Closes a socket with an RST (SO_LINGER 0)."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def read_line(s, timeout=5):
    """Reads one line from a blocking socket; '' on EOF/reset/timeout."""
    s.settimeout(timeout * SLOW)
    buf = b""
    try:
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return buf.partition(b"\n")[0].decode(errors="replace")


def wait_closed(s, timeout):
    """Waits for EOF or RST on s without sending.  Returns (status,
    elapsed, data): status 'eof', 'reset' or 'timeout'."""
    t0 = time.monotonic()
    s.settimeout(timeout)
    data = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return "eof", time.monotonic() - t0, data
            data += chunk
    except ConnectionResetError:
        return "reset", time.monotonic() - t0, data
    except socket.timeout:
        return "timeout", time.monotonic() - t0, data


# ===== Assertions on what the server saw =====

def expect_conn(srv, r, peer=None, sock=None, fam=None, payload=None,
                what="connection", check_acc=True, **fields):
    """Checks a served connection: the client got its conn line, the server
    printed the same line, the fields match and the payload came back.
    peer is checked against getpeername and (with check_acc) against the
    address accept returned."""
    check(r.fields is not None, "%s: not served: %r" % (what, r))
    if peer is not None:
        eq(r.fields.get("peer"), peer, what + ": getpeername")
        if check_acc and r.fields.get("acc") != "null":
            eq(r.fields.get("acc"), peer, what + ": accept address")
    if sock is not None:
        eq(r.fields.get("sock"), sock, what + ": getsockname")
    if fam is not None:
        eq(r.fields.get("fam"), fam, what + ": family")
    for key, value in fields.items():
        eq(r.fields.get(key), str(value), "%s: %s" % (what, key))
    if payload is not None:
        check(r.rest == payload, "%s: echo differs: sent %d bytes, got %d "
              "(first %r)" % (what, len(payload), len(r.rest), r.rest[:60]))
    srv.wait_line("^" + re.escape(r.line) + "$", timeout=5)


_serial = [0]


def next_sport():
    _serial[0] += 1
    return 1000 + _serial[0] % 60000


def good(srv, src=None, what="good connection"):
    """A valid v1 header from a trusted source, with a payload: must be
    served with the advertised address.  Returns the Result."""
    sport = next_sport()
    payload = b"ping %d\n" % sport
    r = exchange(srv.target, v1(sport=sport) + payload, src=src)
    want = "%s:%d" % (CLIENT4, sport)
    if srv.host in ("::", "::1"):
        want = "[::ffff:%s]:%d" % (CLIENT4, sport)
    expect_conn(srv, r, peer=want, payload=payload, what=what)
    return r


def refused(srv, data=b"", what="bad header", src=None, pieces=None,
            target=None, timeout=5, good_fn=None):
    """A connection that must be aborted before the server sees it; then a
    good connection (good_fn(srv, what), by default good()) must still be
    served, and the server must have seen exactly that one."""
    before = len(srv.conn_lines())
    r = exchange(target or srv.target, data, src=src, pieces=pieces,
                 timeout=timeout)
    check(r.refused, "%s: expected an abort, got %r" % (what, r))
    (good_fn or good)(srv, what=what + ": next good connection")
    time.sleep(0.05)
    after = srv.conn_lines()
    check(len(after) == before + 1, "%s: the server saw the aborted "
          "connection: %r" % (what, after[before:]))


# ===== Programs, HAProxy and nginx in front of the servers under test =====

def find(name, *paths):
    """The path of an installed program (the first executable of paths,
    else name on PATH), or Skip."""
    for path in paths:
        if os.access(path, os.X_OK):
            return path
    path = shutil.which(name)
    if not path:
        raise Skip("%s not installed" % name)
    return path


def write(path, text, mode=None):
    """Writes text to path (then chmod mode); returns path."""
    with open(path, "w") as f:
        f.write(text)
    if mode is not None:
        os.chmod(path, mode)
    return path


HAPROXY_HEAD = """\
global
    maxconn 64

defaults
    mode tcp
    timeout connect 5s
    timeout client {timeout}s
    timeout server {timeout}s
"""


class HAProxy:
    """HAProxy in the foreground (-db), not preloaded, TCP mode: for each
    (name, server, lines) of fronts a frontend name on host (a free port,
    in ports) with the extra lines, relaying to backend ("host:port")
    with the server options server (send-proxy, send-proxy-v2 ...), from
    source when given."""

    def __init__(self, backend, fronts, host="127.0.0.1", source=None,
                 timeout=30):
        tmp = tempdir()
        self.host = host
        self.ports = {}
        text = HAPROXY_HEAD.format(timeout=timeout)
        for i, (name, server, lines) in enumerate(fronts, 1):
            self.ports[name] = free_port(host)
            text += "\nfrontend %s\n    bind %s:%d\n" % (
                name, host, self.ports[name])
            text += "".join("    %s\n" % ln for ln in lines)
            text += "    default_backend %s\n\nbackend %s\n" % (name, name)
            if source:
                text += "    source %s\n" % source
            text += "    server s%d %s %s\n" % (i, backend, server)
        cfg = write(os.path.join(tmp, "haproxy.cfg"), text)
        self.proc = Proc([find("haproxy", "/usr/sbin/haproxy"), "-db", "-f",
                          cfg], preload=False, cwd=tmp, name="haproxy")
        for port in self.ports.values():
            wait_listening(self.proc, port)

    def target(self, name):
        return (self.host, self.ports[name])


NGINX_HEAD = """\
daemon off;
master_process {master};
worker_processes {workers};
error_log {tmp}/error.log info;
pid {tmp}/nginx.pid;
{load_module}
events {{ worker_connections 64; }}
"""

NGINX_HTTP = """\
http {{
    log_format pp '{log_format}';
    access_log {tmp}/access.log pp;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
{listen}
        location / {{
            return 200 "hello $remote_addr $remote_port\\n";
        }}
    }}
}}
"""


def nginx_http(tmp, log_format, listen):
    """An http {} block for nginx_conf: one server on the addresses of
    listen answering every GET with "hello ADDR PORT", its access log
    tmp/access.log in log_format."""
    return NGINX_HTTP.format(tmp=tmp, log_format=log_format, listen="".join(
        "        listen %s;\n" % a for a in listen).rstrip("\n"))


def nginx(tmp, body, workers=0, load_module="", mode=None, **proc):
    """Starts nginx in the foreground, its files in tmp, configured with
    body (an http {} or stream {} block) after the common head: one
    process, or with workers a master and that many workers.  proc goes
    to Proc (env, preload, valgrind, leak_check).  Returns the Proc."""
    cfg = write(os.path.join(tmp, "nginx.conf"), NGINX_HEAD.format(
        master="on" if workers else "off", workers=workers or 1, tmp=tmp,
        load_module=load_module) + body, mode)
    return Proc([find("nginx", "/usr/sbin/nginx"), "-e",
                 os.path.join(tmp, "error.log"), "-p", tmp, "-c", cfg],
                name="nginx", **proc)


# ===== Runner =====

_tests = []


def test(fn=None, *, timeout=30, ipv6=False):
    """Registers a test function (decorator).  timeout is in seconds, scaled
    by SLOW; ipv6 tests are skipped without IPv6 on loopback."""
    def register(f):
        _tests.append((f, timeout, ipv6))
        return f
    return register(fn) if fn else register


def _on_alarm(signum, frame):
    raise TestTimeout()


def finish(failed, skipped, total):
    """Ends a test file that reported total results, failed of them failed
    and skipped skipped: the exit status for a person (1 on a failure, 77
    when everything skipped, else 0) or, under the TAP driver, 0: the
    driver reads the results from the output."""
    sys.stdout.flush()
    if TAP_DRIVER or not failed and (not total or skipped < total):
        sys.exit(0)
    sys.exit(1 if failed else EX_SKIP)


def skip_all(reason):
    """Skips a whole test file: the TAP plan "1..0 # SKIP reason", exit
    status 77 (0 under the TAP driver)."""
    print("1..0 # SKIP %s" % reason)
    sys.stdout.flush()
    sys.exit(0 if TAP_DRIVER else EX_SKIP)


def main(title):
    """Runs the registered tests (or those named on the command line)."""
    problem = environment_problem()
    if problem:
        skip_all(problem)
    check_lib_is_elf()
    names = sys.argv[1:]
    tests = [t for t in _tests if not names or t[0].__name__ in names or
             any(n in t[0].__name__ for n in names)]
    ipv6 = have_ipv6()
    signal.signal(signal.SIGALRM, _on_alarm)
    print("# %s: library %s%s" % (title, LIB, " (valgrind)" if VALGRIND
                                   else ""))
    print("1..%d" % len(tests))
    failed = skipped = 0
    for n, (fn, timeout, needs_v6) in enumerate(tests, 1):
        name = fn.__name__
        t0 = time.monotonic()
        reason = None
        skip = None
        try:
            if needs_v6 and not ipv6:
                raise Skip(caps.ipv6_lo()[1])
            signal.alarm(int(timeout * SLOW))
            try:
                fn()
            finally:
                signal.alarm(0)
        except Skip as e:
            skip = str(e)
        except Fail as e:
            reason = str(e)
        except TestTimeout:
            reason = "timed out after %ds" % (timeout * SLOW)
        except Exception:
            reason = "error:\n" + traceback.format_exc()
        errors = run_cleanups()
        if errors and reason is None and skip is None:
            reason = "; ".join(errors)
        dt = time.monotonic() - t0
        if skip is not None:
            skipped += 1
            print("ok %d %s # SKIP %s" % (n, name, skip))
        elif reason is None:
            print("ok %d %s (%.2fs)" % (n, name, dt))
        else:
            failed += 1
            text = reason.rstrip().replace("\n", "\n# ")
            print("not ok %d %s: %s" % (n, name, text))
        sys.stdout.flush()
    print("# %d passed, %d failed, %d skipped" % (
        len(tests) - failed - skipped, failed, skipped))
    finish(failed, skipped, len(tests))
