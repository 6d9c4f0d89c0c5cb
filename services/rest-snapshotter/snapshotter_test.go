package snapshotter_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
)

// TestBudgetHolds runs the brief's example, 200 spot symbols at limit
// 1000 (weight 50) with a 50 % budget of 6000, on a time scale 30 times
// faster than the exchange's: the sim's weight window is 2 s instead of
// 1 min and SNAPSHOT_INTERVAL is 2 s instead of 60 s. The budget (3000
// per window) carries 60 requests per window, so each symbol comes every
// 200 × 50 × 2 s / 3000 = 6.67 s (3m20s real; 6.8 s after rounding the
// spacing up to whole milliseconds). It proves: the start-up warning
// states that interval, the observed per-symbol spacing matches it, no
// request is refused (no 429), our weight per window never exceeds the
// budget, and every symbol is snapshotted.
func TestBudgetHolds(t *testing.T) {
	sim := newSim(t, func(c *binancesim.Config) {
		c.Symbols = "200"
		c.WeightWindow = 2 * time.Second
		c.ActivityMax = 20
		c.BookLevels = 100 // the weight is the limit's; short answers keep the test light (TestSnapshotsTrue checks 1000-level ones)
	})
	cfg := baseConfig(sim, "spot")
	cfg.Interval = 2 * time.Second
	cfg.Limit = 1000
	cfg.Budget = 0.5
	w := start(t, cfg, "")
	began := time.Now()

	const symbols, stated = 200, 6800 * time.Millisecond
	// Every symbol twice: one full rotation after the first one.
	perSym := map[string][]int64{}
	waitFor(t, 40*time.Second, "two snapshots of every symbol", func() bool {
		snaps := w.snapshots(md.Spot)
		clear(perSym)
		for _, s := range snaps {
			perSym[s.env.Symbol] = append(perSym[s.env.Symbol], s.env.RequestNs)
		}
		if len(perSym) < symbols {
			return false
		}
		for _, ts := range perSym {
			if len(ts) < 2 {
				return false
			}
		}
		return true
	})
	ran := time.Since(began)
	var all []int64
	for _, ts := range perSym {
		all = append(all, ts...)
	}
	slices.Sort(all)
	var rg []time.Duration
	for i := 1; i < len(all); i++ {
		rg = append(rg, time.Duration(all[i]-all[i-1]))
	}
	slices.Sort(rg)
	t.Logf("request gaps: p10 %v p50 %v p90 %v p99 %v max %v", rg[len(rg)/10], rg[len(rg)/2], rg[len(rg)*9/10], rg[len(rg)*99/100], rg[len(rg)-1])

	warns := w.logged("snapshot interval stretched to fit the weight budget")
	if len(warns) != 1 {
		t.Fatalf("stretch warning logged %d times, want once", len(warns))
	}
	fields := warns[0].ContextMap()
	wantSummary := "spot: 200 symbols × weight 50 exceeds budget 3000/2s; each symbol every 6.8s"
	if fields["summary"] != wantSummary || warns[0].Level.String() != "warn" {
		t.Fatalf("warning = %v %v, want warn %q", warns[0].Level, fields["summary"], wantSummary)
	}
	if got := w.metric("depthcap_snapshot_effective_interval_seconds", map[string]string{"market": "spot"}); math.Abs(got-stated.Seconds()) > 0.01 {
		t.Fatalf("effective interval metric = %v, want %v", got, stated.Seconds())
	}

	// Observed per-symbol spacing: consecutive request times of a symbol.
	var gaps []float64
	for sym, ts := range perSym {
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		for i := 1; i < len(ts); i++ {
			g := time.Duration(ts[i] - ts[i-1])
			// 10 % below: request times are stamped when the request
			// goroutine runs, which a loaded machine delays.
			if g < stated*90/100 {
				t.Fatalf("%s snapshotted again after %v: faster than the budget allows (%v)", sym, g, stated)
			}
			gaps = append(gaps, g.Seconds())
		}
	}
	sort.Float64s(gaps)
	mean := 0.0
	for _, g := range gaps {
		mean += g
	}
	mean /= float64(len(gaps))
	median := gaps[len(gaps)/2]
	t.Logf("stated %v; observed per-symbol spacing over %d gaps: min %.3fs median %.3fs mean %.3fs max %.3fs; run %v",
		stated, len(gaps), gaps[0], median, mean, gaps[len(gaps)-1], ran.Round(time.Millisecond))
	// The median is the schedule; the mean also carries stalls of a loaded
	// machine (a request cannot go faster than the budget to catch up).
	if median < stated.Seconds()*0.97 || median > stated.Seconds()*1.10 {
		t.Fatalf("median per-symbol spacing %.3fs, stated %v", median, stated)
	}
	if mean > stated.Seconds()*1.25 {
		t.Fatalf("mean per-symbol spacing %.3fs, stated %v: the schedule falls far behind", mean, stated)
	}

	// No 429, and our weight per exchange window stays within the budget
	// (+ two requests: the bucket holds three requests' weight, and a
	// scheduled request leaves at least one).
	if n := len(simFaults(sim, md.Spot, binancesim.FaultRESTRateLimit)); n != 0 {
		t.Fatalf("the sim answered %d requests with 429", n)
	}
	if n := w.metric("depthcap_snapshot_requests_total", map[string]string{"status": "429"}); n != 0 {
		t.Fatalf("snapshotter counted %v 429s", n)
	}
	perWindow := map[int64]int{}
	for _, ts := range perSym {
		for _, ns := range ts {
			perWindow[ns/int64(2*time.Second)] += 50
		}
	}
	maxWin := 0
	for _, used := range perWindow {
		maxWin = max(maxWin, used)
	}
	t.Logf("weight per 2s window: max %d of budget 3000 (limit 6000); symbols snapshotted: %d", maxWin, len(perSym))
	if maxWin > 3000+2*50 {
		t.Fatalf("a window carried %d weight, budget 3000", maxWin)
	}
	if len(perSym) != symbols {
		t.Fatalf("%d symbols snapshotted, want %d", len(perSym), symbols)
	}
}

// injectMarker queues, right after a REST fault, a 1 ms slow answer: the
// sim records it with its arrival time, which is how the test sees from
// the sim's side when the next request arrived.
func injectWithMarker(t *testing.T, sim *binancesim.Sim, m md.Market, fault binancesim.FaultRequest) {
	t.Helper()
	fault.Type, fault.Market = "rest", m.String()
	if _, err := sim.Inject(fault); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.Inject(binancesim.FaultRequest{Type: "rest", Market: m.String(), Duration: binancesim.Duration(time.Millisecond), Count: 1}); err != nil {
		t.Fatal(err)
	}
}

// TestRateLimited429 proves that after a 429 with Retry-After: 5 the
// market sends nothing for 5 s, measured on the sim: from the arrival of
// the request answered 429 to the arrival of the next one; and that it
// then resumes.
func TestRateLimited429(t *testing.T) {
	t.Parallel()
	sim := newSim(t, nil)
	cfg := baseConfig(sim, "spot")
	cfg.Interval, cfg.Limit = time.Second, 100 // 10 symbols: one request every 100 ms
	// One request at a time: none can be on its way (sent before the 429
	// was known) when the 429 arrives, so the next arrival is a decision.
	cfg.MaxInflight = 1
	w := start(t, cfg, "")
	waitFor(t, 10*time.Second, "first snapshots", func() bool { return len(w.snapshots(md.Spot)) >= 5 })

	injectWithMarker(t, sim, md.Spot, binancesim.FaultRequest{Status: 429, Count: 1, RetryAfter: 5})
	var limited, next binancesim.Fault
	waitFor(t, 20*time.Second, "the request after the 429", func() bool {
		for _, f := range sim.Faults(md.Spot) {
			switch {
			case f.Type == binancesim.FaultRESTError && f.Status == 429:
				limited = f
			case f.Type == binancesim.FaultRESTSlow && f.Injected:
				next = f
			}
		}
		return !next.Time.IsZero()
	})
	gap := next.Time.Sub(limited.Time)
	t.Logf("429 with Retry-After: 5 at %s; next request arrived %v later", limited.Time.Format("15:04:05.000"), gap)
	if gap < 5*time.Second {
		t.Fatalf("a request arrived %v after the 429, before Retry-After (5s)", gap)
	}
	if gap > 8*time.Second {
		t.Fatalf("requests resumed only %v after the 429 (Retry-After 5s)", gap)
	}
	if got := w.metric("depthcap_snapshot_pauses_total", map[string]string{"market": "spot", "reason": "429"}); got != 1 {
		t.Fatalf("429 pauses = %v, want 1", got)
	}
	n := len(w.snapshots(md.Spot))
	waitFor(t, 10*time.Second, "snapshots after the pause", func() bool { return len(w.snapshots(md.Spot)) > n+3 })
}

// TestBanned418 proves that a 418 stops every request of the market until
// Retry-After (measured on the sim), raises depthcap_snapshot_ip_banned
// and logs at error level, answers on-demand requests at once with an
// error while banned, lowers the gauge when the ban ends, and leaves the
// other market (a separate API with its own limits) running.
func TestBanned418(t *testing.T) {
	t.Parallel()
	sim := newSim(t, nil)
	cfg := baseConfig(sim, "spot,futures")
	cfg.Interval, cfg.Limit = time.Second, 100
	cfg.MaxInflight = 1 // as in TestRateLimited429
	w := start(t, cfg, "")
	waitFor(t, 10*time.Second, "first snapshots", func() bool { return len(w.snapshots(md.Spot)) >= 5 })

	injectWithMarker(t, sim, md.Spot, binancesim.FaultRequest{Status: 418, Count: 1, RetryAfter: 3})
	banned := map[string]string{"market": "spot"}
	waitFor(t, 5*time.Second, "the ban gauge", func() bool { return w.metric("depthcap_snapshot_ip_banned", banned) == 1 })
	bannedAt := time.Now()
	r, took := w.request(md.Spot, sim.Symbols(md.Spot)[3], 2*time.Second)
	if r.Error == "" || r.LastUpdateID != 0 {
		t.Fatalf("on-demand reply during the ban = %+v, want an error", r)
	}
	t.Logf("on-demand during the ban answered in %v: %q", took, r.Error)
	futuresBefore := len(w.snapshots(md.Futures))

	var ban, next binancesim.Fault
	waitFor(t, 20*time.Second, "the request after the ban", func() bool {
		for _, f := range sim.Faults(md.Spot) {
			switch {
			case f.Type == binancesim.FaultRESTError && f.Status == 418:
				ban = f
			case f.Type == binancesim.FaultRESTSlow && f.Injected:
				next = f
			}
		}
		return !next.Time.IsZero()
	})
	gap := next.Time.Sub(ban.Time)
	t.Logf("418 with Retry-After: 3; next spot request arrived %v later", gap)
	if gap < 3*time.Second {
		t.Fatalf("a spot request arrived %v after the 418, before Retry-After (3s)", gap)
	}
	if gap > 6*time.Second {
		t.Fatalf("spot requests resumed only %v after the 418 (Retry-After 3s)", gap)
	}
	if futuresDuring := len(w.snapshots(md.Futures)) - futuresBefore; futuresDuring < 5 {
		t.Fatalf("futures stored %d snapshots during the spot ban, want it to keep going", futuresDuring)
	}
	waitFor(t, 5*time.Second, "the ban gauge to clear", func() bool { return w.metric("depthcap_snapshot_ip_banned", banned) == 0 })
	t.Logf("ban gauge raised for about %v", time.Since(bannedAt).Round(100*time.Millisecond))
	if got := w.metric("depthcap_snapshot_bans_total", banned); got != 1 {
		t.Fatalf("bans_total = %v, want 1", got)
	}
	errs := w.logged("ip banned by the exchange (418); every request of the market stops until Retry-After")
	if len(errs) != 1 || errs[0].Level.String() != "error" {
		t.Fatalf("ban logged %d times (level %v), want once at error level", len(errs), errs)
	}
}

// TestSharedIP runs an external client on the same IP that uses 40 % of
// the weight limit, evenly, while the snapshotter has a budget of 80 %:
// together 120 %, so without the header-driven slow-down the IP would be
// refused. It proves nobody on the IP gets a 429 and the snapshotter's
// share drops to what is left under 90 % (about 50 %).
func TestSharedIP(t *testing.T) {
	const limit, window = 1200, 2 * time.Second
	sim := newSim(t, func(c *binancesim.Config) {
		c.Symbols = "30"
		c.SpotWeightLimit = limit
		c.WeightWindow = window
	})
	syms := sim.Symbols(md.Spot)

	// External load: weight 50 every 208 ms = 480 per 2 s window = 40 %.
	ctx, cancel := context.WithCancel(context.Background())
	var ext sync.WaitGroup
	var extReqs, ext429, extMaxUsed atomic.Int64
	ext.Go(func() {
		hc := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(window * 50 / (limit * 4 / 10))
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			status, used, err := depthGet(hc, sim.RESTURL(md.Spot), "/api/v3/depth", syms[i%len(syms)], 1000)
			if err != nil {
				continue
			}
			extReqs.Add(1)
			if status == http.StatusTooManyRequests {
				ext429.Add(1)
			}
			if u, err := strconv.Atoi(used); err == nil && int64(u) > extMaxUsed.Load() {
				extMaxUsed.Store(int64(u))
			}
		}
	})
	t.Cleanup(func() { cancel(); ext.Wait() })
	time.Sleep(window) // the load runs before the snapshotter starts

	cfg := baseConfig(sim, "spot")
	cfg.Interval = time.Second // 30 symbols: far more than the budget carries
	cfg.Limit = 1000
	cfg.Budget = 0.8
	w := start(t, cfg, "")
	w.waitReady()
	time.Sleep(3 * window) // settle
	ok200 := map[string]string{"market": "spot", "status": "200"}
	n0, t0 := w.metric("depthcap_snapshot_requests_total", ok200), time.Now()
	time.Sleep(4 * window)
	n1, t1 := w.metric("depthcap_snapshot_requests_total", ok200), time.Now()
	cancel()
	ext.Wait()

	ours := (n1 - n0) * 50 / (t1.Sub(t0).Seconds() / window.Seconds())
	t.Logf("external: %d requests, %d refused, highest X-MBX-USED-WEIGHT-2S %d of %d; snapshotter: %.0f weight per window (budget %d = 80%%), others estimated %.0f, allowed %.0f, effective interval %.2fs",
		extReqs.Load(), ext429.Load(), extMaxUsed.Load(), limit, ours, limit*8/10,
		w.metric("depthcap_snapshot_weight_others", map[string]string{"market": "spot"}),
		w.metric("depthcap_snapshot_weight_allowed", map[string]string{"market": "spot"}),
		w.metric("depthcap_snapshot_effective_interval_seconds", map[string]string{"market": "spot"}))
	if n := len(simFaults(sim, md.Spot, binancesim.FaultRESTRateLimit)); n != 0 || ext429.Load() != 0 {
		t.Fatalf("the sim refused %d requests with 429 (%d of them the external client's)", n, ext429.Load())
	}
	if n := w.metric("depthcap_snapshot_requests_total", map[string]string{"status": "429"}); n != 0 {
		t.Fatalf("the snapshotter got %v 429s", n)
	}
	if ours > 0.55*limit {
		t.Fatalf("snapshotter used %.0f per window with 40%% taken by others: no slow-down (want <= 55%% of %d)", ours, limit)
	}
	if ours < 0.3*limit {
		t.Fatalf("snapshotter used %.0f per window: it slowed down far more than the rule says (about 50%% of %d)", ours, limit)
	}
}

// TestOnDemand proves on-demand requests are answered within 1 s with the
// lastUpdateId of a snapshot that is in JetStream, that requests for a
// symbol are coalesced, that unknown symbols get an error, and that the
// queue group gives each request to exactly one snapshotter.
func TestOnDemand(t *testing.T) {
	t.Parallel()
	sim := newSim(t, func(c *binancesim.Config) { c.Symbols = "6" })
	url := natsServer(t)
	cfg := baseConfig(sim, "spot,futures")
	cfg.Interval = 10 * time.Minute // the schedule stays out of the way
	cfg.OnDemandMinInterval = 3 * time.Second
	w := start(t, cfg, url)
	w.waitReady()

	var lat []time.Duration
	for i, req := range []struct {
		m   md.Market
		sym string
	}{{md.Spot, sim.Symbols(md.Spot)[3]}, {md.Futures, sim.Symbols(md.Futures)[3]}, {md.Spot, sim.Symbols(md.Spot)[4]}, {md.Futures, sim.Symbols(md.Futures)[5]}} {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // the on-demand reserve refills at the budget rate (one request per second on spot)
		}
		r, took := w.request(req.m, req.sym, 5*time.Second)
		if r.Error != "" || r.LastUpdateID <= 0 || r.Coalesced {
			t.Fatalf("%s %s: reply %+v", req.m, req.sym, r)
		}
		if took > time.Second {
			t.Fatalf("%s %s answered in %v, want within 1s", req.m, req.sym, took)
		}
		// Coalescing: within SNAPSHOT_ONDEMAND_MIN_INTERVAL the stored one.
		again, took2 := w.request(req.m, req.sym, 5*time.Second)
		if again.Error != "" || !again.Coalesced || again.LastUpdateID != r.LastUpdateID {
			t.Fatalf("%s %s: repeat within the min interval: %+v, want %d coalesced", req.m, req.sym, again, r.LastUpdateID)
		}
		lat = append(lat, took, took2)
		found := false
		for _, s := range w.snapshots(req.m) {
			if s.env.Symbol == req.sym && s.env.LastID == r.LastUpdateID {
				found = s.msgID == md.MsgID(req.m, md.Snapshot, req.sym, r.LastUpdateID)
			}
		}
		if !found {
			t.Fatalf("%s %s: snapshot %d is not in MARKETDATA with its dedup id", req.m, req.sym, r.LastUpdateID)
		}
	}
	t.Logf("on-demand latencies (request to reply; fetched, then coalesced): %v", lat)

	// Concurrent requests for one symbol: one REST request, one id.
	time.Sleep(1100 * time.Millisecond)
	sym := sim.Symbols(md.Spot)[5]
	spot := map[string]string{"market": "spot"}
	before := w.metric("depthcap_snapshot_requests_total", spot)
	var wg sync.WaitGroup
	ids := make([]int64, 8)
	for i := range ids {
		wg.Go(func() {
			msg, err := w.nc.Request(md.ControlSubject(md.Spot, sym), nil, 5*time.Second)
			if err != nil {
				t.Errorf("request: %v", err)
				return
			}
			var r snapshotter.Reply
			_ = json.Unmarshal(msg.Data, &r)
			ids[i] = r.LastUpdateID
		})
	}
	wg.Wait()
	if n := w.metric("depthcap_snapshot_requests_total", spot) - before; n != 1 {
		t.Fatalf("8 concurrent requests for %s made %v REST requests, want 1", sym, n)
	}
	if slices.Min(ids) != slices.Max(ids) || ids[0] <= 0 {
		t.Fatalf("concurrent requests got ids %v, want one", ids)
	}

	// Unknown and invalid symbols.
	for _, bad := range []string{"NOSUCHSYM", "btcusdt"} {
		r, took := w.request(md.Spot, bad, 2*time.Second)
		if r.Error == "" {
			t.Fatalf("request for %s: %+v, want an error", bad, r)
		}
		t.Logf("%s: %q in %v", bad, r.Error, took)
	}

	// Queue group: with a second replica each request is answered once.
	w2 := start(t, cfg, url)
	w2.waitReady()
	fut := map[string]string{"market": "futures"}
	served0 := w.metric("depthcap_snapshot_ondemand_requests_total", fut)
	inbox := w.nc.NewRespInbox()
	var replies atomic.Int64
	sub, err := w.nc.Subscribe(inbox, func(*nats.Msg) { replies.Add(1) })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	const n = 12
	for i := range n {
		if err := w.nc.PublishRequest(md.ControlSubject(md.Futures, sim.Symbols(md.Futures)[i%3]), inbox, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "replies", func() bool { return replies.Load() >= n })
	time.Sleep(300 * time.Millisecond)
	if replies.Load() != n {
		t.Fatalf("%d requests got %d replies, want exactly one each", n, replies.Load())
	}
	t.Logf("futures on-demand requests served: replica 1 %v, replica 2 %v",
		w.metric("depthcap_snapshot_ondemand_requests_total", fut)-served0, w2.metric("depthcap_snapshot_ondemand_requests_total", fut))
}

// TestSnapshotsTrue proves every published snapshot, on both markets,
// decodes and equals the sim's ground-truth book at its lastUpdateId (top
// `limit` levels, values and exact text), and that the envelope carries
// what DESIGN section 2 says.
func TestSnapshotsTrue(t *testing.T) {
	t.Parallel()
	sim := newSim(t, func(c *binancesim.Config) {
		c.Symbols = "8"
		c.WeightWindow = 2 * time.Second
		c.ActivityMax = 200
	})
	cfg := baseConfig(sim, "spot,futures")
	cfg.Interval = time.Second
	cfg.Limit = 1000
	w := start(t, cfg, "")
	began := time.Now()
	waitFor(t, 20*time.Second, "snapshots of both markets", func() bool {
		return len(w.snapshots(md.Spot)) >= 24 && len(w.snapshots(md.Futures)) >= 24
	})
	t.Logf("collected in %v", time.Since(began))
	var d binance.Depth
	for _, m := range md.Markets {
		snaps := w.snapshots(m)
		levels := 0
		for _, s := range snaps {
			e := &s.env
			if e.Kind != md.Snapshot || e.Market != m || e.DepthLimit != 1000 || e.Source != "test-source" ||
				e.Has&envelope.HasLast == 0 || e.RequestNs <= 0 || e.ReceivedNs < e.RequestNs {
				t.Fatalf("%s envelope %+v", m, e)
			}
			if s.msgID != md.MsgID(m, md.Snapshot, e.Symbol, e.LastID) {
				t.Fatalf("dedup id %q, want %q", s.msgID, md.MsgID(m, md.Snapshot, e.Symbol, e.LastID))
			}
			if err := binance.DecodeDepth(e.Payload, &d); err != nil {
				t.Fatalf("%s %s snapshot %d does not decode: %v", m, e.Symbol, e.LastID, err)
			}
			if d.LastUpdateID != e.LastID {
				t.Fatalf("envelope lastUpdateId %d, payload %d", e.LastID, d.LastUpdateID)
			}
			if m == md.Futures && (e.EventMs != d.EventTime || e.TxMs != d.TransactionTime || e.EventMs == 0) {
				t.Fatalf("futures E/T in envelope %d/%d, payload %d/%d", e.EventMs, e.TxMs, d.EventTime, d.TransactionTime)
			}
			bids, asks, err := sim.Book(m, e.Symbol, e.LastID)
			if err != nil {
				t.Fatalf("ground truth %s %s at %d: %v", m, e.Symbol, e.LastID, err)
			}
			var text struct{ Bids, Asks [][2]string }
			if err := json.Unmarshal(e.Payload, &text); err != nil {
				t.Fatal(err)
			}
			for _, side := range []struct {
				name  string
				got   []binance.Level
				text  [][2]string
				truth []binancesim.Level
			}{{"bids", d.Bids, text.Bids, bids}, {"asks", d.Asks, text.Asks, asks}} {
				want := side.truth[:min(1000, len(side.truth))]
				if len(side.got) != len(want) || len(side.text) != len(want) {
					t.Fatalf("%s %s %d %s: %d levels, truth has %d (limit 1000)", m, e.Symbol, e.LastID, side.name, len(side.got), len(want))
				}
				for i, l := range want {
					p, _ := strconv.ParseFloat(l.Price, 64)
					q, _ := strconv.ParseFloat(l.Qty, 64)
					if side.got[i].Price != p || side.got[i].Qty != q || side.text[i][0] != l.Price || side.text[i][1] != l.Qty {
						t.Fatalf("%s %s at %d %s[%d] = %v %q, truth %v", m, e.Symbol, e.LastID, side.name, i, side.got[i], side.text[i], l)
					}
				}
				levels += len(want)
			}
		}
		t.Logf("%s: %d snapshots equal the ground truth (%d levels compared)", m, len(snaps), levels)
	}
}
