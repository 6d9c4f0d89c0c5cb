package spotws_test

import (
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// TestRotation proves make-before-break rotation against the simulator:
// every frame sent is stored exactly once, with no gap record and no
// break in any diff chain, while connections are replaced
//   - at INGEST_MAX_CONN_AGE=5s over a 60 s run (11-13 rotations per
//     market), and
//   - on the exchange's serverShutdown notice (SIM_MAX_CONN_AGE=4s with a
//     2 s notice: the old connection is closed by the server 2 s after
//     the notice, by then it must have been replaced).
func TestRotation(t *testing.T) {
	t.Parallel() // light load; runs beside the other parallel acceptance tests
	tests := []struct {
		name   string
		run    time.Duration
		sim    func(*binancesim.Config)
		age    time.Duration
		reason string
		min    float64
	}{
		{"max age", 60 * time.Second, nil, 5 * time.Second, "max_age", 10},
		{"server shutdown", 12 * time.Second, func(c *binancesim.Config) {
			c.MaxConnAge = 4 * time.Second
			c.ShutdownNotice = 2 * time.Second
		}, 23 * time.Hour, "server_shutdown", 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim := startSim(t, func(c *binancesim.Config) {
				c.Symbols = "10"
				if tt.sim != nil {
					tt.sim(c)
				}
			})
			srv := bustest.RunServer(t)
			conn := connect(t, srv.ClientURL())
			var ins []*instance
			for _, m := range md.Markets {
				ins = append(ins, startIngest(t, sim, ingestOpts{market: m, conn: conn, symbols: "top:10",
					mut: func(c *ingest.Config) { c.MaxConnAge = tt.age }}))
			}
			time.Sleep(tt.run)
			for i, in := range ins {
				m := md.Markets[i]
				if n := in.metric("depthcap_ingest_rotations_total", map[string]string{"reason": tt.reason}); n < tt.min {
					t.Errorf("%s: %v rotations (%s), want >= %v", m, n, tt.reason, tt.min)
				}
				if n := in.metric("depthcap_ingest_reconnects_total", nil); n != 0 {
					t.Errorf("%s: %v reconnects: a rotation must not fail the connection", m, n)
				}
			}
			if err := sim.Close(); err != nil {
				t.Fatal(err)
			}
			for _, in := range ins {
				if err := in.stop(); err != nil {
					t.Fatalf("stop: %v", err)
				}
			}
			b := group(t, readStream(t, conn.JS))
			if len(b.gaps) != 0 {
				t.Errorf("gap records: %v", b.gaps)
			}
			frames := 0
			for _, m := range md.Markets {
				for k, ids := range sentIDs(t, sim, m) {
					got := idSet(b.data[k])
					if len(got) != len(b.data[k]) {
						t.Errorf("%s: duplicates stored", k)
					}
					for id := range ids {
						if !got[id] {
							t.Errorf("%s: sent id %d not stored", k, id)
							break
						}
					}
					if len(got) != len(ids) {
						t.Errorf("%s: %d stored, %d sent", k, len(got), len(ids))
					}
					if k.k == md.Diff {
						if br := breaks(b.data[k]); len(br) > 0 {
							t.Errorf("%s: %d chain breaks", k, len(br))
						}
					}
					frames += len(ids)
				}
			}
			t.Logf("%d frames over %v, every one stored once, no gap", frames, tt.run)
		})
	}
}
