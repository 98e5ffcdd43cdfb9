package nuorder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/dghubble/oauth1"
	"github.com/hashicorp/go-hclog"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/internal/jsonscan"
)

// APIError is an error status from NuOrder, with the message of its
// {"code","message"} body. It never holds credentials.
type APIError struct {
	Method string
	Path   string // path only: no host, no query
	Status int
	// Message is NuOrder's message, or the start of a non-JSON body.
	Message string
}

// RowLevel says whether NuOrder refused what one request carried (a 4xx
// for that order, SKU or company: the rows become rejects and the push goes
// on) rather than the push itself: 401 (credentials) and 403 (permissions)
// would refuse every row alike, so they fail the push, as they fail a pull,
// instead of turning every row into a reject under an "ok".
func (e *APIError) RowLevel() bool {
	return e.Status/100 == 4 && e.Status != http.StatusUnauthorized && e.Status != http.StatusForbidden
}

// Error says what NuOrder refused and, for 401, what to check.
func (e *APIError) Error() string {
	what := fmt.Sprintf("%s %s", e.Method, e.Path)
	if e.Status == http.StatusUnauthorized {
		return fmt.Sprintf("authentication refused by NuOrder (401 Unauthorized) on %s: %s; check consumer_key, consumer_secret, token and token_secret",
			what, e.Message)
	}
	return fmt.Sprintf("NuOrder answered %d %s to %s: %s", e.Status, http.StatusText(e.Status), what, e.Message)
}

// retryable says whether a status is worth another try.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}

// Client calls NuOrder with OAuth 1.0a signed requests (RFC 5849 HMAC-SHA1),
// bounded concurrency and retries.
type Client struct {
	base   string
	http   *http.Client
	sem    chan struct{}
	logger hclog.Logger
	// timeouts bound each request.
	timeouts Timeouts
	// pace spaces the starts of requests (max_requests_per_second).
	pace *pacer
	// stats counts requests by endpoint and status class (see Stats).
	statsMu sync.Mutex
	stats   connector.Stats
	// maxDocument bounds one element of a listing (0: no bound).
	maxDocument int64

	// MaxAttempts is how many times one request is tried before its error
	// is returned.
	MaxAttempts int
	// BaseBackoff is the first retry's delay; each retry doubles it, with
	// full jitter, up to MaxBackoff. A Retry-After header overrides it.
	BaseBackoff, MaxBackoff time.Duration
}

// Credentials are the four OAuth values NuOrder issues for an API connection.
type Credentials struct {
	ConsumerKey, ConsumerSecret, Token, TokenSecret string
}

// Timeouts bound every NuOrder request, so a host that accepts a connection
// and then says nothing (or stops in the middle of an answer) fails the
// request instead of hanging the run. A timed-out request is retried like a
// 5xx, then fails naming the endpoint and the timeout.
type Timeouts struct {
	// Connect bounds the TCP connect and the TLS handshake, each.
	Connect time.Duration
	// Response bounds the wait from sending a request to the response
	// headers. NuOrder produces a whole status listing before it answers,
	// so this is generous by default.
	Response time.Duration
	// Idle bounds the silence between two reads of a response body: a
	// listing may take minutes to stream, but never stalls that long.
	Idle time.Duration
	// Answer bounds one whole answer, from the request to its last byte:
	// a body that never ends (spaces after "[", orders without end) fails
	// there instead of running forever.
	Answer time.Duration
	// AnswerBytes bounds one answer's body after decompression (a small
	// gzip body can expand into gigabytes).
	AnswerBytes int64
}

// DefaultTimeouts are the timeouts of a connector whose config sets none.
// An answer may take 2 hours and hold 16 GiB: the largest listing of a
// 1M-order account (about 3.7 GB in all statuses) streams in minutes at the
// plugin's 20-50 MB/s, well within both.
var DefaultTimeouts = Timeouts{Connect: 10 * time.Second, Response: 120 * time.Second, Idle: 60 * time.Second,
	Answer: 2 * time.Hour, AnswerBytes: 16 << 30}

// NewClient returns a client for the NuOrder host at base. At most inFlight
// requests run at once (NuOrder is said to allow 5). Redirects to another
// host are refused: the oauth1 transport would sign the request for it.
func NewClient(base string, creds Credentials, inFlight int, timeouts Timeouts, logger hclog.Logger) *Client {
	if inFlight < 1 {
		inFlight = 1
	}
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: timeouts.Connect, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: inFlight,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: timeouts.Connect,
	}
	ctx := context.WithValue(context.Background(), oauth1.HTTPClient, &http.Client{Transport: transport})
	hc := oauth1.NewConfig(creds.ConsumerKey, creds.ConsumerSecret).Client(ctx, oauth1.NewToken(creds.Token, creds.TokenSecret))
	hc.Timeout = 0 // bodies are streamed: Timeouts bound each phase instead
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if from := via[0].URL; req.URL.Host != from.Host || req.URL.Scheme != from.Scheme {
			return &redirectError{from: from.Scheme + "://" + from.Host, to: req.URL.Scheme + "://" + req.URL.Host}
		}
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		return nil
	}
	return &Client{
		base: strings.TrimRight(base, "/"), http: hc, sem: make(chan struct{}, inFlight), logger: logger, timeouts: timeouts,
		maxDocument: DefaultMaxDocument,
		MaxAttempts: 5, BaseBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second,
	}
}

// redirectError is a redirect to another host, which is never followed.
type redirectError struct{ from, to string }

func (e *redirectError) Error() string {
	return fmt.Sprintf("NuOrder at %s answered with a redirect to another host, %s; not followed (it would carry signed requests there, and its data would be taken as NuOrder's): check base_url", e.from, e.to)
}

// timeoutError is a request that hit one of the Timeouts.
type timeoutError struct {
	method, path, what, attr string
	after                    time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("NuOrder %s %s %s within %v (%s)", e.what, e.method, e.path, e.after, e.attr)
}

// do sends one request, retrying 429, 5xx and transport errors, and hands the
// successful response body to read. A retry happens only while read has not
// been called or when read returns a *retryError: read decides whether what
// it consumed can be skipped on the next attempt.
func (c *Client) do(ctx context.Context, e api.Endpoint, params []string, read func(io.Reader) error) error {
	return c.doBody(ctx, e, params, nil, func(_ int, r io.Reader) error { return read(r) })
}

// doBody is do with a JSON request body, sent again on each attempt. Only
// idempotent writes may be sent this way: every write the connector makes
// replaces state rather than adding to it (see the sink streams).
func (c *Client) doBody(ctx context.Context, e api.Endpoint, params []string, body []byte, read func(status int, r io.Reader) error) error {
	url := e.URL(c.base, params...)
	path := e.URL("", params...)
	attempts := c.MaxAttempts
	if l, ok := ctx.Value(limitsKey{}).(requestLimits); ok && l.attempts < attempts {
		attempts = l.attempts
	}
	var lastErr error
	answered := false // some attempt got an answer (a status, a body)
	for attempt := 1; attempt <= attempts; attempt++ {
		if attempt > 1 {
			if err := sleepCtx(ctx, c.backoff(attempt, lastErr)); err != nil {
				return err
			}
			c.logger.Debug("retrying NuOrder request", "method", e.Method, "path", path, "attempt", attempt, "error", lastErr)
		}
		err := c.once(ctx, e.Method, url, path, body, read)
		c.count(e, attempt, err)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var apiErr *APIError
		var rErr *retryError
		var ra *retryAfterError
		switch {
		case errors.As(err, &apiErr) && !retryable(apiErr.Status):
			return err
		case errors.As(err, &ra) && ra.after > c.MaxBackoff:
			// Waiting longer than the client ever waits between attempts
			// would stall the run; retrying sooner would be refused again.
			return fmt.Errorf("%s %s: NuOrder answered %d and asked to come back after %v, longer than the %v this client waits between attempts (retry_max_wait_seconds): run again later",
				e.Method, path, ra.Status, ra.after.Round(time.Second), c.MaxBackoff)
		case errors.As(err, &rErr):
			lastErr, answered = rErr.err, true
		case errors.As(err, &apiErr):
			lastErr, answered = err, true
		default:
			var bodyErr *bodyError
			if errors.As(err, &bodyErr) {
				return bodyErr.err
			}
			// A transport error (connection refused, reset) or no answer
			// within the response timeout.
			lastErr = err
		}
	}
	if !answered {
		// No answer at all, every time: the service is down or unreachable.
		return fmt.Errorf("%s %s failed after %d attempts: %w (%w)", e.Method, path, attempts, lastErr, connector.ErrServiceUnreachable)
	}
	return fmt.Errorf("%s %s failed after %d attempts: %w", e.Method, path, attempts, lastErr)
}

// limitsKey keys the requestLimits of a context.
type limitsKey struct{}

// requestLimits tighten the client's limits for the requests made with a
// context (check's): a shorter response timeout and fewer attempts.
type requestLimits struct {
	response time.Duration
	attempts int
}

// withLimits returns ctx carrying tighter request limits.
func withLimits(ctx context.Context, response time.Duration, attempts int) context.Context {
	return context.WithValue(ctx, limitsKey{}, requestLimits{response: response, attempts: attempts})
}

// count records one attempt at e and how it ended, for Stats.
func (c *Client) count(e api.Endpoint, attempt int, err error) {
	class := "2xx"
	var apiErr *APIError
	switch {
	case err == nil:
	case errors.As(err, &apiErr):
		class = fmt.Sprintf("%dxx", apiErr.Status/100)
	case errors.Is(err, context.Canceled):
		return // the run stopped: not the service's answer
	default:
		class = "error"
	}
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	if c.stats.Requests == nil {
		c.stats = connector.Stats{Requests: map[string]map[string]int64{}, Retries: map[string]int64{}}
	}
	key := e.Pattern()
	if c.stats.Requests[key] == nil {
		c.stats.Requests[key] = map[string]int64{}
	}
	c.stats.Requests[key][class]++
	if attempt > 1 {
		c.stats.Retries[key]++
	}
}

// Stats returns a copy of the client's request counts.
func (c *Client) Stats() connector.Stats {
	c.statsMu.Lock()
	defer c.statsMu.Unlock()
	out := connector.Stats{Requests: map[string]map[string]int64{}, Retries: map[string]int64{}}
	for e, byClass := range c.stats.Requests {
		out.Requests[e] = map[string]int64{}
		for class, n := range byClass {
			out.Requests[e][class] = n
		}
	}
	for e, n := range c.stats.Retries {
		out.Retries[e] = n
	}
	return out
}

// notHTML fails when a successful answer is an HTML page (a proxy's or
// CDN's error page served with 200) rather than NuOrder's JSON, quoting its
// first bytes; the body is left unread otherwise.
func notHTML(body *bufio.Reader, method, path string) error {
	head, _ := body.Peek(512)
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '<' {
		return nil
	}
	first := trimmed
	if len(first) > 80 {
		first = first[:80]
	}
	return fmt.Errorf("NuOrder answered %s %s with an HTML page instead of JSON (first bytes: %q)", method, path, first)
}

// idleBody cancels its request when one read waits longer than idle for
// NuOrder's next bytes, and the read then fails with the timeoutError that
// cancelled it. Only time spent waiting on the network counts: a consumer
// that takes its time between two reads (a slow sink) is not NuOrder's
// silence.
type idleBody struct {
	io.ReadCloser
	timer *time.Timer
	idle  time.Duration
	ctx   context.Context
	// left counts down the bytes the answer may still hold (after
	// decompression) of max; past it the read fails with answerTooLarge.
	left, max    int64
	method, path string
}

func (b *idleBody) Read(p []byte) (int, error) {
	if b.max > 0 && b.left <= 0 {
		return 0, &answerTooLarge{method: b.method, path: b.path, max: b.max}
	}
	if b.max > 0 && int64(len(p)) > b.left {
		p = p[:b.left]
	}
	b.timer.Reset(b.idle)
	n, err := b.ReadCloser.Read(p)
	b.timer.Stop()
	b.left -= int64(n)
	if err != nil {
		var te *timeoutError
		if errors.As(context.Cause(b.ctx), &te) {
			return n, te
		}
	}
	return n, err
}

// isEndless says whether err is an answer cut at max_answer_seconds.
func isEndless(err error) bool {
	var te *timeoutError
	return errors.As(err, &te) && te.attr == "max_answer_seconds"
}

// answerTooLarge is an answer whose body, decompressed, exceeded the
// answer limit.
type answerTooLarge struct {
	method, path string
	max          int64
}

func (e *answerTooLarge) Error() string {
	return fmt.Sprintf("the answer to %s %s is larger than %d MiB once decompressed (max_answer_mib): refusing to read on", e.method, e.path, e.max>>20)
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	return b.ReadCloser.Close()
}

// DefaultMaxDocument is the largest single document (one element of a
// listing) the client holds: NuOrder's orders are kilobytes; an element
// that never ends must not grow the plugin without bound.
const DefaultMaxDocument = 64 << 20

// documentTooLarge is an element of a listing beyond the document limit.
type documentTooLarge struct {
	method, path string
	max          int64
}

func (e *documentTooLarge) Error() string {
	return fmt.Sprintf("an element of %s %s is larger than %d MiB (max_document_mib): refusing to hold it", e.method, e.path, e.max>>20)
}

// retryError marks a failure in the middle of a body that read can resume.
type retryError struct{ err error }

func (e *retryError) Error() string { return e.err.Error() }

// bodyError marks a failure of read that must not be retried.
type bodyError struct{ err error }

func (e *bodyError) Error() string { return e.err.Error() }

func (c *Client) once(ctx context.Context, method, url, path string, body []byte, read func(status int, r io.Reader) error) error {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-c.sem }()
	if err := c.pace.wait(ctx); err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(reqCtx, method, url, rd)
	if err != nil {
		return &bodyError{err}
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	response, attr := c.timeouts.Response, "response_timeout_seconds"
	if l, ok := ctx.Value(limitsKey{}).(requestLimits); ok && l.response < response {
		response, attr = l.response, "check's own limit; runs wait response_timeout_seconds"
	}
	noAnswer := &timeoutError{method: method, path: path, what: "sent no answer to", attr: attr, after: response}
	timer := time.AfterFunc(response, func() { cancel(noAnswer) })
	resp, err := c.http.Do(req)
	timer.Stop()
	if err != nil {
		var redirect *redirectError
		if errors.As(err, &redirect) {
			return &bodyError{redirect} // not retried
		}
		if cause := context.Cause(reqCtx); cause == noAnswer {
			return noAnswer
		}
		return err
	}
	defer resp.Body.Close()
	stalled := &timeoutError{method: method, path: path, what: "stopped sending the answer to", attr: "idle_timeout_seconds", after: c.timeouts.Idle}
	idle := time.AfterFunc(c.timeouts.Idle, func() { cancel(stalled) })
	idle.Stop() // started by each read
	endless := &timeoutError{method: method, path: path, what: "did not finish the answer to", attr: "max_answer_seconds", after: c.timeouts.Answer}
	whole := time.AfterFunc(c.timeouts.Answer, func() { cancel(endless) })
	defer whole.Stop()
	resp.Body = &idleBody{ReadCloser: resp.Body, timer: idle, idle: c.timeouts.Idle, ctx: reqCtx,
		left: c.timeouts.AnswerBytes, max: c.timeouts.AnswerBytes, method: method, path: path}
	if resp.StatusCode == http.StatusNotModified {
		// NuOrder answers a status change to the status the order already
		// has with 304 (shared/nuorder-api.md §13.4): done, nothing to read.
		return nil
	}
	if resp.StatusCode/100 != 2 {
		return c.statusError(method, path, resp)
	}
	br := bufio.NewReader(resp.Body)
	if err := notHTML(br, method, path); err != nil {
		return &retryError{err} // a proxy's error page: worth another try
	}
	if err := read(resp.StatusCode, br); err != nil {
		var rErr *retryError
		if errors.As(err, &rErr) {
			return err
		}
		return &bodyError{err}
	}
	return nil
}

// maxMessage is how much of NuOrder's error message an error quotes.
const maxMessage = 200

// statusError reads NuOrder's error body.
func (c *Client) statusError(method, path string, resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
	var apiBody api.Error
	if json.Unmarshal(body, &apiBody) == nil && apiBody.Message != "" {
		e.Message = apiBody.Message
		if len(e.Message) > maxMessage {
			// NuOrder's messages quote the values they refuse: a reason
			// (in a rejects file, a log line) quotes at most the start.
			cut := maxMessage
			for cut > 0 && !utf8.RuneStart(e.Message[cut]) {
				cut--
			}
			e.Message = fmt.Sprintf("%s… (%d bytes)", e.Message[:cut], len(apiBody.Message))
		}
	} else {
		e.Message = strings.TrimSpace(string(body))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200] + "..."
		}
		if e.Message == "" {
			e.Message = "(empty body)"
		}
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(ra); err == nil {
			return &retryAfterError{APIError: e, after: time.Duration(secs) * time.Second}
		}
		if t, err := http.ParseTime(ra); err == nil {
			return &retryAfterError{APIError: e, after: time.Until(t)}
		}
	}
	return e
}

// retryAfterError is an APIError whose response said when to come back.
type retryAfterError struct {
	*APIError
	after time.Duration
}

func (e *retryAfterError) Unwrap() error { return e.APIError }

// backoff is the delay before the given attempt: Retry-After when the server
// sent one, else exponential with full jitter.
func (c *Client) backoff(attempt int, lastErr error) time.Duration {
	var ra *retryAfterError
	if errors.As(lastErr, &ra) && ra.after > 0 {
		if ra.after > c.MaxBackoff {
			return c.MaxBackoff
		}
		return ra.after
	}
	d := c.BaseBackoff << (attempt - 2)
	if d > c.MaxBackoff || d <= 0 {
		d = c.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// send makes a write request with a JSON body (none when body is nil) and
// decodes the answer into out when out is not nil.
func (c *Client) send(ctx context.Context, e api.Endpoint, params []string, body, out any) error {
	_, err := c.sendStatus(ctx, e, params, body, out)
	return err
}

// sendStatus is send that also returns the success status NuOrder answered
// (200, 201; 304 is a no-op and decodes nothing).
func (c *Client) sendStatus(ctx context.Context, e api.Endpoint, params []string, body, out any) (int, error) {
	var b []byte // nil body: none is sent
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			return 0, err
		}
	}
	status := http.StatusNotModified // once reads no body for a 304
	err := c.doBody(ctx, e, params, b, func(st int, r io.Reader) error {
		status = st
		if out == nil {
			return discard(r)
		}
		if err := json.NewDecoder(r).Decode(out); err != nil {
			return &retryError{fmt.Errorf("decoding the answer of %s: %w", e.Path, err)}
		}
		return nil
	})
	return status, err
}

// create sends a request that is not idempotent (an order or company
// create: sent twice, it may make two), never retrying it blind: each
// attempt is sent once, and when its answer is lost (no answer, a dropped
// connection, a 5xx from a proxy or a 429) exists reads back whether the
// object is there before another attempt. It returns whether an earlier
// attempt had created it (its answer lost), or the error.
func (c *Client) create(ctx context.Context, e api.Endpoint, params []string, body any, exists func(context.Context) (bool, error)) (already bool, err error) {
	b, err := json.Marshal(body)
	if err != nil {
		return false, err
	}
	once := withLimits(ctx, c.timeouts.Response, 1)
	for attempt := 1; ; attempt++ {
		err = c.doBody(once, e, params, b, func(_ int, r io.Reader) error { return discard(r) })
		var apiErr *APIError
		if err == nil || errors.As(err, &apiErr) && !retryable(apiErr.Status) || ctx.Err() != nil {
			return false, err
		}
		if attempt >= c.MaxAttempts {
			return false, fmt.Errorf("%s %s: no answer after %d attempts, each read back first: %w", e.Method, e.URL("", params...), attempt, err)
		}
		// The answer is lost: the request may have been carried out.
		there, rerr := exists(ctx)
		if rerr != nil {
			return false, fmt.Errorf("%s %s lost its answer (%v), and reading back whether it was carried out failed: %w", e.Method, e.URL("", params...), err, rerr)
		}
		if there {
			c.logger.Info("a create whose answer was lost had been carried out: not sent again", "method", e.Method, "path", e.URL("", params...))
			return true, nil
		}
		if err := sleepCtx(ctx, c.backoff(attempt+1, err)); err != nil {
			return false, err
		}
	}
}

// getJSON reads one JSON document into v.
func (c *Client) getJSON(ctx context.Context, e api.Endpoint, params []string, v any) error {
	return c.do(ctx, e, params, func(r io.Reader) error {
		if err := json.NewDecoder(r).Decode(v); err != nil {
			// A cut-off body is a transport failure worth another try.
			return &retryError{fmt.Errorf("decoding %s: %w", e.Path, err)}
		}
		return nil
	})
}

// streamArray streams a listing (a JSON array) and calls fn with each
// element, in order, holding one element at a time: the element is fn's to
// keep. A body cut short is retried (by do), resuming after the elements
// fn has already seen.
func (c *Client) streamArray(ctx context.Context, e api.Endpoint, params []string, fn func(json.RawMessage) error) error {
	return c.eachElement(ctx, e, params, true, fn)
}

// eachElement is streamArray; with keep false, an element is valid only
// during fn (it lies in the reader's buffer), which saves a copy of every
// document on the hot path of orders.
func (c *Client) eachElement(ctx context.Context, e api.Endpoint, params []string, keep bool, fn func(json.RawMessage) error) error {
	done := 0
	return c.do(ctx, e, params, func(r io.Reader) error {
		if err := errorIn200(r, e.Method, e.URL("", params...)); err != nil {
			return err
		}
		ar := jsonscan.NewArrayReader(r, int(c.maxDocument))
		for seen := 0; ; {
			el, err := ar.Next()
			if errors.Is(err, io.EOF) {
				return nil
			}
			switch {
			case errors.Is(err, jsonscan.ErrNotArray):
				return fmt.Errorf("%s %s: %w", e.Method, e.Path, err)
			case errors.Is(err, jsonscan.ErrTooLarge):
				return &documentTooLarge{method: e.Method, path: e.URL("", params...), max: c.maxDocument} // not worth another try
			case errors.As(err, new(*answerTooLarge)) || isEndless(err):
				return err // the same answer again would end the same way
			case err != nil:
				return &retryError{fmt.Errorf("reading %s after %d elements: %w", e.Path, seen, err)}
			}
			seen++
			if seen <= done {
				continue
			}
			if keep {
				el = append([]byte(nil), el...)
			}
			if err := fn(el); err != nil {
				return err
			}
			done = seen
		}
	})
}

// errorIn200 finds NuOrder's error document ({"code": 401, "message": ...})
// answered with a 200 where a listing was expected, and returns it as the
// APIError its code says (so a 401 there reads as a 401, and fails the run
// as one). r is the body's bufio.Reader (once wraps every body in one);
// nothing is consumed.
func errorIn200(r io.Reader, method, path string) error {
	br, ok := r.(*bufio.Reader)
	if !ok {
		return nil
	}
	head, _ := br.Peek(4096)
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil
	}
	var doc api.Error
	if json.Unmarshal(trimmed, &doc) != nil || doc.Code < 400 || doc.Code > 599 {
		return nil
	}
	return &APIError{Method: method, Path: path, Status: doc.Code, Message: doc.Message + " (answered with HTTP 200)"}
}

// discard reads and drops a response body.
func discard(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
