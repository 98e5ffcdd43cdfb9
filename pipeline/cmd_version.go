package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hashicorp/go-hclog"

	"pipehost/pipeline/engine"
)

// cmdVersion prints the host's version and Go's and, when a pipeline file
// is at hand, the name and version each of its plugins reports (started
// for the catalog only: no credentials needed, nothing called).
func cmdVersion(ctx context.Context, o options, logger hclog.Logger, stdout io.Writer) int {
	fmt.Fprintln(stdout, versionLine())
	if _, err := os.Stat(o.file); err != nil {
		return exitOK
	}
	h, code := load(ctx, o, logger, io.Discard, engine.Options{Catalog: true})
	if code != exitOK {
		fmt.Fprintf(stdout, "(the plugins of %s could not be started: run pipeline validate)\n", o.file)
		return exitOK
	}
	defer h.Close()
	for _, fc := range h.File.Connectors {
		if c := h.Connectors[fc.Name]; c != nil {
			fmt.Fprintf(stdout, "connector %s: plugin %s %s (%s)\n", c.Name, c.Info.Name, c.Info.Version, c.Path)
		}
	}
	return exitOK
}
