#!/bin/bash
# Build (or reuse) the interop VM image: Debian 12 with pppd 2.4.9, pptpd, pptp-linux,
# xl2tpd, strongSwan (charon with the kernel's ESP) and OpenSSH.
#
#   interop/build.sh           reuse the cached image of this recipe when there is one
#   FORCE=1 interop/build.sh   rebuild this recipe's rootfs and image from scratch
#
# Two stages, each in its own keyed directory (lib.sh), so that editing the guest
# configuration below only redoes the cheap stage:
#   packages  debootstrap + apt in a chroot  -> rootfs-<PKG_HASH>/     VM_PKGS     ~4 min
#   image     guest config on a copy of it,  -> image-<RECIPE_HASH>/   build.sh    ~15 s
#             mkfs.ext4, kernel + initrd                               + lib.sh
# Another checkout's recipe gets directories of its own: nothing here deletes or
# rewrites an image another run may be booting.
# Needs root and the Debian package registries only. Exit status 0: image ready.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$HERE/lib.sh"
[ "$(id -u)" = 0 ] || { echo "build.sh: must run as root" >&2; exit 1; }

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
[ -n "$MIRROR" ] || {
  echo "interop/build.sh: no Debian mirror in this host's apt sources (/etc/apt/sources.list*): set MIRROR=URI" >&2
  exit 1
}

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
  # The IPsec scenarios' host side (scenarios_ipsec.sh): charon with kernel-libipsec
  # (userland ESP), swanctl, and the openssl and gcm plugins.
  [ -x /usr/lib/ipsec/charon ] || need+=(strongswan-charon)
  command -v swanctl >/dev/null || need+=(strongswan-swanctl)
  [ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ] || need+=(libcharon-extra-plugins)
  [ -e /usr/lib/ipsec/plugins/libstrongswan-gcm.so ] || need+=(libstrongswan-standard-plugins)
  command -v nft >/dev/null || need+=(nftables)
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

# ------------------------------------------------------------------ cache upkeep
# Never recurse into a host /dev or /proc that an interrupted build left bind-mounted.
mounted_under() { grep -q " $1/" /proc/mounts; }
remove_tree() {
  if mounted_under "$1"; then echo "build.sh: something is still mounted under $1; not deleting it" >&2; return 1; fi
  rm -rf "$1"
}
# Under the lock: a .partial is what an interrupted build left; a keyed directory unused
# (its mtime is touched at each use) for INTEROP_CACHE_DAYS days belongs to a recipe no
# checkout runs any more. A qemu still running from a deleted image keeps its open files.
cache_gc() {
  local d
  for d in "$INTEROP_CACHE"/rootfs-*.partial "$INTEROP_CACHE"/image-*.partial; do
    [ -e "$d" ] && { remove_tree "$d" || true; }
  done
  find "$INTEROP_CACHE" -mindepth 1 -maxdepth 1 -type d \( -name 'rootfs-*' -o -name 'image-*' \) \
    -mtime "+${INTEROP_CACHE_DAYS:-7}" -print 2>/dev/null |
    while read -r d; do
      [ "$d" = "$ROOTFS" ] || [ "$d" = "$IMAGE_DIR" ] && continue
      ilog "removing $d (unused for ${INTEROP_CACHE_DAYS:-7} days)"
      remove_tree "$d" || true
    done
}

# ------------------------------------------------------------------ reuse?
if [ "${FORCE:-0}" != 1 ] && [ -f "$IMAGE_DIR/disk.img" ] && [ -f "$IMAGE_DIR/vmlinuz" ]; then
  touch "$IMAGE_DIR"
  cache_gc
  ilog "image up to date ($IMAGE_DIR)"
  exit 0
fi

# ------------------------------------------------------------------ key
mkdir -p "$INTEROP_CACHE/keys"; chmod 700 "$INTEROP_CACHE/keys"
[ -f "$KEY" ] || ssh-keygen -q -t ed25519 -N '' -C tsunagi-interop -f "$KEY"

# ------------------------------------------------------------------ packages stage
# Built in $PART and renamed to $ROOTFS when apt is done, so a rootfs-<hash>/ is complete.
PART=$ROOTFS.partial
umount_chroot() {
  local m
  for m in dev/pts dev sys proc; do
    if mountpoint -q "$PART/$m" 2>/dev/null; then umount -l "$PART/$m" || true; fi
  done
}
WORK=""
cleanup() { umount_chroot; if [ -n "$WORK" ]; then rm -rf "$WORK"; fi; }
trap cleanup EXIT
PKG_KEY="bookworm ${VM_PKGS[*]}"
if [ "${FORCE:-0}" = 1 ] || [ "$(cat "$ROOTFS/.interop-pkgs" 2>/dev/null)" != "$PKG_KEY" ]; then
  umount_chroot
  remove_tree "$PART" || exit 1
  ilog "debootstrap bookworm from $MIRROR (about 2 min)"
  debootstrap --variant=minbase --include=systemd-sysv,udev,kmod,iproute2 \
    bookworm "$PART" "$MIRROR" > "$INTEROP_CACHE/debootstrap.log" 2>&1 ||
    { tail -20 "$INTEROP_CACHE/debootstrap.log" >&2; exit 1; }
  # The security archive only when the host uses one.
  {
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$MIRROR" "$MIRROR"
    [ -z "$SECURITY_MIRROR" ] || printf 'deb %s bookworm-security main\n' "$SECURITY_MIRROR"
  } > "$PART/etc/apt/sources.list"
  # no daemons start inside the chroot; no docs in the image; a small initrd
  printf '#!/bin/sh\nexit 101\n' > "$PART/usr/sbin/policy-rc.d"; chmod +x "$PART/usr/sbin/policy-rc.d"
  printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\npath-exclude /usr/share/locale/*\n' \
    > "$PART/etc/dpkg/dpkg.cfg.d/interop-nodoc"
  mkdir -p "$PART/etc/initramfs-tools/conf.d"
  echo 'MODULES=list' > "$PART/etc/initramfs-tools/conf.d/interop.conf"
  printf '%s\n' virtio_pci virtio_blk virtio_net ext4 > "$PART/etc/initramfs-tools/modules"
  for m in proc sys dev dev/pts; do mount --bind "/$m" "$PART/$m"; done
  ilog "apt in the chroot: ${VM_PKGS[*]} (about 2 min)"
  chroot "$PART" /usr/bin/env DEBIAN_FRONTEND=noninteractive LC_ALL=C bash -ec "
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends ${VM_PKGS[*]}
    apt-get -y -qq upgrade
    apt-get clean" > "$INTEROP_CACHE/chroot-apt.log" 2>&1 ||
    { tail -30 "$INTEROP_CACHE/chroot-apt.log" >&2; exit 1; }
  umount_chroot
  rm -f "$PART/usr/sbin/policy-rc.d"
  echo "$PKG_KEY" > "$PART/.interop-pkgs"
  if [ -e "$ROOTFS" ]; then remove_tree "$ROOTFS" || exit 1; fi
  mv "$PART" "$ROOTFS"
fi
touch "$ROOTFS"

# ------------------------------------------------------------------ guest configuration
# On a copy: the packages tree stays as apt left it, for every recipe that shares it.
WORK=$IMAGE_DIR.partial
rm -rf "$WORK"; mkdir -p "$WORK"
R=$WORK/rootfs
ilog "copying $ROOTFS for the guest configuration"
cp -a --reflink=auto "$ROOTFS" "$R"
rm -f "$R/.interop-pkgs"
ilog "configuring the guest"
echo tsunagi-interop > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 tsunagi-interop\n%s vm\n%s host\n' "$VM_IP" "$HOST_IP" > "$R/etc/hosts"
printf '/dev/vda / ext4 rw,noatime 0 1\ntmpfs /tmp tmpfs rw,nosuid,nodev 0 0\n' > "$R/etc/fstab"
mkdir -p "$R/etc/systemd/network"
# Static address, no default route: the VM reaches only the host namespace (and, per
# scenario, the routes a test adds).
printf '[Match]\nName=eth0\n\n[Network]\nAddress=%s/24\nLinkLocalAddressing=no\nIPv6AcceptRA=no\n' \
  "$VM_IP" > "$R/etc/systemd/network/10-eth0.network"
chroot "$R" systemctl enable systemd-networkd.service >/dev/null 2>&1
chroot "$R" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
chroot "$R" passwd -d root >/dev/null
install -d -m 700 "$R/root/.ssh"
install -m 600 "$KEY.pub" "$R/root/.ssh/authorized_keys"
mkdir -p "$R/etc/ssh/sshd_config.d"
printf 'PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\nMaxStartups 50:30:100\n' \
  > "$R/etc/ssh/sshd_config.d/interop.conf"
chroot "$R" systemctl enable ssh.service >/dev/null 2>&1
chroot "$R" systemctl disable ssh.socket >/dev/null 2>&1 || true
# root autologin on the serial console, for debugging a guest whose network is down
mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
# shellcheck disable=SC2016  # $TERM is for systemd to expand, not this shell
printf '[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --noclear --keep-baud 115200 %%I $TERM\n' \
  > "$R/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf"
# ppp_async is what pppd needs on a pty/notty (pptpd and pptp-linux also run pppd on a
# pty and do HDLC and GRE in userland; neither uses the kernel's pptp module), ppp_mppe
# is MPPE; esp4 and xfrm_user are the kernel's ESP and its netlink for charon. Load
# them once sshd runs instead of delaying boot (they would autoload on
# /dev/ppp and on CCP too).
cat > "$R/etc/systemd/system/interop-modules.service" <<'UNIT'
[Unit]
Description=PPP modules for the tsunagi interop tests
After=ssh.service
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/modprobe -a ppp_generic ppp_async ppp_mppe dummy esp4 xfrm_user
[Install]
WantedBy=multi-user.target
UNIT
chroot "$R" systemctl enable interop-modules.service >/dev/null 2>&1
# pptpd: the PPTP scenarios start it themselves with their own /etc/pptpd.conf. Debian
# leaves pptpd.service disabled; it is masked here as well, so that nothing starts it with
# Debian's default config on TCP 1723 of the VM. Its /etc/modules-load.d/pptpd.conf loads
# nf_nat_pptp at boot, for PPTP passing through a NAT, which the VM does not do.
chroot "$R" systemctl mask pptpd.service >/dev/null 2>&1
printf '# tsunagi interop: no NAT in the VM, so no nf_nat_pptp\n' > "$R/etc/modules-load.d/pptpd.conf"
# xl2tpd: the L2TP scenarios start their own LNS and LAC (xl2tpd -D with their own
# config, secrets and control pipe). Debian enables xl2tpd.service, which would take UDP
# 1701 of the VM's root namespace with Debian's default config: masked like pptpd.
chroot "$R" systemctl mask xl2tpd.service >/dev/null 2>&1
# strongSwan: the IPsec scenarios write their own ipsec.conf/ipsec.secrets or
# swanctl.conf and start charon themselves (`ipsec start`); Debian enables
# strongswan-starter.service, which would start charon at boot with Debian's files.
# (ipsec.service is its alias, which systemctl refuses to mask by that name.)
chroot "$R" systemctl mask strongswan-starter.service >/dev/null 2>&1
# Boot speed under TCG: units nothing here needs.
for u in modprobe@drm.service modprobe@efi_pstore.service modprobe@dm_mod.service \
  modprobe@loop.service modprobe@fuse.service modprobe@configfs.service \
  sys-kernel-tracing.mount sys-kernel-debug.mount sys-kernel-config.mount \
  sys-fs-fuse-connections.mount dev-hugepages.mount systemd-pstore.service \
  systemd-random-seed.service apt-daily.timer apt-daily-upgrade.timer \
  e2scrub_all.timer fstrim.timer; do
  chroot "$R" systemctl mask "$u" >/dev/null 2>&1 || true
done
# Debian's /etc/ppp/options sets asyncmap 0, auth, lcp-echo-interval 30 and more; every
# scenario states its own options instead, so "pppd's defaults" means pppd's compiled-in ones.
printf '# tsunagi interop: each scenario passes its options on the command line\n' > "$R/etc/ppp/options"
mkdir -p "$R/etc/sysctl.d" "$R/etc/systemd/journald.conf.d"
printf 'net.ipv4.ip_forward=1\nkernel.printk=4 4 1 7\n' > "$R/etc/sysctl.d/60-interop.conf"
printf '[Journal]\nStorage=volatile\nForwardToConsole=no\n' > "$R/etc/systemd/journald.conf.d/interop.conf"

# ------------------------------------------------------------------ kernel + image
KVER=$(find "$R/boot" -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
[ -n "$KVER" ] || { echo "build.sh: no kernel in $R/boot" >&2; exit 1; }
install -m 644 "$R/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
install -m 644 "$R/boot/initrd.img-$KVER" "$WORK/initrd.img"
echo "$KVER" > "$WORK/version"
ilog "mkfs.ext4 of the configured tree into $IMAGE_DIR/disk.img"
truncate -s 2G "$WORK/disk.img"
mkfs.ext4 -q -F -L interoproot -E root_owner=0:0 -d "$R" "$WORK/disk.img"
rm -rf "$R"
echo "$RECIPE_HASH $PKG_HASH" > "$WORK/recipe"
# FORCE=1 replaces this recipe's image; a qemu booted from the old one keeps its files.
[ -e "$IMAGE_DIR" ] && rm -rf "$IMAGE_DIR"
mv "$WORK" "$IMAGE_DIR"
WORK=""
cache_gc
ilog "image ready in $(( $(date +%s) - T0 )) s: $IMAGE_DIR, kernel $KVER"
