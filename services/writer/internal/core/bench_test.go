package core

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

type nopSink struct{}

func (nopSink) DeadLetter(context.Context, string, string, []byte, map[string]string) error {
	return nil
}
func (nopSink) Sealed(context.Context, string, string, []byte) error { return nil }
func (nopSink) Durable(uint64)                                       {}

func diffMsgs(b *testing.B) []Msg {
	var msgs []Msg
	seq := uint64(0)
	for _, name := range testrec.Recordings() {
		frames, err := testrec.Load(name)
		if err != nil {
			b.Fatal(err)
		}
		for i := range frames {
			f := &frames[i]
			if f.Kind != md.Diff {
				continue
			}
			seq++
			e := f.Envelope("bench")
			msgs = append(msgs, Msg{Seq: seq, Subject: md.Subject(f.Market, f.Kind, f.Symbol) + ".1", Data: e.AppendMarshal(nil), StoreNs: f.RecvNs})
		}
	}
	return msgs
}

func benchCore(b *testing.B, dir string) *Core {
	c, err := Open(context.Background(), Config{DataDir: dir, Shard: "0-of-1", Period: 24 * time.Hour, Grace: 5 * time.Minute,
		DedupRecent: 1024, MemoryLimit: 256 << 20, PartBytes: 1 << 20, InlineLimit: 64 << 20, Parquet: pq.DefaultOptions(),
		Producer: "bench", StoreClamp: time.Minute}, nopSink{}, NewMetrics(nil), zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkPipeline measures diff rows per second on one goroutine, end to
// end in-process: envelope decode, payload decode, sequence check, row
// build, checkpoint encode and the sealed Parquet write (ZSTD, default
// level), next to the decode-only rate (envelope + payload) of the same
// messages. All diff frames of every recording (15,562 events).
//
//	go test ./internal/core -run '^$' -bench Pipeline -benchmem -cpu 1
func BenchmarkPipeline(b *testing.B) {
	msgs := diffMsgs(b)
	b.Run("decode-only", func(b *testing.B) {
		var env envelope.Envelope
		var d binance.Depth
		b.ReportAllocs()
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
		b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("end-to-end", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := benchCore(b, b.TempDir())
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
		}
		b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("handle-only", func(b *testing.B) {
		c := benchCore(b, b.TempDir())
		defer c.Close()
		ctx := context.Background()
		b.ReportAllocs()
		var seq uint64
		for b.Loop() {
			for _, m := range msgs {
				seq++
				m.Seq = seq
				if err := c.Handle(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			if err := c.Checkpoint(TriggerInterval); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(msgs))*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	})
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
			if !got[f.Kind] && f.Kind != md.Partial {
				got[f.Kind] = true
				tmpls = append(tmpls, tmpl{f.Market, f.Kind, f.Data, f.Symbol})
			}
		}
	}
	ps, err := testrec.Partials()
	if err != nil {
		b.Fatal(err)
	}
	for _, f := range ps {
		tmpls = append(tmpls, tmpl{f.Market, f.Kind, f.Data, f.Symbol})
	}
	for b.Loop() {
		dir := b.TempDir()
		c := benchCore(b, dir)
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
						var e envelope.Envelope
						e = envelope.Envelope{Market: t.m, Kind: t.k, Symbol: sym, ReceivedNs: 1_700_000_000_000_000_000 + int64(seq), Payload: p}
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
