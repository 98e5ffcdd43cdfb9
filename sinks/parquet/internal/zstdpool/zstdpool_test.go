package zstdpool

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

// page is a Parquet-page-like input: repetitive text with some noise.
func page(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	for b.Len() < n {
		fmt.Fprintf(&b, `{"_id":"%08x","status":"approved","total":%d.%02d}`, r.Uint32(), r.IntN(5000), r.IntN(100))
	}
	return b.Bytes()[:n]
}

func TestArrowUsesThePooledCodec(t *testing.T) {
	c, err := compress.GetCodec(compress.Codecs.Zstd)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.(Codec); !ok {
		t.Fatalf("Arrow's zstd codec is %T", c)
	}
}

// TestOutputIsUnchanged: for every level the sink uses, the pooled codec
// writes what a fresh encoder (v15's way) writes, and it decodes back.
func TestOutputIsUnchanged(t *testing.T) {
	for _, l := range []int{1, 3, 9, compress.DefaultCompressionLevel} {
		for i, n := range []int{1, 100, 8 << 10, 1 << 20} {
			src := page(uint64(i), n)
			fresh, _ := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(level(l)))
			want := fresh.EncodeAll(src, nil)
			for k := 0; k < 3; k++ { // the second and third use a pooled encoder
				got := Codec{}.EncodeLevel(nil, src, l)
				if !bytes.Equal(got, want) {
					t.Fatalf("level %d, %d bytes, use %d: output differs from a fresh encoder's", l, n, k)
				}
				if back := (Codec{}).Decode(nil, got); !bytes.Equal(back, src) {
					t.Fatalf("level %d, %d bytes: round trip differs", l, n)
				}
			}
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				src := page(uint64(g*100+i), 4<<10)
				if back := (Codec{}).Decode(nil, Codec{}.EncodeLevel(nil, src, 1)); !bytes.Equal(back, src) {
					t.Error("round trip differs")
					return
				}
			}
		}()
	}
	wg.Wait()
}

// BenchmarkSmallPages: v15's codec against the pooled one on 4 KB pages,
// the size of a column chunk in a small partition file.
func BenchmarkSmallPages(b *testing.B) {
	src := page(7, 4<<10)
	b.Run("v15", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for i := 0; i < b.N; i++ {
			original.EncodeLevel(nil, src, 1)
		}
	})
	b.Run("pooled", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for i := 0; i < b.N; i++ {
			Codec{}.EncodeLevel(nil, src, 1)
		}
	})
}
