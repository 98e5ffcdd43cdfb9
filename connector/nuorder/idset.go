package nuorder

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
)

// idSet is a sorted set of document ids, held compactly: every key in one
// byte slice, 24-hex MongoDB ids as their 12 bytes, so a million ids cost
// about 16 MiB in memory (12 bytes of key, 4 of offset).
type idSet struct {
	keys []byte   // keys, back to back
	offs []uint32 // start of key i in keys; key i ends at offs[i+1] or len(keys)
	// sorted is false while ids are being added; sort before lookups.
	sorted bool
}

// idKey turns an id into its key: 12 bytes for a lowercase 24-hex ObjectId,
// else a 0xff marker and the id's bytes (so the two kinds never collide).
func idKey(id string) []byte {
	if len(id) == 24 {
		var k [12]byte
		if _, err := hex.Decode(k[:], []byte(id)); err == nil && hex.EncodeToString(k[:]) == id {
			return k[:]
		}
	}
	return append([]byte{0xff}, id...)
}

// idOf turns a key back into its id.
func idOf(k []byte) string {
	if len(k) > 0 && k[0] == 0xff {
		return string(k[1:])
	}
	return hex.EncodeToString(k)
}

func (s *idSet) len() int { return len(s.offs) }

func (s *idSet) key(i int) []byte {
	end := len(s.keys)
	if i+1 < len(s.offs) {
		end = int(s.offs[i+1])
	}
	return s.keys[s.offs[i]:end]
}

// add appends an id; call sort before has.
func (s *idSet) add(id string) { s.addKey(idKey(id)) }

// addKey appends a raw key (an idKey, possibly with bytes after it).
func (s *idSet) addKey(k []byte) {
	s.offs = append(s.offs, uint32(len(s.keys)))
	s.keys = append(s.keys, k...)
	s.sorted = false
}

// sort orders the set and drops duplicates.
func (s *idSet) sort() {
	if s.sorted {
		return
	}
	n := s.len()
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return bytes.Compare(s.key(idx[a]), s.key(idx[b])) < 0 })
	keys := make([]byte, 0, len(s.keys))
	offs := make([]uint32, 0, n)
	var prev []byte
	for j, i := range idx {
		k := s.key(i)
		if j > 0 && bytes.Equal(k, prev) {
			continue
		}
		offs = append(offs, uint32(len(keys)))
		keys = append(keys, k...)
		prev = k
	}
	s.keys, s.offs, s.sorted = keys, offs, true
}

// has says whether id is in the set, which must be sorted.
func (s *idSet) has(id string) bool { return s.hasKey(idKey(id)) }

// hasKey says whether a raw key is in the set, which must be sorted.
func (s *idSet) hasKey(k []byte) bool {
	i := sort.Search(s.len(), func(i int) bool { return bytes.Compare(s.key(i), k) >= 0 })
	return i < s.len() && bytes.Equal(s.key(i), k)
}

// each calls fn with every id, in key order (the set must be sorted).
func (s *idSet) each(fn func(id string)) {
	for i := 0; i < s.len(); i++ {
		fn(idOf(s.key(i)))
	}
}

// idSetVersion is the first byte of an encoded set.
const idSetVersion = 1

// encode returns the set as text for a JSON checkpoint: base64 of a version
// byte and the DEFLATE-compressed, front-coded, sorted keys (each key: the
// length it shares with the previous key, its remaining length, the rest).
func (s *idSet) encode() string {
	s.sort()
	var raw bytes.Buffer
	raw.WriteByte(idSetVersion)
	zw, _ := flate.NewWriter(&raw, flate.BestSpeed)
	var tmp [2 * binary.MaxVarintLen64]byte
	n := binary.PutUvarint(tmp[:], uint64(s.len()))
	zw.Write(tmp[:n])
	var prev []byte
	for i := 0; i < s.len(); i++ {
		k := s.key(i)
		shared := 0
		for shared < len(k) && shared < len(prev) && k[shared] == prev[shared] {
			shared++
		}
		n := binary.PutUvarint(tmp[:], uint64(shared))
		n += binary.PutUvarint(tmp[n:], uint64(len(k)-shared))
		zw.Write(tmp[:n])
		zw.Write(k[shared:])
		prev = k
	}
	zw.Close()
	return base64.StdEncoding.EncodeToString(raw.Bytes())
}

// decodeIDSet reads what encode wrote.
func decodeIDSet(text string) (*idSet, error) {
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) == 0 || raw[0] != idSetVersion {
		return nil, errors.New("not an id set of this version")
	}
	zr := flate.NewReader(bytes.NewReader(raw[1:]))
	defer zr.Close()
	br := &byteReader{r: zr}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("id set: %w", err)
	}
	s := &idSet{sorted: true, offs: make([]uint32, 0, min(count, 1<<24))}
	var prev []byte
	for i := uint64(0); i < count; i++ {
		shared, err1 := binary.ReadUvarint(br)
		rest, err2 := binary.ReadUvarint(br)
		if err := errors.Join(err1, err2); err != nil || shared > uint64(len(prev)) || rest > 1<<16 {
			return nil, fmt.Errorf("id set: corrupt at key %d", i)
		}
		start := len(s.keys)
		s.offs = append(s.offs, uint32(start))
		s.keys = append(s.keys, prev[:shared]...)
		s.keys = append(s.keys, make([]byte, rest)...)
		if _, err := io.ReadFull(zr, s.keys[start+int(shared):]); err != nil {
			return nil, fmt.Errorf("id set: truncated at key %d", i)
		}
		prev = s.keys[start:]
	}
	return s, nil
}

// byteReader adapts an io.Reader to io.ByteReader for ReadUvarint.
type byteReader struct {
	r   io.Reader
	buf [1]byte
}

func (b *byteReader) ReadByte() (byte, error) {
	_, err := io.ReadFull(b.r, b.buf[:])
	return b.buf[0], err
}
