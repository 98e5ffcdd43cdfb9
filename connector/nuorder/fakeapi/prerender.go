package fakeapi

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
)

// Pre-rendered listings, for benchmarks: generating and encoding order
// documents costs the fake more CPU than reading them costs the connector,
// so a benchmark of the connector renders each status listing once, into a
// file, and the fake serves the file's bytes (sendfile) while no order has
// been changed through the API or the test hooks.

// listingFile is where the order listing of a status is rendered.
func (s *Server) listingFile(status string) string {
	c := s.opts.Catalog
	return filepath.Join(s.opts.Prerender, fmt.Sprintf("orders-seed%d-n%d-%s.json", c.Seed, c.Orders, status))
}

// OrderListingStatuses lists the statuses the generated orders have, sorted.
func OrderListingStatuses() []string {
	seen := map[string]bool{}
	var out []string
	for _, st := range orderStatuses {
		if !seen[st] {
			seen[st] = true
			out = append(out, st)
		}
	}
	sort.Strings(out)
	return out
}

// PrerenderListings renders the order listing of every status into
// Options.Prerender, unless a file of the same catalog is already there
// (files are named by seed and size, and written whole or not at all). It
// returns the files' paths by status.
func (s *Server) PrerenderListings() (map[string]string, error) {
	if s.opts.Prerender == "" {
		return nil, fmt.Errorf("no prerender folder configured")
	}
	if err := os.MkdirAll(s.opts.Prerender, 0o755); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, status := range OrderListingStatuses() {
		path := s.listingFile(status)
		out[status] = path
		if _, err := os.Stat(path); err == nil {
			continue
		}
		tmp, err := os.CreateTemp(s.opts.Prerender, ".render-*")
		if err != nil {
			return nil, err
		}
		bw := bufio.NewWriterSize(tmp, 1<<20)
		writeArray(bw, s.opts.Catalog.Orders, func(i int) any {
			if s.opts.Catalog.OrderStatus(i) != status {
				return nil
			}
			return s.opts.Catalog.Order(i)
		})
		err = bw.Flush()
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), path)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return nil, err
		}
	}
	return out, nil
}

// servePrerendered answers an order listing from its rendered file, and
// says whether it did: not when prerendering is off, an order has changed
// (the file would be stale) or the file is missing.
func (s *Server) servePrerendered(w http.ResponseWriter, status string) bool {
	if s.opts.Prerender == "" {
		return false
	}
	s.mu.Lock()
	changed := len(s.orders) > 0 || len(s.w.orderDocs) > 0
	s.mu.Unlock()
	if changed {
		return false
	}
	f, err := os.Open(s.listingFile(status))
	if err != nil {
		return false
	}
	defer f.Close()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	io.Copy(w, f)
	return true
}
