package nuorder

import (
	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/decimal128"
)

// Appending lenient values to Arrow builders: null when a value is absent
// or unreadable.

func appendString(b array.Builder, f flexString) {
	if f.ok {
		b.(*array.StringBuilder).Append(f.v)
	} else {
		b.AppendNull()
	}
}

func appendBool(b array.Builder, f flexBool) {
	if f.ok {
		b.(*array.BooleanBuilder).Append(f.v)
	} else {
		b.AppendNull()
	}
}

// appendAmount appends an amount as an exact decimal (see amountScale).
func appendAmount(b array.Builder, f flexNumber) {
	if f.ok {
		if v, ok := parseDecimal(f.text, amountPrecision, amountScale); ok {
			b.(*array.Decimal128Builder).Append(decimal128.FromI64(v))
			return
		}
	}
	b.AppendNull()
}

func appendInt32(b array.Builder, f flexNumber) {
	if f.ok && f.v == float64(int32(f.v)) {
		b.(*array.Int32Builder).Append(int32(f.v))
	} else {
		b.AppendNull()
	}
}

func appendTime(b array.Builder, f flexString) {
	if t, ok := parseTime(f.v); f.ok && ok {
		b.(*array.TimestampBuilder).Append(arrow.Timestamp(t.UnixMicro()))
	} else {
		b.AppendNull()
	}
}

func appendStrings(b array.Builder, xs []flexString) {
	lb := b.(*array.ListBuilder)
	if xs == nil {
		lb.AppendNull()
		return
	}
	lb.Append(true)
	for _, x := range xs {
		appendString(lb.ValueBuilder(), x)
	}
}

func appendInt64(b array.Builder, f flexNumber) {
	if f.ok && f.v == float64(int64(f.v)) {
		b.(*array.Int64Builder).Append(int64(f.v))
	} else {
		b.AppendNull()
	}
}

// appendStructs appends a list of structs, null when items is nil, calling
// fill to set each element's fields.
func appendStructs[T any](b array.Builder, items []T, fill func(sb *array.StructBuilder, item T)) {
	lb := b.(*array.ListBuilder)
	if items == nil {
		lb.AppendNull()
		return
	}
	lb.Append(true)
	sb := lb.ValueBuilder().(*array.StructBuilder)
	for _, it := range items {
		sb.Append(true)
		fill(sb, it)
	}
}

// column is the builder of a record builder's field by name: builders are
// addressed by what they hold, so reordering a schema cannot shift values.
// The schema's own index makes it a map lookup. A name the schema lacks is
// a bug: it panics naming it.
func column(b *array.RecordBuilder, name string) array.Builder {
	idx := b.Schema().FieldIndices(name)
	if len(idx) != 1 {
		panic("nuorder: the schema has no column " + name)
	}
	return b.Field(idx[0])
}

// member is the builder of a struct field by name (see column). The struct
// type is the schema's own (lineItemType, say): asking the builder for its
// type would build a new one on every call.
func member(sb *array.StructBuilder, typ *arrow.StructType, name string) array.Builder {
	i, ok := typ.FieldIdx(name)
	if !ok {
		panic("nuorder: the struct has no field " + name)
	}
	return sb.FieldBuilder(i)
}

// named is a value and the column it goes to.
type named struct {
	name string
	v    flexString
}
