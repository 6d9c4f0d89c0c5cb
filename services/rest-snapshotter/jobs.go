package snapshotter

import (
	"slices"
	"time"

	"go.uber.org/zap"
)

// requeueLocked puts a job back at the front of its queue (on-demand jobs
// keep their priority). Requests that wanted a later snapshot join it:
// it will be sent later. After close the job ends instead, and its
// waiters are returned to be answered.
func (mk *market) requeueLocked(j *job) []waiter {
	j.state, j.sentAt = queued, time.Time{}
	j.waiters = append(j.waiters, j.after...)
	j.after = nil
	if mk.closed {
		ws := j.waiters
		j.waiters = nil
		if mk.busy[j.sym] == j {
			delete(mk.busy, j.sym)
		}
		return ws
	}
	if j.onDemand {
		mk.demandQ = slices.Insert(mk.demandQ, 0, j)
	} else {
		mk.retryQ = slices.Insert(mk.retryQ, 0, j)
	}
	return nil
}

// dropDemandLocked removes every queued on-demand job and detaches the
// waiters of queued retries; it returns the waiters to answer.
func (mk *market) dropDemandLocked() []waiter {
	var ws []waiter
	for _, j := range mk.demandQ {
		ws = append(ws, j.waiters...)
		if mk.busy[j.sym] == j {
			delete(mk.busy, j.sym)
		}
	}
	mk.demandQ = nil
	for _, j := range mk.retryQ {
		ws = append(ws, j.waiters...)
		j.waiters = nil
	}
	return ws
}

// dropQueuedLocked removes every queued job (shutdown).
func (mk *market) dropQueuedLocked() []waiter {
	ws := mk.dropDemandLocked()
	for _, j := range mk.retryQ {
		if mk.busy[j.sym] == j {
			delete(mk.busy, j.sym)
		}
	}
	mk.retryQ = nil
	return ws
}

// releaseLocked ends a job: the symbol is free again, and requests that
// need a later snapshot (j.after, and lagging: the ones its snapshot did
// not reach the min_update_id of) get a new on-demand job. After a lagging
// snapshot the new job waits lagDelay: the exchange's REST API was behind
// its stream a moment ago.
func (mk *market) releaseLocked(j *job, lagging []waiter) {
	if mk.busy[j.sym] == j {
		delete(mk.busy, j.sym)
	}
	if len(j.after) == 0 && len(lagging) == 0 {
		return
	}
	nj := &job{sym: j.sym, onDemand: true, waiters: append(lagging, j.after...)}
	if d := lagDelay(lagging); d > 0 {
		nj.notBefore = time.Now().Add(d)
	}
	j.after = nil
	mk.busy[j.sym] = nj
	mk.demandQ = append(mk.demandQ, nj)
	mk.kick()
}

// fail gives a job up: its waiters get an error.
func (mk *market) fail(j *job, reason, msg string) {
	mk.mu.Lock()
	ws := j.waiters
	j.waiters = nil
	mk.releaseLocked(j, nil)
	mk.mu.Unlock()
	mk.s.met.failed.WithLabelValues(mk.name, reason).Inc()
	mk.replyErrors(ws, "failed", msg)
}

// storedOK is the JetStream ack of a job's snapshot.
func (mk *market) storedOK(j *job, id int64, reqAt, recvAt time.Time, duplicate bool) {
	mk.mu.Lock()
	if prev, ok := mk.last[j.sym]; mk.known[j.sym] && (!ok || !reqAt.Before(prev.sentAt)) {
		mk.last[j.sym] = stored{id: id, sentAt: reqAt, recvAt: recvAt}
	}
	served, lagging, expired := sortWaiters(j.waiters, id, reqAt)
	j.waiters = nil
	mk.releaseLocked(j, lagging)
	perSymbol := mk.s.cfg.PerSymbolMetrics && slices.Contains(mk.rotation, j.sym)
	mk.mu.Unlock()
	res := "stored"
	if duplicate {
		res = "duplicate"
	}
	mk.s.met.snapshots.WithLabelValues(mk.name, res).Inc()
	if perSymbol {
		mk.s.met.lastTimestamp.WithLabelValues(mk.name, j.sym).Set(float64(recvAt.UnixNano()) / 1e9)
	}
	if n := len(lagging) + len(expired); n > 0 {
		mk.s.met.onDemandLagged.WithLabelValues(mk.name).Add(float64(n))
		if ok, sup := mk.s.limit.Allow("lagged:" + mk.name); ok {
			mk.s.log.Info("snapshot below the min_update_id of waiting on-demand requests",
				zap.String("market", mk.name), zap.String("symbol", j.sym), zap.Int64("last_update_id", id),
				zap.Int("retried", len(lagging)), zap.Int("given_up", len(expired)), zap.Int("suppressed", sup))
		}
	}
	mk.replyOK(served, id, false, "fetched")
	mk.replyLagged(expired, id)
}

// close stops on-demand intake and answers queued requests (shutdown).
func (mk *market) close() {
	mk.mu.Lock()
	mk.closed = true
	ws := mk.dropQueuedLocked()
	mk.mu.Unlock()
	mk.replyErrors(ws, "failed", "shutting down")
}

// failAll answers every request still waiting (after the publisher
// flush: their snapshots were not stored).
func (mk *market) failAll(msg string) {
	mk.mu.Lock()
	var ws []waiter
	for _, j := range mk.busy {
		ws = append(ws, j.waiters...)
		ws = append(ws, j.after...)
		j.waiters, j.after = nil, nil
	}
	mk.mu.Unlock()
	mk.replyErrors(ws, "failed", msg)
}
