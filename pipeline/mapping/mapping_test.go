package mapping

import (
	"strings"
	"testing"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

var target = arrow.NewSchema([]arrow.Field{
	{Name: "upc", Type: arrow.BinaryTypes.String, Nullable: true},
	{Name: "quantity", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	{Name: "date", Type: arrow.FixedWidthTypes.Date32, Nullable: true},
	{Name: "prebook", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
	{Name: "warehouse", Type: arrow.BinaryTypes.String, Nullable: true},
}, nil)

func input(rows ...[]string) arrow.Record {
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "Item UPC", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "Avail", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "ETA", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "prebook", Type: arrow.BinaryTypes.String, Nullable: true},
		{Name: "_row", Type: arrow.PrimitiveTypes.Int64},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	for n, r := range rows {
		for i, v := range r {
			b.Field(i).(*array.StringBuilder).Append(v)
		}
		b.Field(4).(*array.Int64Builder).Append(int64(n + 10))
	}
	return b.NewRecord()
}

func TestConvertRenamesParsesAndRejects(t *testing.T) {
	main := "MAIN"
	conv, err := Compile(map[string]Column{
		"upc": {From: "Item UPC"}, "quantity": {From: "Avail"}, "date": {From: "ETA", Format: "%d.%m.%Y"}, "warehouse": {Value: &main},
	}, input().Schema(), target, "_row", "", "")
	if err != nil {
		t.Fatal(err)
	}
	out, kept, rejects := conv.Convert(input(
		[]string{"111", "5", "31.12.2026", "yes"},
		[]string{"222", "five", "", "no"},
		[]string{"333", " 7 ", "2026-12-31", ""},
		[]string{"444", "", "", "n"},
	))
	if out == nil || out.NumRows() != 2 || kept[0].Row != 10 || kept[1].Row != 13 {
		t.Fatalf("kept %v", kept)
	}
	if len(rejects) != 2 || rejects[0].Row != 11 || rejects[0].Column != "quantity" || !strings.Contains(rejects[0].Reason, `"five" is not a number`) ||
		rejects[1].Row != 12 || !strings.Contains(rejects[1].Reason, "not a date in the format %d.%m.%Y") {
		t.Fatalf("rejects %+v", rejects)
	}
	if out.Column(1).(*array.Float64).Value(0) != 5 || out.Column(2).(*array.Date32).Value(0).ToTime().Format("2006-01-02") != "2026-12-31" ||
		!out.Column(3).(*array.Boolean).Value(0) || out.Column(4).(*array.String).Value(1) != "MAIN" || !out.Column(1).IsNull(1) {
		t.Fatalf("converted %v", out)
	}
}

func TestCompileNamesWhatIsMissing(t *testing.T) {
	_, err := Compile(map[string]Column{"quantity": {From: "Qty"}}, input().Schema(), target, "_row", "", "")
	if err == nil || !strings.Contains(err.Error(), `column "Qty" (mapped to quantity) is not in the input; its columns are: Item UPC, Avail, ETA, prebook`) {
		t.Fatalf("error %v", err)
	}
	_, err = Compile(map[string]Column{"qty": {From: "Avail"}}, input().Schema(), target, "_row", "", "")
	if err == nil || !strings.Contains(err.Error(), `no column "qty"`) {
		t.Fatalf("error %v", err)
	}
}

func TestLayout(t *testing.T) {
	if Layout("%m/%d/%Y") != "01/02/2006" || Layout("02.01.2006") != "02.01.2006" {
		t.Fatal(Layout("%m/%d/%Y"))
	}
}
