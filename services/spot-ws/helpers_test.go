package spotws_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// startSim runs binance-sim on free loopback ports.
func startSim(t testing.TB, mut func(*binancesim.Config)) *binancesim.Sim {
	t.Helper()
	cfg := binancesim.DefaultConfig()
	cfg.SpotAddr, cfg.FuturesAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.BookLevels = 200
	if mut != nil {
		mut(&cfg)
	}
	sim, err := binancesim.New(cfg, binancesim.Options{Log: zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))})
	if err != nil {
		t.Fatalf("start binance-sim: %v", err)
	}
	t.Cleanup(func() { _ = sim.Close() })
	return sim
}

// instance is one running ingest engine.
type instance struct {
	t      testing.TB
	e      *ingest.Engine
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// ingestOpts describes an engine under test.
type ingestOpts struct {
	market  md.Market
	conn    *bus.Conn // shared connection
	symbols string
	source  string
	mut     func(*ingest.Config)
	opts    ingest.Options
	reg     *prometheus.Registry // nil: a fresh one
}

// connect opens a NATS connection the way the services do and provisions
// the streams.
func connect(t testing.TB, url string) *bus.Conn {
	t.Helper()
	cfg := ingest.DefaultConfig()
	cfg.URL = url
	conn, err := bus.Connect(context.Background(), cfg.BusConfig, t.TempDir(), "ingest-test", zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel)), ingest.NATSOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bus.EnsureStreams(ctx, conn.JS, cfg.StreamConfig); err != nil {
		t.Fatal(err)
	}
	return conn
}

// startIngest runs an engine for one market of sim.
func startIngest(t testing.TB, sim *binancesim.Sim, io ingestOpts) *instance {
	t.Helper()
	cfg := ingest.DefaultConfig()
	cfg.Symbols = io.symbols
	cfg.SourceID = io.source
	if cfg.SourceID == "" {
		cfg.SourceID = "test-" + io.market.String()
	}
	cfg.SpotWSURL, cfg.FuturesWSURL = sim.WSURL(md.Spot), sim.WSURL(md.Futures)
	cfg.SpotRESTURL, cfg.FuturesRESTURL = sim.RESTURL(md.Spot), sim.RESTURL(md.Futures)
	cfg.ShutdownTimeout = 60 * time.Second
	if io.mut != nil {
		io.mut(&cfg)
	}
	reg := io.reg
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	opts := io.opts
	if opts.AttemptLimiter == nil {
		opts.AttemptLimiter = ingest.NewTokenBucket(50, 50)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).With(zap.String("source", cfg.SourceID))
	e, err := ingest.New(cfg, io.market, io.conn, svc.Env{Log: log, Registry: reg, Health: svc.NewHealth()}, opts)
	if err != nil {
		t.Fatalf("new engine: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{t: t, e: e, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- e.Run(ctx) }()
	t.Cleanup(func() { _ = in.stop() })
	return in
}

// stop ends the engine (flushing its publisher) and returns Run's error.
func (in *instance) stop() error {
	if in.ended {
		return in.err
	}
	in.ended = true
	in.cancel()
	select {
	case in.err = <-in.done:
	case <-time.After(90 * time.Second):
		in.t.Error("engine did not stop within 90s")
	}
	return in.err
}

// waitReady waits until the engine reports ready.
func (in *instance) waitReady(timeout time.Duration) {
	in.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := in.e.Ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			in.t.Fatalf("engine not ready after %v: %v", timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric sums the values of a metric family whose labels include want.
func (in *instance) metric(name string, want map[string]string) float64 {
	in.t.Helper()
	mfs, err := in.reg.Gather()
	if err != nil {
		in.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			}
		}
	}
	return sum
}

// stored is one message of the MARKETDATA stream.
type stored struct {
	seq   uint64
	msgID string
	env   envelope.Envelope
}

// readStream reads and decodes every message of MARKETDATA in stream
// order.
func readStream(t testing.TB, js jetstream.JetStream) []stored {
	t.Helper()
	var out []stored
	for _, m := range bustest.StreamMessages(t, js, md.StreamMarketData, "") {
		data := bytes.Clone(m.Data())
		var s stored
		if err := envelope.Unmarshal(data, &s.env); err != nil {
			t.Fatalf("stored message %s: %v", m.Subject(), err)
		}
		mk, k, sym, err := md.ParseSubject(m.Subject())
		if err != nil || mk != s.env.Market || k != s.env.Kind || sym != s.env.Symbol {
			t.Fatalf("subject %s does not match the envelope (%v %v %s): %v", m.Subject(), s.env.Market, s.env.Kind, s.env.Symbol, err)
		}
		s.msgID = m.Headers().Get(jetstream.MsgIDHeader)
		meta, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		s.seq = meta.Sequence.Stream
		out = append(out, s)
	}
	return out
}

// streamKey names one (market, kind, symbol) stream.
type streamKey struct {
	m   md.Market
	k   md.Kind
	sym string
}

func (k streamKey) String() string { return fmt.Sprintf("%s %s %s", k.m, k.k, k.sym) }

// byStream groups stored data messages and gap records.
type byStream struct {
	data map[streamKey][]envelope.Envelope // stream order
	gaps map[streamKey][]envelope.Envelope // key kind = the gap's stream kind
}

func group(t testing.TB, msgs []stored) byStream {
	t.Helper()
	b := byStream{data: map[streamKey][]envelope.Envelope{}, gaps: map[streamKey][]envelope.Envelope{}}
	ids := map[string]bool{}
	for _, s := range msgs {
		if ids[s.msgID] {
			t.Fatalf("dedup id %s stored twice", s.msgID)
		}
		ids[s.msgID] = true
		if s.env.Kind == md.Gap {
			k := streamKey{s.env.Market, s.env.Gap.StreamKind, s.env.Symbol}
			b.gaps[k] = append(b.gaps[k], s.env)
			continue
		}
		want, err := s.env.AppendMsgID(nil)
		if err != nil || string(want) != s.msgID {
			t.Fatalf("stored dedup id %q, envelope says %q (%v)", s.msgID, want, err)
		}
		k := streamKey{s.env.Market, s.env.Kind, s.env.Symbol}
		b.data[k] = append(b.data[k], s.env)
	}
	return b
}

// seqID is the dedup id of a data envelope.
func seqID(e envelope.Envelope) int64 {
	id, _ := e.SeqID()
	return id
}

// link is the previous-id link of a diff: spot U-1, futures pu.
func link(e envelope.Envelope) int64 {
	if e.Market == md.Futures {
		return e.PrevID
	}
	return e.FirstID - 1
}

// sortedByID returns the envelopes sorted by dedup id.
func sortedByID(es []envelope.Envelope) []envelope.Envelope {
	out := slices.Clone(es)
	sort.Slice(out, func(i, j int) bool { return seqID(out[i]) < seqID(out[j]) })
	return out
}

// breaks returns the chain breaks of a diff stream's stored events (in id
// order): (after, resume] ranges of missing events.
func breaks(es []envelope.Envelope) [][2]int64 {
	s := sortedByID(es)
	var out [][2]int64
	for i := 1; i < len(s); i++ {
		prev, next := seqID(s[i-1]), link(s[i])
		if next != prev {
			out = append(out, [2]int64{prev, next})
		}
	}
	return out
}

// sentIDs returns the intact ids the sim wrote per stream of market m.
func sentIDs(t testing.TB, sim *binancesim.Sim, m md.Market) map[streamKey]map[int64]int {
	t.Helper()
	entries, truncated := sim.SentLog(m)
	if truncated {
		t.Fatal("the simulator's send log is truncated")
	}
	out := map[streamKey]map[int64]int{}
	for _, e := range entries {
		out[streamKey{m, e.Kind, e.Symbol}] = e.IDs
	}
	return out
}

// malformedIDs returns the ids the sim wrote as malformed JSON per stream.
func malformedIDs(t testing.TB, sim *binancesim.Sim, m md.Market) map[streamKey]map[int64]int {
	t.Helper()
	entries, _ := sim.SentLog(m)
	out := map[streamKey]map[int64]int{}
	for _, e := range entries {
		if len(e.Malformed) > 0 {
			out[streamKey{m, e.Kind, e.Symbol}] = e.Malformed
		}
	}
	return out
}

// idSet returns the dedup ids of envelopes.
func idSet(es []envelope.Envelope) map[int64]bool {
	out := make(map[int64]bool, len(es))
	for _, e := range es {
		out[seqID(e)] = true
	}
	return out
}

// covered reports whether id is inside one of the gap records.
func covered(id int64, gaps []envelope.Envelope) int {
	n := 0
	for _, g := range gaps {
		if g.Gap.AfterID < id && id <= g.Gap.ResumePrevID {
			n++
		}
	}
	return n
}

// loopbackClient dials from a chosen loopback address, so that the sim's
// connection list tells replicas apart.
func loopbackClient(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = d.DialContext
	return &http.Client{Transport: tr}
}

// connsFrom lists the sim's open connections of market m whose client
// address starts with ip.
func connsFrom(sim *binancesim.Sim, m md.Market, ip string) []binancesim.ConnInfo {
	var out []binancesim.ConnInfo
	for _, c := range sim.Conns(m) {
		if strings.HasPrefix(c.Remote, ip+":") {
			out = append(out, c)
		}
	}
	return out
}

// quickBackoff reconnects fast, so that fault tests see many reconnects.
var quickBackoff = ingest.Backoff{Base: 50 * time.Millisecond, Cap: 500 * time.Millisecond, Stable: 2 * time.Second}
