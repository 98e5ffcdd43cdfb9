package files

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"pipehost/connector"
	"sort"
	"strings"
	"unicode/utf8"
)

// readJSONL reads the file twice: once for the set of keys (the schema),
// once for the rows, so memory holds one line at a time.
func readJSONL(ctx context.Context, path string, emit connector.EmitFunc) error {
	keys := map[string]bool{}
	err := eachLine(path, func(line int64, obj map[string]json.RawMessage) error {
		for k := range obj {
			keys[k] = true
		}
		return nil
	}, func(int64, string) error { return nil })
	if err != nil {
		return err
	}
	cols := make([]string, 0, len(keys))
	for k := range keys {
		cols = append(cols, k)
	}
	sort.Strings(cols)
	idx := map[string]int{}
	for i, c := range cols {
		idx[c] = i
	}
	bt := newStringBatcher(cols, emit)
	defer bt.b.Release()
	values := make([]string, len(cols))
	present := make([]bool, len(cols))
	var row int64
	firstBad := ""
	err = eachLine(path, func(line int64, obj map[string]json.RawMessage) error {
		if row%batchRows == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		row++
		for i := range present {
			present[i] = false
		}
		for k, raw := range obj {
			i := idx[k]
			var s string
			switch {
			case string(raw) == "null":
				continue
			case len(raw) > 0 && raw[0] == '"':
				json.Unmarshal(raw, &s)
			default:
				s = string(raw) // numbers, booleans, objects and arrays as written
			}
			values[i], present[i] = s, true
		}
		return bt.add(values, present, row, line)
	}, func(line int64, reason string) error {
		row++
		if firstBad == "" {
			firstBad = fmt.Sprintf("line %d: %s", line, reason)
		}
		return bt.addError(row, line, reason)
	})
	if err != nil {
		return err
	}
	if err := bt.unreadable(path, firstBad); err != nil {
		return err
	}
	return bt.flush()
}

func eachLine(path string, fn func(line int64, obj map[string]json.RawMessage) error, bad func(line int64, reason string) error) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var line int64
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		if line == 1 {
			raw = bytes.TrimPrefix(raw, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark, as Windows tools write
		}
		if !utf8.Valid(raw) {
			// encoding/json would turn the bytes into U+FFFD and send that.
			at := 0
			for at < len(raw) {
				r, size := utf8.DecodeRune(raw[at:])
				if r == utf8.RuneError && size == 1 {
					break
				}
				at += size
			}
			if err := bad(line, fmt.Sprintf("not valid UTF-8 (byte %d of the line): convert the file to UTF-8", at+1)); err != nil {
				return err
			}
			continue
		}
		text := strings.TrimSpace(string(raw))
		if text == "" {
			continue
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(text), &obj); err != nil || obj == nil {
			reason := "not a JSON object"
			if err != nil {
				reason += ": " + err.Error()
			}
			if err := bad(line, reason); err != nil {
				return err
			}
			continue
		}
		if err := fn(line, obj); err != nil {
			return err
		}
	}
	return sc.Err()
}
