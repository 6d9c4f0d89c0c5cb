package core

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrCorruptCheckpoint reports a checkpoint that fails its checksum or
// does not parse.
var ErrCorruptCheckpoint = errors.New("corrupt checkpoint")

// ErrCheckpointVersion reports a checkpoint written in a format this
// writer does not read (by a newer writer).
var ErrCheckpointVersion = errors.New("unsupported checkpoint format")

// enc appends the checkpoint's primitive values.
type enc struct{ b []byte }

func (e *enc) u(v uint64)     { e.b = binary.AppendUvarint(e.b, v) }
func (e *enc) i(v int64)      { e.b = binary.AppendVarint(e.b, v) }
func (e *enc) bytes(v []byte) { e.u(uint64(len(v))); e.b = append(e.b, v...) }
func (e *enc) str(v string)   { e.u(uint64(len(v))); e.b = append(e.b, v...) }
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
