package config

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"pipehost/connector"
)

// DecodeConnectorConfig decodes a connector's config block against the schema
// its plugin advertised and returns it as the JSON object Configure takes.
// Unknown attributes, values of the wrong type and missing required ones are
// diagnostics at their place in the file. In sandbox mode required attributes
// may be missing or null: the connector brings its own demo values.
func DecodeConnectorConfig(c *Connector, schema connector.ConfigSchema, sandbox bool) (json.RawMessage, hcl.Diagnostics) {
	spec := hcldec.ObjectSpec{}
	types := map[string]cty.Type{}
	for _, a := range schema.Attributes {
		ty, err := ctyjson.UnmarshalType(a.Type)
		if err != nil {
			return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Connector plugin advertised a bad schema",
				Detail: fmt.Sprintf("Attribute %s of connector %s has type %s: %v.", a.Name, c.Name, a.Type, err), Subject: c.DeclRange.Ptr()}}
		}
		types[a.Name] = ty
		spec[a.Name] = &hcldec.AttrSpec{Name: a.Name, Type: ty, Required: a.Required && !sandbox}
	}
	val, diags := hcldec.Decode(c.Config, spec, EvalContextIn(c.dir))
	if diags.HasErrors() {
		return nil, diags
	}
	if !sandbox {
		content, _ := c.Config.Content(hcldec.ImpliedSchema(spec))
		for _, a := range schema.Attributes {
			if !a.Required || !val.GetAttr(a.Name).IsNull() {
				continue
			}
			expr := content.Attributes[a.Name].Expr
			detail := fmt.Sprintf("Connector %s requires %s, but it evaluated to null. (With --sandbox the connector uses demo credentials instead.)", c.Name, a.Name)
			if v, unset := UnsetEnv(expr); unset {
				detail = fmt.Sprintf("Connector %s requires %s, which reads env(%q), but %s is not set. Set it (with --sandbox the connector uses demo credentials instead).", c.Name, a.Name, v, v)
			}
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Missing value for required attribute",
				Detail: detail, Subject: expr.Range().Ptr()})
		}
		if diags.HasErrors() {
			return nil, diags
		}
	}
	raw, err := ctyjson.Marshal(val, val.Type())
	if err != nil {
		return nil, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Cannot encode connector config", Detail: err.Error(), Subject: c.ConfigRange.Ptr()}}
	}
	return raw, diags
}

// DecodeSinkConfig decodes a sink block into the driver's config struct. An
// attribute refused because it reads an environment variable that is not
// set is reported as that: the attribute, the variable, where.
func DecodeSinkConfig(s *Sink, into any) hcl.Diagnostics {
	diags := gohcl.DecodeBody(s.Body, EvalContextIn(s.dir), into)
	if !diags.HasErrors() {
		return diags
	}
	body, ok := s.Body.(*hclsyntax.Body)
	if !ok {
		return diags
	}
	for i, d := range diags {
		for name, a := range body.Attributes {
			v, unset := UnsetEnv(a.Expr)
			if !unset || d.Subject == nil || !a.SrcRange.Overlaps(*d.Subject) {
				continue
			}
			diags[i] = &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Environment variable not set",
				Detail:  fmt.Sprintf("Sink %s.%s: %s = env(%q), but %s is not set. Set it, or give a default: env(%q, \"...\").", s.Type, s.Name, name, v, v, v),
				Subject: a.Expr.Range().Ptr()}
		}
	}
	return diags
}

// UnsetEnv says whether expr is a call env("NAME") without a default whose
// variable is not set, and names the variable: the cause of a null value
// that diagnostics can then name.
func UnsetEnv(expr hcl.Expression) (string, bool) {
	if t, ok := expr.(*hclsyntax.TemplateWrapExpr); ok {
		expr = t.Wrapped
	}
	call, ok := expr.(*hclsyntax.FunctionCallExpr)
	if !ok || call.Name != "env" || len(call.Args) != 1 {
		return "", false
	}
	v, diags := call.Args[0].Value(nil)
	if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
		return "", false
	}
	if _, set := os.LookupEnv(v.AsString()); set {
		return "", false
	}
	return v.AsString(), true
}

// SensitiveAttributes returns the ranges of the attributes of c's config
// block that the schema marks sensitive, so diagnostics on them can be
// printed without their source line.
func SensitiveAttributes(c *Connector, schema connector.ConfigSchema) []hcl.Range {
	attrs, _ := c.Config.JustAttributes()
	var out []hcl.Range
	for _, a := range schema.Attributes {
		if at, ok := attrs[a.Name]; ok && a.Sensitive {
			out = append(out, at.Range)
		}
	}
	return out
}

// WriteDiagnostics prints each diagnostic as
//
//	Error: Unsupported argument
//
//	  at pipeline.hcl:7:5
//	     7 |     consumer_secrt = env("NUORDER_CONSUMER_SECRET")
//	       |     ^^^^^^^^^^^^^^
//
//	  An argument named "consumer_secrt" is not expected here. Did you mean ...?
//
// The location is file:line:col (as editors and CI annotators read it). A
// diagnostic on a sensitive attribute is printed without its source line, so a
// secret written into the file is never shown.
func WriteDiagnostics(w io.Writer, f *File, diags hcl.Diagnostics, sensitive []hcl.Range, color bool) {
	files := map[string]*hcl.File{}
	if f != nil && f.Parser != nil {
		files = f.Parser.Files()
	}
	// Whatever the caller knows, attributes whose names say they hold a
	// secret are never shown: a diagnostic can come before any plugin or
	// sink driver has said which of its attributes are sensitive.
	for _, hf := range files {
		sensitive = append(sensitive, secretLooking(hf.Body)...)
	}
	sort.SliceStable(diags, func(i, j int) bool { return diags[i].Severity < diags[j].Severity })
	bold, reset := "", ""
	if color {
		bold, reset = "\x1b[1m", "\x1b[0m"
	}
	for _, d := range diags {
		label := "Error"
		if d.Severity == hcl.DiagWarning {
			label = "Warning"
		}
		fmt.Fprintf(w, "%s%s: %s%s\n", bold, label, d.Summary, reset)
		if d.Subject != nil {
			r := *d.Subject
			fmt.Fprintf(w, "\n  at %s:%d:%d\n", r.Filename, r.Start.Line, r.Start.Column)
			if hf, ok := files[r.Filename]; ok && !overlaps(r, sensitive) {
				writeSnippet(w, hf.Bytes, r)
			}
		}
		if d.Detail != "" {
			fmt.Fprintf(w, "\n  %s\n", strings.ReplaceAll(d.Detail, "\n", "\n  "))
		}
		fmt.Fprintln(w)
	}
}

func overlaps(r hcl.Range, ranges []hcl.Range) bool {
	for _, s := range ranges {
		if s.Filename == r.Filename && s.Start.Line <= r.End.Line && r.Start.Line <= s.End.Line {
			return true
		}
	}
	return false
}

// writeSnippet prints the first line of r with the range underlined. The
// line is cut after the range: a diagnostic about an attribute's name (a
// misspelt "consumer_secrt", say) must not print the value beside it.
func writeSnippet(w io.Writer, src []byte, r hcl.Range) {
	lines := strings.Split(string(src), "\n")
	if r.Start.Line < 1 || r.Start.Line > len(lines) {
		return
	}
	line := strings.TrimRight(lines[r.Start.Line-1], "\r")
	if r.End.Line == r.Start.Line && r.End.Column-1 < len(line) && r.End.Column > r.Start.Column {
		line = line[:r.End.Column-1]
	}
	fmt.Fprintf(w, "  %4d | %s\n", r.Start.Line, line)
	end := r.End.Column
	if r.End.Line != r.Start.Line || end > len(line)+1 {
		end = len(line) + 1
	}
	width := end - r.Start.Column
	if width < 1 {
		width = 1
	}
	fmt.Fprintf(w, "       | %s%s\n", strings.Repeat(" ", max(r.Start.Column-1, 0)), strings.Repeat("^", width))
}

// Suggest returns the candidate closest to name, for "did you mean" hints, or
// "" when none is close (connector.Closest: one rule for the host and the
// connectors).
func Suggest(name string, candidates []string) string {
	return connector.Closest(name, candidates)
}

// secretLooking returns the ranges of the attributes, in a body and its
// blocks, whose names say they hold a secret: dsn, and names with secret,
// password or token in them.
func secretLooking(body hcl.Body) []hcl.Range {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []hcl.Range
	for name, a := range sb.Attributes {
		n := strings.ToLower(name)
		if n == "dsn" || strings.Contains(n, "secret") || strings.Contains(n, "password") || strings.Contains(n, "token") {
			out = append(out, a.SrcRange)
		}
	}
	for _, b := range sb.Blocks {
		out = append(out, secretLooking(b.Body)...)
	}
	return out
}
