//go:build inprocess

package main

import (
	"github.com/hashicorp/go-hclog"

	"pipehost/connector"
	"pipehost/connector/nuorder"
	"pipehost/connector/nuorder/sandbox"
)

// This file links the NuOrder connector into the host, for the benchmark's
// in-process build (go build -tags inprocess): the same pipeline with and
// without the plugin boundary. Release builds run it as a plugin.
func init() {
	linked["nuorder"] = func(logger hclog.Logger) connector.Base { return nuorder.New(logger, sandbox.Start) }
}
