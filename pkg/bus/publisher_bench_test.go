package bus

import (
	"context"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/md"
)

// BenchmarkPublisherClientCPU measures the publishing client's own CPU
// per message: the JetStream server runs as a separate process, so this
// process's CPU (rusage) is the client's alone. It compares bus.Publisher
// with the jetstream package's PublishMsgAsync (the library's async
// publish, the "raw" baseline of the ingest throughput benchmark), for
// the same 1,000-byte payloads and Nats-Msg-Ids, in the same run,
// alternating three times and reporting the medians. Each library
// publish allocates its nats.Msg and header; bus.Publisher copies the
// payload into a recycled message, as ingest builds one.
//
//	cd pkg && go test ./bus -run '^$' -bench PublisherClientCPU -benchtime 1x -count 5
func BenchmarkPublisherClientCPU(b *testing.B) {
	proc := bustest.StartProcess(b)
	nc := bustest.Connect(b, proc.URL(), nats.ReconnectBufSize(-1))
	js := bustest.JetStream(b, nc)
	if err := EnsureStreams(context.Background(), js, testStreamConfig()); err != nil {
		b.Fatal(err)
	}
	const n = 100_000
	payload := make([]byte, 1000)
	subject := md.Subject(md.Spot, md.Diff, "BTCUSDT")
	round := 0
	run := func(publish func(from int)) time.Duration {
		round++
		from := round * n * 10 // fresh ids: nothing deduplicated
		c0 := cpu(b)
		publish(from)
		return (cpu(b) - c0) / n
	}
	lib := func(from int) {
		pjs, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			m := &nats.Msg{Subject: subject, Data: payload, Header: nats.Header{}}
			m.Header.Set(jetstream.MsgIDHeader, string(md.AppendMsgID(nil, md.Spot, md.Diff, "BTCUSDT", int64(from+i))))
			for {
				_, err := pjs.PublishMsgAsync(m)
				if err == nil {
					break
				}
				if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
					b.Fatal(err)
				}
			}
		}
		select {
		case <-pjs.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("library publish not complete")
		}
	}
	ours := func(from int) {
		// A budget of a few MaxPending windows: messages are recycled,
		// as in steady state (a deep queue would measure fresh memory).
		p, err := NewPublisher(nc, PublisherConfig{MaxBytes: 16 << 20}, nil, zap.NewNop())
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			for {
				m := p.NewMsgSize(len(payload) + 40)
				m.Buf = md.AppendMsgID(append(m.Buf[:0], payload...), md.Spot, md.Diff, "BTCUSDT", int64(from+i))
				m.Set(subject, len(payload))
				err := p.Enqueue(m)
				if err == nil {
					break
				}
				if !errors.Is(err, ErrFull) {
					b.Fatal(err)
				}
				time.Sleep(100 * time.Microsecond)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Close(ctx); err != nil {
			b.Fatal(err)
		}
	}
	for range b.N {
		var l, o []float64
		for k := range 3 {
			if k == 1 {
				o = append(o, float64(run(ours)))
				l = append(l, float64(run(lib)))
			} else {
				l = append(l, float64(run(lib)))
				o = append(o, float64(run(ours)))
			}
		}
		lm, om := median(l), median(o)
		b.Logf("client CPU per message: jetstream.PublishMsgAsync %v, bus.Publisher %v", time.Duration(l[0]), time.Duration(o[0]))
		b.ReportMetric(lm/1e3, "lib-cpu-us/msg")
		b.ReportMetric(om/1e3, "ours-cpu-us/msg")
		b.ReportMetric(om/lm, "ours/lib")
	}
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}

func cpu(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
