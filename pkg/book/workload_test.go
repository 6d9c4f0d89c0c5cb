package book

import (
	"math/rand/v2"
	"testing"
)

// op is one level update of a benchmark workload.
type op struct {
	side       Side
	price, qty float64
}

// workload is a book and a cyclic stream of level updates. Prices sit on a
// 0.01 grid around a fixed mid with about 71% of the grid occupied, where
// inserts and deletes balance: an existing level is changed (60%) or deleted
// (40%), an absent one inserted. How far from the mid an update lands comes
// from a mix (see mixes). The stream ends with the inverse of its first half
// in reverse order, so each pass leaves the book exactly as it found it and a
// benchmark looping over it runs in steady state.
type workload struct {
	bids, asks []Level // the start book, best first
	ops        []op
}

// mix is a distribution of update distance from the best level, as a
// piecewise uniform CDF over ranks (levels better than the updated one).
type mix struct {
	name string
	cdf  []rankQuantile
}

type rankQuantile struct {
	rank int     // ranks below this...
	pct  float64 // ...take this cumulative share of updates
}

// mixes are the update distributions of the benchmarks.
//
//   - top-heavy: 80% of updates within the best ~28 levels, 15% within ~570,
//     5% anywhere; the shape commonly assumed for diff streams.
//   - recorded: the rank distribution measured on the USD-M ETHUSDT
//     recording in shared testdata (futures_ethusdt_2024-08-08T2354, 428k
//     level updates over 6,579 events, book of 1,000-3,300 levels): median
//     rank 146, p90 1,649. Real diff streams touch deep levels far more than
//     the top-heavy shape assumes. The spot ETHUSDT recording is shallower
//     (median 79, p90 415, book 940-1,850 levels).
var mixes = []mix{
	{"top-heavy", []rankQuantile{{28, 80}, {570, 95}, {5000, 100}}},
	{"recorded", []rankQuantile{{8, 8.8}, {20, 15.6}, {40, 24.2}, {100, 41.3}, {500, 77.6}, {1000, 85.7}, {2000, 92.8}, {3300, 100}}},
}

// wlMid is the workload's mid price in cents (50,000.00).
const wlMid = 5000000

func wlPrice(s Side, d int) float64 {
	// Integer arithmetic on the grid, then one division: the float64 nearest
	// to the decimal price, as the exchange's strings parse.
	if s == Bid {
		return float64(wlMid-d) / 100
	}
	return float64(wlMid+d) / 100
}

// distance draws a distance in ticks from the mid for mix m, on a grid that
// holds 5 levels per 7 ticks.
func (m mix) distance(rng *rand.Rand, span int) int {
	p := rng.Float64() * 100
	lo := 0
	for _, q := range m.cdf {
		if p < q.pct {
			r := lo + rng.IntN(q.rank-lo)
			return min(1+r*7/5, span)
		}
		lo = q.rank
	}
	return span
}

// newWorkload returns a book of about levels levels per side and a stream of
// 2*half updates drawn from mix m.
func newWorkload(seed uint64, levels, half int, m mix) *workload {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	span := levels * 7 / 5
	state := [2]map[int]float64{{}, {}}
	for s := range 2 {
		for d := 1; d <= span; d++ {
			if rng.IntN(span) < levels {
				state[s][d] = float64(1+rng.IntN(100000)) / 1000
			}
		}
	}
	w := &workload{}
	for d := 1; d <= span; d++ {
		if q, ok := state[Bid][d]; ok {
			w.bids = append(w.bids, Level{wlPrice(Bid, d), q})
		}
		if q, ok := state[Ask][d]; ok {
			w.asks = append(w.asks, Level{wlPrice(Ask, d), q})
		}
	}
	type undo struct {
		side Side
		d    int
		qty  float64 // previous quantity, 0 when absent
	}
	var undos []undo
	for range half {
		s := Side(rng.IntN(2))
		d := m.distance(rng, span)
		prev, ok := state[s][d]
		q := 0.0
		if !ok || rng.IntN(100) < 60 {
			q = float64(1+rng.IntN(100000)) / 1000
		}
		if q == 0 {
			delete(state[s], d)
		} else {
			state[s][d] = q
		}
		undos = append(undos, undo{s, d, prev})
		w.ops = append(w.ops, op{s, wlPrice(s, d), q})
	}
	for i := len(undos) - 1; i >= 0; i-- {
		u := undos[i]
		w.ops = append(w.ops, op{u.side, wlPrice(u.side, u.d), u.qty})
	}
	return w
}

// events groups the stream into diff events of per levels each.
func (w *workload) events(per int) []Update {
	var evs []Update
	for i := 0; i+per <= len(w.ops); i += per {
		var u Update
		for _, o := range w.ops[i : i+per] {
			if o.side == Bid {
				u.Bids = append(u.Bids, Level{o.price, o.qty})
			} else {
				u.Asks = append(u.Asks, Level{o.price, o.qty})
			}
		}
		evs = append(evs, u)
	}
	return evs
}

// TestWorkloadIsCyclic proves that one pass of a workload's stream leaves the
// book as it was, which the steady-state benchmarks rely on.
func TestWorkloadIsCyclic(t *testing.T) {
	for _, m := range mixes {
		t.Run(m.name, func(t *testing.T) { testWorkloadIsCyclic(t, m) })
	}
}

func testWorkloadIsCyclic(t *testing.T, m mix) {
	w := newWorkload(1, 5000, 20000, m)
	var b Book
	if err := b.Load(w.bids, w.asks); err != nil {
		t.Fatal(err)
	}
	nb, na := b.Len()
	if nb < 4500 || nb > 5500 || na < 4500 || na > 5500 {
		t.Fatalf("book has %d bids, %d asks, want about 5000", nb, na)
	}
	for _, o := range w.ops {
		if err := b.Apply(o.side, o.price, o.qty); err != nil {
			t.Fatal(err)
		}
	}
	if ok, diff := b.EqualTop(w.bids, w.asks, 0); !ok {
		t.Fatalf("book after one pass differs from the start: %s", diff)
	}
}
