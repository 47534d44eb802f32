# shellcheck shell=bash
# IPsec (IKEv1 with a pre-shared key, ESP; issue 13) against strongSwan 5.9.8, Debian 12's:
# on the host with kernel-libipsec (userland ESP: this host's kernel has none; tunnel mode
# only, always ESP in UDP 4500), and in the VM with the kernel's ESP (transport and tunnel
# mode). Sourced by run.sh after scenarios_l2tp.sh: it extends SCENARIOS, SELFCHECKS and
# AFTER_SCENARIO; the functions run later with run.sh's helpers (why, wait_for,
# record_pid, vm_exec, check_ping, check_transfer) and scenarios_pptp.sh's (since).
#
# Host scenarios (no VM; namespaces of their own, made and deleted per scenario):
#
#   $IP_NS_PL 10.204.10.10 -- lan0 10.204.10.1 [$IP_NS_P] wan0 10.204.1.1 ---------- wan0 10.204.1.2 [$IP_NS_Q] lan0 10.204.20.1 -- $IP_NS_QL 10.204.20.10
#   with NAT:                                  [$IP_NS_P] wan0 10.204.2.2 -- [$IP_NS_NAT] 10.204.2.1 | 10.204.3.1 (masquerade) -- wan0 10.204.3.2 [$IP_NS_Q]
#
#   P is the initiator's gateway (behind the NAT in i4), Q the responder's. The LANs
#   10.204.10.0/24 and 10.204.20.0/24 are the tunnel's subnets (leftsubnet/rightsubnet):
#   no gateway has a route to the other LAN except through the tunnel.
#   i1  tsunagi (P, auto = "start") -> strongSwan (Q), seed 002's proposal:
#       ike 3des-sha1-modp1024!, esp 3des-sha1-modp1024! (seed 002's esp carries the group:
#       Quick Mode with PFS), tunnel mode between the LANs.
#   i2  the same with ike aes128-sha256-ecp256!, esp aes128gcm16-ecp256! (IKEv1 has no
#       AEAD for IKE itself: GCM is ESP's, ECP-256 both phases' group).
#   i3  strongSwan (P) -> tsunagi (Q, auto = "add"), seed 002's proposal.
#   i4  through the masquerading NAT: tsunagi behind it initiating to strongSwan
#       (i4-nat-tsunagi-behind), strongSwan behind it initiating to tsunagi, whose right is
#       "%any" (i4-nat-strongswan-behind); aes128-sha256-ecp256 / aes128gcm16-ecp256.
#   i5  wrong PSK, both roles: neither side gets an SA; tsunagi's log has a line matching
#       $TS_WRONG_PSK_RE, strongSwan's log its own failure ($SW_WRONG_PSK_RE).
#   Each scenario that comes up: ping both ways between the LAN hosts, 20 MB of TCP each way
#   with matching sha256, strongSwan's CHILD_SA counters past 20 MB both ways, and no PSK
#   in tsunagi's log.
#
# VM scenarios (strongSwan with the kernel's ESP, started with `ipsec start` from
# ipsec.conf/ipsec.secrets as seed 002 writes them):
#   v1  transport mode, seed 002's `conn` (type=transport, 17/1701 both sides,
#       authby=secret, 3des-sha1-modp1024!, keyingtries=0, auto=start: the VM initiates to
#       10.200.0.1) and a UDP exchange on port 1701: tsunagi in $NS_GW answers with a
#       transport conn for the VM, and a UDP echo on 1701 whose datagrams its transport
#       mode protects (ts_ipsec_v1_side below).
#   v2  tunnel mode: tsunagi in $NS_GW (192.168.1.0/24 behind it, auto = "start") ->
#       the VM (192.168.2.0/24, lan2, behind it), aes128-sha256-modp2048! / aes128gcm16!;
#       check_ping and check_transfer, and the VM's kernel SAs counting the traffic.
#
# Self-checks (no tsunagi; they run by default):
#   selfcheck-ipsec-nat  strongSwan libipsec (P, behind the NAT) -> strongSwan libipsec
#       (Q): the i4 topology and checks with strongSwan on both ends, then the same pair
#       with a wrong PSK on P: no SA, and both logs show their failure ($SW_WRONG_PSK_RE).
#   selfcheck-ipsec-vm   host strongSwan libipsec in $NS_GW (in tsunagi's place) -> the
#       VM's strongSwan with v2's files: v2 without tsunagi.
#   selfcheck-ipsec-vm-transport  v1's VM side (seed 002's conn, `ipsec start`, the UDP
#       exchange on 1701) against a second charon with the kernel's ESP in a netns of the
#       VM (libipsec on the host has no transport mode): v1 without tsunagi.
#
# The i* and v* scenarios need tsunagi's IPsec: each first runs `tsunagi check` on its
# config, and a refusal is a FAIL that says so (not a skip). They run by default
# (IPSEC_SCENARIOS_ON=1, below); with IPSEC_SCENARIOS_ON=0 only when INTEROP_ONLY names
# them.
#
# Logs in each scenario's directory: tsunagi.log (RUST_LOG=debug), tsunagi-q.log (the
# second daemon, none yet), charon-p.log / charon-q.log (host charons: ike 2, knl 1),
# charon-vm.log (the VM's charon), sas-*.txt (swanctl --list-sas, ipsec statusall, ip -s
# xfrm state at the end).

IPSEC_SCENARIOS=(
  i1-tsunagi-initiates-3des
  i2-tsunagi-initiates-gcm-ecp256
  i3-strongswan-initiates-3des
  i4-nat-tsunagi-behind
  i4-nat-strongswan-behind
  i5-wrong-psk-tsunagi-initiates
  i5-wrong-psk-strongswan-initiates
  v1-transport-seed002
  v2-tunnel
)
# On in every run (CI's too) since tsunagi has IPsec (tunnel and transport mode);
# IPSEC_SCENARIOS_ON=0 leaves them out unless INTEROP_ONLY names them.
IPSEC_SCENARIOS_ON=${IPSEC_SCENARIOS_ON:-1}
ipsec_named() {
  local w s
  for w in ${INTEROP_ONLY:-}; do
    for s in "${IPSEC_SCENARIOS[@]}"; do [[ $s == "$w"* ]] && return 0; done
  done
  return 1
}
if [ "$IPSEC_SCENARIOS_ON" = 1 ] || ipsec_named; then
  SCENARIOS+=("${IPSEC_SCENARIOS[@]}")
fi
SELFCHECKS+=(selfcheck-ipsec-nat selfcheck-ipsec-vm selfcheck-ipsec-vm-transport)
AFTER_SCENARIO+=(ipsec_after)

IP_NS_P=$INTEROP_TAG-ip IP_NS_Q=$INTEROP_TAG-iq IP_NS_PL=$INTEROP_TAG-ipl IP_NS_QL=$INTEROP_TAG-iql
IP_NS_NAT=$INTEROP_TAG-inat
IP_LAN_P=10.204.10.0/24 IP_GW_LAN_P=10.204.10.1 IP_HOST_P=10.204.10.10
IP_LAN_Q=10.204.20.0/24 IP_GW_LAN_Q=10.204.20.1 IP_HOST_Q=10.204.20.10
IP_PSK=iop-psk-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
IP_WRONG_PSK=iop-wrong-psk-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')
IP_XFER_MB=20
# tsunagi's log line for a wrong PSK: the driver's warning for the engine's
# Event::Failed with Reason::AuthenticationFailed ("ipsec NAME: negotiation with PEER
# failed: authentication failed: the peer's HASH did not verify (most likely a different
# pre-shared key)"). IKEv1 Main Mode with a wrong PSK: the responder cannot decrypt message
# 5; the initiator gets back only what it cannot decrypt (strongSwan's responder answers
# with an encrypted notification). Both ends must say so, not just time out.
TS_WRONG_PSK_RE='negotiation with [^ ]+ failed: authentication failed'
# strongSwan 5.9.8's IKEv1 lines for a wrong PSK: the responder cannot parse message 5
# (encrypted with the wrong key), the initiator retransmits message 5 and gives up, or a
# side that got a decryptable message sees a hash it does not expect.
SW_WRONG_PSK_RE='message parsing failed|integrity check failed|calculated HASH does not match HASH payload|invalid HASH_V1 payload length, decryption failed|giving up after [0-9]+ retransmits|establishing IKE_SA failed|INVALID_HASH_INFORMATION|received AUTHENTICATION_FAILED|AUTHENTICATION_FAILED'
IP_DIR=""

# ------------------------------------------------------------------ host topology
ip_ns() { # ip_ns NAME: a namespace of this scenario, written down before it is made
  echo "$1" >> "$INTEROP_RUN/netns"
  echo "$1" >> "$SD/.ipsec-netns"
  ip netns add "$1" && ip -n "$1" link set lo up
}
ip_veth() { # ip_veth NS_A IF_A ADDR_A NS_B IF_B ADDR_B
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4" &&
    ip -n "$1" addr add "$3" dev "$2" && ip -n "$4" addr add "$6" dev "$5" &&
    ip -n "$1" link set "$2" up && ip -n "$4" link set "$5" up
}
# ipsec_begin direct|nat: the five (or four) namespaces, P_ADDR / Q_ADDR, the 20 MB file.
ipsec_begin() {
  IP_DIR=$(mktemp -d -t tsunagi-iop-ipsec.XXXXXX) || { why "mktemp failed"; return 1; }
  chmod 700 "$IP_DIR"
  echo "$IP_DIR" > "$SD/.ipsec"
  : > "$SD/.ipsec-netns"; : > "$SD/.ipsec-pids"
  local ns
  for ns in "$IP_NS_P" "$IP_NS_Q" "$IP_NS_PL" "$IP_NS_QL"; do ip_ns "$ns" || { why "cannot make netns $ns"; return 1; }; done
  if [ "$1" = nat ]; then
    ip_ns "$IP_NS_NAT" || { why "cannot make netns $IP_NS_NAT"; return 1; }
    P_ADDR=10.204.2.2 Q_ADDR=10.204.3.2 P_SEEN=10.204.3.1
    ip_veth "$IP_NS_P" wan0 $P_ADDR/24 "$IP_NS_NAT" in0 10.204.2.1/24 &&
      ip_veth "$IP_NS_NAT" out0 10.204.3.1/24 "$IP_NS_Q" wan0 $Q_ADDR/24 &&
      ip -n "$IP_NS_P" route add default via 10.204.2.1 &&
      ip netns exec "$IP_NS_NAT" sysctl -qw net.ipv4.ip_forward=1 &&
      ip netns exec "$IP_NS_NAT" nft -f - <<'EOF' || { why "cannot set up the NAT namespace"; return 1; }
table ip iopnat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "out0" masquerade
  }
}
EOF
  else
    P_ADDR=10.204.1.1 Q_ADDR=10.204.1.2 P_SEEN=$P_ADDR
    ip_veth "$IP_NS_P" wan0 $P_ADDR/24 "$IP_NS_Q" wan0 $Q_ADDR/24 || { why "cannot link P and Q"; return 1; }
  fi
  ip_veth "$IP_NS_PL" eth0 $IP_HOST_P/24 "$IP_NS_P" lan0 $IP_GW_LAN_P/24 &&
    ip_veth "$IP_NS_QL" eth0 $IP_HOST_Q/24 "$IP_NS_Q" lan0 $IP_GW_LAN_Q/24 &&
    ip -n "$IP_NS_PL" route add default via $IP_GW_LAN_P &&
    ip -n "$IP_NS_QL" route add default via $IP_GW_LAN_Q &&
    ip netns exec "$IP_NS_P" sysctl -qw net.ipv4.ip_forward=1 &&
    ip netns exec "$IP_NS_Q" sysctl -qw net.ipv4.ip_forward=1 || { why "cannot set up the LANs"; return 1; }
  [ -s "$INTEROP_RUN/ipsec-data.bin" ] || head -c $((IP_XFER_MB * 1024 * 1024)) /dev/urandom > "$INTEROP_RUN/ipsec-data.bin"
}
ip_pid() { record_pid "$1" "$2"; echo "$1" >> "$SD/.ipsec-pids"; }

# ------------------------------------------------------------------ strongSwan on the host
# One charon per namespace with kernel-libipsec (../shared/lab/peers/README.md): charon
# writes /run/charon.pid, so it gets a /run of its own (a bind mount in the mount namespace
# `ip netns exec` makes), a strongswan.conf of its own (STRONGSWAN_CONF) and a vici socket
# in its directory; swanctl talks to it from outside. The directory is not under /run
# (run.sh's $INTEROP_RUN is): the bind mount would hide it from charon.
sw_host_conf() { # sw_host_conf DIR
  mkdir -p "$1/run"
  cat > "$1/strongswan.conf" <<EOF
charon {
  load_modular = no
  load = random nonce openssl aes sha1 sha2 md5 hmac gcm gmp kdf pubkey kernel-libipsec kernel-netlink socket-default vici
  retransmit_tries = 3
  retransmit_timeout = 2
  filelog {
    iop {
      path = $1/charon.log
      time_format = %T
      default = 1
      ike = 2
      knl = 1
      cfg = 1
      flush_line = yes
    }
  }
  plugins {
    socket-default { fwmark = 0x4c }
    kernel-netlink { fwmark = !0x4c }
    vici { socket = unix://$1/charon.vici }
  }
}
EOF
}
# sw_host_swanctl DIR LOCAL REMOTE LOCAL_ID REMOTE_ID LOCAL_TS REMOTE_TS IKE ESP PSK
sw_host_swanctl() {
  ( umask 077; cat > "$1/swanctl.conf" <<EOF
connections {
  iop {
    version = 1
    aggressive = no
    local_addrs = $2
    remote_addrs = $3
    proposals = $8
    dpd_delay = 0
    local { auth = psk
      id = $4 }
    remote { auth = psk
      id = $5 }
    children {
      iop {
        mode = tunnel
        local_ts = $6
        remote_ts = $7
        esp_proposals = $9
        start_action = none
      }
    }
  }
}
secrets {
  ike-iop {
    id-a = $4
    id-b = $5
    secret = "${10}"
  }
}
EOF
  )
}
# sw_host_start NS NAME (p, q or gw): charon in NS, its files in $IP_DIR/sw-NAME.
sw_host_start() {
  local ns=$1 d=$IP_DIR/sw-$2 pid
  rm -f "$d/charon.vici"
  setsid ip netns exec "$ns" sh -c "mount --bind '$d/run' /run && STRONGSWAN_CONF='$d/strongswan.conf' exec /usr/lib/ipsec/charon" \
    </dev/null > "$d/charon.out" 2>&1 &
  pid=$!
  ip_pid "$pid" "charon-$2"
  echo "$pid" > "$d/pid"
  wait_for 15 test -S "$d/charon.vici" || why "charon ($2) did not open its vici socket: $(tail -n 2 "$d/charon.out")" || return 1
  sw_ctl "$2" --load-all --file "$d/swanctl.conf" > "$d/load.out" 2>&1 ||
    why "swanctl --load-all ($2): $(tail -n 2 "$d/load.out" | tr '\n' ' ')"
}
sw_ctl() { local d=$IP_DIR/sw-$1 c=$2; shift 2; swanctl "$c" --uri "unix://$d/charon.vici" "$@"; }
# sw_host NAME ROLE IKE ESP PSK: charon at P (NAME p) or Q (NAME q) with the scenario's
# addresses; ROLE initiator (remote Q_ADDR) or responder (remote %any, the peer's ID its
# own address, as seen before any NAT).
sw_host() {
  local name=$1 role=$2 d=$IP_DIR/sw-$1 ns la ra lid rid lts rts
  if [ "$name" = p ]; then
    ns=$IP_NS_P la=$P_ADDR ra=$Q_ADDR lid=$P_ADDR rid=$Q_ADDR lts=$IP_LAN_P rts=$IP_LAN_Q
  else
    ns=$IP_NS_Q la=$Q_ADDR ra=$P_SEEN lid=$Q_ADDR rid=$P_ADDR lts=$IP_LAN_Q rts=$IP_LAN_P
  fi
  [ "$role" = responder ] && ra=%any
  sw_host_conf "$d"
  sw_host_swanctl "$d" "$la" "$ra" "$lid" "$rid" "$lts" "$rts" "$3" "$4" "$5"
  sw_host_start "$ns" "$name"
}
# sw_initiate NAME: the CHILD_SA from charon NAME (swanctl waits up to 30 s).
sw_initiate() {
  sw_ctl "$1" --initiate --child iop --timeout 30 > "$IP_DIR/sw-$1/initiate.out" 2>&1
}
sw_child_installed() { sw_ctl "$1" --list-sas 2>/dev/null | grep -q 'INSTALLED, TUNNEL'; }
sw_no_child() { ! sw_child_installed "$1"; }
# sw_child_bytes NAME: "IN OUT", the CHILD_SA's byte counters ("in  SPI (...), N bytes, ...").
sw_child_bytes() {
  sw_ctl "$1" --list-sas 2>/dev/null | awk '
    $1 == "in" && match($0, /[0-9]+ bytes/) {i += substr($0, RSTART, RLENGTH - 6)}
    $1 == "out" && match($0, /[0-9]+ bytes/) {o += substr($0, RSTART, RLENGTH - 6)}
    END {print i + 0, o + 0}'
}

# ------------------------------------------------------------------ tsunagi
# ts_ipsec_config SOCK LOG LEFT RIGHT LEFTID RIGHTID LEFTSUBNET RIGHTSUBNET IKE ESP AUTO SECRETS:
# the plan's [ipsec.NAME] (strongSwan's ipsec.conf names).
ts_ipsec_config() {
  cat <<EOF
[daemon]
control_socket = "$1"
log_file = "$2"

[ipsec.iop]
left = "$3"
right = "$4"
leftid = "$5"
rightid = "$6"
secrets = "${12}"
ike = "$9"
esp = "${10}"
type = "tunnel"
leftsubnet = "$7"
rightsubnet = "$8"
auto = "${11}"
keyingtries = 0
tun = "ipsec-iop"
EOF
}
# ts_ipsec_start NS: tsunagi in NS with $SD/tsunagi.toml. A config that `tsunagi check`
# refuses is a FAIL naming check's words: these scenarios exist to be switched on.
ts_ipsec_start() {
  local ns=$1 out pid
  if ! out=$("$BIN" -c "$SD/tsunagi.toml" check 2>&1); then
    why "tsunagi has no IPsec yet: tsunagi check refuses the [ipsec] config: $(grep -v '^[[:space:]]*$' <<<"$out" | tail -n 1 | sed "s|$SD/||g")"
    return 1
  fi
  rm -f "$SD/ts.sock"
  setsid ip netns exec "$ns" env RUST_LOG=debug,netlink_packet_route=error,netlink_packet_core=error \
    "$BIN" -c "$SD/tsunagi.toml" run </dev/null >> "$SD/tsunagi.log" 2>&1 &
  pid=$!
  ip_pid "$pid" tsunagi
  TS_PID=$pid
  wait_for 10 test -S "$SD/ts.sock" && return 0
  if ! kill -0 "$pid" 2>/dev/null; then
    why "tsunagi exited at start: $(grep -v '^[[:space:]]*$' "$SD/tsunagi.log" | tail -n 1)"
  else
    why "tsunagi did not open its control socket"
  fi
}
# ts_ipsec NAME ROLE IKE ESP PSK: tsunagi at P (NAME p: auto = "start", right = Q) or Q
# (NAME q: auto = "add", right = "%any" behind a NAT, else P's address).
ts_ipsec() {
  local name=$1 role=$2 ns left right lid rid lsub rsub auto=add
  if [ "$name" = p ]; then
    ns=$IP_NS_P left=$P_ADDR right=$Q_ADDR lid=$P_ADDR rid=$Q_ADDR lsub=$IP_LAN_P rsub=$IP_LAN_Q
  else
    ns=$IP_NS_Q left=$Q_ADDR right=$P_SEEN lid=$Q_ADDR rid=$P_ADDR lsub=$IP_LAN_Q rsub=$IP_LAN_P
    [ "$P_SEEN" = "$P_ADDR" ] || right=%any
  fi
  [ "$role" = initiator ] && auto=start
  ( umask 077
    printf '# tsunagi interop %s\n%s %s : PSK "%s"\n' "$SD" "$lid" "$rid" "$5" > "$SD/ipsec.secrets"
    ts_ipsec_config "$SD/ts.sock" "$SD/tsunagi.log" "$left" "$right" "$lid" "$rid" "$lsub" "$rsub" \
      "$3" "$4" "$auto" "$SD/ipsec.secrets" > "$SD/tsunagi.toml" )
  ts_ipsec_start "$ns"
}
# The PSKs never appear in tsunagi's log.
ts_log_has_no_psk() {
  [ -f "$SD/tsunagi.log" ] || return 0
  ! grep -qF -e "$IP_PSK" -e "$IP_WRONG_PSK" "$SD/tsunagi.log" || why "tsunagi's log contains the PSK"
}

# ------------------------------------------------------------------ traffic checks
ip_ping() { ip netns exec "$1" ping -c 1 -W 2 "$2"; }
# ip_xfer FROM_NS TO_NS TO_ADDR PORT: the 20 MB file over TCP, sha256 compared.
ip_xfer() {
  local want got t0
  want=$(sha256sum < "$INTEROP_RUN/ipsec-data.bin" | cut -c1-64)
  rm -f "$SD/rx-$4.sum"
  ( ip netns exec "$2" timeout 120 socat -u "TCP-LISTEN:$4,reuseaddr" STDOUT | sha256sum | cut -c1-64 > "$SD/rx-$4.part" &&
    mv "$SD/rx-$4.part" "$SD/rx-$4.sum" ) &
  wait_for 10 sh -c "ip netns exec '$2' ss -Hltn 'sport = :$4' | grep -q ." || why "no TCP listener on $3:$4" || return 1
  t0=$(date +%s.%N)
  ip netns exec "$1" timeout 120 socat -u "FILE:$INTEROP_RUN/ipsec-data.bin" "TCP:$3:$4" ||
    why "TCP send to $3:$4 failed" || return 1
  wait_for 60 test -s "$SD/rx-$4.sum" || why "the receiver on $3:$4 did not finish" || return 1
  got=$(cat "$SD/rx-$4.sum")
  [ "$got" = "$want" ] || why "TCP to $3: sha256 sent $want, received $got" || return 1
  echo "    TCP $IP_XFER_MB MB -> $3: sha256 ${want:0:16}... matches ($(since "$t0") s)" >&2
}
# ipsec_traffic SW_NAME: pings and 20 MB each way between the LAN hosts, then the
# CHILD_SA counters of strongSwan's side SW_NAME (p or q) past 20 MB each way.
ipsec_traffic() {
  local sw=$1 in out
  wait_for 30 ip_ping "$IP_NS_PL" "$IP_HOST_Q" || why "no ping $IP_HOST_P -> $IP_HOST_Q through the tunnel" || return 1
  ip netns exec "$IP_NS_PL" ping -c 3 -i 0.3 -W 2 "$IP_HOST_Q" > "$SD/ping-p.txt" 2>&1 ||
    why "ping $IP_HOST_P -> $IP_HOST_Q lost packets" || return 1
  ip netns exec "$IP_NS_QL" ping -c 3 -i 0.3 -W 2 "$IP_HOST_P" > "$SD/ping-q.txt" 2>&1 ||
    why "ping $IP_HOST_Q -> $IP_HOST_P failed" || return 1
  ip_xfer "$IP_NS_PL" "$IP_NS_QL" "$IP_HOST_Q" 5301 || return 1
  ip_xfer "$IP_NS_QL" "$IP_NS_PL" "$IP_HOST_P" 5302 || return 1
  read -r in out < <(sw_child_bytes "$sw")
  [ "${in:-0}" -ge $((IP_XFER_MB * 1024 * 1024)) ] && [ "${out:-0}" -ge $((IP_XFER_MB * 1024 * 1024)) ] ||
    why "strongSwan ($sw) CHILD_SA counted in ${in:-?} out ${out:-?} bytes: not the $IP_XFER_MB MB each way" || return 1
  echo "    strongSwan ($sw) CHILD_SA: in $in bytes, out $out bytes; $(sw_ctl "$sw" --list-sas | grep -Eo 'INSTALLED, [A-Za-z-]+, ESP[^ ]*|[A-Z0-9][A-Z0-9_-]+(/[A-Z][A-Z0-9_-]+)+' | tr '\n' ' ')" >&2
}

# ------------------------------------------------------------------ after each scenario
ipsec_after() {
  local d=$INTEROP_RUN/$1 dir pid ns n
  [ -f "$d/.ipsec" ] || [ -f "$d/.ipsec-vm" ] || return 0
  if [ -f "$d/.ipsec" ]; then
    dir=$(cat "$d/.ipsec")
    for n in p q gw; do
      [ -S "$dir/sw-$n/charon.vici" ] && sw_ctl_dir "$dir/sw-$n" --list-sas > "$d/sas-$n.txt" 2>&1
      [ -f "$dir/sw-$n/charon.log" ] && cp "$dir/sw-$n/charon.log" "$d/charon-$n.log"
    done
    # charon removes its routes, rules and TUN when it is given the time (TERM).
    while read -r pid; do kill "$pid" 2>/dev/null; done < "$d/.ipsec-pids"
    while read -r pid; do
      wait_for 5 sh -c "! kill -0 $pid"
      kill -9 "$pid" 2>/dev/null
    done < "$d/.ipsec-pids"
    while read -r ns; do
      for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
      ip netns del "$ns" 2>/dev/null
    done < "$d/.ipsec-netns"
    case $dir in */tsunagi-iop-ipsec.*) rm -rf "$dir" ;; esac
    rm -f "$d/.ipsec"
    # shellcheck disable=SC2034  # run.sh's: its ts_stop has nothing left to stop
    TS_PID=""
  fi
  if [ -f "$d/.ipsec-vm" ]; then
    vm_exec "ipsec statusall; ip -s xfrm state" </dev/null > "$d/sas-vm.txt" 2>&1
    vm_exec "cat /tmp/charon.log" </dev/null > "$d/charon-vm.log" 2>/dev/null
    vm_exec "cat /tmp/ipsp/charon.log" </dev/null > "$d/charon-vm-peer.log" 2>/dev/null
    vm_exec "ipsec stop >/dev/null 2>&1; sleep 1
      for p in \$(ip netns pids $IPSP_NS 2>/dev/null); do kill \$p; done; sleep 1
      for p in \$(ip netns pids $IPSP_NS 2>/dev/null); do kill -9 \$p; done
      ip netns del $IPSP_NS 2>/dev/null; rm -rf /tmp/ipsp
      pkill -x charon; ip xfrm state flush; ip xfrm policy flush
      ip route flush table 220 2>/dev/null; rm -f /tmp/charon.log; true" </dev/null >/dev/null 2>&1
    rm -f "$d/.ipsec-vm"
  fi
  find "$d" -maxdepth 1 -type f -empty -delete
}
sw_ctl_dir() { local d=$1 c=$2; shift 2; swanctl "$c" --uri "unix://$d/charon.vici" "$@"; }

# ------------------------------------------------------------------ host scenarios
# ipsec_pair TOPOLOGY INITIATOR(tsunagi|strongswan) IKE ESP: up and checked.
ipsec_pair() {
  local topo=$1 who=$2 ike=$3 esp=$4 t
  ipsec_begin "$topo" || return 1
  t=$(date +%s.%N)
  if [ "$who" = tsunagi ]; then
    sw_host q responder "${ike%!}" "${esp%!}" "$IP_PSK" || return 1
    ts_ipsec p initiator "$ike" "$esp" "$IP_PSK" || return 1
    wait_for 60 sw_child_installed q || why "no CHILD_SA on strongSwan's side (Q) within 60 s of tsunagi's start" || return 1
    echo "    tunnel up after $(since "$t") s (tsunagi P $P_ADDR -> strongSwan Q $Q_ADDR)" >&2
    ipsec_traffic q || return 1
  else
    ts_ipsec q responder "$ike" "$esp" "$IP_PSK" || return 1
    sw_host p initiator "${ike%!}" "${esp%!}" "$IP_PSK" || return 1
    sw_initiate p || why "strongSwan (P) could not initiate: $(tail -n 2 "$IP_DIR/sw-p/initiate.out" | tr '\n' ' ')" || return 1
    echo "    tunnel up after $(since "$t") s (strongSwan P $P_ADDR -> tsunagi Q $Q_ADDR)" >&2
    ipsec_traffic p || return 1
  fi
  ts_log_has_no_psk
}
IP_SEED002_IKE='3des-sha1-modp1024!'
IP_SEED002_ESP='3des-sha1-modp1024!'
IP_GCM_IKE='aes128-sha256-ecp256!'
IP_GCM_ESP='aes128gcm16-ecp256!'
scenario_i1_tsunagi_initiates_3des() { ipsec_pair direct tsunagi "$IP_SEED002_IKE" "$IP_SEED002_ESP"; }
scenario_i2_tsunagi_initiates_gcm_ecp256() { ipsec_pair direct tsunagi "$IP_GCM_IKE" "$IP_GCM_ESP"; }
scenario_i3_strongswan_initiates_3des() { ipsec_pair direct strongswan "$IP_SEED002_IKE" "$IP_SEED002_ESP"; }
scenario_i4_nat_tsunagi_behind() { ipsec_pair nat tsunagi "$IP_GCM_IKE" "$IP_GCM_ESP"; }
scenario_i4_nat_strongswan_behind() { ipsec_pair nat strongswan "$IP_GCM_IKE" "$IP_GCM_ESP"; }

# sw_failed NAME: charon NAME's log shows a failure of the wrong PSK's kind.
sw_failed() { grep -Eq "$SW_WRONG_PSK_RE" "$IP_DIR/sw-$1/charon.log"; }
# ipsec_wrong_psk INITIATOR: the initiator has the wrong PSK; 40 s for both sides to give
# up (strongSwan: 3 retransmits, 2 s then backing off), no SA anywhere, no traffic.
ipsec_wrong_psk() {
  local who=$1 line
  ipsec_begin direct || return 1
  if [ "$who" = tsunagi ]; then
    sw_host q responder "${IP_SEED002_IKE%!}" "${IP_SEED002_ESP%!}" "$IP_PSK" || return 1
    ts_ipsec p initiator "$IP_SEED002_IKE" "$IP_SEED002_ESP" "$IP_WRONG_PSK" || return 1
    wait_for 40 sw_failed q || why "strongSwan (Q, responder) logged no failure matching SW_WRONG_PSK_RE" || return 1
  else
    ts_ipsec q responder "$IP_SEED002_IKE" "$IP_SEED002_ESP" "$IP_PSK" || return 1
    sw_host p initiator "${IP_SEED002_IKE%!}" "${IP_SEED002_ESP%!}" "$IP_WRONG_PSK" || return 1
    sw_initiate p && why "strongSwan (P) initiated with the wrong PSK and got an SA" && return 1
    wait_for 40 sw_failed p || why "strongSwan (P, initiator) logged no failure matching SW_WRONG_PSK_RE" || return 1
  fi
  wait_for 40 grep -Eq "$TS_WRONG_PSK_RE" "$SD/tsunagi.log" ||
    why "tsunagi's log has no line matching TS_WRONG_PSK_RE within 40 s" || return 1
  line=$(grep -E "$TS_WRONG_PSK_RE" "$SD/tsunagi.log" | head -n 1)
  echo "    tsunagi: $line" >&2
  echo "    strongSwan: $(grep -Eh "$SW_WRONG_PSK_RE" "$IP_DIR"/sw-?/charon.log | head -n 1)" >&2
  ! sw_child_installed p 2>/dev/null && ! sw_child_installed q 2>/dev/null || why "a CHILD_SA is installed with a wrong PSK" || return 1
  ! ip_ping "$IP_NS_PL" "$IP_HOST_Q" >/dev/null 2>&1 || why "traffic passes with a wrong PSK" || return 1
  ts_log_has_no_psk
}
scenario_i5_wrong_psk_tsunagi_initiates() { ipsec_wrong_psk tsunagi; }
scenario_i5_wrong_psk_strongswan_initiates() { ipsec_wrong_psk strongswan; }

# strongSwan against strongSwan through the NAT (i4's topology and checks), then a wrong
# PSK (i5's strongSwan-side checks).
selfcheck_ipsec_nat() {
  local t0 t pid
  t0=$(date +%s.%N)
  echo "    host: $(dpkg-query -W -f '${Package} ${Version}  ' strongswan-charon libcharon-extra-plugins libstrongswan-standard-plugins 2>/dev/null)" >&2
  ipsec_begin nat || return 1
  sw_host q responder "${IP_GCM_IKE%!}" "${IP_GCM_ESP%!}" "$IP_PSK" || return 1
  sw_host p initiator "${IP_GCM_IKE%!}" "${IP_GCM_ESP%!}" "$IP_PSK" || return 1
  t=$(date +%s.%N)
  sw_initiate p || why "strongSwan (P) could not initiate: $(tail -n 2 "$IP_DIR/sw-p/initiate.out" | tr '\n' ' ')" || return 1
  echo "    tunnel up after $(since "$t") s (P $P_ADDR behind the NAT -> Q $Q_ADDR)" >&2
  grep -q 'local host is behind NAT' "$IP_DIR/sw-p/charon.log" ||
    why "P's charon did not log 'local host is behind NAT'" || return 1
  sw_ctl q --list-sas | grep -qF "${P_SEEN}[4500]" || why "Q does not see P as ${P_SEEN}[4500] (the NAT's address)" || return 1
  ipsec_traffic q || return 1
  # The wrong PSK: P again with another key, Q as it was.
  sw_ctl p --terminate --ike iop --timeout 10 >/dev/null 2>&1
  wait_for 10 sw_no_child q || why "Q kept its CHILD_SA after P's delete" || return 1
  pid=$(cat "$IP_DIR/sw-p/pid")
  kill "$pid"
  wait_for 10 sh -c "! kill -0 $pid" || why "P's charon did not stop" || return 1
  mv "$IP_DIR/sw-p/charon.log" "$SD/charon-p-right-psk.log"
  cp "$IP_DIR/sw-q/charon.log" "$SD/charon-q-right-psk.log"
  : > "$IP_DIR/sw-q/charon.log"   # charon appends: from here on, only the wrong PSK's lines
  sw_host p initiator "${IP_GCM_IKE%!}" "${IP_GCM_ESP%!}" "$IP_WRONG_PSK" || return 1
  t=$(date +%s.%N)
  sw_initiate p && why "strongSwan (P) got an SA with the wrong PSK" && return 1
  wait_for 40 sw_failed p || why "wrong PSK: P's charon logged nothing matching SW_WRONG_PSK_RE" || return 1
  wait_for 40 sw_failed q || why "wrong PSK: Q's charon logged nothing matching SW_WRONG_PSK_RE" || return 1
  echo "    wrong PSK refused after $(since "$t") s; P: $(grep -Eo "$SW_WRONG_PSK_RE" "$IP_DIR/sw-p/charon.log" | sort -u | tr '\n' ';') Q: $(grep -Eo "$SW_WRONG_PSK_RE" "$IP_DIR/sw-q/charon.log" | sort -u | tr '\n' ';')" >&2
  ! ip_ping "$IP_NS_PL" "$IP_HOST_Q" >/dev/null 2>&1 || why "traffic passes with a wrong PSK" || return 1
  echo "    self-check total $(since "$t0") s" >&2
}

# ------------------------------------------------------------------ the VM's strongSwan
# ipsec.conf and ipsec.secrets as seed 002 writes them (`conn %default` keyingtries=0),
# charon's log into /tmp/charon.log (ike 2, knl 2), started with `ipsec start`.
# vm_charon_log: the VM's charon logs into /tmp/charon.log (ike 2, knl 2) from its next
# `ipsec start`.
vm_charon_log() {
  vm_exec "cat > /etc/strongswan.d/zz-interop-log.conf" <<'EOF'
charon {
  filelog {
    interop {
      path = /tmp/charon.log
      time_format = %T
      default = 1
      ike = 2
      knl = 2
      cfg = 1
      flush_line = yes
    }
  }
}
EOF
}
vm_ipsec_start() { # vm_ipsec_start CONN_TEXT SECRETS_LINE
  touch "$SD/.ipsec-vm"
  vm_exec "cat > /etc/ipsec.conf" <<EOF || why "cannot write the VM's ipsec.conf" || return 1
# tsunagi interop (${SD##*/})
config setup
        uniqueids=no

conn %default
        keyingtries=0

$1
EOF
  printf '%s\n' "$2" | vm_exec "umask 077; cat > /etc/ipsec.secrets" || why "cannot write the VM's ipsec.secrets" || return 1
  vm_charon_log || return 1
  vm_exec "ipsec start" </dev/null > "$SD/ipsec-start.txt" 2>&1 || why "ipsec start failed in the VM: $(tail -n 1 "$SD/ipsec-start.txt")" || return 1
  wait_for 30 vm_exec "ipsec status" </dev/null || why "the VM's charon does not answer 'ipsec status'"
}
vm_sa_installed() { vm_exec "ipsec status | grep -q 'INSTALLED, $1'" </dev/null; }
# vm_xfrm_packets: the packets the VM's kernel SAs counted (both directions, summed).
vm_xfrm_packets() {
  vm_exec "ip -s xfrm state" </dev/null 2>/dev/null |
    awk '/lifetime current:/ {getline; if (match($0, /[0-9]+\(packets\)/)) p += substr($0, RSTART, RLENGTH - 9)} END {print p + 0}'
}

# The VM's side of v2 (and of selfcheck-ipsec-vm): 192.168.2.0/24 behind it, the peer
# (10.200.0.1) initiates.
V2_IKE='aes128-sha256-modp2048!'
V2_ESP='aes128gcm16!'
vm_v2_conn() {
  cat <<EOF
conn v2
        keyexchange=ikev1
        authby=secret
        left=$VM_IP
        leftsubnet=192.168.2.0/24
        right=$HOST_IP
        rightsubnet=192.168.1.0/24
        ike=$V2_IKE
        esp=$V2_ESP
        type=tunnel
        auto=add
EOF
}
# The checks of v2 and the self-check: both LANs, both ways, and the VM's kernel counts.
vm_tunnel_checks() {
  local n
  wait_for 60 vm_sa_installed TUNNEL || why "no CHILD_SA installed in the VM within 60 s" || return 1
  check_ping || return 1
  check_transfer 5310 || return 1
  n=$(vm_xfrm_packets)
  [ "${n:-0}" -ge 1000 ] || why "the VM's kernel SAs counted ${n:-0} packets: the traffic did not pass its ESP" || return 1
  echo "    VM: $(vm_exec "ipsec status | grep -E 'INSTALLED|===' | sed 's/^ *//'" </dev/null | tr '\n' ' '); kernel SAs counted $n packets" >&2
}

# selfcheck-ipsec-vm: host strongSwan libipsec in $NS_GW where tsunagi sits in v2.
selfcheck_ipsec_vm() {
  local t0 d out
  t0=$(date +%s.%N)
  IP_DIR=$(mktemp -d -t tsunagi-iop-ipsec.XXXXXX) || { why "mktemp failed"; return 1; }
  echo "$IP_DIR" > "$SD/.ipsec"; : > "$SD/.ipsec-netns"; : > "$SD/.ipsec-pids"
  echo "    VM: $(vm_exec "dpkg-query -W -f '\${Package} \${Version}  ' strongswan-charon strongswan-starter; uname -r" </dev/null | tr '\n' ' ')" >&2
  # (is-enabled exits 1 for a masked unit: its word is what counts.)
  out=$(vm_exec "systemctl is-enabled strongswan-starter; systemctl is-active strongswan-starter" </dev/null 2>/dev/null | tr '\n' ' ')
  [ "$out" = "masked inactive " ] || why "strongswan-starter.service is not masked and inactive in the image: $out" || return 1
  vm_ipsec_start "$(vm_v2_conn)" "$VM_IP $HOST_IP : PSK \"$IP_PSK\"" || return 1
  d=$IP_DIR/sw-gw
  sw_host_conf "$d"
  sw_host_swanctl "$d" "$HOST_IP" "$VM_IP" "$HOST_IP" "$VM_IP" 192.168.1.0/24 192.168.2.0/24 \
    "${V2_IKE%!}" "${V2_ESP%!}" "$IP_PSK"
  sw_host_start "$NS_GW" gw || return 1
  sw_initiate gw || why "host strongSwan could not initiate to the VM: $(tail -n 2 "$d/initiate.out" | tr '\n' ' ')" || return 1
  vm_tunnel_checks || return 1
  echo "    self-check total $(since "$t0") s" >&2
}

scenario_v2_tunnel() {
  vm_ipsec_start "$(vm_v2_conn)" "$VM_IP $HOST_IP : PSK \"$IP_PSK\"" || return 1
  ( umask 077
    printf '%s %s : PSK "%s"\n' "$HOST_IP" "$VM_IP" "$IP_PSK" > "$SD/ipsec.secrets"
    ts_ipsec_config "$SD/ts.sock" "$SD/tsunagi.log" "$HOST_IP" "$VM_IP" "$HOST_IP" "$VM_IP" \
      192.168.1.0/24 192.168.2.0/24 "$V2_IKE" "$V2_ESP" start "$SD/ipsec.secrets" > "$SD/tsunagi.toml" )
  IP_DIR=""; : > "$SD/.ipsec-pids"; : > "$SD/.ipsec-netns"; echo none > "$SD/.ipsec"
  ts_ipsec_start "$NS_GW" || return 1
  vm_tunnel_checks || return 1
  ts_log_has_no_psk
}

# ------------------------------------------------------------------ v1: transport mode
# Seed 002's conn, word for word except: `left=%defaultroute` is the VM's address (the VM
# has no default route), `right` is the host, `leftfirewall=yes` is left out (the VM has no
# iptables: the seed's firewall is tsunagi's to open, its own test), and the conn's name.
# vm_v1_conn [LEFT RIGHT]: default the VM and the host (the self-check: its own pair).
vm_v1_conn() {
  cat <<EOF
conn v1
        keyexchange=ikev1
        authby=secret
        right=${2:-$HOST_IP}
        ike=3des-sha1-modp1024!
        esp=3des-sha1-modp1024!
        auto=start
        left=${1:-$VM_IP}
        leftprotoport=17/1701
        rightprotoport=17/1701
        type=transport
EOF
}
# vm_v1_exchange PEER: once the VM's transport SA is installed, five datagrams from the
# VM's port 1701 to PEER's, each echoed back; the VM's kernel SAs must count them.
vm_v1_exchange() {
  local peer=$1 out n
  wait_for 60 vm_sa_installed TRANSPORT || why "no transport-mode CHILD_SA in the VM within 60 s (auto=start)" || return 1
  out=$(vm_exec "for i in 1 2 3 4 5; do echo v1-probe-\$i | timeout 4 socat -T 2 - UDP4:$peer:1701,sourceport=1701,reuseaddr; done" </dev/null 2>&1)
  [ "$(grep -c '^v1-probe-' <<<"$out")" = 5 ] || why "UDP 1701 exchange with $peer: 5 sent, echoes back: $(tr '\n' ' ' <<<"$out")" || return 1
  n=$(vm_xfrm_packets)
  [ "${n:-0}" -ge 10 ] || why "the VM's kernel SAs counted ${n:-0} packets: the datagrams did not pass its ESP" || return 1
  echo "    VM: $(vm_exec "ipsec status | grep -E 'INSTALLED|===' | sed 's/^ *//'" </dev/null | tr '\n' ' '); 5 datagrams echoed on udp/1701; kernel SAs counted $n packets" >&2
}
# tsunagi's side of v1: the responder for the VM in $NS_GW on $HOST_IP, a transport-mode
# conn with seed 002's proposal and 17/1701 both sides (right = the VM, auto = "add"), the
# PSK for the two addresses; and a UDP echo bound to $HOST_IP:1701 in $NS_GW. The daemon
# steers the echo's replies into its tun (`ip rule to VM ipproto udp sport 1701 dport 1701
# lookup 24967`, the table from the conn name `l2tp`) and seals them (crates/tsunagi/src/ipsec/transport_path.rs); the VM's
# datagrams reach the echo after tsunagi opened them.
ts_ipsec_v1_config() { # SOCK LOG SECRETS
  cat <<EOF
[daemon]
control_socket = "$1"
log_file = "$2"

[ipsec.v1]
left = "$HOST_IP"
right = "$VM_IP"
secrets = "$3"
ike = "3des-sha1-modp1024!"
esp = "3des-sha1-modp1024!"
type = "transport"
leftprotoport = "17/1701"
rightprotoport = "17/1701"
auto = "add"
keyingtries = 0
tun = "ipsec-v1"
EOF
}
ts_ipsec_v1_side() {
  local pid
  ( umask 077
    printf '%s %s : PSK "%s"\n' "$HOST_IP" "$VM_IP" "$IP_PSK" > "$SD/ipsec.secrets"
    ts_ipsec_v1_config "$SD/ts.sock" "$SD/tsunagi.log" "$SD/ipsec.secrets" > "$SD/tsunagi.toml" )
  IP_DIR=""; : > "$SD/.ipsec-pids"; : > "$SD/.ipsec-netns"; echo none > "$SD/.ipsec"
  ts_ipsec_start "$NS_GW" || return 1
  setsid ip netns exec "$NS_GW" socat -T 3 "UDP4-RECVFROM:1701,bind=$HOST_IP,reuseaddr,fork" EXEC:cat \
    </dev/null > "$SD/echo.out" 2>&1 &
  pid=$!
  ip_pid "$pid" udp-echo
  wait_for 10 sh -c "ip netns exec '$NS_GW' ss -Hlnu 'sport = :1701' | grep -q ." ||
    why "no UDP echo on $HOST_IP:1701 in $NS_GW: $(tail -n 1 "$SD/echo.out")"
}
scenario_v1_transport_seed002() {
  ts_ipsec_v1_side || return 1
  vm_ipsec_start "$(vm_v1_conn)" "$HOST_IP : PSK \"$IP_PSK\"" || return 1
  vm_v1_exchange "$HOST_IP" || return 1
  ts_log_has_no_psk
}

# selfcheck-ipsec-vm-transport: v1's VM side (seed 002's conn, `ipsec start`, the UDP
# exchange) against a second charon with the kernel's ESP in the VM's netns ipsp
# (10.205.0.2, veth ipspv 10.205.0.1 in the VM's root namespace), standing in for tsunagi:
# responder, transport mode, dynamic[udp/1701] both ways, a UDP echo on 1701. Its charon
# gets a /run of its own like the host's (a bind mount), files in /tmp/ipsp.
IPSP_NS=ipsp IPSP_VM=10.205.0.1 IPSP_PEER=10.205.0.2
selfcheck_ipsec_vm_transport() {
  local t0
  t0=$(date +%s.%N)
  touch "$SD/.ipsec-vm"
  vm_exec "set -e; ip netns add $IPSP_NS; ip -n $IPSP_NS link set lo up
    ip link add ipspv type veth peer name eth0 netns $IPSP_NS
    ip addr add $IPSP_VM/24 dev ipspv; ip link set ipspv up
    ip -n $IPSP_NS addr add $IPSP_PEER/24 dev eth0; ip -n $IPSP_NS link set eth0 up
    mkdir -p /tmp/ipsp/run" </dev/null || why "cannot make netns $IPSP_NS in the VM" || return 1
  vm_exec "cat > /tmp/ipsp/strongswan.conf" <<EOF || why "cannot write the peer's strongswan.conf" || return 1
charon {
  load_modular = no
  load = random nonce openssl aes sha1 sha2 md5 hmac gmp kdf pubkey kernel-netlink socket-default vici
  filelog {
    ipsp {
      path = /tmp/ipsp/charon.log
      time_format = %T
      default = 1
      ike = 2
      knl = 2
      flush_line = yes
    }
  }
  plugins {
    vici { socket = unix:///tmp/ipsp/charon.vici }
  }
}
EOF
  vm_exec "umask 077; cat > /tmp/ipsp/swanctl.conf" <<EOF || why "cannot write the peer's swanctl.conf" || return 1
connections {
  v1peer {
    version = 1
    local_addrs = $IPSP_PEER
    remote_addrs = $IPSP_VM
    proposals = 3des-sha1-modp1024
    local { auth = psk
      id = $IPSP_PEER }
    remote { auth = psk
      id = $IPSP_VM }
    children {
      v1peer {
        mode = transport
        local_ts = dynamic[udp/1701]
        remote_ts = dynamic[udp/1701]
        esp_proposals = 3des-sha1-modp1024
      }
    }
  }
}
secrets {
  ike-v1peer {
    id-a = $IPSP_VM
    id-b = $IPSP_PEER
    secret = "$IP_PSK"
  }
}
EOF
  vm_exec "ip netns exec $IPSP_NS setsid sh -c 'mount --bind /tmp/ipsp/run /run && STRONGSWAN_CONF=/tmp/ipsp/strongswan.conf exec /usr/lib/ipsec/charon' </dev/null >/tmp/ipsp/charon.out 2>&1 &
    for i in \$(seq 50); do [ -S /tmp/ipsp/charon.vici ] && break; sleep 0.2; done
    swanctl --load-all --uri unix:///tmp/ipsp/charon.vici --file /tmp/ipsp/swanctl.conf
    ip netns exec $IPSP_NS setsid socat UDP4-RECVFROM:1701,reuseaddr,fork EXEC:cat </dev/null >/tmp/ipsp/echo.out 2>&1 &" \
    </dev/null > "$SD/ipsp-start.txt" 2>&1 ||
    why "the peer charon in the VM's netns $IPSP_NS did not start: $(tail -n 2 "$SD/ipsp-start.txt" | tr '\n' ' ')" || return 1
  vm_ipsec_start "$(vm_v1_conn "$IPSP_VM" "$IPSP_PEER")" "$IPSP_PEER : PSK \"$IP_PSK\"" || return 1
  vm_v1_exchange "$IPSP_PEER" || return 1
  vm_exec "ipsec status" </dev/null | grep -qF "$IPSP_VM/32[udp/l2f] === $IPSP_PEER/32[udp/l2f]" ||
    why "the VM's SA is not $IPSP_VM/32[udp/l2f] === $IPSP_PEER/32[udp/l2f] (seed 002's 'ipsec status' shape)" || return 1
  echo "    self-check total $(since "$t0") s" >&2
}
