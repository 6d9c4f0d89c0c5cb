// Package allinone runs the whole pipeline in one process: an embedded
// NATS server (or NATS_URL), spot-ws, futures-ws, rest-snapshotter, writer
// and uploader, sharing one connection; with Demo, an embedded
// binance-sim feeds them instead of Binance.
package allinone

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
	"github.com/depthcap/depthcap/services/uploader"
	"github.com/depthcap/depthcap/services/writer"
)

// Config holds the all-in-one's own settings; every service reads its own
// variables as it would alone (they share NATS_*, DATA_DIR, SYMBOLS...).
type Config struct {
	svc.Base
	DataDir  string        `envconfig:"DATA_DIR" default:"./data" desc:"root of everything: Parquet files, writer state, the embedded NATS store (DATA_DIR/nats)"`
	Duration time.Duration `envconfig:"DURATION" desc:"stop cleanly after this long (run, demo); 0 runs until Ctrl-C"`
	Markets  string        `envconfig:"MARKETS" default:"spot,futures" desc:"markets the all-in-one captures (run, demo)"`
	Progress time.Duration `envconfig:"PROGRESS_INTERVAL" default:"5s" desc:"how often run and demo print a progress line; 0 turns it off"`
	// Demo settings.
	Replay     string `envconfig:"REPLAY" desc:"demo: replay these recordings (comma list of *.rec.gz) instead of the synthetic market"`
	DemoFaults bool   `envconfig:"DEMO_FAULTS" desc:"demo: let the simulator drop connections and skip sequence ranges (off unless 1)"`
}

// Validate checks the settings.
func (c *Config) Validate() error {
	if err := c.Base.Validate(); err != nil {
		return err
	}
	if c.Duration < 0 {
		return svc.Invalid("DURATION", c.Duration, "a duration >= 0, e.g. 10m; 0 runs until Ctrl-C")
	}
	if c.Progress < 0 {
		return svc.Invalid("PROGRESS_INTERVAL", c.Progress, "a duration >= 0")
	}
	if _, err := c.markets(); err != nil {
		return err
	}
	return nil
}

func (c *Config) markets() ([]md.Market, error) {
	var out []md.Market
	for _, s := range strings.Split(c.Markets, ",") {
		m, err := md.ParseMarket(strings.TrimSpace(s))
		if err != nil {
			return nil, svc.Invalid("MARKETS", c.Markets, "a comma list of spot, futures")
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, svc.Invalid("MARKETS", c.Markets, "a comma list of spot, futures")
	}
	return out, nil
}

// Services are the service configurations, each loaded from the
// environment as the service alone would.
type Services struct {
	Ingest      ingest.Config
	Snapshotter snapshotter.Config
	Writer      writer.Config
	Uploader    uploader.Config
	Sim         binancesim.Config // demo only
}

type ingestConfig struct{ ingest.Config }

func (c *ingestConfig) Validate() error {
	if err := c.ValidateFor(md.Spot); err != nil {
		return err
	}
	return c.ValidateFor(md.Futures)
}

// Load reads the all-in-one's and every service's configuration.
func Load(demo bool) (Config, Services, error) {
	var c Config
	var s Services
	if err := svc.Load(&c); err != nil {
		return c, s, err
	}
	ic := ingestConfig{ingest.DefaultConfig()}
	if err := svc.Load(&ic); err != nil {
		return c, s, err
	}
	s.Ingest = ic.Config
	for _, v := range []svc.Validator{&s.Snapshotter, &s.Writer, &s.Uploader} {
		if err := svc.Load(v); err != nil {
			return c, s, err
		}
	}
	if demo {
		if err := svc.Load(&s.Sim); err != nil {
			return c, s, err
		}
	}
	return c, s, nil
}

// Run runs the pipeline until ctx ends or Duration passes. With demo, an
// embedded simulator replaces Binance.
func Run(ctx context.Context, c Config, s Services, demo bool, env svc.Env) error {
	log := env.Log
	markets, _ := c.markets()
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	// One DATA_DIR for all.
	s.Ingest.DataDir, s.Snapshotter.DataDir, s.Writer.DataDir, s.Uploader.DataDir = c.DataDir, c.DataDir, c.DataDir, c.DataDir

	var sim *binancesim.Sim
	if demo {
		var err error
		if sim, err = startSim(c, &s, log); err != nil {
			return err
		}
		defer func() { _ = sim.Close() }()
		markets = simMarkets(sim, markets)
	}

	conn, err := bus.Connect(ctx, s.Writer.Config, c.DataDir, "depthcap", log, ingest.NATSOptions()...)
	if err != nil {
		return err
	}
	defer conn.Close()
	env.Health.AddCheck("nats", conn.Ready)
	if err := bus.EnsureStreams(ctx, conn.JS, s.Writer.StreamConfig); err != nil {
		return err
	}

	// Build every service before starting any, so a bad setting stops the
	// whole process before it captures anything.
	var engines []*ingest.Engine
	for _, m := range markets {
		e, err := ingest.New(s.Ingest, m, conn, env, ingest.Options{})
		if err != nil {
			return err
		}
		engines = append(engines, e)
	}
	s.Snapshotter.Markets = strings.Join(marketNames(markets), ",")
	snap, err := snapshotter.New(s.Snapshotter, conn, env)
	if err != nil {
		return err
	}
	w, err := writer.New(s.Writer, conn, env)
	if err != nil {
		return err
	}
	up, err := uploader.New(s.Uploader, conn, env)
	switch {
	case errors.Is(err, uploader.ErrDisabled):
		log.Info("uploader off: no S3 settings (set S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY to ship files)")
		up = nil
	case err != nil:
		return err
	}

	// Each stage runs under its own context so shutdown can go in order:
	// collectors first (they flush their buffers), then the writer once it
	// has caught up, then the uploader, then NATS.
	collectCtx, stopCollect := context.WithCancel(context.Background())
	writeCtx, stopWrite := context.WithCancel(context.Background())
	uploadCtx, stopUpload := context.WithCancel(context.Background())
	defer stopCollect()
	defer stopWrite()
	defer stopUpload()

	var collectors, writers, uploaders sync.WaitGroup
	errs := make(chan error, 8)
	start := func(wg *sync.WaitGroup, name string, run func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	start(&writers, "writer", func() error { return w.Run(writeCtx) })
	if up != nil {
		start(&uploaders, "uploader", func() error { return up.Run(uploadCtx) })
	}
	start(&collectors, "rest-snapshotter", func() error { return snap.Run(collectCtx) })
	for i, e := range engines {
		start(&collectors, ingest.ServiceName(markets[i]), func() error { return e.Run(collectCtx) })
	}
	log.Info("depthcap running", zap.String("data_dir", c.DataDir), zap.Strings("markets", marketNames(markets)),
		zap.Bool("demo", demo), zap.Bool("uploader", up != nil), zap.Duration("duration", c.Duration))

	var replayDone <-chan struct{}
	if sim != nil && sim.Config().Mode == binancesim.ModeReplay {
		replayDone = sim.ReplayDone()
	}
	progress := newProgress(env.Registry)
	var tick <-chan time.Time
	if c.Progress > 0 {
		t := time.NewTicker(c.Progress)
		defer t.Stop()
		tick = t.C
	}
	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err := <-errs:
			runErr = err
			break loop
		case <-replayDone:
			// The sim has handed the last frame to its sockets; wait until
			// the collectors have read everything before stopping them.
			log.Info("replay finished: stopping once everything is received and written")
			waitQuiet(ctx, env.Registry, "depthcap_ingest_frames_total", time.Second, 30*time.Second)
			break loop
		case <-tick:
			progress.log(log)
		}
	}

	// Ordered shutdown under one timeout.
	deadline := time.Now().Add(c.ShutdownTimeout)
	sctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	log.Info("stopping: collectors")
	stopCollect()
	collectors.Wait()
	log.Info("stopping: writer catches up with the stream")
	if err := waitCaughtUp(sctx, conn, env.Registry, log); err != nil {
		log.Warn("writer did not catch up before the shutdown timeout; the rest stays in JetStream for the next start", zap.Error(err))
	}
	stopWrite()
	writers.Wait()
	stopUpload()
	uploaders.Wait()
	progress.log(log)
	if err := conn.Drain(sctx); err != nil {
		log.Warn("nats drain", zap.Error(err))
	}
	close(errs)
	for err := range errs {
		runErr = errors.Join(runErr, err)
	}
	return runErr
}

func marketNames(ms []md.Market) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}

// waitCaughtUp waits until the writer has processed the stream's last
// message, so that a clean stop leaves every captured frame checkpointed.
func waitCaughtUp(ctx context.Context, conn *bus.Conn, reg *prometheus.Registry, log *zap.Logger) error {
	st, err := conn.JS.Stream(ctx, md.StreamMarketData)
	if err != nil {
		return err
	}
	for {
		info, err := st.Info(ctx)
		if err != nil {
			return err
		}
		last := info.State.LastSeq
		done := gaugeValue(reg, "depthcap_writer_processed_seq")
		if uint64(done) >= last {
			log.Info("writer caught up", zap.Uint64("stream_seq", last))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("writer at %d of %d: %w", uint64(done), last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitQuiet waits until metric name has not changed for quiet, at most max.
func waitQuiet(ctx context.Context, reg prometheus.Gatherer, name string, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	last, since := gaugeValue(reg, name), time.Now()
	for time.Now().Before(deadline) && time.Since(since) < quiet {
		select {
		case <-ctx.Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		if v := gaugeValue(reg, name); v != last {
			last, since = v, time.Now()
		}
	}
}

// gaugeValue sums a metric family's values (0 if absent).
func gaugeValue(reg prometheus.Gatherer, name string) float64 {
	mfs, err := reg.Gather()
	if err != nil {
		return 0
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return sum(mf)
		}
	}
	return 0
}

func sum(mf *dto.MetricFamily) float64 {
	var v float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.GetCounter() != nil:
			v += m.GetCounter().GetValue()
		case m.GetGauge() != nil:
			v += m.GetGauge().GetValue()
		}
	}
	return v
}

// progress prints what a person watching wants to see.
type progress struct {
	reg    prometheus.Gatherer
	last   time.Time
	frames float64
}

func newProgress(reg prometheus.Gatherer) *progress {
	return &progress{reg: reg, last: time.Now()}
}

func (p *progress) log(log *zap.Logger) {
	vals := map[string]float64{}
	mfs, err := p.reg.Gather()
	if err != nil {
		return
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "depthcap_") {
			vals[mf.GetName()] = sum(mf)
		}
	}
	now := time.Now()
	frames := vals["depthcap_ingest_frames_total"]
	rate := (frames - p.frames) / math.Max(now.Sub(p.last).Seconds(), 0.001)
	p.last, p.frames = now, frames
	log.Info("progress",
		zap.Int("frames_per_s", int(rate)),
		zap.Int("frames", int(frames)),
		zap.Int("streams", int(vals["depthcap_ingest_streams"])),
		zap.Int("silent_streams", int(vals["depthcap_ingest_silent_streams"])),
		zap.Int("connections", int(vals["depthcap_ingest_connections"])),
		zap.Int("gaps", int(vals["depthcap_ingest_gaps_total"])),
		zap.Int("snapshots", int(vals["depthcap_snapshot_snapshots_total"])),
		zap.Int("rows", int(vals["depthcap_writer_rows_total"])),
		zap.Int("writer_lag", int(vals["depthcap_writer_consumer_lag"])),
		zap.Int("files_sealed", int(vals["depthcap_writer_sealed_files_total"])),
		zap.Int("uploaded", int(vals["depthcap_upload_files_total"])),
	)
}
