package budget

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrBadRetryAfter reports a Retry-After header that is neither a number
// of seconds nor an HTTP date.
var ErrBadRetryAfter = errors.New("bad Retry-After")

// MaxRetryAfter caps what a Retry-After may ask for: Binance bans last
// from 2 minutes up to 3 days.
const MaxRetryAfter = 3 * 24 * time.Hour

// ParseRetryAfter reads a Retry-After header: delay-seconds (Binance
// sends these) or an HTTP date (RFC 9110), relative to now. A date in the
// past gives 0; values above MaxRetryAfter are capped.
func ParseRetryAfter(v string, now time.Time) (time.Duration, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, fmt.Errorf("%w: empty", ErrBadRetryAfter)
	}
	if v[0] >= '0' && v[0] <= '9' {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			if errors.Is(err, strconv.ErrRange) {
				return MaxRetryAfter, nil
			}
			return 0, fmt.Errorf("%w %q: %w", ErrBadRetryAfter, v, err)
		}
		if n > uint64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, nil
		}
		return time.Duration(n) * time.Second, nil
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, fmt.Errorf("%w %q: %w", ErrBadRetryAfter, v, err)
	}
	return min(max(t.Sub(now), 0), MaxRetryAfter), nil
}

// Backoff is exponential backoff with jitter: the n-th consecutive
// failure (n >= 1) waits a random duration in [d/2, d], d = Min × 2^(n-1)
// capped at Max. Half of it is guaranteed, so retries never come faster
// than Min/2, Min, 2×Min...; the other half is random, so that several
// snapshotters do not retry in step.
type Backoff struct {
	Min, Max time.Duration
}

// Ceiling is d for the n-th failure, before jitter.
func (b Backoff) Ceiling(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Delay draws the wait before retrying after the n-th failure.
func (b Backoff) Delay(n int) time.Duration {
	d := b.Ceiling(n)
	return d/2 + rand.N(d/2+1)
}
