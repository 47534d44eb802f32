#!/usr/bin/env bash
# Installs tsunagi as a system service (README.md, "Running under systemd"):
# the release binary to /usr/local/sbin, the unit to /etc/systemd/system,
# and /etc/tsunagi (0750) with the example config when there is none yet.
# Run as root from the project root: `bash scripts/install.sh`. It starts
# nothing: `systemctl enable --now tsunagi` does, once the config is yours.
# PREFIX (default /usr/local) and DESTDIR (default empty) move where it goes;
# TSUNAGI_BIN installs that binary instead of building the release one.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || [ -n "${DESTDIR:-}" ] || {
	echo "scripts/install.sh: run as root (or set DESTDIR)" >&2
	exit 1
}
PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
if [ -z "${TSUNAGI_BIN:-}" ]; then
	cargo build --release -p tsunagi
	TSUNAGI_BIN=${CARGO_TARGET_DIR:-target}/release/tsunagi
fi
install -D -m 0755 "$TSUNAGI_BIN" "$DESTDIR$PREFIX/sbin/tsunagi"
unit="$DESTDIR/etc/systemd/system/tsunagi.service"
install -D -m 0644 dist/systemd/tsunagi.service "$unit"
if [ "$PREFIX" != /usr/local ]; then
	sed -i "s|/usr/local/sbin/tsunagi|$PREFIX/sbin/tsunagi|g" "$unit"
fi
install -d -m 0750 "$DESTDIR/etc/tsunagi"
if [ ! -e "$DESTDIR/etc/tsunagi/tsunagi.toml" ]; then
	install -m 0600 dist/tsunagi.toml "$DESTDIR/etc/tsunagi/tsunagi.toml"
	echo "installed an example config: edit $DESTDIR/etc/tsunagi/tsunagi.toml" >&2
fi
if [ -z "$DESTDIR" ] && [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
echo "installed: $DESTDIR$PREFIX/sbin/tsunagi, $unit; next: systemctl enable --now tsunagi" >&2
