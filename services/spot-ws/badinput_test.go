package spotws_test

import (
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// TestBadInput proves invariant 6 on the wire: the simulator truncates 2%
// of the depth frames (never valid JSON). Each one lands in the
// dead-letter subject dlq.<service>.<market>.unknown with its raw bytes
// and reason "malformed"; the services keep running (ready to the end);
// every intact frame arrives; and a lost diff frame shows as one sequence
// gap record with exactly its ids.
func TestBadInput(t *testing.T) {
	t.Parallel() // light load; runs beside the other parallel acceptance tests
	const run = 10 * time.Second
	sim := startSim(t, func(c *binancesim.Config) {
		c.Symbols = "10"
		c.MalformedRate = 0.02
	})
	srv := bustest.RunServer(t)
	conn := connect(t, srv.ClientURL())
	var ins []*instance
	for _, m := range md.Markets {
		ins = append(ins, startIngest(t, sim, ingestOpts{market: m, conn: conn, symbols: "top:10"}))
	}
	time.Sleep(run)
	for _, in := range ins {
		if err := in.e.Ready(); err != nil {
			t.Errorf("not ready after bad input: %v", err)
		}
	}
	if err := sim.Close(); err != nil {
		t.Fatal(err)
	}
	var quarantined float64
	for _, in := range ins {
		if err := in.stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		quarantined += in.metric("depthcap_ingest_dlq_total", map[string]string{"reason": "malformed"})
	}
	dlq := bustest.StreamMessages(t, conn.JS, md.StreamDLQ, "")
	malformed := 0
	for _, m := range md.Markets {
		for _, ids := range malformedIDs(t, sim, m) {
			for _, n := range ids {
				malformed += n
			}
		}
	}
	if malformed < 10 || len(dlq) != malformed || quarantined != float64(malformed) {
		t.Errorf("%d malformed frames sent, %d in the DLQ stream, %v counted", malformed, len(dlq), quarantined)
	}
	for _, d := range dlq {
		svc := strings.Split(d.Subject(), ".")[1]
		if d.Headers().Get(ingest.HdrReason) != "malformed" || !strings.HasSuffix(d.Subject(), ".unknown") ||
			(svc != "spot-ws" && svc != "futures-ws") || !strings.HasPrefix(string(d.Data()), `{"stream":"`) {
			t.Errorf("dead letter %s reason %q data %.60q", d.Subject(), d.Headers().Get(ingest.HdrReason), d.Data())
		}
	}
	b := group(t, readStream(t, conn.JS))
	intact, seqRecords := 0, 0
	for _, m := range md.Markets {
		bad := malformedIDs(t, sim, m)
		for k, ids := range sentIDs(t, sim, m) {
			stored := idSet(b.data[k])
			for id := range ids {
				intact++
				if !stored[id] {
					t.Errorf("%s: intact frame %d not stored", k, id)
				}
			}
			if k.k != md.Diff {
				continue
			}
			recs := b.gaps[k]
			for _, g := range recs {
				if g.Gap.Reason == envelope.ReasonSequence {
					seqRecords++
				}
			}
			var last int64
			for id := range stored {
				last = max(last, id)
			}
			for id := range bad[k] {
				if stored[id] || id > last {
					continue // also sent intact, or after the last frame (nothing follows to show the break)
				}
				if c := covered(id, recs); c != 1 {
					t.Errorf("%s: quarantined diff %d is in %d gap records, want 1", k, id, c)
				}
			}
			if len(breaks(b.data[k])) != len(recs) {
				t.Errorf("%s: %d breaks, %d records", k, len(breaks(b.data[k])), len(recs))
			}
		}
	}
	t.Logf("%d malformed frames quarantined; %d intact frames all stored; %d sequence records for lost diffs", malformed, intact, seqRecords)
}
