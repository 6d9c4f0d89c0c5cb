package book

import (
	"iter"
	"math"
)

// blockSize is the most levels a block holds. 128 levels make a 2 KiB block:
// an insert or delete moves at most ~1 KiB, and a 5,000-level side has ~60
// blocks, whose first keys fit in a few cache lines.
const blockSize = 128

// block is a run of consecutive levels of one side, keys ascending.
type block struct {
	n    int
	keys [blockSize]float64
	qtys [blockSize]float64
}

// side is one side of the book as a two-level B+-tree: a sorted list of
// blocks and, alongside, each block's first key to find the block holding a
// key. Keys ascend across blocks, so the best level is the last key of the
// last block. Blocks split in two when full and merge with a neighbour when
// a quarter full or less; emptied blocks are kept for reuse, so steady state
// does not allocate.
type side struct {
	firsts []float64 // firsts[i] == blocks[i].keys[0]
	blocks []*block
	n      int
	free   []*block
}

// findBlock returns the index of the block that holds or would hold key k:
// the last block whose first key is <= k, or 0. The side must not be empty.
func (s *side) findBlock(k float64) int {
	f := s.firsts
	// Most updates land in the last blocks: probe them first.
	stop := max(len(f)-2, 0)
	for i := len(f) - 1; i >= stop; i-- {
		if f[i] <= k {
			return i
		}
	}
	lo, hi := 0, stop // the answer is the last i < stop with f[i] <= k
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if f[m] <= k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return max(lo-1, 0)
}

// search returns the index of key k in b, or where it would be inserted, and
// whether it is present.
func (b *block) search(k float64) (int, bool) {
	lo, hi := 0, b.n
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if b.keys[m] < k {
			lo = m + 1
		} else {
			hi = m
		}
	}
	return lo, lo < b.n && b.keys[lo] == k
}

func (s *side) newBlock() *block {
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		b.n = 0
		return b
	}
	return new(block)
}

func (s *side) insertBlock(i int, b *block) {
	s.blocks = append(s.blocks, nil)
	copy(s.blocks[i+1:], s.blocks[i:])
	s.blocks[i] = b
	s.firsts = append(s.firsts, 0)
	copy(s.firsts[i+1:], s.firsts[i:])
	s.firsts[i] = b.keys[0]
}

func (s *side) removeBlock(i int) {
	s.free = append(s.free, s.blocks[i])
	copy(s.blocks[i:], s.blocks[i+1:])
	s.blocks[len(s.blocks)-1] = nil
	s.blocks = s.blocks[:len(s.blocks)-1]
	copy(s.firsts[i:], s.firsts[i+1:])
	s.firsts = s.firsts[:len(s.firsts)-1]
}

// get returns the quantity at key k and whether there is a level.
func (s *side) get(k float64) (float64, bool) {
	if s.n == 0 {
		return 0, false
	}
	b := s.blocks[s.findBlock(k)]
	if i, ok := b.search(k); ok {
		return b.qtys[i], true
	}
	return 0, false
}

// set makes the quantity at key k equal to q; q == 0 removes the level.
func (s *side) set(k, q float64) {
	if s.n == 0 {
		if q != 0 {
			b := s.newBlock()
			b.keys[0], b.qtys[0], b.n = k, q, 1
			s.insertBlock(0, b)
			s.n = 1
		}
		return
	}
	bi := s.findBlock(k)
	b := s.blocks[bi]
	i, found := b.search(k)
	switch {
	case found && q != 0:
		b.qtys[i] = q
	case found:
		s.remove(bi, i)
	case q != 0:
		s.insert(bi, i, k, q)
	}
}

func (s *side) insert(bi, i int, k, q float64) {
	b := s.blocks[bi]
	if b.n == blockSize {
		// Split: the upper half moves to a new block after b.
		const h = blockSize / 2
		nb := s.newBlock()
		copy(nb.keys[:], b.keys[h:])
		copy(nb.qtys[:], b.qtys[h:])
		nb.n, b.n = blockSize-h, h
		s.insertBlock(bi+1, nb)
		if i > h {
			bi, b, i = bi+1, nb, i-h
		}
	}
	copy(b.keys[i+1:b.n+1], b.keys[i:b.n])
	copy(b.qtys[i+1:b.n+1], b.qtys[i:b.n])
	b.keys[i], b.qtys[i] = k, q
	b.n++
	if i == 0 {
		s.firsts[bi] = k
	}
	s.n++
}

func (s *side) remove(bi, i int) {
	b := s.blocks[bi]
	copy(b.keys[i:b.n-1], b.keys[i+1:b.n])
	copy(b.qtys[i:b.n-1], b.qtys[i+1:b.n])
	b.n--
	s.n--
	switch {
	case b.n == 0:
		s.removeBlock(bi)
		return
	case i == 0:
		s.firsts[bi] = b.keys[0]
	}
	if b.n > blockSize/4 {
		return
	}
	// Merge a sparse block into a neighbour when the result stays at most
	// three quarters full, so a merged block does not split again at once.
	const limit = blockSize * 3 / 4
	switch {
	case bi > 0 && s.blocks[bi-1].n+b.n <= limit:
		s.merge(bi - 1)
	case bi+1 < len(s.blocks) && b.n+s.blocks[bi+1].n <= limit:
		s.merge(bi)
	}
}

// merge appends block bi+1 to block bi and removes it.
func (s *side) merge(bi int) {
	a, b := s.blocks[bi], s.blocks[bi+1]
	copy(a.keys[a.n:], b.keys[:b.n])
	copy(a.qtys[a.n:], b.qtys[:b.n])
	a.n += b.n
	s.removeBlock(bi + 1)
}

func (s *side) reset() {
	for i := range s.blocks {
		s.free = append(s.free, s.blocks[i])
		s.blocks[i] = nil
	}
	s.blocks = s.blocks[:0]
	s.firsts = s.firsts[:0]
	s.n = 0
}

// appendAscending appends keys and quantities in ascending key order, which
// must continue past the side's last key. Blocks are filled three quarters,
// leaving room for inserts.
func (s *side) appendAscending(k, q float64) {
	const fill = blockSize * 3 / 4
	var b *block
	if nb := len(s.blocks); nb > 0 && s.blocks[nb-1].n < fill {
		b = s.blocks[nb-1]
	} else {
		b = s.newBlock()
		b.keys[0] = k
		s.insertBlock(len(s.blocks), b)
	}
	b.keys[b.n], b.qtys[b.n] = k, q
	b.n++
	s.n++
}

// last returns the greatest key and its quantity.
func (s *side) last() (k, q float64, ok bool) {
	if s.n == 0 {
		return 0, 0, false
	}
	b := s.blocks[len(s.blocks)-1]
	return b.keys[b.n-1], b.qtys[b.n-1], true
}

// appendTop appends the best n levels (all when n < 0), best first, with
// prices sign*key.
func (s *side) appendTop(dst []Level, n int, sign float64) []Level {
	if n < 0 || n > s.n {
		n = s.n
	}
	for bi := len(s.blocks) - 1; bi >= 0 && n > 0; bi-- {
		b := s.blocks[bi]
		for i := b.n - 1; i >= 0 && n > 0; i-- {
			dst = append(dst, Level{Price: sign * b.keys[i], Qty: b.qtys[i]})
			n--
		}
	}
	return dst
}

// levels iterates over the levels best first, with prices sign*key.
func (s *side) levels(sign float64) iter.Seq[Level] {
	return func(yield func(Level) bool) {
		for bi := len(s.blocks) - 1; bi >= 0; bi-- {
			b := s.blocks[bi]
			for i := b.n - 1; i >= 0; i-- {
				if !yield(Level{Price: sign * b.keys[i], Qty: b.qtys[i]}) {
					return
				}
			}
		}
	}
}

// best returns the best level, with price sign*key.
func (s *side) best(sign float64) (Level, bool) {
	k, q, ok := s.last()
	return Level{Price: sign * k, Qty: q}, ok
}

// load replaces the side with levels, which need not be sorted; keys are
// sign*price. The fast path takes levels best first and strictly ordered, as
// Binance sends them. Otherwise the levels are applied one by one, so a later
// duplicate wins and a zero quantity removes, exactly as a sequence of
// updates would.
func (s *side) load(levels []Level, sign float64) {
	s.reset()
	prev := math.Inf(-1)
	for i := len(levels) - 1; i >= 0; i-- {
		l := levels[i]
		k := sign * l.Price
		if l.Qty == 0 || k <= prev {
			s.reset()
			for _, l := range levels {
				s.set(sign*l.Price, l.Qty)
			}
			return
		}
		prev = k
		s.appendAscending(k, l.Qty)
	}
}
