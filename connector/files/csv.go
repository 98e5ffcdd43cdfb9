package files

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"pipehost/connector"
	"strconv"
	"strings"
	"unicode/utf8"
)

func readCSV(ctx context.Context, path string, opts map[string]string, emit connector.EmitFunc) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	comma := ','
	if d := opts["delimiter"]; d != "" {
		if utf8.RuneCountInString(d) != 1 {
			return fmt.Errorf("files.csv: delimiter %q must be one character", d)
		}
		comma, _ = utf8.DecodeRuneInString(d)
	}
	recs := &csvRecords{lines: bufio.NewReaderSize(f, 256<<10), comma: comma}
	header := opts["header"] != "false"
	first, firstLine, perr, err := recs.next(0)
	if errors.Is(err, io.EOF) {
		return fmt.Errorf("%s is empty", path)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if perr != "" {
		return fmt.Errorf("%s:%d: the first record cannot be read: %s", path, firstLine, perr)
	}
	var cols []string
	if header {
		seen := map[string]int{}
		for i, h := range first {
			h = strings.TrimSpace(strings.TrimPrefix(h, "\ufeff"))
			if h == "" {
				h = "c" + strconv.Itoa(i+1)
			}
			if prev, dup := seen[h]; dup {
				return fmt.Errorf("%s:1:%d: column %q repeats column %d", path, i+1, h, prev+1)
			}
			seen[h] = i + 1
			cols = append(cols, h)
		}
	} else {
		for i := range first {
			cols = append(cols, "c"+strconv.Itoa(i+1))
		}
	}
	bt := newStringBatcher(cols, emit)
	defer bt.b.Release()
	values := make([]string, len(cols))
	var row int64
	firstBad := ""
	process := func(rec []string, line int64, perr string) error {
		row++
		if perr == "" && len(rec) != len(cols) {
			perr = fmt.Sprintf("the record has %d fields, the header has %d", len(rec), len(cols))
		}
		if perr == "" {
			for _, v := range rec {
				if !utf8.ValidString(v) {
					perr = "the record is not valid UTF-8 (is the file in another encoding?)"
					break
				}
			}
		}
		if perr != "" {
			if firstBad == "" {
				firstBad = fmt.Sprintf("line %d: %s", line, perr)
			}
			return bt.addError(row, line, perr)
		}
		copy(values, rec)
		return bt.add(values, nil, row, line)
	}
	if !header {
		if err := process(first, firstLine, ""); err != nil {
			return err
		}
	}
	for {
		if row%batchRows == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, line, perr, err := recs.next(len(cols))
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := process(rec, line, perr); err != nil {
			return err
		}
	}
	if err := bt.unreadable(path, firstBad); err != nil {
		return err
	}
	return bt.flush()
}

// csvRecords splits a CSV file into records itself, so that one malformed
// record (an unterminated quote, a bare quote) is reported and skipped
// rather than ending the file: a record is complete when its quotes pair
// up; one that does not within maxRecordLines lines is malformed, and
// reading starts again at the line after its first.
type csvRecords struct {
	lines   *bufio.Reader
	comma   rune
	read    int64      // lines read from the file
	pending []numbered // lines read ahead and given back
}

// numbered is a line of the file and its number.
type numbered struct {
	no   int64
	text string
}

func (c *csvRecords) readLine() (numbered, error) {
	if len(c.pending) > 0 {
		l := c.pending[0]
		c.pending = c.pending[1:]
		return l, nil
	}
	l, err := c.lines.ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && l != "") {
		return numbered{}, err
	}
	c.read++
	return numbered{c.read, strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")}, nil
}

// next returns the next record and the line it starts on, or the reason it
// cannot be read (perr); err is io.EOF at the end of the file. Empty lines
// are skipped, as encoding/csv does. want is the header's field count (0
// before the header): a record spanning lines must have it.
func (c *csvRecords) next(want int) (rec []string, line int64, perr string, err error) {
	first, err := c.readLine()
	for err == nil && strings.TrimSpace(first.text) == "" {
		first, err = c.readLine()
	}
	if err != nil {
		return nil, 0, "", err
	}
	text := first.text
	var extra []numbered
	for strings.Count(text, `"`)%2 == 1 && len(extra) < maxRecordLines && len(text) <= maxRecordBytes {
		l, err := c.readLine()
		if err != nil {
			break
		}
		extra = append(extra, l)
		text += "\n" + l.text
	}
	if strings.Count(text, `"`)%2 == 1 {
		// No closing quote: the record is the first line alone; the lines
		// read ahead are read again.
		c.pending = append(extra, c.pending...)
		return nil, first.no, "a quoted field is never closed (unterminated \")", nil
	}
	r := csv.NewReader(strings.NewReader(text))
	r.Comma, r.FieldsPerRecord = c.comma, -1
	rec, rerr := r.Read()
	if len(extra) > 0 && (rerr != nil || (want > 0 && len(rec) != want)) {
		// Spanning lines did not make a good record: the quote opened on
		// the first line is what is wrong; the other lines are read again.
		c.pending = append(extra, c.pending...)
		return nil, first.no, "a quoted field is never closed (unterminated \")", nil
	}
	if rerr != nil {
		var pe *csv.ParseError
		if errors.As(rerr, &pe) {
			return nil, first.no, fmt.Sprintf("column %d: %v", pe.Column, pe.Err), nil
		}
		return nil, first.no, rerr.Error(), nil
	}
	return rec, first.no, "", nil
}
