package core

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ErrCorruptCheckpoint reports a checkpoint that fails its checksum or
// does not parse.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// ErrCheckpointVersion reports a checkpoint written in a format this
// writer does not read (by a newer writer).
var ErrCheckpointVersion = errors.New("unsupported checkpoint format")

// enc appends the checkpoint's primitive values to b. With a writer w,
// it streams instead: b is written out (and checksummed) whenever it
// passes encFlush, and large byte values go straight to w, so that a
// checkpoint holding tens of MiB of inline chunks is not copied into
// one buffer (which the writer kept between checkpoints: 60 MB of a
// market replay's 220 MB live heap, and the garbage of its growth).
type enc struct {
	b   []byte
	w   io.Writer // nil: everything stays in b
	crc uint32    // Castagnoli CRC of what went to w
	n   int64     // bytes that went to w
	err error     // the first write error; later writes are skipped
}

// encFlush is the buffered bytes past which a streaming enc writes.
const encFlush = 64 << 10

// encDirect is the byte value size from which a streaming enc writes
// the value itself instead of copying it into b.
const encDirect = 4 << 10

func (e *enc) u(v uint64) {
	e.b = binary.AppendUvarint(e.b, v)
	if e.w != nil && len(e.b) >= encFlush {
		e.flush()
	}
}
func (e *enc) i(v int64) { e.u(uint64(v<<1) ^ uint64(v>>63)) }
func (e *enc) bytes(v []byte) {
	e.u(uint64(len(v)))
	if e.w != nil && len(v) >= encDirect {
		e.flush()
		e.write(v)
		return
	}
	e.b = append(e.b, v...)
}
func (e *enc) str(v string) { e.u(uint64(len(v))); e.b = append(e.b, v...) }

// flush writes b to w (streaming only) and empties it.
func (e *enc) flush() {
	if e.w == nil {
		return
	}
	e.write(e.b)
	e.b = e.b[:0]
}

func (e *enc) write(p []byte) {
	if e.err != nil || len(p) == 0 {
		return
	}
	e.crc = crc32.Update(e.crc, castagnoli, p)
	_, e.err = e.w.Write(p)
	e.n += int64(len(p))
}
func (e *enc) boolean(v bool) {
	if v {
		e.u(1)
	} else {
		e.u(0)
	}
}
func (e *enc) count(n int)      { e.u(uint64(n)) }
func (e *enc) fixed32(v uint32) { e.b = binary.LittleEndian.AppendUint32(e.b, v) }

// dec reads what enc wrote; the first error sticks.
type dec struct {
	b   []byte
	err error
}

func (d *dec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: %s", ErrCorruptCheckpoint, what)
	}
	d.b = nil
}

func (d *dec) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *dec) count(max int) int {
	n := d.u()
	if n > uint64(max) || n > uint64(len(d.b))+1 {
		d.fail("count")
		return 0
	}
	return int(n)
}

func (d *dec) bytes() []byte {
	n := d.u()
	if n > uint64(len(d.b)) {
		d.fail("bytes")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *dec) str() string   { return string(d.bytes()) }
func (d *dec) boolean() bool { return d.u() == 1 }
