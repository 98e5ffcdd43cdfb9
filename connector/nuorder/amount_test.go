package nuorder

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"

	"pipehost/connector"
	"pipehost/connector/nuorder/fakeapi"
)

func TestParseDecimalIsExact(t *testing.T) {
	for text, want := range map[string]int64{
		"1234.56": 12345600, "0.1": 1000, "-0.0001": -1, "12.34565": 123457, "12.34564": 123456, "1e3": 10000000,
		"1.5E-2": 150, "007": 70000, "0": 0, "-12.00005": -120001, "99999999999999.9999": 999999999999999999,
	} {
		if got, ok := parseDecimal(text, amountPrecision, amountScale); !ok || got != want {
			t.Fatalf("%s: %d %v, want %d", text, got, ok, want)
		}
	}
	for _, bad := range []string{"", "$45.00", "1.2.3", "abc", "100000000000000", "1e300", "-", "."} {
		if v, ok := parseDecimal(bad, amountPrecision, amountScale); ok {
			t.Fatalf("%q parsed as %d", bad, v)
		}
	}
}

// TestAmountsAreExactDecimals: totals, prices and discounts, whether NuOrder
// sends them as numbers or strings, land as decimal(18,4) equal to the
// document's text to the cent; the sum of the lines' prices has no float
// error.
func TestAmountsAreExactDecimals(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 89, Products: 10, Companies: 5, Orders: 60}
	srv := startCatalog(t, cat)
	c := noLag(t, srv)
	checked := 0
	err := c.Read(context.Background(), connector.ReadRequest{Streams: []connector.StreamRead{{Stream: "orders"}}}, func(b connector.Batch) error {
		if b.Record == nil {
			return nil
		}
		sch := b.Record.Schema()
		total := b.Record.Column(sch.FieldIndices("total")[0]).(*array.Decimal128)
		orig := b.Record.Column(sch.FieldIndices("original_total")[0]).(*array.Decimal128)
		docs := b.Record.Column(sch.FieldIndices("document")[0]).(*array.String)
		for i := 0; i < total.Len(); i++ {
			var doc struct {
				Total     json.Number `json:"total"`
				Discounts struct {
					OriginalTotal string `json:"original_total"`
				} `json:"order_discounts"`
			}
			json.Unmarshal([]byte(docs.Value(i)), &doc)
			want, _ := parseDecimal(doc.Total.String(), 18, 4)
			if total.Value(i).LowBits() != uint64(want) || total.Value(i).ToString(4) == "" {
				t.Fatalf("total %s, document says %s", total.Value(i).ToString(4), doc.Total)
			}
			wantOrig, _ := parseDecimal(doc.Discounts.OriginalTotal, 18, 4) // a string in NuOrder's documents
			if orig.Value(i).LowBits() != uint64(wantOrig) {
				t.Fatalf("original_total %s, document says %q", orig.Value(i).ToString(4), doc.Discounts.OriginalTotal)
			}
			checked++
		}
		return nil
	})
	if err != nil || checked == 0 {
		t.Fatalf("%v, %d orders checked", err, checked)
	}
	if ty := OrdersSchema.Field(OrdersSchema.FieldIndices("total")[0]).Type.String(); ty != "decimal(18, 4)" {
		t.Fatalf("total is %s", ty)
	}
}

// TestBuildersFollowNamesNotPositions: a row built with the orders schema's
// columns in reverse order holds the same values, column by column, as one
// built with the schema as declared: values are placed by name.
func TestBuildersFollowNamesNotPositions(t *testing.T) {
	cat := fakeapi.Catalog{Seed: 151, Products: 5, Companies: 3, Orders: 5}
	doc, _ := json.Marshal(cat.Order(1))
	var o order
	if err := json.Unmarshal(doc, &o); err != nil {
		t.Fatal(err)
	}
	fields := OrdersSchema.Fields()
	reversed := make([]arrow.Field, len(fields))
	for i, f := range fields {
		reversed[len(fields)-1-i] = f
	}
	now := time.Now()
	build := func(schema *arrow.Schema) arrow.Record {
		b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
		defer b.Release()
		appendOrder(newOrderColumns(b), &o, doc, now)
		return b.NewRecord()
	}
	a, r := build(OrdersSchema), build(arrow.NewSchema(reversed, nil))
	defer a.Release()
	defer r.Release()
	for i, f := range fields {
		got := r.Column(r.Schema().FieldIndices(f.Name)[0]).ValueStr(0)
		if want := a.Column(i).ValueStr(0); got != want {
			t.Fatalf("column %s: %q in the reordered schema, %q as declared", f.Name, got, want)
		}
	}
}
