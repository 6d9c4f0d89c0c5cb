package synth

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

// countSink wants the given variants of every symbol and only counts.
type countSink struct {
	want   map[int]bool
	frames int
	bytes  int
}

func (c *countSink) Wants(_, v int) bool { return c.want[v] }
func (c *countSink) Frame(f Frame)       { c.frames++; c.bytes += len(f.Full) }

// BenchmarkTick2000 measures one tick of a 2,000-symbol market with every
// symbol's diff@100ms and depth20@100ms subscribed: generating the level
// changes, publishing the events and encoding every frame once. "busy"
// makes every symbol change every tick (the 2,000 × 10 diff + 10 partial
// frames/s load); "zipf" is the default activity mix.
func BenchmarkTick2000(b *testing.B) {
	for _, m := range []md.Market{md.Spot, md.Futures} {
		for _, mix := range []struct {
			name string
			act  Activity
		}{{"busy", Activity{Max: 2000, Skew: 1, Min: 30}}, {"zipf", Activity{Max: 200, Skew: 1, Min: 0.2}}} {
			b.Run(fmt.Sprintf("%s/%s", m, mix.name), func(b *testing.B) {
				cfg := Config{Market: m, Symbols: "2000", Seed: 1, DiffInterval: 100 * time.Millisecond,
					PartialInterval: 100 * time.Millisecond, Activity: mix.act, Levels: 5000,
					History: 2 * time.Second}
				t0 := time.Unix(1700000000, 0)
				mk, err := NewMarket(cfg, t0)
				if err != nil {
					b.Fatal(err)
				}
				sink := &countSink{want: map[int]bool{mk.bySuffix["@depth@100ms"]: true, mk.bySuffix["@depth20@100ms"]: true}}
				var buf []byte
				for k := 1; k <= 100; k++ { // warm up: buffers and the 2 s history reach steady state
					buf, _ = mk.Tick(t0.Add(time.Duration(k)*cfg.DiffInterval), buf[:0], sink)
				}
				sink.frames, sink.bytes = 0, 0
				cpu0 := cpuTime()
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					buf, _ = mk.Tick(t0.Add(time.Duration(101+i)*cfg.DiffInterval), buf[:0], sink)
				}
				b.StopTimer()
				// CPU time, not wall time: on a shared machine the wall clock
				// also counts other processes.
				sec := (cpuTime() - cpu0).Seconds()
				b.ReportMetric(sec*1e3/float64(b.N), "cpu-ms/tick")
				b.ReportMetric(float64(sink.frames)/sec, "frames/cpu-s")
				b.ReportMetric(float64(sink.frames)/float64(b.N), "frames/tick")
				b.ReportMetric(float64(sink.bytes)/sec/1e6, "MB/cpu-s")
			})
		}
	}
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
