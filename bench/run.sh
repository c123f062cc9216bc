#!/bin/sh
# bench/run.sh - what the shim costs, measured side by side in one run.
# Run through "make bench" (which builds the programs and sets
# BENCH_BUILDDIR and BENCH_LIB); see bench/README.md for every figure.
#
# Parts (BENCH_PARTS, default all, in this order):
#   tcp       nginx, one worker, four modes kept running on four ports:
#             native proxy_protocol, no proxy_protocol under the shim
#             (ppshim), native proxy_protocol plus the floor preload
#             (bench/floor.c: the two system calls ppshim adds, nothing
#             else), no header and no shim (plain, the ceiling); plus an
#             nginx under the shim whose port is not PROXY-only
#             (bystander), and one whose PP_ALLOW names a list file that
#             the library follows (ppfile: the same list, from a file).  Alternating slices, paired ratios, A/A check.
#   syscalls  system calls per connection on the server side (strace -c;
#             perf tracepoints at full load when perf has them)
#   silent    one silent connection held open on the native port and on
#             a second ppshim nginx, against the ppshim nginx without one
#             (BENCH_SILENT_ROUNDS rounds)
#   parse     the parser and CRC32C micro-benchmark
#   udp       datagrams/s through an echo server: under the shim, alone
#             (no header), parsing the header itself (udpecho -n), and
#             under the datagram floor (bench/udpfloor.c: interposing
#             recvfrom and sendto, stripping the header and sending the
#             reply to the proxy, nothing else)
#   accept    accept4 durations of an event-loop server under the shim
#             while silent, trickling and garbage clients hit it
#   scale     nginx memory with BENCH_HOLD keep-alive connections held
#             open, ppshim against native; accept throughput of acceptsrv
#             with 1, 2, 8, 32 threads and a prefork group of 16; the
#             descriptor table's memory against the highest descriptor
#   instr     user-space instructions per connection and per datagram
#             (valgrind's callgrind: deterministic, whatever the load)
#   pages     distinct pages of code and data touched between two system
#             calls of the UDP echo server, alone and under the shim
#             (valgrind's lackey, bench/pages.py): what a kernel with
#             page-table isolation and no PCID charges a page walk for
#   profile   where the servers' CPU goes at full load (perf's cpu-clock
#             samples): the UDP echo server alone and under the shim
#             (v2, SPP), nginx under the shim and with the floor
#             preload; the shares of the kernel, libc, the program and
#             the library, and the library's costliest functions
#
# Environment (all optional): BENCH_QUICK (1: a short run, about a
# third of the time, with fewer rounds and counts), BENCH_ROUNDS (20),
# BENCH_SILENT_ROUNDS (2 x BENCH_ROUNDS), BENCH_SLICE (0.5),
# BENCH_INFLIGHT (16), BENCH_PP (v2 or v1), BENCH_STRACE_N (2000),
# BENCH_PERF_N (20000), BENCH_PORT (18400: ports BENCH_PORT+1..+56),
# BENCH_PROFILE_SECS (4),
# BENCH_SRV_CPU (0), BENCH_CLI_CPU (1), BENCH_ACCEPT_SECS (12),
# BENCH_HOLD (10000), BENCH_MAX_SECONDS (1200: the whole run is stopped
# after that).
#
# Everything runs on loopback and stops by itself.  Servers are pinned to
# BENCH_SRV_CPU and the clients to BENCH_CLI_CPU; as root both run at
# nice -20 so that other work on a shared machine disturbs them less.
set -eu

B=${BENCH_BUILDDIR:?run through make bench}
LIB=${BENCH_LIB:?run through make bench}
FLOOR=${BENCH_FLOOR:?run through make bench}
UFLOOR=${BENCH_UDPFLOOR:-$(dirname "$FLOOR")/libppudpfloor.so}
SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
if [ "${BENCH_QUICK:-0}" = 1 ]; then
	ROUNDS=${BENCH_ROUNDS:-8}
	STRACE_N=${BENCH_STRACE_N:-500}
	PERF_N=${BENCH_PERF_N:-5000}
	ACCEPT_SECS=${BENCH_ACCEPT_SECS:-6}
	HOLD=${BENCH_HOLD:-2000}
	PF_SECS=${BENCH_PROFILE_SECS:-2}
else
	ROUNDS=${BENCH_ROUNDS:-20}
	STRACE_N=${BENCH_STRACE_N:-2000}
	PERF_N=${BENCH_PERF_N:-20000}
	ACCEPT_SECS=${BENCH_ACCEPT_SECS:-12}
	HOLD=${BENCH_HOLD:-10000}
	PF_SECS=${BENCH_PROFILE_SECS:-4}
fi
SILENT_ROUNDS=${BENCH_SILENT_ROUNDS:-$((2 * ROUNDS))}
SLICE=${BENCH_SLICE:-0.5}
INFLIGHT=${BENCH_INFLIGHT:-16}
PP=${BENCH_PP:-v2}
BASE=${BENCH_PORT:-18400}
SCPU=${BENCH_SRV_CPU:-0}
CCPU=${BENCH_CLI_CPU:-1}
MAXSECS=${BENCH_MAX_SECONDS:-1200}
PARTS=${BENCH_PARTS:-tcp syscalls silent parse udp accept scale instr pages profile}
CG_N=${BENCH_CG_N:-3000}

P_NATIVE=$((BASE + 1))
P_SHIM=$((BASE + 2))
P_PLAIN=$((BASE + 3))
P_BYST=$((BASE + 4))
P_FLOOR=$((BASE + 5))
P_SHIMQ=$((BASE + 6))
P_SHIMF=$((BASE + 7))
P_USHIM=$((BASE + 11))
P_UPLAIN=$((BASE + 12))
P_UNATIVE=$((BASE + 13))
P_USPP=$((BASE + 14))
P_UFLOOR=$((BASE + 15))
P_ACC=$((BASE + 21))
P_ACCREF=$((BASE + 22))
P_KA_SHIM=$((BASE + 31))
P_KA_NATIVE=$((BASE + 32))
P_FDGROW=$((BASE + 33))
P_KA_PLAIN=$((BASE + 34))
P_AS=$((BASE + 35)) # acceptsrv: P_AS .. P_AS+9
P_CG=$((BASE + 45)) # instr: P_CG .. P_CG+3
P_PG=$((BASE + 49)) # pages: P_PG .. P_PG+2
P_PF=$((BASE + 52)) # profile: P_PF .. P_PF+4

for f in "$LIB" "$FLOOR" "$UFLOOR" "$B/bench/loadgen" "$B/bench/parsebench" \
	"$B/bench/udpbench" "$B/bench/udpecho" "$B/bench/acceptlat" \
	"$B/bench/acceptsrv" "$B/bench/fdgrow" "$B/bench/holdconn"; do
	if [ ! -e "$f" ]; then
		echo "run.sh: $f is missing (make bench)" >&2
		exit 1
	fi
done

NICE=""
if [ "$(id -u)" = 0 ]; then
	NICE="nice -n -20"
fi
SRV="$NICE taskset -c $SCPU"
CLI="$NICE taskset -c $CCPU"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ppbench.XXXXXX")
pids=""
watchdog=""

cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	if [ -n "$watchdog" ]; then
		kill "$watchdog" 2>/dev/null || true
	fi
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
(
	trap 'kill "$s" 2>/dev/null; exit 0' TERM
	sleep "$MAXSECS" &
	s=$!
	if wait "$s"; then
		echo "run.sh: stopped after $MAXSECS s" >&2
		kill -TERM $$
	fi
) &
watchdog=$!

say() {
	printf '\n== %s\n' "$*"
}

have() {
	command -v "$1" >/dev/null 2>&1
}

# nginx_conf NAME PORT LISTEN-SUFFIX [CONNECTIONS]: CONNECTIONS (4096)
# is worker_connections; above 4096 keep-alive lasts ten minutes.
nginx_conf() {
	mkdir -p "$tmp/$1/logs"
	wc=${4:-4096}
	nofile=$((wc * 2 + 64))
	hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$nofile" -gt "$hard" ]; then
		nofile=$hard
	fi
	cat > "$tmp/$1/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
worker_rlimit_nofile $nofile;
pid $tmp/$1/nginx.pid;
error_log $tmp/$1/logs/error.log warn;
events { worker_connections $wc; }
http {
	access_log off;
	keepalive_timeout $([ "$wc" -gt 4096 ] && echo 600s || echo 75s);
	client_body_temp_path $tmp/$1;
	proxy_temp_path $tmp/$1;
	fastcgi_temp_path $tmp/$1;
	uwsgi_temp_path $tmp/$1;
	scgi_temp_path $tmp/$1;
	server {
		listen 127.0.0.1:$2$3;
		location / { return 200 "ok"; }
	}
}
EOF
}

# start NAME ENV... -- COMMAND...: runs COMMAND pinned to the server CPU;
# its pid (the exec chain keeps it) is left in $started.
start() {
	name=$1
	shift
	(
		exec env "$@" > "$tmp/$name.out" 2>&1
	) &
	started=$!
	pids="$pids $started"
}

# wait_failed PORT t|u: why a server did not answer, who holds the TCP
# or UDP port, what servers said.
wait_failed() {
	echo "run.sh: port $1 does not answer" >&2
	ss "-H$2lnp" "sport = :$1" >&2 2>/dev/null || true
	for f in $(ls -t "$tmp"/*.out 2>/dev/null | head -4); do
		echo "-- $(basename "$f" .out) (last lines):" >&2
		tail -n 5 "$f" >&2
	done
}

# wait_tcp PORT MODE: until one connection gets its 200.
wait_tcp() {
	local i=0
	until $B/bench/loadgen -t "w=$1/$2" -n 1 -w 0 -T 1 2>/dev/null |
		grep -q 'count=1$'; do
		i=$((i + 1))
		[ $i -lt 50 ] || { wait_failed "$1" t; return 1; }
		sleep 0.1
	done
}

# wait_udp PORT TRAFFIC: until a datagram's echo comes back.
wait_udp() {
	local i=0
	until $B/bench/udpbench -t "w=$1/$2" -r 1 -W 0 -s 0.1 2>/dev/null |
		grep -q 'RESULT.* count=[1-9]'; do
		i=$((i + 1))
		[ $i -lt 50 ] || { wait_failed "$1" u; return 1; }
	done
}

# Sum of the "calls" column of strace -c output, per syscall name.
strace_table() {
	awk '/^-----/ { part++; next }
	     part == 1 && NF >= 5 { print $NF, $4 }' "$1"
}

# compare_calls LABEL-A FILE-A LABEL-B FILE-B N: per-connection table.
compare_calls() {
	strace_table "$2" > "$tmp/ca"
	strace_table "$4" > "$tmp/cb"
	awk -v la="$1" -v lb="$3" -v n="$5" '
		FNR == NR { a[$1] = $2; seen[$1] = 1; next }
		{ b[$1] = $2; seen[$1] = 1 }
		END {
			printf "%-16s %10s %10s %10s\n", "syscall", la, lb, \
				"difference"
			for (s in seen) {
				x = a[s] / n; y = b[s] / n
				ta += x; tb += y
				printf "%-16s %10.3f %10.3f %+10.3f\n", s, x, \
					y, y - x
			}
			printf "%-16s %10.3f %10.3f %+10.3f\n", "total", ta, \
				tb, tb - ta
			printf "SYSCALLS %s/%s a=%.3f b=%.3f extra=%.3f\n", \
				lb, la, ta, tb, tb - ta
		}' "$tmp/ca" "$tmp/cb"
}

# strace_run NAME PID PORT MODE: strace -c -f the server over
# STRACE_N connections; the table is left in $tmp/strace.NAME.
strace_run() {
	timeout -s INT 120 strace -f -c -o "$tmp/strace.$1" -p "$2" \
		2>/dev/null &
	sp=$!
	sleep 1
	$CLI "$B/bench/loadgen" -t "$1=$3/$4" -n "$STRACE_N" -w 0 -c 4 \
		-T 100 | grep '^RESULT' || true
	sleep 0.3
	kill -INT "$sp" 2>/dev/null || true
	wait "$sp" 2>/dev/null || true
}

PERF_EVENTS=""
perf_ok() {
	have perf && perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1
}

# perf_run NAME PID PORT MODE: syscalls at full load (tracepoints).
perf_run() {
	# No workload command: perf then counts until SIGINT, and signals
	# nothing else.
	perf stat -x, -e "$PERF_EVENTS" -p "$2" -o "$tmp/perf.$1" \
		2>/dev/null &
	pp=$!
	sleep 0.5
	$CLI "$B/bench/loadgen" -t "$1=$3/$4" -n "$PERF_N" -w 0 \
		-c "$INFLIGHT" -T 100 | grep '^RESULT' || true
	sleep 0.2
	kill -INT "$pp" 2>/dev/null || true
	wait "$pp" 2>/dev/null || true
}

# ===== Header =====
say "ppshim benchmark"
echo "date:    $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[^:]*: //p' \
	/proc/cpuinfo | head -n 1), Linux $(uname -r)"
echo "nginx:   $(nginx -v 2>&1 | sed 's/.*version: //')"
if have git && git -C "$SRCDIR" rev-parse --short HEAD >/dev/null 2>&1; then
	dirty=""
	git -C "$SRCDIR" diff --quiet -- src 2>/dev/null ||
		dirty=" + local changes in src/"
	echo "source:  $(git -C "$SRCDIR" rev-parse --short HEAD)$dirty"
fi
echo "command: make bench (BENCH_ROUNDS=$ROUNDS BENCH_SLICE=$SLICE" \
	"BENCH_INFLIGHT=$INFLIGHT BENCH_PP=$PP${BENCH_QUICK:+ BENCH_QUICK=1})"
echo "servers on CPU $SCPU, clients on CPU $CCPU${NICE:+, both at nice -20}"
echo "load:    $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min) at the start"
started_at=$(date +%s)

want() {
	case " $PARTS " in
	*" $1 "*) return 0 ;;
	*) return 1 ;;
	esac
}

# ===== nginx in four configurations =====
if want tcp || want syscalls || want silent; then
	have nginx || { echo "run.sh: nginx is not installed" >&2; exit 1; }
	nginx_conf native "$P_NATIVE" " proxy_protocol"
	nginx_conf shim "$P_SHIM" ""
	nginx_conf plain "$P_PLAIN" ""
	nginx_conf byst "$P_BYST" ""
	nginx_conf floor "$P_FLOOR" " proxy_protocol"
	nginx_conf shimq "$P_SHIMQ" ""
	nginx_conf shimf "$P_SHIMF" ""
	start native $SRV nginx -p "$tmp/native" -c "$tmp/native/nginx.conf"
	N_NATIVE=$started
	start shim LD_PRELOAD="$LIB" PP_PORTS="$P_SHIM" $SRV \
		nginx -p "$tmp/shim" -c "$tmp/shim/nginx.conf"
	N_SHIM=$started
	# Native parsing plus the two system calls ppshim adds: the floor.
	start floor LD_PRELOAD="$FLOOR" $SRV \
		nginx -p "$tmp/floor" -c "$tmp/floor/nginx.conf"
	N_FLOOR=$started
	# A second ppshim nginx, for the silent connection.
	start shimq LD_PRELOAD="$LIB" PP_PORTS="$P_SHIMQ" $SRV \
		nginx -p "$tmp/shimq" -c "$tmp/shimq/nginx.conf"
	N_SHIMQ=$started
	# The same list as ppshim's default, from a file the library follows.
	printf '# the default list, from a file\n127.0.0.0/8\n::1\n' \
		>"$tmp/allow.list"
	start shimf LD_PRELOAD="$LIB" PP_PORTS="$P_SHIMF" \
		PP_ALLOW="@$tmp/allow.list" $SRV \
		nginx -p "$tmp/shimf" -c "$tmp/shimf/nginx.conf"
	N_SHIMF=$started
	start plain $SRV nginx -p "$tmp/plain" -c "$tmp/plain/nginx.conf"
	N_PLAIN=$started
	# Preloaded, but its port is not PROXY-only: must cost nothing.
	start byst LD_PRELOAD="$LIB" PP_PORTS="$P_SHIM" $SRV \
		nginx -p "$tmp/byst" -c "$tmp/byst/nginx.conf"
	N_BYST=$started
	wait_tcp "$P_NATIVE" "$PP"
	wait_tcp "$P_SHIM" "$PP"
	wait_tcp "$P_PLAIN" none
	wait_tcp "$P_BYST" none
	wait_tcp "$P_FLOOR" "$PP"
	wait_tcp "$P_SHIMQ" "$PP"
	wait_tcp "$P_SHIMF" "$PP"
fi

TARGETS="-t native=$P_NATIVE/$PP/${N_NATIVE:-0}
	-t ppshim=$P_SHIM/$PP/${N_SHIM:-0}
	-t plain=$P_PLAIN/none/${N_PLAIN:-0}"

if want tcp; then
	say "TCP: nginx, $ROUNDS rounds of $SLICE s slices, $INFLIGHT" \
		"connections in flight, $PP headers"
	$CLI "$B/bench/loadgen" $TARGETS \
		-t "floor=$P_FLOOR/$PP/$N_FLOOR" \
		-t "ppfile=$P_SHIMF/$PP/$N_SHIMF" \
		-t "bystander=$P_BYST/none/$N_BYST" \
		-t "native2=$P_NATIVE/$PP/$N_NATIVE" \
		-R ppshim/native -R floor/native -R ppshim/floor \
		-R ppshim/plain -R native/plain -R bystander/plain \
		-R ppfile/ppshim \
		-A native2/native \
		-r "$ROUNDS" -s "$SLICE" -c "$INFLIGHT" -o "$tmp/tcp.csv" |
		tee "$tmp/tcp.txt"
fi

if want syscalls; then
	say "System calls per connection, server side (strace -c -f -p," \
		"$STRACE_N connections, 4 in flight)"
	if have strace; then
		strace_run native "$N_NATIVE" "$P_NATIVE" "$PP"
		strace_run ppshim "$N_SHIM" "$P_SHIM" "$PP"
		strace_run floor "$N_FLOOR" "$P_FLOOR" "$PP"
		strace_run plain "$N_PLAIN" "$P_PLAIN" none
		strace_run bystander "$N_BYST" "$P_BYST" none
		echo "-- PROXY-only port: ppshim against nginx's own" \
			"proxy_protocol"
		compare_calls native "$tmp/strace.native" ppshim \
			"$tmp/strace.ppshim" "$STRACE_N"
		echo "-- the floor: ppshim against native + floor.c"
		compare_calls floor "$tmp/strace.floor" ppshim \
			"$tmp/strace.ppshim" "$STRACE_N"
		echo "-- port not PROXY-only: preloaded against not preloaded"
		compare_calls plain "$tmp/strace.plain" bystander \
			"$tmp/strace.bystander" "$STRACE_N"
	else
		echo "strace is not installed: skipped"
	fi
	if perf_ok; then
		PERF_EVENTS=raw_syscalls:sys_enter
		for s in accept4 recvfrom writev close epoll_wait epoll_ctl \
			getsockopt getpid poll fcntl; do
			PERF_EVENTS="$PERF_EVENTS,syscalls:sys_enter_$s"
		done
		say "System calls per connection at full load (perf" \
			"tracepoints, $PERF_N connections, $INFLIGHT in flight)"
		perf_run native "$N_NATIVE" "$P_NATIVE" "$PP"
		perf_run ppshim "$N_SHIM" "$P_SHIM" "$PP"
		perf_run floor "$N_FLOOR" "$P_FLOOR" "$PP"
		perf_run plain "$N_PLAIN" "$P_PLAIN" none
		perf_run bystander "$N_BYST" "$P_BYST" none
		for m in native ppshim floor plain bystander; do
			awk -F, -v m="$m" -v n="$PERF_N" '
				$3 ~ /sys_enter/ {
					e = $3; sub(/.*sys_enter_?/, "", e)
					if (e == "") e = "all"
					line = line sprintf(" %s=%.3f", e,
						$1 / n)
				}
				END { print "PERFCALLS " m line }' \
				"$tmp/perf.$m"
		done
	else
		echo "(perf tracepoints unavailable: full-load counts skipped)"
	fi
fi

if want silent; then
	# ppshim_q holds the silent connection (a connection the shim
	# parks as pending: its worker thread runs while it is open), native
	# holds one too (nginx just waits on it); ppshim, the same build on
	# another nginx, holds none.
	say "TCP with one silent connection held open on native and" \
		"ppshim_q, $SILENT_ROUNDS rounds"
	$CLI "$B/bench/loadgen" -t "native=$P_NATIVE/$PP/${N_NATIVE:-0}" \
		-t "ppshim_q=$P_SHIMQ/$PP/${N_SHIMQ:-0}" \
		-t "ppshim=$P_SHIM/$PP/${N_SHIM:-0}" \
		-t "native2=$P_NATIVE/$PP/${N_NATIVE:-0}" \
		-q 1 -N native,ppshim_q \
		-R ppshim_q/native -R ppshim_q/ppshim -R ppshim/native \
		-A native2/native \
		-r "$SILENT_ROUNDS" -s "$SLICE" -c "$INFLIGHT" |
		tee "$tmp/silent.txt"
fi

if want tcp || want syscalls || want silent; then
	for m in native shim plain byst floor shimq; do
		if grep -v 'signal process started' "$tmp/$m/logs/error.log" |
			grep -q .; then
			echo "-- nginx $m error log (last lines):"
			tail -n 5 "$tmp/$m/logs/error.log"
		fi
	done
	for p in ${N_NATIVE:-} ${N_SHIM:-} ${N_PLAIN:-} ${N_BYST:-} \
		${N_FLOOR:-} ${N_SHIMQ:-}; do
		kill "$p" 2>/dev/null || true
	done
fi

if want parse; then
	say "Parser and CRC32C (core library, one CPU)"
	$CLI "$B/bench/parsebench"
fi

if want udp; then
	say "UDP: datagrams/s through an echo server (recvfrom + sendto)," \
		"$ROUNDS rounds of $SLICE s slices"
	start ushim LD_PRELOAD="$LIB" PP_PORTS="$P_USHIM/udp" $SRV \
		"$B/bench/udpecho" -p "$P_USHIM" -d "$MAXSECS"
	U_SHIM=$started
	start uspp LD_PRELOAD="$LIB" PP_PORTS="$P_USPP/udp+spp" $SRV \
		"$B/bench/udpecho" -p "$P_USPP" -d "$MAXSECS"
	U_SPP=$started
	start uplain $SRV "$B/bench/udpecho" -p "$P_UPLAIN" -d "$MAXSECS"
	U_PLAIN=$started
	start unative $SRV "$B/bench/udpecho" -n -p "$P_UNATIVE" \
		-d "$MAXSECS"
	U_NATIVE=$started
	start ufloor LD_PRELOAD="$UFLOOR" $SRV "$B/bench/udpecho" \
		-p "$P_UFLOOR" -d "$MAXSECS"
	U_FLOOR=$started
	sleep 0.5
	if $B/bench/udpbench -t "probe=$P_USHIM/v2" -r 1 -W 0 -s 0.2 \
		2>/dev/null | grep -q 'RESULT.* count=[1-9]'; then
		$CLI "$B/bench/udpbench" -t "ppshim=$P_USHIM/v2/$U_SHIM" \
			-t "spp=$P_USPP/spp/$U_SPP" \
			-t "plain=$P_UPLAIN/none/$U_PLAIN" \
			-t "native=$P_UNATIVE/v2/$U_NATIVE" \
			-t "floor=$P_UFLOOR/v2/$U_FLOOR" \
			-t "plain2=$P_UPLAIN/none/$U_PLAIN" \
			-R ppshim/plain -R spp/plain -R spp/ppshim \
			-R ppshim/native -R native/plain \
			-R floor/plain -R ppshim/floor \
			-A plain2/plain -r "$ROUNDS" -s "$SLICE" |
			tee "$tmp/udp.txt"
	else
		echo "UDP shim: pending (no echo came back through the shim;" \
			"see $tmp/ushim.out)"
		cat "$tmp/ushim.out" || true
	fi
	kill "$U_SHIM" "$U_SPP" "$U_PLAIN" "$U_NATIVE" "$U_FLOOR" \
		2>/dev/null || true
fi

if want accept; then
	say "accept4 duration on a non-blocking listener under the shim," \
		"$ACCEPT_SECS s of load plus 4 silent, 4 trickling clients" \
		"and 20 garbage connections/s"
	start acc LD_PRELOAD="$LIB" PP_PORTS="$P_ACC" $SRV \
		"$B/bench/acceptlat" -p "$P_ACC" -d "$ACCEPT_SECS"
	A_SHIM=$started
	start accref $SRV "$B/bench/acceptlat" -p "$P_ACCREF" \
		-d "$ACCEPT_SECS"
	A_REF=$started
	wait_tcp "$P_ACC" "$PP"
	wait_tcp "$P_ACCREF" none
	$CLI "$B/bench/loadgen" -t "shim=$P_ACC/$PP/$A_SHIM" \
		-t "reference=$P_ACCREF/none/$A_REF" -q 4 -Q 4 -g 20 \
		-c "$INFLIGHT" -s 0.5 -r $((ACCEPT_SECS - 2)) -w 0 |
		grep -E '^(RESULT|NUISANCE)' || true
	wait "$A_SHIM" "$A_REF" 2>/dev/null || true
	echo "shim:      $(grep '^ACCEPT' "$tmp/acc.out" || echo none)"
	echo "reference: $(grep '^ACCEPT' "$tmp/accref.out" || echo none)"
fi

# rss_kb PID: the resident size of a process, kB.
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"
}

# lib_rss_kb PID NAME: the resident kB of the mappings of files whose
# path contains NAME (text, data and bss of a library).
lib_rss_kb() {
	awk -v n="$2" '/^[0-9a-f]+-[0-9a-f]+ / { m = index($0, n) > 0; next }
		m && /^Rss:/ { s += $2 } END { print s + 0 }' "/proc/$1/smaps"
}

# hold MODE PID PORT HEADER: HOLD keep-alive connections on the nginx
# PID, and its resident size before and with them.
hold() {
	local before after h i
	before=$(rss_kb "$2")
	start "hold_$1" $CLI "$B/bench/holdconn" -t "$3/$4" -n "$HOLD" \
		-d "$MAXSECS"
	h=$started
	i=0
	until grep -q '^HELD' "$tmp/hold_$1.out" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 1500 ] || break
		sleep 0.2
	done
	sleep 1
	after=$(rss_kb "$2")
	echo "SCALE keepalive mode=$1 $(grep '^HELD' "$tmp/hold_$1.out" |
		cut -d' ' -f2-) rss_before_kb=$before rss_after_kb=$after" \
		"bytes_per_conn=$(((after - before) * 1024 / HOLD))" \
		"lib_rss_kb=$(lib_rss_kb "$2" libppshim)"
	kill "$h" 2>/dev/null || true
}

if want scale; then
	say "Scale: $HOLD keep-alive connections held open on one nginx" \
		"(HTTP/1.1, one request each)"
	for m in kashim kanative kaplain; do
		case $m in
		kashim) p=$P_KA_SHIM l="" ;;
		kanative) p=$P_KA_NATIVE l=" proxy_protocol" ;;
		kaplain) p=$P_KA_PLAIN l="" ;;
		esac
		nginx_conf "$m" "$p" "$l" $((HOLD + 1024))
	done
	start kashim LD_PRELOAD="$LIB" PP_PORTS="$P_KA_SHIM" $SRV \
		nginx -p "$tmp/kashim" -c "$tmp/kashim/nginx.conf"
	K_SHIM=$started
	start kanative $SRV nginx -p "$tmp/kanative" \
		-c "$tmp/kanative/nginx.conf"
	K_NATIVE=$started
	start kaplain $SRV nginx -p "$tmp/kaplain" -c "$tmp/kaplain/nginx.conf"
	K_PLAIN=$started
	wait_tcp "$P_KA_SHIM" "$PP"
	wait_tcp "$P_KA_NATIVE" "$PP"
	wait_tcp "$P_KA_PLAIN" none
	hold ppshim "$K_SHIM" "$P_KA_SHIM" "$PP" | tee "$tmp/scale.txt"
	hold native "$K_NATIVE" "$P_KA_NATIVE" "$PP" | tee -a "$tmp/scale.txt"
	hold plain "$K_PLAIN" "$P_KA_PLAIN" none | tee -a "$tmp/scale.txt"
	kill "$K_SHIM" "$K_NATIVE" "$K_PLAIN" 2>/dev/null || true
	awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
	       d[v["mode"]] = v["rss_after_kb"] - v["rss_before_kb"]; n = v["n"] }
	     END { printf "per held connection, ppshim - plain: %.0f bytes;" \
		   " native - plain: %.0f bytes\n", (d["ppshim"] - d["plain"]) \
		   * 1024 / n, (d["native"] - d["plain"]) * 1024 / n }' \
		"$tmp/scale.txt"

	say "Scale: accept throughput, acceptsrv (blocking accept, all" \
		"threads on CPU $SCPU), ppshim against native (-n)"
	targets=""
	ratios=""
	as_pids=""
	i=0
	for j in 1 2 8 32; do
		start "as_s$j" LD_PRELOAD="$LIB" PP_PORTS="$((P_AS + i))" $SRV \
			"$B/bench/acceptsrv" -p "$((P_AS + i))" -j "$j" \
			-d "$MAXSECS"
		targets="$targets -t ppshim_t$j=$((P_AS + i))/$PP/$started"
		as_pids="$as_pids $started"
		start "as_n$j" $SRV "$B/bench/acceptsrv" -n \
			-p "$((P_AS + i + 1))" -j "$j" -d "$MAXSECS"
		targets="$targets -t native_t$j=$((P_AS + i + 1))/$PP/$started"
		as_pids="$as_pids $started"
		ratios="$ratios -R ppshim_t$j/native_t$j"
		wait_tcp "$((P_AS + i))" "$PP"
		wait_tcp "$((P_AS + i + 1))" "$PP"
		i=$((i + 2))
	done
	$CLI "$B/bench/loadgen" $targets $ratios -r "$ROUNDS" -s "$SLICE" \
		-c $((INFLIGHT * 2)) | tee "$tmp/accept_threads.txt"
	for p in $as_pids; do
		kill "$p" 2>/dev/null || true
	done

	say "Scale: a prefork group of 16 processes (acceptsrv -f 16)"
	start as_sf LD_PRELOAD="$LIB" PP_PORTS="$((P_AS + 8))" $SRV \
		"$B/bench/acceptsrv" -p "$((P_AS + 8))" -f 16 -d "$MAXSECS"
	AS_SF=$started
	start as_nf $SRV "$B/bench/acceptsrv" -n -p "$((P_AS + 9))" -f 16 \
		-d "$MAXSECS"
	AS_NF=$started
	wait_tcp "$((P_AS + 8))" "$PP"
	wait_tcp "$((P_AS + 9))" "$PP"
	$CLI "$B/bench/loadgen" -t "ppshim_f16=$((P_AS + 8))/$PP" \
		-t "native_f16=$((P_AS + 9))/$PP" \
		-t "native_f16b=$((P_AS + 9))/$PP" \
		-R ppshim_f16/native_f16 -A native_f16b/native_f16 \
		-r "$ROUNDS" -s "$SLICE" -c $((INFLIGHT * 2)) |
		tee "$tmp/prefork.txt"
	kill "$AS_SF" "$AS_NF" 2>/dev/null || true

	say "Scale: the descriptor table, one PROXY-only listener dup2'd" \
		"onto higher numbers (limit $(ulimit -Hn))"
	top=$(($(ulimit -Hn) - 1))
	fds="100 1000 1023 1024 2047 2048 4095 4096 8192 16383 $top"
	"$B/bench/fdgrow" -p "$P_FDGROW" $fds > "$tmp/fg.plain"
	env LD_PRELOAD="$LIB" PP_PORTS="$P_FDGROW" "$B/bench/fdgrow" \
		-p "$P_FDGROW" $fds > "$tmp/fg.shim"
	paste -d' ' "$tmp/fg.plain" "$tmp/fg.shim" | awk '
		{ for (i = 2; i <= NF; i++) { split($i, kv, "=")
			  v[i] = kv[2] } }
		NR == 1 { next }
		NR == 2 { rp = v[3]; vp = v[4]; rs = v[7]; vs = v[8]
			  printf "%-10s %14s %14s %14s\n", "highest fd",
				"rss kB: plain", "ppshim", "vsz kB: ppshim"
			  printf "%-10s %14d %14d %14d   (baseline)\n", "-",
				rp, rs, vs; next }
		{ printf "%-10s %+14d %+14d %+14d\n", v[2], v[3] - rp,
			  v[7] - rs, v[8] - vs }'
fi

# cg_total PID FILE: dump the callgrind counts of PID and print the
# instructions since the last zeroing (callgrind_control -z).
cg_total() {
	callgrind_control -d "$1" > /dev/null 2>&1
	sleep 0.5
	f=$(ls -t "$2".* 2>/dev/null | head -1)
	callgrind_annotate "$f" 2>/dev/null |
		awk '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1 }'
}

# cg_nginx MODE PORT LISTEN-SUFFIX HEADER [ENV...]: user-space
# instructions per connection of one nginx under callgrind, CG_N
# connections after a warm-up of 200.
cg_nginx() {
	local m=$1 port=$2 suffix=$3 hdr=$4 pid n tot
	shift 4
	nginx_conf "cg_$m" "$port" "$suffix"
	start "cg_$m" "$@" valgrind --tool=callgrind \
		--callgrind-out-file="$tmp/cg_$m.cg" nginx \
		-p "$tmp/cg_$m" -c "$tmp/cg_$m/nginx.conf"
	pid=$started
	wait_tcp "$port" "$hdr" || return 0
	$B/bench/loadgen -t "w=$port/$hdr" -n 200 -w 0 > /dev/null 2>&1
	callgrind_control -z "$pid" > /dev/null 2>&1
	n=$($B/bench/loadgen -t "w=$port/$hdr" -n "$CG_N" -c 4 -w 0 \
		2>/dev/null | sed -n 's/^RESULT.* count=\([0-9]*\).*/\1/p')
	tot=$(cg_total "$pid" "$tmp/cg_$m.cg")
	kill "$pid" 2>/dev/null || true
	echo "INSTR mode=$m unit=conn n=${n:-0} instr=${tot:-0}" \
		"per_op=$(( ${tot:-0} / (${n:-0} > 0 ? ${n:-0} : 1) ))"
}

# cg_udp MODE PORT TRAFFIC UDPECHO-OPTION [ENV...]: user-space instructions per
# datagram of udpecho under callgrind, for 6 s of udpbench (48 sources,
# 8 in flight: each source as often per second as one of the 4096 of
# the UDP part at full speed, so the route cache hits as it does there).
cg_udp() {
	local m=$1 port=$2 traffic=$3 opt=$4 pid n tot
	shift 4
	start "cg_$m" "$@" valgrind --tool=callgrind \
		--callgrind-out-file="$tmp/cg_$m.cg" "$B/bench/udpecho" \
		$opt -p "$port" -d "$MAXSECS"
	pid=$started
	sleep 3
	$B/bench/udpbench -t "w=$port/$traffic" -r 1 -W 0 -s 1 -w 8 -P 48 \
		> /dev/null 2>&1
	callgrind_control -z "$pid" > /dev/null 2>&1
	n=$($B/bench/udpbench -t "w=$port/$traffic" -r 1 -W 0 -s 6 -w 8 \
		-P 48 2>/dev/null | sed -n 's/^RESULT.* count=\([0-9]*\).*/\1/p')
	tot=$(cg_total "$pid" "$tmp/cg_$m.cg")
	kill "$pid" 2>/dev/null || true
	echo "INSTR mode=$m unit=dgram n=${n:-0} instr=${tot:-0}" \
		"per_op=$(( ${tot:-0} / (${n:-0} > 0 ? ${n:-0} : 1) ))"
}

if want instr; then
	say "User-space instructions per connection and per datagram" \
		"(callgrind: deterministic, whatever the load)"
	if have valgrind && have callgrind_control; then
		{
			cg_nginx native "$P_CG" " proxy_protocol" "$PP"
			cg_nginx floor "$((P_CG + 1))" " proxy_protocol" "$PP" \
				LD_PRELOAD="$FLOOR"
			cg_nginx ppshim "$((P_CG + 2))" "" "$PP" \
				LD_PRELOAD="$LIB" PP_PORTS="$((P_CG + 2))"
			cg_nginx plain "$((P_CG + 3))" "" none
			cg_udp udp_plain "$P_CG" none ""
			cg_udp udp_native "$((P_CG + 1))" v2 -n
			cg_udp udp_ppshim "$((P_CG + 2))" v2 "" \
				LD_PRELOAD="$LIB" PP_PORTS="$((P_CG + 2))/udp"
			cg_udp udp_spp "$((P_CG + 3))" spp "" \
				LD_PRELOAD="$LIB" PP_PORTS="$((P_CG + 3))/udp+spp"
			cg_udp udp_floor "$P_UFLOOR" v2 "" \
				LD_PRELOAD="$UFLOOR"
		} > "$tmp/instr.txt"
		awk '/^INSTR / {
			for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
			m = v["mode"]; per[m] = v["per_op"]
			printf "%-11s %6s %8d per %s\n", m, "", v["per_op"], v["unit"] }
		     function r(a, b) { if (per[a] > 0 && per[b] > 0)
			printf "%-22s %.3f\n", a "/" b, per[a] / per[b] }
		     function d(a, b) { if (per[a] > 0 && per[b] > 0)
			printf "%-22s %+d\n", a "-" b, per[a] - per[b] }
		     END { print ""; r("ppshim", "floor"); r("ppshim", "native")
			   r("floor", "native"); d("ppshim", "plain")
			   d("udp_ppshim", "udp_plain"); d("udp_spp", "udp_plain")
			   d("udp_native", "udp_plain")
			   d("udp_floor", "udp_plain") }' "$tmp/instr.txt" |
			tee "$tmp/instr_summary.txt"
	else
		echo "instr: skipped (valgrind's callgrind is not installed)"
	fi
fi

# pg_udp MODE PORT TRAFFIC [ENV...]: pages touched between two system
# calls of udpecho under lackey, for 4 s of udpbench after 1 s of warm-up
# (4 sources: at lackey's pace each source then sends as often per
# second as in the UDP part, so the route cache hits as it does there).
pg_udp() {
	local m=$1 port=$2 traffic=$3 pid i
	shift 3
	start "pg_$m" "$@" valgrind --tool=lackey --trace-mem=yes \
		--log-file="$tmp/pg_$m.trace" "$B/bench/udpecho" -p "$port" \
		-d "$MAXSECS"
	pid=$started
	for i in 1 2 3 4 5 6 7 8 9 10; do
		$B/bench/udpbench -t "w=$port/$traffic" -r 1 -W 0 -s 1 -w 4 \
			-P 4 2>/dev/null | grep -q 'RESULT.* count=[1-9]' &&
			break
	done
	cp "/proc/$pid/maps" "$tmp/pg_$m.maps" 2>/dev/null || true
	$B/bench/udpbench -t "w=$port/$traffic" -r 1 -W 0 -s 4 -w 4 -P 4 \
		> /dev/null 2>&1 || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	printf '%s ' "$m"
	python3 "$SRCDIR/bench/pages.py" "$tmp/pg_$m.trace" \
		"$tmp/pg_$m.maps" 2>&1 || true
	rm -f "$tmp/pg_$m.trace"
}

if want pages; then
	say "Pages of code (i) and data (d) touched between two system calls" \
		"of udpecho, per system call (lackey: deterministic)"
	if have valgrind && have python3 && have objdump; then
		{
			pg_udp udp_plain "$P_PG" none
			pg_udp udp_ppshim "$((P_PG + 1))" v2 \
				LD_PRELOAD="$LIB" PP_PORTS="$((P_PG + 1))/udp"
			pg_udp udp_spp "$((P_PG + 2))" spp \
				LD_PRELOAD="$LIB" PP_PORTS="$((P_PG + 2))/udp+spp"
		} | tee "$tmp/pages.txt"
	else
		echo "pages: skipped (needs valgrind, python3 and objdump)"
	fi
fi

# pf_report MODE PROGRAM PRELOAD: one PROFILE line from the samples of
# $tmp/pf_MODE.data and the load's report in $tmp/pf_MODE.load: the
# shares of the kernel, libc, PROGRAM and the preloaded library PRELOAD
# (a file name; "-" for none), the server's CPU per operation, the
# library's share of it in microseconds, and its five costliest
# functions.
pf_report() {
	local m=$1 prog=$2 pre=$3
	perf report -i "$tmp/pf_$m.data" --no-children --sort dso \
		2>/dev/null > "$tmp/pf_$m.dso" || true
	: > "$tmp/pf_$m.sym"
	if [ "$pre" != - ]; then
		perf report -i "$tmp/pf_$m.data" --no-children --sort sym \
			--dso "$pre" 2>/dev/null > "$tmp/pf_$m.sym" || true
	fi
	awk -v m="$m" -v prog="$prog" -v lib="$pre" -v symf="$tmp/pf_$m.sym" \
	    -v loadf="$tmp/pf_$m.load" '
		function pct(s) { sub("%", "", s); return s + 0 }
		$1 ~ /%$/ && $2 == "[kernel.kallsyms]" { k += pct($1) }
		$1 ~ /%$/ && $2 ~ /^libc\.so/ { c += pct($1) }
		$1 ~ /%$/ && $2 == prog { p += pct($1) }
		$1 ~ /%$/ && $2 == lib { l += pct($1) }
		END {
			while ((getline line < loadf) > 0)
				if (line ~ /^RESULT/ && match(line, /cpu_us=[0-9.]+/))
					cpu = substr(line, RSTART + 7, RLENGTH - 7)
			top = ""; n = 0
			while ((getline line < symf) > 0 && n < 5) {
				split(line, f, " ")
				if (f[1] !~ /%$/ || f[2] != "[.]") continue
				top = top sprintf(" %s=%s", f[3], f[1]); n++
			}
			printf "PROFILE mode=%s kernel=%.1f libc=%.1f " \
				"program=%.1f library=%.1f cpu_us=%s lib_us=%.3f%s\n",
				m, k, c, p, l, cpu == "" ? "?" : cpu,
				cpu * l / 100, top
		}' "$tmp/pf_$m.dso"
	rm -f "$tmp/pf_$m.data"
}

# pf_attach MODE PID: perf attached to the server PID while it is still
# idle, its cpu-clock samples (into $tmp/pf_MODE.data) counted from one
# second on, for PF_SECS seconds: the load starts meanwhile.  perf
# attached to a server already busy records nothing now and then here.
pf_attach() {
	perf record -q -e cpu-clock -F 10000 -D 1000 -p "$2" \
		-o "$tmp/pf_$1.data" -- sleep "$((PF_SECS + 1))" \
		> "$tmp/pf_$1.perf" 2>&1 &
	pf_perf=$!
	sleep 0.2
}

# pf_finish MODE PID LOAD-PID: the samples' end, the load's, then the
# server's.
pf_finish() {
	wait "$pf_perf" || cat "$tmp/pf_$1.perf" >&2
	wait "$3" || true
	kill "$2" 2>/dev/null || true
	wait "$2" 2>/dev/null || true
}

# pf_try MODE PROGRAM PRELOAD COMMAND...: COMMAND (one sampled run of a
# server, pf_udp_once or pf_nginx_once) until perf recorded samples of
# it, three times at most, then its PROFILE line, or a line that says
# there is none.
pf_try() {
	local m=$1 prog=$2 pre=$3 t
	shift 3
	for t in 1 2 3; do
		"$@" || return 0
		if perf report -i "$tmp/pf_$m.data" --sort dso 2>/dev/null |
			grep -q '%'; then
			pf_report "$m" "$prog" "$pre"
			return 0
		fi
	done
	echo "profile: $m: perf recorded no samples of the server in" \
		"three runs"
}

# pf_udp_once MODE PORT TRAFFIC [ENV...]: udpecho at full load from
# udpbench, sampled.
pf_udp_once() {
	local m=$1 port=$2 traffic=$3 pid
	shift 3
	start "pf_$m" "$@" $SRV "$B/bench/udpecho" -p "$port" -d "$MAXSECS"
	pid=$started
	# Not before the server answers: the load would find no one there.
	wait_udp "$port" "$traffic" || { kill "$pid" 2>/dev/null; return 1; }
	pf_attach "$m" "$pid"
	$CLI "$B/bench/udpbench" -t "w=$port/$traffic/$pid" -r 1 -W 0 \
		-s "$((PF_SECS + 2))" > "$tmp/pf_$m.load" 2>&1 &
	pf_finish "$m" "$pid" $!
}

# pf_nginx_once MODE PORT LISTEN-SUFFIX HEADER [ENV...]: nginx, one
# worker, at full load from loadgen, sampled.
pf_nginx_once() {
	local m=$1 port=$2 suffix=$3 hdr=$4 pid
	shift 4
	nginx_conf "pf_$m" "$port" "$suffix"
	start "pf_$m" "$@" $SRV nginx -p "$tmp/pf_$m" \
		-c "$tmp/pf_$m/nginx.conf"
	pid=$started
	wait_tcp "$port" "$hdr" || { kill "$pid" 2>/dev/null; return 1; }
	pf_attach "$m" "$pid"
	$CLI "$B/bench/loadgen" -t "w=$port/$hdr/$pid" -r 1 -w 0 \
		-c "$INFLIGHT" -s "$((PF_SECS + 2))" > "$tmp/pf_$m.load" 2>&1 &
	pf_finish "$m" "$pid" $!
}

if want profile; then
	say "Where the servers' CPU goes at full load (perf cpu-clock" \
		"samples, $PF_SECS s each; percentages of each server's" \
		"samples, and its CPU per datagram or connection)"
	if have perf && perf record -q -e cpu-clock -o "$tmp/pf_probe.data" \
		true > /dev/null 2>&1; then
		{
			pf_lib=$(basename "$LIB")
			pf_try udp_plain udpecho - \
				pf_udp_once udp_plain "$P_PF" none
			pf_try udp_ppshim udpecho "$pf_lib" \
				pf_udp_once udp_ppshim "$((P_PF + 1))" v2 \
				LD_PRELOAD="$LIB" PP_PORTS="$((P_PF + 1))/udp"
			pf_try udp_spp udpecho "$pf_lib" \
				pf_udp_once udp_spp "$((P_PF + 2))" spp \
				LD_PRELOAD="$LIB" PP_PORTS="$((P_PF + 2))/udp+spp"
			if have nginx; then
				pf_try tcp_ppshim nginx "$pf_lib" \
					pf_nginx_once tcp_ppshim "$((P_PF + 3))" \
					"" "$PP" LD_PRELOAD="$LIB" \
					PP_PORTS="$((P_PF + 3))"
				pf_try tcp_floor nginx "$(basename "$FLOOR")" \
					pf_nginx_once tcp_floor "$((P_PF + 4))" \
					" proxy_protocol" "$PP" LD_PRELOAD="$FLOOR"
			fi
		} | tee "$tmp/profile.txt"
	else
		echo "profile: skipped (needs perf and its cpu-clock event:" \
			"apt-get install linux-perf; perf_event_paranoid <= 1" \
			"when not root)"
	fi
fi

say "Summary (medians over the rounds; p25..p75)"
if [ -f "$tmp/tcp.txt" ]; then
	awk '/^RESULT slot=(floor|native|ppshim|plain) / {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%-8s %9.0f conn/s  IQR %5.1f%%  %7.2f us CPU/conn\n",
			v["slot"], v["rate"], v["iqr_pct"], v["cpu_us"] }' \
		"$tmp/tcp.txt"
fi
for f in tcp silent udp accept_threads prefork; do
	[ -f "$tmp/$f.txt" ] || continue
	awk -v part="$f" '/^RATIO / {
		for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "%-8s %-22s rate %.3f (%.3f..%.3f)  cpu/op %.3f" \
			" (%.3f..%.3f)\n", part, $2, v["rate"], v["rate_p25"],
			v["rate_p75"], v["cpu"], v["cpu_p25"], v["cpu_p75"] }' \
		"$tmp/$f.txt"
done
if [ -f "$tmp/instr_summary.txt" ]; then
	awk 'NF == 2 { printf "instr    %-22s %s (user-space instructions," \
		" callgrind)\n", $1, $2 }' \
		"$tmp/instr_summary.txt"
fi
if [ -f "$tmp/pages.txt" ]; then
	awk '$2 == "PAGES" { split($4, i, "="); split($5, d, "=")
		printf "pages    %-22s code %5.2f  data %5.2f (pages touched" \
			" per system call, lackey)\n", $1, i[2], d[2] }' \
		"$tmp/pages.txt"
fi
if [ -f "$tmp/profile.txt" ]; then
	awk '$1 == "PROFILE" {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
		printf "profile  %-22s library %4.1f%% of the server CPU," \
			" %s of %s us per %s (perf)\n", v["mode"],
			v["library"], v["lib_us"], v["cpu_us"],
			v["mode"] ~ /^tcp/ ? "connection" : "datagram" }' \
		"$tmp/profile.txt"
fi
echo "run time: $(($(date +%s) - started_at)) s"

say "done"
