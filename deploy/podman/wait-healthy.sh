#!/usr/bin/env bash
# Wait until every running container of a compose project is healthy (podman 4.3 runs healthchecks only through
# systemd timers, absent here: run each container's check ourselves, as `docker compose up --wait` would wait).
#   deploy/podman/wait-healthy.sh PROJECT [TIMEOUT_S]
set -euo pipefail
project=${1:?compose project name}
deadline=$((SECONDS + ${2:-600}))
while :; do
	pending=()
	for c in $(podman ps --filter "label=io.podman.compose.project=$project" --format '{{.Names}}'); do
		podman healthcheck run "$c" >/dev/null 2>&1 || pending+=("$c")
	done
	[ ${#pending[@]} -eq 0 ] && { echo "all $project containers healthy"; exit 0; }
	[ $SECONDS -lt $deadline ] || { echo "not healthy after ${2:-600} s: ${pending[*]}" >&2; exit 1; }
	sleep 5
done
