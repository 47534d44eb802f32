# shellcheck shell=bash
# L2TP (RFC 2661) against xl2tpd 1.3.18, Debian 12's, as LAC and as LNS in the VM.
# Sourced by run.sh after scenarios_pptp.sh (it uses that file's VM helpers: vx, since,
# vm_log_has, vm_ppp_addr, wait_vm_ppp, mac_of, neigh_mac, ts_cli). It extends
# SCENARIOS, SELFCHECKS and AFTER_SCENARIO.
#
# Seed 002: an xl2tpd LAC, `[lac NAME] lns = ..., length bit = yes, redial = yes,
# redial timeout = 10, max redials = 6, pppoptfile`, with pppd options `name`, `password`,
# `noauth`, `mtu 1410`, `mru 1410`, `defaultroute`, `lock`, `persist`. The seed's L2TP runs
# inside IPsec; here it is plain L2TP on UDP 1701 (IPsec is strongSwan's issue). The LNS
# follows xl2tpd's own example (`ip range`, `local ip`, `require chap`, `name`,
# `pppoptfile` with `ms-dns`, `proxyarp`, `mtu 1410`, `mru 1410`) on seed 004's layout:
# the pool on the LAN's own segment with proxy ARP, as the PPTP scenarios do.
#
#  $NS_LAN 192.168.1.10 --- lan0 192.168.1.1 ($NS_GW)     (VM) lan2v 192.168.2.1 --- lan2 192.168.2.10
#                           tap  10.200.0.1 -------------------- eth0 10.200.0.2
#  l1  xl2tpd's LAC in the VM dials tsunagi's [server.lns] (protocol = "l2tp") on
#      10.200.0.1: pool 192.168.1.200 / 192.168.1.201-219, proxy ARP on lan0.
#  l2  tsunagi's [link.office] (mode = "l2tp") dials xl2tpd's LNS on 10.200.0.2: pool
#      192.168.2.200 / 192.168.2.201-219, proxy ARP on lan2v.
#  l3  wrong passwords, both ways.
#  selfcheck-l2tp  xl2tpd's LAC (netns l2tpc in the VM: 10.202.0.2, veth l2tpcv
#      10.202.0.1) dials xl2tpd's LNS in the VM's root namespace: the VM sides of l1 and
#      l2, with the same files, against each other. No tsunagi.
#
# l1-l3 wait for tsunagi's L2TP: each first runs `tsunagi check` on the config it would
# run, and while check refuses it, the scenario is SKIPPED with check's words. Once check
# accepts it, the scenario runs and any failure is a FAIL.
#
# The VM side of every L2TP scenario is stopped and its logs are fetched into the
# scenario's directory by l2tp_after (AFTER_SCENARIO), whatever happened:
#   xl2tpd-lns.log  the LNS's xl2tpd (stderr, debug)  lns-pppd.log  the LNS's pppd (debug)
#   xl2tpd-lac.log  the LAC's xl2tpd (stderr, debug)  pppd.log      the LAC's pppd (debug)
#   pppd-wrong-password.log  the LAC's pppd with the wrong password
#   l2tp.pcap       UDP 1701 on the VM's side (tcpdump), control.txt its control messages
#                   decoded, data.txt its first data packets

SCENARIOS+=(
  l1-xl2tpd-dials-tsunagi
  l2-tsunagi-dials-xl2tpd
  l3-wrong-password-xl2tpd-lac
  l3-wrong-password-tsunagi-lac
)
SELFCHECKS+=(selfcheck-l2tp)
AFTER_SCENARIO+=(l2tp_after)

L2TP_NAME=l2tpd                  # the LNS's name in chap-secrets (pppd `name`)
L2TP_USER=taro                   # seed 001's user and password (seed 002's are xxxx/yyyy)
L2TP_PW=michadameyo
L2TP_WRONG_PW=not-the-password
L2TP_LAC=vpn                     # the LAC's section, `[lac vpn]`: `c vpn` / `d vpn`
L2TP_LAC_WRONG=vpn-wrong         # the same with the wrong password, dialled by hand
L2TP_CONTROL=/var/run/xl2tpd/l2tp-control      # the LAC's control pipe (xl2tpd's default)
L2TP_LNS_CONTROL=/var/run/xl2tpd/lns-control   # the LNS's, beside it in the self-check
TS_L2TP_LOCAL=192.168.1.200      # tsunagi's LNS pool (l1, l3)
TS_L2TP_POOL='192\.168\.1\.(20[1-9]|21[0-9])'
XL2TPD_LOCAL=192.168.2.200       # xl2tpd's LNS pool (l2, l3, self-check)
XL2TPD_POOL='192\.168\.2\.(20[1-9]|21[0-9])'
L2TPC_NS=l2tpc                   # the self-check's LAC namespace in the VM
L2TPC_LNS=10.202.0.1
L2TPC_ADDR=10.202.0.2
L2TP_BACKOFF_WINDOW=40           # l3: seconds watched after the first refusal
L2TP_BACKOFF_MAX=8               # more calls than this in the window is hammering

# ------------------------------------------------------------------ the VM side's files
# The LNS: xl2tpd's example `[lns default]` with CHAP required and the pool on lan2's
# segment. `debug avp/state/tunnel` log every control message it receives by name
# ("message type 4 (Stop-Control-Connection-Notification)").
xl2tpd_lns_conf() {
  cat <<EOF
[global]
debug avp = yes
debug state = yes
debug tunnel = yes

[lns default]
ip range = 192.168.2.201-192.168.2.219
local ip = $XL2TPD_LOCAL
require chap = yes
refuse pap = yes
require authentication = yes
name = $L2TP_NAME
ppp debug = yes
pppoptfile = /etc/ppp/options.xl2tpd-lns
length bit = yes
EOF
}
# The LNS's pppd: xl2tpd's example options.xl2tpd (ms-dns, noccp, auth, mtu/mru 1410,
# nodefaultroute, proxyarp, debug) and a logfile for the checks.
xl2tpd_lns_options() {
  cat <<EOF
ms-dns 192.168.2.1
noccp
auth
mtu 1410
mru 1410
nodefaultroute
proxyarp
debug
logfile /var/log/xl2tpd-lns-pppd.log
EOF
}
# xl2tpd_lac_conf LNS AUTODIAL: seed 002's `[lac ...]` to LNS, and a second section with
# the wrong password that only `c vpn-wrong` dials (no redial: one refused call).
xl2tpd_lac_conf() {
  cat <<EOF
[global]
debug avp = yes
debug state = yes
debug tunnel = yes

[lac $L2TP_LAC]
lns = $1
pppoptfile = /etc/ppp/options.l2tpd.client
length bit = yes
autodial = $2
redial = yes
redial timeout = 10
max redials = 6
ppp debug = yes

[lac $L2TP_LAC_WRONG]
lns = $1
pppoptfile = /etc/ppp/options.l2tpd.wrong
length bit = yes
autodial = no
redial = no
ppp debug = yes
EOF
}
# l2tpd_client_options RUN PASSWORD [persist]: seed 002's options.l2tpd.client (name,
# password, noauth, mtu 1410, mru 1410, defaultroute, persist) and a logfile. Not its
# `crtscts` and `lock`, which are tty options: Debian's xl2tpd uses the kernel's L2TP
# (l2tp_ppp) and starts pppd with the pppol2tp plugin instead of a pty, and pppd 2.4.9
# then stops at "unrecognized option 'lock'". The wrong-password section goes without
# `persist`, which would make pppd retry the refused login up to maxfail instead of
# exiting with its verdict (19).
l2tpd_client_options() {
  cat <<EOF
name $L2TP_USER
password $2
noauth
mtu 1410
mru 1410
defaultroute
${3:-}
debug
logfile /tmp/$1-pppd.log
EOF
}
# Both ends' CHAP secrets: the LNS (name l2tpd) looks up taro's; the LAC's pppd has its
# password in its options.
l2tp_chap_secrets() {
  printf '# client server secret IP addresses\n%s %s %s *\n' "$L2TP_USER" "$L2TP_NAME" "$L2TP_PW"
}

# ------------------------------------------------------------------ VM-side helpers
# l2tp_begin: every L2TP scenario starts here. Stops whatever an earlier run left, writes
# the secrets and notes the VM's clock.
l2tp_begin() {
  touch "$SD/.l2tp"
  l2tp_vm_cleanup
  vm_exec "date +%s" </dev/null > "$SD/.l2tp" || why "the VM does not answer" || return 1
  { l2tp_chap_secrets | vm_exec "umask 077; cat > /etc/ppp/chap-secrets; mkdir -p /var/run/xl2tpd"; } ||
    why "cannot write /etc/ppp/chap-secrets in the VM" || return 1
}
# l2tp_capture IFACE: UDP 1701 on the VM's IFACE into /tmp/l2tp.pcap (256 bytes a packet:
# the control messages whole, the data packets' headers).
l2tp_capture() {
  vm_exec "setsid tcpdump -i $1 -s 256 -U -w /tmp/l2tp.pcap 'udp port 1701' \
    </dev/null >/tmp/tcpdump.out 2>&1 &" </dev/null
  wait_for 10 vm_exec "grep -q listening /tmp/tcpdump.out" </dev/null ||
    echo "    (tcpdump in the VM did not start: no capture)" >&2
  return 0
}
# Stops everything L2TP in the VM (pppd first, then xl2tpd, which sends StopCCN on
# SIGTERM), removes the self-check's namespace and stale proxy ARP entries.
l2tp_vm_cleanup() {
  vm_exec "for n in pppd tcpdump; do for p in \$(pgrep -x \$n); do kill \$p; done; done
    for i in \$(seq 1 30); do pgrep -x pppd >/dev/null || break; sleep 0.2; done
    for p in \$(pgrep -x xl2tpd); do kill \$p; done
    for i in \$(seq 1 20); do pgrep -x xl2tpd >/dev/null || break; sleep 0.2; done
    for n in xl2tpd pppd tcpdump; do for p in \$(pgrep -x \$n); do kill -9 \$p; done; done
    ip netns del $L2TPC_NS 2>/dev/null; ip link del l2tpcv 2>/dev/null
    ip neigh show proxy | while read -r a _ d _; do ip neigh del proxy \$a dev \$d; done
    rm -rf /var/log/xl2tpd-lns-pppd.log /run/xl2tpd /run/xl2tpd-*.pid /tmp/xl2tpd-*.log \
      /tmp/*-pppd.log /tmp/l2tp.pcap /etc/ppp/options.l2tpd.* /etc/ppp/options.xl2tpd-lns
    true" </dev/null >/dev/null 2>&1
}

# AFTER_SCENARIO hook: the VM side's logs into the scenario's directory, then cleanup.
l2tp_after() {
  local d=$INTEROP_RUN/$1
  [ -f "$d/.l2tp" ] || return 0
  vm_exec "for p in \$(pgrep -x tcpdump); do kill \$p; done; sleep 0.5" </dev/null >/dev/null 2>&1
  vm_exec "cat /tmp/xl2tpd-lns.log" </dev/null > "$d/xl2tpd-lns.log" 2>/dev/null
  vm_exec "cat /tmp/xl2tpd-lac.log" </dev/null > "$d/xl2tpd-lac.log" 2>/dev/null
  vm_exec "cat /var/log/xl2tpd-lns-pppd.log" </dev/null > "$d/lns-pppd.log" 2>/dev/null
  vm_exec "cat /tmp/$1-pppd.log" </dev/null > "$d/pppd.log" 2>/dev/null
  vm_exec "cat /tmp/$1-wrong-pppd.log" </dev/null > "$d/pppd-wrong-password.log" 2>/dev/null
  vm_exec "cat /tmp/l2tp.pcap" </dev/null > "$d/l2tp.pcap" 2>/dev/null
  # The T bit (the first bit of the L2TP header) marks control messages.
  vm_exec "tcpdump -r /tmp/l2tp.pcap -nn -v 'udp port 1701 and udp[8] & 0x80 != 0'" \
    </dev/null > "$d/control.txt" 2>/dev/null
  vm_exec "tcpdump -r /tmp/l2tp.pcap -nn -c 60 'udp port 1701 and udp[8] & 0x80 = 0'" \
    </dev/null > "$d/data.txt" 2>/dev/null
  find "$d" -maxdepth 1 -type f -empty -delete
  l2tp_vm_cleanup
}

# xl2tpd_lns_start: the LNS in the VM's root namespace, on UDP 1701 of every address,
# in the foreground (-D: its log on stderr, into /tmp/xl2tpd-lns.log).
xl2tpd_lns_start() {
  { xl2tpd_lns_conf | vm_exec "cat > /etc/xl2tpd/lns.conf"; } &&
    { xl2tpd_lns_options | vm_exec "cat > /etc/ppp/options.xl2tpd-lns"; } ||
    why "cannot write the LNS's files in the VM" || return 1
  vm_exec "mkdir -p /var/run/xl2tpd; setsid xl2tpd -D -c /etc/xl2tpd/lns.conf -p /run/xl2tpd-lns.pid \
    -C $L2TP_LNS_CONTROL </dev/null >/tmp/xl2tpd-lns.log 2>&1 &" </dev/null
  wait_for 15 vm_exec "ss -Hlnu 'sport = :1701' | grep -q ." </dev/null ||
    why "xl2tpd (LNS) does not listen on UDP 1701 in the VM: $(vm_exec 'tail -n 2 /tmp/xl2tpd-lns.log' </dev/null)"
}
# xl2tpd_lac_start VM_NS LNS RUN AUTODIAL: the LAC in the VM's namespace VM_NS with
# seed 002's files; its control pipe is $L2TP_CONTROL. Its pppd logs to
# /tmp/RUN-pppd.log, the wrong-password section's to /tmp/RUN-wrong-pppd.log.
xl2tpd_lac_start() {
  local ns=$1 lns=$2 run=$3 autodial=$4
  { xl2tpd_lac_conf "$lns" "$autodial" | vm_exec "cat > /etc/xl2tpd/lac.conf"; } &&
    { l2tpd_client_options "$run" "$L2TP_PW" persist | vm_exec "umask 077; cat > /etc/ppp/options.l2tpd.client"; } &&
    { l2tpd_client_options "$run-wrong" "$L2TP_WRONG_PW" | vm_exec "umask 077; cat > /etc/ppp/options.l2tpd.wrong"; } ||
    why "cannot write the LAC's files in the VM" || return 1
  echo "    VM: $(vx "$ns")xl2tpd -D -c /etc/xl2tpd/lac.conf (lns = $lns, autodial = $autodial)" >&2
  vm_exec "mkdir -p /var/run/xl2tpd; $(vx "$ns")setsid xl2tpd -D -c /etc/xl2tpd/lac.conf -p /run/xl2tpd-lac.pid \
    -C $L2TP_CONTROL </dev/null >/tmp/xl2tpd-lac.log 2>&1 &" </dev/null
  wait_for 15 vm_exec "test -p $L2TP_CONTROL && grep -q 'xl2tpd version' /tmp/xl2tpd-lac.log" </dev/null ||
    why "xl2tpd (LAC) did not start: $(vm_exec 'tail -n 2 /tmp/xl2tpd-lac.log' </dev/null)"
}
# l2tp_control WORDS: a command to the LAC through its control pipe ("c vpn", "d vpn").
l2tp_control() {
  vm_exec "timeout 5 sh -c 'echo \"$*\" > $L2TP_CONTROL'" </dev/null ||
    why "cannot write '$*' to the LAC's control pipe $L2TP_CONTROL"
}
# l2tp_count FILE REGEX: how many lines of the VM's FILE match the extended REGEX.
l2tp_count() {
  local c; c=$(vm_exec "grep -Ec '$2' $1" </dev/null 2>/dev/null)
  echo "${c:-0}"
}
l2tp_reached() { [ "$(l2tp_count "$1" "$2")" -ge "$3" ]; }
# vm_no_ppp VM_NS PEER: no ppp interface with peer PEER in the VM's namespace VM_NS.
vm_no_ppp() { [ -z "$(vm_ppp_addr "$1" "$2")" ]; }
# xl2tpd's "Connection established to ADDR, PORT." (tunnel) and "Call established with
# ADDR" (session) in FILE, for the peer ADDR.
l2tp_established() {
  vm_log_has "$1" "Connection established to ${2//./\\.}, [0-9]+" ||
    why "$3 did not log 'Connection established to $2' (no tunnel)" || return 1
  vm_log_has "$1" "Call established with ${2//./\\.}" ||
    why "$3 did not log 'Call established with $2' (no session)"
}
# The LNS's pppd accepted USER's CHAP Response (pppd 2.4.9 logs success as the packets).
lns_chap_ok() {
  if ! vm_log_has /var/log/xl2tpd-lns-pppd.log "rcvd \\[CHAP Response id=0x[0-9a-f]+ <[0-9a-f]+>, name = \"$1\"\\]" ||
     ! vm_log_has /var/log/xl2tpd-lns-pppd.log 'sent \[CHAP Success'; then
    why "the LNS's pppd did not log a CHAP Response from $1 answered with CHAP Success"
  fi
}
# l2tp_kernel_mode FILE: how xl2tpd moves PPP frames, from its start-up line.
l2tp_kernel_mode() {
  vm_exec "grep -Eo 'Using l2tp kernel support|L2TP kernel support not detected|Not looking for kernel support|does not support kernel L2TP' $1 | head -n 1" </dev/null
}
# pppd_exits FILE: the exit codes that the xl2tpd whose log is FILE logged for its pppds,
# one a line ("signal N" for a signal). xl2tpd logs one only when the call is still
# there when it reaps pppd: not after the peer's CDN, which makes it clear the call and
# SIGTERM pppd first (the LAC side of a refused login, usually).
pppd_exits() {
  vm_exec "sed -n -e 's/.*pppd exited for call [0-9]* with code \\([0-9]*\\).*/\\1/p' \
    -e 's/.*pppd terminated for call [0-9]* by signal \\([0-9]*\\).*/signal \\1/p' $1" </dev/null
}
# The LAC's pppd of the wrong-password section has exited.
lac_wrong_pppd_gone() { ! vm_exec "pgrep -f 'pppd.*options[.]l2tpd[.]wrong'" </dev/null >/dev/null; }
# l2tp_exit_logged LNS_BEFORE LAC_BEFORE: the LNS's or the LAC's xl2tpd logged more pppd
# exits than these.
l2tp_exit_logged() {
  [ "$(pppd_exits /tmp/xl2tpd-lns.log | wc -l)" -gt "$1" ] || [ "$(pppd_exits /tmp/xl2tpd-lac.log | wc -l)" -gt "$2" ]
}
lns_pppd_gone() { ! vm_exec "pgrep -f 'pppd.*options[.]xl2tpd-lns'" </dev/null >/dev/null; }
# lac_refused LOG BEFORE: the LAC's pppd, whose log is LOG (here), was refused: it logged
# "CHAP authentication failed" and closed LCP with pppd's words for that
# ("Failed to authenticate ourselves to peer", with exit status 19); and when its xl2tpd
# logged an exit code after the first BEFORE ones, that code is 19. Sets LAC_RC to that
# code ("" when not logged).
LAC_RC=""
lac_refused() {
  LAC_RC=""
  grep -q 'CHAP authentication failed' "$1" ||
    why "the LAC's pppd did not log 'CHAP authentication failed'" || return 1
  grep -Eq 'sent \[LCP TermReq id=0x[0-9a-f]+ "Failed to authenticate ourselves to peer"\]' "$1" ||
    why "the LAC's pppd did not close LCP with 'Failed to authenticate ourselves to peer'" || return 1
  LAC_RC=$(pppd_exits /tmp/xl2tpd-lac.log | tail -n "+$(( $2 + 1 ))" | tail -n 1)
  [ -z "$LAC_RC" ] || [ "$LAC_RC" = 19 ] ||
    why "the LAC's pppd exited with $LAC_RC, not 19 (authentication to the peer failed)" || return 1
  echo "    the LAC's pppd: $(grep -Eo 'CHAP authentication failed.*' "$1" | head -n 1), exit ${LAC_RC:-not logged by xl2tpd}" >&2
}

# ------------------------------------------------------------------ tsunagi's side
# Modeled on the PPTP server and client (scenarios_pptp.sh), with the keys tsunagi's L2TP
# is expected to take: `protocol = "l2tp"` on a server with PPTP's pool and secrets keys;
# `mode = "l2tp"` on a link with `lns` in place of PPTP's `server`. CHAP (MD5) and no
# MPPE, stated rather than left to defaults: xl2tpd's LNS requires CHAP, and MPPE needs
# MS-CHAPv2 keys. Adapt these two functions when the daemon's keys differ.
ts_l2tp_server_config() {
  cat <<EOF
[daemon]
control_socket = "$TS_SOCK"
secrets = "$SD/chap-secrets"

[server.lns]
protocol = "l2tp"
listen = "$HOST_IP"
localip = "$TS_L2TP_LOCAL"
remoteip = "192.168.1.201-219"
connections = 100
name = "$L2TP_NAME"
require = ["chap"]
mppe = "none"
dns = ["$TS_ADDR"]
proxyarp = true
EOF
}
# ts_l2tp_client_config PASSWORD [extra lines]: the LAC (seed 002's), against xl2tpd.
ts_l2tp_client_config() {
  local pw=$1; shift
  cat <<EOF
[daemon]
control_socket = "$TS_SOCK"

[link.office]
mode = "l2tp"
lns = "$VM_IP"
user = "$L2TP_USER"
password = "$pw"
accept = ["chap"]
mppe = "none"
mtu = 1410
mru = 1410
routes = ["192.168.2.0/24"]
persist = true
EOF
  [ $# -gt 0 ] && printf '%s\n' "$@"
  return 0
}
# Seed 002's `redial timeout = 10` and `max redials = 6`, added when tsunagi takes them.
TS_L2TP_REDIAL=('redial_timeout = 10' 'max_redials = 6')

# ts_accepts FILE: `tsunagi check` accepts the config FILE (0600, as ts_start writes it).
# Prints check's last line when it does not.
ts_accepts() {
  local out
  out=$("$BIN" -c "$1" check 2>&1) && return 0
  # the file's name without its directory (the scenario's)
  grep -v '^[[:space:]]*$' <<<"$out" | tail -n 1 | tr -s ' ' | sed "s|$(dirname "$1")/||g"
  return 1
}
# l2tp_ts_server_ready: the server's config into $SD/l2tp.toml; 1 (and skip) when
# tsunagi's check refuses it.
l2tp_ts_server_ready() {
  local out
  ( umask 077; l2tp_chap_secrets > "$SD/chap-secrets"; ts_l2tp_server_config > "$SD/l2tp.toml" )
  out=$(ts_accepts "$SD/l2tp.toml") && return 0
  skip "tsunagi has no L2TP yet (tsunagi check: $out)"
  return 1
}
# l2tp_ts_client_ready PASSWORD: the link's config into $SD/l2tp.toml, with seed 002's
# redial keys when check takes them; 1 (and skip) when check refuses it without them too.
l2tp_ts_client_ready() {
  local out
  ( umask 077; ts_l2tp_client_config "$1" "${TS_L2TP_REDIAL[@]}" > "$SD/l2tp.toml" )
  ts_accepts "$SD/l2tp.toml" >/dev/null && return 0
  ( umask 077; ts_l2tp_client_config "$1" > "$SD/l2tp.toml" )
  if out=$(ts_accepts "$SD/l2tp.toml"); then
    echo "    (tsunagi check refuses ${TS_L2TP_REDIAL[*]}: left out)" >&2
    return 0
  fi
  skip "tsunagi has no L2TP yet (tsunagi check: $out)"
  return 1
}
ts_l2tp_server_start() {
  ts_start < "$SD/l2tp.toml" || return 1
  wait_for 10 sh -c "ip netns exec '$NS_GW' ss -Hlnu 'sport = :1701' | grep -q '$HOST_IP:1701'" ||
    why "tsunagi does not listen on $HOST_IP:1701 (UDP)"
}
# The tun address tsunagi's LAC got from xl2tpd's pool (peer 192.168.2.200).
ts_l2tp_client_addr() {
  ip -n "$NS_GW" -4 -o addr show |
    awk -v peer="$XL2TPD_LOCAL/32" '$3 == "inet" && $5 == "peer" && $6 == peer { print $2, $4; exit }'
}

# vm_xfer_both CLIENT_NS CLIENT_ADDR PORT: 1 MiB each way between the VM's namespace
# CLIENT_NS and lan2's host, with sha256; prints the checksum.
vm_xfer_both() {
  vm_exec bash -s 2>&1 <<EOF
set -e
head -c 1048576 /dev/urandom > /tmp/sc.bin
want=\$(sha256sum < /tmp/sc.bin | cut -c1-64)
xfer() { # xfer RX_NS TX_NS TO
  rm -f /tmp/sc.got
  (ip netns exec \$1 timeout 60 socat -u TCP-LISTEN:$3,reuseaddr STDOUT | sha256sum | cut -c1-64 > /tmp/sc.got) &
  for i in \$(seq 1 50); do ip netns exec \$1 ss -Hltn 'sport = :$3' | grep -q . && break; sleep 0.1; done
  ip netns exec \$2 timeout 60 socat -u FILE:/tmp/sc.bin TCP:\$3:$3
  wait
  [ "\$(cat /tmp/sc.got)" = "\$want" ] || { echo "\$2 -> \$3: sent \$want, received \$(cat /tmp/sc.got)"; exit 1; }
}
xfer lan2 $1 $LAN2_HOST
xfer $1 lan2 $2
echo \$want
EOF
}

# ------------------------------------------------------------------ self-check
# xl2tpd's LAC (netns l2tpc) -> xl2tpd's LNS, both in the VM, with the files the
# scenarios use: tunnel and session up, CHAP, MTU 1410, the default route of seed 002,
# proxy ARP, ping and 1 MiB each way with sha256, a hangup through the control pipe
# (StopCCN at the LNS, no redial), then a wrong password refused.
selfcheck_l2tp() {
  local t0 t a dev addr out lns_dev mode n lns_before lac_before
  t0=$(date +%s.%N)
  l2tp_begin || return 1
  # The image: xl2tpd.service not started by systemd, nothing on UDP 1701.
  out=$(vm_exec "systemctl is-enabled xl2tpd; systemctl is-active xl2tpd; ss -Hlnu 'sport = :1701' | wc -l" </dev/null 2>/dev/null | tr '\n' ' ')
  [ "$out" = "masked inactive 0 " ] || why "xl2tpd.service is not masked and idle with UDP 1701 free: $out" || return 1
  echo "    VM: $(vm_exec "dpkg-query -W -f '\${Package} \${Version}  ' ppp xl2tpd" </dev/null)xl2tpd.service masked" >&2
  # The LAC's namespace: l2tpc 10.202.0.2 -- l2tpcv 10.202.0.1 in the VM's root.
  vm_exec "set -e; ip netns add $L2TPC_NS; ip -n $L2TPC_NS link set lo up
    ip link add l2tpcv type veth peer name eth0 netns $L2TPC_NS
    ip addr add $L2TPC_LNS/24 dev l2tpcv; ip link set l2tpcv up
    ip -n $L2TPC_NS addr add $L2TPC_ADDR/24 dev eth0; ip -n $L2TPC_NS link set eth0 up" </dev/null ||
    why "cannot make netns $L2TPC_NS in the VM" || return 1
  l2tp_capture l2tpcv
  xl2tpd_lns_start || return 1
  echo "    LNS listening after $(since "$t0") s" >&2

  t=$(date +%s.%N)
  xl2tpd_lac_start "$L2TPC_NS" "$L2TPC_LNS" selfcheck-l2tp yes || return 1
  a=$(wait_vm_ppp "$L2TPC_NS" "$XL2TPD_LOCAL" "$XL2TPD_POOL" 60) ||
    why "the LAC's ppp0 did not come up with an address in 192.168.2.201-219 (peer $XL2TPD_LOCAL): '${a:-none}'" || return 1
  read -r dev addr <<<"$a"
  echo "    tunnel up after $(since "$t") s: LAC $dev $addr peer $XL2TPD_LOCAL" >&2
  l2tp_established /tmp/xl2tpd-lac.log "$L2TPC_LNS" "the LAC's xl2tpd" || return 1
  l2tp_established /tmp/xl2tpd-lns.log "$L2TPC_ADDR" "the LNS's xl2tpd" || return 1
  mode=$(l2tp_kernel_mode /tmp/xl2tpd-lns.log)
  echo "    xl2tpd: $mode (LNS), $(l2tp_kernel_mode /tmp/xl2tpd-lac.log) (LAC)" >&2
  lns_dev=$(vm_ppp_addr - "$addr" | cut -d' ' -f1)
  [ -n "$lns_dev" ] && [ "$(vm_ppp_addr - "$addr" | cut -d' ' -f2)" = "$XL2TPD_LOCAL" ] ||
    why "the LNS's side has no ppp interface $XL2TPD_LOCAL peer $addr" || return 1
  vm_log_has /tmp/selfcheck-l2tp-pppd.log 'CHAP authentication succeeded' ||
    why "the LAC's pppd did not log 'CHAP authentication succeeded'" || return 1
  lns_chap_ok "$L2TP_USER" || return 1
  # Seed 002's mtu/mru 1410 on both ends, and its defaultroute in the LAC's namespace.
  out=$(vm_exec "ip netns exec $L2TPC_NS cat /sys/class/net/$dev/mtu; cat /sys/class/net/$lns_dev/mtu" </dev/null | tr '\n' ' ')
  [ "$out" = "1410 1410 " ] || why "MTU of the LAC's $dev and the LNS's $lns_dev: $out, want 1410 1410" || return 1
  vm_exec "ip -n $L2TPC_NS route show default" </dev/null | grep -q "dev $dev" ||
    why "the LAC's pppd added no default route via $dev (defaultroute)" || return 1
  # The far LAN through the default route; lan2 answers through the LNS's proxy ARP.
  vm_exec "ip netns exec $L2TPC_NS ping -c 3 -i 0.3 -W 3 $XL2TPD_LOCAL && ip netns exec $L2TPC_NS ping -c 3 -i 0.3 -W 3 $LAN2_HOST" \
    </dev/null > "$SD/ping.txt" 2>&1 || why "ping from the LAC to $XL2TPD_LOCAL and $LAN2_HOST failed" || return 1
  vm_exec "ip netns exec lan2 ping -c 2 -W 3 $addr" </dev/null >> "$SD/ping.txt" 2>&1 ||
    why "ping $LAN2_HOST -> $addr (proxy ARP) failed" || return 1
  [ "$(vm_exec "ip -n lan2 neigh show $addr" </dev/null | neigh_mac)" = "$(vm_exec 'ip link show lan2v' </dev/null | mac_of)" ] ||
    why "lan2's neighbour entry for $addr is not lan2v's MAC (no proxy ARP)" || return 1
  t=$(date +%s.%N)
  out=$(vm_xfer_both "$L2TPC_NS" "$addr" 5198) || why "TCP through the tunnel: $out" || return 1
  echo "    TCP 1 MiB each way, LAC <-> $LAN2_HOST: sha256 $out matches ($(since "$t") s)" >&2
  # Hang up through the LAC's control pipe: it sends StopCCN, the LNS closes the tunnel
  # and its pppd, and the LAC does not redial (`d` clears its redial).
  t=$(date +%s.%N)
  l2tp_control "d $L2TP_LAC" || return 1
  wait_for 20 l2tp_reached /tmp/xl2tpd-lns.log "Connection closed to ${L2TPC_ADDR//./\\.}, port" 1 ||
    why "the LNS did not log 'Connection closed to $L2TPC_ADDR' within 20 s of 'd $L2TP_LAC'" || return 1
  vm_log_has /tmp/xl2tpd-lns.log 'message type 4 \(Stop-Control-Connection-Notification\)' ||
    why "the LNS did not log the StopCCN it received" || return 1
  wait_for 20 vm_no_ppp "$L2TPC_NS" "$XL2TPD_LOCAL" && wait_for 5 vm_no_ppp - "$addr" ||
    why "a ppp interface is still up 20 s after 'd $L2TP_LAC'" || return 1
  echo "    hangup: StopCCN, tunnel closed and both ppp interfaces gone after $(since "$t") s; LNS: $(vm_exec "grep -o 'Connection closed to.*' /tmp/xl2tpd-lns.log" </dev/null | head -n 1)" >&2
  sleep 12   # longer than seed 002's redial timeout
  [ "$(l2tp_count /tmp/xl2tpd-lns.log 'Connection established to')" = 1 ] ||
    why "the LAC dialled again after 'd $L2TP_LAC'" || return 1
  # The wrong password: the LNS's pppd refuses taro, both pppds close LCP and exit. The
  # first to exit makes its xl2tpd send CDN, and the other xl2tpd then clears the call
  # and SIGTERMs its pppd before reaping it, without logging its exit code. So one of
  # the two codes is logged: 11 (the LNS's: the peer failed to authenticate) or 19 (the
  # LAC's: authentication to the peer failed).
  t=$(date +%s.%N)
  n=$(l2tp_count /var/log/xl2tpd-lns-pppd.log "Peer $L2TP_USER failed CHAP authentication")
  lns_before=$(pppd_exits /tmp/xl2tpd-lns.log | wc -l)
  lac_before=$(pppd_exits /tmp/xl2tpd-lac.log | wc -l)
  l2tp_control "c $L2TP_LAC_WRONG" || return 1
  wait_for 60 l2tp_reached /var/log/xl2tpd-lns-pppd.log "Peer $L2TP_USER failed CHAP authentication" $((n + 1)) ||
    why "wrong password: the LNS's pppd did not log 'Peer $L2TP_USER failed CHAP authentication' within 60 s" || return 1
  wait_for 30 lac_wrong_pppd_gone && wait_for 10 lns_pppd_gone ||
    why "wrong password: a pppd still runs 30 s after the refusal" || return 1
  wait_for 10 l2tp_exit_logged "$lns_before" "$lac_before" ||
    why "wrong password: neither xl2tpd logged its pppd's exit code" || return 1
  vm_exec "cat /tmp/selfcheck-l2tp-wrong-pppd.log" </dev/null > "$SD/pppd-wrong-password.log" 2>/dev/null
  lac_refused "$SD/pppd-wrong-password.log" "$lac_before" || return 1
  out=$(pppd_exits /tmp/xl2tpd-lns.log | tail -n "+$((lns_before + 1))" | tail -n 1)
  [ -z "$out" ] || [ "$out" = 11 ] ||
    why "wrong password: the LNS's pppd exited with $out, not 11 (the peer failed to authenticate)" || return 1
  [ -z "$(vm_ppp_addr "$L2TPC_NS" "$XL2TPD_LOCAL")" ] || why "wrong password: the tunnel came up anyway" || return 1
  echo "    wrong password refused after $(since "$t") s: exit codes LNS ${out:-not logged}, LAC ${LAC_RC:-not logged}; $(vm_exec "grep 'failed CHAP' /var/log/xl2tpd-lns-pppd.log" </dev/null | tail -n 1)" >&2
  echo "    self-check total $(since "$t0") s" >&2
}

# ------------------------------------------------------------------ l1
# xl2tpd's LAC in the VM dials tsunagi's LNS (seed 002's client side).
scenario_l1_xl2tpd_dials_tsunagi() {
  local name=$1 a dev addr st text t
  l2tp_ts_server_ready || return 0
  l2tp_begin || return 1
  l2tp_capture eth0
  ts_l2tp_server_start || return 1
  t=$(date +%s.%N)
  xl2tpd_lac_start - "$HOST_IP" "$name" yes || return 1
  a=$(wait_vm_ppp - "$TS_L2TP_LOCAL" "$TS_L2TP_POOL" 90) ||
    why "the LAC's ppp0 did not come up with an address in 192.168.1.201-219 (peer $TS_L2TP_LOCAL): '${a:-none}'" || return 1
  read -r dev addr <<<"$a"
  echo "    tunnel up after $(since "$t") s: VM $dev $addr peer $TS_L2TP_LOCAL" >&2
  l2tp_established /tmp/xl2tpd-lac.log "$HOST_IP" "the LAC's xl2tpd" || return 1
  vm_log_has "/tmp/$name-pppd.log" 'CHAP authentication succeeded' ||
    why "the LAC's pppd did not log 'CHAP authentication succeeded'" || return 1
  grep -Eq "\"$L2TP_USER\".*authenticated|authenticated.*\"$L2TP_USER\"" "$SD/tsunagi.log" ||
    why "tsunagi did not log $L2TP_USER's authentication" || return 1
  [ "$(vm_exec "cat /sys/class/net/$dev/mtu" </dev/null)" = 1410 ] ||
    why "the LAC's $dev has MTU $(vm_exec "cat /sys/class/net/$dev/mtu" </dev/null), not seed 002's 1410" || return 1
  # tsunagi's LAN: the VM routes it into the tunnel; tsunagi answers ARP for the LAC's
  # address on lan0 (proxyarp).
  vm_exec "ip route replace 192.168.1.0/24 dev $dev" </dev/null || why "cannot route 192.168.1.0/24 in the VM" || return 1
  vm_exec "ping -c 3 -i 0.3 -W 3 $TS_ADDR && ping -c 3 -i 0.3 -W 3 $LAN_HOST" </dev/null > "$SD/ping.txt" 2>&1 ||
    why "ping from the VM ($addr) to $TS_ADDR and $LAN_HOST failed" || return 1
  ip netns exec "$NS_LAN" ping -c 3 -i 0.3 -W 3 "$addr" >> "$SD/ping.txt" 2>&1 ||
    why "ping $LAN_HOST -> $addr (the LAC) failed" || return 1
  [ "$(ip -n "$NS_LAN" neigh show "$addr" | neigh_mac)" = "$(ip -n "$NS_GW" link show lan0 | mac_of)" ] ||
    why "$LAN_HOST's neighbour entry for $addr is not lan0's MAC (proxyarp = true)" || return 1
  check_transfer 5311 "$NS_LAN" "$LAN_HOST" - "$addr" || return 1
  st=$(ts_status); echo "$st" > "$SD/status.json"
  text=$(ts_cli status 2>&1); echo "$text" > "$SD/status.txt"
  grep -q "\"user\": *\"$L2TP_USER\"" <<<"$st" || why "tsunagi status --json shows no session of user $L2TP_USER: $st" || return 1
  grep -q "\"$addr\"" <<<"$st" && grep -q "$VM_IP" <<<"$st" ||
    why "tsunagi status --json does not show the session's addresses $VM_IP / $addr: $st" || return 1
  grep -Eq '"rx_bytes": *[1-9]' <<<"$st" || why "tsunagi status --json counts no bytes received: $st" || return 1
  # Hang up through the LAC's control pipe (StopCCN): the session ends in tsunagi,
  # which says why, and the LAC does not redial.
  t=$(date +%s.%N)
  l2tp_control "d $L2TP_LAC" || return 1
  wait_for 20 sh -c "! ip netns exec '$NS_GW' '$BIN' -S '$TS_SOCK' status --json | grep -q '\"user\": *\"$L2TP_USER\"'" ||
    why "the session of $L2TP_USER is still in tsunagi's status 20 s after 'd $L2TP_LAC'" || return 1
  wait_for 5 grep -Eq 'session ended: .+' "$SD/tsunagi.log" ||
    why "tsunagi's log has no 'session ended: <reason>' after the LAC's StopCCN" || return 1
  wait_for 20 vm_no_ppp - "$TS_L2TP_LOCAL" ||
    why "the LAC's $dev is still up 20 s after 'd $L2TP_LAC'" || return 1
  echo "    hangup: gone from status after $(since "$t") s; tsunagi: $(grep -Eo 'session ended: .+' "$SD/tsunagi.log" | tail -n 1)" >&2
  sleep 12   # longer than seed 002's redial timeout
  [ "$(l2tp_count /tmp/xl2tpd-lac.log 'Connection established to')" = 1 ] ||
    why "the LAC dialled again after 'd $L2TP_LAC'" || return 1
}

# ------------------------------------------------------------------ l2
# tsunagi's LAC dials xl2tpd's LNS in the VM.
scenario_l2_tsunagi_dials_xl2tpd() {
  local a dev addr t closed calls mtu
  l2tp_ts_client_ready "$L2TP_PW" || return 0
  l2tp_begin || return 1
  l2tp_capture eth0
  xl2tpd_lns_start || return 1
  ts_start < "$SD/l2tp.toml" || return 1
  t=$(date +%s.%N)
  wait_for 90 ts_up || why "tsunagi's link office did not reach phase network" || return 1
  wait_for 10 sh -c "[ -n \"\$(ip -n '$NS_GW' -4 -o addr show | grep -F 'peer $XL2TPD_LOCAL/32')\" ]"
  a=$(ts_l2tp_client_addr)
  read -r dev addr <<<"$a"
  grep -Eq "^$XL2TPD_POOL\$" <<<"$addr" ||
    why "tsunagi's tun has no address in 192.168.2.201-219 with peer $XL2TPD_LOCAL: '${a:-none}'" || return 1
  echo "    tunnel up after $(since "$t") s: $dev $addr peer $XL2TPD_LOCAL" >&2
  l2tp_established /tmp/xl2tpd-lns.log "$HOST_IP" "the LNS's xl2tpd" || return 1
  lns_chap_ok "$L2TP_USER" || return 1
  mtu=$(ip -n "$NS_GW" -o link show "$dev" | grep -o 'mtu [0-9]*' | cut -d' ' -f2)
  [ "$mtu" = 1410 ] || why "tsunagi's $dev has MTU ${mtu:-?}, not 1410 (mtu = 1410)" || return 1
  ip netns exec "$NS_GW" ping -c 3 -i 0.3 -W 3 "$XL2TPD_LOCAL" > "$SD/ping.txt" 2>&1 &&
    ip netns exec "$NS_GW" ping -c 3 -i 0.3 -W 3 "$LAN2_HOST" >> "$SD/ping.txt" 2>&1 ||
    why "ping from tsunagi's host ($addr) to $XL2TPD_LOCAL and $LAN2_HOST failed" || return 1
  vm_exec "ip netns exec lan2 ping -c 3 -i 0.3 -W 3 $addr" </dev/null >> "$SD/ping.txt" 2>&1 ||
    why "ping $LAN2_HOST -> $addr (the LNS's proxy ARP) failed" || return 1
  check_transfer 5312 "$NS_GW" "$addr" lan2 "$LAN2_HOST" || return 1
  # `tsunagi hangup`: the LNS receives StopCCN and closes the tunnel; persist does not
  # redial after a hangup.
  calls=$(l2tp_count /tmp/xl2tpd-lns.log "Connection established to ${HOST_IP//./\\.}")
  closed=$(l2tp_count /tmp/xl2tpd-lns.log "Connection closed to ${HOST_IP//./\\.}, port")
  t=$(date +%s.%N)
  ts_cli hangup office > "$SD/hangup.txt" 2>&1 || why "tsunagi hangup office failed: $(cat "$SD/hangup.txt")" || return 1
  wait_for 20 l2tp_reached /tmp/xl2tpd-lns.log "Connection closed to ${HOST_IP//./\\.}, port" $((closed + 1)) ||
    why "the LNS did not log 'Connection closed to $HOST_IP' (a StopCCN) within 20 s of the hangup" || return 1
  wait_for 10 ts_down || why "tsunagi's link is still up after the hangup" || return 1
  [ -z "$(ts_l2tp_client_addr)" ] || why "tsunagi's tun still has $addr after the hangup" || return 1
  wait_for 10 vm_no_ppp - "$addr" || why "the LNS's ppp interface is still up after the hangup" || return 1
  echo "    hangup: StopCCN after $(since "$t") s; LNS: $(vm_exec "grep -o 'Connection closed to.*' /tmp/xl2tpd-lns.log" </dev/null | tail -n 1)" >&2
  sleep 12
  [ "$(l2tp_count /tmp/xl2tpd-lns.log "Connection established to ${HOST_IP//./\\.}")" = "$calls" ] ||
    why "tsunagi dialled the LNS again after 'tsunagi hangup office'" || return 1
  # Dial again, then stop the daemon: the tunnel is closed again.
  ts_cli dial office > "$SD/dial.txt" 2>&1 || why "tsunagi dial office failed: $(cat "$SD/dial.txt")" || return 1
  wait_for 90 ts_up || why "tsunagi's link did not come up again after 'tsunagi dial office'" || return 1
  t=$(date +%s.%N)
  ts_stop
  wait_for 20 l2tp_reached /tmp/xl2tpd-lns.log "Connection closed to ${HOST_IP//./\\.}, port" $((closed + 2)) ||
    why "the LNS did not log a second 'Connection closed to $HOST_IP' within 20 s of stopping tsunagi" || return 1
  echo "    daemon stop: tunnel closed after $(since "$t") s" >&2
}

# ------------------------------------------------------------------ l3
# xl2tpd's LAC with a wrong password against tsunagi's LNS: refused, and tsunagi's log
# names taro and says authentication failed.
scenario_l3_wrong_password_xl2tpd_lac() {
  local name=$1
  l2tp_ts_server_ready || return 0
  l2tp_begin || return 1
  l2tp_capture eth0
  ts_l2tp_server_start || return 1
  xl2tpd_lac_start - "$HOST_IP" "$name" no || return 1
  l2tp_control "c $L2TP_LAC_WRONG" || return 1
  wait_for 90 vm_log_has "/tmp/$name-wrong-pppd.log" 'CHAP authentication failed' ||
    why "the LAC's pppd with a wrong password did not log 'CHAP authentication failed' within 90 s" || return 1
  wait_for 30 lac_wrong_pppd_gone || why "the LAC's pppd still runs 30 s after the refusal" || return 1
  vm_exec "cat /tmp/$name-wrong-pppd.log" </dev/null > "$SD/pppd-wrong-password.log" 2>/dev/null
  lac_refused "$SD/pppd-wrong-password.log" 0 || return 1
  wait_for 10 grep -Eq "authentication failed.*$L2TP_USER|$L2TP_USER.*authentication failed" "$SD/tsunagi.log" ||
    why "tsunagi's log has no 'authentication failed' line naming $L2TP_USER" || return 1
  ! grep -q "$L2TP_WRONG_PW\|$L2TP_PW" "$SD/tsunagi.log" || why "a password appears in tsunagi's log" || return 1
  [ -z "$(vm_ppp_addr - "$TS_L2TP_LOCAL")" ] || why "the tunnel came up with a wrong password" || return 1
  echo "    tsunagi: $(grep -Eo '[^ ]*authentication failed.*' "$SD/tsunagi.log" | tail -n 1)" >&2
}

# tsunagi's LAC with a wrong password against xl2tpd's LNS: refused, the LNS's pppd
# names taro, tsunagi's log says authentication failed, and with persist it does not
# hammer the LNS.
scenario_l3_wrong_password_tsunagi_lac() {
  local n0 n
  l2tp_ts_client_ready "$L2TP_WRONG_PW" || return 0
  l2tp_begin || return 1
  l2tp_capture eth0
  xl2tpd_lns_start || return 1
  ts_start < "$SD/l2tp.toml" || return 1
  wait_for 90 vm_log_has /var/log/xl2tpd-lns-pppd.log "Peer $L2TP_USER failed CHAP authentication" ||
    why "the LNS's pppd did not log 'Peer $L2TP_USER failed CHAP authentication'" || return 1
  n0=$(l2tp_count /tmp/xl2tpd-lns.log "Call established with ${HOST_IP//./\\.}")
  wait_for 20 grep -Eq "(authentication failed|refused our authentication).*$L2TP_USER|$L2TP_USER.*authentication failed" "$SD/tsunagi.log" ||
    why "tsunagi's log does not say that authentication as $L2TP_USER failed" || return 1
  ! ts_up || why "tsunagi's link reached phase network with a wrong password" || return 1
  ! grep -q "$L2TP_WRONG_PW" "$SD/tsunagi.log" || why "the password appears in tsunagi's log" || return 1
  sleep "$L2TP_BACKOFF_WINDOW"
  n=$(( $(l2tp_count /tmp/xl2tpd-lns.log "Call established with ${HOST_IP//./\\.}") - n0 ))
  echo "    wrong password: $n more calls in ${L2TP_BACKOFF_WINDOW} s after the first refusal; tsunagi: $(grep -Eo '[^ ]*(authentication failed|refused our authentication).*' "$SD/tsunagi.log" | tail -n 1)" >&2
  [ "$n" -le "$L2TP_BACKOFF_MAX" ] ||
    why "tsunagi hammered the LNS: $n calls in $L2TP_BACKOFF_WINDOW s" || return 1
}
