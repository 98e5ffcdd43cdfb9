// Package config reads pipeline files (HCL) into blocks the host acts on.
//
// Parsing is in two steps, because the shape of a connector's `config` block
// is only known once its plugin has told the host its schema: Load checks
// everything the file alone can tell (block structure, references, env()
// calls) and keeps each config body undecoded; DecodeConnectorConfig then
// decodes a body against the schema the plugin advertised. Every problem is
// an hcl.Diagnostic pointing at the file, line and column that caused it.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
)

// File is a loaded pipeline file.
type File struct {
	// Path is the file as given; Dir is its folder, from which relative
	// paths inside it are resolved.
	Path, Dir  string
	Connectors []*Connector
	Sinks      []*Sink
	Pipelines  []*Pipeline
	// Notify lists the notify blocks: where each run's outcome is posted.
	Notify []*Notify
	// StateDir is the folder of the local state store: the `state` block's
	// path, resolved against Dir, or Dir/.pipeline-state/STEM, STEM being
	// the file's name without its extension, so each pipeline file has its
	// own state and pipeline names may repeat across files.
	StateDir string
	// SharedStateDir is Dir/.pipeline-state when StateDir is the default:
	// the folder every file of Dir shared before each had its own, whose
	// state a file's store adopts (state.OpenLocalAdopting).
	SharedStateDir string
	// StateBackend is "local" (default) or "postgres"; StateDSN and
	// StateSchema configure the latter. StateDSNRange locates the DSN, a
	// secret never printed.
	StateBackend, StateDSN, StateSchema string
	StateDSNRange                       *hcl.Range
	// Parser holds the file's source, for printing diagnostics with snippets.
	Parser *hclparse.Parser
}

// Connector is a `connector "NAME"` block.
type Connector struct {
	// dir is the pipeline file's folder, for file() in the block.
	dir  string
	Name string
	// Plugin is the plugin binary, an absolute path resolved against the
	// file's folder; empty when the block names none (the host then finds
	// NAME-plugin, see plugins.Find) or names a bare file (PluginName).
	Plugin string
	// PluginName is the plugin attribute when it is a bare file name (no
	// folder): the host looks it up in the file's folder, then where
	// plugins.Find looks. Plugin is empty then.
	PluginName string
	// SHA256 pins the plugin binary's checksum when not empty.
	SHA256 string
	// Config is the undecoded `config` block body (an empty body when the
	// block is absent); ConfigRange is where it is, or the connector block.
	Config      hcl.Body
	ConfigRange hcl.Range
	DeclRange   hcl.Range
}

// Sink is a `sink "TYPE" "NAME"` block.
type Sink struct {
	// dir is the pipeline file's folder, for file() in the block.
	dir        string
	Type, Name string
	// Body is the undecoded block body, decoded by the sink's driver.
	Body      hcl.Body
	TypeRange hcl.Range
	DeclRange hcl.Range
}

// Key is "TYPE.NAME", the sink's address after `sink.`.
func (s *Sink) Key() string { return s.Type + "." + s.Name }

// Ref is a reference to a stream or sink: connector.NAME.STREAM or
// sink.TYPE.NAME.
type Ref struct {
	// Kind is "connector" or "sink".
	Kind string
	// For a connector: Name and Stream. For a sink: Type and Name.
	Type, Name, Stream string
	Range              hcl.Range
}

// String is the reference as written.
func (r Ref) String() string {
	if r.Kind == "sink" {
		return "sink." + r.Type + "." + r.Name
	}
	return "connector." + r.Name + "." + r.Stream
}

// Pipeline is a `pipeline "NAME"` block.
type Pipeline struct {
	Name     string
	From, To Ref
	// Options are handed to the source stream's read, values as strings;
	// OptionsRange locates them.
	Options      map[string]string
	OptionsRange *hcl.Range
	// OptionRanges locate each option's value (in `options` or
	// `to_options`), for diagnostics that point at the one at fault.
	OptionRanges, ToOptionRanges map[string]hcl.Range
	// ToOptions are handed to a connector sink stream's write (the
	// `to_options` attribute); ToOptionsRange locates it.
	ToOptions      map[string]string
	ToOptionsRange *hcl.Range
	Schedule       string
	// Mode is the write mode for a sink target: append (default), merge
	// or overwrite; ModeRange locates it.
	Mode      string
	ModeRange hcl.Range
	// Columns maps the target stream's columns (when To is a connector's
	// sink stream) to input columns or constants, by target column name.
	Columns map[string]ColumnSpec
	// Rejects is the folder rejected rows are written to (resolved
	// against the file's folder), for pipelines into a connector.
	Rejects string
	// DeclRange is the block header.
	DeclRange hcl.Range
}

// ColumnSpec is one entry of a pipeline's column mapping.
type ColumnSpec struct {
	From   string  // input column
	Value  *string // constant, as text
	Format string  // date format
	// Range is the mapping's place in the file, for diagnostics.
	Range hcl.Range
}

// BuiltinFiles is the name of the built-in files connector, usable in
// references without a connector block.
const BuiltinFiles = "files"

// builtins are the connector names a file may use without declaring them:
// connectors the host runs itself.
var builtins = map[string]bool{BuiltinFiles: true}

// IsBuiltin says whether name is a connector files may use without a block.
func IsBuiltin(name string) bool { return builtins[name] }

// RegisterBuiltin lets files use name without a connector block: the host
// runs such a connector itself (its engine.Opener opens it). Call it before
// loading files, from main or a test.
func RegisterBuiltin(name string) { builtins[name] = true }

var fileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
	{Type: "connector", LabelNames: []string{"name"}},
	{Type: "sink", LabelNames: []string{"type", "name"}},
	{Type: "pipeline", LabelNames: []string{"name"}},
	{Type: "state"},
	{Type: "notify", LabelNames: []string{"name"}},
}}

var stateSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "path"}, {Name: "backend"}, {Name: "dsn"}, {Name: "schema"}}}

// DefaultStateDir is the folder, relative to the pipeline file, that holds
// each file's state folder (named after the file) when the file has no
// state block.
const DefaultStateDir = ".pipeline-state"

// MaxFileBytes and MaxNesting bound what the parser is given: a pipeline
// file is a few kilobytes; /dev/zero or 60,000 nested brackets (which
// overflowed the parser's stack) are refused with a diagnostic.
const (
	MaxFileBytes = 4 << 20
	MaxNesting   = 100
)

// readLimited reads at most max bytes of a file, and fails past them.
func readLimited(path string, max int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	src, err := io.ReadAll(io.LimitReader(fh, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(src)) > max {
		return nil, fmt.Errorf("%s is larger than %d MiB: that is not a pipeline file", path, max>>20)
	}
	return src, nil
}

// checkNesting refuses brackets nested deeper than MaxNesting (outside
// strings and comments, roughly: enough to keep the parser's recursion
// bounded), pointing at the first one too deep.
func checkNesting(src []byte, path string) *hcl.Diagnostic {
	depth, line, col := 0, 1, 0
	inString := false
	for i := 0; i < len(src); i++ {
		ch := src[i]
		col++
		switch {
		case ch == '\n':
			line, col = line+1, 0
			inString = false
		case inString:
			if ch == '\\' {
				i++
			} else if ch == '"' {
				inString = false
			}
		case ch == '"':
			inString = true
		case ch == '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			i--
		case ch == '{' || ch == '[' || ch == '(':
			if depth++; depth > MaxNesting {
				pos := hcl.Pos{Line: line, Column: col, Byte: i}
				return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Nested too deeply",
					Detail:  fmt.Sprintf("Brackets are nested more than %d deep here: that is not a pipeline file.", MaxNesting),
					Subject: &hcl.Range{Filename: path, Start: pos, End: hcl.Pos{Line: line, Column: col + 1, Byte: i + 1}}}
			}
		case ch == '}' || ch == ']' || ch == ')':
			depth--
		}
	}
	return nil
}

// Load parses a pipeline file and checks its structure. The returned File is
// usable only when the diagnostics have no error.
func Load(path string) (*File, hcl.Diagnostics) {
	p := hclparse.NewParser()
	f := &File{Path: path, Dir: filepath.Dir(path), Parser: p}
	f.SharedStateDir = filepath.Join(f.Dir, DefaultStateDir)
	f.StateDir = filepath.Join(f.SharedStateDir, strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	src, err := readLimited(path, MaxFileBytes)
	if err != nil {
		return f, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot read pipeline file", Detail: err.Error()}}
	}
	if d := checkNesting(src, path); d != nil {
		return f, hcl.Diagnostics{d}
	}
	hf, diags := p.ParseHCL(src, path)
	if diags.HasErrors() {
		return f, diags
	}
	content, more := hf.Body.Content(fileSchema)
	diags = append(diags, more...)
	ectx := EvalContextIn(f.Dir)
	names := map[string]hcl.Range{}
	unique := func(kind, name string, r hcl.Range) {
		key := kind + " " + name
		if prev, dup := names[key]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate " + kind + " block",
				Detail: fmt.Sprintf("A %s block %q was already declared at %s.", kind, name, prev), Subject: r.Ptr()})
		}
		names[key] = r
	}
	for _, b := range content.Blocks {
		switch b.Type {
		case "connector":
			unique("connector", b.Labels[0], b.DefRange)
			c, d := loadConnector(b, f.Dir, ectx)
			diags = append(diags, d...)
			f.Connectors = append(f.Connectors, c)
		case "sink":
			unique("sink", b.Labels[0]+"."+b.Labels[1], b.DefRange)
			f.Sinks = append(f.Sinks, &Sink{Type: b.Labels[0], Name: b.Labels[1], Body: b.Body, TypeRange: b.LabelRanges[0], DeclRange: b.DefRange, dir: f.Dir})
		case "state":
			unique("state", "", b.DefRange)
			content, d := b.Body.Content(stateSchema)
			diags = append(diags, d...)
			if a, ok := content.Attributes["path"]; ok {
				var dir string
				diags = append(diags, evalString(a, ectx, &dir)...)
				if dir != "" && !filepath.IsAbs(dir) {
					dir = filepath.Join(f.Dir, dir)
				}
				if dir != "" {
					f.StateDir, f.SharedStateDir = dir, ""
				}
			}
			f.StateBackend = "local"
			if a, ok := content.Attributes["backend"]; ok {
				diags = append(diags, evalString(a, ectx, &f.StateBackend)...)
				if f.StateBackend != "local" && f.StateBackend != "postgres" {
					diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unknown state backend",
						Detail: fmt.Sprintf("backend is %q; it must be \"local\" or \"postgres\".", f.StateBackend), Subject: a.Expr.Range().Ptr()})
				}
			}
			if a, ok := content.Attributes["dsn"]; ok {
				r := a.Range
				f.StateDSNRange = &r
				diags = append(diags, evalString(a, ectx, &f.StateDSN)...)
			}
			f.StateSchema = "public"
			if a, ok := content.Attributes["schema"]; ok {
				diags = append(diags, evalString(a, ectx, &f.StateSchema)...)
			}
			if f.StateBackend == "postgres" && f.StateDSN == "" && !diags.HasErrors() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing state dsn",
					Detail: "The postgres state backend needs dsn (a PostgreSQL connection string).", Subject: b.DefRange.Ptr()})
			}
		case "notify":
			unique("notify", b.Labels[0], b.DefRange)
			n, d := loadNotify(b, ectx)
			diags = append(diags, d...)
			f.Notify = append(f.Notify, n)
		case "pipeline":
			unique("pipeline", b.Labels[0], b.DefRange)
			if name := b.Labels[0]; !pipelineName.MatchString(name) || name == "." || name == ".." {
				r := b.DefRange
				if len(b.LabelRanges) > 0 {
					r = b.LabelRanges[0]
				}
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid pipeline name",
					Detail:  fmt.Sprintf("Pipeline name %q: use letters, digits, _, - and . (not first), up to 100 characters; the name becomes part of file names (state, rejects), so it cannot be empty or hold a path.", name),
					Subject: r.Ptr()})
			}
			pl, d := loadPipeline(b, ectx)
			diags = append(diags, d...)
			f.Pipelines = append(f.Pipelines, pl)
		}
	}
	if !diags.HasErrors() {
		diags = append(diags, f.checkRefs()...)
	}
	return f, diags
}

// checkRefs checks that every pipeline names a declared connector and sink.
// Whether the stream exists is checked later, against the plugin's catalog.
func (f *File) checkRefs() hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, pl := range f.Pipelines {
		for _, r := range []Ref{pl.From, pl.To} {
			switch r.Kind {
			case "connector":
				if f.Connector(r.Name) == nil && !builtins[r.Name] {
					diags = append(diags, undeclared(r, "connector", r.Name, f.connectorNames()))
				}
			case "sink":
				if f.Sink(r.Type, r.Name) == nil {
					diags = append(diags, undeclared(r, "sink", r.Type+"."+r.Name, f.sinkNames()))
				}
			}
		}
	}
	return diags
}

func undeclared(r Ref, kind, name string, have []string) *hcl.Diagnostic {
	detail := fmt.Sprintf("No %s block named %q is declared in this file.", kind, name)
	if len(have) > 0 {
		detail += fmt.Sprintf(" Declared: %s.", strings.Join(have, ", "))
	}
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to undeclared " + kind, Detail: detail, Subject: r.Range.Ptr()}
}

// Connector returns the named connector block, or nil.
func (f *File) Connector(name string) *Connector {
	for _, c := range f.Connectors {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// Sink returns the sink block of that type and name, or nil.
func (f *File) Sink(typ, name string) *Sink {
	for _, s := range f.Sinks {
		if s.Type == typ && s.Name == name {
			return s
		}
	}
	return nil
}

func (f *File) connectorNames() []string {
	var out []string
	for _, c := range f.Connectors {
		out = append(out, c.Name)
	}
	sort.Strings(out)
	return out
}

func (f *File) sinkNames() []string {
	var out []string
	for _, s := range f.Sinks {
		out = append(out, s.Key())
	}
	sort.Strings(out)
	return out
}

// Pipeline returns the named pipeline, or nil.
func (f *File) Pipeline(name string) *Pipeline {
	for _, p := range f.Pipelines {
		if p.Name == name {
			return p
		}
	}
	return nil
}
