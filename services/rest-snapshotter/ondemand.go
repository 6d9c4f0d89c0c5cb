package snapshotter

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
)

// Reply is the answer to an on-demand request on
// ctl.snapshot.<market>.<SYMBOL>: {"last_update_id":123} once JetStream
// has stored that snapshot (with "coalesced":true when it was an existing
// recent one), or {"error":"..."}.
//
// The request body is optional (md.SnapshotRequest): empty, or JSON like
// {"market":"spot","symbol":"BTCUSDT","source":"eu-1","reason":"gap",
// "min_update_id":123}. With min_update_id the reply's last_update_id is
// at least that: a recent snapshot below it is not shared, and a new one
// that comes back below it (the REST API behind the stream) is retried,
// up to 3 times, before an error reply. A body that does not decode, or
// names another market or symbol than the subject, gets an error reply.
type Reply struct {
	LastUpdateID int64  `json:"last_update_id,omitempty"`
	Coalesced    bool   `json:"coalesced,omitempty"`
	Error        string `json:"error,omitempty"`
}

// handleControl serves ctl.snapshot.<market>.<SYMBOL>. It never blocks:
// the request joins the symbol's snapshot under way, or a new on-demand
// job that the dispatcher sends ahead of the schedule.
func (s *Snapshotter) handleControl(msg *nats.Msg) {
	at := time.Now()
	m, sym, err := md.ParseControlSubject(msg.Subject)
	mk := s.markets[m]
	if msg.Reply == "" {
		if mk != nil {
			s.met.onDemand.WithLabelValues(mk.name, "bad_request").Inc()
		}
		return // nobody to answer
	}
	if err != nil || mk == nil {
		s.reply(msg.Reply, Reply{Error: "bad request subject " + msg.Subject + ": want " + md.ControlRoot + ".<spot|futures>.<SYMBOL>"})
		return
	}
	req, err := md.ParseSnapshotRequest(msg.Data, m, sym)
	if err != nil {
		if ok, n := s.limit.Allow("payload:" + mk.name); ok {
			s.log.Warn("on-demand request with a bad payload", zap.String("subject", msg.Subject),
				zap.String("payload", truncate(string(msg.Data), 200)), zap.Int("suppressed", n), zap.Error(err))
		}
		mk.replyErrors([]waiter{{reply: msg.Reply, at: at}}, "bad_payload", truncate(err.Error(), 300))
		return
	}
	mk.onDemand(sym, waiter{reply: msg.Reply, at: at, minID: req.MinUpdateID})
}

// onDemand serves one request. A recent stored snapshot (requested from
// the exchange at most SNAPSHOT_ONDEMAND_MIN_INTERVAL before the request
// arrived) answers it if it reaches the request's min_update_id. Else the
// request joins the symbol's job when that job is queued or was sent
// within the interval (its snapshot is checked against min_update_id when
// it is stored, see storedOK), or waits for the next job.
func (mk *market) onDemand(sym string, w waiter) {
	minAge := mk.s.cfg.OnDemandMinInterval
	mk.mu.Lock()
	var (
		errMsg, result string
		coalesced      int64
	)
	switch {
	case !md.ValidSymbol(sym):
		result, errMsg = "bad_request", "invalid symbol "+sym
	case mk.closed:
		result, errMsg = "failed", "shutting down"
	case !mk.ready:
		result, errMsg = "failed", mk.name+": exchangeInfo not read yet"
	case !mk.known[sym]:
		result, errMsg = "unknown_symbol", "unknown symbol "+sym+": not captured on "+mk.name
	case !mk.banUntil.IsZero() && w.at.Before(mk.banUntil):
		result, errMsg = "banned", "ip banned by binance until "+mk.banUntil.UTC().Format(time.RFC3339)
	}
	if errMsg == "" {
		if st, ok := mk.last[sym]; ok && !st.sentAt.Before(w.at.Add(-minAge)) && st.id >= w.minID {
			result, coalesced = "coalesced", st.id
		} else if j := mk.busy[sym]; j != nil {
			switch {
			case len(j.waiters)+len(j.after) >= mk.s.cfg.OnDemandMaxWaiters:
				result, errMsg = "busy", "too many requests waiting for "+sym
			case j.state == queued || !j.sentAt.Before(w.at.Add(-minAge)):
				j.waiters = append(j.waiters, w)
				if j.state == queued && !j.onDemand {
					mk.promoteLocked(j)
				}
			default:
				j.after = append(j.after, w) // the request under way is too old: the next one
			}
		} else {
			j := &job{sym: sym, onDemand: true, waiters: []waiter{w}}
			mk.busy[sym] = j
			mk.demandQ = append(mk.demandQ, j)
			mk.kick()
		}
	}
	mk.mu.Unlock()
	switch {
	case errMsg != "":
		mk.replyErrors([]waiter{w}, result, errMsg)
	case result == "coalesced":
		mk.replyOK([]waiter{w}, coalesced, true, result)
	}
}

// sortWaiters splits the waiters of a job whose snapshot with lastUpdateId
// id (requested from the exchange at reqAt) was stored: served are
// answered with it; lagging ones need a newer snapshot and get the next
// one; expired ones have seen onDemandLagAttempts snapshots requested
// after they arrived come back below their min_update_id. A snapshot
// requested before a request arrived does not count: it was shared as a
// chance, not taken for it.
func sortWaiters(ws []waiter, id int64, reqAt time.Time) (served, lagging, expired []waiter) {
	for _, w := range ws {
		switch {
		case id >= w.minID:
			served = append(served, w)
			continue
		case !reqAt.Before(w.at):
			w.lagged++
		}
		if w.lagged >= onDemandLagAttempts {
			expired = append(expired, w)
		} else {
			lagging = append(lagging, w)
		}
	}
	return served, lagging, expired
}

// lagDelay is the wait before the snapshot that follows a lagging one.
func lagDelay(ws []waiter) time.Duration {
	n := 0
	for _, w := range ws {
		n = max(n, w.lagged)
	}
	if n == 0 {
		return 0
	}
	return onDemandLagDelay << (n - 1)
}

// promoteLocked moves a queued retry to the on-demand queue.
func (mk *market) promoteLocked(j *job) {
	for i, r := range mk.retryQ {
		if r == j {
			mk.retryQ = append(mk.retryQ[:i], mk.retryQ[i+1:]...)
			break
		}
	}
	j.onDemand = true
	mk.demandQ = append(mk.demandQ, j)
	mk.kick()
}

func (mk *market) replyOK(ws []waiter, id int64, coalesced bool, result string) {
	for _, w := range ws {
		mk.s.met.onDemand.WithLabelValues(mk.name, result).Inc()
		mk.s.met.onDemandLat.WithLabelValues(mk.name).Observe(time.Since(w.at).Seconds())
		mk.s.reply(w.reply, Reply{LastUpdateID: id, Coalesced: coalesced})
	}
}

// replyLagged answers requests given up because the REST API stayed
// below their min_update_id.
func (mk *market) replyLagged(ws []waiter, id int64) {
	for _, w := range ws {
		mk.replyErrors([]waiter{w}, "stale", "snapshot lastUpdateId "+strconv.FormatInt(id, 10)+" still below min_update_id "+
			strconv.FormatInt(w.minID, 10)+" after "+strconv.Itoa(w.lagged)+" snapshots: the exchange's REST depth lags its stream")
	}
}

func (mk *market) replyErrors(ws []waiter, result, msg string) {
	for _, w := range ws {
		mk.s.met.onDemand.WithLabelValues(mk.name, result).Inc()
		mk.s.met.onDemandLat.WithLabelValues(mk.name).Observe(time.Since(w.at).Seconds())
		mk.s.reply(w.reply, Reply{Error: msg})
	}
}

func (s *Snapshotter) reply(subject string, r Reply) {
	b, err := json.Marshal(r)
	if err == nil {
		err = s.conn.NC.Publish(subject, b)
	}
	if err != nil {
		if ok, n := s.limit.Allow("reply"); ok {
			s.log.Warn("on-demand reply failed", zap.String("subject", subject), zap.Int("suppressed", n), zap.Error(err))
		}
	}
}
