#!/usr/bin/env bash
# The whole test suite: installs what the tests need (mosquitto, socat,
# systemd-analyze, chromium for the status-page test, rpm for the .rpm
# check, qemu-user-static for the arm builds) when it is missing, then vets and tests every package, with the
# race detector on the concurrent ones, and builds and checks the packages.
# With CI=true a missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v socat >/dev/null 2>&1 || need+=(socat)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)   # verifies the unit (internal/service)
command -v chromium >/dev/null 2>&1 || need+=(chromium)         # loads the status page (internal/demo)
command -v rpm >/dev/null 2>&1 || need+=(rpm)                   # checks the .rpm (scripts/check-rpm.sh)
command -v qemu-aarch64-static >/dev/null 2>&1 || need+=(qemu-user-static)  # runs the arm64 and armv7 builds
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  elif [ "${CI:-}" = true ]; then
    echo "test.sh: missing ${need[*]} and cannot install (need root and apt-get)" >&2
    exit 1
  else
    echo "test.sh: ${need[*]} missing; tests that need them will skip" >&2
  fi
fi
# mosquitto lives in /usr/sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin"

echo "== gofmt / go vet"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "not gofmt-clean: $bad" >&2; exit 1; fi
go vet ./...

echo "== go test (all packages)"
go test -count=1 -timeout 15m ./...

echo "== go test -race (concurrent packages)"
race_pkgs=$(go list ./internal/... | grep -E '/(queue|engine|terminal|hesabe|api|daemon|diag|demo|requests|hitpay|payout|simfault|crypto)(/|$)' || true)
go test -count=1 -race -timeout 15m $race_pkgs

echo "== arm64 and armv7 (gateways): store, codecs, serial link and config tests, and the demo to paid, under qemu-user"
# The binaries and test binaries run in qemu's user-mode emulator: 32-bit
# alignment of 64-bit atomics, bbolt's mapping on a 32-bit address space,
# termios ioctls on a real pty. POSBRIDGE_TEST_EXEC starts the tests' child
# processes through the emulator too (testutil.SelfCommand).
arm_pkgs="./internal/queue/ ./internal/crypto/ ./internal/pos/ ./internal/hesabe/ ./internal/terminal/protocol/ ./internal/terminal/serial/ ./internal/config/"
armbin=$(mktemp -d)
for target in "arm64 qemu-aarch64-static" "arm qemu-arm-static"; do
  if ! command -v "${target#* }" >/dev/null 2>&1; then
    echo "skipping ${target%% *}: ${target#* } missing (install qemu-user-static)" >&2   # not under CI=true: checked above
    continue
  fi
  set -- $target
  arch=$1 emu=$2
  echo "-- $arch"
  GOARCH=$arch GOARM=7 CGO_ENABLED=0 POSBRIDGE_TEST_EXEC=$emu go test -count=1 -timeout 10m -exec "$emu" $arm_pkgs
  GOARCH=$arch GOARM=7 CGO_ENABLED=0 go build -trimpath -o "$armbin/posbridge-$arch" ./cmd/posbridge
  out=$("$emu" "$armbin/posbridge-$arch" demo --once 2>&1) || { echo "$out" >&2; echo "demo on $arch failed" >&2; exit 1; }
  if ! grep -q "ended paid" <<<"$out"; then echo "$out" >&2; echo "demo on $arch did not end paid" >&2; exit 1; fi
  echo "demo on $arch: $(grep "ended paid" <<<"$out")"
done
rm -rf "$armbin"

echo "== packaging: cross-build linux/amd64, arm64, armv7, windows/amd64; every .deb and .rpm checked in throwaway roots"
pkgdist=$(mktemp -d)
DIST="$pkgdist" PACKAGES="deb rpm zip" ./scripts/build.sh 0.0.0-ci >/dev/null
for f in "$pkgdist"/posbridge_*.deb; do ./scripts/check-deb.sh "$f"; done
for f in "$pkgdist"/posbridge-*.rpm; do ./scripts/check-rpm.sh "$f" 0.0.0-ci; done
rm -rf "$pkgdist"
