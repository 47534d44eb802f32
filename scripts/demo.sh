#!/usr/bin/env bash
# Demo on a fresh Debian 12 machine, as root: install the packages, build,
# bring up seed 000's HOME and Labs sites in network namespaces linked by
# tsunagi's PPP over SSH, check them, and leave them up to look around.
#
#   ./scripts/demo.sh [PREFIX]      (default prefix: tsl)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
[ "$(id -u)" = 0 ] || { echo "scripts/demo.sh: run as root" >&2; exit 1; }
. scripts/packages.sh
install_packages
# The gateway and the lab; the lab's daemons run the tsunagi beside it.
cargo build --release -p tsunagi -p tsunagi-lab
BIN=$PWD/target/release/tsunagi
LAB=$PWD/target/release/tsunagi-lab
P=${1:-tsl}
"$LAB" down --prefix "$P" >/dev/null 2>&1 || true
"$LAB" up --prefix "$P"
"$LAB" check --prefix "$P"
cat <<EOT

The lab is up. Look around:
  ip netns exec $P-home-host ping 192.168.253.10
  ip netns exec $P-home-host traceroute -n 192.168.253.10   (if installed)
  $LAB status --prefix $P
  $BIN -S /run/tsunagi-lab/$P/home/tsunagi.sock status
  $BIN -S /run/tsunagi-lab/$P/labs/tsunagi.sock status --json
  less /run/tsunagi-lab/$P/labs/tsunagi.log      (LCP/IPCP negotiation, ident)
  less /run/tsunagi-lab/$P/ssh/sshd.log          (who logged in, from where)
Take it down:
  $LAB down --prefix $P
EOT
