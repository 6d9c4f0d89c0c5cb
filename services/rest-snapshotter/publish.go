package snapshotter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// Dead-letter headers: why a body was quarantined, the error, and the
// subject it would have been published to.
const (
	HdrReason  = "Depthcap-Reason"
	HdrError   = "Depthcap-Error"
	HdrSubject = "Depthcap-Subject"
)

// Reasons a 200 answer is quarantined (label values of
// depthcap_snapshot_invalid_total and the Depthcap-Reason header).
const (
	ReasonBadJSON    = "bad_json"         // not valid JSON, or a known field of the wrong type
	ReasonErrorBody  = "error_body"       // {"code":..,"msg":..} with status 200
	ReasonMissing    = "missing_field"    // lastUpdateId, bids, asks (and E, T on futures)
	ReasonImpossible = "impossible_value" // e.g. a negative lastUpdateId
	ReasonTooLarge   = "too_large"        // more than 16 MiB
)

// accept checks a 200 answer and publishes it, or quarantines it.
func (mk *market) accept(j *job, r result) {
	var h binance.Header
	var err error
	reason := ""
	switch {
	case len(r.body) > maxBody:
		reason, err = ReasonTooLarge, errors.New("body larger than 16 MiB")
	default:
		err = binance.ScanData(r.body, &h)
		switch {
		case err != nil:
			reason = ReasonBadJSON
		case h.Control == binance.ControlError:
			reason = ReasonErrorBody
			err = errors.New("error body with status 200: " + exchangeError(result{status: r.status, body: r.body}))
		default:
			if err = h.Check(mk.m, md.Snapshot); err != nil {
				switch {
				case errors.Is(err, binance.ErrMissingField):
					reason = ReasonMissing
				case errors.Is(err, binance.ErrImpossibleValue):
					reason = ReasonImpossible
				default:
					reason = ReasonBadJSON
				}
			}
		}
	}
	env := envelope.Envelope{
		Market:     mk.m,
		Kind:       md.Snapshot,
		Symbol:     j.sym,
		ReceivedNs: r.recvAt.UnixNano(),
		RequestNs:  r.reqAt.UnixNano(),
		Source:     mk.s.source,
		Payload:    r.body,
		DepthLimit: int32(mk.limit),
	}
	if reason != "" {
		mk.quarantine(j, &env, reason, err)
		return
	}
	env.LastID, env.Has = h.LastUpdateID, envelope.HasLast
	if h.Has&binance.HasEventTime != 0 {
		env.EventMs = h.EventTime
	}
	if h.Has&binance.HasTransactionTime != 0 {
		env.TxMs = h.TransactionTime
	}
	if err := mk.enqueue(j, &env, r); err != nil {
		reason := "publish_buffer_full"
		if errors.Is(err, bus.ErrClosed) {
			reason = "shutdown"
		}
		if ok, n := mk.s.limit.Allow("publish:" + mk.name); ok {
			mk.s.log.Warn("snapshot not published", zap.String("market", mk.name), zap.String("symbol", j.sym),
				zap.Int64("last_update_id", env.LastID), zap.Int("suppressed", n), zap.Error(err))
		}
		mk.fail(j, reason, "snapshot not published: "+err.Error())
	}
}

// enqueue hands the snapshot to the publisher; the job ends when
// JetStream acknowledges it (storedOK answers its waiters then).
func (mk *market) enqueue(j *job, env *envelope.Envelope, r result) error {
	pub := mk.s.publisher()
	if pub == nil {
		return bus.ErrClosed
	}
	msg := pub.NewMsg()
	msg.Buf = env.AppendMarshal(msg.Buf[:0])
	n := len(msg.Buf)
	var err error
	if msg.Buf, err = env.AppendMsgID(msg.Buf); err != nil {
		pub.Recycle(msg)
		return err
	}
	msg.Set(md.Subject(mk.m, md.Snapshot, j.sym), n)
	msg.StartNs = env.ReceivedNs
	id, reqAt, recvAt := env.LastID, r.reqAt, r.recvAt
	msg.OnDone = func(ack *jetstream.PubAck) { mk.storedOK(j, id, reqAt, recvAt, ack.Duplicate) }
	mk.mu.Lock()
	j.state = publishing
	mk.mu.Unlock()
	return pub.Enqueue(msg)
}

// quarantine counts, logs and dead-letters an answer that is not a
// snapshot, and ends the job with an error.
func (mk *market) quarantine(j *job, env *envelope.Envelope, reason string, cause error) {
	mk.s.met.invalid.WithLabelValues(mk.name, reason).Inc()
	if ok, n := mk.s.limit.Allow("invalid:" + mk.name + ":" + reason); ok {
		mk.s.log.Warn("snapshot answer quarantined", zap.String("market", mk.name), zap.String("symbol", j.sym),
			zap.String("reason", reason), zap.Int("bytes", len(env.Payload)), zap.String("body", truncate(string(env.Payload), 200)),
			zap.Int("suppressed", n), zap.Error(cause))
	}
	subject := md.DLQSubject(Service, mk.m, md.Snapshot)
	m := nats.NewMsg(subject)
	m.Data = env.AppendMarshal(nil)
	m.Header.Set(HdrReason, reason)
	m.Header.Set(HdrError, truncate(cause.Error(), 512))
	m.Header.Set(HdrSubject, md.Subject(mk.m, md.Snapshot, j.sym))
	id := Service + "." + mk.s.source + "." + mk.name + "." + j.sym + "." + strconv.FormatInt(env.RequestNs, 10)
	if err := mk.deadLetter(m, id); err != nil {
		mk.s.log.Error("dead-letter publish failed; the quarantined answer is lost", zap.String("market", mk.name),
			zap.String("symbol", j.sym), zap.String("reason", reason), zap.Error(err))
	}
	mk.fail(j, "invalid_"+reason, "invalid snapshot answer: "+reason+": "+truncate(cause.Error(), 200))
}

// deadLetter publishes synchronously, retrying with backoff for up to
// about 30 s (a NATS outage); the dedup id makes retries idempotent.
func (mk *market) deadLetter(m *nats.Msg, id string) error {
	b := mk.backoff
	var err error
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err = mk.s.conn.JS.PublishMsg(ctx, m, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("publish %s after %d attempts: %w", m.Subject, attempt, err)
		}
		time.Sleep(b.Delay(attempt))
	}
}
