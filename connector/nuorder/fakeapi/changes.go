package fakeapi

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// apply stamps a change onto a generated document.
func (ch *change) apply(doc map[string]any) map[string]any {
	if ch == nil {
		return doc
	}
	if !ch.createdOn.IsZero() {
		doc["created_on"] = isoMillis(ch.createdOn)
	}
	if !ch.modifiedOn.IsZero() {
		doc["modified_on"] = isoMillis(ch.modifiedOn)
	}
	if ch.status != "" {
		doc["status"] = ch.status
	}
	if ch.edited {
		doc["edited"] = true
		doc["edited_on"] = isoMillis(ch.modifiedOn)
		doc["notes"] = "edited after approval"
	}
	if ch.active != nil {
		doc["active"] = *ch.active
	}
	for k, v := range ch.fields {
		doc[k] = v
	}
	return doc
}

func (s *Server) changeOf(m map[int]*change, i int) *change {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch, ok := m[i]; ok {
		cp := *ch
		return &cp
	}
	return nil
}

// touch records a change to document i of m, stamped now, and returns it.
func (s *Server) touch(m map[int]*change, i int) *change {
	ch, ok := m[i]
	if !ok {
		ch = &change{}
		m[i] = ch
	}
	ch.modifiedOn = s.Now().UTC().Truncate(time.Millisecond)
	return ch
}

// Product is product i as the server now serves it.
func (s *Server) Product(i int) map[string]any {
	return s.changeOf(s.products, i).apply(s.opts.Catalog.Product(i))
}

// Company is company i as the server now serves it.
func (s *Server) Company(i int) map[string]any {
	s.mu.Lock()
	doc, written := s.w.companyDocs[i]
	s.mu.Unlock()
	if written {
		cp := make(map[string]any, len(doc))
		for k, v := range doc {
			cp[k] = v
		}
		return cp
	}
	return s.changeOf(s.companies, i).apply(s.catalog().Company(i))
}

// Order is order i as the server now serves it: generated, or created
// through the API (i from Catalog.Orders on).
func (s *Server) Order(i int) map[string]any {
	if i >= s.opts.Catalog.Orders {
		s.mu.Lock()
		doc := make(map[string]any, len(s.w.orderDocs[i]))
		for k, v := range s.w.orderDocs[i] {
			doc[k] = v
		}
		s.mu.Unlock()
		return s.changeOf(s.orders, i).apply(doc)
	}
	return s.changeOf(s.orders, i).apply(s.opts.Catalog.Order(i))
}

// orderCount is how many orders exist: generated and created.
func (s *Server) orderCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts.Catalog.Orders + len(s.w.orderDocs)
}

// catalog is the generated catalog, counting companies added since start.
func (s *Server) catalog() Catalog {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.opts.Catalog
	c.Companies += s.addedCompanies
	c.Products += s.addedProducts
	return c
}

// orderStatus is order i's status now; "" for a deleted order.
func (s *Server) orderStatus(i int) string {
	if ch := s.changeOf(s.orders, i); ch != nil && ch.deleted {
		return ""
	} else if ch != nil && ch.status != "" {
		return ch.status
	}
	if i >= s.opts.Catalog.Orders {
		s.mu.Lock()
		defer s.mu.Unlock()
		st, _ := s.w.orderDocs[i]["status"].(string)
		return st
	}
	return s.opts.Catalog.OrderStatus(i)
}

// EditOrders marks orders as edited now: modified_on, edited and edited_on
// change, the way an edit after approval shows in NuOrder.
func (s *Server) EditOrders(idx ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range idx {
		s.touch(s.orders, i).edited = true
	}
}

// PatchOrder replaces fields of order i now, as an edit in NuOrder does
// (modified_on moves): for tests that need particular values, such as a
// NUL character a user pasted into a note.
func (s *Server) PatchOrder(i int, fields map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.touch(s.orders, i)
	if ch.fields == nil {
		ch.fields = map[string]any{}
	}
	for k, v := range fields {
		ch.fields[k] = v
	}
}

// SetOrderStatus moves order i to a status ("processed", "shipped"...) the
// way NuOrder does: status and listing membership change, modified_on does
// not. Recorded NuOrder traffic shows it (shared/nuorder-api.md §13.1: S1's
// nuorder_order_process.yml answers "status":"processed" with the
// modified_on the order had when it was created; cancel_order.yml likewise).
// It reports whether the status changed.
func (s *Server) SetOrderStatus(i int, status string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch, ok := s.orders[i]
	if !ok {
		ch = &change{}
		s.orders[i] = ch
	}
	cur := ch.status
	if cur == "" {
		cur = s.opts.Catalog.OrderStatus(i)
	}
	ch.status = status
	return cur != status
}

// DeleteOrders removes orders from NuOrder: they leave every listing and
// reading them by id answers 404.
func (s *Server) DeleteOrders(idx ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range idx {
		ch, ok := s.orders[i]
		if !ok {
			ch = &change{}
			s.orders[i] = ch
		}
		ch.deleted = true
	}
}

// UpdateCompanies marks companies as modified now.
func (s *Server) UpdateCompanies(idx ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range idx {
		s.touch(s.companies, i)
	}
}

// AddCompanies creates n companies now and returns their numbers.
func (s *Server) AddCompanies(n int) []int {
	return s.add(s.companies, s.opts.Catalog.Companies, &s.addedCompanies, n)
}

// AddProducts creates n products now and returns their numbers.
func (s *Server) AddProducts(n int) []int {
	return s.add(s.products, s.opts.Catalog.Products, &s.addedProducts, n)
}

// add creates n documents of one kind now, numbered after the generated
// ones (base) and those added before (*added).
func (s *Server) add(m map[int]*change, base int, added *int, n int) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for k := 0; k < n; k++ {
		i := base + *added
		*added++
		ch := s.touch(m, i)
		ch.createdOn = ch.modifiedOn
		out = append(out, i)
	}
	return out
}

// UpdateProducts marks products as modified now; active, when not nil, sets
// their active flag.
func (s *Server) UpdateProducts(active *bool, idx ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range idx {
		s.touch(s.products, i).active = active
	}
}

// streamArray writes a bare JSON array of n elements, skipping nil ones,
// through a buffer, without building it in memory.
func streamArray(w http.ResponseWriter, n int, elem func(i int) any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	writeArray(bw, n, elem)
	bw.Flush()
}

// writeArray writes the JSON array of the non-nil elem(i), i < n.
func writeArray(bw *bufio.Writer, n int, elem func(i int) any) {
	enc := json.NewEncoder(bw)
	bw.WriteByte('[')
	first := true
	for i := 0; i < n; i++ {
		v := elem(i)
		if v == nil {
			continue
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		enc.Encode(v) // Encode adds a newline, which JSON allows between elements
	}
	bw.WriteString("]\n")
}

// companyCodes serves GET /api/companies/codes/list: a bare array of codes,
// one per company. A company without a code (S1 records "code": "") lists
// as "", so the listing keeps one element per company.
func (s *Server) companyCodes(w http.ResponseWriter, _ *http.Request) {
	c := s.catalog()
	streamArray(w, c.Companies, func(i int) any {
		code, _ := s.Company(i)["code"].(string)
		return code
	})
}

func (s *Server) companyByCode(w http.ResponseWriter, r *http.Request) {
	i, ok := s.companyByCodeIndex(r.PathValue("code"))
	if !ok {
		writeError(w, http.StatusNotFound, "company not found")
		return
	}
	writeJSON(w, s.Company(i))
}

func (s *Server) companyByID(w http.ResponseWriter, r *http.Request) {
	c := s.catalog()
	i, ok := c.CompanyIndex(r.PathValue("id"), c.Companies)
	if !ok {
		writeError(w, http.StatusNotFound, "company not found")
		return
	}
	writeJSON(w, s.Company(i))
}

// ordersDetail serves GET /api/orders/{status}/detail: every order in that
// status, full documents, one unpaged bare array, streamed as generated.
// The status is matched case-insensitively, as NuOrder does.
// ordersList serves GET /api/orders/{status}/list: the _id of every order
// in the status, a bare array of strings, in the order /detail lists them
// (shared/nuorder-api.md §7.2, §14.2: S4, S5, S7 use it; its answer is
// not recorded, the shape is what they parse). The status is matched
// case-insensitively, as S7's "Approved" works.
func (s *Server) ordersList(w http.ResponseWriter, r *http.Request) {
	status := strings.ToLower(r.PathValue("status"))
	streamArray(w, s.orderCount(), func(i int) any {
		if s.orderStatus(i) != status {
			return nil
		}
		if i < s.opts.Catalog.Orders {
			return s.opts.Catalog.OrderID(i) // without building the document
		}
		id, _ := s.Order(i)["_id"].(string)
		return id
	})
}

func (s *Server) ordersDetail(w http.ResponseWriter, r *http.Request) {
	status := strings.ToLower(r.PathValue("status"))
	if s.servePrerendered(w, status) {
		return
	}
	streamArray(w, s.orderCount(), func(i int) any {
		if s.orderStatus(i) != status {
			return nil
		}
		return s.Order(i)
	})
}
