package jsonscan

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

// trickle hands out at most n bytes per Read, as a gzip stream does.
type trickle struct {
	r io.Reader
	n int
}

func (t trickle) Read(p []byte) (int, error) {
	if len(p) > t.n {
		p = p[:t.n]
	}
	return t.r.Read(p)
}

// TestALongElementIsScannedInLinearTime: a 32 MiB element handed out 4 KB
// at a time is read once over, not once per piece: the element used to be
// rescanned from its start after every read (quadratic: 0.8 / 3.0 / 12.7 s
// at 4 / 8 / 16 MiB through gzip); refused at a lower limit, it costs about
// the limit in buffer, not twice.
func TestALongElementIsScannedInLinearTime(t *testing.T) {
	huge := `[{"notes":"` + strings.Repeat("a", 32<<20) + `"},{"id":1}]`
	done := make(chan error, 1)
	go func() {
		a := NewArrayReader(trickle{strings.NewReader(huge), 4 << 10}, 64<<20)
		first, err := a.Next()
		if err == nil && len(first) != 32<<20+12 {
			err = fmt.Errorf("first element is %d bytes", len(first))
		}
		if err == nil {
			_, err = a.Next()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a 32 MiB element read 4 KB at a time took over 20 s")
	}
	a := NewArrayReader(trickle{strings.NewReader(huge), 4 << 10}, 4<<20)
	if _, err := a.Next(); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if c := cap(a.buf); c > 4<<20+2*readSize {
		t.Fatalf("refusing a 4 MiB-limited element grew the buffer to %d bytes", c)
	}
}
