package plugins

import (
	"context"
	"encoding/json"
	"fmt"
	"pipehost/connector"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/flight"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

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
