// Package mapping turns rows of an input (an ERP export, say) into rows of a
// connector's sink stream: it renames columns, sets constants and parses
// values (numbers, booleans, dates in a declared format) into the stream's
// types. A value that cannot be converted rejects its row, with the input
// position and the reason; the other rows go on.
package mapping

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/memory"
)

// Column says where one column of the target stream comes from.
type Column struct {
	// From names the input column; empty when Value is set.
	From string
	// Value, when not nil, is a constant for every row, as text.
	Value *string
	// Format parses dates: strftime ("%m/%d/%Y") or a Go layout
	// ("01/02/2006"). Empty: YYYY-MM-DD or RFC 3339.
	Format string
}

// Pos is where an input row is: its 1-based data row and file line (0 when
// unknown).
type Pos struct {
	Row, Line int64
}

// preview quotes a value for a reason, cut to its first characters: the
// rejects file holds the value whole in its own column, once.
func preview(text string) string {
	const max = 40
	if len(text) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(text[cut]) {
			cut--
		}
		return fmt.Sprintf("%q… (%d bytes)", text[:cut], len(text))
	}
	return fmt.Sprintf("%q", text)
}

// Reject is an input row that could not be converted.
type Reject struct {
	Pos
	Column string // the target column
	From   string // the input column
	Value  string
	Reason string
}

// Converter converts batches of one input schema to the target schema.
type Converter struct {
	target  *arrow.Schema
	sources []source // one per target column
	rowCol  int      // index of the input's row column, or -1
	lineCol int
	errCol  int // index of the input's error column (why a record is unreadable), or -1
}

type source struct {
	input  int // input column index, or -1
	value  *string
	layout string
	format string // as the user wrote it, for messages
	from   string
}

// Compile checks a mapping against an input schema and returns a Converter.
// Target columns not named in columns take the input column of the same name
// when there is one, else stay null. rowColumn and lineColumn name the
// input's position columns, errorColumn the column that says why a record
// could not be read ("" when it has none): such rows are rejected with that
// reason.
func Compile(columns map[string]Column, in, target *arrow.Schema, rowColumn, lineColumn, errorColumn string) (*Converter, error) {
	c := &Converter{target: target, rowCol: -1, lineCol: -1, errCol: -1}
	if errorColumn != "" {
		if idx := in.FieldIndices(errorColumn); len(idx) > 0 {
			c.errCol = idx[0]
		}
	}
	if rowColumn != "" {
		if idx := in.FieldIndices(rowColumn); len(idx) > 0 {
			c.rowCol = idx[0]
		}
	}
	if lineColumn != "" {
		if idx := in.FieldIndices(lineColumn); len(idx) > 0 {
			c.lineCol = idx[0]
		}
	}
	for name := range columns {
		if len(target.FieldIndices(name)) == 0 {
			return nil, fmt.Errorf("the target has no column %q", name)
		}
	}
	var inputs []string
	for _, f := range in.Fields() {
		if f.Name != rowColumn && f.Name != lineColumn && f.Name != errorColumn {
			inputs = append(inputs, f.Name)
		}
	}
	for _, f := range target.Fields() {
		col, mapped := columns[f.Name]
		s := source{input: -1, value: col.Value, from: col.From}
		if !mapped {
			s.from = f.Name
		}
		if s.value == nil {
			if idx := in.FieldIndices(s.from); len(idx) > 0 {
				s.input = idx[0]
			} else if mapped {
				return nil, fmt.Errorf("column %q (mapped to %s) is not in the input; its columns are: %s", col.From, f.Name, strings.Join(inputs, ", "))
			}
		}
		if col.Format != "" {
			s.layout, s.format = Layout(col.Format), col.Format
		}
		c.sources = append(c.sources, s)
	}
	return c, nil
}

// Layout turns a strftime format into a Go layout; a Go layout is returned
// as it is.
func Layout(format string) string {
	if !strings.Contains(format, "%") {
		return format
	}
	r := strings.NewReplacer("%Y", "2006", "%y", "06", "%m", "01", "%d", "02", "%e", "_2", "%H", "15", "%M", "04",
		"%S", "05", "%b", "Jan", "%B", "January", "%z", "-0700", "%%", "%")
	return r.Replace(format)
}

// Unmapped lists the target columns that get no value (neither mapped nor
// found by name in the input), sorted.
func (c *Converter) Unmapped() []string {
	var out []string
	for i, s := range c.sources {
		if s.input < 0 && s.value == nil {
			out = append(out, c.target.Field(i).Name)
		}
	}
	sort.Strings(out)
	return out
}

// Convert converts a batch. It returns the converted rows (nil when none
// survive), the input position of each of them, and the rejected rows.
func (c *Converter) Convert(rec arrow.Record) (arrow.Record, []Pos, []Reject) {
	n := int(rec.NumRows())
	b := array.NewRecordBuilder(memory.DefaultAllocator, c.target)
	defer b.Release()
	var kept []Pos
	var rejects []Reject
	vals := make([]any, len(c.sources))
	for i := 0; i < n; i++ {
		pos := Pos{Row: int64(i + 1)}
		if c.rowCol >= 0 {
			pos.Row = rec.Column(c.rowCol).(*array.Int64).Value(i)
		}
		if c.lineCol >= 0 && rec.Column(c.lineCol).IsValid(i) {
			pos.Line = rec.Column(c.lineCol).(*array.Int64).Value(i)
		}
		if c.errCol >= 0 && rec.Column(c.errCol).IsValid(i) {
			rejects = append(rejects, Reject{Pos: pos, Reason: rec.Column(c.errCol).(*array.String).Value(i)})
			continue
		}
		ok := true
		for k, s := range c.sources {
			var text string
			var null bool
			switch {
			case s.value != nil:
				text = *s.value
			case s.input < 0:
				null = true
			default:
				col := rec.Column(s.input)
				if col.IsNull(i) {
					null = true
				} else if sc, isStr := col.(*array.String); isStr {
					text = sc.Value(i)
				} else {
					text = col.ValueStr(i)
				}
			}
			text = strings.TrimSpace(text)
			if null || text == "" {
				vals[k] = nil
				continue
			}
			v, err := parse(text, c.target.Field(k).Type, s.layout, s.format)
			if err != nil {
				rejects = append(rejects, Reject{Pos: pos, Column: c.target.Field(k).Name, From: s.from, Value: text, Reason: err.Error()})
				ok = false
				break
			}
			vals[k] = v
		}
		if !ok {
			continue
		}
		for k, v := range vals {
			appendValue(b.Field(k), v)
		}
		kept = append(kept, pos)
	}
	if len(kept) == 0 {
		return nil, nil, rejects
	}
	return b.NewRecord(), kept, rejects
}

var dateLayouts = []string{"2006-01-02", time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02T15:04:05"}

// parse converts text to a value of type t.
func parse(text string, t arrow.DataType, layout, format string) (any, error) {
	switch t.ID() {
	case arrow.STRING:
		return text, nil
	case arrow.FLOAT64:
		v, err := strconv.ParseFloat(strings.ReplaceAll(text, "_", ""), 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a number", preview(text))
		}
		return v, nil
	case arrow.INT64:
		v, err := strconv.ParseInt(text, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s is not a whole number", preview(text))
		}
		return v, nil
	case arrow.BOOL:
		switch strings.ToLower(text) {
		case "true", "t", "yes", "y", "1", "x":
			return true, nil
		case "false", "f", "no", "n", "0":
			return false, nil
		}
		return nil, fmt.Errorf("%s is not true or false", preview(text))
	case arrow.DATE32:
		if layout != "" {
			d, err := time.Parse(layout, text)
			if err != nil {
				return nil, fmt.Errorf("%s is not a date in the format %s", preview(text), format)
			}
			return d, nil
		}
		for _, l := range dateLayouts {
			if d, err := time.Parse(l, text); err == nil {
				return d, nil
			}
		}
		return nil, fmt.Errorf("%s is not a date like 2026-01-31 (set the column's format for other layouts)", preview(text))
	}
	return nil, fmt.Errorf("columns of type %s cannot be mapped", t)
}

func appendValue(b array.Builder, v any) {
	if v == nil {
		b.AppendNull()
		return
	}
	switch x := v.(type) {
	case string:
		b.(*array.StringBuilder).Append(x)
	case float64:
		b.(*array.Float64Builder).Append(x)
	case int64:
		b.(*array.Int64Builder).Append(x)
	case bool:
		b.(*array.BooleanBuilder).Append(x)
	case time.Time:
		b.(*array.Date32Builder).Append(arrow.Date32FromTime(x))
	}
}
