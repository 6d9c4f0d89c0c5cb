package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// dataOf returns the "data" object of a combined frame as sent.
func dataOf(frame string) string {
	i := strings.Index(frame, `"data":`)
	return frame[i+len(`"data":`) : len(frame)-1]
}

// TestFramePath proves what happens to each kind of frame on a spot
// connection: depth frames are published with the exact data bytes, a
// correct envelope and dedup id; repeats are skipped; a sequence break
// becomes one gap record with the exact range; bad frames are
// quarantined by reason; other streams are counted and ignored.
func TestFramePath(t *testing.T) {
	h := startHarness(t, harnessOpts{symbols: "BTCUSDT"})
	c := h.ex.next(5 * time.Second)
	good := []string{spotDiff("BTCUSDT", 1, 5), spotDiff("BTCUSDT", 6, 10)}
	frames := []string{
		good[0], good[1],
		spotDiff("BTCUSDT", 6, 10), // repeat
		spotDiff("BTCUSDT", 16, 20),
		spotPartial("BTCUSDT", 100),
		spotPartial("BTCUSDT", 100), // unchanged book
		spotPartial("BTCUSDT", 105),
		spotDiff("BTCUSDT", 21, 22)[:40], // truncated
		`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":21,"u":22,"b":[],"a":[]}}`,
		`{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","u":22,"b":[],"a":[]}}`,
		spotDiff("ETHUSDT", 1, 2),
		`{"stream":"btcusdt@depth7@100ms","data":{"lastUpdateId":1,"bids":[],"asks":[]}}`,
		`{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT"}}`,
		spotDiff("BTCUSDT", 30, 25),
		`{"error":{"code":2,"msg":"Invalid request"},"id":99}`,
		spotDiff("BTCUSDT", 21, 25),
	}
	for _, f := range frames {
		if err := c.write(f); err != nil {
			t.Fatal(err)
		}
	}
	km := &h.e.met.kind
	waitFor(t, 5*time.Second, "frames processed", func() bool {
		return value(km[md.Diff].published) == 4 && value(km[md.Partial].published) == 2 &&
			value(h.e.met.v.controlErrors.WithLabelValues("spot")) == 1
	})
	msgs := h.pub.captured()
	if got, want := dataIDs(msgs, md.Diff, "BTCUSDT"), []int64{5, 10, 20, 25}; !slices.Equal(got, want) {
		t.Errorf("diff ids = %v, want %v", got, want)
	}
	if got, want := dataIDs(msgs, md.Partial, "BTCUSDT"), []int64{100, 105}; !slices.Equal(got, want) {
		t.Errorf("partial ids = %v, want %v", got, want)
	}
	gaps := gapRecords(msgs)
	if len(gaps) != 1 || gaps[0].Reason != envelope.ReasonSequence || gaps[0].AfterID != 10 || gaps[0].ResumePrevID != 15 || gaps[0].StreamKind != md.Diff {
		t.Errorf("gap records = %+v, want one sequence gap (10, 15] of diff", gaps)
	}
	// The first message: exact payload, envelope and dedup id.
	m := msgs[0]
	if string(m.env.Payload) != dataOf(good[0]) {
		t.Errorf("payload %s, want the data object %s", m.env.Payload, dataOf(good[0]))
	}
	if m.id != "spot.diff.BTCUSDT.5" || m.subject != "md.binance.spot.diff.BTCUSDT" {
		t.Errorf("id %q subject %q", m.id, m.subject)
	}
	e := m.env
	if e.Market != md.Spot || e.FirstID != 1 || e.FinalID != 5 || e.EventMs != 1700000000000 || e.Source != "test" || e.ReceivedNs <= 0 {
		t.Errorf("envelope %+v", e)
	}
	for _, m := range msgs {
		if m.env.Kind == md.Gap && m.id != "spot.gap.BTCUSDT.10.diff.15.test" {
			t.Errorf("gap id %q", m.id)
		}
	}
	dlq := func(kind md.Kind, reason string) float64 {
		return value(h.e.met.v.dlq.WithLabelValues("spot", kind.String(), reason))
	}
	for _, w := range []struct {
		kind   md.Kind
		reason string
	}{
		{md.KindUnknown, dlqMalformed}, {md.Diff, dlqSymbolMismatch}, {md.Diff, dlqMissingField},
		{md.Diff, dlqUnexpectedStream}, {md.KindUnknown, dlqBadStream}, {md.Diff, dlqImpossibleValue},
	} {
		if got := dlq(w.kind, w.reason); got != 1 {
			t.Errorf("dlq %s %s = %v, want 1", w.kind, w.reason, got)
		}
	}
	if got := value(h.e.ignoredNotDepth); got != 1 {
		t.Errorf("ignored not_depth = %v, want 1", got)
	}
	if d, p := value(km[md.Diff].duplicates), value(km[md.Partial].duplicates); d != 1 || p != 1 {
		t.Errorf("duplicates diff %v partial %v, want 1 and 1", d, p)
	}
	if err := h.e.Ready(); err != nil {
		t.Errorf("not ready: %v", err)
	}
}

// TestFuturesFramePath proves the USD-M chain (pu == previous u, ids not
// consecutive) and that pu >= U is quarantined as impossible.
func TestFuturesFramePath(t *testing.T) {
	h := startHarness(t, harnessOpts{market: md.Futures, symbols: "ETHUSDT", mut: func(c *Config) { c.PartialLevels = 0 }})
	c := h.ex.next(5 * time.Second)
	for _, f := range []string{
		futuresDiff("ETHUSDT", 100, 130, 90),
		futuresDiff("ETHUSDT", 140, 170, 130),
		futuresDiff("ETHUSDT", 180, 200, 175), // 170 < u <= 175 missing
		futuresDiff("ETHUSDT", 210, 220, 210), // pu >= U: impossible
		futuresDiff("ETHUSDT", 230, 240, 200),
	} {
		if err := c.write(f); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "frames", func() bool { return value(h.e.met.kind[md.Diff].published) == 4 })
	msgs := h.pub.captured()
	if got, want := dataIDs(msgs, md.Diff, "ETHUSDT"), []int64{130, 170, 200, 240}; !slices.Equal(got, want) {
		t.Errorf("ids %v, want %v", got, want)
	}
	if g := gapRecords(msgs); len(g) != 1 || g[0].AfterID != 170 || g[0].ResumePrevID != 175 {
		t.Errorf("gaps %+v, want (170, 175]", g)
	}
	if got := value(h.e.met.v.dlq.WithLabelValues("futures", "diff", dlqImpossibleValue)); got != 1 {
		t.Errorf("impossible dlq = %v", got)
	}
	if m := msgs[0]; m.env.PrevID != 90 || m.env.TxMs != 1699999999999 || m.id != "futures.diff.ETHUSDT.130" {
		t.Errorf("envelope %+v id %s", m.env, m.id)
	}
}

// TestDeadLetterStored proves that a quarantined frame reaches the DLQ
// stream with its raw bytes and reason header, and that the connection
// carries on.
func TestDeadLetterStored(t *testing.T) {
	h := startHarness(t, harnessOpts{symbols: "BTCUSDT", realNATS: true})
	c := h.ex.next(5 * time.Second)
	bad := spotDiff("BTCUSDT", 1, 5)[:50]
	for _, f := range []string{bad, spotDiff("BTCUSDT", 1, 5)} {
		if err := c.write(f); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "stored", func() bool {
		return len(h.stored(md.StreamDLQ)) == 1 && len(h.stored(md.StreamMarketData)) == 1
	})
	dm := h.stored(md.StreamDLQ)[0]
	if dm.Subject() != "dlq.spot-ws.spot.unknown" || string(dm.Data()) != bad || dm.Headers().Get(HdrReason) != dlqMalformed {
		t.Errorf("dlq message %s %q reason %q", dm.Subject(), dm.Data(), dm.Headers().Get(HdrReason))
	}
}

// TestSubscriptionPacing proves the subscription strategy for a large
// connection: the URL carries what fits in maxURLLen, SUBSCRIBE messages
// carry the rest in batches of at most subscribeBatch, paced so that no
// one-second window sees more than the burst plus the rate (below the
// exchange's incoming-message limit), and every stream ends up
// subscribed exactly once.
func TestSubscriptionPacing(t *testing.T) {
	for _, m := range md.Markets {
		t.Run(m.String(), func(t *testing.T) {
			var syms []string
			for i := range 300 {
				syms = append(syms, fmt.Sprintf("S%03dUSDT", i))
			}
			h := startHarness(t, harnessOpts{market: m, symbols: strings.Join(syms, ","), mut: func(c *Config) { c.SymbolsPerConn = 300 }})
			c := h.ex.next(5 * time.Second)
			waitFor(t, 20*time.Second, "every stream subscribed", func() bool {
				for _, s := range syms {
					l := strings.ToLower(s)
					if !c.subscribed(l+"@depth@100ms") || !c.subscribed(l+"@depth20@100ms") {
						return false
					}
				}
				return true
			})
			msgs := c.messages()
			limit := binance.ProfileFor(m).MaxIncomingMsgsPerSec
			seen := map[string]int{}
			for _, in := range msgs {
				var req struct {
					Method string   `json:"method"`
					Params []string `json:"params"`
				}
				if err := json.Unmarshal([]byte(in.msg), &req); err != nil || req.Method != "SUBSCRIBE" {
					t.Fatalf("unexpected message %s", in.msg)
				}
				if len(req.Params) > subscribeBatch {
					t.Errorf("SUBSCRIBE with %d streams", len(req.Params))
				}
				for _, p := range req.Params {
					seen[p]++
				}
			}
			url, rest := splitStreams(h.e.wsBase, h.e.groups[0].names())
			if len(url) > maxURLLen || len(rest)+strings.Count(url, "/")-2 != 600 {
				t.Errorf("url %d bytes, %d streams left for SUBSCRIBE", len(url), len(rest))
			}
			if len(seen) != len(rest) {
				t.Errorf("%d streams subscribed by message, want %d", len(seen), len(rest))
			}
			for s, n := range seen {
				if n != 1 {
					t.Errorf("%s subscribed %d times", s, n)
				}
			}
			if want := (len(rest) + subscribeBatch - 1) / subscribeBatch; len(msgs) != want {
				t.Errorf("%d SUBSCRIBE messages, want %d", len(msgs), want)
			}
			maxPerSec := 1 + int(controlRate(limit))
			for i := range msgs {
				n := 0
				for j := i; j < len(msgs) && msgs[j].at.Sub(msgs[i].at) < time.Second; j++ {
					n++
				}
				if n > maxPerSec || n >= limit {
					t.Errorf("%d messages within one second (pace allows %d, limit %d)", n, maxPerSec, limit)
				}
			}
		})
	}
}

// names lists the group's stream names (for tests).
func (g *group) names() []string {
	n, _ := g.membership()
	return n
}

// TestConnectionAttemptsPaced proves that connection attempts go through
// the attempt bucket: with a burst of 2 and 4 per second, the i-th dial
// (i >= 2) happens no earlier than (i-1)/4 s after the first.
func TestConnectionAttemptsPaced(t *testing.T) {
	start := time.Now()
	h := startHarness(t, harnessOpts{symbols: "AUSDT,BUSDT,CUSDT,DUSDT,EUSDT,FUSDT", mut: func(c *Config) { c.SymbolsPerConn = 1 },
		opts: Options{AttemptLimiter: NewTokenBucket(4, 2)}})
	for range 6 {
		h.ex.next(10 * time.Second)
	}
	h.ex.mu.Lock()
	dials := slices.Clone(h.ex.dials)
	h.ex.mu.Unlock()
	slices.SortFunc(dials, func(a, b time.Time) int { return a.Compare(b) })
	for i := 2; i < len(dials); i++ {
		if min := start.Add(time.Duration(i-1) * 250 * time.Millisecond); dials[i].Before(min) {
			t.Errorf("dial %d at +%v, before the bucket allows (+%v)", i, dials[i].Sub(start), min.Sub(start))
		}
	}
}

// TestPingAnswered proves that the engine answers server pings (coder/
// websocket answers them while the read loop is in Reader): the server's
// Ping returns only when the pong arrives.
func TestPingAnswered(t *testing.T) {
	h := startHarness(t, harnessOpts{symbols: "BTCUSDT"})
	c := h.ex.next(5 * time.Second)
	for i := range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			t.Fatalf("ping %d not answered: %v", i, err)
		}
	}
}

// TestStallReconnect proves that a connection that delivers nothing for
// the stall timeout is replaced, and that a loss across the reconnect is
// recorded as a disconnect gap with the exact range.
func TestStallReconnect(t *testing.T) {
	h := startHarness(t, harnessOpts{symbols: "BTCUSDT", mut: func(c *Config) { c.StallTimeout = time.Second; c.PartialLevels = 0 }})
	c1 := h.ex.next(5 * time.Second)
	_ = c1.write(spotDiff("BTCUSDT", 1, 5))
	c2 := h.ex.next(10 * time.Second) // after the stall timeout
	if got := value(h.e.met.v.reconnects.WithLabelValues("spot", reasonStall)); got != 1 {
		t.Errorf("reconnects{stall} = %v, want 1", got)
	}
	waitFor(t, 5*time.Second, "subscribed", func() bool { return c2.subscribed("btcusdt@depth@100ms") })
	_ = c2.write(spotDiff("BTCUSDT", 9, 12))
	waitFor(t, 5*time.Second, "published", func() bool { return value(h.e.met.kind[md.Diff].published) == 2 })
	g := gapRecords(h.pub.captured())
	if len(g) != 1 || g[0].Reason != envelope.ReasonDisconnect || g[0].AfterID != 5 || g[0].ResumePrevID != 8 {
		t.Fatalf("gaps %+v, want one disconnect gap (5, 8]", g)
	}
}

// TestDropReconnect proves reconnection after an abrupt drop, and that a
// reconnect that lost nothing records nothing.
func TestDropReconnect(t *testing.T) {
	h := startHarness(t, harnessOpts{symbols: "BTCUSDT", mut: func(c *Config) { c.PartialLevels = 0 }})
	c1 := h.ex.next(5 * time.Second)
	_ = c1.write(spotDiff("BTCUSDT", 1, 5))
	waitFor(t, 5*time.Second, "first frame", func() bool { return value(h.e.met.kind[md.Diff].published) == 1 })
	_ = c1.ws.CloseNow()
	c2 := h.ex.next(5 * time.Second)
	waitFor(t, 5*time.Second, "subscribed", func() bool { return c2.subscribed("btcusdt@depth@100ms") })
	_ = c2.write(spotDiff("BTCUSDT", 6, 7))
	_ = c2.write(spotDiff("BTCUSDT", 8, 9))
	waitFor(t, 5*time.Second, "published", func() bool { return value(h.e.met.kind[md.Diff].published) == 3 })
	if g := gapRecords(h.pub.captured()); len(g) != 0 {
		t.Fatalf("gaps %+v after a lossless reconnect", g)
	}
	if got := value(h.e.met.v.reconnects.WithLabelValues("spot", reasonDrop)); got != 1 {
		t.Errorf("reconnects{drop} = %v, want 1", got)
	}
}

// TestSubscribeRefused proves that a refused SUBSCRIBE fails the
// connection (retried with backoff, not ready meanwhile) and that the
// engine recovers when the exchange accepts again.
func TestSubscribeRefused(t *testing.T) {
	var syms []string
	for i := range 150 { // more than the URL carries: SUBSCRIBE is needed
		syms = append(syms, fmt.Sprintf("R%03dUSDT", i))
	}
	h := startHarness(t, harnessOpts{symbols: strings.Join(syms, ","), mut: func(c *Config) { c.SymbolsPerConn = 150 },
		exSetup: func(ex *fakeExchange) { ex.refuse.Store(true) }})
	waitFor(t, 10*time.Second, "refused twice", func() bool {
		return value(h.e.met.v.reconnects.WithLabelValues("spot", reasonSubscribe)) >= 2
	})
	if h.e.Ready() == nil {
		t.Error("ready while subscriptions are refused")
	}
	h.ex.refuse.Store(false)
	waitFor(t, 10*time.Second, "ready", func() bool {
		for _, c := range h.ex.live("r149usdt@depth20@100ms") {
			_ = c.write(spotDiff("R000USDT", 1, 2))
		}
		return h.e.Ready() == nil
	})
}

// feeder plays a spot exchange: every interval it sends each symbol's
// next diff event (3 update ids) to every open connection subscribed to
// it. Connections with odd ids lag by lag (in order), so rotations go
// from a lagging connection to a prompt one and back.
type feeder struct {
	ex     *fakeExchange
	syms   []string
	lag    time.Duration
	mu     sync.Mutex
	next   map[string]int64
	sent   map[string][]int64 // u of every event sent to at least one connection
	queues map[*fakeConn]chan lagged
	stop   chan struct{}
	done   chan struct{}
}

type lagged struct {
	frame string
	due   time.Time
}

func startFeeder(t *testing.T, ex *fakeExchange, syms []string, interval, lag time.Duration) *feeder {
	f := &feeder{ex: ex, syms: syms, lag: lag, next: map[string]int64{}, sent: map[string][]int64{},
		queues: map[*fakeConn]chan lagged{}, stop: make(chan struct{}), done: make(chan struct{})}
	for _, s := range syms {
		f.next[s] = 1
	}
	go f.run(interval)
	t.Cleanup(f.halt)
	return f
}

func (f *feeder) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

func (f *feeder) run(interval time.Duration) {
	defer close(f.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-t.C:
		}
		for _, s := range f.syms {
			f.mu.Lock()
			U := f.next[s]
			u := U + 2
			f.next[s] = u + 1
			f.mu.Unlock()
			frame := spotDiff(s, U, u)
			conns := f.ex.live(strings.ToLower(s) + "@depth@100ms")
			n := 0
			for _, c := range conns {
				if f.lag > 0 && c.id%2 == 1 {
					f.queue(c) <- lagged{frame, time.Now().Add(f.lag)}
					n++
					continue
				}
				if c.write(frame) == nil {
					n++
				}
			}
			if n > 0 {
				f.mu.Lock()
				f.sent[s] = append(f.sent[s], u)
				f.mu.Unlock()
			}
		}
	}
}

// queue returns the lagged writer of c.
func (f *feeder) queue(c *fakeConn) chan lagged {
	if q, ok := f.queues[c]; ok {
		return q
	}
	q := make(chan lagged, 100000)
	f.queues[c] = q
	go func() {
		for l := range q {
			time.Sleep(time.Until(l.due))
			if c.write(l.frame) != nil {
				return
			}
		}
	}()
	return q
}

func (f *feeder) sentIDs(s string) []int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent[s])
}

// checkExact fails unless the captured diff ids of each symbol are
// exactly the ids sent from the first captured one on (no gap, no
// duplicate), and no gap record was published.
func checkExact(t *testing.T, h *harness, f *feeder) {
	t.Helper()
	msgs := h.pub.captured()
	for _, s := range f.syms {
		got := dataIDs(msgs, md.Diff, s)
		sent := f.sentIDs(s)
		if len(got) == 0 {
			t.Fatalf("%s: nothing captured", s)
		}
		i := slices.Index(sent, got[0])
		if i < 0 {
			t.Fatalf("%s: first captured id %d was never sent", s, got[0])
		}
		want := sent[i:]
		if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("%s: captured %d ids, not the sent sequence (first diff at %d)", s, len(got), firstDiff(got, want))
		}
		if len(want)-len(got) > 2 { // the last one or two may still be in flight at halt
			t.Fatalf("%s: %d sent ids missing at the end", s, len(want)-len(got))
		}
	}
	if g := gapRecords(msgs); len(g) != 0 {
		t.Fatalf("gap records %+v", g)
	}
}

func firstDiff(a, b []int64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestRotation proves make-before-break rotation at the maximum age:
// several rotations, each publishes every event once, with no gap, also
// when the old connection lags the new one by more than a frame interval
// (the new one holds back what it may not decide on and replays it at
// the promotion).
func TestRotation(t *testing.T) {
	for _, lag := range []time.Duration{0, 250 * time.Millisecond} {
		t.Run(fmt.Sprintf("old lags %v", lag), func(t *testing.T) {
			syms := []string{"AUSDT", "BUSDT", "CUSDT"}
			h := startHarness(t, harnessOpts{symbols: strings.Join(syms, ","), mut: func(c *Config) { c.MaxConnAge = 2 * time.Second; c.PartialLevels = 0 }})
			f := startFeeder(t, h.ex, syms, 20*time.Millisecond, lag)
			waitFor(t, 30*time.Second, "three rotations", func() bool {
				return value(h.e.met.v.rotations.WithLabelValues("spot", "max_age")) >= 3
			})
			f.halt()
			time.Sleep(lag + 200*time.Millisecond)
			checkExact(t, h, f)
			if lag > 0 && value(h.e.met.kind[md.Diff].deferred) == 0 {
				t.Error("the lagging case deferred nothing: the hand-over was not exercised")
			}
			if got := value(h.e.met.v.reconnects.WithLabelValues("spot", reasonDrop)); got != 0 {
				t.Errorf("reconnects during rotation: %v", got)
			}
		})
	}
}

// TestServerShutdownRotation proves that a serverShutdown notice starts a
// make-before-break rotation right away, without a gap.
func TestServerShutdownRotation(t *testing.T) {
	syms := []string{"AUSDT"}
	h := startHarness(t, harnessOpts{symbols: "AUSDT", mut: func(c *Config) { c.PartialLevels = 0 }})
	c1 := h.ex.next(5 * time.Second)
	f := startFeeder(t, h.ex, syms, 20*time.Millisecond, 0)
	time.Sleep(300 * time.Millisecond)
	_ = c1.write(`{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1700000000000}}`)
	h.ex.next(5 * time.Second)
	select {
	case <-c1.done:
	case <-time.After(10 * time.Second):
		t.Fatal("old connection not closed after the rotation")
	}
	time.Sleep(200 * time.Millisecond)
	f.halt()
	time.Sleep(100 * time.Millisecond)
	checkExact(t, h, f)
	if got := value(h.e.met.v.rotations.WithLabelValues("spot", "server_shutdown")); got != 1 {
		t.Errorf("rotations{server_shutdown} = %v", got)
	}
}

// TestOverflow proves the buffer-full accounting: frames refused by the
// publisher are counted per stream and reported as one buffer_overflow
// record per episode with the exact range and count, published once the
// buffer takes messages again; partial streams get the same.
func TestOverflow(t *testing.T) {
	h := startHarness(t, harnessOpts{symbols: "BTCUSDT"})
	c := h.ex.next(5 * time.Second)
	send := func(fs ...string) {
		for _, f := range fs {
			if err := c.write(f); err != nil {
				t.Fatal(err)
			}
		}
	}
	processed := func(n float64) func() bool {
		return func() bool {
			return value(h.e.met.kind[md.Diff].frames)+value(h.e.met.kind[md.Partial].frames) == n
		}
	}
	send(spotDiff("BTCUSDT", 1, 5), spotPartial("BTCUSDT", 5))
	waitFor(t, 5*time.Second, "2 frames", processed(2))
	h.pub.full.Store(true)
	send(spotDiff("BTCUSDT", 6, 8), spotPartial("BTCUSDT", 8), spotDiff("BTCUSDT", 9, 12), spotDiff("BTCUSDT", 13, 13), spotPartial("BTCUSDT", 13))
	waitFor(t, 5*time.Second, "7 frames", processed(7))
	if g := gapRecords(h.pub.captured()); len(g) != 0 {
		t.Fatalf("records published while the buffer is full: %+v", g)
	}
	h.pub.full.Store(false)
	send(spotDiff("BTCUSDT", 14, 20))
	waitFor(t, 5*time.Second, "both records", func() bool { return len(gapRecords(h.pub.captured())) == 2 })
	var diff, part envelope.Gap
	for _, g := range gapRecords(h.pub.captured()) {
		if g.StreamKind == md.Diff {
			diff = g
		} else {
			part = g
		}
	}
	if diff.Reason != envelope.ReasonBufferOverflow || diff.AfterID != 5 || diff.ResumePrevID != 13 || diff.FramesLost != 3 {
		t.Errorf("diff record %+v, want buffer_overflow (5, 13] 3 frames", diff)
	}
	// The partial stream's overflow is closed by the retry loop once the
	// buffer has room, without waiting for the next partial frame.
	if part.Reason != envelope.ReasonBufferOverflow || part.AfterID != 5 || part.ResumePrevID != 13 || part.FramesLost != 2 {
		t.Errorf("partial record %+v, want buffer_overflow (5, 13] 2 frames", part)
	}
	if got := dataIDs(h.pub.captured(), md.Diff, "BTCUSDT"); !slices.Equal(got, []int64{5, 20}) {
		t.Errorf("diff ids %v", got)
	}
}

// TestShutdownPublishesOpenOverflow proves that an overflow still open
// when the engine stops is closed and published during shutdown.
func TestShutdownPublishesOpenOverflow(t *testing.T) {
	h := startHarness(t, harnessOpts{symbols: "BTCUSDT", mut: func(c *Config) { c.PartialLevels = 0 }})
	c := h.ex.next(5 * time.Second)
	_ = c.write(spotDiff("BTCUSDT", 1, 5))
	waitFor(t, 5*time.Second, "first", func() bool { return value(h.e.met.kind[md.Diff].published) == 1 })
	h.pub.full.Store(true)
	_ = c.write(spotDiff("BTCUSDT", 6, 9))
	waitFor(t, 5*time.Second, "dropped", func() bool { return value(h.e.met.kind[md.Diff].dropped) == 1 })
	go func() { time.Sleep(300 * time.Millisecond); h.pub.full.Store(false) }()
	if err := h.stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	g := gapRecords(h.pub.captured())
	if len(g) != 1 || g[0].AfterID != 5 || g[0].ResumePrevID != 9 || g[0].FramesLost != 1 {
		t.Fatalf("records %+v, want (5, 9] 1 frame", g)
	}
}

// TestSymbolRefresh proves SYMBOLS=all: exchangeInfo is re-read, a new
// listing is subscribed, a delisted symbol dropped, and the symbols kept
// lose nothing through the membership rotation.
func TestSymbolRefresh(t *testing.T) {
	var mu sync.Mutex
	listed := []string{"AUSDT", "BUSDT", "CUSDT"}
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var b strings.Builder
		b.WriteString(`{"symbols":[`)
		for i, s := range listed {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"symbol":%q,"status":"TRADING"}`, s)
		}
		b.WriteString(`]}`)
		_, _ = w.Write([]byte(b.String()))
	}))
	t.Cleanup(rest.Close)
	h := startHarness(t, harnessOpts{symbols: "all", mut: func(c *Config) {
		c.SpotRESTURL = rest.URL
		c.SymbolsRefresh = time.Second
		c.SymbolsPerConn = 2
		c.PartialLevels = 0
	}})
	f := startFeeder(t, h.ex, []string{"AUSDT", "BUSDT", "CUSDT", "DUSDT"}, 20*time.Millisecond, 0)
	waitFor(t, 10*time.Second, "A, B, C flowing", func() bool {
		msgs := h.pub.captured()
		return len(dataIDs(msgs, md.Diff, "AUSDT")) > 5 && len(dataIDs(msgs, md.Diff, "CUSDT")) > 5
	})
	mu.Lock()
	listed = []string{"AUSDT", "CUSDT", "DUSDT"}
	mu.Unlock()
	waitFor(t, 15*time.Second, "D subscribed and B dropped", func() bool {
		return len(h.ex.live("dusdt@depth@100ms")) > 0 && len(h.ex.live("busdt@depth@100ms")) == 0 &&
			len(dataIDs(h.pub.captured(), md.Diff, "DUSDT")) > 5
	})
	time.Sleep(300 * time.Millisecond)
	f.halt()
	time.Sleep(100 * time.Millisecond)
	msgs := h.pub.captured()
	for _, s := range []string{"AUSDT", "CUSDT"} {
		got := dataIDs(msgs, md.Diff, s)
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+3 {
				t.Fatalf("%s: %d follows %d", s, got[i], got[i-1])
			}
		}
	}
	if g := gapRecords(msgs); len(g) != 0 {
		t.Fatalf("gap records %+v", g)
	}
	h.e.mu.Lock()
	n := len(h.e.syms)
	h.e.mu.Unlock()
	if n != 3 {
		t.Fatalf("%d symbols captured, want 3", n)
	}
}

// TestSnapshotRequest proves that a diff gap sends one best-effort
// ctl.snapshot.<market>.<SYMBOL> request (answered here by a test
// responder) whose body carries min_update_id, the lowest lastUpdateId a
// snapshot needs for the first diff after the gap to bridge it (spot
// U-1, USD-M U); that a second gap of the same symbol within the rate
// limit is deferred, not dropped: one more request, with the later gap's
// min_update_id, once the interval has passed; and that a request nobody
// answers is counted, not waited for.
func TestSnapshotRequest(t *testing.T) {
	for _, tt := range []struct {
		m       md.Market
		frames  []string // BTCUSDT: three gaps; ETHUSDT: one gap, nobody answers
		wantMin int64
		wantDef int64 // the deferred request's: the last gap's
	}{
		{md.Spot, []string{
			spotDiff("BTCUSDT", 1, 5), spotDiff("BTCUSDT", 10, 12), spotDiff("BTCUSDT", 20, 22), spotDiff("BTCUSDT", 30, 31),
			spotDiff("ETHUSDT", 1, 5), spotDiff("ETHUSDT", 10, 12),
		}, 9, 29},
		{md.Futures, []string{
			futuresDiff("BTCUSDT", 1, 5, 0), futuresDiff("BTCUSDT", 10, 12, 8), futuresDiff("BTCUSDT", 20, 22, 17), futuresDiff("BTCUSDT", 30, 31, 27),
			futuresDiff("ETHUSDT", 1, 5, 0), futuresDiff("ETHUSDT", 10, 12, 8),
		}, 10, 30},
	} {
		t.Run(tt.m.String(), func(t *testing.T) {
			h := startHarness(t, harnessOpts{market: tt.m, symbols: "BTCUSDT,ETHUSDT", realNATS: true, mut: func(c *Config) { c.PartialLevels = 0 }})
			subject := md.ControlSubject(tt.m, "BTCUSDT")
			got := make(chan *nats.Msg, 10)
			sub, err := h.conn.NC.Subscribe(subject, func(m *nats.Msg) {
				got <- m
				_ = m.Respond([]byte(`{"last_update_id":100}`))
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			c := h.ex.next(5 * time.Second)
			for _, f := range tt.frames {
				if err := c.write(f); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case m := <-got:
				req, err := md.ParseSnapshotRequest(m.Data, tt.m, "BTCUSDT")
				want := md.SnapshotRequest{Market: tt.m.String(), Symbol: "BTCUSDT", Source: "test", Reason: "gap", MinUpdateID: tt.wantMin}
				if m.Subject != subject || err != nil || req != want {
					t.Errorf("request %s %s: %+v (%v), want %+v", m.Subject, m.Data, req, err, want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no snapshot request")
			}
			sr := func(result string) float64 {
				return value(h.e.met.v.snapshotReqs.WithLabelValues(tt.m.String(), result))
			}
			waitFor(t, 10*time.Second, "results counted", func() bool {
				return sr("ok") == 1 && sr("deferred") == 2 && sr("no_responders") == 1
			})
			first := time.Now()
			select {
			case m := <-got:
				if d := time.Since(first); d < snapMinInterval-time.Second {
					t.Errorf("deferred request %v after the first, want about %v", d, snapMinInterval)
				}
				req, err := md.ParseSnapshotRequest(m.Data, tt.m, "BTCUSDT")
				if err != nil || req.MinUpdateID != tt.wantDef {
					t.Errorf("deferred request %s: %+v (%v), want min_update_id %d", m.Data, req, err, tt.wantDef)
				}
			case <-time.After(snapMinInterval + 5*time.Second):
				t.Fatal("no deferred request for the gaps within the rate limit")
			}
			waitFor(t, 5*time.Second, "deferred request answered", func() bool { return sr("ok") == 2 })
			select {
			case m := <-got:
				t.Errorf("a third request: %s", m.Data)
			case <-time.After(500 * time.Millisecond):
			}
		})
	}
}
