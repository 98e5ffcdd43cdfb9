package jsonvalue

import (
	"encoding/json"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/decimal128"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// TestAppendJSONMatchesArrowsMarshalling: the direct encoder writes, for
// nested values of every type an orders table holds (nulls, escapes and
// invalid UTF-8 included), the document Arrow's own GetOneForMarshal +
// json.Marshal writes (the same JSON once parsed, so the same jsonb), with
// one difference on purpose: timestamps carry their zone, in RFC 3339 UTC,
// where Arrow writes "2026-11-30 08:37:01.123456".
func TestAppendJSONMatchesArrowsMarshalling(t *testing.T) {
	item := arrow.StructOf(
		arrow.Field{Name: "id", Type: arrow.BinaryTypes.String, Nullable: true},
		arrow.Field{Name: "price", Type: &arrow.Decimal128Type{Precision: 18, Scale: 4}, Nullable: true},
		arrow.Field{Name: "at", Type: &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"}, Nullable: true},
		arrow.Field{Name: "qty", Type: arrow.PrimitiveTypes.Int64, Nullable: true},
		arrow.Field{Name: "n32", Type: arrow.PrimitiveTypes.Int32, Nullable: true},
		arrow.Field{Name: "ok", Type: arrow.FixedWidthTypes.Boolean, Nullable: true},
		arrow.Field{Name: "tags", Type: arrow.ListOf(arrow.BinaryTypes.String), Nullable: true},
	)
	lb := array.NewListBuilder(memory.DefaultAllocator, item)
	defer lb.Release()
	sb := lb.ValueBuilder().(*array.StructBuilder)
	strs := []string{"plain", `quo"te \ back`, "tab\tnew\nline\x01", "caf\xc3\xa9 \xff bad", "<&>"}
	at := time.Date(2026, 11, 30, 8, 37, 1, 123456000, time.UTC)
	for row := 0; row < 12; row++ {
		if row%5 == 4 {
			lb.AppendNull()
			continue
		}
		lb.Append(true)
		for k := 0; k < row%4; k++ {
			if (row+k)%6 == 5 {
				sb.AppendNull()
				continue
			}
			sb.Append(true)
			sb.FieldBuilder(0).(*array.StringBuilder).Append(strs[(row+k)%len(strs)])
			sb.FieldBuilder(1).(*array.Decimal128Builder).Append(decimal128.FromI64(int64(row*123456 - k*7)))
			sb.FieldBuilder(2).(*array.TimestampBuilder).Append(arrow.Timestamp(at.Add(time.Duration(row) * time.Hour).UnixMicro()))
			if k == 1 {
				sb.FieldBuilder(3).AppendNull()
			} else {
				sb.FieldBuilder(3).(*array.Int64Builder).Append(int64(row * k))
			}
			sb.FieldBuilder(4).(*array.Int32Builder).Append(int32(-row))
			sb.FieldBuilder(5).(*array.BooleanBuilder).Append(k%2 == 0)
			tl := sb.FieldBuilder(6).(*array.ListBuilder)
			if k == 2 {
				tl.AppendNull()
			} else {
				tl.Append(true)
				tl.ValueBuilder().(*array.StringBuilder).Append(strs[k])
				tl.ValueBuilder().(*array.StringBuilder).AppendNull()
			}
		}
	}
	arr := lb.NewArray()
	defer arr.Release()
	for i := 0; i < arr.Len(); i++ {
		wantJSON, err := json.Marshal(arr.GetOneForMarshal(i))
		if err != nil {
			t.Fatal(err)
		}
		wantJSON = arrowTimestamp.ReplaceAll(wantJSON, []byte(`"${1}T${2}Z"`))
		gotJSON := Append(nil, arr, i)
		var want, got any
		if err := json.Unmarshal(wantJSON, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(gotJSON, &got); err != nil {
			t.Fatalf("row %d: %s is not JSON: %v", i, gotJSON, err)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("row %d:\narrow  %s\ndirect %s", i, wantJSON, gotJSON)
		}
	}
}

// arrowTimestamp matches a timestamp as Arrow marshals it, without a zone.
var arrowTimestamp = regexp.MustCompile(`"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)"`)

func TestTimestampsAreRFC3339UTC(t *testing.T) {
	b := array.NewTimestampBuilder(memory.DefaultAllocator, &arrow.TimestampType{Unit: arrow.Microsecond, TimeZone: "UTC"})
	defer b.Release()
	b.Append(arrow.Timestamp(time.Date(2025, 1, 11, 17, 58, 0, 0, time.UTC).UnixMicro()))
	arr := b.NewArray()
	defer arr.Release()
	if got := string(Append(nil, arr, 0)); got != `"2025-01-11T17:58:00Z"` {
		t.Fatalf("got %s", got)
	}
}
