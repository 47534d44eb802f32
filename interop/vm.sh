#!/bin/bash
# Boot, use and stop the interop VM (Debian 12 under QEMU TCG, reached from a network
# namespace over a tap device):
#
#   netns $NS_GW                           VM (snapshot=on: every boot starts pristine)
#     $TAP 10.200.0.1/24  <--virtio-net-->  eth0 10.200.0.2/24, sshd, pppd 2.4.9
#
# Sourced by run.sh for vm_up / vm_down; also a small CLI for working by hand:
#   interop/vm.sh up | exec 'pppd --version' | exec (shell) | console | down
# (the CLI keeps its state in /run/tsunagi-interop.manual, namespaces tim-gw / tim-tap).
HERE_VM=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# vm_up: boot in the background and wait until root@VM answers over ssh.
# Returns 1 (with the reason on stderr) when the VM cannot run.
vm_up() {
  # The image of this checkout's recipe (lib.sh): another checkout's build never touches it.
  if [ ! -f "$IMAGE_DIR/disk.img" ] || [ ! -f "$IMAGE_DIR/vmlinuz" ]; then
    echo "no VM image in $IMAGE_DIR (run interop/build.sh)" >&2; return 1
  fi
  command -v qemu-system-x86_64 >/dev/null || { echo "qemu-system-x86_64 not installed" >&2; return 1; }
  mkdir -p "$INTEROP_RUN"; chmod 755 "$INTEROP_RUN"
  if ip netns list | awk '{print $1}' | grep -qx "$NS_GW"; then
    echo "netns $NS_GW exists already; not touching it" >&2; return 1
  fi
  # Written down before creating, so vm_down removes it even after a half-done vm_up.
  echo "$NS_GW" >> "$INTEROP_RUN/netns"
  ip netns add "$NS_GW" || return 1
  ip -n "$NS_GW" link set lo up
  ip netns exec "$NS_GW" ip tuntap add dev "$TAP" mode tap || return 1
  ip -n "$NS_GW" addr add "$HOST_IP/24" dev "$TAP"
  ip -n "$NS_GW" link set "$TAP" up
  local t0 deadline
  t0=$(date +%s.%N)
  # TCG: KVM cannot run a stock kernel on this (PVM-nested) host; see the lab README.
  ip netns exec "$NS_GW" qemu-system-x86_64 \
    -accel tcg,thread=multi,tb-size=256 -cpu max -name "tsunagi-interop-$INTEROP_TAG" \
    -machine q35 -m "${INTEROP_MEM:-768}" -smp 2 \
    -kernel "$IMAGE_DIR/vmlinuz" -initrd "$IMAGE_DIR/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0,115200 net.ifnames=0 quiet loglevel=4 systemd.show_status=0 tsc=reliable mitigations=off" \
    -drive "file=$IMAGE_DIR/disk.img,format=raw,if=virtio,cache=unsafe,snapshot=on" \
    -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" \
    -device "virtio-net-pci,netdev=n0,mac=$VM_MAC" -device virtio-rng-pci \
    -nodefaults -no-user-config -display none \
    -chardev "socket,id=ser0,path=$INTEROP_RUN/serial.sock,server=on,wait=off,logfile=$INTEROP_RUN/console.log" \
    -serial chardev:ser0 -monitor "unix:$INTEROP_RUN/monitor.sock,server,nowait" \
    -pidfile "$INTEROP_RUN/qemu.pid" -daemonize || { echo "qemu did not start" >&2; return 1; }
  deadline=$(( $(date +%s) + ${INTEROP_BOOT_TIMEOUT:-240} ))
  until vm_exec true </dev/null 2>/dev/null; do
    if ! kill -0 "$(cat "$INTEROP_RUN/qemu.pid")" 2>/dev/null; then
      echo "qemu exited during boot; console: $(tail -5 "$INTEROP_RUN/console.log")" >&2; return 1
    fi
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "boot timed out after ${INTEROP_BOOT_TIMEOUT:-240} s; console: $(tail -5 "$INTEROP_RUN/console.log")" >&2
      return 1
    fi
    sleep 1
  done
  awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f\n", b-a}' > "$INTEROP_RUN/boot-seconds"
  ilog "VM up in $(cat "$INTEROP_RUN/boot-seconds") s (kernel $(cat "$IMAGE_DIR/version"), ${IMAGE_DIR##*/})"
}

# vm_down: power the VM off (qemu by its recorded pid only), delete the namespaces this
# run recorded. Safe to call twice and after a failed vm_up.
vm_down() {
  local pid o
  mapfile -t o < <(ssh_opts)
  if ip netns list | awk '{print $1}' | grep -qx "$NS_GW"; then
    ip netns exec "$NS_GW" ssh "${o[@]}" -O exit "root@$VM_IP" >/dev/null 2>&1 || true
  fi
  if [ -f "$INTEROP_RUN/qemu.pid" ]; then
    pid=$(cat "$INTEROP_RUN/qemu.pid")
    if kill -0 "$pid" 2>/dev/null && grep -q "tsunagi-interop-$INTEROP_TAG" "/proc/$pid/cmdline" 2>/dev/null; then
      # The disk is snapshot=on, so nothing is lost by not shutting the guest down cleanly.
      kill "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$INTEROP_RUN/qemu.pid"
  fi
  if [ -f "$INTEROP_RUN/netns" ]; then
    while read -r ns; do
      ip netns del "$ns" 2>/dev/null || true
    done < "$INTEROP_RUN/netns"
    rm -f "$INTEROP_RUN/netns"
  fi
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -uo pipefail
  INTEROP_TAG=tim INTEROP_RUN=/run/tsunagi-interop.manual
  # shellcheck source=lib.sh
  . "$HERE_VM/lib.sh"
  [ "$(id -u)" = 0 ] || { echo "vm.sh: must run as root" >&2; exit 1; }
  case "${1:-}" in
    up) vm_up ;;
    down) vm_down ;;
    exec) shift; if [ $# -eq 0 ]; then vm_exec -t; else vm_exec "$@"; fi ;;
    console) socat -,raw,echo=0,escape=0x1d "UNIX-CONNECT:$INTEROP_RUN/serial.sock" ;;
    *) sed -n '2,10p' "$0"; exit 2 ;;
  esac
fi
