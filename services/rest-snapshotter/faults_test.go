package snapshotter_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
)

// TestQuarantine puts a front in front of the sim's spot REST API that
// answers three symbols' depth requests with 200 and a body that is not a
// snapshot. It proves each is counted, logged and dead-lettered to
// dlq.rest-snapshotter.spot.snapshot with the body untouched and the
// reason, that an on-demand request for such a symbol gets an error, and
// that the good symbol's snapshots are published as usual.
func TestQuarantine(t *testing.T) {
	t.Parallel()
	sim := newSim(t, func(c *binancesim.Config) { c.Symbols = "4" })
	syms := sim.Symbols(md.Spot)
	bodies := map[string]string{
		syms[1]: `{"lastUpdateId":12,"bids":[["1.0","2`,        // cut off
		syms[2]: `{"code":-1121,"msg":"Invalid symbol."}`,      // an error with status 200
		syms[3]: `{"lastUpdateId":7,"asks":[["1.00","2.00"]]}`, // no bids
	}
	reasons := map[string]string{syms[1]: snapshotter.ReasonBadJSON, syms[2]: snapshotter.ReasonErrorBody, syms[3]: snapshotter.ReasonMissing}
	target, _ := url.Parse(sim.RESTURL(md.Spot))
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if body, ok := bodies[r.URL.Query().Get("symbol")]; ok && r.URL.Path == "/api/v3/depth" {
			w.Header().Set("X-MBX-USED-WEIGHT-1M", "50")
			_, _ = w.Write([]byte(body))
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	cfg := baseConfig(sim, "spot")
	cfg.SpotRESTURL = front.URL
	cfg.Interval, cfg.Limit = 2*time.Second, 100
	w := start(t, cfg, "")
	waitFor(t, 15*time.Second, "three quarantined answers and a good snapshot", func() bool {
		return w.metric("depthcap_snapshot_invalid_total", nil) >= 3 && len(w.snapshots(md.Spot)) >= 1
	})
	r, _ := w.request(md.Spot, syms[1], 5*time.Second)
	if r.Error == "" {
		t.Fatalf("on-demand request for a symbol with a broken answer: %+v, want an error", r)
	}
	t.Logf("on-demand error: %s", r.Error)

	seen := map[string]bool{}
	for _, msg := range streamMessages(t, w.js, md.StreamDLQ, md.DLQSubject(snapshotter.Service, md.Spot, md.Snapshot)) {
		var e envelope.Envelope
		if err := envelope.Unmarshal(msg.Data(), &e); err != nil {
			t.Fatalf("dead letter is not an envelope: %v", err)
		}
		reason := msg.Headers().Get(snapshotter.HdrReason)
		if string(e.Payload) != bodies[e.Symbol] || reason != reasons[e.Symbol] || e.Kind != md.Snapshot || e.RequestNs == 0 {
			t.Fatalf("dead letter %s: reason %q payload %q, want %q %q", e.Symbol, reason, e.Payload, reasons[e.Symbol], bodies[e.Symbol])
		}
		if msg.Headers().Get(snapshotter.HdrSubject) != md.Subject(md.Spot, md.Snapshot, e.Symbol) || msg.Headers().Get(snapshotter.HdrError) == "" ||
			msg.Headers().Get(jetstream.MsgIDHeader) == "" {
			t.Fatalf("dead letter headers %v", msg.Headers())
		}
		seen[e.Symbol] = true
	}
	if len(seen) != 3 {
		t.Fatalf("dead letters for %v, want the three broken symbols", seen)
	}
	for sym, reason := range reasons {
		if w.metric("depthcap_snapshot_invalid_total", map[string]string{"reason": reason}) < 1 {
			t.Fatalf("%s: no %s counted", sym, reason)
		}
	}
	for _, s := range w.snapshots(md.Spot) {
		if s.env.Symbol != syms[0] {
			t.Fatalf("a snapshot of %s was published", s.env.Symbol)
		}
	}
	if n := len(w.logged("snapshot answer quarantined")); n < 3 {
		t.Fatalf("%d quarantine log lines, want one per reason", n)
	}
}

// TestBackoff proves 5xx answers are retried with exponential backoff:
// measured on the sim, the gaps between the failed attempts (and before
// the next request) are at least half of 100 ms, 200 ms, 400 ms, and after
// SNAPSHOT_ATTEMPTS (3) the snapshot is given up until its next turn.
func TestBackoff(t *testing.T) {
	t.Parallel()
	sim := newSim(t, nil)
	cfg := baseConfig(sim, "spot")
	cfg.Interval, cfg.Limit = time.Second, 100
	cfg.RetryMin = 100 * time.Millisecond
	cfg.MaxInflight = 1 // every arrival at the sim after a 503 is a backoff decision
	w := start(t, cfg, "")
	waitFor(t, 10*time.Second, "first snapshots", func() bool { return len(w.snapshots(md.Spot)) >= 3 })

	injectWithMarker(t, sim, md.Spot, binancesim.FaultRequest{Status: 503, Count: 3})
	var times []time.Time
	waitFor(t, 10*time.Second, "three 503s and the next request", func() bool {
		times = times[:0]
		for _, f := range sim.Faults(md.Spot) {
			if f.Injected && (f.Type == binancesim.FaultRESTError && f.Status == 503 || f.Type == binancesim.FaultRESTSlow) {
				times = append(times, f.Time)
			}
		}
		return len(times) == 4
	})
	var gaps []time.Duration
	for i := 1; i < len(times); i++ {
		gap := times[i].Sub(times[i-1])
		gaps = append(gaps, gap)
		if floor := cfg.RetryMin << (i - 1) / 2; gap < floor {
			t.Fatalf("attempt %d came %v after the previous 503, want >= %v", i+1, gap, floor)
		}
	}
	t.Logf("gaps between the 503s and the next request (sim side): %v", gaps)
	if got := w.metric("depthcap_snapshot_failed_total", map[string]string{"reason": "attempts"}); got != 1 {
		t.Fatalf("snapshots given up after 3 attempts = %v, want 1", got)
	}
	if got := w.metric("depthcap_snapshot_pauses_total", map[string]string{"reason": "backoff"}); got != 3 {
		t.Fatalf("backoff pauses = %v, want 3", got)
	}
}

// TestBudgetBelowOneRequest proves a budget that the exchange's limit
// (known only from exchangeInfo) cannot carry one request of stops the
// service with a configuration error naming SNAPSHOT_BUDGET.
func TestBudgetBelowOneRequest(t *testing.T) {
	t.Parallel()
	sim := newSim(t, nil)
	cfg := baseConfig(sim, "spot")
	cfg.Budget = 0.005 // 30 of 6000, below one request of weight 50
	cfg.URL = natsServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := bus.Connect(ctx, cfg.Config, t.TempDir(), "test", zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := bus.EnsureStreams(ctx, conn.JS, cfg.StreamConfig); err != nil {
		t.Fatal(err)
	}
	s, err := snapshotter.New(cfg, conn, svc.Env{Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(ctx)
	var ce *svc.ConfigError
	if !errors.As(err, &ce) || ce.Var != "SNAPSHOT_BUDGET" || ctx.Err() != nil {
		t.Fatalf("Run = %v, want a configuration error naming SNAPSHOT_BUDGET", err)
	}
	t.Logf("Run: %v", err)
}

// TestShutdownAnswersWaiters proves no on-demand requester is left
// waiting at shutdown: a request whose REST answer is slower than the
// shutdown grace gets an error reply, and the snapshotter stops within
// SHUTDOWN_TIMEOUT.
func TestShutdownAnswersWaiters(t *testing.T) {
	t.Parallel()
	sim := newSim(t, nil)
	cfg := baseConfig(sim, "spot")
	cfg.Interval = 10 * time.Minute
	cfg.ShutdownTimeout = 2 * time.Second
	w := start(t, cfg, "")
	w.waitReady()
	time.Sleep(1100 * time.Millisecond) // the first scheduled request is done
	if _, err := sim.Inject(binancesim.FaultRequest{Type: "rest", Market: "spot", Duration: binancesim.Duration(10 * time.Second), Count: 1}); err != nil {
		t.Fatal(err)
	}
	replies := make(chan snapshotter.Reply, 1)
	go func() {
		msg, err := w.nc.Request(md.ControlSubject(md.Spot, sim.Symbols(md.Spot)[4]), nil, 10*time.Second)
		var r snapshotter.Reply
		if err != nil {
			r.Error = "no reply: " + err.Error()
		} else if err := json.Unmarshal(msg.Data, &r); err != nil {
			r.Error = "bad reply: " + err.Error()
		}
		replies <- r
	}()
	waitFor(t, 5*time.Second, "the slow request", func() bool { return len(simFaults(sim, md.Spot, binancesim.FaultRESTSlow)) == 1 })
	began := time.Now()
	if err := w.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	took := time.Since(began)
	r := <-replies
	t.Logf("stopped in %v; the waiting request got %+v", took, r)
	if r.Error != "shutting down" {
		t.Fatalf("reply %+v, want the shutdown error", r)
	}
	if took > cfg.ShutdownTimeout+time.Second {
		t.Fatalf("stop took %v, SHUTDOWN_TIMEOUT %v", took, cfg.ShutdownTimeout)
	}
}
