#!/usr/bin/env bash
# A private PostgreSQL cluster for the tests: Debian's postgresql, a data
# directory under $SPOOL_INFRA_DIR, listening on 127.0.0.1 only, trust
# authentication for loopback (nothing else can reach it). Idempotent.
# Prints SPOOL_TEST_POSTGRES_URL on stdout.
set -euo pipefail
D=${SPOOL_INFRA_DIR:-/tmp/spool-infra}/postgres
PORT=${SPOOL_POSTGRES_PORT:-54329}

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
BIN=$(dirname "$(ls /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)")

# initdb and the server refuse to run as root: the cluster belongs to the postgres user.
as_pg() { if [ "$(id -u)" = 0 ]; then su -s /bin/sh postgres -c "$(printf '%q ' "$@")"; else "$@"; fi; }
mkdir -p "$D"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$D"
if [ ! -f "$D/data/PG_VERSION" ]; then
  as_pg "$BIN/initdb" -D "$D/data" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
fi
if ! as_pg "$BIN/pg_ctl" -D "$D/data" status >/dev/null 2>&1; then
  as_pg "$BIN/pg_ctl" -D "$D/data" -l "$D/postgres.log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $D -c fsync=off -c max_connections=200" start >/dev/null
fi
echo "SPOOL_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:$PORT/postgres"
