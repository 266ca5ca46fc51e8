#!/bin/bash
# The official image's first start, for the Debian stand-in: an empty volume gets a cluster
# whose superuser is POSTGRES_USER with POSTGRES_PASSWORD (scram-sha-256 on the socket and
# on TCP, from anywhere: clients come through the engine's bridge) and the database
# POSTGRES_DB; then the server listens on 0.0.0.0 in the container.
set -euo pipefail
: "${POSTGRES_PASSWORD:?is unset: set POSTGRES_PASSWORD (the official image refuses to start without it too)}"
user=${POSTGRES_USER:-postgres}
db=${POSTGRES_DB:-$user}

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  echo "postgres: first start: initdb $PGDATA (superuser $user, database $db)"
  # The password through a pipe: it is never written to a file.
  initdb -D "$PGDATA" -U "$user" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 --encoding=UTF8 --locale=C >/dev/null
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  if [ "$db" != postgres ]; then
    echo "CREATE DATABASE \"$db\";" | postgres --single -D "$PGDATA" -j postgres >/dev/null
  fi
fi

# The socket folder is in the image: under a read-only root filesystem, TCP only.
socket=/var/run/postgresql
[ -w "$socket" ] || socket=""
exec postgres -D "$PGDATA" -c listen_addresses=0.0.0.0 -c unix_socket_directories="$socket" "$@"
