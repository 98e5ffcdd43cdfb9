package plugins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/flight"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pipehost/connector"
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
	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{
			ProtocolVersion: {pluginName: &grpcPlugin{impl: c, logger: cfg.logger}},
		},
		GRPCServer: func(opts []grpc.ServerOption) *grpc.Server {
			return grpc.NewServer(append(opts,
				grpc.MaxRecvMsgSize(MaxMessageBytes),
				grpc.MaxSendMsgSize(MaxMessageBytes),
			)...)
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
	joints  map[string]*jointRead     // reads of several streams, until every part is claimed
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

func (s *flightServer) DoGet(t *flight.Ticket, out flight.FlightService_DoGetServer) error {
	ctx := out.Context()
	var tk readTicket
	if err := json.Unmarshal(t.Ticket, &tk); err != nil {
		return status.Errorf(codes.InvalidArgument, "bad ticket: %v", err)
	}
	part := tk.Stream
	if tk.Part != "" {
		part = tk.Part
	}
	st, err := s.stream(ctx, part, connector.Source)
	if err != nil {
		return toStatus(err)
	}
	src, ok := s.impl.(connector.Reader)
	if !ok {
		return toStatus(fmt.Errorf("%w %q: the connector has no source streams", connector.ErrUnknownStream, part))
	}
	// Batches cross LZ4-compressed: order documents are JSON text that
	// shrinks several times, and fewer bytes through gRPC and TLS cost
	// less than LZ4 does (make bench, 100k, side by side: plugin run 17.0
	// and 16.6 s against 18.6 and 17.1 s, CPU 31.2 and 30.9 s against 34.0
	// and 31.9 s). The host's reader decompresses on its own.
	w := flight.NewRecordWriter(out, ipc.WithSchema(st.Schema), ipc.WithAllocator(s.mem), ipc.WithLZ4())
	empty := emptyRecord(st.Schema, s.mem)
	defer empty.Release()
	send := func(b connector.Batch) error {
		rec := b.Record
		if rec == nil {
			if b.Checkpoint == nil {
				return nil
			}
			rec = empty
		}
		if !rec.Schema().Equal(st.Schema) {
			return fmt.Errorf("stream %s emitted a batch whose schema differs from its declared schema", part)
		}
		return splitRecord(rec, SplitBytes, func(piece arrow.Record, last bool) error {
			if last && b.Checkpoint != nil {
				return w.WriteWithAppMetadata(piece, b.Checkpoint)
			}
			return w.Write(piece)
		})
	}
	if tk.Joint == "" {
		err = src.Read(ctx, tk.ReadRequest, send)
	} else {
		err = s.joint(ctx, src, tk, part, send)
	}
	if err != nil {
		return toStatus(err)
	}
	return w.Close()
}

// readTicket is a DoGet ticket: the read, and for a read of several
// streams in one pass (ReadRequest.With), which one this call carries.
// The host makes one DoGet per stream of such a read, all with the same
// Joint id; the first to arrive starts the connector's one Read, and each
// receives its own stream's batches.
type readTicket struct {
	connector.ReadRequest
	Joint string `json:"joint,omitempty"`
	Part  string `json:"part,omitempty"`
}

// jointRead is one connector Read shared by the DoGet calls of its streams.
type jointRead struct {
	parts   map[string]chan connector.Batch // each stream's batches, records retained
	cancel  context.CancelFunc
	done    chan struct{} // closed when the Read returned
	err     error
	pending map[string]bool // parts no DoGet has claimed yet
	start   sync.Once
}

// jointBuffer is how many batches of one stream a joint read may hold
// for its DoGet call before the Read waits: enough to keep both streams
// moving, small enough to keep memory flat.
const jointBuffer = 2

// joint serves part of a read of several streams: it joins (or starts) the
// shared Read and sends part's batches until the Read ends. If this call
// ends first (its host half went away), the shared Read is cancelled, and
// the other parts fail with it.
func (s *flightServer) joint(ctx context.Context, src connector.Reader, tk readTicket, part string, send connector.EmitFunc) error {
	s.mu.Lock()
	if s.joints == nil {
		s.joints = map[string]*jointRead{}
	}
	jr := s.joints[tk.Joint]
	if jr == nil {
		jr = &jointRead{parts: map[string]chan connector.Batch{}, done: make(chan struct{}), pending: map[string]bool{}}
		for _, name := range append([]string{tk.Stream}, tk.With...) {
			jr.parts[name] = make(chan connector.Batch, jointBuffer)
			jr.pending[name] = true
		}
		s.joints[tk.Joint] = jr
	}
	ch, ok := jr.parts[part]
	if !ok || !jr.pending[part] {
		s.mu.Unlock()
		return status.Errorf(codes.InvalidArgument, "stream %s is not an unclaimed part of read %s", part, tk.Joint)
	}
	delete(jr.pending, part)
	if len(jr.pending) == 0 {
		delete(s.joints, tk.Joint) // every part claimed: nobody else joins
	}
	s.mu.Unlock()

	jr.start.Do(func() {
		rctx, cancel := context.WithCancel(context.Background())
		jr.cancel = cancel
		go func() {
			defer close(jr.done)
			defer cancel()
			jr.err = src.Read(rctx, tk.ReadRequest, func(b connector.Batch) error {
				name := b.Stream
				if name == "" {
					name = tk.Stream
				}
				out, ok := jr.parts[name]
				if !ok {
					return fmt.Errorf("the connector emitted a batch of stream %s, which the read did not ask for", name)
				}
				if b.Record != nil {
					b.Record.Retain()
				}
				select {
				case out <- b:
					return nil
				case <-rctx.Done():
					if b.Record != nil {
						b.Record.Release()
					}
					return rctx.Err()
				}
			})
			for _, out := range jr.parts {
				close(out)
			}
		}()
	})
	for {
		select {
		case b, open := <-ch:
			if !open {
				<-jr.done
				return jr.err
			}
			err := send(b)
			if b.Record != nil {
				b.Record.Release()
			}
			if err != nil {
				jr.cancel()
				drain(ch)
				return err
			}
		case <-ctx.Done():
			jr.cancel()
			drain(ch)
			return ctx.Err()
		}
	}
}

// drain releases what is left in a part's channel once nobody sends it.
func drain(ch chan connector.Batch) {
	go func() {
		for b := range ch {
			if b.Record != nil {
				b.Record.Release()
			}
		}
	}()
}

func (s *flightServer) DoPut(in flight.FlightService_DoPutServer) error {
	ctx := in.Context()
	r, err := flight.NewRecordReader(in, ipc.WithAllocator(s.mem))
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "reading the first message of a write: %v", err)
	}
	defer r.Release()
	desc := r.LatestFlightDescriptor()
	if desc == nil || len(desc.Cmd) == 0 {
		return status.Error(codes.InvalidArgument, "a write must start with a descriptor naming the stream")
	}
	var cmd putCommand
	if err := json.Unmarshal(desc.Cmd, &cmd); err != nil {
		return status.Errorf(codes.InvalidArgument, "bad write descriptor: %v", err)
	}
	req := cmd.WriteRequest
	st, err := s.stream(ctx, req.Stream, connector.Sink)
	if err != nil {
		return toStatus(err)
	}
	sink, ok := s.impl.(connector.Writer)
	if !ok {
		return toStatus(fmt.Errorf("%w %q: the connector has no sink streams", connector.ErrUnknownStream, req.Stream))
	}
	if !r.Schema().Equal(st.Schema) {
		return status.Errorf(codes.InvalidArgument, "the rows sent to stream %s do not have its schema", st.Name)
	}
	var mu sync.Mutex // Send is not safe for concurrent use
	send := func(m putMessage) error {
		body, err := json.Marshal(m)
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		return in.Send(&flight.PutResult{AppMetadata: body})
	}
	if cmd.Commits && cmd.ID != "" {
		// The host stores each ledger the connector commits and says so
		// with a ledger_ack action; Commit waits for it, so the connector
		// sends its next request only once the record is kept.
		acks := make(chan ledgerAck, 1)
		s.mu.Lock()
		if s.acks == nil {
			s.acks = map[string]chan ledgerAck{}
		}
		s.acks[cmd.ID] = acks
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.acks, cmd.ID)
			s.mu.Unlock()
		}()
		seq := int64(0)
		req.Commit = func(ledger []byte) error {
			seq++
			if err := send(putMessage{Ledger: ledger, Seq: seq}); err != nil {
				return err
			}
			select {
			case a := <-acks:
				if a.Seq != seq {
					return fmt.Errorf("the host acknowledged ledger %d, not %d", a.Seq, seq)
				}
				if a.Error != "" {
					return fmt.Errorf("the host could not store the ledger: %s", a.Error)
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	sum, err := sink.Write(ctx, req, recordIter{r}, func(results []connector.RowResult) error {
		return send(putMessage{Results: results})
	})
	if err != nil {
		return toStatus(err)
	}
	return send(putMessage{Summary: &sum})
}

// putMessage is the app_metadata of a PutResult: row results as they are
// settled, ledgers the connector commits on the way (each numbered, each
// acknowledged by the host with a ledger_ack action before the connector
// goes on), then, last, the write's summary.
type putMessage struct {
	Results []connector.RowResult   `json:"results,omitempty"`
	Ledger  []byte                  `json:"ledger,omitempty"`
	Seq     int64                   `json:"seq,omitempty"`
	Summary *connector.WriteSummary `json:"summary,omitempty"`
}

// putCommand is a write's descriptor: the request, and, when the host
// stores ledgers as they are committed (WriteRequest.Commit), the write's id
// for the acknowledgements.
type putCommand struct {
	connector.WriteRequest
	ID      string `json:"write_id,omitempty"`
	Commits bool   `json:"commits,omitempty"`
}

// ledgerAck is the body of the ledger_ack action: the host stored (or, with
// Error, could not store) ledger Seq of write ID.
type ledgerAck struct {
	ID    string `json:"write_id"`
	Seq   int64  `json:"seq"`
	Error string `json:"error,omitempty"`
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

// recordIter adapts a Flight reader to connector.RecordIterator.
type recordIter struct{ r *flight.Reader }

func (it recordIter) Next() (arrow.Record, error) {
	if it.r.Next() {
		return it.r.Record(), nil
	}
	if err := it.r.Err(); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return nil, io.EOF
}

// emptyRecord is a zero-row record of schema, for batches that carry only a
// checkpoint.
func emptyRecord(schema *arrow.Schema, mem memory.Allocator) arrow.Record {
	cols := make([]arrow.Array, schema.NumFields())
	for i, f := range schema.Fields() {
		b := array.NewBuilder(mem, f.Type)
		cols[i] = b.NewArray()
		b.Release()
	}
	rec := array.NewRecord(schema, cols, 0)
	for _, c := range cols {
		c.Release()
	}
	return rec
}
