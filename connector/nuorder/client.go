package nuorder

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"pipehost/connector"
	"pipehost/connector/nuorder/api"
	"pipehost/internal/tracing"
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
	// sign signs requests, in RFC 5849 or NuOrder's own scheme.
	sign *signer
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
	sign := newSigner(transport, creds)
	hc := &http.Client{Transport: sign}
	if tracing.Enabled() {
		// A span per NuOrder request, child of the read or write that
		// made it; outside the signer, so the Authorization header is
		// never in reach of an attribute (otelhttp records no header).
		hc.Transport = otelhttp.NewTransport(sign, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return "nuorder " + r.Method + " " + r.URL.Path
		}))
	}
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
		base: strings.TrimRight(base, "/"), http: hc, sign: sign, sem: make(chan struct{}, inFlight), logger: logger, timeouts: timeouts,
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
	triedNuOrder := false
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
		var refused *APIError
		if errors.As(err, &refused) && refused.Status == http.StatusUnauthorized && c.sign != nil && !c.sign.nuorder.Load() && !triedNuOrder {
			// Refused in RFC 5849: once more in NuOrder's own scheme,
			// which then signs the rest of the run if it is accepted.
			triedNuOrder = true
			aErr := c.once(context.WithValue(ctx, schemeKey{}, true), e.Method, url, path, body, read)
			c.count(e, attempt, aErr)
			var again *APIError
			if errors.As(aErr, &again) && again.Status == http.StatusUnauthorized {
				return fmt.Errorf("%w (refused in both signature schemes, RFC 5849 and NuOrder's own)", err)
			}
			// Not refused: NuOrder takes its own scheme.
			if !c.sign.nuorder.Swap(true) {
				c.logger.Info("NuOrder refused the RFC 5849 signature and accepted its own scheme: signing with it for the rest of this run", "scheme", SchemeNuOrder)
			}
			if aErr == nil {
				return nil
			}
			err = aErr
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

// Scheme names the signature scheme requests are signed with now.
func (c *Client) Scheme() string { return c.sign.scheme() }

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
