# Every NuOrder source stream as Parquet files in object storage (AWS S3, or MinIO, SeaweedFS, Ceph,
# versitygw through LAKE_ENDPOINT), orders in one folder per UTC creation date.
#
#   export AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...   # or AWS_PROFILE, or a role: never printed
#   export LAKE_BUCKET=acme-lake LAKE_ENDPOINT=http://127.0.0.1:7070   # LAKE_ENDPOINT: leave unset for AWS
#   make build && bin/pipeline run --sandbox -f examples/lake-s3.hcl
#
# A commit's files become visible with its checkpoint (a commit record put with If-None-Match): a crash
# never duplicates or loses rows, and two hosts cannot commit the same run twice.
#
#   SELECT created_on_date, count(*)
#   FROM read_parquet('s3://acme-lake/nuorder/orders/**/*.parquet', hive_partitioning = true) GROUP BY 1;

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

# Orders, partitioned by their creation date.
sink "s3" "dated" {
  bucket       = env("LAKE_BUCKET")
  prefix       = env("LAKE_PREFIX", "nuorder")
  endpoint     = env("LAKE_ENDPOINT", "")
  partition_by = "created_on"
}

# The others, in one folder per stream under the same prefix.
sink "s3" "lake" {
  bucket   = env("LAKE_BUCKET")
  prefix   = env("LAKE_PREFIX", "nuorder")
  endpoint = env("LAKE_ENDPOINT", "")
}

pipeline "companies" {
  from = connector.nuorder.companies
  to   = sink.s3.lake
}

pipeline "products" {
  from = connector.nuorder.products
  to   = sink.s3.lake
}

pipeline "locations" {
  from = connector.nuorder.locations
  to   = sink.s3.lake
}

pipeline "orders" {
  from = connector.nuorder.orders
  to   = sink.s3.dated
}

pipeline "order_lines" {
  from = connector.nuorder.order_lines
  to   = sink.s3.lake
}

pipeline "shipments" {
  from = connector.nuorder.shipments
  to   = sink.s3.lake
}
