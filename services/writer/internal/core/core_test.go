package core

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer/internal/pq"
)

type fakeSink struct {
	sealed  []string
	dlq     []string
	durable uint64
}

func (f *fakeSink) DeadLetter(_ context.Context, subject, _ string, _ []byte, hdr map[string]string) error {
	f.dlq = append(f.dlq, hdr[HdrReason])
	return nil
}
func (f *fakeSink) Sealed(_ context.Context, _, id string, _ []byte) error {
	f.sealed = append(f.sealed, id)
	return nil
}
func (f *fakeSink) Durable(seq uint64) { f.durable = seq }

func testCore(t *testing.T, dir string, sink Sink) *Core {
	t.Helper()
	o := pq.DefaultOptions()
	c, err := Open(context.Background(), Config{DataDir: dir, Shard: "0-of-1", Period: time.Minute, Grace: 10 * time.Second,
		DedupRecent: 64, MemoryLimit: 1 << 20, PartBytes: 1 << 12, InlineLimit: 1 << 14, Parquet: o, Producer: "test", StoreClamp: time.Minute},
		sink, NewMetrics(nil), zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano()

// snapshotMsg is a spot REST snapshot event received at recvNs.
func snapshotMsg(seq uint64, id int64, recvNs, storeNs int64) Msg {
	payload := []byte(`{"lastUpdateId":` + itoa(id) + `,"bids":[["1.5","2"]],"asks":[["1.6","3"]]}`)
	return snapshotMsgOf(seq, "ABCUSDT", id, recvNs, storeNs, payload)
}

// snapshotMsgOf is a spot REST snapshot event of sym with payload.
func snapshotMsgOf(seq uint64, sym string, id int64, recvNs, storeNs int64, payload []byte) Msg {
	e := envelope.Envelope{Market: md.Spot, Kind: md.Snapshot, Symbol: sym, ReceivedNs: recvNs, Payload: payload, LastID: id, Has: envelope.HasLast}
	return Msg{Seq: seq, Subject: md.Subject(md.Spot, md.Snapshot, sym) + ".3", Data: e.AppendMarshal(nil), StoreNs: storeNs}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// TestWatermarkClamp proves that the watermark follows receive times but
// never runs more than a minute ahead of the JetStream store time, so a
// collector with a clock in the future cannot seal periods early.
func TestWatermarkClamp(t *testing.T) {
	c := testCore(t, t.TempDir(), &fakeSink{})
	ctx := context.Background()
	if err := c.Handle(ctx, snapshotMsg(1, 1, t0, t0+int64(time.Second))); err != nil {
		t.Fatal(err)
	}
	if c.Watermark() != t0 {
		t.Fatalf("watermark %d, want the receive time %d", c.Watermark(), t0)
	}
	future := t0 + int64(365*24*time.Hour)
	if err := c.Handle(ctx, snapshotMsg(2, 2, future, t0+int64(2*time.Second))); err != nil {
		t.Fatal(err)
	}
	if want := t0 + int64(2*time.Second+time.Minute); c.Watermark() != want {
		t.Fatalf("watermark %d, want store time + 1m = %d", c.Watermark(), want)
	}
	// An older receive time never moves it back.
	if err := c.Handle(ctx, snapshotMsg(3, 3, t0, t0+int64(3*time.Second))); err != nil {
		t.Fatal(err)
	}
	if want := t0 + int64(2*time.Second+time.Minute); c.Watermark() != want {
		t.Fatalf("watermark moved back to %d", c.Watermark())
	}
}

// TestSealAndSupplement proves the seal and late-event protocol: a period
// seals when the watermark passes its end + grace (quiet streams
// included), a later event of that period goes to <name>.late1.parquet,
// which seals once the watermark moved grace past its opening, and a
// redelivered (already processed) message changes nothing.
func TestSealAndSupplement(t *testing.T) {
	dir := t.TempDir()
	sink := &fakeSink{}
	c := testCore(t, dir, sink)
	ctx := context.Background()
	step := func(seq uint64, id int64, recv int64) {
		t.Helper()
		if err := c.Handle(ctx, snapshotMsg(seq, id, recv, recv)); err != nil {
			t.Fatal(err)
		}
	}
	min := int64(time.Minute)
	step(1, 1, t0+1)
	step(2, 2, t0+min+int64(5*time.Second)) // next period, within grace
	if len(sink.sealed) != 0 {
		t.Fatalf("sealed too early: %v", sink.sealed)
	}
	step(3, 3, t0+min+int64(11*time.Second)) // passes end + grace
	want := "spot/orderbooks/ABCUSDT/2025-03-01T1200.parquet"
	if len(sink.sealed) != 1 || sink.sealed[0] != want {
		t.Fatalf("sealed %v, want [%s]", sink.sealed, want)
	}
	if sink.durable != 2 {
		t.Fatalf("seal acked through %d, want 2 (the position before the message that sealed)", sink.durable)
	}
	step(4, 4, t0+2) // late for the sealed period
	step(4, 4, t0+2) // redelivery: skipped
	step(5, 5, t0+min+int64(40*time.Second))
	if len(sink.sealed) != 2 || sink.sealed[1] != "spot/orderbooks/ABCUSDT/2025-03-01T1200.late1.parquet" {
		t.Fatalf("sealed %v", sink.sealed)
	}
	for _, p := range sink.sealed {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(dir, p[:len(p)-len(".parquet")]+".gaps.json")); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SealAll(ctx); err != nil {
		t.Fatal(err)
	}
	if len(sink.sealed) != 3 {
		t.Fatalf("SealAll: sealed %v", sink.sealed)
	}
}
