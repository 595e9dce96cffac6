# Stops and removes the posbridge service and its program files. The
# configuration, secrets and database in %ProgramData%\posbridge are kept
# unless -Purge is given.
#Requires -RunAsAdministrator
param([switch]$Purge)
$ErrorActionPreference = "Stop"
$binDir = Join-Path $env:ProgramFiles "posbridge"
$dataDir = Join-Path $env:ProgramData "posbridge"
$exe = Join-Path $binDir "posbridge.exe"
if (Get-Service -Name posbridge -ErrorAction SilentlyContinue) {
    & $exe service stop | Out-Null
    & $exe service uninstall
    if ($LASTEXITCODE -ne 0) { throw "posbridge service uninstall failed" }
}
Remove-Item -Recurse -Force $binDir -ErrorAction SilentlyContinue
if ($Purge) { Remove-Item -Recurse -Force $dataDir -ErrorAction SilentlyContinue }
else { Write-Host "posbridge: kept $dataDir (config, secrets, database); -Purge removes it" }
