#!/usr/bin/env bash
# A Debian bookworm base image for the Containerfiles, made from Debian's own
# packages where no image registry is reachable: mmdebstrap builds the root file
# system, podman imports it. Usage: make-base-image.sh [image-name] [mirror]
# (default localhost/federator-base:bookworm, http://deb.debian.org/debian).
set -euo pipefail
IMAGE=${1:-localhost/federator-base:bookworm}
MIRROR=${2:-http://deb.debian.org/debian}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mmdebstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$work/rootfs.tar" "$MIRROR"
podman import --change 'CMD ["/bin/bash"]' "$work/rootfs.tar" "$IMAGE"
