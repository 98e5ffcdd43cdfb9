// Package plugins carries a connector.Connector across a process boundary.
//
// The plugin process calls Serve with its connector; the host calls Open with
// the plugin binary's path and gets back a *Client that implements
// connector.Connector by talking to it. Underneath, hashicorp/go-plugin starts
// and supervises the process and gives both halves a gRPC connection, on which
// an Arrow Flight service carries the streams:
//
//	ListFlights  the catalog: one FlightInfo per stream (Arrow schema + metadata)
//	DoGet        read source streams in one pass: the ticket is a JSON
//	             ReadRequest naming every stream of the read; the reply
//	             interleaves one Arrow IPC stream per source stream, each
//	             message naming its stream in its FlightDescriptor (a path
//	             of one element), checkpoints riding in app_metadata
//	DoPut        write a sink stream: the descriptor's cmd is a JSON
//	             WriteRequest; the reply is PutResults holding row results
//	DoAction     info, config_schema, configure, check, stats (JSON bodies)
//
// Nothing in this package knows any particular connector.
package plugins

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"pipehost/connector"
	"strings"

	"github.com/hashicorp/go-plugin"
)

// ProtocolVersion is the version of the host/plugin wire protocol described in
// the package doc. Bump it on any incompatible change; the host refuses a
// plugin that speaks none of the versions it knows, with a clear error,
// instead of misreading its messages.
//
// Version 2 (this one): a read of several streams is one DoGet whose
// messages name their stream. Version 1 made one DoGet per stream.
const ProtocolVersion = 2

// pluginName is the key of the connector plugin in go-plugin's plugin set.
const pluginName = "connector"

// Handshake is the go-plugin handshake both halves must agree on. The magic
// cookie is not a secret: it only stops a plugin binary run by hand from
// waiting forever for a host, and tells the user what the binary is for.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "PIPEHOST_PLUGIN",
	MagicCookieValue: "connector-v1-d8f2b6a4",
}

// MaxMessageBytes is the largest gRPC message either half accepts. gRPC's
// default of 4 MiB is too small for wide batches (an orders batch with its
// JSON documents passes it easily); 64 MiB keeps the memory one message can
// pin bounded even with several plugins running side by side.
const MaxMessageBytes = 64 << 20

// SplitBytes is the estimated size above which a record batch is sliced
// before it is sent. It is a quarter of MaxMessageBytes: the estimate counts
// buffers, not the IPC encoding, and rows are not all the same width, so the
// margin absorbs skew. No batch is ever dropped for size; a single row larger
// than MaxMessageBytes is reported as an error naming the stream.
const SplitBytes = MaxMessageBytes / 4

// Action names carried by Flight's DoAction.
const (
	actionInfo         = "info"
	actionConfigSchema = "config_schema"
	actionConfigure    = "configure"
	actionCheck        = "check"
	actionStats        = "stats"
	actionLedgerAck    = "ledger_ack"
	actionEstimate     = "estimate"
)

// estimateReply is the estimate action's reply: the connector's estimate,
// or none when it does not make them (connector.Estimator).
type estimateReply struct {
	Estimate *connector.Estimate `json:"estimate,omitempty"`
}

// PluginDirEnv names a folder the host searches for plugin binaries.
const PluginDirEnv = "PIPELINE_PLUGIN_DIR"

// Find looks for the plugin binary of a connector that names none, as
// Terraform and Packer find theirs: NAME-plugin beside the host's own
// binary, then in $PIPELINE_PLUGIN_DIR, then in ~/.pipehost/plugins, then on
// PATH. It returns the path, or an error saying everywhere it looked.
func Find(name string) (string, error) {
	return FindFile(name + "-plugin")
}

// FindFile looks for a plugin binary by its bare file name (no folder):
// first in each of dirs (the pipeline file's folder, say), then where Find
// looks. It returns an absolute path, or an error saying everywhere it
// looked. A name with a folder in it is not looked up: callers resolve it
// as a path.
func FindFile(file string, dirs ...string) (string, error) {
	var tried []string
	try := func(dir string) (string, bool) {
		if dir == "" {
			return "", false
		}
		p := filepath.Join(dir, file)
		tried = append(tried, p)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			abs, err := filepath.Abs(p)
			return abs, err == nil
		}
		return "", false
	}
	for _, d := range dirs {
		if p, ok := try(d); ok {
			return p, nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if p, ok := try(filepath.Dir(exe)); ok {
			return p, nil
		}
	}
	if p, ok := try(os.Getenv(PluginDirEnv)); ok {
		return p, nil
	}
	if home, err := os.UserHomeDir(); err == nil {
		if p, ok := try(filepath.Join(home, ".pipehost", "plugins")); ok {
			return p, nil
		}
	}
	if p, err := exec.LookPath(file); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			return abs, nil
		}
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("no plugin %s found (looked in %s); set plugin = \"path/to/%s\" in the connector block, or put the binary in one of those places",
		file, strings.Join(tried, ", "), file)
}
