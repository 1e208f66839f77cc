#!/bin/sh
# pip install into the image's venv with the pinned constraints.
# Optional BuildKit secrets, never baked into a layer: pip_cert (a CA bundle, for a TLS
# proxy) and pip_conf (a pip.conf naming a mirror): docker build --secret id=pip_cert,src=…
set -eu
if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi
if [ -f /run/secrets/pip_conf ]; then export PIP_CONFIG_FILE=/run/secrets/pip_conf; fi
exec /opt/recyclops/bin/pip install --no-cache-dir --disable-pip-version-check \
  --constraint "$(dirname "$0")/constraints.txt" "$@"
