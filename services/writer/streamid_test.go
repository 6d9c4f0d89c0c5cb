package writer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/writer"
)

// TestStreamRecreatedRefused proves the writer refuses to resume a
// checkpoint on a MARKETDATA stream that was deleted and recreated: its
// stream sequences would not apply and resuming would silently skip
// messages of the new stream.
func TestStreamRecreatedRefused(t *testing.T) {
	h := newHarness(t)
	dir := t.TempDir()
	cfg := testConfig(dir, h.url)
	envs := []envelope.Envelope{
		{Market: md.Spot, Kind: md.Diff, Symbol: "BTCUSDT", ReceivedNs: time.Now().UnixNano(), FirstID: 1, FinalID: 2, Has: envelope.HasFirst | envelope.HasFinal,
			Payload: []byte(`{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0","2.0"]],"a":[]}`)},
		{Market: md.Spot, Kind: md.Diff, Symbol: "BTCUSDT", ReceivedNs: time.Now().UnixNano(), FirstID: 3, FinalID: 4, Has: envelope.HasFirst | envelope.HasFinal,
			Payload: []byte(`{"e":"depthUpdate","E":2,"s":"BTCUSDT","U":3,"u":4,"b":[],"a":[["2.0","1.0"]]}`)},
	}
	h.publish(envs, false)
	h.finish(cfg) // checkpoint at stream sequence 2, identity recorded

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.js.DeleteStream(ctx, md.StreamMarketData); err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, h.js, streamConfig()); err != nil {
		t.Fatal(err)
	}
	h.publish(envs[:1], false)
	err := h.newWriter(cfg, nil).Finish(ctx)
	if !errors.Is(err, writer.ErrStreamMismatch) {
		t.Fatalf("Finish on a recreated stream: err = %v, want ErrStreamMismatch", err)
	}
}
