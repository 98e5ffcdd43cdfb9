# Every NuOrder source stream into a PostgreSQL warehouse, merged on each stream's key, so the
# tables hold the latest version of every company, product, warehouse and order.
#
#   export WAREHOUSE_DSN='postgres://loader:PASSWORD@db.internal:5432/analytics'   # never printed
#   make build && bin/pipeline run --sandbox -f examples/warehouse.hcl
#
# Rows and checkpoints are committed in one transaction: a crash never duplicates or loses rows.

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

sink "postgres" "warehouse" {
  dsn    = env("WAREHOUSE_DSN") # sensitive: never printed
  schema = env("WAREHOUSE_SCHEMA", "nuorder")
}

pipeline "companies" {
  from = connector.nuorder.companies
  to   = sink.postgres.warehouse
  mode = "merge"
}

pipeline "products" {
  from = connector.nuorder.products
  to   = sink.postgres.warehouse
  mode = "merge"
}

pipeline "locations" {
  from = connector.nuorder.locations
  to   = sink.postgres.warehouse
  mode = "merge"
}

pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.postgres.warehouse
  mode = "merge"
}

pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.postgres.warehouse
  mode = "merge"
}

# The shipments NuOrder holds on those orders (what 3PLs need), read on the same pass as orders
# and order_lines; merge keeps one row per (order_id, shipment_no).
pipeline "shipments" {
  from = connector.nuorder.shipments
  to   = sink.postgres.warehouse
  mode = "merge"
}
