#!/bin/sh
# check-format.sh - the C sources under src/ and tests/ must be formatted
# as .clang-format says.  Fix with:
#   clang-format -i $(git ls-files 'src/*.[ch]' 'tests/*.[ch]')
#
# Pinned to clang-format 14 (Debian 12): other major versions format some
# constructs differently, so they skip rather than fail.  Moving the pin
# means reformatting the tree with the new version in the same commit.
#
# Environment: PPSHIM_SRCDIR, the source tree (make check sets it);
# CLANG_FORMAT, the binary to use.  Exit 0 pass, 1 fail, 77 skip.

PIN=14
srcdir=${PPSHIM_SRCDIR:-$(dirname "$0")/..}

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
	for c in clang-format-$PIN clang-format; do
		if command -v "$c" >/dev/null 2>&1; then
			cf=$c
			break
		fi
	done
fi
if [ -z "$cf" ] || ! command -v "$cf" >/dev/null 2>&1; then
	echo "SKIP: clang-format not found"
	exit 77
fi
# "Debian clang-format version 14.0.6" / "clang-format version 14.0.0 (...)"
major=$("$cf" --version | sed -n 's/.*clang-format version \([0-9]*\)\..*/\1/p')
if [ "$major" != "$PIN" ]; then
	echo "SKIP: $cf is version ${major:-unknown}; the style is pinned to $PIN"
	exit 77
fi

cd "$srcdir" || exit 1
if [ ! -f .clang-format ]; then
	echo "FAIL: no .clang-format in $srcdir"
	exit 1
fi
files=$(find src tests -type f \( -name '*.c' -o -name '*.h' \) | sort)
if [ -z "$files" ]; then
	echo "SKIP: no C sources found under $srcdir"
	exit 77
fi

status=0
for f in $files; do
	if ! "$cf" --style=file --dry-run -Werror "$f" >/dev/null 2>&1; then
		echo "FAIL: $f"
		"$cf" --style=file "$f" | diff -u "$f" - | sed -n '1,40p'
		status=1
	fi
done
if [ "$status" -eq 0 ]; then
	echo "PASS: $(echo "$files" | wc -l) files formatted as .clang-format says"
fi
exit "$status"
