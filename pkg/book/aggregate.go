package book

import (
	"errors"
	"fmt"
	"math"
)

// ErrInvalidTick reports a bucket size that is not a positive finite number.
var ErrInvalidTick = errors.New("invalid tick")

// snapTolerance is the relative distance from an integer within which
// price/tick counts as that integer. Price and tick are each within half an
// ulp of their decimal strings and the division adds half an ulp more, so a
// price on a bucket boundary gives a quotient within about 3.3e-16 of the
// integer (0.29/0.01 is 28.999999999999996). Real prices carry at most 13 or
// so significant digits, so a price off the boundary is at least ~1e-13 away
// in relative terms: 1e-14 separates the two cases with margin on both sides.
const snapTolerance = 1e-14

// bucket returns the bucket index of price for bucket size tick: the largest
// k with k*tick <= price for bids (round down), the smallest k with
// k*tick >= price for asks (round up), with price/tick snapped to an integer
// when it is within snapTolerance of one.
func bucket(price, tick float64, s Side) float64 {
	q := price / tick
	r := math.Round(q)
	if math.Abs(q-r) <= snapTolerance*max(math.Abs(q), 1) {
		return r
	}
	if s == Ask {
		return math.Ceil(q)
	}
	return math.Floor(q)
}

// bucketPricer turns bucket indexes into prices. When 1/tick is an integer
// (ticks 0.1, 0.01, ...) it divides by it, which gives the float64 nearest to
// the decimal bucket price (29/100 is 0.29, where 29*0.01 is
// 0.29000000000000004). Otherwise it multiplies, which is exact for integer
// ticks.
type bucketPricer struct {
	tick, inv float64
}

func newBucketPricer(tick float64) bucketPricer {
	if tick < 1 {
		if inv := math.Round(1 / tick); math.Abs(inv*tick-1) <= 1e-15 {
			return bucketPricer{tick: tick, inv: inv}
		}
	}
	return bucketPricer{tick: tick}
}

func (p bucketPricer) price(k float64) float64 {
	if p.inv != 0 {
		return k / p.inv
	}
	return k * p.tick
}

// Aggregate groups the book into price buckets of size tick (for example 10,
// 50 or 100 USD) and writes the best n buckets of each side, best first, into
// bids[:0] and asks[:0]; n <= 0 means every bucket. A bid goes to the bucket
// at or below its price, an ask to the bucket at or above it, and the
// quantities in a bucket are summed best level first. Only buckets holding at
// least one level are returned. With buffers of capacity n it does not
// allocate.
//
// It returns an error wrapping ErrInvalidTick when tick is not a positive
// finite number.
func (b *Book) Aggregate(tick float64, n int, bids, asks []Level) ([]Level, []Level, error) {
	if !(tick > 0) || math.IsInf(tick, 1) {
		return bids[:0], asks[:0], fmt.Errorf("aggregate: %w: %v", ErrInvalidTick, tick)
	}
	p := newBucketPricer(tick)
	return b.bids.aggregate(bids[:0], Bid, p, n, 1), b.asks.aggregate(asks[:0], Ask, p, n, -1), nil
}

// sameBucketMargin is the relative distance inside a bucket's boundary
// beyond which a price surely falls in the bucket, whatever the rounding:
// ten times snapTolerance.
const sameBucketMargin = 10 * snapTolerance

func (s *side) aggregate(dst []Level, sd Side, p bucketPricer, n int, sign float64) []Level {
	if n <= 0 {
		n = s.n
	}
	var (
		cur  float64 // the current bucket's index
		sum  float64
		have bool
		// Levels come best first, so each next price is at or beyond the
		// previous one: below it for bids, above it for asks. A price still
		// short of the bucket's far boundary by more than the margin is in
		// the bucket; only the others need bucket(). inside is that
		// threshold, as a key (sign*price), so one test serves both sides.
		inside float64
	)
	for bi := len(s.blocks) - 1; bi >= 0; bi-- {
		b := s.blocks[bi]
		for i := b.n - 1; i >= 0; i-- {
			key := b.keys[i]
			if have && key >= inside {
				sum += b.qtys[i]
				continue
			}
			k := bucket(sign*key, p.tick, sd)
			if have && k == cur {
				sum += b.qtys[i]
				continue
			}
			if have {
				dst = append(dst, Level{Price: p.price(cur), Qty: sum})
				if len(dst) == n {
					return dst
				}
			}
			cur, sum, have = k, b.qtys[i], true
			// The far boundary is the bucket's own price on both sides:
			// bids [k*tick, (k+1)*tick) walk down to it, asks
			// ((k-1)*tick, k*tick] walk up to it.
			edge := p.price(k)
			inside = sign*edge + math.Abs(edge)*sameBucketMargin
		}
	}
	if have {
		dst = append(dst, Level{Price: p.price(cur), Qty: sum})
	}
	return dst
}
