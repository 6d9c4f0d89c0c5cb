package snapshotter_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
	snapshotter "github.com/depthcap/depthcap/services/rest-snapshotter"
)

// requestBody sends an on-demand request with body and decodes the reply.
func (w *world) requestBody(m md.Market, symbol, body string, timeout time.Duration) (snapshotter.Reply, time.Duration) {
	w.t.Helper()
	start := time.Now()
	msg, err := w.nc.Request(md.ControlSubject(m, symbol), []byte(body), timeout)
	took := time.Since(start)
	if err != nil {
		w.t.Fatalf("request %s %s %s: %v", m, symbol, body, err)
	}
	var r snapshotter.Reply
	if err := json.Unmarshal(msg.Data, &r); err != nil {
		w.t.Fatalf("reply %q: %v", msg.Data, err)
	}
	return r, took
}

// gapBody is the body the ingest sends after a diff gap.
func gapBody(m md.Market, symbol string, minID int64) string {
	s := `{"market":"` + m.String() + `","symbol":"` + symbol + `","source":"test-ingest","reason":"gap"`
	if minID > 0 {
		s += `,"min_update_id":` + strconv.FormatInt(minID, 10)
	}
	return s + "}"
}

// advancedPast waits until the sim's published stream of symbol is past
// id and returns its last update id: a value an ingest could have seen
// as the first id after a gap, which the exchange has reached.
func advancedPast(t *testing.T, sim *binancesim.Sim, m md.Market, symbol string, id int64) int64 {
	t.Helper()
	var last int64
	waitFor(t, 10*time.Second, "the sim's stream to pass "+strconv.FormatInt(id, 10), func() bool {
		var err error
		last, err = sim.LastUpdateID(m, symbol)
		if err != nil {
			t.Fatal(err)
		}
		return last > id
	})
	return last
}

// TestOnDemandMinUpdateID proves that a request carrying min_update_id
// newer than the symbol's last snapshot is not coalesced with it, even
// within SNAPSHOT_ONDEMAND_MIN_INTERVAL, and is answered with a new
// snapshot whose lastUpdateId reaches it; and that requests without the
// field (no body, the old ingest body) and requests the last snapshot
// satisfies are still coalesced.
func TestOnDemandMinUpdateID(t *testing.T) {
	t.Parallel()
	sim := newSim(t, func(c *binancesim.Config) { c.Symbols = "6" })
	cfg := baseConfig(sim, "spot,futures")
	cfg.Interval = 10 * time.Minute // the schedule stays out of the way
	cfg.OnDemandMinInterval = 3 * time.Second
	cfg.Limit = 100 // weight 5 spot, 2 futures: the on-demand reserve refills in 0.1 s
	w := start(t, cfg, "")
	w.waitReady()
	time.Sleep(300 * time.Millisecond) // the first scheduled requests are done

	for _, m := range []md.Market{md.Spot, md.Futures} {
		sym := sim.Symbols(m)[0]
		mk := map[string]string{"market": m.String()}
		first, _ := w.request(m, sym, 5*time.Second)
		if first.Error != "" || first.LastUpdateID <= 0 {
			t.Fatalf("%s %s: first reply %+v", m, sym, first)
		}
		minID := advancedPast(t, sim, m, sym, first.LastUpdateID)
		before := w.metric("depthcap_snapshot_requests_total", mk)
		r, took := w.requestBody(m, sym, gapBody(m, sym, minID), 5*time.Second)
		if r.Error != "" || r.Coalesced || r.LastUpdateID < minID {
			t.Fatalf("%s %s: min_update_id %d (last snapshot %d): reply %+v, want a new snapshot >= %d",
				m, sym, minID, first.LastUpdateID, r, minID)
		}
		if n := w.metric("depthcap_snapshot_requests_total", mk) - before; n < 1 {
			t.Fatalf("%s %s: answered without a REST request", m, sym)
		}
		t.Logf("%s %s: last snapshot %d, min_update_id %d: new snapshot %d in %v", m, sym, first.LastUpdateID, minID, r.LastUpdateID, took)
		found := false
		for _, s := range w.snapshots(m) {
			found = found || s.env.Symbol == sym && s.env.LastID == r.LastUpdateID
		}
		if !found {
			t.Fatalf("%s %s: snapshot %d is not in MARKETDATA", m, sym, r.LastUpdateID)
		}

		// Still coalesced: no body, the body without min_update_id, and a
		// min_update_id the last snapshot reaches.
		before = w.metric("depthcap_snapshot_requests_total", mk)
		for _, body := range []string{"", gapBody(m, sym, 0), gapBody(m, sym, r.LastUpdateID), "  \n"} {
			again, _ := w.requestBody(m, sym, body, 5*time.Second)
			if again.Error != "" || !again.Coalesced || again.LastUpdateID != r.LastUpdateID {
				t.Fatalf("%s %s: body %q: reply %+v, want %d coalesced", m, sym, body, again, r.LastUpdateID)
			}
		}
		if n := w.metric("depthcap_snapshot_requests_total", mk) - before; n != 0 {
			t.Fatalf("%s %s: coalesced requests made %v REST requests", m, sym, n)
		}
	}
}

// TestOnDemandBadPayload proves a request whose body is not a valid
// snapshot request gets an error reply naming the problem, is counted as
// bad_payload, costs no REST request, and that the snapshotter keeps
// serving.
func TestOnDemandBadPayload(t *testing.T) {
	t.Parallel()
	sim := newSim(t, func(c *binancesim.Config) { c.Symbols = "4" })
	cfg := baseConfig(sim, "spot")
	cfg.Interval = 10 * time.Minute
	cfg.Limit = 100
	w := start(t, cfg, "")
	w.waitReady()
	time.Sleep(300 * time.Millisecond)
	sym := sim.Symbols(md.Spot)[1]
	spot := map[string]string{"market": "spot"}
	before := w.metric("depthcap_snapshot_requests_total", spot)
	bad := []string{
		`not json`,
		`{"min_update_id":"12"}`,
		`{"min_update_id":-1}`,
		`{"min_update_id":1.5}`,
		`{"min_update_id":99999999999999999999}`,
		`[1]`,
		`{"min_update_id":12} trailing`,
		`{"market":"futures","symbol":"` + sym + `","min_update_id":12}`,
		`{"market":"spot","symbol":"OTHERUSDT","min_update_id":12}`,
	}
	for _, body := range bad {
		r, _ := w.requestBody(md.Spot, sym, body, 2*time.Second)
		if r.Error == "" || !strings.Contains(r.Error, "payload") || r.LastUpdateID != 0 {
			t.Fatalf("body %q: reply %+v, want a payload error", body, r)
		}
		t.Logf("%q: %s", body, r.Error)
	}
	if n := w.metric("depthcap_snapshot_ondemand_requests_total", map[string]string{"market": "spot", "result": "bad_payload"}); n != float64(len(bad)) {
		t.Fatalf("bad_payload counted %v, want %d", n, len(bad))
	}
	if n := w.metric("depthcap_snapshot_requests_total", spot) - before; n != 0 {
		t.Fatalf("bad payloads made %v REST requests", n)
	}
	if r, _ := w.requestBody(md.Spot, sym, gapBody(md.Spot, sym, 1), 5*time.Second); r.Error != "" || r.LastUpdateID <= 0 {
		t.Fatalf("good request after bad ones: %+v", r)
	}
}

// lagFront stands in front of the sim's spot REST API and, while lag > 0,
// answers depth requests for symbol with the body of the last fresh
// answer: the REST API lagging the stream.
type lagFront struct {
	sim    *binancesim.Sim
	symbol string

	mu    sync.Mutex
	held  []byte
	lag   int
	stale int
}

func (f *lagFront) setLag(n int) {
	f.mu.Lock()
	f.lag = n
	f.mu.Unlock()
}

func (f *lagFront) served() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stale
}

func (f *lagFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	resp, err := http.Get(f.sim.RESTURL(md.Spot) + r.URL.RequestURI())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if resp.StatusCode == http.StatusOK && r.URL.Path == "/api/v3/depth" && r.URL.Query().Get("symbol") == f.symbol {
		f.mu.Lock()
		if f.lag > 0 && f.held != nil {
			f.lag--
			f.stale++
			body = f.held
		} else {
			f.held = body
		}
		f.mu.Unlock()
	}
	for k, v := range resp.Header {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// TestOnDemandRESTLag proves that a snapshot completing below a waiting
// request's min_update_id (the REST API lagging the stream) does not
// answer it: the request waits for the next snapshot, and after 3
// snapshots requested after it arrived that all lag, it gets an error,
// counted.
func TestOnDemandRESTLag(t *testing.T) {
	t.Parallel()
	sim := newSim(t, func(c *binancesim.Config) { c.Symbols = "4" })
	sym := sim.Symbols(md.Spot)[0]
	front := &lagFront{sim: sim, symbol: sym}
	srv := httptest.NewServer(front)
	t.Cleanup(srv.Close)
	cfg := baseConfig(sim, "spot")
	cfg.SpotRESTURL = srv.URL
	cfg.Interval = 10 * time.Minute
	cfg.OnDemandMinInterval = 3 * time.Second
	cfg.Limit = 100
	w := start(t, cfg, "")
	w.waitReady()
	time.Sleep(300 * time.Millisecond)
	spot := map[string]string{"market": "spot"}
	staleTotal := func() float64 { return w.metric("depthcap_snapshot_ondemand_stale_total", spot) }

	// Two lagging answers, then a fresh one: the request gets the fresh one.
	first, _ := w.request(md.Spot, sym, 5*time.Second)
	if first.Error != "" {
		t.Fatalf("first reply %+v", first)
	}
	minID := advancedPast(t, sim, md.Spot, sym, first.LastUpdateID)
	front.setLag(2)
	before := w.metric("depthcap_snapshot_requests_total", spot)
	r, took := w.requestBody(md.Spot, sym, gapBody(md.Spot, sym, minID), 10*time.Second)
	if r.Error != "" || r.Coalesced || r.LastUpdateID < minID {
		t.Fatalf("min_update_id %d behind 2 lagging answers: reply %+v", minID, r)
	}
	if front.served() != 2 || staleTotal() != 2 {
		t.Fatalf("lagging answers served %d, counted %v; want 2 and 2", front.served(), staleTotal())
	}
	if n := w.metric("depthcap_snapshot_requests_total", spot) - before; n != 3 {
		t.Fatalf("%v REST requests, want 3 (2 lagging, 1 fresh)", n)
	}
	t.Logf("min_update_id %d: answered with %d after 2 lagging snapshots (%d) in %v", minID, r.LastUpdateID, first.LastUpdateID, took)

	// Lagging for good: an error after 3 attempts, counted.
	minID = advancedPast(t, sim, md.Spot, sym, r.LastUpdateID)
	front.setLag(100)
	r, took = w.requestBody(md.Spot, sym, gapBody(md.Spot, sym, minID), 10*time.Second)
	if r.Error == "" || !strings.Contains(r.Error, "min_update_id") {
		t.Fatalf("min_update_id %d never reached: reply %+v, want an error", minID, r)
	}
	if n := w.metric("depthcap_snapshot_ondemand_requests_total", map[string]string{"market": "spot", "result": "stale"}); n != 1 {
		t.Fatalf("stale give-ups counted %v, want 1", n)
	}
	if front.served() != 5 || staleTotal() != 5 {
		t.Fatalf("lagging answers served %d, counted %v; want 5 and 5", front.served(), staleTotal())
	}
	t.Logf("gave up in %v: %s", took, r.Error)
	front.setLag(0)
}
