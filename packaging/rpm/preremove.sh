#!/bin/sh
# posbridge (rpm) pre-remove: on erase ($1 = 0) stop gracefully and disable.
if [ "$1" = 0 ] && [ -d /run/systemd/system ]; then
	systemctl stop posbridge.service || true
	systemctl disable posbridge.service >/dev/null 2>&1 || true
fi
exit 0
