#!/bin/sh
# posbridge (rpm) pre-remove: on erase ($1 = 0) stop gracefully (when
# systemd runs) and disable (always: without a running systemd, as in an
# image build, systemctl removes the enable link offline).
if [ "$1" = 0 ]; then
	if [ -d /run/systemd/system ]; then
		systemctl stop posbridge.service || true
	fi
	systemctl disable posbridge.service >/dev/null 2>&1 || true
fi
exit 0
