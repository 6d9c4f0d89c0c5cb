package ingest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/symbols"
)

// ServiceName is the service of market m: spot-ws or futures-ws. It names
// the dead-letter subject and the publisher metrics.
func ServiceName(m md.Market) string { return m.String() + "-ws" }

// NATSOptions are the connection options ingest needs: no client-side
// reconnect buffer, so that while NATS is away frames wait in the
// engine's bounded publish buffer (where overflow is accounted), not in
// the client's.
func NATSOptions() []nats.Option { return []nats.Option{nats.ReconnectBufSize(-1)} }

// Options are the in-process dependencies of an Engine; the zero value is
// the production setting.
type Options struct {
	// HTTPClient dials the websockets and reads exchangeInfo; nil uses
	// http.DefaultClient for websockets and a 30 s client for REST.
	HTTPClient *http.Client
	// AttemptLimiter paces connection attempts; nil shares the
	// process-wide bucket (ProcessAttemptLimiter).
	AttemptLimiter *TokenBucket
	// Backoff is the reconnect policy; zero fields take DefaultBackoff's.
	Backoff Backoff

	pub publisher // tests: replaces the bus publisher
}

// Engine captures one market: it resolves the symbols, spreads their
// streams over websocket connections, checks every stream's sequence and
// publishes each frame with its envelope and dedup id, recording gaps.
type Engine struct {
	cfg     Config
	market  md.Market
	prof    binance.Profile
	service string
	source  string
	wsBase  string
	wsHTTP  *http.Client // websocket dials: a large read buffer
	conn    *bus.Conn
	pub     publisher
	busPub  *bus.Publisher // nil when Options.pub replaced it
	log     *zap.Logger
	met     *engineMetrics
	opts    Options
	backoff Backoff
	attempt *TokenBucket
	start   time.Time

	ignoredNotDepth, ignoredReply prometheus.Counter

	logLimit *svc.Limiter
	nextConn atomic.Uint64
	resolved atomic.Bool

	mu     sync.Mutex
	groups []*group
	syms   map[string]*symState
	nextG  int
	runCtx context.Context

	pendMu  sync.Mutex
	pendSet map[*stream]struct{}

	dlq  *dlqWorker
	snap *snapWorker
}

// symState is one symbol's streams.
type symState struct {
	name        string
	gapSubject  string
	ctlSubject  string
	diff        *stream
	partial     *stream // nil when partial streams are off
	lastSnapReq atomic.Int64
	// Gaps within snapMinInterval of the last request: the highest minID
	// asked for since, plus one (0: none), sent when the interval has
	// passed by a timer armed once (snapArmed).
	snapPending atomic.Int64
	snapArmed   atomic.Bool
}

// stream is the shared state of one (symbol, kind) stream.
type stream struct {
	sym         *symState
	kind        md.Kind
	name        string // stream name, e.g. btcusdt@depth@100ms
	subject     string
	lastFrameNs atomic.Int64
	mu          sync.Mutex
	t           tracker
}

// New builds the engine of market m on conn. env.Log, env.Registry and
// env.Health may be nil. The engine starts working in Run.
func New(cfg Config, m md.Market, conn *bus.Conn, env svc.Env, opts Options) (*Engine, error) {
	if err := cfg.ValidateFor(m); err != nil {
		return nil, err
	}
	log := env.Log
	if log == nil {
		log = zap.NewNop()
	}
	var reg prometheus.Registerer = env.Registry
	if env.Registry == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newEngineMetrics(reg, m)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, market: m, prof: binance.ProfileFor(m), service: ServiceName(m), source: cfg.Source(),
		wsBase: cfg.WSURL(m), wsHTTP: wsClient(opts.HTTPClient), conn: conn, log: log.With(zap.String("market", m.String())), met: met, opts: opts,
		backoff: opts.Backoff.withDefaults(), attempt: opts.AttemptLimiter, start: time.Now(),
		ignoredNotDepth: met.v.ignored.WithLabelValues(m.String(), "not_depth"),
		ignoredReply:    met.v.ignored.WithLabelValues(m.String(), "reply"),
		logLimit:        svc.NewLimiter(10 * time.Second),
		syms:            map[string]*symState{},
		pendSet:         map[*stream]struct{}{},
	}
	if e.attempt == nil {
		e.attempt = ProcessAttemptLimiter()
	}
	e.pub = opts.pub
	if e.pub == nil {
		if conn == nil || conn.NC == nil {
			return nil, errors.New("ingest: no NATS connection")
		}
		bp, err := bus.NewPublisher(conn.NC, bus.PublisherConfig{MaxBytes: cfg.PublishBufferBytes},
			bus.NewPublisherMetrics(reg, e.service), e.log)
		if err != nil {
			return nil, fmt.Errorf("ingest publisher: %w", err)
		}
		e.pub, e.busPub = bp, bp
	}
	e.dlq = newDLQWorker(e)
	e.snap = newSnapWorker(e)
	if env.Health != nil {
		env.Health.AddCheck(e.service, e.Ready)
	}
	return e, nil
}

// wsReadBuffer is the read buffer of a websocket's connection.
// coder/websocket reads an upgraded client connection through its own
// 4 KiB bufio.Reader (the transport's buffered reader only serves what
// arrived with the handshake), so without a buffer below it every 4 KiB
// (two or three depth frames) costs a read syscall. With 64 KiB a backlog
// (after a GC pause, or a burst) drains with one read syscall per 64 KiB;
// a connection that keeps up reads what has arrived either way.
const wsReadBuffer = 64 << 10

// wsClient returns hc (or a default client) with a transport whose
// connections read through a wsReadBuffer buffer. Clients with other
// transports, or whose transport already has a read buffer of at least
// wsReadBuffer, are used as they are.
func wsClient(hc *http.Client) *http.Client {
	if hc == nil {
		hc = &http.Client{}
	}
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		if t.ReadBufferSize >= wsReadBuffer {
			return hc
		}
		tr = t.Clone()
	default:
		return hc
	}
	tr.ReadBufferSize = wsReadBuffer
	dial := tr.DialContext
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &bufConn{Conn: conn, r: bufio.NewReaderSize(conn, wsReadBuffer)}, nil
	}
	c := *hc
	c.Transport = tr
	return &c
}

// bufConn is a connection read through a buffer.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// CloseWrite half-closes the connection when it can (http's upgraded
// response body offers it).
func (c *bufConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return fmt.Errorf("close write: %w", errors.ErrUnsupported)
}

// Market is the engine's market.
func (e *Engine) Market() md.Market { return e.market }

// Run captures until ctx ends, then stops in order: connections, pending
// gap records, the publisher (flushed within SHUTDOWN_TIMEOUT). It
// returns an error only when frames or gap records could not be handed
// to JetStream before the deadline.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wctx, cancelWorkers := context.WithCancel(context.Background())
	defer cancelWorkers()
	wg.Go(func() { e.dlq.run(wctx) })
	wg.Go(func() { e.snap.run(wctx) })
	wg.Go(func() { e.maintain(ctx) })

	runErr := e.capture(ctx)

	// Shutdown: stop reading, publish what is pending, flush.
	sctx, cancel := context.WithTimeout(context.Background(), e.cfg.ShutdownTimeout)
	defer cancel()
	e.mu.Lock()
	groups := slices.Clone(e.groups)
	e.mu.Unlock()
	for _, g := range groups {
		g.cancel()
	}
	for _, g := range groups {
		select {
		case <-g.done:
		case <-sctx.Done():
		}
	}
	err := e.flushAll(sctx)
	if e.busPub != nil {
		if cerr := e.busPub.Close(sctx); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close %s publisher: %w", e.service, cerr))
		}
	}
	e.dlq.stop(sctx)
	cancelWorkers()
	wg.Wait()
	if runErr != nil && !errors.Is(runErr, context.Canceled) {
		err = errors.Join(runErr, err)
	}
	return err
}

// capture resolves the symbols, starts the connection groups and keeps
// the symbol set fresh until ctx ends.
func (e *Engine) capture(ctx context.Context) error {
	spec, err := e.cfg.Spec(e.market)
	if err != nil {
		return svc.Invalid("SYMBOLS", err.Error(), "a comma list, top:N or all")
	}
	syms, err := e.resolve(ctx, spec)
	if err != nil {
		return err
	}
	e.mu.Lock()
	e.runCtx = ctx
	e.mu.Unlock()
	e.apply(syms)
	e.resolved.Store(true)
	e.log.Info("capturing", zap.String("symbols", spec.String()), zap.Int("count", len(syms)),
		zap.String("shard", e.cfg.ShardOf().String()), zap.String("source", e.source), zap.String("ws", e.wsBase))
	var refresh <-chan time.Time
	if spec.Mode == symbols.All && e.cfg.SymbolsRefresh > 0 {
		t := time.NewTicker(e.cfg.SymbolsRefresh)
		defer t.Stop()
		refresh = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-refresh:
			syms, err := e.client().Resolve(ctx, spec)
			if err != nil {
				if ctx.Err() == nil {
					e.log.Warn("symbol refresh failed; keeping the current set", zap.Error(err))
				}
				continue
			}
			e.apply(e.cfg.ShardOf().Filter(syms))
		}
	}
}

func (e *Engine) client() symbols.Client { return e.cfg.Client(e.market, e.opts.HTTPClient) }

// resolve reads the symbol selection, retrying with backoff.
func (e *Engine) resolve(ctx context.Context, spec symbols.Spec) ([]string, error) {
	for attempt := 0; ; attempt++ {
		syms, err := e.client().Resolve(ctx, spec)
		if err == nil {
			return e.cfg.ShardOf().Filter(syms), nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("resolve %s symbols: %w", e.market, ctx.Err())
		}
		if ok, suppressed := e.logLimit.Allow("resolve"); ok {
			e.log.Warn("symbol lookup failed, retrying", zap.Int("attempt", attempt), zap.Int("suppressed", suppressed), zap.Error(err))
		}
		if !sleep(ctx, max(time.Second, e.backoff.Delay(attempt))) {
			return nil, fmt.Errorf("resolve %s symbols: %w", e.market, ctx.Err())
		}
	}
}

// apply makes want the captured symbol set: removed symbols leave their
// group, new ones fill groups with room or new groups. A group whose
// membership changed rotates to a connection with the new streams
// (make-before-break), so the symbols it keeps lose nothing.
func (e *Engine) apply(want []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	wantSet := make(map[string]bool, len(want))
	for _, s := range want {
		wantSet[s] = true
	}
	changed := map[*group]bool{}
	var removed []string
	for _, g := range e.groups {
		g.mu.Lock()
		kept := g.syms[:0]
		for _, s := range g.syms {
			if wantSet[s.name] {
				kept = append(kept, s)
				continue
			}
			removed = append(removed, s.name)
			delete(e.syms, s.name)
			changed[g] = true
		}
		clear(g.syms[len(kept):])
		g.syms = kept
		g.mu.Unlock()
	}
	var added []string
	var fresh []*group
	for _, s := range want {
		if e.syms[s] != nil {
			continue
		}
		ss := e.newSymbol(s)
		e.syms[s] = ss
		added = append(added, s)
		var home *group
		for _, g := range e.groups {
			if len(g.syms) < e.cfg.SymbolsPerConn {
				home = g
				break
			}
		}
		if home == nil {
			home = e.newGroup()
			e.groups = append(e.groups, home)
			fresh = append(fresh, home)
		}
		home.mu.Lock()
		home.syms = append(home.syms, ss)
		home.mu.Unlock()
		if !slices.Contains(fresh, home) {
			changed[home] = true
		}
	}
	kept := e.groups[:0]
	for _, g := range e.groups {
		if len(g.syms) == 0 {
			g.cancel()
			continue
		}
		kept = append(kept, g)
	}
	clear(e.groups[len(kept):])
	e.groups = kept
	for g := range changed {
		if len(g.syms) > 0 {
			g.signal()
		}
	}
	for _, g := range fresh {
		g.start(e.runCtx)
	}
	e.met.v.streams.WithLabelValues(e.market.String()).Set(float64(len(e.syms) * e.cfg.StreamsPerSymbol()))
	if len(removed) > 0 || len(added) > 0 {
		e.log.Info("symbol set changed", zap.Int("added", len(added)), zap.Int("removed", len(removed)),
			zap.Int("symbols", len(e.syms)), zap.Int("connections", len(e.groups)),
			zap.Strings("added_first", head(added, 20)), zap.Strings("removed_first", head(removed, 20)))
	}
}

func head(s []string, n int) []string { return s[:min(n, len(s))] }

func (e *Engine) newSymbol(name string) *symState {
	ss := &symState{
		name:       name,
		gapSubject: md.Subject(e.market, md.Gap, name),
		ctlSubject: md.ControlSubject(e.market, name),
	}
	now := time.Now().UnixNano()
	ss.diff = &stream{sym: ss, kind: md.Diff, name: binance.DiffStream(name, e.cfg.DiffSpeed),
		subject: md.Subject(e.market, md.Diff, name), t: newTracker(md.Diff)}
	ss.diff.lastFrameNs.Store(now)
	if e.cfg.PartialLevels > 0 {
		ss.partial = &stream{sym: ss, kind: md.Partial, name: binance.PartialStream(name, e.cfg.PartialLevels, e.cfg.PartialSpeed),
			subject: md.Subject(e.market, md.Partial, name), t: newTracker(md.Partial)}
		ss.partial.lastFrameNs.Store(now)
	}
	return ss
}

func (s *symState) streams() []*stream {
	if s.partial == nil {
		return []*stream{s.diff}
	}
	return []*stream{s.diff, s.partial}
}

// jitteredAge is when a new connection is rotated: INGEST_MAX_CONN_AGE
// minus up to 10%, so that connections opened together rotate apart.
func (e *Engine) jitteredAge() time.Duration {
	age := e.cfg.MaxConnAge
	return age - time.Duration(rand.Int64N(int64(age/10)+1))
}

// Ready is the /readyz check: NATS is connected and every connection
// group has a subscribed connection that delivers.
func (e *Engine) Ready() error {
	if e.conn != nil {
		if err := e.conn.Ready(); err != nil {
			return err
		}
	}
	if !e.resolved.Load() {
		return errors.New("symbols not resolved yet")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.groups {
		p := g.primary.Load()
		if p == nil || !p.delivering() {
			return fmt.Errorf("%s connection %d (%d symbols) is not subscribed and delivering", e.market, g.id, len(g.syms))
		}
	}
	return nil
}

// addPending registers a stream whose gap records wait for the buffer.
// Called with st.mu held.
func (e *Engine) addPending(st *stream) {
	e.pendMu.Lock()
	e.pendSet[st] = struct{}{}
	e.pendMu.Unlock()
}

// retryPending publishes pending gap records of every registered stream.
// An overflow still open on a quiet stream is closed once the buffer has
// room again, so its record does not wait for the stream's next frame.
// It returns the number of records still pending.
func (e *Engine) retryPending(closeAll bool) int {
	e.pendMu.Lock()
	list := make([]*stream, 0, len(e.pendSet))
	for st := range e.pendSet {
		list = append(list, st)
	}
	e.pendMu.Unlock()
	roomy := e.pub.Buffered() < e.cfg.PublishBufferBytes*9/10
	left := 0
	for _, st := range list {
		st.mu.Lock()
		if st.t.ovOpen && (roomy || closeAll) {
			lastDropped := st.t.ov.ResumePrevID
			st.t.closeOverflow(time.Now().UnixNano())
			if st.kind == md.Diff {
				// The next event is not here yet; its U is at least the
				// last dropped u + 1 (exactly that on spot).
				defer e.requestSnapshot(st.sym, binance.BridgeMin(e.market, lastDropped+1))
			}
		}
		done := e.flushLocked(st) && !st.t.ovOpen
		if done {
			e.pendMu.Lock()
			delete(e.pendSet, st)
			e.pendMu.Unlock()
		} else {
			left += st.t.npend
		}
		st.mu.Unlock()
	}
	e.met.v.gapsPending.WithLabelValues(e.market.String()).Set(float64(left))
	return left
}

// flushAll runs at shutdown: it closes every open overflow and retries
// pending gap records until all are enqueued or ctx ends.
func (e *Engine) flushAll(ctx context.Context) error {
	e.mu.Lock()
	for _, s := range e.syms {
		for _, st := range s.streams() {
			st.mu.Lock()
			if st.t.ovOpen || st.t.npend > 0 {
				e.addPending(st)
			}
			st.mu.Unlock()
		}
	}
	e.mu.Unlock()
	for {
		left := e.retryPending(true)
		if left == 0 {
			return nil
		}
		if !sleep(ctx, 50*time.Millisecond) {
			e.log.Error("gap records could not be published before the shutdown deadline", zap.Int("records", left))
			return fmt.Errorf("publish %d gap records: %w", left, ctx.Err())
		}
	}
}

// maintain retries pending gap records and refreshes the gauges.
func (e *Engine) maintain(ctx context.Context) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	var tick int
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tick++
		e.retryPending(false)
		if tick%10 == 0 {
			b := float64(e.pub.Buffered())
			e.met.v.bufferBytes.WithLabelValues(e.market.String()).Set(b)
			e.met.v.bufferFill.WithLabelValues(e.market.String()).Set(b / float64(e.cfg.PublishBufferBytes))
		}
		if tick%50 == 0 {
			e.updateAges()
		}
	}
}

// updateAges sets the last-frame age gauges. Per-symbol gauges would be
// 2,000 symbols × 2 kinds × 2 markets = 8,000 series that churn with
// listings; the oldest age and the count of silent streams per market
// and kind say whether something is wrong, and the log names the
// silent symbols.
func (e *Engine) updateAges() {
	now := time.Now().UnixNano()
	e.mu.Lock()
	var maxAge [md.Gap + 1]float64
	var silent [md.Gap + 1][3]int
	var names []string
	for _, s := range e.syms {
		for _, st := range s.streams() {
			age := float64(now-st.lastFrameNs.Load()) / 1e9
			maxAge[st.kind] = max(maxAge[st.kind], age)
			for i, th := range silentThresholds {
				if age > th.secs {
					silent[st.kind][i]++
					if i == 1 && len(names) < 20 {
						names = append(names, st.name)
					}
				}
			}
		}
	}
	e.mu.Unlock()
	m := e.market.String()
	for _, k := range []md.Kind{md.Diff, md.Partial} {
		if k == md.Partial && e.cfg.PartialLevels == 0 {
			continue
		}
		e.met.v.ageMax.WithLabelValues(m, k.String()).Set(maxAge[k])
		for i, th := range silentThresholds {
			e.met.v.silent.WithLabelValues(m, k.String(), th.label).Set(float64(silent[k][i]))
		}
	}
	if len(names) > 0 {
		if ok, suppressed := e.logLimit.Allow("silent"); ok {
			e.log.Info("streams silent for over a minute", zap.Strings("streams", names), zap.Int("suppressed", suppressed))
		}
	}
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
