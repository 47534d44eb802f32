# Shared settings of the interop harness. Sourced by build.sh, vm.sh and run.sh; not run.
# shellcheck shell=bash
# shellcheck disable=SC2034  # the settings are used by the scripts that source this file
#
# Everything machine-local lives in one persistent cache directory, keyed by recipe, so
# that checkouts with different recipes (a branch that adds a package beside main) each
# keep their own image instead of rebuilding and deleting each other's:
#   $INTEROP_CACHE/rootfs-<PKG_HASH>/    debootstrapped Debian 12 tree as apt left it,
#                                        keyed by the suite and VM_PKGS
#   $INTEROP_CACHE/image-<RECIPE_HASH>/  disk.img (raw ext4, booted snapshot=on, never
#                                        written), vmlinuz, initrd.img, version; keyed by
#                                        the text of build.sh and lib.sh
#   $INTEROP_CACHE/keys/                 the ssh key root@VM accepts (generated on this machine)
# Both kinds of directory are built under a .partial name and renamed into place whole,
# under $INTEROP_CACHE/.lock, and never changed after that, so a run boots exactly the
# image its own recipe describes. build.sh deletes the ones unused for
# $INTEROP_CACHE_DAYS days (default 7).
# Per run (one boot) state lives in $INTEROP_RUN.
INTEROP_DIR=${INTEROP_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
INTEROP_CACHE=${INTEROP_CACHE:-/var/cache/tsunagi-interop}
INTEROP_RUN=${INTEROP_RUN:-/run/tsunagi-interop.$$}
# Names carry the pid of the process that created them, so concurrent runs (and other
# engineers' namespaces) never collide, and teardown deletes only what this run made.
INTEROP_TAG=${INTEROP_TAG:-ti$$}
NS_GW=${NS_GW:-$INTEROP_TAG-gw}      # host side: tap to the VM, tsunagi daemon, sshd
NS_LAN=${NS_LAN:-$INTEROP_TAG-lan}   # the LAN behind tsunagi
TAP=${TAP:-$INTEROP_TAG-tap}
HOST_IP=10.200.0.1
VM_IP=10.200.0.2
VM_MAC=52:54:00:c8:00:02
KEY=$INTEROP_CACHE/keys/id_ed25519

# Packages inside the VM. The package stage is keyed by this list, so a changed list
# builds a new rootfs-<hash>/.
# pptpd and pptp-linux are the PPTP peers (scenarios_pptp.sh), xl2tpd the L2TP LAC and
# LNS (scenarios_l2tp.sh); tcpdump captures their GRE, TCP 1723 and UDP 1701.
# strongSwan with the kernel's ESP (scenarios_ipsec.sh): charon with kernel-netlink
# (strongswan-charon), `ipsec start` and ipsec.conf as seed 002 writes them
# (strongswan-starter), swanctl for the self-check, and the openssl and gcm plugins
# (libstrongswan-standard-plugins: 3DES and ECP for IKE, AES-GCM).
# iptables for seed 002's `leftfirewall=yes` (scenarios_l2tp_ipsec.sh): strongSwan's
# updown script opens the conn's ports with it.
VM_PKGS=(
  linux-image-amd64 initramfs-tools zstd kmod udev dbus systemd-sysv
  ppp openssh-server openssh-client iproute2 iputils-ping procps psmisc
  socat netcat-openbsd
  pptpd pptp-linux xl2tpd tcpdump
  strongswan-charon strongswan-starter strongswan-swanctl libstrongswan-standard-plugins
  iptables
)
PKG_HASH=$(printf '%s\n' bookworm "${VM_PKGS[@]}" | sha256sum | cut -c1-12)
RECIPE_HASH=$(cat "$INTEROP_DIR/build.sh" "$INTEROP_DIR/lib.sh" | sha256sum | cut -c1-16)
ROOTFS=$INTEROP_CACHE/rootfs-$PKG_HASH
IMAGE_DIR=$INTEROP_CACHE/image-$RECIPE_HASH

ilog() { printf '[interop %s] %s\n' "$(date +%T)" "$*" >&2; }

ssh_opts() {
  # ControlMaster: the first ssh pays the (emulated, slow) key exchange; later ones reuse it.
  printf '%s\n' -i "$KEY" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o BatchMode=yes \
    -o ConnectTimeout=5 -o ServerAliveInterval=5 -o ServerAliveCountMax=6 \
    -o ControlMaster=auto -o "ControlPath=$INTEROP_RUN/ssh-%C" -o ControlPersist=900
}

# vm_exec CMD...: run a shell command in the VM as root (over the tap, from $NS_GW).
vm_exec() {
  local o; mapfile -t o < <(ssh_opts)
  ip netns exec "$NS_GW" ssh "${o[@]}" "root@$VM_IP" "$@"
}
