#!/usr/bin/env python3
"""test_wrapper.py - the ppshim(1) wrapper: options, environment, refusals.

Runs the built wrapper ($PPSHIM_BUILDDIR/src/ppshim) with --library
$PPSHIM_LIB.  The wrapper itself is never preloaded; the commands it runs
(env, printf, sh) load the library, which is what the wrapper is for.

Prints one TAP "ok"/"not ok" line per check, the plan last, and exits as
pptest.finish says (by hand: 0 when all pass, 1 when one fails, 77 when
the wrapper is not built).  Checks that need to exec a
command with the library loaded are skipped when $PPSHIM_LIB does not
exist yet.
"""

import os
import shutil
import stat
import struct
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import caps  # noqa: E402
import pptest as pp  # noqa: E402

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
           "--library", "--force", "--help", "--version"]

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


# ===== Programs in which the library would do nothing: static, Go =====

# A program that creates the file named by its first argument, so a test
# can tell whether it ran.
TOUCH_C = r"""
#include <stdio.h>
int main(int argc, char **argv)
{
	FILE *f = argc > 1 ? fopen(argv[1], "w") : NULL;
	if (f != NULL)
		fclose(f);
	return 0;
}
"""

# The note the Go linker writes: owner "Go", type 4 (the build ID).
GO_NOTE_C = r"""
struct pp_gonote {
	unsigned int namesz, descsz, type;
	char name[4];
	char desc[8];
};
__attribute__((used, section(".note.go.buildid"), aligned(4)))
static const struct pp_gonote pp_gonote = { 4, 8, 4, "Go", "buildid" };
"""

# Go 1.13 and later also write a .go.buildinfo section (not a note).
GO_BUILDINFO_C = r"""
__attribute__((used, section(".go.buildinfo")))
static const char pp_buildinfo[32] = "\xff Go buildinf:";
"""


def find_cc():
    for cc in ("cc", "gcc", "clang"):
        path = shutil.which(cc)
        if path:
            return path
    return None


def build(tmp, name, source, flags=()):
    """Compiles source into tmp/name; returns the path, or None (with the
    compiler's complaint) when this machine cannot build it."""
    cc = find_cc()
    if cc is None:
        return None, "no C compiler"
    src = os.path.join(tmp, name + ".c")
    out = os.path.join(tmp, name)
    with open(src, "w") as f:
        f.write(source)
    p = subprocess.run([cc] + list(flags) + ["-o", out, src],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0 or not os.path.isfile(out):
        return None, "%s %s: %s" % (cc, " ".join(flags),
                                   p.stdout.decode(errors="replace")[-300:])
    return out, None


def elf_interp(path):
    """The PT_INTERP of an ELF file in the machine's byte order, or None."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF":
        return None
    bo = "<" if data[5] == 1 else ">"
    if data[4] == 2:
        phoff, = struct.unpack_from(bo + "Q", data, 0x20)
        phentsize, phnum = struct.unpack_from(bo + "HH", data, 0x36)
        fmt, tpos, opos, szpos = bo + "IIQQQQQQ", 0, 2, 5
    else:
        phoff, = struct.unpack_from(bo + "I", data, 0x1c)
        phentsize, phnum = struct.unpack_from(bo + "HH", data, 0x2a)
        fmt, tpos, opos, szpos = bo + "IIIIIIII", 0, 1, 4
    for i in range(phnum):
        ph = struct.unpack_from(fmt, data, phoff + i * phentsize)
        if ph[tpos] == 3:  # PT_INTERP
            raw = data[ph[opos]:ph[opos] + ph[szpos]]
            return raw.split(b"\0")[0].decode()
    return None


def strip_section_headers(path):
    """Removes the section header table (e_shoff, e_shnum, e_shstrndx set
    to 0), as some packers do: only the program headers are left."""
    with open(path, "r+b") as f:
        data = bytearray(f.read())
        bo = "<" if data[5] == 1 else ">"
        if data[4] == 2:
            struct.pack_into(bo + "Q", data, 0x28, 0)
            struct.pack_into(bo + "HH", data, 0x3c, 0, 0)
        else:
            struct.pack_into(bo + "I", data, 0x20, 0)
            struct.pack_into(bo + "HH", data, 0x30, 0, 0)
        f.seek(0)
        f.write(data)


# The one line the wrapper prints when the kernel refuses an ELF COMMAND.
NOEXEC_LINE = "cannot execute: the kernel cannot run this ELF file"


def check_noexec(path, marker, desc, hint, force):
    """An ELF file the kernel cannot run: one line saying so (with hint in
    it), after any --force warning, status 126, nothing handed to /bin/sh."""
    args = ["--library", LIB, "--log", "error"] + (["--force"] if force
                                                    else [])
    rc, out, err = run(args + ["--", path, marker])
    lines = [x for x in err.strip().splitlines()
             if "running it anyway (--force)" not in x]
    report(rc == CANNOT_EXEC and len(lines) == 1
           and lines[0].startswith("ppshim: %s: " % path)
           and NOEXEC_LINE in lines[0] and hint in lines[0]
           and not os.path.exists(marker) and out == "",
           "%s%s the kernel cannot run: one line, 126, no shell"
           % ("--force on " if force else "", desc), describe(rc, out, err))


def check_refused(tmp, path, words, desc, status=CANNOT_EXEC, runs=None):
    """path is refused with status and a message holding every one of
    words; with --force it runs, after a one-line warning.  runs is the
    caps.py probe that says whether this host can execute such a file:
    where it cannot, the kernel's refusal comes first, with and without
    --force, told in one line."""
    marker = os.path.join(tmp, "ran-" + os.path.basename(path))
    can, why = runs() if runs else (True, "")
    if not can:
        skip("%s is refused with the reason (%d)" % (desc, status), why)
        skip("--force runs %s, with a warning" % desc, why)
        for force in (False, True):
            check_noexec(path, marker, desc, "32-bit x86", force)
        return
    rc, out, err = run(["--library", LIB, "--", path, marker])
    lines = err.strip().splitlines()
    report(rc == status and len(lines) == 1
           and all(w in lines[0] for w in words)
           and "--force" in lines[0] and not os.path.exists(marker),
           "%s is refused with the reason (%d)" % (desc, status),
           describe(rc, out, err))
    rc, out, err = run(["--library", LIB, "--log", "error", "--force", "--",
                        path, marker])
    report(rc == 0 and os.path.exists(marker)
           and "running it anyway (--force)" in err,
           "--force runs %s, with a warning" % desc, describe(rc, out, err))


def test_static(tmp):
    for name, flags, desc, runs in (
            ("static", ["-static"], "a statically linked COMMAND", None),
            ("static-pie", ["-static-pie", "-fPIE"],
             "a static-pie COMMAND", None),
            ("static32", ["-m32", "-static"],
             "a 32-bit statically linked COMMAND", caps.exec32_static)):
        path, why = build(tmp, name, TOUCH_C, flags)
        if path is None:
            skip(desc + " is refused", "cannot build one: " + why)
            continue
        check_refused(tmp, path, ["statically linked", "LD_PRELOAD"], desc,
                      runs=runs)

    # The dynamic loader run as a command has no PT_INTERP either, but it
    # is the one that reads LD_PRELOAD: not refused.
    interp = elf_interp(WRAPPER)
    desc = "the dynamic loader run as a command is not refused"
    if not HAVE_LIB:
        skip(desc, "library not built: " + LIB)
    elif interp is None or not os.access(interp, os.X_OK):
        skip(desc, "the wrapper has no usable PT_INTERP")
    else:
        rc, out, err = run(["--library", LIB, "--log", "error", "--",
                            interp, shutil.which("env") or "/usr/bin/env"])
        elems = preload_elements(parse_env(out).get("LD_PRELOAD", ""))
        report(rc == 0 and LIB in elems, desc, describe(rc, out, err))


def test_go(tmp):
    if not HAVE_LIB:
        skip("Go programs are refused", "library not built: " + LIB)
        return
    cases = [
        ("go-dynamic", TOUCH_C + GO_NOTE_C, [], False,
         ["Go program", "net package", "system calls"],
         "a dynamically linked Go program (build ID note)"),
        ("go-buildinfo", TOUCH_C + GO_BUILDINFO_C, [], False,
         ["Go program", "net package"],
         "a Go program known by its .go.buildinfo section"),
        ("go-phdr-only", TOUCH_C + GO_NOTE_C, [], True,
         ["Go program", "net package"],
         "a Go program without section headers (PT_NOTE)"),
        ("go-static", TOUCH_C + GO_NOTE_C, ["-static"], False,
         ["statically linked Go program", "LD_PRELOAD"],
         "a statically linked Go program"),
        ("go-dynamic32", TOUCH_C + GO_NOTE_C, ["-m32"], False,
         ["Go program", "net package"], "a 32-bit Go program"),
    ]
    for name, source, flags, strip, words, desc in cases:
        runs = caps.exec32 if "-m32" in flags else None
        path, why = build(tmp, name, source, flags)
        if path is None:
            skip(desc + " is refused", "cannot build one: " + why)
            continue
        if strip:
            strip_section_headers(path)
        # A 32-bit program and a 64-bit library (or the other way round)
        # would be refused for that first: only the Go check is wanted.
        check_refused(tmp, path, words, desc, runs=runs)

    # An ordinary dynamically linked program is not mistaken for one.
    path, why = build(tmp, "plain", TOUCH_C)
    if path is None:
        skip("a plain C program runs", "cannot build one: " + why)
        return
    marker = os.path.join(tmp, "ran-plain")
    rc, out, err = run(["--library", LIB, "--log", "error", "--", path,
                        marker])
    report(rc == 0 and os.path.exists(marker) and err == "",
           "a plain dynamically linked C program runs without a word",
           describe(rc, out, err))


def test_elf_class(tmp):
    desc = "a 32-bit COMMAND with a 64-bit library"
    if not HAVE_LIB:
        skip(desc, "library not built: " + LIB)
        return
    with open(LIB, "rb") as f:
        libclass = f.read(5)[4]
    flags = ["-m32"] if libclass == 2 else ["-m64"]
    path, why = build(tmp, "other-class", TOUCH_C, flags)
    if path is None:
        skip(desc + " is explained", "cannot build one: " + why)
        return
    marker = os.path.join(tmp, "ran-other-class")
    can, why = caps.exec32() if "-m32" in flags else (True, "")
    if not can:
        skip("a COMMAND of the other ELF class is explained (69)", why)
        skip("--force runs a COMMAND of the other ELF class", why)
        for force in (False, True):
            check_noexec(path, marker, "a COMMAND of the other ELF class",
                         "32-bit x86", force)
        return
    rc, out, err = run(["--library", LIB, "--", path, marker])
    report(rc == EX_UNAVAILABLE and "32-bit" in err and "64-bit" in err
           and "--force" in err and not os.path.exists(marker),
           "a COMMAND of the other ELF class is explained (69)",
           describe(rc, out, err))
    rc, out, err = run(["--library", LIB, "--force", "--", path, marker])
    report(rc == 0 and os.path.exists(marker),
           "--force runs a COMMAND of the other ELF class",
           describe(rc, out, err))


def foreign_elf(path, payload=b""):
    """Writes a minimal ELF executable for a machine the kernel here does
    not run (arm64 on x86, x86-64 elsewhere), followed by payload."""
    machine = 183 if os.uname().machine != "aarch64" else 62
    ehdr = struct.pack("<4sBBBB8xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0,
                       2, machine, 1, 0x400078, 64, 0, 0, 64, 56, 1, 64, 0,
                       0)
    phdr = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 0x80, 0x80,
                       0x1000)
    with open(path, "wb") as f:
        f.write(ehdr + phdr + payload)
    os.chmod(path, 0o755)


def test_noexec(tmp):
    """The kernel's ENOEXEC: an ELF file never goes to /bin/sh; a script
    without #! still does, as execvp(3) runs it."""
    if not HAVE_LIB:
        skip("ENOEXEC handling", "library not built: " + LIB)
        return
    path = os.path.join(tmp, "foreign")
    marker = os.path.join(tmp, "ran-by-sh")
    # Were the file handed to the shell, this line would create marker.
    foreign_elf(path, b"\n: > %s\n" % marker.encode())
    handlers = [e for e in os.listdir("/proc/sys/fs/binfmt_misc")
                if e not in ("register", "status")] \
        if os.path.isdir("/proc/sys/fs/binfmt_misc") else []
    if handlers:
        skip("--force on an ELF file of another machine",
             "binfmt_misc handlers registered (%s) may run it"
             % ", ".join(handlers))
    else:
        check_noexec(path, marker, "an ELF file of another machine",
                     "built for ", True)

    script = os.path.join(tmp, "noshebang")
    marker = os.path.join(tmp, "ran-noshebang")
    with open(script, "w") as f:
        f.write(': > "$1"\necho "preload=$LD_PRELOAD"\n')
    os.chmod(script, 0o755)
    rc, out, err = run(["--library", LIB, "--log", "error", "--", script,
                        marker])
    report(rc == 0 and os.path.exists(marker) and LIB in out and err == "",
           "a script without #! runs with /bin/sh, as execvp runs it",
           describe(rc, out, err))


def test_dollar_lib(tmp):
    """--library with $LIB in it: the loader expands it per program; the
    wrapper checks the expansion for COMMAND's ABI."""
    desc = "a --library path with $LIB"
    cc = find_cc()
    if not HAVE_LIB or cc is None:
        skip(desc, "library not built or no C compiler")
        return
    p = subprocess.run([cc, "-print-multiarch"], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL)
    triplet = p.stdout.decode().strip()
    if p.returncode != 0 or not triplet:
        skip(desc, "no multiarch tuple")
        return
    with open(LIB, "rb") as f:
        if f.read(5)[4] != (2 if sys.maxsize > 2**32 else 1):
            skip(desc, "the library is not of this machine's ABI")
            return
    root = os.path.join(tmp, "prefix")
    libdir = os.path.join(root, "lib", triplet)
    os.makedirs(libdir)
    shutil.copy(LIB, os.path.join(libdir, "libppshim.so"))
    dollar = os.path.join(root, "$LIB", "libppshim.so")
    cat = shutil.which("cat") or "/bin/cat"
    rc, out, err = run(["--library", dollar, "--log", "error", "--", cat,
                        "/proc/self/maps"])
    report(rc == 0 and os.path.join(libdir, "libppshim.so") in out,
           "a $LIB path is checked and expanded by the loader",
           describe(rc, out[-600:], err))
    rc, out, err = run(["--library", dollar, "--log", "error", "--", "env"])
    report(rc == 0 and dollar in preload_elements(
        parse_env(out).get("LD_PRELOAD", "")),
           "LD_PRELOAD keeps $LIB for the loader to expand",
           describe(rc, out, err))
    missing = os.path.join(tmp, "nowhere", "$LIB", "libppshim.so")
    rc, out, err = run(["--library", missing, "--", "true"])
    report(rc == EX_UNAVAILABLE and "no build of it" in err
           and os.path.join(tmp, "nowhere", "lib", triplet) in err,
           "a $LIB path with nothing behind it exits 69 naming the file",
           describe(rc, out, err))


def main():
    if not os.access(WRAPPER, os.X_OK):
        pp.skip_all("wrapper not built: %s" % WRAPPER)
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
        test_static(tmp)
        test_go(tmp)
        test_elf_class(tmp)
        test_noexec(tmp)
        test_dollar_lib(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % results["n"])
    pp.finish(results["failed"], 0, results["n"])


if __name__ == "__main__":
    main()
