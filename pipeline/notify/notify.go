// Package notify posts the outcome of runs to webhooks (a notify block):
// the run's JSON document, or a Slack-compatible text message, on failure,
// on recovery or on every run. A notification is best effort: it is tried
// a bounded number of times, each attempt with a timeout, and a failure is
// returned for the caller to log and count, never to fail the run. Errors
// never quote the webhook's address, whose path is often its secret.
package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"pipehost/pipeline/config"
)

// Attempts, AttemptTimeout and Backoff bound a notification: at most
// Attempts posts, each given AttemptTimeout, Backoff apart (doubling). A
// receiver down for longer loses the notification (logged and counted),
// rather than holding the run or the scheduler: about 35 s at the worst.
const (
	Attempts       = 3
	AttemptTimeout = 10 * time.Second
	Backoff        = time.Second
)

// Outcome is one run to tell about.
type Outcome struct {
	// Failed names the pipelines that failed, NewlyFailed those of them
	// whose previous run had not failed, Recovered those that succeeded
	// after their previous run had failed.
	Failed, NewlyFailed, Recovered []string
	// Ran names every pipeline of the run.
	Ran []string
	// Document is the run's JSON document (run --json).
	Document []byte
	// Text is the run's outcome for people, a line a pipeline.
	Text string
}

// Wants says whether a notify block posts this outcome: on failure when a
// pipeline starts failing (not again while it keeps failing: its recovery
// is the next news), on recovery when one stops, on every run always.
func Wants(n *config.Notify, o Outcome) bool {
	return slices.Contains(n.On, "every") ||
		(slices.Contains(n.On, "failure") && len(o.NewlyFailed) > 0) ||
		(slices.Contains(n.On, "recovery") && len(o.Recovered) > 0)
}

// Body is what a notify block posts for an outcome, and its content type.
func Body(n *config.Notify, o Outcome) ([]byte, string) {
	if n.Format != "slack" {
		return o.Document, "application/json"
	}
	var head string
	switch {
	case len(o.Failed) > 0:
		head = fmt.Sprintf(":x: pipehost: %d of %d pipeline(s) failed: %s", len(o.Failed), len(o.Ran), strings.Join(o.Failed, ", "))
	case len(o.Recovered) > 0:
		head = fmt.Sprintf(":white_check_mark: pipehost: recovered: %s", strings.Join(o.Recovered, ", "))
	default:
		head = fmt.Sprintf(":white_check_mark: pipehost: %d pipeline(s) ok", len(o.Ran))
	}
	b, _ := json.Marshal(map[string]string{"text": head + "\n```\n" + strings.TrimRight(o.Text, "\n") + "\n```"})
	return b, "application/json"
}

// Post sends the outcome to the block's webhook if the block wants it,
// with bounded retries: a connection error, a 429 or a 5xx is tried again;
// another 4xx is not (the receiver refuses the message). It returns nil
// when the block does not want the outcome or a post was answered 2xx.
func Post(ctx context.Context, client *http.Client, n *config.Notify, o Outcome) error {
	if !Wants(n, o) {
		return nil
	}
	body, ctype := Body(n, o)
	wait := Backoff
	var last error
	for attempt := 1; attempt <= Attempts; attempt++ {
		retry, err := post(ctx, client, n.URL, body, ctype)
		if err == nil {
			return nil
		}
		last = err
		if !retry || attempt == Attempts {
			break
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return fmt.Errorf("notify %s: %w", n.Name, ctx.Err())
		}
		wait *= 2
	}
	return fmt.Errorf("notify %s: %w", n.Name, last)
}

// post makes one attempt; retry says whether another may succeed.
func post(ctx context.Context, client *http.Client, url string, body []byte, ctype string) (retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, AttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return false, errors.New("the webhook address is not usable")
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("User-Agent", "pipehost")
	resp, err := client.Do(req)
	if err != nil {
		return true, fmt.Errorf("the webhook did not answer: %s", withoutURL(err))
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return true, fmt.Errorf("the webhook answered %s", resp.Status)
	}
	return false, fmt.Errorf("the webhook refused the message: %s", resp.Status)
}

// withoutURL is a client error's cause without the address *url.Error
// quotes.
func withoutURL(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner.Error()
		}
	}
	return "request failed"
}
