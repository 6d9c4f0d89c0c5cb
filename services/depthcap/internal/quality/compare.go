package quality

import (
	"fmt"
	"math"
	"sort"

	"github.com/depthcap/depthcap/pkg/book"
)

// span is the price range of a book that a snapshot or a partial frame
// vouches for: every bid at or above BidLo and every ask at or below AskHi.
// A REST snapshot cut at its limit knows nothing below its worst bid or
// above its worst ask; one with fewer levels than its limit holds the whole
// side (unbounded). A partial frame is always cut at its worst level.
type span struct {
	BidLo, AskHi float64
}

var fullSpan = span{BidLo: math.Inf(-1), AskHi: math.Inf(1)}

// spanOf returns the span of a side pair: cut at the worst level of a side
// unless the side is known to be complete (limit > 0 and fewer levels than
// limit). An empty side that is not known to be complete vouches for
// nothing.
func spanOf(bids, asks []book.Level, limit int32) span {
	s := fullSpan
	complete := func(n int) bool { return limit > 0 && n < int(limit) }
	if !complete(len(bids)) {
		s.BidLo = math.Inf(1)
		for _, l := range bids {
			s.BidLo = min(s.BidLo, l.Price)
		}
	}
	if !complete(len(asks)) {
		s.AskHi = math.Inf(-1)
		for _, l := range asks {
			s.AskHi = max(s.AskHi, l.Price)
		}
	}
	return s
}

// intersect is the range both spans know.
func (s span) intersect(o span) span {
	return span{BidLo: max(s.BidLo, o.BidLo), AskHi: min(s.AskHi, o.AskHi)}
}

func (s span) inBid(p float64) bool { return p >= s.BidLo }
func (s span) inAsk(p float64) bool { return p <= s.AskHi }

// undoLevel is one level change of an applied event: the quantity before
// and after.
type undoLevel struct {
	side     book.Side
	price    float64
	old, new float64
}

// undoEvent is an applied event in the undo log.
type undoEvent struct {
	first, final int64
	from, to     int // its levels: log.levels[from:to]
}

// undoLog keeps the level changes of the most recent events applied to the
// live book, so that the book can be compared as it stood at an earlier
// update id: a snapshot's lastUpdateId or a partial frame's id usually lies
// a little behind the stream when its row is read. It is bounded by events
// and by levels; older states are not comparable.
type undoLog struct {
	base      int64 // update id of the state before the oldest event kept
	all       []undoEvent
	ev0       int // events are all[ev0:]
	levels    []undoLevel
	maxEvents int
	maxLevels int
	valid     bool

	scratchOld map[sideKey]float64
	scratchNew map[sideKey]float64
}

type sideKey struct {
	side  book.Side
	price float64
}

func newUndoLog(maxEvents, maxLevels int) *undoLog {
	// Compaction keeps the slices within about twice the bounds.
	return &undoLog{maxEvents: maxEvents, maxLevels: maxLevels,
		all: make([]undoEvent, 0, 2*maxEvents), levels: make([]undoLevel, 0, 2*maxLevels),
		scratchOld: map[sideKey]float64{}, scratchNew: map[sideKey]float64{}}
}

func (l *undoLog) events() []undoEvent { return l.all[l.ev0:] }

// reset starts a new live run at update id base.
func (l *undoLog) reset(base int64) {
	l.base, l.all, l.ev0, l.levels, l.valid = base, l.all[:0], 0, l.levels[:0], true
}

// invalidate drops the log: the book is not live.
func (l *undoLog) invalidate() { l.reset(0); l.valid = false }

// head is the update id of the newest state.
func (l *undoLog) head() int64 {
	if n := len(l.all); n > l.ev0 {
		return l.all[n-1].final
	}
	return l.base
}

// record adds an event about to be applied to b: it reads the quantities
// before the change.
func (l *undoLog) record(b *book.Book, first, final int64, bids, asks []book.Level) {
	from := len(l.levels)
	for _, lv := range bids {
		l.levels = append(l.levels, undoLevel{side: book.Bid, price: lv.Price, old: b.Qty(book.Bid, lv.Price), new: lv.Qty})
	}
	for _, lv := range asks {
		l.levels = append(l.levels, undoLevel{side: book.Ask, price: lv.Price, old: b.Qty(book.Ask, lv.Price), new: lv.Qty})
	}
	l.all = append(l.all, undoEvent{first: first, final: final, from: from, to: len(l.levels)})
	l.trim()
}

// drop removes the newest event (it was not applied after all).
func (l *undoLog) drop() {
	n := len(l.all)
	if n == l.ev0 {
		return
	}
	l.levels = l.levels[:l.all[n-1].from]
	l.all = l.all[:n-1]
}

// trim keeps the log within its bounds, compacting the slices once half of
// them is dropped.
func (l *undoLog) trim() {
	for n := len(l.all) - l.ev0; n > 0; n-- {
		held := len(l.levels) - l.all[l.ev0].from
		if n <= l.maxEvents && held <= l.maxLevels {
			break
		}
		l.base = l.all[l.ev0].final
		l.ev0++
	}
	if l.ev0 == 0 || l.ev0 < len(l.all)/2 {
		return
	}
	cut := len(l.levels)
	if l.ev0 < len(l.all) {
		cut = l.all[l.ev0].from
	}
	n := copy(l.all, l.all[l.ev0:])
	l.all = l.all[:n]
	for i := range l.all {
		l.all[i].from -= cut
		l.all[i].to -= cut
	}
	m := copy(l.levels, l.levels[cut:])
	l.levels = l.levels[:m]
	l.ev0 = 0
}

// target is a REST snapshot or partial frame to compare with the book at
// update id id.
type target struct {
	snapshot   bool
	id         int64
	recvUs     int64
	file       int
	row        int64
	bids, asks []book.Level
	span       span
}

// cmpResult is the outcome of one comparison.
type cmpResult struct {
	skipped  string // why it was not compared ("" when compared)
	straddle bool   // id fell inside an event: compared after that event, with it applied to the target
	at       int64  // update id of the book state compared
	bids     int    // levels compared
	asks     int
	diffs    int    // differing levels
	first    string // first difference, best level first
}

// compareAt compares t with the book b as it stood at update id t.id,
// within rng (the span the book knows, intersected with the target's). The
// log must be valid and t.id <= l.head().
func (l *undoLog) compareAt(b *book.Book, t *target, rng span) cmpResult {
	if !l.valid {
		return cmpResult{skipped: "book not live"}
	}
	if t.id < l.base {
		return cmpResult{skipped: "too old for the undo log"}
	}
	// The state after events[:j] stands for ids in [h_j, U_j+1) where
	// h_j is the final id of events[j-1].
	evs := l.events()
	j := len(evs)
	for j > 0 && evs[j-1].final > t.id {
		j--
	}
	res := cmpResult{at: l.base}
	if j > 0 {
		res.at = evs[j-1].final
	}
	var overlay *undoEvent
	if j < len(evs) && evs[j].first <= t.id {
		// Inside event j: its changes before and after t.id are not
		// separable, but its quantities are absolute, so the book after
		// it equals the target with the event applied.
		overlay = &evs[j]
		j++
		res.straddle, res.at = true, overlay.final
	}
	if j == len(evs) && overlay == nil {
		if ok, nb, na := equalDirect(b, t, rng); ok {
			res.bids, res.asks = nb, na
			return res
		}
	}
	old, nw := l.scratchOld, l.scratchNew
	clear(old)
	clear(nw)
	for k := len(evs) - 1; k >= j; k-- {
		ev := evs[k]
		for i := ev.to - 1; i >= ev.from; i-- {
			u := l.levels[i]
			old[sideKey{u.side, u.price}] = u.old
		}
	}
	if overlay != nil {
		for i := overlay.from; i < overlay.to; i++ {
			u := l.levels[i]
			nw[sideKey{u.side, u.price}] = u.new
		}
	}
	compareSides(b, t, rng, old, nw, &res)
	return res
}

// equalDirect compares the current book with t by walking both best
// first; it allocates nothing. ok is false on any difference (the caller
// then computes the details).
func equalDirect(b *book.Book, t *target, rng span) (ok bool, nb, na int) {
	i := 0
	for lv := range b.Bids() {
		if !rng.inBid(lv.Price) {
			break
		}
		if i >= len(t.bids) || t.bids[i] != lv {
			return false, 0, 0
		}
		i++
	}
	if i < len(t.bids) && rng.inBid(t.bids[i].Price) {
		return false, 0, 0
	}
	nb, i = i, 0
	for lv := range b.Asks() {
		if !rng.inAsk(lv.Price) {
			break
		}
		if i >= len(t.asks) || t.asks[i] != lv {
			return false, 0, 0
		}
		i++
	}
	if i < len(t.asks) && rng.inAsk(t.asks[i].Price) {
		return false, 0, 0
	}
	return true, nb, i
}

// compareSides compares, within rng, the book with the quantities of old
// put back (the book's state at the compared id) against the target with
// the quantities of nw applied (the straddled event), and fills res.
func compareSides(b *book.Book, t *target, rng span, old, nw map[sideKey]float64, res *cmpResult) {
	type diff struct {
		side      book.Side
		price     float64
		book, tgt float64
	}
	var diffs []diff
	one := func(side book.Side, want []book.Level, in func(float64) bool, levels func(yield func(book.Level) bool)) int {
		exp := map[float64]float64{}
		for _, lv := range want {
			if in(lv.Price) && lv.Qty > 0 {
				exp[lv.Price] = lv.Qty
			}
		}
		for k, q := range nw {
			if k.side == side && in(k.price) {
				if q > 0 {
					exp[k.price] = q
				} else {
					delete(exp, k.price)
				}
			}
		}
		act := map[float64]float64{}
		levels(func(lv book.Level) bool {
			if !in(lv.Price) {
				return false
			}
			q := lv.Qty
			if o, ok := old[sideKey{side, lv.Price}]; ok {
				q = o
			}
			if q > 0 {
				act[lv.Price] = q
			}
			return true
		})
		for k, q := range old {
			if k.side == side && in(k.price) && q > 0 {
				act[k.price] = q
			}
		}
		n := len(exp)
		for p, q := range act {
			if e, ok := exp[p]; !ok {
				n++
				diffs = append(diffs, diff{side, p, q, 0})
			} else if e != q {
				diffs = append(diffs, diff{side, p, q, e})
			}
		}
		for p, e := range exp {
			if _, ok := act[p]; !ok {
				diffs = append(diffs, diff{side, p, 0, e})
			}
		}
		return n
	}
	res.bids = one(book.Bid, t.bids, rng.inBid, b.Bids())
	res.asks = one(book.Ask, t.asks, rng.inAsk, b.Asks())
	res.diffs = len(diffs)
	if len(diffs) == 0 {
		return
	}
	// Best level first: bids before asks, bids by descending price, asks
	// by ascending price.
	sort.Slice(diffs, func(i, j int) bool {
		a, c := diffs[i], diffs[j]
		if a.side != c.side {
			return a.side == book.Bid
		}
		if a.side == book.Bid {
			return a.price > c.price
		}
		return a.price < c.price
	})
	d := diffs[0]
	res.first = fmt.Sprintf("%s %v: book %v, %s %v", d.side, d.price, d.book, targetWord(t), d.tgt)
}

func targetWord(t *target) string {
	if t.snapshot {
		return "snapshot"
	}
	return "partial"
}
