#!/usr/bin/env bash
# Podman as the container engine, set up from Debian's packages where no Docker engine runs (make images,
# make compose-test), and the local base images an air-gapped build starts from. Idempotent: every step is
# skipped when already done. Root or sudo for apt-get and debootstrap.
#
#   deploy/podman/setup.sh engine   install podman + podman-compose's needs (Debian packages)
#   deploy/podman/setup.sh base     build localhost/ragstack-debian:bookworm (debootstrap minbase) and
#                                   localhost/ragstack-python:bookworm on it: the CPython 3.11 of $PYTHON
#                                   (default .venv/bin/python, the tests' interpreter) under /usr/local
#
# CONTAINERS_CONF must point at deploy/podman/containers.conf (the Makefile exports it).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
DEBIAN_IMAGE=${DEBIAN_IMAGE:-localhost/ragstack-debian:bookworm}
PYTHON_IMAGE=${PYTHON_IMAGE:-localhost/ragstack-python:bookworm}
PYTHON=${PYTHON:-.venv/bin/python}
# The mirror this machine's apt uses (deb822 or one-line sources); DEBIAN_MIRROR names another. No host is written
# here: a machine whose apt names none must say which (the base is made only when it is missing, see below).
MIRROR=${DEBIAN_MIRROR:-$(sed -n 's/^URIs: *\([^ ]*debian\)$/\1/p; s/^deb \(http[^ ]*\/debian\) bookworm .*/\1/p' \
	/etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | head -1 || true)}

engine() {
	local packages=(podman crun runc fuse-overlayfs slirp4netns uidmap debootstrap iptables netavark aardvark-dns
		catatonit conmon)
	if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! [ -x /usr/lib/podman/netavark ]; then
		$sudo apt-get update -qq
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null
	fi
	podman info --format '{{.Host.OCIRuntime.Name}} {{.Host.NetworkBackend}} {{.Store.GraphDriverName}}'
}

# The interpreter the tests run on, relocated: its install prefix minus site-packages, the test suite, IDLE,
# tkinter and the static library (about 70 MB), staged with the Containerfile in a temporary context.
python_image() {
	local version=$1 prefix context
	case $version in 3.11.*) ;; *) echo "$PYTHON is Python $version; the images need 3.11 (python:3.11 in production)"; exit 1 ;; esac
	prefix=$("$PYTHON" -c 'import sys; print(sys.base_prefix)')
	context=$(mktemp -d)
	mkdir -p "$context/python/bin" "$context/python/lib"
	cp -a "$prefix/bin/python3.11" "$context/python/bin/"
	cp -a "$prefix"/lib/libpython3.11.so* "$context/python/lib/" 2>/dev/null || true
	[ -d "$prefix/include" ] && cp -a "$prefix/include" "$context/python/"
	tar -C "$prefix/lib" --exclude=python3.11/site-packages --exclude=python3.11/test --exclude=python3.11/idlelib \
		--exclude=python3.11/tkinter --exclude='*.a' --exclude=__pycache__ -c python3.11 | tar -C "$context/python/lib" -x
	mkdir -p "$context/python/lib/python3.11/site-packages"
	cp "$here/Containerfile.python" "$context/"
	echo "building $PYTHON_IMAGE: CPython $version from $prefix"
	podman build --quiet --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" --build-arg "PYTHON_VERSION=$version" \
		-t "$PYTHON_IMAGE" -f "$context/Containerfile.python" "$context" >/dev/null
	rm -rf "$context"
}

base() {
	if ! podman image exists "$DEBIAN_IMAGE"; then
		local rootfs
		rootfs=$(mktemp -d)
		trap 'rm -rf "$rootfs"' RETURN
		[ -n "$MIRROR" ] || {
			echo "no Debian mirror in /etc/apt (sources.list or sources.list.d): set DEBIAN_MIRROR=<mirror URL>" >&2
			exit 1
		}
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
	local version built=""
	version=$("$PYTHON" -c 'import platform; print(platform.python_version())')
	podman image exists "$PYTHON_IMAGE" &&
		built=$(podman image inspect --format '{{index .Labels "ragstack.python.version"}}' "$PYTHON_IMAGE")
	if [ "$built" != "$version" ]; then
		python_image "$version"
	fi
	podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -E 'ragstack-(debian|python)'
}

"${1:?engine or base}"
