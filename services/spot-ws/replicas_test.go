package spotws_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// TestTwoReplicasZeroGaps proves the hot-standby design: two ingest
// instances (SOURCE_ID A and B, dialing from different loopback
// addresses) capture the same symbols while each gets its own schedule of
// connection drops (random intervals; never both down at once). Each
// replica records its own disconnect gaps, yet the merged stream has
// every diff event of every symbol exactly once: the chain over the
// stored messages (in stream order, late fills from the other replica
// allowed) has no break and no duplicate.
func TestTwoReplicasZeroGaps(t *testing.T) {
	const run = 20 * time.Second
	sim := startSim(t, func(c *binancesim.Config) { c.Symbols = "10" })
	srv := bustest.RunServer(t)
	conn := connect(t, srv.ClientURL())
	replicas := []struct{ source, ip string }{{"A", "127.0.0.2"}, {"B", "127.0.0.3"}}
	var ins []*instance
	for _, r := range replicas {
		for _, m := range md.Markets {
			ins = append(ins, startIngest(t, sim, ingestOpts{market: m, conn: conn, symbols: "top:10", source: r.source,
				opts: ingest.Options{HTTPClient: loopbackClient(r.ip), Backoff: quickBackoff}}))
		}
	}
	for _, in := range ins {
		in.waitReady(20 * time.Second)
	}
	rng := rand.New(rand.NewPCG(7, 11))
	drops := map[string]int{}
	end := time.Now().Add(run)
	for turn := 0; time.Now().Before(end); turn++ {
		time.Sleep(time.Duration(800+rng.IntN(1200)) * time.Millisecond)
		victim, other := replicas[turn%2], replicas[(turn+1)%2]
		for _, m := range md.Markets {
			// Drop only while the other replica has been connected for a
			// while, so one of the two always delivers.
			if !steady(sim, m, other.ip) {
				continue
			}
			for _, c := range connsFrom(sim, m, victim.ip) {
				if _, err := sim.Inject(binancesim.FaultRequest{Type: "drop", Market: m.String(), Conn: c.ID}); err == nil {
					drops[victim.source]++
				}
			}
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
	perSource := map[string]int{}
	for _, recs := range b.gaps {
		for _, g := range recs {
			perSource[g.Source]++
			if g.Gap.Reason != envelope.ReasonDisconnect {
				t.Errorf("%s record from %s: only drops were injected", g.Gap.Reason, g.Source)
			}
		}
	}
	events := 0
	for k, es := range b.data {
		if k.k != md.Diff {
			continue
		}
		if br := breaks(es); len(br) > 0 {
			t.Errorf("%s: the merged stream has %d breaks, first (%d, %d]", k, len(br), br[0][0], br[0][1])
		}
		if len(idSet(es)) != len(es) {
			t.Errorf("%s: duplicate events stored", k)
		}
		events += len(es)
		// Every frame the simulator sent is there once.
		stored := idSet(es)
		for id := range sentIDs(t, sim, k.m)[k] {
			if !stored[id] {
				t.Errorf("%s: sent id %d missing from the merged stream", k, id)
				break
			}
		}
	}
	if drops["A"] < 3 || drops["B"] < 3 || perSource["A"] == 0 || perSource["B"] == 0 {
		t.Errorf("drops %v, gap records per replica %v: each replica must have lost frames the other filled", drops, perSource)
	}
	t.Logf("%d diff events, merged without a gap; connection drops %v; each replica's own gap records %v", events, drops, perSource)
}

// steady reports whether the replica at ip has connections of market m
// that have been open for over a second.
func steady(sim *binancesim.Sim, m md.Market, ip string) bool {
	cs := connsFrom(sim, m, ip)
	if len(cs) == 0 {
		return false
	}
	for _, c := range cs {
		if time.Since(c.Opened) < time.Second {
			return false
		}
	}
	return true
}
