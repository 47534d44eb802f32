#!/usr/bin/env bash
# Everything CI checks, on a fresh Debian 12 machine as root: packages,
# formatting, lints, and every test of the workspace (the end-to-end tests
# in network namespaces included; as non-root they print SKIPPED).
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
if [ "$(id -u)" = 0 ]; then
	. scripts/packages.sh
	install_packages
else
	echo "scripts/test.sh: not root: packages not installed, end-to-end tests will print SKIPPED" >&2
fi
cargo fmt --all --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# Last: the interop tier against pppd in a QEMU VM, which takes both cores while
# it runs (interop/README.md). Prints SKIPPED per scenario when it cannot run.
bash interop/run.sh
