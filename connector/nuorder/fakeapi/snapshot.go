package fakeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Snapshots: what the fake was sent (changes on top of the generated
// catalog, and everything the write endpoints keep), so a sandbox that is
// started again remembers it, as NuOrder would.

// snapshot is the JSON form of a server's changes.
type snapshot struct {
	Version        int                                   `json:"version"`
	Orders         map[int]changeJSON                    `json:"orders,omitempty"`
	Companies      map[int]changeJSON                    `json:"companies,omitempty"`
	Products       map[int]changeJSON                    `json:"products,omitempty"`
	AddedCompanies int                                   `json:"added_companies,omitempty"`
	AddedProducts  int                                   `json:"added_products,omitempty"`
	Replenishments map[string]map[string][]Replenishment `json:"replenishments,omitempty"`
	FlagRefreshes  [][]string                            `json:"flag_refreshes,omitempty"`
	CompanyDocs    map[int]map[string]any                `json:"company_docs,omitempty"`
	CodeIndex      map[string]int                        `json:"code_index,omitempty"`
	OrderDocs      map[int]map[string]any                `json:"order_docs,omitempty"`
	OrderNumbers   map[string]int                        `json:"order_numbers,omitempty"`
	OrderIDs       map[string]int                        `json:"order_ids,omitempty"`
}

type changeJSON struct {
	ModifiedOn time.Time      `json:"modified_on"`
	CreatedOn  time.Time      `json:"created_on,omitzero"`
	Status     string         `json:"status,omitempty"`
	Edited     bool           `json:"edited,omitempty"`
	Deleted    bool           `json:"deleted,omitempty"`
	Active     *bool          `json:"active,omitempty"`
	Fields     map[string]any `json:"fields,omitempty"`
}

func toJSON(m map[int]*change) map[int]changeJSON {
	out := make(map[int]changeJSON, len(m))
	for i, c := range m {
		out[i] = changeJSON{c.modifiedOn, c.createdOn, c.status, c.edited, c.deleted, c.active, c.fields}
	}
	return out
}

func fromJSON(m map[int]changeJSON) map[int]*change {
	out := make(map[int]*change, len(m))
	for i, c := range m {
		out[i] = &change{modifiedOn: c.ModifiedOn, createdOn: c.CreatedOn, status: c.Status, edited: c.Edited, deleted: c.Deleted, active: c.Active, fields: c.Fields}
	}
	return out
}

// Snapshot returns what the server was sent since it started (or was
// restored), as JSON for Restore.
func (s *Server) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(snapshot{Version: 1, Orders: toJSON(s.orders), Companies: toJSON(s.companies), Products: toJSON(s.products),
		AddedCompanies: s.addedCompanies, AddedProducts: s.addedProducts, Replenishments: s.w.replenishments, FlagRefreshes: s.w.flagRefreshes,
		CompanyDocs: s.w.companyDocs, CodeIndex: s.w.codeIndex, OrderDocs: s.w.orderDocs, OrderNumbers: s.w.orderNumbers, OrderIDs: s.w.orderIDs})
}

// Restore replaces the server's changes with a Snapshot's. It errors on a
// document that is not one.
func (s *Server) Restore(b []byte) error {
	var snap snapshot
	if err := json.Unmarshal(b, &snap); err != nil || snap.Version != 1 {
		return fmt.Errorf("not a snapshot of the fake NuOrder (version %d): %v", snap.Version, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.orders, s.companies, s.products = fromJSON(snap.Orders), fromJSON(snap.Companies), fromJSON(snap.Products)
	s.addedCompanies, s.addedProducts = snap.AddedCompanies, snap.AddedProducts
	w := newWrites()
	for k, v := range snap.Replenishments {
		w.replenishments[k] = v
	}
	w.flagRefreshes = snap.FlagRefreshes
	for k, v := range snap.CompanyDocs {
		w.companyDocs[k] = v
	}
	for k, v := range snap.CodeIndex {
		w.codeIndex[k] = v
	}
	for k, v := range snap.OrderDocs {
		w.orderDocs[k] = v
	}
	for k, v := range snap.OrderNumbers {
		w.orderNumbers[k] = v
	}
	for k, v := range snap.OrderIDs {
		w.orderIDs[k] = v
	}
	s.w = w
	return nil
}

// statusWriter remembers the status a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// discardBody is a ResponseWriter whose answer goes nowhere (LoseAnswer).
type discardBody struct{ h http.Header }

func (d discardBody) Header() http.Header         { return d.h }
func (d discardBody) Write(b []byte) (int, error) { return len(b), nil }
func (d discardBody) WriteHeader(int)             {}
