package main

// The --json outputs: one JSON document on stdout, whose shape is stable
// within a format_version (fields may be added, none renamed or removed),
// so schedulers and CI can read results. Human messages still go to
// stderr; the exit code is the same as without --json.

import (
	"encoding/json"
	"io"
	"time"

	"github.com/hashicorp/hcl/v2"

	"pipehost/connector"
	"pipehost/pipeline/engine"
	"pipehost/pipeline/state"
)

// jsonFormat is the format_version of every --json document.
const jsonFormat = "1"

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// jsonDiagnostic is a diagnostic, as terraform validate -json shapes them.
type jsonDiagnostic struct {
	Severity string     `json:"severity"` // "error" or "warning"
	Summary  string     `json:"summary"`
	Detail   string     `json:"detail,omitempty"`
	Range    *jsonRange `json:"range,omitempty"`
}

type jsonRange struct {
	Filename string  `json:"filename"`
	Start    jsonPos `json:"start"`
	End      jsonPos `json:"end"`
}

type jsonPos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

func diagnosticsJSON(diags hcl.Diagnostics) []jsonDiagnostic {
	out := []jsonDiagnostic{}
	for _, d := range diags {
		jd := jsonDiagnostic{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			jd.Severity = "warning"
		}
		if r := d.Subject; r != nil {
			jd.Range = &jsonRange{Filename: r.Filename, Start: jsonPos{r.Start.Line, r.Start.Column, r.Start.Byte},
				End: jsonPos{r.End.Line, r.End.Column, r.End.Byte}}
		}
		out = append(out, jd)
	}
	return out
}

// validateJSON is `validate --json`.
type validateJSON struct {
	FormatVersion string           `json:"format_version"`
	Valid         bool             `json:"valid"`
	ErrorCount    int              `json:"error_count"`
	WarningCount  int              `json:"warning_count"`
	Diagnostics   []jsonDiagnostic `json:"diagnostics"`
}

func newValidateJSON(diags hcl.Diagnostics) validateJSON {
	v := validateJSON{FormatVersion: jsonFormat, Valid: !diags.HasErrors(), Diagnostics: diagnosticsJSON(diags)}
	for _, d := range diags {
		if d.Severity == hcl.DiagWarning {
			v.WarningCount++
		} else {
			v.ErrorCount++
		}
	}
	return v
}

// resultJSON is one pipeline of `run --json` or `plan --json`.
type resultJSON struct {
	Name     string `json:"name"`
	From     string `json:"from"`
	To       string `json:"to"`
	Kind     string `json:"kind"`   // "pull" (into a sink) or "push" (into a connector's sink stream)
	Status   string `json:"status"` // "ok" or "failed"
	Error    string `json:"error,omitempty"`
	Rows     int64  `json:"rows"` // committed (run) or would be accepted (plan of a push)
	Rejected int64  `json:"rejected"`
	// Requests and Retries the connector made to its service (run only).
	Requests int64 `json:"requests"`
	Retries  int64 `json:"retries"`
	// DurationMS is how long the run took (run only).
	DurationMS  int64              `json:"duration_ms,omitempty"`
	Files       []string           `json:"files,omitempty"`
	RejectsFile string             `json:"rejects_file,omitempty"`
	Rejects     []string           `json:"rejected_sample,omitempty"`
	Actions     []connector.Action `json:"actions,omitempty"`
	// ResumeFrom says where a pull would resume (plan only).
	ResumeFrom string `json:"resume_from,omitempty"`
	// Estimate is what the connector expects a pull to cost (plan only;
	// absent when it makes no estimates).
	Estimate *connector.Estimate `json:"estimate,omitempty"`
}

func newResultJSON(r engine.Result) resultJSON {
	j := resultJSON{Name: r.Pipeline, From: r.Stream, To: r.Sink, Kind: "pull", Status: "ok", Rows: r.Rows, Actions: sortedActions(r),
		Requests: r.Requests, Retries: r.Retries}
	if r.Pull != nil {
		j.Files, j.Estimate = r.Pull.Files, r.Pull.Estimate
	}
	if p := r.Push; p != nil {
		j.Kind, j.Rejected, j.RejectsFile, j.Rejects = "push", p.Rejected, p.RejectsFile, p.RejectSample
	}
	if r.Err != nil {
		j.Status, j.Error = "failed", r.Err.Error()
	}
	if !r.DryRun {
		j.DurationMS = r.Duration.Milliseconds()
	}
	return j
}

// runJSON is `run --json` and `plan --json`.
type runJSON struct {
	FormatVersion string       `json:"format_version"`
	OK            bool         `json:"ok"`
	ExitCode      int          `json:"exit_code"`
	FinishedAt    time.Time    `json:"finished_at"`
	Pipelines     []resultJSON `json:"pipelines"`
}

// streamsJSON is `streams --json`.
type streamsJSON struct {
	FormatVersion string          `json:"format_version"`
	Connectors    []connectorJSON `json:"connectors"`
}

type connectorJSON struct {
	Name    string       `json:"name"`
	Plugin  string       `json:"plugin"`
	Version string       `json:"version"`
	Streams []streamJSON `json:"streams"`
}

type streamJSON struct {
	Name        string   `json:"name"`
	Kind        string   `json:"kind"` // "source" or "sink"
	Description string   `json:"description,omitempty"`
	PrimaryKey  []string `json:"primary_key"`
	CursorField string   `json:"cursor_field,omitempty"`
	Disabled    string   `json:"disabled,omitempty"`
	Notice      string   `json:"notice,omitempty"`
	// Options are the names of the options the stream takes (null: it
	// does not say); OptionSpecs describe each: kind, allowed values,
	// default.
	Options     []string           `json:"options"`
	OptionSpecs []connector.Option `json:"option_specs,omitempty"`
	Columns     []columnJSON       `json:"columns"`
}

type columnJSON struct {
	Name     string `json:"name"`
	Type     string `json:"type"` // the Arrow type, as pipeline streams prints it
	Nullable bool   `json:"nullable"`
}

func newStreamJSON(st connector.Stream) streamJSON {
	j := streamJSON{Name: st.Name, Kind: string(st.Kind), Description: st.Description, PrimaryKey: st.PrimaryKey,
		CursorField: st.CursorField, Disabled: st.Disabled, Notice: st.Notice, OptionSpecs: st.Options, Columns: []columnJSON{}}
	if st.Options != nil {
		j.Options = connector.OptionNames(st.Options)
	}
	if j.PrimaryKey == nil {
		j.PrimaryKey = []string{}
	}
	if st.Schema != nil {
		for _, f := range st.Schema.Fields() {
			j.Columns = append(j.Columns, columnJSON{Name: f.Name, Type: f.Type.String(), Nullable: f.Nullable})
		}
	}
	return j
}

// stateJSON is `state show --json`. A checkpoint is given as `state show`
// describes it (long values cut), with its full size.
type stateJSON struct {
	FormatVersion string           `json:"format_version"`
	Entries       []stateEntryJSON `json:"entries"`
}

type stateEntryJSON struct {
	Pipeline        string         `json:"pipeline"`
	Stream          string         `json:"stream"`
	Checkpoint      string         `json:"checkpoint,omitempty"`
	CheckpointBytes int            `json:"checkpoint_bytes"`
	UpdatedAt       *time.Time     `json:"updated_at,omitempty"`
	LastRun         *state.Run     `json:"last_run,omitempty"`
	Binding         *state.Binding `json:"binding,omitempty"`
}

func newStateJSON(entries []state.Entry) stateJSON {
	out := stateJSON{FormatVersion: jsonFormat, Entries: []stateEntryJSON{}}
	for _, e := range entries {
		j := stateEntryJSON{Pipeline: e.Pipeline, Stream: e.Stream, LastRun: e.LastRun, Binding: e.Binding}
		if cp := e.Bytes(); cp != nil {
			j.Checkpoint, j.CheckpointBytes = state.Describe(cp), len(cp)
		}
		if !e.UpdatedAt.IsZero() {
			t := e.UpdatedAt
			j.UpdatedAt = &t
		}
		out.Entries = append(out.Entries, j)
	}
	return out
}
