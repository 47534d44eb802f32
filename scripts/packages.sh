#!/usr/bin/env bash
# Debian 12 packages the lab, the end-to-end tests and the benchmark use.
# Sourced by demo.sh and test.sh; installs only what is missing.
# strongSwan (charon with kernel-libipsec, swanctl): the IKEv1 responder of
# crates/tsunagi/tests/probe_ike.rs; none of its packages starts a service.
# systemd: systemd-analyze checks dist/systemd/tsunagi.service (systemd_unit.rs).
# tshark: reads back the pcap of crates/tsunagi/tests/capture_netns.rs.
PACKAGES=(openssh-server openssh-client iproute2 nftables iputils-ping procps util-linux passwd tshark
	strongswan-charon strongswan-swanctl libcharon-extra-plugins systemd)

install_packages() {
	local missing=() p
	for p in "${PACKAGES[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	if [ ${#missing[@]} -gt 0 ]; then
		echo "installing: ${missing[*]}" >&2
		apt-get update
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
	fi
	# Debian's openssh-server package would start a system sshd; the lab runs
	# its own inside a namespace and only needs the privilege separation dir.
	mkdir -p /run/sshd
	chmod 755 /run/sshd
}
