#!/bin/sh
# check-exports.sh - libppshim.so must export exactly the interposed
# calls: every defined dynamic symbol has to be listed in the global
# section of src/ppshim.map.  Anything else would be injected into every
# program the library is preloaded into.
#
# Also fails on versioned definitions (accept@@NODE): the map's node has
# to stay anonymous, or the loader never binds a program's accept@GLIBC_*
# to the hook.
#
# Environment (set by make check): PPSHIM_LIB, the built .so;
# PPSHIM_SRCDIR, the source tree.  Exit 0 pass, 1 fail, 77 skip.

srcdir=${PPSHIM_SRCDIR:-$(dirname "$0")/..}
lib=${PPSHIM_LIB:-}
map=$srcdir/src/ppshim.map
NM=${NM:-nm}

if [ -z "$lib" ] || [ ! -f "$lib" ]; then
	echo "SKIP: library not built (PPSHIM_LIB='$lib')"
	exit 77
fi
if ! command -v "$NM" >/dev/null 2>&1; then
	echo "SKIP: $NM not found"
	exit 77
fi
if [ ! -r "$map" ]; then
	echo "FAIL: cannot read $map"
	exit 1
fi

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

# The map's global names: drop /* */ comments, keep what lies between
# "global:" and "local:", one name per ';'.
sed -e ':a' -e '/\/\*/{' -e '/\*\//!{N;ba' -e '}' -e 's:/\*.*\*/::' -e '}' \
    "$map" | tr -d ' \t' | tr '\n' ' ' |
	sed -n 's/.*global:\(.*\)local:.*/\1/p' | tr ';' '\n' |
	sed '/^ *$/d; s/ //g' | sort -u >"$tmp/allowed"
if [ ! -s "$tmp/allowed" ]; then
	echo "FAIL: no global names found in $map"
	exit 1
fi

if ! "$NM" -D --defined-only "$lib" >"$tmp/nm.out"; then
	echo "FAIL: $NM -D --defined-only $lib failed"
	exit 1
fi
# Lines are "VALUE TYPE NAME" (NAME may carry @VERSION or @@VERSION).
awk 'NF >= 3 { print $3 } NF == 2 { print $2 }' "$tmp/nm.out" |
	sort -u >"$tmp/defined"

status=0

versioned=$(grep '@' "$tmp/defined")
if [ -n "$versioned" ]; then
	echo "FAIL: versioned definitions (the map's node must be anonymous):"
	echo "$versioned" | sed 's/^/  /'
	status=1
fi

# Names the static linker may add to a shared object on its own; with
# "local: *" they do not appear, but they are not ours either way.
printf '%s\n' _init _fini _edata _end __bss_start | sort >"$tmp/linker"

sed 's/@.*//' "$tmp/defined" | sort -u >"$tmp/names"
extra=$(comm -23 "$tmp/names" "$tmp/allowed" | comm -23 - "$tmp/linker")
if [ -n "$extra" ]; then
	echo "FAIL: exported but not in the global section of $map:"
	echo "$extra" | sed 's/^/  /'
	status=1
fi

# Every call that hands out a descriptor number has to forget a stale
# entry of it (src/hook_newfd.c): a number it handed out unseen could be
# taken for the socket that had it before.
for name in socket socketpair accept accept4 dup dup2 dup3 fcntl pipe \
	pipe2 open open64 openat openat64 creat eventfd signalfd \
	timerfd_create epoll_create epoll_create1 memfd_create inotify_init \
	inotify_init1 recvmsg recvmmsg; do
	if ! grep -qx "$name" "$tmp/names"; then
		echo "FAIL: $name is not exported"
		status=1
	fi
done

# The reply calls carry the SPP header of a client that arrived by SPP
# (src/udp_reply.c), on connected sockets too.
for name in connect send write sendto sendmsg sendmmsg; do
	if ! grep -qx "$name" "$tmp/names"; then
		echo "FAIL: $name is not exported"
		status=1
	fi
done

# A library whose hooks lost default visibility exports nothing and
# would pass the test above while hooking nothing.
if ! grep -qx accept "$tmp/names"; then
	echo "FAIL: accept is not exported: are the hooks visibility(\"default\")?"
	status=1
fi

if [ "$status" -eq 0 ]; then
	echo "PASS: $(wc -l <"$tmp/names") exported names, all in $map:"
	sed 's/^/  /' "$tmp/names"
fi
exit "$status"
