package jsonscan

// Reading JSON already validated (by Value, or by ArrayReader, which
// validates each element it returns) needs no second validation: Members
// and Elements find the ends of values by counting brackets and jumping
// over strings, several times faster than Object and Array. On input that
// is not valid JSON their results are unspecified, but they neither panic
// nor loop: every offset is bounds-checked.

// structural marks the bytes skipTrusted stops at inside a container.
var structural = [256]bool{'"': true, '{': true, '[': true, '}': true, ']': true}

// skipTrusted returns the offset after the valid JSON value at b[i] (no
// leading whitespace).
func skipTrusted(b []byte, i int) int {
	if i >= len(b) {
		return len(b)
	}
	switch b[i] {
	case '"':
		return endOfString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			c := b[i]
			if !structural[c] {
				i++
				continue
			}
			switch c {
			case '"':
				i = endOfString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(b)
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return len(b)
	}
}

// endOfString returns the offset after the string starting at b[i] == '"'.
// Strings in documents are mostly short (ids, names), so a byte loop over a
// table beats a call to bytes.IndexByte for each (BenchmarkTrusted); an
// escape skips the character after its backslash.
func endOfString(b []byte, i int) int {
	i++
	for i < len(b) {
		for i < len(b) && !quoteOrEscape[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // a backslash and the character it escapes
	}
	return len(b)
}

// quoteOrEscape marks the bytes endOfString stops at.
var quoteOrEscape = [256]bool{'"': true, '\\': true}

// Members is Object for a valid object: fn gets each member's unquoted key
// and the exact bytes of its value. v that is not an object is an error.
func Members(v []byte, fn func(key, val []byte) error) error {
	if len(v) == 0 || v[0] != '{' {
		return errNot("object", v)
	}
	i := skipSpace(v, 1)
	for i < len(v) && v[i] == '"' {
		kend := endOfString(v, i)
		key, vstart, err := memberKey(v, i, kend)
		if err != nil {
			return err
		}
		vend := skipTrusted(v, vstart)
		if err := fn(key, v[vstart:vend]); err != nil {
			return err
		}
		i = skipSpace(v, vend)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return nil
}

// Elements is Array for a valid array: fn gets the exact bytes of each
// element. v that is not an array is an error.
func Elements(v []byte, fn func(elem []byte) error) error {
	if len(v) == 0 || v[0] != '[' {
		return errNot("array", v)
	}
	i := skipSpace(v, 1)
	for i < len(v) && v[i] != ']' {
		end := skipTrusted(v, i)
		if end <= i {
			return syntax(i, "unexpected end of array")
		}
		if err := fn(v[i:end]); err != nil {
			return err
		}
		i = skipSpace(v, end)
		if i < len(v) && v[i] == ',' {
			i = skipSpace(v, i+1)
		}
	}
	return nil
}
