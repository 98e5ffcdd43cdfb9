package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/flight"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"pipehost/connector"
	"pipehost/internal/tracing"
)

// readTicket is a DoGet ticket: the whole read, every stream of it with its
// checkpoint. One DoGet carries one read, whatever number of streams it
// names.
type readTicket struct {
	connector.ReadRequest
}

// streamDescriptor is the FlightDescriptor every message of a read carries:
// a path of one element, the stream's name. The messages of one stream form
// one Arrow IPC stream (its schema first, then its batches, a checkpoint in
// the app_metadata of the batch it follows); those of the streams of one
// read interleave on the one DoGet.
func streamDescriptor(stream string) *flight.FlightDescriptor {
	return &flight.FlightDescriptor{Type: flight.DescriptorPATH, Path: []string{stream}}
}

// descriptorStream is the stream a read's message names ("" when it names
// none).
func descriptorStream(d *flight.FlightDescriptor) string {
	if d == nil || d.Type != flight.DescriptorPATH || len(d.Path) != 1 {
		return ""
	}
	return d.Path[0]
}

func (s *flightServer) DoGet(t *flight.Ticket, out flight.FlightService_DoGetServer) error {
	ctx := out.Context()
	defer tracing.Flush() // the host may stop the plugin right after the read
	var tk readTicket
	if err := json.Unmarshal(t.Ticket, &tk); err != nil {
		return status.Errorf(codes.InvalidArgument, "bad ticket: %v", err)
	}
	if len(tk.Streams) == 0 {
		return toStatus(fmt.Errorf("%w: the read names no stream", connector.ErrUnknownStream))
	}
	schemas := map[string]*arrow.Schema{}
	for _, sr := range tk.Streams {
		st, err := s.stream(ctx, sr.Stream, connector.Source)
		if err != nil {
			return toStatus(err)
		}
		schemas[st.Name] = st.Schema
	}
	catalog, _ := s.streams(ctx) // listed by stream above
	if _, err := connector.CheckRead(catalog, tk.ReadRequest); err != nil {
		return toStatus(err)
	}
	src, ok := s.impl.(connector.Reader)
	if !ok {
		return toStatus(fmt.Errorf("%w %q: the connector has no source streams", connector.ErrUnknownStream, tk.First()))
	}
	stop, fail := context.WithCancelCause(context.Background())
	mux := &readMux{out: out, mem: s.mem, schemas: schemas, writers: map[string]*streamWriter{}, stop: stop, fail: fail}
	err := src.Read(ctx, tk.ReadRequest, mux.send)
	if werr := mux.finish(); err == nil {
		err = werr
	}
	if err != nil {
		return toStatus(err)
	}
	return nil
}

// readMux writes the batches of a read's streams onto its one DoGet. Each
// stream has its own IPC writer, fed in order by a goroutine of its own
// from a short queue of the batches its emit calls took; only the gRPC send
// is shared, under mu. The connector's emit returns once its batch is
// queued, so the connector decodes the next rows while the last ones are
// encoded, compressed and sent: on the orders path those are a quarter of
// the plugin's CPU (LZ4 most of it), which otherwise stopped its decoding
// (make bench). Streams encode in parallel too.
type readMux struct {
	out     flight.DataStreamWriter
	mem     memory.Allocator
	schemas map[string]*arrow.Schema

	mu      sync.Mutex // guards writers and out.Send
	writers map[string]*streamWriter

	// queuing is held for reading by each emit call, for writing by finish
	// closing the queues and setting finished: a late emit of a
	// misbehaving connector gets an error, never a closed channel.
	queuing  sync.RWMutex
	finished bool

	// stop ends with the first failure of a stream's writer (fail), which
	// is its cause; it wakes emit calls waiting on a full queue.
	stop context.Context
	fail context.CancelCauseFunc
}

// writeQueue is how many emitted batches of a stream may wait for its
// writer: one being encoded and one more keep the connector decoding,
// without holding more than a few batches of memory.
const writeQueue = 2

// queued is a batch waiting for its stream's writer, its record retained.
type queued struct {
	rec        arrow.Record
	checkpoint []byte
}

// streamWriter is one stream's IPC writer, its queue, and the zero-row
// record its checkpoint-only batches travel in.
type streamWriter struct {
	w      *flight.Writer
	schema *arrow.Schema
	empty  arrow.Record
	queue  chan queued
	done   chan struct{} // closed when the writing goroutine has ended
}

// taggedSender sends a stream's messages onto the read's DoGet, each naming
// the stream.
type taggedSender struct {
	m    *readMux
	desc *flight.FlightDescriptor
}

func (t taggedSender) Send(fd *flight.FlightData) error {
	fd.FlightDescriptor = t.desc
	t.m.mu.Lock()
	defer t.m.mu.Unlock()
	return t.m.out.Send(fd)
}

func (m *readMux) writer(stream string) (*streamWriter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if sw := m.writers[stream]; sw != nil {
		return sw, nil
	}
	schema, ok := m.schemas[stream]
	if !ok {
		if stream == "" {
			return nil, fmt.Errorf("the connector emitted a batch that names no stream")
		}
		return nil, fmt.Errorf("the connector emitted a batch of stream %s, which the read did not ask for", stream)
	}
	// Batches cross LZ4-compressed: order documents are JSON text that
	// shrinks several times, and fewer bytes through gRPC and TLS cost
	// less than LZ4 does (make bench, 100k, side by side: plugin run 17.0
	// and 16.6 s against 18.6 and 17.1 s, CPU 31.2 and 30.9 s against 34.0
	// and 31.9 s). The host's reader decompresses on its own.
	sw := &streamWriter{schema: schema, empty: emptyRecord(schema, m.mem),
		w:     flight.NewRecordWriter(taggedSender{m: m, desc: streamDescriptor(stream)}, ipc.WithSchema(schema), ipc.WithAllocator(m.mem), ipc.WithLZ4()),
		queue: make(chan queued, writeQueue), done: make(chan struct{})}
	m.writers[stream] = sw
	go m.write(sw)
	return sw, nil
}

// write sends sw's queued batches in order until its queue is closed; after
// a failure (of any stream) it only releases them.
func (m *readMux) write(sw *streamWriter) {
	defer close(sw.done)
	for q := range sw.queue {
		if m.failure() == nil {
			err := splitRecord(q.rec, SplitBytes, func(piece arrow.Record, last bool) error {
				if last && q.checkpoint != nil {
					return sw.w.WriteWithAppMetadata(piece, q.checkpoint)
				}
				return sw.w.Write(piece)
			})
			if err != nil {
				m.fail(err)
			}
		}
		q.rec.Release()
	}
}

// failure is the first failure of a stream's writer, or nil.
func (m *readMux) failure() error { return context.Cause(m.stop) }

// finish closes every stream's queue and waits for its writer to send
// what it holds, then frees the writers: every batch an emit call took is
// sent before the read's end or error, as when emit sent it itself. It
// returns the first failure of a writer.
func (m *readMux) finish() error {
	m.queuing.Lock()
	m.mu.Lock()
	m.finished = true
	writers := make([]*streamWriter, 0, len(m.writers))
	for _, sw := range m.writers {
		writers = append(writers, sw)
		close(sw.queue)
	}
	m.mu.Unlock()
	m.queuing.Unlock()
	for _, sw := range writers {
		<-sw.done
		sw.w.Close()
		sw.empty.Release()
	}
	return m.failure()
}

// send is the connector's EmitFunc.
func (m *readMux) send(b connector.Batch) error {
	if b.Record == nil && b.Checkpoint == nil {
		return nil
	}
	m.queuing.RLock()
	defer m.queuing.RUnlock()
	if m.finished {
		return fmt.Errorf("the connector emitted a batch of stream %s after its read returned", b.Stream)
	}
	sw, err := m.writer(b.Stream)
	if err != nil {
		return err
	}
	rec := b.Record
	if rec == nil {
		rec = sw.empty
	}
	if !rec.Schema().Equal(sw.schema) {
		return fmt.Errorf("stream %s emitted a batch whose schema differs from its declared schema", b.Stream)
	}
	if err := m.failure(); err != nil {
		return err
	}
	rec.Retain()
	select {
	case sw.queue <- queued{rec: rec, checkpoint: b.Checkpoint}:
		return nil
	case <-m.stop.Done():
		rec.Release()
		return m.failure()
	}
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
