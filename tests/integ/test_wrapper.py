#!/usr/bin/env python3
"""test_wrapper.py - the ppshim(1) wrapper: options, environment, refusals.

Runs the built wrapper ($PPSHIM_BUILDDIR/src/ppshim) with --library
$PPSHIM_LIB.  The wrapper itself is never preloaded; the commands it runs
(env, printf, sh) load the library, which is what the wrapper is for.

Prints one "ok"/"not ok" line per check and exits 0 when all pass, 1 when
one fails, 77 when the wrapper is not built.  Checks that need to exec a
command with the library loaded are skipped when $PPSHIM_LIB does not
exist yet.
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile

BUILDDIR = os.environ.get("PPSHIM_BUILDDIR", os.getcwd())
WRAPPER = os.path.join(BUILDDIR, "src", "ppshim")
LIB = os.environ.get("PPSHIM_LIB",
                     os.path.join(BUILDDIR, "src", ".libs", "libppshim.so"))
ASAN_LIB = os.environ.get("PPSHIM_ASAN_LIB", "")
HAVE_LIB = os.path.isfile(LIB)

# Exit statuses documented in ppshim(1).
EX_USAGE = 64
EX_UNAVAILABLE = 69
EX_CONFIG = 78
CANNOT_EXEC = 126
NOT_FOUND = 127

VARS = ["PP_PORTS", "PP_ALLOW", "PP_DIRECT", "PP_TIMEOUT_MS", "PP_VERSIONS",
        "PP_SOCKNAME", "PP_LOG", "PP_LOG_TARGET", "PP_V2_DRAFT",
        "PP_INHERIT"]
OPTIONS = ["--ports", "--allow", "--direct", "--timeout-ms", "--versions",
           "--sockname", "--log", "--log-target", "--v2-draft", "--inherit",
           "--library", "--help", "--version"]

results = {"n": 0, "failed": 0}


def report(ok, desc, detail=None):
    results["n"] += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", results["n"], desc))
    if not ok:
        results["failed"] += 1
        if detail:
            for line in str(detail).rstrip().splitlines():
                print("#   " + line)


def skip(desc, why):
    results["n"] += 1
    print("ok %d - %s # SKIP %s" % (results["n"], desc, why))


def base_env(**extra):
    """The test driver's environment without any PP_* or preload.

    Under --enable-sanitizers the ASan runtime has to come first in
    LD_PRELOAD of every program that loads the instrumented library.
    """
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PP_") and k != "LD_PRELOAD"}
    if ASAN_LIB:
        env["LD_PRELOAD"] = ASAN_LIB
        env.setdefault("ASAN_OPTIONS", "detect_leaks=0")
    env.update(extra)
    return env


def run(args, env=None, cwd=None):
    if env is None:
        env = base_env()
    p = subprocess.run([WRAPPER] + args, env=env, cwd=cwd,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30)
    return p.returncode, p.stdout.decode(errors="replace"), \
        p.stderr.decode(errors="replace")


def parse_env(out):
    d = {}
    for line in out.splitlines():
        k, sep, v = line.partition("=")
        if sep:
            d[k] = v
    return d


def preload_elements(value):
    return [e for e in value.replace(" ", ":").split(":") if e]


def describe(rc, out, err):
    return "rc=%s\nstdout:\n%s\nstderr:\n%s" % (rc, out[-2000:], err[-2000:])


def test_help_version():
    rc, out, err = run(["--help"])
    missing = [w for w in OPTIONS + VARS + ["LD_PRELOAD"] if w not in out]
    report(rc == 0 and not missing and "default" in out,
           "--help lists every option, its variable and default",
           "missing: %s\n%s" % (missing, describe(rc, out, err)))
    # The built-in library path depends on the prefix (make distcheck
    # uses a long one): only the help text itself must fit.
    long_lines = [ln for ln in out.splitlines()
                  if len(ln) > 80 and "(default: /" not in ln]
    report(not long_lines, "--help fits in 80 columns", long_lines)
    rc, out, err = run(["--version"])
    words = out.split()
    report(rc == 0 and len(words) == 2 and words[0] == "ppshim"
           and words[1][:1].isdigit(),
           "--version prints 'ppshim VERSION'", describe(rc, out, err))


def test_usage_errors(tmp):
    marker = os.path.join(tmp, "usage-ran")
    cases = [
        ([], "no COMMAND"),
        (["--"], "'--' without COMMAND"),
        (["--no-such-option", "--", "touch", marker], "unknown long option"),
        (["-q", "--", "touch", marker], "unknown short option"),
        (["--ports"], "option without its value"),
        (["--library", "", "--", "touch", marker], "empty --library"),
    ]
    for args, desc in cases:
        rc, out, err = run(args)
        report(rc == EX_USAGE and "--help" in err
               and not os.path.exists(marker),
               "usage error exits 64 with a hint: " + desc,
               describe(rc, out, err))


def test_bad_values(tmp):
    marker = os.path.join(tmp, "config-ran")
    cases = [
        ("--allow", "10.0.0.0/33", "PP_ALLOW"),
        ("--direct", "192.0.2.300", "PP_DIRECT"),
        ("--ports", "99999", "PP_PORTS"),
        ("--timeout-ms", "soon", "PP_TIMEOUT_MS"),
        ("--versions", "3", "PP_VERSIONS"),
        ("--sockname", "both", "PP_SOCKNAME"),
        ("--log", "loud", "PP_LOG"),
        ("--log-target", "file", "PP_LOG_TARGET"),
        ("--v2-draft=2", None, "PP_V2_DRAFT"),
        ("--inherit=yes", None, "PP_INHERIT"),
    ]
    for opt, val, var in cases:
        args = [opt] if val is None else [opt, val]
        token = val if val is not None else opt.split("=", 1)[1]
        rc, out, err = run(["--library", LIB] + args + ["--", "touch",
                                                         marker])
        lines = err.strip().splitlines()
        ok = (rc == EX_CONFIG and len(lines) == 1
              and lines[0].startswith("ppshim: %s: " % var)
              and token in lines[0] and not os.path.exists(marker))
        report(ok, "%s exits 78 naming %s and '%s'"
               % (" ".join(args), var, token), describe(rc, out, err))

    # A bad inherited value is caught too: the whole configuration is
    # checked, not only the options given.
    rc, out, err = run(["--library", LIB, "--ports", "25", "--", "touch",
                        marker], env=base_env(PP_ALLOW="10.0.0.0/99"))
    report(rc == EX_CONFIG and "PP_ALLOW" in err and "10.0.0.0/99" in err
           and not os.path.exists(marker),
           "a bad inherited PP_ALLOW exits 78", describe(rc, out, err))


def test_options_to_env():
    if not HAVE_LIB:
        skip("options set the PP_* variables", "library not built: " + LIB)
        return
    rc, out, err = run(["--library", LIB, "--ports", "2525",
                        "--allow", "10.0.0.0/8", "--direct", "192.0.2.1",
                        "--timeout-ms", "500", "--versions", "2",
                        "--sockname", "real", "--log", "error",
                        "--log-target", "stderr", "--v2-draft",
                        "--inherit=0", "--", "env"])
    env = parse_env(out)
    want = {"PP_PORTS": "2525", "PP_ALLOW": "10.0.0.0/8",
            "PP_DIRECT": "192.0.2.1", "PP_TIMEOUT_MS": "500",
            "PP_VERSIONS": "2", "PP_SOCKNAME": "real", "PP_LOG": "error",
            "PP_LOG_TARGET": "stderr", "PP_V2_DRAFT": "1",
            "PP_INHERIT": "0"}
    wrong = {k: env.get(k) for k, v in want.items() if env.get(k) != v}
    report(rc == 0 and not wrong, "each option sets its variable",
           "wrong: %s\n%s" % (wrong, describe(rc, out, err)))
    elems = preload_elements(env.get("LD_PRELOAD", ""))
    report(elems.count(LIB) == 1, "LD_PRELOAD holds the library once",
           "LD_PRELOAD=%r" % env.get("LD_PRELOAD"))

    # Options override inherited values; the others are kept as they are.
    rc, out, err = run(["--library", LIB, "--ports", "2525", "--", "env"],
                       env=base_env(PP_PORTS="1", PP_ALLOW="192.0.2.0/24",
                                    PP_LOG="error"))
    env = parse_env(out)
    report(rc == 0 and env.get("PP_PORTS") == "2525"
           and env.get("PP_ALLOW") == "192.0.2.0/24"
           and "PP_DIRECT" not in env,
           "options override inherited values, unset ones keep them",
           describe(rc, out, err))


def test_preload_idempotent(tmp):
    if not HAVE_LIB:
        skip("LD_PRELOAD handling", "library not built: " + LIB)
        return
    args = ["--library", LIB, "--log", "error", "--"]

    rc, out, err = run(args + [WRAPPER] + args + ["env"])
    elems = preload_elements(parse_env(out).get("LD_PRELOAD", ""))
    report(rc == 0 and elems.count(LIB) == 1,
           "the wrapper applied twice adds the library once",
           "elements=%s\n%s" % (elems, describe(rc, out, err)))

    # Entries already there stay, in order, in front of the library (an
    # ASan runtime must stay first).  Names without a slash are looked up
    # by the loader; libm is harmless to preload.
    prior = ((ASAN_LIB + " ") if ASAN_LIB else "") + "libm.so.6"
    rc, out, err = run(args + ["env"], env=base_env(LD_PRELOAD=prior))
    value = parse_env(out).get("LD_PRELOAD", "")
    report(rc == 0 and value.startswith(prior)
           and preload_elements(value) == preload_elements(prior) + [LIB],
           "existing LD_PRELOAD entries are kept, the library appended",
           "LD_PRELOAD=%r\n%s" % (value, describe(rc, out, err)))

    already = prior + " " + LIB
    rc, out, err = run(args + ["env"], env=base_env(LD_PRELOAD=already))
    value = parse_env(out).get("LD_PRELOAD", "")
    report(rc == 0 and value == already,
           "an LD_PRELOAD that has the library already is left alone",
           "LD_PRELOAD=%r\n%s" % (value, describe(rc, out, err)))

    # A relative --library is made absolute, so a server that changes
    # directory still finds it.
    rc, out, err = run(["--library", "./" + os.path.basename(LIB),
                        "--log", "error", "--", "env"],
                       cwd=os.path.dirname(LIB))
    elems = preload_elements(parse_env(out).get("LD_PRELOAD", ""))
    report(rc == 0 and os.path.realpath(LIB) in
           [os.path.realpath(e) for e in elems]
           and all(e.startswith("/") for e in elems if "/" in e),
           "a relative --library is made absolute",
           "elements=%s\n%s" % (elems, describe(rc, out, err)))


def test_command_passthrough():
    if not HAVE_LIB:
        skip("COMMAND arguments and status", "library not built: " + LIB)
        return
    rc, out, err = run(["--library", LIB, "--log", "error", "printf",
                        "%s|", "--ports", "x", "--help"])
    report(rc == 0 and out == "--ports|x|--help|",
           "options after COMMAND are COMMAND's, even without '--'",
           describe(rc, out, err))
    rc, out, err = run(["--library", LIB, "--log", "error", "--", "sh",
                        "-c", "exit 3"])
    report(rc == 3, "the exit status is COMMAND's", describe(rc, out, err))


def copy_env_binary(tmp, name):
    path = os.path.join(tmp, name)
    shutil.copy(shutil.which("env") or "/usr/bin/env", path)
    os.chmod(path, 0o755)
    return path


def test_secure_exec(tmp):
    marker = os.path.join(tmp, "secure-ran")
    for bit, word in ((stat.S_ISUID, "setuid"), (stat.S_ISGID, "setgid")):
        path = copy_env_binary(tmp, "env-" + word)
        try:
            os.chmod(path, 0o755 | bit)
        except OSError as e:
            skip("a %s COMMAND is refused" % word, "chmod: %s" % e)
            continue
        if not os.stat(path).st_mode & bit:
            skip("a %s COMMAND is refused" % word, "the bit did not stick")
            continue
        rc, out, err = run(["--library", LIB, "--", path, "touch", marker])
        report(rc == CANNOT_EXEC and word in err
               and "secure-execution" in err and "LD_PRELOAD" in err
               and not os.path.exists(marker),
               "a %s COMMAND is refused with the reason (126)" % word,
               describe(rc, out, err))

    # Found through PATH, as execvp would.
    rc, out, err = run(["--library", LIB, "--", "env-setuid", "touch",
                        marker],
                       env=base_env(PATH=tmp + ":" + os.environ.get(
                           "PATH", "/usr/bin:/bin")))
    report(rc == CANNOT_EXEC and "setuid" in err
           and not os.path.exists(marker),
           "a setuid COMMAND found through PATH is refused",
           describe(rc, out, err))

    setcap = next((p for p in ("/usr/sbin/setcap", "/sbin/setcap")
                   if os.access(p, os.X_OK)), None)
    desc = "a COMMAND with file capabilities is refused with the reason"
    if setcap is None:
        skip(desc, "setcap not installed (libcap2-bin)")
        return
    path = copy_env_binary(tmp, "env-cap")
    p = subprocess.run([setcap, "cap_net_bind_service+ep", path],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        skip(desc, "setcap failed (needs root and xattr support): "
             + p.stdout.decode(errors="replace").strip())
        return
    rc, out, err = run(["--library", LIB, "--", path, "touch", marker])
    report(rc == CANNOT_EXEC and "capabilities" in err
           and "secure-execution" in err and not os.path.exists(marker),
           desc + " (126)", describe(rc, out, err))


def test_missing(tmp):
    rc, out, err = run(["--library", LIB, "--", "ppshim-no-such-command"])
    report(rc == NOT_FOUND and "not found" in err,
           "a COMMAND not in PATH exits 127", describe(rc, out, err))
    rc, out, err = run(["--library", LIB, "--",
                        os.path.join(tmp, "no", "such", "file")])
    report(rc == NOT_FOUND, "a missing COMMAND path exits 127",
           describe(rc, out, err))

    path = os.path.join(tmp, "not-executable")
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexit 0\n")
    os.chmod(path, 0o644)  # no x bit: not even root may execute it
    rc, out, err = run(["--library", LIB, "--", path])
    report(rc == CANNOT_EXEC, "a COMMAND that is not executable exits 126",
           describe(rc, out, err))

    rc, out, err = run(["--library", os.path.join(tmp, "libnothere.so"),
                        "--", "true"])
    report(rc == EX_UNAVAILABLE and "libnothere.so" in err,
           "a missing library exits 69 naming it", describe(rc, out, err))

    fake = os.path.join(tmp, "libppshim.la")
    with open(fake, "w") as f:
        f.write("# libppshim.la - a libtool library file\n")
    rc, out, err = run(["--library", fake, "--", "true"])
    report(rc == EX_UNAVAILABLE and "ELF" in err,
           "a library that is not ELF (a .la file) exits 69",
           describe(rc, out, err))


def main():
    if not os.access(WRAPPER, os.X_OK):
        print("SKIP: wrapper not built: %s" % WRAPPER)
        return 77
    if not HAVE_LIB:
        print("# library not built (%s): checks that exec with it skip" % LIB)
    tmp = tempfile.mkdtemp(prefix="ppshim-wrapper-")
    try:
        test_help_version()
        test_usage_errors(tmp)
        test_bad_values(tmp)
        test_options_to_env()
        test_preload_idempotent(tmp)
        test_command_passthrough()
        test_secure_exec(tmp)
        test_missing(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % results["n"])
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
