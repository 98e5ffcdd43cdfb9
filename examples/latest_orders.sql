-- The latest version of each order in an append-only lake (the parquet or s3 sink, mode "append").
--
-- Each run that sees an order changed appends a new version of it. A status change (processed,
-- shipped, cancelled) leaves modified_on as it was (NuOrder does not move it), so ordering by
-- modified_on ties the versions and either may win. _extracted_at is when the run that wrote the
-- version began, and the file name (part-<run start>-<n>-<commit>) orders the versions within a run:
-- the newest wins.
--
--   duckdb -c ".read examples/latest_orders.sql"          (from the folder holding data/)
--
-- The same for order_lines (PARTITION BY order_id, line_id, size) and shipments (order_id,
-- shipment_no); for object storage read 's3://BUCKET/PREFIX/orders/**/*.parquet' with
-- hive_partitioning = true.
SELECT * EXCLUDE (filename)
FROM read_parquet('data/orders/*.parquet', filename = true)
QUALIFY row_number() OVER (PARTITION BY _id ORDER BY _extracted_at DESC, filename DESC) = 1;
