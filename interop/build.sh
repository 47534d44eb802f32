#!/bin/bash
# Build (or reuse) the interop VM image: Debian 12 with pppd 2.4.9 and OpenSSH.
#
#   interop/build.sh           reuse the cached image when its recipe hash matches
#   FORCE=1 interop/build.sh   rebuild from scratch
#
# Two stages, each with a stamp, so that editing the guest configuration below only
# redoes the cheap stage:
#   packages  debootstrap + apt in a chroot   keyed by the VM_PKGS list (lib.sh)   ~4 min
#   image     guest config + mkfs.ext4        keyed by the hash of this file       ~15 s
# Needs root and the Debian package registries only. Exit status 0: image ready.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || { echo "build.sh: must run as root" >&2; exit 1; }

ROOTFS=$INTEROP_CACHE/rootfs
IMG=$INTEROP_CACHE/disk.img
BOOT=$INTEROP_CACHE/boot
mkdir -p "$INTEROP_CACHE"
# One build at a time per cache (two checkouts, or CI beside a developer).
exec 9>"$INTEROP_CACHE/.lock"
flock 9
T0=$(date +%s)

# Debian mirror: the one this host's apt already uses.
host_apt_uri() {
  { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; } |
    sed -n -e 's/^URIs:[[:space:]]*//p' \
      -e 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\).*/\2/p' |
    grep -E "/$1/?\$" | head -n 1 || true
}
MIRROR=${MIRROR:-$(host_apt_uri debian)}
SECURITY_MIRROR=${SECURITY_MIRROR:-$(host_apt_uri debian-security)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}

# ------------------------------------------------------------------ host tools
install_host_tools() {
  local need=()
  command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
  command -v debootstrap >/dev/null || need+=(debootstrap)
  command -v mkfs.ext4 >/dev/null || need+=(e2fsprogs)
  command -v ssh >/dev/null || need+=(openssh-client)
  command -v sshd >/dev/null || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
  command -v socat >/dev/null || need+=(socat)
  command -v sha256sum >/dev/null || need+=(coreutils)
  [ ${#need[@]} -eq 0 ] && return 0
  ilog "installing host packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  local target=()
  # A host whose qemu-utils comes from bookworm-backports (it Breaks bookworm's
  # qemu-system-common 7.2) needs qemu-system-x86 from backports as well.
  if [[ " ${need[*]} " == *" qemu-system-x86 "* ]] &&
     dpkg-query -W -f='${Version}' qemu-utils 2>/dev/null | grep -q bpo; then
    if ! apt-cache policy | grep -q bookworm-backports; then
      printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$MIRROR" > /etc/apt/sources.list.d/bookworm-backports.sources
      apt-get update -qq
    fi
    target=(-t bookworm-backports)
  fi
  apt-get install -y -qq --no-install-recommends "${target[@]}" "${need[@]}" >/dev/null
}
install_host_tools

# ------------------------------------------------------------------ reuse?
RECIPE_HASH=$( { cat "$HERE/build.sh" "$HERE/lib.sh"; } | sha256sum | cut -c1-16)
if [ "${FORCE:-0}" != 1 ] && [ -f "$IMG" ] && [ -f "$BOOT/vmlinuz" ] &&
   [ "$(cat "$INTEROP_CACHE/image.hash" 2>/dev/null)" = "$RECIPE_HASH" ]; then
  ilog "image up to date ($INTEROP_CACHE, recipe $RECIPE_HASH)"
  exit 0
fi

# ------------------------------------------------------------------ key
mkdir -p "$INTEROP_CACHE/keys"; chmod 700 "$INTEROP_CACHE/keys"
[ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C tsunagi-interop -f "$KEY"

# ------------------------------------------------------------------ packages stage
umount_chroot() {
  local m
  for m in dev/pts dev sys proc; do
    mountpoint -q "$ROOTFS/$m" 2>/dev/null && umount -l "$ROOTFS/$m" || true
  done
}
trap umount_chroot EXIT
PKG_KEY="bookworm ${VM_PKGS[*]}"
if [ "${FORCE:-0}" = 1 ] || [ "$(cat "$ROOTFS/.interop-pkgs" 2>/dev/null)" != "$PKG_KEY" ]; then
  umount_chroot
  # Never recurse into a host /dev or /proc that an interrupted build left bind-mounted.
  if grep -q " $ROOTFS/" /proc/mounts; then
    echo "build.sh: something is still mounted under $ROOTFS; not deleting it" >&2; exit 1
  fi
  rm -rf "$ROOTFS" "$IMG" "$BOOT" "$INTEROP_CACHE/image.hash"
  ilog "debootstrap bookworm from $MIRROR (about 2 min)"
  debootstrap --variant=minbase --include=systemd-sysv,udev,kmod,iproute2 \
    bookworm "$ROOTFS" "$MIRROR" > "$INTEROP_CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$INTEROP_CACHE/debootstrap.log" >&2; exit 1; }
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "$SECURITY_MIRROR" > "$ROOTFS/etc/apt/sources.list"
  # no daemons start inside the chroot; no docs in the image; a small initrd
  printf '#!/bin/sh\nexit 101\n' > "$ROOTFS/usr/sbin/policy-rc.d"; chmod +x "$ROOTFS/usr/sbin/policy-rc.d"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n' \
    > "$ROOTFS/etc/dpkg/dpkg.cfg.d/interop-nodoc"
  mkdir -p "$ROOTFS/etc/initramfs-tools/conf.d"
  echo 'MODULES=list' > "$ROOTFS/etc/initramfs-tools/conf.d/interop.conf"
  printf '%s\n' virtio_pci virtio_blk virtio_net ext4 > "$ROOTFS/etc/initramfs-tools/modules"
  for m in proc sys dev dev/pts; do mount --bind "/$m" "$ROOTFS/$m"; done
  ilog "apt in the chroot: ${VM_PKGS[*]} (about 2 min)"
  chroot "$ROOTFS" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C bash -ec "
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ${VM_PKGS[*]}
    apt-get -y -qq upgrade
    apt-get clean" > "$INTEROP_CACHE/chroot-apt.log" 2>&1 ||
    { tail -30 "$INTEROP_CACHE/chroot-apt.log" >&2; exit 1; }
  umount_chroot
  rm -f "$ROOTFS/usr/sbin/policy-rc.d"
  echo "$PKG_KEY" > "$ROOTFS/.interop-pkgs"
fi

# ------------------------------------------------------------------ guest configuration
ilog "configuring the guest"
echo tsunagi-interop > "$ROOTFS/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 tsunagi-interop\n%s vm\n%s host\n' "$VM_IP" "$HOST_IP" > "$ROOTFS/etc/hosts"
printf '/dev/vda / ext4 rw,noatime 0 1\ntmpfs /tmp tmpfs rw,nosuid,nodev 0 0\n' > "$ROOTFS/etc/fstab"
mkdir -p "$ROOTFS/etc/systemd/network"
# Static address, no default route: the VM reaches only the host namespace (and, per
# scenario, the routes a test adds).
printf '[Match]\nName=eth0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
  "$VM_IP" > "$ROOTFS/etc/systemd/network/10-eth0.network"
chroot "$ROOTFS" systemctl enable systemd-networkd.service >/dev/null 2>&1
chroot "$ROOTFS" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
chroot "$ROOTFS" passwd -d root >/dev/null
install -d -m 700 "$ROOTFS/root/.ssh"
install -m 600 "$KEY.pub" "$ROOTFS/root/.ssh/authorized_keys"
mkdir -p "$ROOTFS/etc/ssh/sshd_config.d"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\nMaxStartups 50:30:100\n' \
  > "$ROOTFS/etc/ssh/sshd_config.d/interop.conf"
chroot "$ROOTFS" systemctl enable ssh.service >/dev/null 2>&1
chroot "$ROOTFS" systemctl disable ssh.socket >/dev/null 2>&1 || true
# root autologin on the serial console, for debugging a guest whose network is down
mkdir -p "$ROOTFS/etc/systemd/system/serial-getty@ttyS0.service.d"
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %%I $TERM\n' \
  > "$ROOTFS/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
# ppp_async is what pppd needs on a pty/notty; load it once sshd runs instead of
# delaying boot (it would autoload on /dev/ppp too).
cat > "$ROOTFS/etc/systemd/system/interop-modules.service" <<'UNIT'
[Unit]
Description=PPP modules for the tsunagi interop tests
After=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/modprobe -a ppp_generic ppp_async dummy
[Install]
WantedBy=multi-user.target
UNIT
chroot "$ROOTFS" systemctl enable interop-modules.service >/dev/null 2>&1
# Boot speed under TCG: units nothing here needs.
for u in modprobe@drm.service modprobe@efi_pstore.service modprobe@dm_mod.service \
  modprobe@loop.service modprobe@fuse.service modprobe@configfs.service \
  sys-kernel-tracing.mount sys-kernel-debug.mount sys-kernel-config.mount \
  sys-fs-fuse-connections.mount dev-hugepages.mount systemd-pstore.service \
  systemd-random-seed.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer; do
  chroot "$ROOTFS" systemctl mask "$u" >/dev/null 2>&1 || true
done
# Debian's /etc/ppp/options sets asyncmap 0, auth, lcp-echo-interval 30 and more; every
# scenario states its own options instead, so "pppd's defaults" means pppd's compiled-in ones.
printf '# tsunagi interop: each scenario passes its options on the command line\n' > "$ROOTFS/etc/ppp/options"
mkdir -p "$ROOTFS/etc/sysctl.d" "$ROOTFS/etc/systemd/journald.conf.d"
printf 'net.ipv4.ip_forward=1\nkernel.printk=4 4 1 7\n' > "$ROOTFS/etc/sysctl.d/60-interop.conf"
printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$ROOTFS/etc/systemd/journald.conf.d/interop.conf"

# ------------------------------------------------------------------ kernel + image
KVER=$(find "$ROOTFS/boot" -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
[ -n "$KVER" ] || { echo "build.sh: no kernel in $ROOTFS/boot" >&2; exit 1; }
mkdir -p "$BOOT"
install -m 644 "$ROOTFS/boot/vmlinuz-$KVER" "$BOOT/vmlinuz"
install -m 644 "$ROOTFS/boot/initrd.img-$KVER" "$BOOT/initrd.img"
echo "$KVER" > "$BOOT/version"
ilog "mkfs.ext4 of rootfs/ into $IMG"
rm -f "$IMG.tmp"; truncate -s 2G "$IMG.tmp"
mkfs.ext4 -q -F -L interoproot -E root_owner=0:0 -d "$ROOTFS" "$IMG.tmp"
mv -f "$IMG.tmp" "$IMG"
echo "$RECIPE_HASH" > "$INTEROP_CACHE/image.hash"
ilog "image ready in $(( $(date +%s) - T0 )) s: kernel $KVER, recipe $RECIPE_HASH"
