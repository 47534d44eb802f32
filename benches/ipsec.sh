#!/usr/bin/env bash
# IPsec throughput: tsunagi's ESP tunnel mode between two gateways, against
# no tunnel, strongSwan with kernel-libipsec (userland ESP) and boringtun
# (WireGuard in userland).
#
#   benches/ipsec.sh [SECS]     (root; SECS per iperf3 run, default 10)
#
# Four namespaces, host A - gateway A - gateway B - host B, joined by veth
# pairs (host A 10.93.1.2 on LAN A 10.93.1.0/24, the gateways' WAN
# 10.91.0.0/24 with gateway A at .2 and gateway B at .1, host B 10.93.2.2
# on LAN B 10.93.2.0/24). The rows differ only in what runs on the
# gateways:
#   no-tunnel     plain routing over the WAN (gateway A masquerades what
#                 leaves through wan0, as in the other benches);
#   esp           tsunagi: [ipsec.bench] on both gateways, IKEv1 Main Mode
#                 with a pre-shared key, ike = "aes128-sha256-modp2048!",
#                 esp = "aes128gcm16!", type = "tunnel" between the two LANs
#                 (leftsubnet/rightsubnet), auto = "start" on gateway A and
#                 "add" on gateway B, the PSK in an ipsec.secrets file (0600),
#                 forceencaps = true (ESP in UDP 4500, as libipsec sends it);
#   esp-raw       the same with forceencaps = false: raw ESP (protocol 50);
#   libipsec      strongSwan's charon with the kernel-libipsec plugin (ESP
#                 in userland through its TUN ipsec0; it always wraps ESP in
#                 UDP 4500) on both gateways, configured through swanctl with
#                 the same proposals: IKEv1 (version = 1), aes128-sha256-
#                 modp2048, ESP aes128gcm16, the same LANs as traffic
#                 selectors; gateway A initiates;
#   boringtun     boringtun-cli on both gateways, configured with `wg`, LAN B
#                 routed into it on gateway A (which masquerades into it).
# The IPsec rows carry the LANs' own addresses (their selectors are the
# LANs): no NAT on the way. Every row gets a fresh set of namespaces.
#
# A tsunagi that does not know [ipsec] yet: before the rounds, `tsunagi
# check` reads the esp row's configs; when it refuses them, the row is left
# out with a line that says so ("esp: skipped: ..."), its ratios are n/a,
# and the other rows run as usual (the exit status is not affected by it).
#
# Each of ROUNDS rounds (default 3) runs every row once, one after the
# other: iperf3 TCP, one stream, host A -> host B for SECS seconds, the
# receiver's rate. Printed: a table per round, the median of each row over
# the rounds with its CPU seconds per GB, the ratios of the esp median to
# no-tunnel and to boringtun, and as the last line
#   ratio esp/libipsec: X
# (medians; the issue's target is X >= 5).
#
# CPU seconds per GB received (benches/gateways.sh):
#   machine  - every CPU's busy time during the iperf3 run from /proc/stat
#              (user+system+irq+softirq): everything the path costs;
#   daemons  - the two gateways' daemons (tsunagi, charon or boringtun-cli),
#              utime+stime of all their threads.
# Under the table, for the tunnel rows: packets dropped on the way (TX drops
# of the tunnels' TUNs, raw socket drops, UDP receive buffer errors).
# The machine is shared and noisy: compare figures within one run only.
#
# Needs iperf3, wireguard-tools, nftables, jq, and strongSwan's charon,
# swanctl, kernel-libipsec, gcm and openssl plugins (strongswan-charon,
# strongswan-swanctl, libcharon-extra-plugins, libstrongswan-standard-plugins): installed with apt-get when missing; and
# boringtun-cli 0.7.1 (see benches/gateways.sh: BORINGTUN=/path, else on
# PATH, else `cargo install` into /var/cache/tsunagi-bench/boringtun).
# ROWS="esp libipsec" runs only those rows. TSUNAGI_B=/path/to/tsunagi adds
# the row esp-b (that binary on both gateways) and its ratio to esp. The
# The esp row's two tsunagis have forceencaps = true: ESP in UDP 4500, the
# way libipsec always sends it (it fakes NAT detection), so the last line
# compares the same proposal on the same wire format. The row esp-raw is the
# same tunnel with raw ESP (IP protocol 50, what tsunagi sends when there is
# no NAT): the kernel has no GSO or GRO for protocol 50 without its own
# IPsec, so every ESP packet crosses the stack alone; its ratio to libipsec
# is printed before the last line.
# AUTOGROUP_NICE=N: see benches/l2tp.sh.
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
	ROWS=${ROWS:-no-tunnel esp esp-raw esp-b libipsec boringtun}
else
	ROWS=${ROWS:-no-tunnel esp esp-raw libipsec boringtun}
fi
[ "$(id -u)" = 0 ] || { echo "benches/ipsec.sh: run as root" >&2; exit 1; }
for r in $ROWS; do
	case $r in
	no-tunnel | esp | esp-raw | libipsec | boringtun) ;;
	esp-b)
		[ -x "$TSUNAGI_B" ] || { echo "benches/ipsec.sh: row $r needs TSUNAGI_B=/path/to/tsunagi" >&2; exit 1; } ;;
	*) echo "benches/ipsec.sh: unknown row $r" >&2; exit 1 ;;
	esac
done

# strongSwan, and what gateways.sh needs, with one apt-get update.
CHARON=/usr/lib/ipsec/charon
SW_PLUGINS=/usr/lib/ipsec/plugins/libstrongswan
missing=()
[ -x "$CHARON" ] || missing+=(strongswan-charon)
command -v swanctl >/dev/null || missing+=(strongswan-swanctl)
[ -e "$SW_PLUGINS-kernel-libipsec.so" ] || missing+=(libcharon-extra-plugins)
# AES-GCM (gcm) and the openssl plugin: not among strongswan-charon's
# dependencies, and without them charon cannot install an aes128gcm16 SA.
[ -e "$SW_PLUGINS-gcm.so" ] && [ -e "$SW_PLUGINS-openssl.so" ] || missing+=(libstrongswan-standard-plugins)
if [ ${#missing[@]} -gt 0 ]; then
	for pair in iperf3:iperf3 wg:wireguard-tools nft:nftables jq:jq ping:iputils-ping ss:iproute2; do
		command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
	done
	echo "installing ${missing[*]}" >&2
	apt-get update >&2
	# Debian's packages would start charon as a service: nothing may run
	# outside the namespaces (policy-rc.d says no to every start).
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		POLICY_RC_MADE=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ [ -z "${POLICY_RC_MADE:-}" ] || rm -f /usr/sbin/policy-rc.d; exit 1; }
	[ -z "${POLICY_RC_MADE:-}" ] || rm -f /usr/sbin/policy-rc.d
fi

# The namespaces, their clean-up, the CPU accounting: benches/gateways.sh.
BENCH=ipsec
# shellcheck source=benches/gateways.sh
. benches/gateways.sh

PSK=bench-psk-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
GW_A=10.91.0.2 GW_B=10.91.0.1
LAN_A=10.93.1.0/24 LAN_B=10.93.2.0/24

# --- tsunagi --------------------------------------------------------------

# esp_config SIDE: tsunagi's config for gateway SIDE (a or b) into
# $WORK/esp-SIDE.toml, the secrets beside it.
esp_config() {
	local side=$1 left right lsub rsub auto
	if [ "$side" = a ]; then
		left=$GW_A right=$GW_B lsub=$LAN_A rsub=$LAN_B auto=start
	else
		left=$GW_B right=$GW_A lsub=$LAN_B rsub=$LAN_A auto=add
	fi
	(
		umask 077
		printf '%s %s : PSK "%s"\n' "$GW_A" "$GW_B" "$PSK" >"$WORK/ipsec.secrets"
		cat >"$WORK/esp-$side.toml" <<-EOF
			[daemon]
			control_socket = "$WORK/esp-$side.sock"
			log_file = "$WORK/esp-$side.log"

			[ipsec.bench]
			left = "$left"
			right = "$right"
			secrets = "$WORK/ipsec.secrets"
			ike = "aes128-sha256-modp2048!"
			esp = "aes128gcm16!"
			type = "tunnel"
			leftsubnet = "$lsub"
			rightsubnet = "$rsub"
			auto = "$auto"
			keyingtries = 0
			leftfirewall = false
			forceencaps = ${ESP_FORCEENCAPS:-false}
			tun = "ts-esp"
		EOF
	)
}

# esp_refused BINARY: `BINARY check` on both sides' configs
# (check_refused, benches/gateways.sh).
esp_refused() {
	esp_config a
	esp_config b
	check_refused "$1" "$WORK/esp-a.toml" "$WORK/esp-b.toml"
}

up_esp() {
	local side ns
	topo_up none || return 1
	rm -f "$WORK"/esp-?.sock "$WORK"/esp-?.log
	# The responder first, so that the initiator's first Main Mode message
	# finds it listening.
	for side in b a; do
		esp_config "$side"
		if [ $side = a ]; then ns=$NS_GA; else ns=$NS_GB; fi
		ip netns exec "$ns" "$TS" -c "$WORK/esp-$side.toml" run </dev/null >>"$WORK/esp-$side.log" 2>&1 &
		PIDS+=($!)
		wait_until 10 test -S "$WORK/esp-$side.sock" ||
			{ why="tsunagi on gateway ${side^^}: no control socket; log: $(tail -n 2 "$WORK/esp-$side.log" | tr '\n' ' ')"; return 1; }
	done
	wait_until 30 ping_through ||
		{ why="no ping from host A to host B through ESP after 30 s; initiator's log: $(tail -n 3 "$WORK/esp-a.log" | tr '\n' ' ')"; return 1; }
	DAEMONS=("${PIDS[@]}")
}

# --- strongSwan with kernel-libipsec ----------------------------------------

# sw_conf DIR: strongswan.conf of one charon, its vici socket and log in DIR.
# kernel-libipsec is loaded before kernel-netlink, so it is the IPsec
# backend (ESP in userland through TUN ipsec0) while kernel-netlink still
# does addresses and routes. charon's own packets carry fwmark 0x4c and skip
# table 220 (../shared/lab/peers/README.md: needed for host-to-host
# selectors; harmless for these).
sw_conf() {
	local dir=$1
	mkdir -p "$dir/run"
	cat >"$dir/strongswan.conf" <<-EOF
		charon {
			load_modular = no
			load = random nonce openssl aes sha1 sha2 hmac gcm gmp kdf pubkey kernel-libipsec kernel-netlink socket-default vici
			retransmit_tries = 3
			filelog {
				charonlog {
					path = $dir/charon.log
					time_format = %T
					default = 1
					ike = 1
					flush_line = yes
				}
			}
			plugins {
				socket-default {
					fwmark = 0x4c
				}
				kernel-netlink {
					fwmark = !0x4c
				}
				vici {
					socket = unix://$dir/charon.vici
				}
			}
		}
	EOF
}

# sw_swanctl DIR LOCAL REMOTE LOCAL_TS REMOTE_TS
sw_swanctl() {
	cat >"$1/swanctl.conf" <<-EOF
		connections {
			bench {
				version = 1
				aggressive = no
				local_addrs = $2
				remote_addrs = $3
				proposals = aes128-sha256-modp2048
				dpd_delay = 0
				local {
					auth = psk
					id = $2
				}
				remote {
					auth = psk
					id = $3
				}
				children {
					bench {
						mode = tunnel
						local_ts = $4
						remote_ts = $5
						esp_proposals = aes128gcm16
						start_action = none
					}
				}
			}
		}
		secrets {
			ike-bench {
				id-a = $GW_A
				id-b = $GW_B
				secret = "$PSK"
			}
		}
	EOF
	chmod 600 "$1/swanctl.conf"
}

# sw SIDE COMMAND ARGS...: swanctl against that side's charon.
sw() { local dir=$WORK/sw-$1 c=$2; shift 2; swanctl "$c" --uri "unix://$dir/charon.vici" "$@"; }

up_libipsec() {
	local side ns dir
	topo_up none || return 1
	for side in b a; do
		dir=$WORK/sw-$side
		rm -rf "$dir"
		sw_conf "$dir"
		if [ $side = a ]; then
			ns=$NS_GA
			sw_swanctl "$dir" "$GW_A" "$GW_B" "$LAN_A" "$LAN_B"
		else
			ns=$NS_GB
			sw_swanctl "$dir" "$GW_B" "$GW_A" "$LAN_B" "$LAN_A"
		fi
		# charon writes /run/charon.pid: each one gets a /run of its own, in
		# the mount namespace `ip netns exec` makes. ip netns exec and sh
		# exec in place: $! is charon's pid.
		ip netns exec "$ns" sh -c "mount --bind '$dir/run' /run && STRONGSWAN_CONF='$dir/strongswan.conf' exec $CHARON" \
			</dev/null >"$dir/charon.out" 2>&1 &
		PIDS+=($!)
		wait_until 10 test -S "$dir/charon.vici" ||
			{ why="charon on gateway ${side^^} did not open its vici socket: $(tail -n 2 "$dir/charon.out" | tr '\n' ' ')"; return 1; }
		sw $side --load-all --file "$dir/swanctl.conf" >"$dir/load.out" 2>&1 ||
			{ why="swanctl --load-all on gateway ${side^^}: $(tail -n 1 "$dir/load.out")"; return 1; }
	done
	sw a --initiate --child bench --timeout 20 >"$WORK/sw-a/initiate.out" 2>&1 ||
		{ why="strongSwan: initiating failed: $(tail -n 2 "$WORK/sw-a/initiate.out" | tr '\n' ' ')"; return 1; }
	wait_until 15 ping_through || { why="CHILD_SA up, but no ping from host A to host B through it"; return 1; }
	DAEMONS=("${PIDS[@]}")
}

# The IKE SA's and the CHILD_SA's algorithms and the encapsulation on
# gateway A, as charon lists them.
libipsec_sa() {
	sw a --list-sas 2>/dev/null |
		grep -Eo 'IKEv1 SPIs|[A-Z0-9_-]+/[A-Z0-9_/-]+MODP_[0-9]+|INSTALLED, [A-Za-z-]+, ESP[^ ]*' | tr '\n' ' '
}

# --- the rows ---------------------------------------------------------------

ESP_SKIPPED=""
for bin_row in esp esp-raw esp-b; do
	case " $ROWS " in *" $bin_row "*) ;; *) continue ;; esac
	if [ $bin_row = esp-b ]; then bin=$TS_B; else bin=$TS_A; fi
	if refusal=$(esp_refused "$bin"); then
		echo "$bin_row: skipped: this tsunagi has no [ipsec] yet (tsunagi check: $refusal)"
		ESP_SKIPPED+="$bin_row "
		ROWS=$(tr ' ' '\n' <<<"$ROWS" | grep -vx "$bin_row" | tr '\n' ' ')
	fi
done

# row_up ROW / row_note ROW: this bench's rows for run_row (gateways.sh).
row_up() {
	case $1 in
	no-tunnel) up_no_tunnel ;;
	esp) TS=$TS_A && ESP_FORCEENCAPS=true up_esp ;;
	esp-raw) TS=$TS_A && ESP_FORCEENCAPS=false up_esp ;;
	esp-b) TS=$TS_B && ESP_FORCEENCAPS=true up_esp ;;
	libipsec) up_libipsec ;;
	boringtun) up_boringtun ;;
	*) return 1 ;;
	esac
}
row_note() {
	case $1 in
	esp* | boringtun) drops ;;
	libipsec) echo "$(drops); SA: $(libipsec_sa)" ;;
	esac
}

run_rounds
for r in $ESP_SKIPPED; do echo "$r: skipped (tsunagi check refuses its [ipsec] config)"; done
[ -z "$TSUNAGI_B" ] || echo "ratio esp-b/esp: $(ratio esp-b esp)"
echo "ratio libipsec/no-tunnel: $(ratio libipsec no-tunnel)"
echo "ratio esp/no-tunnel: $(ratio esp no-tunnel)"
echo "ratio esp/boringtun: $(ratio esp boringtun)"
case " $ROWS " in *" esp-raw "*) echo "ratio esp-raw/libipsec: $(ratio esp-raw libipsec)" ;; esac
echo "ratio esp/libipsec: $(ratio esp libipsec)"
exit "$failed"
