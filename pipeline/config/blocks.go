package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/robfig/cron/v3"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var connectorSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{{Name: "plugin"}, {Name: "sha256"}},
	Blocks:     []hcl.BlockHeaderSchema{{Type: "config"}},
}

var pipelineSchema = &hcl.BodySchema{
	Attributes: []hcl.AttributeSchema{
		{Name: "from", Required: true}, {Name: "to", Required: true},
		{Name: "options"}, {Name: "to_options"}, {Name: "schedule"}, {Name: "columns"}, {Name: "rejects"}, {Name: "mode"},
	},
	Blocks: []hcl.BlockHeaderSchema{{Type: "column", LabelNames: []string{"name"}}},
}

var columnSchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "from"}, {Name: "value"}, {Name: "format"}}}

// pipelineName is what a pipeline may be called: it becomes part of file
// names (its state file, its rejects files).
var pipelineName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$`)

func loadConnector(b *hcl.Block, dir string, ectx *hcl.EvalContext) (*Connector, hcl.Diagnostics) {
	c := &Connector{Name: b.Labels[0], DeclRange: b.DefRange, Config: hcl.EmptyBody(), ConfigRange: b.DefRange, dir: dir}
	content, diags := b.Body.Content(connectorSchema)
	if a, ok := content.Attributes["plugin"]; ok {
		diags = append(diags, evalString(a, ectx, &c.Plugin)...)
		switch {
		case c.Plugin == "":
		case !strings.ContainsAny(c.Plugin, `/\`):
			// A bare name is looked up: the file's folder first, then
			// where plugins.Find looks.
			c.PluginName, c.Plugin = c.Plugin, ""
		case !filepath.IsAbs(c.Plugin):
			// A path is that file, from the pipeline file's folder: never
			// a binary of the same name found on PATH.
			abs, err := filepath.Abs(filepath.Join(dir, c.Plugin))
			if err == nil {
				c.Plugin = abs
			}
		}
	}
	if a, ok := content.Attributes["sha256"]; ok {
		diags = append(diags, evalString(a, ectx, &c.SHA256)...)
	}
	for i, cb := range content.Blocks {
		if i > 0 {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate config block",
				Detail: "A connector takes one config block.", Subject: cb.DefRange.Ptr()})
			continue
		}
		c.Config, c.ConfigRange = cb.Body, cb.DefRange
	}
	return c, diags
}

// evalString evaluates a string attribute.
func evalString(a *hcl.Attribute, ectx *hcl.EvalContext, into *string) hcl.Diagnostics {
	v, diags := a.Expr.Value(ectx)
	if diags.HasErrors() {
		return diags
	}
	v, err := convert.Convert(v, cty.String)
	if err != nil || v.IsNull() {
		msg := "a string is required"
		if name, unset := UnsetEnv(a.Expr); unset {
			msg = fmt.Sprintf("%s = env(%q), but %s is not set. Set it, or give a default: env(%q, \"...\").", a.Name, name, name, name)
		} else if err == nil {
			msg = "the value is null"
		}
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid value for " + a.Name, Detail: msg, Subject: a.Expr.Range().Ptr()}}
	}
	*into = v.AsString()
	return nil
}

func loadPipeline(b *hcl.Block, ectx *hcl.EvalContext) (*Pipeline, hcl.Diagnostics) {
	pl := &Pipeline{Name: b.Labels[0], DeclRange: b.DefRange}
	content, diags := b.Body.Content(pipelineSchema)
	if a, ok := content.Attributes["from"]; ok {
		r, d := parseRef(a.Expr, "connector")
		diags = append(diags, d...)
		pl.From = r
	}
	if a, ok := content.Attributes["to"]; ok {
		r, d := parseRef(a.Expr, "")
		diags = append(diags, d...)
		pl.To = r
	}
	if a, ok := content.Attributes["schedule"]; ok {
		diags = append(diags, evalString(a, ectx, &pl.Schedule)...)
		if pl.Schedule != "" {
			if _, err := cron.ParseStandard(pl.Schedule); err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid schedule",
					Detail:  fmt.Sprintf("%q is not a schedule: %v. Use a cron expression (\"0 * * * *\"), @hourly, @daily, @weekly or @every 15m.", pl.Schedule, err),
					Subject: a.Expr.Range().Ptr()})
			}
		}
	}
	if a, ok := content.Attributes["options"]; ok {
		opts, d := evalOptions(a, ectx)
		diags = append(diags, d...)
		pl.Options, pl.OptionsRange, pl.OptionRanges = opts, a.Range.Ptr(), itemRanges(a)
	}
	if a, ok := content.Attributes["to_options"]; ok {
		opts, d := evalOptions(a, ectx)
		diags = append(diags, d...)
		pl.ToOptions, pl.ToOptionsRange, pl.ToOptionRanges = opts, a.Range.Ptr(), itemRanges(a)
	}
	if a, ok := content.Attributes["rejects"]; ok {
		diags = append(diags, evalString(a, ectx, &pl.Rejects)...)
	}
	pl.Mode, pl.ModeRange = "append", b.DefRange
	if a, ok := content.Attributes["mode"]; ok {
		diags = append(diags, evalString(a, ectx, &pl.Mode)...)
		pl.ModeRange = a.Expr.Range()
	}
	diags = append(diags, loadColumns(pl, content, ectx)...)
	return pl, diags
}

// loadColumns reads `columns = { target = "Input column" }` and
// `column "target" { from = "...", value = ..., format = "..." }`.
func loadColumns(pl *Pipeline, content *hcl.BodyContent, ectx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	add := func(name string, spec ColumnSpec) {
		if pl.Columns == nil {
			pl.Columns = map[string]ColumnSpec{}
		}
		if prev, dup := pl.Columns[name]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Column mapped twice",
				Detail: fmt.Sprintf("Column %q is already mapped at %s.", name, prev.Range), Subject: spec.Range.Ptr()})
			return
		}
		pl.Columns[name] = spec
	}
	if a, ok := content.Attributes["columns"]; ok {
		pairs, d := hcl.ExprMap(a.Expr)
		diags = append(diags, d...)
		for _, p := range pairs {
			kv, d := p.Key.Value(ectx)
			diags = append(diags, d...)
			vv, d2 := p.Value.Value(ectx)
			diags = append(diags, d2...)
			if d.HasErrors() || d2.HasErrors() {
				continue
			}
			kv, err1 := convert.Convert(kv, cty.String)
			vv, err2 := convert.Convert(vv, cty.String)
			if err1 != nil || err2 != nil || kv.IsNull() || vv.IsNull() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid column mapping",
					Detail: `Each entry maps a column of the target stream to an input column: { quantity = "Avail" }.`, Subject: p.Key.Range().Ptr()})
				continue
			}
			add(kv.AsString(), ColumnSpec{From: vv.AsString(), Range: p.Key.Range()})
		}
	}
	for _, b := range content.Blocks {
		c, d := b.Body.Content(columnSchema)
		diags = append(diags, d...)
		spec := ColumnSpec{Range: b.LabelRanges[0]}
		if a, ok := c.Attributes["from"]; ok {
			diags = append(diags, evalString(a, ectx, &spec.From)...)
		}
		if a, ok := c.Attributes["format"]; ok {
			diags = append(diags, evalString(a, ectx, &spec.Format)...)
		}
		if a, ok := c.Attributes["value"]; ok {
			var v string
			diags = append(diags, evalString(a, ectx, &v)...)
			spec.Value = &v
		}
		if (spec.From == "") == (spec.Value == nil) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid column block",
				Detail: "A column block takes either from (an input column) or value (a constant).", Subject: b.DefRange.Ptr()})
			continue
		}
		add(b.Labels[0], spec)
	}
	return diags
}

// parseRef reads connector.NAME.STREAM or sink.TYPE.NAME. want restricts the
// kind ("" accepts both).
func parseRef(expr hcl.Expression, want string) (Ref, hcl.Diagnostics) {
	r := Ref{Range: expr.Range()}
	bad := func(detail string) (Ref, hcl.Diagnostics) {
		return r, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid reference", Detail: detail, Subject: r.Range.Ptr()}}
	}
	expected := "connector.NAME.STREAM or sink.TYPE.NAME"
	if want == "connector" {
		expected = "connector.NAME.STREAM"
	}
	trav, diags := hcl.AbsTraversalForExpr(expr)
	if diags.HasErrors() || len(trav) != 3 {
		return bad("Expected a reference of the form " + expected + ", without quotes.")
	}
	parts := make([]string, 3)
	parts[0] = trav.RootName()
	for i, step := range trav[1:] {
		attr, ok := step.(hcl.TraverseAttr)
		if !ok {
			return bad("Expected a reference of the form " + expected + ".")
		}
		parts[i+1] = attr.Name
	}
	switch {
	case parts[0] == "connector" && (want == "" || want == "connector"):
		r.Kind, r.Name, r.Stream = "connector", parts[1], parts[2]
	case parts[0] == "sink" && want == "":
		r.Kind, r.Type, r.Name = "sink", parts[1], parts[2]
	default:
		return bad(fmt.Sprintf("%q cannot be used here: expected %s.", parts[0], expected))
	}
	return r, nil
}

// itemRanges locates the value of each item of a literal object (an
// options map written as { key = value }), by key; nil for other
// expressions.
func itemRanges(a *hcl.Attribute) map[string]hcl.Range {
	obj, ok := a.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil
	}
	out := map[string]hcl.Range{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() || k.IsNull() || !k.IsKnown() || k.Type() != cty.String {
			continue
		}
		out[k.AsString()] = item.ValueExpr.Range()
	}
	return out
}

// evalOptions evaluates an options map; values become strings.
func evalOptions(a *hcl.Attribute, ectx *hcl.EvalContext) (map[string]string, hcl.Diagnostics) {
	v, diags := a.Expr.Value(ectx)
	if diags.HasErrors() {
		return nil, diags
	}
	bad := func(detail string) hcl.Diagnostics {
		return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Invalid options", Detail: detail, Subject: a.Expr.Range().Ptr()}}
	}
	if v.IsNull() {
		return nil, nil
	}
	if !v.Type().IsObjectType() && !v.Type().IsMapType() {
		return nil, bad("options must be a map, like { approved_from = \"2026-01-01\" }.")
	}
	out := map[string]string{}
	for it := v.ElementIterator(); it.Next(); {
		k, ev := it.Element()
		if ev.IsNull() {
			continue
		}
		sv, err := convert.Convert(ev, cty.String)
		if err != nil {
			return nil, bad(fmt.Sprintf("option %s must be a string, number or bool.", k.AsString()))
		}
		out[k.AsString()] = sv.AsString()
	}
	return out, nil
}
