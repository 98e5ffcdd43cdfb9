package main

import (
	"context"
	"fmt"
	"io"

	"github.com/hashicorp/go-hclog"

	"pipehost/pipeline/engine"
)

// cmdCheck asks every declared connector to check its connection: the one
// command besides run that talks to the services.
func cmdCheck(ctx context.Context, o options, logger hclog.Logger, stdout, stderr io.Writer) int {
	h, code := load(ctx, o, logger, stderr, engine.Options{})
	if code != exitOK {
		return code
	}
	defer h.Close()
	failed := 0
	for _, fc := range h.File.Connectors {
		if err := h.Check(ctx, fc.Name); err != nil {
			failed++
			fmt.Fprintf(stdout, "connector %s: FAILED: %v\n", fc.Name, err)
			continue
		}
		fmt.Fprintf(stdout, "connector %s: ok\n", fc.Name)
	}
	if failed > 0 {
		return exitFailed
	}
	return exitOK
}
