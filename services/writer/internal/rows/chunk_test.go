package rows

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"reflect"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
)

// sample builds n futures diff rows with varied level counts (empty
// lists included), the layout with the most columns.
func sample(n int) (all, a, b Rows) {
	l := Layout{Market: md.Futures, Kind: md.Diff}
	d := binance.Depth{}
	for i := 0; i < n; i++ {
		d.Seq = binance.Seq{EventTime: int64(1000 + i), TransactionTime: int64(999 + i), FirstUpdateID: int64(10 * i), FinalUpdateID: int64(10*i + 5), PrevFinalUpdateID: int64(10*i - 5)}
		d.Bids = append(d.Bids[:0], binance.Level{Price: 0.1 * float64(i), Qty: 3.0292})
		if i%3 == 0 {
			d.Asks = append(d.Asks[:0], binance.Level{Price: 2683.81, Qty: 0}, binance.Level{Price: 2683.82, Qty: 1e-8})
		} else {
			d.Asks = d.Asks[:0]
		}
		ev := Event{RecvNs: int64(i) * 1_000_003, Depth: &d}
		all.Append(l, &ev)
		if i < n*2/5 {
			a.Append(l, &ev)
		} else {
			b.Append(l, &ev)
		}
	}
	return all, a, b
}

// TestChunkRoundTrip proves that encoded chunks decode to the exact rows
// (every column, float bits included), appended across several chunks,
// that ChunkRows reads the row count from the header, and that a damaged
// or truncated chunk is rejected with ErrCorrupt.
func TestChunkRoundTrip(t *testing.T) {
	all, a, b := sample(50)
	var got Rows
	var scratch []byte
	var err error
	for _, src := range []*Rows{&a, &b} {
		ch := src.AppendChunk(nil)
		if n, err := ChunkRows(ch); err != nil || n != src.N {
			t.Fatalf("ChunkRows = %d, %v; want %d", n, err, src.N)
		}
		if scratch, err = got.DecodeChunk(ch, scratch); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, all) {
		t.Fatalf("round trip differs:\n got %+v\nwant %+v", got, all)
	}
	ch := all.AppendChunk(nil)
	if len(ch) > all.ChunkSize() {
		t.Fatalf("chunk %d bytes, ChunkSize bound %d", len(ch), all.ChunkSize())
	}
	tests := []struct {
		name string
		mod  func([]byte) []byte
	}{
		{"flipped bit", func(c []byte) []byte { c[len(c)-1] ^= 1; return c }},
		{"truncated", func(c []byte) []byte { return c[:len(c)-9] }},
		{"bad magic", func(c []byte) []byte { c[0] = 'X'; return c }},
		{"short", func(c []byte) []byte { return c[:5] }},
		{"checksummed garbage body", func(c []byte) []byte {
			c = append(c[:8], 0x05, 0xff, 0xff, 0xff, 0xff, 0x7f)
			binary.LittleEndian.PutUint32(c[4:], crc32.Checksum(c[8:], castagnoli))
			return c
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.mod(append([]byte(nil), ch...))
			var r Rows
			if _, err := r.DecodeChunk(c, nil); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeChunk: %v, want ErrCorrupt", err)
			}
		})
	}
}

// appendChunkV1 is the version 1 encoder (zstd-compressed body), kept
// here to prove that version 1 chunks left in a checkpoint by an older
// writer still decode.
func appendChunkV1(r *Rows, dst []byte) []byte {
	var b []byte
	b = binary.AppendUvarint(b, uint64(r.N))
	var mask uint16
	cols := r.intCols()
	for i, c := range cols {
		if len(c) > 0 {
			mask |= 1 << i
		}
	}
	if len(r.Limit) > 0 {
		mask |= colLimit
	}
	b = binary.LittleEndian.AppendUint16(b, mask)
	for _, c := range cols {
		var prev int64
		for _, v := range c {
			b = binary.AppendVarint(b, v-prev)
			prev = v
		}
	}
	for _, v := range r.Limit {
		b = binary.AppendVarint(b, int64(v))
	}
	b = appendCounts(b, r.BidOff, r.N)
	b = appendCounts(b, r.AskOff, r.N)
	for _, s := range [...][]float64{r.BidPx, r.BidQty, r.AskPx, r.AskQty} {
		for _, f := range s {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
		}
	}
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		panic(err)
	}
	start := len(dst)
	dst = append(dst, chunkMagicV1[:]...)
	dst = append(dst, 0, 0, 0, 0)
	dst = enc.EncodeAll(b, dst)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	return dst
}

// TestChunkV1 proves that version 1 chunks decode to the exact rows, and
// mixed with version 2 chunks.
func TestChunkV1(t *testing.T) {
	all, a, b := sample(40)
	v1 := appendChunkV1(&a, nil)
	if n, err := ChunkRows(v1); err != nil || n != a.N {
		t.Fatalf("ChunkRows(v1) = %d, %v; want %d", n, err, a.N)
	}
	var got Rows
	scratch, err := got.DecodeChunk(v1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := got.DecodeChunk(b.AppendChunk(nil), scratch); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, all) {
		t.Fatalf("v1+v2 differs:\n got %+v\nwant %+v", got, all)
	}
}

// TestDiscard proves that Discard drops exactly the first rows: the rest
// equals the rows appended from that point on.
func TestDiscard(t *testing.T) {
	for _, n := range []int{0, 1, 7, 49, 50, 60} {
		all, _, _ := sample(50)
		var want Rows
		if n < all.N {
			want.AppendRows(&all, n, all.N)
		}
		all.Discard(n)
		if all.N != want.N {
			t.Fatalf("Discard(%d): %d rows left, want %d", n, all.N, want.N)
		}
		if want.N == 0 {
			continue
		}
		var g, w Rows // compare through a fresh copy: capacities differ
		g.AppendRows(&all, 0, all.N)
		w.AppendRows(&want, 0, want.N)
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("Discard(%d):\n got %+v\nwant %+v", n, g, w)
		}
	}
}

// FuzzDecodeChunk proves that no input makes DecodeChunk panic, and that
// a chunk that decodes re-encodes to rows that decode the same way.
func FuzzDecodeChunk(f *testing.F) {
	all, a, _ := sample(12)
	f.Add(all.AppendChunk(nil))
	f.Add(appendChunkV1(&a, nil))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Rows
		if _, err := r.DecodeChunk(data, nil); err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not ErrCorrupt", err)
			}
			return
		}
		var again Rows
		if _, err := again.DecodeChunk(r.AppendChunk(nil), nil); err != nil {
			t.Fatalf("re-encoded chunk: %v", err)
		}
		if again.N != r.N || len(again.BidPx) != len(r.BidPx) || len(again.AskPx) != len(r.AskPx) {
			t.Fatalf("re-encoded chunk has %d rows, want %d", again.N, r.N)
		}
	})
}
