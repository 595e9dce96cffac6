#!/bin/sh
# posbridge (rpm) pre-install: the system user, in group dialout.
getent group dialout >/dev/null || groupadd --system dialout
if ! getent passwd posbridge >/dev/null; then
	useradd --system --user-group --groups dialout --home-dir /var/lib/posbridge \
		--no-create-home --shell /sbin/nologin --comment "posbridge POS terminal bridge" posbridge
else
	usermod --append --groups dialout posbridge
fi
exit 0
