package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow/flight"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pipehost/connector"
	"pipehost/internal/tracing"
)

// ServeOption changes how Serve runs a plugin.
type ServeOption func(*serveConfig)

type serveConfig struct {
	logger hclog.Logger
}

// WithLogger sets the plugin's logger. By default the plugin logs JSON to
// stderr, which go-plugin forwards into the host's log under the plugin's name.
func WithLogger(l hclog.Logger) ServeOption {
	return func(c *serveConfig) { c.logger = l }
}

// Logger returns the logger a plugin should use for its own messages: JSON on
// stderr, which the host re-emits in its own log format.
func Logger(name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:       name,
		Level:      hclog.Trace, // the host filters by its own level
		Output:     os.Stderr,
		JSONFormat: true,
	})
}

// ErrNotUnderHost is returned by Serve when the binary was started by hand,
// not by the pipeline host (its handshake variable is missing).
var ErrNotUnderHost = errors.New("this binary is a connector plugin of the pipeline host: it is started by `pipeline`, not by hand (name it in a connector block, or put it beside the pipeline binary)")

// Serve runs c as a plugin until the host ends the plugin or goes away, and
// then returns nil. It must be called from the plugin binary's main. It
// returns ErrNotUnderHost at once when the binary was not started by a host,
// and an error when c is nil. c serves reads if it implements
// connector.Reader and writes if it implements connector.Writer; the host is
// told ErrUnknownStream for a kind of call it does not serve.
func Serve(c connector.Base, opts ...ServeOption) error {
	if c == nil {
		return errors.New("plugins.Serve: no connector to serve")
	}
	if os.Getenv(Handshake.MagicCookieKey) != Handshake.MagicCookieValue {
		return ErrNotUnderHost
	}
	cfg := serveConfig{}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.logger == nil {
		cfg.logger = Logger("connector")
	}
	go exitWithHost(cfg.logger, os.Getppid(), hostWatchInterval)
	stop, err := StartCPUProfile(os.Getenv(CPUProfileEnv))
	if err != nil {
		cfg.logger.Warn("no CPU profile", "error", err) // a diagnosis aid: the plugin serves anyway
	}
	defer stop()
	stopTracing, err := tracing.Start(context.Background(), filepath.Base(os.Args[0]))
	if err != nil {
		cfg.logger.Warn("no traces", "error", err)
	}
	defer stopTracing()
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {pluginName: &grpcPlugin{impl: c, logger: cfg.logger}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			opts = append(opts, grpc.MaxRecvMsgSize(MaxMessageBytes), grpc.MaxSendMsgSize(MaxMessageBytes))
			if tracing.Enabled() {
				// The host's trace context, from the call's metadata,
				// parents the plugin's spans.
				opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler()))
			}
			return grpc.NewServer(opts...)
		},
		Logger: cfg.logger,
	})
	return nil
}

// CPUProfileEnv names a file a process writes a CPU profile of its whole
// life into (go tool pprof reads it). Set for the host, the host passes it
// on to each plugin it starts with the connector's name appended
// (host.prof.nuorder), the one variable of the host's environment a plugin
// gets; the plugin's profile is complete when the host stops it gracefully
// (the end of a run).
const CPUProfileEnv = "PIPEHOST_CPUPROFILE"

// StartCPUProfile starts a CPU profile of this process into path and
// returns what stops it (and closes the file). With path empty it does
// nothing; it errors when the file cannot be created or a profile is
// already running, and then nothing needs stopping.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return func() {}, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// hostWatchInterval is how often a plugin checks that its host is alive. A
// host killed with SIGKILL cannot stop its plugins; they notice they were
// reparented within this interval and exit, rather than living on (holding
// memory and connections) as orphans.
const hostWatchInterval = 100 * time.Millisecond

// exitWithHost ends the plugin process when its parent, the host, is gone:
// the parent pid changes when the host dies (the plugin is reparented).
func exitWithHost(logger hclog.Logger, host int, every time.Duration) {
	for range time.Tick(every) {
		if os.Getppid() != host {
			// First: the log line goes to the dead host's pipe, and a
			// write there ends the process (SIGPIPE on stderr).
			removeOwnSockets()
			logger.Error("the host process is gone; the plugin exits", "host_pid", host)
			os.Exit(3)
		}
	}
}

// grpcPlugin is the go-plugin glue for both halves: the plugin registers the
// Flight service, the host wraps the connection in a *Client.
type grpcPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	impl   connector.Base
	logger hclog.Logger
}

var _ plugin.GRPCPlugin = (*grpcPlugin)(nil)

func (p *grpcPlugin) GRPCServer(_ *plugin.GRPCBroker, s *grpc.Server) error {
	flight.RegisterFlightServiceServer(s, &flightServer{impl: p.impl, logger: p.logger, mem: memory.DefaultAllocator})
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *plugin.GRPCBroker, cc *grpc.ClientConn) (interface{}, error) {
	return newFlightConnector(flight.NewClientFromConn(cc, nil)), nil
}

// flightServer serves a connector as an Arrow Flight service.
type flightServer struct {
	flight.BaseFlightServer
	impl   connector.Base
	logger hclog.Logger
	mem    memory.Allocator

	mu      sync.Mutex
	catalog []connector.Stream        // nil until listed; reset by Configure
	acks    map[string]chan ledgerAck // writes waiting for the host to store a ledger, by write id
}

var _ flight.FlightServer = (*flightServer)(nil)

func (s *flightServer) ListFlights(_ *flight.Criteria, out flight.FlightService_ListFlightsServer) error {
	streams, err := s.streams(out.Context())
	if err != nil {
		return toStatus(err)
	}
	for _, st := range streams {
		if st.Schema == nil {
			return status.Errorf(codes.Internal, "stream %s has no fixed schema and cannot be served through a plugin", st.Name)
		}
		// The stream's metadata travels as JSON in app_metadata, its schema
		// in the FlightInfo's own schema field.
		meta, err := json.Marshal(st)
		if err != nil {
			return toStatus(err)
		}
		info := &flight.FlightInfo{
			FlightDescriptor: &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{st.Name}},
			Schema:           flight.SerializeSchema(st.Schema, s.mem),
			TotalRecords:     -1,
			TotalBytes:       -1,
			AppMetadata:      meta,
		}
		if err := out.Send(info); err != nil {
			return err
		}
	}
	return nil
}

func (s *flightServer) DoAction(a *flight.Action, out flight.FlightService_DoActionServer) error {
	ctx := out.Context()
	defer tracing.Flush()
	var (
		reply any
		err   error
	)
	switch a.Type {
	case actionInfo:
		reply, err = s.impl.Info(ctx)
	case actionConfigSchema:
		reply, err = s.impl.ConfigSchema(ctx)
	case actionConfigure:
		var req connector.ConfigureRequest
		if err = json.Unmarshal(a.Body, &req); err == nil {
			s.mu.Lock()
			err = s.impl.Configure(ctx, req)
			s.catalog = nil // Disabled and Notice follow the config
			s.mu.Unlock()
		}
		reply = struct{}{}
	case actionCheck:
		err = s.impl.Check(ctx)
		reply = struct{}{}
	case actionLedgerAck:
		var ack ledgerAck
		if err := json.Unmarshal(a.Body, &ack); err != nil {
			return status.Errorf(codes.InvalidArgument, "bad ledger_ack: %v", err)
		}
		s.mu.Lock()
		ch := s.acks[ack.ID]
		s.mu.Unlock()
		if ch == nil {
			return status.Errorf(codes.FailedPrecondition, "no write %q is waiting for a ledger acknowledgement", ack.ID)
		}
		select {
		case ch <- ack:
		default:
			return status.Errorf(codes.FailedPrecondition, "write %q was not waiting for ledger %d", ack.ID, ack.Seq)
		}
		reply = struct{}{}
	case actionEstimate:
		var req connector.ReadRequest
		if err := json.Unmarshal(a.Body, &req); err != nil {
			return status.Errorf(codes.InvalidArgument, "bad estimate: %v", err)
		}
		var r estimateReply
		if est, ok := s.impl.(connector.Estimator); ok {
			var e connector.Estimate
			if e, err = est.Estimate(ctx, req); err == nil {
				r.Estimate = &e
			}
		}
		reply = r
	case actionStats:
		reply = connector.Stats{}
		if sr, ok := s.impl.(connector.StatsReporter); ok {
			reply, err = sr.Stats(ctx)
		}
	default:
		return status.Errorf(codes.Unimplemented, "unknown action %q", a.Type)
	}
	if err != nil {
		return toStatus(err)
	}
	body, err := json.Marshal(reply)
	if err != nil {
		return toStatus(err)
	}
	return out.Send(&flight.Result{Body: body})
}

// streams returns the connector's catalog, listed once per configuration
// (the contract lets a caller keep it until the next Configure).
func (s *flightServer) streams(ctx context.Context) ([]connector.Stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.catalog == nil {
		streams, err := s.impl.Streams(ctx)
		if err != nil {
			return nil, err
		}
		s.catalog = streams
	}
	return s.catalog, nil
}

// stream looks a stream of one kind up in the connector's catalog, once per
// read or write.
func (s *flightServer) stream(ctx context.Context, name string, kind connector.Kind) (connector.Stream, error) {
	streams, err := s.streams(ctx)
	if err != nil {
		return connector.Stream{}, err
	}
	st, ok := connector.FindStream(streams, name, kind)
	if !ok {
		if _, other := connector.FindStream(streams, name, otherKind(kind)); other {
			return connector.Stream{}, fmt.Errorf("stream %s is a %s stream and cannot be %s", name, otherKind(kind), map[connector.Kind]string{connector.Source: "read", connector.Sink: "written"}[kind])
		}
		return connector.Stream{}, fmt.Errorf("%w %q", connector.ErrUnknownStream, name)
	}
	return st, nil
}

func otherKind(k connector.Kind) connector.Kind {
	if k == connector.Source {
		return connector.Sink
	}
	return connector.Source
}
