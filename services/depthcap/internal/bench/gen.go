package bench

import (
	"fmt"
	"time"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/binance-sim/synth"
)

// Msg is one JetStream message as depthcap's collectors publish it: the
// subject, the envelope bytes and the Nats-Msg-Id.
type Msg struct {
	Subject string
	Data    []byte
	ID      []byte
	Kind    md.Kind
}

// Generator produces, without any network, the messages spot-ws,
// futures-ws and rest-snapshotter would publish for a scenario's
// synthetic market: the same synth books and frame encoders as
// binance-sim, turned into envelopes by pkg/frames (the collectors' own
// builder), unchanged spot partials skipped as ingest skips them, and REST
// snapshots (limit 1000) at the snapshotter's default weight budget.
type Generator struct {
	sc     Scenario
	r      Rate
	mk     [2]*synth.Market
	b      [2]*frames.Builder
	want   [2][]bool
	subj   [2][3][]string // market, kind (diff, partial, snapshot), symbol
	last   [2][2][]int64  // market, kind (diff, partial), symbol: last id published
	snapAt [2]float64     // snapshots due (fractional) per market
	snapPT [2]float64     // snapshots per tick per market
	snapI  [2]int         // next symbol to snapshot
	t0     time.Time      // synthetic time of tick 0 (= receive time base)
	k      int64
	buf    []byte
	h      binance.Header
	env    envelope.Envelope
	arena  []byte
	out    []Msg
	err    error
	cur    int       // market of the tick being encoded
	recv   time.Time // receive time of the frames of the current tick
	nInTk  int64
}

// Snapshot settings of the snapshotter's defaults: SNAPSHOT_LIMIT 1000,
// SNAPSHOT_INTERVAL 60s, SNAPSHOT_BUDGET 0.5 of spot 6000 (weight 50) and
// USD-M 2400 (weight 20) per minute.
const (
	snapLimit    = 1000
	snapInterval = 60 * time.Second
)

var snapPerMinute = [2]float64{0.5 * 6000 / 50, 0.5 * 2400 / 20}

var genMarkets = [2]md.Market{md.Spot, md.Futures}

// NewGenerator builds both markets of sc at rate r; t0 is the receive
// time of the first tick.
func NewGenerator(sc Scenario, r Rate, seed uint64, t0 time.Time) (*Generator, error) {
	g := &Generator{sc: sc, r: r, t0: t0}
	for i, m := range genMarkets {
		mk, err := synth.NewMarket(sc.SynthConfig(m, r, seed), t0)
		if err != nil {
			return nil, fmt.Errorf("synthetic %s market: %w", m, err)
		}
		g.mk[i] = mk
		g.b[i] = frames.NewBuilder(m, "bench/"+m.String())
		g.want[i] = make([]bool, len(mk.Variants()))
		for v, vr := range mk.Variants() {
			g.want[i][v] = vr.Suffix == "@depth@100ms" || vr.Suffix == "@depth20@100ms"
		}
		n := len(mk.Specs())
		for k, kind := range []md.Kind{md.Diff, md.Partial, md.Snapshot} {
			g.subj[i][k] = make([]string, n)
			for s, sp := range mk.Specs() {
				g.subj[i][k][s] = md.Subject(m, kind, sp.Symbol)
			}
		}
		g.last[i] = [2][]int64{make([]int64, n), make([]int64, n)}
		perSec := min(float64(n)/snapInterval.Seconds(), snapPerMinute[i]/60)
		g.snapPT[i] = perSec * r.Tick.Seconds()
	}
	return g, nil
}

// Generate returns the next n messages, in the order the collectors
// would publish them (one tick of spot, then of futures, ...). Data and
// ID live in arenas owned by the caller from then on.
func (g *Generator) Generate(n int) ([]Msg, error) {
	g.out = make([]Msg, 0, n)
	for len(g.out) < n && g.err == nil {
		g.tick()
	}
	if g.err != nil {
		return nil, g.err
	}
	out := g.out[:n]
	g.out = nil
	return out, nil
}

// arenaChunk is the size of the byte arenas messages are copied into.
const arenaChunk = 16 << 20

func (g *Generator) alloc(size int) []byte {
	if cap(g.arena)-len(g.arena) < size {
		g.arena = make([]byte, 0, max(arenaChunk, size))
	}
	start := len(g.arena)
	g.arena = g.arena[:start+size]
	return g.arena[start : start+size : start+size]
}

func (g *Generator) tick() {
	g.k++
	at := g.t0.Add(time.Duration(g.k) * g.r.Tick)
	for i := range genMarkets {
		g.cur, g.recv, g.nInTk = i, at, 0
		g.buf, _ = g.mk[i].Tick(at, g.buf[:0], g)
		g.snapAt[i] += g.snapPT[i]
		for g.snapAt[i] >= 1 && g.err == nil {
			g.snapAt[i]--
			g.snapshot(i, at, 0)
		}
	}
}

// Wants implements synth.Sink: the collectors' two streams per symbol.
func (g *Generator) Wants(_, v int) bool { return g.want[g.cur][v] }

// Frame implements synth.Sink: what a collector does with a frame.
func (g *Generator) Frame(f synth.Frame) {
	if g.err != nil {
		return
	}
	i := g.cur
	g.nInTk++
	recvNs := g.recv.UnixNano() + g.nInTk*1000 // frames of a tick arrive µs apart
	if err := g.b[i].Build(f.Full, recvNs, &g.h, &g.env); err != nil {
		g.err = fmt.Errorf("build envelope of %s: %w", f.Full[:min(len(f.Full), 80)], err)
		return
	}
	k := 0
	if f.Kind == md.Partial {
		k = 1
	}
	if f.ID <= g.last[i][k][f.Sym] {
		return // an unchanged spot partial: ingest skips it as a duplicate
	}
	g.last[i][k][f.Sym] = f.ID
	g.add(g.subj[i][k][f.Sym], f.Kind)
}

func (g *Generator) add(subject string, kind md.Kind) {
	size := len(g.env.Payload) + 2*len(g.env.Symbol) + len(g.env.Source) + 160
	b := g.alloc(size)[:0]
	b = g.env.AppendMarshal(b)
	n := len(b)
	b, err := g.env.AppendMsgID(b)
	if err != nil {
		g.err = err
		return
	}
	if cap(b) != size {
		// grew out of its arena slot (cannot happen with the bound above)
		g.err = fmt.Errorf("envelope of %s larger than its bound %d", subject, size)
		return
	}
	g.out = append(g.out, Msg{Subject: subject, Data: b[:n:n], ID: b[n:], Kind: kind})
}

// snapshot is one REST answer, as the snapshotter publishes it; id,
// when not 0, replaces its lastUpdateId.
func (g *Generator) snapshot(i int, at time.Time, id int64) {
	mk := g.mk[i]
	sym := g.snapI[i] % len(mk.Specs())
	g.snapI[i]++
	spec := &mk.Specs()[sym]
	s := mk.Snapshot(sym, snapLimit, at)
	if id != 0 {
		s.LastUpdateID = id
	}
	var body []byte
	if genMarkets[i] == md.Spot {
		body = synth.AppendSpotDepth(nil, spec, s.LastUpdateID, s.Bids, s.Asks)
	} else {
		body = synth.AppendFuturesDepth(nil, spec, s.LastUpdateID, s.E, s.T, s.Bids, s.Asks)
	}
	var h binance.Header
	if err := binance.ScanData(body, &h); err != nil {
		g.err = fmt.Errorf("snapshot body: %w", err)
		return
	}
	if err := h.Check(genMarkets[i], md.Snapshot); err != nil {
		g.err = fmt.Errorf("snapshot body: %w", err)
		return
	}
	recv := at.UnixNano() + 5e6 // a REST round trip after the tick
	g.env = envelope.Envelope{
		Market: genMarkets[i], Kind: md.Snapshot, Symbol: spec.Symbol,
		ReceivedNs: recv, RequestNs: recv - 4e6, Source: "bench/snapshotter",
		Payload: body, DepthLimit: snapLimit, LastID: h.LastUpdateID, Has: envelope.HasLast,
	}
	if h.Has&binance.HasEventTime != 0 {
		g.env.EventMs = h.EventTime
	}
	if h.Has&binance.HasTransactionTime != 0 {
		g.env.TxMs = h.TransactionTime
	}
	g.add(g.subj[i][2][sym], md.Snapshot)
}

// Symbols returns the symbols of market m (index 0 spot, 1 futures).
func (g *Generator) Symbols(i int) []string {
	var out []string
	for _, sp := range g.mk[i].Specs() {
		out = append(out, sp.Symbol)
	}
	return out
}

// Closers returns one REST snapshot per symbol of both markets received
// at time at, with lastUpdateIds from firstID on (above any id of the
// backlog, so none is taken for a duplicate): published after a backlog,
// they move the writer's watermark to at, so that every period that ended
// before at − WRITER_GRACE seals, in every shard.
func (g *Generator) Closers(at time.Time, firstID int64) ([]Msg, error) {
	g.out = nil
	id := firstID
	for i := range genMarkets {
		for range g.mk[i].Specs() {
			g.snapshot(i, at, id)
			id++
		}
	}
	if g.err != nil {
		return nil, g.err
	}
	out := g.out
	g.out = nil
	return out, nil
}
