package jsonscan

import (
	"errors"
	"fmt"
	"io"
)

// ArrayReader reads the elements of one top-level JSON array from a stream,
// validating each, holding only the element being read (and one read-ahead
// buffer) in memory.
type ArrayReader struct {
	r       io.Reader
	buf     []byte
	start   int // first unconsumed byte of buf
	end     int // end of the data in buf
	eof     bool
	begun   bool
	done    bool
	count   int
	offset  int64 // stream offset of buf[0]
	maxElem int
}

// ErrNotArray is returned (wrapped) by the first Next when the input does
// not start with an array.
var ErrNotArray = errors.New("expected a JSON array")

// ErrTooLarge is returned (wrapped) by Next when one element is larger than
// the reader's limit.
var ErrTooLarge = errors.New("JSON array element larger than the limit")

// readSize is how much is read at a time: large reads keep the number of
// rescans of a long element low.
const readSize = 256 << 10

// NewArrayReader reads the array r holds. maxElem bounds one element (0:
// no bound); a longer one fails Next with ErrTooLarge instead of growing
// memory without end.
func NewArrayReader(r io.Reader, maxElem int) *ArrayReader {
	return &ArrayReader{r: r, buf: make([]byte, 0, readSize), maxElem: maxElem}
}

// Count is how many elements Next returned.
func (a *ArrayReader) Count() int { return a.count }

// fill reads more input, keeping buf[start:end]. It returns false at the
// end of the input.
func (a *ArrayReader) fill() (bool, error) {
	if a.eof {
		return false, nil
	}
	if a.start > 0 {
		n := copy(a.buf[:cap(a.buf)], a.buf[a.start:a.end])
		a.offset += int64(a.start)
		a.start, a.end = 0, n
	}
	if a.end == cap(a.buf) {
		if a.maxElem > 0 && a.end > a.maxElem {
			return false, fmt.Errorf("%w (%d bytes)", ErrTooLarge, a.maxElem)
		}
		// Doubling keeps the rescans of a long element linear in its
		// size; near the limit the buffer grows only to just past it, so
		// a refused element costs about the limit in memory, not twice.
		size := 2 * cap(a.buf)
		if a.maxElem > 0 && size > a.maxElem+readSize {
			size = a.maxElem + readSize
		}
		grown := make([]byte, a.end, size)
		copy(grown, a.buf[:a.end])
		a.buf = grown
	}
	// Read until the buffer is full (or the input ends): the element is
	// scanned again from its start after each fill, so a reader that
	// hands out small pieces (a gzip stream's 32 KB) must not make that
	// one rescan per piece, which was quadratic in the element's size.
	a.buf = a.buf[:cap(a.buf)]
	read := 0
	var err error
	for a.end < len(a.buf) && err == nil {
		var n int
		n, err = a.r.Read(a.buf[a.end:])
		a.end += n
		read += n
	}
	a.buf = a.buf[:a.end]
	if errors.Is(err, io.EOF) {
		a.eof = true
		return read > 0, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// token skips whitespace and returns the next byte, reading as needed.
func (a *ArrayReader) token() (byte, error) {
	for {
		a.start = skipSpace(a.buf[:a.end], a.start)
		if a.start < a.end {
			return a.buf[a.start], nil
		}
		more, err := a.fill()
		if err != nil {
			return 0, err
		}
		if !more {
			return 0, io.ErrUnexpectedEOF
		}
	}
}

// Next returns the next element's exact bytes, valid until the next call,
// or io.EOF after the array's closing bracket. A syntax error, an input
// that is not an array, or an input that ends early is an error.
func (a *ArrayReader) Next() ([]byte, error) {
	if a.done {
		return nil, io.EOF
	}
	c, err := a.token()
	if err != nil {
		return nil, a.where(err)
	}
	if !a.begun {
		if c != '[' {
			return nil, fmt.Errorf("%w, found %q", ErrNotArray, c)
		}
		a.begun = true
		a.start++
		if c, err = a.token(); err != nil {
			return nil, a.where(err)
		}
		if c == ']' {
			a.start++
			a.done = true
			return nil, io.EOF
		}
	} else {
		switch c {
		case ']':
			a.start++
			a.done = true
			return nil, io.EOF
		case ',':
			a.start++
		default:
			return nil, &SyntaxError{Offset: int(a.offset) + a.start, msg: fmt.Sprintf("invalid character %q after array element", c)}
		}
		if _, err := a.token(); err != nil {
			return nil, a.where(err)
		}
	}
	for {
		end, err := skip(a.buf[:a.end], a.start, 1)
		if err == nil {
			elem := a.buf[a.start:end]
			a.start = end
			a.count++
			return elem, nil
		}
		if !errors.Is(err, errShort) {
			var se *SyntaxError
			if errors.As(err, &se) {
				se.Offset += int(a.offset)
			}
			return nil, err
		}
		more, ferr := a.fill()
		if ferr != nil {
			return nil, ferr
		}
		if !more {
			return nil, a.where(io.ErrUnexpectedEOF)
		}
	}
}

func (a *ArrayReader) where(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("after %d elements: %w", a.count, err)
	}
	return err
}
