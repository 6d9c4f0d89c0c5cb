package ingest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"
)

// TokenBucket paces events: Burst may happen at once, then Rate per
// second. Reservations may run the bucket negative, so concurrent callers
// queue up fairly instead of all waking at once.
type TokenBucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewTokenBucket returns a full bucket.
func NewTokenBucket(rate float64, burst int) *TokenBucket {
	return &TokenBucket{rate: rate, burst: float64(burst), tokens: float64(burst), now: time.Now}
}

// MaxIn is the most events the bucket lets through in any window of
// length d: the burst plus the refill.
func (b *TokenBucket) MaxIn(d time.Duration) float64 { return b.burst + b.rate*d.Seconds() }

// Reserve takes a token and returns how long the caller must wait before
// using it (0: now).
func (b *TokenBucket) Reserve() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	b.tokens--
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// cancel gives back a reserved token that was not used.
func (b *TokenBucket) cancel() {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+1)
	b.mu.Unlock()
}

// Wait blocks until a token is available or ctx ends.
func (b *TokenBucket) Wait(ctx context.Context) error {
	d := b.Reserve()
	if d == 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.cancel()
		return fmt.Errorf("wait for token: %w", ctx.Err())
	}
}

// Connection attempts: Binance allows 300 per 5 minutes per IP. The
// process-wide bucket lets through at most 20 + 0.9/s × 300 s = 290 in
// any 5 minutes, for both markets together.
const (
	attemptRate  = 0.9
	attemptBurst = 20
)

var processAttempts = NewTokenBucket(attemptRate, attemptBurst)

// ProcessAttemptLimiter is the connection-attempt bucket every engine of
// this process shares unless Options.AttemptLimiter replaces it.
func ProcessAttemptLimiter() *TokenBucket { return processAttempts }

// controlRate is the pace of the messages ingest sends on a connection
// (SUBSCRIBE): the exchange's incoming-message limit minus a margin for
// pongs (which count too) and for the burst of one: spot 5/s → 2/s,
// futures 10/s → 6/s. A bucket with burst 1 lets through at most
// 1 + rate messages in any second.
func controlRate(limit int) float64 {
	return float64(max(1, limit-2-limit/5))
}

// Backoff is the reconnect delay policy: exponential with full jitter,
// capped, reset after a connection stayed up for Stable.
type Backoff struct {
	Base   time.Duration // delay bound of the first retry
	Cap    time.Duration // largest delay bound
	Stable time.Duration // a connection delivering this long resets the attempts
}

// DefaultBackoff is the production policy.
var DefaultBackoff = Backoff{Base: 250 * time.Millisecond, Cap: 60 * time.Second, Stable: 30 * time.Second}

func (b Backoff) withDefaults() Backoff {
	if b.Base <= 0 {
		b.Base = DefaultBackoff.Base
	}
	if b.Cap <= 0 {
		b.Cap = DefaultBackoff.Cap
	}
	if b.Stable <= 0 {
		b.Stable = DefaultBackoff.Stable
	}
	return b
}

// Bound is the upper bound of the delay before retry number attempt
// (0 for the first retry): min(Cap, Base·2^attempt).
func (b Backoff) Bound(attempt int) time.Duration {
	d := b.Base << min(attempt, 30)
	if d <= 0 || d > b.Cap {
		return b.Cap
	}
	return d
}

// Delay draws the delay before retry number attempt uniformly from
// [0, Bound(attempt)] ("full jitter"), so that many connections that
// failed together do not retry in step.
func (b Backoff) Delay(attempt int) time.Duration {
	return time.Duration(rand.Int64N(int64(b.Bound(attempt)) + 1))
}
