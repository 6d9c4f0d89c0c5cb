package synth

import (
	"errors"
	"math"
)

// Side is the side of a book.
type Side uint8

// Sides.
const (
	Bid Side = 0
	Ask Side = 1
)

// PL is one price level in integer units: the price tick and the lots.
type PL struct {
	Tick int32
	Lots uint32
}

// Change is one level change: one update id.
type Change struct {
	ID   int64
	At   int64 // tick index that generated it
	Tick int32 // price tick
	Old  uint32
	New  uint32
	Side Side
}

// Ground-truth errors.
var (
	// ErrHistoryTrimmed: the update id is older than the retained history.
	ErrHistoryTrimmed = errors.New("update id is older than the retained history")
	// ErrFutureUpdate: the update id has not happened yet.
	ErrFutureUpdate = errors.New("update id has not happened yet")
)

const (
	chunkBits = 8
	chunkSize = 1 << chunkBits
	noOv      = ^uint32(0)
	maxLots   = noOv - 1
	// density of resting levels per tick in the procedural deep book.
	densityNum = 55705 // 0.85 × 65536
)

// Book is one symbol's order book: a procedural deep book (a deterministic
// function of the seed) overlaid by every change made since, plus an undo
// log of those changes. Bids and asks never cross.
type Book struct {
	seed    uint64
	mid0    int32
	maxDist int32 // the procedural book spans mid0 ± maxDist
	lo, hi  int32 // ticks in [lo, hi) can change
	lnMin   float64
	lnSpan  float64
	ov      [2][]*[chunkSize]uint32
	best    [2]int32
	floor   int32 // lowest tick that can hold a bid
	ceil    int32 // highest tick that can hold an ask

	lastID      int64 // id of the last applied change
	trimmedUpTo int64 // changes with id <= trimmedUpTo may be gone from hist
	hist        ring
}

// newBook builds the initial book. levels is the depth of each side of the
// procedural book; span is how far from mid0 changes may happen.
func newBook(spec *SymbolSpec, seed uint64, levels int, span int32, startID int64) *Book {
	b := &Book{
		seed:        seed,
		mid0:        spec.Mid0,
		lnMin:       math.Log(spec.LotsMin),
		lnSpan:      math.Log(spec.LotsMax) - math.Log(spec.LotsMin),
		lastID:      startID,
		trimmedUpTo: startID,
	}
	b.maxDist = maxDistFor(b.mid0, levels)
	b.lo = max(b.mid0-span, 1)
	b.hi = b.mid0 + span
	n := int(b.hi-b.lo+chunkSize-1) / chunkSize
	b.ov[Bid] = make([]*[chunkSize]uint32, n)
	b.ov[Ask] = make([]*[chunkSize]uint32, n)
	b.floor = min(b.lo, b.mid0-b.maxDist)
	b.ceil = max(b.hi-1, b.mid0+b.maxDist)
	b.best[Bid] = b.nextOut(Bid, b.mid0)
	b.best[Ask] = b.nextOut(Ask, b.mid0)
	return b
}

// maxDistFor is how many ticks from the mid the procedural book spans to
// hold about levels levels per side.
func maxDistFor(mid0 int32, levels int) int32 {
	return min(int32(math.Ceil(float64(levels)/0.85*1.03))+8, mid0-1)
}

// base is the procedural deep book.
func (b *Book) base(side Side, t int32) uint32 {
	var d int32
	if side == Bid {
		d = b.mid0 - t
	} else {
		d = t - b.mid0
	}
	if d < 1 || d > b.maxDist {
		return 0
	}
	h := mix64(b.seed ^ uint64(side)<<62 ^ uint64(uint32(t))*0x9E3779B97F4A7C15)
	if h&0xffff >= densityNum {
		return 0
	}
	u := float64(h>>24) / (1 << 40)
	return lotsOf(math.Exp(b.lnMin + u*b.lnSpan))
}

func lotsOf(f float64) uint32 {
	switch {
	case f < 1:
		return 1
	case f >= float64(maxLots):
		return maxLots
	}
	return uint32(f)
}

// Qty returns the lots resting at tick t on side (0 if none).
func (b *Book) Qty(side Side, t int32) uint32 {
	if t >= b.lo && t < b.hi {
		i := t - b.lo
		if c := b.ov[side][i>>chunkBits]; c != nil {
			if v := c[i&(chunkSize-1)]; v != noOv {
				return v
			}
		}
	}
	return b.base(side, t)
}

// Best returns the best tick of side and whether the side has a level.
func (b *Book) Best(side Side) (int32, bool) {
	t := b.best[side]
	if side == Bid {
		return t, t >= b.floor
	}
	return t, t <= b.ceil
}

// LastID is the id of the last applied change.
func (b *Book) LastID() int64 { return b.lastID }

// nextOut returns the first tick with a level strictly beyond t, moving
// away from the spread (down for bids, up for asks), or the out-of-range
// sentinel.
func (b *Book) nextOut(side Side, t int32) int32 {
	if side == Bid {
		for x := t - 1; x >= b.floor; x-- {
			if b.Qty(Bid, x) > 0 {
				return x
			}
		}
		return b.floor - 1
	}
	for x := t + 1; x <= b.ceil; x++ {
		if b.Qty(Ask, x) > 0 {
			return x
		}
	}
	return b.ceil + 1
}

// inRange reports whether t may be changed.
func (b *Book) inRange(t int32) bool { return t >= b.lo && t < b.hi }

func (b *Book) set(side Side, t int32, q uint32) {
	i := t - b.lo
	c := b.ov[side][i>>chunkBits]
	if c == nil {
		c = new([chunkSize]uint32)
		for j := range c {
			c[j] = noOv
		}
		b.ov[side][i>>chunkBits] = c
	}
	c[i&(chunkSize-1)] = q
	best := b.best[side]
	switch {
	case q > 0 && side == Bid && t > best, q > 0 && side == Ask && t < best:
		b.best[side] = t
	case q == 0 && t == best:
		b.best[side] = b.nextOut(side, t)
	}
}

// apply records and applies one change (t must be in range).
func (b *Book) apply(c Change) {
	b.set(c.Side, c.Tick, c.New)
	b.lastID = c.ID
	b.hist.push(c)
}

// collect appends the best k levels of side (fewer if the side is shorter).
func (b *Book) collect(dst []PL, side Side, k int) []PL {
	if side == Bid {
		for t := b.best[Bid]; t >= b.floor && k > 0; t-- {
			if q := b.Qty(Bid, t); q > 0 {
				dst = append(dst, PL{t, q})
				k--
			}
		}
		return dst
	}
	for t := b.best[Ask]; t <= b.ceil && k > 0; t++ {
		if q := b.Qty(Ask, t); q > 0 {
			dst = append(dst, PL{t, q})
			k--
		}
	}
	return dst
}

// better reports whether tick a is closer to the spread than tick b.
func better(side Side, a, b int32) bool {
	if side == Bid {
		return a > b
	}
	return a < b
}

// topBefore appends the best n levels of side as they were before the
// changes in undo (oldest first, as two ring segments) were applied.
func (b *Book) topBefore(dst []PL, side Side, n int, undoA, undoB []Change) []PL {
	start := len(dst)
	k := n + len(undoA) + len(undoB)
	dst = b.collect(dst, side, k)
	if len(undoA)+len(undoB) == 0 {
		return dst
	}
	lv := dst[start:]
	complete := len(lv) < k
	var bottom int32
	if len(lv) > 0 {
		bottom = lv[len(lv)-1].Tick
	}
	restore := func(c *Change) {
		if c.Side != side {
			return
		}
		if !complete && better(side, bottom, c.Tick) {
			return // deeper than the k-th level now: it cannot reach the top n
		}
		i := 0
		for i < len(lv) && better(side, lv[i].Tick, c.Tick) {
			i++
		}
		switch {
		case i < len(lv) && lv[i].Tick == c.Tick:
			if c.Old == 0 {
				lv = append(lv[:i], lv[i+1:]...)
			} else {
				lv[i].Lots = c.Old
			}
		case c.Old > 0:
			lv = append(lv, PL{})
			copy(lv[i+1:], lv[i:])
			lv[i] = PL{c.Tick, c.Old}
		}
	}
	for i := len(undoB) - 1; i >= 0; i-- {
		restore(&undoB[i])
	}
	for i := len(undoA) - 1; i >= 0; i-- {
		restore(&undoA[i])
	}
	if len(lv) > n {
		lv = lv[:n]
	}
	return append(dst[:start], lv...)
}

// LevelsAt returns the full book (bids best first, asks best first) as it
// was right after update id: every change with a larger id is undone.
func (b *Book) LevelsAt(id int64) (bids, asks []PL, err error) {
	if id > b.lastID {
		return nil, nil, ErrFutureUpdate
	}
	if id < b.trimmedUpTo {
		return nil, nil, ErrHistoryTrimmed
	}
	type key struct {
		side Side
		tick int32
	}
	overlay := map[key]uint32{}
	top := [2]int32{b.best[Bid], b.best[Ask]}
	for abs := b.hist.end() - 1; abs >= b.hist.abs; abs-- {
		c := b.hist.at(abs)
		if c.ID <= id {
			break
		}
		overlay[key{c.Side, c.Tick}] = c.Old // the oldest undone change wins
		if better(c.Side, c.Tick, top[c.Side]) {
			top[c.Side] = c.Tick
		}
	}
	qty := func(side Side, t int32) uint32 {
		if q, ok := overlay[key{side, t}]; ok {
			return q
		}
		return b.Qty(side, t)
	}
	for t := top[Bid]; t >= b.floor; t-- {
		if q := qty(Bid, t); q > 0 {
			bids = append(bids, PL{t, q})
		}
	}
	for t := top[Ask]; t <= b.ceil; t++ {
		if q := qty(Ask, t); q > 0 {
			asks = append(asks, PL{t, q})
		}
	}
	return bids, asks, nil
}

// trim drops changes older than tick minAt while more than keep remain.
func (b *Book) trim(minAt int64, keep int) {
	for b.hist.n > keep {
		c := b.hist.first()
		if c.At >= minAt {
			return
		}
		b.trimmedUpTo = c.ID
		b.hist.popFront()
	}
}

// ring is a growable ring buffer of changes addressed by absolute index.
type ring struct {
	buf  []Change
	head int
	n    int
	abs  int64 // absolute index of buf[head]
}

func (r *ring) end() int64 { return r.abs + int64(r.n) }

func (r *ring) push(c Change) {
	if r.n == len(r.buf) {
		nb := make([]Change, max(2*len(r.buf), 64))
		a, b := r.segs(r.abs, r.end())
		copy(nb[copy(nb, a):], b)
		r.buf, r.head = nb, 0
	}
	r.buf[(r.head+r.n)%len(r.buf)] = c
	r.n++
}

func (r *ring) at(abs int64) *Change {
	return &r.buf[(r.head+int(abs-r.abs))%len(r.buf)]
}

func (r *ring) first() *Change { return &r.buf[r.head] }

func (r *ring) popFront() {
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.abs++
}

// segs returns the changes with absolute index in [from, to) as up to two
// slices, oldest first.
func (r *ring) segs(from, to int64) (a, b []Change) {
	if to <= from || r.n == 0 {
		return nil, nil
	}
	i := (r.head + int(from-r.abs)) % len(r.buf)
	n := int(to - from)
	if i+n <= len(r.buf) {
		return r.buf[i : i+n], nil
	}
	return r.buf[i:], r.buf[:i+n-len(r.buf)]
}
