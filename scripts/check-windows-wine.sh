#!/usr/bin/env bash
# check-windows-wine.sh: a smoke test of the windows/amd64 build on Linux,
# under Wine. Not run by CI (Wine and MinGW are several hundred MB); run it
# by hand after changing anything platform-specific:
#
#   scripts/check-windows-wine.sh
#
# It builds posbridge.exe, starts the Hesabe simulator (the Linux binary) on
# loopback, runs `posbridge.exe run` under Wine with an embedded MQTT broker
# and one terminal, accepts checkouts through the till API, waits until the
# bridge has sent them to the simulator, SIGKILLs it, starts it again and
# checks that every checkout is still there in the state it had (the
# database, the accept log's recovery and its truncation on Windows file
# APIs), and that an accepted idempotency key is answered as existing.
#
# What it cannot check: the Windows service itself. Wine 8's service
# control manager does not run Go services (x/sys/windows/svc reports
# IsWindowsService=false under it and a minimal svc.Run service fails to
# start with error 1053), and install fails on its ChangeServiceConfig2
# levels. The service path stays to be checked on real Windows.
#
# Needs wine64 and x86_64-w64-mingw32-gcc; installs them (Debian packages
# wine64 and gcc-mingw-w64-x86-64-win32) when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wine64 >/dev/null && [ ! -x /usr/lib/wine/wine64 ] || ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
	if [ "$(id -u)" != 0 ]; then
		echo "check-windows-wine: needs wine64 and gcc-mingw-w64-x86-64-win32 (Debian packages)" >&2
		exit 2
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q wine64 gcc-mingw-w64-x86-64-win32 >/dev/null
fi
WINE=$(command -v wine64 || echo /usr/lib/wine/wine64)
WINESERVER=$(command -v wineserver || echo /usr/lib/wine/wineserver)

work=$(mktemp -d)
export WINEPREFIX=$work/prefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
sim_pid=""
cleanup() {
	pkill -9 -f "posbridge[.]exe run --config C:.pb.posbridge[.]yaml" 2>/dev/null || true
	"$WINESERVER" -k 2>/dev/null || true
	[ -n "$sim_pid" ] && kill "$sim_pid" 2>/dev/null && wait "$sim_pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "check-windows-wine: FAIL: $*" >&2; exit 1; }

# A free loopback port: nothing answers a connect to it.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
}

echo "check-windows-wine: building"
GOOS=windows GOARCH=amd64 CGO_ENABLED=0 go build -trimpath -o "$work/posbridge.exe" ./cmd/posbridge
CGO_ENABLED=0 go build -trimpath -o "$work/posbridge" ./cmd/posbridge

# Go's runtime needs bcryptprimitives.dll!ProcessPrng (Windows 10 and
# later); Wine 8 has no such DLL. A stand-in on RtlGenRandom, for this test
# only, in the prefix's system32 (where Go looks for it).
cat >"$work/prng.c" <<'EOF'
#include <windows.h>
#define SystemFunction036 NTAPI SystemFunction036
#include <ntsecapi.h>
#undef SystemFunction036
BOOL WINAPI ProcessPrng(PBYTE p, SIZE_T n) {
	while (n > 0) {
		ULONG k = n > 0x40000000 ? 0x40000000 : (ULONG)n;
		if (!RtlGenRandom(p, k)) return FALSE;
		p += k; n -= k;
	}
	return TRUE;
}
EOF
printf 'LIBRARY bcryptprimitives\nEXPORTS\nProcessPrng\n' >"$work/prng.def"
x86_64-w64-mingw32-gcc -shared -O2 -o "$work/bcryptprimitives.dll" "$work/prng.c" "$work/prng.def" -ladvapi32
"$WINE" wineboot -i >/dev/null 2>&1 || true
cp "$work/bcryptprimitives.dll" "$WINEPREFIX/drive_c/windows/system32/"
"$WINE" "$work/posbridge.exe" version | grep -q windows/amd64 || fail "posbridge.exe version"

sim_port=$(free_port)
"$work/posbridge" sim hesabe --listen "127.0.0.1:$sim_port" >"$work/sim.log" 2>&1 &
sim_pid=$!
api_port=$(free_port)
diag_port=$(free_port)
mqtt_port=$(free_port)
token=wine-check-$RANDOM$RANDOM$RANDOM$RANDOM
pb=$WINEPREFIX/drive_c/pb
mkdir -p "$pb"
cp "$work/posbridge.exe" "$pb/"
# The simulator's public sandbox merchant (docs/hesabe-simulator.md).
cat >"$pb/posbridge.yaml" <<EOF
data_dir: C:\\pb\\data
hesabe:
  merchant_url: http://127.0.0.1:$sim_port/api
  payment_url: http://127.0.0.1:$sim_port/api
  merchant_code: "842217"
  username: test
  access_code: c333729b-d060-4b74-a49d-7686a8353481
  secret_key: PkW64zMe5NVdrlPVNnjo2Jy9nOb7v1Xg
  iv_key: 5NVdrlPVNnjo2Jy9
  password: "Test@1234"
  timeout: 5s
api:
  listen: 127.0.0.1:$api_port
  token: $token
diagnostics:
  listen: 127.0.0.1:$diag_port
  token: $token
checkout:
  poll_interval: 1s
mqtt:
  embedded:
    enabled: true
    listen: 127.0.0.1:$mqtt_port
terminals:
  - id: "29708454"
    name: Lane 1
    link: mqtt
EOF

auth="Authorization: Bearer $token"
start() {
	(cd "$pb" && exec "$WINE" posbridge.exe run --config 'C:\pb\posbridge.yaml' >>"$work/run.log" 2>&1) &
	disown # its SIGKILL is the test, not news
	for _ in $(seq 120); do
		curl -fsS -m 1 -H "$auth" "http://127.0.0.1:$diag_port/healthz" >/dev/null 2>&1 && return 0
		sleep 0.5
	done
	tail -20 "$work/run.log" >&2
	fail "posbridge.exe did not come up"
}
create() {
	curl -fsS -m 10 -H "$auth" -H "Idempotency-Key: $1" -H 'Content-Type: application/json' \
		-d '{"terminal_id":"29708454","amount":"1.250","customer":{"name":"Wine"}}' \
		-o /dev/null -w '%{http_code}' "http://127.0.0.1:$api_port/v1/checkouts"
}
# "ID STATE" per checkout, from the technician's own tool (the Linux binary).
states() {
	"$work/posbridge" checkouts list --url "http://127.0.0.1:$api_port" --token "$token" --limit 100 |
		awk 'NR > 1 { print $1, $2 }' | sort
}

echo "check-windows-wine: running posbridge.exe under Wine"
start
n=5
for i in $(seq $n); do
	code=$(create "wine-$i")
	[ "$code" = 202 ] || fail "checkout wine-$i: HTTP $code, want 202 (accepted)"
done
# One goes to the terminal (sent); the others wait behind it (queued).
for _ in $(seq 60); do
	states | grep -q ' sent$' && break
	sleep 0.5
done
before=$(states)
[ "$(echo "$before" | wc -l)" = $n ] || fail "want $n checkouts, have: $before"
echo "$before" | grep -q ' sent$' || fail "nothing reached the gateway: $before"

echo "check-windows-wine: SIGKILL and restart"
pkill -9 -f "posbridge[.]exe run --config C:.pb.posbridge[.]yaml" || fail "no posbridge.exe to kill"
"$WINESERVER" -k 2>/dev/null || true
sleep 1
start
after=$(states)
[ "$after" = "$before" ] || fail "after the restart: $after; before: $before"
code=$(create wine-1)
[ "$code" = 200 ] || fail "a known idempotency key after the restart: HTTP $code, want 200 (existing)"
wal=$(stat -c %s "$pb/data/posbridge.db.wal" 2>/dev/null || echo none)
echo "check-windows-wine: ok: $n checkouts survived a SIGKILL under Wine ($(echo "$after" | awk '{print $2}' | sort | uniq -c | tr -s ' ' | paste -sd, -)), accept log after recovery: $wal bytes"
