package binancesim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/binance-sim/replay"
)

func postFault(t testing.TB, s *Sim, m md.Market, body string) {
	t.Helper()
	resp, err := http.Post(s.RESTURL(m)+"/sim/fault", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		t.Fatalf("POST /sim/fault %s: %d %s", body, resp.StatusCode, b.String())
	}
}

// TestDropClosesConnection proves an injected drop (POST /sim/fault)
// closes exactly the targeted connection and is recorded with its id.
func TestDropClosesConnection(t *testing.T) {
	s := newSim(t, nil)
	a := dial(t, s.WSURL(md.Spot)+"/ws/btcusdt@depth@100ms", nil)
	b := dial(t, s.WSURL(md.Spot)+"/ws/btcusdt@depth@100ms", nil)
	read(t, a, 5*time.Second)
	read(t, b, 5*time.Second)
	conns := s.Conns(md.Spot)
	if len(conns) != 2 {
		t.Fatalf("conns %+v", conns)
	}
	postFault(t, s, md.Spot, `{"type":"drop","conn":`+strconv.FormatInt(conns[0].ID, 10)+`}`)
	if _, err := readUntilClosed(t, a, 5*time.Second); err == nil {
		t.Fatal("dropped connection still open")
	}
	for i := 0; i < 3; i++ {
		read(t, b, 5*time.Second)
	}
	f := waitFault(t, s, md.Spot, FaultDrop)
	if f.Conn != conns[0].ID || !f.Injected || f.Time.IsZero() {
		t.Fatalf("fault %+v", f)
	}
}

// TestRandomDrops proves SIM_DROP_MEAN drops every connection on its own
// seeded schedule: the same seed and connection id give the same delay,
// different connections different ones, and each drop is recorded.
func TestRandomDrops(t *testing.T) {
	d1 := dropDelay(faultRNG(7, md.Spot, 1), time.Second)
	if d1 != dropDelay(faultRNG(7, md.Spot, 1), time.Second) {
		t.Fatal("schedule is not a function of seed, market and connection")
	}
	if d1 == dropDelay(faultRNG(7, md.Spot, 2), time.Second) || d1 == dropDelay(faultRNG(8, md.Spot, 1), time.Second) {
		t.Fatal("connections share a schedule")
	}
	s := newSim(t, func(c *Config) { c.DropMean = 200 * time.Millisecond })
	a := dial(t, s.WSURL(md.Futures)+"/stream?streams=btcusdt@depth@100ms", nil)
	b := dial(t, s.WSURL(md.Futures)+"/stream?streams=btcusdt@depth@100ms", nil)
	for _, c := range []*websocket.Conn{a, b} {
		if _, err := readUntilClosed(t, c, 20*time.Second); err == nil {
			t.Fatal("not dropped")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		drops := map[int64]bool{}
		for _, f := range s.Faults(md.Futures) {
			if f.Type == FaultDrop && !f.Injected {
				drops[f.Conn] = true
			}
		}
		if len(drops) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drops %v", drops)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// collectUntil reads combined frames until done reports true.
func collectUntil(t testing.TB, c *websocket.Conn, done func() bool) []combinedFrame {
	t.Helper()
	var out []combinedFrame
	deadline := time.Now().Add(20 * time.Second)
	for !done() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		var f combinedFrame
		if err := json.Unmarshal(read(t, c, 5*time.Second), &f); err != nil {
			t.Fatal(err)
		}
		out = append(out, f)
	}
	return out
}

// TestSkipGap proves an exchange-side skip removes exactly the recorded
// range from every diff stream (100ms and the slower aggregate alike):
// each stream shows one gap, before it u == From-1 (spot) and after it
// U == To+1 (spot) or pu == To (futures), and the send log never has To.
func TestSkipGap(t *testing.T) {
	for _, m := range []md.Market{md.Spot, md.Futures} {
		t.Run(m.String(), func(t *testing.T) {
			s := newSim(t, nil)
			slow := "btcusdt@depth" // spot 1000ms, futures 250ms
			c := dial(t, s.WSURL(m)+"/stream?streams=btcusdt@depth@100ms/"+slow, nil)
			var first combinedFrame
			if err := json.Unmarshal(read(t, c, 5*time.Second), &first); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Inject(FaultRequest{Type: "skip", Market: m.String(), Symbol: "BTCUSDT", Events: 3}); err != nil {
				t.Fatal(err)
			}
			var fault Fault
			after := 0
			frames := collectUntil(t, c, func() bool {
				if fault.Seq == 0 {
					for _, f := range s.Faults(m) {
						if f.Type == FaultSkip {
							fault = f
						}
					}
					return false
				}
				after++
				return after > 40 // two more seconds of the slow stream
			})
			frames = append([]combinedFrame{first}, frames...)
			if fault.Events != 3 || fault.From > fault.To || fault.Symbol != "BTCUSDT" || !fault.Injected {
				t.Fatalf("fault %+v", fault)
			}
			for _, stream := range []string{"btcusdt@depth@100ms", slow} {
				var prev *depthEvent
				gaps := 0
				for _, f := range frames {
					if f.Stream != stream {
						continue
					}
					var ev depthEvent
					if err := json.Unmarshal(f.Data, &ev); err != nil {
						t.Fatal(err)
					}
					if prev != nil {
						chained := ev.FirstID == prev.FinalID+1
						if m == md.Futures {
							chained = *ev.PrevFinalID == prev.FinalID
						}
						if !chained {
							gaps++
							if m == md.Spot && (prev.FinalID != fault.From-1 || ev.FirstID != fault.To+1) {
								t.Fatalf("%s: gap %d..%d, fault says %d..%d", stream, prev.FinalID+1, ev.FirstID-1, fault.From, fault.To)
							}
							if m == md.Futures && (*ev.PrevFinalID != fault.To || prev.FinalID >= fault.From || ev.FirstID <= fault.To) {
								t.Fatalf("%s: prev u %d, next U %d pu %d; fault %d..%d", stream, prev.FinalID, ev.FirstID, *ev.PrevFinalID, fault.From, fault.To)
							}
						}
					}
					prev = &ev
				}
				if gaps != 1 {
					t.Fatalf("%s: %d gaps, want exactly the injected one", stream, gaps)
				}
			}
			if _, ok := s.Sent(m, md.Diff, "BTCUSDT").IDs[fault.To]; ok {
				t.Fatalf("send log has the skipped u %d", fault.To)
			}
		})
	}
}

// TestRandomSkips proves SIM_SKIP_MEAN produces skips, each recorded with
// its exact range.
func TestRandomSkips(t *testing.T) {
	s := newSim(t, func(c *Config) { c.SkipMean = 200 * time.Millisecond })
	f := waitFault(t, s, md.Spot, FaultSkip)
	if f.Injected || f.Events != 1 || f.From > f.To || f.Symbol == "" {
		t.Fatalf("fault %+v", f)
	}
}

// TestRESTFaultInjection proves injected 429 (with the given Retry-After),
// 418, 5xx and slow answers, each consumed by one request.
func TestRESTFaultInjection(t *testing.T) {
	s := newSim(t, nil)
	url := s.RESTURL(md.Spot) + "/api/v3/depth?symbol=BTCUSDT&limit=5"
	postFault(t, s, md.Spot, `{"type":"rest","status":429,"count":2,"retryAfter":7}`)
	postFault(t, s, md.Spot, `{"type":"rest","status":418,"retryAfter":30}`)
	postFault(t, s, md.Spot, `{"type":"rest","status":503}`)
	for i, want := range []struct {
		status     int
		retryAfter string
		code       int
	}{{429, "7", -1003}, {429, "7", -1003}, {418, "30", -1003}, {503, "", -1001}, {200, "", 0}} {
		r := get(t, url)
		if r.status != want.status || r.header.Get("Retry-After") != want.retryAfter {
			t.Fatalf("request %d: %d Retry-After %q, want %d %q", i, r.status, r.header.Get("Retry-After"), want.status, want.retryAfter)
		}
		if want.code != 0 {
			if e := decodeAPIErr(t, r.body); e.Code != want.code {
				t.Fatalf("request %d: body %+v", i, e)
			}
		}
	}
	postFault(t, s, md.Spot, `{"type":"rest","duration":"300ms"}`)
	start := time.Now()
	if r := get(t, url); r.status != 200 || time.Since(start) < 300*time.Millisecond {
		t.Fatalf("slow answer: %d after %v", r.status, time.Since(start))
	}
	n := 0
	for _, f := range s.Faults(md.Spot) {
		if f.Type == FaultRESTError || f.Type == FaultRESTSlow {
			n++
		}
	}
	if n != 5 {
		t.Fatalf("%d REST faults recorded, want 5", n)
	}
}

// TestMalformedFrames proves injected malformed frames reach the client as
// invalid JSON and are counted in the send log as malformed, as are those
// of SIM_MALFORMED_RATE.
func TestMalformedFrames(t *testing.T) {
	s := newSim(t, func(c *Config) { c.MalformedRate = 0.3 })
	c := dial(t, s.WSURL(md.Futures)+"/stream?streams=btcusdt@depth@100ms/btcusdt@depth20@100ms", nil)
	bad := 0
	for i := 0; i < 60; i++ {
		if !json.Valid(read(t, c, 5*time.Second)) {
			bad++
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	waitConns(t, s, md.Futures, 0)
	logged := 0
	for _, k := range []md.Kind{md.Diff, md.Partial} {
		for _, n := range s.Sent(md.Futures, k, "BTCUSDT").Malformed {
			logged += n
		}
	}
	if bad < 5 || bad > 40 {
		t.Fatalf("%d of 60 frames malformed at rate 0.3", bad)
	}
	// The log counts what was written; the client read the first 60.
	if logged < bad {
		t.Fatalf("send log has %d malformed frames, the client got %d", logged, bad)
	}

	s2 := newSim(t, nil)
	c2 := dial(t, s2.WSURL(md.Spot)+"/stream?streams=btcusdt@depth@100ms", nil)
	read(t, c2, 5*time.Second)
	postFault(t, s2, md.Spot, `{"type":"malformed","count":3}`)
	bad = 0
	for i := 0; i < 10; i++ {
		if !json.Valid(read(t, c2, 5*time.Second)) {
			bad++
		}
	}
	sent := s2.Sent(md.Spot, md.Diff, "BTCUSDT")
	logged = 0
	for _, n := range sent.Malformed {
		logged += n
	}
	if bad != 3 || logged != 3 {
		t.Fatalf("client got %d malformed frames, send log %d, want 3 and 3", bad, logged)
	}
	waitFault(t, s2, md.Spot, FaultMalformed)
}

// TestMaxAgeWithShutdownNotice proves a connection reaching
// SIM_MAX_CONN_AGE first gets the serverShutdown event (wrapped as stream
// !serverShutdown on combined connections) and is then closed going away.
func TestMaxAgeWithShutdownNotice(t *testing.T) {
	s := newSim(t, func(c *Config) { c.MaxConnAge, c.ShutdownNotice = time.Second, 400*time.Millisecond })
	for _, tc := range []struct{ path, prefix string }{
		{"/stream?streams=btcusdt@depth@100ms", `{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":`},
		{"/ws/btcusdt@depth@100ms", `{"e":"serverShutdown","E":`},
	} {
		c := dial(t, s.WSURL(md.Spot)+tc.path, nil)
		msgs, err := readUntilClosed(t, c, 10*time.Second)
		if websocket.CloseStatus(err) != websocket.StatusGoingAway {
			t.Fatalf("%s: close %v, want going away", tc.path, err)
		}
		notice := -1
		for i, m := range msgs {
			if strings.HasPrefix(string(m), tc.prefix) {
				notice = i
				if !json.Valid(m) {
					t.Fatalf("notice %s", m)
				}
			}
		}
		if notice < 0 || notice == len(msgs)-1 && len(msgs) < 2 {
			t.Fatalf("%s: no serverShutdown before the close in %d messages", tc.path, len(msgs))
		}
	}
	waitFault(t, s, md.Spot, FaultShutdown)
	waitFault(t, s, md.Spot, FaultMaxAge)
}

// TestStallLosesFrames proves a stalled connection sends nothing for the
// stall and then resumes with a gap in its diff chain.
func TestStallLosesFrames(t *testing.T) {
	s := newSim(t, nil)
	c := dial(t, s.WSURL(md.Spot)+"/ws/btcusdt@depth@100ms", nil)
	var ev depthEvent
	_ = json.Unmarshal(read(t, c, 5*time.Second), &ev)
	if _, err := s.Inject(FaultRequest{Type: "stall", Market: "spot", Duration: Duration(500 * time.Millisecond)}); err != nil {
		t.Fatal(err)
	}
	prev := ev.FinalID
	for {
		var ev depthEvent
		if err := json.Unmarshal(read(t, c, 5*time.Second), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.FirstID != prev+1 {
			break // the frames of the stall were lost
		}
		prev = ev.FinalID
	}
	if f := waitFault(t, s, md.Spot, FaultStall); f.Duration != 500*time.Millisecond || !f.Injected {
		t.Fatalf("fault %+v", f)
	}
}

// TestReplaySkip proves a skip in replay mode removes the next recorded
// diff frames of the symbol from every client and records their range.
func TestReplaySkip(t *testing.T) {
	path := testdataFile(t, "spot_2021-10-12_4sym.rec.gz")
	rec := readRecording(t, path)
	s := newSim(t, func(c *Config) { c.Mode, c.Replay, c.Speed = ModeReplay, []string{path}, 0 })
	if err := s.Skip(md.Spot, "NKNUSDT", 2); err != nil {
		t.Fatal(err)
	}
	f := waitFault(t, s, md.Spot, FaultSkip)
	var want [][]byte
	skipped := 0
	for _, fr := range rec.frames {
		x, _ := replay.Index(fr.JSON)
		if x.Symbol == "NKNUSDT" && x.Kind == md.Diff && skipped < 2 {
			if skipped == 0 && x.FirstID != f.From || skipped == 1 && x.ID != f.To {
				t.Fatalf("fault %+v does not match skipped frame U %d u %d", f, x.FirstID, x.ID)
			}
			skipped++
			continue
		}
		want = append(want, fr.JSON)
	}
	c := dial(t, s.WSURL(md.Spot)+"/stream?streams="+strings.Join(rec.streams, "/"), nil)
	for i, w := range want {
		if got := read(t, c, 10*time.Second); !bytes.Equal(got, w) {
			t.Fatalf("frame %d: %.100s, want %.100s", i, got, w)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, b, err := c.Read(ctx); err == nil {
		t.Fatalf("extra frame %.100s", b)
	}
}
