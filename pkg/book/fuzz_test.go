package book

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

// bytesource reads fuzz input a little at a time; past the end it yields
// zeros.
type bytesource struct {
	b []byte
}

func (s *bytesource) more() bool { return len(s.b) > 0 }

func (s *bytesource) u8() byte {
	if len(s.b) == 0 {
		return 0
	}
	c := s.b[0]
	s.b = s.b[1:]
	return c
}

func (s *bytesource) u16() int { return int(s.u8())<<8 | int(s.u8()) }

// fuzzPrice picks a price on a 0.01 grid (cents 1..4096 plus 1,000,000 with
// the top bit, so prices cluster and collide), parsed as the exchange's
// decimals would be.
func fuzzPrice(s *bytesource) float64 {
	v := s.u16()
	c := 1 + v&0xfff
	if v&0x8000 != 0 {
		c += 1000000
	}
	return float64(c) / 100
}

func fuzzQty(s *bytesource) float64 {
	switch v := s.u8(); {
	case v < 64:
		return 0
	default:
		return float64(v) / 8
	}
}

// badLevel returns an invalid level.
func badLevel(v byte) Level {
	switch v % 6 {
	case 0:
		return Level{math.NaN(), 1}
	case 1:
		return Level{1, math.NaN()}
	case 2:
		return Level{-1, 1}
	case 3:
		return Level{1, -1}
	case 4:
		return Level{math.Inf(1), 1}
	default:
		return Level{0, 1}
	}
}

// randomLevels makes n levels on the fuzz price grid from a seed.
func randomLevels(rng *rand.Rand, n int, zeroPct int) []Level {
	out := make([]Level, n)
	for i := range out {
		q := float64(1+rng.IntN(1000)) / 8
		if rng.IntN(100) < zeroPct {
			q = 0
		}
		out[i] = Level{float64(1+rng.IntN(3000)) / 100, q}
	}
	return out
}

var fuzzTicks = []float64{0.01, 0.05, 0.1, 0.3, 1, 7, 10, 100}

// FuzzBookAgainstModel applies random operation sequences to a Book and to
// the naive map model, and after every operation compares the full content,
// TopN, best bid and ask, Crossed, Len, Qty, Aggregate and EqualTop, and
// checks the block structure. Bulk operations (large snapshots, long update
// runs) push sides past many blocks so splits and merges are exercised.
func FuzzBookAgainstModel(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 200, 0, 1, 2, 3, 0})
	f.Add([]byte{5, 40, 3, 1, 0, 0, 9, 9, 99, 2, 7, 20, 7, 21, 8, 8})
	f.Add([]byte{5, 255, 7, 6, 250, 4, 6, 250, 5, 7, 1, 2, 0, 3, 1, 1, 1, 1, 1})
	f.Add([]byte{4, 0, 10, 3, 200, 4, 128, 0, 1, 20, 9})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &bytesource{b: data}
		var b Book
		m := newModel()
		var bidBuf, askBuf []Level
		for step := 0; src.more() && step < 100; step++ {
			opc := src.u8() % 8
			what := ""
			switch opc {
			case 0, 1, 2: // single level update
				s := Side(opc & 1)
				p, q := fuzzPrice(src), fuzzQty(src)
				what = fmt.Sprintf("apply %s %v x %v", s, p, q)
				if err := b.Apply(s, p, q); err != nil {
					t.Fatalf("step %d %s: %v", step, what, err)
				}
				m.set(s, p, q)
			case 3: // an update of several levels on both sides
				n := int(src.u8() % 8)
				var bids, asks []Level
				for range n {
					l := Level{fuzzPrice(src), fuzzQty(src)}
					if src.u8()&1 == 0 {
						bids = append(bids, l)
					} else {
						asks = append(asks, l)
					}
				}
				what = fmt.Sprintf("apply levels %v %v", bids, asks)
				if err := b.ApplyLevels(bids, asks); err != nil {
					t.Fatalf("step %d %s: %v", step, what, err)
				}
				for _, l := range bids {
					m.set(Bid, l.Price, l.Qty)
				}
				for _, l := range asks {
					m.set(Ask, l.Price, l.Qty)
				}
			case 4: // invalid input must change nothing
				v := src.u8()
				bad := badLevel(v)
				what = fmt.Sprintf("invalid %v", bad)
				if err := b.Apply(Side(v>>7), bad.Price, bad.Qty); !errors.Is(err, ErrInvalidLevel) {
					t.Fatalf("step %d %s: err %v", step, what, err)
				}
				if err := b.ApplyLevels([]Level{{1, 1}}, []Level{bad}); !errors.Is(err, ErrInvalidLevel) {
					t.Fatalf("step %d %s levels: err %v", step, what, err)
				}
				if err := b.Load([]Level{bad}, nil); !errors.Is(err, ErrInvalidLevel) {
					t.Fatalf("step %d %s load: err %v", step, what, err)
				}
			case 5: // snapshot, sorted best first or shuffled, up to 1,020 levels a side
				rng := rand.New(rand.NewPCG(uint64(src.u16()), 1))
				nb, na := int(src.u8())*4, int(src.u8())*4
				bids, asks := randomLevels(rng, nb, 0), randomLevels(rng, na, 0)
				if src.u8()&1 == 0 {
					// Exchange order: distinct prices, best first.
					bids = uniqueSorted(bids, Bid)
					asks = uniqueSorted(asks, Ask)
				} else if len(bids) > 0 {
					bids[0].Qty = 0 // a zero level in an unsorted snapshot
				}
				what = fmt.Sprintf("load %d bids %d asks", len(bids), len(asks))
				if err := b.Load(bids, asks); err != nil {
					t.Fatalf("step %d %s: %v", step, what, err)
				}
				m.reset()
				for _, l := range bids {
					m.set(Bid, l.Price, l.Qty)
				}
				for _, l := range asks {
					m.set(Ask, l.Price, l.Qty)
				}
			case 6: // a long run of random updates with many deletes
				rng := rand.New(rand.NewPCG(uint64(src.u16()), 2))
				n := int(src.u8()) * 8
				zero := int(src.u8() % 101)
				what = fmt.Sprintf("run of %d updates, %d%% deletes", n, zero)
				for _, l := range randomLevels(rng, n, zero) {
					s := Side(rng.IntN(2))
					if err := b.Apply(s, l.Price, l.Qty); err != nil {
						t.Fatalf("step %d %s: %v", step, what, err)
					}
					m.set(s, l.Price, l.Qty)
				}
			case 7:
				what = "reset"
				b.Reset()
				m.reset()
			}
			compareWithModel(t, &b, m, src, &bidBuf, &askBuf, fmt.Sprintf("step %d %s", step, what))
		}
	})
}

func uniqueSorted(levels []Level, s Side) []Level {
	slices.SortFunc(levels, func(a, b Level) int {
		if s == Bid {
			return -cmpFloat(a.Price, b.Price)
		}
		return cmpFloat(a.Price, b.Price)
	})
	return slices.CompactFunc(levels, func(a, b Level) bool { return a.Price == b.Price })
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func compareWithModel(t *testing.T, b *Book, m *model, src *bytesource, bidBuf, askBuf *[]Level, where string) {
	t.Helper()
	checkInvariants(t, b)
	wantBids, wantAsks := m.sorted(Bid), m.sorted(Ask)
	bids, asks := b.Levels(*bidBuf, *askBuf)
	*bidBuf, *askBuf = bids, asks
	if !slices.Equal(bids, wantBids) || !slices.Equal(asks, wantAsks) {
		t.Fatalf("%s: levels differ from the model\n got %v %v\nwant %v %v", where, bids, asks, wantBids, wantAsks)
	}
	nb, na := b.Len()
	if nb != len(wantBids) || na != len(wantAsks) {
		t.Fatalf("%s: Len %d %d, want %d %d", where, nb, na, len(wantBids), len(wantAsks))
	}
	var it []Level
	for l := range b.Bids() {
		it = append(it, l)
	}
	if !slices.Equal(it, wantBids) {
		t.Fatalf("%s: Bids() differs from the model", where)
	}
	bid, okb := b.BestBid()
	ask, oka := b.BestAsk()
	if okb != (len(wantBids) > 0) || oka != (len(wantAsks) > 0) ||
		(okb && bid != wantBids[0]) || (oka && ask != wantAsks[0]) {
		t.Fatalf("%s: best %v %v / %v %v", where, bid, okb, ask, oka)
	}
	if want := crossedSorted(wantBids, wantAsks); b.Crossed() != want {
		t.Fatalf("%s: Crossed %v, model %v", where, b.Crossed(), want)
	}
	n := int(src.u8() % 40)
	tb, ta := b.TopN(n, nil, nil)
	if !slices.Equal(tb, top(wantBids, n)) || !slices.Equal(ta, top(wantAsks, n)) {
		t.Fatalf("%s: TopN(%d) = %v %v, want %v %v", where, n, tb, ta, top(wantBids, n), top(wantAsks, n))
	}
	if ok, diff := b.EqualTop(top(wantBids, n), top(wantAsks, n), n); !ok && n > 0 {
		t.Fatalf("%s: EqualTop(model top %d) = %s", where, n, diff)
	}
	if ok, diff := b.EqualTop(wantBids, wantAsks, 0); !ok {
		t.Fatalf("%s: EqualTop(model) = %s", where, diff)
	}
	if len(wantBids) > 0 {
		// A changed quantity anywhere in the compared range must be seen.
		i := int(src.u8()) % len(wantBids)
		alt := slices.Clone(wantBids)
		alt[i].Qty++
		if ok, _ := b.EqualTop(alt, wantAsks, 0); ok {
			t.Fatalf("%s: EqualTop missed a changed bid %d", where, i)
		}
		if q := b.Qty(Bid, wantBids[i].Price); q != wantBids[i].Qty {
			t.Fatalf("%s: Qty(bid %v) = %v, want %v", where, wantBids[i].Price, q, wantBids[i].Qty)
		}
	}
	if p := fuzzPrice(src); b.Qty(Ask, p) != m.sides[Ask][p] {
		t.Fatalf("%s: Qty(ask %v) = %v, want %v", where, p, b.Qty(Ask, p), m.sides[Ask][p])
	}
	tick := fuzzTicks[int(src.u8())%len(fuzzTicks)]
	an := int(src.u8() % 12)
	ab, aa, err := b.Aggregate(tick, an, nil, nil)
	if err != nil {
		t.Fatalf("%s: Aggregate(%v): %v", where, tick, err)
	}
	if wb, wa := aggregate(wantBids, Bid, tick, an), aggregate(wantAsks, Ask, tick, an); !slices.Equal(ab, wb) || !slices.Equal(aa, wa) {
		t.Fatalf("%s: Aggregate(%v, %d) = %v %v, want %v %v", where, tick, an, ab, aa, wb, wa)
	}
}

// refSyncer is a reference implementation of the sync rules for
// FuzzSyncerAgainstReference, written for plainness: the rules exactly as
// DESIGN section 4 words them, a map book and a slice of retained events.
type refSyncer struct {
	market    md.Market
	state     State
	last      int64
	book      *model
	kept      []refEvent
	maxEvents int
	maxLevels int
	stats     Stats
}

type refEvent struct {
	u       Update
	pending bool
}

// refResult is what the reference says an input produced.
type refResult struct {
	out     Outcome
	gap     *GapError
	crossed *CrossedError
	invalid bool
	refused bool
}

func validRef(l Level) bool {
	return !math.IsNaN(l.Price) && !math.IsInf(l.Price, 0) && l.Price > 0 &&
		!math.IsNaN(l.Qty) && !math.IsInf(l.Qty, 0) && l.Qty >= 0
}

func (r *refSyncer) apply(u Update) refResult {
	ok := u.First <= u.Final && (r.market == md.Spot || u.HasPrev)
	for _, l := range append(slices.Clone(u.Bids), u.Asks...) {
		ok = ok && validRef(l)
	}
	if !ok {
		r.stats.Rejected++
		return refResult{out: Rejected, invalid: true}
	}
	res := r.rule(u)
	switch res.out {
	case Applied:
		r.stats.Applied++
	case Stale:
		r.stats.Stale++
	case Duplicate:
		r.stats.Duplicate++
	case Buffered:
		r.stats.Buffered++
	}
	if res.out == Applied || res.out == Buffered {
		r.keep(u, res.out == Buffered)
	}
	return res
}

func (r *refSyncer) rule(u Update) refResult {
	U, fin, L := u.First, u.Final, r.last
	spot := r.market == md.Spot
	switch r.state {
	case NeedSnapshot:
		return refResult{out: Buffered}
	case Bridging:
		switch {
		case spot && fin <= L, !spot && fin < L:
			return refResult{out: Stale}
		case spot && U <= L+1 && L+1 <= fin, !spot && U <= L && L <= fin:
			return r.applyLevels(u)
		}
		g := &GapError{Market: r.market, Bridge: true, After: L, Got: U, From: L + 1, To: U - 1, First: U, Final: fin}
		if spot {
			g.Want = L + 1
		} else {
			g.Want = L
		}
		r.stats.Gaps++
		r.stats.Bridge++
		r.state = NeedSnapshot
		return refResult{out: Buffered, gap: g}
	default: // Live
		if fin <= L {
			return refResult{out: Duplicate}
		}
		if spot && U == L+1 || !spot && u.Prev == L {
			return r.applyLevels(u)
		}
		g := &GapError{Market: r.market, After: L, From: L + 1, First: U, Final: fin}
		if spot {
			g.Want, g.Got, g.To = L+1, U, U-1
		} else {
			g.Want, g.Got, g.To = L, u.Prev, u.Prev
		}
		r.stats.Gaps++
		r.state = NeedSnapshot
		return refResult{out: Buffered, gap: g}
	}
}

func (r *refSyncer) applyLevels(u Update) refResult {
	for _, l := range u.Bids {
		r.book.set(Bid, l.Price, l.Qty)
	}
	for _, l := range u.Asks {
		r.book.set(Ask, l.Price, l.Qty)
	}
	r.state, r.last = Live, u.Final
	return refResult{out: Applied, crossed: r.crossedNow()}
}

func (r *refSyncer) crossedNow() *CrossedError {
	if !r.book.crossed() {
		return nil
	}
	r.stats.Crossed++
	return &CrossedError{At: r.last, Bid: r.book.sorted(Bid)[0], Ask: r.book.sorted(Ask)[0]}
}

func (r *refSyncer) keep(u Update, pending bool) {
	size := len(u.Bids) + len(u.Asks)
	if size > r.maxLevels {
		if pending {
			r.stats.Evicted++
		}
		return
	}
	u.Bids, u.Asks = slices.Clone(u.Bids), slices.Clone(u.Asks)
	r.kept = append(r.kept, refEvent{u, pending})
	for {
		total := 0
		for _, e := range r.kept {
			total += len(e.u.Bids) + len(e.u.Asks)
		}
		if len(r.kept) <= r.maxEvents && total <= r.maxLevels {
			return
		}
		if r.kept[0].pending {
			r.stats.Evicted++
		}
		r.kept = r.kept[1:]
	}
}

func (r *refSyncer) clone() *refSyncer {
	c := *r
	c.book = newModel()
	for s := range 2 {
		for p, q := range r.book.sides[s] {
			c.book.sides[s][p] = q
		}
	}
	c.kept = slices.Clone(r.kept)
	return &c
}

// snapshot loads a snapshot. A live reference keeps its book when the
// snapshot is invalid or when loading it would not end live or bridging:
// it tries the load on a clone first.
func (r *refSyncer) snapshot(id int64, bids, asks []Level) (res refResult) {
	for _, l := range append(slices.Clone(bids), asks...) {
		if !validRef(l) {
			if r.state != Live {
				r.book.reset()
				r.state = NeedSnapshot
			}
			return refResult{invalid: true}
		}
	}
	if r.state == Live {
		c := r.clone()
		res := c.load(id, bids, asks)
		if c.state == NeedSnapshot {
			r.stats.Refused++
			return refResult{refused: true}
		}
		*r = *c
		return res
	}
	return r.load(id, bids, asks)
}

func (r *refSyncer) load(id int64, bids, asks []Level) (res refResult) {
	r.book.reset()
	for _, l := range bids {
		r.book.set(Bid, l.Price, l.Qty)
	}
	for _, l := range asks {
		r.book.set(Ask, l.Price, l.Qty)
	}
	r.stats.Snapshots++
	r.state, r.last = Bridging, id
	res.crossed = r.crossedNow()
	for i := range r.kept {
		e := &r.kept[i]
		if r.state == NeedSnapshot {
			e.pending = true
			continue
		}
		x := r.rule(e.u)
		e.pending = x.out == Buffered
		if x.out == Applied {
			r.stats.Replayed++
		}
		if x.gap != nil {
			res.gap = x.gap
		}
		if x.crossed != nil && res.crossed == nil {
			res.crossed = x.crossed
		}
	}
	return res
}

// streamGen produces a valid diff stream: spot ids consecutive, USD-M ids
// with holes and pu links. Bids sit at 95-100 and asks at 100-105, so books
// cross now and then.
type streamGen struct {
	market md.Market
	rng    *rand.Rand
	prevU  int64
	events []Update
}

func (g *streamGen) next() Update {
	U := g.prevU + 1
	if g.market == md.Futures {
		U += int64(g.rng.IntN(3))
	}
	u := Update{First: U, Final: U + int64(g.rng.IntN(3))}
	if g.market == md.Futures {
		u.Prev, u.HasPrev = g.prevU, true
	}
	for range 1 + g.rng.IntN(3) {
		q := float64(g.rng.IntN(4))
		if g.rng.IntN(2) == 0 {
			u.Bids = append(u.Bids, Level{95 + float64(g.rng.IntN(6)), q})
		} else {
			u.Asks = append(u.Asks, Level{100 + float64(g.rng.IntN(6)), q})
		}
	}
	g.prevU = u.Final
	g.events = append(g.events, u)
	return u
}

// FuzzSyncerAgainstReference drives a Syncer and the reference with the same
// random inputs: a valid stream with events dropped (gaps), re-delivered
// (duplicates, stale and out-of-order events), invalid events, snapshots at
// ids around the stream's position (inside events, at their ends, in the
// holes between USD-M events, behind and ahead) and Invalidate; and small
// retention bounds so eviction happens. After every input it compares the
// outcome, the error (kind and every GapError and CrossedError field), the
// state, the update id, the counters, the retained count and the whole book.
func FuzzSyncerAgainstReference(f *testing.F) {
	f.Add([]byte{0, 4, 20, 0, 0, 5, 3, 0, 0, 0, 3, 0, 0, 5, 1, 0})
	f.Add([]byte{1, 4, 20, 0, 0, 5, 3, 1, 0, 0, 3, 0, 0, 5, 1, 2, 4, 3})
	f.Add([]byte{1, 1, 3, 0, 1, 2, 6, 0, 7, 0, 0, 5, 0, 0, 4, 9, 5, 2, 3})
	f.Add([]byte{0, 8, 30, 3, 3, 0, 1, 2, 5, 9, 4, 0, 6, 1, 5, 4, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &bytesource{b: data}
		market := md.Spot
		if src.u8()&1 == 1 {
			market = md.Futures
		}
		cfg := Config{Market: market, RetainEvents: 1 + int(src.u8()%8), RetainLevels: 2 + int(src.u8()%30)}
		s, err := NewSyncer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ref := &refSyncer{market: market, book: newModel(), maxEvents: cfg.RetainEvents, maxLevels: cfg.RetainLevels}
		gen := &streamGen{market: market, rng: rand.New(rand.NewPCG(uint64(src.u8()), 3)), prevU: 1000}
		for step := 0; src.more() && step < 300; step++ {
			var (
				what string
				out  Outcome
				want refResult
				isEv bool
			)
			err = nil
			deliver := func(u Update) {
				isEv = true
				what += fmt.Sprintf(" [%d, %d] pu %d", u.First, u.Final, u.Prev)
				want = ref.apply(u)
				out, err = s.Apply(u)
			}
			switch op := src.u8() % 8; op {
			case 0, 1, 2:
				what = "event"
				deliver(gen.next())
			case 3:
				what = "dropped"
				gen.next()
				continue
			case 4:
				if len(gen.events) == 0 {
					continue
				}
				what = "again"
				deliver(gen.events[len(gen.events)-1-int(src.u8())%len(gen.events)])
			case 5:
				// A snapshot id near an event: at U-1, U, inside, at u, or
				// just after.
				var id int64
				if n := len(gen.events); n > 0 {
					e := gen.events[n-1-int(src.u8())%n]
					id = e.First - 1 + int64(src.u8()%5)
				} else {
					id = gen.prevU - 1 + int64(src.u8()%3)
				}
				rng := rand.New(rand.NewPCG(uint64(id), 4))
				bids, asks := randomLevels(rng, rng.IntN(4), 20), randomLevels(rng, rng.IntN(4), 20)
				for i := range asks {
					asks[i].Price += 100
				}
				if src.u8()%16 == 0 {
					bids = append(bids, Level{math.NaN(), 1})
				}
				what = fmt.Sprintf("snapshot %d", id)
				want = ref.snapshot(id, bids, asks)
				err = s.LoadSnapshot(id, bids, asks)
			case 6:
				u := gen.next()
				gen.events = gen.events[:len(gen.events)-1]
				gen.prevU = u.First - 1 // not consumed
				if market == md.Futures {
					gen.prevU = u.Prev
				}
				switch src.u8() % 3 {
				case 0:
					u.First, u.Final = u.Final+1, u.First
				case 1:
					u.Bids = append(slices.Clone(u.Bids), badLevel(src.u8()))
				case 2:
					u.HasPrev = false
				}
				what = "invalid"
				deliver(u)
			case 7:
				what = "invalidate"
				s.Invalidate()
				ref.state = NeedSnapshot
			}
			where := fmt.Sprintf("step %d %s", step, what)
			if isEv && out != want.out {
				t.Fatalf("%s: outcome %s, reference %s (err %v)", where, out, want.out, err)
			}
			compareErr(t, where, err, want)
			if s.State() != ref.state || s.LastUpdateID() != ref.last {
				t.Fatalf("%s: state %s at %d, reference %s at %d", where, s.State(), s.LastUpdateID(), ref.state, ref.last)
			}
			if s.Stats() != ref.stats {
				t.Fatalf("%s: stats\n %+v\nreference\n %+v", where, s.Stats(), ref.stats)
			}
			if s.Retained() != len(ref.kept) {
				t.Fatalf("%s: retained %d, reference %d", where, s.Retained(), len(ref.kept))
			}
			bids, asks := s.Book().Levels(nil, nil)
			if !slices.Equal(bids, ref.book.sorted(Bid)) || !slices.Equal(asks, ref.book.sorted(Ask)) {
				t.Fatalf("%s: book %v %v, reference %v %v", where, bids, asks, ref.book.sorted(Bid), ref.book.sorted(Ask))
			}
			checkInvariants(t, s.Book())
		}
	})
}

func compareErr(t *testing.T, where string, err error, want refResult) {
	t.Helper()
	var (
		ge *GapError
		ce *CrossedError
	)
	gotGap, gotCrossed := errors.As(err, &ge), errors.As(err, &ce)
	gotInvalid := errors.Is(err, ErrInvalidUpdate) || errors.Is(err, ErrInvalidLevel)
	switch {
	case gotGap != (want.gap != nil):
		t.Fatalf("%s: err %v, reference gap %+v", where, err, want.gap)
	case gotGap && *ge != *want.gap:
		t.Fatalf("%s: gap\n %+v\nreference\n %+v", where, *ge, *want.gap)
	case gotGap && errors.Is(err, ErrNotBridged) != want.gap.Bridge:
		t.Fatalf("%s: ErrNotBridged %v, reference bridge %v", where, errors.Is(err, ErrNotBridged), want.gap.Bridge)
	case gotCrossed != (want.crossed != nil):
		t.Fatalf("%s: err %v, reference crossed %+v", where, err, want.crossed)
	case gotCrossed && *ce != *want.crossed:
		t.Fatalf("%s: crossed %+v, reference %+v", where, *ce, *want.crossed)
	case gotInvalid != want.invalid:
		t.Fatalf("%s: err %v, reference invalid %v", where, err, want.invalid)
	case errors.Is(err, ErrSnapshotTooOld) != want.refused:
		t.Fatalf("%s: err %v, reference refused %v", where, err, want.refused)
	case err != nil && !gotGap && !gotCrossed && !gotInvalid && !want.refused:
		t.Fatalf("%s: unexpected err %v", where, err)
	}
}
