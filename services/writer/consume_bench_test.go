package writer

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/services/writer/internal/core"
	"github.com/depthcap/depthcap/services/writer/internal/testrec"
)

// fakeMsg is a delivered JetStream message without a connection.
type fakeMsg struct {
	subject, reply string
	data           []byte
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) { panic("the writer parses Reply") }
func (m *fakeMsg) Data() []byte                              { return m.data }
func (m *fakeMsg) Headers() nats.Header                      { return nil }
func (m *fakeMsg) Subject() string                           { return m.subject }
func (m *fakeMsg) Reply() string                             { return m.reply }
func (m *fakeMsg) Ack() error                                { return nil }
func (m *fakeMsg) DoubleAck(context.Context) error           { return nil }
func (m *fakeMsg) Nak() error                                { return nil }
func (m *fakeMsg) NakWithDelay(time.Duration) error          { return nil }
func (m *fakeMsg) InProgress() error                         { return nil }
func (m *fakeMsg) Term() error                               { return nil }
func (m *fakeMsg) TermWithReason(string) error               { return nil }

// BenchmarkConsume measures the writer's consume path per message in
// steady state (one op = one message): ack-reply parsing, envelope and
// payload decode, sequence check, metrics, row append. 64 symbols receive
// a continuing spot diff stream (levels of real small events); every
// 1,280 messages (20 per symbol) the timer stops for an interval
// checkpoint, as WRITER_CHECKPOINT_INTERVAL would run one. allocs/op must
// be 0: the row buffers kept across checkpoints absorb the next interval,
// metric series are resolved per stream once, and the reply subject is
// parsed without jetstream.Msg.Metadata (which allocates).
//
//	go test . -run '^$' -bench Consume -benchmem -cpu 1
func BenchmarkConsume(b *testing.B) {
	synths, err := testrec.NewSynths(64, testrec.SmallRecordings())
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{DataDir: b.TempDir(), Period: 24 * time.Hour, Grace: 5 * time.Minute, CheckpointInterval: 30 * time.Second,
		MemoryLimit: 256 << 20, PartBytes: 1 << 20, RowGroupRows: 16384, ZstdLevel: 1, DedupRecent: 1024}
	w := &Writer{cfg: cfg, log: zap.NewNop(), metrics: core.NewMetrics(nil), shard: "0-of-1"}
	ctx := context.Background()
	c, err := core.Open(ctx, w.coreConfig(), sink{w}, w.metrics, w.log)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	w.core = c

	const perSymbol = 20
	msgs := make([]fakeMsg, len(synths)*perSymbol)
	recv := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	var seq uint64
	fill := func() {
		for i := range msgs {
			s := synths[i%len(synths)]
			m := &msgs[i]
			seq++
			recv += int64(time.Millisecond)
			m.subject = s.Subject()
			m.data = s.Next(recv, m.data[:0])
			m.reply = "$JS.ACK.MARKETDATA.writer-0-of-1.1." + strconv.FormatUint(seq, 10) + "." + strconv.FormatUint(seq, 10) + "." + strconv.FormatInt(recv, 10) + ".0"
		}
	}
	interval := func() {
		if err := w.checkpoint(core.TriggerInterval); err != nil {
			b.Fatal(err)
		}
		fill()
	}
	// Warm up: two intervals size the row buffers.
	for range 2 {
		fill()
		for i := range msgs {
			if err := w.handle(ctx, &msgs[i]); err != nil {
				b.Fatal(err)
			}
		}
		interval()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(msgs) {
			b.StopTimer()
			interval()
			i = 0
			b.StartTimer()
		}
		if err := w.handle(ctx, &msgs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// TestConsumeAllocs proves the consume path allocates nothing per
// message in steady state (the claim BenchmarkConsume reports with
// -benchmem), as a test that runs in every suite.
func TestConsumeAllocs(t *testing.T) {
	res := testing.Benchmark(BenchmarkConsume)
	if res.N == 0 {
		t.Fatal("benchmark did not run")
	}
	if a := res.AllocsPerOp(); a != 0 {
		t.Fatalf("%d allocs per message (%d allocs over %d messages)", a, res.MemAllocs, res.N)
	}
}
