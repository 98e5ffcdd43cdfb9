# Pipelines from NuOrder into Parquet files under data/.
#
#   make run                       # (in the repository) build, then run it against the built-in sandbox
#   pipeline validate --sandbox    # check this file against the built-in sandbox (no account needed)
#   pipeline run --sandbox         # run it against the sandbox: demo data into data/
#   pipeline run                   # run it against NuOrder, with the credentials below
#
# Each run reads what changed since the last one (checkpoints in .pipeline-state/<file name>/).

connector "nuorder" {
  # plugin = "bin/nuorder-plugin"   # optional: found beside the pipeline binary, in $PIPELINE_PLUGIN_DIR,
  #                                 # ~/.pipehost/plugins or on PATH when not set
  # sha256 = "..."                  # pin the plugin binary: any other binary is refused

  config {
    base_url        = env("NUORDER_BASE_URL", "https://next.nuorder.com") # sandbox: https://sandbox1.nuorder.com
    consumer_key    = env("NUORDER_CONSUMER_KEY")                          # NuOrder Admin > API Management
    consumer_secret = env("NUORDER_CONSUMER_SECRET")                       # sensitive: never printed
    token           = env("NUORDER_TOKEN")
    token_secret    = env("NUORDER_TOKEN_SECRET") # sensitive: never printed

    # NuOrder has no warehouse listing: name the brand's warehouses (for locations and stock pushes).
    # warehouses = [{ id = "628d4fa01f9aa012b5f1a1a5", code = "MAIN", name = "Main warehouse" }]
  }
}

sink "parquet" "lake" {
  path = "data"
}

# To load a queryable DuckDB database instead, declare this sink and write `sink.duckdb.db` in
# place of `sink.parquet.lake` below (with mode = "merge": one row per order, its latest status):
# sink "duckdb" "db" {
#   path = "data/nuorder.duckdb"   # duckdb data/nuorder.duckdb -c "SELECT status, count(*) FROM orders GROUP BY 1"
# }

pipeline "products" {
  from = connector.nuorder.products
  to   = sink.parquet.lake
}

pipeline "locations" {
  from = connector.nuorder.locations
  to   = sink.parquet.lake
}

pipeline "companies" {
  from = connector.nuorder.companies
  to   = sink.parquet.lake
}

pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.parquet.lake
  # options  = { statuses = "approved,processed,shipped,cancelled", approved_from = "2026-01-01" }
  # schedule = "@hourly"   # for pipeline serve
}

pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.parquet.lake
}

# Shipments recorded on those orders; orders, order_lines and shipments run on one read.
pipeline "shipments" {
  from = connector.nuorder.shipments
  to   = sink.parquet.lake
}
