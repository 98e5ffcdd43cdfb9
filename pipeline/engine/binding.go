package engine

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/pipeline/state"
	"pipehost/sinks"
)

// ErrInterrupted is a run's error when its context was cancelled (SIGINT or
// SIGTERM): what it wrote after its last commit was discarded.
var ErrInterrupted = errors.New("interrupted: rows after the last commit were discarded; the next run resumes there")

// ErrStateMismatch is returned (wrapped) by a run that refuses to resume
// from a checkpoint describing other data: another account or sandbox,
// another destination, or a destination another state store writes.
var ErrStateMismatch = errors.New("the stored state describes other data")

// sourceIdentity names a configured connector without a secret: its name,
// and "sandbox" or a fingerprint of the attributes its schema marks as
// identity (a base URL, an API key id), hashed, never printed.
func sourceIdentity(name string, info connector.Info, schema connector.ConfigSchema, raw json.RawMessage, sandbox bool) string {
	what := "connector " + name
	if info.Name != "" && info.Name != name {
		what += " (" + info.Name + ")"
	}
	if sandbox {
		return what + ", sandbox"
	}
	var values map[string]json.RawMessage
	json.Unmarshal(raw, &values)
	var names []string
	for _, a := range schema.Attributes {
		if a.Identity {
			names = append(names, a.Name)
		}
	}
	if len(names) == 0 {
		return what
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s=%s\n", n, values[n])
	}
	return fmt.Sprintf("%s, account %s (a fingerprint of %s)", what, hex.EncodeToString(h.Sum(nil))[:12], strings.Join(names, ", "))
}

// destination names where a pipeline's stream lands, without credentials.
func (h *Host) destination(pl *config.Pipeline, stream string) string {
	if loc, ok := h.sinks[pl.To.Type+"."+pl.To.Name].(sinks.Locator); ok {
		return loc.Location(stream)
	}
	return pl.To.String()
}

// envelope is what the host commits into a sink as the checkpoint: the
// connector's checkpoint with the store that records it and the binding,
// so a sink shared by mistake, or reused for another source, is noticed.
type envelope struct {
	Version    int             `json:"pipehost_checkpoint"`
	State      string          `json:"state"`
	Source     string          `json:"source"`
	Dest       string          `json:"destination"`
	Checkpoint json.RawMessage `json:"checkpoint,omitempty"` // when it is JSON
	Bytes      []byte          `json:"bytes,omitempty"`      // otherwise
}

func wrap(cp []byte, storeID string, b *state.Binding) []byte {
	if cp == nil {
		return nil
	}
	e := envelope{Version: 1, State: storeID, Source: b.Source, Dest: b.Destination}
	if json.Valid(cp) {
		e.Checkpoint = cp
	} else {
		e.Bytes = cp
	}
	out, _ := json.Marshal(e)
	return out
}

// unwrap reads what wrap made; a checkpoint committed before envelopes
// existed comes back as it is, with an empty envelope.
func unwrap(stored []byte) (cp []byte, e envelope) {
	if stored == nil {
		return nil, e
	}
	if json.Unmarshal(stored, &e) != nil || e.Version != 1 {
		return stored, envelope{}
	}
	if e.Checkpoint != nil {
		return e.Checkpoint, e
	}
	return e.Bytes, e
}

// mismatch is the refusal of a run whose state describes other data. The
// ways out it names, run as printed, leave the destination holding only
// this run's source's rows: a full refresh replaces the rows where the sink
// can; where it cannot, the rows must be removed first.
func (h *Host) mismatch(pl *config.Pipeline, what string, stored, now *state.Binding) error {
	out := h.Command()
	way := fmt.Sprintf("Replace them with this source's rows with `%s run --full-refresh %s`, or start over with `%s state reset %s` (the next run then replaces them)",
		out, pl.Name, out, pl.Name)
	if !supportsMode(h.drivers[pl.To.Type+"."+pl.To.Name], sinks.Overwrite) {
		way = fmt.Sprintf("%s cannot replace rows: remove what pipeline %s wrote into %s (its data files and commit records), then start over with `%s state reset %s`",
			pl.To, pl.Name, now.Destination, out, pl.Name)
	}
	return fmt.Errorf("%w: %s; its checkpoint was written %s, but this run is %s. Resuming would skip or repeat rows, and appending would mix two sources. %s",
		ErrStateMismatch, what, stored, now, way)
}

// Command is how the user runs the host, for the commands messages
// suggest: Options.Command, or "pipeline".
func (h *Host) Command() string {
	if h.opts.Command != "" {
		return h.opts.Command
	}
	return "pipeline"
}
