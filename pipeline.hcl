# The default pipelines: every NuOrder source stream into Parquet files under data/.
#
#   make run                          # against the built-in sandbox (fake NuOrder, demo data)
#   bin/pipeline run                  # against NuOrder, credentials from the environment
#
# Relative paths are resolved from this file's folder. Each run reads what changed since the
# last one (checkpoints are kept in .pipeline-state/pipeline/); `--full-refresh` reads everything.

connector "nuorder" {
  plugin = "bin/nuorder-plugin"
  # sha256 = "..."   # pin the plugin binary: any other binary is refused before it starts

  config {
    base_url        = env("NUORDER_BASE_URL", "https://next.nuorder.com")
    consumer_key    = env("NUORDER_CONSUMER_KEY")
    consumer_secret = env("NUORDER_CONSUMER_SECRET") # sensitive: never printed
    token           = env("NUORDER_TOKEN")
    token_secret    = env("NUORDER_TOKEN_SECRET") # sensitive: never printed
    # NuOrder has no warehouse listing: name the brand's warehouses for the locations stream
    # (--sandbox uses the sandbox's own).
    # warehouses = [{ id = "628d4fa01f9aa012b5f1a1a5", code = "MAIN", name = "Main warehouse" }]
  }
}

sink "parquet" "lake" {
  path = "data"
}

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
  # options = { statuses = "approved,processed,shipped,cancelled", approved_from = "2026-01-01" }
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
