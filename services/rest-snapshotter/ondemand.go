package snapshotter

import (
	"encoding/json"
	"time"

	"github.com/nats-io/nats.go"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
)

// Reply is the answer to an on-demand request on
// ctl.snapshot.<market>.<SYMBOL>: {"last_update_id":123} once JetStream
// has stored that snapshot (with "coalesced":true when it was an existing
// recent one), or {"error":"..."}.
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
	mk.onDemand(sym, waiter{reply: msg.Reply, at: at})
}

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
		if st, ok := mk.last[sym]; ok && !st.sentAt.Before(w.at.Add(-minAge)) {
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
