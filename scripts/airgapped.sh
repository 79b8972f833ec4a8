#!/usr/bin/env bash
# Run a command with no network but this machine's loopback (make test runs the suite so; tests/airgap.py):
#   scripts/airgapped.sh COMMAND [ARGS...]
# A new network namespace (unshare -n as root, unshare -rn otherwise) holds only `lo`, brought up here: any
# connection to a hub, a telemetry endpoint or a CDN fails at once (ENETUNREACH, no DNS), in every process.
set -euo pipefail
if [ "${1:-}" = --inside ]; then
	shift
	ip link set lo up
	RAG_TEST_AIRGAPPED=1 exec "$@"
fi
command -v ip >/dev/null || { echo "scripts/airgapped.sh needs ip (Debian: apt-get install iproute2)" >&2; exit 1; }
if [ "$(id -u)" = 0 ]; then
	exec unshare -n "$0" --inside "$@"
fi
exec unshare -rn "$0" --inside "$@"
