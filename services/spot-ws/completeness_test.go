package spotws_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// TestCompleteness proves invariant 1 and 2 on the happy path: 50 spot
// and 50 USD-M symbols (diff@100ms + depth20@100ms) captured for 30 s by
// a spot and a futures engine sharing one NATS connection and one metrics
// registry (as in the all-in-one binary): every frame the simulator sent
// is in JetStream exactly once (compared with the send log by dedup id),
// nothing else is there, and no gap record was written.
func TestCompleteness(t *testing.T) {
	const run = 30 * time.Second
	sim := startSim(t, func(c *binancesim.Config) { c.Symbols = "50" })
	srv := bustest.RunServer(t)
	conn := connect(t, srv.ClientURL())
	reg := prometheus.NewRegistry()
	var ins []*instance
	for _, m := range md.Markets {
		ins = append(ins, startIngest(t, sim, ingestOpts{market: m, conn: conn, symbols: "top:50", reg: reg}))
	}
	for _, in := range ins {
		in.waitReady(20 * time.Second)
	}
	time.Sleep(run)
	if err := sim.Close(); err != nil { // the close frame follows the last data frame
		t.Fatal(err)
	}
	for _, in := range ins {
		if err := in.stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
	}
	b := group(t, readStream(t, conn.JS))
	total := 0
	for _, m := range md.Markets {
		sent := sentIDs(t, sim, m)
		streams := 0
		for k, ids := range sent {
			got := idSet(b.data[k])
			if len(got) != len(b.data[k]) {
				t.Errorf("%s: %d messages for %d ids", k, len(b.data[k]), len(got))
			}
			var missing, extra []int64
			for id := range ids {
				if !got[id] {
					missing = append(missing, id)
				}
			}
			for id := range got {
				if _, ok := ids[id]; !ok {
					extra = append(extra, id)
				}
			}
			if len(missing) > 0 || len(extra) > 0 {
				slices.Sort(missing)
				slices.Sort(extra)
				t.Errorf("%s: %d sent, %d stored, missing %v, extra %v", k, len(ids), len(got), head(missing), head(extra))
			}
			total += len(ids)
			streams++
		}
		if streams != 100 {
			t.Errorf("%s: the simulator sent %d streams, want 100 (50 symbols × diff, partial)", m, streams)
		}
	}
	for k := range b.data {
		if _, ok := sentIDs(t, sim, k.m)[k]; !ok {
			t.Errorf("%s stored but never sent", k)
		}
	}
	if len(b.gaps) != 0 {
		t.Errorf("gap records on a fault-free run: %v", b.gaps)
	}
	t.Logf("%d distinct frames over %v in JetStream exactly once (%d streams)", total, run, len(b.data))
}

func head(s []int64) []int64 { return s[:min(len(s), 10)] }
