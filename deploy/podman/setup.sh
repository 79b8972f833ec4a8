#!/usr/bin/env bash
# Podman as the container engine, set up from Debian's packages where no Docker engine runs (make images,
# make compose-test), and the local base images an air-gapped build starts from. Idempotent: every step is
# skipped when already done. Root or sudo for apt-get and debootstrap.
#
#   deploy/podman/setup.sh engine   install podman + podman-compose's needs (Debian packages)
#   deploy/podman/setup.sh base     build localhost/ragstack-debian:bookworm (debootstrap minbase) and
#                                   localhost/ragstack-python:bookworm (+ python3.11, venv) on it
#
# CONTAINERS_CONF must point at deploy/podman/containers.conf (the Makefile exports it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
DEBIAN_IMAGE=${DEBIAN_IMAGE:-localhost/ragstack-debian:bookworm}
PYTHON_IMAGE=${PYTHON_IMAGE:-localhost/ragstack-python:bookworm}
# The mirror this machine's apt uses (deb822 or one-line sources), else Debian's CDN.
MIRROR=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p; s/^deb \(http[^ ]*\/debian\) bookworm .*/\1/p' \
	/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}

engine() {
	local packages=(podman crun runc fuse-overlayfs slirp4netns uidmap debootstrap iptables netavark aardvark-dns
		catatonit conmon)
	if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! [ -x /usr/lib/podman/netavark ]; then
		$sudo apt-get update -qq
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
	fi
	podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}} {{.Store.GraphDriverName}}'
}

base() {
	if ! podman image exists "$DEBIAN_IMAGE"; then
		local rootfs
		rootfs=$(mktemp -d)
		trap 'rm -rf "$rootfs"' RETURN
		echo "debootstrap bookworm from $MIRROR (about a minute)"
		$sudo debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 ||
			{ tail -20 "$rootfs.log"; exit 1; }
		rm -f "$rootfs.log"
		# This site's CA bundle (a TLS-inspecting proxy's CA included), so pip reaches PyPI from a build.
		$sudo cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ca-certificates-host.crt"
		$sudo rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
		$sudo tar -C "$rootfs" -c . | podman import \
			--change 'ENV LANG=C.UTF-8' \
			--change 'ENV PIP_CERT=/etc/ca-certificates-host.crt' \
			--change 'ENV SSL_CERT_FILE=/etc/ca-certificates-host.crt' \
			--change 'CMD ["/bin/bash"]' - "$DEBIAN_IMAGE" >/dev/null
	fi
	if ! podman image exists "$PYTHON_IMAGE"; then
		podman build --quiet --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" -t "$PYTHON_IMAGE" -f "$here/Containerfile.python" "$here"
	fi
	podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'ragstack-(debian|python)'
}

"${1:?engine or base}"
