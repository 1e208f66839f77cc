#!/usr/bin/env bash
# Build the base image from Debian packages when no registry can be reached:
#
#   docker/base-image.sh [NAME]     # default NAME recyclops-base:bookworm
#
# debootstrap bookworm (python3, python3-venv, ca-certificates) into a folder, pack it
# into a tarball cached under $RECYCLOPS_BASE_DIR (default build/base) and `docker import` it
# as NAME, the name the Dockerfiles' BASE build argument is given. On a host that can pull,
# skip this and pass --build-arg BASE=python:3.11-slim-bookworm instead.
# Needs root, debootstrap and a Debian mirror ($DEBIAN_MIRROR, default deb.debian.org).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
name="${1:-recyclops-base:bookworm}"
dir="${RECYCLOPS_BASE_DIR:-$here/build/base}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite="bookworm"
tarball="$dir/$suite-python3.tar"
docker="${DOCKER:-docker}"

if [ -n "$("$docker" image ls -q "$name" 2>/dev/null)" ] && [ "${REBUILD:-0}" != 1 ]; then
  echo "base-image: $name already present"
  exit 0
fi

if [ ! -s "$tarball" ] || [ "${REBUILD:-0}" = 1 ]; then
  command -v debootstrap >/dev/null || PATH="$PATH:/usr/sbin:/sbin"
  command -v debootstrap >/dev/null || { echo "base-image: debootstrap not found (apt-get install debootstrap)" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || { echo "base-image: debootstrap needs root" >&2; exit 2; }
  mkdir -p "$dir"
  rootfs="$dir/rootfs"
  rm -rf "$rootfs"
  echo "base-image: debootstrap $suite from $mirror (a few minutes)" >&2
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,libtcmalloc-minimal4 \
    "$suite" "$rootfs" "$mirror" >"$dir/debootstrap.log" 2>&1 \
    || { tail -20 "$dir/debootstrap.log" >&2; exit 1; }
  # Trim what an image never needs: package lists, caches, docs, man pages.
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
    "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/log/*.log
  printf 'deb %s %s main\n' "$mirror" "$suite" >"$rootfs/etc/apt/sources.list"
  tar --numeric-owner -C "$rootfs" -cf "$tarball.tmp" .
  mv "$tarball.tmp" "$tarball"
  rm -rf "$rootfs"
fi

"$docker" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$tarball" "$name" >/dev/null
echo "base-image: imported $tarball as $name"
