#!/usr/bin/env bash
# Checks a built posbridge .rpm with the rpm tools (Debian's rpm package):
# digests (rpm -K); name, version, release, arch; Requires, Provides and the
# other relations against packaging/nfpm.yaml; the file list with modes,
# owners and flags (the config is config(noreplace)), each path named in
# docs/operations.md; each scriptlet byte for byte equal to its file under
# packaging/rpm/ (nfpm adds nothing to them), run by /bin/sh, passing sh -n,
# and no other scriptlets or triggers. Then installs it with rpm --root into
# a throwaway root (rpm runs the scriptlets chrooted there; the root holds
# only a shell and the tools they call, copied from this host with their
# libraries) and checks the system user and its dialout membership, every
# path, owner and mode, the enabled unit, an upgrade (rpm -U --replacepkgs:
# the scriptlets get $1 = 2, as on an upgrade) that keeps the edited config
# and the secrets, and an erase that keeps secrets and database. Needs root
# (chroot) and systemctl on this host. Queries use a throwaway rpm database:
# nothing is written to the host's /etc, /usr, /var or ~/.rpmdb.
#
# Not checked, and why:
# - The scriptlets' systemd branches (daemon-reload, try-restart on upgrade,
#   stop and disable on erase): they run only when /run/systemd/system
#   exists, and in a chroot without /proc systemctl cannot tell it is in a
#   chroot, so it tries the bus instead of acting offline. The root has no
#   /run/systemd/system: the checks cover a host without a running systemd
#   (enable and disable act offline there).
# - Whether dnf would install it on an RPM distribution (dependency
#   resolution, SELinux labels): no RPM distribution here. The Requires are
#   checked against nfpm.yaml, and must name shadow-utils (preinstall.sh's
#   groupadd, useradd and usermod).
# - The arm64 and armv7hl packages on an arm host: here they are installed
#   with --ignorearch, their binary checked to be built for that machine and
#   run under qemu-user (qemu-user-static).
#
# Usage: scripts/check-rpm.sh path/to/posbridge-*.{x86_64,aarch64,armv7hl}.rpm [VERSION]
# VERSION is the one given to scripts/build.sh (e.g. 0.0.0-ci); without it
# the version is not checked.
set -euo pipefail
rpmf=$(realpath "$1")
version=${2:-}
cd "$(dirname "$0")/.."
fail() { echo "check-rpm: FAIL: $*" >&2; exit 1; }
ok() { echo "check-rpm: ok   $*"; }
. scripts/pkgcheck.sh

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
q() { rpm --dbpath "$tmp/rpmdb" -qp "$@" "$rpmf"; }

rpm --dbpath "$tmp/rpmdb" -K --nosignature "$rpmf" >/dev/null || fail "rpm -K: digests do not match"
ok "digests (rpm -K)"

# nfpm's rpm version: build.sh's VERSION without a leading v, the semver
# pre-release after "~" with its "-" as "_" (0.0.0-ci -> 0.0.0~ci).
release=$(awk '$1 == "release:" {print $2}' packaging/nfpm.yaml)
arch=${rpmf%.rpm}
arch=${arch##*.}
pkg_arch "$arch"
got=$(q --queryformat '%{NAME} %{RELEASE} %{ARCH} %{OS}')
[ "$got" = "posbridge $release $arch linux" ] || fail "name release arch os is '$got', want 'posbridge $release $arch linux'"
rpmver=$(q --queryformat '%{VERSION}')
if [ -n "$version" ]; then
	want=${version#v}
	case $want in *-*) pre=${want#*-}; want="${want%%-*}~${pre//-/_}" ;; esac
	[ "$rpmver" = "$want" ] || fail "version is '$rpmver', want '$want' (from $version)"
	ok "name posbridge, version $rpmver, release $release, arch $arch"
else
	ok "name posbridge, release $release, arch $arch (version $rpmver not checked)"
fi

# Relations: exactly what nfpm.yaml declares (top-level lists; nfpm's
# "replaces" become Obsoletes), plus the package's own Provides. rpmlib()
# feature requirements are rpm's own and allowed.
grep -q '^overrides:' packaging/nfpm.yaml && fail "nfpm.yaml has overrides: teach check-rpm to read them"
yamllist() { # top-level key of nfpm.yaml -> its items, one a line, sorted
	awk -v k="$1" '
		!inl && $0 ~ "^" k ":" {
			v = $0; sub("^" k ":[ \t]*", "", v); sub(/[ \t]+#.*/, "", v)
			if (v ~ /^\[/) {
				gsub(/[][]/, "", v); n = split(v, a, ",")
				for (i = 1; i <= n; i++) { gsub(/^[ \t"]+|[ \t"]+$/, "", a[i]); if (a[i] != "") print a[i] }
				exit
			}
			inl = 1; next
		}
		inl && /^[ \t]+- / { v = $0; sub(/^[ \t]+- [ \t]*/, "", v); sub(/[ \t]+#.*/, "", v); gsub(/^"|"$/, "", v); print v; next }
		inl && /^[^ \t#]/ { exit }
	' packaging/nfpm.yaml | sort
}
relation() { # rpm query option -> items, one a line, sorted, blanks squeezed
	q "$1" | tr -s ' \t' ' ' | sed 's/ $//' | grep -v '^$' | sort || true
}
diff <(relation --requires | grep -v '^rpmlib(' || true) <(yamllist depends) >"$tmp/d" ||
	{ cat "$tmp/d" >&2; fail "Requires differ from nfpm.yaml's depends (< rpm, > nfpm.yaml)"; }
diff <(relation --provides) <({ yamllist provides; echo "posbridge = $rpmver-$release"; } | sort) >"$tmp/d" ||
	{ cat "$tmp/d" >&2; fail "Provides differ from nfpm.yaml's provides plus posbridge = $rpmver-$release"; }
for r in conflicts:conflicts obsoletes:replaces recommends:recommends suggests:suggests supplements:supplements enhances:enhances; do
	diff <(relation "--${r%%:*}") <(yamllist "${r#*:}") >"$tmp/d" ||
		{ cat "$tmp/d" >&2; fail "${r%%:*} differ from nfpm.yaml's ${r#*:}"; }
done
relation --requires | grep -qx shadow-utils || fail "Requires lacks shadow-utils (preinstall.sh's useradd)"
ok "Requires: $(relation --requires | paste -sd, | sed 's/^$/none/'), as nfpm.yaml declares; Provides and the other relations too"

# Files: exactly these, with these modes, owners and flags (cn: config,
# noreplace). Modes, owners and paths as check-deb.sh expects of the .deb,
# plus /var/lib/posbridge, which the .rpm owns (postinstall gives it to
# posbridge).
q --queryformat '[%{FILEMODES:perms} %{FILEUSERNAME} %{FILEGROUPNAME} (%{FILEFLAGS:fflags}) %{FILENAMES}\n]' | sort -k5 >"$tmp/files"
sort -k5 >"$tmp/want" <<'EXPECT'
-rwxr-xr-x root root () /usr/bin/posbridge
-rw-r--r-- root root () /usr/lib/systemd/system/posbridge.service
-rw-r----- root root (cn) /etc/posbridge/posbridge.yaml
-rw-r--r-- root root () /usr/share/doc/posbridge/operations.md
-rw-r--r-- root root () /usr/share/doc/posbridge/posbridge.example.yaml
drwxr-x--- root root () /var/lib/posbridge
EXPECT
diff "$tmp/files" "$tmp/want" >"$tmp/d" || { cat "$tmp/d" >&2; fail "file list, modes, owners or flags differ (< rpm, > expected)"; }
while read -r _ _ _ _ path; do
	grep -qF "$path" docs/operations.md || fail "$path is not in docs/operations.md"
done <"$tmp/want"
ok "files, modes, owners; /etc/posbridge/posbridge.yaml is config(noreplace)"

# Scriptlets: the four from nfpm.yaml, by /bin/sh, and nothing else.
declare -A tag=([preinstall]=PREIN [postinstall]=POSTIN [preremove]=PREUN [postremove]=POSTUN)
declare -A head=([preinstall]=preinstall [postinstall]=postinstall [preremove]=preuninstall [postremove]=postuninstall)
want=
for s in preinstall postinstall preremove postremove; do
	src=$(awk -v s="$s" '/^scripts:/ {in_s = 1; next} in_s && /^[^ \t]/ {exit} in_s && $1 == s ":" {print $2}' packaging/nfpm.yaml)
	[ -n "$src" ] && [ -f "$src" ] || fail "nfpm.yaml names no file for $s"
	q --queryformat "%{${tag[$s]}}" >"$tmp/$s"
	cmp -s "$tmp/$s" "$src" || { diff "$tmp/$s" "$src" >&2 || true; fail "${head[$s]} scriptlet differs from $src"; }
	sh -n "$tmp/$s" || fail "${head[$s]}: syntax"
	want+="${head[$s]} scriptlet (using /bin/sh):"$'\n'
done
got=$(q --scripts | grep -E '^[a-z]+ (scriptlet|program)' || true)
[ "$got" = "${want%$'\n'}" ] || fail "scriptlets are: $(paste -sd';' <<<"$got")"
[ -z "$(q --triggers --filetriggers)" ] || fail "the package has triggers"
ok "scriptlets equal packaging/rpm/*.sh, run by /bin/sh, pass sh -n"

# A throwaway root: the tools the scriptlets call (and their libraries),
# /dev/null, and the few /etc files useradd needs. No dialout group yet:
# preinstall must create it. No /run/systemd/system: see the header.
[ "$(id -u)" = 0 ] || fail "the install check needs root (rpm runs the scriptlets chrooted)"
R=$tmp/root
mkdir -p "$R/usr/bin" "$R/etc" "$R/dev" "$R/var/lib"
ln -s usr/bin "$R/bin"
ln -s usr/bin "$R/sbin"
ln -s bin "$R/usr/sbin"
for c in sh getent groupadd useradd usermod install chown chmod systemctl; do
	p=$(command -v "$c") || fail "$c missing on this host (the scriptlets need it in the root)"
	cp -L "$p" "$R/usr/bin/$c"
	for l in $(ldd "$p" | grep -oE '/[^ ]+'); do
		[ -e "$R$l" ] || install -D -m 0755 "$l" "$R$l"
	done
done
libc=$(ldd "$(command -v getent)" | awk '$1 ~ /^libc\.so/ {print $3}')
[ ! -e "$(dirname "$libc")/libnss_files.so.2" ] || install -D -m 0644 "$(dirname "$libc")/libnss_files.so.2" "$R$(dirname "$libc")/libnss_files.so.2"
printf 'passwd: files\ngroup: files\nshadow: files\ngshadow: files\n' >"$R/etc/nsswitch.conf"
mknod -m 0666 "$R/dev/null" c 1 3 2>/dev/null || { : >"$R/dev/null"; chmod 0666 "$R/dev/null"; }
pkg_root_etc
rpmr() { # logs to $tmp/$1.log; fails on an error or a command the root lacks
	local log=$tmp/$1.log
	shift
	rpm --root="$R" --dbpath=/var/lib/rpm --nodeps "$@" >"$log" 2>&1 || { cat "$log" >&2; return 1; }
	if grep -E 'not found|No such file|error:|scriptlet failed' "$log" >&2; then return 1; fi
}
rpmr install -i ${foreign:+--ignorearch} "$rpmf" || fail "rpm --root -i"
ok "installed into a throwaway root (scriptlets run chrooted)"

pkg_user /sbin/nologin /usr/sbin/nologin
ok "system user posbridge (uid $uid) in group dialout"
pkg_paths
ok "paths, owners and modes"
pkg_enabled
ok "posbridge.service enabled (multi-user.target.wants)"
pkg_installed "$version"
ok "the binary is built for $machine and runs${emu:+ under $emu}${version:+ (posbridge $version)}; unit and config as in packaging/"

# Upgrade (same package again: pre/postinstall get 2, the old pre/postremove
# 1): the edited config and the secrets are kept, owners and modes restored.
echo "# edited by the technician" >>"$R/etc/posbridge/posbridge.yaml"
echo "# secret edit" >>"$R/etc/posbridge/secrets.yaml"
chmod 0644 "$R/etc/posbridge/secrets.yaml"
rpmr upgrade -U --replacepkgs ${foreign:+--ignorearch} "$rpmf" || fail "upgrade (rpm -U --replacepkgs)"
grep -q "edited by the technician" "$R/etc/posbridge/posbridge.yaml" || fail "upgrade replaced the edited config"
grep -q "secret edit" "$R/etc/posbridge/secrets.yaml" || fail "upgrade replaced the secrets"
pkg_user /sbin/nologin /usr/sbin/nologin
pkg_paths
ok "upgrade keeps /etc/posbridge/posbridge.yaml and secrets.yaml, restores owners and modes"

# Erase: the package's files go; the edited config stays as .rpmsave, the
# secrets and the database stay.
echo "queued" >"$R/var/lib/posbridge/posbridge.db"
rpmr erase -e posbridge || fail "rpm --root -e"
for p in /usr/bin/posbridge /usr/lib/systemd/system/posbridge.service /usr/share/doc/posbridge/operations.md /etc/posbridge/posbridge.yaml; do
	[ ! -e "$R$p" ] || fail "$p left after erase"
done
grep -q "edited by the technician" "$R/etc/posbridge/posbridge.yaml.rpmsave" || fail "erase did not save the edited config as posbridge.yaml.rpmsave"
grep -q "secret edit" "$R/etc/posbridge/secrets.yaml" || fail "erase removed the secrets"
grep -q queued "$R/var/lib/posbridge/posbridge.db" || fail "erase removed the database"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/posbridge.service" ] && [ ! -L "$R/etc/systemd/system/multi-user.target.wants/posbridge.service" ] ||
	fail "erase left posbridge.service enabled (multi-user.target.wants)"
[ -z "$(rpm --root="$R" --dbpath=/var/lib/rpm -qa)" ] || fail "rpm database still lists a package after erase"
ok "erase removes the package's files and the enable link, keeps the edited config (.rpmsave), secrets and database"
