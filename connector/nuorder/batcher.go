package nuorder

import (
	"fmt"
	"sort"
	"strings"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/connector"
)

// batcher builds record batches of one schema and emits them every
// batchRows rows, so memory holds one batch at a time.
type batcher struct {
	b    *array.RecordBuilder
	rows int
	emit connector.EmitFunc
}

// batchRows is how many rows go into one record batch: large enough for
// efficient Parquet row groups and COPY loads, small enough that a batch of
// documents (a few KiB each) stays in the low megabytes.
const batchRows = 500

func newBatcher(schema *arrow.Schema, emit connector.EmitFunc) *batcher {
	return &batcher{b: array.NewRecordBuilder(memory.DefaultAllocator, schema), emit: emit}
}

// added counts a row appended to b's builder and emits a full batch.
func (bt *batcher) added() error {
	if bt.rows++; bt.rows >= batchRows {
		return bt.flush(nil)
	}
	return nil
}

// flush emits the rows built so far, with a checkpoint when not nil.
func (bt *batcher) flush(cp []byte) error {
	if bt.rows == 0 && cp == nil {
		return nil
	}
	var rec arrow.Record
	if bt.rows > 0 {
		rec = bt.b.NewRecord()
		defer rec.Release()
	}
	bt.rows = 0
	return bt.emit(connector.Batch{Record: rec, Checkpoint: cp})
}

func (bt *batcher) release() { bt.b.Release() }

// options checks a read's options against the names a stream knows.
func options(stream string, opts map[string]string, known ...string) error {
	var unknown []string
	for k := range opts {
		found := false
		for _, n := range known {
			found = found || k == n
		}
		if !found {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	if len(known) == 0 {
		return fmt.Errorf("stream %s takes no options, got %s", stream, strings.Join(unknown, ", "))
	}
	return fmt.Errorf("stream %s: unknown option %s (known: %s)", stream, strings.Join(unknown, ", "), strings.Join(known, ", "))
}
