#!/bin/bash
# The interop tier: tsunagi against pppd 2.4.9 in a Debian 12 VM, PPP over SSH both ways,
# against pptpd / pptp-linux (PPTP, scenarios_pptp.sh), xl2tpd (L2TP, scenarios_l2tp.sh),
# strongSwan (IPsec, scenarios_ipsec.sh: on the host in namespaces, and in the VM) and
# strongSwan + xl2tpd as seed 002's L2TP/IPsec client and as a server (scenarios_l2tp_ipsec.sh).
#
#   interop/run.sh                  build (release) + image + one boot + every scenario
#   INTEROP_ONLY="s1 s4" interop/run.sh       only the scenarios whose names start so
#   INTEROP_ONLY=selfcheck interop/run.sh     only the harness self-checks (the VM's peers
#                                             against each other; no tsunagi build)
#   TSUNAGI_BIN=/path/tsunagi interop/run.sh  use this binary instead of building one
#   INTEROP_KEEP=1                  keep $INTEROP_RUN (logs) after the run
#
# Prints one line per scenario, "PASS name", "FAIL name: why" or "SKIPPED: name: why",
# then "N skipped" when any were, and last, alone on its line, "N passed, N failed".
# Exit status: 1 when a scenario failed, else 0 (also when all were skipped: the
# SKIPPED lines say why). With INTEROP_REQUIRED=1 (scripts/test.sh, CI) a
# skipped scenario fails the run too: there the tier must run.
#
# Topology (all namespaces carry this run's pid in their names):
#
#   $NS_LAN                 $NS_GW (tsunagi, sshd)              VM (pppd, sshd)        VM netns lan2
#   eth0 192.168.1.10 ----- lan0 192.168.1.1                    veth 192.168.2.1 ----- 192.168.2.10
#                           $TAP 10.200.0.1 ---- virtio ----    eth0 10.200.0.2
#                           tun0 192.168.1.1 === PPP over ssh === ppp0 192.168.2.1
#
# The addresses are seed 001's: the dialled pppd runs `pppd notty noauth
# 192.168.2.1:192.168.1.1` (saturn's LAN 192.168.2.0/24), tsunagi is venus (192.168.1.0/24).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
# shellcheck source=vm.sh
. "$HERE/vm.sh"

SCENARIOS=(
  s1-tsunagi-dials-pppd
  s2-pppd-dials-tsunagi
  s3-echo-tsunagi-dials
  s3-echo-pppd-dials
  s4-asyncmap0-mtu1410
  s4-default-accm
  s4-accm-all-escaped
  s5-ident-and-magic
)
# Harness self-checks: the VM's reference peers against each other, without tsunagi, so
# that a scenario's failure can be told apart from a broken VM side. Each is a function
# of the same name (dashes as underscores), run before the scenarios and reported alike.
SELFCHECKS=()
# Run after every scenario and self-check (with its name), before its result is
# reported: fetch the VM side's logs into the scenario's directory ($INTEROP_RUN/NAME),
# stop what it started in the VM.
AFTER_SCENARIO=()
# Authentication and CCP scenarios (issue 4) add themselves to SCENARIOS.
# shellcheck source=scenarios_auth.sh
. "$HERE/scenarios_auth.sh"
# PPTP against pptpd and pptp-linux: scenarios p1-p3 and the selfcheck-pptp self-check.
# shellcheck source=scenarios_pptp.sh
. "$HERE/scenarios_pptp.sh"
# L2TP against xl2tpd (LAC and LNS): scenarios l1-l3 and the selfcheck-l2tp self-check.
# shellcheck source=scenarios_l2tp.sh
. "$HERE/scenarios_l2tp.sh"
# IPsec against strongSwan (kernel-libipsec on the host, the kernel's ESP in the VM):
# the self-checks selfcheck-ipsec-nat and selfcheck-ipsec-vm; scenarios i1-i5, v1 and v2
# (on unless IPSEC_SCENARIOS_ON=0, scenarios_ipsec.sh).
# shellcheck source=scenarios_ipsec.sh
. "$HERE/scenarios_ipsec.sh"
# L2TP/IPsec (seed 002's client: strongSwan + xl2tpd + pppd in the VM) against tsunagi's
# L2TP/IPsec server and client: the self-check selfcheck-l2tp-ipsec-vm; scenarios x1 and x2
# (on unless L2TP_IPSEC_SCENARIOS_ON=0, scenarios_l2tp_ipsec.sh).
# shellcheck source=scenarios_l2tp_ipsec.sh
. "$HERE/scenarios_l2tp_ipsec.sh"
PASS=0; FAIL=0; SKIP=0
T_START=$(date +%s)
ACCT=${INTEROP_ACCOUNT:-tsunagi-iop}   # the unprivileged PPP-over-SSH login (seed 001's "vpn")
LAN_HOST=192.168.1.10
LAN2_HOST=192.168.2.10
TS_ADDR=192.168.1.1
PPPD_ADDR=192.168.2.1

selected() {
  [ -z "${INTEROP_ONLY:-}" ] && return 0
  local w; for w in $INTEROP_ONLY; do [[ $1 == "$w"* ]] && return 0; done; return 1
}
summary() {
  [ "$SKIP" -gt 0 ] && echo "$SKIP skipped"
  echo "timing: $(cat "$INTEROP_RUN/timing" 2>/dev/null | tr '\n' ' ')total $(( $(date +%s) - T_START )) s" >&2
  echo "$PASS passed, $FAIL failed"
}
skip_all() {
  local s
  for s in "${SELFCHECKS[@]}" "${SCENARIOS[@]}"; do selected "$s" && { echo "SKIPPED: $s: $1"; SKIP=$((SKIP + 1)); }; done
  summary
  [ "${INTEROP_REQUIRED:-0}" = 1 ] && { echo "INTEROP_REQUIRED=1: nothing may be skipped" >&2; exit 1; }
  exit 0
}
# Our own code not compiling is a failure, not a reason to skip.
fail_all() {
  local s
  for s in "${SELFCHECKS[@]}" "${SCENARIOS[@]}"; do selected "$s" && { echo "FAIL $s: $1"; FAIL=$((FAIL + 1)); }; done
  summary
  exit 1
}
timing() { echo "$1=$2s" >> "$INTEROP_RUN/timing"; }

[ "$(id -u)" = 0 ] || skip_all "not root (the harness needs namespaces, a tap device and an account)"
mkdir -p "$INTEROP_RUN"; chmod 755 "$INTEROP_RUN"; : > "$INTEROP_RUN/timing"

# ------------------------------------------------------------------ teardown
# Everything this run starts or creates is written down first and removed here, on
# every exit path (a failed scenario, a failed setup, Ctrl-C).
teardown() {
  set +e
  local pid
  if [ -f "$INTEROP_RUN/pids" ]; then
    while read -r pid _; do
      kill -CONT "$pid" 2>/dev/null; kill "$pid" 2>/dev/null
    done < "$INTEROP_RUN/pids"
    sleep 0.5
    while read -r pid _; do kill -9 "$pid" 2>/dev/null; done < "$INTEROP_RUN/pids"
  fi
  vm_down
  [ -f "$INTEROP_RUN/user-created" ] && userdel "$ACCT" 2>/dev/null
  if [ "${INTEROP_KEEP:-0}" = 1 ] || [ "$FAIL" -gt 0 ]; then
    echo "logs kept in $INTEROP_RUN" >&2
  else
    rm -rf "$INTEROP_RUN"
  fi
}
trap teardown EXIT
trap 'exit 130' INT TERM

# ------------------------------------------------------------------ binaries before the VM
# The emulated VM takes both cores while it runs: compile first. Self-checks alone need
# no tsunagi: then nothing is built and $BIN does not exist.
needs_tsunagi() {
  local s; for s in "${SCENARIOS[@]}"; do selected "$s" && return 0; done; return 1
}
t=$(date +%s)
if ! needs_tsunagi; then
  ilog "only self-checks selected: no tsunagi build"
  install -d -m 755 "$INTEROP_RUN/bin" "$INTEROP_RUN/ssh"
  BIN=$INTEROP_RUN/bin/tsunagi
elif [ -z "${TSUNAGI_BIN:-}" ]; then
  ilog "cargo build --release -p tsunagi"
  (cd "$ROOT" && cargo build --release -q -p tsunagi) || fail_all "cargo build --release -p tsunagi failed"
  TSUNAGI_BIN=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/release/tsunagi
fi
if needs_tsunagi; then
  [ -x "$TSUNAGI_BIN" ] || skip_all "no tsunagi binary at $TSUNAGI_BIN"
  # A copy under /run (root-owned, 0755 all the way up), so the unprivileged account can
  # run it from sshd's command= and sshd's StrictModes accepts the keys beside it.
  install -d -m 755 "$INTEROP_RUN/bin" "$INTEROP_RUN/ssh"
  install -m 755 "$TSUNAGI_BIN" "$INTEROP_RUN/bin/tsunagi"
  BIN=$INTEROP_RUN/bin/tsunagi
fi
timing build-binaries $(( $(date +%s) - t ))

t=$(date +%s)
bash "$HERE/build.sh" >&2 || skip_all "VM image build failed (see $INTEROP_CACHE/*.log)"
timing image $(( $(date +%s) - t ))

t=$(date +%s)
reason=$(vm_up 2>&1 >/dev/null) || skip_all "VM did not boot: ${reason:-unknown}"
timing boot $(( $(date +%s) - t ))

# ------------------------------------------------------------------ host and guest setup
record_pid() { echo "$1 $2" >> "$INTEROP_RUN/pids"; }
# bg_in_gw LOG CMD...: start CMD in $NS_GW in its own session; prints its pid.
# (setsid and ip netns exec both exec in place, so $! is CMD's pid.)
bg_in_gw() {
  local log=$1; shift
  setsid ip netns exec "$NS_GW" "$@" </dev/null >"$log" 2>&1 &
  record_pid $! "$1"
  echo $!
}
wait_for() { # wait_for SECONDS CMD...: poll CMD every 0.5 s
  local end=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -ge "$end" ] && return 1; sleep 0.5; done
}

setup_host() {
  # The LAN behind tsunagi: a host whose gateway is tsunagi's namespace.
  echo "$NS_LAN" >> "$INTEROP_RUN/netns"
  ip netns add "$NS_LAN" &&
  ip -n "$NS_LAN" link set lo up &&
  ip -n "$NS_GW" link add lan0 type veth peer name eth0 netns "$NS_LAN" &&
  ip -n "$NS_GW" addr add "$TS_ADDR/24" dev lan0 && ip -n "$NS_GW" link set lan0 up &&
  ip -n "$NS_LAN" addr add "$LAN_HOST/24" dev eth0 && ip -n "$NS_LAN" link set eth0 up &&
  ip -n "$NS_LAN" route add default via "$TS_ADDR" &&
  ip netns exec "$NS_GW" sysctl -qw net.ipv4.ip_forward=1 || return 1

  # The unprivileged PPP-over-SSH account (seed 001: key only, from=, command=).
  if ! id "$ACCT" >/dev/null 2>&1; then
    touch "$INTEROP_RUN/user-created"
    useradd --system --no-create-home --home-dir /nonexistent --shell /bin/sh --password '*' \
      --comment "tsunagi interop PPP over SSH" "$ACCT" || return 1
  fi
  local k=$INTEROP_RUN/ssh
  rm -f "$k"/host_ed25519* "$k"/vm_client*
  ssh-keygen -q -t ed25519 -N '' -C tsunagi-interop-host -f "$k/host_ed25519" &&
  ssh-keygen -q -t ed25519 -N '' -C root@vm -f "$k/vm_client" || return 1
  printf 'restrict,from="%s",command="%s -S %s direct vm" %s\n' \
    "$VM_IP" "$BIN" "$INTEROP_RUN/direct.sock" "$(cat "$k/vm_client.pub")" > "$k/authorized_keys"
  chmod 644 "$k/authorized_keys"
  cat > "$k/sshd_config" <<EOF
ListenAddress $HOST_IP
Port 22
HostKey $k/host_ed25519
PidFile none
AuthorizedKeysFile $k/authorized_keys
AllowUsers $ACCT
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes yes
PrintMotd no
X11Forwarding no
AllowTcpForwarding no
LogLevel VERBOSE
EOF
  mkdir -p /run/sshd; chmod 755 /run/sshd
  /usr/sbin/sshd -t -f "$k/sshd_config" || return 1
  bg_in_gw "$INTEROP_RUN/sshd.log" /usr/sbin/sshd -D -e -f "$k/sshd_config" >/dev/null
  wait_for 10 sh -c "ip netns exec '$NS_GW' ss -Hlnt 'sport = :22' | grep -q ." || return 1
}

setup_guest() {
  # pppd's ssh (scenarios where pppd dials) trusts exactly this run's host key.
  vm_exec "umask 077; cat > /root/.ssh/tsunagi_client" < "$INTEROP_RUN/ssh/vm_client" &&
  echo "$HOST_IP $(cut -d' ' -f1,2 "$INTEROP_RUN/ssh/host_ed25519.pub")" |
    vm_exec 'cat > /root/.ssh/tsunagi_known_hosts' &&
  # The LAN behind pppd: netns lan2 with 192.168.2.10, gateway 192.168.2.1 (the VM).
  vm_exec "set -e
    modprobe -a ppp_generic ppp_async ppp_mppe
    ip netns add lan2; ip -n lan2 link set lo up
    ip link add lan2v type veth peer name eth0 netns lan2
    ip addr add $PPPD_ADDR/24 dev lan2v; ip link set lan2v up
    ip -n lan2 addr add $LAN2_HOST/24 dev eth0; ip -n lan2 link set eth0 up
    ip -n lan2 route add default via $PPPD_ADDR
    sysctl -qw net.ipv4.ip_forward=1
    pppd --version 2>&1 | grep -q '2.4.9'" </dev/null
}

t=$(date +%s)
setup_host || skip_all "host setup failed (namespaces / account / sshd)"
setup_guest || skip_all "guest setup failed (modprobe ppp_async ppp_mppe, lan2, pppd 2.4.9)"
head -c $((1024 * 1024)) /dev/urandom > "$INTEROP_RUN/data-up.bin"
timing setup $(( $(date +%s) - t ))

# ------------------------------------------------------------------ scenario helpers
# Each scenario writes into $SD (its own directory); `why` records the first failure.
WHY=""
why() { [ -z "$WHY" ] && WHY=$*; echo "    $*" >&2; return 1; }
# skip REASON: the scenario cannot run yet (for example tsunagi's `check` refuses the
# config it needs); it returns right after, and is reported "SKIPPED: name: REASON".
# Only for what is missing before anything runs: a failure after that is a FAIL.
SKIPWHY=""
skip() { SKIPWHY=$*; echo "    skipped: $*" >&2; }

# ts_start NAME: start a tsunagi daemon in $NS_GW with the config on stdin.
# Its control socket is $TS_SOCK: per scenario for dial links, and for direct links the
# one path authorized_keys' command= names.
TS_PID=""
TS_SOCK=""
ts_start() {
  # 0600: the auth scenarios write tsunagi's `password` in it, and tsunagi refuses
  # to start from a config holding a password that others can read.
  ( umask 077; cat > "$SD/tsunagi.toml" )
  rm -f "$TS_SOCK"
  # debug: pppd-style "sent [...]"/"rcvd [...]" lines, which the checks compare
  TS_PID=$(bg_in_gw "$SD/tsunagi.log" env RUST_LOG=debug,netlink_packet_route=error,netlink_packet_core=error \
    "$BIN" -c "$SD/tsunagi.toml" run)
  wait_for 10 test -S "$TS_SOCK" && return 0
  # A daemon that refused its config has exited: its last line says why.
  if ! kill -0 "$TS_PID" 2>/dev/null; then
    why "tsunagi exited at start: $(grep -v '^[[:space:]]*$' "$SD/tsunagi.log" | tail -n 1)"
  else
    why "tsunagi did not open its control socket"
  fi
}
ts_stop() {
  [ -n "$TS_PID" ] || return 0
  kill "$TS_PID" 2>/dev/null
  wait_for 10 sh -c "! kill -0 $TS_PID" || kill -9 "$TS_PID" 2>/dev/null
  TS_PID=""
}
ts_status() { ip netns exec "$NS_GW" "$BIN" -S "$TS_SOCK" status --json 2>/dev/null; }
ts_up() { ts_status | grep -q '"phase": *"network"'; }
ts_down() { ! ts_up; }
# ts_config MODE [extra toml lines]: tsunagi's side of seed 001 (venus, 192.168.1.1).
# Its socket is $TS_SOCK (set by run_scenario; a direct-mode scenario changes it first).
ts_config() {
  local mode=$1; shift
  cat <<EOF
[daemon]
control_socket = "$TS_SOCK"

[link.vm]
mode = "$mode"
tun = "tun0"
local = "$TS_ADDR"
remote = "$PPPD_ADDR"
routes = ["192.168.2.0/24"]
ident = "tsunagi interop venus"
ipv6cp = false
persist = false
EOF
  printf '%s\n' "$@"
}
# The dialled pppd, as seed 001's vpn-option (noauth, notty) plus the address line.
pppd_notty() {
  echo "exec ssh $(ssh_opts | sed 's/ControlMaster=auto/ControlMaster=no/; s/^ControlPath=.*/ControlPath=none/' | tr '\n' ' ')root@$VM_IP pppd notty noauth debug logfile /tmp/$1-pppd.log $2 $PPPD_ADDR:$TS_ADDR"
}
vm_ppp_up() { vm_exec "ip -4 addr show ppp0 2>/dev/null | grep -q 'inet $PPPD_ADDR peer $TS_ADDR'" </dev/null; }
vm_pppd_gone() { ! vm_exec 'pgrep -x pppd' </dev/null; }
# After the link is up on both ends: pppd adds no route to the far LAN by itself.
vm_route() { vm_exec "ip route replace 192.168.1.0/24 dev ppp0" </dev/null; }
fetch_pppd_log() { vm_exec "cat /tmp/$1-pppd.log" </dev/null > "$SD/pppd.log" 2>/dev/null; }

wait_link() { # both ends up, then the route in the VM
  wait_for 90 ts_up || { tail -5 "$SD/tsunagi.log" >&2; why "tsunagi's link did not reach phase network"; return 1; }
  wait_for 30 vm_ppp_up || why "pppd's ppp0 did not come up with $PPPD_ADDR peer $TS_ADDR" || return 1
  vm_route || why "cannot add the route to 192.168.1.0/24 in the VM"
}

# LAN to LAN: pings both ways (the host behind tsunagi, the host behind pppd).
check_ping() {
  ip netns exec "$NS_LAN" ping -c 3 -i 0.3 -W 3 "$LAN2_HOST" > "$SD/ping-lan.txt" 2>&1 ||
    wait_for 10 ip netns exec "$NS_LAN" ping -c 1 -W 2 "$LAN2_HOST" ||
    why "ping $LAN_HOST -> $LAN2_HOST failed" || return 1
  vm_exec "ip netns exec lan2 ping -c 3 -i 0.3 -W 3 $LAN_HOST" </dev/null > "$SD/ping-lan2.txt" 2>&1 ||
    why "ping $LAN2_HOST -> $LAN_HOST failed"
}

# TCP across the link in both directions, sha256 of what arrived against what was sent.
# check_transfer PORT [HOST_NS HOST_ADDR VM_NS VM_ADDR]: between HOST_ADDR in the host
# namespace HOST_NS (default the LAN behind tsunagi, $LAN_HOST) and VM_ADDR in the VM's
# namespace VM_NS (default lan2, $LAN2_HOST; "-" is the VM's root namespace).
check_transfer() {
  local port=$1 hns=${2:-$NS_LAN} haddr=${3:-$LAN_HOST} vns=${4:-lan2} vaddr=${5:-$LAN2_HOST}
  local vx="ip netns exec $vns " want got vm_sum
  [ "$vns" = - ] && vx=""
  want=$(sha256sum < "$INTEROP_RUN/data-up.bin" | cut -c1-64)
  vm_exec "rm -f /tmp/rx-$port.sum; (${vx}timeout 120 socat -u TCP-LISTEN:$port,reuseaddr STDOUT | sha256sum | cut -c1-64 > /tmp/rx-$port.part && mv /tmp/rx-$port.part /tmp/rx-$port.sum) >/dev/null 2>&1 &" </dev/null
  wait_for 10 vm_exec "${vx}ss -Hltn 'sport = :$port' | grep -q ." </dev/null ||
    why "socat did not listen in the VM" || return 1
  local t0; t0=$(date +%s.%N)
  ip netns exec "$hns" timeout 120 socat -u "FILE:$INTEROP_RUN/data-up.bin" "TCP:$vaddr:$port" ||
    why "TCP send $haddr -> $vaddr:$port failed" || return 1
  wait_for 60 vm_exec "test -s /tmp/rx-$port.sum" </dev/null || why "the VM's receiver did not finish" || return 1
  got=$(vm_exec "cat /tmp/rx-$port.sum" </dev/null)
  [ "$got" = "$want" ] || why "TCP up: sha256 sent $want, received $got" || return 1
  echo "    TCP 1 MiB $haddr -> $vaddr: sha256 $want matches ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)" >&2
  # and back: the VM side sends, the host side receives
  rm -f "$SD/rx.sum"
  ( ip netns exec "$hns" timeout 120 socat -u "TCP-LISTEN:$port,reuseaddr" STDOUT | sha256sum | cut -c1-64 > "$SD/rx.part" &&
    mv "$SD/rx.part" "$SD/rx.sum" ) &
  wait_for 10 sh -c "ip netns exec '$hns' ss -Hltn 'sport = :$port' | grep -q ." || why "no local listener" || return 1
  t0=$(date +%s.%N)
  vm_sum=$(vm_exec "head -c 1048576 /dev/urandom > /tmp/down.bin; sha256sum < /tmp/down.bin | cut -c1-64;
    ${vx}timeout 120 socat -u FILE:/tmp/down.bin TCP:$haddr:$port" </dev/null) ||
    why "TCP send $vaddr -> $haddr failed" || return 1
  wait_for 60 test -s "$SD/rx.sum" || why "the local receiver did not finish" || return 1
  [ "$(cat "$SD/rx.sum")" = "$vm_sum" ] || why "TCP down: sha256 sent $vm_sum, received $(cat "$SD/rx.sum")" || return 1
  echo "    TCP 1 MiB $vaddr -> $haddr: sha256 $vm_sum matches ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)" >&2
}

# The options both ends say they agreed on, read from both logs and compared:
# pppd's acked requests (rcvd ConfAck = its own options, sent ConfAck = tsunagi's)
# against tsunagi's "LCP opened" / "LCP: MAGICNUM" / "IPCP: myaddr" lines.
opt() { # opt LINE NAME DEFAULT: the value of <NAME value> in a pppd packet line
  local v; v=$(grep -o "<$2 [^>]*>" <<<"$1" | head -1 | sed "s/<$2 \(.*\)>/\1/")
  echo "${v:-$3}"
}
check_agreed() {
  local p=$SD/pppd.log t=$SD/tsunagi.log own peer opened m
  own=$(grep 'rcvd \[LCP ConfAck' "$p" | tail -1)
  peer=$(grep 'sent \[LCP ConfAck' "$p" | tail -1)
  opened=$(grep 'LCP opened:' "$t" | tail -1)
  [ -n "$own" ] && [ -n "$peer" ] && [ -n "$opened" ] || why "no LCP ConfAck in pppd's log or no 'LCP opened' in tsunagi's" || return 1
  # tsunagi: "LCP opened: mru A peer mru B asyncmap 0xC peer asyncmap 0xD pcomp P accomp Q"
  read -r t_mru t_pmru t_accm t_paccm < <(sed -n 's/.*LCP opened: mru \([0-9]*\) peer mru \([0-9]*\) asyncmap \(0x[0-9a-f]*\) peer asyncmap \(0x[0-9a-f]*\).*/\1 \2 \3 \4/p' <<<"$opened")
  local p_mru p_accm p_magic q_mru q_accm q_magic t_magic t_own_magic
  p_mru=$(opt "$own" mru 1500); p_accm=$(opt "$own" asyncmap 0xffffffff); p_magic=$(opt "$own" magic "")
  q_mru=$(opt "$peer" mru 1500); q_accm=$(opt "$peer" asyncmap 0xffffffff); q_magic=$(opt "$peer" magic "")
  t_magic=$(sed -n 's/.*LCP: MAGICNUM \([0-9a-f]*\).*/\1/p' "$t" | tail -1)
  m=0
  [ "$((p_mru))" = "$((t_pmru))" ] || { why "pppd's MRU $p_mru, tsunagi says peer mru $t_pmru"; m=1; }
  [ "$((p_accm))" = "$((t_paccm))" ] || { why "pppd's asyncmap $p_accm, tsunagi says peer asyncmap $t_paccm"; m=1; }
  [ "$((q_mru))" = "$((t_mru))" ] || { why "pppd acked MRU $q_mru, tsunagi says mru $t_mru"; m=1; }
  [ "$((q_accm))" = "$((t_accm))" ] || { why "pppd acked asyncmap $q_accm, tsunagi says asyncmap $t_accm"; m=1; }
  [ -n "$t_magic" ] && [ -n "$p_magic" ] && [ "$((p_magic))" = "$((16#$t_magic))" ] ||
    { why "pppd's magic $p_magic, tsunagi logged MAGICNUM ${t_magic:-none}"; m=1; }
  t_own_magic=$(grep 'sent \[LCP ConfReq' "$t" | tail -1 | grep -o 'magic 0x[0-9a-f]*' | cut -d' ' -f2)
  [ -n "$t_own_magic" ] && [ "$((q_magic))" = "$((t_own_magic))" ] ||
    { why "tsunagi's own magic ${t_own_magic:-not logged}, pppd acked ${q_magic:-none}"; m=1; }
  # Protocol-Field and Address-and-Control-Field compression pppd asked for and got.
  local flag want
  for flag in pcomp accomp; do
    want=false; grep -q "<$flag>" <<<"$own" && want=true
    grep -q "$flag $want" <<<"${opened#*peer asyncmap}" ||
      { why "pppd's acked request has $flag=$want, tsunagi logged: ${opened#*: }"; m=1; }
  done
  local pl pr
  pl=$(sed -n 's/^local  IP address //p' "$p" | tail -1); pr=$(sed -n 's/^remote IP address //p' "$p" | tail -1)
  grep -q "IPCP: myaddr $pr hisaddr = $pl\$" "$t" ||
    { why "pppd: local $pl remote $pr; tsunagi: $(grep -o 'IPCP: myaddr.*' "$t" | tail -1)"; m=1; }
  [ "$m" = 0 ] && echo "    agreed (both logs): pppd mru $p_mru asyncmap $p_accm magic $p_magic $(grep -o '<[pa][c]*comp>' <<<"$own" | tr -d '<>' | tr '\n' ' '); tsunagi mru $t_mru asyncmap $t_accm magic $t_own_magic; addresses $pl <-> $pr" >&2
  return "$m"
}

# Runs one scenario function with its own directory and reports it.
run_scenario() {
  local name=$1 fn=$2 t0 ok=0 h
  selected "$name" || return 0
  SD=$INTEROP_RUN/$name; mkdir -p "$SD"; WHY=""; SKIPWHY=""; t0=$(date +%s); TS_SOCK=$SD/sock
  echo "--- $name" >&2
  "$fn" "$name" && [ -z "$WHY" ] && ok=1
  for h in "${AFTER_SCENARIO[@]}"; do "$h" "$name"; done
  if [ -n "$SKIPWHY" ] && [ -z "$WHY" ]; then
    echo "SKIPPED: $name: $SKIPWHY"; SKIP=$((SKIP + 1))
  elif [ "$ok" = 1 ] && [ -z "$WHY" ]; then
    echo "PASS $name ($(( $(date +%s) - t0 )) s)"; PASS=$((PASS + 1))
  else
    echo "FAIL $name: ${WHY:-failed} (logs: $SD)"; FAIL=$((FAIL + 1))
    for h in tsunagi pppd pptpd pptpd-pppd xl2tpd-lns xl2tpd-lac lns-pppd charon-p charon-q charon-gw charon-vm charon-server; do
      tail -n 15 "$SD/$h.log" 2>/dev/null | sed "s/^/    $h| /" >&2
    done
  fi
  ts_stop
  vm_exec 'for p in $(pgrep -x pppd); do kill $p; done; sleep 1; ip link show ppp0 >/dev/null 2>&1 && sleep 2; true' </dev/null >/dev/null 2>&1
  # Path MTUs learnt in this scenario (an IPsec tun's 1400, say) stay cached
  # for ten minutes and would make the next scenario's large DF pings fail
  # before they leave: forget them in the namespaces and the VM they share.
  ip -n "$NS_LAN" route flush cache 2>/dev/null || true
  ip -n "$NS_GW" route flush cache 2>/dev/null || true
  vm_exec 'ip route flush cache; ip -n lan2 route flush cache 2>/dev/null; true' </dev/null >/dev/null 2>&1
}

# shellcheck source=scenarios.sh
. "$HERE/scenarios.sh"

t=$(date +%s)
for s in "${SELFCHECKS[@]}"; do
  run_scenario "$s" "${s//-/_}"
done
for s in "${SCENARIOS[@]}"; do
  run_scenario "$s" "scenario_${s//-/_}"
done
timing scenarios $(( $(date +%s) - t ))
t=$(date +%s)
vm_down
timing vm-down $(( $(date +%s) - t ))
summary
if [ "${INTEROP_REQUIRED:-0}" = 1 ] && [ "$SKIP" -gt 0 ]; then
  echo "INTEROP_REQUIRED=1: $SKIP scenarios skipped" >&2
  exit 1
fi
[ "$FAIL" = 0 ]
