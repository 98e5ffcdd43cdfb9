package config

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Notify is a notify block: where a run's outcome is posted, and when.
//
//	notify "ops" {
//	  url    = file("/secrets/slack-webhook")   # sensitive: never printed
//	  on     = ["failure", "recovery"]          # or "every"
//	  format = "slack"                          # or "json", the run's --json document
//	}
type Notify struct {
	Name string
	// URL is the webhook (http or https). It is sensitive: webhook URLs
	// carry their secret in the path; URLRange locates it for redaction.
	URL      string
	URLRange hcl.Range
	// On lists when to post: "failure" (a pipeline failed), "recovery" (a
	// pipeline that had failed succeeded), "every" (each run).
	On []string
	// Format is "json" (the run's --json document) or "slack" (a
	// {"text": ...} message Slack-compatible webhooks take).
	Format    string
	DeclRange hcl.Range
}

// NotifyEvents and NotifyFormats are the values on and format take.
var (
	NotifyEvents  = []string{"failure", "recovery", "every"}
	NotifyFormats = []string{"json", "slack"}
)

var notifySchema = &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "url", Required: true}, {Name: "on"}, {Name: "format"}}}

func loadNotify(b *hcl.Block, ectx *hcl.EvalContext) (*Notify, hcl.Diagnostics) {
	n := &Notify{Name: b.Labels[0], DeclRange: b.DefRange, On: []string{"failure", "recovery"}, Format: "json"}
	content, diags := b.Body.Content(notifySchema)
	if a, ok := content.Attributes["url"]; ok {
		n.URLRange = a.Expr.Range()
		diags = append(diags, evalString(a, ectx, &n.URL)...)
		if n.URL != "" {
			u, err := url.Parse(strings.TrimSpace(n.URL))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				// The value is a secret: the message never quotes it.
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid notify url",
					Detail: "url must be an http:// or https:// address (its value is not shown: webhook addresses are secrets).", Subject: n.URLRange.Ptr()})
			}
			n.URL = strings.TrimSpace(n.URL)
		}
	}
	if a, ok := content.Attributes["on"]; ok {
		v, d := a.Expr.Value(ectx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			list, err := convert.Convert(v, cty.List(cty.String))
			if err != nil || list.IsNull() || list.LengthInt() == 0 {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid notify on",
					Detail: fmt.Sprintf("on is a list of %s.", strings.Join(NotifyEvents, ", ")), Subject: a.Expr.Range().Ptr()})
			} else {
				n.On = nil
				for _, e := range list.AsValueSlice() {
					ev := strings.ToLower(e.AsString())
					if !contains(NotifyEvents, ev) {
						diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid notify on",
							Detail: fmt.Sprintf("%q is not one of %s.", e.AsString(), strings.Join(NotifyEvents, ", ")), Subject: a.Expr.Range().Ptr()})
						continue
					}
					n.On = append(n.On, ev)
				}
			}
		}
	}
	if a, ok := content.Attributes["format"]; ok {
		diags = append(diags, evalString(a, ectx, &n.Format)...)
		if n.Format = strings.ToLower(n.Format); !contains(NotifyFormats, n.Format) {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid notify format",
				Detail: fmt.Sprintf("format is %q; it must be one of %s.", n.Format, strings.Join(NotifyFormats, ", ")), Subject: a.Expr.Range().Ptr()})
		}
	}
	return n, diags
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Sensitive locates the values of the file itself that are secrets (the
// state DSN, notify urls), for diagnostics to hide; nil for a nil file.
func (f *File) Sensitive() []hcl.Range {
	if f == nil {
		return nil
	}
	var out []hcl.Range
	if f.StateDSNRange != nil {
		out = append(out, *f.StateDSNRange)
	}
	for _, n := range f.Notify {
		out = append(out, n.URLRange)
	}
	return out
}
