# Every NuOrder source stream into one DuckDB database file, merged on each stream's key, so the
# tables hold the latest version of every company, product, warehouse, order, order line and
# shipment. Nested values are DuckDB's own types (line_items is a LIST of STRUCTs), amounts are
# DECIMAL(18,4), times TIMESTAMP WITH TIME ZONE.
#
#   make build && bin/pipeline run --sandbox -f examples/duckdb.hcl
#   duckdb examples/nuorder.duckdb -c "SELECT status, count(*), sum(total) FROM orders GROUP BY 1"
#
# The same pipelines write Parquet files when the sink block is `sink "parquet" ...`: only the
# sink block and the `to` lines change. Rows and checkpoints are committed in one transaction: a
# crash never duplicates or loses rows. DuckDB lets one process write a file at a time: a run that
# finds the file open elsewhere (a DuckDB shell, a notebook) stops with exit 3 and names it; the
# file is free again as soon as a run ends.

connector "nuorder" {
  # No plugin path: the host finds nuorder-plugin beside its own binary (make build puts both in
  # bin/), in $PIPELINE_PLUGIN_DIR, ~/.pipehost/plugins or on PATH.
  config {
    base_url        = env("NUORDER_BASE_URL", "https://next.nuorder.com")
    consumer_key    = env("NUORDER_CONSUMER_KEY")
    consumer_secret = env("NUORDER_CONSUMER_SECRET")
    token           = env("NUORDER_TOKEN")
    token_secret    = env("NUORDER_TOKEN_SECRET")
  }
}

sink "duckdb" "db" {
  path = env("DUCKDB_PATH", "nuorder.duckdb") # relative to this file's folder
}

pipeline "companies" {
  from = connector.nuorder.companies
  to   = sink.duckdb.db
  mode = "merge"
}

pipeline "products" {
  from = connector.nuorder.products
  to   = sink.duckdb.db
  mode = "merge"
}

pipeline "locations" {
  from = connector.nuorder.locations
  to   = sink.duckdb.db
  mode = "merge"
}

pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.duckdb.db
  mode = "merge"
}

pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.duckdb.db
  mode = "merge"
}

pipeline "shipments" {
  from = connector.nuorder.shipments
  to   = sink.duckdb.db
  mode = "merge"
}
