package snapshotter

import (
	"context"
	"slices"
	"time"

	"go.uber.org/zap"
)

// dispatch sends requests until ctx ends.
func (mk *market) dispatch(ctx, fetchCtx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			return
		}
		d := mk.step(fetchCtx)
		if d <= 0 {
			continue
		}
		timer.Reset(d)
		select {
		case <-ctx.Done():
			return
		case <-mk.wake:
		case <-timer.C:
		}
	}
}

// jobKind is the queue the next request comes from.
type jobKind uint8

const (
	kindDemand jobKind = iota + 1
	kindRetry
	kindSched
)

// step sends at most one request and returns how long to wait before the
// next step (0: step again now).
func (mk *market) step(fetchCtx context.Context) time.Duration {
	now := time.Now()
	mk.mu.Lock()
	defer mk.mu.Unlock()
	if !mk.banUntil.IsZero() && !now.Before(mk.banUntil) {
		mk.banUntil = time.Time{}
		mk.s.met.banned.WithLabelValues(mk.name).Set(0)
		mk.s.log.Info("ban over; requests resume", zap.String("market", mk.name))
	}
	if now.Before(mk.pauseUntil) {
		return mk.pauseUntil.Sub(now)
	}
	if mk.inflight >= mk.s.cfg.MaxInflight || mk.failures > 0 && mk.inflight > 0 {
		// After a failure one request probes the exchange; the others wait
		// for its answer (a finished request wakes the dispatcher).
		return idleWait
	}
	if pub := mk.s.publisher(); pub != nil {
		if pub.Buffered() > mk.s.cfg.PublishBuffer*3/4 {
			if !mk.backlogged {
				mk.backlogged = true
				mk.s.log.Warn("publish buffer 3/4 full; REST requests wait for NATS", zap.String("market", mk.name), zap.Int64("buffered", pub.Buffered()))
			}
			return 100 * time.Millisecond
		}
		if mk.backlogged {
			mk.backlogged = false
			mk.s.log.Info("publish buffer drained; REST requests resume", zap.String("market", mk.name))
		}
	}
	var kind jobKind
	di, demandIn := mk.dueDemandLocked(now)
	switch {
	case di >= 0:
		kind = kindDemand
	case len(mk.retryQ) > 0:
		kind = kindRetry
	case len(mk.rotation) > 0 && !now.Before(mk.due):
		kind = kindSched
	case len(mk.rotation) > 0:
		return sooner(mk.due.Sub(now), demandIn)
	default:
		return sooner(time.Hour, demandIn)
	}
	w := float64(mk.weight)
	rate := mk.gov.Rate(now)
	mk.bucket.Refill(now, rate)
	need := 2 * w // scheduled and retried requests leave one request's weight for on-demand ones
	if kind == kindDemand {
		need = w
	}
	if d := mk.bucket.Wait(need, rate); d > 0 {
		return sooner(min(d, mk.plan.Limits.Window), demandIn) // a held-back on-demand job needs less
	}
	if d := mk.gov.Wait(now, mk.weight); d > 0 {
		// The exchange's window boundary may be a little later than ours.
		return d + min(mk.plan.Limits.Window/20, 500*time.Millisecond)
	}

	var j *job
	switch kind {
	case kindDemand:
		j = mk.demandQ[di]
		mk.demandQ = slices.Delete(mk.demandQ, di, di+1)
	case kindRetry:
		j, mk.retryQ = mk.retryQ[0], mk.retryQ[1:]
	case kindSched:
		j = mk.nextScheduled()
		// Slots are absolute: a late request does not shift the ones after
		// it. Behind by more than a whole rotation (a long pause or ban),
		// the schedule starts over from now instead of catching up.
		mk.due = mk.due.Add(mk.plan.Spacing)
		if now.Sub(mk.due) > mk.plan.Effective {
			mk.due = now.Add(mk.plan.Spacing)
		}
		if j == nil {
			return 0 // every symbol has a snapshot under way: the slot is skipped
		}
	}
	mk.bucket.Take(w)
	sent := mk.gov.Sent(now, mk.weight)
	j.state, j.sentAt = inFlight, now
	mk.inflight++
	mk.fetches.Add(1)
	go mk.fetch(fetchCtx, j, sent)

	n := max(len(mk.rotation), 1)
	spacing := max(mk.plan.Spacing.Seconds(), w/rate)
	win := mk.plan.Limits.Window.Seconds()
	mk.s.met.effective.WithLabelValues(mk.name).Set(float64(n) * spacing)
	mk.s.met.weightAllowed.WithLabelValues(mk.name).Set(min(rate*win, float64(mk.plan.Budget)))
	mk.s.met.weightOthers.WithLabelValues(mk.name).Set(mk.gov.OthersRate(now) * win)
	return 0
}

// dueDemandLocked returns the index of the first on-demand job that may
// be sent at now, or -1 and how long until the first held-back one may
// (0 when there is none).
func (mk *market) dueDemandLocked(now time.Time) (int, time.Duration) {
	var wait time.Duration
	for i, j := range mk.demandQ {
		d := j.notBefore.Sub(now)
		if d <= 0 {
			return i, 0
		}
		if wait == 0 || d < wait {
			wait = d
		}
	}
	return -1, wait
}

// sooner is d, or wake when it is positive and earlier.
func sooner(d, wake time.Duration) time.Duration {
	if wake > 0 && wake < d {
		return wake
	}
	return d
}

// nextScheduled returns a job for the next symbol of the rotation that has
// no snapshot under way, or nil.
func (mk *market) nextScheduled() *job {
	for range mk.rotation {
		sym := mk.rotation[mk.next%len(mk.rotation)]
		mk.next = (mk.next + 1) % len(mk.rotation)
		if mk.busy[sym] == nil {
			j := &job{sym: sym}
			mk.busy[sym] = j
			return j
		}
	}
	return nil
}
