#!/bin/sh
# Start Redis with the baked configuration and the password from the environment. The password goes in on
# stdin ("-": read more configuration from stdin), never on the command line, which every process in the
# container can read, nor into a file in the image or the volume. Extra arguments are more options; they come
# after the file and stdin, so they win (the unit tests run this script with --port and --bind and a copy of
# the configuration in REDIS_CONFIG).
set -eu
: "${REDIS_PASSWORD:?set REDIS_PASSWORD in .env (compose passes it as REDIS_PASSWORD)}"
exec redis-server "${REDIS_CONFIG:-/etc/redis/ragstack.conf}" "$@" - <<CONF
requirepass "${REDIS_PASSWORD}"
CONF
