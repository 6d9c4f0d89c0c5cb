package budget

import (
	"math"
	"time"
)

// Bucket is a token bucket in weight units that paces a market's
// requests at the allowed rate. It holds at most three requests' weight:
//
//   - Scheduled requests need two requests' weight and take one, so one
//     request's weight is held back for on-demand requests, which need
//     (and take) one: an on-demand request rarely waits.
//   - The third is slack for timing jitter: a scheduled request sent a few
//     milliseconds late does not delay every later one (without it, each
//     late wake-up of a schedule that uses the whole budget would shift
//     the rest of the schedule, and the interval would drift).
//
// The long-run rate is the refill rate whoever asks; the largest burst is
// three requests back to back (after an idle period: a scheduled one and
// two on-demand ones); the schedule itself stays evenly spaced.
type Bucket struct {
	tokens float64
	cap    float64
	at     time.Time
}

// NewBucket returns a full bucket for requests of weight w.
func NewBucket(w int, now time.Time) *Bucket {
	return &Bucket{tokens: 3 * float64(w), cap: 3 * float64(w), at: now}
}

// Refill adds rate × (now - last refill) tokens, up to the capacity.
func (b *Bucket) Refill(now time.Time, rate float64) {
	if d := now.Sub(b.at); d > 0 {
		b.tokens = min(b.cap, b.tokens+rate*d.Seconds())
	}
	b.at = now
}

// Tokens returns the weight in the bucket.
func (b *Bucket) Tokens() float64 { return b.tokens }

// Wait returns how long it takes at rate for the bucket to hold need
// (0 when it already does).
func (b *Bucket) Wait(need, rate float64) time.Duration {
	if b.tokens >= need {
		return 0
	}
	if rate <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(math.Ceil((need - b.tokens) / rate * float64(time.Second)))
}

// Take removes w tokens.
func (b *Bucket) Take(w float64) { b.tokens -= w }
