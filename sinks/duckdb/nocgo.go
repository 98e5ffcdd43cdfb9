//go:build !cgo

package duckdb

import (
	"errors"

	"pipehost/sinks"
)

func init() { sinks.Register("duckdb", Driver{}) }

// Driver stands in for the DuckDB driver in a host built without cgo: its
// Open always fails, so validate refuses the sink block and says why.
type Driver struct{}

// Modes implements sinks.Driver with the modes the real driver takes, so a
// file written for it is checked the same way everywhere.
func (Driver) Modes() []string { return []string{sinks.Append, sinks.Merge, sinks.Overwrite} }

// Open implements sinks.Driver: it always fails.
func (Driver) Open(sinks.Decode, sinks.Env) (sinks.Sink, error) {
	return nil, errors.New("this pipeline binary was built without cgo and has no DuckDB sink: " +
		"build it with CGO_ENABLED=1 and a C compiler (the default on Linux: make build), or write Parquet and read it with DuckDB's read_parquet")
}
