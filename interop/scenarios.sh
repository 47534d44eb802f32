# Scenarios of the interop tier against pppd 2.4.9 (sourced by run.sh, which defines the
# helpers: ts_*, vm_*, check_*). Each function gets its scenario name, returns non-zero
# (or calls `why`) on failure, and leaves the daemons to run_scenario's cleanup.
# Every scenario checks LAN-to-LAN ping, a TCP transfer both ways with matching sha256
# and that both logs show the same agreed options (check_agreed).

ECHO_INTERVAL=2   # tsunagi echo_interval = pppd lcp-echo-interval
ECHO_FAILURE=3    # tsunagi echo_failure  = pppd lcp-echo-failure

# tsunagi dials: its device runs the dialled pppd over ssh (seed 001's vpn-option plus
# the address line). $2: more pppd options; $3...: more tsunagi config lines.
dial_pppd() {
  local name=$1 popts=$2; shift 2
  ts_start < <(ts_config dial "device = \"$(pppd_notty "$name" "$popts")\"" "$@") || return 1
  wait_link
}

# pppd dials: `pppd pty "ssh ACCOUNT@HOST tsunagi direct vm"` in the VM (seed 001's
# connect script), answered by tsunagi's direct profile through sshd's forced command.
# $2: more pppd options; $3...: more tsunagi config lines.
PPPD_PID=""
pppd_dials() {
  local name=$1 popts=$2; shift 2
  # shellcheck disable=SC2034  # read by ts_start/ts_status in run.sh
  TS_SOCK=$INTEROP_RUN/direct.sock
  ts_start < <(ts_config direct "allow_users = [\"$ACCT\"]" "$@") || return 1
  local connect="exec ssh -i /root/.ssh/tsunagi_client -o IdentitiesOnly=yes -o BatchMode=yes \
-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/root/.ssh/tsunagi_known_hosts \
$ACCT@$HOST_IP tsunagi direct vm"
  PPPD_PID=$(vm_exec "setsid pppd nodetach noauth debug logfile /tmp/$name-pppd.log \
pty '$connect' $popts $PPPD_ADDR:$TS_ADDR </dev/null >/tmp/$name-pppd.out 2>&1 & echo \$!" </dev/null)
  [ -n "$PPPD_PID" ] || why "pppd did not start in the VM" || return 1
  wait_link
}

# The common checks once the link is up.
check_link() {
  local name=$1 port=$2
  check_ping || return 1
  check_transfer "$port" || return 1
  fetch_pppd_log "$name"
  check_agreed
}

scenario_s1_tsunagi_dials_pppd() {
  dial_pppd "$1" "" || return 1
  check_link "$1" 5001
}

scenario_s2_pppd_dials_tsunagi() {
  pppd_dials "$1" "" || return 1
  check_link "$1" 5002 || return 1
  # The login was the unprivileged account, by key, through command=.
  local uid; uid=$(id -u "$ACCT")
  ts_status | grep -q "direct via uid $uid" || why "tsunagi's peer is not 'direct via uid $uid': $(ts_status)" || return 1
  grep -q "Accepted publickey for $ACCT from $VM_IP" "$INTEROP_RUN/sshd.log" ||
    why "sshd did not log a key login of $ACCT from $VM_IP" || return 1
  # from=: the same key from another address (the gateway's own) is refused. sshd's
  # log is the judge: the forced command's exit status would not tell a refusal apart.
  ip netns exec "$NS_GW" ssh -i "$INTEROP_RUN/ssh/vm_client" -o IdentitiesOnly=yes -o BatchMode=yes \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ConnectTimeout=5 \
    "$ACCT@$HOST_IP" true </dev/null >/dev/null 2>&1
  sleep 0.5
  ! grep -q "Accepted publickey for $ACCT from $HOST_IP" "$INTEROP_RUN/sshd.log" ||
    why "the key was accepted from $HOST_IP although authorized_keys says from=\"$VM_IP\"" || return 1
  grep -q "not from a permitted host (host=$HOST_IP" "$INTEROP_RUN/sshd.log" ||
    why "sshd did not log the from= refusal for $HOST_IP"
}

# Both ends' LCP echoes answered by the other. pppd 2.4.9 leaves echo packets out of its
# debug log, so the evidence is tsunagi's log, checked by magic number: tsunagi's
# requests answered with pppd's magic, pppd's requests (pppd's magic) answered.
check_echoes() {
  sleep $((ECHO_INTERVAL * 2 + 1))
  local t=$SD/tsunagi.log p_magic
  p_magic=$(grep 'rcvd \[LCP ConfAck' "$SD/pppd.log" | tail -1 | grep -o '<magic 0x[0-9a-f]*>' | tr -d '<>' | cut -d' ' -f2)
  [ -n "$p_magic" ] || why "pppd's magic number not found in its log" || return 1
  [ "$(grep -c 'sent \[LCP EchoReq' "$t")" -ge 2 ] && [ "$(grep -c "rcvd \[LCP EchoRep id=0x[0-9a-f]* magic=$p_magic\]" "$t")" -ge 2 ] ||
    why "tsunagi's echo requests were not answered by pppd (magic $p_magic)" || return 1
  [ "$(grep -c "rcvd \[LCP EchoReq id=0x[0-9a-f]* magic=$p_magic\]" "$t")" -ge 2 ] && [ "$(grep -c 'sent \[LCP EchoRep' "$t")" -ge 2 ] ||
    why "pppd's echo requests (magic $p_magic) did not reach tsunagi or were not answered"
  echo "    echoes: tsunagi sent $(grep -c 'sent \[LCP EchoReq' "$t") / answered $(grep -c 'sent \[LCP EchoRep' "$t") of pppd's" >&2
}

# watch_down LIMIT LABEL: wait until tsunagi's link and pppd's ppp0 are both down;
# each must go down within LIMIT seconds.
watch_down() {
  local limit=$1 label=$2 t0 now ts_t="" vm_t=""
  t0=$(date +%s.%N)
  while :; do
    now=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    [ -z "$ts_t" ] && ts_down && ts_t=$now
    [ -z "$vm_t" ] && ! vm_ppp_up && vm_t=$now
    [ -n "$ts_t" ] && [ -n "$vm_t" ] && break
    awk -v n="$now" -v l="$limit" 'BEGIN{exit !(n > l + 5)}' && break
    sleep 0.3
  done
  echo "    $label: tsunagi down after ${ts_t:-never} s, pppd's ppp0 down after ${vm_t:-never} s (limit $limit s)" >&2
  [ -n "$ts_t" ] && [ -n "$vm_t" ] || why "$label: a side stayed up (tsunagi ${ts_t:-up}, pppd ${vm_t:-up})" || return 1
  awk -v a="$ts_t" -v b="$vm_t" -v l="$limit" 'BEGIN{exit !(a <= l && b <= l)}' ||
    why "$label: down after tsunagi $ts_t s / pppd $vm_t s, more than $limit s"
}

ECHO_TS=("echo_interval = $ECHO_INTERVAL" "echo_failure = $ECHO_FAILURE")
ECHO_PPPD="lcp-echo-interval $ECHO_INTERVAL lcp-echo-failure $ECHO_FAILURE"
# A silent peer is noticed after ECHO_FAILURE unanswered requests, one every
# ECHO_INTERVAL, plus at most one interval until the first of them goes out; 3 s more
# for the poll (one ssh round trip into the emulated VM takes up to about 1 s when busy).
ECHO_LIMIT=$((ECHO_INTERVAL * (ECHO_FAILURE + 1) + 3))

scenario_s3_echo_tsunagi_dials() {
  local name=$1 ssh_pid
  dial_pppd "$name" "$ECHO_PPPD" "${ECHO_TS[@]}" || return 1
  check_link "$name" 5003 || return 1
  check_echoes "$name" || return 1
  # Silence: stop (SIGSTOP) tsunagi's ssh. The TCP connection stays open, nothing
  # crosses: only the echoes can tell, on both ends.
  ssh_pid=$(pgrep -P "$TS_PID" -x ssh) || why "no ssh child of tsunagi" || return 1
  record_pid "$ssh_pid" ssh
  kill -STOP "$ssh_pid"
  watch_down "$ECHO_LIMIT" "ssh stopped" || { kill -CONT "$ssh_pid"; return 1; }
  kill -CONT "$ssh_pid" 2>/dev/null
  fetch_pppd_log "$name"
  grep -q "No response to $ECHO_FAILURE echo-requests" "$SD/pppd.log" ||
    why "pppd's log does not say 'No response to $ECHO_FAILURE echo-requests'" || return 1
  grep -q "No response to $ECHO_FAILURE echo-requests" "$SD/tsunagi.log" ||
    why "tsunagi's log does not say 'No response to $ECHO_FAILURE echo-requests'" || return 1
  # Kill: a fresh link, then SIGKILL tsunagi's ssh.
  ts_stop; wait_for 20 vm_pppd_gone
  mv "$SD/tsunagi.log" "$SD/tsunagi-stop.log"
  dial_pppd "$name-kill" "$ECHO_PPPD" "${ECHO_TS[@]}" || return 1
  ssh_pid=$(pgrep -P "$TS_PID" -x ssh) || why "no ssh child of tsunagi" || return 1
  kill -9 "$ssh_pid"
  watch_down "$ECHO_LIMIT" "ssh killed"
}

scenario_s3_echo_pppd_dials() {
  local name=$1 ssh_pid
  pppd_dials "$name" "$ECHO_PPPD" "${ECHO_TS[@]}" || return 1
  check_link "$name" 5004 || return 1
  check_echoes "$name" || return 1
  # Silence on the other side: stop pppd's ssh in the VM.
  ssh_pid=$(vm_exec "pgrep -P $PPPD_PID -x ssh" </dev/null) || why "no ssh child of pppd" || return 1
  vm_exec "kill -STOP $ssh_pid" </dev/null
  watch_down "$ECHO_LIMIT" "pppd's ssh stopped" || return 1
  vm_exec "kill -CONT $ssh_pid; kill $ssh_pid" </dev/null 2>/dev/null
  fetch_pppd_log "$name"
  grep -q "No response to $ECHO_FAILURE echo-requests" "$SD/pppd.log" ||
    why "pppd's log does not say 'No response to $ECHO_FAILURE echo-requests'" || return 1
  grep -q "No response to $ECHO_FAILURE echo-requests" "$SD/tsunagi.log" ||
    why "tsunagi's log does not say 'No response to $ECHO_FAILURE echo-requests'" || return 1
  # Kill pppd's ssh on a fresh link.
  wait_for 20 vm_pppd_gone
  ts_stop; mv "$SD/tsunagi.log" "$SD/tsunagi-stop.log"
  pppd_dials "$name-kill" "$ECHO_PPPD" "${ECHO_TS[@]}" || return 1
  ssh_pid=$(vm_exec "pgrep -P $PPPD_PID -x ssh" </dev/null) || why "no ssh child of pppd" || return 1
  vm_exec "kill -9 $ssh_pid" </dev/null
  watch_down "$ECHO_LIMIT" "pppd's ssh killed"
}

# Full-size packets: 1382 bytes of ICMP payload + 8 + 20 = 1410, the agreed MTU.
check_mtu_1410() {
  local out
  [ "$(ip -n "$NS_GW" -o link show tun0 | grep -o 'mtu [0-9]*')" = "mtu 1410" ] ||
    why "tsunagi's tun0 has $(ip -n "$NS_GW" -o link show tun0 | grep -o 'mtu [0-9]*'), not 1410" || return 1
  vm_exec "ip -o link show ppp0 | grep -q 'mtu 1410 '" </dev/null || why "pppd's ppp0 MTU is not 1410" || return 1
  ip netns exec "$NS_LAN" ping -c 2 -W 3 -M "do" -s 1382 "$LAN2_HOST" >/dev/null ||
    why "a 1410-byte packet (ping -M do -s 1382) did not cross $LAN_HOST -> $LAN2_HOST" || return 1
  vm_exec "ip netns exec lan2 ping -c 2 -W 3 -M do -s 1382 $LAN_HOST" </dev/null >/dev/null ||
    why "a 1410-byte packet did not cross $LAN2_HOST -> $LAN_HOST" || return 1
  # One byte more with DF set: refused at the router in front of the link, which names the MTU.
  out=$(ip netns exec "$NS_LAN" ping -c 2 -W 3 -M "do" -s 1383 "$LAN2_HOST" 2>&1)
  [ $? -ne 0 ] && grep -Eq 'mtu ?= ?1410' <<<"$out" ||
    why "ping -M do -s 1383 $LAN_HOST -> $LAN2_HOST was not refused with mtu 1410: $(tail -3 <<<"$out" | tr '\n' ' ')" || return 1
  out=$(vm_exec "ip netns exec lan2 ping -c 2 -W 3 -M do -s 1383 $LAN_HOST" </dev/null 2>&1)
  [ $? -ne 0 ] && grep -Eq 'mtu ?= ?1410' <<<"$out" ||
    why "ping -M do -s 1383 $LAN2_HOST -> $LAN_HOST was not refused with mtu 1410: $(tail -3 <<<"$out" | tr '\n' ' ')" || return 1
  # Without DF the same packet is fragmented and crosses.
  ip netns exec "$NS_LAN" ping -c 2 -W 3 -M dont -s 1383 "$LAN2_HOST" >/dev/null ||
    why "ping -M dont -s 1383 (fragmented) did not cross" || return 1
  vm_exec "ip netns exec lan2 ping -c 2 -W 3 -M dont -s 3000 $LAN_HOST" </dev/null >/dev/null ||
    why "ping -M dont -s 3000 (fragmented) did not cross $LAN2_HOST -> $LAN_HOST" || return 1
  echo "    MTU 1410: 1410-byte packets cross both ways; 1411 with DF refused (mtu = 1410); fragmented ones cross" >&2
}

scenario_s4_asyncmap0_mtu1410() {
  local name=$1
  dial_pppd "$name" "asyncmap 0 mtu 1410 mru 1410" || return 1
  check_link "$name" 5005 || return 1
  grep 'rcvd \[LCP ConfAck' "$SD/pppd.log" | tail -1 | grep -q '<asyncmap 0x0>.*<mru 1410>\|<mru 1410>.*<asyncmap 0x0>' ||
    why "pppd's acked request does not carry asyncmap 0x0 and mru 1410" || return 1
  grep -q 'LCP opened: .*peer mru 1410 .*peer asyncmap 0x0 ' "$SD/tsunagi.log" ||
    why "tsunagi did not log peer mru 1410 / peer asyncmap 0x0" || return 1
  check_mtu_1410
}

# pppd without an asyncmap option. Its manual says no ACCM is then negotiated, but
# pppd 2.4.9 asks for asyncmap 0x0 (lcp.c's default): what matters is that both ends
# log the same value, which check_agreed compares.
scenario_s4_default_accm() {
  local name=$1 asked
  dial_pppd "$name" "" || return 1
  check_link "$name" 5006 || return 1
  asked=$(grep 'sent \[LCP ConfReq' "$SD/pppd.log" | tail -1 | grep -o '<asyncmap [^>]*>' | tr -d '<>' | cut -d' ' -f2)
  grep -q "LCP opened: .*peer asyncmap ${asked:-0xffffffff} " "$SD/tsunagi.log" ||
    why "pppd asked for asyncmap ${asked:-none}, tsunagi did not log peer asyncmap ${asked:-0xffffffff}" || return 1
  echo "    pppd's default request: asyncmap ${asked:-none (RFC 1662 default 0xffffffff)}" >&2
}

# pppd with asyncmap 0xffffffff, RFC 1662's default, so it sends no ACCM option at all:
# tsunagi must escape all 32 control characters. Linux ppp_async drops unescaped
# characters of its receive ACCM, so the random 1 MiB transfers (which contain every
# control character) only arrive intact when tsunagi escapes them.
scenario_s4_accm_all_escaped() {
  local name=$1
  dial_pppd "$name" "asyncmap 0xffffffff" || return 1
  check_link "$name" 5008 || return 1
  grep 'sent \[LCP ConfReq' "$SD/pppd.log" | tail -1 | grep -q '<asyncmap' &&
    why "pppd sent an ACCM option although asyncmap is RFC 1662's default" && return 1
  grep -q 'LCP opened: .*peer asyncmap 0xffffffff ' "$SD/tsunagi.log" ||
    why "tsunagi did not log peer asyncmap 0xffffffff"
}

scenario_s5_ident_and_magic() {
  local name=$1 t_magic p_magic
  dial_pppd "$name" "" || return 1
  check_link "$name" 5007 || return 1
  # pppd's log shows tsunagi's Identification (RFC 1570) with tsunagi's magic number.
  t_magic=$(grep 'sent \[LCP ConfReq' "$SD/tsunagi.log" | tail -1 | grep -o 'magic 0x[0-9a-f]*' | cut -d' ' -f2)
  grep -q "rcvd \[LCP Ident id=0x[0-9a-f]* magic=$t_magic \"tsunagi interop venus\"\]" "$SD/pppd.log" ||
    why "pppd's log has no Ident with magic $t_magic and text 'tsunagi interop venus': $(grep 'LCP Ident' "$SD/pppd.log" | head -2)" || return 1
  # tsunagi's log shows pppd's magic number and the agreed options.
  p_magic=$(grep 'sent \[LCP ConfReq' "$SD/pppd.log" | tail -1 | grep -o '<magic 0x[0-9a-f]*>' | tr -d '<>' | cut -d' ' -f2)
  grep -q "LCP: MAGICNUM $(printf '%08x' "$p_magic")" "$SD/tsunagi.log" ||
    why "tsunagi's log lacks 'LCP: MAGICNUM $(printf '%08x' "$p_magic")' (pppd's magic $p_magic)" || return 1
  grep -q 'LCP opened: mru' "$SD/tsunagi.log" && grep -q 'IPCP: myaddr' "$SD/tsunagi.log" ||
    why "tsunagi's log lacks the agreed LCP/IPCP options"
}
