#!/usr/bin/env bash
# PPP over SSH throughput: tsunagi's tunnel against the raw SSH pipe under it.
#
#   benches/ppp-over-ssh.sh [MB]        (root; default 1000 MB each way measured)
#
# Builds the release binary, brings up seed 000's lab (`tsunagi lab up
# --prefix bench<pid>`), then moves MB megabytes
#   (1) over TCP from the HOME host to the Labs host through the tunnel
#       (tcp-send/tcp-serve --no-hash: one pseudo-random block repeated, so
#       the traffic generator costs next to nothing), and
#   (2) through the same ssh path as a one-way byte pipe: from the HOME
#       gateway `ssh ... <fifo` with the lab's second key, whose authorized_keys
#       line forces `cat >/dev/null` on the Labs gateway; same client options,
#       so the same cipher is negotiated.
# CPU: utime+stime (+ reaped children) of every process in the two gateway
# namespaces (daemons, ssh, sshd) from /proc before and after; the raw ssh
# client's own CPU comes from bash's `time`.
# Prints MB/s (10^6 bytes/s) for both, CPU seconds per GB, and ends with
#   ratio tunnel/raw-ssh: X
# With BENCH_COMPARE_OFFLOAD=1 the tunnel is first measured in a lab whose
# gateways run without tun offload (TSUNAGI_LAB_OFFLOAD=off: MRU 1500, one
# syscall and frame per 1500-byte packet), then the lab is rebuilt as usual,
# so both lines come from one run.
# The lab is torn down on exit, also on failure or ^C.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$(readlink -f "$0")")/.."
MB=${1:-1000}
BYTES=$((MB * 1000000))
[ "$(id -u)" = 0 ] || { echo "benches/ppp-over-ssh.sh: run as root" >&2; exit 1; }

cargo build --release -p tsunagi >&2
BIN=$PWD/target/release/tsunagi
P=bench$$
D=/run/tsunagi-lab/$P
WORK=$(mktemp -d /tmp/tsunagi-bench.XXXXXX)
cleanup() {
	set +e
	[ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null
	"$BIN" lab down --prefix "$P" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LB=$D/bin/tsunagi
TCK=$(getconf CLK_TCK)

# Sum of utime+stime+cutime+cstime (clock ticks) over the gateways' processes.
gw_ticks() {
	local ns pid total=0 t
	for ns in "$P-home-gw" "$P-labs-gw"; do
		for pid in $(ip netns pids "$ns"); do
			# fields after "comm)": 3=state ... 14=utime 15=stime 16=cutime 17=cstime
			t=$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{print $12+$13+$14+$15}') || t=0
			total=$((total + ${t:-0}))
		done
	done
	echo "$total"
}

# One line per gateway process: "netns/comm[pid] ticks" (for the breakdown).
gw_snapshot() {
	local ns pid
	for ns in "$P-home-gw" "$P-labs-gw"; do
		for pid in $(ip netns pids "$ns"); do
			sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null |
				awk -v id="${ns#"$P"-}/$(cat "/proc/$pid/comm" 2>/dev/null)[$pid]" '{print id, $12+$13+$14+$15}'
		done
	done | sort
}

mbps() { awk -v b="$1" -v s="$2" 'BEGIN{printf "%.1f", b/1e6/s}'; }
per_gb() { awk -v t="$1" -v hz="$TCK" -v b="$2" 'BEGIN{printf "%.2f", t/hz/(b/1e9)}'; }

# ---------------------------------------------------------------- (1) tunnel
# Sets tun_secs, tun_mbps, tun_cpu, and leaves cpu.before/cpu.after.
measure_tunnel() {
	ip netns exec "$P-labs-host" "$LB" lab tcp-serve --no-hash --listen 0.0.0.0:5002 \
		--idle-timeout 120 >"$WORK/serve.out" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 50); do grep -q listening "$WORK/serve.out" && break; sleep 0.1; done
	gw_snapshot >"$WORK/cpu.before"
	c0=$(gw_ticks)
	ip netns exec "$P-home-host" "$LB" lab tcp-send --no-hash --idle-timeout 120 \
		192.168.253.10:5002 "$BYTES" >"$WORK/send.out"
	c1=$(gw_ticks)
	gw_snapshot >"$WORK/cpu.after"
	wait "$SERVE_PID"; SERVE_PID=
	tun_secs=$(sed -n 's/.*secs=\([0-9.]*\).*/\1/p' "$WORK/send.out")
	got=$(sed -n 's/^bytes=\([0-9]*\).*/\1/p' "$WORK/serve.out")
	[ "$got" = "$BYTES" ] || { echo "tunnel transfer: Labs host got ${got:-nothing} of $BYTES bytes" >&2; exit 1; }
	tun_mbps=$(mbps "$BYTES" "$tun_secs")
	tun_cpu=$(per_gb $((c1 - c0)) "$BYTES")
}

if [ "${BENCH_COMPARE_OFFLOAD:-0}" = 1 ]; then
	TSUNAGI_LAB_OFFLOAD=off "$BIN" lab up --prefix "$P" >&2
	measure_tunnel
	off_secs=$tun_secs off_mbps=$tun_mbps off_cpu=$tun_cpu
	"$BIN" lab down --prefix "$P" >&2
fi
"$BIN" lab up --prefix "$P" >&2
measure_tunnel

# ------------------------------------------------------------- (2) raw ssh
SSH=(ssh -F /dev/null -T -i "$D/home/bench_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
	-o "UserKnownHostsFile=$D/home/known_hosts" -o GlobalKnownHostsFile=/dev/null
	-o StrictHostKeyChecking=yes -o ServerAliveInterval=5 -o ConnectTimeout=5)
cipher=$(ip netns exec "$P-home-gw" "${SSH[@]}" -v pppossh@198.51.100.1 sink </dev/null 2>&1 |
	sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' | head -1)
mkfifo "$WORK/fifo"
dd if=/dev/zero bs=1000000 count="$MB" status=none >"$WORK/fifo" &
DD_PID=$!
c0=$(gw_ticks)
TIMEFORMAT='%R %U %S'
{ time ip netns exec "$P-home-gw" "${SSH[@]}" pppossh@198.51.100.1 sink <"$WORK/fifo" ; } 2>"$WORK/raw.time"
c1=$(gw_ticks)
wait "$DD_PID"
read -r raw_secs raw_user raw_sys <"$WORK/raw.time"
raw_mbps=$(mbps "$BYTES" "$raw_secs")
client_ticks=$(awk -v u="$raw_user" -v s="$raw_sys" -v hz="$TCK" 'BEGIN{printf "%d", (u+s)*hz}')
raw_cpu=$(per_gb $((c1 - c0 + client_ticks)) "$BYTES")

echo "ssh cipher: ${cipher:-unknown}"
if [ -n "${off_mbps:-}" ]; then
	echo "tunnel without offload (TSUNAGI_LAB_OFFLOAD=off):                 $MB MB in ${off_secs} s = ${off_mbps} MB/s, ${off_cpu} CPU s/GB (daemons + ssh + sshd)"
fi
echo "tunnel (TCP HOME host -> Labs host through tsunagi PPP over ssh): $MB MB in ${tun_secs} s = ${tun_mbps} MB/s, ${tun_cpu} CPU s/GB (daemons + ssh + sshd)"
echo "raw ssh pipe (HOME gw -> cat >/dev/null on Labs gw):              $MB MB in ${raw_secs} s = ${raw_mbps} MB/s, ${raw_cpu} CPU s/GB (ssh + sshd)"
echo "tunnel CPU by process (s per GB):"
join -a 2 "$WORK/cpu.before" "$WORK/cpu.after" | awk -v hz="$TCK" -v b="$BYTES" \
	'{d = (NF == 3 ? $3 - $2 : $2); if (d > 0) printf "  %-40s %6.2f\n", $1, d/hz/(b/1e9)}'
if [ -n "${off_mbps:-}" ]; then
	awk -v t="$off_mbps" -v r="$raw_mbps" 'BEGIN{printf "ratio tunnel without offload/raw-ssh: %.2f\n", t/r}'
fi
awk -v t="$tun_mbps" -v r="$raw_mbps" 'BEGIN{printf "ratio tunnel/raw-ssh: %.2f\n", t/r}'
