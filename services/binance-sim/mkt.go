package binancesim

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/binance-sim/replay"
	"github.com/depthcap/depthcap/services/binance-sim/synth"
)

// symInfo is what exchangeInfo and ticker/24hr say about a symbol.
type symInfo struct {
	Symbol, Base, Quote string
	spec                *synth.SymbolSpec // nil in replay mode
	volume              float64
}

// mkt is one market: its listener, its data source (synthetic market or
// recorded frames), its subscribers and its REST limits.
type mkt struct {
	s        *Sim
	m        md.Market
	ln       net.Listener
	srv      *http.Server
	syn      *synth.Market
	rep      *replayMkt
	symbols  []symInfo
	bySymbol map[string]int
	nv       int // synthetic stream variants

	subsMu sync.RWMutex
	subs   [][]*conn          // synthetic: subscribers of symbol*nv+variant
	rsubs  map[string][]*conn // replay: subscribers of a stream name

	connsMu  sync.Mutex
	conns    map[int64]*conn
	nextConn atomic.Int64

	weights    *weightLimiter
	wSuffix    string // "1M", "6S"
	wInterval  string // "MINUTE", "SECOND"
	wNum       int64
	sent       *sendLog
	restMu     sync.Mutex
	restFaults []restFault
	restRng    *rand.Rand

	t0      time.Time // tick 0 of the synthetic market
	pool    sync.Pool
	cur     *batch // the ticker's batch while it encodes
	encoded int
	tickNo  int64   // ticker goroutine only, like touched
	touched []*conn // connections that got a frame of the current tick

	framesDiff, framesPartial, framesOther prometheus.Counter
	malformed                              prometheus.Counter
}

// batch is the buffer of one tick's frames, shared by every connection the
// frames are queued on, and returned to the pool when the last one wrote.
type batch struct {
	buf  []byte
	refs atomic.Int32
	pool *sync.Pool
}

func (b *batch) release() {
	if b.refs.Add(-1) == 0 {
		b.pool.Put(b)
	}
}

func newMkt(s *Sim, m md.Market, addr string, frames []replay.Frame) (*mkt, error) {
	varName := "SIM_SPOT_ADDR"
	if m == md.Futures {
		varName = "SIM_FUTURES_ADDR"
	}
	mk := &mkt{
		s: s, m: m,
		bySymbol: map[string]int{},
		rsubs:    map[string][]*conn{},
		conns:    map[int64]*conn{},
		weights:  newWeightLimiter(s.cfg.WeightWindow, s.cfg.weightLimit(m), s.cfg.BanAfter, s.cfg.BanDuration),
		sent:     newSendLog(s.cfg.SendLog, s.cfg.SendLogMax),
		restRng:  rand.New(rand.NewPCG(s.cfg.Seed, 0x4E57^uint64(m))),
	}
	mk.wSuffix, mk.wInterval, mk.wNum = windowName(s.cfg.WeightWindow)
	mk.pool.New = func() any { return &batch{pool: &mk.pool} }
	ml := m.String()
	mk.framesDiff = s.met.frames.WithLabelValues(ml, "diff")
	mk.framesPartial = s.met.frames.WithLabelValues(ml, "partial")
	mk.framesOther = s.met.frames.WithLabelValues(ml, "other")
	mk.malformed = s.met.malformed.WithLabelValues(ml)

	if s.cfg.Mode == ModeSynthetic {
		mk.t0 = time.Now()
		syn, err := synth.NewMarket(synth.Config{
			Market: m, Symbols: s.cfg.Symbols, Seed: s.cfg.Seed,
			DiffInterval: s.cfg.DiffInterval, PartialInterval: s.cfg.PartialInterval,
			Activity: synth.Activity{Max: s.cfg.ActivityMax, Skew: s.cfg.ActivitySkew, Min: s.cfg.ActivityMin},
			Levels:   s.cfg.BookLevels, History: s.cfg.History, HistoryChanges: s.cfg.HistoryChanges,
			SkipMean: s.cfg.SkipMean, SkipEvents: s.cfg.SkipEvents,
		}, mk.t0)
		if err != nil {
			return nil, fmt.Errorf("build %s market: %w", m, err)
		}
		mk.syn = syn
		specs := syn.Specs()
		for i := range specs {
			sp := &specs[i]
			mk.symbols = append(mk.symbols, symInfo{Symbol: sp.Symbol, Base: sp.Base, Quote: sp.Quote, spec: sp, volume: sp.QuoteVolume})
		}
		mk.nv = len(syn.Variants())
		mk.subs = make([][]*conn, len(specs)*mk.nv)
	} else {
		mk.rep = newReplayMkt(mk, frames)
		counts := map[string]int{}
		for i := range frames {
			if frames[i].Symbol != "" {
				counts[frames[i].Symbol]++
			}
		}
		names := make([]string, 0, len(counts))
		for n := range counts {
			names = append(names, n)
		}
		// Busiest recording first, so top:N selects what was recorded most.
		sort.Slice(names, func(i, j int) bool {
			if counts[names[i]] != counts[names[j]] {
				return counts[names[i]] > counts[names[j]]
			}
			return names[i] < names[j]
		})
		for _, n := range names {
			base, quote := synth.SplitSymbol(n)
			mk.symbols = append(mk.symbols, symInfo{Symbol: n, Base: base, Quote: quote, volume: float64(counts[n]) * 1e6})
		}
	}
	for i, sy := range mk.symbols {
		mk.bySymbol[sy.Symbol] = i
	}

	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s %s: %w", varName, addr, err)
	}
	mk.ln = ln
	mk.srv = &http.Server{Handler: mk.routes(), ReadHeaderTimeout: 10 * time.Second}
	return mk, nil
}

func (mk *mkt) baseURL() string { return "http://" + mk.ln.Addr().String() }

func (mk *mkt) start() {
	s := mk.s
	s.wg.Add(1)
	go s.serve(mk)
	if mk.syn != nil {
		s.wg.Add(1)
		go mk.runTicker()
	}
	if mk.rep != nil && len(mk.rep.frames) > 0 && s.cfg.Speed > 0 {
		s.wg.Add(1)
		go mk.rep.dispatch()
	}
}

// maxCatchUp bounds how many missed ticks the ticker replays after a
// stall (a busy machine); older ones are dropped and counted as late.
const maxCatchUp = 10

// runTicker is the market's one ticker goroutine: it moves every book once
// per SIM_DIFF_INTERVAL and encodes each due frame once, queueing it on
// every subscribed connection. Tick k happens at start + k×interval: when
// the goroutine was delayed it catches up, so the streams keep their rate
// on a busy machine.
func (mk *mkt) runTicker() {
	s := mk.s
	defer s.wg.Done()
	iv := s.cfg.DiffInterval
	ml := mk.m.String()
	ticks, late := s.met.ticks.WithLabelValues(ml), s.met.tickLate.WithLabelValues(ml)
	generated := s.met.generated.WithLabelValues(ml)
	timer := time.NewTimer(iv)
	defer timer.Stop()
	var k int64
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-timer.C:
		}
		due := int64(time.Since(mk.t0) / iv)
		if due-k > maxCatchUp {
			late.Add(float64(due - k - maxCatchUp))
			k = due - maxCatchUp
		}
		for k < due {
			k++
			mk.tick(mk.t0.Add(time.Duration(k) * iv))
			ticks.Inc()
			generated.Add(float64(mk.encoded))
		}
		timer.Reset(time.Until(mk.t0.Add(time.Duration(k+1) * iv)))
	}
}

func (mk *mkt) tick(at time.Time) {
	s := mk.s
	b := mk.pool.Get().(*batch)
	b.refs.Store(1)
	mk.cur, mk.encoded = b, 0
	mk.tickNo++
	mk.subsMu.RLock()
	buf, skips := mk.syn.Tick(at, b.buf[:0], mk)
	mk.subsMu.RUnlock()
	b.buf = buf
	mk.cur = nil
	b.release()
	for i, c := range mk.touched {
		c.enqueue(outFrame{tickEnd: true}) // writes the tick's frames out
		mk.touched[i] = nil
	}
	mk.touched = mk.touched[:0]
	for _, sk := range skips {
		f := s.addFault(Fault{Time: sk.At, Market: mk.m, Type: FaultSkip, Injected: sk.Injected,
			Symbol: sk.Symbol, From: sk.From, To: sk.To, Events: sk.Events})
		if ok, suppressed := s.limiter.Allow("skip:" + mk.m.String()); ok {
			s.log.Info("sequence skip", zap.String("market", mk.m.String()), zap.String("symbol", f.Symbol),
				zap.Int64("from", f.From), zap.Int64("to", f.To), zap.Int("events", f.Events), zap.Int("suppressed", suppressed))
		}
	}
}

// Wants implements synth.Sink.
func (mk *mkt) Wants(sym, v int) bool { return len(mk.subs[sym*mk.nv+v]) > 0 }

// Frame implements synth.Sink: queue the frame on every subscriber.
func (mk *mkt) Frame(f synth.Frame) {
	mk.encoded++
	sym := mk.symbols[f.Sym].Symbol
	for _, c := range mk.subs[f.Sym*mk.nv+f.Variant] {
		if c.tickSeen != mk.tickNo {
			c.tickSeen = mk.tickNo
			mk.touched = append(mk.touched, c)
		}
		mk.cur.refs.Add(1)
		c.enqueue(outFrame{buf: f.Full, dataOff: int32(f.DataOff), dataEnd: int32(len(f.Full) - 1),
			b: mk.cur, kind: f.Kind, sym: sym, id: f.ID})
	}
}

// subscribe adds streams to c. reply is queued before any frame of the new
// streams can be.
func (mk *mkt) subscribe(c *conn, names []string, reply func()) *wsError {
	mk.subsMu.Lock()
	defer mk.subsMu.Unlock()
	c.subMu.Lock()
	defer c.subMu.Unlock()
	cur := *c.set.Load()
	var add []string
	for _, n := range names {
		if _, ok := cur[n]; !ok && !slices.Contains(add, n) {
			add = append(add, n)
		}
	}
	if len(cur)+len(add) > mk.s.cfg.MaxStreams {
		return &wsError{2, fmt.Sprintf("Invalid request: too many streams: a connection can listen to at most %d", mk.s.cfg.MaxStreams)}
	}
	if reply != nil {
		reply()
	}
	if len(add) == 0 {
		return nil
	}
	next := make(map[string]struct{}, len(cur)+len(add))
	for n := range cur {
		next[n] = struct{}{}
	}
	for _, n := range add {
		next[n] = struct{}{}
		c.streams = append(c.streams, n)
		mk.index(c, n, true)
	}
	c.set.Store(&next)
	if mk.rep != nil {
		mk.s.startReplay()
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func (mk *mkt) unsubscribe(c *conn, names []string) {
	mk.subsMu.Lock()
	defer mk.subsMu.Unlock()
	c.subMu.Lock()
	defer c.subMu.Unlock()
	cur := *c.set.Load()
	next := make(map[string]struct{}, len(cur))
	for n := range cur {
		next[n] = struct{}{}
	}
	for _, n := range names {
		if _, ok := next[n]; !ok {
			continue
		}
		delete(next, n)
		c.streams = slices.DeleteFunc(c.streams, func(s string) bool { return s == n })
		mk.index(c, n, false)
	}
	c.set.Store(&next)
}

// index adds c to (or removes it from) the dispatch index of stream n.
// Caller holds subsMu.
func (mk *mkt) index(c *conn, n string, add bool) {
	var list *[]*conn
	switch {
	case mk.syn != nil:
		sym, v, ok := mk.syn.ParseStream(n)
		if !ok || sym < 0 {
			return // a well-formed name the simulator has no data for: silent, as on Binance
		}
		list = &mk.subs[sym*mk.nv+v]
	case mk.s.cfg.Speed > 0:
		l := mk.rsubs[n]
		if add {
			l = append(l, c)
		} else {
			l = slices.DeleteFunc(l, func(x *conn) bool { return x == c })
		}
		if len(l) == 0 {
			delete(mk.rsubs, n)
		} else {
			mk.rsubs[n] = l
		}
		return
	default:
		return // SIM_SPEED=0: each connection's cursor checks its own set
	}
	if add {
		*list = append(*list, c)
	} else {
		*list = slices.DeleteFunc(*list, func(x *conn) bool { return x == c })
	}
}

func (mk *mkt) addConn(c *conn) {
	mk.connsMu.Lock()
	mk.conns[c.id] = c
	mk.connsMu.Unlock()
	mk.s.met.conns.WithLabelValues(mk.m.String()).Inc()
}

func (mk *mkt) removeConn(c *conn) {
	mk.connsMu.Lock()
	delete(mk.conns, c.id)
	mk.connsMu.Unlock()
	mk.s.met.conns.WithLabelValues(mk.m.String()).Dec()
}

func (mk *mkt) connCount() int {
	mk.connsMu.Lock()
	defer mk.connsMu.Unlock()
	return len(mk.conns)
}

// targets returns connection id, or every connection when id is 0.
func (mk *mkt) targets(id int64) []*conn {
	mk.connsMu.Lock()
	defer mk.connsMu.Unlock()
	var out []*conn
	for _, c := range mk.conns {
		if id == 0 || c.id == id {
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b *conn) int { return int(a.id - b.id) })
	return out
}

func (mk *mkt) connInfos() []ConnInfo {
	var out []ConnInfo
	for _, c := range mk.targets(0) {
		c.subMu.Lock()
		streams := slices.Clone(c.streams)
		c.subMu.Unlock()
		out = append(out, ConnInfo{ID: c.id, Market: mk.m.String(), Remote: c.remote, Path: c.path,
			Opened: c.opened, Combined: c.combined.Load(), Streams: streams, Queued: len(c.q)})
	}
	return out
}

func (mk *mkt) closeAll() {
	for _, c := range mk.targets(0) {
		c.fail("server shutdown", closeGoingAway, false)
	}
}
