#!/usr/bin/env bash
# Cross-builds posbridge and its packages into dist/:
#   posbridge_<v>_linux_amd64, _linux_arm64, _linux_armv7, _windows_amd64.exe
#   posbridge_<debv>_amd64.deb, _arm64.deb, _armhf.deb   (dpkg-deb)
#   posbridge-<v>-1.x86_64.rpm, .aarch64.rpm, .armv7hl.rpm (nfpm, pinned)
#   posbridge_<v>_windows_amd64.zip                       (exe, example config, install/uninstall.ps1)
#
# Usage: scripts/build.sh [VERSION]      (default: git describe)
# Environment: PACKAGES="deb rpm zip" (default all), DEB_ARCHES / RPM_ARCHES
# (default "amd64 arm64 arm7"), DIST (default dist). CI builds every binary
# but only the amd64 .deb and the zip: PACKAGES="deb zip" DEB_ARCHES=amd64.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${1:-$(git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)}
VERSION=${VERSION#v}
DIST=${DIST:-dist}
PACKAGES=${PACKAGES:-deb rpm zip}
DEB_ARCHES=${DEB_ARCHES:-amd64 arm64 arm7}
RPM_ARCHES=${RPM_ARCHES:-amd64 arm64 arm7}
NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.44.2

rm -rf "$DIST"
mkdir -p "$DIST"

# Binaries: CGO off, version stamped, paths trimmed.
bin() { # os arch [goarm] -> path
	local os=$1 arch=$2 arm=${3:-} name
	name="posbridge_${VERSION}_${os}_${arch}${arm:+v$arm}"
	[ "$os" = windows ] && name="$name.exe"
	echo "$DIST/$name"
}
for t in linux/amd64 linux/arm64 linux/arm/7 windows/amd64; do
	IFS=/ read -r os arch arm <<<"$t"
	out=$(bin "$os" "$arch" "$arm")
	echo "build $out"
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch GOARM=$arm \
		go build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$out" ./cmd/posbridge
done

# Debian version: must start with a digit; "-" would mean a Debian revision.
debver=$VERSION
case $debver in [0-9]*) ;; *) debver="0.0.0~$debver" ;; esac
debver=${debver//-/\~}

deb() { # goarch(amd64|arm64|arm7) -> builds the .deb with dpkg-deb
	local a=$1 darch b root
	case $a in amd64) darch=amd64 b=$(bin linux amd64) ;; arm64) darch=arm64 b=$(bin linux arm64) ;;
	arm7) darch=armhf b=$(bin linux arm 7) ;; *) echo "unknown arch $a" >&2; return 1 ;; esac
	root=$(mktemp -d)
	chmod 0755 "$root"
	install -D -m 0755 "$b" "$root/usr/bin/posbridge"
	install -D -m 0644 packaging/posbridge.service "$root/usr/lib/systemd/system/posbridge.service"
	install -D -m 0640 packaging/posbridge.yaml "$root/etc/posbridge/posbridge.yaml"
	install -D -m 0644 docs/operations.md "$root/usr/share/doc/posbridge/operations.md"
	install -D -m 0644 packaging/posbridge.yaml "$root/usr/share/doc/posbridge/posbridge.example.yaml"
	install -d -m 0755 "$root/DEBIAN"
	install -m 0755 packaging/deb/postinst packaging/deb/prerm packaging/deb/postrm "$root/DEBIAN/"
	echo /etc/posbridge/posbridge.yaml >"$root/DEBIAN/conffiles"
	cat >"$root/DEBIAN/control" <<CONTROL
Package: posbridge
Version: $debver
Architecture: $darch
Maintainer: posbridge maintainers <maintainers@posbridge.invalid>
Section: net
Priority: optional
Depends: passwd
Recommends: systemd
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Homepage: https://github.com/posbridge/posbridge
Description: point-of-sale terminal bridge for Hesabe Smart POS
 Takes card payments from till software, turns them into Hesabe Smart POS
 invoices for the right terminal, follows each payment to its result and
 tells the till. Runs as the systemd service posbridge.
CONTROL
	dpkg-deb --root-owner-group -Zxz --build "$root" "$DIST/posbridge_${debver}_${darch}.deb" >/dev/null
	rm -rf "$root"
	echo "deb   $DIST/posbridge_${debver}_${darch}.deb"
}

rpm() { # goarch(amd64|arm64|arm7) -> builds the .rpm with nfpm
	local a=$1 b
	case $a in amd64) b=$(bin linux amd64) ;; arm64) b=$(bin linux arm64) ;; arm7) b=$(bin linux arm 7) ;; esac
	# nfpm expands ${VAR} in version/arch but not in contents' src.
	sed "s|\${BIN}|$b|" packaging/nfpm.yaml >"$DIST/.nfpm.yaml"
	VERSION=$VERSION ARCH=$a go run "$NFPM" package --config "$DIST/.nfpm.yaml" --packager rpm --target "$DIST/" >/dev/null
	rm -f "$DIST/.nfpm.yaml"
	echo "rpm   $DIST/posbridge-*.rpm ($a)"
}

winzip() {
	local d="$DIST/posbridge_${VERSION}_windows_amd64"
	mkdir -p "$d"
	cp "$(bin windows amd64)" "$d/posbridge.exe"
	cp packaging/windows/posbridge.example.yaml packaging/windows/install.ps1 packaging/windows/uninstall.ps1 "$d/"
	cp docs/operations.md "$d/operations.md"
	go run ./scripts/zipdir "$d.zip" "$d"
	rm -rf "$d"
	echo "zip   $d.zip"
}

for p in $PACKAGES; do
	case $p in
	deb) command -v dpkg-deb >/dev/null || { echo "build.sh: dpkg-deb missing (apt-get install dpkg)" >&2; exit 1; }
		for a in $DEB_ARCHES; do deb "$a"; done ;;
	rpm) for a in $RPM_ARCHES; do rpm "$a"; done ;;
	zip) winzip ;;
	*) echo "build.sh: unknown package kind $p" >&2; exit 2 ;;
	esac
done
(cd "$DIST" && sha256sum -- * >SHA256SUMS)
ls -l "$DIST"
