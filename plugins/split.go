package plugins

import (
	"fmt"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/util"
)

// splitRecord slices rec into pieces whose estimated size is at most maxBytes
// and calls send for each, in order; last is true for the final piece. The
// estimate assumes rows of even width; SplitBytes leaves room for skew. Pieces
// share rec's buffers and are released after send returns. A record that fits
// is sent as it is.
func splitRecord(rec arrow.Record, maxBytes int64, send func(piece arrow.Record, last bool) error) error {
	rows := rec.NumRows()
	size := util.TotalRecordSize(rec)
	if size <= maxBytes || rows <= 1 {
		if size > MaxMessageBytes {
			return fmt.Errorf("one row is %d bytes, more than the %d-byte message limit", size, MaxMessageBytes)
		}
		return send(rec, true)
	}
	perPiece := rows * maxBytes / size
	if perPiece < 1 {
		perPiece = 1
	}
	for start := int64(0); start < rows; start += perPiece {
		end := start + perPiece
		if end > rows {
			end = rows
		}
		piece := rec.NewSlice(start, end)
		err := send(piece, end == rows)
		piece.Release()
		if err != nil {
			return err
		}
	}
	return nil
}
