#!/usr/bin/env bash
# logjail demo (`make demo`): a WordPress-like site under an xmlrpc.php flood, and logjail banning
# the attacker, in three private network namespaces that this script makes and removes.
#
#   server     runs the demo web site (cmd/demoweb) and `logjail server`
#   attacker   floods POST /xmlrpc.php with curl
#   bystander  an innocent client, which must still get through
#
# Run as root (make demo uses sudo), after scripts/install-deps.sh and a build (make demo does
# both binaries): bin/logjail and bin/demoweb, or set LOGJAIL= and DEMOWEB= to other paths.
#
# Safety: nothing here touches the host's own firewall, routes or interfaces. Both ends of each
# veth pair are created inside the namespaces, every iptables command runs inside the server
# namespace (ip netns exec), and so does logjail itself: all the iptables it runs act there.
# Everything made (processes, namespaces, the temporary directory) is removed on exit, also
# after a failure or Ctrl-C.
#
# Exit status: 0 when the attacker was banned, its connections were refused while the
# bystander's went through, and stopping logjail removed its chain; 1 otherwise.
set -euo pipefail
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
umask 022

cd "$(dirname "$0")/.."
REPO=$PWD
LOGJAIL=$(realpath -m "${LOGJAIL:-bin/logjail}")
DEMOWEB=$(realpath -m "${DEMOWEB:-bin/demoweb}")

# The flood: at most this many requests or seconds (the daemon should ban after about ten).
MAX_REQUESTS=${MAX_REQUESTS:-500}
MAX_SECONDS=${MAX_SECONDS:-30}

# --- output ---------------------------------------------------------------------------------
if [[ -t 1 ]]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B='' G='' R='' N=''; fi
STEP=0
STEPS=10
step() { STEP=$((STEP + 1)); printf '\n%s[%d/%d] %s%s\n' "$B" "$STEP" "$STEPS" "$1" "$N"; }
say() { printf '      %s\n' "$*"; }
ok() { printf '      %s✓ %s%s\n' "$G" "$*" "$N"; }
fail() {
	printf '\n%s✗ FAILED: %s%s\n' "$R" "$*" "$N" >&2
	exit 1
}
# show runs a command and prints it, then its output, indented.
show() {
	printf '    $ %s\n' "$*"
	"$@" 2>&1 | sed 's/^/      /'
}
# inns NS CMD... runs a command inside a namespace.
inns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# --- preflight ------------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || fail "run as root (make demo runs sudo for you): namespaces and iptables need it"
for c in ip iptables curl realpath; do
	command -v "$c" >/dev/null || fail "$c is missing: run scripts/install-deps.sh"
done
[[ -x $LOGJAIL ]] || fail "$LOGJAIL is missing: run make build (or make demo)"
[[ -x $DEMOWEB ]] || fail "$DEMOWEB is missing: run make demo, or go build -o bin/demoweb ./cmd/demoweb"
"$LOGJAIL" server --help >/dev/null 2>&1 || fail "$LOGJAIL has no 'server' command: this build has no daemon yet"
ip netns list >/dev/null 2>&1 || fail "ip netns does not work here (no network namespace support?)"

# --- names, and the cleanup that removes them -------------------------------------------------
ID=$$
SRV=ljdemo-srv-$ID
ATK=ljdemo-atk-$ID
BYS=ljdemo-bys-$ID
SRV_ATK_IP=10.200.1.1 ATK_IP=10.200.1.2 # server <-> attacker
SRV_BYS_IP=10.200.2.1 BYS_IP=10.200.2.2 # server <-> bystander
URL_ATK=http://$SRV_ATK_IP/             # the server, as each client reaches it
URL_BYS=http://$SRV_BYS_IP/

MADE_NS=()
WEB_PID=''
DAEMON_PID=''
TMP=''

# stop_pid PID NAME: SIGTERM, then SIGKILL after 10 s; only a process this script started.
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "$2 (pid $pid) did not stop on SIGTERM: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local rc=$? ns pid
	trap - EXIT INT TERM
	set +e
	if ((rc != 0)) && [[ -n $TMP ]]; then
		for f in logjail.log demoweb.log; do
			if [[ -s $TMP/$f ]]; then
				printf '\n--- last lines of %s ---\n' "$f" >&2
				tail -n 25 "$TMP/$f" >&2
			fi
		done
	fi
	printf '\n%sCleaning up%s\n' "$B" "$N"
	[[ -n $DAEMON_PID ]] && stop_pid "$DAEMON_PID" "logjail server"
	[[ -n $WEB_PID ]] && stop_pid "$WEB_PID" "demoweb"
	for ns in "${MADE_NS[@]}"; do
		# Anything still running in our own namespaces was started by this script (a curl).
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
		# Deleting a namespace deletes its veth ends and its whole firewall.
		ip netns delete "$ns" && say "deleted namespace $ns"
	done
	[[ -n $TMP ]] && rm -rf "$TMP" && say "removed $TMP"
	if ip netns list 2>/dev/null | grep -q -- "-$ID\b"; then
		printf '%sleft behind: %s%s\n' "$R" "$(ip netns list | grep -- "-$ID\b" | tr '\n' ' ')" "$N" >&2
		rc=1
	fi
	if ((rc == 0)); then
		printf '\n%sDemo passed: the attacker was banned, the bystander was not, and logjail left the firewall as it found it.%s\n' "$G" "$N"
	else
		printf '\n%sDemo failed (exit status %d).%s\n' "$R" "$rc" "$N" >&2
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'printf "%s✗ line %d failed: %s%s\n" "$R" "$LINENO" "$BASH_COMMAND" "$N" >&2' ERR
trap 'exit 130' INT
trap 'exit 143' TERM

printf '%slogjail demo%s: an xmlrpc.php flood against a WordPress-like site, banned by logjail.\n' "$B" "$N"
say "logjail: $LOGJAIL"
say "Everything happens in private network namespaces; the host's firewall is not touched."

# --- 1. network --------------------------------------------------------------------------------
step "Create three network namespaces: a server, an attacker and a bystander"
for ns in "$SRV" "$ATK" "$BYS"; do
	ip netns add "$ns"
	MADE_NS+=("$ns")
done
# Both ends of each pair are created inside the namespaces, never in the host's.
ip -n "$SRV" link add to-atk type veth peer name eth0 netns "$ATK"
ip -n "$SRV" link add to-bys type veth peer name eth0 netns "$BYS"
ip -n "$SRV" addr add "$SRV_ATK_IP/24" dev to-atk
ip -n "$SRV" addr add "$SRV_BYS_IP/24" dev to-bys
ip -n "$ATK" addr add "$ATK_IP/24" dev eth0
ip -n "$BYS" addr add "$BYS_IP/24" dev eth0
for ns in "$SRV" "$ATK" "$BYS"; do
	ip -n "$ns" link set lo up
done
ip -n "$SRV" link set to-atk up
ip -n "$SRV" link set to-bys up
ip -n "$ATK" link set eth0 up
ip -n "$BYS" link set eth0 up
# A safety net: the server namespace must really be another network stack than the host's.
[[ "$(inns "$SRV" readlink /proc/self/ns/net)" != "$(readlink /proc/self/ns/net)" ]] ||
	fail "the server namespace is the host's network namespace"
say "server     $SRV   $SRV_ATK_IP (to the attacker), $SRV_BYS_IP (to the bystander)"
say "attacker   $ATK   $ATK_IP"
say "bystander  $BYS   $BYS_IP"

# --- 2. web server -------------------------------------------------------------------------------
TMP=$(mktemp -d /tmp/logjail-demo.XXXXXX)
ACCESS_LOG=$TMP/access.log
step "Start the demo web site in the server namespace, logging like Apache"
: >"$ACCESS_LOG"
# Started with ip netns exec itself (not through a function), so that $! is demoweb's pid:
# ip netns exec execs the command in place.
ip netns exec "$SRV" "$DEMOWEB" --listen :80 --log "$ACCESS_LOG" 2>"$TMP/demoweb.log" &
WEB_PID=$!
for ((i = 0; i < 50; i++)); do
	grep -q 'msg=listening' "$TMP/demoweb.log" 2>/dev/null && break
	kill -0 "$WEB_PID" 2>/dev/null || fail "demoweb exited"
	sleep 0.1
done
grep -q 'msg=listening' "$TMP/demoweb.log" || fail "demoweb did not start listening within 5 s"
say "demoweb (pid $WEB_PID) on port 80; access log $ACCESS_LOG"
for c in "$ATK $URL_ATK attacker" "$BYS $URL_BYS bystander"; do
	read -r ns url who <<<"$c"
	code=$(inns "$ns" curl -q -sS --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "$url") ||
		fail "the $who cannot reach the server"
	[[ $code == 200 ]] || fail "the $who got HTTP $code for GET /, want 200"
	ok "the $who gets GET / -> $code"
done
say "the log so far:"
sed 's/^/        /' "$ACCESS_LOG"

# --- 3. configuration ---------------------------------------------------------------------------
step "Configure logjail: the shipped configuration plus one override file"
CONF=$TMP/etc
mkdir -p "$CONF/jail.d" "$CONF/filter.d" "$TMP/state"
cp "$REPO/jail.conf" "$CONF/"
cp "$REPO"/jail.d/*.conf "$CONF/jail.d/"
cp "$REPO"/filter.d/*.conf "$CONF/filter.d/"
cat >"$CONF/jail.d/demo.local" <<EOF
# The demo's override, read after the shipped jail.conf and jail.d/*.conf.

# The shipped sshd jail reads this host's /var/log/auth.log, which has nothing to do with the
# demo (and its bans would land in the demo's namespace, not on the host): off.
[sshd]
enabled = false

# The wordpress jail (jail.d/web.conf: 10 POSTs to xmlrpc.php or wp-login.php within 1m ban
# for 1h, on ports http and https), on the demo site's log.
[wordpress]
enabled = true
logpath = $ACCESS_LOG
EOF
say "$CONF: copies of the repo's jail.conf, jail.d/*.conf and filter.d/*.conf, and jail.d/demo.local:"
sed 's/^/        /' "$CONF/jail.d/demo.local"
show "$LOGJAIL" check --config "$CONF" || fail "logjail check found errors in the demo configuration"

# --- 4. daemon --------------------------------------------------------------------------------
step "Start logjail server in the server namespace"
SOCK=$TMP/logjail.sock
inns "$SRV" iptables -S >"$TMP/fw4.before"
inns "$SRV" ip6tables -S >"$TMP/fw6.before" 2>/dev/null || true
say "ip netns exec $SRV $LOGJAIL server --config $CONF --socket $SOCK --state $TMP/state"
ip netns exec "$SRV" "$LOGJAIL" server --config "$CONF" --socket "$SOCK" --state "$TMP/state" 2>"$TMP/logjail.log" &
DAEMON_PID=$!
for ((i = 0; i < 100; i++)); do
	kill -0 "$DAEMON_PID" 2>/dev/null || fail "logjail server exited at start"
	if "$LOGJAIL" status --socket "$SOCK" >/dev/null 2>&1 && inns "$SRV" iptables -S lj-wordpress >/dev/null 2>&1; then
		break
	fi
	sleep 0.1
done
"$LOGJAIL" status --socket "$SOCK" >/dev/null 2>&1 || fail "logjail server does not answer on $SOCK after 10 s"
inns "$SRV" iptables -S lj-wordpress >/dev/null 2>&1 || fail "logjail server did not create its chain lj-wordpress within 10 s"
[[ "$(readlink "/proc/$DAEMON_PID/ns/net")" == "$(inns "$SRV" readlink /proc/self/ns/net)" ]] ||
	fail "logjail server is not in the server namespace"
ok "logjail server (pid $DAEMON_PID) is running; its chain, still empty, and the jump to it from INPUT:"
show ip netns exec "$SRV" iptables -S

# --- 5. flood ---------------------------------------------------------------------------------
step "The attacker floods POST /xmlrpc.php (a password guess each), until it is cut off"
say "each one: curl --data '<methodCall>wp.getUsersBlogs(admin, guess)</methodCall>' ${URL_ATK}xmlrpc.php"
BODY='<?xml version="1.0"?><methodCall><methodName>wp.getUsersBlogs</methodName><params><param><value>admin</value></param><param><value>guess</value></param></params></methodCall>'
n=0
line=''
banned=0
start=$SECONDS
start_ms=$(date +%s%3N)
while ((n < MAX_REQUESTS && SECONDS - start < MAX_SECONDS)); do
	n=$((n + 1))
	if code=$(inns "$ATK" curl -q -sS --noproxy '*' --connect-timeout 2 --max-time 3 -o /dev/null -w '%{http_code}' \
		-A 'demo-attacker/1.0' -H 'Content-Type: text/xml' --data-binary "$BODY" "${URL_ATK}xmlrpc.php" 2>"$TMP/curl.err"); then
		line+="$code "
		if ((n % 10 == 0)); then
			say "requests $((n - 9))-$n: ${line% }"
			line=''
		fi
		continue
	fi
	[[ -n $line ]] && say "requests $((n - n % 10 + 1))-$((n - 1)): ${line% }"
	say "request $n: $(head -n 1 "$TMP/curl.err")"
	banned=1
	break
done
if ((!banned)); then
	[[ -n $line ]] && say "last requests: ${line% }"
	show "$LOGJAIL" status wordpress --socket "$SOCK" || true
	fail "$n requests in $((SECONDS - start)) s and the attacker was never cut off"
fi
ms=$(($(date +%s%3N) - start_ms))
ok "the attacker was cut off after $((n - 1)) answered requests, $((ms / 1000)).$(printf '%03d' $((ms % 1000))) s into the flood"

# --- 6. the ban, as logjail and the firewall see it --------------------------------------------
step "The ban, as logjail and the kernel see it"
show "$LOGJAIL" status wordpress --socket "$SOCK" || fail "logjail status failed"
if grep -qi 'ban' "$TMP/logjail.log"; then
	say "logjail's own log (stderr) says:"
	grep -i 'ban' "$TMP/logjail.log" | head -n 3 | sed 's/^/        /'
fi
show ip netns exec "$SRV" iptables -S
rules=$(inns "$SRV" iptables -S lj-wordpress) || fail "the chain lj-wordpress is gone"
grep -q -- "-s $ATK_IP/32 " <<<"$rules" || fail "no rule for $ATK_IP in the chain lj-wordpress"
grep -q -- "-s $BYS_IP/32 " <<<"$rules" && fail "the bystander $BYS_IP is banned too"
ok "lj-wordpress rejects $ATK_IP, and nothing else"

# --- 7. through the network --------------------------------------------------------------------
step "Through the network: the attacker's next connection fails, the bystander's does not"
rc=0
code=$(inns "$ATK" curl -q -sS --noproxy '*' --connect-timeout 3 --max-time 5 -o /dev/null -w '%{http_code}' "$URL_ATK" 2>"$TMP/curl.err") || rc=$?
((rc != 0)) || fail "the attacker still gets HTTP $code for GET /"
say "attacker  \$ curl $URL_ATK"
say "          $(head -n 1 "$TMP/curl.err")"
if ((rc == 7)); then ok "the attacker's connection is refused"; else ok "the attacker cannot connect (curl exit status $rc)"; fi
code=$(inns "$BYS" curl -q -sS --noproxy '*' --max-time 5 -o /dev/null -w '%{http_code}' "$URL_BYS") ||
	fail "the bystander cannot connect any more"
[[ $code == 200 ]] || fail "the bystander got HTTP $code, want 200"
say "bystander \$ curl $URL_BYS"
say "          HTTP $code"
ok "the bystander still gets through"

# --- 8. banned ---------------------------------------------------------------------------------
step "Every ban in force"
show "$LOGJAIL" banned --socket "$SOCK" || fail "logjail banned failed"

# --- 9. stop -----------------------------------------------------------------------------------
step "Stop logjail (SIGTERM, as systemctl stop does): it removes its chain"
kill -TERM "$DAEMON_PID"
status=0
for ((i = 0; i < 150; i++)); do
	kill -0 "$DAEMON_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$DAEMON_PID" 2>/dev/null && fail "logjail server did not stop within 15 s of SIGTERM"
wait "$DAEMON_PID" || status=$?
DAEMON_PID=''
((status == 0)) || fail "logjail server exited with status $status"
ok "logjail server stopped (exit status 0)"
show ip netns exec "$SRV" iptables -S
inns "$SRV" iptables -S >"$TMP/fw4.after"
inns "$SRV" ip6tables -S >"$TMP/fw6.after" 2>/dev/null || true
grep -q 'lj-' "$TMP/fw4.after" "$TMP/fw6.after" && fail "a logjail chain or jump is still there"
diff -u "$TMP/fw4.before" "$TMP/fw4.after" >&2 || fail "the IPv4 firewall differs from before logjail started"
diff -u "$TMP/fw6.before" "$TMP/fw6.after" >&2 || fail "the IPv6 firewall differs from before logjail started"
ok "no lj- chain left; the namespace's firewall is as it was before logjail started"

# --- 10. cleanup (the EXIT trap) -------------------------------------------------------------
step "Remove everything the demo made"
