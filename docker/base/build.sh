#!/usr/bin/env bash
# Builds a Debian bookworm base image from Debian's own packages (debootstrap + docker import),
# for machines whose Docker engine cannot pull from a registry. It stands in for
# `debian:bookworm-slim` as the BASE_IMAGE build argument of docker/*.Dockerfile:
#
#   docker/base/build.sh                      # -> krait.local/debian:bookworm-slim
#   docker build -f docker/broker.Dockerfile \
#     --build-arg BASE_IMAGE=krait.local/debian:bookworm-slim ...
#
# Needs root (debootstrap chroots) and the debootstrap package. Reuses an existing image unless
# --force is given. DEBIAN_MIRROR picks the mirror (default deb.debian.org).
set -euo pipefail

tag="${BASE_TAG:-krait.local/debian:bookworm-slim}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if [ "${1:-}" != "--force" ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "debootstrap is not installed" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "debootstrap needs root" >&2; exit 1; }

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
# minbase: essential packages and apt, as the slim image. ca-certificates for TLS clients.
debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" \
  >"$root.log" 2>&1 || { tail -20 "$root.log" >&2; exit 1; }
rm -f "$root.log"
# What the slim image leaves out: documentation, locales, caches and logs.
rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* \
  "$root"/var/log/* "$root"/tmp/*
tar -C "$root" --numeric-owner -c . |
  docker import \
    --change 'CMD ["bash"]' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --message "debian bookworm minbase from $mirror" - "$tag" >/dev/null
echo "built base image $tag ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
