// Package fakeapi is a fake NuOrder API: a real HTTP server on loopback that
// verifies OAuth 1.0a signatures the way NuOrder does and serves generated,
// realistic documents (custom fields included) at any scale. It serves
// exactly the endpoint table of package api, so the client and the fake cannot
// drift apart. Tests, benchmarks and the connector's --sandbox mode use it.
package fakeapi

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"pipehost/connector/nuorder/api"
)

// Options configure a fake API.
type Options struct {
	// Credentials are the only ones the fake accepts.
	Credentials Credentials
	// Catalog generates the documents served.
	Catalog Catalog
	// Addr is the loopback address to listen on; empty: a free port on
	// 127.0.0.1.
	Addr string
	// Latency, when positive, holds every answer back this long: the
	// round trip to a NuOrder across the internet, for benchmarks of what
	// runs in parallel.
	Latency time.Duration
	// RateLimit, when positive, is the requests per second the fake
	// answers, with a burst of RateBurst (default 5): above it, it answers
	// 429 with Retry-After: 1, as an API gateway does. NuOrder's own limit
	// is undocumented (shared/nuorder-api.md §2: "5 concurrent requests" is
	// a claim); this lets tests hold the connector to a limit.
	RateLimit float64
	RateBurst float64
	// Prerender, when not empty, is a folder of pre-rendered order
	// listings (see PrerenderListings), served as files while no order has
	// changed: benchmarks measure the connector, not the fake's encoder.
	Prerender string
	// Scheme, when set (SchemeNuOrder or SchemeRFC5849), is the only
	// signature scheme the fake accepts; the other is answered 401.
	Scheme string
	// Changed, when set, is called after every request that may have
	// changed what the fake holds (a write answered 2xx), outside its
	// lock: the sandbox saves a Snapshot there.
	Changed func()
}

// Server is a running fake NuOrder API.
type Server struct {
	opts Options
	ln   net.Listener
	srv  *http.Server
	mux  *http.ServeMux

	mu     sync.Mutex
	counts map[string]int
	faults map[string]*Fault
	// Changes made since the server started, on top of the generated
	// catalog: memory grows with the number of changes, not the catalog.
	orders, companies, products map[int]*change
	addedCompanies              int
	addedProducts               int // products created by AddProducts, numbered from Catalog.Products
	w                           writes
	statusSends                 map[int]int    // status requests received, by order
	bySigScheme                 map[string]int // correctly signed requests, by signature scheme
	replenishSends              map[string]int // SKUs sent in replenishment requests, by SKU id
	replenishBatches            [][]string     // SKU ids of each replenishment request, in arrival order
	bodyBytes                   atomic.Int64
	tooMany                     int       // 429s answered by RateLimit
	tokens                      float64   // of the RateLimit bucket
	refilled                    time.Time // when tokens was last topped up
	// Now is the server's clock, stamped on changed documents.
	Now func() time.Time
}

// change overrides fields of a generated document.
type change struct {
	modifiedOn time.Time
	createdOn  time.Time // set for documents added after the start
	status     string
	edited     bool
	deleted    bool // gone from NuOrder: in no listing, 404 by id
	active     *bool
	fields     map[string]any // fields replaced through the API
}

// Fault makes the server misbehave on one endpoint, the way a real API under
// load does.
type Fault struct {
	// Status, when set, answers with this status and NuOrder's error body
	// (429, 500, 503...) instead of the document.
	Status int
	// RetryAfter is sent as the Retry-After header with Status.
	RetryAfter string
	// DropAfterBytes, when positive, cuts the connection after this many
	// bytes of the body, so the client sees an unexpected EOF.
	DropAfterBytes int
	// Delay holds the answer back this long (or until the client gives
	// up): a NuOrder that accepts the request and does not answer.
	Delay time.Duration
	// StallAfterBytes, when positive, sends this many bytes of the body and
	// then nothing more until the client gives up: a hung connection.
	StallAfterBytes int
	// TruncateAfterBytes, when positive, ends the response cleanly after
	// this many bytes of the body: a truncated array, no transport error.
	TruncateAfterBytes int
	// HTML answers 200 with an HTML error page, as a proxy or CDN in front
	// of an API sometimes does.
	HTML bool
	// RedirectTo answers 302 with this base URL and the request's path.
	RedirectTo string
	// HugeElement, when positive, answers an array whose one element holds
	// a string of this many bytes: a document without end.
	HugeElement int
	// LoseAnswer, when set, lets the request be carried out (an order is
	// created) and then answers this status (502, say) in place of the
	// answer, as a proxy whose upstream connection broke does: the client
	// cannot know whether its request took effect.
	LoseAnswer int
	// ErrorIn200, when set, answers 200 with NuOrder's error document
	// carrying this code ({"code": 401, "message": ...}), as gateways in
	// front of an API sometimes do.
	ErrorIn200 int
	// Nested, when positive, answers a listing whose one element is an
	// array nested this deep: a listing of the wrong shape.
	Nested int
	// GzipElement, when positive, answers like HugeElement, gzip-compressed
	// (Content-Encoding: gzip): a small body that expands into one element
	// of this many bytes.
	GzipElement int
	// Endless answers a body that never ends, until the client goes away:
	// "spaces" is "[" then blanks; "orders" is "[" then valid orders.
	Endless string
	// Times is how many matching requests get the fault; 0 means all.
	Times int
	// Skip lets this many matching requests through unharmed first.
	Skip int
}

// SandboxCredentials are the credentials of the demo sandbox. They are not
// secrets: they only open a fake API on loopback.
var SandboxCredentials = Credentials{
	ConsumerKey: "sandbox-consumer-key", ConsumerSecret: "sandbox-consumer-secret",
	Token: "sandbox-token", TokenSecret: "sandbox-token-secret",
}

// New builds a fake API without starting it; Handler serves it.
func New(opts Options) *Server {
	s := &Server{opts: opts, mux: http.NewServeMux(), counts: map[string]int{}, faults: map[string]*Fault{},
		orders: map[int]*change{}, companies: map[int]*change{}, products: map[int]*change{}, Now: time.Now, w: newWrites()}
	handlers := map[api.Endpoint]http.HandlerFunc{
		api.ProductByID:            s.product,
		api.ProductList:            s.productList,
		api.ProductSeasonList:      s.productList,
		api.CompanyCodes:           s.companyCodes,
		api.CompanyByCode:          s.companyByCode,
		api.CompanyByID:            s.companyByID,
		api.OrdersDetail:           s.ordersDetail,
		api.OrdersList:             s.ordersList,
		api.Replenishments:         s.replenish,
		api.ReplenishmentsDelete:   s.deleteReplenishments,
		api.InventoryFlags:         s.flags,
		api.OrderByID:              s.getOrder,
		api.OrderByNumber:          s.getOrder,
		api.OrderUpdate:            s.updateOrder,
		api.OrderSetStatus:         s.setOrderStatus,
		api.OrderSetStatusByNumber: s.setOrderStatus,
		api.OrderCreate:            s.createOrder,
		api.CompanyCreate:          s.createCompany,
		api.CompanyForce:           s.forceCompany,
		api.CompanyUpdate:          s.updateCompany,
	}
	for _, e := range api.All {
		h, ok := handlers[e]
		if !ok {
			panic("fakeapi: no handler for " + e.Pattern())
		}
		s.mux.HandleFunc(e.Pattern(), h)
	}
	return s
}

// Start builds a fake API and serves it on a loopback port until Close.
func Start(opts Options) (*Server, error) {
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	s := New(opts)
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the base URL of a started server ("http://127.0.0.1:port").
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops a started server.
func (s *Server) Close() error { return s.srv.Close() }

// Requests returns how many authenticated requests matched the endpoint.
func (s *Server) Requests(e api.Endpoint) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[e.Pattern()]
}

// SignedWith returns how many correctly signed requests came in each
// signature scheme (SchemeNuOrder, SchemeRFC5849), accepted or not.
func (s *Server) SignedWith() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, n := range s.bySigScheme {
		out[k] = n
	}
	return out
}

// TotalRequests returns how many authenticated requests the server answered.
func (s *Server) TotalRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// writeError sends NuOrder's error body.
func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(api.Error{Code: status, Message: msg})
}

// ServeHTTP authenticates the request, then routes it through the endpoint
// table. A bad or missing signature gets 401 with NuOrder's error body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == StatsPath {
		writeJSON(w, s.Stats())
		return
	}
	w.Header().Set("X-Powered-By", "Express")
	w.Header().Set("Request-Token", fmt.Sprint(time.Now().UnixMilli()))
	oauth, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err == nil {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		var signed string
		signed, err = VerifyScheme(r.Method, scheme+"://"+r.Host+r.URL.RequestURI(), oauth, s.opts.Credentials, s.opts.Scheme)
		if signed != "" {
			s.mu.Lock()
			if s.bySigScheme == nil {
				s.bySigScheme = map[string]int{}
			}
			s.bySigScheme[signed]++
			s.mu.Unlock()
		}
	}
	if err != nil {
		writeError(w, http.StatusUnauthorized, "unauthorized: "+err.Error())
		return
	}
	_, pattern := s.mux.Handler(r)
	if pattern == "" {
		writeError(w, http.StatusNotFound, "route not found: "+r.Method+" "+r.URL.Path)
		return
	}
	s.mu.Lock()
	if s.opts.RateLimit > 0 && !s.take() {
		s.tooMany++
		s.mu.Unlock()
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, "rate limit exceeded")
		return
	}
	s.counts[pattern]++
	latency := s.opts.Latency
	var fault Fault
	if f, ok := s.faults[pattern]; ok && f.Skip > 0 {
		f.Skip--
	} else if ok {
		fault = *f
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				delete(s.faults, pattern)
			}
		}
	}
	s.mu.Unlock()
	if latency > 0 {
		select {
		case <-time.After(latency):
		case <-r.Context().Done():
			return
		}
	}
	if fault.Delay > 0 {
		select {
		case <-time.After(fault.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if fault.Status != 0 {
		if fault.RetryAfter != "" {
			w.Header().Set("Retry-After", fault.RetryAfter)
		}
		writeError(w, fault.Status, http.StatusText(fault.Status))
		return
	}
	if fault.HTML {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>\n")
		return
	}
	if fault.HugeElement > 0 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString(`[{"_id":"000000000000000000000000","notes":"`)
		chunk := strings.Repeat("a", 64<<10)
		for n := 0; n < fault.HugeElement; n += len(chunk) {
			if _, err := bw.WriteString(chunk); err != nil {
				return
			}
		}
		bw.WriteString(`"}]`)
		bw.Flush()
		return
	}
	if fault.ErrorIn200 != 0 {
		writeJSON(w, map[string]any{"code": fault.ErrorIn200, "message": http.StatusText(fault.ErrorIn200)})
		return
	}
	if fault.Nested > 0 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		fmt.Fprint(w, "["+strings.Repeat("[", fault.Nested)+"1"+strings.Repeat("]", fault.Nested)+"]")
		return
	}
	if fault.GzipElement > 0 {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestCompression)
		zw.Write([]byte(`[{"_id":"000000000000000000000000","notes":"`))
		chunk := []byte(strings.Repeat("a", 64<<10))
		for n := 0; n < fault.GzipElement; n += len(chunk) {
			if _, err := zw.Write(chunk); err != nil {
				return
			}
		}
		zw.Write([]byte(`"}]`))
		zw.Close()
		return
	}
	if fault.Endless != "" {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		bw := bufio.NewWriterSize(w, 64<<10)
		bw.WriteString("[")
		piece := strings.Repeat(" ", 64<<10)
		if fault.Endless == "orders" {
			doc, _ := json.Marshal(s.opts.Catalog.Order(0))
			piece = strings.Repeat(string(doc)+",", 16)
		}
		for r.Context().Err() == nil {
			if _, err := bw.WriteString(piece); err != nil {
				return
			}
		}
		return
	}
	if fault.RedirectTo != "" {
		http.Redirect(w, r, fault.RedirectTo+r.URL.RequestURI(), http.StatusFound)
		return
	}
	w = &countingWriter{ResponseWriter: w, n: &s.bodyBytes}
	if fault.TruncateAfterBytes > 0 {
		w = &truncateWriter{ResponseWriter: w, left: fault.TruncateAfterBytes}
	}
	if fault.DropAfterBytes > 0 {
		w = &dropWriter{ResponseWriter: w, left: fault.DropAfterBytes}
	}
	if fault.StallAfterBytes > 0 {
		w = &dropWriter{ResponseWriter: w, left: fault.StallAfterBytes, stall: r.Context().Done()}
	}
	if fault.LoseAnswer != 0 {
		sw := &statusWriter{ResponseWriter: discardBody{w.Header()}}
		s.mux.ServeHTTP(sw, r)
		if sw.status >= 200 && sw.status < 300 && s.opts.Changed != nil {
			s.opts.Changed()
		}
		writeError(w, fault.LoseAnswer, http.StatusText(fault.LoseAnswer))
		return
	}
	if s.opts.Changed == nil || r.Method == http.MethodGet {
		s.mux.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	s.mux.ServeHTTP(sw, r)
	if sw.status >= 200 && sw.status < 300 {
		s.opts.Changed()
	}
}

// StatsPath is the fake's own endpoint (not NuOrder's, and needing no
// signature) answering Stats as JSON, for a benchmark that runs the fake as
// another process.
const StatsPath = "/_fake/stats"

// Stats counts what the fake answered since it started.
type Stats struct {
	// Requests counts authenticated requests that matched an endpoint.
	Requests int `json:"requests"`
	// BodyBytes counts the bytes of their response bodies.
	BodyBytes int64 `json:"body_bytes"`
	// TooMany counts the requests refused with 429 by Options.RateLimit
	// (not counted in Requests).
	TooMany int `json:"too_many"`
}

// take takes a token of the rate limit's bucket, refilled at RateLimit per
// second up to RateBurst; s.mu is held.
func (s *Server) take() bool {
	burst := s.opts.RateBurst
	if burst <= 0 {
		burst = 5
	}
	now := time.Now()
	if s.refilled.IsZero() {
		s.tokens = burst
	} else {
		s.tokens = min(burst, s.tokens+now.Sub(s.refilled).Seconds()*s.opts.RateLimit)
	}
	s.refilled = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// Stats returns what the server answered since it started.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{BodyBytes: s.bodyBytes.Load(), TooMany: s.tooMany}
	for _, n := range s.counts {
		st.Requests += n
	}
	return st
}

// countingWriter adds the body bytes written through it to n, keeping the
// sendfile path of the writer it wraps.
type countingWriter struct {
	http.ResponseWriter
	n *atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.ResponseWriter.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingWriter) ReadFrom(r io.Reader) (int64, error) {
	var n int64
	var err error
	if rf, ok := c.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{c.ResponseWriter}, r)
	}
	c.n.Add(n)
	return n, err
}

// Flush passes a flush on, for streamed answers.
func (c *countingWriter) Flush() {
	if f, ok := c.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// InjectFault makes requests matching e misbehave as f says, replacing any
// fault set before for e.
func (s *Server) InjectFault(e api.Endpoint, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[e.Pattern()] = &f
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string]*Fault{}
}

// dropWriter cuts the connection once its byte budget is spent, or with
// stall set, waits for it to close first (sending nothing more).
type dropWriter struct {
	http.ResponseWriter
	left  int
	stall <-chan struct{}
}

func (d *dropWriter) Write(p []byte) (int, error) {
	if len(p) >= d.left {
		d.ResponseWriter.Write(p[:d.left])
		if f, ok := d.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		if d.stall != nil {
			<-d.stall
		}
		panic(http.ErrAbortHandler) // net/http closes the connection mid-body
	}
	d.left -= len(p)
	return d.ResponseWriter.Write(p)
}

// truncateWriter swallows the body after its byte budget: the response
// ends normally, short.
type truncateWriter struct {
	http.ResponseWriter
	left int
}

func (d *truncateWriter) Write(p []byte) (int, error) {
	if d.left <= 0 {
		return len(p), nil
	}
	if len(p) > d.left {
		d.ResponseWriter.Write(p[:d.left])
		d.left = 0
		return len(p), nil
	}
	d.left -= len(p)
	return d.ResponseWriter.Write(p)
}

func (d *dropWriter) Flush() {
	if f, ok := d.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v)
}

func (s *Server) product(w http.ResponseWriter, r *http.Request) {
	i, ok := s.catalog().ProductIndex(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, "product not found")
		return
	}
	writeJSON(w, s.Product(i))
}

// productList streams a bare JSON array of product ids, optionally of one
// season, without building it in memory.
func (s *Server) productList(w http.ResponseWriter, r *http.Request) {
	season := r.PathValue("season")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	bw := bufio.NewWriterSize(w, 64<<10)
	bw.WriteByte('[')
	first := true
	c := s.catalog()
	for i := 0; i < c.Products; i++ {
		if season != "" && !strings.EqualFold(seasons[i%len(seasons)], season) {
			continue
		}
		if !first {
			bw.WriteByte(',')
		}
		first = false
		bw.WriteString(`"` + c.ProductID(i) + `"`)
	}
	bw.WriteString("]\n")
	bw.Flush()
}
