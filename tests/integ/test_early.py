#!/usr/bin/env python3
"""Hooks called before ppshim's constructor behave like later ones.

libearly.so is preloaded after libppshim.so, so its constructor runs
first; it listens on a PROXY-only port and accepts one connection before
ppshim's constructor has run.  The header must be stripped and the
advertised client reported all the same.  A configuration error must
still stop the process with status 78 before main.
"""
import os
import socket
import subprocess
import sys
import time

LIB = os.environ.get("PPSHIM_LIB", "")
BUILD = os.environ.get("PPSHIM_BUILDDIR", ".")
EARLY = os.path.join(BUILD, "tests/helpers/.libs/libearly.so")
ASAN = os.environ.get("PPSHIM_ASAN_LIB", "")


def preload(*libs):
    return ":".join([x for x in (ASAN,) + libs if x])


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def run_early(port, extra_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    env.update({"LD_PRELOAD": preload(LIB, EARLY), "EARLY_PORT": str(port),
                "PP_PORTS": str(port), "PP_ALLOW": "127.0.0.1",
                "ASAN_OPTIONS": "detect_leaks=0"})
    env.update(extra_env or {})
    return subprocess.Popen(["/bin/echo", "main-ran"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_accept_before_constructor():
    port = free_port()
    p = run_early(port)
    try:
        line = p.stdout.readline()
        assert line.strip() == "early listening", repr(line)
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"PROXY TCP4 192.0.2.44 198.51.100.9 4444 25\r\n")
        out, err = p.communicate(timeout=10)
        c.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (p.returncode, err)
    assert "early peer=192.0.2.44:4444 name=192.0.2.44:4444" in out, out
    assert "main-ran" in out, out


def test_config_error_still_exits_78():
    port = free_port()
    p = run_early(port, {"PP_ALLOW": "10.0.0.0/33"})
    out, err = p.communicate(timeout=10)
    assert p.returncode == 78, (p.returncode, out, err)
    assert "PP_ALLOW: '10.0.0.0/33'" in err, err
    assert "main-ran" not in out and "early listening" not in out, out


def test_vfork_child_close_keeps_parent_addresses():
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PP_")}
    env.update({"LD_PRELOAD": preload(LIB), "PP_PORTS": str(port),
                "PP_ALLOW": "127.0.0.1", "ASAN_OPTIONS": "detect_leaks=0"})
    p = subprocess.Popen([os.path.join(BUILD, "tests/helpers/vforkclose"),
                          str(port)], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = p.stdout.readline()
        assert line.strip() == "listening", repr(line)
        c = socket.create_connection(("127.0.0.1", port), timeout=5)
        c.sendall(b"PROXY TCP4 192.0.2.45 198.51.100.9 4545 25\r\n")
        out, err = p.communicate(timeout=10)
        c.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, (p.returncode, err)
    assert "peer 192.0.2.45:4545" in out, (out, err)


def main():
    if not os.path.isfile(LIB) or not os.path.isfile(EARLY):
        print("SKIP: library or libearly.so not built")
        return 77
    failed = 0
    tests = [test_accept_before_constructor, test_config_error_still_exits_78,
             test_vfork_child_close_keeps_parent_addresses]
    for i, t in enumerate(tests, 1):
        t0 = time.monotonic()
        try:
            t()
            print("ok %d %s (%.2fs)" % (i, t.__name__, time.monotonic() - t0))
        except Exception as e:  # report and go on
            failed += 1
            print("not ok %d %s: %r" % (i, t.__name__, e))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
