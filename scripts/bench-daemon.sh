#!/usr/bin/env bash
# Whole-daemon benchmarks (`make bench-daemon`): logjail server against fail2ban-server on the
# same workloads, each daemon in a private network namespace that cmd/ljbench makes and
# deletes. Measured: ban latency (steady 2,000 lines/s and a full-speed flood, 1,000 bans,
# p50/p99/max, the rule seen by `nft monitor` in the namespace), ingest of an sshd and an
# Apache access log (lines/s at full speed, CPU ms per 1,000 lines at full speed and at
# 10,000 lines/s), idle RSS, memory per tracked address (1,000,000 addresses), and start-up
# with 100,000 bans in force (cold, after SIGTERM with --keep-on-stop, after SIGKILL: time to
# serve and to apply every ban, and whether a probe from a banned address got through; fail2ban
# with 2,000, which it restores one iptables call each).
# About eight minutes here; QUICK=1 (or --quick) is a smoke run of about two minutes.
#
#   scripts/bench-daemon.sh [--quick] [ljbench flags...]     (as root; make bench-daemon uses sudo)
#   scripts/bench-daemon.sh -only startup -fail2ban=false    (one benchmark, logjail only)
#
# Output: tables and one `RESULT {json}` line per figure on stdout, also kept in
# bench.out/bench-daemon.txt, every result as a JSON array in bench.out/bench-daemon.json, and
# every ban's times (write, decision, rule) in bench.out/bench-daemon-csv/latency-*.csv.
# KEEP=1 keeps the scratch directory (daemon logs, configurations; CPU profiles of logjail
# with the ljbench flag -profile).
#
# Safety: the host's firewall is never touched. Every daemon, every iptables command and
# every nft monitor runs inside a namespace ljbench made (ip netns exec); ljbench itself, in
# the host's namespace, only writes log files and reads /proc and the daemons' sockets. The
# host's rules are only read, before and after (iptables -S, ip6tables -S, nft list ruleset),
# and must be identical. On exit, also after a failure or Ctrl-C, this script stops ljbench,
# kills whatever is left in namespaces named ljbench-$$-*, deletes them and removes the scratch
# directory.
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin:$PATH"
umask 022
cd "$(dirname "$0")/.."
REPO=$PWD

QUICK=${QUICK:-}
args=()
for a in "$@"; do
	case $a in
	--quick | quick) QUICK=1 ;;
	*) args+=("$a") ;;
	esac
done
[[ -n $QUICK && $QUICK != 0 ]] && args=(-quick "${args[@]}")
# LOGJAIL=path LOGJAIL_LABEL=text: measure another build of logjail (the results name it).
[[ -n ${LOGJAIL_LABEL:-} ]] && args=(-label "$LOGJAIL_LABEL" "${args[@]}")

die() {
	echo "bench-daemon: $*" >&2
	exit 1
}
[[ $(id -u) -eq 0 ]] || die "run as root (make bench-daemon runs sudo for you): network namespaces and iptables need it"
for c in ip iptables nft; do
	command -v "$c" >/dev/null || die "$c is missing: run scripts/install-deps.sh"
done
iptables -V | grep -q nf_tables || die "iptables is not iptables-nft ($(iptables -V)): the benchmark sees bans through nft monitor"
command -v fail2ban-server >/dev/null || echo "bench-daemon: fail2ban is not installed: only logjail is measured" >&2

LOGJAIL=${LOGJAIL:-bin/logjail}
LJBENCH=${LJBENCH:-bin/ljbench}
# Built here only when missing, or when run as root directly (under sudo, make has built them
# as the calling user, and a build here would leave root-owned files in bin/).
if command -v go >/dev/null; then
	[[ -x $LOGJAIL ]] || CGO_ENABLED=0 go build -trimpath -o "$LOGJAIL" ./cmd/logjail
	if [[ ! -x $LJBENCH || -z ${SUDO_USER:-} ]]; then
		go build -trimpath -o "$LJBENCH" ./cmd/ljbench
	fi
fi
[[ -x $LOGJAIL ]] || die "$LOGJAIL is missing: run make build"
[[ -x $LJBENCH ]] || die "$LJBENCH is missing: run go build -o bin/ljbench ./cmd/ljbench (or make bench-daemon)"

OUTDIR=${BENCH_DIR:-bench.out}
mkdir -p "$OUTDIR"
OUT=$OUTDIR/bench-daemon.txt
JSON=$OUTDIR/bench-daemon.json
NS_PREFIX=ljbench-$$
TMP=''
LJ_PID=''

host_state() {
	echo "## iptables -S"
	iptables -S 2>&1 || true
	echo "## ip6tables -S"
	ip6tables -S 2>&1 || true
	echo "## nft list ruleset"
	nft list ruleset 2>&1 || true
}
# shellcheck disable=SC2317 # called from the EXIT trap
our_ns() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${NS_PREFIX}-" || true; }

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
	local rc=$? ns pid i
	trap - EXIT INT TERM HUP
	set +e
	if [[ -n $LJ_PID ]] && kill -0 "$LJ_PID" 2>/dev/null; then
		# After a Ctrl-C ljbench is already cleaning up (it got the SIGINT too): a few seconds
		# for that, then SIGTERM, on which it stops its daemons and deletes its namespaces.
		for ((i = 0; i < 50; i++)); do
			kill -0 "$LJ_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -TERM "$LJ_PID" 2>/dev/null
		for ((i = 0; i < 300; i++)); do
			kill -0 "$LJ_PID" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$LJ_PID" 2>/dev/null && kill -KILL "$LJ_PID" 2>/dev/null
		wait "$LJ_PID" 2>/dev/null
	fi
	# The safety net: whatever ljbench left (it was killed, say).
	for ns in $(our_ns); do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		ip netns delete "$ns" && echo "bench-daemon: deleted leftover namespace $ns" >&2
	done
	if [[ -n $TMP && -d $TMP ]]; then
		if [[ -n ${KEEP:-} ]]; then
			echo "bench-daemon: kept the scratch directory $TMP (KEEP=1)" >&2
		else
			rm -rf "$TMP"
		fi
	fi
	local left
	left=$(our_ns)
	if [[ -n $left ]]; then
		echo "bench-daemon: namespaces left behind: $left" >&2
		rc=1
	fi
	if [[ -n $TMP ]]; then
		host_state >"$OUTDIR/host-firewall.after"
		if ! diff -u "$OUTDIR/host-firewall.before" "$OUTDIR/host-firewall.after" >&2; then
			echo "bench-daemon: the host's firewall changed during the run (see the diff above)" >&2
			rc=1
		else
			echo "bench-daemon: host firewall unchanged (iptables -S, ip6tables -S, nft list ruleset); no ${NS_PREFIX}-* namespace left" >&2
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

host_state >"$OUTDIR/host-firewall.before"
# The logs go to a tmpfs when there is one: the benchmark is the daemon, not the disk (a
# writer throttled by writeback would set the pace). Up to about 2 GB at once.
SCRATCH_BASE=/tmp
if [[ $(stat -f -c %T /dev/shm 2>/dev/null) == tmpfs ]] && (($(df -Pk /dev/shm | awk 'NR==2 {print $4}') > 4 * 1024 * 1024)); then
	SCRATCH_BASE=/dev/shm
fi
TMP=$(mktemp -d "$SCRATCH_BASE/ljbench.XXXXXX")
CSV=$OUTDIR/bench-daemon-csv
rm -rf "$CSV"
mkdir -p "$CSV"
echo "bench-daemon: scratch $TMP, namespaces ${NS_PREFIX}-*, output $OUT and $JSON" >&2

# In the background, so that a signal to this script reaches the trap at once; ljbench gets
# its own Ctrl-C from the terminal (same process group) and cleans up itself, and tee ignores
# it, so that ljbench's last words are not lost.
"$LJBENCH" -repo "$REPO" -logjail "$LOGJAIL" -work "$TMP" -ns "$NS_PREFIX" -json "$JSON" -csv "$CSV" "${args[@]}" \
	> >(trap '' INT TERM HUP; exec tee "$OUT") 2>&1 &
LJ_PID=$!
rc=0
wait "$LJ_PID" || rc=$?
LJ_PID=''
wait 2>/dev/null || true # tee
exit "$rc"
