package synth

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// Config configures one synthetic market.
type Config struct {
	Market          md.Market
	Symbols         string        // SIM_SYMBOLS: a count or a comma list
	Seed            uint64        // SIM_SEED
	DiffInterval    time.Duration // the tick: nominal 100ms streams push once per tick
	PartialInterval time.Duration // a multiple of DiffInterval
	Activity        Activity
	Levels          int           // depth of each side of the book
	History         time.Duration // undo log kept at least this long...
	HistoryChanges  int           // ...and at least this many changes per symbol
	SkipMean        time.Duration // mean interval of random exchange-side skips (0: off)
	SkipEvents      int           // diff events lost per random skip
}

// Variant is one kind of depth stream: a stream name is
// <lower symbol><Suffix>.
type Variant struct {
	Suffix  string // e.g. "@depth@100ms", "@depth20"
	Kind    md.Kind
	Levels  int // partial levels (5, 10, 20); 0 for diffs
	Nominal time.Duration
	speed   int
}

// speedRule: a stream is due at tick k when floor(k·num/den) grows.
type speedRule struct{ num, den int64 }

func (r speedRule) due(k int64) bool { return (k*r.num)/r.den > ((k-1)*r.num)/r.den }

type event struct {
	U, u, pu int64
	from, to int64 // absolute history indices of its changes
	T        int64 // ms: time of its last change
	skipped  bool
}

// SkipRecord describes an exchange-side sequence skip: the diff events
// covering update ids From..To were never sent to anyone.
type SkipRecord struct {
	Market   md.Market
	Symbol   string
	From, To int64 // first U and last u of the lost events
	Events   int
	At       time.Time
	Injected bool // true for a runtime injection, false for SIM_SKIP_MEAN
}

type symState struct {
	spec      *SymbolSpec
	book      *Book
	rng       *rand.Rand
	lam       float64 // changes per tick
	expNegLam float64
	drift     int32 // the mid stays within mid0 ± drift
	deep      int32 // deep changes happen within this many ticks of the best
	futures   bool

	pendFrom int64   // absolute history index of the first pending change
	pendN    int     // changes made since the last tick, published at the next
	pendOff  []int64 // their offsets (ns) after pendBase, ascending
	pendBase int64   // ns: time of the tick that made them

	lastU    int64 // u of the last published event (start id before any)
	lastT    int64
	events   []event
	lastEmit []int64 // per speed: u of the last event of its previous window

	skipLeft     int
	skipInjected bool
	skipping     bool
	skip         SkipRecord
}

// Market is one synthetic market: every symbol's book, moved on the tick
// clock by Tick. Tick must be called from one goroutine; the read methods
// may be called concurrently with it.
type Market struct {
	cfg      Config
	futures  bool
	specs    []SymbolSpec
	bySymbol map[string]int // upper-case symbol
	byLower  map[string]int
	syms     []symState
	variants []Variant
	bySuffix map[string]int
	speeds   []speedRule

	mu        sync.RWMutex
	k         int64 // ticks so far
	lastTick  int64 // ns
	interval  int64 // ns
	histTicks int64

	skipRng  *rand.Rand
	skipCum  []float64
	nextSkip int64
	skipped  []SkipRecord // filled under mu, handed to the caller of Tick

	lv         []lvl
	bids, asks []PL
}

// Sink receives the frames of a tick.
type Sink interface {
	// Wants reports whether anybody subscribed to variant v of symbol sym.
	Wants(sym, v int) bool
	// Frame hands over one frame. Full stays valid until the buffer given
	// to Tick is reused.
	Frame(f Frame)
}

// Frame is one encoded frame.
type Frame struct {
	Sym, Variant int
	Kind         md.Kind
	ID           int64  // diff: u; spot partial: lastUpdateId; futures partial: u
	Full         []byte // the combined-stream frame {"stream":..,"data":..}
	DataOff      int    // Full[DataOff:len(Full)-1] is the raw-stream payload
}

// Data returns the raw-stream payload of f.
func (f *Frame) Data() []byte { return f.Full[f.DataOff : len(f.Full)-1] }

// ErrConfig reports an invalid market configuration.
var ErrConfig = errors.New("invalid synthetic market configuration")

// NewMarket builds the market at its initial state (tick 0). now is the
// time of tick 0.
func NewMarket(cfg Config, now time.Time) (*Market, error) {
	if cfg.DiffInterval <= 0 || cfg.PartialInterval < cfg.DiffInterval || cfg.PartialInterval%cfg.DiffInterval != 0 {
		return nil, fmt.Errorf("%w: partial interval %v must be a positive multiple of the diff interval %v", ErrConfig, cfg.PartialInterval, cfg.DiffInterval)
	}
	if cfg.Levels < 20 {
		return nil, fmt.Errorf("%w: levels %d < 20", ErrConfig, cfg.Levels)
	}
	specs, err := Universe(cfg.Market, cfg.Symbols, cfg.Activity)
	if err != nil {
		return nil, err
	}
	m := &Market{
		cfg:      cfg,
		futures:  cfg.Market == md.Futures,
		specs:    specs,
		bySymbol: make(map[string]int, len(specs)),
		byLower:  make(map[string]int, len(specs)),
		lastTick: now.UnixNano(),
		interval: int64(cfg.DiffInterval),
	}
	m.histTicks = int64(cfg.History / cfg.DiffInterval)
	m.buildVariants()
	sec := cfg.DiffInterval.Seconds()
	var cum float64
	for i := range specs {
		sp := &specs[i]
		m.bySymbol[sp.Symbol] = i
		m.byLower[sp.Lower] = i
		h := fnv64(sp.Symbol) ^ uint64(cfg.Market)<<56
		seed := mix64(cfg.Seed*0x9E3779B97F4A7C15 ^ h)
		drift := min(int32(200), max(sp.Mid0/20, 4))
		s := symState{
			spec:     sp,
			rng:      rand.New(rand.NewPCG(seed, h)),
			lam:      sp.Rate * sec,
			drift:    drift,
			futures:  m.futures,
			lastEmit: make([]int64, len(m.speeds)),
		}
		s.expNegLam = math.Exp(-s.lam)
		startID := int64(1_000_000_000 + seed%1_000_000_000)
		if m.futures {
			startID = 100_000_000_000 + int64(seed%100_000_000_000)
		}
		s.deep = min(int32(600), maxDistFor(sp.Mid0, cfg.Levels))
		s.book = newBook(sp, seed, cfg.Levels, drift+s.deep+maxSpread+64, startID)
		s.lastU = startID
		for j := range s.lastEmit {
			s.lastEmit[j] = startID
		}
		m.syms = append(m.syms, s)
		cum += s.lam
		m.skipCum = append(m.skipCum, cum)
	}
	if cfg.SkipMean > 0 {
		m.skipRng = rand.New(rand.NewPCG(cfg.Seed, 0x5EED5C1B^uint64(cfg.Market)))
		m.nextSkip = m.skipGap()
	}
	m.mu.Lock()
	for i := range m.syms {
		m.generate(&m.syms[i], 0, m.lastTick)
	}
	m.mu.Unlock()
	return m, nil
}

func (m *Market) skipGap() int64 {
	mean := float64(m.cfg.SkipMean) / float64(m.cfg.DiffInterval)
	return 1 + int64(m.skipRng.ExpFloat64()*mean)
}

const maxSpread = 16

// buildVariants lists the depth streams of the market. Nominal speeds are
// relative to the 100ms stream, which pushes once per tick.
func (m *Market) buildVariants() {
	speedOf := func(r speedRule) int {
		for i, s := range m.speeds {
			if s.num*r.den == r.num*s.den {
				return i
			}
		}
		m.speeds = append(m.speeds, r)
		return len(m.speeds) - 1
	}
	partialTicks := int64(m.cfg.PartialInterval / m.cfg.DiffInterval)
	add := func(suffix string, kind md.Kind, levels int, nominal time.Duration, r speedRule) {
		m.variants = append(m.variants, Variant{Suffix: suffix, Kind: kind, Levels: levels, Nominal: nominal, speed: speedOf(r)})
	}
	ms := time.Millisecond
	add("@depth@100ms", md.Diff, 0, 100*ms, speedRule{1, 1})
	if m.futures {
		add("@depth@0ms", md.Diff, 0, 0, speedRule{1, 1})
		add("@depth", md.Diff, 0, 250*ms, speedRule{2, 5})
		add("@depth@250ms", md.Diff, 0, 250*ms, speedRule{2, 5})
		add("@depth@500ms", md.Diff, 0, 500*ms, speedRule{1, 5})
	} else {
		add("@depth", md.Diff, 0, 1000*ms, speedRule{1, 10})
		add("@depth@1000ms", md.Diff, 0, 1000*ms, speedRule{1, 10})
	}
	for _, n := range []int{5, 10, 20} {
		ns := fmt.Sprint(n)
		add("@depth"+ns+"@100ms", md.Partial, n, 100*ms, speedRule{1, partialTicks})
		if m.futures {
			add("@depth"+ns, md.Partial, n, 250*ms, speedRule{2, 5})
			add("@depth"+ns+"@250ms", md.Partial, n, 250*ms, speedRule{2, 5})
			add("@depth"+ns+"@500ms", md.Partial, n, 500*ms, speedRule{1, 5})
		} else {
			add("@depth"+ns, md.Partial, n, 1000*ms, speedRule{1, 10})
			add("@depth"+ns+"@1000ms", md.Partial, n, 1000*ms, speedRule{1, 10})
		}
	}
	m.bySuffix = make(map[string]int, len(m.variants))
	for i, v := range m.variants {
		m.bySuffix[v.Suffix] = i
	}
}

// Variants lists the depth stream kinds of the market.
func (m *Market) Variants() []Variant { return m.variants }

// Specs lists the symbols, most active first.
func (m *Market) Specs() []SymbolSpec { return m.specs }

// Lookup finds a symbol by its upper-case name.
func (m *Market) Lookup(symbol string) (int, bool) {
	i, ok := m.bySymbol[symbol]
	return i, ok
}

// ParseStream splits a stream name such as "btcusdt@depth20@100ms". ok is
// false when the name is not a depth stream of this market; sym is -1 when
// the name is well formed but the symbol is not simulated.
func (m *Market) ParseStream(name string) (sym, variant int, ok bool) {
	for i := 0; i < len(name); i++ {
		if name[i] == '@' {
			v, ok := m.bySuffix[name[i:]]
			if !ok {
				return -1, -1, false
			}
			s, known := m.byLower[name[:i]]
			if !known {
				s = -1
			}
			return s, v, true
		}
	}
	return -1, -1, false
}

// StreamName returns the stream name of variant v of symbol sym.
func (m *Market) StreamName(sym, v int) string { return m.specs[sym].Lower + m.variants[v].Suffix }

// Skip makes the next events diff events of symbol sym disappear: the book
// advances but nobody receives them. The exact range is reported through
// the SkipRecords returned by Tick once the events have happened.
func (m *Market) Skip(sym, events int) {
	m.mu.Lock()
	s := &m.syms[sym]
	s.skipLeft += events
	s.skipInjected = true
	m.mu.Unlock()
}

// poisson draws the number of changes in a tick.
func (s *symState) poisson() int {
	if s.lam <= 0 {
		return 0
	}
	if s.lam < 30 {
		p, k := 1.0, 0
		for {
			p *= s.rng.Float64()
			if p <= s.expNegLam {
				return k
			}
			k++
		}
	}
	n := int(math.Round(s.lam + math.Sqrt(s.lam)*s.rng.NormFloat64()))
	return max(n, 0)
}

var geomK = 1 / math.Log(0.7) // distance from the best: geometric, mean 2.3 ticks

func (s *symState) fresh() uint32 {
	return lotsOf(math.Exp(s.book.lnMin + s.rng.Float64()*s.book.lnSpan))
}

func (s *symState) modify(old uint32) uint32 {
	n := lotsOf(float64(old) * (0.5 + 1.5*s.rng.Float64()))
	if n == old {
		if n < maxLots {
			n++
		} else {
			n--
		}
	}
	return n
}

// nextChange picks one level change (side, tick, new lots) and returns the
// lots it replaces. It never crosses the book, keeps the spread within
// maxSpread ticks and the mid within drift of its start.
func (s *symState) nextChange() (side Side, t int32, q, old uint32) {
	b, r := s.book, s.rng
	side = Side(r.Uint32() & 1)
	bb, ba := b.best[Bid], b.best[Ask]
	spread := ba - bb
	dev := int64(bb) + int64(ba) - 2*int64(b.mid0) // twice the mid's deviation
	up, down := dev < 2*int64(s.drift), dev > -2*int64(s.drift)
	u := r.Float64()
	if spread > 1 && u < min(0.5, 0.04*float64(spread-1)) {
		off := 1 + r.Int32N(spread-1)
		// Inside the spread both sides are empty.
		if side == Bid && up {
			return Bid, bb + off, s.fresh(), 0
		}
		if side == Ask && down {
			return Ask, ba - off, s.fresh(), 0
		}
	}
	var d int32
	if u > 0.92 {
		d = r.Int32N(s.deep)
	} else {
		d = min(int32(math.Log(1-r.Float64())*geomK), s.deep)
	}
	best := bb
	t = bb - d
	if side == Ask {
		best, t = ba, ba+d
	}
	old = b.Qty(side, t)
	if old == 0 {
		return side, t, s.fresh(), 0
	}
	if r.Float64() < 0.2 {
		if t != best {
			return side, t, 0, old
		}
		next := b.nextOut(side, t)
		if side == Bid && next >= b.floor && ba-next <= maxSpread && down ||
			side == Ask && next <= b.ceil && next-bb <= maxSpread && up {
			return side, t, 0, old
		}
	}
	return side, t, s.modify(old), old
}

// generate makes the changes of the tick after tick k (called at tick k).
func (m *Market) generate(s *symState, k, now int64) {
	n := s.poisson()
	s.pendFrom = s.book.hist.end()
	s.pendN = 0
	s.pendOff = s.pendOff[:0]
	s.pendBase = now
	for j := 0; j < n; j++ {
		side, t, q, old := s.nextChange()
		if q == old || !s.book.inRange(t) {
			continue
		}
		id := s.book.lastID + 1
		if s.futures {
			id += int64(s.rng.IntN(16)) // USD-M ids are not consecutive
		}
		s.book.apply(Change{ID: id, At: k, Tick: t, Old: old, New: q, Side: side})
		s.pendN++
	}
	for j := 0; j < s.pendN; j++ {
		s.pendOff = append(s.pendOff, m.interval*int64(j)/int64(s.pendN)+int64(s.rng.Float64()*float64(m.interval)/float64(s.pendN)))
	}
}

// Tick advances the market by one tick at time now: the changes made since
// the previous tick become a diff event, the next tick's changes are made,
// and every due frame somebody wants is encoded into buf and handed to
// sink. It returns buf (grown) and the skips that completed.
func (m *Market) Tick(now time.Time, buf []byte, sink Sink) ([]byte, []SkipRecord) {
	nowNs := now.UnixNano()
	m.mu.Lock()
	m.k++
	k := m.k
	m.lastTick = nowNs
	m.skipped = m.skipped[:0]
	if m.skipRng != nil && k >= m.nextSkip {
		x := m.skipRng.Float64() * m.skipCum[len(m.skipCum)-1]
		i := sort.SearchFloat64s(m.skipCum, x)
		i = min(i, len(m.syms)-1)
		m.syms[i].skipLeft += max(m.cfg.SkipEvents, 1)
		m.nextSkip = k + m.skipGap()
	}
	for i := range m.syms {
		s := &m.syms[i]
		if s.pendN > 0 {
			from, to := s.pendFrom, s.pendFrom+int64(s.pendN)
			ev := event{
				U: s.book.hist.at(from).ID, u: s.book.hist.at(to - 1).ID, pu: s.lastU,
				from: from, to: to,
				T: (s.pendBase + s.pendOff[s.pendN-1]) / 1e6,
			}
			if s.skipLeft > 0 {
				ev.skipped = true
				s.skipLeft--
				if !s.skipping {
					s.skipping = true
					s.skip = SkipRecord{Market: m.cfg.Market, Symbol: s.spec.Symbol, From: ev.U, Injected: s.skipInjected}
				}
				s.skip.To = ev.u
				s.skip.Events++
				if s.skipLeft == 0 {
					s.skip.At = now
					m.skipped = append(m.skipped, s.skip)
					s.skipping, s.skipInjected = false, false
				}
			}
			s.events = append(s.events, ev)
			s.lastU, s.lastT = ev.u, ev.T
		}
		if m.histTicks > 0 {
			s.book.trim(k-m.histTicks, m.cfg.HistoryChanges)
		}
		m.generate(s, k, nowNs)
	}
	m.mu.Unlock()
	buf = m.encode(k, nowNs/1e6, buf, sink)
	return buf, m.skipped
}

func cmpLvl(a, b lvl) int {
	if a.side != b.side {
		return int(a.side) - int(b.side)
	}
	if a.tick == b.tick {
		return 0
	}
	if (a.tick > b.tick) == (a.side == Bid) {
		return -1
	}
	return 1
}

// mergeLevels returns the final lots of every level changed by the
// history entries [from, to), bids best first then asks best first.
func (m *Market) mergeLevels(s *symState, from, to int64) []lvl {
	a, b := s.book.hist.segs(from, to)
	lv := m.lv[:0]
	for i := range a {
		lv = append(lv, lvl{a[i].Side, a[i].Tick, a[i].New})
	}
	for i := range b {
		lv = append(lv, lvl{b[i].Side, b[i].Tick, b[i].New})
	}
	slices.SortStableFunc(lv, cmpLvl)
	out := lv[:0]
	for i := range lv {
		if i+1 < len(lv) && lv[i+1].side == lv[i].side && lv[i+1].tick == lv[i].tick {
			continue // a later change of the same level wins
		}
		out = append(out, lv[i])
	}
	m.lv = lv
	return out
}

// encode emits the frames due at tick k.
func (m *Market) encode(k, E int64, buf []byte, sink Sink) []byte {
	for i := range m.syms {
		s := &m.syms[i]
		spec := s.spec
		haveTop := false
		for sp, rule := range m.speeds {
			if !rule.due(k) {
				continue
			}
			start := 0
			for start < len(s.events) && s.events[start].u <= s.lastEmit[sp] {
				start++
			}
			w := s.events[start:]
			for vi := range m.variants {
				v := &m.variants[vi]
				if v.speed != sp || !sink.Wants(i, vi) {
					continue
				}
				switch {
				case v.Kind == md.Diff:
					for a := 0; a < len(w); {
						if w[a].skipped {
							a++
							continue
						}
						z := a
						for z+1 < len(w) && !w[z+1].skipped {
							z++
						}
						lv := m.mergeLevels(s, w[a].from, w[z].to)
						st := len(buf)
						var off int
						buf, off = appendCombinedHead(buf, spec.Lower, v.Suffix)
						buf = appendDepthUpdate(buf, spec, m.futures, E, w[z].T, w[a].U, w[z].u, w[a].pu, lv)
						buf = append(buf, '}')
						sink.Frame(Frame{Sym: i, Variant: vi, Kind: md.Diff, ID: w[z].u, Full: buf[st:], DataOff: off - st})
						a = z + 1
					}
				case m.futures:
					if len(w) == 0 {
						continue
					}
					if !haveTop {
						m.top(s)
						haveTop = true
					}
					n := v.Levels
					st := len(buf)
					var off int
					buf, off = appendCombinedHead(buf, spec.Lower, v.Suffix)
					buf = appendFuturesPartial(buf, spec, E, w[len(w)-1].T, w[0].U, w[len(w)-1].u, w[0].pu, m.bids[:min(n, len(m.bids))], m.asks[:min(n, len(m.asks))])
					buf = append(buf, '}')
					sink.Frame(Frame{Sym: i, Variant: vi, Kind: md.Partial, ID: w[len(w)-1].u, Full: buf[st:], DataOff: off - st})
				default:
					if !haveTop {
						m.top(s)
						haveTop = true
					}
					n := v.Levels
					st := len(buf)
					var off int
					buf, off = appendCombinedHead(buf, spec.Lower, v.Suffix)
					buf = AppendSpotDepth(buf, spec, s.lastU, m.bids[:min(n, len(m.bids))], m.asks[:min(n, len(m.asks))])
					buf = append(buf, '}')
					sink.Frame(Frame{Sym: i, Variant: vi, Kind: md.Partial, ID: s.lastU, Full: buf[st:], DataOff: off - st})
				}
			}
			if len(w) > 0 {
				s.lastEmit[sp] = w[len(w)-1].u
			}
		}
		// Drop events every speed has emitted.
		lo := s.lastU
		for _, u := range s.lastEmit {
			lo = min(lo, u)
		}
		n := 0
		for n < len(s.events) && s.events[n].u <= lo {
			n++
		}
		if n > 0 {
			s.events = append(s.events[:0], s.events[n:]...)
		}
	}
	return buf
}

// top computes the top 20 levels of s as of its last published event.
func (m *Market) top(s *symState) {
	ua, ub := s.book.hist.segs(s.pendFrom, s.pendFrom+int64(s.pendN))
	m.bids = s.book.topBefore(m.bids[:0], Bid, 20, ua, ub)
	m.asks = s.book.topBefore(m.asks[:0], Ask, 20, ua, ub)
}

// Snapshot is a REST depth snapshot.
type Snapshot struct {
	LastUpdateID int64
	E, T         int64 // ms
	Bids, Asks   []PL
}

// Snapshot returns the top limit levels of symbol sym at time now, as a
// REST request served at that moment sees it: it includes the changes made
// since the last tick up to now, which the stream publishes at the next
// tick, so lastUpdateId may fall inside the next diff event's U..u range.
func (m *Market) Snapshot(sym, limit int, now time.Time) Snapshot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := &m.syms[sym]
	elapsed := now.UnixNano() - s.pendBase
	j := sort.Search(len(s.pendOff), func(i int) bool { return s.pendOff[i] > elapsed })
	snap := Snapshot{LastUpdateID: s.lastU, E: now.UnixMilli(), T: s.lastT}
	if j > 0 {
		snap.LastUpdateID = s.book.hist.at(s.pendFrom + int64(j) - 1).ID
		snap.T = (s.pendBase + s.pendOff[j-1]) / 1e6
	}
	if snap.T == 0 {
		snap.T = snap.E
	}
	ua, ub := s.book.hist.segs(s.pendFrom+int64(j), s.pendFrom+int64(s.pendN))
	snap.Bids = s.book.topBefore(nil, Bid, limit, ua, ub)
	snap.Asks = s.book.topBefore(nil, Ask, limit, ua, ub)
	return snap
}

// LevelsAt returns symbol sym's full book right after update id.
func (m *Market) LevelsAt(sym int, id int64) (bids, asks []PL, err error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.syms[sym].book.LevelsAt(id)
}

// LastUpdateID is the u of symbol sym's last published diff event (its
// start id before the first).
func (m *Market) LastUpdateID(sym int) int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.syms[sym].lastU
}

// Ticks is the number of ticks so far.
func (m *Market) Ticks() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.k
}

// BestLevels returns the best bid and ask of symbol sym as published.
func (m *Market) BestLevels(sym int) (bid, ask PL) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := &m.syms[sym]
	ua, ub := s.book.hist.segs(s.pendFrom, s.pendFrom+int64(s.pendN))
	var tmp [2]PL
	b := s.book.topBefore(tmp[:0], Bid, 1, ua, ub)
	if len(b) > 0 {
		bid = b[0]
	}
	a := s.book.topBefore(tmp[:0], Ask, 1, ua, ub)
	if len(a) > 0 {
		ask = a[0]
	}
	return bid, ask
}
