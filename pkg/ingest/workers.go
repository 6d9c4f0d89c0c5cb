package ingest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
)

// Dead-letter headers, as the writer uses them.
const (
	HdrReason     = "Depthcap-Reason"
	HdrError      = "Depthcap-Error"
	HdrStream     = "Depthcap-Stream"
	HdrReceivedNs = "Depthcap-Received-Ns"
	HdrSource     = "Depthcap-Source"
)

// Dead-letter queue bounds: bad input is rare; a flood of it is dropped
// (and counted) rather than held.
const (
	dlqQueue    = 1024
	dlqMaxBytes = 32 << 20
)

type dlqItem struct {
	subject, reason, errText, stream string
	data                             []byte
	recvNs                           int64
	seq                              uint64
}

// dlqWorker publishes quarantined frames to JetStream (stream DLQ) off the
// frame path, with retries, from a bounded queue.
type dlqWorker struct {
	e     *Engine
	ch    chan dlqItem
	bytes atomic.Int64
	seq   atomic.Uint64
	busy  atomic.Int32
}

func newDLQWorker(e *Engine) *dlqWorker { return &dlqWorker{e: e, ch: make(chan dlqItem, dlqQueue)} }

// deadLetter quarantines a frame: metric, rate-limited log, and a copy of
// the raw bytes to dlq.<service>.<market>.<kind> with the reason in a
// header. It never blocks.
func (e *Engine) deadLetter(frame []byte, recvNs int64, kind md.Kind, reason string, cause error, streamName []byte) {
	if !kind.Valid() || kind == md.Gap {
		kind = md.KindUnknown
	}
	e.met.v.dlq.WithLabelValues(e.market.String(), kind.String(), reason).Inc()
	if ok, suppressed := e.logLimit.Allow("dlq:" + reason); ok {
		e.log.Warn("frame quarantined", zap.String("reason", reason), zap.ByteString("stream", streamName),
			zap.Int("bytes", len(frame)), zap.Int("suppressed", suppressed), zap.Error(cause))
	}
	d := e.dlq
	if d.bytes.Load()+int64(len(frame)) > dlqMaxBytes {
		e.met.v.dlqDropped.WithLabelValues(e.market.String()).Inc()
		return
	}
	errText := cause.Error()
	if len(errText) > 512 {
		errText = errText[:512]
	}
	it := dlqItem{subject: md.DLQSubject(e.service, e.market, kind), reason: reason, errText: errText,
		stream: string(streamName), data: bytes.Clone(frame), recvNs: recvNs, seq: d.seq.Add(1)}
	select {
	case d.ch <- it:
		d.bytes.Add(int64(len(frame)))
	default:
		e.met.v.dlqDropped.WithLabelValues(e.market.String()).Inc()
	}
}

func (d *dlqWorker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-d.ch:
			d.busy.Add(1)
			d.publish(ctx, it)
			d.bytes.Add(-int64(len(it.data)))
			d.busy.Add(-1)
		}
	}
}

// publish stores one item, retrying until JetStream acknowledges it or
// ctx ends.
func (d *dlqWorker) publish(ctx context.Context, it dlqItem) {
	e := d.e
	if e.conn == nil || e.conn.JS == nil {
		e.met.v.dlqDropped.WithLabelValues(e.market.String()).Inc()
		return
	}
	msg := nats.NewMsg(it.subject)
	msg.Data = it.data
	msg.Header.Set(HdrReason, it.reason)
	msg.Header.Set(HdrError, it.errText)
	if it.stream != "" {
		msg.Header.Set(HdrStream, it.stream)
	}
	msg.Header.Set(HdrReceivedNs, strconv.FormatInt(it.recvNs, 10))
	msg.Header.Set(HdrSource, e.source)
	id := e.service + "." + e.source + "." + strconv.FormatInt(it.recvNs, 10) + "." + strconv.FormatUint(it.seq, 10)
	for attempt := 0; ; attempt++ {
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := e.conn.JS.PublishMsg(pctx, msg, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			e.met.v.dlqDropped.WithLabelValues(e.market.String()).Inc()
			return
		}
		if ok, suppressed := e.logLimit.Allow("dlq-publish"); ok {
			e.log.Warn("dead-letter publish failed, retrying", zap.String("subject", it.subject), zap.Int("suppressed", suppressed), zap.Error(err))
		}
		if !sleep(ctx, min(time.Duration(attempt+1)*200*time.Millisecond, 5*time.Second)) {
			e.met.v.dlqDropped.WithLabelValues(e.market.String()).Inc()
			return
		}
	}
}

// stop waits until the queue is empty or ctx ends.
func (d *dlqWorker) stop(ctx context.Context) {
	for len(d.ch) > 0 || d.busy.Load() > 0 {
		if !sleep(ctx, 20*time.Millisecond) {
			if n := len(d.ch); n > 0 {
				d.e.met.v.dlqDropped.WithLabelValues(d.e.market.String()).Add(float64(n))
				d.e.log.Warn("dead-letter messages not published before the shutdown deadline", zap.Int("messages", n))
			}
			return
		}
	}
}

// Snapshot requests after diff gaps.
const (
	snapQueue       = 256
	snapWorkers     = 2
	snapTimeout     = 3 * time.Second
	snapMinInterval = 5 * time.Second
)

// snapWorker sends best-effort ctl.snapshot.<market>.<SYMBOL> requests so
// that the snapshotter takes a REST snapshot soon after a diff gap. The
// frame path never waits for it; failures are counted.
type snapWorker struct {
	e  *Engine
	ch chan snapReq
}

// snapReq is one queued request: the symbol and the lowest lastUpdateId
// a snapshot needs to restore its book after the gap.
type snapReq struct {
	s     *symState
	minID int64
}

func newSnapWorker(e *Engine) *snapWorker {
	return &snapWorker{e: e, ch: make(chan snapReq, snapQueue)}
}

// requestSnapshot queues a snapshot request for s, at most one per symbol
// per snapMinInterval. minID is the lowest lastUpdateId that is of use:
// binance.BridgeMin of the first diff published after the gap (spot
// U-1, USD-M U). The snapshotter does not answer with an older snapshot,
// which could not restore the book after the gap.
//
// A gap within the interval is not dropped: it is deferred (counted as
// "deferred"), and one request goes when the interval has passed, with
// the highest minID deferred meanwhile. A snapshot at or past that id
// restores the book after every one of those gaps; the request already
// sent may have been answered before the later gap.
func (e *Engine) requestSnapshot(s *symState, minID int64) {
	now := time.Now().UnixNano()
	last := s.lastSnapReq.Load()
	if now-last < int64(snapMinInterval) || !s.lastSnapReq.CompareAndSwap(last, now) {
		e.met.v.snapshotReqs.WithLabelValues(e.market.String(), "deferred").Inc()
		for { // snapPending holds minID+1: 0 is "none", and a minID may be 0
			p := s.snapPending.Load()
			if p >= minID+1 || s.snapPending.CompareAndSwap(p, minID+1) {
				break
			}
		}
		if s.snapArmed.CompareAndSwap(false, true) {
			wait := time.Duration(max(last+int64(snapMinInterval)-now, 0)) + time.Millisecond
			time.AfterFunc(wait, func() {
				s.snapArmed.Store(false)
				if p := s.snapPending.Swap(0); p != 0 {
					e.requestSnapshot(s, p-1)
				}
			})
		}
		return
	}
	select {
	case e.snap.ch <- snapReq{s: s, minID: minID}:
	default:
		e.met.v.snapshotReqs.WithLabelValues(e.market.String(), "queue_full").Inc()
	}
}

func (w *snapWorker) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range snapWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case r := <-w.ch:
					w.request(ctx, r)
				}
			}
		})
	}
	wg.Wait()
}

func (w *snapWorker) request(ctx context.Context, r snapReq) {
	e := w.e
	result := "ok"
	defer func() { e.met.v.snapshotReqs.WithLabelValues(e.market.String(), result).Inc() }()
	if e.conn == nil || e.conn.NC == nil {
		result = "no_connection"
		return
	}
	payload, err := json.Marshal(md.SnapshotRequest{Market: e.market.String(), Symbol: r.s.name, Source: e.source, Reason: "gap", MinUpdateID: r.minID})
	if err != nil {
		result = "error" // unreachable: strings and an integer always encode
		return
	}
	rctx, cancel := context.WithTimeout(ctx, snapTimeout)
	defer cancel()
	_, err = e.conn.NC.RequestWithContext(rctx, r.s.ctlSubject, payload)
	switch {
	case err == nil:
	case errors.Is(err, nats.ErrNoResponders):
		result = "no_responders"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		result = "timeout"
	default:
		result = "error"
	}
}
