package spotws_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/pkg/svc"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// benchSymbols is how many copies of the real ETHUSDT diff stream the
// throughput benchmark replays (6,470 frames each).
const benchSymbols = 20

// benchInput writes a recording of benchSymbols symbols, each carrying
// the real spot ETHUSDT diff@100ms frames (renamed), interleaved in time,
// and returns its path, the same frames in order (the websocket messages
// the feed sends) and the frames as published by ingest: subject,
// envelope bytes and dedup id (built with frames.Builder like ingest).
func benchInput(b *testing.B) (string, [][]byte, []rawMsg) {
	b.Helper()
	src, err := recording.ReadAll(filepath.Join(testdataDir(b), "spot_ethusdt_2024-08-08T2354.rec.gz"))
	if err != nil {
		b.Fatal(err)
	}
	var diffs []recording.Frame
	for _, f := range src {
		if bytes.HasPrefix(f.JSON, []byte(`{"stream":"ethusdt@depth@100ms"`)) {
			diffs = append(diffs, f)
		}
	}
	path := filepath.Join(b.TempDir(), "spot_bench.rec.gz")
	out, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	zw := gzip.NewWriter(out)
	builder := frames.NewBuilder(md.Spot, "bench")
	var msgs []rawMsg
	var wire [][]byte
	var h binance.Header
	var env envelope.Envelope
	for _, f := range diffs {
		for k := range benchSymbols {
			sym := fmt.Sprintf("E%02dUSDT", k)
			js := strings.ReplaceAll(string(f.JSON), "ethusdt", strings.ToLower(sym))
			js = strings.ReplaceAll(js, "ETHUSDT", sym)
			fmt.Fprintf(zw, "%d %s\n", f.RecvNs+int64(k), js)
			wire = append(wire, []byte(js))
			if err := builder.Build([]byte(js), f.RecvNs, &h, &env); err != nil {
				b.Fatal(err)
			}
			data := env.AppendMarshal(nil)
			id, err := env.AppendMsgID(nil)
			if err != nil {
				b.Fatal(err)
			}
			msgs = append(msgs, rawMsg{subject: md.Subject(md.Spot, md.Diff, sym), data: data, id: string(id)})
		}
	}
	if err := zw.Close(); err != nil {
		b.Fatal(err)
	}
	if err := out.Close(); err != nil {
		b.Fatal(err)
	}
	return path, wire, msgs
}

// runClosers closes a run's embedded server and removes its store.
var runClosers = map[*bus.Conn]func(){}

func closeRun(conn *bus.Conn) {
	if f := runClosers[conn]; f != nil {
		f()
		delete(runClosers, conn)
	}
}

// startProfile starts a CPU profile into the file named by env, if set;
// the returned func stops it.
func startProfile(b *testing.B, env string) func() {
	b.Helper()
	p := os.Getenv(env)
	if p == "" {
		return func() {}
	}
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); _ = f.Close() }
}

type rawMsg struct {
	subject string
	data    []byte
	id      string
}

// embedded starts an embedded JetStream (in-process client, as in the
// all-in-one binary) with the MARKETDATA streams. Each run closes its own
// (closeRun) so that the servers, stores and heaps of earlier runs do not
// weigh on later ones.
func embedded(b *testing.B, extra ...nats.Option) *bus.Conn {
	b.Helper()
	cfg := ingest.DefaultConfig()
	cfg.EmbeddedListen = "none"
	dir, err := os.MkdirTemp("", "throughput-js-")
	if err != nil {
		b.Fatal(err)
	}
	conn, err := bus.Connect(context.Background(), cfg.BusConfig, dir, "bench", zap.NewNop(), extra...)
	if err != nil {
		b.Fatal(err)
	}
	closeConn := func() { conn.Close(); _ = os.RemoveAll(dir) }
	b.Cleanup(closeConn)
	runClosers[conn] = closeConn
	if err := bus.EnsureStreams(context.Background(), conn.JS, cfg.StreamConfig); err != nil {
		b.Fatal(err)
	}
	return conn
}

// waitStored waits until MARKETDATA holds n messages and returns when the
// first and the last were stored.
func waitStored(b *testing.B, js jetstream.JetStream, n uint64) (time.Time, time.Time) {
	b.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, md.StreamMarketData)
	if err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Minute)
	for {
		info, err := s.Info(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if info.State.Msgs >= n {
			return info.State.FirstTime, info.State.LastTime
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d messages stored after 5 minutes", info.State.Msgs, n)
		}
		// Rare polls: each is a JetStream API request, and the ingest
		// run's CPU is counted while it polls. The rate is taken from
		// the stream's own timestamps, not from when this notices.
		time.Sleep(25 * time.Millisecond)
	}
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// result is one run: frames per second from the first message stored to
// the last one stored (the stream's timestamps, the same measure for
// every kind of run), and CPU per frame (the whole process: JetStream
// server, client, and for ingest the feed's socket writes too).
type result struct {
	fps      float64
	cpuFrame time.Duration
}

// rawPublish publishes msgs with async JetStream publishing (with or
// without Nats-Msg-Id), from the first publish call to the last ack.
func rawPublish(b *testing.B, msgs []rawMsg, withID bool) result {
	b.Helper()
	conn := embedded(b)
	js, err := jetstream.New(conn.NC, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	defer closeRun(conn)
	runtime.GC()
	stopProfile := startProfile(b, "RAW_BENCH_CPUPROFILE")
	cpu0 := cpuTime(b)
	for _, m := range msgs {
		nm := &nats.Msg{Subject: m.subject, Data: m.data, Header: nats.Header{}}
		if withID {
			nm.Header.Set(jetstream.MsgIDHeader, m.id)
		}
		bustest.PublishAsync(b, js, nm)
	}
	bustest.WaitPublished(b, js, 5*time.Minute)
	cpu := cpuTime(b) - cpu0
	stopProfile()
	first, last := waitStored(b, conn.JS, uint64(len(msgs)))
	return result{float64(len(msgs)) / last.Sub(first).Seconds(), cpu / time.Duration(len(msgs))}
}

// ingestRun runs one spot ingest engine publishing to an embedded
// JetStream, fed with the benchmark frames as fast as it reads them:
// frames per second from the first frame stored to the last one stored.
//
// The frames come from feed (pre-encoded, written in large chunks: the
// exchange's cost is not this machine's), or, with
// INGEST_BENCH_FEED=sim, from binance-sim replaying the recording at
// SIM_SPEED=0 in this process (the harness before; its CPU, about 2-3 µs
// per frame, is then counted against ingest and competes with it).
func ingestRun(b *testing.B, path string, wire [][]byte, n int) result {
	b.Helper()
	var wsURL string
	var fd *feed
	if os.Getenv("INGEST_BENCH_FEED") == "sim" {
		sim := startSim(b, func(c *binancesim.Config) {
			c.Mode = binancesim.ModeReplay
			c.Replay = []string{path}
			c.Speed = 0
		})
		wsURL = sim.WSURL(md.Spot)
	} else {
		fd = newFeed(b, wire)
		defer fd.close()
		wsURL = fd.wsURL()
	}
	conn := embedded(b, ingest.NATSOptions()...)
	defer closeRun(conn)
	syms := make([]string, benchSymbols)
	for k := range syms {
		syms[k] = fmt.Sprintf("E%02dUSDT", k)
	}
	runtime.GC()
	stopProfile := startProfile(b, "INGEST_BENCH_CPUPROFILE") // the ingest run only
	defer stopProfile()
	cpu0 := cpuTime(b)
	cfg := ingest.DefaultConfig()
	cfg.Symbols = strings.Join(syms, ",")
	cfg.SourceID = "test-spot"
	cfg.SpotWSURL, cfg.SpotRESTURL = wsURL, strings.Replace(wsURL, "ws", "http", 1)
	cfg.ShutdownTimeout = 60 * time.Second
	cfg.PartialLevels = 0
	// The feed sends as fast as ingest reads, faster than JetStream
	// stores; the buffer holds the whole input so that nothing is
	// dropped and the measure is the sustained publish rate.
	cfg.PublishBufferBytes = 2 << 30
	reg := prometheus.NewRegistry()
	e, err := ingest.New(cfg, md.Spot, conn, svc.Env{Log: zap.NewNop(), Registry: reg, Health: svc.NewHealth()},
		ingest.Options{AttemptLimiter: ingest.NewTokenBucket(50, 50)})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	first, last := waitStored(b, conn.JS, uint64(n))
	cpu := cpuTime(b) - cpu0
	stopProfile()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	in := &instance{t: b, reg: reg}
	if d := in.metric("depthcap_ingest_dropped_total", nil); d != 0 {
		b.Fatalf("%v frames dropped", d)
	}
	if fd != nil {
		if c := fd.connections(); c != 1 {
			b.Fatalf("ingest connected to the feed %d times, want 1 (a reconnect replays the feed)", c)
		}
	}
	if got := storedCount(b, conn.JS); got != uint64(n) {
		b.Fatalf("%d messages stored, want %d", got, n)
	}
	return result{float64(n) / last.Sub(first).Seconds(), cpu / time.Duration(n)}
}

// storedCount is the number of messages in MARKETDATA.
func storedCount(b *testing.B, js jetstream.JetStream) uint64 {
	b.Helper()
	s, err := js.Stream(context.Background(), md.StreamMarketData)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	return info.State.Msgs
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkThroughput measures frames per second through one ingest
// instance (pre-encoded websocket feed at full speed → websocket → ingest
// → embedded JetStream, file store, Nats-Msg-Id dedup) against raw
// JetStream async publishing of the same envelope bytes with the same
// Nats-Msg-Id in the same run (and without ids). 129,400 real spot diff
// frames (20 renamed copies of the ETHUSDT recording). Run with
// -benchtime=1x. Each iteration runs three raw/ingest pairs, the middle
// one in reverse order, and reports medians (a shared machine makes
// single runs noisy), plus one raw run without ids, and the process CPU
// per frame of each. Every run has its own embedded server, closed at
// its end. INGEST_BENCH_FEED=sim feeds ingest from binance-sim instead
// (see ingestRun).
func BenchmarkThroughput(b *testing.B) {
	path, wire, msgs := benchInput(b)
	for range b.N {
		var raw, ing, ratio, rawCPU, ingCPU []float64
		for pair := range 3 {
			var r, i result
			if pair == 1 {
				i = ingestRun(b, path, wire, len(msgs))
				r = rawPublish(b, msgs, true)
			} else {
				r = rawPublish(b, msgs, true)
				i = ingestRun(b, path, wire, len(msgs))
			}
			raw, ing, ratio = append(raw, r.fps), append(ing, i.fps), append(ratio, i.fps/r.fps)
			rawCPU, ingCPU = append(rawCPU, float64(r.cpuFrame.Nanoseconds())), append(ingCPU, float64(i.cpuFrame.Nanoseconds()))
			b.Logf("pair: raw %.0f frames/s (%v CPU/frame), ingest %.0f frames/s (%v CPU/frame), ratio %.3f, CPU ratio %.3f",
				r.fps, r.cpuFrame, i.fps, i.cpuFrame, i.fps/r.fps, float64(r.cpuFrame)/float64(i.cpuFrame))
		}
		noID := rawPublish(b, msgs, false)
		b.ReportMetric(median(ing), "ingest-frames/s")
		b.ReportMetric(median(raw), "raw-frames/s")
		b.ReportMetric(noID.fps, "raw-noid-frames/s")
		b.ReportMetric(median(ratio), "ingest/raw")
		b.ReportMetric(median(ingCPU)/1e3, "ingest-cpu-us/frame")
		b.ReportMetric(median(rawCPU)/1e3, "raw-cpu-us/frame")
		b.ReportMetric(float64(noID.cpuFrame.Nanoseconds())/1e3, "raw-noid-cpu-us/frame")
	}
}

// BenchmarkIngestThroughput is the ingest half of BenchmarkThroughput on
// its own, for profiling (INGEST_BENCH_CPUPROFILE profiles the run only).
func BenchmarkIngestThroughput(b *testing.B) {
	path, wire, msgs := benchInput(b)
	for range b.N {
		r := ingestRun(b, path, wire, len(msgs))
		b.ReportMetric(r.fps, "ingest-frames/s")
		b.ReportMetric(float64(r.cpuFrame.Nanoseconds())/1e3, "ingest-cpu-us/frame")
	}
}

// publisherRun pushes the prebuilt messages through bus.Publisher alone
// (no websocket, no simulator): the publish stage ingest is built on.
func publisherRun(b *testing.B, msgs []rawMsg) result {
	b.Helper()
	conn := embedded(b, ingest.NATSOptions()...)
	defer closeRun(conn)
	p, err := bus.NewPublisher(conn.NC, bus.PublisherConfig{MaxBytes: 2 << 30}, nil, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	runtime.GC()
	stopProfile := startProfile(b, "PUBLISHER_BENCH_CPUPROFILE")
	cpu0 := cpuTime(b)
	for _, m := range msgs {
		bm := p.NewMsgSize(len(m.data) + len(m.id)) // sized like ingest's
		bm.Buf = append(append(bm.Buf[:0], m.data...), m.id...)
		bm.Set(m.subject, len(m.data))
		if err := p.Enqueue(bm); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Close(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime(b) - cpu0
	stopProfile()
	first, last := waitStored(b, conn.JS, uint64(len(msgs)))
	return result{float64(len(msgs)) / last.Sub(first).Seconds(), cpu / time.Duration(len(msgs))}
}

// BenchmarkPublisherVsRaw compares bus.Publisher alone (the publish
// stage ingest must use) with raw async publishing of the same messages
// and ids, alternating three times: it separates the publisher's share
// of BenchmarkThroughput's gap from the websocket and frame path's.
func BenchmarkPublisherVsRaw(b *testing.B) {
	_, _, msgs := benchInput(b)
	for range b.N {
		var ratio []float64
		for range 3 {
			r := rawPublish(b, msgs, true)
			p := publisherRun(b, msgs)
			ratio = append(ratio, p.fps/r.fps)
			b.Logf("raw %.0f frames/s (%v CPU/frame), bus.Publisher %.0f frames/s (%v CPU/frame), ratio %.3f, CPU ratio %.3f",
				r.fps, r.cpuFrame, p.fps, p.cpuFrame, p.fps/r.fps, float64(r.cpuFrame)/float64(p.cpuFrame))
		}
		b.ReportMetric(median(ratio), "publisher/raw")
	}
}
