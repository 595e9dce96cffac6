#!/usr/bin/env bash
# The whole test suite: installs what the tests need (mosquitto, socat,
# systemd-analyze, chromium for the status-page test, rpm for the .rpm
# check) when it is missing, then vets and tests every package, with the
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

echo "== packaging: cross-build linux/amd64, arm64, armv7, windows/amd64; amd64 .deb and x86_64 .rpm checked in throwaway roots"
pkgdist=$(mktemp -d)
DIST="$pkgdist" PACKAGES="deb rpm zip" DEB_ARCHES=amd64 RPM_ARCHES=amd64 ./scripts/build.sh 0.0.0-ci >/dev/null
./scripts/check-deb.sh "$pkgdist"/posbridge_*_amd64.deb
./scripts/check-rpm.sh "$pkgdist"/posbridge-*.x86_64.rpm 0.0.0-ci
rm -rf "$pkgdist"
