// Package binancesim is binance-sim, depthcap's offline Binance: it speaks
// Binance's public spot and USD-M protocols (websocket depth streams with
// SUBSCRIBE, pings and limits; REST depth, exchangeInfo and ticker/24hr
// with request weights, 429 and 418) from either a deterministic synthetic
// market or recorded frames, injects faults on demand, and keeps ground
// truth (the exact book at any recent update id, every frame it sent,
// every fault it injected) for tests.
//
// The package is the library; cmd/binance-sim is the service binary. Tests
// in other modules embed it:
//
//	cfg := binancesim.DefaultConfig()
//	cfg.SpotAddr, cfg.FuturesAddr = "127.0.0.1:0", "127.0.0.1:0"
//	sim, err := binancesim.New(cfg, binancesim.Options{})
//	defer sim.Close()
//	url := sim.WSURL(md.Spot) + "/stream?streams=btcusdt@depth@100ms"
package binancesim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/binance-sim/replay"
	"github.com/depthcap/depthcap/services/binance-sim/synth"
)

// Options are the in-process dependencies of a Sim.
type Options struct {
	Log        *zap.Logger           // nil: no logging
	Registerer prometheus.Registerer // nil: metrics go to a private registry
}

// Errors of the in-process API.
var (
	ErrUnknownSymbol = errors.New("unknown symbol")
	ErrNotSynthetic  = errors.New("ground truth is only kept in synthetic mode")
	ErrClosed        = errors.New("simulator closed")
	// ErrHistoryTrimmed: the update id is older than SIM_HISTORY / SIM_HISTORY_CHANGES keep.
	ErrHistoryTrimmed = synth.ErrHistoryTrimmed
	// ErrFutureUpdate: the update id has not happened yet.
	ErrFutureUpdate = synth.ErrFutureUpdate
)

// Sim is a running simulator: two listeners (spot, futures) and, in
// synthetic mode, one ticker goroutine per market.
type Sim struct {
	cfg     Config
	log     *zap.Logger
	met     *metrics
	limiter *svc.Limiter
	mkts    [2]*mkt
	faults  faultLog
	started time.Time

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // servers, tickers, replay clocks
	connMu sync.Mutex     // orders connWG.Add before Shutdown's Wait
	connWG sync.WaitGroup // websocket connections
	closed atomic.Bool

	// replay
	replayOnce    sync.Once
	replayStart   chan struct{} // closed when the first client subscribes
	replayStartAt atomic.Int64
	replayT0      int64
	replayDone    chan struct{}
	replayDoneN   atomic.Int32
}

// New validates cfg, binds both listeners (port 0 picks a free port),
// builds the synthetic markets or loads the recordings, and starts serving.
func New(cfg Config, opts Options) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	reg := opts.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register binance-sim metrics: %w", err)
	}
	s := &Sim{
		cfg: cfg, log: log, met: met, limiter: svc.NewLimiter(10 * time.Second), started: time.Now(),
		replayStart: make(chan struct{}), replayDone: make(chan struct{}),
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())

	var frames map[md.Market][]replay.Frame
	if cfg.Mode == ModeReplay {
		frames, err = replay.Load(cfg.Replay)
		if err != nil {
			return nil, err
		}
		s.replayT0 = -1
		for _, fs := range frames {
			if len(fs) > 0 && (s.replayT0 < 0 || fs[0].RecvNs < s.replayT0) {
				s.replayT0 = fs[0].RecvNs
			}
		}
	}
	for i, m := range md.Markets {
		addr := cfg.SpotAddr
		if m == md.Futures {
			addr = cfg.FuturesAddr
		}
		mk, err := newMkt(s, m, addr, frames[m])
		if err != nil {
			s.closeListeners()
			return nil, err
		}
		s.mkts[i] = mk
	}
	if cfg.Mode == ModeReplay {
		n := 0
		for _, mk := range s.mkts {
			if mk.rep != nil && len(mk.rep.frames) > 0 {
				n++
			}
		}
		s.replayDoneN.Store(int32(n))
		if n == 0 {
			close(s.replayDone)
		}
	}
	for _, mk := range s.mkts {
		mk.start()
	}
	log.Info("binance-sim listening",
		zap.String("mode", cfg.Mode),
		zap.String("spot", s.mkts[0].baseURL()),
		zap.String("futures", s.mkts[1].baseURL()))
	return s, nil
}

func (s *Sim) closeListeners() {
	for _, mk := range s.mkts {
		if mk != nil {
			_ = mk.ln.Close()
		}
	}
}

func (s *Sim) mkt(m md.Market) *mkt {
	switch m {
	case md.Spot:
		return s.mkts[0]
	case md.Futures:
		return s.mkts[1]
	}
	return nil
}

// Config returns the configuration the simulator runs with.
func (s *Sim) Config() Config { return s.cfg }

// Addr is the bound address of a market's listener.
func (s *Sim) Addr(m md.Market) net.Addr { return s.mkt(m).ln.Addr() }

// WSURL is the websocket base URL of a market: ws://host:port for spot,
// ws://host:port/public for USD-M. Append /ws/<stream>, /ws or
// /stream?streams=a/b. The USD-M legacy paths (without /public) work too.
func (s *Sim) WSURL(m md.Market) string {
	u := "ws://" + s.Addr(m).String()
	if m == md.Futures {
		u += "/public"
	}
	return u
}

// RESTURL is the REST base URL of a market: http://host:port. Append
// /api/v3/depth (spot) or /fapi/v1/depth (USD-M).
func (s *Sim) RESTURL(m md.Market) string { return s.mkt(m).baseURL() }

// Symbols lists a market's symbols (synthetic: most active first;
// replay: the recorded ones).
func (s *Sim) Symbols(m md.Market) []string {
	mk := s.mkt(m)
	out := make([]string, len(mk.symbols))
	for i, sy := range mk.symbols {
		out[i] = sy.Symbol
	}
	return out
}

// Level is one price level of the ground-truth book, formatted exactly as
// the simulator sends it.
type Level struct {
	Price string `json:"price"`
	Qty   string `json:"qty"`
}

// Book returns the exact full book of symbol right after update id
// updateID (bids best first, asks best first). It works for any id from
// the retained history (SIM_HISTORY / SIM_HISTORY_CHANGES) up to the
// newest change, including ids a REST snapshot reports before the stream
// has published them.
func (s *Sim) Book(m md.Market, symbol string, updateID int64) (bids, asks []Level, err error) {
	mk := s.mkt(m)
	if mk == nil || mk.syn == nil {
		return nil, nil, ErrNotSynthetic
	}
	i, ok := mk.syn.Lookup(symbol)
	if !ok {
		return nil, nil, fmt.Errorf("%w %q", ErrUnknownSymbol, symbol)
	}
	b, a, err := mk.syn.LevelsAt(i, updateID)
	if err != nil {
		return nil, nil, fmt.Errorf("book %s %s at %d: %w", m, symbol, updateID, err)
	}
	spec := &mk.syn.Specs()[i]
	return toLevels(spec, b), toLevels(spec, a), nil
}

func toLevels(spec *synth.SymbolSpec, pl []synth.PL) []Level {
	out := make([]Level, len(pl))
	var buf []byte
	for i, l := range pl {
		buf = spec.AppendPrice(buf[:0], l.Tick)
		out[i].Price = string(buf)
		buf = spec.AppendQty(buf[:0], l.Lots)
		out[i].Qty = string(buf)
	}
	return out
}

// LastUpdateID is the u of the last diff event published for symbol
// (whether or not it was skipped).
func (s *Sim) LastUpdateID(m md.Market, symbol string) (int64, error) {
	mk := s.mkt(m)
	if mk == nil || mk.syn == nil {
		return 0, ErrNotSynthetic
	}
	i, ok := mk.syn.Lookup(symbol)
	if !ok {
		return 0, fmt.Errorf("%w %q", ErrUnknownSymbol, symbol)
	}
	return mk.syn.LastUpdateID(i), nil
}

// Sent returns the send log of one market, kind and symbol.
func (s *Sim) Sent(m md.Market, k md.Kind, symbol string) Sent {
	return s.mkt(m).sent.get(k, symbol)
}

// SentLog returns the whole send log of a market; truncated is true when
// SIM_SEND_LOG_MAX was reached and later ids were not recorded.
func (s *Sim) SentLog(m md.Market) (entries []SentEntry, truncated bool) {
	return s.mkt(m).sent.all(m)
}

// Faults lists the injected faults and enforced limits of a market, in
// order (md.MarketUnknown: both markets).
func (s *Sim) Faults(m md.Market) []Fault { return s.faults.list(m) }

func (s *Sim) addFault(f Fault) Fault {
	f = s.faults.add(f)
	s.met.faults.WithLabelValues(f.MarketS, f.Type).Inc()
	return f
}

// ConnInfo describes an open websocket connection.
type ConnInfo struct {
	ID       int64     `json:"id"`
	Market   string    `json:"market"`
	Remote   string    `json:"remote"`
	Path     string    `json:"path"`
	Opened   time.Time `json:"opened"`
	Combined bool      `json:"combined"`
	Streams  []string  `json:"streams"`
	Queued   int       `json:"queued"`
}

// Conns lists a market's open websocket connections.
func (s *Sim) Conns(m md.Market) []ConnInfo { return s.mkt(m).connInfos() }

// Status is the simulator's state (GET /sim/status).
type Status struct {
	Mode    string         `json:"mode"`
	Uptime  Duration       `json:"uptime"`
	Markets []MarketStatus `json:"markets"`
}

// MarketStatus is one market's part of Status.
type MarketStatus struct {
	Market  string        `json:"market"`
	WS      string        `json:"ws"`
	REST    string        `json:"rest"`
	Symbols int           `json:"symbols"`
	Conns   int           `json:"conns"`
	Ticks   int64         `json:"ticks,omitempty"`
	Replay  *ReplayStatus `json:"replay,omitempty"`
}

// ReplayStatus is the progress of a market's replay.
type ReplayStatus struct {
	Frames    int       `json:"frames"`
	Position  int       `json:"position"` // frames dispatched (SIM_SPEED=0: by the furthest client)
	Started   bool      `json:"started"`
	StartedAt time.Time `json:"startedAt,omitzero"`
	Done      bool      `json:"done"`
	Speed     float64   `json:"speed"`
}

// Status reports the simulator's state.
func (s *Sim) Status() Status {
	st := Status{Mode: s.cfg.Mode, Uptime: Duration(time.Since(s.started))}
	for _, mk := range s.mkts {
		ms := MarketStatus{Market: mk.m.String(), WS: s.WSURL(mk.m), REST: mk.baseURL(), Symbols: len(mk.symbols), Conns: mk.connCount()}
		if mk.syn != nil {
			ms.Ticks = mk.syn.Ticks()
		}
		if mk.rep != nil {
			rs := mk.rep.status()
			if at := s.replayStartAt.Load(); at != 0 {
				rs.StartedAt = time.Unix(0, at)
			}
			ms.Replay = &rs
		}
		st.Markets = append(st.Markets, ms)
	}
	return st
}

// ReplayDone is closed when every market's replay has sent its last frame
// (SIM_SPEED=0: when some client of each market has read to the end).
func (s *Sim) ReplayDone() <-chan struct{} { return s.replayDone }

func (s *Sim) startReplay() {
	s.replayOnce.Do(func() {
		s.replayStartAt.Store(time.Now().UnixNano())
		close(s.replayStart)
	})
}

func (s *Sim) marketReplayDone() {
	if s.replayDoneN.Add(-1) == 0 {
		close(s.replayDone)
	}
}

// Ready reports nil once the simulator serves (for /readyz).
func (s *Sim) Ready() error {
	if s.closed.Load() {
		return ErrClosed
	}
	return nil
}

// Shutdown stops the tickers and replay, closes every websocket
// connection (going away), stops the HTTP servers and waits for all of it
// within ctx.
func (s *Sim) Shutdown(ctx context.Context) error {
	s.connMu.Lock()
	if !s.closed.CompareAndSwap(false, true) {
		s.connMu.Unlock()
		return nil
	}
	s.connMu.Unlock()
	s.cancel()
	var first error
	for _, mk := range s.mkts {
		mk.closeAll()
		if err := mk.srv.Shutdown(ctx); err != nil && first == nil {
			first = fmt.Errorf("shutdown %s server: %w", mk.m, err)
		}
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); s.connWG.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		if first == nil {
			first = fmt.Errorf("shutdown binance-sim: %w", ctx.Err())
		}
	}
	return first
}

// Close shuts down with a 10 s deadline.
func (s *Sim) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return s.Shutdown(ctx)
}

// serve runs the HTTP server of a market until Shutdown.
func (s *Sim) serve(mk *mkt) {
	defer s.wg.Done()
	if err := mk.srv.Serve(mk.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("binance-sim server stopped", zap.String("market", mk.m.String()), zap.Error(err))
	}
}
