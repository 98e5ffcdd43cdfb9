#!/usr/bin/env bash
# Runs a command with a throwaway PostgreSQL server on loopback, its DSN in
# PIPEHOST_TEST_PG_DSN. When PIPEHOST_TEST_PG_DSN is already set, the command
# runs against that server instead. Installs PostgreSQL (Debian's packages)
# when it is missing and we are root.
#
#   scripts/with-postgres.sh go test ./...
set -euo pipefail

if [ -n "${PIPEHOST_TEST_PG_DSN:-}" ]; then
  exec "$@"
fi

find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
pgbin=$(find_bin || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "with-postgres: installing PostgreSQL" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq postgresql >/dev/null
    pgbin=$(find_bin)
  else
    echo "with-postgres: PostgreSQL is not installed (apt-get install postgresql)" >&2
    exit 1
  fi
fi

# PostgreSQL refuses to run as root: run the cluster as the postgres user
# (or nobody) when we are root.
run_as=()
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
  owner=postgres
  id postgres >/dev/null 2>&1 || owner=nobody
  run_as=(runuser -u "$owner" --)
fi

dir=$(mktemp -d /tmp/pipehost-pg.XXXXXX)
chown "$owner" "$dir" 2>/dev/null || true
chmod 700 "$dir"
cleanup() {
  "${run_as[@]}" "$pgbin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${run_as[@]}" "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
# A random port may be taken (another server, a test's listener): try
# another a few times. A port the caller chose is tried once. What the
# server logged is shown when it does not start.
for attempt in 1 2 3 4 5; do
  port=${PIPEHOST_TEST_PG_PORT:-$((54000 + RANDOM % 1000))}
  if "${run_as[@]}" "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c synchronous_commit=off" start >/dev/null; then
    break
  fi
  if [ -n "${PIPEHOST_TEST_PG_PORT:-}" ] || [ "$attempt" = 5 ] || ! grep -q "could not bind\|already in use" "$dir/log" 2>/dev/null; then
    echo "with-postgres: PostgreSQL did not start on 127.0.0.1:$port; its log ($dir/log):" >&2
    cat "$dir/log" >&2 2>/dev/null || true
    exit 1
  fi
  echo "with-postgres: port $port is taken, trying another" >&2
done
export PIPEHOST_TEST_PG_DSN="postgres://postgres@127.0.0.1:$port/postgres?sslmode=disable"
echo "with-postgres: PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port" >&2
"$@"
