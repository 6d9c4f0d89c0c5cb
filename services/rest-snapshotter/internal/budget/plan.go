// Package budget holds the rest-snapshotter's request-weight arithmetic:
// the per-market schedule (Plan), the response-header driven governor that
// keeps the IP's total weight under the exchange's limit (Governor), the
// token bucket that paces requests (Bucket), Retry-After parsing and the
// retry backoff. It has no I/O and no goroutines; the caller passes the
// time, so every rule is a table test.
package budget

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Headroom is the share of the exchange's weight limit that the IP's total
// use (this snapshotter's requests and everyone else's) is kept under.
// The last 10 % absorbs what the governor cannot see coming: requests of
// other clients made between two of our responses, and the window
// boundary falling a little differently on the exchange's clock.
const Headroom = 0.9

// Limits is the exchange's REQUEST_WEIGHT rate limit, as exchangeInfo's
// rateLimits states it: Limit weight per Window per IP.
type Limits struct {
	Limit  int
	Window time.Duration
}

// ErrBadLimits reports a rate limit that cannot be planned with.
var ErrBadLimits = errors.New("bad rate limit")

// Validate checks that the limit and window are positive.
func (l Limits) Validate() error {
	if l.Limit <= 0 || l.Window <= 0 {
		return fmt.Errorf("%w: %d per %s", ErrBadLimits, l.Limit, l.Window)
	}
	return nil
}

// WindowName formats the window the way the schedule message uses it:
// "min" for one minute, otherwise the duration ("6s", "5m0s").
func WindowName(w time.Duration) string {
	switch w {
	case time.Minute:
		return "min"
	case time.Second:
		return "s"
	case time.Hour:
		return "h"
	}
	return w.String()
}

// Plan is the schedule of one market: every symbol is requested once per
// Effective, one request every Spacing, round robin.
type Plan struct {
	Symbols  int           // symbols in the rotation
	Weight   int           // weight of one depth request at the configured limit
	Interval time.Duration // configured per-symbol interval (SNAPSHOT_INTERVAL)
	Limits   Limits        // the exchange's limit
	Budget   int           // our weight per window: SNAPSHOT_BUDGET × Limit, at most Headroom × Limit
	// Spacing is the time between two scheduled requests:
	// max(Interval/Symbols, Weight × Window / Budget), the latter rounded up
	// to the millisecond.
	Spacing time.Duration
	// Effective is the per-symbol interval the schedule keeps:
	// Interval, or Spacing × Symbols when the budget cannot carry Interval.
	Effective time.Duration
}

// NewPlan computes the schedule of symbols requests of weight weight every
// interval, within fraction (0 < fraction <= 1) of the limit. fraction is
// capped at Headroom. With no symbols the plan is empty (Spacing and
// Effective are the interval).
func NewPlan(symbols, weight int, interval time.Duration, lim Limits, fraction float64) (Plan, error) {
	if err := lim.Validate(); err != nil {
		return Plan{}, err
	}
	if weight <= 0 || interval <= 0 || symbols < 0 || !(fraction > 0 && fraction <= 1) {
		return Plan{}, fmt.Errorf("plan %d symbols × weight %d every %s within %g of the limit: %w", symbols, weight, interval, fraction, ErrBadLimits)
	}
	budget := int(math.Floor(math.Min(fraction, Headroom) * float64(lim.Limit)))
	if budget < weight {
		return Plan{}, fmt.Errorf("%w: budget %d per %s is below one request's weight %d", ErrBadLimits, budget, lim.Window, weight)
	}
	p := Plan{Symbols: symbols, Weight: weight, Interval: interval, Limits: lim, Budget: budget}
	if symbols == 0 {
		p.Spacing, p.Effective = interval, interval
		return p, nil
	}
	p.Spacing = interval / time.Duration(symbols)
	p.Effective = interval
	if min := p.MinSpacing(); min > p.Spacing {
		p.Spacing = min
		p.Effective = min * time.Duration(symbols)
	}
	return p, nil
}

// MinSpacing is the shortest spacing the budget allows between requests of
// the plan's weight: Weight × Window / Budget, rounded up to the
// millisecond.
func (p Plan) MinSpacing() time.Duration {
	ns := float64(p.Weight) * float64(p.Limits.Window) / float64(p.Budget)
	return time.Duration(math.Ceil(ns/float64(time.Millisecond))) * time.Millisecond
}

// Stretched reports whether the budget forced a longer interval than
// configured.
func (p Plan) Stretched() bool { return p.Effective > p.Interval }

// Summary is the one-line description of a stretched schedule, e.g.
// "spot: 200 symbols × weight 50 exceeds budget 3000/min; each symbol
// every 3m20s", or of one that fits.
func (p Plan) Summary(market string) string {
	win := WindowName(p.Limits.Window)
	if p.Stretched() {
		return market + ": " + strconv.Itoa(p.Symbols) + " symbols × weight " + strconv.Itoa(p.Weight) +
			" exceeds budget " + strconv.Itoa(p.Budget) + "/" + win + "; each symbol every " + p.Effective.String()
	}
	return market + ": " + strconv.Itoa(p.Symbols) + " symbols × weight " + strconv.Itoa(p.Weight) +
		" fits budget " + strconv.Itoa(p.Budget) + "/" + win + "; each symbol every " + p.Effective.String()
}
