# Push ERP/WMS exports into NuOrder: stock levels, shipments, customers, new orders and order statuses.
#
#   make build && bin/pipeline plan --sandbox -f examples/sinks.hcl   # what would be sent
#   bin/pipeline run --sandbox -f examples/sinks.hcl                  # send it (to the sandbox)
#
# Input files are read by the built-in `files` connector (no block needed). Each pipeline maps the
# export's columns onto the NuOrder sink stream's columns; rows that cannot be converted or that
# NuOrder refuses go to rejects/<pipeline>-<time>.csv with their row, line and reason.

connector "nuorder" {
  # No plugin path: the host finds nuorder-plugin beside its own binary (make build puts both in
  # bin/), in $PIPELINE_PLUGIN_DIR, ~/.pipehost/plugins or on PATH.
  config {
    base_url        = env("NUORDER_BASE_URL", "https://next.nuorder.com")
    consumer_key    = env("NUORDER_CONSUMER_KEY")
    consumer_secret = env("NUORDER_CONSUMER_SECRET")
    token           = env("NUORDER_TOKEN")
    token_secret    = env("NUORDER_TOKEN_SECRET")
    # NuOrder has no warehouse listing: name the brand's warehouses (id from NuOrder, code and
    # name as your ERP spells them). These are the sandbox's; replace them with yours.
    warehouses = [
      { id = "e2199c8392d3d88b00000000", code = "MAIN", name = "Main Distribution Center" },
      { id = "e2199c8392d3d88b00000001", code = "WEST", name = "West Coast Warehouse" },
      { id = "e2199c8392d3d88b00000002", code = "EU", name = "EU Hub Rotterdam" },
    ]
  }
}

# Stock levels from the WMS: ETA today or earlier (or empty) is available now, a later ETA is a
# future replenishment, and prebook rows carry no quantity.
pipeline "stock" {
  from    = connector.files.csv
  options = { path = "stock.csv" }
  to      = connector.nuorder.inventory
  columns = { upc = "Item UPC", warehouse = "Whse", quantity = "Avail", prebook = "Prebook" }
  column "date" {
    from   = "ETA"
    format = "%m/%d/%Y"
  }
}

# Shipments from the WMS: rows with the same order and tracking number are one shipment; rows
# with a UPC and quantity list the shipped lines. Orders move to shipped.
pipeline "shipments" {
  from    = connector.files.csv
  options = { path = "shipments.csv" }
  to      = connector.nuorder.fulfillment
  columns = { order_number = "Order #", tracking_number = "Tracking", carrier = "Carrier", upc = "UPC", quantity = "Qty" }
  column "shipped_date" {
    from   = "Ship Date"
    format = "%m/%d/%Y"
  }
}

# The ERP's customer master: new codes are created, known ones updated, blocked ones archived
# (NuOrder has no archive: an archived company is set inactive).
pipeline "customers" {
  from    = connector.files.csv
  options = { path = "customers.csv" }
  to      = connector.nuorder.companies
  columns = {
    code           = "Customer No"
    name           = "Customer Name"
    currency_code  = "Currency"
    payment_terms  = "Terms"
    address_line_1 = "Address"
    city           = "City"
    state          = "State"
    zip            = "Zip"
    country        = "Country"
    rep_name       = "Rep"
    rep_email      = "Rep Email"
    archived       = "Blocked"
  }
}

# Order statuses from the ERP: cancellations made there (NuOrder's "remove": cancelled is final,
# NuOrder locks cancelled orders), orders put back to pending for editing (a "pause"), orders
# processed or shipped elsewhere. An order already in the status is left alone, and a row this
# pipeline already sent is not sent again (--full-refresh sends everything).
pipeline "statuses" {
  from    = connector.files.csv
  options = { path = "order_status.csv" }
  to      = connector.nuorder.order_status
  columns = { order_number = "Order #", status = "ERP Status" }
}

# Orders taken by phone or EDI, one row per line and size: an order number NuOrder already has is
# not created again, and an order with a row NuOrder could not take (an unknown UPC, a retailer
# code no company has, a missing field) is rejected whole, with the row's reason, before anything
# is sent.
pipeline "new_orders" {
  from    = connector.files.csv
  options = { path = "new_orders.csv" }
  to      = connector.nuorder.orders
  columns = {
    order_number       = "Order No"
    external_id        = "EDI Ref"
    currency_code      = "Currency"
    retailer_code      = "Customer"
    buyer_email        = "Buyer Email"
    customer_po_number = "PO"
    upc                = "UPC"
    quantity           = "Qty"
    price              = "Unit Price"
  }
  column "ship_start" {
    from   = "Ship From"
    format = "%m/%d/%Y"
  }
  column "ship_end" {
    from   = "Ship To"
    format = "%m/%d/%Y"
  }
}
