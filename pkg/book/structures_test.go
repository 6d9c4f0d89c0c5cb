package book

// Alternative side structures, kept to measure the choice made in book.go
// (BenchmarkStructures). Every one takes the book's keys (price for bids,
// -price for asks, so the best level has the greatest key).
// They are checked against the model by TestStructuresAgree so that the
// figures compare correct code.

import (
	"math/rand/v2"
	"slices"
	"testing"
)

type sideImpl interface {
	set(k, q float64)
	top(dst []Level, n int, sign float64) []Level
	size() int
}

// sliceSide is parallel sorted slices of keys and quantities with the best
// level at the end, so that an insert or delete moves only the levels better
// than it, and a linear probe of the best levels before binary search.
type sliceSide struct {
	keys []float64
	qtys []float64
}

// probe is how many levels next to the best search tries linearly before it
// falls back to binary search. Most diff updates land there.
const probe = 8

// search returns the index of key k, or where it would be inserted, and
// whether it is present.
func (s *sliceSide) search(k float64) (int, bool) {
	keys := s.keys
	n := len(keys)
	// Linear probe from the best level down: keys[i] < k means k belongs
	// right above i.
	stop := max(n-probe, 0)
	i := n - 1
	for ; i >= stop; i-- {
		if keys[i] <= k {
			if keys[i] == k {
				return i, true
			}
			return i + 1, false
		}
	}
	if stop == 0 {
		return 0, false
	}
	// keys[stop] > k: binary search in keys[:stop].
	lo, hi := 0, stop
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if keys[m] < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, keys[lo] == k
}

// set makes the quantity at key k equal to q; q == 0 removes the level.
func (s *sliceSide) set(k, q float64) {
	i, found := s.search(k)
	if found {
		if q == 0 {
			n := len(s.keys) - 1
			copy(s.keys[i:], s.keys[i+1:])
			copy(s.qtys[i:], s.qtys[i+1:])
			s.keys = s.keys[:n]
			s.qtys = s.qtys[:n]
			return
		}
		s.qtys[i] = q
		return
	}
	if q == 0 {
		return
	}
	s.keys = append(s.keys, 0)
	s.qtys = append(s.qtys, 0)
	copy(s.keys[i+1:], s.keys[i:])
	copy(s.qtys[i+1:], s.qtys[i:])
	s.keys[i] = k
	s.qtys[i] = q
}

// appendTop appends the best n levels (all when n < 0), best first.
func (s *sliceSide) appendTop(dst []Level, n int, sign float64) []Level {
	if n < 0 || n > len(s.keys) {
		n = len(s.keys)
	}
	for i := len(s.keys) - 1; i >= len(s.keys)-n; i-- {
		dst = append(dst, Level{Price: sign * s.keys[i], Qty: s.qtys[i]})
	}
	return dst
}

func (s *sliceSide) top(dst []Level, n int, sign float64) []Level {
	return s.appendTop(dst, n, sign)
}
func (s *sliceSide) size() int { return len(s.keys) }

// binaryOnly is sliceSide without the linear probe near the best.
type binaryOnly struct{ sliceSide }

func (c *binaryOnly) set(k, q float64) {
	keys := c.keys
	lo, hi := 0, len(keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if keys[m] < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i := lo
	if i < len(keys) && keys[i] == k {
		if q == 0 {
			c.keys = slices.Delete(c.keys, i, i+1)
			c.qtys = slices.Delete(c.qtys, i, i+1)
		} else {
			c.qtys[i] = q
		}
		return
	}
	if q != 0 {
		c.keys = slices.Insert(c.keys, i, k)
		c.qtys = slices.Insert(c.qtys, i, q)
	}
}
func (c *binaryOnly) top(dst []Level, n int, sign float64) []Level {
	return c.appendTop(dst, n, sign)
}
func (c *binaryOnly) size() int { return len(c.keys) }

// aos is one []Level slice (price and quantity together), best at the end,
// binary search.
type aos struct{ lv []Level }

func (a *aos) set(k, q float64) {
	i, found := slices.BinarySearchFunc(a.lv, k, func(l Level, k float64) int {
		switch {
		case l.Price < k:
			return -1
		case l.Price > k:
			return 1
		}
		return 0
	})
	switch {
	case found && q == 0:
		a.lv = slices.Delete(a.lv, i, i+1)
	case found:
		a.lv[i].Qty = q
	case q != 0:
		a.lv = slices.Insert(a.lv, i, Level{k, q})
	}
}
func (a *aos) top(dst []Level, n int, sign float64) []Level {
	for i := len(a.lv) - 1; i >= 0 && i >= len(a.lv)-n; i-- {
		dst = append(dst, Level{sign * a.lv[i].Price, a.lv[i].Qty})
	}
	return dst
}
func (a *aos) size() int { return len(a.lv) }

// front is sorted slices with the best level first (keys descending): the
// textbook layout, where an insert or delete near the top moves the whole
// side.
type front struct{ keys, qtys []float64 }

func (f *front) set(k, q float64) {
	lo, hi := 0, len(f.keys)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if f.keys[m] > k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	i := lo
	if i < len(f.keys) && f.keys[i] == k {
		if q == 0 {
			f.keys = slices.Delete(f.keys, i, i+1)
			f.qtys = slices.Delete(f.qtys, i, i+1)
		} else {
			f.qtys[i] = q
		}
		return
	}
	if q != 0 {
		f.keys = slices.Insert(f.keys, i, k)
		f.qtys = slices.Insert(f.qtys, i, q)
	}
}
func (f *front) top(dst []Level, n int, sign float64) []Level {
	for i := 0; i < len(f.keys) && i < n; i++ {
		dst = append(dst, Level{sign * f.keys[i], f.qtys[i]})
	}
	return dst
}
func (f *front) size() int { return len(f.keys) }

// skipList is a skip list ordered best first (descending keys), p = 1/4,
// with a free list so that steady state does not allocate.
type skipList struct {
	head  slNode
	level int
	n     int
	free  *slNode
	rng   *rand.Rand
}

const slMax = 12

type slNode struct {
	k, q float64
	next [slMax]*slNode
}

func newSkipList() *skipList {
	return &skipList{level: 1, rng: rand.New(rand.NewPCG(1, 2))}
}

func (s *skipList) set(k, q float64) {
	var prev [slMax]*slNode
	x := &s.head
	for l := s.level - 1; l >= 0; l-- {
		for x.next[l] != nil && x.next[l].k > k {
			x = x.next[l]
		}
		prev[l] = x
	}
	if y := x.next[0]; y != nil && y.k == k {
		if q != 0 {
			y.q = q
			return
		}
		for l := 0; l < s.level && prev[l].next[l] == y; l++ {
			prev[l].next[l] = y.next[l]
		}
		y.next = [slMax]*slNode{}
		y.next[0] = s.free
		s.free = y
		s.n--
		return
	}
	if q == 0 {
		return
	}
	lvl := 1
	for lvl < slMax && s.rng.Uint32()&3 == 0 {
		lvl++
	}
	for ; s.level < lvl; s.level++ {
		prev[s.level] = &s.head
	}
	y := s.free
	if y != nil {
		s.free = y.next[0]
		y.next[0] = nil
	} else {
		y = new(slNode)
	}
	y.k, y.q = k, q
	for l := range lvl {
		y.next[l] = prev[l].next[l]
		prev[l].next[l] = y
	}
	s.n++
}
func (s *skipList) top(dst []Level, n int, sign float64) []Level {
	for x := s.head.next[0]; x != nil && len(dst) < n; x = x.next[0] {
		dst = append(dst, Level{sign * x.k, x.q})
	}
	return dst
}
func (s *skipList) size() int { return s.n }

// blocked is a two-level B+-tree shape: a list of sorted blocks of at most
// blockCap levels, split when full and dropped when empty. At 5,000 levels a
// B-tree with this fanout has this depth.
type blocked struct {
	blocks []*tblock
	n      int
	spare  []*tblock
}

const blockCap = 128

type tblock struct {
	keys, qtys []float64
}

func (b *blocked) set(k, q float64) {
	// The block holding k: the first whose greatest key is >= k, probing
	// from the best end.
	bi := len(b.blocks) - 1
	for bi > 0 {
		blk := b.blocks[bi-1]
		if blk.keys[len(blk.keys)-1] < k {
			break
		}
		bi--
	}
	if bi < 0 {
		if q == 0 {
			return
		}
		blk := b.newBlock()
		blk.keys = append(blk.keys, k)
		blk.qtys = append(blk.qtys, q)
		b.blocks = append(b.blocks, blk)
		b.n++
		return
	}
	blk := b.blocks[bi]
	i, found := slices.BinarySearch(blk.keys, k)
	if found {
		if q != 0 {
			blk.qtys[i] = q
			return
		}
		blk.keys = slices.Delete(blk.keys, i, i+1)
		blk.qtys = slices.Delete(blk.qtys, i, i+1)
		b.n--
		if len(blk.keys) == 0 {
			b.blocks = slices.Delete(b.blocks, bi, bi+1)
			b.spare = append(b.spare, blk)
		}
		return
	}
	if q == 0 {
		return
	}
	blk.keys = slices.Insert(blk.keys, i, k)
	blk.qtys = slices.Insert(blk.qtys, i, q)
	b.n++
	if len(blk.keys) > blockCap {
		nb := b.newBlock()
		h := len(blk.keys) / 2
		nb.keys = append(nb.keys, blk.keys[h:]...)
		nb.qtys = append(nb.qtys, blk.qtys[h:]...)
		blk.keys = blk.keys[:h]
		blk.qtys = blk.qtys[:h]
		b.blocks = slices.Insert(b.blocks, bi+1, nb)
	}
}

func (b *blocked) newBlock() *tblock {
	if n := len(b.spare); n > 0 {
		blk := b.spare[n-1]
		b.spare = b.spare[:n-1]
		blk.keys, blk.qtys = blk.keys[:0], blk.qtys[:0]
		return blk
	}
	return &tblock{keys: make([]float64, 0, blockCap+1), qtys: make([]float64, 0, blockCap+1)}
}

func (b *blocked) top(dst []Level, n int, sign float64) []Level {
	for bi := len(b.blocks) - 1; bi >= 0; bi-- {
		blk := b.blocks[bi]
		for i := len(blk.keys) - 1; i >= 0; i-- {
			if len(dst) == n {
				return dst
			}
			dst = append(dst, Level{sign * blk.keys[i], blk.qtys[i]})
		}
	}
	return dst
}
func (b *blocked) size() int { return b.n }

// mapSort is a map for updates, sorted on demand: cheapest to update, and
// TopN sorts the whole side.
type mapSort struct {
	m    map[float64]float64
	keys []float64
}

func (m *mapSort) set(k, q float64) {
	if q == 0 {
		delete(m.m, k)
	} else {
		m.m[k] = q
	}
}
func (m *mapSort) top(dst []Level, n int, sign float64) []Level {
	m.keys = m.keys[:0]
	for k := range m.m {
		m.keys = append(m.keys, k)
	}
	slices.Sort(m.keys)
	for i := len(m.keys) - 1; i >= 0 && len(dst) < n; i-- {
		dst = append(dst, Level{sign * m.keys[i], m.m[m.keys[i]]})
	}
	return dst
}
func (m *mapSort) size() int { return len(m.m) }

// chosen is the book's own side (side.go).
type chosen struct{ side }

func (c *chosen) top(dst []Level, n int, sign float64) []Level {
	return c.appendTop(dst, n, sign)
}
func (c *chosen) size() int { return c.n }

var structures = []struct {
	name string
	make func() sideImpl
}{
	{"btree-2level (chosen)", func() sideImpl { return &chosen{} }},
	{"slice-best-at-end", func() sideImpl { return &sliceSide{} }},
	{"slice-best-at-end-binary-only", func() sideImpl { return &binaryOnly{} }},
	{"slice-best-at-end-AoS", func() sideImpl { return &aos{} }},
	{"slice-best-first", func() sideImpl { return &front{} }},
	{"skiplist", func() sideImpl { return newSkipList() }},
	{"blocked-btree", func() sideImpl { return &blocked{} }},
	{"map-sort-on-read", func() sideImpl { return &mapSort{m: map[float64]float64{}} }},
}

func loadImpl(mk func() sideImpl, w *workload) [2]sideImpl {
	sides := [2]sideImpl{mk(), mk()}
	for _, l := range w.bids {
		sides[Bid].set(l.Price, l.Qty)
	}
	for _, l := range w.asks {
		sides[Ask].set(-l.Price, l.Qty)
	}
	return sides
}

func signOf(s Side) float64 {
	if s == Ask {
		return -1
	}
	return 1
}

// TestStructuresAgree proves that every alternative measured in
// BenchmarkStructures keeps the same book as the model, so the comparison
// is between correct implementations.
func TestStructuresAgree(t *testing.T) {
	w := newWorkload(7, 2000, 5000, mixes[1])
	for _, st := range structures {
		t.Run(st.name, func(t *testing.T) {
			sides := loadImpl(st.make, w)
			m := newModel()
			for _, l := range w.bids {
				m.set(Bid, l.Price, l.Qty)
			}
			for _, l := range w.asks {
				m.set(Ask, l.Price, l.Qty)
			}
			for i, o := range w.ops {
				sides[o.side].set(signOf(o.side)*o.price, o.qty)
				m.set(o.side, o.price, o.qty)
				if i%499 != 0 && i != len(w.ops)-1 {
					continue
				}
				for _, s := range []Side{Bid, Ask} {
					got := sides[s].top(nil, 1<<30, signOf(s))
					want := m.sorted(s)
					if !slices.Equal(got, want) {
						t.Fatalf("op %d: %s side differs from the model (%d vs %d levels)", i, s, len(got), len(want))
					}
				}
			}
		})
	}
}

// BenchmarkStructures compares side structures on the workloads of
// BenchmarkApply (5,000 levels per side, both mixes) for single level
// updates, and for the best 20 levels of both sides. The figures are in
// doc.go.
func BenchmarkStructures(b *testing.B) {
	for _, m := range mixes {
		w := newWorkload(1, 5000, 1<<16, m)
		for _, st := range structures {
			b.Run("apply/"+m.name+"/"+st.name, func(b *testing.B) {
				sides := loadImpl(st.make, w)
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					o := w.ops[i]
					sides[o.side].set(signOf(o.side)*o.price, o.qty)
					if i++; i == len(w.ops) {
						i = 0
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "updates/s")
			})
		}
	}
	w := newWorkload(1, 5000, 1<<10, mixes[0])
	for _, st := range structures {
		b.Run("top20/"+st.name, func(b *testing.B) {
			sides := loadImpl(st.make, w)
			buf := make([]Level, 0, 20)
			b.ReportAllocs()
			for b.Loop() {
				buf = sides[Bid].top(buf[:0], 20, 1)
				buf = sides[Ask].top(buf[:0], 20, -1)
			}
		})
	}
}
