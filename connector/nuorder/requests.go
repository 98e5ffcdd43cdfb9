package nuorder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"pipehost/connector/nuorder/api"
	"pipehost/internal/jsonscan"
	"strings"
)

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
				// Say where: an element of the wrong shape (a listing nested
				// ten deep, an order that does not decode) names the
				// endpoint and its place in the answer.
				if ctx.Err() == nil && !strings.Contains(err.Error(), e.Path) && errors.As(err, new(*elementError)) {
					return fmt.Errorf("%s %s, element %d: %w", e.Method, e.URL("", params...), seen, err)
				}
				return err
			}
			done = seen
		}
	})
}

// elementError is a listing element that is not what its listing holds:
// eachElement says which endpoint and element it was.
type elementError struct{ err error }

func (e *elementError) Error() string { return e.err.Error() }
func (e *elementError) Unwrap() error { return e.err }

// badElement marks err as an element's fault (elementError).
func badElement(err error) error { return &elementError{err} }
