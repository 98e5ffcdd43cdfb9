// Package connector is the contract between the pipeline host and every
// connector, whether it runs in the host's process or behind a plugin.
//
// A connector advertises a configuration schema (so the host can check the
// user's HCL before anything runs), is configured once, and then exposes
// streams. A source stream is read as a sequence of Arrow record batches, each
// optionally followed by an opaque checkpoint; a sink stream is written with
// Arrow record batches and answers with one result per input row.
//
// The host owns state: a connector never stores cursors itself. It receives the
// last checkpoint the host committed in ReadRequest.Checkpoint and hands back
// new ones with the batches they follow.
package connector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow/go/v15/arrow"
)

// Kind says which way rows flow through a stream.
type Kind string

const (
	// Source streams are read: rows flow from the connector to the host.
	Source Kind = "source"
	// Sink streams are written: rows flow from the host into the connector.
	Sink Kind = "sink"
)

// Info names a connector and its version, for logs and `pipeline streams`.
type Info struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Attribute describes one attribute of a connector's `config` block.
//
// Type is a cty type in its JSON form ("string", "bool", "number",
// ["list","string"], ["map","string"], ...), so any type HCL can express can be
// declared without this package knowing HCL.
type Attribute struct {
	Name        string          `json:"name"`
	Type        json.RawMessage `json:"type"`
	Description string          `json:"description,omitempty"`
	// Required attributes must be set to a non-null value, except when the
	// host runs the connector in sandbox mode, where the connector supplies
	// its own demo values.
	Required bool `json:"required,omitempty"`
	// Sensitive values (secrets) are never printed by the host: not in logs,
	// errors, plans or state.
	Sensitive bool `json:"sensitive,omitempty"`
	// Identity attributes say which account or instance the connector
	// reads (a base URL, an API key id): the host binds stored checkpoints
	// to a fingerprint of their values, so a checkpoint of one account is
	// never used to resume a read of another. The values are hashed, never
	// printed.
	Identity bool `json:"identity,omitempty"`
}

// ConfigSchema is the full set of attributes a connector accepts. Any other
// attribute in the user's config block is an error.
type ConfigSchema struct {
	Attributes []Attribute `json:"attributes"`
}

// ConfigureRequest carries the user's decoded config block.
type ConfigureRequest struct {
	// Config is a JSON object holding every attribute of the schema (unset
	// optional attributes are null). Values of sensitive attributes are here
	// in clear: the connector must not log them.
	Config json.RawMessage `json:"config"`
	// Sandbox asks the connector to run against its own built-in sandbox
	// (fake API with demo data) instead of the real service.
	Sandbox bool `json:"sandbox,omitempty"`
	// SandboxDir, with Sandbox, is a folder the host keeps with its state
	// (empty: none) where the sandbox may remember what it was sent
	// between runs, so a second sandbox push meets what the first left.
	SandboxDir string `json:"sandbox_dir,omitempty"`
	// CacheDir is a folder the host keeps for this connector and the
	// account its config names (empty: none), where the connector may keep
	// what it learned of the remote service between runs to spare requests
	// (NuOrder's SKUs). It may be lost at any time (a new container): that
	// must cost requests only, never correctness.
	CacheDir string `json:"cache_dir,omitempty"`
}

// Stream describes one stream of a connector's catalog.
type Stream struct {
	Name        string `json:"name"`
	Kind        Kind   `json:"kind"`
	Description string `json:"description,omitempty"`
	// Schema is the fixed Arrow schema of the stream's rows: every batch read
	// from or written to the stream has exactly this schema. It is nil only
	// for source streams whose columns come from their input (the built-in
	// files connector's CSV, say): their batches carry their own schema.
	// Such streams cannot be served through a plugin.
	Schema *arrow.Schema `json:"-"`
	// PrimaryKey lists the columns that identify a row (empty: none).
	PrimaryKey []string `json:"primary_key,omitempty"`
	// CursorField is the column incremental reads advance on (empty: the
	// stream is always read in full).
	CursorField string `json:"cursor_field,omitempty"`
	// Disabled, when not empty, says why the stream is switched off by the
	// connector's configuration; reading a disabled stream fails with that
	// reason instead of silently returning nothing.
	Disabled string `json:"disabled,omitempty"`
	// Notice, when not empty, is something to fix in the configuration
	// before the stream can do its job (a missing setting the connector
	// cannot look up). The host shows it as a warning wherever a pipeline
	// uses the stream (validate, plan); using the stream is still allowed.
	Notice string `json:"notice,omitempty"`
	// Options, when not nil, are the options a read of the stream (a
	// source) or a write to it (a sink, `to_options`) accepts, each with
	// the kind and values it allows; the host refuses other names and
	// values that do not fit at validate time, where the pipeline is
	// written (CheckOptions). nil: the connector does not say, and checks
	// them itself when reading.
	Options []Option `json:"options"` // no omitempty: [] (none) is not null (does not say)
	// ReadsWith names the other source streams a read of this one can
	// emit in the same pass, from the same responses (NuOrder's orders and
	// order_lines): the host then reads them in one request (after this
	// one in ReadRequest.Streams) instead of once per stream, each from
	// its own checkpoint.
	ReadsWith []string `json:"reads_with,omitempty"`
}

// ReadRequest asks for the rows of source streams, read in one pass.
type ReadRequest struct {
	// Streams lists the streams to read, each with where it resumes. The
	// first names the read; any others must be in its Stream.ReadsWith
	// (NuOrder's orders and order_lines): the read downloads and decodes
	// once and emits the batches of every stream, each from its own
	// checkpoint. A read of one stream is the set of one. CheckRead checks
	// a request against the catalog.
	Streams []StreamRead `json:"streams"`
	// Options are the pipeline block's `options`, passed through untouched.
	Options map[string]string `json:"options,omitempty"`
}

// StreamRead is one stream of a read and the point it resumes from.
type StreamRead struct {
	Stream string `json:"stream"`
	// Checkpoint is the last checkpoint the host committed for this stream,
	// or nil for a first (or full-refresh) read.
	Checkpoint []byte `json:"checkpoint,omitempty"`
}

// First names the read's first stream ("" for a request naming none).
func (r ReadRequest) First() string {
	if len(r.Streams) == 0 {
		return ""
	}
	return r.Streams[0].Stream
}

// Checkpoint returns where the read of stream resumes (nil: from the
// beginning, or stream is not one of the request's).
func (r ReadRequest) Checkpoint(stream string) []byte {
	for _, s := range r.Streams {
		if s.Stream == stream {
			return s.Checkpoint
		}
	}
	return nil
}

// Names lists the request's streams, the first first.
func (r ReadRequest) Names() []string {
	out := make([]string, len(r.Streams))
	for i, s := range r.Streams {
		out[i] = s.Stream
	}
	return out
}

// CheckRead checks a request against a catalog: at least one stream, each
// a source stream of the catalog (an error wrapping ErrUnknownStream
// otherwise), none disabled (the error says why it is), none twice, and
// every stream after the first one the first reads with. It returns the
// first stream's catalog entry.
func CheckRead(catalog []Stream, req ReadRequest) (Stream, error) {
	if len(req.Streams) == 0 {
		return Stream{}, fmt.Errorf("%w: the read names no stream", ErrUnknownStream)
	}
	var first Stream
	seen := map[string]bool{}
	for i, sr := range req.Streams {
		st, ok := FindStream(catalog, sr.Stream, Source)
		if !ok {
			return Stream{}, fmt.Errorf("%w %q", ErrUnknownStream, sr.Stream)
		}
		if st.Disabled != "" {
			return Stream{}, fmt.Errorf("stream %s is disabled: %s", st.Name, st.Disabled)
		}
		if seen[st.Name] {
			return Stream{}, fmt.Errorf("stream %s is named twice in one read", st.Name)
		}
		seen[st.Name] = true
		if i == 0 {
			first = st
		} else if !slices.Contains(first.ReadsWith, st.Name) {
			return Stream{}, fmt.Errorf("stream %s cannot be read with %s in one pass", st.Name, first.Name)
		}
	}
	return first, nil
}

// Batch is one step of a read: a record batch, a checkpoint, or both.
type Batch struct {
	// Stream names the stream the batch belongs to, one of the read's
	// Streams. Every batch names one, even in a read of one stream.
	Stream string
	// Record holds rows with the stream's schema; it may be nil when the
	// batch only carries a checkpoint. It is valid only during the emit call
	// that receives it: a consumer that keeps it must Retain it.
	Record arrow.Record
	// Checkpoint, when not nil, is the stream's position after every row
	// emitted so far. Connectors emit one only between distinct cursor values,
	// so resuming from it neither skips nor repeats a row that shares a cursor
	// value with a row before it.
	Checkpoint []byte
}

// EmitFunc receives the batches of a read. The batches of one stream come
// in order; in a read of several streams, emit may be called concurrently
// for batches of different streams. An error it returns stops the read:
// Read returns that error.
type EmitFunc func(Batch) error

// For returns an EmitFunc that names stream on every batch it passes on:
// for a connector whose read of one stream builds batches without a name.
func (e EmitFunc) For(stream string) EmitFunc {
	return func(b Batch) error {
		b.Stream = stream
		return e(b)
	}
}

// RecordIterator yields the record batches to write to a sink stream. Next
// returns io.EOF after the last batch. Records it returns are owned by the
// iterator and valid until the next call to Next.
type RecordIterator interface {
	Next() (arrow.Record, error)
}

// WriteRequest asks to write rows to one sink stream.
type WriteRequest struct {
	Stream  string            `json:"stream"`
	Options map[string]string `json:"options,omitempty"`
	// DryRun asks the connector to check every row and work out what it
	// would send, making read requests only: no write reaches the remote
	// service. Row results and the summary say what a real write would do.
	DryRun bool `json:"dry_run,omitempty"`
	// Ledger is what the connector returned in WriteSummary.Ledger after
	// the last completed write of this pipeline (nil for the first write,
	// or when the host was asked to ignore it, with --full-refresh). A
	// connector uses it to skip what it already sent; it must stay correct
	// with a nil Ledger.
	Ledger []byte `json:"ledger,omitempty"`
	// Commit, when not nil, durably records ledger as the pipeline's
	// ledger before it returns: the host writes it into its state store,
	// as it does WriteSummary.Ledger at the end. A connector calls it as it
	// sends (after each request that changed the remote service, and
	// before one it may not repeat blind), so that a push killed midway
	// and run again sends at most what was in flight at the kill. An error
	// means the record was not kept: the write must stop with it. Nil for
	// dry runs, and when the host keeps no state.
	Commit func(ledger []byte) error `json:"-"`
}

// WriteSummary says what a write did, or with DryRun would do, in counts a
// person can check ("replenishments to MAIN, immediate": 120).
type WriteSummary struct {
	Actions []Action `json:"actions,omitempty"`
	// Ledger, when not nil, is what the connector wants back as
	// WriteRequest.Ledger next time. The host stores it (as the pipeline's
	// state) only when Write returned nil and it was not a dry run.
	Ledger []byte `json:"ledger,omitempty"`
}

// Action is one line of a WriteSummary.
type Action struct {
	What  string `json:"what"`
	Count int64  `json:"count"`
}

// Add counts n more of what.
func (s *WriteSummary) Add(what string, n int64) {
	for i := range s.Actions {
		if s.Actions[i].What == what {
			s.Actions[i].Count += n
			return
		}
	}
	s.Actions = append(s.Actions, Action{What: what, Count: n})
}

// RowResult is the outcome of one input row of a write. Row counts from 0 over
// the whole write (across batches). An empty Error means the row was accepted.
type RowResult struct {
	Row   int64  `json:"row"`
	Error string `json:"error,omitempty"`
}

// ResultFunc receives row results as the connector settles them. Every input
// row gets exactly one result before Write returns nil.
type ResultFunc func([]RowResult) error

// Base is what every connector implements, in process or behind a plugin:
// naming, configuration, the catalog and a credentials check. A connector
// adds Reader, Writer or both for the kinds of stream its catalog lists
// (source streams are read, sink streams written), the way
// terraform-plugin-go composes a provider server from resource and data
// source servers; a read-only connector implements Reader and nothing else.
//
// The host calls ConfigSchema and Streams (which must work before Configure,
// with the catalog of an unconfigured connector), then Configure exactly once,
// then any number of Check, Read and Write calls, possibly concurrently, then
// Close. Methods honour ctx: when it is cancelled they return promptly with
// ctx's error.
type Base interface {
	// Info names the connector.
	Info(ctx context.Context) (Info, error)
	// ConfigSchema describes the connector's `config` block.
	ConfigSchema(ctx context.Context) (ConfigSchema, error)
	// Configure applies the config. It must not call the remote service: a
	// bad credential surfaces in Check, Read or Write.
	Configure(ctx context.Context, req ConfigureRequest) error
	// Streams lists the catalog. After Configure, Disabled reflects the
	// config. The catalog changes only with Configure: a caller may keep it
	// until it configures the connector again.
	Streams(ctx context.Context) ([]Stream, error)
	// Check verifies that the remote service accepts the configured
	// credentials, making as few requests as possible.
	Check(ctx context.Context) error
	// Close releases what the connector holds (servers, connections).
	Close() error
}

// Reader is a connector whose catalog lists source streams.
type Reader interface {
	Base
	// Read emits the rows of each stream of req after its checkpoint,
	// each batch naming its stream. It returns nil only after every row up
	// to the bound fixed when the read started has been emitted for every
	// stream. A request CheckRead refuses is refused with its error (a
	// stream the catalog lacks wraps ErrUnknownStream).
	Read(ctx context.Context, req ReadRequest, emit EmitFunc) error
}

// Estimator is a Reader that can say what a read will cost before it runs,
// from the read's checkpoints and options alone, without a request. plan
// shows it for each pull.
type Estimator interface {
	Reader
	// Estimate returns what Read(req) is expected to cost. A request
	// CheckRead refuses is refused with its error.
	Estimate(ctx context.Context, req ReadRequest) (Estimate, error)
}

// Estimate is what a read is expected to cost.
type Estimate struct {
	// Requests is how many requests the read makes at least.
	Requests int64 `json:"requests"`
	// Bytes is about how many response bytes they bring (0: not known).
	Bytes int64 `json:"bytes,omitempty"`
	// Parts says what the figures count, a line each ("1 listing of
	// product ids", "835 products due for their refresh"), and what they
	// cannot (new products: one request each).
	Parts []string `json:"parts,omitempty"`
}

// ErrNoEstimate is returned (wrapped) by Estimate when the connector cannot
// estimate its reads.
var ErrNoEstimate = errors.New("the connector does not estimate its reads")

// Writer is a connector whose catalog lists sink streams.
type Writer interface {
	Base
	// Write consumes every batch from in and reports one result per row,
	// then returns what it did. A rejected row never fails the write; Write
	// errors only when it cannot go on (lost connection, cancelled ctx), and
	// then rows without a result must be treated as not written. Writes are
	// made idempotent before they are sent, so a retried or repeated write
	// does not apply the same change twice.
	Write(ctx context.Context, req WriteRequest, in RecordIterator, results ResultFunc) (WriteSummary, error)
}

// Connector is a connector with both kinds of stream. The host half of a
// plugin implements it whatever the plugin serves: a call the plugin's
// connector does not implement fails with ErrUnknownStream.
type Connector interface {
	Reader
	Writer
}

// ErrUnknownStream is returned (wrapped) for a stream name the catalog lacks.
var ErrUnknownStream = errors.New("unknown stream")

// ErrNotConfigured is returned (wrapped) by calls that need Configure first.
var ErrNotConfigured = errors.New("connector is not configured")

// ErrServiceUnreachable is returned (wrapped) when requests to the
// connector's service exhausted their attempts without an answer (no
// connection, or none within the response timeout). The host then fails the
// connector's remaining pipelines of the run at once, saying why, instead
// of waiting as long again for each.
var ErrServiceUnreachable = errors.New("the service did not answer")

// FindStream returns the stream of a catalog with that name and kind. A
// source and a sink stream may share a name (NuOrder's companies are both
// read and written); the kind tells them apart.
func FindStream(streams []Stream, name string, kind Kind) (Stream, bool) {
	for _, s := range streams {
		if s.Name == name && s.Kind == kind {
			return s, true
		}
	}
	return Stream{}, false
}

// FormatKey is the Arrow field metadata key that says how a string column is
// encoded; JSONFormat is its value for a column holding one JSON document
// per row (NuOrder's document columns). Sinks store such columns as JSON
// (PostgreSQL jsonb, JSON lines embedded objects).
const (
	FormatKey  = "pipehost.format"
	JSONFormat = "json"
)

// IsJSON says whether a field holds JSON documents (see FormatKey).
func IsJSON(f arrow.Field) bool {
	v, ok := f.Metadata.GetValue(FormatKey)
	return ok && v == JSONFormat && f.Type.ID() == arrow.STRING
}

// The position columns an input connector (the built-in files connector)
// adds to each row, which the host uses to point at the input in rejects:
// RowColumn is the data row's number, LineColumn its line in the file (null
// when the format has none), ErrorColumn why the record could not be read
// (null for a good row; such rows are rejected with that reason).
const (
	RowColumn   = "_row"
	LineColumn  = "_line"
	ErrorColumn = "_error"
)

// Stats counts a connector's requests to its service since it was
// configured: per endpoint (a method and a path pattern, never with ids or
// secrets in it) and status class ("2xx", "4xx", "5xx", or "error" for an
// answer that never came: a refused connection, a timeout), and the
// retries among them.
type Stats struct {
	Requests map[string]map[string]int64 `json:"requests,omitempty"`
	Retries  map[string]int64            `json:"retries,omitempty"`
}

// Totals sums the requests and the retries of every endpoint.
func (s Stats) Totals() (requests, retries int64) {
	for _, byClass := range s.Requests {
		for _, n := range byClass {
			requests += n
		}
	}
	for _, n := range s.Retries {
		retries += n
	}
	return requests, retries
}

// Sub is what s counts beyond an earlier snapshot prev of the same
// connector.
func (s Stats) Sub(prev Stats) Stats {
	out := Stats{Requests: map[string]map[string]int64{}, Retries: map[string]int64{}}
	for e, byClass := range s.Requests {
		for class, n := range byClass {
			if d := n - prev.Requests[e][class]; d != 0 {
				if out.Requests[e] == nil {
					out.Requests[e] = map[string]int64{}
				}
				out.Requests[e][class] = d
			}
		}
	}
	for e, n := range s.Retries {
		if d := n - prev.Retries[e]; d != 0 {
			out.Retries[e] = d
		}
	}
	return out
}

// StatsReporter is implemented by connectors that count their requests;
// the host shows them in run summaries and metrics. Stats returns a
// snapshot that the connector goes on updating: it never errors for lack
// of a request.
type StatsReporter interface {
	Stats(ctx context.Context) (Stats, error)
}
