package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap/zaptest"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
)

func testStreamConfig() StreamConfig {
	return StreamConfig{MaxAge: time.Hour, MaxBytes: -1, Duplicates: 2 * time.Minute, Replicas: 1,
		FilesMaxAge: time.Hour, DLQMaxAge: time.Hour, DLQMaxBytes: 1 << 20, Provision: true}
}

func TestStreamConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mut     func(*StreamConfig)
		wantVar string
	}{
		{"ok", func(*StreamConfig) {}, ""},
		{"negative duplicates", func(c *StreamConfig) { c.Duplicates = -time.Second }, "NATS_DUPLICATES_WINDOW"},
		{"duplicates above max age", func(c *StreamConfig) { c.Duplicates = 2 * time.Hour }, "NATS_DUPLICATES_WINDOW"},
		{"zero max age", func(c *StreamConfig) { c.MaxAge = 0 }, "NATS_STREAM_MAX_AGE"},
		{"replicas 2", func(c *StreamConfig) { c.Replicas = 2 }, "NATS_STREAM_REPLICAS"},
		{"max bytes 0", func(c *StreamConfig) { c.MaxBytes = 0 }, "NATS_STREAM_MAX_BYTES"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := testStreamConfig()
			tt.mut(&c)
			err := c.Validate()
			if tt.wantVar == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ce *svc.ConfigError
			if !errors.As(err, &ce) || ce.Var != tt.wantVar || !errors.Is(err, svc.ErrConfig) {
				t.Fatalf("err = %v, want a ConfigError naming %s", err, tt.wantVar)
			}
		})
	}
}

// TestEnsureStreamsIdempotent proves provisioning can run repeatedly and
// applies the configured limits.
func TestEnsureStreamsIdempotent(t *testing.T) {
	s := bustest.RunServer(t)
	js := bustest.JetStream(t, bustest.Connect(t, s.ClientURL()))
	ctx := context.Background()
	c := testStreamConfig()
	for i := 0; i < 2; i++ {
		if err := EnsureStreams(ctx, js, c); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
	}
	c.Duplicates = 30 * time.Second
	if err := EnsureStreams(ctx, js, c); err != nil {
		t.Fatalf("update: %v", err)
	}
	st, err := js.Stream(ctx, md.StreamMarketData)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Duplicates; got != 30*time.Second {
		t.Errorf("duplicates window = %v, want 30s", got)
	}
	f, err := js.Stream(ctx, md.StreamFiles)
	if err != nil {
		t.Fatal(err)
	}
	if f.CachedInfo().Config.Retention != jetstream.WorkQueuePolicy {
		t.Errorf("FILES retention = %v, want work queue", f.CachedInfo().Config.Retention)
	}
	// Provision off: existing streams are accepted; a missing one is
	// waited for (the writer creates it), until the context ends.
	c.Provision = false
	if err := EnsureStreams(ctx, js, c); err != nil {
		t.Fatalf("check only: %v", err)
	}
	if err := js.DeleteStream(ctx, md.StreamDLQ); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := EnsureStreams(short, js, c); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("missing DLQ with NATS_PROVISION=false: err = %v, want it to wait, then report stream not found", err)
	}
	done := make(chan error, 1)
	go func(c StreamConfig) { done <- EnsureStreams(ctx, js, c) }(c)
	time.Sleep(300 * time.Millisecond)
	admin := c
	admin.Provision = true
	if err := EnsureStreams(ctx, js, admin); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("waiting EnsureStreams after the stream appeared: %v", err)
	}
}

func publishN(t *testing.T, p *Publisher, from, n int) (rejected int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		m := p.NewMsg()
		m.Buf = append(m.Buf, fmt.Sprintf("payload-%d", i)...)
		dl := len(m.Buf)
		m.Buf = md.AppendMsgID(m.Buf, md.Spot, md.Diff, "BTCUSDT", int64(i))
		m.Set(md.Subject(md.Spot, md.Diff, "BTCUSDT"), dl)
		if err := p.Enqueue(m); errors.Is(err, ErrFull) {
			rejected++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	return rejected
}

func checkStream(t *testing.T, js jetstream.JetStream, want int) {
	t.Helper()
	msgs := bustest.StreamMessages(t, js, md.StreamMarketData, "")
	if len(msgs) != want {
		t.Fatalf("stream has %d messages, want %d", len(msgs), want)
	}
	for i, m := range msgs {
		if got, exp := string(m.Data()), "payload-"+strconv.Itoa(i); got != exp {
			var order []string
			for _, x := range msgs[max(0, i-5):min(len(msgs), i+200)] {
				order = append(order, strings.TrimPrefix(string(x.Data()), "payload-"))
			}
			t.Logf("stored order from position %d: %s", max(0, i-5), strings.Join(order, " "))
			t.Fatalf("message %d = %q, want %q (order or content wrong)", i, got, exp)
		}
	}
}

// TestPublisherInOrderExactlyOnce proves every accepted message is stored
// once, in order, and that re-publishing the same ids is deduplicated.
func TestPublisherInOrderExactlyOnce(t *testing.T) {
	s := bustest.RunServer(t)
	nc := bustest.Connect(t, s.ClientURL())
	js := bustest.JetStream(t, nc)
	if err := EnsureStreams(context.Background(), js, testStreamConfig()); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p, err := NewPublisher(nc, PublisherConfig{MaxBytes: 64 << 20, MaxPending: 64}, NewPublisherMetrics(reg, "test"), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	if r := publishN(t, p, 0, 5000); r != 0 {
		t.Fatalf("%d rejected with a large budget", r)
	}
	if r := publishN(t, p, 0, 100); r != 0 { // same ids again: duplicates
		t.Fatalf("%d rejected", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, js, 5000)

	// Stored subjects carry the symbol's partition token; a partition
	// filter selects exactly that symbol's messages.
	msgs := bustest.StreamMessages(t, js, md.StreamMarketData, "")
	m, k, sym, err := md.ParseSubject(msgs[0].Subject())
	if err != nil || m != md.Spot || k != md.Diff || sym != "BTCUSDT" {
		t.Fatalf("stored subject %q: %v %v %q %v", msgs[0].Subject(), m, k, sym, err)
	}
	var part int
	if _, err := fmt.Sscanf(msgs[0].Subject(), "md.binance.spot.diff.BTCUSDT.%d", &part); err != nil {
		t.Fatalf("stored subject %q has no partition token: %v", msgs[0].Subject(), err)
	}
	if got := len(bustest.StreamMessages(t, js, md.StreamMarketData, md.PartitionFilter(part))); got != 5000 {
		t.Fatalf("partition %d filter: %d messages, want 5000", part, got)
	}
	if got := len(bustest.StreamMessages(t, js, md.StreamMarketData, md.PartitionFilter((part+1)%md.Partitions))); got != 0 {
		t.Fatalf("other partition filter: %d messages, want 0", got)
	}
}

// TestPublisherBudget proves Enqueue refuses (ErrFull) past MaxBytes
// instead of blocking or growing, and accepts again once acked.
func TestPublisherBudget(t *testing.T) {
	// A connection to a port where nothing listens: nothing is ever acked.
	nc, err := nats.Connect("nats://127.0.0.1:1", nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectBufSize(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	p, err := NewPublisher(nc, PublisherConfig{MaxBytes: 20 * (1024 + 128)}, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	rejected := publishN(t, p, 0, 50)
	if rejected != 30 {
		t.Fatalf("rejected %d of 50, want 30 (budget holds 20)", rejected)
	}
	if got := p.Pending(); got != 20 {
		t.Fatalf("pending %d, want 20", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); err == nil {
		t.Fatal("Close with unacked messages and an expired context: want an error")
	}
}

// TestPublisherSurvivesServerRestart stops a real nats-server process for a
// while during publishing: every accepted message is stored exactly once.
func TestPublisherSurvivesServerRestart(t *testing.T) {
	proc := bustest.StartProcess(t)
	nc := bustest.Connect(t, proc.URL(), nats.ReconnectBufSize(-1))
	js := bustest.JetStream(t, nc)
	if err := EnsureStreams(context.Background(), js, testStreamConfig()); err != nil {
		t.Fatal(err)
	}
	p, err := NewPublisher(nc, PublisherConfig{MaxBytes: 256 << 20, MaxPending: 256, AckTimeout: 2 * time.Second}, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, p, 0, 2000)
	proc.Stop()
	publishN(t, p, 2000, 2000) // buffered while the server is down
	time.Sleep(time.Second)
	proc.Start()
	publishN(t, p, 4000, 2000)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, js, 6000)
}

// TestParsePubAck reads the acks nats-server sends, and refuses errors
// and malformed replies.
func TestParsePubAck(t *testing.T) {
	for _, tc := range []struct {
		in     string
		stream string
		seq    uint64
		dup    bool
		domain string
		err    bool
	}{
		{in: `{"stream":"MARKETDATA","seq":1}`, stream: "MARKETDATA", seq: 1},
		{in: `{"stream":"MARKETDATA","seq":18446744073709551615,"duplicate":true}`, stream: "MARKETDATA", seq: 1<<64 - 1, dup: true},
		{in: ` { "stream" : "S" , "domain":"hub", "seq" : 42, "duplicate":false, "batch":"x\"}", "val":{"a":[1,{"b":"}"}]} } `, stream: "S", seq: 42, domain: "hub"},
		{in: `{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"},"stream":"S","seq":0}`, err: true},
		{in: `{"stream":"S"}`, err: true},
		{in: `{"seq":3}`, err: true},
		{in: `{"stream":"S","seq":-1}`, err: true},
		{in: `{"stream":"S","seq":1`, err: true},
		{in: `{"stream":S,"seq":1}`, err: true},
		{in: `[]`, err: true},
		{in: ``, err: true},
	} {
		var ack jetstream.PubAck
		stream, err := parsePubAck([]byte(tc.in), &ack)
		if tc.err {
			if err == nil {
				t.Errorf("%s: want an error, got stream %q seq %d", tc.in, stream, ack.Sequence)
			}
			continue
		}
		if err != nil || string(stream) != tc.stream || ack.Sequence != tc.seq || ack.Duplicate != tc.dup || ack.Domain != tc.domain {
			t.Errorf("%s: stream %q seq %d dup %v domain %q err %v", tc.in, stream, ack.Sequence, ack.Duplicate, ack.Domain, err)
		}
	}
}

// TestPublisherRetriesRefusedAndLost publishes while no stream listens
// (the server answers 503, no responders) and then while a plain
// subscriber takes the subject without answering (no ack at all: the
// ack timeout): once a stream exists, every message is stored once, in
// order, and the retries were counted.
func TestPublisherRetriesRefusedAndLost(t *testing.T) {
	s := bustest.RunServer(t)
	nc := bustest.Connect(t, s.ClientURL())
	js := bustest.JetStream(t, nc)
	reg := prometheus.NewRegistry()
	met := NewPublisherMetrics(reg, "test")
	p, err := NewPublisher(nc, PublisherConfig{MaxBytes: 64 << 20, MaxPending: 16, AckTimeout: 200 * time.Millisecond}, met, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, p, 0, 100) // no stream: refused with 503
	time.Sleep(300 * time.Millisecond)
	if got := testutil.ToFloat64(met.Published); got != 0 {
		t.Fatalf("%v acked without a stream", got)
	}
	refused := testutil.ToFloat64(met.Retries)
	if refused == 0 {
		t.Fatal("no retry counted for refused publishes")
	}
	// A silent subscriber: the server has a responder, nobody acks.
	silent, err := nc.Subscribe("md.>", func(*nats.Msg) {})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // a few ack timeouts
	if got := testutil.ToFloat64(met.Retries); got < refused+16 {
		t.Fatalf("retries %v after ack timeouts, want at least %v", got, refused+16)
	}
	if err := silent.Unsubscribe(); err != nil {
		t.Fatal(err)
	}
	if err := EnsureStreams(context.Background(), js, testStreamConfig()); err != nil {
		t.Fatal(err)
	}
	publishN(t, p, 100, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkStream(t, js, 200)
	if got := testutil.ToFloat64(met.Published); got != 200 {
		t.Fatalf("published %v, want 200", got)
	}
}
