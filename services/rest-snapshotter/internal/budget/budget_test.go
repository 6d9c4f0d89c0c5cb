package budget

import (
	"errors"
	"math"
	"net/http"
	"testing"
	"time"
)

// TestPlan proves the schedule arithmetic: a schedule that fits keeps the
// configured interval; one that does not is stretched to exactly what the
// budget carries, and the summary says so in the documented words.
func TestPlan(t *testing.T) {
	minute := Limits{Limit: 6000, Window: time.Minute}
	tests := []struct {
		name          string
		symbols, w    int
		interval      time.Duration
		lim           Limits
		fraction      float64
		wantBudget    int
		wantSpacing   time.Duration
		wantEffective time.Duration
		wantStretched bool
		wantSummary   string
		wantErr       error
	}{
		{name: "brief example: 200 spot symbols at limit 1000", symbols: 200, w: 50, interval: time.Minute, lim: minute, fraction: 0.5,
			wantBudget: 3000, wantSpacing: time.Second, wantEffective: 200 * time.Second, wantStretched: true,
			wantSummary: "spot: 200 symbols × weight 50 exceeds budget 3000/min; each symbol every 3m20s"},
		{name: "fits: 50 symbols need 2500 of 3000", symbols: 50, w: 50, interval: time.Minute, lim: minute, fraction: 0.5,
			wantBudget: 3000, wantSpacing: 1200 * time.Millisecond, wantEffective: time.Minute,
			wantSummary: "spot: 50 symbols × weight 50 fits budget 3000/min; each symbol every 1m0s"},
		{name: "exactly at the budget is not stretched", symbols: 60, w: 50, interval: time.Minute, lim: minute, fraction: 0.5,
			wantBudget: 3000, wantSpacing: time.Second, wantEffective: time.Minute},
		{name: "futures 100 symbols at limit 1000", symbols: 100, w: 20, interval: time.Minute, lim: Limits{2400, time.Minute}, fraction: 0.5,
			wantBudget: 1200, wantSpacing: time.Second, wantEffective: 100 * time.Second, wantStretched: true,
			wantSummary: "spot: 100 symbols × weight 20 exceeds budget 1200/min; each symbol every 1m40s"},
		{name: "budget 1.0 is capped at the 90% headroom", symbols: 200, w: 50, interval: time.Minute, lim: minute, fraction: 1,
			wantBudget: 5400, wantSpacing: 556 * time.Millisecond, wantEffective: 200 * 556 * time.Millisecond, wantStretched: true},
		{name: "scaled test window 2s", symbols: 200, w: 50, interval: 2 * time.Second, lim: Limits{6000, 2 * time.Second}, fraction: 0.5,
			wantBudget: 3000, wantSpacing: 34 * time.Millisecond, wantEffective: 6800 * time.Millisecond, wantStretched: true,
			wantSummary: "spot: 200 symbols × weight 50 exceeds budget 3000/2s; each symbol every 6.8s"},
		{name: "no symbols", symbols: 0, w: 50, interval: time.Minute, lim: minute, fraction: 0.5,
			wantBudget: 3000, wantSpacing: time.Minute, wantEffective: time.Minute},
		{name: "budget below one request", symbols: 1, w: 250, interval: time.Minute, lim: Limits{400, time.Minute}, fraction: 0.5, wantErr: ErrBadLimits},
		{name: "fraction 0", symbols: 1, w: 50, interval: time.Minute, lim: minute, fraction: 0, wantErr: ErrBadLimits},
		{name: "fraction above 1", symbols: 1, w: 50, interval: time.Minute, lim: minute, fraction: 1.01, wantErr: ErrBadLimits},
		{name: "fraction NaN", symbols: 1, w: 50, interval: time.Minute, lim: minute, fraction: math.NaN(), wantErr: ErrBadLimits},
		{name: "no window", symbols: 1, w: 50, interval: time.Minute, lim: Limits{6000, 0}, fraction: 0.5, wantErr: ErrBadLimits},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewPlan(tt.symbols, tt.w, tt.interval, tt.lim, tt.fraction)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("NewPlan err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if p.Budget != tt.wantBudget || p.Spacing != tt.wantSpacing || p.Effective != tt.wantEffective || p.Stretched() != tt.wantStretched {
				t.Fatalf("plan = budget %d spacing %s effective %s stretched %v; want %d %s %s %v",
					p.Budget, p.Spacing, p.Effective, p.Stretched(), tt.wantBudget, tt.wantSpacing, tt.wantEffective, tt.wantStretched)
			}
			if tt.wantSummary != "" && p.Summary("spot") != tt.wantSummary {
				t.Fatalf("summary = %q, want %q", p.Summary("spot"), tt.wantSummary)
			}
			// The schedule never needs more than the budget.
			if p.Symbols > 0 {
				perWindow := float64(p.Weight) * float64(p.Limits.Window) / float64(p.Spacing)
				if perWindow > float64(p.Budget)+1e-9 {
					t.Fatalf("schedule uses %.1f per window, budget %d", perWindow, p.Budget)
				}
			}
		})
	}
}

// TestGovernor proves the header-driven slow-down: others' use, read from
// X-MBX-USED-WEIGHT, lowers our rate so the IP total stays under 90 % of
// the limit; our own rate never exceeds the budget; a window always gets
// one probe; a request that would push the window past 90 % waits for the
// next window.
func TestGovernor(t *testing.T) {
	lim := Limits{Limit: 6000, Window: time.Minute} // 100 per second
	t0 := time.Unix(600000, 0)                      // a window boundary
	type sample struct {
		at   time.Duration // from t0
		own  int           // weight of our request sent at `at`
		used int           // header of its response (at the same moment)
		gone bool          // the exchange refused it (429): refund
	}
	tests := []struct {
		name     string
		budget   int // per window
		samples  []sample
		at       time.Duration
		wantRate float64 // weight per second
		wantWait time.Duration
	}{
		{name: "no header yet: the budget", budget: 4800, at: time.Second, wantRate: 80},
		{name: "alone on the IP: the budget", budget: 4800,
			samples: []sample{{10 * time.Second, 50, 50, false}, {20 * time.Second, 50, 100, false}}, at: 21 * time.Second, wantRate: 80},
		{name: "others at 40%: share of 90% left is 50%", budget: 4800,
			samples: []sample{{30 * time.Second, 50, 1250, false}}, at: 31 * time.Second, wantRate: 50},
		{name: "others at 40% with a 50% budget: the budget", budget: 3000,
			samples: []sample{{30 * time.Second, 50, 1250, false}}, at: 31 * time.Second, wantRate: 50},
		{name: "others at 20% with a 50% budget: the budget", budget: 3000,
			samples: []sample{{30 * time.Second, 50, 650, false}}, at: 31 * time.Second, wantRate: 50},
		{name: "others at 95%: one probe per window", budget: 4800,
			samples: []sample{{30 * time.Second, 50, 2900, false}}, at: 31 * time.Second, wantRate: 50.0 / 60, wantWait: 29 * time.Second},
		{name: "early burst counts as a quarter window", budget: 4800,
			samples: []sample{{2 * time.Second, 50, 650, false}}, at: 3 * time.Second, wantRate: 50},
		{name: "previous window's load is remembered", budget: 4800,
			samples: []sample{{50 * time.Second, 50, 2050, false}}, at: 61 * time.Second, wantRate: 50},
		{name: "a load that stopped is forgotten after a clean window", budget: 4800,
			samples: []sample{{50 * time.Second, 50, 2050, false}, {110 * time.Second, 50, 50, false}}, at: 121 * time.Second, wantRate: 80},
		{name: "our own weight is not counted as others'", budget: 4800,
			samples: []sample{{1 * time.Second, 50, 50, false}, {2 * time.Second, 50, 100, false}, {16 * time.Second, 50, 150, false}}, at: 17 * time.Second, wantRate: 80},
		{name: "a refused request is refunded", budget: 4800,
			samples: []sample{{15 * time.Second, 50, 0, true}, {16 * time.Second, 50, 850, false}}, at: 16 * time.Second, wantRate: 40},
		{name: "near the limit: wait for the next window", budget: 4800,
			samples: []sample{{50 * time.Second, 50, 5350, false}}, at: 50 * time.Second, wantRate: 50.0 / 60, wantWait: 10 * time.Second},
		{name: "projected others fill the rest of the window: wait", budget: 4800,
			samples: []sample{{40 * time.Second, 50, 3650, false}}, at: 40 * time.Second, wantRate: 50.0 / 60, wantWait: 20 * time.Second},
		{name: "room left: no wait", budget: 4800,
			samples: []sample{{40 * time.Second, 50, 2050, false}}, at: 41 * time.Second, wantRate: 40},
		{name: "the first request of a window never waits", budget: 4800,
			samples: []sample{{50 * time.Second, 50, 5350, false}}, at: 60 * time.Second, wantRate: 50.0 / 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewGovernor(lim, tt.budget, 50)
			for _, s := range tt.samples {
				at := t0.Add(s.at)
				sent := g.Sent(at, s.own)
				if s.gone {
					g.Refund(sent, s.own)
					continue
				}
				g.Observe(sent, s.used, at)
			}
			at := t0.Add(tt.at)
			if got := g.Rate(at); math.Abs(got-tt.wantRate) > 1e-9 {
				t.Fatalf("Rate = %v, want %v", got, tt.wantRate)
			}
			if got := g.Wait(at, 50); got != tt.wantWait {
				t.Fatalf("Wait = %v, want %v", got, tt.wantWait)
			}
		})
	}
}

// TestGovernorKeepsTotalUnderLimit drives the governor with a simulated
// exchange: a fixed-window counter per IP, an external client using 40 %
// of the limit evenly, and our requests paced by the bucket at the
// governor's rate with a budget of 80 %. It proves the total never passes
// the limit in any window (no 429), even in the first window, before the
// governor has seen the external load.
func TestGovernorKeepsTotalUnderLimit(t *testing.T) {
	lim := Limits{Limit: 1200, Window: 2 * time.Second}
	const w = 50
	g := NewGovernor(lim, 960, w)
	start := time.Unix(1000, 300_000_000) // mid-window start
	b := NewBucket(w, start)
	used := map[int64]int{}
	win := func(t time.Time) int64 { return t.UnixNano() / int64(lim.Window) }
	extEvery := time.Duration(float64(time.Second) * w / (0.4 * float64(lim.Limit) / lim.Window.Seconds()))
	nextExt := start
	ours := 0
	for now := start; now.Before(start.Add(20 * time.Second)); now = now.Add(time.Millisecond) {
		if !now.Before(nextExt) {
			used[win(now)] += w
			nextExt = nextExt.Add(extEvery)
		}
		rate := g.Rate(now)
		b.Refill(now, rate)
		if b.Wait(2*w, rate) == 0 && g.Wait(now, w) == 0 {
			b.Take(w)
			s := g.Sent(now, w)
			if used[win(now)]+w > lim.Limit {
				t.Fatalf("at %s: a request would be refused: window used %d + %d > %d", now.Sub(start), used[win(now)], w, lim.Limit)
			}
			used[win(now)] += w
			ours++
			g.Observe(s, used[win(now)], now)
		}
	}
	for k, u := range used {
		if u > lim.Limit {
			t.Fatalf("window %d used %d > limit %d", k, u, lim.Limit)
		}
	}
	// 20 s = 10 windows; our steady share is 50 % of 1200 per window.
	perWindow := float64(ours*w) / 10
	t.Logf("our weight per window: %.0f of %d (budget %d); max window total: %d", perWindow, lim.Limit, 960, maxUsed(used))
	if perWindow > 0.55*float64(lim.Limit) || perWindow < 0.3*float64(lim.Limit) {
		t.Fatalf("we used %.0f per window, want about 600 (50%% of the limit)", perWindow)
	}
}

// TestBucket proves the pacing: scheduled requests (needing two requests'
// weight) are held to weight/rate on average, an on-demand request
// (needing one) can go right after a scheduled one, and a scheduled
// request sent late does not delay the next one.
func TestBucket(t *testing.T) {
	t0 := time.Unix(0, 0)
	const rate = 50.0 // one request of weight 50 per second
	b := NewBucket(50, t0)
	if w := b.Wait(100, rate); w != 0 {
		t.Fatalf("a full bucket makes a scheduled request wait %v", w)
	}
	b.Take(50) // 100 left
	if w := b.Wait(50, rate); w != 0 {
		t.Fatalf("on-demand request waits %v, want 0 (the reserve)", w)
	}
	b.Take(50) // 50 left
	if w := b.Wait(100, rate); w != time.Second {
		t.Fatalf("after an on-demand request the schedule waits %v, want 1s", w)
	}
	b.Refill(t0.Add(10*time.Second), rate)
	if b.Tokens() != 150 {
		t.Fatalf("bucket holds %v after a long idle, want its capacity 150", b.Tokens())
	}

	// A schedule at exactly the rate, one request 300 ms late: the next
	// one still goes on time, and the bucket recovers.
	b = NewBucket(50, t0)
	at := t0
	for i := range 10 {
		due := t0.Add(time.Duration(i) * time.Second)
		at = due
		if i == 3 {
			at = due.Add(300 * time.Millisecond)
		}
		b.Refill(at, rate)
		if w := b.Wait(100, rate); w != 0 {
			t.Fatalf("scheduled request %d (sent %v after its slot) waits %v", i, at.Sub(due), w)
		}
		b.Take(50)
	}

	// At rate 0 only what is in the bucket can go.
	if w := b.Wait(50, 0); w != 0 {
		t.Fatalf("wait with tokens at rate 0 = %v", w)
	}
	b.Take(b.Tokens())
	if w := b.Wait(50, 0); w != time.Duration(math.MaxInt64) {
		t.Fatalf("wait without tokens at rate 0 = %v, want forever", w)
	}
}

// TestParseRetryAfter proves the Retry-After forms Binance and RFC 9110
// allow are read, and that junk is an error rather than a zero pause.
func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in      string
		want    time.Duration
		wantErr error
	}{
		{in: "5", want: 5 * time.Second},
		{in: "0", want: 0},
		{in: " 120 ", want: 2 * time.Minute},
		{in: "259200", want: 72 * time.Hour},
		{in: "259201", want: MaxRetryAfter},
		{in: "99999999999999999999999", want: MaxRetryAfter},
		{in: now.Add(10 * time.Second).Format(http.TimeFormat), want: 10 * time.Second},
		{in: now.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		{in: "", wantErr: ErrBadRetryAfter},
		{in: "-1", wantErr: ErrBadRetryAfter},
		{in: "1.5", wantErr: ErrBadRetryAfter},
		{in: "soon", wantErr: ErrBadRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseRetryAfter(tt.in, now)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseRetryAfter(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Fatalf("ParseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

// TestBackoff proves retries back off exponentially up to the cap and
// that the jitter never shortens a wait below half its ceiling.
func TestBackoff(t *testing.T) {
	b := Backoff{Min: 500 * time.Millisecond, Max: 30 * time.Second}
	tests := []struct {
		n    int
		want time.Duration
	}{
		{0, 500 * time.Millisecond}, {1, 500 * time.Millisecond}, {2, time.Second}, {3, 2 * time.Second},
		{7, 30 * time.Second}, {100, 30 * time.Second},
	}
	for _, tt := range tests {
		if got := b.Ceiling(tt.n); got != tt.want {
			t.Fatalf("Ceiling(%d) = %v, want %v", tt.n, got, tt.want)
		}
		for range 200 {
			if d := b.Delay(tt.n); d < tt.want/2 || d > tt.want {
				t.Fatalf("Delay(%d) = %v, want in [%v, %v]", tt.n, d, tt.want/2, tt.want)
			}
		}
	}
}

func maxUsed(used map[int64]int) int {
	m := 0
	for _, u := range used {
		m = max(m, u)
	}
	return m
}
