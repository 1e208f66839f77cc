#!/bin/sh
# Make the broker's password file from the environment (.env), then run mosquitto.
# Passwords are never committed: MQTT_JOBS_PASSWORD, MQTT_EDGE_PASSWORD, MQTT_VIEWER_PASSWORD.
set -eu
conf="${MOSQUITTO_CONF:-/mosquitto/config/mosquitto.conf}"
passwd="${MOSQUITTO_PASSWD:-/mosquitto/data/passwd}"
umask 077
: >"$passwd"
for user in jobs edge viewer; do
  var="MQTT_$(echo "$user" | tr '[:lower:]' '[:upper:]')_PASSWORD"
  eval "password=\${$var:-}"
  if [ -z "$password" ]; then
    echo "mosquitto: $var is not set; user '$user' cannot log in" >&2
    continue
  fi
  mosquitto_passwd -b "$passwd" "$user" "$password"
done
if [ "$(id -u)" = 0 ] && id mosquitto >/dev/null 2>&1; then chown mosquitto "$passwd"; fi
exec mosquitto -c "$conf"
