#!/usr/bin/env bash
# L2TP/IPsec throughput: tsunagi's L2TP/IPsec client (seed 002's shape: a
# `mode = "l2tp"` link with `ipsec = "CONN"`) dialling tsunagi's L2TP/IPsec
# server, against no tunnel and against plain L2TP.
#
#   benches/l2tp-ipsec.sh [SECS]    (root; SECS per iperf3 run, default 10)
#
# Four namespaces, host A - gateway A - gateway B - host B, joined by veth
# pairs (host A 10.93.1.2 on LAN A 10.93.1.0/24, the gateways' WAN
# 10.91.0.0/24 with gateway A at .2 and gateway B at .1, host B 10.93.2.2
# on LAN B 10.93.2.0/24): benches/gateways.sh. The rows differ only in what
# runs on the gateways:
#   no-tunnel     plain routing over the WAN;
#   l2tp-ipsec    tsunagi on both: gateway A's link `bench` (the LAC, user
#                 and password, MS-CHAPv2) with `ipsec = "bench"`, its conn
#                 [ipsec.bench] left = "%defaultroute", type = "transport",
#                 17/1701 both sides, ike = "aes128-sha1-modp2048!", esp =
#                 "aes128-sha1!" (AES-128-CBC with HMAC-SHA1-96: what
#                 Windows, macOS and iOS negotiate), auto = "start",
#                 forceencaps = true (ESP in UDP 4500, what a client behind
#                 a NAT, the usual case, sends); gateway B's [server.lns]
#                 with `ipsec = "l2tp"` and its conn right = "%any",
#                 rightprotoport = "17/%any" and the proposals of the
#                 README's L2TP/IPsec server (AES-256, AES-128, 3DES; the
#                 client's choice wins); one PSK for %any in an ipsec.secrets file
#                 (0600) on each side; no MPPE (the LNS's default);
#   l2tp-ipsec-raw  (only with ROWS) the same with forceencaps = false: raw
#                 ESP, IP protocol 50, which the kernel neither segments
#                 (GSO) nor aggregates (GRO) for a userland ESP;
#   l2tp          the same LAC and LNS without IPsec (L2TP has no
#                 encryption of its own): what IPsec costs on top.
# Gateway A masquerades what leaves it into the tunnel (nftables): the LNS
# takes from a session only packets from the session's own address. The
# no-tunnel row masquerades onto the WAN, so that each row pays one NAT.
# Every row gets a fresh set of namespaces (no route, path MTU or
# conntrack state carried over from the row before). Before each IPsec
# row is measured, the client's SA must show the intended proposal
# (AES_CBC_128/HMAC_SHA1_96) and ESP packets both ways, so that a row can
# never measure plain L2TP by mistake.
#
# Before the rounds, `tsunagi check` reads each IPsec row's configs: when
# the binary under test refuses them the bench fails (exit 1) naming why;
# a TSUNAGI_B that knows no L2TP/IPsec yet has its row left out with a
# line that says so ("l2tp-ipsec-b: skipped: ..."), its ratio n/a.
#
# Each of ROUNDS rounds (default 3) runs every row once, one after the
# other: iperf3 TCP, one stream, host A -> host B for SECS seconds, the
# receiver's rate. Printed: a table per round, the median of each row over
# the rounds with its CPU seconds per GB, the ratio of the l2tp-ipsec
# median to no-tunnel, and as the last line
#   ratio l2tp-ipsec/l2tp: X
# (medians: the share of plain L2TP's rate left with IPsec under it).
#
# CPU seconds per GB received (benches/gateways.sh):
#   machine  - every CPU's busy time during the iperf3 run from /proc/stat
#              (user+system+irq+softirq): everything the path costs;
#   daemons  - the two gateways' tsunagi daemons, utime+stime of all their
#              threads.
# Under the table, for the tunnel rows: packets dropped on the way (TX drops
# of the tuns, raw socket drops, UDP receive buffer errors), the L2TP data
# counters of both sides, and for the IPsec rows the client's SA (proposal,
# encapsulation, packets sealed and opened).
# The machine is shared and noisy: compare figures within one run only.
#
# Needs iperf3, wireguard-tools, nftables, jq (installed with apt-get if
# missing) and boringtun-cli (benches/gateways.sh; ROWS=boringtun adds its
# row). ROWS="l2tp-ipsec l2tp" runs only those rows. TSUNAGI_B=/path/to/
# another/tsunagi adds the row l2tp-ipsec-b (that binary on both gateways)
# and its ratio to l2tp-ipsec. AUTOGROUP_NICE=N: see benches/l2tp.sh.
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
	ROWS=${ROWS:-no-tunnel l2tp-ipsec l2tp-ipsec-b l2tp}
else
	ROWS=${ROWS:-no-tunnel l2tp-ipsec l2tp}
fi
[ "$(id -u)" = 0 ] || { echo "benches/l2tp-ipsec.sh: run as root" >&2; exit 1; }
for r in $ROWS; do
	case $r in
	no-tunnel | l2tp-ipsec | l2tp-ipsec-raw | l2tp | boringtun) ;;
	l2tp-ipsec-b)
		[ -x "$TSUNAGI_B" ] || { echo "benches/l2tp-ipsec.sh: row $r needs TSUNAGI_B=/path/to/tsunagi" >&2; exit 1; } ;;
	*) echo "benches/l2tp-ipsec.sh: unknown row $r" >&2; exit 1 ;;
	esac
done

# The namespaces, their clean-up, the CPU accounting: benches/gateways.sh.
BENCH=l2tp-ipsec
# shellcheck source=benches/gateways.sh
. benches/gateways.sh

PSK=bench-psk-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')

# configs IPSEC: the server's and the client's config into $WORK/srv.toml
# and $WORK/cli.toml, with L2TP/IPsec when IPSEC is 1 (ESP in UDP 4500
# when FORCEENCAPS is true), plain L2TP when 0.
configs() {
	local ipsec=$1 srv_ipsec="" cli_ipsec="" srv_conn="" cli_conn="" secrets=""
	(
		umask 077
		printf 'bench * "benchpw" *\n' >"$WORK/chap-secrets"
		printf '%%any : PSK "%s"\n' "$PSK" >"$WORK/ipsec.secrets"
	)
	if [ "$ipsec" = 1 ]; then
		secrets="ipsec_secrets = \"$WORK/ipsec.secrets\""
		srv_ipsec='ipsec = "l2tp"'
		cli_ipsec='ipsec = "bench"'
		srv_conn=$(
			cat <<-EOF
				[ipsec.l2tp]
				left = "10.91.0.1"
				right = "%any"
				type = "transport"
				leftprotoport = "17/1701"
				rightprotoport = "17/%any"
				ike = "aes256-sha1-modp2048,aes128-sha1-modp2048,3des-sha1-modp2048,3des-sha1-modp1024"
				esp = "aes256-sha1,aes128-sha1,3des-sha1"
				auto = "add"
			EOF
		)
		cli_conn=$(
			cat <<-EOF
				[ipsec.bench]
				left = "%defaultroute"
				right = "10.91.0.1"
				type = "transport"
				leftprotoport = "17/1701"
				rightprotoport = "17/1701"
				authby = "secret"
				ike = "aes128-sha1-modp2048!"
				esp = "aes128-sha1!"
				keyingtries = 0
				forceencaps = ${FORCEENCAPS:-true}
				auto = "start"
			EOF
		)
	fi
	(
		umask 077
		cat >"$WORK/srv.toml" <<-EOF
			[daemon]
			control_socket = "$WORK/srv.sock"
			log_file = "$WORK/srv.log"
			secrets = "$WORK/chap-secrets"
			$secrets

			$srv_conn

			[server.lns]
			protocol = "l2tp"
			listen = "10.91.0.1"
			$srv_ipsec
			localip = "10.92.0.1"
			remoteip = "10.92.0.2"
			name = "lns"
			firewall = false
		EOF
		cat >"$WORK/cli.toml" <<-EOF
			[daemon]
			control_socket = "$WORK/cli.sock"
			log_file = "$WORK/cli.log"
			$secrets

			$cli_conn

			[link.bench]
			mode = "l2tp"
			lns = "10.91.0.1"
			$cli_ipsec
			user = "bench"
			password = "benchpw"
			routes = ["10.93.2.0/24"]
			persist = false
		EOF
	)
}


# ipsec_refused BINARY: `BINARY check` on both sides' L2TP/IPsec configs
# (check_refused, benches/gateways.sh).
ipsec_refused() {
	configs 1
	check_refused "$1" "$WORK/srv.toml" "$WORK/cli.toml"
}

# The client's IPsec SA: "PROPOSAL encap|raw in N out N", or nothing.
client_sa() {
	"$TS" -S "$WORK/cli.sock" status --json 2>/dev/null |
		jq -r '.ipsec[0].child_sas[0] // empty |
			"\(.proposal) \(if .udp_encap then "esp-in-udp" else "raw-esp" end) in \(.packets_in) out \(.packets_out)"'
}

# up_tsunagi IPSEC: the LNS on gateway B, the LAC on gateway A; with IPsec
# (IPSEC 1) the SA checked before the row is measured.
up_tsunagi() {
	local ipsec=$1 sa
	topo_up ts-bench || return 1
	rm -f "$WORK/srv.sock" "$WORK/cli.sock" "$WORK/srv.log" "$WORK/cli.log"
	configs "$ipsec"
	ip netns exec "$NS_GB" "$TS" -c "$WORK/srv.toml" run </dev/null >>"$WORK/srv.log" 2>&1 &
	PIDS+=($!)
	wait_until 10 test -S "$WORK/srv.sock" || { why="the server's control socket did not appear; log: $(tail -n 2 "$WORK/srv.log" | tr '\n' ' ')"; return 1; }
	ip netns exec "$NS_GA" "$TS" -c "$WORK/cli.toml" run </dev/null >>"$WORK/cli.log" 2>&1 &
	PIDS+=($!)
	wait_until 10 test -S "$WORK/cli.sock" || { why="the client's control socket did not appear; log: $(tail -n 2 "$WORK/cli.log" | tr '\n' ' ')"; return 1; }
	if ! wait_until 40 client_up; then
		why="the link is not up after 40 s (phase $(client_phase)); client log: $(tail -n 3 "$WORK/cli.log" | tr '\n' ' ')"
		return 1
	fi
	wait_until 10 ping_through || { why="link up, but no ping from host A to host B through it"; return 1; }
	if [ "$ipsec" = 1 ]; then
		sa=$(client_sa)
		case $sa in
		AES_CBC_128/HMAC_SHA1_96*) ;;
		*) why="the client's IPsec SA is not AES_CBC_128/HMAC_SHA1_96: '${sa:-none}'"; return 1 ;;
		esac
		if [ "$(awk '{print ($4 > 0 && $6 > 0)}' <<<"$sa")" != 1 ]; then
			why="no ESP both ways after the ping: $sa"
			return 1
		fi
	fi
	DAEMONS=("${PIDS[@]}")
}


# --- the rows ---------------------------------------------------------------

IPSEC_SKIPPED=""
for bin_row in l2tp-ipsec l2tp-ipsec-raw l2tp-ipsec-b; do
	case " $ROWS " in *" $bin_row "*) ;; *) continue ;; esac
	if [ $bin_row = l2tp-ipsec-b ]; then bin=$TS_B; else bin=$TS_A; fi
	if refusal=$(ipsec_refused "$bin"); then
		if [ $bin_row != l2tp-ipsec-b ]; then
			echo "$bin_row: tsunagi check refuses the L2TP/IPsec config: $refusal" >&2
			exit 1
		fi
		echo "$bin_row: skipped: this tsunagi has no L2TP/IPsec yet (tsunagi check: $refusal)"
		IPSEC_SKIPPED+="$bin_row "
		ROWS=$(tr ' ' '\n' <<<"$ROWS" | grep -vx "$bin_row" | tr '\n' ' ')
	fi
done

# row_up ROW / row_note ROW: this bench's rows for run_row (gateways.sh).
row_up() {
	case $1 in
	no-tunnel) up_no_tunnel ;;
	l2tp-ipsec) TS=$TS_A && FORCEENCAPS=true up_tsunagi 1 ;;
	l2tp-ipsec-raw) TS=$TS_A && FORCEENCAPS=false up_tsunagi 1 ;;
	l2tp-ipsec-b) TS=$TS_B && FORCEENCAPS=true up_tsunagi 1 ;;
	l2tp) TS=$TS_A && up_tsunagi 0 ;;
	boringtun) up_boringtun ;;
	*) return 1 ;;
	esac
}
row_note() {
	case $1 in
	l2tp-ipsec*) echo "$(drops); $(l2tp_counters); SA: $(client_sa)" ;;
	l2tp) echo "$(drops); $(l2tp_counters)" ;;
	boringtun) drops ;;
	esac
}

run_rounds
for r in $IPSEC_SKIPPED; do echo "$r: skipped (TSUNAGI_B's check refuses its L2TP/IPsec config)"; done
[ -z "$TSUNAGI_B" ] || echo "ratio l2tp-ipsec-b/l2tp-ipsec: $(ratio l2tp-ipsec-b l2tp-ipsec)"
case " $ROWS " in *" l2tp-ipsec-raw "*) echo "ratio l2tp-ipsec-raw/l2tp: $(ratio l2tp-ipsec-raw l2tp)" ;; esac
echo "ratio l2tp/no-tunnel: $(ratio l2tp no-tunnel)"
echo "ratio l2tp-ipsec/no-tunnel: $(ratio l2tp-ipsec no-tunnel)"
echo "ratio l2tp-ipsec/l2tp: $(ratio l2tp-ipsec l2tp)"
exit "$failed"
