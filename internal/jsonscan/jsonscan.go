// Package jsonscan reads JSON without reflection and without copying: it
// validates values in place and hands out the exact bytes of each object
// member and array element, so a connector can decode the fields it maps
// straight from the response body, keep any value's original text, and skip
// the rest at a fraction of encoding/json's cost.
//
// Its grammar is RFC 8259's, as encoding/json accepts it: a value that
// encoding/json rejects as syntax is rejected here too, with the offset of
// the first bad byte. Strings with escapes or invalid UTF-8 are unquoted by
// encoding/json itself, so their text is exactly what encoding/json gives.
package jsonscan

import (
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// MaxDepth is the deepest nesting accepted, as in encoding/json.
const MaxDepth = 10000

// SyntaxError is a JSON syntax error at an offset of the scanned bytes.
type SyntaxError struct {
	Offset int
	msg    string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("%s at offset %d", e.msg, e.Offset) }

// errShort is returned internally when b ends inside a value: a streaming
// reader then reads more.
var errShort = errors.New("unexpected end of JSON input")

func syntax(i int, format string, args ...any) error {
	return &SyntaxError{Offset: i, msg: fmt.Sprintf(format, args...)}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skip returns the offset just after the JSON value starting at b[i]
// (leading whitespace allowed). It returns errShort when b ends inside it.
func skip(b []byte, i, depth int) (int, error) {
	i = skipSpace(b, i)
	if i >= len(b) {
		return i, errShort
	}
	switch c := b[i]; {
	case c == '"':
		return skipString(b, i)
	case c == '{':
		if depth >= MaxDepth {
			return i, syntax(i, "exceeded max depth")
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == '}' {
			return i + 1, nil
		}
		for {
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, errShort
			}
			if b[i] != '"' {
				return i, syntax(i, "invalid character %q looking for beginning of object key string", b[i])
			}
			var err error
			if i, err = skipString(b, i); err != nil {
				return i, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, errShort
			}
			if b[i] != ':' {
				return i, syntax(i, "invalid character %q after object key", b[i])
			}
			if i, err = skip(b, i+1, depth+1); err != nil {
				return i, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, errShort
			}
			switch b[i] {
			case ',':
				i++
			case '}':
				return i + 1, nil
			default:
				return i, syntax(i, "invalid character %q after object key:value pair", b[i])
			}
		}
	case c == '[':
		if depth >= MaxDepth {
			return i, syntax(i, "exceeded max depth")
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, nil
		}
		for {
			var err error
			if i, err = skip(b, i, depth+1); err != nil {
				return i, err
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, errShort
			}
			switch b[i] {
			case ',':
				i++
			case ']':
				return i + 1, nil
			default:
				return i, syntax(i, "invalid character %q after array element", b[i])
			}
		}
	case c == 't':
		return skipLiteral(b, i, "true")
	case c == 'f':
		return skipLiteral(b, i, "false")
	case c == 'n':
		return skipLiteral(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		return skipNumber(b, i)
	default:
		return i, syntax(i, "invalid character %q looking for beginning of value", c)
	}
}

func skipLiteral(b []byte, i int, lit string) (int, error) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(b) {
			return i + k, errShort
		}
		if b[i+k] != lit[k] {
			return i + k, syntax(i+k, "invalid character %q in literal %s", b[i+k], lit)
		}
	}
	return i + len(lit), nil
}

// skipString returns the offset after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, error) {
	i++
	for i < len(b) {
		for i < len(b) && !stringSpecial[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, nil
		case c == '\\':
			if i+1 >= len(b) {
				return i, errShort
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := 2; k < 6; k++ {
					if i+k >= len(b) {
						return i + k, errShort
					}
					if !isHex(b[i+k]) {
						return i + k, syntax(i+k, "invalid character %q in \\u hexadecimal character escape", b[i+k])
					}
				}
				i += 6
			default:
				return i + 1, syntax(i+1, "invalid character %q in string escape code", b[i+1])
			}
		default: // a control character, the only other byte stringSpecial stops at
			return i, syntax(i, "invalid character %q in string literal", c)
		}
	}
	return i, errShort
}

// stringSpecial marks the bytes a string's scan stops at: its closing
// quote, an escape, and the control characters JSON refuses in a string.
var stringSpecial = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// skipNumber returns the offset after the number starting at b[i]. A number
// that reaches the end of b is short: more digits may follow.
func skipNumber(b []byte, i int) (int, error) {
	if b[i] == '-' {
		i++
	}
	if i >= len(b) {
		return i, errShort
	}
	switch {
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	default:
		return i, syntax(i, "invalid character %q in numeric literal", b[i])
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			return i, errShort
		}
		if !isDigit(b[i]) {
			return i, syntax(i, "invalid character %q after decimal point in numeric literal", b[i])
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			return i, errShort
		}
		if !isDigit(b[i]) {
			return i, syntax(i, "invalid character %q in exponent of numeric literal", b[i])
		}
		for i < len(b) && isDigit(b[i]) {
			i++
		}
	}
	if i >= len(b) {
		return i, errShort
	}
	return i, nil
}

// Value checks that b holds exactly one JSON value (with surrounding
// whitespace) and returns it without the whitespace.
func Value(b []byte) ([]byte, error) {
	start := skipSpace(b, 0)
	end, err := skip(b, start, 0)
	if errors.Is(err, errShort) {
		// A number ends where the input ends.
		if start < len(b) && (b[start] == '-' || isDigit(b[start])) {
			if e, ok := completeNumber(b, start); ok {
				end, err = e, nil
			}
		}
		if err != nil {
			return nil, syntax(len(b), "unexpected end of JSON input")
		}
	}
	if err != nil {
		return nil, err
	}
	if rest := skipSpace(b, end); rest != len(b) {
		return nil, syntax(rest, "invalid character %q after top-level value", b[rest])
	}
	return b[start:end], nil
}

// completeNumber says whether b[i:] is a whole number.
func completeNumber(b []byte, i int) (int, bool) {
	padded := append(append([]byte(nil), b...), ' ')
	end, err := skipNumber(padded, i)
	return end, err == nil && end == len(b)
}

// Object calls fn with each member of the object v (a value as Value or
// Object gave it: no surrounding whitespace), in order: its key, unquoted,
// and the exact bytes of its value. It errors when v is not an object.
// key is valid only during the call unless the key had escapes.
func Object(v []byte, fn func(key, val []byte) error) error {
	if len(v) == 0 || v[0] != '{' {
		return errNot("object", v)
	}
	i := skipSpace(v, 1)
	if i < len(v) && v[i] == '}' {
		return nil
	}
	for {
		i = skipSpace(v, i)
		if i >= len(v) || v[i] != '"' {
			return syntax(i, "object key expected")
		}
		kend, err := skipString(v, i)
		if err != nil {
			return fixShort(err, i)
		}
		key, vstart, err := memberKey(v, i, kend)
		if err != nil {
			return err
		}
		vend, err := skip(v, vstart, 1)
		if err != nil {
			return fixShort(err, vstart)
		}
		if err := fn(key, v[vstart:vend]); err != nil {
			return err
		}
		i = skipSpace(v, vend)
		if i >= len(v) {
			return syntax(i, "unexpected end of object")
		}
		switch v[i] {
		case ',':
			i++
		case '}':
			return nil
		default:
			return syntax(i, "invalid character %q after object key:value pair", v[i])
		}
	}
}

// memberKey reads the key of the member whose key string spans v[i:kend]:
// unquoted, and where its value starts (after the colon). The key is v's
// bytes unless it had escapes.
func memberKey(v []byte, i, kend int) (key []byte, vstart int, err error) {
	key = v[i+1 : max(i+1, kend-1)]
	if needsUnquote(key) {
		s, err := unquoteSlow(v[i:kend])
		if err != nil {
			return nil, 0, err
		}
		key = []byte(s)
	}
	i = skipSpace(v, kend)
	if i >= len(v) || v[i] != ':' {
		return nil, 0, syntax(i, "':' expected after object key")
	}
	return key, skipSpace(v, i+1), nil
}

// Array calls fn with the exact bytes of each element of the array v, in
// order. It errors when v is not an array.
func Array(v []byte, fn func(elem []byte) error) error {
	if len(v) == 0 || v[0] != '[' {
		return errNot("array", v)
	}
	i := skipSpace(v, 1)
	if i < len(v) && v[i] == ']' {
		return nil
	}
	for {
		start := skipSpace(v, i)
		end, err := skip(v, start, 1)
		if err != nil {
			return fixShort(err, start)
		}
		if err := fn(v[start:end]); err != nil {
			return err
		}
		i = skipSpace(v, end)
		if i >= len(v) {
			return syntax(i, "unexpected end of array")
		}
		switch v[i] {
		case ',':
			i++
		case ']':
			return nil
		default:
			return syntax(i, "invalid character %q after array element", v[i])
		}
	}
}

func fixShort(err error, at int) error {
	if errors.Is(err, errShort) {
		return syntax(at, "unexpected end of JSON input")
	}
	return err
}

// TypeError says a value is not of the JSON type a field needs.
type TypeError struct {
	Want string // "object", "array", "string"
	Got  string // the value's JSON type
}

func (e *TypeError) Error() string { return "cannot decode a JSON " + e.Got + " as " + e.Want }

func errNot(want string, v []byte) error { return &TypeError{Want: want, Got: Kind(v)} }

// Kind names the JSON type of a value: "object", "array", "string",
// "number", "bool" or "null".
func Kind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	}
	return "number"
}

// IsNull says whether v is the literal null.
func IsNull(v []byte) bool { return len(v) == 4 && v[0] == 'n' }

// needsUnquote says whether a string's content (between its quotes) has an
// escape or bytes that are not plain UTF-8.
func needsUnquote(s []byte) bool {
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			return !asciiOrValid(s)
		}
	}
	return false
}

// asciiOrValid says whether s has no escape and is valid UTF-8.
func asciiOrValid(s []byte) bool {
	for _, c := range s {
		if c == '\\' {
			return false
		}
	}
	return utf8.Valid(s)
}

// String returns the text of the JSON string v. It errors when v is not a
// string.
func String(v []byte) (string, error) {
	if len(v) < 2 || v[0] != '"' {
		return "", errNot("string", v)
	}
	content := v[1 : len(v)-1]
	if !needsUnquote(content) {
		return string(content), nil
	}
	return unquoteSlow(v)
}

// unquoteSlow unquotes a string with escapes or invalid UTF-8 exactly as
// encoding/json does (invalid bytes and surrogates become U+FFFD).
func unquoteSlow(v []byte) (string, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", err
	}
	return s, nil
}
