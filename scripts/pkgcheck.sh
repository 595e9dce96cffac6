# What an installed posbridge package must leave in a throwaway root,
# shared by check-deb.sh and check-rpm.sh (sourced, not run). The caller
# defines fail and ok, sets R to the root and runs from the repository
# root.

# pkg_root_etc: a root's minimal account files, only root in them.
pkg_root_etc() {
	mkdir -p "$R/etc"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
	printf 'root:x:0:\n' >"$R/etc/group"
	printf 'root:*:19000:0:99999:7:::\n' >"$R/etc/shadow"
	printf 'root:*::\n' >"$R/etc/gshadow"
	chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
}

# pkg_user NOLOGIN...: the system user posbridge (one, with one of the
# given shells, home /var/lib/posbridge) and its dialout membership; sets
# uid and gid.
pkg_user() {
	uid=$(awk -F: '$1=="posbridge"{print $3}' "$R/etc/passwd")
	gid=$(awk -F: '$1=="posbridge"{print $3}' "$R/etc/group")
	[ -n "$uid" ] && [ -n "$gid" ] || fail "user/group posbridge not created"
	[ "$(grep -c '^posbridge:' "$R/etc/passwd")" = 1 ] || fail "more than one posbridge user"
	local shell home
	shell=$(awk -F: '$1=="posbridge"{print $7}' "$R/etc/passwd")
	home=$(awk -F: '$1=="posbridge"{print $6}' "$R/etc/passwd")
	[ "$home" = /var/lib/posbridge ] || fail "posbridge user: home is $home"
	[[ " $* " == *" $shell "* ]] || fail "posbridge user: shell is $shell, want one of $*"
	grep -qE '^dialout:[^:]*:[0-9]+:(.*,)?posbridge(,|$)' "$R/etc/group" || fail "posbridge is not in group dialout"
}

# pkg_mode MODE UID GID PATH
pkg_mode() {
	local got
	got=$(stat -c '%a %u %g' "$R$4") || fail "$4 missing"
	[ "$got" = "$1 $2 $3" ] || fail "$4 is '$got', want '$1 $2 $3'"
}

# pkg_paths: every installed path's mode and owners (after pkg_user).
pkg_paths() {
	pkg_mode 755 0 0 /usr/bin/posbridge
	pkg_mode 644 0 0 /usr/lib/systemd/system/posbridge.service
	pkg_mode 750 0 "$gid" /etc/posbridge
	pkg_mode 640 0 "$gid" /etc/posbridge/posbridge.yaml
	pkg_mode 600 "$uid" "$gid" /etc/posbridge/secrets.yaml
	pkg_mode 750 "$uid" "$gid" /var/lib/posbridge
	pkg_mode 644 0 0 /usr/share/doc/posbridge/operations.md
	pkg_mode 644 0 0 /usr/share/doc/posbridge/posbridge.example.yaml
	local p
	for p in /etc/posbridge/secrets.yaml /var/lib/posbridge; do
		grep -qF "$p" docs/operations.md || fail "$p is not in docs/operations.md"
	done
}

# pkg_enabled: the unit is enabled for multi-user.target.
pkg_enabled() {
	local want
	want=$(readlink "$R/etc/systemd/system/multi-user.target.wants/posbridge.service") || fail "posbridge.service is not enabled"
	[ "$want" = /usr/lib/systemd/system/posbridge.service ] || fail "enabled unit links to $want"
}

# pkg_arch ARCH: the package's architecture (dpkg's or rpm's name). Sets
# machine (what readelf calls the binary's machine), emu (the qemu
# user-mode emulator that runs it on this host, empty when it runs
# natively) and foreign (non-empty when it is not this host's).
pkg_arch() {
	local native
	case $1 in
	amd64 | x86_64) machine="Advanced Micro Devices X86-64" native=x86_64 emu= ;;
	arm64 | aarch64) machine=AArch64 native=aarch64 emu=qemu-aarch64-static ;;
	armhf | armv7hl) machine=ARM native=armv7l emu=qemu-arm-static ;;
	*) fail "unknown package architecture '$1'" ;;
	esac
	foreign=
	if [ "$(uname -m)" = "$native" ]; then
		emu=
	else
		foreign=1
		[ -z "$emu" ] || command -v "$emu" >/dev/null 2>&1 ||
			fail "$emu missing: install qemu-user-static to check a $1 package here"
	fi
}

# pkg_installed [VERSION]: the binary is built for the package's machine
# (after pkg_arch) and runs (and says VERSION), and the unit and the
# config are the ones in the repository.
pkg_installed() {
	local v m
	m=$(readelf -h "$R/usr/bin/posbridge" | awk -F: '$1 ~ /Machine/ {gsub(/^[ \t]+/, "", $2); print $2}')
	[ "$m" = "$machine" ] || fail "/usr/bin/posbridge is built for '$m', want '$machine'"
	v=$(${emu:+"$emu"} "$R/usr/bin/posbridge" version) || fail "the installed binary does not run${emu:+ (under $emu)}"
	[[ "$v" == *"posbridge ${1:-}"* ]] || fail "posbridge version says '$v', want ${1:-a version}"
	diff <(${emu:+"$emu"} "$R/usr/bin/posbridge" service unit) "$R/usr/lib/systemd/system/posbridge.service" >/dev/null ||
		fail "the packaged unit differs from 'posbridge service unit'"
	cmp -s packaging/posbridge.yaml "$R/etc/posbridge/posbridge.yaml" || fail "/etc/posbridge/posbridge.yaml differs from packaging/posbridge.yaml"
	cmp -s packaging/posbridge.yaml "$R/usr/share/doc/posbridge/posbridge.example.yaml" || fail "posbridge.example.yaml differs from packaging/posbridge.yaml"
}
