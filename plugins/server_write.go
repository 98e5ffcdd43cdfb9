package plugins

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"pipehost/connector"
	"pipehost/internal/tracing"
	"sync"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/flight"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func (s *flightServer) DoPut(in flight.FlightService_DoPutServer) error {
	defer tracing.Flush() // the host may stop the plugin right after the write
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
