#!/usr/bin/env bash
# Install the Recyclops edge daemon on Raspberry Pi OS (64-bit, Bookworm or later).
#
#   sudo ./install-pi.sh [--source DIR_OR_WHEEL] [--no-start]
#
# The trap this script designs around: Debian's picamera2 stack is compiled against
# Debian's numpy 1.x. An unconstrained `pip install` upgrades numpy inside the venv (a fresh
# ml_dtypes wants numpy 2) and the camera then fails with "_ARRAY_API not found". So the
# venv sees the system site packages and pip is constrained to the system's numpy.
set -euo pipefail

SOURCE="recyclops[edge]"
START=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --source) SOURCE="$2[edge]"; shift 2 ;;
    --no-start) START=0; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option: $1" >&2; exit 2 ;;
  esac
done
[[ $EUID -eq 0 ]] || { echo "run as root (sudo)" >&2; exit 1; }

PREFIX=/opt/recyclops
ETC=/etc/recyclops
UNIT_SRC="$(dirname "$(readlink -f "$0")")/../systemd/recyclops-edge.service"

echo "== apt: picamera2, numpy, lgpio, evdev"
apt-get update -q
apt-get install -y -q python3-venv python3-picamera2 python3-numpy python3-lgpio python3-evdev

echo "== user and folders"
id recyclops >/dev/null 2>&1 || useradd --system --home /var/lib/recyclops --shell /usr/sbin/nologin \
  --groups video,gpio,input recyclops
install -d -m 0755 "$PREFIX"
install -d -m 0750 -o root -g recyclops "$ETC"
install -d -m 0700 -o root -g root "$ETC/credentials"

echo "== venv with system site packages, numpy pinned to the system's"
python3 -m venv --system-site-packages "$PREFIX/venv"
SYSTEM_NUMPY="$(/usr/bin/python3 -c 'import numpy; print(numpy.__version__)')"
echo "numpy==${SYSTEM_NUMPY}" > "$PREFIX/constraints.txt"
"$PREFIX/venv/bin/pip" install -q --upgrade pip
"$PREFIX/venv/bin/pip" install -q -c "$PREFIX/constraints.txt" "$SOURCE"
"$PREFIX/venv/bin/python" -c 'import numpy, picamera2; from ai_edge_litert.interpreter import Interpreter; print("numpy", numpy.__version__, "picamera2 ok, litert ok")'

echo "== config and unit"
if [[ ! -f "$ETC/recyclops.toml" ]]; then
  cat > "$ETC/recyclops.toml" <<'TOML'
# See docs/edge.md for every key. Secrets never go here: /etc/recyclops/credentials/.
[store]
url = "s3://CHANGE-ME-bucket/recyclops"

[mqtt]
# host = "broker.example.org"   # no host: updates by polling the store

[edge]
device_id = "bin-01"
channel = "stable"
model_dir = "/var/lib/recyclops/models"
spool_dir = "/var/lib/recyclops/spool"
state_dir = "/var/lib/recyclops/state"

[edge.camera]
kind = "picamera2"

[edge.keypad]
kind = "evdev"
TOML
  chmod 0640 "$ETC/recyclops.toml"; chgrp recyclops "$ETC/recyclops.toml"
fi
for name in aws_access_key_id aws_secret_access_key mqtt_password mqtt_client_key; do
  [[ -f "$ETC/credentials/$name" ]] || install -m 0600 /dev/null "$ETC/credentials/$name"
done
install -m 0644 "$UNIT_SRC" /etc/systemd/system/recyclops-edge.service
systemd-analyze verify /etc/systemd/system/recyclops-edge.service
systemctl daemon-reload
systemctl enable recyclops-edge.service
if [[ $START -eq 1 ]]; then
  systemctl restart recyclops-edge.service
  echo "started; logs: journalctl -u recyclops-edge -f ; live view: ssh -L 8090:127.0.0.1:8090 pi"
fi
echo "edit $ETC/recyclops.toml and the files in $ETC/credentials/, then: systemctl restart recyclops-edge"
