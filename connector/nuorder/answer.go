package nuorder

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"pipehost/connector/nuorder/api"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

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
