#!/usr/bin/env bash
# L2TP session set-up rate and memory per idle session: tsunagi's LNS
# against a LAC that opens SESSIONS sessions (default 1,000) at once.
#
#   benches/l2tp-sessions.sh      (root; ROUNDS=3 SESSIONS=1000 TUNNELS=10 IDLE=5)
#
# Two namespaces joined by a veth pair: the LNS (10.91.0.1, a `tsunagi
# run` with one `[server.lns] protocol = "l2tp"`, `connections` =
# SESSIONS, a pool just large enough, a tunnel secret, chap-secrets with a
# user per session) and the LAC (10.91.0.2), the example
# crates/tsunagi/examples/l2tp_sessions.rs: the tsunagi-l2tp and
# tsunagi-ppp engines on one UDP socket from port 1701, TUNNELS tunnels
# that each place SESSIONS/TUNNELS incoming calls as soon as they are up,
# every session a PPP link as its own user (MS-CHAPv2, IPCP asking for an
# address). A session is set up when its IPCP is Opened at the LAC: the LNS
# accepted its ICRQ and ICCN, authenticated it and gave it an address.
#
# Each of ROUNDS rounds starts a fresh LNS in fresh namespaces and prints:
#   setups/s    SESSIONS over the time from the first ICRQ to the last
#               session's IPCP up (from_sccrq: the same from the first
#               SCCRQ, the tunnels' set-up included);
#   lns cpu     the LNS's CPU seconds (utime+stime, all threads) over that
#               time, and lac cpu the LAC's;
#   retx, zlb   control messages the LAC retransmitted, ZLBs it received
#               (acknowledgements the LNS had nothing to put on);
#   KiB/session the LNS's resident memory once every session was idle for
#               IDLE seconds (LCP echoes answered) minus what it was
#               before the first SCCRQ, over SESSIONS: VmRSS from
#               /proc/PID/status, and Pss from /proc/PID/smaps_rollup;
#               peak: VmHWM at the end (the set-up's high-water mark).
# After each run the LNS's `status` must list SESSIONS sessions with an
# address. Then the medians over the rounds, and as the last two lines
#   setups/s: X
#   KiB per idle session: Y          (VmRSS)
# The issue's goals: >= 1,000 set-ups per second, <= 16 KiB per session.
# The LNS and the LAC share the machine's CPUs: the rate is that of both.
# A round that fails prints FAIL with the reason; the script goes on and
# exits 1 at the end. Everything it made is removed on exit.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$(readlink -f "$0")")/.."
ROUNDS=${ROUNDS:-3}
SESSIONS=${SESSIONS:-1000}
TUNNELS=${TUNNELS:-10}
IDLE=${IDLE:-5}
[ "$(id -u)" = 0 ] || { echo "benches/l2tp-sessions.sh: run as root" >&2; exit 1; }
if [ "$SESSIONS" -lt 1 ] || [ "$SESSIONS" -gt 65000 ] || [ "$TUNNELS" -lt 1 ] ||
	[ "$TUNNELS" -gt 64 ] || [ $((SESSIONS % TUNNELS)) != 0 ]; then
	echo "benches/l2tp-sessions.sh: SESSIONS (1-65000) must be a multiple of TUNNELS (1-64: the LNS takes 64 tunnels per address)" >&2
	exit 1
fi
PER_TUNNEL=$((SESSIONS / TUNNELS))

missing=()
for pair in jq:jq ss:iproute2; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}" >&2
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi

cargo build --release -p tsunagi --bin tsunagi --example l2tp_sessions >&2
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

P=tl$$
WORK=$(mktemp -d /tmp/tsunagi-bench-l2tp-sessions.XXXXXX)
chmod 755 "$WORK"
# Copies, which later builds cannot replace.
TS=$WORK/tsunagi
LAC=$WORK/l2tp_sessions
cp "$TARGET/release/tsunagi" "$TS"
cp "$TARGET/release/examples/l2tp_sessions" "$LAC"
NS_LNS=$P-lns NS_LAC=$P-lac
PIDS=()

stop_pids() {
	local pid
	for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${PIDS[@]}"; do
		for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

topo_down() {
	local ns p
	stop_pids
	for ns in "$NS_LNS" "$NS_LAC"; do
		[ -e "/run/netns/$ns" ] || continue
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
}

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	set +e
	topo_down
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_until SECS CMD...: CMD retried every 0.2 s until it succeeds.
wait_until() {
	local tries=$(($1 * 5))
	shift
	for _ in $(seq "$tries"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	return 1
}

# shellcheck disable=SC2317 # run by wait_until
lns_listens() { ip netns exec "$NS_LNS" ss -Hlun 'sport = :1701' | grep -q .; }

# The smallest CIDR block with SESSIONS hosts, in 10.96.0.0/16.
bits=32
while [ $(((1 << (32 - bits)) - 2)) -lt "$SESSIONS" ]; do bits=$((bits - 1)); done
POOL=10.96.0.0/$bits

# chap-secrets: a user per session, as the LAC names them.
{
	echo "# client server secret addresses"
	for i in $(seq 0 $((SESSIONS - 1))); do echo "u$i lns \"pw$i\" *"; done
} >"$WORK/chap-secrets"
chmod 600 "$WORK/chap-secrets"
cat >"$WORK/lns.toml" <<EOF
[daemon]
control_socket = "$WORK/lns.sock"
log_file = "$WORK/lns.log"
secrets = "$WORK/chap-secrets"

[server.lns]
protocol = "l2tp"
listen = "10.91.0.1"
localip = "10.95.0.1"
remoteip = "$POOL"
connections = $SESSIONS
name = "lns"
secret = "benchsecret"
firewall = false
EOF
chmod 600 "$WORK/lns.toml"

# run_round: one LNS, one LAC run. Sets `result` (the LAC's key=value
# pairs) or why.
run_round() {
	why="" result=""
	if ! { ip netns add "$NS_LNS" && ip netns add "$NS_LAC" &&
		ip -n "$NS_LNS" link set lo up && ip -n "$NS_LAC" link set lo up &&
		ip link add wan0 netns "$NS_LNS" type veth peer name wan0 netns "$NS_LAC" &&
		ip -n "$NS_LNS" addr add 10.91.0.1/24 dev wan0 &&
		ip -n "$NS_LAC" addr add 10.91.0.2/24 dev wan0 &&
		ip -n "$NS_LNS" link set wan0 up && ip -n "$NS_LAC" link set wan0 up; }; then
		why="setting up the namespaces failed"
		return 1
	fi
	rm -f "$WORK/lns.sock" "$WORK/lns.log"
	ip netns exec "$NS_LNS" "$TS" -c "$WORK/lns.toml" run </dev/null >>"$WORK/lns.log" 2>&1 &
	local lns=$!
	PIDS+=("$lns")
	wait_until 10 test -S "$WORK/lns.sock" || { why="the LNS's control socket did not appear"; return 1; }
	wait_until 10 lns_listens || { why="the LNS does not listen on UDP 1701"; return 1; }
	# Settled: the tun up, the pool's route in.
	sleep 1
	if ! result=$(ip netns exec "$NS_LAC" "$LAC" --lns 10.91.0.1:1701 --tunnels "$TUNNELS" \
		--per-tunnel "$PER_TUNNEL" --pid "$lns" --idle "$IDLE" --secret benchsecret 2>"$WORK/lac.err"); then
		why="the LAC failed: $(tail -n 3 "$WORK/lac.err" | tr '\n' ' ')"
		return 1
	fi
	kill -0 "$lns" 2>/dev/null || { why="the LNS exited; its log: $(tail -n 3 "$WORK/lns.log" | tr '\n' ' ')"; return 1; }
	local n
	n=$("$TS" -S "$WORK/lns.sock" status --json | jq '[.sessions[] | select(.peer_addr != null)] | length')
	[ "$n" = "$SESSIONS" ] || { why="the LNS lists $n sessions with an address, not $SESSIONS"; return 1; }
	hwm=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$lns/status")
	result=$(echo "$result" | tr '\n' ' ')
	note=$(grep -m1 '^last session' "$WORK/lac.err" || true)
}

# field KEY: KEY's value in $result.
field() { echo "$result" | tr ' ' '\n' | sed -n "s/^$1=//p"; }

median() {
	sort -n | awk 'NF {a[++n] = $1} END {if (n == 0) print "FAIL"; else if (n % 2) print a[(n+1)/2]; else printf "%.2f\n", (a[n/2]+a[n/2+1])/2}'
}

echo "tsunagi $(git describe --always --dirty 2>/dev/null || echo unknown): $SESSIONS L2TP sessions over $TUNNELS tunnels ($PER_TUNNEL each), MS-CHAPv2, pool $POOL, idle ${IDLE} s; $(nproc) CPUs; $ROUNDS rounds"
printf '%-6s %9s %9s %11s %8s %8s %5s %5s %10s %10s %9s %9s\n' round setups/s secs from_sccrq lns_cpu lac_cpu retx zlb rss_before rss_after KiB/sess Pss/sess
declare -a M_RATE M_SECS M_LNS M_RSS M_PSS
failed=0
for round in $(seq "$ROUNDS"); do
	if run_round; then
		printf '%-6s %9s %9s %11s %8s %8s %5s %5s %10s %10s %9s %9s   peak %s KiB\n' "$round" \
			"$(field setups_per_sec)" "$(field from_icrq_secs)" "$(field from_sccrq_secs)" \
			"$(field lns_cpu_secs)" "$(field lac_cpu_secs)" "$(field lac_retransmitted)" "$(field lac_zlb_received)" \
			"$(field rss_before_kib)" "$(field rss_after_kib)" \
			"$(field rss_per_session_kib)" "$(field pss_per_session_kib)" "$hwm"
		[ -z "$note" ] || echo "       $note"
		M_RATE+=("$(field setups_per_sec)")
		M_SECS+=("$(field from_icrq_secs)")
		M_LNS+=("$(field lns_cpu_secs)")
		M_RSS+=("$(field rss_per_session_kib)")
		M_PSS+=("$(field pss_per_session_kib)")
	else
		printf '%-6s FAIL %s\n' "$round" "$why"
		failed=1
	fi
	topo_down
done
m() { printf '%s\n' "$@" | median; }
echo "medians over $ROUNDS rounds: setups/s $(m "${M_RATE[@]}"), $(m "${M_SECS[@]}") s from the first ICRQ, LNS $(m "${M_LNS[@]}") CPU s, KiB per session $(m "${M_RSS[@]}") (VmRSS) $(m "${M_PSS[@]}") (Pss)"
echo "setups/s: $(m "${M_RATE[@]}")"
echo "KiB per idle session: $(m "${M_RSS[@]}")"
exit "$failed"
