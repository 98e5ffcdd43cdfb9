package engine

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"pipehost/connector"
	"pipehost/pipeline/config"
	"pipehost/sinks"
)

// Validation: every pipeline's references, modes, options and names,
// checked against the catalogs and sinks before anything runs.

// checkPipeline checks a pipeline's source stream against its connector's
// catalog.
func (h *Host) checkPipeline(pl *config.Pipeline) hcl.Diagnostics {
	var diags hcl.Diagnostics
	c := h.Connectors[pl.From.Name]
	if c == nil {
		return nil // its connector failed to start, already reported
	}
	st, ok := connector.FindStream(c.Streams, pl.From.Stream, connector.Source)
	if !ok {
		var names []string
		for _, s := range c.Streams {
			if s.Kind == connector.Source {
				names = append(names, s.Name)
			}
		}
		sort.Strings(names)
		detail := fmt.Sprintf("Connector %s has no stream %q. Its source streams: %s.", c.Name, pl.From.Stream, strings.Join(names, ", "))
		if s := config.Suggest(pl.From.Stream, names); s != "" {
			detail = fmt.Sprintf("Connector %s has no stream %q. Did you mean %q? Its source streams: %s.", c.Name, pl.From.Stream, s, strings.Join(names, ", "))
		}
		return append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Reference to unknown stream", Detail: detail, Subject: pl.From.Range.Ptr()})
	}
	if st.Kind != connector.Source {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Stream cannot be read",
			Detail: fmt.Sprintf("%s is a %s stream: it can only be written to.", pl.From, st.Kind), Subject: pl.From.Range.Ptr()})
	}
	diags = append(diags, checkOptions(pl.Options, st, pl.From.String(), "options", pl.OptionsRange, pl.OptionRanges)...)
	if st.Notice != "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Stream " + pl.From.String() + " needs configuring",
			Detail: st.Notice + ".", Subject: pl.From.Range.Ptr()})
	}
	if st.Disabled != "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Stream is disabled",
			Detail: fmt.Sprintf("%s is disabled (%s): running pipeline %s will fail until it is enabled.", pl.From, st.Disabled, pl.Name), Subject: pl.From.Range.Ptr()})
	}
	if pl.To.Kind == "connector" {
		return append(diags, h.checkPush(pl)...)
	}
	if pl.ToOptionsRange != nil {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "to_options into a sink",
			Detail: "to_options are handed to a connector's sink stream; a sink takes its settings in its sink block.", Subject: pl.ToOptionsRange})
	}
	if sc, ok := h.sinks[pl.To.Type+"."+pl.To.Name].(sinks.StreamChecker); ok {
		if err := sc.CheckStream(st.Name); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Stream " + st.Name + " cannot land in " + pl.To.String(),
				Detail: err.Error() + ".", Subject: pl.To.Range.Ptr()})
		}
	}
	if drv := h.drivers[pl.To.Type+"."+pl.To.Name]; drv != nil {
		modes := drv.Modes()
		ok := false
		for _, m := range modes {
			ok = ok || m == pl.Mode
		}
		if !ok {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unsupported write mode",
				Detail: fmt.Sprintf("Sink %s supports mode %s, not %q.", pl.To, strings.Join(modes, ", "), pl.Mode), Subject: pl.ModeRange.Ptr()})
		} else if pl.Mode == sinks.Merge && len(st.PrimaryKey) == 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Merge needs a primary key",
				Detail: fmt.Sprintf("%s has no primary key to merge on; use mode append or overwrite.", pl.From), Subject: pl.ModeRange.Ptr()})
		}
	}
	if len(pl.Columns) > 0 {
		for _, spec := range pl.Columns {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Column mapping into a sink",
				Detail: "columns and column blocks map input columns onto a connector's sink stream; a sink takes the source stream's columns as they are.", Subject: spec.Range.Ptr()})
			break
		}
	}
	return diags
}

// checkPush checks a pipeline into a connector's sink stream: the stream
// exists and every mapped column is one of its columns.
func (h *Host) checkPush(pl *config.Pipeline) hcl.Diagnostics {
	c := h.Connectors[pl.To.Name]
	if c == nil {
		return nil
	}
	st, ok := connector.FindStream(c.Streams, pl.To.Stream, connector.Sink)
	if !ok {
		var names []string
		for _, s := range c.Streams {
			if s.Kind == connector.Sink {
				names = append(names, s.Name)
			}
		}
		sort.Strings(names)
		detail := fmt.Sprintf("Connector %s has no sink stream %q. Its sink streams: %s.", c.Name, pl.To.Stream, strings.Join(names, ", "))
		if len(names) == 0 {
			detail = fmt.Sprintf("Connector %s has no sink streams: it can only be read.", c.Name)
		} else if s := config.Suggest(pl.To.Stream, names); s != "" {
			detail = fmt.Sprintf("Connector %s has no sink stream %q. Did you mean %q? Its sink streams: %s.", c.Name, pl.To.Stream, s, strings.Join(names, ", "))
		}
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Reference to unknown sink stream", Detail: detail, Subject: pl.To.Range.Ptr()}}
	}
	var cols []string
	for _, f := range st.Schema.Fields() {
		cols = append(cols, f.Name)
	}
	var diags hcl.Diagnostics
	diags = append(diags, checkOptions(pl.ToOptions, st, pl.To.String(), "to_options", pl.ToOptionsRange, pl.ToOptionRanges)...)
	if st.Notice != "" {
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagWarning, Summary: "Stream " + c.Name + "." + st.Name + " needs configuring",
			Detail: st.Notice + ".", Subject: pl.To.Range.Ptr()})
	}
	names := make([]string, 0, len(pl.Columns))
	for name := range pl.Columns {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if len(st.Schema.FieldIndices(name)) > 0 {
			continue
		}
		detail := fmt.Sprintf("Stream %s.%s has no column %q. Its columns: %s.", c.Name, st.Name, name, strings.Join(cols, ", "))
		if s := config.Suggest(name, cols); s != "" {
			detail = fmt.Sprintf("Stream %s.%s has no column %q. Did you mean %q? Its columns: %s.", c.Name, st.Name, name, s, strings.Join(cols, ", "))
		}
		spec := pl.Columns[name]
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Mapping to an unknown column", Detail: detail, Subject: spec.Range.Ptr()})
	}
	return diags
}

// checkOptions refuses, where the pipeline sets them, option names a stream
// does not declare and values that do not fit their declaration (when the
// stream declares its options). The diagnostic points at the option's value
// when the file writes the options as a literal map, else at the attribute.
func checkOptions(opts map[string]string, st connector.Stream, stream, attr string, at *hcl.Range, items map[string]hcl.Range) hcl.Diagnostics {
	if st.Options == nil || len(opts) == 0 {
		return nil
	}
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var diags hcl.Diagnostics
	for _, k := range keys {
		err := connector.CheckOptions(stream, st.Options, map[string]string{k: opts[k]})
		if err == nil {
			continue
		}
		summary, subject := "Invalid option value", at
		var oe *connector.OptionError
		if errors.As(err, &oe) && oe.Unknown {
			summary = "Unknown option"
		}
		if r, ok := items[k]; ok {
			subject = &r
		}
		diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: strings.Replace(fmt.Sprintf("In %s: %s.", attr, err), "?.", "?", 1), Subject: subject})
	}
	return diags
}

// supportsMode says whether a sink driver takes a write mode.
func supportsMode(drv sinks.Driver, mode string) bool {
	if drv == nil {
		return false
	}
	for _, m := range drv.Modes() {
		if m == mode {
			return true
		}
	}
	return false
}
