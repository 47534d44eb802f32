#!/usr/bin/env bash
# Forwarding through a gateway with `[policy]` (seed 000's IPFilter style,
# compiled to nftables by tsunagi) against the same gateway without it.
#
#   benches/policy.sh [SECS]      (root; SECS per iperf3 run, default 10)
#
# Four namespaces as the other gateway benches (benches/gateways.sh): host
# A 10.93.1.2 - gateway A - gateway B - host B 10.93.2.2; gateway A's LAN
# side is lan0 (`em1` in the rules), its WAN side wan0 (`em0`). Rows:
#   no-policy  plain routing; gateway A masquerades what leaves wan0 with
#              one nftables rule;
#   policy     `tsunagi run` on gateway A with [policy] only: the ipf rules
#              below (state first, `with ipopts`/`with short` blocks, kept
#              state bound to interfaces, `keep frags`, log rules on the
#              refusals) and `map em0 ... portmap` (the NAT of the first
#              row, done by the ruleset).
# Each of ROUNDS rounds (default 3) runs both rows, each in fresh
# namespaces: iperf3 TCP, one stream, host A -> host B for SECS seconds,
# the receiver's rate. Printed: a table per round, the medians, and as the
# last line
#   ratio policy/no-policy: X
# CPU seconds per GB received: machine (every CPU's busy time: the kernel
# does the filtering) and daemons (tsunagi, which only applied the rules).
# The machine is shared and noisy: compare figures within one run only.
# Needs iperf3, nftables, jq (installed if missing); AUTOGROUP_NICE=N as
# the other benches. Everything it made is removed on exit.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$(readlink -f "$0")")/.."
SECS=${1:-${SECS:-10}}
ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-no-policy policy}
TSUNAGI_B=""
[ "$(id -u)" = 0 ] || { echo "benches/policy.sh: run as root" >&2; exit 1; }
for r in $ROWS; do
	case $r in
	no-policy | policy) ;;
	*) echo "benches/policy.sh: unknown row $r" >&2; exit 1 ;;
	esac
done

BENCH=policy
# shellcheck source=benches/gateways.sh
. benches/gateways.sh

up_policy() {
	# No masquerade of the bench's own: the ruleset's `map` does it.
	topo_up none || return 1
	ip -n "$NS_GA" route add 10.93.2.0/24 via 10.91.0.1
	ip -n "$NS_GB" route add 10.93.1.0/24 via 10.91.0.2
	cat >"$WORK/ipf.rules" <<-'EOF'
		block in log quick all with ipopts
		block in log quick proto tcp all with short
		block in log on em0 all
		block in log on em1 all
		pass in quick on em1 proto tcp from 10.93.1.0/24 to any flags S keep state keep frags
		pass in quick on em1 proto icmp from 10.93.1.0/24 to any icmp-type echo keep state
		pass out quick on em0 all keep state
		pass out quick on em1 all keep state
	EOF
	cat >"$WORK/ipnat.rules" <<-'EOF'
		map em0 10.93.1.0/24 -> 0/32 portmap tcp/udp auto
		map em0 10.93.1.0/24 -> 0/32
	EOF
	rm -f "$WORK/gw.sock" "$WORK/gw.log"
	cat >"$WORK/gw.toml" <<-EOF
		[daemon]
		control_socket = "$WORK/gw.sock"
		log_file = "$WORK/gw.log"

		[policy]
		ipf = "$WORK/ipf.rules"
		ipnat = "$WORK/ipnat.rules"
		interfaces = { em0 = "wan0", em1 = "lan0" }
		log_file = "$WORK/ipmon.log"
	EOF
	ip netns exec "$NS_GA" "$TS" -c "$WORK/gw.toml" run </dev/null >"$WORK/gw.out" 2>&1 &
	PIDS+=($!)
	DAEMONS=("$!")
	wait_until 10 test -S "$WORK/gw.sock" || { why="the daemon did not start: $(tail -n 2 "$WORK/gw.out")"; return 1; }
	wait_until 10 ping_through || { why="no ping from host A to host B through the policy"; return 1; }
}

# What the ruleset did in the run: its tables' rule count and the ipmon
# lines (refusals: none expected).
policy_note() {
	local rules lines
	rules=$(nse "$NS_GA" nft -j list ruleset | jq '[.nftables[] | select(.rule)] | length')
	lines=$(wc -l <"$WORK/ipmon.log" 2>/dev/null || echo 0)
	echo "$rules nftables rules, $lines ipmon lines"
}

row_up() {
	case $1 in
	no-policy) up_no_tunnel ;;
	policy) TS=$TS_A && up_policy ;;
	*) return 1 ;;
	esac
}
row_note() {
	case $1 in
	policy) policy_note ;;
	esac
}

run_rounds
echo "ratio policy/no-policy: $(ratio policy no-policy)"
exit "$failed"
