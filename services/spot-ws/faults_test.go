package spotws_test

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/ingest"
	"github.com/depthcap/depthcap/pkg/md"
	binancesim "github.com/depthcap/depthcap/services/binance-sim"
)

// TestGapsUnderFaults proves that every gap the exchange side causes is
// recorded exactly once with the right range, and that none is invented:
// random connection drops (mean 3 s per connection), random exchange-side
// sequence skips (mean 1 s per market, 2 events each) and skips injected
// every 2 s on a random symbol, on 20 symbols per market for 20 s.
// Checked against the stored stream and the simulator's fault log:
//   - every break in the stored diff chain has exactly one gap record
//     with exactly its range, and every diff record is such a break;
//   - every skip inside the captured span is inside exactly one record;
//   - every sequence record is exactly the range of the skips inside it
//     (back-to-back skips make one gap), every disconnect record spans a
//     connection-ending fault of that market;
//   - every frame the simulator sent (before the last one stored) is
//     stored or inside a record;
//   - partial streams get disconnect records only, exactly between the
//     stored ids around them.
func TestGapsUnderFaults(t *testing.T) {
	t.Parallel() // light load; runs beside the other parallel acceptance tests
	const run = 20 * time.Second
	sim := startSim(t, func(c *binancesim.Config) {
		c.Symbols = "20"
		c.DropMean = 3 * time.Second
		c.SkipMean = time.Second
		c.SkipEvents = 2
	})
	srv := bustest.RunServer(t)
	conn := connect(t, srv.ClientURL())
	var ins []*instance
	for _, m := range md.Markets {
		ins = append(ins, startIngest(t, sim, ingestOpts{market: m, conn: conn, symbols: "top:20",
			mut: func(c *ingest.Config) { c.StallTimeout = 5 * time.Second }, opts: ingest.Options{Backoff: quickBackoff}}))
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for end := time.Now().Add(run); time.Now().Before(end); {
		time.Sleep(2 * time.Second)
		for _, m := range md.Markets {
			syms := sim.Symbols(m)
			_, _ = sim.Inject(binancesim.FaultRequest{Type: "skip", Market: m.String(), Symbol: syms[rng.IntN(len(syms))], Events: 1 + rng.IntN(3)})
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
	for _, m := range md.Markets {
		var skips, drops []binancesim.Fault
		injected := 0
		for _, f := range sim.Faults(m) {
			switch f.Type {
			case binancesim.FaultSkip:
				skips = append(skips, f)
				if f.Injected {
					injected++
				}
			case binancesim.FaultDrop, binancesim.FaultSlowConsumer, binancesim.FaultPongTimeout, binancesim.FaultMsgRate, binancesim.FaultMaxAge:
				drops = append(drops, f) // every fault that ends a connection
			}
		}
		stats := map[envelope.GapReason]int{}
		checkedSkips := 0
		sent := sentIDs(t, sim, m)
		for k, es := range b.data {
			if k.m != m {
				continue
			}
			recs := b.gaps[k]
			for _, g := range recs {
				stats[g.Gap.Reason]++
			}
			// No silent loss. A loss after the last stored frame is not
			// knowable yet (no frame follows it when the capture ends).
			stored := idSet(es)
			var last int64
			for id := range stored {
				last = max(last, id)
			}
			for id := range sent[k] {
				if id < last && !stored[id] && covered(id, recs) != 1 {
					t.Errorf("%s: id %d sent, not stored, in %d records", k, id, covered(id, recs))
				}
			}
			if k.k == md.Partial {
				checkPartialRecords(t, k, es, recs)
				continue
			}
			// Breaks and records match one to one.
			want := map[[2]int64]int{}
			for _, br := range breaks(es) {
				want[br]++
			}
			for _, g := range recs {
				r := [2]int64{g.Gap.AfterID, g.Gap.ResumePrevID}
				if want[r] == 0 {
					t.Errorf("%s: record %s (%d, %d] is not a break of the stored chain (or is recorded twice)", k, g.Gap.Reason, r[0], r[1])
					continue
				}
				want[r]--
				switch g.Gap.Reason {
				case envelope.ReasonSequence:
					if !isSkips(g, skips, m) {
						t.Errorf("%s: sequence record (%d, %d] is not exactly the range of skips", k, r[0], r[1])
					}
				case envelope.ReasonDisconnect:
					if !spansDrop(g, drops) {
						t.Errorf("%s: disconnect record (%d, %d] spans no drop", k, r[0], r[1])
					}
				default:
					t.Errorf("%s: unexpected %s record", k, g.Gap.Reason)
				}
			}
			for r, n := range want {
				if n > 0 {
					t.Errorf("%s: break (%d, %d] has no record", k, r[0], r[1])
				}
			}
			// Every skip of the symbol inside the captured span is in
			// exactly one record.
			s := sortedByID(es)
			first, last := seqID(s[0]), seqID(s[len(s)-1])
			for _, f := range skips {
				if f.Symbol != k.sym || f.From <= first || f.To >= last {
					continue
				}
				checkedSkips++
				n := 0
				for _, g := range recs {
					if g.Gap.AfterID < f.From && f.To <= g.Gap.ResumePrevID {
						n++
					}
				}
				if n != 1 {
					t.Errorf("%s: skip %d..%d is in %d records, want 1", k, f.From, f.To, n)
				}
			}
		}
		if len(drops) < 3 || checkedSkips < 5 || injected < 5 || stats[envelope.ReasonSequence] == 0 || stats[envelope.ReasonDisconnect] == 0 {
			t.Errorf("%s: too few faults to prove anything: %d drops, %d skips checked (%d injected), records %v", m, len(drops), checkedSkips, injected, stats)
		}
		t.Logf("%s: %d drops, %d skips (%d injected; %d inside the captured spans), records: %d sequence, %d disconnect",
			m, len(drops), len(skips), injected, checkedSkips, stats[envelope.ReasonSequence], stats[envelope.ReasonDisconnect])
	}
}

// isSkips reports whether a sequence record is exactly the range of the
// skips inside it (one, or several back to back): the lost events end at
// the last skip's To and, on spot where ids are consecutive, start at the
// first skip's From with no hole between the skips.
func isSkips(g envelope.Envelope, skips []binancesim.Fault, m md.Market) bool {
	var in []binancesim.Fault
	for _, f := range skips {
		if f.Symbol == g.Symbol && g.Gap.AfterID < f.From && f.To <= g.Gap.ResumePrevID {
			in = append(in, f)
		}
	}
	if len(in) == 0 {
		return false
	}
	slices.SortFunc(in, func(a, b binancesim.Fault) int { return cmp.Compare(a.From, b.From) })
	if in[len(in)-1].To != g.Gap.ResumePrevID {
		return false
	}
	if m == md.Spot {
		next := g.Gap.AfterID + 1
		for _, f := range in {
			if f.From != next {
				return false
			}
			next = f.To + 1
		}
	}
	return true
}

// spansDrop reports whether a connection-ending fault happened between the
// last frame before the record and the first after it. The simulator
// stamps the fault after it closed the connection, so under load the
// stamp can trail the reconnect: allow a second either side (drops are
// seconds apart).
func spansDrop(g envelope.Envelope, drops []binancesim.Fault) bool {
	const slack = int64(time.Second)
	for _, f := range drops {
		at := f.Time.UnixNano()
		if g.Gap.StartNs-slack <= at && at <= g.Gap.EndNs+slack {
			return true
		}
	}
	return false
}

// checkPartialRecords: partial streams have no chain, so their records
// are disconnect records exactly between two stored ids.
func checkPartialRecords(t *testing.T, k streamKey, es, recs []envelope.Envelope) {
	t.Helper()
	stored := idSet(es)
	for _, g := range recs {
		if g.Gap.Reason != envelope.ReasonDisconnect {
			t.Errorf("%s: %s record on a partial stream", k, g.Gap.Reason)
		}
		if !stored[g.Gap.AfterID] || !stored[g.Gap.ResumePrevID+1] {
			t.Errorf("%s: record (%d, %d] does not sit between stored ids", k, g.Gap.AfterID, g.Gap.ResumePrevID)
		}
		for id := range stored {
			if g.Gap.AfterID < id && id <= g.Gap.ResumePrevID {
				t.Errorf("%s: record (%d, %d] claims stored id %d", k, g.Gap.AfterID, g.Gap.ResumePrevID, id)
			}
		}
	}
}
