#!/usr/bin/env bash
# PPP over SSH throughput: tsunagi's tunnel against the raw SSH pipe under it.
#
#   benches/ppp-over-ssh.sh [MB]        (root; default 1000 MB per transfer)
#
# Builds the release binaries, brings up seed 000's lab (`tsunagi-lab up
# --prefix bench<pid>`), then, ROUNDS times (default 3), side by side:
#   (1) moves MB megabytes over TCP from the HOME host to the Labs host
#       through the tunnel (tcp-send/tcp-serve --no-hash: one pseudo-random
#       block repeated, so the traffic generator costs next to nothing), and
#   (2) the same amount through the same ssh path as a one-way byte pipe:
#       from the HOME gateway `ssh ... <fifo` with the lab's second key,
#       whose authorized_keys line forces `cat >/dev/null` on the Labs
#       gateway; same client options, so the same cipher is negotiated.
# Each round gives its own ratio; the last line is the median of them:
#   ratio tunnel/raw-ssh: X
# The machine is shared and noisy: compare figures within one run only.
#
# CPU seconds per GB:
#   machine  - every CPU's busy time (user+nice+system+irq+softirq from
#              /proc/stat; not idle, iowait or steal) during the transfer:
#              everything the path costs, kernel networking included, if
#              nothing else runs;
#   daemons  - the two tsunagi daemons (utime+stime from /proc/PID/stat);
#   ssh/sshd - the ssh client and the sshd session process of the link.
# With BENCH_COMPARE_OFFLOAD=1 the tunnel is first measured once in a lab
# whose gateways run without tun offload (TSUNAGI_LAB_OFFLOAD=off: MRU 1500,
# one syscall and frame per 1500-byte packet).
# The lab is torn down on exit, also on failure or ^C.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$(readlink -f "$0")")/.."
MB=${1:-1000}
ROUNDS=${ROUNDS:-3}
BYTES=$((MB * 1000000))
[ "$(id -u)" = 0 ] || { echo "benches/ppp-over-ssh.sh: run as root" >&2; exit 1; }

cargo build --release -p tsunagi -p tsunagi-lab >&2
LAB=$PWD/target/release/tsunagi-lab
P=bench$$
D=/run/tsunagi-lab/$P
WORK=$(mktemp -d /tmp/tsunagi-bench.XXXXXX)
cleanup() {
	set +e
	[ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null
	"$LAB" down --prefix "$P" >&2
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The lab's copies: the gateway binary its daemons run, and tsunagi-lab for
# the TCP helpers inside the namespaces.
GW=$D/bin/tsunagi
HELPER=$D/bin/tsunagi-lab
TCK=$(getconf CLK_TCK)

# Busy clock ticks of the whole machine so far.
machine_ticks() {
	awk '$1 == "cpu" {print $2 + $3 + $4 + $7 + $8; exit}' /proc/stat
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

mbps() { awk -v b="$1" -v s="$2" 'BEGIN{printf "%.1f", b/1e6/s}'; }
per_gb() { awk -v t="$1" -v hz="$TCK" -v b="$BYTES" 'BEGIN{printf "%.2f", t/hz/(b/1e9)}'; }
now() { date +%s.%N; }
secs_since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.3f", b-a}'; }

# The link's processes: daemons, ssh client, sshd session ("pppossh@notty").
link_pids() {
	daemons="$(pgrep -f "^$GW -c $D/(home|labs)/tsunagi.toml" | tr '\n' ' ')"
	ssh_pid="$(pgrep -f "^ssh .* -i $D/home/id_ed25519 " | head -1)"
	sshd_pid=""
	local p
	for p in $(pgrep -f '^sshd: pppossh@notty'); do
		[ "$(ip netns identify "$p")" = "$P-labs-gw" ] && sshd_pid=$p
	done
}

# (1) Sets tun_secs, tun_mbps, tun_machine, tun_daemons, tun_ssh, tun_sshd.
measure_tunnel() {
	ip netns exec "$P-labs-host" "$HELPER" tcp-serve --no-hash --listen 0.0.0.0:5002 \
		--idle-timeout 120 >"$WORK/serve.out" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 50); do grep -q listening "$WORK/serve.out" && break; sleep 0.1; done
	link_pids
	local m0 d0 s0 S0 m1 d1 s1 S1
	m0=$(machine_ticks) d0=$(pid_ticks $daemons) s0=$(pid_ticks $ssh_pid) S0=$(pid_ticks $sshd_pid)
	ip netns exec "$P-home-host" "$HELPER" tcp-send --no-hash --idle-timeout 120 \
		192.168.253.10:5002 "$BYTES" >"$WORK/send.out"
	m1=$(machine_ticks) d1=$(pid_ticks $daemons) s1=$(pid_ticks $ssh_pid) S1=$(pid_ticks $sshd_pid)
	wait "$SERVE_PID"; SERVE_PID=
	tun_secs=$(sed -n 's/.*secs=\([0-9.]*\).*/\1/p' "$WORK/send.out")
	got=$(sed -n 's/^bytes=\([0-9]*\).*/\1/p' "$WORK/serve.out")
	[ "$got" = "$BYTES" ] || { echo "tunnel transfer: Labs host got ${got:-nothing} of $BYTES bytes" >&2; exit 1; }
	tun_mbps=$(mbps "$BYTES" "$tun_secs")
	tun_machine=$(per_gb $((m1 - m0)))
	tun_daemons=$(per_gb $((d1 - d0)))
	tun_ssh=$(per_gb $((s1 - s0)))
	tun_sshd=$(per_gb $((S1 - S0)))
}

# (2) Sets raw_secs, raw_mbps, raw_machine, raw_ssh.
SSH=(ssh -F /dev/null -T -i "$D/home/bench_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes
	-o "UserKnownHostsFile=$D/home/known_hosts" -o GlobalKnownHostsFile=/dev/null
	-o StrictHostKeyChecking=yes -o ServerAliveInterval=5 -o ConnectTimeout=5)
measure_raw() {
	rm -f "$WORK/fifo"
	mkfifo "$WORK/fifo"
	dd if=/dev/zero bs=1000000 count="$MB" status=none >"$WORK/fifo" &
	local dd_pid=$! m0 m1 t0
	m0=$(machine_ticks)
	t0=$(now)
	TIMEFORMAT='%U %S'
	{ time ip netns exec "$P-home-gw" "${SSH[@]}" pppossh@198.51.100.1 sink <"$WORK/fifo"; } 2>"$WORK/raw.time"
	raw_secs=$(secs_since "$t0")
	m1=$(machine_ticks)
	wait "$dd_pid"
	raw_mbps=$(mbps "$BYTES" "$raw_secs")
	raw_machine=$(per_gb $((m1 - m0)))
	raw_ssh=$(awk -v hz="$TCK" '{printf "%d", ($1 + $2) * hz}' "$WORK/raw.time")
	raw_ssh=$(per_gb "$raw_ssh")
}

if [ "${BENCH_COMPARE_OFFLOAD:-0}" = 1 ]; then
	TSUNAGI_LAB_OFFLOAD=off "$LAB" up --prefix "$P" >&2
	measure_tunnel
	off_line="tunnel without offload (TSUNAGI_LAB_OFFLOAD=off): $MB MB in ${tun_secs} s = ${tun_mbps} MB/s, machine ${tun_machine} CPU s/GB, daemons ${tun_daemons}"
	off_mbps=$tun_mbps
	"$LAB" down --prefix "$P" >&2
fi
"$LAB" up --prefix "$P" >&2
cipher=$(ip netns exec "$P-home-gw" "${SSH[@]}" -v pppossh@198.51.100.1 sink </dev/null 2>&1 |
	sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p' | head -1)

echo "ssh cipher: ${cipher:-unknown}; $MB MB per transfer; $(nproc) CPUs; CPU in s/GB"
[ -n "${off_line:-}" ] && echo "$off_line"
ratios=()
for r in $(seq "$ROUNDS"); do
	measure_tunnel
	measure_raw
	ratio=$(awk -v t="$tun_mbps" -v r="$raw_mbps" 'BEGIN{printf "%.2f", t/r}')
	ratios+=("$ratio")
	echo "round $r: tunnel ${tun_mbps} MB/s (machine ${tun_machine}, daemons ${tun_daemons}, ssh ${tun_ssh}, sshd ${tun_sshd})" \
		"| raw ssh ${raw_mbps} MB/s (machine ${raw_machine}, ssh ${raw_ssh}) | ratio ${ratio}"
	if [ -n "${off_mbps:-}" ] && [ "$r" = 1 ]; then
		awk -v t="$off_mbps" -v r="$raw_mbps" 'BEGIN{printf "ratio tunnel without offload/raw-ssh (round 1): %.2f\n", t/r}'
	fi
done
median=$(printf '%s\n' "${ratios[@]}" | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
echo "ratio tunnel/raw-ssh: $median"
