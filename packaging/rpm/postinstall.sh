#!/bin/sh
# posbridge (rpm) post-install: directories, secrets template, enable; an
# upgrade ($1 = 2) restarts a running service, a fresh install does not
# start it (the config needs the merchant account first).
install -d -m 0750 -o root -g posbridge /etc/posbridge
chown root:posbridge /etc/posbridge/posbridge.yaml
chmod 0640 /etc/posbridge/posbridge.yaml
if [ ! -e /etc/posbridge/secrets.yaml ]; then
	printf '%s\n' '# posbridge secrets: mode 0600, owner posbridge.' \
		'hesabe: {access_code: "", secret_key: "", iv_key: "", password: ""}' \
		'api: {token: ""}' 'diagnostics: {token: ""}' > /etc/posbridge/secrets.yaml
fi
chown posbridge:posbridge /etc/posbridge/secrets.yaml
chmod 0600 /etc/posbridge/secrets.yaml
install -d -m 0750 -o posbridge -g posbridge /var/lib/posbridge
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
systemctl enable posbridge.service >/dev/null 2>&1 || true
if [ "$1" -ge 2 ] 2>/dev/null && [ -d /run/systemd/system ]; then
	systemctl try-restart posbridge.service || true
fi
exit 0
