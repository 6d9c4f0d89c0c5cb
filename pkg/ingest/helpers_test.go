package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

// fakeExchange is a local websocket server that speaks enough of
// Binance's combined-stream protocol for the engine: /stream?streams=,
// SUBSCRIBE with replies, and frames the test pushes.
type fakeExchange struct {
	t   testing.TB
	srv *httptest.Server

	mu      sync.Mutex
	conns   []*fakeConn
	dials   []time.Time
	connCh  chan *fakeConn
	refuse  atomic.Bool // answer SUBSCRIBE with an error
	silence atomic.Bool // accept SUBSCRIBE but never answer
}

// fakeConn is one client connection of the fake exchange.
type fakeConn struct {
	ex      *fakeExchange
	ws      *websocket.Conn
	id      int
	mu      sync.Mutex
	streams map[string]bool
	inbound []inbound
	done    chan struct{}
}

type inbound struct {
	at  time.Time
	msg string
}

func newFakeExchange(t testing.TB) *fakeExchange {
	t.Helper()
	ex := &fakeExchange{t: t, connCh: make(chan *fakeConn, 1000)}
	ex.srv = httptest.NewServer(http.HandlerFunc(ex.serve))
	t.Cleanup(func() {
		ex.mu.Lock()
		for _, c := range ex.conns {
			_ = c.ws.CloseNow()
		}
		ex.mu.Unlock()
		ex.srv.Close()
	})
	return ex
}

func (ex *fakeExchange) url() string { return "ws" + strings.TrimPrefix(ex.srv.URL, "http") }

func (ex *fakeExchange) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stream" {
		http.NotFound(w, r)
		return
	}
	ws, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c := &fakeConn{ex: ex, ws: ws, streams: map[string]bool{}, done: make(chan struct{})}
	if q := r.URL.Query().Get("streams"); q != "" {
		for _, s := range strings.Split(q, "/") {
			c.streams[s] = true
		}
	}
	ex.mu.Lock()
	c.id = len(ex.conns) + 1
	ex.conns = append(ex.conns, c)
	ex.dials = append(ex.dials, time.Now())
	ex.mu.Unlock()
	ex.connCh <- c
	defer close(c.done)
	for {
		_, msg, err := ws.Read(context.Background())
		if err != nil {
			return
		}
		c.mu.Lock()
		c.inbound = append(c.inbound, inbound{time.Now(), string(msg)})
		c.mu.Unlock()
		var req struct {
			Method string   `json:"method"`
			Params []string `json:"params"`
			ID     int64    `json:"id"`
		}
		if json.Unmarshal(msg, &req) != nil || req.Method != "SUBSCRIBE" {
			continue
		}
		switch {
		case ex.silence.Load():
			continue
		case ex.refuse.Load():
			c.write(fmt.Sprintf(`{"error":{"code":2,"msg":"Invalid request"},"id":%d}`, req.ID))
			continue
		}
		c.mu.Lock()
		for _, s := range req.Params {
			c.streams[s] = true
		}
		c.mu.Unlock()
		c.write(fmt.Sprintf(`{"result":null,"id":%d}`, req.ID))
	}
}

// next returns the next connection accepted, failing after timeout.
func (ex *fakeExchange) next(timeout time.Duration) *fakeConn {
	ex.t.Helper()
	select {
	case c := <-ex.connCh:
		return c
	case <-time.After(timeout):
		ex.t.Fatalf("no connection within %v", timeout)
		return nil
	}
}

// live returns the open connections subscribed to stream.
func (ex *fakeExchange) live(stream string) []*fakeConn {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	var out []*fakeConn
	for _, c := range ex.conns {
		select {
		case <-c.done:
			continue
		default:
		}
		c.mu.Lock()
		ok := c.streams[stream]
		c.mu.Unlock()
		if ok {
			out = append(out, c)
		}
	}
	return out
}

func (c *fakeConn) write(frame string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, []byte(frame))
}

func (c *fakeConn) subscribed(stream string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streams[stream]
}

func (c *fakeConn) messages() []inbound {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]inbound(nil), c.inbound...)
}

// Frame builders.

func spotDiff(sym string, first, last int64) string {
	return fmt.Sprintf(`{"stream":"%s@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"s":"%s","U":%d,"u":%d,"b":[["1.00","2.00"]],"a":[["1.01","0.00"]]}}`,
		strings.ToLower(sym), sym, first, last)
}

func spotPartial(sym string, last int64) string {
	return fmt.Sprintf(`{"stream":"%s@depth20@100ms","data":{"lastUpdateId":%d,"bids":[["1.00","2.00"]],"asks":[["1.01","3.00"]]}}`,
		strings.ToLower(sym), last)
}

func futuresDiff(sym string, first, last, prev int64) string {
	return fmt.Sprintf(`{"stream":"%s@depth@100ms","data":{"e":"depthUpdate","E":1700000000000,"T":1699999999999,"s":"%s","U":%d,"u":%d,"pu":%d,"b":[["1.0","2"]],"a":[]}}`,
		strings.ToLower(sym), sym, first, last, prev)
}

// capturedMsg is one message the capturing publisher accepted.
type capturedMsg struct {
	subject string
	env     envelope.Envelope
	id      string
}

// capturePub wraps a real bus.Publisher (for its messages) and records
// what the engine enqueues instead of publishing it; full makes Enqueue
// refuse like a full buffer.
type capturePub struct {
	real   *bus.Publisher
	market md.Market
	full   atomic.Bool
	mu     sync.Mutex
	msgs   []capturedMsg
	refuse int
}

func newCapturePub(t testing.TB, m md.Market) *capturePub {
	t.Helper()
	s := bustest.RunServer(t)
	nc := bustest.Connect(t, s.ClientURL())
	p, err := bus.NewPublisher(nc, bus.PublisherConfig{MaxBytes: 1 << 30}, nil, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = p.Close(ctx)
	})
	return &capturePub{real: p, market: m}
}

func (p *capturePub) NewMsg() *bus.Msg          { return p.real.NewMsg() }
func (p *capturePub) NewMsgSize(n int) *bus.Msg { return p.real.NewMsgSize(n) }
func (p *capturePub) Recycle(m *bus.Msg)        { p.real.Recycle(m) }
func (p *capturePub) Buffered() int64 {
	if p.full.Load() {
		return 1 << 40
	}
	return 0
}

func (p *capturePub) Enqueue(m *bus.Msg) error {
	defer p.real.Recycle(m)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.full.Load() {
		p.refuse++
		return bus.ErrFull
	}
	env, id, err := splitMsg(bytes.Clone(m.Buf))
	if err != nil {
		panic(err)
	}
	subj := md.Subject(env.Market, env.Kind, env.Symbol)
	p.msgs = append(p.msgs, capturedMsg{subject: subj, env: env, id: id})
	return nil
}

func (p *capturePub) captured() []capturedMsg {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]capturedMsg(nil), p.msgs...)
}

// splitMsg splits a message buffer (envelope bytes, then Nats-Msg-Id)
// at the one point where the envelope decodes and re-encodes exactly and
// its dedup id is the rest.
func splitMsg(buf []byte) (envelope.Envelope, string, error) {
	for i := len(buf) - 1; i > 0; i-- {
		var env envelope.Envelope
		if envelope.Unmarshal(buf[:i], &env) != nil {
			continue
		}
		if !bytes.Equal(env.AppendMarshal(nil), buf[:i]) {
			continue
		}
		id, err := env.AppendMsgID(nil)
		if err == nil && bytes.Equal(id, buf[i:]) {
			return env, string(id), nil
		}
	}
	return envelope.Envelope{}, "", errors.New("message buffer does not split into envelope and dedup id")
}

// harness runs one engine against a fake exchange.
type harness struct {
	t      testing.TB
	ex     *fakeExchange
	pub    *capturePub // nil with realNATS
	conn   *bus.Conn   // nil without realNATS
	e      *Engine
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error

	stopOnce sync.Once
	runErr   error
}

type harnessOpts struct {
	market   md.Market
	symbols  string
	mut      func(*Config)
	opts     Options
	realNATS bool                // publish to an embedded JetStream instead of capturing
	exSetup  func(*fakeExchange) // runs before the engine starts
}

func startHarness(t testing.TB, ho harnessOpts) *harness {
	t.Helper()
	if ho.market == md.MarketUnknown {
		ho.market = md.Spot
	}
	ex := newFakeExchange(t)
	if ho.exSetup != nil {
		ho.exSetup(ex)
	}
	cfg := DefaultConfig()
	cfg.Symbols = ho.symbols
	cfg.SourceID = "test"
	cfg.SpotWSURL, cfg.FuturesWSURL = ex.url(), ex.url()
	cfg.ShutdownTimeout = 5 * time.Second
	if ho.mut != nil {
		ho.mut(&cfg)
	}
	opts := ho.opts
	var pub *capturePub
	var conn *bus.Conn
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if ho.realNATS {
		s := bustest.RunServer(t)
		cfg.URL = s.ClientURL()
		var err error
		conn, err = bus.Connect(context.Background(), cfg.BusConfig, t.TempDir(), "ingest-test", log, NATSOptions()...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(conn.Close)
		if err := bus.EnsureStreams(context.Background(), conn.JS, cfg.StreamConfig); err != nil {
			t.Fatal(err)
		}
	} else {
		pub = newCapturePub(t, ho.market)
		opts.pub = pub
	}
	if opts.AttemptLimiter == nil {
		opts.AttemptLimiter = NewTokenBucket(100, 100)
	}
	if opts.Backoff == (Backoff{}) {
		opts.Backoff = Backoff{Base: 20 * time.Millisecond, Cap: 200 * time.Millisecond, Stable: time.Second}
	}
	reg := prometheus.NewRegistry()
	e, err := New(cfg, ho.market, conn, svc.Env{Log: log, Registry: reg, Health: svc.NewHealth()}, opts)
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, ex: ex, pub: pub, conn: conn, e: e, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- e.Run(ctx) }()
	t.Cleanup(func() { _ = h.stop() })
	return h
}

// stop ends the engine (once) and returns Run's error.
func (h *harness) stop() error {
	h.stopOnce.Do(func() {
		h.cancel()
		select {
		case h.runErr = <-h.done:
		case <-time.After(20 * time.Second):
			h.t.Error("engine did not stop within 20s")
		}
	})
	return h.runErr
}

// stored reads every message of a JetStream stream (realNATS).
func (h *harness) stored(stream string) []jetstream.Msg {
	h.t.Helper()
	return bustest.StreamMessages(h.t, h.conn.JS, stream, "")
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// value returns the value of a counter or gauge.
func value(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

// dataIDs returns the dedup ids of captured data messages of subject.
func dataIDs(msgs []capturedMsg, kind md.Kind, symbol string) []int64 {
	var out []int64
	for _, m := range msgs {
		if m.env.Kind == kind && m.env.Symbol == symbol {
			id, _ := m.env.SeqID()
			out = append(out, id)
		}
	}
	return out
}

func gapRecords(msgs []capturedMsg) []envelope.Gap {
	var out []envelope.Gap
	for _, m := range msgs {
		if m.env.Kind == md.Gap {
			out = append(out, m.env.Gap)
		}
	}
	return out
}
