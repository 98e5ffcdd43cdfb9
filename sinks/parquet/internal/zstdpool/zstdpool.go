// Package zstdpool replaces Arrow v15's zstd codec for Parquet pages with one
// that reuses its encoders.
//
// Arrow v15 (parquet/compress/zstd.go) builds a new zstd encoder for every
// page it compresses at a chosen level: history window, match tables and
// block buffers, about 1 MB allocated and zeroed, for pages often a few KB.
// A file of 40 columns pays it 40 to 80 times; a date-partitioned commit of
// the object-storage sink writes hundreds of such small files, and a CPU
// profile of one showed 80% of the host in encoder set-up and the garbage
// collection of it. Arrow v18 pools encoders the same way; the project stays
// on v15, so this package puts the pooling codec in v15's codec table
// (compress.codecs, reached through go:linkname: v15 has no RegisterCodec).
// Importing the package is enough; what it writes is plain zstd, byte for
// byte what a fresh encoder of the same level writes (TestOutputIsUnchanged).
package zstdpool

import (
	"io"
	"sync"
	_ "unsafe" // go:linkname

	"github.com/apache/arrow/go/v15/parquet/compress"
	"github.com/klauspost/compress/zstd"
)

//go:linkname codecs github.com/apache/arrow/go/v15/parquet/compress.codecs
var codecs map[compress.Compression]compress.Codec

// original is v15's codec, which the pooled one defers to for everything
// but one-shot encoding.
var original compress.Codec

func init() {
	original = codecs[compress.Codecs.Zstd]
	codecs[compress.Codecs.Zstd] = Codec{}
}

// Codec is v15's zstd codec with EncodeLevel served by pooled encoders
// (one sync.Pool per level). Safe for concurrent use.
type Codec struct{}

var _ compress.Codec = Codec{}

var pools sync.Map // zstd.EncoderLevel → *sync.Pool of *zstd.Encoder

func level(l int) zstd.EncoderLevel {
	if l == compress.DefaultCompressionLevel {
		return zstd.SpeedDefault
	}
	return zstd.EncoderLevelFromZstd(l)
}

func pool(l zstd.EncoderLevel) *sync.Pool {
	if p, ok := pools.Load(l); ok {
		return p.(*sync.Pool)
	}
	p, _ := pools.LoadOrStore(l, &sync.Pool{New: func() any {
		// One goroutine per encoder: EncodeAll of a page runs on the
		// caller's goroutine anyway, and concurrency only multiplies the
		// buffers an encoder holds.
		enc, err := zstd.NewWriter(nil, zstd.WithZeroFrames(true), zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err) // only for invalid options, which these are not
		}
		return enc
	}})
	return p.(*sync.Pool)
}

// EncodeLevel compresses src into dst (reused when large enough) at level.
func (Codec) EncodeLevel(dst, src []byte, l int) []byte {
	p := pool(level(l))
	enc := p.Get().(*zstd.Encoder)
	out := enc.EncodeAll(src, dst[:0])
	p.Put(enc)
	return out
}

// Encode compresses at zstd's default level.
func (c Codec) Encode(dst, src []byte) []byte {
	return c.EncodeLevel(dst, src, compress.DefaultCompressionLevel)
}

// Decode is v15's.
func (Codec) Decode(dst, src []byte) []byte { return original.Decode(dst, src) }

// NewReader is v15's.
func (Codec) NewReader(r io.Reader) io.ReadCloser { return original.NewReader(r) }

// NewWriter is v15's.
func (Codec) NewWriter(w io.Writer) io.WriteCloser { return original.NewWriter(w) }

// NewWriterLevel is v15's.
func (Codec) NewWriterLevel(w io.Writer, l int) (io.WriteCloser, error) {
	return original.NewWriterLevel(w, l)
}

// CompressBound is v15's.
func (Codec) CompressBound(n int64) int64 { return original.CompressBound(n) }
