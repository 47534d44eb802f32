#!/usr/bin/env bash
# Everything CI checks, on a fresh Debian 12 machine as root: packages,
# formatting, lints, and every test of the workspace. The tests that need
# root (network namespaces, tun devices, nftables, sshd) are #[ignore]d, so a
# plain `cargo test` lists them as ignored; here they run, with
# --include-ignored. Without root the script refuses: those tests would fail.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
if [ "$(id -u)" != 0 ]; then
	cat >&2 <<-'EOF'
		scripts/test.sh: needs root: it runs every test, and the network-namespace,
		daemon and end-to-end tests need root (run without it, they fail).
		Run it as root (sudo scripts/test.sh). As this user,
		`cargo test --workspace` runs the tests that need no root and lists the
		others as ignored.
	EOF
	exit 1
fi
. scripts/packages.sh
install_packages
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace -- --include-ignored
# Last: the interop tier against pppd, pptpd, pptp-linux and xl2tpd in a QEMU
# VM, which takes both cores while it runs (interop/README.md). Here it must
# run: a scenario it cannot run (SKIPPED, with the reason) fails the script.
INTEROP_REQUIRED=1 bash interop/run.sh
