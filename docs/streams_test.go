// Package docs holds the reference pages. Its test keeps streams.md, the
// page generated from the connectors' catalogs, in step with them.
package docs

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"pipehost/connector"
	"pipehost/connector/files"
	"pipehost/connector/nuorder"
)

// streamsPage renders every stream of the NuOrder and files connectors:
// description, kind, key, cursor, options and columns with their Arrow
// types, as their catalogs say.
func streamsPage(t *testing.T) string {
	var b strings.Builder
	b.WriteString("# Streams\n\n")
	b.WriteString("Generated from the connectors' catalogs by `go test ./docs` (`UPDATE_DOCS=1 go test ./docs` rewrites it); a test\n")
	b.WriteString("fails when it is stale. `pipeline streams` prints the same for the connectors of a pipeline file.\n")
	for _, c := range []struct {
		name string
		conn connector.Reader
	}{{"nuorder", nuorder.New(nil, nil)}, {"files", files.New(".")}} {
		streams, err := c.conn.Streams(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "\n## connector.%s\n", c.name)
		for _, st := range streams {
			fmt.Fprintf(&b, "\n### %s.%s (%s)\n\n%s\n\n", c.name, st.Name, st.Kind, st.Description)
			if len(st.PrimaryKey) > 0 {
				fmt.Fprintf(&b, "- key: `%s`\n", strings.Join(st.PrimaryKey, "`, `"))
			}
			if st.CursorField != "" {
				fmt.Fprintf(&b, "- cursor: `%s`\n", st.CursorField)
			}
			if len(st.ReadsWith) > 0 {
				fmt.Fprintf(&b, "- read in one pass with: %s\n", strings.Join(st.ReadsWith, ", "))
			}
			for _, o := range st.Options {
				kind := o.Kind
				if kind == "" {
					kind = connector.OptionString
				}
				line := fmt.Sprintf("- option `%s` (%s", o.Name, kind)
				if len(o.Allowed) > 0 {
					line += " of " + strings.Join(o.Allowed, ", ")
				}
				if o.Default != "" {
					line += "; default `" + o.Default + "`"
				}
				line += ")"
				if o.Description != "" {
					line += ": " + o.Description
				}
				b.WriteString(line + "\n")
			}
			if st.Schema == nil {
				b.WriteString("- columns: the input file's own, plus `_row` and `_line`\n")
				continue
			}
			b.WriteString("\n| column | type | nullable |\n|---|---|---|\n")
			for _, f := range st.Schema.Fields() {
				fmt.Fprintf(&b, "| `%s` | `%s` | %v |\n", f.Name, strings.ReplaceAll(f.Type.String(), "|", "\\|"), f.Nullable)
			}
		}
	}
	return b.String()
}

// TestTheStreamsPageIsCurrent fails when streams.md differs from what the
// catalogs say; UPDATE_DOCS=1 rewrites it.
func TestTheStreamsPageIsCurrent(t *testing.T) {
	want := streamsPage(t)
	if os.Getenv("UPDATE_DOCS") != "" {
		if err := os.WriteFile("streams.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("streams.md")
	if err != nil || string(got) != want {
		t.Fatalf("docs/streams.md is stale (or missing: %v): run UPDATE_DOCS=1 go test ./docs", err)
	}
}
