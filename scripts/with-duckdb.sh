#!/usr/bin/env bash
# Runs a command with DuckDB's Node.js package at hand, for the tests that
# read the Parquet files we write with another engine: PIPEHOST_TEST_DUCKDB
# names the package's folder. The package (npm @duckdb/node-api, which
# ships DuckDB's native library) is installed once into
# ${PIPEHOST_CACHE:-$HOME/.cache/pipehost}/duckdb. Node.js comes from
# Debian's packages when it is missing and we are root.
#
#   scripts/with-duckdb.sh go test ./pipeline -run DuckDB
set -euo pipefail

version=1.5.6-r.1
if [ -z "${PIPEHOST_TEST_DUCKDB:-}" ]; then
  dir="${PIPEHOST_CACHE:-$HOME/.cache/pipehost}/duckdb-$version"
  pkg="$dir/node_modules/@duckdb/node-api"
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "with-duckdb: installing Node.js" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq nodejs npm >/dev/null
    fi
  fi
  if [ ! -d "$pkg" ]; then
    echo "with-duckdb: installing @duckdb/node-api $version into $dir" >&2
    mkdir -p "$dir"
    (cd "$dir" && npm install --silent --no-audit --no-fund --no-save "@duckdb/node-api@$version" >&2)
  fi
  node -e "require('$pkg')" || { echo "with-duckdb: $pkg does not load" >&2; exit 1; }
  export PIPEHOST_TEST_DUCKDB="$pkg"
fi
exec "$@"
