#!/bin/sh
# Makes the database on first start (user and database from POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB), then runs PostgreSQL in the foreground.
set -eu
bin=/usr/lib/postgresql/15/bin
user=${POSTGRES_USER:-druid}
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > "$pwfile"
    "$bin/initdb" -D "$PGDATA" -U "$user" --pwfile="$pwfile" --auth-host=scram-sha-256 --auth-local=trust >/dev/null
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
    "$bin/pg_ctl" -D "$PGDATA" -w start -o "-c listen_addresses=''" >/dev/null
    "$bin/psql" -U "$user" -d postgres -c "CREATE DATABASE \"${POSTGRES_DB:-druid}\"" >/dev/null
    "$bin/pg_ctl" -D "$PGDATA" -w stop >/dev/null
fi
exec "$bin/postgres" -D "$PGDATA"
