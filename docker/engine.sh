#!/usr/bin/env bash
# A private Docker engine for the container test and for hosts without systemd.
#
#   docker/engine.sh start   # starts dockerd; prints DOCKER_HOST=unix://…
#   docker/engine.sh stop    # stops the dockerd this script started (by its pid file)
#   docker/engine.sh env     # prints DOCKER_HOST=… for the running engine
#
# Everything lives under $RECYCLOPS_ENGINE_DIR (default build/engine): data-root, exec-root,
# pid file, socket and log, so it never touches a system engine. Containers use the host
# network (--network host); the bridge and iptables are off because sandboxes and CI
# machines often lack them. On a real workstation or EC2 host use the system engine instead.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${RECYCLOPS_ENGINE_DIR:-$here/build/engine}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
# A unix socket path must stay under 108 bytes: keep the runtime parts in a short folder.
run="${RECYCLOPS_ENGINE_RUN:-/tmp/recyclops-engine-$(printf '%s' "$dir" | cksum | cut -d' ' -f1)}"
sock="$run/docker.sock"
pidfile="$run/dockerd.pid"
log="$dir/dockerd.log"

running() {
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

case "${1:-}" in
  start)
    if running; then
      echo "DOCKER_HOST=unix://$sock"
      exit 0
    fi
    command -v dockerd >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
    command -v dockerd >/dev/null || { echo "engine: dockerd not found (apt-get install docker.io)" >&2; exit 2; }
    [ "$(id -u)" = 0 ] || { echo "engine: dockerd needs root" >&2; exit 2; }
    mkdir -p "$run" "$dir/data"
    rm -f "$sock"
    # setsid: its own process group, so nothing else is signalled when it stops.
    setsid dockerd \
      --data-root "$dir/data" --exec-root "$run/exec" --pidfile "$pidfile" \
      -H "unix://$sock" --bridge=none --iptables=false --ip6tables=false \
      --storage-driver "${RECYCLOPS_ENGINE_STORAGE:-overlay2}" \
      >>"$log" 2>&1 </dev/null &
    for _ in $(seq 1 120); do
      if [ -S "$sock" ] && DOCKER_HOST="unix://$sock" docker version >/dev/null 2>&1; then
        echo "DOCKER_HOST=unix://$sock"
        exit 0
      fi
      sleep 0.5
    done
    echo "engine: dockerd did not answer within 60 s; see $log" >&2
    tail -20 "$log" >&2 || true
    exit 1
    ;;
  stop)
    if ! [ -f "$pidfile" ]; then exit 0; fi
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
    fi
    rm -f "$pidfile"
    ;;
  env)
    running || { echo "engine: not running (docker/engine.sh start)" >&2; exit 1; }
    echo "DOCKER_HOST=unix://$sock"
    ;;
  *)
    echo "usage: $0 start|stop|env" >&2
    exit 2
    ;;
esac
