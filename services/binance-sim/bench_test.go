package binancesim

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkServe2000 measures the whole spot path for 2,000 busy symbols:
// ticking, encoding, queueing and websocket writes to two combined-stream
// clients that together subscribe every symbol's diff@100ms and
// depth20@100ms (about 40,000 frames/s), plus the clients' reads, which
// run in the same process. b.N counts frames received; cpu-us/frame is
// the process CPU per frame.
func BenchmarkServe2000(b *testing.B) {
	cfg := DefaultConfig()
	cfg.SpotAddr, cfg.FuturesAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Symbols = "2000"
	cfg.ActivityMax, cfg.ActivityMin = 2000, 30
	cfg.SendLog = false
	s, err := New(cfg, Options{Log: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	syms := s.Symbols(md.Spot)
	frames := make(chan int, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for part := 0; part < 2; part++ {
		var streams []string
		for _, sy := range syms[part*1000 : part*1000+512] {
			l := strings.ToLower(sy)
			streams = append(streams, l+"@depth@100ms", l+"@depth20@100ms")
		}
		c, _, err := websocket.Dial(context.Background(), s.WSURL(md.Spot)+"/stream?streams="+strings.Join(streams, "/"), nil)
		if err != nil {
			b.Fatal(err)
		}
		c.SetReadLimit(1 << 20)
		go func() { // read from the start: a client that does not read is disconnected
			n := 0
			for {
				if _, _, err := c.Read(ctx); err != nil {
					frames <- n
					return
				}
				n++
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	m, _ := s.met.frames.GetMetricWithLabelValues("spot", "diff")
	p, _ := s.met.frames.GetMetricWithLabelValues("spot", "partial")
	sent0 := counterValue(m) + counterValue(p)
	b.ResetTimer()
	cpu0, t0 := cpuTime(), time.Now()
	time.Sleep(time.Duration(b.N) * 25 * time.Microsecond) // about b.N frames at 40k/s
	cpu := cpuTime() - cpu0
	wall := time.Since(t0)
	b.StopTimer()
	sent := counterValue(m) + counterValue(p) - sent0
	cancel()
	<-frames
	<-frames
	late, _ := s.met.tickLate.GetMetricWithLabelValues("spot")
	b.ReportMetric(counterValue(late), "late-ticks")
	for _, f := range s.Faults(md.Spot) {
		b.Logf("fault %+v", f)
	}
	b.ReportMetric(sent/wall.Seconds(), "frames/s")
	b.ReportMetric(cpu.Seconds()/wall.Seconds()*100, "cpu-%")
	b.ReportMetric(float64(cpu.Microseconds())/sent, "cpu-us/frame")
}

func counterValue(c interface{ Write(*dto.Metric) error }) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return 0
	}
	return m.GetCounter().GetValue()
}
