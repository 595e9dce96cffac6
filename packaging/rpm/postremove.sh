#!/bin/sh
# posbridge (rpm) post-remove: forget the unit.
[ -d /run/systemd/system ] && systemctl daemon-reload || true
exit 0
