package snapshotter_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
)

// newSim starts a simulator on free loopback ports; mut adjusts it.
func newSim(t testing.TB, mut func(*binancesim.Config)) *binancesim.Sim {
	t.Helper()
	cfg := binancesim.DefaultConfig()
	cfg.SpotAddr, cfg.FuturesAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Symbols = "10"
	cfg.BookLevels = 1100
	cfg.ActivityMax = 50
	cfg.ActivityMin = 5 // every symbol changes between two snapshots: no dedup hits hide a request
	if mut != nil {
		mut(&cfg)
	}
	s, err := binancesim.New(cfg, binancesim.Options{Log: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))})
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
	})
	return s
}

// baseConfig is the default configuration pointed at sim, for one market
// unless markets says otherwise.
func baseConfig(sim *binancesim.Sim, markets string) snapshotter.Config {
	cfg := snapshotter.DefaultConfig()
	cfg.SpotRESTURL = sim.RESTURL(md.Spot)
	cfg.FuturesRESTURL = sim.RESTURL(md.Futures)
	cfg.SourceID = "test-source"
	cfg.Symbols = "all"
	cfg.Markets = markets
	cfg.SymbolsRefresh = 0
	cfg.RetryMin = 100 * time.Millisecond
	cfg.RetryMax = 2 * time.Second
	cfg.ShutdownTimeout = 10 * time.Second
	return cfg
}

// world is one running snapshotter with its NATS server and observers.
type world struct {
	t    *testing.T
	cfg  snapshotter.Config
	nc   *nats.Conn
	js   jetstream.JetStream
	reg  *prometheus.Registry
	logs *observer.ObservedLogs
	hlth *svc.Health
	stop func() error
}

// natsServer starts an embedded JetStream server and returns its URL.
func natsServer(t *testing.T) string {
	t.Helper()
	return bustest.RunServer(t).ClientURL()
}

// start runs a snapshotter with cfg against the NATS server at url (a
// new one when empty) until the test ends.
func start(t *testing.T, cfg snapshotter.Config, url string) *world {
	t.Helper()
	if url == "" {
		url = natsServer(t)
	}
	cfg.URL = url
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(zapcore.NewTee(core, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Core()))
	ctx, cancel := context.WithCancel(context.Background())
	conn, err := bus.Connect(ctx, cfg.Config, t.TempDir(), "test-snapshotter", log)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	if err := bus.EnsureStreams(ctx, conn.JS, cfg.StreamConfig); err != nil {
		t.Fatalf("ensure streams: %v", err)
	}
	w := &world{t: t, cfg: cfg, reg: prometheus.NewRegistry(), logs: logs, hlth: svc.NewHealth()}
	s, err := snapshotter.New(cfg, conn, svc.Env{Log: log, Registry: w.reg, Health: w.hlth})
	if err != nil {
		t.Fatalf("new snapshotter: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	w.stop = func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		var err error
		select {
		case err = <-done:
		case <-time.After(30 * time.Second):
			err = errors.New("snapshotter did not stop within 30s")
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		_ = conn.Drain(dctx)
		return err
	}
	t.Cleanup(func() {
		if err := w.stop(); err != nil {
			t.Errorf("snapshotter stop: %v", err)
		}
	})
	w.nc = bustest.Connect(t, url)
	w.js = bustest.JetStream(t, w.nc)
	return w
}

// waitReady waits until the snapshotter has read exchangeInfo.
func (w *world) waitReady() {
	w.t.Helper()
	waitFor(w.t, 20*time.Second, "snapshotter ready", func() bool { return len(w.hlth.Ready()) == 0 })
}

// waitFor polls cond every 20ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric sums the values of the series of name whose labels include
// labels (counter, gauge, or a histogram's sample count).
func (w *world) metric(name string, labels map[string]string) float64 {
	w.t.Helper()
	return gather(w.t, w.reg, name, labels)
}

func gather(t testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return sum
}

func hasLabels(m *dto.Metric, want map[string]string) bool {
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// snap is one stored snapshot.
type snap struct {
	env   envelope.Envelope
	msgID string
	seq   uint64
}

// snapshots reads every stored snapshot of market m (all symbols).
func (w *world) snapshots(m md.Market) []snap {
	w.t.Helper()
	out := []snap{}
	for _, msg := range streamMessages(w.t, w.js, md.StreamMarketData, "md.binance."+m.String()+".snapshot.>") {
		var e envelope.Envelope
		if err := envelope.Unmarshal(msg.Data(), &e); err != nil {
			w.t.Fatalf("stored message %s is not an envelope: %v", msg.Subject(), err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			w.t.Fatal(err)
		}
		out = append(out, snap{env: e, msgID: msg.Headers().Get(jetstream.MsgIDHeader), seq: meta.Sequence.Stream})
	}
	return out
}

// streamMessages reads every message of stream matching filter, in
// order: an ephemeral consumer tells how many there are, so the read
// never waits for more.
func streamMessages(t testing.TB, js jetstream.JetStream, stream, filter string) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatalf("stream %s: %v", stream, err)
	}
	c, err := s.CreateConsumer(ctx, jetstream.ConsumerConfig{FilterSubject: filter, AckPolicy: jetstream.AckNonePolicy,
		DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute})
	if err != nil {
		t.Fatalf("consumer on %s: %v", filter, err)
	}
	defer func() { _ = s.DeleteConsumer(context.Background(), c.CachedInfo().Name) }()
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for left := int(info.NumPending); left > 0; {
		batch, err := c.Fetch(min(left, 1000), jetstream.FetchMaxWait(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for msg := range batch.Messages() {
			out = append(out, msg)
			n++
		}
		if batch.Error() != nil || n == 0 {
			t.Fatalf("read %s: %d of %d messages: %v", filter, len(out), info.NumPending, batch.Error())
		}
		left -= n
	}
	return out
}

// request sends an on-demand request and decodes the reply.
func (w *world) request(m md.Market, symbol string, timeout time.Duration) (snapshotter.Reply, time.Duration) {
	w.t.Helper()
	start := time.Now()
	msg, err := w.nc.Request(md.ControlSubject(m, symbol), nil, timeout)
	took := time.Since(start)
	if err != nil {
		w.t.Fatalf("request %s %s: %v", m, symbol, err)
	}
	var r snapshotter.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		w.t.Fatalf("reply %q: %v", msg.Data, err)
	}
	return r, took
}

// logged returns the log entries with message msg.
func (w *world) logged(msg string) []observer.LoggedEntry {
	return w.logs.FilterMessage(msg).All()
}

// simFaults returns the simulator's faults of market m of type typ.
func simFaults(sim *binancesim.Sim, m md.Market, typ string) []binancesim.Fault {
	var out []binancesim.Fault
	for _, f := range sim.Faults(m) {
		if f.Type == typ {
			out = append(out, f)
		}
	}
	return out
}

// depthGet is an external client's depth request: status and the
// X-MBX-USED-WEIGHT-* header.
func depthGet(hc *http.Client, base, path, symbol string, limit int) (int, string, error) {
	resp, err := hc.Get(base + path + "?symbol=" + symbol + "&limit=" + itoa(limit))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			break
		}
	}
	used := ""
	for k, v := range resp.Header {
		if strings.HasPrefix(strings.ToUpper(k), "X-MBX-USED-WEIGHT") && len(v) > 0 {
			used = v[0]
		}
	}
	return resp.StatusCode, used, nil
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
