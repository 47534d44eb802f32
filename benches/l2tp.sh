#!/usr/bin/env bash
# L2TP throughput: tsunagi's LAC and LNS between two gateways, against no
# tunnel and against boringtun (WireGuard in userland).
#
#   benches/l2tp.sh [SECS]      (root; SECS per iperf3 run, default 10)
#
# Four namespaces, host A - gateway A - gateway B - host B, joined by veth
# pairs (host A 10.93.1.2 on LAN A 10.93.1.0/24, the gateways' WAN
# 10.91.0.0/24 with gateway B at .1, host B 10.93.2.2 on LAN B
# 10.93.2.0/24). The rows differ only in what runs on the gateways:
#   no-tunnel     plain routing over the WAN;
#   l2tp          tsunagi: a `mode = "l2tp"` link (the LAC) on gateway A
#                 dials the `protocol = "l2tp"` server (the LNS) on
#                 gateway B, with a tunnel secret and MS-CHAPv2 (the LNS's
#                 default); no MPPE: L2TP has no encryption of its own
#                 (L2TP/IPsec puts IPsec under it), and the LNS's default
#                 is mppe = "none";
#   boringtun     boringtun-cli on both gateways, configured with `wg`,
#                 LAN B routed into it on gateway A.
# Gateway A masquerades what leaves it towards B in every row (nftables):
# tsunagi's LNS takes from a session only packets whose source is the
# session's own inner address (it serves remote users, it has no routes to
# a client's LAN), so host A's traffic must come from the LAC's address;
# the other rows do the same so that each pays the same NAT. Every row
# gets a fresh set of namespaces (no route, path MTU or conntrack state
# carried over from the row before).
#
# Each of ROUNDS rounds (default 3) runs every row once, one after the
# other: iperf3 TCP, one stream, host A -> host B for SECS seconds, the
# receiver's rate. Printed: a table per round, the median of each row over
# the rounds, the ratio of the L2TP median to the no-tunnel median, and as
# the last line
#   ratio l2tp/boringtun: X
# (medians).
#
# CPU seconds per GB received:
#   machine  - every CPU's busy time during the iperf3 run from /proc/stat:
#              user+system+irq+softirq; not idle, iowait, steal, nor nice
#              (a shared machine runs niced fuzzers; nothing here is niced):
#              everything the path costs, kernel forwarding and iperf3
#              included, if nothing else runs;
#   daemons  - the two gateways' daemons (tsunagi or boringtun-cli),
#              utime+stime of all their threads from /proc/PID/stat.
# Under the table, for the tunnel rows: packets dropped on the way (the
# tun's TX drops on each gateway, UDP receive buffer errors) and the L2TP
# data counters of both tsunagi sides (data messages received, sent and
# dropped, as `tsunagi status` shows them).
# The machine is shared and noisy: compare figures within one run only.
# Session set-up rate and memory per session: benches/l2tp-sessions.sh.
#
# Needs iperf3, wireguard-tools, nftables, jq (installed with apt-get if
# missing) and boringtun-cli 0.7.1: BORINGTUN=/path, else on PATH, else
# /var/cache/tsunagi-bench/boringtun/bin (`cargo install` puts it there if
# it is nowhere). ROWS="l2tp boringtun" runs only those rows.
# TSUNAGI_B=/path/to/another/tsunagi (a build of a branch under test) adds
# the row l2tp-b, that binary on both gateways, to every round, and prints
# its ratio to l2tp: an A/B comparison under the same load.
# AUTOGROUP_NICE=N (e.g. -10) gives this session's scheduler autogroup that
# nice while the script runs (sched(7), "The autogroup feature"; restored
# at exit). With autogroups on, processes of another session, e.g. fuzzers
# at nice 19, form a group of their own that gets as much CPU as this
# whole benchmark whatever their nice; the header line shows that load.
# A row that fails prints FAIL with the reason; the script then goes on and
# exits 1 at the end. Everything it made is removed on exit, also on
# failure or ^C.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$(readlink -f "$0")")/.."
SECS=${1:-${SECS:-10}}
ROUNDS=${ROUNDS:-3}
TSUNAGI_B=${TSUNAGI_B:-}
if [ -n "$TSUNAGI_B" ]; then
	ROWS=${ROWS:-no-tunnel l2tp l2tp-b boringtun}
else
	ROWS=${ROWS:-no-tunnel l2tp boringtun}
fi
[ "$(id -u)" = 0 ] || { echo "benches/l2tp.sh: run as root" >&2; exit 1; }
for r in $ROWS; do
	case $r in
	no-tunnel | l2tp | boringtun) ;;
	l2tp-b)
		[ -x "$TSUNAGI_B" ] || { echo "benches/l2tp.sh: row $r needs TSUNAGI_B=/path/to/tsunagi" >&2; exit 1; } ;;
	*) echo "benches/l2tp.sh: unknown row $r" >&2; exit 1 ;;
	esac
done

# The namespaces, their clean-up, the CPU accounting: benches/gateways.sh.
BENCH=l2tp
# shellcheck source=benches/gateways.sh
. benches/gateways.sh

up_l2tp() {
	topo_up ts-bench || return 1
	printf 'bench lns "benchpw" *\n' >"$WORK/chap-secrets"
	chmod 600 "$WORK/chap-secrets"
	rm -f "$WORK/srv.sock" "$WORK/cli.sock" "$WORK/srv.log" "$WORK/cli.log"
	cat >"$WORK/srv.toml" <<-EOF
		[daemon]
		control_socket = "$WORK/srv.sock"
		log_file = "$WORK/srv.log"
		secrets = "$WORK/chap-secrets"

		[server.lns]
		protocol = "l2tp"
		listen = "10.91.0.1"
		localip = "10.92.0.1"
		remoteip = "10.92.0.2"
		name = "lns"
		secret = "benchsecret"
		firewall = false
	EOF
	cat >"$WORK/cli.toml" <<-EOF
		[daemon]
		control_socket = "$WORK/cli.sock"
		log_file = "$WORK/cli.log"

		[link.bench]
		mode = "l2tp"
		lns = "10.91.0.1"
		secret = "benchsecret"
		user = "bench"
		password = "benchpw"
		routes = ["10.93.2.0/24"]
		persist = false
	EOF
	chmod 600 "$WORK/srv.toml" "$WORK/cli.toml"
	ip netns exec "$NS_GB" "$TS" -c "$WORK/srv.toml" run </dev/null >>"$WORK/srv.log" 2>&1 &
	PIDS+=($!)
	wait_until 10 test -S "$WORK/srv.sock" || { why="the LNS's control socket did not appear"; return 1; }
	ip netns exec "$NS_GA" "$TS" -c "$WORK/cli.toml" run </dev/null >>"$WORK/cli.log" 2>&1 &
	PIDS+=($!)
	wait_until 10 test -S "$WORK/cli.sock" || { why="the LAC's control socket did not appear"; return 1; }
	if ! wait_until 30 client_up; then
		why="the link is not up after 30 s (phase $(client_phase)); LAC log: $(tail -n 3 "$WORK/cli.log" | tr '\n' ' ')"
		return 1
	fi
	wait_until 10 ping_through || { why="link up, but no ping from host A to host B through it"; return 1; }
	local ccp
	ccp=$("$TS" -S "$WORK/cli.sock" status --json | jq -r '.links[0].ccp // "none"')
	[ "$ccp" = none ] || { why="CCP is on (ccp: $ccp)"; return 1; }
	DAEMONS=("${PIDS[@]}")
}


# row_up ROW / row_note ROW: this bench's rows for run_row (gateways.sh).
row_up() {
	case $1 in
	no-tunnel) up_no_tunnel ;;
	l2tp) TS=$TS_A && up_l2tp ;;
	l2tp-b) TS=$TS_B && up_l2tp ;;
	boringtun) up_boringtun ;;
	*) return 1 ;;
	esac
}
row_note() {
	case $1 in
	l2tp*) echo "$(drops); $(l2tp_counters)" ;;
	boringtun) drops ;;
	esac
}

run_rounds
[ -z "$TSUNAGI_B" ] || echo "ratio l2tp-b/l2tp: $(ratio l2tp-b l2tp)"
echo "ratio l2tp/no-tunnel: $(ratio l2tp no-tunnel)"
echo "ratio l2tp/boringtun: $(ratio l2tp boringtun)"
exit "$failed"
