package book

import (
	"cmp"
	"maps"
	"slices"
)

// model is the naive reference book the fuzz tests compare with: a map per
// side, sorted on every read.
type model struct {
	sides [2]map[float64]float64
}

func newModel() *model {
	return &model{sides: [2]map[float64]float64{{}, {}}}
}

func (m *model) reset() {
	clear(m.sides[Bid])
	clear(m.sides[Ask])
}

func (m *model) set(s Side, price, qty float64) {
	if qty == 0 {
		delete(m.sides[s], price)
		return
	}
	m.sides[s][price] = qty
}

// sorted returns side s best first.
func (m *model) sorted(s Side) []Level {
	prices := slices.Collect(maps.Keys(m.sides[s]))
	slices.Sort(prices)
	if s == Bid {
		slices.Reverse(prices)
	}
	out := make([]Level, 0, len(prices))
	for _, p := range prices {
		out = append(out, Level{p, m.sides[s][p]})
	}
	return out
}

func top(levels []Level, n int) []Level { return levels[:min(n, len(levels))] }

func crossedSorted(bids, asks []Level) bool {
	return len(bids) > 0 && len(asks) > 0 && bids[0].Price >= asks[0].Price
}

func (m *model) crossed() bool {
	return crossedSorted(m.sorted(Bid), m.sorted(Ask))
}

// aggregate groups levels (side s, best first) into buckets through a map,
// independently of the book's single pass, and returns the best n buckets.
func aggregate(levels []Level, s Side, tick float64, n int) []Level {
	p := newBucketPricer(tick)
	sums := map[float64]float64{}
	for _, l := range levels {
		sums[bucket(l.Price, tick, s)] += l.Qty
	}
	ks := slices.Collect(maps.Keys(sums))
	slices.SortFunc(ks, func(a, b float64) int {
		if s == Bid {
			return cmp.Compare(b, a)
		}
		return cmp.Compare(a, b)
	})
	out := []Level{}
	for _, k := range ks {
		if n > 0 && len(out) == n {
			break
		}
		out = append(out, Level{p.price(k), sums[k]})
	}
	return out
}
