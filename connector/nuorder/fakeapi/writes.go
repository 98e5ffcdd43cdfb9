package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Replenishment is a v3 replenishment the fake holds, as last sent.
type Replenishment struct {
	WarehouseID string   `json:"warehouse_id"`
	SKUID       string   `json:"sku_id"`
	DisplayName string   `json:"display_name"`
	Prebook     bool     `json:"prebook"`
	Active      bool     `json:"active"`
	PeriodStart string   `json:"period_start"`
	Quantity    *float64 `json:"quantity"`
}

// writes is the state the write endpoints change.
type writes struct {
	// replenishments by warehouse id, then SKU id.
	replenishments map[string]map[string][]Replenishment
	flagRefreshes  [][]string
	// companyDocs are companies created or updated through the API, whole.
	companyDocs map[int]map[string]any
	codeIndex   map[string]int
	// orderDocs are orders created through the API (index Catalog.Orders
	// and up), whole; orderNumbers and orderIDs find them.
	orderDocs    map[int]map[string]any
	orderNumbers map[string]int
	orderIDs     map[string]int
}

func newWrites() writes {
	return writes{replenishments: map[string]map[string][]Replenishment{}, companyDocs: map[int]map[string]any{}, codeIndex: map[string]int{},
		orderDocs: map[int]map[string]any{}, orderNumbers: map[string]int{}, orderIDs: map[string]int{}}
}

// Replenishments returns what the fake holds for a warehouse, by SKU id.
func (s *Server) Replenishments(warehouseID string) map[string][]Replenishment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]Replenishment{}
	for sku, rs := range s.w.replenishments[warehouseID] {
		out[sku] = append([]Replenishment(nil), rs...)
	}
	return out
}

// FlagRefreshes returns the product id lists of every inventory flag refresh.
func (s *Server) FlagRefreshes() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][]string(nil), s.w.flagRefreshes...)
}

// SKU returns the product number and size of a SKU (size _id).
func (c Catalog) SKU(skuID string) (product int, size string, ok bool) {
	i, ok := c.index("size", skuID, c.Products*16)
	if !ok {
		return 0, "", false
	}
	sizes := c.Product(i / 16)["sizes"].([]map[string]any)
	if i%16 >= len(sizes) {
		return 0, "", false
	}
	return i / 16, sizes[i%16]["size"].(string), true
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

// knownWarehouse answers 404 for a warehouse id the brand does not have.
func (s *Server) knownWarehouse(w http.ResponseWriter, wh string) bool {
	for _, k := range s.opts.Catalog.Warehouses() {
		if k.ID == wh {
			return true
		}
	}
	writeError(w, http.StatusNotFound, "warehouse not found")
	return false
}

// replenishmentJSON is a replenishment as NuOrder answers it: epoch-ms
// period_start (S7's response model).
func replenishmentJSON(rp Replenishment) map[string]any {
	start, _ := time.Parse("01/02/2006", rp.PeriodStart)
	return map[string]any{"warehouse_id": rp.WarehouseID, "sku_id": rp.SKUID, "display_name": rp.DisplayName,
		"prebook": rp.Prebook, "quantity": rp.Quantity, "period_start": start.UnixMilli(), "period_end": nil}
}

// replenish serves PUT /api/v3.0/warehouse/{warehouse_id}/replenishments as
// an upsert, the way production integrations treat it (shared/nuorder-api.md
// §13.2: S7 deletes each SKU's replenishments before the bulk PUT, so the PUT
// alone does not remove what it does not name). A replenishment sent with
// the SKU, display name and period start of one held replaces it; every
// other one the SKU had stays.
func (s *Server) replenish(w http.ResponseWriter, r *http.Request) {
	wh := r.PathValue("warehouse_id")
	if !s.knownWarehouse(w, wh) {
		return
	}
	var body struct {
		Replenishments []Replenishment `json:"replenishments"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	s.mu.Lock()
	if s.replenishSends == nil {
		s.replenishSends = map[string]int{}
	}
	batch := make([]string, 0, len(body.Replenishments))
	for _, rp := range body.Replenishments {
		s.replenishSends[rp.SKUID]++
		batch = append(batch, rp.SKUID)
	}
	s.replenishBatches = append(s.replenishBatches, batch)
	s.mu.Unlock()
	bySKU := map[string][]Replenishment{}
	for _, rp := range body.Replenishments {
		if _, _, ok := s.opts.Catalog.SKU(rp.SKUID); !ok {
			writeError(w, http.StatusBadRequest, "sku not found: "+rp.SKUID)
			return
		}
		if rp.WarehouseID != "" && rp.WarehouseID != wh {
			writeError(w, http.StatusBadRequest, "warehouse_id does not match the path")
			return
		}
		if _, err := time.Parse("01/02/2006", rp.PeriodStart); err != nil {
			writeError(w, http.StatusBadRequest, "period_start must be MM/dd/yyyy: "+rp.PeriodStart)
			return
		}
		if !rp.Prebook && rp.Quantity == nil {
			writeError(w, http.StatusBadRequest, "quantity is required unless prebook")
			return
		}
		rp.WarehouseID = wh
		bySKU[rp.SKUID] = append(bySKU[rp.SKUID], rp)
	}
	s.mu.Lock()
	m := s.w.replenishments[wh]
	if m == nil {
		m = map[string][]Replenishment{}
		s.w.replenishments[wh] = m
	}
	var out []map[string]any
	for sku, rs := range bySKU {
		for _, rp := range rs {
			held := m[sku]
			replaced := false
			for k := range held {
				if held[k].DisplayName == rp.DisplayName && held[k].PeriodStart == rp.PeriodStart {
					held[k], replaced = rp, true
				}
			}
			if !replaced {
				held = append(held, rp)
			}
			m[sku] = held
			out = append(out, replenishmentJSON(rp))
		}
	}
	s.mu.Unlock()
	writeJSON(w, out)
}

// deleteReplenishments serves DELETE
// /api/v3.0/warehouse/{warehouse_id}/sku/{sku_id}/replenishments: every
// replenishment of the SKU in the warehouse goes, and the answer lists them
// (S7's model of the response; an empty array when there were none).
func (s *Server) deleteReplenishments(w http.ResponseWriter, r *http.Request) {
	wh, sku := r.PathValue("warehouse_id"), r.PathValue("sku_id")
	if !s.knownWarehouse(w, wh) {
		return
	}
	if _, _, ok := s.opts.Catalog.SKU(sku); !ok {
		writeError(w, http.StatusNotFound, "sku not found: "+sku)
		return
	}
	s.mu.Lock()
	gone := s.w.replenishments[wh][sku]
	delete(s.w.replenishments[wh], sku)
	s.mu.Unlock()
	out := []map[string]any{}
	for _, rp := range gone {
		out = append(out, replenishmentJSON(rp))
	}
	writeJSON(w, out)
}

// flags serves PUT /api/inventory/flags.
func (s *Server) flags(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ProductIDs []string `json:"product_ids"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	for _, id := range body.ProductIDs {
		if _, ok := s.opts.Catalog.ProductIndex(id); !ok {
			writeError(w, http.StatusBadRequest, "product not found: "+id)
			return
		}
	}
	s.mu.Lock()
	s.w.flagRefreshes = append(s.w.flagRefreshes, body.ProductIDs)
	s.mu.Unlock()
	writeJSON(w, map[string]any{"success": true})
}

func (s *Server) orderIndex(w http.ResponseWriter, r *http.Request) (int, bool) {
	var (
		i  int
		ok bool
	)
	s.mu.Lock()
	if n := r.PathValue("number"); n != "" {
		if i, ok = s.w.orderNumbers[n]; !ok {
			v, err := strconv.Atoi(n)
			i, ok = v-100000, err == nil && v >= 100000 && v-100000 < s.opts.Catalog.Orders
		}
	} else if i, ok = s.w.orderIDs[r.PathValue("id")]; !ok {
		i, ok = s.opts.Catalog.OrderIndex(r.PathValue("id"), s.opts.Catalog.Orders)
	}
	s.mu.Unlock()
	if ok && s.orderStatus(i) == "" {
		ok = false // deleted
	}
	if !ok {
		writeError(w, http.StatusNotFound, "order not found")
	}
	return i, ok
}

func (s *Server) getOrder(w http.ResponseWriter, r *http.Request) {
	if i, ok := s.orderIndex(w, r); ok {
		writeJSON(w, s.Order(i))
	}
}

// updateOrder serves POST /api/order/{id}: the fields sent replace the
// order's (shipments, notes, external_id; others are refused).
func (s *Server) updateOrder(w http.ResponseWriter, r *http.Request) {
	i, ok := s.orderIndex(w, r)
	if !ok {
		return
	}
	if s.lockedOrder(w, i) {
		return
	}
	var body map[string]any
	if !decodeBody(w, r, &body) {
		return
	}
	for k := range body {
		if k != "shipments" && k != "notes" && k != "external_id" {
			writeError(w, http.StatusBadRequest, "field cannot be updated: "+k)
			return
		}
	}
	s.mu.Lock()
	ch := s.touch(s.orders, i)
	if ch.fields == nil {
		ch.fields = map[string]any{}
	}
	for k, v := range body {
		ch.fields[k] = v
	}
	s.mu.Unlock()
	writeJSON(w, s.Order(i))
}

// lockedOrder answers 409 for a cancelled order, which NuOrder locks
// (helpdesk, shared/nuorder-api.md §7.1: "cancelled orders are locked").
// The status code and message NuOrder sends are not recorded; 409 is our
// guess. It says whether the order was locked.
func (s *Server) lockedOrder(w http.ResponseWriter, i int) bool {
	if s.orderStatus(i) != "cancelled" {
		return false
	}
	writeError(w, http.StatusConflict, "order is cancelled and locked")
	return true
}

var statusNouns = map[string]string{"process": "processed", "cancel": "cancelled", "processed": "processed", "cancelled": "cancelled",
	"shipped": "shipped", "approved": "approved", "pending": "pending", "draft": "draft", "review": "review"}

func (s *Server) setOrderStatus(w http.ResponseWriter, r *http.Request) {
	i, ok := s.orderIndex(w, r)
	if !ok {
		return
	}
	status, ok := statusNouns[strings.ToLower(r.PathValue("status"))]
	if !ok {
		writeError(w, http.StatusBadRequest, "unknown status: "+r.PathValue("status"))
		return
	}
	s.mu.Lock()
	if s.statusSends == nil {
		s.statusSends = map[int]int{}
	}
	s.statusSends[i]++
	s.mu.Unlock()
	if status != "cancelled" && s.lockedOrder(w, i) {
		return
	}
	if !s.SetOrderStatus(i, status) {
		// Already there: NuOrder answers 304 Not Modified (S6 treats 304
		// as "Order Not Updated", shared/nuorder-api.md §13.4).
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, s.Order(i))
}

// createCompany serves PUT /api/company/new: 409 when the code is taken.
func (s *Server) createCompany(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if !decodeBody(w, r, &doc) {
		return
	}
	if code, _ := doc["code"].(string); code != "" {
		if _, found := s.companyByCodeIndex(code); found {
			writeError(w, http.StatusConflict, fmt.Sprintf("company with code %s already exists", code))
			return
		}
	}
	s.create(w, doc)
}

// create stores a new company and answers 201 with it.
func (s *Server) create(w http.ResponseWriter, doc map[string]any) {
	name, _ := doc["name"].(string)
	cur, _ := doc["currency_code"].(string)
	if name == "" || cur == "" {
		writeError(w, http.StatusBadRequest, "name and currency_code are required")
		return
	}
	code, _ := doc["code"].(string)
	s.mu.Lock()
	i := s.opts.Catalog.Companies + s.addedCompanies
	s.addedCompanies++
	now := s.Now().UTC().Truncate(time.Millisecond)
	doc["_id"] = s.opts.Catalog.CompanyID(i)
	doc["created_on"], doc["modified_on"] = isoMillis(now), isoMillis(now)
	if _, ok := doc["active"]; !ok {
		doc["active"] = true
	}
	s.w.companyDocs[i] = doc
	if code != "" {
		s.w.codeIndex[code] = i
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(doc)
}

// forceCompany serves PUT /api/company/new/force: a company whose code is
// known is updated with the fields sent (200), an unknown code is created
// (201, name and currency_code needed). Matching on code is inferred
// (shared/nuorder-api.md §4.1: S4 pushes with it, no response recorded).
func (s *Server) forceCompany(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if !decodeBody(w, r, &doc) {
		return
	}
	code, _ := doc["code"].(string)
	if code == "" {
		writeError(w, http.StatusBadRequest, "code is required")
		return
	}
	i, found := s.companyByCodeIndex(code)
	if !found {
		s.create(w, doc)
		return
	}
	writeJSON(w, s.update(i, doc))
}

// updateCompany serves POST /api/company/{id}: the fields sent replace the
// company's.
func (s *Server) updateCompany(w http.ResponseWriter, r *http.Request) {
	c := s.catalog()
	i, ok := c.CompanyIndex(r.PathValue("id"), c.Companies)
	if !ok {
		writeError(w, http.StatusNotFound, "company not found")
		return
	}
	var fields map[string]any
	if !decodeBody(w, r, &fields) {
		return
	}
	writeJSON(w, s.update(i, fields))
}

// update applies fields to company i and returns the company.
func (s *Server) update(i int, fields map[string]any) map[string]any {
	doc := s.Company(i)
	for k, v := range fields {
		if k == "_id" || strings.HasPrefix(k, "__") {
			continue
		}
		doc[k] = v
	}
	doc["modified_on"] = isoMillis(s.Now().UTC().Truncate(time.Millisecond))
	s.mu.Lock()
	s.w.companyDocs[i] = doc
	if code, _ := doc["code"].(string); code != "" {
		s.w.codeIndex[code] = i
	}
	s.mu.Unlock()
	return doc
}

// companyByCodeIndex finds a company by code, created or generated.
func (s *Server) companyByCodeIndex(code string) (int, bool) {
	s.mu.Lock()
	i, ok := s.w.codeIndex[code]
	s.mu.Unlock()
	if ok {
		return i, true
	}
	c := s.catalog()
	return c.CompanyIndexByCode(code, c.Companies)
}

// CompanyByCode returns the company with that code as the server now serves
// it, for tests.
func (s *Server) CompanyByCode(code string) (map[string]any, bool) {
	i, ok := s.companyByCodeIndex(code)
	if !ok {
		return nil, false
	}
	return s.Company(i), true
}

// createOrder serves PUT /api/order/new. The fields it requires are the
// ones S9 sends (shared/nuorder-api.md §7.3); an order number that exists
// answers 409 (assumed: no recording shows NuOrder's answer), a retailer
// code no company has 400. The order is created as pending (assumed too:
// an order that arrives by API waits for approval like one a rep enters).
func (s *Server) createOrder(w http.ResponseWriter, r *http.Request) {
	var doc map[string]any
	if !decodeBody(w, r, &doc) {
		return
	}
	var missing []string
	for _, k := range []string{"order_number", "external_id", "currency_code", "ship_start", "ship_end"} {
		if v, _ := doc[k].(string); v == "" {
			missing = append(missing, k)
		}
	}
	retailer, _ := doc["retailer"].(map[string]any)
	code, _ := retailer["retailer_code"].(string)
	if email, _ := retailer["buyer_email"].(string); code == "" || email == "" {
		missing = append(missing, "retailer.retailer_code", "retailer.buyer_email")
	}
	if lines, _ := doc["line_items"].([]any); len(lines) == 0 {
		missing = append(missing, "line_items")
	}
	if len(missing) > 0 {
		writeError(w, http.StatusBadRequest, "missing required fields: "+strings.Join(missing, ", "))
		return
	}
	if _, ok := s.companyByCodeIndex(code); !ok {
		writeError(w, http.StatusBadRequest, "retailer not found: "+code)
		return
	}
	number := doc["order_number"].(string)
	s.mu.Lock()
	_, taken := s.w.orderNumbers[number]
	if v, err := strconv.Atoi(number); err == nil && v >= 100000 && v-100000 < s.opts.Catalog.Orders {
		taken = true
	}
	if taken {
		s.mu.Unlock()
		writeError(w, http.StatusConflict, "order number already exists: "+number)
		return
	}
	i := s.opts.Catalog.Orders + len(s.w.orderDocs)
	now := isoMillis(s.Now().UTC().Truncate(time.Millisecond))
	id := s.opts.Catalog.OrderID(i)
	doc["_id"], doc["status"], doc["created_on"], doc["modified_on"], doc["shipments"] = id, "pending", now, now, []any{}
	s.w.orderDocs[i] = doc
	s.w.orderNumbers[number] = i
	s.w.orderIDs[id] = i
	s.mu.Unlock() // the answer is written without holding the server
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(doc)
}

// CreatedOrders returns the orders created through the API, in order.
func (s *Server) CreatedOrders() []map[string]any {
	s.mu.Lock()
	n := len(s.w.orderDocs)
	s.mu.Unlock()
	out := make([]map[string]any, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, s.Order(s.opts.Catalog.Orders+i))
	}
	return out
}

// StatusSends returns how many status requests each order received, by
// order index (a test's way to see that no status was sent twice).
func (s *Server) StatusSends() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.statusSends))
	for i, n := range s.statusSends {
		out[i] = n
	}
	return out
}

// ReplenishSends returns how many times each SKU was sent in a bulk
// replenishment request, by SKU id.
func (s *Server) ReplenishSends() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.replenishSends))
	for k, n := range s.replenishSends {
		out[k] = n
	}
	return out
}

// ReplenishBatches returns the SKU ids of each replenishment request, in the
// order the requests arrived, whether the fake then accepted them or not.
func (s *Server) ReplenishBatches() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]string, len(s.replenishBatches))
	for i, b := range s.replenishBatches {
		out[i] = append([]string(nil), b...)
	}
	return out
}

// SetReplenishments replaces what the fake holds for a SKU in a warehouse,
// as someone editing stock in NuOrder's UI would.
func (s *Server) SetReplenishments(warehouseID, skuID string, rs []Replenishment) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.w.replenishments[warehouseID]
	if m == nil {
		m = map[string][]Replenishment{}
		s.w.replenishments[warehouseID] = m
	}
	m[skuID] = rs
}
