# PPP authentication and CCP against pppd 2.4.9 (issue 4). Sourced by run.sh right
# after its SCENARIOS list, which this file extends; the functions run later, with
# run.sh's helpers (ts_*, vm_*, check_*) and scenarios.sh's (dial_pppd, check_link).
#
# In every scenario tsunagi dials the VM's pppd (as s1 does) and:
# - with the right password the link comes up, LAN-to-LAN ping and 1 MiB of TCP each
#   way cross (check_link), and both logs say who authenticated how;
# - with a wrong password both ends refuse it: pppd's log and tsunagi's name the
#   failure, and the link never reaches the network phase.
#
# pppd as authenticator: `require-pap`, `require-chap`, `require-mschap-v2`, and
# `require-mschap-v2 require-mppe-128`; tsunagi answers as venus (`user`/`password`).
# pppd as the authenticating peer: `user saturn password ...` against tsunagi's
# `require = ["chap"]` and a 0600 chap-secrets, tsunagi dialling (a5) and pppd dialling
# through sshd and `tsunagi direct` (a7: the failure names the ssh client address that
# `tsunagi direct` read from sshd's SSH_CONNECTION). pppd `deflate 15` against
# tsunagi's `deflate = 15`.

SCENARIOS+=(
  a1-pppd-require-pap
  a2-pppd-require-chap
  a3-pppd-require-mschap-v2
  a4-pppd-require-mppe-128
  a5-pppd-authenticates-to-tsunagi
  a6-pppd-deflate-15
  a7-pppd-dials-tsunagi-chap
)

VENUS_PW=venus-interop-pw     # tsunagi's password when pppd authenticates it
SATURN_PW=saturn-interop-pw   # pppd's password when tsunagi authenticates it
WRONG_PW=not-the-password

# pppd's secrets in the VM: venus (tsunagi) may log in with any address.
vm_secrets() {
  vm_exec "umask 077; printf '%s\n' 'venus * $VENUS_PW *' > /etc/ppp/chap-secrets &&
    cp /etc/ppp/chap-secrets /etc/ppp/pap-secrets" </dev/null ||
    why "cannot write /etc/ppp/{chap,pap}-secrets in the VM"
}

# The first run of a scenario is over: stop both ends before the wrong-password run.
# Its logs go to $SD/wrong-password/ (SD is the scenario's directory in run.sh).
next_run() {
  ts_stop
  vm_exec 'for p in $(pgrep -x pppd); do kill $p; done' </dev/null >/dev/null 2>&1
  wait_for 20 vm_pppd_gone || why "pppd of the first run did not exit" || return 1
  SD=$SD/wrong-password; mkdir -p "$SD"
}

# pppd_log_has NAME REGEX: pppd's log of run NAME (fetched into $SD) matches REGEX.
pppd_log_has() { fetch_pppd_log "$1" && grep -Eq "$2" "$SD/pppd.log"; }

# pppd_requires NAME PPPD_OPTS METHOD PPPD_FAIL PORT [tsunagi lines...]: pppd demands
# authentication with PPPD_OPTS, tsunagi answers as venus with METHOD (its log name).
# PPPD_FAIL: what pppd logs when venus's secret is wrong.
pppd_requires() {
  local name=$1 popts=$2 method=$3 pppd_fail=$4 port=$5; shift 5
  vm_secrets || return 1
  dial_pppd "$name" "$popts" 'user = "venus"' "password = \"$VENUS_PW\"" "$@" || return 1
  check_link "$name" "$port" || return 1
  grep -q "we authenticated to root@$VM_IP as \"venus\" with $method" "$SD/tsunagi.log" ||
    why "tsunagi did not log its $method authentication as venus" || return 1
  # pppd 2.4.9 logs a PAP success in words, a CHAP one only as the packets.
  { grep -q "PAP peer authentication succeeded for venus" "$SD/pppd.log" ||
    { grep -q 'rcvd \[CHAP Response .*name = "venus"\]' "$SD/pppd.log" &&
      grep -q 'sent \[CHAP Success' "$SD/pppd.log"; }; } ||
    why "pppd did not log venus's authentication" || return 1
  echo "    $method: pppd: $(grep -E 'peer authentication succeeded|sent \[CHAP Success' "$SD/pppd.log" | tail -1)" >&2

  next_run || return 1
  ts_start < <(ts_config dial "device = \"$(pppd_notty "$name-wrong" "$popts")\"" \
    'user = "venus"' "password = \"$WRONG_PW\"" "$@") || return 1
  wait_for 90 grep -q "refused our authentication as \"venus\" by $method" "$SD/tsunagi.log" ||
    why "wrong password: tsunagi did not log pppd's refusal" || return 1
  wait_for 20 pppd_log_has "$name-wrong" "$pppd_fail" ||
    why "wrong password: pppd's log lacks '$pppd_fail'" || return 1
  ! grep -q "IPCP: myaddr" "$SD/tsunagi.log" || why "wrong password: IPCP came up anyway" || return 1
  echo "    wrong password: tsunagi: $(grep -o 'refused our authentication.*' "$SD/tsunagi.log" | tail -1); pppd: $(grep -E "$pppd_fail" "$SD/pppd.log" | tail -1)" >&2
}

scenario_a1_pppd_require_pap() {
  pppd_requires "$1" "require-pap" PAP "PAP peer authentication failed for venus" 5101
}

scenario_a2_pppd_require_chap() {
  pppd_requires "$1" "require-chap" CHAP "Peer venus failed CHAP authentication" 5102
}

scenario_a3_pppd_require_mschap_v2() {
  pppd_requires "$1" "require-mschap-v2" MS-CHAP-v2 "Peer venus failed CHAP authentication" 5103 \
    'accept = ["mschap-v2"]'
}

scenario_a4_pppd_require_mppe_128() {
  pppd_requires "$1" "require-mschap-v2 require-mppe-128" MS-CHAP-v2 \
    "Peer venus failed CHAP authentication" 5104 'mppe = "require-128"' || return 1
  # The first run's logs: MPPE-128 stateless both ways, by both ends' account.
  local first=${SD%/wrong-password}
  grep -qF "CCP up: send MPPE 128-bit stateless, receive MPPE 128-bit stateless" "$first/tsunagi.log" ||
    why "tsunagi did not log MPPE-128 stateless both ways" || return 1
  grep -q "MPPE 128-bit stateless compression enabled" "$first/pppd.log" ||
    why "pppd did not log 'MPPE 128-bit stateless compression enabled'"
}

# pppd's `user`/`password` in an options file in the VM (pppd `file`), so that the
# password is not on the device command line, which tsunagi logs.
vm_pppd_credentials() { # vm_pppd_credentials FILE PASSWORD
  vm_exec "umask 077; printf '%s\n' 'user saturn' 'password $2' > $1" </dev/null ||
    why "cannot write $1 in the VM"
}

scenario_a5_pppd_authenticates_to_tsunagi() {
  local name=$1 secrets
  secrets=$SD/chap-secrets
  ( umask 077; printf 'saturn * "%s" *\n' "$SATURN_PW" > "$secrets" )
  local ts=('require = ["chap"]' "secrets = \"$secrets\"")
  vm_pppd_credentials /etc/ppp/saturn-right "$SATURN_PW" &&
    vm_pppd_credentials /etc/ppp/saturn-wrong "$WRONG_PW" || return 1
  dial_pppd "$name" "file /etc/ppp/saturn-right" "${ts[@]}" || return 1
  check_link "$name" 5105 || return 1
  grep -q "peer \"saturn\" from root@$VM_IP authenticated with CHAP" "$SD/tsunagi.log" ||
    why "tsunagi did not log saturn's CHAP authentication" || return 1
  grep -q "CHAP authentication succeeded" "$SD/pppd.log" ||
    why "pppd did not log 'CHAP authentication succeeded'" || return 1
  ts_status | grep -q '"auth": *"peer saturn by CHAP"' ||
    why "tsunagi status does not show 'peer saturn by CHAP': $(ts_status)" || return 1

  next_run || return 1
  ts_start < <(ts_config dial \
    "device = \"$(pppd_notty "$name-wrong" "file /etc/ppp/saturn-wrong")\"" "${ts[@]}") || return 1
  wait_for 90 grep -q "authentication failed: user \"saturn\" from root@$VM_IP by CHAP" "$SD/tsunagi.log" ||
    why "wrong password: tsunagi did not log the failure with user and source" || return 1
  wait_for 20 pppd_log_has "$name-wrong" "CHAP authentication failed" ||
    why "wrong password: pppd's log lacks 'CHAP authentication failed'" || return 1
  ! grep -q "IPCP: myaddr" "$SD/tsunagi.log" || why "wrong password: IPCP came up anyway" || return 1
  ! grep -q "$WRONG_PW\|$SATURN_PW" "$SD/tsunagi.log" "${SD%/wrong-password}/tsunagi.log" ||
    why "a password appears in tsunagi's log" || return 1
  echo "    wrong password: tsunagi: $(grep -o 'authentication failed: .*' "$SD/tsunagi.log" | tail -1)" >&2
}

scenario_a6_pppd_deflate_15() {
  dial_pppd "$1" "deflate 15" "deflate = 15" || return 1
  check_link "$1" 5106 || return 1
  grep -qF "CCP up: send DEFLATE[4] win 15, receive DEFLATE[4] win 15" "$SD/tsunagi.log" ||
    why "tsunagi did not log Deflate 15 both ways" || return 1
  grep -q "Deflate (15) compression enabled" "$SD/pppd.log" ||
    why "pppd did not log 'Deflate (15) compression enabled'" || return 1
  ts_status | grep -q '"ccp": *"send DEFLATE\[4\] win 15' ||
    why "tsunagi status does not show the Deflate CCP: $(ts_status)"
}

scenario_a7_pppd_dials_tsunagi_chap() {
  local name=$1 secrets
  secrets=$SD/chap-secrets
  ( umask 077; printf 'saturn * "%s" *\n' "$SATURN_PW" > "$secrets" )
  local ts=('require = ["chap"]' "secrets = \"$secrets\"")
  vm_pppd_credentials /etc/ppp/saturn-right "$SATURN_PW" &&
    vm_pppd_credentials /etc/ppp/saturn-wrong "$WRONG_PW" || return 1
  pppd_dials "$name" "file /etc/ppp/saturn-right" "${ts[@]}" || return 1
  check_link "$name" 5107 || return 1
  grep -q "peer \"saturn\" from $VM_IP authenticated with CHAP" "$SD/tsunagi.log" ||
    why "tsunagi did not log saturn's CHAP authentication from $VM_IP (SSH_CONNECTION)" || return 1
  grep -q "CHAP authentication succeeded" "$SD/pppd.log" ||
    why "pppd did not log 'CHAP authentication succeeded'" || return 1

  next_run || return 1
  # As pppd_dials, without waiting for a link that must not come up.
  ts_start < <(ts_config direct "allow_users = [\"$ACCT\"]" "${ts[@]}") || return 1
  local connect="exec ssh -i /root/.ssh/tsunagi_client -o IdentitiesOnly=yes -o BatchMode=yes \
-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/root/.ssh/tsunagi_known_hosts \
$ACCT@$HOST_IP tsunagi direct vm"
  vm_exec "setsid pppd nodetach noauth debug logfile /tmp/$name-wrong-pppd.log \
pty '$connect' file /etc/ppp/saturn-wrong $PPPD_ADDR:$TS_ADDR </dev/null >/tmp/$name-wrong-pppd.out 2>&1 &" </dev/null ||
    why "pppd did not start in the VM" || return 1
  wait_for 90 grep -q "authentication failed: user \"saturn\" from $VM_IP by CHAP" "$SD/tsunagi.log" ||
    why "wrong password: tsunagi did not log the failure naming $VM_IP" || return 1
  wait_for 20 pppd_log_has "$name-wrong" "CHAP authentication failed" ||
    why "wrong password: pppd's log lacks 'CHAP authentication failed'" || return 1
  ! grep -q "IPCP: myaddr" "$SD/tsunagi.log" || why "wrong password: IPCP came up anyway" || return 1
  echo "    wrong password: tsunagi: $(grep -o 'authentication failed: .*' "$SD/tsunagi.log" | tail -1)" >&2
}
