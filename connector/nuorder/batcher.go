package nuorder

import (
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
	// text are the top-level string columns; their text is reserved at
	// each new batch from the last one, so a batch's builders grow once.
	text     []*array.StringBuilder
	lastText []int
}

// batchRows is how many rows go into one record batch: large enough for
// efficient Parquet row groups and COPY loads, small enough that a batch of
// documents (a few KiB each) stays in the low megabytes.
const batchRows = 2000

// batchBytes caps a batch by the text its string columns hold (whole
// order documents): a few MiB per batch keeps the plugin's memory flat and
// each message far below the transport's limit.
const batchBytes = 4 << 20

func newBatcher(schema *arrow.Schema, emit connector.EmitFunc) *batcher {
	bt := &batcher{b: array.NewRecordBuilder(memory.DefaultAllocator, schema), emit: emit}
	for i := range schema.Fields() {
		if sb, ok := bt.b.Field(i).(*array.StringBuilder); ok {
			bt.text = append(bt.text, sb)
		}
	}
	bt.lastText = make([]int, len(bt.text))
	bt.b.Reserve(batchRows)
	return bt
}

// added counts a row appended to b's builder and emits a full batch.
func (bt *batcher) added() error {
	if bt.rows++; bt.rows >= batchRows || (bt.rows%64 == 0 && bt.textBytes() >= batchBytes) {
		return bt.flush(nil)
	}
	return nil
}

// textBytes is the text held by the batch's string columns.
func (bt *batcher) textBytes() int {
	n := 0
	for _, sb := range bt.text {
		n += sb.DataLen()
	}
	return n
}

// flush emits the rows built so far, with a checkpoint when not nil.
func (bt *batcher) flush(cp []byte) error {
	if bt.rows == 0 && cp == nil {
		return nil
	}
	var rec arrow.Record
	if bt.rows > 0 {
		for i, sb := range bt.text {
			bt.lastText[i] = sb.DataLen()
		}
		rec = bt.b.NewRecord()
		defer rec.Release()
		bt.b.Reserve(batchRows)
		for i, sb := range bt.text {
			sb.ReserveData(bt.lastText[i])
		}
	}
	bt.rows = 0
	return bt.emit(connector.Batch{Record: rec, Checkpoint: cp})
}

func (bt *batcher) release() { bt.b.Release() }
