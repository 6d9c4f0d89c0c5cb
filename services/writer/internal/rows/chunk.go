package rows

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// A chunk is an encoded, compressed run of rows:
//
//	"DCR1" | crc32c(body) u32 | zstd(body)
//	body: rows uvarint | column mask u16 | columns in a fixed order
//
// Integer columns are zig-zag varint deltas, level counts are varints and
// floats are their IEEE bits, so decoding gives back the exact values.
// Chunks live in checkpoints and part files; they are never user-facing.

var chunkMagic = [4]byte{'D', 'C', 'R', '1'}

// ErrCorrupt reports a chunk that fails its checksum or does not parse.
var ErrCorrupt = errors.New("corrupt row chunk")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	encOnce sync.Once
	zenc    *zstd.Encoder
	zdec    *zstd.Decoder
)

func codec() (*zstd.Encoder, *zstd.Decoder) {
	encOnce.Do(func() {
		var err error
		zenc, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			panic(err) // only invalid options fail
		}
		zdec, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<31))
		if err != nil {
			panic(err)
		}
	})
	return zenc, zdec
}

const (
	colRecv = 1 << iota
	colReq
	colEvent
	colTx
	colFirst
	colFinal
	colPrev
	colLast
	colLimit
)

// bufPool holds scratch buffers for encoding.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// AppendChunk appends the encoded chunk of r to dst and returns it.
func (r *Rows) AppendChunk(dst []byte) []byte {
	bp := bufPool.Get().(*[]byte)
	b := (*bp)[:0]
	b = binary.AppendUvarint(b, uint64(r.N))
	var mask uint16
	cols := [...][]int64{r.RecvUs, r.ReqUs, r.EventUs, r.TxUs, r.First, r.Final, r.Prev, r.Last}
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
	enc, _ := codec()
	start := len(dst)
	dst = append(dst, chunkMagic[:]...)
	dst = append(dst, 0, 0, 0, 0)
	dst = enc.EncodeAll(b, dst)
	binary.LittleEndian.PutUint32(dst[start+4:], crc32.Checksum(dst[start+8:], castagnoli))
	*bp = b
	bufPool.Put(bp)
	return dst
}

func appendCounts(b []byte, off []int32, n int) []byte {
	for i := 0; i < n; i++ {
		b = binary.AppendUvarint(b, uint64(off[i+1]-off[i]))
	}
	return b
}

// DecodeChunk appends the rows of chunk to r. scratch is reused for the
// decompressed body and returned.
func (r *Rows) DecodeChunk(chunk, scratch []byte) ([]byte, error) {
	if len(chunk) < 8 || [4]byte(chunk[:4]) != chunkMagic {
		return scratch, fmt.Errorf("%w: bad magic", ErrCorrupt)
	}
	if crc32.Checksum(chunk[8:], castagnoli) != binary.LittleEndian.Uint32(chunk[4:]) {
		return scratch, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	_, dec := codec()
	body, err := dec.DecodeAll(chunk[8:], scratch[:0])
	if err != nil {
		return scratch, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if err := r.decodeBody(body); err != nil {
		return body, err
	}
	return body, nil
}

type reader struct {
	b   []byte
	err error
}

func (d *reader) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *reader) fail() {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated body", ErrCorrupt)
	}
	d.b = nil
}

func (r *Rows) decodeBody(body []byte) error {
	d := reader{b: body}
	n := int(d.uvarint())
	if len(d.b) < 2 || n < 0 || n > len(body) {
		return fmt.Errorf("%w: header", ErrCorrupt)
	}
	mask := binary.LittleEndian.Uint16(d.b)
	d.b = d.b[2:]
	cols := [...]*[]int64{&r.RecvUs, &r.ReqUs, &r.EventUs, &r.TxUs, &r.First, &r.Final, &r.Prev, &r.Last}
	for i, c := range cols {
		if mask&(1<<i) == 0 {
			continue
		}
		var prev int64
		for j := 0; j < n; j++ {
			prev += d.varint()
			*c = append(*c, prev)
		}
	}
	if mask&colLimit != 0 {
		for j := 0; j < n; j++ {
			r.Limit = append(r.Limit, int32(d.varint()))
		}
	}
	if r.N == 0 {
		r.BidOff = append(r.BidOff[:0], 0)
		r.AskOff = append(r.AskOff[:0], 0)
	}
	nb := decodeCounts(&d, &r.BidOff, n)
	na := decodeCounts(&d, &r.AskOff, n)
	if d.err != nil {
		return d.err
	}
	if len(d.b) != (2*nb+2*na)*8 {
		return fmt.Errorf("%w: level bytes %d, want %d", ErrCorrupt, len(d.b), (2*nb+2*na)*8)
	}
	for _, s := range [...]struct {
		dst *[]float64
		n   int
	}{{&r.BidPx, nb}, {&r.BidQty, nb}, {&r.AskPx, na}, {&r.AskQty, na}} {
		for j := 0; j < s.n; j++ {
			*s.dst = append(*s.dst, math.Float64frombits(binary.LittleEndian.Uint64(d.b)))
			d.b = d.b[8:]
		}
	}
	r.N += n
	return nil
}

func decodeCounts(d *reader, off *[]int32, n int) int {
	total := 0
	last := (*off)[len(*off)-1]
	for j := 0; j < n; j++ {
		c := int(d.uvarint())
		if c > len(d.b) {
			d.fail()
			return 0
		}
		total += c
		last += int32(c)
		*off = append(*off, last)
	}
	return total
}
