package plugins

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/flight"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pipehost/connector"
	"pipehost/internal/tracing"
)

// Config says which plugin binary to start and how.
type Config struct {
	// Name names the connector in logs and errors ("nuorder").
	Name string
	// Path is the plugin binary.
	Path string
	// SHA256, when not empty, is the hex sha256 the binary must have; a
	// binary with any other checksum is refused before it starts.
	SHA256 string
	// Logger receives the host's messages about the plugin and the plugin's
	// own log lines. Nil: messages are dropped.
	Logger hclog.Logger
}

// Client is a connector running in a plugin process. It implements
// connector.Connector; Close ends the process.
type Client struct {
	*flightConnector
	name string
	pc   *plugin.Client
}

var _ connector.Connector = (*Client)(nil)

// HandshakeTimeout bounds a plugin's start: from exec to its handshake line.
// A plugin starts in milliseconds; a minute absorbs a loaded machine, and a
// binary that never answers (the wrong program, a hung start) fails the run
// instead of hanging it.
const HandshakeTimeout = time.Minute

// stderrDrainWait bounds how long a failed start waits for the plugin's
// stderr to be read to its end, so that the error can quote it. A plugin
// that exits drains in milliseconds; one that left a child holding its
// output never does, and costs the start this much more.
const stderrDrainWait = 2 * time.Second

// Open starts the plugin binary and connects to it. The plugin gets a clean
// environment (nothing of the host's), negotiates mTLS with the host and must
// speak ProtocolVersion. Open errors when the binary is missing, its checksum
// differs from cfg.SHA256, or the handshake fails.
func Open(cfg Config) (*Client, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("connector %s: plugin binary: %w", cfg.Name, err)
	}
	var secure *plugin.SecureConfig
	if cfg.SHA256 != "" {
		want, err := hex.DecodeString(strings.TrimSpace(cfg.SHA256))
		if err != nil || len(want) != sha256.Size {
			return nil, fmt.Errorf("connector %s: sha256 %q is not 64 hex digits", cfg.Name, cfg.SHA256)
		}
		// Hashed here to say both hashes when they differ; go-plugin
		// hashes the binary again right before it starts the process.
		got, err := fileSHA256(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("connector %s: plugin binary: %w", cfg.Name, err)
		}
		if !bytes.Equal(got, want) {
			return nil, fmt.Errorf("connector %s: refusing to start plugin %s: its sha256 is %x, but the configuration pins %x",
				cfg.Name, cfg.Path, got, want)
		}
		secure = &plugin.SecureConfig{Checksum: want, Hash: sha256.New()}
	}
	if !filepath.IsAbs(cfg.Path) {
		// exec would look a bare name up on PATH: a plugin is always the
		// file the configuration names.
		abs, err := filepath.Abs(cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("connector %s: plugin binary: %w", cfg.Name, err)
		}
		cfg.Path = abs
	}
	cmd := exec.Command(cfg.Path)
	// What the clean environment lets through: where the plugin writes its
	// own profile, beside the host's, and where its spans go (the host's
	// OTEL_* variables).
	cmd.Env = tracing.Env()
	if prof := os.Getenv(CPUProfileEnv); prof != "" {
		cmd.Env = append(cmd.Env, CPUProfileEnv+"="+prof+"."+cfg.Name)
	}
	tail := &tailWriter{max: 2048}
	pc := plugin.NewClient(&plugin.ClientConfig{
		Stderr:           tail,
		HandshakeConfig:  Handshake,
		VersionedPlugins: map[int]plugin.PluginSet{ProtocolVersion: {pluginName: &grpcPlugin{}}},
		Cmd:              cmd,
		SkipHostEnv:      true,
		StartTimeout:     HandshakeTimeout,
		SecureConfig:     secure,
		AutoMTLS:         true,
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolGRPC},
		Logger:           forwarded(cfg.Logger.Named(cfg.Name)),
		GRPCDialOptions:  dialOptions(),
	})
	rpc, err := pc.Client()
	if err != nil {
		// go-plugin has killed the process; its Kill then waits for the
		// plugin's output to close, which a child the plugin left behind
		// may hold for as long as it lives: not the host's wait. The
		// host waits a moment, though: the plugin's last words on stderr
		// arrive on their own goroutine and may not be in tail yet when
		// the handshake's failure is.
		killed := make(chan struct{})
		go func() { pc.Kill(); close(killed) }()
		select {
		case <-killed:
		case <-time.After(stderrDrainWait):
		}
		if errors.Is(err, plugin.ErrChecksumsDoNotMatch) {
			// Hash again only to say what the binary is.
			got, herr := fileSHA256(cfg.Path)
			if herr != nil {
				return nil, fmt.Errorf("connector %s: refusing to start plugin %s: its sha256 does not match the pinned %x", cfg.Name, cfg.Path, secure.Checksum)
			}
			return nil, fmt.Errorf("connector %s: refusing to start plugin %s: its sha256 is %x, but the configuration pins %x",
				cfg.Name, cfg.Path, got, secure.Checksum)
		}
		if last := tail.String(); last != "" {
			return nil, fmt.Errorf("connector %s: starting plugin %s: %w; it printed: %s", cfg.Name, cfg.Path, err, last)
		}
		return nil, fmt.Errorf("connector %s: starting plugin %s: %w", cfg.Name, cfg.Path, err)
	}
	raw, err := rpc.Dispense(pluginName)
	if err != nil {
		pc.Kill()
		return nil, fmt.Errorf("connector %s: plugin %s: %w", cfg.Name, cfg.Path, err)
	}
	fc := raw.(*flightConnector)
	fc.exited, fc.name, fc.connector = pc.Exited, cfg.Name+" ("+cfg.Path+")", cfg.Name
	return &Client{flightConnector: fc, name: cfg.Name, pc: pc}, nil
}

// dialOptions are the host half's gRPC options: message sizes, and, with
// traces on, each call carrying the caller's trace context (W3C, in the
// metadata), so the plugin's spans are children of the host's. Off, no
// stats handler costs the Flight stream anything.
func dialOptions() []grpc.DialOption {
	opts := []grpc.DialOption{grpc.WithDefaultCallOptions(
		grpc.MaxCallRecvMsgSize(MaxMessageBytes),
		grpc.MaxCallSendMsgSize(MaxMessageBytes),
	)}
	if tracing.Enabled() {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler()))
	}
	return opts
}

// Close ends the plugin process. It is safe to call more than once.
func (c *Client) Close() error {
	c.pc.Kill()
	return nil
}

func fileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// flightConnector is the connector.Connector a plugin's Flight service looks
// like from the host.
type flightConnector struct {
	fc        flight.Client
	mem       memory.Allocator
	exited    func() bool
	name      string // connector and binary, for messages
	connector string // the connector's name

	mu      sync.Mutex
	schemas map[string]*arrow.Schema // of sink streams, for writes
	sources map[string]bool
}

func newFlightConnector(fc flight.Client) *flightConnector {
	return &flightConnector{fc: fc, mem: memory.DefaultAllocator, exited: func() bool { return false }}
}

var _ connector.Connector = (*flightConnector)(nil)

// fromStatus turns a gRPC status back into the plugin's error: its text,
// wrapping the contract's sentinel its code names (see sentinels), so
// errors.Is(err, connector.ErrNotConfigured) holds on the host as it did in
// the plugin. A broken connection to a process that exited says so.
func (c *flightConnector) fromStatus(err error) error {
	re, st := sentinelStatus(err)
	if re == nil {
		return err
	}
	if st.Code() == codes.Unavailable {
		// The process may be reaped a moment after its connection broke.
		for wait := 0; wait < 10 && !c.exited(); wait++ {
			time.Sleep(50 * time.Millisecond)
		}
		if c.exited() {
			return &ExitedError{Connector: c.connector, Binary: c.name}
		}
	}
	return re
}

func (c *flightConnector) action(ctx context.Context, name string, body, reply any) error {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return err
		}
	}
	stream, err := c.fc.DoAction(ctx, &flight.Action{Type: name, Body: payload})
	if err != nil {
		return c.fromStatus(err)
	}
	res, err := stream.Recv()
	if err != nil {
		return c.fromStatus(err)
	}
	if err := flight.ReadUntilEOF(stream); err != nil {
		return c.fromStatus(err)
	}
	if reply == nil {
		return nil
	}
	return json.Unmarshal(res.Body, reply)
}

// Info implements connector.Connector.
func (c *flightConnector) Info(ctx context.Context) (connector.Info, error) {
	var info connector.Info
	return info, c.action(ctx, actionInfo, nil, &info)
}

// ConfigSchema implements connector.Connector.
func (c *flightConnector) ConfigSchema(ctx context.Context) (connector.ConfigSchema, error) {
	var s connector.ConfigSchema
	return s, c.action(ctx, actionConfigSchema, nil, &s)
}

// Configure implements connector.Connector.
func (c *flightConnector) Configure(ctx context.Context, req connector.ConfigureRequest) error {
	return c.action(ctx, actionConfigure, req, nil)
}

// Stats implements connector.StatsReporter: the plugin's counts (none
// when its connector does not count).
func (c *flightConnector) Stats(ctx context.Context) (connector.Stats, error) {
	var s connector.Stats
	return s, c.action(ctx, actionStats, nil, &s)
}

var _ connector.StatsReporter = (*flightConnector)(nil)

// Check implements connector.Connector.
func (c *flightConnector) Check(ctx context.Context) error {
	return c.action(ctx, actionCheck, nil, nil)
}

var _ connector.Estimator = (*flightConnector)(nil)

// Estimate implements connector.Estimator through the plugin: an error
// wrapping connector.ErrNoEstimate when the plugin's connector makes no
// estimates.
func (c *flightConnector) Estimate(ctx context.Context, req connector.ReadRequest) (connector.Estimate, error) {
	var r estimateReply
	if err := c.action(ctx, actionEstimate, req, &r); err != nil {
		return connector.Estimate{}, err
	}
	if r.Estimate == nil {
		return connector.Estimate{}, connector.ErrNoEstimate
	}
	return *r.Estimate, nil
}

// Streams implements connector.Connector.
func (c *flightConnector) Streams(ctx context.Context) ([]connector.Stream, error) {
	list, err := c.fc.ListFlights(ctx, &flight.Criteria{})
	if err != nil {
		return nil, c.fromStatus(err)
	}
	var out []connector.Stream
	for {
		info, err := list.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, c.fromStatus(err)
		}
		var st connector.Stream
		if err := json.Unmarshal(info.AppMetadata, &st); err != nil {
			return nil, fmt.Errorf("catalog entry: %w", err)
		}
		if st.Schema, err = flight.DeserializeSchema(info.Schema, c.mem); err != nil {
			return nil, fmt.Errorf("catalog entry %s: schema: %w", st.Name, err)
		}
		out = append(out, st)
	}
	c.mu.Lock()
	c.schemas = make(map[string]*arrow.Schema, len(out))
	c.sources = map[string]bool{}
	for _, st := range out {
		if st.Kind == connector.Sink {
			c.schemas[st.Name] = st.Schema
		} else {
			c.sources[st.Name] = true
		}
	}
	c.mu.Unlock()
	return out, nil
}

// Read implements connector.Connector: one DoGet for the whole read. Every
// message names its stream (streamDescriptor); the host half feeds each
// stream's messages to that stream's IPC reader on a goroutine of its own,
// so emit is called from one goroutine per stream, as a connector in
// process may. Checkpoints arrive in the app_metadata of the batch they
// follow.
func (c *flightConnector) Read(ctx context.Context, req connector.ReadRequest, emit connector.EmitFunc) error {
	ticket, err := json.Marshal(readTicket{ReadRequest: req})
	if err != nil {
		return err
	}
	wanted := map[string]bool{}
	for _, name := range req.Names() {
		wanted[name] = true
	}
	// The group's context ends the DoGet when a stream's emit fails.
	g, gctx := errgroup.WithContext(ctx)
	stream, err := c.fc.DoGet(gctx, &flight.Ticket{Ticket: ticket})
	if err != nil {
		return c.fromStatus(err)
	}
	parts := map[string]chan *flight.FlightData{}
	var recvErr error
recv:
	for {
		fd, err := stream.Recv()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				recvErr = err
			}
			break
		}
		name := descriptorStream(fd.FlightDescriptor)
		if !wanted[name] {
			recvErr = fmt.Errorf("the plugin sent a message of stream %q, which the read did not ask for", name)
			break
		}
		ch := parts[name]
		if ch == nil {
			ch = make(chan *flight.FlightData, readPartBuffer)
			parts[name] = ch
			g.Go(func() error { return c.readPart(name, ch, emit) })
		}
		select {
		case ch <- fd:
		case <-gctx.Done():
			break recv
		}
	}
	for _, ch := range parts {
		close(ch)
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if recvErr != nil {
		if _, ok := status.FromError(recvErr); ok {
			return c.fromStatus(recvErr)
		}
		return recvErr
	}
	return ctx.Err()
}

// readPartBuffer is how many messages of one stream a read holds for that
// stream's reader before it waits: enough to keep the streams of a joint
// read moving, small enough to keep memory flat (a message is at most
// SplitBytes).
const readPartBuffer = 2

// readPart decodes the messages of one stream of a read and emits its
// batches, in order, until ch is closed.
func (c *flightConnector) readPart(name string, ch <-chan *flight.FlightData, emit connector.EmitFunc) error {
	defer func() {
		for range ch { // what the reader did not take, once it stopped
		}
	}()
	r, err := flight.NewRecordReader(chanStream(ch), ipc.WithAllocator(c.mem))
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil
		}
		return fmt.Errorf("stream %s: %w", name, err)
	}
	defer r.Release()
	for r.Next() {
		rec := r.Record()
		b := connector.Batch{Stream: name, Record: rec, Checkpoint: r.LatestAppMetadata()}
		if rec.NumRows() == 0 {
			b.Record = nil
		}
		if err := emit(b); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("stream %s: %w", name, err)
	}
	return nil
}

// chanStream is one stream's messages as a flight.DataStreamReader.
type chanStream <-chan *flight.FlightData

func (c chanStream) Recv() (*flight.FlightData, error) {
	fd, ok := <-c
	if !ok {
		return nil, io.EOF
	}
	return fd, nil
}

// schema returns a stream's schema from the catalog, listing it on first use.
func (c *flightConnector) schema(ctx context.Context, name string) (*arrow.Schema, error) {
	c.mu.Lock()
	s, ok := c.schemas[name]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	if _, err := c.Streams(ctx); err != nil {
		return nil, err
	}
	c.mu.Lock()
	s, ok = c.schemas[name]
	_, isSource := c.sources[name]
	c.mu.Unlock()
	if !ok && isSource {
		return nil, fmt.Errorf("stream %s is a source stream and cannot be written", name)
	}
	if !ok {
		return nil, fmt.Errorf("%w %q", connector.ErrUnknownStream, name)
	}
	return s, nil
}

// Write implements connector.Connector. Batches are sliced below SplitBytes
// before they are sent; results stream back while batches are still going out.
func (c *flightConnector) Write(ctx context.Context, req connector.WriteRequest, in connector.RecordIterator, results connector.ResultFunc) (connector.WriteSummary, error) {
	var sum connector.WriteSummary
	schema, err := c.schema(ctx, req.Stream)
	if err != nil {
		return sum, err
	}
	pc := putCommand{WriteRequest: req}
	if req.Commit != nil {
		id := make([]byte, 8)
		rand.Read(id)
		pc.ID, pc.Commits = hex.EncodeToString(id), true
	}
	cmd, err := json.Marshal(pc)
	if err != nil {
		return sum, err
	}
	// The group's context ends the call when either half fails; cancel
	// ends it when Write returns.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.fc.DoPut(ctx)
	if err != nil {
		return sum, c.fromStatus(err)
	}
	var (
		g                errgroup.Group
		sendErr, recvErr error
	)
	// Results are read concurrently: the plugin may answer rows before it
	// has received the whole input, and gRPC flow control would stall both
	// sides if nobody read them. The receive half ends with the server's
	// status: io.EOF when the write completed.
	g.Go(func() error {
		recvErr = func() error {
			for {
				res, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return c.fromStatus(err)
				}
				var m putMessage
				if err := json.Unmarshal(res.AppMetadata, &m); err != nil {
					cancel()
					return fmt.Errorf("row results: %w", err)
				}
				if m.Summary != nil {
					sum = *m.Summary
				}
				if m.Ledger != nil && req.Commit != nil {
					// Stored before the plugin goes on: it waits for this.
					ack := ledgerAck{ID: pc.ID, Seq: m.Seq}
					cerr := req.Commit(m.Ledger)
					if cerr != nil {
						ack.Error = cerr.Error()
					}
					if err := c.action(ctx, actionLedgerAck, ack, nil); err != nil {
						cancel()
						return err
					}
					if cerr != nil {
						cancel()
						return fmt.Errorf("storing the connector's ledger: %w", cerr)
					}
				}
				if len(m.Results) == 0 {
					continue
				}
				if err := results(m.Results); err != nil {
					cancel()
					return err
				}
			}
		}()
		return recvErr
	})
	// The send half: batches out, sliced below SplitBytes, then the end of
	// the stream. io.EOF from Send means the server ended the stream: its
	// status, read by the receive half, says why.
	g.Go(func() error {
		w := flight.NewRecordWriter(stream, ipc.WithSchema(schema), ipc.WithAllocator(c.mem))
		w.SetFlightDescriptor(&flight.FlightDescriptor{Type: flight.DescriptorCMD, Cmd: cmd})
		err := func() error {
			for {
				rec, err := in.Next()
				if errors.Is(err, io.EOF) {
					return w.Close()
				}
				if err != nil {
					return err
				}
				if !rec.Schema().Equal(schema) {
					return fmt.Errorf("rows for stream %s do not have its schema", req.Stream)
				}
				if err := splitRecord(rec, SplitBytes, func(piece arrow.Record, _ bool) error { return w.Write(piece) }); err != nil {
					return err
				}
			}
		}()
		if cerr := stream.CloseSend(); err == nil {
			err = cerr
		}
		if err != nil && !errors.Is(err, io.EOF) {
			cancel() // the receive half then ends too
			sendErr = c.fromStatus(err)
		}
		return sendErr
	})
	g.Wait()
	// The half that failed first is the cause; the other then saw only
	// the cancellation. Both cancelled: the caller's ctx ended.
	for _, err := range []error{sendErr, recvErr} {
		if err != nil && !errors.Is(err, context.Canceled) {
			return sum, err
		}
	}
	if sendErr != nil {
		return sum, sendErr
	}
	return sum, recvErr
}

// Close implements connector.Connector; the process is ended by Client.Close.
func (c *flightConnector) Close() error { return nil }

// tailWriter keeps the last max bytes written to it: a plugin's stderr, so
// that a plugin that fails its handshake says why in the host's error (a
// crash, a missing library), not only in the log.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (w *tailWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) > w.max {
		w.buf = append(w.buf[:0], w.buf[len(w.buf)-w.max:]...)
	}
	return len(p), nil
}

// String is what was kept, trimmed, on one line.
func (w *tailWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return strings.Join(strings.Fields(strings.ToValidUTF8(string(w.buf), "?")), " ")
}
