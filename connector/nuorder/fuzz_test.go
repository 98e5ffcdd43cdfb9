package nuorder

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"pipehost/connector"
)

// FuzzOrderDocument: any JSON NuOrder might send as an order decodes into
// rows or is refused, never a panic; amounts parse exactly or not at all.
func FuzzOrderDocument(f *testing.F) {
	for _, seed := range []string{
		`{"_id":"543d059f8c60318201c231cb","status":"approved","total":40,"line_items":[{"product":{"_id":"x"},"sizes":[{"size":"S","quantity":1,"price":40}]}],"shipments":[]}`,
		`{"_id":"a","total":"1234.56","order_discounts":{"original_total":"1e3"},"line_items":null,"shipments":null}`,
		`{"_id":1,"line_items":[{"sizes":[{"quantity":"x","price":"1e400"}]}],"modified_on":"2014-10-14T11:14:39.527Z"}`,
		`{}`, `[]`, `null`, `{"_id":"\u0000","notes":"\u0000"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var o order
		if json.Unmarshal([]byte(doc), &o) != nil {
			return
		}
		now := time.Now()
		ob := newBatcher(OrdersSchema, func(connector.Batch) error { return nil })
		defer ob.release()
		appendOrder(newOrderColumns(ob.b), &o, json.RawMessage(doc), now)
		lb := newBatcher(OrderLinesSchema, func(connector.Batch) error { return nil })
		defer lb.release()
		lineCols := newOrderLineColumns(lb.b)
		for i := range o.LineItems {
			if !json.Valid(o.LineItems[i].raw) {
				t.Fatalf("line item %d kept %q, not its JSON text, from %s", i, o.LineItems[i].raw, doc)
			}
			for _, sz := range o.LineItems[i].Sizes {
				appendOrderLine(lineCols, &o, i, sz, now)
			}
		}
		rec := ob.b.NewRecord()
		defer rec.Release()
		for _, col := range rec.Columns() {
			if int64(col.Len()) != rec.NumRows() {
				t.Fatalf("a column of %d rows in a record of %d from %s", col.Len(), rec.NumRows(), doc)
			}
		}
		for _, n := range []flexNumber{o.Total, o.Discount, o.Discounts.OriginalTotal} {
			parseDecimal(n.text, amountPrecision, amountScale)
		}
	})
}

// FuzzIDSet: any bytes given as an encoded id set decode or are refused.
func FuzzIDSet(f *testing.F) {
	s := &idSet{}
	s.add("543d059f8c60318201c231cb")
	s.add("other-id")
	f.Add(s.encode())
	f.Add("AQ==")
	f.Fuzz(func(t *testing.T, text string) {
		if got, err := decodeIDSet(text); err == nil {
			got.encode()
		}
	})
}

// FuzzDecodeOrder: the hand-written order decoder gives what json.Unmarshal
// gives, on any input: the same order, field for field, or an error from
// both.
func FuzzDecodeOrder(f *testing.F) {
	for _, seed := range []string{
		`{"_id":"543d059f8c60318201c231cb","status":"approved","total":40,"line_items":[{"product":{"_id":"x"},"sizes":[{"size":"S","quantity":1,"price":40}]}],"shipments":[]}`,
		`{"_id":"a","total":"1234.56","order_discounts":{"original_total":"1e3"},"line_items":null,"shipments":null}`,
		`{"_id":1,"line_items":[{"sizes":[{"quantity":"x","price":"1e400"}]}],"modified_on":"2014-10-14T11:14:39.527Z"}`,
		`{}`, `[]`, `null`, `{"_id":"\u0000","notes":"\u0000"}`, `{"_ID":"a","_id":"b","RETAILER":{"retailer_name":"x"},"retailer":{"buyer_name":"y"}}`,
		`{"billing_address":{"city":"a"},"billing_address":{"zip":"1"},"shipping_address":null}`,
		`{"shipments":[{"tracking_numbers":["1",2,null]},{"type":"x"}],"shipments":[{"status":"s"}]}`,
		`{"line_items":[{"id":1},{"sizes":[{"size":"M"},{"size":"L"}]}],"retailer":5}`, `{"edited":"true","edited_on":{"a":1}}`,
		`{"retailer":null,"order_discounts":[1]}`, "{\"notes\":\"\xff\"}", `{"_\u0069d":"esc"}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		var want, got order
		werr := json.Unmarshal([]byte(doc), &want)
		gerr := decodeOrder([]byte(doc), &got)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("%q: encoding/json says %v, decodeOrder %v", doc, werr, gerr)
		}
		if werr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("%q:\nencoding/json %+v\ndecodeOrder   %+v", doc, want, got)
		}
	})
}
