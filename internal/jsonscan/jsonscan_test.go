package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

var seeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0.5e+10`, `"x"`, `"\u00e9\ud83d\ude00\n"`, `"\ud800"`, "\"\xff\"",
	`{"a":1,"b":[1,2,{"c":null}],"d":"e"}`, `[1, "two", {"three": [3]}, [], {}]`,
	` { "a" : [ 1 , 2 ] } `, `{"a":}`, `[1,]`, `{"a" 1}`, `01`, `1.`, `-`, `"\x"`, "\"a\x01\"", `[`, `{"a":1`, `tru`, `nul`,
	`{"_\u0069d":"x","_ID":"y"}`, `[1e5,-1E-5,0.0]`, `{"a":{"b":{"c":[[[]]]}}}`,
	`{"a\\":"b\\\\","c":"\"q\"","d\\\"":1,"e":"\u005c"}`, `["\\","x\\\"y","\\\\\""]`,
}

// TestValueAgreesWithEncodingJSON: Value accepts exactly what json.Valid
// accepts.
func TestValueAgreesWithEncodingJSON(t *testing.T) {
	for _, s := range seeds {
		_, err := Value([]byte(s))
		if (err == nil) != json.Valid([]byte(s)) {
			t.Errorf("%q: Value error %v, json.Valid %v", s, err, json.Valid([]byte(s)))
		}
	}
}

// FuzzScanAgreesWithEncodingJSON: on any input, Value accepts what
// encoding/json accepts; Object and Array give the members and elements
// encoding/json gives, byte for byte; String unquotes as it does; and the
// streaming ArrayReader, fed a byte at a time, gives the elements
// json.Decoder gives.
func FuzzScanAgreesWithEncodingJSON(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := []byte(s)
		v, err := Value(b)
		if (err == nil) != json.Valid(b) {
			t.Fatalf("%q: Value error %v, json.Valid %v", s, err, json.Valid(b))
		}
		if err != nil {
			return
		}
		switch Kind(v) {
		case "object":
			var want map[string]json.RawMessage
			if err := json.Unmarshal(v, &want); err != nil {
				t.Fatal(err)
			}
			got := map[string]json.RawMessage{}
			if err := Object(v, func(k, val []byte) error { got[string(k)] = append([]byte(nil), val...); return nil }); err != nil {
				t.Fatalf("%q: Object: %v", s, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d members, encoding/json %d", s, len(got), len(want))
			}
			trusted := map[string]json.RawMessage{}
			if err := Members(v, func(k, val []byte) error { trusted[string(k)] = append([]byte(nil), val...); return nil }); err != nil {
				t.Fatalf("%q: Members: %v", s, err)
			}
			if len(trusted) != len(want) {
				t.Fatalf("%q: Members gave %d members, encoding/json %d", s, len(trusted), len(want))
			}
			for k, w := range want {
				if !bytes.Equal(trusted[k], w) {
					t.Fatalf("%q: Members gave member %q as %q, encoding/json %q", s, k, trusted[k], w)
				}
			}
			for k, w := range want {
				if !bytes.Equal(got[k], w) {
					t.Fatalf("%q: member %q is %q, encoding/json %q", s, k, got[k], w)
				}
			}
		case "array":
			var want []json.RawMessage
			if err := json.Unmarshal(v, &want); err != nil {
				t.Fatal(err)
			}
			var got []json.RawMessage
			if err := Array(v, func(e []byte) error { got = append(got, append([]byte(nil), e...)); return nil }); err != nil {
				t.Fatalf("%q: Array: %v", s, err)
			}
			if len(got) != len(want) {
				t.Fatalf("%q: %d elements, encoding/json %d", s, len(got), len(want))
			}
			var trusted []json.RawMessage
			if err := Elements(v, func(e []byte) error { trusted = append(trusted, append([]byte(nil), e...)); return nil }); err != nil {
				t.Fatalf("%q: Elements: %v", s, err)
			}
			if len(trusted) != len(want) {
				t.Fatalf("%q: Elements gave %d elements, encoding/json %d", s, len(trusted), len(want))
			}
			for i := range want {
				if !bytes.Equal(trusted[i], want[i]) {
					t.Fatalf("%q: Elements gave element %d as %q, encoding/json %q", s, i, trusted[i], want[i])
				}
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("%q: element %d is %q, encoding/json %q", s, i, got[i], want[i])
				}
			}
			// The same array, streamed a byte at a time.
			ar := NewArrayReader(iotest.OneByteReader(bytes.NewReader(b)), 0)
			for i := 0; ; i++ {
				e, err := ar.Next()
				if errors.Is(err, io.EOF) {
					if i != len(want) {
						t.Fatalf("%q: streamed %d elements, want %d", s, i, len(want))
					}
					break
				}
				if err != nil {
					t.Fatalf("%q: streaming element %d: %v", s, i, err)
				}
				if !bytes.Equal(e, want[i]) {
					t.Fatalf("%q: streamed element %d is %q, want %q", s, i, e, want[i])
				}
			}
		case "string":
			var want string
			json.Unmarshal(v, &want)
			if got, err := String(v); err != nil || got != want {
				t.Fatalf("%q: String %q %v, encoding/json %q", s, got, err, want)
			}
		}
	})
}

func TestArrayReaderRefusesAnElementLargerThanTheLimit(t *testing.T) {
	doc := `[{"a":"` + strings.Repeat("x", 1<<20) + `"}]`
	ar := NewArrayReader(strings.NewReader(doc), 64<<10)
	if _, err := ar.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	ar = NewArrayReader(strings.NewReader(doc), 4<<20)
	if e, err := ar.Next(); err != nil || len(e) != 1<<20+8 {
		t.Fatalf("a 1 MiB element under a 4 MiB limit: %d bytes, %v", len(e), err)
	}
	if _, err := ar.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last element: %v", err)
	}
}

func TestArrayReaderReportsTruncationAndGarbage(t *testing.T) {
	for _, doc := range []string{`[{"a":1},{"b":`, `[1,2`, `{"not":"an array"}`, `[1 2]`, `[{"a":}]`} {
		ar := NewArrayReader(strings.NewReader(doc), 0)
		var err error
		for err == nil {
			_, err = ar.Next()
		}
		if errors.Is(err, io.EOF) {
			t.Errorf("%q read to the end without an error", doc)
		}
	}
}

// FuzzTrustedNeverPanics: Members and Elements on any bytes, valid or not,
// end without a panic.
func FuzzTrustedNeverPanics(f *testing.F) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		Members([]byte(s), func(k, v []byte) error { Elements(v, func([]byte) error { return nil }); return nil })
		Elements([]byte(s), func(v []byte) error { Members(v, func(k, v []byte) error { return nil }); return nil })
	})
}

// BenchmarkValue validates an order-like document of ~4 KB: mostly string
// values (names, notes, addresses, ids), some numbers and nesting.
//
//	go test ./internal/jsonscan -run '^$' -bench Value
func BenchmarkValue(b *testing.B) {
	doc := orderLikeDocument()
	b.SetBytes(int64(len(doc)))
	for i := 0; i < b.N; i++ {
		if _, err := Value(doc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTrusted walks BenchmarkValue's document as the decoder walks a
// validated one: its members, each value skipped without validation.
//
//	go test ./internal/jsonscan -run '^$' -bench Trusted
func BenchmarkTrusted(b *testing.B) {
	doc := orderLikeDocument()
	b.SetBytes(int64(len(doc)))
	for i := 0; i < b.N; i++ {
		n := 0
		Members(doc, func(k, v []byte) error { n += len(v); return nil })
		if n == 0 {
			b.Fatal("no members")
		}
	}
}

// orderLikeDocument is an order-like document of ~4 KB: mostly string
// values (names, notes, addresses, ids), some numbers and nesting.
func orderLikeDocument() []byte {
	var sb strings.Builder
	sb.WriteString(`{"_id":"65a1f0c2e4b0a1b2c3d4e5f6","order_number":"SO-2026-000042","notes":"Please ship with the spring delivery; the buyer asked for \"rush\" labels.","line_items":[`)
	for i := 0; sb.Len() < 4000; i++ {
		fmt.Fprintf(&sb, `{"product":{"_id":"65a1f0c2e4b0%012d","style_number":"ST-%05d","name":"Relaxed linen shirt, long sleeve","color":"heather grey","season":"SS27"},"sizes":[{"size":"M","upc":"0400000%05d","quantity":%d,"price":"49.50"}],"warehouse":"main"},`, i, i, i, i%24)
	}
	sb.WriteString(`{}],"total":1234.5}`)
	return []byte(sb.String())
}
