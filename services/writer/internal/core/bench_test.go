package core

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/cputime"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

type nopSink struct{}

func (nopSink) DeadLetter(context.Context, string, string, []byte, map[string]string) error {
	return nil
}
func (nopSink) Sealed(context.Context, string, string, []byte) error { return nil }
func (nopSink) Durable(uint64)                                       {}

// benchMsgs returns the diff events of the named recordings as stream
// messages in receive-time order.
func benchMsgs(b *testing.B, names []string) []Msg {
	envs, err := testrec.Envelopes(names, 1, func(e *envelope.Envelope) bool { return e.Kind == md.Diff })
	if err != nil {
		b.Fatal(err)
	}
	msgs := make([]Msg, len(envs))
	for i := range envs {
		e := &envs[i]
		msgs[i] = Msg{Seq: uint64(i + 1), Subject: testrec.Subject(e), Data: e.AppendMarshal(nil), StoreNs: e.ReceivedNs}
	}
	return msgs
}

// synthMsgs returns n spot diff events of 4 symbols (testrec.Synth: the
// levels of the small recordings' events, 9 per event on average), one
// every millisecond, as stream messages.
func synthMsgs(b *testing.B, n int) []Msg {
	synths, err := testrec.NewSynths(4, testrec.SmallRecordings())
	if err != nil {
		b.Fatal(err)
	}
	t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	msgs := make([]Msg, n)
	for i := range msgs {
		s := synths[i%len(synths)]
		recv := t + int64(i)*int64(time.Millisecond)
		msgs[i] = Msg{Seq: uint64(i + 1), Subject: s.Subject(), Data: s.Next(recv, nil), StoreNs: recv}
	}
	return msgs
}

// benchCore opens a core on dir with the default settings; grace is
// WRITER_GRACE (24h keeps every file open).
func benchCore(b *testing.B, dir string, grace time.Duration) *Core {
	return openBenchCore(b, benchConfig(dir, grace))
}

// benchConfig is the benchmarks' core configuration: the writer's
// defaults, one shard, daily files.
func benchConfig(dir string, grace time.Duration) Config {
	return Config{DataDir: dir, Shard: "0-of-1", Period: 24 * time.Hour, Grace: grace,
		DedupRecent: 1024, MemoryLimit: 256 << 20, PartBytes: 1 << 20, InlineLimit: 64 << 20, Parquet: pq.DefaultOptions(),
		Producer: "bench", StoreClamp: time.Minute}
}

func openBenchCore(b *testing.B, cfg Config) *Core {
	c, err := Open(context.Background(), cfg, nopSink{}, NewMetrics(nil), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkPipeline measures diff rows per second on one goroutine, end to
// end in-process: envelope decode, payload decode, sequence check, row
// build, checkpoint (chunk encoding) and the sealed Parquet write (ZSTD,
// default level), and handle-only (everything but the seal, WRITER_GRACE
// 24h: one checkpoint at the end), next to the decode-only rate (envelope + payload) of the
// same messages, for two activity mixes:
//
//   - large: the 13,056 diff events of the 2024 ETHUSDT recordings (42
//     levels per spot event, 65 per USD-M event);
//   - small: 20,000 spot diff events of 4 symbols carrying the levels of
//     the 2021 four-symbol recordings' events (9 levels per event on
//     average, 2.4 to 14 per recording), as most symbols have
//     (testrec.Synth).
//
// rows/s is wall-clock; rows/cpu-s divides by the CPU time the process
// used (steadier on a shared machine); vs-decode is end-to-end (or
// handle-only) rows/cpu-s over the decode-only rows/cpu-s of the same
// run.
//
//	go test ./internal/core -run '^$' -bench Pipeline -benchmem -cpu 1
func BenchmarkPipeline(b *testing.B) {
	for _, mix := range []struct {
		name string
		msgs func(*testing.B) []Msg
	}{
		{"large", func(b *testing.B) []Msg { return benchMsgs(b, testrec.LargeRecordings()) }},
		{"small", func(b *testing.B) []Msg { return synthMsgs(b, 20000) }},
	} {
		msgs := mix.msgs(b)
		var decodeRate float64
		report := func(b *testing.B, cpu *cputime.Meter) {
			n := float64(len(msgs)) * float64(b.N)
			b.ReportMetric(n/b.Elapsed().Seconds(), "rows/s")
			r := cpu.PerSecond(n)
			b.ReportMetric(r, "rows/cpu-s")
			if decodeRate > 0 {
				b.ReportMetric(r/decodeRate, "vs-decode")
			}
		}
		b.Run(mix.name+"/decode-only", func(b *testing.B) {
			var env envelope.Envelope
			var d binance.Depth
			var cpu cputime.Meter
			b.ReportAllocs()
			cpu.Start()
			for b.Loop() {
				for _, m := range msgs {
					if err := envelope.Unmarshal(m.Data, &env); err != nil {
						b.Fatal(err)
					}
					if err := binance.DecodeDepth(env.Payload, &d); err != nil {
						b.Fatal(err)
					}
				}
			}
			cpu.Stop()
			report(b, &cpu)
			decodeRate = cpu.PerSecond(float64(len(msgs)) * float64(b.N))
		})
		b.Run(mix.name+"/end-to-end", func(b *testing.B) {
			var cpu cputime.Meter
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				b.StartTimer()
				cpu.Start()
				c := benchCore(b, dir, 5*time.Minute)
				ctx := context.Background()
				for _, m := range msgs {
					if err := c.Handle(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
				if err := c.SealAll(ctx); err != nil {
					b.Fatal(err)
				}
				c.Close()
				cpu.Stop()
			}
			report(b, &cpu)
		})
		b.Run(mix.name+"/handle-only", func(b *testing.B) {
			var cpu cputime.Meter
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				dir := b.TempDir()
				b.StartTimer()
				cpu.Start()
				c := benchCore(b, dir, 24*time.Hour) // no seal
				ctx := context.Background()
				for _, m := range msgs {
					if err := c.Handle(ctx, m); err != nil {
						b.Fatal(err)
					}
				}
				if err := c.Checkpoint(TriggerInterval); err != nil {
					b.Fatal(err)
				}
				c.Close()
				cpu.Stop()
			}
			report(b, &cpu)
		})
	}
}

// BenchmarkOpenKeys reports memory and checkpoint figures with 2,000
// symbols x 3 kinds x 2 markets open at once (12,000 open files), each
// receiving 30 real events between checkpoints: heap in use, peak RSS,
// checkpoint bytes and part files per checkpoint.
//
//	go test ./internal/core -run '^$' -bench OpenKeys -benchtime 1x
func BenchmarkOpenKeys(b *testing.B) {
	type tmpl struct {
		m       md.Market
		k       md.Kind
		payload []byte
		sym     string
	}
	var tmpls []tmpl
	for _, name := range []string{"spot_2021-10-12_4sym.rec.gz", "futures_2021-07-22_4sym.rec.gz"} {
		frames, err := testrec.Load(name)
		if err != nil {
			b.Fatal(err)
		}
		got := map[md.Kind]bool{}
		for _, f := range frames {
			e := &f.Env
			if !got[e.Kind] && e.Kind != md.Partial {
				got[e.Kind] = true
				tmpls = append(tmpls, tmpl{e.Market, e.Kind, e.Payload, e.Symbol})
			}
		}
	}
	ps, err := testrec.Partials()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range ps {
		tmpls = append(tmpls, tmpl{f.Env.Market, f.Env.Kind, f.Env.Payload, f.Env.Symbol})
	}
	for b.Loop() {
		dir := b.TempDir()
		c := benchCore(b, dir, 5*time.Minute)
		ctx := context.Background()
		seq := uint64(0)
		var parts0 int
		const rounds, perRound = 3, 10
		var ckptSizes []int64
		for round := 0; round < rounds; round++ {
			for s := 0; s < 2000; s++ {
				sym := "S" + strconv.Itoa(s) + "USDT"
				for _, t := range tmpls {
					for i := 0; i < perRound; i++ {
						seq++
						id := int64(seq) * 10
						p := bytes.Replace(t.payload, []byte(`"s":"`+t.sym+`"`), []byte(`"s":"`+sym+`"`), 1)
						e := envelope.Envelope{Market: t.m, Kind: t.k, Symbol: sym, ReceivedNs: 1_700_000_000_000_000_000 + int64(seq), Payload: p}
						_ = id
						c.Handle(ctx, Msg{Seq: seq, Subject: md.Subject(t.m, t.k, sym) + ".1", Data: e.AppendMarshal(nil), StoreNs: e.ReceivedNs})
					}
				}
			}
			before := partCount(dir)
			if err := c.Checkpoint(TriggerInterval); err != nil {
				b.Fatal(err)
			}
			parts0 = partCount(dir) - before
			st, _ := os.Stat(dir + "/.writer/0-of-1/checkpoint")
			ckptSizes = append(ckptSizes, st.Size())
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(len(c.st.files)), "open_files")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap_MiB")
		b.ReportMetric(float64(peakRSS())/(1<<10), "peak_rss_MiB")
		b.ReportMetric(float64(ckptSizes[len(ckptSizes)-1])/(1<<20), "checkpoint_MiB")
		b.ReportMetric(float64(parts0), "parts/checkpoint")
		c.Close()
	}
}

func partCount(dir string) int {
	es, _ := os.ReadDir(dir + "/.parts/0-of-1")
	return len(es)
}

// peakRSS is VmHWM in KiB.
func peakRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// BenchmarkCheckpointSpill measures a checkpoint that moves 2,000 open
// files to part files (each past WRITER_PART_BYTES), the shape of a
// market-wide checkpoint, next to the I/O of the writer before
// checkpoint version 4 on the same bytes, in the same run: one part file
// per spilled open file, each created, written and fsynced (in make
// bench's market scenario, 2,219 such files took 9 s and stalled the
// consumer). The directory is under the OS temp dir, a real disk here.
//
//	go test ./internal/core -run '^$' -bench CheckpointSpill -benchtime 5x
func BenchmarkCheckpointSpill(b *testing.B) {
	const symbols, perSymbol = 2000, 40
	synths, err := testrec.NewSynths(symbols, testrec.SmallRecordings())
	if err != nil {
		b.Fatal(err)
	}
	var ckpt, perFile time.Duration
	var spills int
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		cfg := benchConfig(dir, 24*time.Hour)
		cfg.MemoryLimit, cfg.PartBytes = 1<<30, 4096 // every open file spills
		c := openBenchCore(b, cfg)
		t := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
		for i := range symbols * perSymbol {
			s := synths[i%symbols]
			recv := t + int64(i)*int64(time.Millisecond)
			if err := c.Handle(context.Background(), Msg{Seq: uint64(i + 1), Subject: s.Subject(), Data: s.Next(recv, nil), StoreNs: recv}); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		start := time.Now()
		if err := c.Checkpoint(TriggerInterval); err != nil {
			b.Fatal(err)
		}
		ckpt += time.Since(start)
		b.StopTimer()
		// The old layout: each run in its own file, fsynced.
		var runs [][]byte
		for _, f := range c.st.files {
			for _, p := range f.parts {
				run, err := readRange(filepath.Join(c.partDir, p.name), p.off, p.len)
				if err != nil {
					b.Fatal(err)
				}
				runs = append(runs, append(append([]byte(nil), partMagic...), run...))
			}
		}
		spills = len(runs)
		old := filepath.Join(dir, "old")
		if err := os.Mkdir(old, 0o755); err != nil {
			b.Fatal(err)
		}
		start = time.Now()
		for i, run := range runs {
			f, err := os.Create(filepath.Join(old, strconv.Itoa(i)+".part"))
			if err == nil {
				_, err = f.Write(run)
			}
			if err == nil {
				err = f.Sync()
			}
			if err == nil {
				err = f.Close()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		if err := syncDir(old); err != nil {
			b.Fatal(err)
		}
		perFile += time.Since(start)
		c.Close()
	}
	n := float64(b.N)
	b.ReportMetric(float64(spills), "spills/op")
	b.ReportMetric(ckpt.Seconds()*1e3/n, "checkpoint_ms")
	b.ReportMetric(perFile.Seconds()*1e3/n, "file_per_spill_io_ms")
}
