package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"pipehost/pipeline/engine"
)

// cmdValidate loads the file and starts what it declares, printing every
// diagnostic; nothing remote is called and nothing is written.
func cmdValidate(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	var diags hcl.Diagnostics
	if o.json {
		o.diags = &diags
	}
	h, code := load(ctx, o, logger, stderr, engine.Options{})
	if h != nil {
		defer h.Close()
	}
	if o.json {
		writeJSON(stdout, newValidateJSON(diags))
		return code
	}
	if code != exitOK {
		return code
	}
	f := h.File
	fmt.Fprintf(stdout, "%s is valid: %d connector(s), %d sink(s), %d pipeline(s).\n", o.file, len(f.Connectors), len(f.Sinks), len(f.Pipelines))
	return exitOK
}
