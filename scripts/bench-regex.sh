#!/usr/bin/env bash
# Throughput of `logjail regex` against fail2ban-regex on the same generated logs, in the same run,
# both pinned to one core. Logs come from cmd/loggen (deterministic), 1,000,000 lines each;
# fail2ban-regex gets the first F2B_LINES of them (it would take minutes on the whole file) and
# its rate is computed on what it read.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-1000000}
F2B_LINES=${F2B_LINES:-100000}
CORE=${CORE:-1}
dir=${BENCH_DIR:-bench.out}
mkdir -p "$dir"
bin=bin/logjail
[[ -x $bin ]] || go build -o "$bin" ./cmd/logjail
go build -o "$dir/loggen" ./cmd/loggen

for kind in access sshd; do
  f="$dir/$kind-$LINES.log"
  [[ -s $f ]] || "$dir/loggen" -kind "$kind" -lines "$LINES" -o "$f"
  head -n "$F2B_LINES" "$f" >"$dir/$kind-f2b.log"
done

pin() { if command -v taskset >/dev/null; then taskset -c "$CORE" "$@"; else "$@"; fi; }
now() { date +%s.%N; }

# run_lj LABEL LOG FILTER [CONFIGDIR]: prints lines/s measured around the whole command
run_lj() {
  local label=$1 log=$2 filt=$3 conf=${4:-.}
  local n t0 t1 out
  n=$(wc -l <"$log")
  t0=$(now)
  out=$(GOMAXPROCS=1 pin "$bin" regex --config "$conf" "$log" "$filt")
  t1=$(now)
  local matched
  matched=$(grep -o '^Lines: .*' <<<"$out")
  awk -v n="$n" -v a="$t0" -v b="$t1" -v l="$label" -v m="$matched" \
    'BEGIN { printf "%-44s %9d lines %8.3f s %12.0f lines/s   %s\n", l, n, b-a, n/(b-a), m }' >&2
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n/(b-a) }'
}

run_f2b() {
  local label=$1 log=$2 filt=$3
  local n t0 t1 out
  n=$(wc -l <"$log")
  t0=$(now)
  out=$(pin fail2ban-regex --usedns=no "$log" "$filt" 2>&1 | grep '^Lines:' || true)
  t1=$(now)
  awk -v n="$n" -v a="$t0" -v b="$t1" -v l="$label" -v m="$out" \
    'BEGIN { printf "%-44s %9d lines %8.3f s %12.0f lines/s   %s\n", l, n, b-a, n/(b-a), m }' >&2
  awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f\n", n/(b-a) }'
}

echo "== access log (xmlrpc.php flood + normal traffic), one core" >&2
lj=$(run_lj "logjail regex wordpress" "$dir/access-$LINES.log" wordpress)
if command -v fail2ban-regex >/dev/null; then
  f2b=$(run_f2b "fail2ban-regex filter.d/wordpress.conf (same file)" "$dir/access-f2b.log" "$PWD/filter.d/wordpress.conf")
  f2bc=$(run_f2b "fail2ban-regex typical user filter" "$dir/access-f2b.log" "$PWD/testdata/bench/fail2ban-wordpress.conf")
  awk -v a="$lj" -v b="$f2b" -v c="$f2bc" 'BEGIN { printf "ratio logjail/fail2ban: %.0fx (same filter file), %.0fx (typical fail2ban filter)\n\n", a/b, a/c }' >&2
fi

echo "== sshd auth.log (dictionary attack + noise), one core" >&2
lj=$(run_lj "logjail regex sshd (ours)" "$dir/sshd-$LINES.log" sshd)
if [[ -f /etc/fail2ban/filter.d/sshd.conf ]]; then
  ljs=$(run_lj "logjail regex sshd (fail2ban's stock filter)" "$dir/sshd-$LINES.log" sshd /etc/fail2ban)
  f2b=$(run_f2b "fail2ban-regex sshd (stock)" "$dir/sshd-f2b.log" /etc/fail2ban/filter.d/sshd.conf)
  awk -v a="$lj" -v s="$ljs" -v b="$f2b" 'BEGIN { printf "ratio logjail(ours)/fail2ban: %.0fx, logjail(stock filter)/fail2ban: %.0fx\n", a/b, s/b }' >&2
fi
