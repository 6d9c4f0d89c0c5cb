package spotws_test

import (
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// TestNATSRestart stops a nats-server process for 10 s under load and
// starts it again on the same store.
//   - Within the buffer limit (64 MiB) nothing is lost: every frame sent
//     is stored exactly once and no gap record exists.
//   - With a tiny limit (64 KiB) frames are dropped, and the loss is
//     exactly what the buffer_overflow records say: every sent frame
//     missing from the stream is inside exactly one record of its
//     stream, each record's FramesLost equals the frames missing in its
//     range, and no record claims a stored frame.
func TestNATSRestart(t *testing.T) {
	t.Parallel() // light load; runs beside the other parallel acceptance tests
	tests := []struct {
		name     string
		buffer   int64
		wantLoss bool
	}{
		{"within the buffer", 64 << 20, false},
		{"tiny buffer", 64 << 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, func(c *binancesim.Config) { c.Symbols = "10" })
			proc := bustest.StartProcess(t)
			conn := connect(t, proc.URL())
			var ins []*instance
			for _, m := range md.Markets {
				ins = append(ins, startIngest(t, sim, ingestOpts{market: m, conn: conn, symbols: "top:10",
					mut: func(c *ingest.Config) { c.PublishBufferBytes = tt.buffer }}))
			}
			for _, in := range ins {
				in.waitReady(20 * time.Second)
			}
			time.Sleep(3 * time.Second)
			proc.Stop()
			time.Sleep(10 * time.Second)
			proc.Start()
			if err := conn.WaitConnected(t.Context()); err != nil { // the client's reconnect backoff reaches 10 s
				t.Fatal(err)
			}
			time.Sleep(5 * time.Second)
			if err := sim.Close(); err != nil {
				t.Fatal(err)
			}
			var dropped float64
			for _, in := range ins {
				if err := in.stop(); err != nil {
					t.Fatalf("stop: %v", err)
				}
				dropped += in.metric("depthcap_ingest_dropped_total", nil)
			}
			b := group(t, readStream(t, conn.JS))
			var frames, missing, records int
			var lost int64
			for _, m := range md.Markets {
				for k, ids := range sentIDs(t, sim, m) {
					stored := idSet(b.data[k])
					if len(stored) != len(b.data[k]) {
						t.Errorf("%s: duplicates stored", k)
					}
					recs := b.gaps[k]
					for _, g := range recs {
						records++
						lost += g.Gap.FramesLost
						if g.Gap.Reason != envelope.ReasonBufferOverflow {
							t.Errorf("%s: %s record: only the buffer could lose frames", k, g.Gap.Reason)
						}
						n := int64(0)
						for id := range ids {
							if g.Gap.AfterID < id && id <= g.Gap.ResumePrevID {
								if stored[id] {
									t.Errorf("%s: record (%d, %d] claims stored id %d", k, g.Gap.AfterID, g.Gap.ResumePrevID, id)
								}
								n++
							}
						}
						if n != g.Gap.FramesLost {
							t.Errorf("%s: record (%d, %d] says %d frames lost, %d are missing", k, g.Gap.AfterID, g.Gap.ResumePrevID, g.Gap.FramesLost, n)
						}
					}
					for id := range ids {
						frames++
						if stored[id] {
							continue
						}
						missing++
						if c := covered(id, recs); c != 1 {
							t.Errorf("%s: id %d missing, in %d records", k, id, c)
						}
					}
				}
			}
			if !tt.wantLoss && (missing > 0 || records > 0 || dropped > 0) {
				t.Errorf("within the buffer: %d missing, %d records, %v dropped", missing, records, dropped)
			}
			if tt.wantLoss && (missing == 0 || records == 0 || int64(missing) != lost || float64(lost) != dropped) {
				t.Errorf("tiny buffer: %d missing, %d records saying %d lost, %v dropped", missing, records, lost, dropped)
			}
			t.Logf("%d frames sent; %d missing, all accounted for by %d buffer_overflow records (FramesLost sum %d)", frames, missing, records, lost)
		})
	}
}
