# shellcheck shell=bash
# L2TP/IPsec (issue 14): seed 002's Linux client, strongSwan (`ipsec start`, the kernel's
# ESP in transport mode) + xl2tpd + pppd in the VM, against tsunagi's L2TP/IPsec server,
# and tsunagi's client with seed 002's settings against strongSwan + xl2tpd + pppd as the
# server. Sourced by run.sh after scenarios_ipsec.sh (it uses scenarios_pptp.sh's,
# scenarios_l2tp.sh's and run.sh's helpers: vx, since, vm_log_has, vm_ppp_addr,
# wait_vm_ppp, l2tp_count, ts_accepts, ts_cli, ts_start, ts_status, ts_up, check_transfer).
# It extends SCENARIOS, SELFCHECKS and AFTER_SCENARIO; x1 and x2 run by default
# (L2TP_IPSEC_SCENARIOS_ON=0 leaves them out unless INTEROP_ONLY names them).
#
# Seed 002's client files, written into the VM as the seed writes them. Only addresses
# and secrets differ (the server's address, its PSK, the PPP password, `local ip`), and:
#   - options.l2tpd.client goes without `crtscts` and `lock`: Debian's xl2tpd uses the
#     kernel's L2TP and starts pppd with the pppol2tp plugin, not on a tty, and pppd 2.4.9
#     then stops at "unrecognized option 'lock'" (as in scenarios_l2tp.sh);
#   - the seed's /etc/ipsec.secret and /etc/xl2tpd.conf are /etc/ipsec.secrets and
#     /etc/xl2tpd/xl2tpd.conf, the paths strongSwan 5.9 and xl2tpd 1.3.18 read;
#   - `left=%defaultroute` stays: strongSwan 5's starter reads it as %any (the address
#     toward `right`), so the VM needs no default route for it;
#   - `defaultroute` stays: pppd adds a default route through ppp0 only when there is
#     none, and the VM has none; the harness reaches the VM on the connected 10.200.0.0/24,
#     which a default route does not override. It goes with pppd.
#   - `leftfirewall=yes` stays: the image has iptables for strongSwan's updown script.
# pppd's and charon's logs come from files outside the seed's: /etc/ppp/options (`debug`,
# `logfile /tmp/l2i-pppd.log`: every pppd reads it first, and the server's pppd overrides
# the logfile in its own options; the image leaves the file empty) and
# /etc/strongswan.d/zz-interop-log.conf (scenarios_ipsec.sh's, /tmp/charon.log).
#
#   /etc/ipsec.conf            conn %default keyingtries=0; conn idcf: keyexchange=ikev1,
#                              authby=secret, right=LNS, ike=/esp=3des-sha1-modp1024!,
#                              leftfirewall=yes, auto=start, left=%defaultroute,
#                              leftprotoport=17/1701, rightprotoport=17/1701, type=transport
#   /etc/ipsec.secrets         LNS : PSK "..."
#   /etc/xl2tpd/xl2tpd.conf    [lac idcf] lns = LNS, pppoptfile, length bit = yes,
#                              local ip = 10.99.0.10, autodial, redial = yes,
#                              redial timeout = 10, max redials = 6
#   /etc/ppp/options.l2tpd.client   name xxxx, password ..., noauth, mtu 1410, mru 1410,
#                              defaultroute, persist
# As the seed: `ipsec start`, wait for the transport SA (auto=start), then xl2tpd
# (autodial), whose pppd brings up ppp0.
#
# The server side, in the README's terms (its L2TP/IPsec server example): localip
# 10.99.0.1, pool 10.99.0.10-99, MS-CHAPv2 required, user xxxx; the seed's `local ip` is
# the address the server gives xxxx (chap-secrets' fourth column on tsunagi's server, the
# first of xl2tpd's `ip range`): pppd insists on an address it was given and would not
# take another from the server's Nak.
#
#  $NS_GW tap 10.200.0.1 ------------------------- eth0 10.200.0.2 (VM)      VM netns l2sp
#                                                  l2spv 10.206.0.1 -------- eth0 10.206.0.2
#  x1  the VM's client (VM root) dials tsunagi's [server.lns] with `ipsec = "l2tp"` and a
#      transport conn for %any on 10.200.0.1: IKE, the SA, L2TP and PPP; ping 10.99.0.1 and
#      back, 1 MiB of TCP each way ($NS_GW <-> the VM's ppp0), tsunagi's status shows the
#      client (`l2tp_ipsec_clients`).
#  x2  tsunagi's [link.idcf] (mode = "l2tp", ipsec = "idcf": seed 002's conn and LAC) in
#      $NS_GW dials strongSwan (conn for %any, transport, 17/1701) + xl2tpd [lns default]
#      + pppd in the VM's root on 10.200.0.2; ping and 1 MiB each way; then the server
#      stops and starts again, and the link (persist) comes back by itself.
#  selfcheck-l2tp-ipsec-vm  the VM's client files (x1's, with LNS 10.206.0.2) against x2's
#      server files in the VM's netns l2sp: no tsunagi, so that a failure of x1 or x2 can be
#      told apart from a broken VM side.
# Every one of them also checks that no L2TP crossed the wire in the clear: a capture of
# the outer interface has ESP and no UDP 1701.
#
# The VM's server (x2, the self-check) keeps its own files in /tmp/l2sp: ipsec.conf,
# ipsec.secrets and strongswan.conf bind-mounted over /etc's, and /run, in a mount
# namespace of its own (`ip netns exec` makes one; `unshare -m` in the VM's root), so that
# its starter and charon run beside the client's; `l2sp_ctl` runs `ipsec` commands in it.
#
# Logs in each scenario's directory (l2tp_ipsec_after, AFTER_SCENARIO):
#   charon-vm.log, sas-vm.txt       the client's charon, ipsec statusall, ip -s xfrm state,
#                                   iptables -S (leftfirewall)
#   xl2tpd-lac.log, pppd.log        the client's xl2tpd (stderr) and pppd (debug)
#   charon-server.log, sas-server.txt, xl2tpd-lns.log, lns-pppd.log    the VM's server
#                                   (x2: *-1.log and sas-server-1.txt before its restart)
#   outer.pcap, outer.txt           the outer interface (IKE, ESP, UDP 1701), decoded
#   tsunagi.toml, tsunagi.log (RUST_LOG=debug), status.json, status.txt   tsunagi's side

L2TP_IPSEC_SCENARIOS=(
  x1-seed002-client-dials-tsunagi
  x2-tsunagi-dials-strongswan-xl2tpd
)
L2TP_IPSEC_SCENARIOS_ON=${L2TP_IPSEC_SCENARIOS_ON:-1}
l2tp_ipsec_named() {
  local w s
  for w in ${INTEROP_ONLY:-}; do
    for s in "${L2TP_IPSEC_SCENARIOS[@]}"; do [[ $s == "$w"* ]] && return 0; done
  done
  return 1
}
if [ "$L2TP_IPSEC_SCENARIOS_ON" = 1 ] || l2tp_ipsec_named; then
  SCENARIOS+=("${L2TP_IPSEC_SCENARIOS[@]}")
fi
SELFCHECKS+=(selfcheck-l2tp-ipsec-vm)
AFTER_SCENARIO+=(l2tp_ipsec_after)

L2I_CONN=idcf                   # seed 002's conn and [lac ...] name
L2I_USER=xxxx                   # seed 002's `name`
L2I_PW=iop-l2i-$(od -An -N9 -tx1 /dev/urandom | tr -d ' \n')       # its `password yyyy`
L2I_PSK=iop-l2i-psk-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n') # its PSK
L2I_LOCAL=10.99.0.1             # the server's PPP address (the README's localip)
L2I_POOL_FIRST=10.99.0.10       # the README's remoteip 10.99.0.10-99
L2I_POOL_LAST=10.99.0.99
L2I_CLIENT=$L2I_POOL_FIRST      # seed 002's `local ip`: the client's PPP address
L2SP_NS=l2sp                    # the self-check's server namespace in the VM
L2SP_VM=10.206.0.1              # the VM's root (the client) on veth l2spv
L2SP_ADDR=10.206.0.2            # the server in l2sp
L2SP_DIR=/tmp/l2sp              # the VM's server's files
L2I_CONTROL=/var/run/xl2tpd/l2tp-control   # the client xl2tpd's control pipe (default)

# ------------------------------------------------------------------ seed 002's client files
l2i_client_ipsec_conf() { # LNS
  cat <<EOF
# tsunagi interop: seed 002's /etc/ipsec.conf (right changed)
conn %default
        keyingtries=0

conn $L2I_CONN
        keyexchange=ikev1
        authby=secret
        right=$1
        ike=3des-sha1-modp1024!
        esp=3des-sha1-modp1024!
        leftfirewall=yes
        auto=start
        left=%defaultroute
        leftprotoport=17/1701
        rightprotoport=17/1701
        type=transport
EOF
}
l2i_client_xl2tpd_conf() { # LNS
  cat <<EOF
[lac $L2I_CONN]
lns = $1
pppoptfile = /etc/ppp/options.l2tpd.client
length bit = yes
local ip = $L2I_CLIENT
autodial = yes
redial = yes
redial timeout = 10
max redials = 6
EOF
}
# Without the seed's `crtscts` and `lock` (tty options; see the header).
l2i_client_options() {
  cat <<EOF
name $L2I_USER
password $L2I_PW
noauth
mtu 1410
mru 1410
defaultroute
persist
EOF
}

# ------------------------------------------------------------------ the VM's server files
# strongSwan: a transport conn for any client's UDP 1701 (the ports as L2TP/IPsec servers
# write them: 17/1701 here, 17/%any there), the README's proposals plus seed 002's: its
# `esp=3des-sha1-modp1024!` asks for PFS, and strongSwan (as tsunagi) does not choose a
# proposal without a group for a peer that wants one.
L2I_SERVER_IKE='aes256-sha1-modp2048,aes128-sha1-modp2048,3des-sha1-modp2048,3des-sha1-modp1024'
L2I_SERVER_ESP='aes256-sha1,aes128-sha1,3des-sha1,3des-sha1-modp1024'
l2i_server_ipsec_conf() { # ADDR
  cat <<EOF
# tsunagi interop: an L2TP/IPsec server's conn
conn l2tp-psk
        keyexchange=ikev1
        authby=secret
        type=transport
        left=$1
        leftprotoport=17/1701
        right=%any
        rightprotoport=17/%any
        ike=$L2I_SERVER_IKE
        esp=$L2I_SERVER_ESP
        auto=add
EOF
}
# charon as Debian configures it (its plugins' files), logging into $L2SP_DIR/charon.log.
l2i_server_strongswan_conf() {
  cat <<EOF
charon {
  load_modular = yes
  plugins {
    include /etc/strongswan.d/charon/*.conf
  }
  filelog {
    l2sp {
      path = $L2SP_DIR/charon.log
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
# xl2tpd's LNS: its example's [lns default] with the README's pool, MS-CHAPv2 through pppd
# (not the example's `require chap = yes`: xl2tpd passes pppd `require-chap`, and pppd
# then asks for CHAP-MD5 before MS-CHAPv2).
l2i_server_xl2tpd_conf() {
  cat <<EOF
[global]
debug avp = yes
debug state = yes
debug tunnel = yes

[lns default]
ip range = $L2I_POOL_FIRST-$L2I_POOL_LAST
local ip = $L2I_LOCAL
refuse pap = yes
require authentication = yes
name = l2tpd
ppp debug = yes
pppoptfile = $L2SP_DIR/options.xl2tpd
length bit = yes
EOF
}
l2i_server_options() {
  cat <<EOF
require-mschap-v2
ms-dns $L2I_LOCAL
noccp
auth
mtu 1410
mru 1410
nodefaultroute
debug
logfile $L2SP_DIR/pppd.log
EOF
}
l2i_chap_secrets() { # [ADDRESS]: xxxx's line, pppd's format
  printf '# client server secret IP addresses\n%s * %s %s\n' "$L2I_USER" "$L2I_PW" "${1:-*}"
}

# ------------------------------------------------------------------ VM helpers
# l2i_begin: every scenario starts here: what an earlier one left is stopped, pppd's
# `debug` and log file and the chap-secrets written.
l2i_begin() {
  touch "$SD/.l2i"
  l2i_vm_cleanup
  vm_exec "date +%s" </dev/null > "$SD/.l2i" || why "the VM does not answer" || return 1
  { l2i_chap_secrets | vm_exec "umask 077; cat > /etc/ppp/chap-secrets; printf 'debug\\nlogfile /tmp/l2i-pppd.log\\n' > /etc/ppp/options; mkdir -p /var/run/xl2tpd"; } ||
    why "cannot write /etc/ppp/chap-secrets and /etc/ppp/options in the VM" || return 1
}
# l2i_capture IFACE: IKE, ESP and UDP 1701 on the VM's IFACE (the outer side).
l2i_capture() {
  vm_exec "setsid tcpdump -i $1 -s 128 -U -w /tmp/l2i.pcap 'udp port 1701 or udp port 500 or udp port 4500 or ip proto 50' \
    </dev/null >/tmp/l2i-tcpdump.out 2>&1 &" </dev/null
  wait_for 10 vm_exec "grep -q listening /tmp/l2i-tcpdump.out" </dev/null ||
    why "tcpdump did not start on the VM's $1"
}
# l2i_no_clear_l2tp: the capture so far has ESP and no plain L2TP (UDP 1701 outside ESP).
l2i_no_clear_l2tp() {
  local clear esp
  clear=$(vm_exec "tcpdump -r /tmp/l2i.pcap -nn 'udp port 1701' 2>/dev/null | wc -l" </dev/null)
  esp=$(vm_exec "tcpdump -r /tmp/l2i.pcap -nn 'ip proto 50 or (udp port 4500 and udp[8:4] != 0)' 2>/dev/null | wc -l" </dev/null)
  [ "${clear:-1}" = 0 ] ||
    why "$clear UDP 1701 packets crossed the outer interface in the clear (outer.txt): L2TP outside IPsec" || return 1
  [ "${esp:-0}" -ge 100 ] || why "only ${esp:-0} ESP packets on the outer interface: the traffic did not go through IPsec" || return 1
  echo "    outer interface: $esp ESP packets, no plain UDP 1701" >&2
}
# The VM's server: l2sp_ctl CMD runs CMD in its charon's mount and network namespaces.
l2sp_ctl() {
  vm_exec "p=\$(cat $L2SP_DIR/run/charon.pid 2>/dev/null) && nsenter -t \$p -m -n $*" </dev/null
}
# l2i_vm_server_start VM_NS ADDR: strongSwan (`ipsec start`) and xl2tpd's LNS as the
# server on ADDR, in the VM's namespace VM_NS ("-": its root).
l2i_vm_server_start() {
  local ns=$1 addr=$2 mnt
  vm_exec "rm -rf $L2SP_DIR; mkdir -p $L2SP_DIR/run; chmod 700 $L2SP_DIR" </dev/null &&
    { l2i_server_ipsec_conf "$addr" | vm_exec "cat > $L2SP_DIR/ipsec.conf"; } &&
    { printf '%s %%any : PSK "%s"\n' "$addr" "$L2I_PSK" | vm_exec "umask 077; cat > $L2SP_DIR/ipsec.secrets"; } &&
    { l2i_server_strongswan_conf | vm_exec "cat > $L2SP_DIR/strongswan.conf"; } &&
    { l2i_server_xl2tpd_conf | vm_exec "cat > $L2SP_DIR/xl2tpd.conf"; } &&
    { l2i_server_options | vm_exec "cat > $L2SP_DIR/options.xl2tpd"; } ||
    why "cannot write the server's files in the VM" || return 1
  mnt="mount --bind $L2SP_DIR/run /run && mount --bind $L2SP_DIR/ipsec.conf /etc/ipsec.conf &&
    mount --bind $L2SP_DIR/ipsec.secrets /etc/ipsec.secrets && mount --bind $L2SP_DIR/strongswan.conf /etc/strongswan.conf"
  vm_exec "$(vx "$ns")unshare -m --propagation slave sh -c '$mnt && exec ipsec start'" </dev/null > "$SD/server-start.txt" 2>&1 ||
    why "the server's ipsec start failed: $(tail -n 2 "$SD/server-start.txt" | tr '\n' ' ')" || return 1
  wait_for 30 l2sp_ctl ipsec status || why "the server's charon does not answer 'ipsec status'" || return 1
  vm_exec "$(vx "$ns")setsid xl2tpd -D -c $L2SP_DIR/xl2tpd.conf -p $L2SP_DIR/xl2tpd.pid -C $L2SP_DIR/l2tp-control \
    </dev/null >$L2SP_DIR/xl2tpd.log 2>&1 &" </dev/null
  wait_for 15 vm_exec "$(vx "$ns")ss -Hlnu 'sport = :1701' | grep -q ." </dev/null ||
    why "the server's xl2tpd does not listen on UDP 1701: $(vm_exec "tail -n 2 $L2SP_DIR/xl2tpd.log" </dev/null)"
}
# l2i_vm_server_stop: xl2tpd (SIGTERM: StopCCN to its tunnels), then strongSwan (ipsec
# stop: IKE delete notifications).
l2i_vm_server_stop() {
  vm_exec "p=\$(cat $L2SP_DIR/xl2tpd.pid 2>/dev/null) && kill \$p
    for i in \$(seq 1 25); do kill -0 \$p 2>/dev/null || break; sleep 0.2; done
    c=\$(cat $L2SP_DIR/run/charon.pid 2>/dev/null) && nsenter -t \$c -m -n ipsec stop
    for i in \$(seq 1 25); do kill -0 \$c 2>/dev/null || break; sleep 0.2; done; true" </dev/null >/dev/null 2>&1
}
# l2i_vm_server_logs DIR SUFFIX: the VM's server's logs into DIR.
l2i_vm_server_logs() {
  l2sp_ctl ipsec statusall > "$1/sas-server$2.txt" 2>&1
  vm_exec "cat $L2SP_DIR/charon.log" </dev/null > "$1/charon-server$2.log" 2>/dev/null
  vm_exec "cat $L2SP_DIR/xl2tpd.log" </dev/null > "$1/xl2tpd-lns$2.log" 2>/dev/null
  vm_exec "cat $L2SP_DIR/pppd.log" </dev/null > "$1/lns-pppd$2.log" 2>/dev/null
}
l2i_vm_sa() { vm_exec "ipsec status 2>/dev/null | grep -q 'INSTALLED, TRANSPORT'" </dev/null; }
# l2i_vm_client_start LNS: seed 002's files, `ipsec start`, the transport SA, xl2tpd.
l2i_vm_client_start() {
  local lns=$1 t
  { l2i_client_ipsec_conf "$lns" | vm_exec "cat > /etc/ipsec.conf"; } &&
    { printf '%s : PSK "%s"\n' "$lns" "$L2I_PSK" | vm_exec "umask 077; cat > /etc/ipsec.secrets"; } &&
    { l2i_client_xl2tpd_conf "$lns" | vm_exec "cat > /etc/xl2tpd/xl2tpd.conf"; } &&
    { l2i_client_options | vm_exec "umask 077; cat > /etc/ppp/options.l2tpd.client"; } ||
    why "cannot write seed 002's files in the VM" || return 1
  vm_charon_log || why "cannot write the client's charon log settings" || return 1
  t=$(date +%s.%N)
  vm_exec "ipsec start" </dev/null > "$SD/ipsec-start.txt" 2>&1 ||
    why "ipsec start failed in the VM: $(tail -n 1 "$SD/ipsec-start.txt")" || return 1
  wait_for 60 l2i_vm_sa ||
    why "the VM's conn $L2I_CONN (auto=start) has no transport SA with $lns within 60 s" || return 1
  echo "    VM: transport SA after $(since "$t") s: $(vm_exec "ipsec status | grep -E 'INSTALLED|===' | sed 's/^ *//'" </dev/null | tr '\n' ' ')" >&2
  vm_exec "setsid xl2tpd -D -c /etc/xl2tpd/xl2tpd.conf -p /run/xl2tpd-l2i.pid -C $L2I_CONTROL \
    </dev/null >/tmp/xl2tpd-lac.log 2>&1 &" </dev/null
  wait_for 15 vm_exec "test -p $L2I_CONTROL && grep -q 'xl2tpd version' /tmp/xl2tpd-lac.log" </dev/null ||
    why "the VM's xl2tpd did not start: $(vm_exec 'tail -n 2 /tmp/xl2tpd-lac.log' </dev/null)"
}
# l2i_vm_client_checks LNS: after the client's ppp0 is up: the seed's address and MTU,
# the default route, leftfirewall's rules, CHAP (MS-CHAPv2) and the tunnel in the logs.
l2i_vm_client_checks() {
  local lns=$1 a dev addr mtu t0
  t0=$(date +%s.%N)
  a=$(wait_vm_ppp - "$L2I_LOCAL" "${L2I_CLIENT//./\\.}" 90) ||
    why "the VM's ppp0 did not come up with $L2I_CLIENT (the seed's local ip) peer $L2I_LOCAL: '${a:-none}'" || return 1
  read -r dev addr <<<"$a"
  echo "    VM: $dev $addr peer $L2I_LOCAL after $(since "$t0") s more" >&2
  vm_log_has /tmp/xl2tpd-lac.log "Connection established to ${lns//./\\.}, [0-9]+" &&
    vm_log_has /tmp/xl2tpd-lac.log "Call established with ${lns//./\\.}" ||
    why "the VM's xl2tpd did not log 'Connection established to $lns' and 'Call established with $lns'" || return 1
  vm_exec "cat /tmp/l2i-pppd.log" </dev/null > "$SD/pppd.log" 2>/dev/null
  grep -q 'CHAP authentication succeeded' "$SD/pppd.log" ||
    why "the VM's pppd did not log 'CHAP authentication succeeded'" || return 1
  grep -Eq 'rcvd \[LCP ConfReq .*<auth chap MS-v2>' "$SD/pppd.log" ||
    why "the server did not ask the VM's pppd for MS-CHAPv2 (no '<auth chap MS-v2>' in its log)" || return 1
  mtu=$(vm_exec "cat /sys/class/net/$dev/mtu" </dev/null)
  [ "$mtu" = 1410 ] || why "the VM's $dev has MTU ${mtu:-?}, not seed 002's 1410" || return 1
  vm_exec "ip route show default" </dev/null | grep -q "dev $dev" ||
    why "the VM's pppd added no default route via $dev (defaultroute)" || return 1
  vm_exec "iptables -S INPUT" </dev/null | grep -F -- "-s $lns/32" | grep -q -- '--pol ipsec' ||
    why "no leftfirewall rule for $lns in the VM's INPUT chain (iptables -S INPUT: $(vm_exec 'iptables -S INPUT' </dev/null | tr '\n' ' '))" || return 1
  echo "    VM: pppd $(grep -Eo 'CHAP authentication succeeded.*' "$SD/pppd.log" | head -n 1), MS-CHAPv2, MTU $mtu, default route via $dev, leftfirewall's INPUT rule for $lns" >&2
}
# l2i_vm_xfer SERVER_NS SERVER_ADDR CLIENT_NS CLIENT_ADDR PORT: 1 MiB each way between two
# of the VM's namespaces, with sha256; prints the checksums.
l2i_vm_xfer() {
  vm_exec bash -s 2>&1 <<EOF
set -e
xfer() { # xfer RX_NS TX_NS TO
  head -c 1048576 /dev/urandom > /tmp/l2i.bin
  want=\$(sha256sum < /tmp/l2i.bin | cut -c1-64)
  rm -f /tmp/l2i.got
  (\$1 timeout 60 socat -u TCP-LISTEN:$5,reuseaddr STDOUT | sha256sum | cut -c1-64 > /tmp/l2i.got) &
  for i in \$(seq 1 50); do \$1 ss -Hltn 'sport = :$5' | grep -q . && break; sleep 0.1; done
  \$2 timeout 60 socat -u FILE:/tmp/l2i.bin TCP:\$3:$5
  wait
  [ "\$(cat /tmp/l2i.got)" = "\$want" ] || { echo "to \$3: sent \$want, received \$(cat /tmp/l2i.got)"; exit 1; }
  printf '%s ' "\$want"
}
xfer "$(vx "$1")" "$(vx "$3")" $2
xfer "$(vx "$3")" "$(vx "$1")" $4
EOF
}

# Stops everything of these scenarios in the VM: pppd, xl2tpd, tcpdump, both strongSwans
# (the updown script removes leftfirewall's rules), the namespace l2sp, the SAs, and
# empties /etc/ppp/options again.
l2i_vm_cleanup() {
  vm_exec "for n in pppd tcpdump; do for p in \$(pgrep -x \$n); do kill \$p; done; done
    for i in \$(seq 1 30); do pgrep -x pppd >/dev/null || break; sleep 0.2; done
    for p in \$(pgrep -x xl2tpd); do kill \$p; done
    for i in \$(seq 1 20); do pgrep -x xl2tpd >/dev/null || break; sleep 0.2; done
    ipsec stop >/dev/null 2>&1
    p=\$(cat $L2SP_DIR/run/charon.pid 2>/dev/null) && nsenter -t \$p -m -n ipsec stop >/dev/null 2>&1
    sleep 1
    for n in xl2tpd pppd tcpdump starter charon; do for p in \$(pgrep -x \$n); do kill -9 \$p; done; done
    ip netns del $L2SP_NS 2>/dev/null; ip link del l2spv 2>/dev/null
    ip xfrm state flush; ip xfrm policy flush; ip route flush table 220 2>/dev/null
    iptables -F INPUT 2>/dev/null; iptables -F OUTPUT 2>/dev/null
    : > /etc/ppp/options
    rm -rf $L2SP_DIR /run/xl2tpd /run/xl2tpd-l2i.pid /tmp/xl2tpd-lac.log /tmp/l2i* /tmp/charon.log \
      /etc/ppp/options.l2tpd.client /etc/strongswan.d/zz-interop-log.conf
    true" </dev/null >/dev/null 2>&1
}

# AFTER_SCENARIO hook: the VM side's logs into the scenario's directory, then cleanup.
l2tp_ipsec_after() {
  local d=$INTEROP_RUN/$1
  [ -f "$d/.l2i" ] || return 0
  vm_exec "for p in \$(pgrep -x tcpdump); do kill \$p; done; sleep 0.5" </dev/null >/dev/null 2>&1
  vm_exec "ipsec statusall; ip -s xfrm state; iptables -S" </dev/null > "$d/sas-vm.txt" 2>&1
  vm_exec "cat /tmp/charon.log" </dev/null > "$d/charon-vm.log" 2>/dev/null
  vm_exec "cat /tmp/xl2tpd-lac.log" </dev/null > "$d/xl2tpd-lac.log" 2>/dev/null
  vm_exec "cat /tmp/l2i-pppd.log" </dev/null > "$d/pppd.log" 2>/dev/null
  l2i_vm_server_logs "$d" ""
  vm_exec "cat /tmp/l2i.pcap" </dev/null > "$d/outer.pcap" 2>/dev/null
  vm_exec "tcpdump -r /tmp/l2i.pcap -nn -c 200" </dev/null > "$d/outer.txt" 2>/dev/null
  [ -S "$d/sock" ] && ip netns exec "$NS_GW" "$BIN" -S "$d/sock" status > "$d/status-end.txt" 2>&1
  find "$d" -maxdepth 1 -type f -empty -delete
  l2i_vm_cleanup
  rm -f "$d/.l2i"
}

# ------------------------------------------------------------------ self-check
# Seed 002's client in the VM's root against the VM's server (x2's files) in netns l2sp.
selfcheck_l2tp_ipsec_vm() {
  local t0 out
  t0=$(date +%s.%N)
  l2i_begin || return 1
  echo "    VM: $(vm_exec "dpkg-query -W -f '\${Package} \${Version}  ' strongswan-starter xl2tpd ppp iptables" </dev/null)" >&2
  vm_exec "set -e; ip netns add $L2SP_NS; ip -n $L2SP_NS link set lo up
    ip link add l2spv type veth peer name eth0 netns $L2SP_NS
    ip addr add $L2SP_VM/24 dev l2spv; ip link set l2spv up
    ip -n $L2SP_NS addr add $L2SP_ADDR/24 dev eth0; ip -n $L2SP_NS link set eth0 up" </dev/null ||
    why "cannot make netns $L2SP_NS in the VM" || return 1
  l2i_capture l2spv || return 1
  l2i_vm_server_start "$L2SP_NS" "$L2SP_ADDR" || return 1
  l2i_vm_client_start "$L2SP_ADDR" || return 1
  l2i_vm_client_checks "$L2SP_ADDR" || return 1
  vm_exec "ipsec status" </dev/null | grep -qF "$L2SP_VM/32[udp/l2f] === $L2SP_ADDR/32[udp/l2f]" ||
    why "the VM's SA is not $L2SP_VM/32[udp/l2f] === $L2SP_ADDR/32[udp/l2f] (seed 002's 'ipsec status' shape)" || return 1
  l2i_server_checks || return 1
  vm_exec "ping -c 3 -i 0.3 -W 3 $L2I_LOCAL && ip netns exec $L2SP_NS ping -c 3 -i 0.3 -W 3 $L2I_CLIENT" \
    </dev/null > "$SD/ping.txt" 2>&1 || why "ping $L2I_CLIENT <-> $L2I_LOCAL through PPP failed" || return 1
  out=$(l2i_vm_xfer "$L2SP_NS" "$L2I_LOCAL" - "$L2I_CLIENT" 5331) || why "TCP through the tunnel: $out" || return 1
  echo "    TCP 1 MiB each way $L2I_CLIENT <-> $L2I_LOCAL: sha256 $out match" >&2
  l2i_no_clear_l2tp || return 1
  echo "    self-check total $(since "$t0") s" >&2
}
# The VM's server: its SA with the client, its xl2tpd's tunnel and its pppd's MS-CHAPv2.
l2i_server_checks() {
  l2sp_ctl ipsec status 2>/dev/null | grep -q 'INSTALLED, TRANSPORT' ||
    why "the VM's server has no transport SA" || return 1
  vm_log_has "$L2SP_DIR/xl2tpd.log" 'Call established with' ||
    why "the VM's LNS did not log 'Call established with'" || return 1
  vm_log_has "$L2SP_DIR/pppd.log" "rcvd \\[CHAP Response id=0x[0-9a-f]+ <[0-9a-f]+>, name = \"$L2I_USER\"\\]" &&
    vm_log_has "$L2SP_DIR/pppd.log" 'sent \[CHAP Success' ||
    why "the VM's LNS pppd did not log $L2I_USER's CHAP Response answered with Success" || return 1
  echo "    VM server: $(l2sp_ctl ipsec status 2>/dev/null | grep -E 'INSTALLED|===' | sed 's/^ *//' | tr '\n' ' ')" >&2
}

# ------------------------------------------------------------------ tsunagi's configs
# The server, as the README's L2TP/IPsec example, on 10.200.0.1, with seed 002's proposal
# in esp (see L2I_SERVER_ESP) and xxxx's chap-secrets line giving it 10.99.0.10.
ts_l2i_server_config() {
  cat <<EOF
[daemon]
control_socket = "$TS_SOCK"
secrets = "$SD/chap-secrets"
ipsec_secrets = "$SD/ipsec.secrets"

[ipsec.l2tp]
left = "$HOST_IP"
right = "%any"
type = "transport"
leftprotoport = "17/1701"
rightprotoport = "17/%any"
ike = "$L2I_SERVER_IKE"
esp = "$L2I_SERVER_ESP"
auto = "add"

[server.lns]
protocol = "l2tp"
listen = "$HOST_IP"
ipsec = "l2tp"
localip = "$L2I_LOCAL"
remoteip = "$L2I_POOL_FIRST-${L2I_POOL_LAST##*.}"
dns = ["$L2I_LOCAL"]
EOF
}
# The client: seed 002's conn and LAC, key for key (the README's L2TP/IPsec client example), to the VM.
ts_l2i_client_config() {
  cat <<EOF
[daemon]
control_socket = "$TS_SOCK"
ipsec_secrets = "$SD/ipsec.secrets"

[ipsec.$L2I_CONN]
left = "%defaultroute"
right = "$VM_IP"
type = "transport"
leftprotoport = "17/1701"
rightprotoport = "17/1701"
authby = "secret"
ike = "3des-sha1-modp1024!"
esp = "3des-sha1-modp1024!"
keyingtries = 0
leftfirewall = true
auto = "start"

[link.$L2I_CONN]
mode = "l2tp"
lns = "$VM_IP"
ipsec = "$L2I_CONN"
local = "$L2I_CLIENT"
length_bit = true
user = "$L2I_USER"
password = "$L2I_PW"
mtu = 1410
mru = 1410
default_route = true
persist = true
redial_timeout = 10
max_redials = 6
EOF
}
# l2i_ts_ready CONFIG_FN: the config into $SD/l2i.toml; a FAIL naming check's words when
# `tsunagi check` refuses it.
l2i_ts_ready() {
  local out
  ( umask 077; "$1" > "$SD/l2i.toml" )
  out=$(ts_accepts "$SD/l2i.toml") && return 0
  why "tsunagi check refuses the L2TP/IPsec config: $out"
}
# Nothing of the PSK or the PPP password in tsunagi's log.
l2i_ts_log_clean() {
  ! grep -qF -e "$L2I_PSK" -e "$L2I_PW" "$SD/tsunagi.log" || why "tsunagi's log contains the PSK or the password"
}

# ------------------------------------------------------------------ x1
scenario_x1_seed002_client_dials_tsunagi() {
  local st text t closed
  ( umask 077; l2i_chap_secrets "$L2I_CLIENT" > "$SD/chap-secrets"
    printf '%%any : PSK "%s"\n' "$L2I_PSK" > "$SD/ipsec.secrets" )
  l2i_ts_ready ts_l2i_server_config || return 1
  l2i_begin || return 1
  l2i_capture eth0 || return 1
  ts_start < "$SD/l2i.toml" || return 1
  l2i_vm_client_start "$HOST_IP" || return 1
  l2i_vm_client_checks "$HOST_IP" || return 1
  vm_exec "ipsec status" </dev/null | grep -qF "$VM_IP/32[udp/l2f] === $HOST_IP/32[udp/l2f]" ||
    why "the VM's SA is not $VM_IP/32[udp/l2f] === $HOST_IP/32[udp/l2f]" || return 1
  vm_exec "ping -c 3 -i 0.3 -W 3 $L2I_LOCAL" </dev/null > "$SD/ping.txt" 2>&1 ||
    why "ping from the VM ($L2I_CLIENT) to tsunagi's $L2I_LOCAL failed" || return 1
  ip netns exec "$NS_GW" ping -c 3 -i 0.3 -W 3 "$L2I_CLIENT" >> "$SD/ping.txt" 2>&1 ||
    why "ping from $NS_GW to the VM's $L2I_CLIENT failed" || return 1
  check_transfer 5332 "$NS_GW" "$L2I_LOCAL" - "$L2I_CLIENT" || return 1
  l2i_no_clear_l2tp || return 1
  st=$(ts_status); echo "$st" > "$SD/status.json"
  text=$(ts_cli status 2>&1); echo "$text" > "$SD/status.txt"
  grep -q '"l2tp_ipsec_clients"' <<<"$st" || why "tsunagi status --json has no l2tp_ipsec_clients" || return 1
  sed -n '/"l2tp_ipsec_clients"/,$p' <<<"$st" | grep -q "\"$L2I_USER\"" &&
    sed -n '/"l2tp_ipsec_clients"/,$p' <<<"$st" | grep -q "\"$L2I_CLIENT\"" &&
    sed -n '/"l2tp_ipsec_clients"/,$p' <<<"$st" | grep -q "$VM_IP" ||
    why "tsunagi status --json's l2tp_ipsec_clients does not show $L2I_USER, $L2I_CLIENT and $VM_IP (status.json)" || return 1
  grep -q 'L2TP/IPsec clients' <<<"$text" || why "tsunagi status has no 'L2TP/IPsec clients' section (status.txt)" || return 1
  echo "    tsunagi status: $(sed -n '/L2TP\/IPsec clients/,/^$/p' <<<"$text" | tr -s ' \n' ' ' | cut -c1-300)" >&2
  # The client hangs up (`d idcf`: xl2tpd's StopCCN, through IPsec): the session leaves
  # tsunagi's status, which says why.
  t=$(date +%s.%N)
  vm_exec "timeout 5 sh -c 'echo \"d $L2I_CONN\" > $L2I_CONTROL'" </dev/null || why "cannot write 'd $L2I_CONN' to the VM's xl2tpd" || return 1
  wait_for 20 sh -c "! ip netns exec '$NS_GW' '$BIN' -S '$TS_SOCK' status --json | grep -q '\"user\": *\"$L2I_USER\"'" ||
    why "$L2I_USER's session is still in tsunagi's status 20 s after 'd $L2I_CONN'" || return 1
  wait_for 5 grep -Eq 'session ended: .+' "$SD/tsunagi.log" ||
    why "tsunagi's log has no 'session ended: <reason>' after the client's StopCCN" || return 1
  echo "    client hangup: gone from tsunagi's status after $(since "$t") s; $(grep -Eo 'session ended: .+' "$SD/tsunagi.log" | tail -n 1)" >&2
  # Dialled again (`c idcf`), then tsunagi's daemon stops: its StopCCN reaches the
  # client through IPsec before the SAs go.
  closed=$(l2tp_count /tmp/xl2tpd-lac.log "Connection closed to ${HOST_IP//./\\.}, port")
  vm_exec "timeout 5 sh -c 'echo \"c $L2I_CONN\" > $L2I_CONTROL'" </dev/null || why "cannot write 'c $L2I_CONN' to the VM's xl2tpd" || return 1
  wait_vm_ppp - "$L2I_LOCAL" "${L2I_CLIENT//./\\.}" 60 >/dev/null || why "the VM's ppp0 did not come up again after 'c $L2I_CONN'" || return 1
  t=$(date +%s.%N)
  ts_stop
  wait_for 20 l2tp_reached /tmp/xl2tpd-lac.log "Connection closed to ${HOST_IP//./\\.}, port" $((closed + 1)) ||
    why "the VM's xl2tpd did not log 'Connection closed to $HOST_IP' (tsunagi's StopCCN) within 20 s of stopping tsunagi" || return 1
  echo "    daemon stop: StopCCN at the client after $(since "$t") s" >&2
  l2i_ts_log_clean
}

# ------------------------------------------------------------------ x2
ts_l2i_client_addr() {
  ip -n "$NS_GW" -4 -o addr show |
    awk -v peer="$L2I_LOCAL/32" '$3 == "inet" && $5 == "peer" && $6 == peer { print $2, $4; exit }'
}
scenario_x2_tsunagi_dials_strongswan_xl2tpd() {
  local a dev addr t left closed
  ( umask 077; printf '%s : PSK "%s"\n' "$VM_IP" "$L2I_PSK" > "$SD/ipsec.secrets" )
  l2i_ts_ready ts_l2i_client_config || return 1
  l2i_begin || return 1
  l2i_capture eth0 || return 1
  l2i_vm_server_start - "$VM_IP" || return 1
  t=$(date +%s.%N)
  ts_start < "$SD/l2i.toml" || return 1
  wait_for 90 ts_up || why "tsunagi's link $L2I_CONN did not reach phase network within 90 s" || return 1
  wait_for 10 sh -c "ip -n '$NS_GW' -4 -o addr show | grep -qF 'peer $L2I_LOCAL/32'"
  a=$(ts_l2i_client_addr)
  read -r dev addr <<<"$a"
  [ "$addr" = "$L2I_CLIENT/32" ] || [ "$addr" = "$L2I_CLIENT" ] ||
    why "tsunagi's tun has not $L2I_CLIENT (the seed's local ip) with peer $L2I_LOCAL: '${a:-none}'" || return 1
  echo "    tsunagi: $dev $addr peer $L2I_LOCAL after $(since "$t") s" >&2
  l2i_server_checks || return 1
  l2sp_ctl ipsec status 2>/dev/null | grep -qF "$VM_IP/32[udp/l2f] === $HOST_IP/32[udp/l2f]" ||
    why "the VM's server SA is not $VM_IP/32[udp/l2f] === $HOST_IP/32[udp/l2f]" || return 1
  ip netns exec "$NS_GW" ping -c 3 -i 0.3 -W 3 "$L2I_LOCAL" > "$SD/ping.txt" 2>&1 ||
    why "ping from $NS_GW ($L2I_CLIENT) to the VM's $L2I_LOCAL failed" || return 1
  vm_exec "ping -c 3 -i 0.3 -W 3 $L2I_CLIENT" </dev/null >> "$SD/ping.txt" 2>&1 ||
    why "ping from the VM to tsunagi's $L2I_CLIENT failed" || return 1
  check_transfer 5333 "$NS_GW" "$L2I_CLIENT" - "$L2I_LOCAL" || return 1
  l2i_no_clear_l2tp || return 1
  ts_status > "$SD/status.json"; ts_cli status > "$SD/status.txt" 2>&1
  # persist: the server goes away (xl2tpd's StopCCN, charon's IKE delete) and comes
  # back; tsunagi's link redials IKE, the SA, L2TP and PPP by itself.
  t=$(date +%s.%N)
  l2i_vm_server_stop
  wait_for 30 ts_down || why "tsunagi's link is still up 30 s after the VM's server stopped" || return 1
  echo "    server stopped: tsunagi's link down after $(since "$t") s" >&2
  l2i_vm_server_logs "$SD" -1
  l2i_vm_server_start - "$VM_IP" || return 1
  t=$(date +%s.%N)
  wait_for 90 ts_up || why "tsunagi's link did not come back within 90 s of the server's restart (persist, redial_timeout 10)" || return 1
  wait_for 10 ip netns exec "$NS_GW" ping -c 1 -W 2 "$L2I_LOCAL" ||
    why "no ping to $L2I_LOCAL after the link came back" || return 1
  echo "    server restarted: tsunagi's link back after $(since "$t") s ($(grep -c 'Connection established to' <<<"$(vm_exec "cat $L2SP_DIR/xl2tpd.log" </dev/null)") tunnel(s) in the new server's log)" >&2
  # `tsunagi hangup`: PPP's TermReq and L2TP's StopCCN reach the server through IPsec
  # before the conn goes; persist does not redial after a hangup.
  closed=$(l2tp_count "$L2SP_DIR/xl2tpd.log" "Connection closed to ${HOST_IP//./\\.}, port")
  t=$(date +%s.%N)
  ts_cli hangup "$L2I_CONN" > "$SD/hangup.txt" 2>&1 || why "tsunagi hangup $L2I_CONN failed: $(cat "$SD/hangup.txt")" || return 1
  wait_for 20 l2tp_reached "$L2SP_DIR/xl2tpd.log" "Connection closed to ${HOST_IP//./\\.}, port" $((closed + 1)) ||
    why "the VM's LNS did not log 'Connection closed to $HOST_IP' (a StopCCN) within 20 s of 'tsunagi hangup $L2I_CONN'" || return 1
  wait_for 10 ts_down || why "tsunagi's link is still up after the hangup" || return 1
  echo "    hangup: StopCCN at the LNS after $(since "$t") s; LNS pppd: $(vm_exec "grep -c 'rcvd \\[LCP TermReq' $L2SP_DIR/pppd.log" </dev/null) TermReq received" >&2
  sleep 12   # longer than redial_timeout
  [ "$(l2tp_count "$L2SP_DIR/xl2tpd.log" 'Connection established to')" = 1 ] ||
    why "tsunagi dialled the LNS again after 'tsunagi hangup $L2I_CONN'" || return 1
  # `tsunagi dial` brings it up again; stopping the daemon closes it the same way.
  ts_cli dial "$L2I_CONN" > "$SD/dial.txt" 2>&1 || why "tsunagi dial $L2I_CONN failed: $(cat "$SD/dial.txt")" || return 1
  wait_for 90 ts_up || why "tsunagi's link did not come up again after 'tsunagi dial $L2I_CONN'" || return 1
  t=$(date +%s.%N)
  ts_stop
  wait_for 20 l2tp_reached "$L2SP_DIR/xl2tpd.log" "Connection closed to ${HOST_IP//./\\.}, port" $((closed + 2)) ||
    why "the VM's LNS did not log a second 'Connection closed to $HOST_IP' (a StopCCN) within 20 s of stopping tsunagi" || return 1
  echo "    daemon stop: StopCCN at the LNS after $(since "$t") s" >&2
  # default_route: gone with the daemon.
  left=$(ip -n "$NS_GW" -4 route show | grep -E "^(default|0\.0\.0\.0/1|128\.0\.0\.0/1) .*dev $dev")
  [ -z "$left" ] || { ip -n "$NS_GW" route flush dev "$dev" 2>/dev/null; why "tsunagi left its default route behind: $left"; }
}
