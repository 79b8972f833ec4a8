#!/usr/bin/env bash
# Build every image of compose.yaml (all profiles but the pulled ones), one at a time, timed; then list sizes.
#   COMPOSE=<compose command> deploy/podman/build-images.sh -f compose.yaml [-f override ...]
# Writes .data/compose/images.tsv (service, seconds, image, size) for the README's Deployment figures.
set -euo pipefail
# OCI images drop HEALTHCHECK; the docker format keeps it (podman healthcheck run needs it).
export BUILDAH_FORMAT=docker
compose=${COMPOSE:?the compose command}
out=.data/compose/images.tsv
mkdir -p "$(dirname "$out")"
# Build-time placeholders: the keys are required to parse the file, never baked into an image.
export RAG_API_KEY=${RAG_API_KEY:-build-only} RAG_QDRANT_API_KEY=${RAG_QDRANT_API_KEY:-build-only} \
	POSTGRES_PASSWORD=${POSTGRES_PASSWORD:-build-only}
printf 'service\tbuild_s\timage\tsize\n' >"$out"
for service in llamacpp phoenix postgres frontend api ingest eval; do
	start=$SECONDS
	log=.data/compose/build-$service.log
	echo "building $service (log: $log)"
	$compose "$@" --profile llamacpp build "$service" >"$log" 2>&1 || { tail -40 "$log"; exit 1; }
	image=localhost/ragstack-$service:${RAGSTACK_TAG:-latest}
	printf '%s\t%s\t%s\t%s\n' "$service" $((SECONDS - start)) "$image" \
		"$(podman image inspect --format '{{.Size}}' "$image" | numfmt --to=si)" >>"$out"
done
column -t -s $'\t' "$out"
