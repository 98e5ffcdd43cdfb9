// Package sinks is the seam between the pipeline engine and destinations.
//
// A destination is a Driver registered under a name (the first label of a
// `sink "NAME" "label"` block), the way database/sql drivers register: each
// destination lives in its own package under sinks/ and registers itself in
// an init function; the host imports it for that side effect. Adding a
// destination means adding one package and one import line in the host.
package sinks

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/hashicorp/go-hclog"
)

// Driver makes sinks of one kind.
type Driver interface {
	// Modes lists the write modes the sink supports ("append" first, the
	// default; "merge", "overwrite").
	Modes() []string
	// Open decodes the sink block with decode, validates it and returns a
	// ready sink. It errors when decode does or when the config is unusable
	// (an unknown compression, say); it must leave no trace outside the
	// process (no folder made, no connection opened): validate and plan open
	// every sink.
	Open(decode Decode, env Env) (Sink, error)
}

// Decode decodes a sink block into the struct into points to, whose fields
// carry `hcl:"name,attr"` / `hcl:"name,optional"` tags, the way
// encoding/json's Unmarshal fills a struct. It fails on unknown or
// mistyped attributes; the host has then already reported them with their
// location in the user's file, so a driver returns the error unchanged.
type Decode func(into any) error

// Env is what the host tells a driver about where it runs.
type Env struct {
	// BaseDir is the folder of the pipeline file; relative paths in the
	// config are resolved from it.
	BaseDir string
	// Logger receives the sink's messages.
	Logger hclog.Logger
}

// Stream describes the stream a Writer receives.
type Stream struct {
	// Pipeline is the name of the pipeline that writes the stream.
	Pipeline string
	// Name is the stream's name; sinks name their folder or table after it.
	Name string
	// Schema is the Arrow schema of every record written.
	Schema *arrow.Schema
	// PrimaryKey lists the key columns (may be empty).
	PrimaryKey []string
	// Mode is how rows land: "append" adds them; "merge" upserts on the
	// primary key, the latest version of a row winning; "overwrite"
	// replaces the whole table or folder when the final commit is made,
	// atomically for readers.
	Mode string
}

// The write modes.
const (
	Append    = "append"
	Merge     = "merge"
	Overwrite = "overwrite"
)

// Commit is what a writer commits: the rows written so far, and the
// checkpoint that follows them.
type Commit struct {
	// Checkpoint, when not nil, is the source's position after the rows.
	// A sink that implements CheckpointReader stores it atomically with
	// the rows (same transaction, same file), which makes the commit
	// exactly-once: after a crash the rows and the checkpoint are either
	// both there or both not.
	Checkpoint []byte
	// Final is set on the last commit of a run; an overwrite takes effect
	// then.
	Final bool
}

// CheckpointReader is implemented by sinks that store checkpoints with the
// rows. The engine resumes from the sink's checkpoint when it is newer than
// the state store's.
type CheckpointReader interface {
	// Checkpoint returns the last checkpoint committed with the rows of a
	// pipeline's stream, and when; nil when there is none.
	Checkpoint(ctx context.Context, pipeline, stream string) ([]byte, time.Time, error)
}

// ErrClaimed is returned (wrapped) by Claim when another run, on this host
// or another, is writing the pipeline's stream into the same destination.
var ErrClaimed = errors.New("another run is writing this destination")

// Claimer is implemented by sinks that can hold a destination for one run:
// an exclusive lock at the destination itself (a lock file beside the
// folder, an advisory lock in PostgreSQL, a lock object in the bucket), so
// that two hosts with different state stores cannot both check the
// destination and then both write it. The engine claims before it reads
// the destination's checkpoint and releases after the run's final commit.
type Claimer interface {
	// Claim takes the destination of a pipeline's stream for this run,
	// recording holder (host, process, state store) for whoever is refused.
	// It fails at once, wrapping ErrClaimed and naming the holder, when
	// another run holds it. A claim dies with its process (the kernel, the
	// server session, or an expiry in object storage); one that must wait
	// to expire and was taken under the same owner (the state store, whose
	// pipeline lock the caller holds, so its holder is dead) is taken over
	// at once.
	Claim(ctx context.Context, pipeline, stream, owner, holder string) (release func(), err error)
}

// Locator is implemented by sinks that can name where a stream's rows land
// (a folder, a table), without credentials. The host binds checkpoints to
// it: a checkpoint of one destination is never used for another.
type Locator interface {
	Location(stream string) string
}

// StreamChecker is implemented by sinks whose names for a stream's folder
// or table have limits (PostgreSQL's 63-byte identifiers). The host calls
// it for every pipeline before running anything, so a name that would be
// cut, collide or need quoting is refused where the pipeline is declared.
type StreamChecker interface {
	CheckStream(stream string) error
}

// AttributeError is a sink block's attribute whose value the driver
// refuses; the host points its diagnostic at that attribute in the file.
type AttributeError struct {
	Attribute string
	Err       error
}

func (e *AttributeError) Error() string { return e.Err.Error() }
func (e *AttributeError) Unwrap() error { return e.Err }

// BadAttribute returns an AttributeError for attr: a driver's Open uses it
// for a value it refuses, so the user is shown that attribute, not the
// whole block.
func BadAttribute(attr, format string, args ...any) error {
	return &AttributeError{Attribute: attr, Err: fmt.Errorf(format, args...)}
}

// PlainName matches a name that needs no quoting in SQL: a letter or _,
// then letters, digits and _.
var PlainName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// CheckPlainNames returns an AttributeError for the first attribute (in
// names' order) whose non-empty value is not a PlainName: the schema and
// table prefix of the database sinks, which refuse names that need quoting.
func CheckPlainNames(names []string, values map[string]string) error {
	for _, attr := range names {
		if v := values[attr]; v != "" && !PlainName.MatchString(v) {
			return BadAttribute(attr, "%s = %q: use letters, digits and _ only, starting with a letter or _ (names that need quoting are refused)", attr, v)
		}
	}
	return nil
}

// SensitiveAttributes is implemented by drivers whose config holds secrets
// (a DSN with a password): those attributes are never printed.
type SensitiveAttributes interface {
	Sensitive() []string
}

// Sink is an opened destination.
type Sink interface {
	// Open starts writing one stream. Several streams may be open at once.
	Open(ctx context.Context, s Stream) (Writer, error)
	// Close releases the sink. Writers must be committed or aborted first.
	Close() error
}

// Writer receives the rows of one stream.
//
// Rows written are neither visible nor durable until Commit returns nil;
// after it, they survive a crash of the host. A writer ends one way: Abort,
// which discards what was written since the last Commit (so does a crash)
// and releases what the writer holds. Abort after a final Commit only
// releases; it is safe to call more than once, so callers defer it. A writer
// is used by one goroutine at a time.
type Writer interface {
	// Write buffers or writes a record. The writer does not keep rec after
	// Write returns unless it retains it.
	Write(ctx context.Context, rec arrow.Record) error
	// Commit makes every row written so far durable and visible, at once,
	// with c's checkpoint when the sink stores checkpoints. The writer stays
	// open for more rows unless c.Final.
	Commit(ctx context.Context, c Commit) (CommitInfo, error)
	// Abort discards uncommitted rows and ends the writer.
	Abort() error
}

// CommitInfo tells what a commit made visible.
type CommitInfo struct {
	// Rows committed by this call.
	Rows int64
	// Location is where they landed (a file, a table), for the summary.
	Location string
}

var (
	mu      sync.RWMutex
	drivers = map[string]Driver{}
)

// Register makes a driver available under name. It panics when the name is
// taken, as that is a programming error.
func Register(name string, d Driver) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := drivers[name]; dup {
		panic(fmt.Sprintf("sinks: driver %q registered twice", name))
	}
	drivers[name] = d
}

// Lookup returns the driver registered under name.
func Lookup(name string) (Driver, bool) {
	mu.RLock()
	defer mu.RUnlock()
	d, ok := drivers[name]
	return d, ok
}

// Names lists the registered drivers, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(drivers))
	for n := range drivers {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// DecimalText renders value i of a decimal128 column exactly, in plain
// notation with the column's scale ("1234.5600" for scale 4), for sinks that
// write text. Arrow's own rendering goes through a binary float.
func DecimalText(c *array.Decimal128, i int) string {
	scale := int(c.DataType().(*arrow.Decimal128Type).Scale)
	digits := c.Value(i).BigInt().String()
	neg := strings.HasPrefix(digits, "-")
	digits = strings.TrimPrefix(digits, "-")
	if scale > 0 {
		if len(digits) <= scale {
			digits = strings.Repeat("0", scale-len(digits)+1) + digits
		}
		digits = digits[:len(digits)-scale] + "." + digits[len(digits)-scale:]
	}
	if neg {
		digits = "-" + digits
	}
	return digits
}
