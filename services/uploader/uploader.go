// Package uploader ships sealed files from DATA_DIR to S3-compatible
// object storage (R2, S3, versitygw, MinIO...).
//
// It consumes "file sealed" messages (depthcapv1.FileSealed) from the
// FILES work queue, uploads each file and its sidecars to
// <S3_PREFIX>/<path relative to DATA_DIR> with a full-object checksum,
// verifies every object with a HEAD (size and checksum) and only then
// acks the message and records the upload in its ledger. Local retention
// deletes a file only after its object was verified, and verifies it once
// more right before the deletion (DESIGN invariant 4). A scan of DATA_DIR
// at start-up and every UPLOAD_SCAN_INTERVAL uploads sealed files that
// have no verified upload, whether or not a message announced them.
//
// See README.md for the settings, the verification, the ledger and the
// conflict policy.
package uploader

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// ErrDisabled is returned by New when the configuration has no S3
// settings. Callers that embed the uploader (the all-in-one) check
// Config.Enabled first, or branch on this error with errors.Is.
var ErrDisabled = errors.New("uploader disabled: no S3 settings (S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY)")

const (
	// probeInterval is how often the store's reachability is checked for
	// /readyz while no upload reports on it.
	probeInterval = 15 * time.Second
	// maxScanBatch bounds the files one scan queues; the next scan picks
	// up the rest.
	maxScanBatch = 10000
	// missingMaxDeliveries is how often a message whose local file is
	// missing is handed back (with a delay, in case another uploader
	// holds the file) before it is terminated.
	missingMaxDeliveries = 5
)

// Uploader uploads sealed files. Build it with New, start it with Run.
type Uploader struct {
	cfg   Config
	conn  *bus.Conn
	log   *zap.Logger
	st    *store
	led   *ledger
	bl    *backlog
	m     *metrics
	scrub *strings.Replacer
	limit *svc.Limiter

	slots chan struct{} // UPLOAD_CONCURRENCY files at a time
	jobs  sync.WaitGroup

	mu       sync.Mutex
	inflight map[string]chan struct{} // files being worked on, by path

	storeErr     atomic.Pointer[error] // last store failure; nil when up
	started      atomic.Bool
	warnedNoCsum atomic.Bool
}

// Run is the uploader service: svc.Main calls it. Without S3 settings it
// logs "uploader disabled" once and idles until ctx ends (so a container
// with a restart policy does not loop), reporting ready. Otherwise it
// connects to NATS, provisions the streams, and runs an Uploader until ctx
// ends, then drains the connection.
func Run(ctx context.Context, cfg *Config, env svc.Env) error {
	if !cfg.Enabled() {
		if env.Registry != nil {
			env.Registry.MustRegister(enabledGauge(0))
		}
		env.Log.Info("uploader disabled",
			zap.String("reason", "no S3 settings: set S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY to upload sealed files"),
			zap.String("data_dir", cfg.DataDir))
		<-ctx.Done()
		return nil
	}
	conn, err := bus.Connect(ctx, cfg.Config, cfg.DataDir, "depthcap-uploader", env.Log)
	if err != nil {
		return err
	}
	stop := svc.NewStopper(env.Log)
	stop.Add("nats drain", conn.Drain)
	runErr := func() error {
		if err := bus.EnsureStreams(ctx, conn.JS, cfg.StreamConfig); err != nil {
			return fmt.Errorf("ensure streams: %w", err)
		}
		u, err := New(*cfg, conn, env)
		if err != nil {
			return err
		}
		return u.Run(ctx)
	}()
	stopErr := stop.Stop(cfg.ShutdownTimeout)
	if runErr != nil {
		return runErr
	}
	return stopErr
}

// New builds an Uploader on an existing NATS connection (the all-in-one
// shares its connection). It registers the depthcap_upload_* metrics in
// env.Registry and the "s3" and "nats" readiness checks in env.Health. It
// returns ErrDisabled when cfg has no S3 settings, and a *svc.ConfigError
// for invalid settings. It does not touch the network.
func New(cfg Config, conn *bus.Conn, env svc.Env) (*Uploader, error) {
	if !cfg.Enabled() {
		return nil, ErrDisabled
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if conn == nil || conn.JS == nil {
		return nil, errors.New("uploader: nil NATS connection")
	}
	st, err := newStore(&cfg)
	if err != nil {
		return nil, err
	}
	led := &ledger{root: filepath.Join(cfg.DataDir, LedgerDir)}
	if err := os.MkdirAll(led.root, 0o755); err != nil {
		return nil, fmt.Errorf("create ledger dir DATA_DIR/%s: %w", LedgerDir, err)
	}
	var pairs []string
	for _, s := range []string{cfg.SecretAccessKey.Value(), cfg.AccessKeyID.Value()} {
		if s != "" {
			pairs = append(pairs, s, redacted)
		}
	}
	u := &Uploader{
		cfg:      cfg,
		conn:     conn,
		log:      env.Log,
		st:       st,
		led:      led,
		scrub:    strings.NewReplacer(pairs...),
		limit:    svc.NewLimiter(10 * time.Second),
		slots:    make(chan struct{}, cfg.Concurrency),
		inflight: make(map[string]chan struct{}),
	}
	if u.log == nil {
		u.log = zap.NewNop()
	}
	u.bl = newBacklog(func(rel string) bool { return led.has(verifiedDir, rel) })
	reg := env.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	u.m = newMetrics(reg, u.bl)
	reg.MustRegister(enabledGauge(1))
	notChecked := errors.New("s3 not checked yet")
	u.storeErr.Store(&notChecked)
	if env.Health != nil {
		env.Health.AddCheck("s3", u.StoreReady)
		env.Health.AddCheck("nats", conn.Ready)
	}
	return u, nil
}

func enabledGauge(v float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "depthcap_upload_enabled",
		Help: "1 when the uploader has S3 settings and runs, 0 when it is off.",
	}, func() float64 { return v })
}

// StoreReady is the "s3" readiness check: nil when the last store request
// succeeded. Its error names the setting to check when the store rejected
// the configuration, and never contains a secret.
func (u *Uploader) StoreReady() error {
	if p := u.storeErr.Load(); p != nil {
		return u.safe(*p)
	}
	return nil
}

// Run uploads until ctx ends: it consumes the FILES work queue, scans
// DATA_DIR at start and every UPLOAD_SCAN_INTERVAL, applies
// LOCAL_RETENTION and probes the store. Store outages are waited out with
// backoff; Run returns nil after an ordered stop: no new work, in-flight
// files get up to SHUTDOWN_TIMEOUT/2 to finish (their messages are acked),
// the rest are cancelled and their messages handed back (nak).
func (u *Uploader) Run(ctx context.Context) error {
	if !u.started.CompareAndSwap(false, true) {
		return errors.New("uploader: Run called twice")
	}
	u.log.Info("uploader started",
		zap.String("endpoint", u.st.endpoint),
		zap.String("bucket", u.st.bucket),
		zap.String("prefix", u.st.prefix),
		zap.String("checksum", u.st.ct.String()),
		zap.Int("concurrency", u.cfg.Concurrency),
		zap.Stringer("part_size", u.cfg.PartSize),
		zap.Duration("local_retention", u.cfg.LocalRetention),
		zap.String("data_dir", u.cfg.DataDir))

	// work outlives ctx by the shutdown grace so that uploads in flight
	// can finish and be acked.
	work, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()

	var loops sync.WaitGroup
	batches := make(chan []localFile, 1)
	loops.Add(4)
	go func() { defer loops.Done(); u.probeLoop(ctx) }()
	go func() { defer loops.Done(); u.scanLoop(ctx, batches) }()
	go func() { defer loops.Done(); u.dispatchLoop(ctx, work, batches) }()
	go func() { defer loops.Done(); u.consumeLoop(ctx, work) }()
	<-ctx.Done()
	loops.Wait()

	done := make(chan struct{})
	go func() { u.jobs.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(u.cfg.ShutdownTimeout / 2):
		u.log.Warn("cancelling uploads in flight", zap.Duration("after", u.cfg.ShutdownTimeout/2))
		cancelWork()
		<-done
	}
	u.log.Info("uploader stopped")
	return nil
}

// consumeLoop reads the FILES work queue, re-creating the consumer when
// it goes away, until ctx ends.
func (u *Uploader) consumeLoop(ctx, work context.Context) {
	for attempt := 0; ; attempt++ {
		start := time.Now()
		err := u.consume(ctx, work)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > u.cfg.RetryMax {
			attempt = 0 // it worked for a while: start the backoff over
		}
		if ok, n := u.limit.Allow("consume"); ok {
			u.log.Warn("files consumer stopped; retrying", zap.Error(err), zap.Int("suppressed", n))
		}
		if !sleep(ctx, u.backoff(attempt)) {
			return
		}
	}
}

// ConsumerConfig is the FILES consumer the uploader creates or updates.
// MaxAckPending equals UPLOAD_CONCURRENCY, so the server never hands out
// more messages than there are upload slots: every delivered message is
// owned (and kept in progress) from the moment it arrives, and a stalled
// store stalls delivery instead of piling up redeliveries.
func (c *Settings) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Consumer,
		Description:   "depthcap uploader: sealed files to object storage",
		FilterSubject: md.FilesFilter,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxAckPending: c.Concurrency,
		MaxDeliver:    -1,
	}
}

func (u *Uploader) consume(ctx, work context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := u.conn.JS.CreateOrUpdateConsumer(cctx, md.StreamFiles, u.cfg.ConsumerConfig())
	cancel()
	if err != nil {
		return fmt.Errorf("create consumer %s on stream %s: %w", u.cfg.Consumer, md.StreamFiles, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(u.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", md.StreamFiles, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return fmt.Errorf("next message from %s: %w", md.StreamFiles, err)
		}
		// Every delivered message is owned and kept alive at once, even
		// while it waits for an upload slot (held by scan jobs, say): the
		// server delivers at most MaxAckPending = UPLOAD_CONCURRENCY of
		// them, so this loop never leaves one unwatched in the buffer.
		stopHB := u.keepInProgress(msg)
		u.jobs.Add(1)
		go func() {
			defer u.jobs.Done()
			defer stopHB()
			if !u.acquire(ctx) {
				u.settle(work, msg, "nak", "")
				return
			}
			defer u.release()
			u.handleMessage(ctx, work, msg)
		}()
	}
}

// keepInProgress tells the server every AckWait/3 that msg is being
// worked on, so a long upload or a store outage does not trigger a
// redelivery. It returns the function that stops it.
func (u *Uploader) keepInProgress(msg jetstream.Msg) func() {
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(u.cfg.AckWait / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					u.log.Debug("in-progress ack failed", zap.String("subject", msg.Subject()), zap.Error(err))
				}
			}
		}
	}()
	return func() { close(stop); <-done }
}

func (u *Uploader) acquire(ctx context.Context) bool {
	select {
	case u.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (u *Uploader) release() { <-u.slots }

// lock serializes work on one file between the scan, messages and
// retention.
func (u *Uploader) lock(ctx context.Context, rel string) (func(), error) {
	for {
		u.mu.Lock()
		ch, busy := u.inflight[rel]
		if !busy {
			ch = make(chan struct{})
			u.inflight[rel] = ch
			u.mu.Unlock()
			return func() {
				u.mu.Lock()
				delete(u.inflight, rel)
				u.mu.Unlock()
				close(ch)
			}, nil
		}
		u.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// tryLock is lock without waiting.
func (u *Uploader) tryLock(rel string) (func(), bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, busy := u.inflight[rel]; busy {
		return nil, false
	}
	ch := make(chan struct{})
	u.inflight[rel] = ch
	return func() {
		u.mu.Lock()
		delete(u.inflight, rel)
		u.mu.Unlock()
		close(ch)
	}, true
}

func (u *Uploader) busy(rel string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	_, ok := u.inflight[rel]
	return ok
}

// backoff is exponential from UPLOAD_RETRY_MIN, capped at
// UPLOAD_RETRY_MAX, with full jitter: uniform in [0, cap].
func (u *Uploader) backoff(attempt int) time.Duration {
	d := u.cfg.RetryMax
	if attempt < 40 {
		if e := u.cfg.RetryMin << attempt; e > 0 && e < d {
			d = e
		}
	}
	return rand.N(d + 1)
}

// sleep waits d or until ctx ends; it reports whether it slept.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// probeLoop keeps the "s3" readiness check and depthcap_upload_store_up
// current while no upload reports on the store.
func (u *Uploader) probeLoop(ctx context.Context) {
	for {
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := u.st.probe(pctx)
		cancel()
		if ctx.Err() != nil {
			return
		}
		u.noteStore(err)
		if err != nil {
			u.logStoreError("s3 probe failed", err, classify(err))
		}
		if !sleep(ctx, probeInterval) {
			return
		}
	}
}

// noteStore records the outcome of a store request for readiness.
func (u *Uploader) noteStore(err error) {
	if err == nil {
		u.storeErr.Store(nil)
		u.m.storeUp.Set(1)
		return
	}
	u.storeErr.Store(&err)
	u.m.storeUp.Set(0)
}

// logStoreError logs a store failure at most once per 10s per class:
// errors an operator must fix (credentials, region, bucket) at error
// level, outages at warn.
func (u *Uploader) logStoreError(msg string, err error, class errClass) {
	ok, n := u.limit.Allow("store." + class.String())
	if !ok {
		return
	}
	fields := []zap.Field{zap.String("class", class.String()), zap.Error(u.safe(err)), zap.Int("suppressed", n)}
	if class == classTransient {
		u.log.Warn(msg, fields...)
	} else {
		u.log.Error(msg, fields...)
	}
}

// safe removes the keys from an error's text, whatever produced it.
func (u *Uploader) safe(err error) error {
	if err == nil {
		return nil
	}
	s := err.Error()
	if r := u.scrub.Replace(s); r != s {
		return &scrubbedError{msg: r, err: err}
	}
	return err
}

type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
