#!/usr/bin/env bash
# Builds the binaries the container image holds (make static) and runs them
# the way the image does, on an empty root: no libc, no /etc, nothing but
# the two binaries, /tmp and /work. The default pipeline.hcl (Parquet) and
# examples/duckdb.hcl (the DuckDB sink, linked into the host statically)
# run against the built-in sandbox; the files they write are checked.
# Docker is not needed (unshare --root, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
make static >/dev/null 2>&1 || make static
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/local/bin" "$root/tmp" "$root/work"
chmod 1777 "$root/tmp"
cp bin/static/pipeline bin/static/nuorder-plugin "$root/usr/local/bin/"
cp pipeline.hcl "$root/work/pipeline.hcl"
sed 's|path = env("DUCKDB_PATH", "nuorder.duckdb")|path = "nuorder.duckdb"|' examples/duckdb.hcl > "$root/work/duckdb.hcl"
in_root() { env -i HOME=/work PATH=/usr/local/bin "$(command -v unshare)" --mount --root="$root" --wd=/work /usr/local/bin/pipeline "$@"; }
in_root run --sandbox -f /work/pipeline.hcl --log-level warn
in_root run --sandbox -f /work/duckdb.hcl --log-level warn
ls "$root"/work/data/orders/*.parquet >/dev/null
test -s "$root/work/nuorder.duckdb"
echo "empty-root smoke: the static binaries ran both pipeline files; Parquet files and nuorder.duckdb written"
