// Package pipehost holds what the repository's root gives its programs:
// the default pipeline file, which `make run` runs and `pipeline init`
// writes (one text, not a copy per place).
package pipehost

import _ "embed"

// DefaultPipeline is pipeline.hcl: the NuOrder connector with its
// credentials from the environment, a Parquet sink under data/, and a
// pipeline for each source stream. It names no plugin binary: the host
// finds nuorder-plugin beside itself, so the file works wherever it is.
//
//go:embed pipeline.hcl
var DefaultPipeline string
