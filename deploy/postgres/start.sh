#!/bin/sh
# Start PostgreSQL for the compose stack: on the first start, make the cluster (user and database "ragstack",
# password from POSTGRES_PASSWORD, scram-sha-256 for every connection, local ones included); then run the server.
# The password reaches initdb in a file only this user can read, removed at once: never on a command line, never
# in the image or left in the volume. Changing POSTGRES_PASSWORD later does not change the cluster's password
# (docs/deployment.md says how). Extra arguments are more server options and win (the tests pass -p and
# -c listen_addresses=127.0.0.1, and PG_BIN / PGDATA for Debian's package outside the image).
set -eu
: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD in .env (openssl rand -hex 32)}"
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PGDATA=${PGDATA:-/data/pgdata}
SOCKETS=${POSTGRES_SOCKET_DIR:-/tmp}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	umask 077
	pwfile=$(mktemp)
	trap 'rm -f "$pwfile"' EXIT
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	"$PG_BIN/initdb" -D "$PGDATA" -U ragstack --pwfile="$pwfile" --auth=scram-sha-256 -E UTF8 --no-instructions
	rm -f "$pwfile"
	printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
	echo "CREATE DATABASE ragstack;" | "$PG_BIN/postgres" --single -D "$PGDATA" -c unix_socket_directories="$SOCKETS" postgres >/dev/null
fi
exec "$PG_BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories="$SOCKETS" "$@"
