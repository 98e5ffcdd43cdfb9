package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"pipehost/pipeline/engine"
)

// cmdValidate loads the file and starts what it declares, printing every
// diagnostic; nothing remote is called and nothing is written.
func cmdValidate(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	h, code := load(ctx, o, logger, stderr, engine.Options{})
	if code != exitOK {
		return code
	}
	defer h.Close()
	f := h.File
	fmt.Fprintf(stdout, "%s is valid: %d connector(s), %d sink(s), %d pipeline(s).\n", o.file, len(f.Connectors), len(f.Sinks), len(f.Pipelines))
	return exitOK
}
