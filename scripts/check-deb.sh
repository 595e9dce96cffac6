#!/usr/bin/env bash
# Checks a built posbridge .deb: control fields and conffiles (dpkg-deb -I),
# contents and modes (dpkg-deb -c), maintainer script syntax (sh -n), then
# installs it into a throwaway root with dpkg --root (scripts run with
# DPKG_ROOT, no chroot), checks every documented path, owner and mode, the
# system user and its dialout membership, the enabled unit, an upgrade that
# keeps a modified config, and a purge. No container, no systemd needed.
# A package for another architecture (arm64, armhf) is installed with
# --force-architecture, its binary checked to be built for that machine
# and run under qemu-user (qemu-user-static).
#
# Usage: scripts/check-deb.sh path/to/posbridge_*.deb
set -euo pipefail
deb=$(realpath "$1")
cd "$(dirname "$0")/.."
fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "check-deb: ok   $*"; }
. scripts/pkgcheck.sh

pkg_arch "$(dpkg-deb -f "$deb" Architecture)"
info=$(dpkg-deb -I "$deb")
for f in "Package: posbridge" "Depends: passwd" "conffiles"; do
	grep -q "$f" <<<"$info" || fail "dpkg-deb -I lacks '$f'"
done
[ "$(dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles)" = /etc/posbridge/posbridge.yaml ] || fail "conffiles is not /etc/posbridge/posbridge.yaml"
ok "control fields and conffiles"

contents=$(dpkg-deb -c "$deb")
while read -r mode path; do
	grep -qE "^$mode root/root .* \./${path#/}\$" <<<"$contents" || fail "dpkg-deb -c: $path is not $mode root/root"
	grep -qF "$path" docs/operations.md || fail "$path is not in docs/operations.md"
done <<'EXPECT'
-rwxr-xr-x /usr/bin/posbridge
-rw-r--r-- /usr/lib/systemd/system/posbridge.service
-rw-r----- /etc/posbridge/posbridge.yaml
-rw-r--r-- /usr/share/doc/posbridge/operations.md
-rw-r--r-- /usr/share/doc/posbridge/posbridge.example.yaml
EXPECT
grep -q '^drwxr-xr-x root/root .* \./$' <<<"$contents" || fail "the archive root is not 0755"
ok "contents and modes (dpkg-deb -c)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -e "$deb" "$tmp/control"
for s in postinst prerm postrm; do
	sh -n "$tmp/control/$s" || fail "$s: syntax"
	[ -x "$tmp/control/$s" ] || fail "$s is not executable"
done
ok "maintainer scripts pass sh -n"

# A throwaway root: an empty dpkg database and the few /etc files useradd
# needs. No dialout group yet: postinst must create it.
R=$tmp/root
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/var/lib/dpkg/triggers" "$R/etc" "$R/usr/sbin"
: >"$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
pkg_root_etc
dpkgr() { dpkg --root="$R" --force-script-chrootless --force-depends --force-confold ${foreign:+--force-architecture} --log=/dev/null "$@"; }
dpkgr -i "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "dpkg --root -i"; }
ok "installed into a throwaway root"

pkg_user /usr/sbin/nologin
ok "system user posbridge (uid $uid) in group dialout"
pkg_paths
ok "paths, owners and modes"
pkg_enabled
ok "posbridge.service enabled (multi-user.target.wants)"
pkg_installed
ok "the binary is built for $machine and runs${emu:+ (under $emu)}; unit and config as in packaging/"
# (systemd-analyze verify runs on the rendered unit in internal/service.)

# Upgrade (reinstall): the edited config and the secrets are kept.
echo "# edited by the technician" >>"$R/etc/posbridge/posbridge.yaml"
echo "# secret edit" >>"$R/etc/posbridge/secrets.yaml"
dpkgr -i "$deb" >"$tmp/upgrade.log" 2>&1 || { cat "$tmp/upgrade.log"; fail "upgrade"; }
grep -q "edited by the technician" "$R/etc/posbridge/posbridge.yaml" || fail "upgrade replaced the edited config"
grep -q "secret edit" "$R/etc/posbridge/secrets.yaml" || fail "upgrade replaced the secrets"
pkg_user /usr/sbin/nologin
pkg_paths
ok "upgrade keeps /etc/posbridge/posbridge.yaml and secrets.yaml"

dpkgr --purge posbridge >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "purge"; }
for p in /usr/bin/posbridge /var/lib/posbridge /etc/posbridge/secrets.yaml /etc/systemd/system/multi-user.target.wants/posbridge.service; do
	[ ! -e "$R$p" ] && [ ! -L "$R$p" ] || fail "$p left after purge"
done
ok "purge removes the binary, data, secrets and the enable link"
