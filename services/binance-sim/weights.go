package binancesim

import (
	"sync"
	"time"
)

// weightLimiter counts REST request weight per client IP in fixed windows
// aligned to the epoch (so a 1m window is a calendar minute, as Binance
// counts it). Past the limit it answers 429; a client that keeps sending
// more than banAfter requests in a window after its first 429 is banned
// (418) for banDuration, doubling with each ban up to 3 days.
type weightLimiter struct {
	mu          sync.Mutex
	window      time.Duration
	limit       int
	banAfter    int
	banDuration time.Duration
	ips         map[string]*ipWeight
	sweepAt     time.Time
}

type ipWeight struct {
	win      int64 // window index
	used     int
	over     int // requests refused with 429 in this window
	banUntil time.Time
	bans     int
}

type admitResult struct {
	status     int // 200, 429 or 418
	used       int
	retryAfter int // seconds
	banUntil   time.Time
}

func newWeightLimiter(window time.Duration, limit, banAfter int, banDuration time.Duration) *weightLimiter {
	return &weightLimiter{window: window, limit: limit, banAfter: banAfter, banDuration: banDuration, ips: map[string]*ipWeight{}}
}

func ceilSeconds(d time.Duration) int {
	s := int((d + time.Second - 1) / time.Second)
	return max(s, 1)
}

func (l *weightLimiter) admit(ip string, weight int, now time.Time) admitResult {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.sweepAt) {
		l.sweep(now)
	}
	w := l.ips[ip]
	if w == nil {
		w = &ipWeight{}
		l.ips[ip] = w
	}
	win := now.UnixNano() / int64(l.window)
	if win != w.win {
		w.win, w.used, w.over = win, 0, 0
	}
	if now.Before(w.banUntil) {
		return admitResult{status: 418, used: w.used, retryAfter: ceilSeconds(w.banUntil.Sub(now)), banUntil: w.banUntil}
	}
	if w.used+weight > l.limit {
		w.over++
		if w.over > l.banAfter {
			w.bans++
			d := l.banDuration << min(w.bans-1, 20)
			if d > 3*24*time.Hour || d <= 0 {
				d = 3 * 24 * time.Hour
			}
			w.banUntil = now.Add(d)
			return admitResult{status: 418, used: w.used, retryAfter: ceilSeconds(d), banUntil: w.banUntil}
		}
		end := time.Unix(0, (win+1)*int64(l.window))
		return admitResult{status: 429, used: w.used, retryAfter: ceilSeconds(end.Sub(now))}
	}
	w.used += weight
	return admitResult{status: 200, used: w.used}
}

// used returns the weight ip used in the current window.
func (l *weightLimiter) used(ip string, now time.Time) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.ips[ip]
	if w == nil || w.win != now.UnixNano()/int64(l.window) {
		return 0
	}
	return w.used
}

// sweep forgets clients with nothing to remember (bounded memory).
func (l *weightLimiter) sweep(now time.Time) {
	win := now.UnixNano() / int64(l.window)
	for ip, w := range l.ips {
		if w.win != win && now.After(w.banUntil) && w.bans == 0 {
			delete(l.ips, ip)
		}
	}
	l.sweepAt = now.Add(max(l.window, time.Minute))
}
