#!/usr/bin/env bash
# Runs a command with a throwaway S3-compatible server on loopback:
# versitygw (an S3 gateway over a POSIX folder, which checks request
# signatures and honours If-None-Match / If-Match), for the object-storage
# sink's tests. Exports PIPEHOST_TEST_S3_ENDPOINT and the server's root
# credentials as PIPEHOST_TEST_S3_ACCESS_KEY_ID / PIPEHOST_TEST_S3_SECRET_ACCESS_KEY
# (not the AWS_* variables: nothing else in the command should find them).
# When PIPEHOST_TEST_S3_ENDPOINT is already set, the command runs against
# that server instead.
#
# The binary is built once with `go install` into
# ${PIPEHOST_CACHE:-$HOME/.cache/pipehost}/versitygw-$version (about 10
# minutes cold on 2 cores, from the Go module proxy).
#
#   scripts/with-s3.sh go test ./sinks/s3
set -euo pipefail

if [ -n "${PIPEHOST_TEST_S3_ENDPOINT:-}" ]; then
  exec "$@"
fi

version=v1.8.0
bindir="${PIPEHOST_CACHE:-$HOME/.cache/pipehost}/versitygw-$version"
gw="$bindir/versitygw"
if [ ! -x "$gw" ]; then
  echo "with-s3: building versitygw $version into $bindir (once; several minutes)" >&2
  mkdir -p "$bindir"
  GOBIN="$bindir" go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2
fi

dir=$(mktemp -d /tmp/pipehost-s3.XXXXXX)
key="pipehost-test-$RANDOM$RANDOM"
secret=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
port=${PIPEHOST_TEST_S3_PORT:-$((57000 + RANDOM % 1000))}
ROOT_ACCESS_KEY_ID="$key" ROOT_SECRET_ACCESS_KEY="$secret" \
  "$gw" --port "127.0.0.1:$port" posix "$dir/data" >"$dir/log" 2>&1 &
pid=$!
mkdir -p "$dir/data"
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "with-s3: versitygw exited:" >&2; cat "$dir/log" >&2; exit 1
  fi
  sleep 0.1
done
export PIPEHOST_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
export PIPEHOST_TEST_S3_ACCESS_KEY_ID="$key"
export PIPEHOST_TEST_S3_SECRET_ACCESS_KEY="$secret"
echo "with-s3: versitygw $version on 127.0.0.1:$port" >&2
"$@"
