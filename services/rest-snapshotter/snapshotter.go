// Package snapshotter is depthcap's rest-snapshotter: it takes full-depth
// REST order-book snapshots (/api/v3/depth, /fapi/v1/depth) of every
// captured symbol on a schedule that fits the exchange's request-weight
// budget, serves on-demand snapshot requests (ctl.snapshot.<market>.<SYMBOL>),
// and publishes each answer, body untouched, in an envelope to
// md.binance.<market>.snapshot.<SYMBOL> with the dedup id
// <market>.snapshot.<SYMBOL>.<lastUpdateId>.
//
// Per market, a dispatcher paces requests with a token bucket at the
// budget's rate, lowered while other clients on the same IP use weight
// (read from X-MBX-USED-WEIGHT-<window>); 429 pauses every request of the
// market for Retry-After, 418 stops them until the ban ends and raises
// depthcap_snapshot_ip_banned; 5xx, 403 and timeouts back off
// exponentially with jitter. The arithmetic lives in internal/budget; the
// rules are in README.md.
package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// Service is the service name: metrics label, dead-letter subject
// (dlq.rest-snapshotter.<market>.snapshot) and NATS connection name.
const Service = "rest-snapshotter"

// QueueGroup is the NATS queue group of the on-demand subscriptions:
// replicas share the requests, each is answered by one of them.
const QueueGroup = "rest-snapshotter"

// Snapshotter takes REST snapshots of the configured markets. Build it
// with New, start it with Run.
type Snapshotter struct {
	cfg    Config
	conn   *bus.Conn
	log    *zap.Logger
	met    *metrics
	pubMet *bus.PublisherMetrics
	limit  *svc.Limiter
	hc     *http.Client
	tr     *http.Transport
	source string

	markets map[md.Market]*market
	order   []*market

	pubMu sync.RWMutex
	pub   *bus.Publisher // set by Run
}

// Run is the rest-snapshotter service: svc.Main calls it. It connects to
// NATS, provisions the streams and runs a Snapshotter until ctx ends,
// then drains the connection.
func Run(ctx context.Context, cfg *Config, env svc.Env) error {
	conn, err := bus.Connect(ctx, cfg.Config, cfg.DataDir, "depthcap-"+Service, env.Log)
	if err != nil {
		return err
	}
	stop := svc.NewStopper(env.Log)
	stop.Add("nats drain", conn.Drain)
	runErr := func() error {
		if err := bus.EnsureStreams(ctx, conn.JS, cfg.StreamConfig); err != nil {
			return fmt.Errorf("ensure streams: %w", err)
		}
		s, err := New(*cfg, conn, env)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	}()
	stopErr := stop.Stop(cfg.ShutdownTimeout)
	if runErr != nil {
		return runErr
	}
	return stopErr
}

// New builds a Snapshotter on an existing NATS connection (the all-in-one
// shares its connection). It validates cfg (a *svc.ConfigError names the
// variable), registers the depthcap_snapshot_* metrics in env.Registry and
// the "nats" and "exchange" readiness checks in env.Health. It does not
// touch the network.
func New(cfg Config, conn *bus.Conn, env svc.Env) (*Snapshotter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil || conn.NC == nil || conn.JS == nil {
		return nil, errors.New("rest-snapshotter: nil NATS connection")
	}
	log := env.Log
	if log == nil {
		log = zap.NewNop()
	}
	reg := env.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		ResponseHeaderTimeout: cfg.RequestTimeout,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          4 * cfg.MaxInflight,
		MaxIdleConnsPerHost:   cfg.MaxInflight + 1,
		ExpectContinueTimeout: time.Second,
	}
	s := &Snapshotter{
		cfg:     cfg,
		conn:    conn,
		log:     log,
		met:     newMetrics(reg),
		pubMet:  bus.NewPublisherMetrics(reg, Service),
		limit:   svc.NewLimiter(10 * time.Second),
		hc:      &http.Client{Transport: tr},
		tr:      tr,
		source:  cfg.Source(),
		markets: map[md.Market]*market{},
	}
	for _, m := range cfg.MarketList() {
		mk, err := newMarket(s, m)
		if err != nil {
			return nil, err
		}
		s.markets[m] = mk
		s.order = append(s.order, mk)
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "depthcap_snapshot_max_age_seconds",
			Help:        "Age of the oldest last snapshot over the market's symbols (time since start for a symbol without one).",
			ConstLabels: prometheus.Labels{"market": m.String()},
		}, mk.maxAge))
	}
	if env.Health != nil {
		env.Health.AddCheck("nats", conn.Ready)
		env.Health.AddCheck("exchange", s.exchangeReady)
	}
	return s, nil
}

// exchangeReady is nil once every market has read exchangeInfo and has
// its schedule.
func (s *Snapshotter) exchangeReady() error {
	for _, mk := range s.order {
		if !mk.isReady() {
			return fmt.Errorf("%s: exchangeInfo not read yet", mk.name)
		}
	}
	return nil
}

func (s *Snapshotter) publisher() *bus.Publisher {
	s.pubMu.RLock()
	defer s.pubMu.RUnlock()
	return s.pub
}

// Run snapshots until ctx ends, then stops in order under
// SHUTDOWN_TIMEOUT: no new on-demand requests, no new REST requests,
// in-flight requests finish (or are cancelled at half the timeout),
// waiting on-demand requests without a snapshot are answered with an
// error, the publisher is flushed (their snapshots' requests are answered
// as they are stored). It returns nil after an ordered stop; it does not
// drain the NATS connection, which belongs to the caller.
func (s *Snapshotter) Run(ctx context.Context) error {
	pub, err := bus.NewPublisher(s.conn.NC, bus.PublisherConfig{
		MaxBytes:   s.cfg.PublishBuffer,
		MaxPending: 256,
		AckTimeout: 10 * time.Second,
	}, s.pubMet, s.log)
	if err != nil {
		return fmt.Errorf("start publisher: %w", err)
	}
	s.pubMu.Lock()
	s.pub = pub
	s.pubMu.Unlock()

	var subs []*nats.Subscription
	for _, mk := range s.order {
		sub, err := s.conn.NC.QueueSubscribe(md.ControlFilter(mk.m), QueueGroup, s.handleControl)
		if err != nil {
			for _, sb := range subs {
				_ = sb.Unsubscribe()
			}
			_ = pub.Close(context.Background())
			return fmt.Errorf("subscribe %s: %w", md.ControlFilter(mk.m), err)
		}
		subs = append(subs, sub)
	}

	fetchCtx, cancelFetch := context.WithCancel(context.Background())
	defer cancelFetch()
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	fatal := make(chan error, len(s.order))
	var loops sync.WaitGroup
	for _, mk := range s.order {
		loops.Go(func() { mk.run(runCtx, fetchCtx, fatal) })
	}
	s.log.Info("rest-snapshotter running", zap.Strings("markets", marketNames(s.order)), zap.String("source", s.source))
	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-fatal:
	}
	cancelRun()

	stop := svc.NewStopper(s.log)
	stop.Add("on-demand subscriptions", func(ctx context.Context) error {
		for _, sub := range subs {
			if err := sub.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
				return fmt.Errorf("drain %s: %w", sub.Subject, err)
			}
		}
		return waitSubsClosed(ctx, subs)
	})
	stop.Add("dispatchers", func(ctx context.Context) error { return waitGroup(ctx, &loops) })
	stop.Add("in-flight requests", func(ctx context.Context) error {
		d, ok := ctx.Deadline()
		grace := ctx
		if ok {
			var cancel context.CancelFunc
			grace, cancel = context.WithTimeout(ctx, time.Until(d)/2)
			defer cancel()
		}
		if s.waitFetches(grace) == nil {
			return nil
		}
		cancelFetch() // past half the timeout: give up on slow answers
		return s.waitFetches(ctx)
	})
	stop.Add("queued on-demand requests", func(context.Context) error {
		for _, mk := range s.order {
			mk.close()
		}
		return nil
	})
	stop.Add("publisher", pub.Close)
	stop.Add("unanswered on-demand requests", func(context.Context) error {
		for _, mk := range s.order {
			mk.failAll("shutting down")
		}
		s.tr.CloseIdleConnections()
		return nil
	})
	stopErr := stop.Stop(s.cfg.ShutdownTimeout)
	if runErr != nil {
		return runErr
	}
	return stopErr
}

func (s *Snapshotter) waitFetches(ctx context.Context) error {
	for _, mk := range s.order {
		if err := waitGroup(ctx, &mk.fetches); err != nil {
			return fmt.Errorf("%s: %w", mk.name, err)
		}
	}
	return nil
}

func waitGroup(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait: %w", ctx.Err())
	}
}

func waitSubsClosed(ctx context.Context, subs []*nats.Subscription) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		open := false
		for _, sub := range subs {
			if sub.IsValid() {
				open = true
			}
		}
		if !open {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("drain on-demand subscriptions: %w", ctx.Err())
		case <-t.C:
		}
	}
}

func marketNames(ms []*market) []string {
	out := make([]string, len(ms))
	for i, mk := range ms {
		out[i] = mk.name
	}
	return out
}
