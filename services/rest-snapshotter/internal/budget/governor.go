package budget

import (
	"math"
	"time"
)

// Governor follows the X-MBX-USED-WEIGHT-<window> header, which reports
// the weight the whole IP used in the exchange's current window, and
// derives how fast this market's requests may go. Binance counts weight in
// fixed windows aligned to the epoch (a 1m window is a calendar minute);
// the governor keeps its own books on the same windows.
//
// The rule, for the window that contains t:
//
//   - others = used - ours: the weight other clients on the IP used, where
//     used is the header of a response and ours the weight we had sent in
//     the window when we sent that request (including it).
//   - othersRate = max(others / max(elapsed, Window/4), previous window's
//     others / max(its last sample's elapsed, Window/2)): the current
//     window's rate (not trusted before a quarter window has passed, so
//     an early burst counts as if it had taken a quarter window), and the
//     previous window's, so a load that stops is trusted to have stopped
//     only after a full window without it.
//   - Rate = min(budget, Headroom × Limit / Window - othersRate), but never
//     below one request per window (so a window always starts with a probe
//     that refreshes the header).
//   - Wait: a request must not make used + ours since then + its weight +
//     othersRate × (time left in the window) exceed Headroom × Limit; if it
//     would, it waits for the next window. The first request of a window
//     is always allowed.
//
// Together: our share stays within the budget, and the IP's total, as far
// as the headers let us see it coming, under 90 % of the limit.
type Governor struct {
	lim    Limits
	budget float64 // our weight per second
	weight int     // one request's weight (for the floor)

	win       int64 // window index the fields below describe
	own       int   // weight we sent in win
	sampled   bool  // a response of win reported the header
	used      int   // highest header value seen in win
	ownAtUsed int   // own when the request that reported used was sent
	others    int   // highest others seen in win
	othersAt  time.Duration

	prevRate float64 // others' weight per second in the last window with samples
}

// NewGovernor returns a governor for limit lim, a budget of budget weight
// per window and requests of weight weight.
func NewGovernor(lim Limits, budget, weight int) *Governor {
	return &Governor{lim: lim, budget: float64(budget) / lim.Window.Seconds(), weight: weight, win: math.MinInt64}
}

// SetLimits changes the limit and budget (exchangeInfo was re-read).
func (g *Governor) SetLimits(lim Limits, budget int) {
	if lim.Window != g.lim.Window {
		g.win = math.MinInt64 // new windows: forget the books
		g.prevRate = 0
	}
	g.lim = lim
	g.budget = float64(budget) / lim.Window.Seconds()
}

// Sent identifies a request to Observe and Refund.
type Sent struct {
	Win int64 // window index at send time
	Own int   // our weight in that window, this request included
}

func (g *Governor) index(t time.Time) int64 { return floorDiv(t.UnixNano(), int64(g.lim.Window)) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// elapsed is the time since the start of t's window.
func (g *Governor) elapsed(t time.Time) time.Duration {
	return time.Duration(t.UnixNano() - g.index(t)*int64(g.lim.Window))
}

// Remaining is the time from t to the end of t's window.
func (g *Governor) Remaining(t time.Time) time.Duration { return g.lim.Window - g.elapsed(t) }

// roll moves the books to t's window.
func (g *Governor) roll(t time.Time) {
	win := g.index(t)
	if win == g.win {
		return
	}
	if g.sampled {
		if win == g.win+1 {
			g.prevRate = float64(g.others) / max(g.othersAt, g.lim.Window/2).Seconds()
		} else {
			// Whole windows passed without a sample: what others did in
			// them is unknown. Keep the old rate; the first samples of
			// the new window will correct it.
			g.prevRate = max(g.prevRate, float64(g.others)/g.lim.Window.Seconds())
		}
	}
	g.win, g.own, g.sampled, g.used, g.ownAtUsed, g.others, g.othersAt = win, 0, false, 0, 0, 0, 0
}

// Sent records a request of weight w sent at t.
func (g *Governor) Sent(t time.Time, w int) Sent {
	g.roll(t)
	g.own += w
	return Sent{Win: g.win, Own: g.own}
}

// Refund takes back the weight of a request the exchange refused without
// counting it (429, 418).
func (g *Governor) Refund(s Sent, w int) {
	if s.Win == g.win {
		g.own = max(g.own-w, 0)
	}
}

// Observe feeds the used weight a response to request s reported at t.
func (g *Governor) Observe(s Sent, used int, t time.Time) {
	g.roll(t)
	if s.Win != g.win || used < 0 {
		return // the window has ended since: its books are closed
	}
	g.sampled = true
	if used >= g.used {
		g.used, g.ownAtUsed = used, s.Own
	}
	if o := used - s.Own; o > g.others {
		g.others, g.othersAt = o, g.elapsed(t)
	}
}

// OthersRate is the estimated weight per second other clients on the IP
// use at t.
func (g *Governor) OthersRate(t time.Time) float64 {
	g.roll(t)
	cur := 0.0
	if g.sampled {
		cur = float64(g.others) / max(g.othersAt, g.lim.Window/4).Seconds()
	}
	return max(cur, g.prevRate)
}

// Rate is the weight per second our requests may use at t.
func (g *Governor) Rate(t time.Time) float64 {
	share := Headroom*float64(g.lim.Limit)/g.lim.Window.Seconds() - g.OthersRate(t)
	floor := float64(g.weight) / g.lim.Window.Seconds()
	return max(min(g.budget, share), floor)
}

// Wait returns how long a request of weight w must wait at t so that the
// window's projected total stays under Headroom × Limit; 0 means it may
// go now.
func (g *Governor) Wait(t time.Time, w int) time.Duration {
	g.roll(t)
	if g.own == 0 || !g.sampled {
		return 0
	}
	rem := g.Remaining(t)
	projected := float64(g.used+g.own-g.ownAtUsed+w) + g.OthersRate(t)*rem.Seconds()
	if projected <= Headroom*float64(g.lim.Limit) {
		return 0
	}
	return rem
}
