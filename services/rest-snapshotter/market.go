package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/pkg/symbols"
	"github.com/depthcap/depthcap/services/rest-snapshotter/internal/budget"
)

const (
	// maxBody bounds a depth answer; limit 5000 is about 0.5 MB.
	maxBody = 16 << 20
	// idleWait is how long the dispatcher sleeps when only a wake-up
	// (a finished request, a new on-demand request) can change anything.
	idleWait = time.Second
	// infoTimeout bounds an exchangeInfo or ticker request.
	infoTimeout = 30 * time.Second
	// defaultBan is the pause after a 418 without Retry-After: Binance's
	// shortest ban.
	defaultBan = 2 * time.Minute
	// onDemandLagAttempts bounds the snapshots taken for one on-demand
	// request whose min_update_id the REST API has not reached: after this
	// many, requested after the request arrived, it gets an error.
	onDemandLagAttempts = 3
	// onDemandLagDelay is the wait before the next snapshot after the
	// n-th lagging one: onDemandLagDelay × 2^(n-1), time for a REST API
	// behind the stream to catch up (about 0.6 s over the attempts).
	onDemandLagDelay = 200 * time.Millisecond
)

type jobState uint8

const (
	queued     jobState = iota // in demandQ or retryQ
	inFlight                   // REST request sent
	publishing                 // enqueued to JetStream, waiting for the ack
)

// waiter is an on-demand request waiting for a snapshot.
type waiter struct {
	reply string
	at    time.Time
	// minID is the request's min_update_id: a snapshot with a lower
	// lastUpdateId does not answer it (0: any snapshot does).
	minID int64
	// lagged counts the snapshots requested from the exchange after the
	// request arrived that came back below minID (the REST API behind the
	// stream); at onDemandLagAttempts the request gets an error.
	lagged int
}

// job is one snapshot of one symbol, from queue to JetStream ack. A
// symbol has at most one job at a time (market.busy).
type job struct {
	sym      string
	onDemand bool
	attempts int
	state    jobState
	sentAt   time.Time
	waiters  []waiter
	// after are on-demand requests that arrived while this job's request
	// was already older than SNAPSHOT_ONDEMAND_MIN_INTERVAL: they get the
	// next snapshot of the symbol.
	after []waiter
	// notBefore holds a queued on-demand job back: the retry of requests
	// whose last snapshot lagged their min_update_id.
	notBefore time.Time
}

// stored is the last snapshot of a symbol that JetStream acknowledged.
type stored struct {
	id     int64
	sentAt time.Time
	recvAt time.Time
}

// market runs one market's schedule: a dispatcher goroutine that paces
// requests, and one goroutine per request in flight.
type market struct {
	s        *Snapshotter
	m        md.Market
	name     string
	limit    int
	weight   int
	prof     binance.Profile
	spec     symbols.Spec
	shard    symbols.Shard
	depthURL string
	info     symbols.Client
	backoff  budget.Backoff
	wake     chan struct{}
	fetches  sync.WaitGroup

	mu         sync.Mutex
	ready      bool
	closed     bool
	plan       budget.Plan
	gov        *budget.Governor
	bucket     *budget.Bucket
	header     string   // X-MBX-USED-WEIGHT-<n><unit>
	selection  []string // the symbols of SYMBOLS before SHARD: on-demand serves these
	known      map[string]bool
	rotation   []string // selection after SHARD: the schedule
	missing    []string // listed symbols exchangeInfo does not know
	next       int      // rotation index of the next scheduled symbol
	due        time.Time
	pauseUntil time.Time
	banUntil   time.Time
	failures   int // consecutive 5xx, 403 and timeouts
	inflight   int
	busy       map[string]*job
	demandQ    []*job
	retryQ     []*job
	last       map[string]stored
	joined     map[string]time.Time // when a symbol joined the rotation
	backlogged bool
}

func newMarket(s *Snapshotter, m md.Market) (*market, error) {
	limit, weight, err := s.cfg.LimitFor(m)
	if err != nil {
		return nil, err
	}
	spec, err := s.cfg.Spec(m)
	if err != nil {
		return nil, svc.Invalid(symbolsVar(m, s.cfg.Selection), spec.String(), "a comma list like BTCUSDT,ETHUSDT, top:N, or all")
	}
	mk := &market{
		s: s, m: m, name: m.String(), limit: limit, weight: weight,
		prof: binance.ProfileFor(m), spec: spec, shard: s.cfg.ShardOf(),
		backoff: budget.Backoff{Min: s.cfg.RetryMin, Max: s.cfg.RetryMax},
		wake:    make(chan struct{}, 1),
		busy:    map[string]*job{},
		last:    map[string]stored{},
		joined:  map[string]time.Time{},
		known:   map[string]bool{},
	}
	mk.depthURL = strings.TrimRight(s.cfg.RESTURL(m), "/") + mk.prof.DepthPath
	mk.info = s.cfg.Client(m, &http.Client{Transport: infoTransport{mk}, Timeout: infoTimeout})
	return mk, nil
}

func symbolsVar(m md.Market, c symbols.Config) string {
	switch {
	case m == md.Spot && c.SpotSymbols != "":
		return "SPOT_SYMBOLS"
	case m == md.Futures && c.FuturesSymbols != "":
		return "FUTURES_SYMBOLS"
	}
	return "SYMBOLS"
}

func (mk *market) kick() {
	select {
	case mk.wake <- struct{}{}:
	default:
	}
}

func (mk *market) isReady() bool {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	return mk.ready
}

// run reads exchangeInfo (retrying until it succeeds), then dispatches
// requests until ctx ends. A configuration the exchange's limits cannot
// carry is reported on fatal.
func (mk *market) run(ctx, fetchCtx context.Context, fatal chan<- error) {
	if err := mk.init(ctx); err != nil {
		if ctx.Err() == nil {
			fatal <- err
		}
		return
	}
	var wg sync.WaitGroup
	if mk.s.cfg.SymbolsRefresh > 0 {
		wg.Go(func() { mk.refreshLoop(ctx) })
	}
	mk.dispatch(ctx, fetchCtx)
	wg.Wait()
}

// init reads exchangeInfo and sets up the schedule, retrying with backoff
// (and honouring Retry-After) until it succeeds or ctx ends.
func (mk *market) init(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := mk.load(ctx, true)
		if err == nil || errors.Is(err, svc.ErrConfig) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := mk.backoff.Delay(attempt)
		mk.mu.Lock()
		if p := time.Until(mk.pauseUntil); p > d {
			d = p
		}
		mk.mu.Unlock()
		if ok, n := mk.s.limit.Allow("info:" + mk.name); ok {
			mk.s.log.Warn("read exchangeInfo failed, retrying", zap.String("market", mk.name), zap.Int("attempt", attempt),
				zap.Duration("retry_in", d), zap.Int("suppressed", n), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

func (mk *market) refreshLoop(ctx context.Context) {
	t := time.NewTicker(mk.s.cfg.SymbolsRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mk.mu.Lock()
		paused := time.Now().Before(mk.pauseUntil)
		mk.mu.Unlock()
		if paused {
			continue
		}
		if err := mk.load(ctx, false); err != nil && ctx.Err() == nil {
			mk.s.log.Warn("refresh exchangeInfo failed; keeping the current schedule", zap.String("market", mk.name), zap.Error(err))
		}
	}
}

// load reads exchangeInfo (and the 24h ticker for top:N at start-up) and
// applies the rate limit and the symbol selection.
func (mk *market) load(ctx context.Context, first bool) error {
	info, err := mk.info.ExchangeInfo(ctx)
	if err != nil {
		return fmt.Errorf("%s exchangeInfo: %w", mk.name, err)
	}
	lim := budget.Limits{Limit: mk.prof.RESTWeightPerMinute, Window: time.Minute}
	header := "X-MBX-USED-WEIGHT-1M"
	if rl, ok := info.WeightLimit(); ok && rl.Limit > 0 && rl.Window() > 0 {
		lim = budget.Limits{Limit: rl.Limit, Window: rl.Window()}
		header = weightHeader(rl)
	} else if first {
		mk.s.log.Warn("exchangeInfo lists no REQUEST_WEIGHT limit; assuming the documented default",
			zap.String("market", mk.name), zap.Int("limit", lim.Limit), zap.Duration("window", lim.Window))
	}
	var sel, missing []string
	switch mk.spec.Mode {
	case symbols.List:
		exists := make(map[string]bool, len(info.Symbols))
		for _, si := range info.Symbols {
			exists[si.Symbol] = true
		}
		for _, sym := range mk.spec.Symbols {
			if exists[sym] {
				sel = append(sel, sym)
			} else {
				missing = append(missing, sym)
			}
		}
	case symbols.Top:
		if first {
			sel, err = mk.info.TopByQuoteVolume(ctx, mk.spec.N, info.Trading())
			if err != nil {
				return fmt.Errorf("%s top:%d: %w", mk.name, mk.spec.N, err)
			}
		} else {
			mk.mu.Lock()
			sel = mk.selection
			mk.mu.Unlock()
		}
	case symbols.All:
		sel = info.Trading()
	}
	rot := mk.shard.Filter(sel)
	plan, err := budget.NewPlan(len(rot), mk.weight, mk.s.cfg.Interval, lim, mk.s.cfg.Budget)
	if err != nil {
		return svc.Invalid("SNAPSHOT_BUDGET", mk.s.cfg.Budget, "a share of the %s weight limit (%d per %s) that carries at least one request of weight %d (limit %d)",
			mk.name, lim.Limit, lim.Window, mk.weight, mk.limit)
	}
	mk.apply(plan, header, sel, rot, missing)
	return nil
}

// weightHeader is X-MBX-USED-WEIGHT-<intervalNum><intervalLetter>.
func weightHeader(rl symbols.RateLimit) string {
	letter := "M"
	if rl.Interval != "" {
		letter = rl.Interval[:1]
	}
	return "X-MBX-USED-WEIGHT-" + strconv.Itoa(max(rl.IntervalNum, 1)) + letter
}

// apply installs a plan and a symbol selection.
func (mk *market) apply(plan budget.Plan, header string, sel, rot, missing []string) {
	now := time.Now()
	mk.mu.Lock()
	changed := !mk.ready || plan != mk.plan
	warnMissing := len(missing) > 0 && !slices.Equal(missing, mk.missing)
	mk.plan, mk.header, mk.missing = plan, header, missing
	if mk.gov == nil {
		mk.gov = budget.NewGovernor(plan.Limits, plan.Budget, mk.weight)
		mk.bucket = budget.NewBucket(mk.weight, now)
	} else {
		mk.gov.SetLimits(plan.Limits, plan.Budget)
	}
	// Keep the rotation's position across a change of the symbol list.
	switch {
	case len(rot) == 0:
		mk.next = 0
	case len(mk.rotation) > 0:
		if i := slices.Index(rot, mk.rotation[mk.next%len(mk.rotation)]); i >= 0 {
			mk.next = i
		} else {
			mk.next %= len(rot)
		}
	}
	known := make(map[string]bool, len(sel))
	for _, s := range sel {
		known[s] = true
	}
	var removed []string
	for _, s := range mk.rotation {
		if !slices.Contains(rot, s) {
			removed = append(removed, s)
			delete(mk.last, s)
			delete(mk.joined, s)
		}
	}
	for _, s := range rot {
		if _, ok := mk.joined[s]; !ok {
			mk.joined[s] = now
		}
	}
	mk.selection, mk.known, mk.rotation = sel, known, rot
	if !mk.ready {
		mk.due = now
	}
	mk.ready = true
	mk.mu.Unlock()

	met := mk.s.met
	for _, s := range removed {
		met.lastTimestamp.DeleteLabelValues(mk.name, s)
	}
	met.weightLimit.WithLabelValues(mk.name).Set(float64(plan.Limits.Limit))
	met.weightBudget.WithLabelValues(mk.name).Set(float64(plan.Budget))
	met.weightAllowed.WithLabelValues(mk.name).Set(float64(plan.Budget))
	met.weightWindow.WithLabelValues(mk.name).Set(plan.Limits.Window.Seconds())
	met.interval.WithLabelValues(mk.name).Set(plan.Interval.Seconds())
	met.effective.WithLabelValues(mk.name).Set(plan.Effective.Seconds())
	met.symbols.WithLabelValues(mk.name).Set(float64(len(rot)))
	met.banned.WithLabelValues(mk.name).Add(0)
	met.bans.WithLabelValues(mk.name).Add(0)
	if warnMissing {
		mk.s.log.Warn("listed symbols are unknown to the exchange and are not snapshotted",
			zap.String("market", mk.name), zap.Strings("symbols", missing))
	}
	if !changed {
		return
	}
	fields := []zap.Field{
		zap.String("market", mk.name), zap.Int("symbols", plan.Symbols), zap.Int("limit", mk.limit), zap.Int("weight", plan.Weight),
		zap.Int("budget", plan.Budget), zap.Int("weight_limit", plan.Limits.Limit), zap.Duration("window", plan.Limits.Window),
		zap.Duration("interval", plan.Interval), zap.Duration("effective_interval", plan.Effective), zap.Duration("spacing", plan.Spacing),
		zap.String("summary", plan.Summary(mk.name)),
	}
	if plan.Stretched() {
		mk.s.log.Warn("snapshot interval stretched to fit the weight budget", fields...)
	} else {
		mk.s.log.Info("snapshot schedule", fields...)
	}
}

// maxAge is depthcap_snapshot_max_age_seconds.
func (mk *market) maxAge() float64 {
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if !mk.ready || len(mk.rotation) == 0 {
		return 0
	}
	now := time.Now()
	oldest := now
	for _, s := range mk.rotation {
		t := mk.joined[s]
		if st, ok := mk.last[s]; ok {
			t = st.recvAt
		}
		if t.Before(oldest) {
			oldest = t
		}
	}
	return now.Sub(oldest).Seconds()
}
