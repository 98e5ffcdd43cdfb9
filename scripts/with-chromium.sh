#!/usr/bin/env bash
# Runs a command with a headless browser at hand, for the test that loads
# serve's status page in a real browser: PIPEHOST_TEST_CHROMIUM names it.
# Debian's chromium is installed when it is missing and we are root.
#
#   scripts/with-chromium.sh go test ./pipeline -run StatusPage
set -euo pipefail

if [ -z "${PIPEHOST_TEST_CHROMIUM:-}" ]; then
  if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      echo "with-chromium: installing Debian's chromium" >&2
      export DEBIAN_FRONTEND=noninteractive
      apt-get update -qq >/dev/null
      apt-get install -y -qq --no-install-recommends chromium >/dev/null
    fi
  fi
  if command -v chromium >/dev/null; then
    export PIPEHOST_TEST_CHROMIUM="$(command -v chromium)"
  fi
fi
exec "$@"
