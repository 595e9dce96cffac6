#!/usr/bin/env bash
# Checks a built posbridge .deb: control fields and conffiles (dpkg-deb -I),
# contents and modes (dpkg-deb -c), maintainer script syntax (sh -n), then
# installs it into a throwaway root with dpkg --root (scripts run with
# DPKG_ROOT, no chroot), checks every documented path, owner and mode, the
# system user and its dialout membership, the enabled unit, an upgrade that
# keeps a modified config, and a purge. No container, no systemd needed.
#
# Usage: scripts/check-deb.sh path/to/posbridge_*.deb
set -euo pipefail
deb=$(realpath "$1")
cd "$(dirname "$0")/.."
fail() { echo "check-deb: FAIL: $*" >&2; exit 1; }
ok() { echo "check-deb: ok   $*"; }

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
printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\n' >"$R/etc/group"
printf 'root:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
printf 'root:*::\n' >"$R/etc/gshadow"
chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
dpkgr() { dpkg --root="$R" --force-script-chrootless --force-depends --force-confold --log=/dev/null "$@"; }
dpkgr -i "$deb" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "dpkg --root -i"; }
ok "installed into a throwaway root"

uid=$(awk -F: '$1=="posbridge"{print $3}' "$R/etc/passwd")
gid=$(awk -F: '$1=="posbridge"{print $3}' "$R/etc/group")
[ -n "$uid" ] && [ -n "$gid" ] || fail "user/group posbridge not created"
awk -F: '$1=="posbridge"{exit !($7=="/usr/sbin/nologin" && $6=="/var/lib/posbridge")}' "$R/etc/passwd" || fail "posbridge user: wrong shell/home"
grep -qE '^dialout:[^:]*:[0-9]+:(.*,)?posbridge(,|$)' "$R/etc/group" || fail "posbridge is not in group dialout"
ok "system user posbridge (uid $uid) in group dialout"

check() { # mode uid gid path
	local got
	got=$(stat -c '%a %u %g' "$R$4") || fail "$4 missing"
	[ "$got" = "$1 $2 $3" ] || fail "$4 is '$got', want '$1 $2 $3'"
}
check 755 0 0 /usr/bin/posbridge
check 644 0 0 /usr/lib/systemd/system/posbridge.service
check 750 0 "$gid" /etc/posbridge
check 640 0 "$gid" /etc/posbridge/posbridge.yaml
check 600 "$uid" "$gid" /etc/posbridge/secrets.yaml
check 750 "$uid" "$gid" /var/lib/posbridge
for p in /etc/posbridge/secrets.yaml /var/lib/posbridge; do
	grep -qF "$p" docs/operations.md || fail "$p is not in docs/operations.md"
done
ok "paths, owners and modes"

want=$(readlink "$R/etc/systemd/system/multi-user.target.wants/posbridge.service") || fail "posbridge.service is not enabled"
[ "$want" = /usr/lib/systemd/system/posbridge.service ] || fail "enabled unit links to $want"
ok "posbridge.service enabled (multi-user.target.wants)"

"$R/usr/bin/posbridge" version | grep -q "posbridge " || fail "the installed binary does not run"
diff <("$R/usr/bin/posbridge" service unit) "$R/usr/lib/systemd/system/posbridge.service" >/dev/null || fail "the packaged unit differs from 'posbridge service unit'"
# (systemd-analyze verify runs on the rendered unit in internal/service.)

# Upgrade (reinstall): the edited config and the secrets are kept.
echo "# edited by the technician" >>"$R/etc/posbridge/posbridge.yaml"
echo "# secret edit" >>"$R/etc/posbridge/secrets.yaml"
dpkgr -i "$deb" >"$tmp/upgrade.log" 2>&1 || { cat "$tmp/upgrade.log"; fail "upgrade"; }
grep -q "edited by the technician" "$R/etc/posbridge/posbridge.yaml" || fail "upgrade replaced the edited config"
grep -q "secret edit" "$R/etc/posbridge/secrets.yaml" || fail "upgrade replaced the secrets"
check 600 "$uid" "$gid" /etc/posbridge/secrets.yaml
ok "upgrade keeps /etc/posbridge/posbridge.yaml and secrets.yaml"

dpkgr --purge posbridge >"$tmp/purge.log" 2>&1 || { cat "$tmp/purge.log"; fail "purge"; }
for p in /usr/bin/posbridge /var/lib/posbridge /etc/posbridge/secrets.yaml /etc/systemd/system/multi-user.target.wants/posbridge.service; do
	[ ! -e "$R$p" ] && [ ! -L "$R$p" ] || fail "$p left after purge"
done
ok "purge removes the binary, data, secrets and the enable link"
