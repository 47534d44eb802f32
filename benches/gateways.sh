# Sourced by benches/pptp.sh, l2tp.sh and ipsec.sh (BENCH=pptp, l2tp or ipsec, set
# -euo pipefail and the repository root as the working directory): what
# they all need (packages, boringtun, the release build), the four namespaces
# host A - gateway A - gateway B - host B, their clean-up on exit, the CPU
# accounting, the no-tunnel row and the client's phase.
# shellcheck shell=bash disable=SC2034,SC2153 # TCK, why: read by the scripts that source this; SECS, ROWS, ROUNDS: set by them
# --- what it needs --------------------------------------------------------

missing=()
for pair in iperf3:iperf3 wg:wireguard-tools nft:nftables jq:jq ping:iputils-ping ss:iproute2; do
	command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "installing ${missing[*]}" >&2
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
BT_CACHE=/var/cache/tsunagi-bench/boringtun
if [ -z "${BORINGTUN:-}" ]; then
	BORINGTUN=$(command -v boringtun-cli || true)
	[ -n "$BORINGTUN" ] || BORINGTUN=$BT_CACHE/bin/boringtun-cli
	if [ ! -x "$BORINGTUN" ]; then
		cargo install boringtun-cli --version 0.7.1 --locked --root "$BT_CACHE" >&2
	fi
fi
[ -x "$BORINGTUN" ] || { echo "benches/$BENCH.sh: no boringtun-cli at $BORINGTUN" >&2; exit 1; }

cargo build --release -p tsunagi >&2
TARGET=${CARGO_TARGET_DIR:-$PWD/target}

P=tb$$
WORK=$(mktemp -d "/tmp/tsunagi-bench-$BENCH.XXXXXX")
chmod 755 "$WORK"
# The binary the daemons run: a copy, which later builds cannot replace.
TS_A=$WORK/tsunagi
cp "$TARGET/release/tsunagi" "$TS_A"
TS_B=$WORK/tsunagi-b
[ -z "$TSUNAGI_B" ] || cp "$TSUNAGI_B" "$TS_B"
# The binary of the row being measured.
TS=$TS_A
NS_HA=$P-ha NS_GA=$P-ga NS_GB=$P-gb NS_HB=$P-hb
ALL_NS=("$NS_HA" "$NS_GA" "$NS_GB" "$NS_HB")
# WireGuard's UAPI sockets are in the shared /run: names unique to this run.
WG_A=wga$$ WG_B=wgb$$
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
	for ns in "${ALL_NS[@]}"; do
		[ -e "/run/netns/$ns" ] || continue
		# Anything left in a namespace of ours (an iperf3 server) goes too.
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -f "/run/wireguard/$WG_A.sock" "/run/wireguard/$WG_B.sock"
}

# shellcheck disable=SC2317 # run by the trap
cleanup() {
	set +e
	topo_down
	[ -z "${AUTOGROUP_OLD:-}" ] || echo "$AUTOGROUP_OLD" >"/proc/$$/autogroup"
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

TCK=$(getconf CLK_TCK)

# Busy clock ticks of the whole machine so far: user+system+irq+softirq.
machine_ticks() {
	awk '$1 == "cpu" {print $2 + $4 + $7 + $8; exit}' /proc/stat
}

# utime+stime (clock ticks) of the given pids, all threads.
pid_ticks() {
	local pid total=0 t
	for pid in "$@"; do
		t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12 + $13}') || t=0
		total=$((total + ${t:-0}))
	done
	echo "$total"
}

# nse NS CMD...: CMD in namespace NS (not for what runs in the background:
# $! would be a subshell's pid, not the command's).
nse() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# veth NS_A IF_A ADDR_A NS_B IF_B ADDR_B
veth() {
	ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" &&
		ip -n "$1" addr add "$3" dev "$2" &&
		ip -n "$4" addr add "$6" dev "$5" &&
		ip -n "$1" link set "$2" up &&
		ip -n "$4" link set "$5" up
}

# The four namespaces, the routes of the hosts, forwarding on the gateways,
# and gateway A's masquerade of what leaves through interface $1.
topo_up() {
	local ns out=$1
	why="setting up the namespaces failed"
	for ns in "${ALL_NS[@]}"; do
		ip netns add "$ns" && ip -n "$ns" link set lo up || return 1
	done
	veth "$NS_HA" eth0 10.93.1.2/24 "$NS_GA" lan0 10.93.1.1/24 &&
		veth "$NS_GA" wan0 10.91.0.2/24 "$NS_GB" wan0 10.91.0.1/24 &&
		veth "$NS_GB" lan0 10.93.2.1/24 "$NS_HB" eth0 10.93.2.2/24 &&
		ip -n "$NS_HA" route add default via 10.93.1.1 &&
		ip -n "$NS_HB" route add default via 10.93.2.1 &&
		nse "$NS_GA" sysctl -q -w net.ipv4.ip_forward=1 &&
		nse "$NS_GB" sysctl -q -w net.ipv4.ip_forward=1 &&
		nse "$NS_GA" nft -f - <<-EOF || return 1
			table ip bench {
				chain post {
					type nat hook postrouting priority srcnat;
					oifname "$out" masquerade
				}
			}
		EOF
	why=""
}

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
ping_through() { nse "$NS_HA" ping -c 1 -W 1 10.93.2.2; }

# --- the rows' gateways ---------------------------------------------------

up_no_tunnel() {
	topo_up wan0 || return 1
	ip -n "$NS_GA" route add 10.93.2.0/24 via 10.91.0.1
	ip -n "$NS_GB" route add 10.93.1.0/24 via 10.91.0.2
	wait_until 10 ping_through || { why="no ping from host A to host B"; return 1; }
}

# tsunagi's client phase ("network" once IPCP is up).
client_phase() {
	"$TS" -S "$WORK/cli.sock" status --json 2>/dev/null | jq -r '.links[0].phase // "none"'
}
# shellcheck disable=SC2317 # run by wait_until
client_up() { [ "$(client_phase)" = network ]; }

up_boringtun() {
	local side ns ifn ka kb pa pb
	topo_up "$WG_A" || return 1
	mkdir -p /run/wireguard
	for side in a b; do
		if [ $side = a ]; then ns=$NS_GA ifn=$WG_A; else ns=$NS_GB ifn=$WG_B; fi
		ip netns exec "$ns" "$BORINGTUN" "$ifn" --foreground --disable-drop-privileges -t 2 \
			-l "$WORK/$ifn.log" </dev/null >"$WORK/$ifn.out" 2>&1 &
		PIDS+=($!)
		wait_until 10 test -S "/run/wireguard/$ifn.sock" || { why="boringtun $ifn: no UAPI socket"; return 1; }
	done
	ka=$(wg genkey) kb=$(wg genkey)
	pa=$(wg pubkey <<<"$ka") pb=$(wg pubkey <<<"$kb")
	nse "$NS_GA" wg set "$WG_A" listen-port 51820 private-key <(echo "$ka") \
		peer "$pb" allowed-ips 10.94.0.2/32,10.93.2.0/24 endpoint 10.91.0.1:51820
	nse "$NS_GB" wg set "$WG_B" listen-port 51820 private-key <(echo "$kb") \
		peer "$pa" allowed-ips 10.94.0.1/32,10.93.1.0/24 endpoint 10.91.0.2:51820
	ip -n "$NS_GA" addr add 10.94.0.1/24 dev "$WG_A"
	ip -n "$NS_GB" addr add 10.94.0.2/24 dev "$WG_B"
	ip -n "$NS_GA" link set "$WG_A" mtu 1420 up
	ip -n "$NS_GB" link set "$WG_B" mtu 1420 up
	ip -n "$NS_GA" route add 10.93.2.0/24 dev "$WG_A"
	ip -n "$NS_GB" route add 10.93.1.0/24 dev "$WG_B"
	wait_until 15 ping_through || { why="no ping from host A to host B through WireGuard"; return 1; }
	DAEMONS=("${PIDS[@]}")
}

# --- measuring ------------------------------------------------------------

# Packets dropped on the way, summed over both gateways: the tuns' TX
# drops, the raw sockets' drops, UDP receive buffer errors.
drops() {
	local ns tun=0 raw=0 udp=0 t
	for ns in "$NS_GA" "$NS_GB"; do
		t=$(ip -n "$ns" -s -j link show 2>/dev/null |
			jq '[.[] | select(.ifname | test("^(ts-|wg|ipsec)")) | .stats64.tx.dropped] | add // 0')
		tun=$((tun + t))
		t=$(nse "$ns" cat /proc/net/raw | awk 'NR > 1 {s += $NF} END {print s + 0}')
		raw=$((raw + t))
		t=$(nse "$ns" cat /proc/net/snmp | awk '$1 == "Udp:" && $2 ~ /^[0-9]/ {print $6}')
		udp=$((udp + ${t:-0}))
	done
	echo "tun tx dropped $tun, raw socket drops $raw, udp rcvbuf errors $udp"
}

# iperf3 host A -> host B. Sets mbps, retr, cpu_machine, cpu_daemons, or
# why on failure.
measure() {
	local m0 d0 m1 d1 bytes secs err
	ip netns exec "$NS_HB" iperf3 -s -1 -B 10.93.2.2 -p 5201 >"$WORK/iperf-s.out" 2>&1 &
	local spid=$!
	PIDS+=("$spid")
	if ! wait_until 10 sh -c "ip netns exec $NS_HB ss -Hltn 'sport = :5201' | grep -q ." ; then
		why="the iperf3 server does not listen"
		return 1
	fi
	m0=$(machine_ticks)
	d0=$(pid_ticks "${DAEMONS[@]}")
	nse "$NS_HA" timeout $((SECS + 30)) iperf3 -c 10.93.2.2 -p 5201 -t "$SECS" -J >"$WORK/iperf.json" 2>&1 || true
	m1=$(machine_ticks)
	d1=$(pid_ticks "${DAEMONS[@]}")
	local pid
	for pid in "${DAEMONS[@]}"; do
		kill -0 "$pid" 2>/dev/null || { why="a daemon (pid $pid) exited during the run"; return 1; }
	done
	err=$(jq -r '.error // empty' "$WORK/iperf.json" 2>/dev/null) || err="iperf3 printed no JSON: $(head -c 200 "$WORK/iperf.json")"
	[ -z "$err" ] || { why="iperf3: $err"; return 1; }
	bytes=$(jq '.end.sum_received.bytes' "$WORK/iperf.json")
	secs=$(jq '.end.sum_received.seconds' "$WORK/iperf.json")
	retr=$(jq '.end.sum_sent.retransmits // 0' "$WORK/iperf.json")
	if [ -z "$bytes" ] || [ "$bytes" = null ] || [ "$bytes" = 0 ]; then
		why="iperf3: nothing received"
		return 1
	fi
	mbps=$(awk -v b="$bytes" -v s="$secs" 'BEGIN{printf "%.1f", b*8/1e6/s}')
	cpu_machine=$(awk -v t=$((m1 - m0)) -v hz="$TCK" -v b="$bytes" 'BEGIN{printf "%.2f", t/hz/(b/1e9)}')
	cpu_daemons=$(awk -v t=$((d1 - d0)) -v hz="$TCK" -v b="$bytes" 'BEGIN{printf "%.2f", t/hz/(b/1e9)}')
}

median() {
	sort -n | awk 'NF {a[++n] = $1} END {if (n == 0) print "FAIL"; else if (n % 2) print a[(n+1)/2]; else printf "%.2f\n", (a[n/2]+a[n/2+1])/2}'
}

# run_row ROW: one measurement of ROW in fresh namespaces, with the
# bench's row_up ROW (brings the row up, sets why on failure) and row_note
# ROW (what to print under its round). Sets the measure() results and note,
# or why.
run_row() {
	local ok=0
	why="" note=""
	DAEMONS=()
	if row_up "$1" && measure; then
		ok=1
		note=$(row_note "$1")
	else
		[ -n "$why" ] || why="setting up the row failed"
	fi
	topo_down
	[ $ok = 1 ]
}

# run_rounds: every row of ROWS once per round (run_row above),
# ROUNDS times; prints each round's table and notes, then the medians;
# sets med_mbps (for ratio) and failed (1 when a row failed).
run_rounds() {
	declare -gA RES_MBPS RES_MACHINE RES_DAEMONS med_mbps
	failed=0
	if [ -n "${AUTOGROUP_NICE:-}" ]; then
		[ -w "/proc/$$/autogroup" ] || { echo "benches/$BENCH.sh: no autogroups here (AUTOGROUP_NICE)" >&2; exit 1; }
		AUTOGROUP_OLD=$(awk '{print $NF}' "/proc/$$/autogroup")
		echo "$AUTOGROUP_NICE" >"/proc/$$/autogroup"
	fi
	# What else runs: the machine's busy and niced CPUs over one second.
	read -r b0 n0 < <(awk '$1 == "cpu" {print $2 + $4 + $7 + $8, $3; exit}' /proc/stat)
	sleep 1
	read -r b1 n1 < <(awk '$1 == "cpu" {print $2 + $4 + $7 + $8, $3; exit}' /proc/stat)
	echo "tsunagi $(git describe --always --dirty 2>/dev/null || echo unknown), $("$BORINGTUN" --version 2>/dev/null | head -1), iperf3 TCP 1 stream host A -> host B, ${SECS} s per run, $ROUNDS rounds; $(nproc) CPUs; CPU in s/GB"
	awk -v b=$((b1 - b0)) -v n=$((n1 - n0)) -v hz="$TCK" \
		'BEGIN{printf "other load before the start: %.2f CPUs busy, %.2f CPUs niced", b/hz, n/hz}'
	if [ -r "/proc/$$/autogroup" ]; then
		echo "; this benchmark's autogroup: $(cat "/proc/$$/autogroup")"
	else
		echo
	fi
	[ -z "$TSUNAGI_B" ] || echo "$BENCH-b rows: $TSUNAGI_B"
	for round in $(seq "$ROUNDS"); do
		echo "round $round:"
		printf '  %-14s %10s %7s %9s %9s\n' row Mbit/s retr machine daemons
		notes=()
		for row in $ROWS; do
			if run_row "$row"; then
				printf '  %-14s %10s %7s %9s %9s\n' "$row" "$mbps" "$retr" "$cpu_machine" "$cpu_daemons"
				RES_MBPS[$row]+="$mbps "
				RES_MACHINE[$row]+="$cpu_machine "
				RES_DAEMONS[$row]+="$cpu_daemons "
				[ -z "$note" ] || notes+=("    $row: $note")
			else
				printf '  %-14s FAIL %s\n' "$row" "$why"
				failed=1
			fi
		done
		[ ${#notes[@]} = 0 ] || printf '%s\n' "${notes[@]}"
	done
	echo "medians over $ROUNDS rounds:"
	printf '  %-14s %10s %9s %9s\n' row Mbit/s machine daemons
	for row in $ROWS; do
		# shellcheck disable=SC2086 # word lists of numbers
		{
			med_mbps[$row]=$(printf '%s\n' ${RES_MBPS[$row]:-} | median)
			printf '  %-14s %10s %9s %9s\n' "$row" "${med_mbps[$row]}" \
				"$(printf '%s\n' ${RES_MACHINE[$row]:-} | median)" \
				"$(printf '%s\n' ${RES_DAEMONS[$row]:-} | median)"
		}
	done
}

# ratio ROW_A ROW_B: median rate of A over B; "FAIL" when either failed
# every round, "n/a" when either was not run (ROWS).
ratio() {
	awk -v a="${med_mbps[$1]:-n/a}" -v b="${med_mbps[$2]:-n/a}" \
		'BEGIN{if (a == "n/a" || b == "n/a") print "n/a"; else if (a == "FAIL" || b == "FAIL" || b == 0) print "FAIL"; else printf "%.2f\n", a/b}'
}

# check_refused BINARY CONFIG...: `BINARY -c CONFIG check` on each; when one
# is refused, prints check's last line (paths under $WORK left out) and
# returns 0; 1 when every config passes.
check_refused() {
	local bin=$1 conf out
	shift
	for conf in "$@"; do
		if ! out=$("$bin" -c "$conf" check 2>&1); then
			grep -v '^[[:space:]]*$' <<<"$out" | tail -n 1 | sed "s|$WORK/||g"
			return 0
		fi
	done
	return 1
}

# L2TP data counters of both tsunagi sides, from their status.
l2tp_counters() {
	local s c
	s=$("$TS" -S "$WORK/srv.sock" status --json |
		jq -r '.servers[0].tunnels[0] // {} | "rx \(.data_rx) tx \(.data_tx) dropped \(.data_dropped)"') || s='?'
	c=$("$TS" -S "$WORK/cli.sock" status --json | jq -r '.links[0].tunnel // "?"' | grep -o 'data rx .*') || c='?'
	echo "l2tp data LNS: $s | LAC: ${c#data }"
}
