package main

import (
	"context"
	"fmt"
	"io"
	"pipehost/connector"
	"strings"
	"text/tabwriter"

	"github.com/hashicorp/go-hclog"

	"pipehost/pipeline/engine"
)

// cmdStreams prints each connector's catalog: streams, keys, cursors and
// columns with their Arrow types. Without --sandbox it needs no credentials.
func cmdStreams(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	// The catalog needs no credentials: without --sandbox the connectors
	// are not configured, so their streams show as unconfigured.
	h, code := load(ctx, o, logger, stderr, engine.Options{Catalog: !o.sandbox})
	if code != exitOK {
		return code
	}
	defer h.Close()
	if o.json {
		out := streamsJSON{FormatVersion: jsonFormat, Connectors: []connectorJSON{}}
		for _, fc := range h.File.Connectors {
			c := h.Connectors[fc.Name]
			cj := connectorJSON{Name: c.Name, Plugin: c.Info.Name, Version: c.Info.Version, Streams: []streamJSON{}}
			for _, st := range c.Streams {
				cj.Streams = append(cj.Streams, newStreamJSON(st))
			}
			out.Connectors = append(out.Connectors, cj)
		}
		writeJSON(stdout, out)
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	for _, fc := range h.File.Connectors {
		c := h.Connectors[fc.Name]
		fmt.Fprintf(tw, "connector %s (%s %s)\n", c.Name, c.Info.Name, c.Info.Version)
		for _, st := range c.Streams {
			fmt.Fprintf(tw, "\n  %s.%s\t%s stream", c.Name, st.Name, st.Kind)
			if len(st.PrimaryKey) > 0 {
				fmt.Fprintf(tw, "\tkey: %s", strings.Join(st.PrimaryKey, ", "))
			}
			if st.CursorField != "" {
				fmt.Fprintf(tw, "\tcursor: %s", st.CursorField)
			}
			fmt.Fprintln(tw)
			if st.Description != "" {
				fmt.Fprintf(tw, "  %s\n", st.Description)
			}
			if st.Disabled != "" {
				fmt.Fprintf(tw, "  DISABLED: %s\n", st.Disabled)
			}
			if st.Notice != "" {
				fmt.Fprintf(tw, "  NOTICE: %s\n", st.Notice)
			}
			for _, opt := range st.Options {
				fmt.Fprintf(tw, "  option %s\t%s\n", opt.Name, describeOption(opt))
			}
			for _, fld := range st.Schema.Fields() {
				null := ""
				if !fld.Nullable {
					null = "not null"
				}
				fmt.Fprintf(tw, "    %s\t%s\t%s\n", fld.Name, null, fld.Type)
			}
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	return exitOK
}

// describeOption says in one line what an option takes: its kind, allowed
// values, default and description.
func describeOption(o connector.Option) string {
	kind := o.Kind
	if kind == "" {
		kind = connector.OptionString
	}
	var parts []string
	if len(o.Allowed) > 0 {
		parts = append(parts, kind+" of "+strings.Join(o.Allowed, ", "))
	} else {
		parts = append(parts, kind)
	}
	if o.Default != "" {
		parts = append(parts, "default "+o.Default)
	}
	if o.Description != "" {
		parts = append(parts, o.Description)
	}
	return strings.Join(parts, "; ")
}
