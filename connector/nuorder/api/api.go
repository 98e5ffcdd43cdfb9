// Package api is the one place that says which NuOrder endpoints the connector
// calls, and how sure we are that each exists as used. The client builds its
// URLs from this table and the fake NuOrder API serves exactly this table, so
// when NuOrder's real documentation is at hand, one edit here moves both.
//
// Evidence levels follow shared/nuorder-api.md: Confirmed endpoints were seen
// in recorded NuOrder traffic; Used ones are called by real integrations
// whose responses we have not seen; Assumed ones are our inference, and the
// README lists them.
package api

import (
	"net/url"
	"strings"
)

// Evidence says how sure we are that an endpoint behaves as the client uses it.
type Evidence string

const (
	// Confirmed: request and response seen in recorded NuOrder traffic.
	Confirmed Evidence = "confirmed"
	// Used: called by production integration code; response shape not seen.
	Used Evidence = "used"
	// Assumed: inferred by us; the client tolerates the likely variants.
	Assumed Evidence = "assumed"
)

// Endpoint is one NuOrder route. Path holds {name} placeholders, in the
// pattern syntax of net/http's ServeMux.
type Endpoint struct {
	Method   string
	Path     string
	Evidence Evidence
	// Note says what the endpoint is used for and, for assumed ones, what
	// exactly is assumed.
	Note string
}

// Pattern is the ServeMux pattern of the endpoint ("GET /api/product/{id}").
func (e Endpoint) Pattern() string { return e.Method + " " + e.Path }

// URL fills the placeholders of Path, in order, with path-escaped values and
// prefixes base ("https://next.nuorder.com"). It panics when the number
// of values differs from the number of placeholders: that is a bug in the
// caller, not an input error.
func (e Endpoint) URL(base string, values ...string) string {
	var b strings.Builder
	b.WriteString(strings.TrimRight(base, "/"))
	rest := e.Path
	for _, v := range values {
		i := strings.IndexByte(rest, '{')
		j := strings.IndexByte(rest, '}')
		if i < 0 || j < i {
			panic("api: too many values for " + e.Path)
		}
		b.WriteString(rest[:i])
		b.WriteString(url.PathEscape(v))
		rest = rest[j+1:]
	}
	if strings.IndexByte(rest, '{') >= 0 {
		panic("api: too few values for " + e.Path)
	}
	b.WriteString(rest)
	return b.String()
}

// The endpoints the connector calls.
var (
	// ProductByID reads one product with its sizes (SKU ids), pricing and
	// warehouses. 404 {"code":404,"message":"product not found"} when unknown.
	ProductByID = Endpoint{"GET", "/api/product/{id}", Confirmed,
		"read one product (S1, S2 cassettes)"}

	// ProductList lists the brand's products. Assumed: the path is used by
	// one client (S3) with no recorded response. The client accepts a bare
	// JSON array of product _id strings (then reads each with ProductByID) or
	// of full product documents (then uses them as they are). The fake
	// serves ids, the conservative variant.
	ProductList = Endpoint{"GET", "/api/products", Assumed,
		"list products: array of _id strings or of product documents"}

	// ProductSeasonList lists the products of one season, with the same
	// accepted shapes as ProductList. Used by S3 (mocked response only).
	ProductSeasonList = Endpoint{"GET", "/api/products/season/{season}/list", Used,
		"list one season's products (when the config names seasons)"}

	// CompanyCodes lists every company code ("Get all company codes").
	// Used by S3; the response shape is unknown. The client accepts a bare
	// JSON array of code strings, or of objects carrying "code" and/or "_id".
	CompanyCodes = Endpoint{"GET", "/api/companies/codes/list", Assumed,
		"list company codes: array of strings or of objects with code/_id"}

	// CompanyByCode reads one company by its code. Only claimed by a
	// low-confidence source (S13): no real integration reads a company this
	// way; code-addressed routes are used only for buyers (S5,
	// shared/nuorder-api.md §13.6). Used only when the code listing gives
	// codes without _id, and by the companies sink stream's default method
	// (method = "force" avoids it).
	CompanyByCode = Endpoint{"GET", "/api/company/code/{code}", Assumed,
		"read one company by code"}

	// CompanyByID reads one company (S1 cassette). Used when the code
	// listing gives _id values.
	CompanyByID = Endpoint{"GET", "/api/company/{id}", Confirmed,
		"read one company by _id"}

	// OrdersDetail returns every order in a status, full documents, as one
	// unpaged bare JSON array (S1 cassettes for pending, approved, edited).
	OrdersDetail = Endpoint{"GET", "/api/orders/{status}/detail", Confirmed,
		"all orders in a status, full documents, one unpaged array"}

	// OrdersList returns the _id of every order in a status, as a bare JSON
	// array of strings. Used in production by S4, S5 and S7 (S7 sends the
	// status capitalised, "Approved"), each then reading the orders it
	// needs with OrderByID (shared/nuorder-api.md §7.2, §14.2). The orders
	// streams use it with the option read = "ids".
	OrdersList = Endpoint{"GET", "/api/orders/{status}/list", Used,
		"the _id of every order in a status, one unpaged array (read = \"ids\")"}
)

// The endpoints the sink streams call.
var (
	// Replenishments creates or updates v3 replenishments in bulk, for one
	// warehouse: body {"replenishments":[{warehouse_id, sku_id,
	// display_name, prebook, active, period_start (MM/dd/yyyy), period_end,
	// quantity}]}. Used in production by S7, which treats it as an upsert:
	// a SKU's replenishments that the body does not name stay
	// (shared/nuorder-api.md §13.2). So a push first deletes the set of each
	// SKU it sends (ReplenishmentsDelete).
	Replenishments = Endpoint{"PUT", "/api/v3.0/warehouse/{warehouse_id}/replenishments", Used,
		"bulk replenishments of one warehouse; an upsert: replenishments it does not name stay"}

	// ReplenishmentsDelete deletes every replenishment of one SKU in one
	// warehouse and answers the deleted ones as an array. Used in production
	// by S7 before each bulk PUT.
	ReplenishmentsDelete = Endpoint{"DELETE", "/api/v3.0/warehouse/{warehouse_id}/sku/{sku_id}/replenishments", Used,
		"delete a SKU's replenishments in a warehouse, before sending its new set"}

	// InventoryFlags recomputes products' inventory flags after
	// replenishments: body {"product_ids":[...]}. Used in production by S7.
	InventoryFlags = Endpoint{"PUT", "/api/inventory/flags", Used,
		"refresh the inventory flags of products"}

	// OrderByID reads one order (S4-S8).
	OrderByID = Endpoint{"GET", "/api/order/{id}", Used, "read one order"}

	// OrderByNumber reads one order by its number (S5, S6, S14).
	OrderByNumber = Endpoint{"GET", "/api/order/number/{number}", Used, "read one order by number"}

	// OrderUpdate updates fields of an order (S5, S6, S9). Assumed: a
	// shipments array in the body replaces the order's shipments (NuOrder
	// has no confirmed shipment endpoint, shared/nuorder-api.md §8). The
	// fulfillment stream's record_shipments = false option avoids it.
	OrderUpdate = Endpoint{"POST", "/api/order/{id}", Assumed,
		"record shipments by sending the order's whole shipments array"}

	// OrderSetStatus moves an order to a status (shipped, processed...);
	// used by S4, S5, S6, S9.
	OrderSetStatus = Endpoint{"POST", "/api/order/{id}/{status}", Used, "set an order's status"}

	// OrderSetStatusByNumber moves an order, given by number, to a status
	// (lowercase, no body). Used in production by S7 as its main path
	// (shared/nuorder-api.md §13.5). 304 when the order already has it.
	OrderSetStatusByNumber = Endpoint{"PUT", "/api/order/number/{number}/{status}", Used,
		"set an order's status by order number"}

	// OrderCreate creates an order (S3's README, S5, S9; §7.3). Required
	// fields per S9: order_number, external_id, currency_code, ship_start,
	// ship_end, retailer {retailer_code, buyer_email}, line_items. The
	// answer to a taken order number is not recorded.
	OrderCreate = Endpoint{"PUT", "/api/order/new", Used, "create an order"}

	// CompanyForce creates or updates a company in one request (S4, an ERP
	// integration's push; INFERRED: matched by code, shared/nuorder-api.md
	// §13.6). The companies sink stream uses it with method = "force".
	// Assumed: 201 when it created the company, 200 when it updated one.
	CompanyForce = Endpoint{"PUT", "/api/company/new/force", Used,
		"create or update a company by code (upsert); 201 created, 200 updated assumed"}

	// CompanyCreate creates a company (S9); 409 when it conflicts with one
	// stored.
	CompanyCreate = Endpoint{"PUT", "/api/company/new", Used, "create a company"}

	// CompanyUpdate updates a company's fields (S9). NuOrder has no archive
	// endpoint: archiving sets active to false.
	CompanyUpdate = Endpoint{"POST", "/api/company/{id}", Used, "update (or archive) a company"}
)

// All lists every endpoint above, for documentation and for the fake API.
var All = []Endpoint{ProductByID, ProductList, ProductSeasonList, CompanyCodes, CompanyByCode, CompanyByID, OrdersDetail, OrdersList,
	Replenishments, ReplenishmentsDelete, InventoryFlags, OrderByID, OrderByNumber, OrderUpdate, OrderSetStatus, OrderSetStatusByNumber, OrderCreate, CompanyForce, CompanyCreate, CompanyUpdate}

// Error is the body NuOrder sends with an error status:
// {"code": <http status>, "message": "<text>"} (confirmed by S10 and the
// recorded traffic).
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}
