# Installs or upgrades posbridge as a Windows service. Run from the unzipped
# folder in an elevated PowerShell:  .\install.ps1 [-User "NT AUTHORITY\LocalService"]
#   - posbridge.exe        -> %ProgramFiles%\posbridge\
#   - posbridge.yaml       -> %ProgramData%\posbridge\ (kept if present)
#   - the service "posbridge": automatic (delayed) start, restart on failure,
#     logs to the Event Log (Application, source posbridge).
# A fresh install starts the service only when `posbridge doctor` passes.
#Requires -RunAsAdministrator
param([string]$User = "")
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$binDir = Join-Path $env:ProgramFiles "posbridge"
$dataDir = Join-Path $env:ProgramData "posbridge"
$exe = Join-Path $binDir "posbridge.exe"
$cfg = Join-Path $dataDir "posbridge.yaml"

New-Item -ItemType Directory -Force -Path $binDir, $dataDir | Out-Null
# ProgramData\posbridge holds the secrets and the database: Administrators
# and SYSTEM only (add the service account if -User is given).
icacls $dataDir /inheritance:r /grant:r "*S-1-5-32-544:(OI)(CI)F" "*S-1-5-18:(OI)(CI)F" | Out-Null
if ($User -ne "") { icacls $dataDir /grant:r "${User}:(OI)(CI)M" | Out-Null }

$svc = Get-Service -Name posbridge -ErrorAction SilentlyContinue
$wasRunning = $svc -and $svc.Status -eq "Running"
if ($svc) {
    & $exe service stop | Out-Null   # graceful: in-flight checkouts finish
}
Copy-Item (Join-Path $here "posbridge.exe") $exe -Force
if (-not (Test-Path $cfg)) {
    Copy-Item (Join-Path $here "posbridge.example.yaml") $cfg
    Write-Host "posbridge: wrote $cfg - fill in the merchant account and terminals"
}
if (-not $svc) {
    & $exe service install --config $cfg --user $User
    if ($LASTEXITCODE -ne 0) { throw "posbridge service install failed" }
}
& $exe doctor --config $cfg
$healthy = ($LASTEXITCODE -eq 0)
if ($wasRunning -or $healthy) {
    & $exe service start
    if ($LASTEXITCODE -ne 0) { throw "posbridge service start failed" }
} else {
    Write-Host "posbridge: fix the FAIL lines above, then run: & '$exe' service start"
}
