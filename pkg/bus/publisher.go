package bus

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ErrFull is returned by Enqueue when the publisher's byte budget is
// exhausted. Nothing was enqueued: the caller owns the loss and must
// account for it (a gap record).
var ErrFull = errors.New("publish buffer full")

// ErrClosed is returned by Enqueue after Close.
var ErrClosed = errors.New("publisher closed")

// Msg is one message on its way to JetStream. Get one from
// Publisher.NewMsg (or NewMsgSize), fill Buf, call Set, then Enqueue it.
// From Enqueue until it is acknowledged the Publisher owns it; it is then
// recycled.
type Msg struct {
	nm      nats.Msg
	Buf     []byte // payload bytes followed by the Nats-Msg-Id bytes
	hdr     [1]string
	reply   []byte // the reply subject: the publisher's inbox and seq
	StartNs int64  // e.g. the frame's receive time; latency is measured from it
	// OnDone, if set, is called once when the message is stored (or was a
	// duplicate). It runs on one of the publisher's goroutines (the ack
	// handler or the send loop), one at a time, in publish order, and
	// must not block; Flush returns only after it ran.
	OnDone func(ack *jetstream.PubAck)

	seq      uint64 // position in the publisher's order; its acks' token
	sentNs   int64  // when the attempt in flight was sent
	inflight bool   // a publish attempt awaits its ack (or its timeout)
	sending  bool   // in the send loop's batch: not to be popped or taken again
	acked    bool
	ack      jetstream.PubAck
}

func newMsg(size int) *Msg {
	m := &Msg{Buf: make([]byte, 0, size)}
	m.nm.Header = nats.Header{jetstream.MsgIDHeader: m.hdr[:]}
	return m
}

// Set finishes a message: Buf[:dataLen] is the payload and Buf[dataLen:]
// the Nats-Msg-Id (may be empty for no dedup id).
func (m *Msg) Set(subject string, dataLen int) {
	m.nm.Subject = subject
	m.nm.Data = m.Buf[:dataLen]
	if id := m.Buf[dataLen:]; len(id) > 0 {
		// The header holds m.hdr[:], so writing hdr[0] sets the id. It
		// aliases Buf: valid until recycled; Buf is not touched before.
		m.hdr[0] = unsafe.String(&id[0], len(id))
		if len(m.nm.Header) == 0 {
			m.nm.Header[jetstream.MsgIDHeader] = m.hdr[:]
		}
	} else {
		m.hdr[0] = ""
		delete(m.nm.Header, jetstream.MsgIDHeader)
	}
}

// Size is the bytes the message holds against the budget.
func (m *Msg) Size() int { return cap(m.Buf) + 128 }

// PublisherConfig bounds a Publisher.
type PublisherConfig struct {
	MaxBytes   int64         // budget for queued + in-flight messages (buffer capacity counts)
	MaxPending int           // in-flight async publishes (WithPublishAsyncMaxPending)
	AckTimeout time.Duration // per-publish ack timeout; the message is retried after it
}

// PublisherMetrics are the publisher's Prometheus collectors.
type PublisherMetrics struct {
	Buffered   prometheus.Gauge
	Published  prometheus.Counter
	Duplicates prometheus.Counter
	Retries    prometheus.Counter
	Rejected   prometheus.Counter
	Latency    prometheus.Observer
}

// NewPublisherMetrics registers publisher metrics labelled with service.
func NewPublisherMetrics(reg prometheus.Registerer, service string) *PublisherMetrics {
	l := prometheus.Labels{"service": service}
	m := &PublisherMetrics{
		Buffered:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "depthcap_publish_buffer_bytes", Help: "Bytes held by the publisher (queued and awaiting ack).", ConstLabels: l}),
		Published:  prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_publish_acked_total", Help: "Messages stored by JetStream.", ConstLabels: l}),
		Duplicates: prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_publish_duplicates_total", Help: "Messages JetStream reported as duplicates (same Nats-Msg-Id).", ConstLabels: l}),
		Retries:    prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_publish_retries_total", Help: "Publishes retried after an error, timeout or disconnect.", ConstLabels: l}),
		Rejected:   prometheus.NewCounter(prometheus.CounterOpts{Name: "depthcap_publish_rejected_total", Help: "Messages refused because the buffer was full.", ConstLabels: l}),
	}
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "depthcap_publish_latency_seconds", Help: "From StartNs (receive time) to JetStream ack.", ConstLabels: l,
		// Fine around the 5 ms p99 target: a quantile is interpolated
		// linearly within its bucket, which was 5-10 ms wide there.
		Buckets: []float64{.0002, .0005, .001, .002, .003, .004, .005, .006, .0075, .01, .015, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}})
	m.Latency = lat
	reg.MustRegister(m.Buffered, m.Published, m.Duplicates, m.Retries, m.Rejected, lat)
	return m
}

// Publisher publishes to JetStream asynchronously, in order, without
// losing a message it accepted: every message is retried until JetStream
// acknowledges it (Nats-Msg-Id makes retries idempotent). Memory is bounded
// by MaxBytes; Enqueue fails fast with ErrFull past it, so a caller's read
// loop never blocks on NATS.
//
// It speaks the JetStream publish protocol on the core connection itself:
// each message is published with a reply subject on the publisher's own
// inbox whose last token is the message's seq, and the stream's ack comes
// back there. An ack finds its message by seq (an index into the queue),
// its JSON is read by hand (parsePubAck), and one timer scan per
// AckTimeout/4 replaces a timer per message. This is what the jetstream
// package's PublishMsgAsync does, without its per-message allocations (a
// future, a reply string, a timer, a map entry, a decoded ack), which
// the profile of the ingest throughput benchmark had at 17 % of the
// process's CPU. BenchmarkPublisherClientCPU (server in its own process):
// 0.62-0.69 of PublishMsgAsync's client CPU per message, against
// 1.25-1.30 when this type was built on PublishMsgAsync.
//
// Per message it takes its lock three times (NewMsg, Enqueue, the ack),
// and the send loop once per batch of up to sendBatch messages; nothing is
// allocated on our side once messages are recycled (nats.go still builds
// the header bytes and the incoming ack message).
type Publisher struct {
	nc      *nats.Conn
	cfg     PublisherConfig
	log     *zap.Logger
	metrics *PublisherMetrics
	freeCap int64  // bytes the free list may hold (also within MaxBytes)
	inbox   string // reply subjects are inbox + seq
	sub     *nats.Subscription
	status  chan nats.Status

	mu        sync.Mutex
	q         []*Msg // q[head:] in publish order; q[head] is the oldest unacked
	head      int
	next      uint64 // seq of the next message to send
	sent      uint64 // 1 + the highest seq ever taken for sending
	base      uint64 // seq of q[head]
	inflight  int    // messages with a publish attempt awaiting its ack
	bytes     int64  // queued and in-flight messages
	free      []*Msg // recycled messages, for NewMsg
	freeBytes int64  // their Size; bytes+freeBytes <= MaxBytes
	ackErrs   int    // error acks since the last good one (for the log)
	stream    string // the last ack's stream name, reused to avoid a string per ack
	closed    bool
	waiting   bool // the loop waits on wake; whoever gives it work signals
	wake      chan struct{}
	// Acknowledged messages with an OnDone wait in done. One goroutine at
	// a time (finishing) runs their OnDone outside the lock, in order;
	// done and spare swap so that this allocates nothing.
	done, spare []*Msg
	finishing   bool
	idle        *sync.Cond // broadcast when nothing is queued, in flight or finishing
	exited      chan struct{}
	stopTimer   chan struct{}
}

// sendBatch is the most messages the send loop takes per lock.
const sendBatch = 64

// defaultMsgCap is the buffer capacity of a new message from NewMsg.
const defaultMsgCap = 1024

// maxFreeBytes bounds the recycled messages kept after a burst (and
// MaxBytes/4 does, when smaller).
const maxFreeBytes = 32 << 20

// NewPublisher starts a publisher on nc: it subscribes to its own reply
// inbox (nc's inbox prefix) and watches nc's reconnections.
func NewPublisher(nc *nats.Conn, cfg PublisherConfig, metrics *PublisherMetrics, log *zap.Logger) (*Publisher, error) {
	if cfg.MaxBytes <= 0 {
		return nil, fmt.Errorf("publisher: MaxBytes %d: %w", cfg.MaxBytes, ErrPermanent)
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 4096
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	p := &Publisher{
		nc:        nc,
		cfg:       cfg,
		log:       log,
		metrics:   metrics,
		freeCap:   min(cfg.MaxBytes/4, maxFreeBytes),
		inbox:     nc.NewInbox() + ".",
		wake:      make(chan struct{}, 1),
		exited:    make(chan struct{}),
		stopTimer: make(chan struct{}),
	}
	p.idle = sync.NewCond(&p.mu)
	sub, err := nc.Subscribe(p.inbox+"*", p.onReply)
	if err != nil {
		return nil, fmt.Errorf("publisher: subscribe to its ack inbox: %w", err)
	}
	// Acks must not be dropped as a slow consumer's (they would only be
	// retried after AckTimeout): at most MaxPending are outstanding per
	// send, a few times that with retries.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("publisher: ack inbox limits: %w", err)
	}
	p.sub = sub
	p.status = nc.StatusChanged(nats.CONNECTED)
	go p.loop()
	go p.watch()
	return p, nil
}

// NewMsg returns a recycled message, or a new one with a 1 KiB buffer.
func (p *Publisher) NewMsg() *Msg {
	if m := p.popFree(); m != nil {
		return m
	}
	return newMsg(defaultMsgCap)
}

// NewMsgSize returns a recycled or new message whose Buf holds at least n
// bytes without growing. A new buffer has exactly capacity n: round n up
// to a size class if the message will be reused for other sizes.
func (p *Publisher) NewMsgSize(n int) *Msg {
	m := p.popFree()
	if m == nil {
		return newMsg(n)
	}
	if cap(m.Buf) < n {
		m.Buf = make([]byte, 0, n)
	}
	return m
}

func (p *Publisher) popFree() *Msg {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := len(p.free)
	if k == 0 {
		return nil
	}
	m := p.free[k-1]
	p.free[k-1] = nil
	p.free = p.free[:k-1]
	p.freeBytes -= int64(m.Size())
	return m
}

// Recycle returns a message that was not enqueued.
func (p *Publisher) Recycle(m *Msg) {
	p.mu.Lock()
	p.recycleLocked(m)
	p.mu.Unlock()
}

// recycleLocked resets m and keeps it for NewMsg, unless that would take
// the free list past freeCap or the publisher's bytes past MaxBytes.
func (p *Publisher) recycleLocked(m *Msg) {
	size := int64(m.Size())
	if p.freeBytes+size > p.freeCap || p.bytes+p.freeBytes+size > p.cfg.MaxBytes {
		return // left to the garbage collector
	}
	m.reset()
	p.free = append(p.free, m)
	p.freeBytes += size
}

// trimFreeLocked drops recycled messages until queued, in-flight and
// recycled bytes fit in MaxBytes again.
func (p *Publisher) trimFreeLocked() {
	for p.bytes+p.freeBytes > p.cfg.MaxBytes && len(p.free) > 0 {
		k := len(p.free) - 1
		p.freeBytes -= int64(p.free[k].Size())
		p.free[k] = nil
		p.free = p.free[:k]
	}
}

func (m *Msg) reset() {
	m.Buf = m.Buf[:0]
	m.hdr[0] = ""
	m.reply = m.reply[:0]
	m.nm.Reply = ""
	m.sentNs = 0
	m.nm.Data = nil
	m.OnDone = nil
	m.inflight = false
	m.acked = false
	m.ack = jetstream.PubAck{}
	m.StartNs = 0
}

// Enqueue hands m to the publisher. It never blocks. On ErrFull or
// ErrClosed, m is recycled and nothing was enqueued.
func (p *Publisher) Enqueue(m *Msg) error {
	size := int64(m.Size())
	p.mu.Lock()
	if p.closed {
		p.recycleLocked(m)
		p.mu.Unlock()
		return ErrClosed
	}
	if p.bytes+size > p.cfg.MaxBytes {
		p.recycleLocked(m)
		p.mu.Unlock()
		if p.metrics != nil {
			p.metrics.Rejected.Inc()
		}
		return ErrFull
	}
	m.seq = p.base + uint64(len(p.q)-p.head)
	p.q = append(p.q, m)
	p.bytes += size
	if p.bytes+p.freeBytes > p.cfg.MaxBytes {
		p.trimFreeLocked()
	}
	bytes := p.bytes
	wake := p.waiting
	p.waiting = false
	p.mu.Unlock()
	if p.metrics != nil {
		p.metrics.Buffered.Set(float64(bytes))
	}
	if wake {
		p.signal()
	}
	return nil
}

// signal wakes the loop (never blocks; a spare wake-up only rescans).
func (p *Publisher) signal() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Buffered returns the bytes currently held by queued and in-flight
// messages.
func (p *Publisher) Buffered() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes
}

// Pending returns the number of messages not yet acknowledged.
func (p *Publisher) Pending() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.q) - p.head
}

// loop sends messages in order, at most MaxPending in flight, retrying
// after errors.
func (p *Publisher) loop() {
	defer close(p.exited)
	failures := 0
	batch := make([]*Msg, 0, sendBatch)
	var reconnects uint64
	for {
		// What was in flight when the connection dropped gets no ack on
		// the new one: send it again before anything newer, so that the
		// stream keeps the publish order. (nats.go counts the reconnect
		// before the new connection takes a publish, and this runs right
		// before every batch: only a reconnect completing within the
		// few microseconds between here and the batch's first publish
		// could put a newer message first.)
		if r := p.nc.Stats().Reconnects; r != reconnects {
			reconnects = r
			if n := p.expire(math.MaxInt64); n > 0 {
				p.log.Info("connection reestablished, resending unacknowledged publishes", zap.Int("messages", n))
				if p.metrics != nil {
					p.metrics.Retries.Add(float64(n))
				}
			}
		}
		p.mu.Lock()
		batch = p.takeLocked(batch[:0])
		if len(batch) == 0 {
			if p.closed && len(p.q) == p.head {
				p.mu.Unlock()
				return
			}
			p.waiting = true
			p.mu.Unlock()
			<-p.wake
			continue
		}
		p.mu.Unlock()
		sent := len(batch)
		var err error
		for i, m := range batch {
			if err = p.nc.PublishMsg(&m.nm); err != nil {
				sent = i
				break
			}
		}
		p.mu.Lock()
		for i, m := range batch {
			m.sending = false
			// Not sent: no ack will come for this attempt.
			if i >= sent && m.inflight {
				m.inflight = false
				p.inflight--
			}
		}
		if err != nil && batch[sent].seq < p.next {
			p.next = batch[sent].seq
		}
		// Acks that came while the batch was being sent could not pop it.
		popped := p.popLocked()
		bytes := p.bytes
		p.finishLocked()
		closed := p.closed
		p.mu.Unlock()
		if popped && p.metrics != nil {
			p.metrics.Buffered.Set(float64(bytes))
		}
		if err == nil {
			failures = 0
			clear(batch)
			continue
		}
		subject := batch[sent].nm.Subject
		clear(batch)
		if closed && errors.Is(err, nats.ErrConnectionClosed) {
			p.abandon()
			return
		}
		failures++
		if failures == 1 || failures%100 == 0 {
			p.log.Warn("publish failed, retrying", zap.String("subject", subject), zap.Int("failures", failures), zap.Error(err))
		}
		if p.metrics != nil {
			p.metrics.Retries.Inc()
		}
		time.Sleep(min(time.Duration(failures)*10*time.Millisecond, time.Second))
	}
}

// takeLocked appends to batch, in order from next, up to cap(batch)
// messages that are neither stored nor awaiting an ack, as long as fewer
// than MaxPending are in flight, and marks them in flight with their reply
// subject set.
func (p *Publisher) takeLocked(batch []*Msg) []*Msg {
	room := min(cap(batch), p.cfg.MaxPending-p.inflight)
	if room <= 0 {
		return batch
	}
	now := time.Now().UnixNano()
	idx := p.head + int(p.next-p.base)
	for idx < len(p.q) && len(batch) < room {
		m := p.q[idx]
		idx++
		p.next++
		if m.acked || m.inflight || m.sending {
			continue // stored already, or an attempt still awaits its ack
		}
		m.inflight = true
		m.sending = true
		p.sent = max(p.sent, m.seq+1)
		m.sentNs = now
		p.inflight++
		if len(m.reply) == 0 {
			m.reply = strconv.AppendUint(append(m.reply, p.inbox...), m.seq, 10)
			m.nm.Reply = unsafe.String(&m.reply[0], len(m.reply))
		}
		batch = append(batch, m)
	}
	return batch
}

// onReply handles a message on the ack inbox: the stream's ack or error
// for the message whose seq is the subject's last token.
func (p *Publisher) onReply(nm *nats.Msg) {
	seq, err := strconv.ParseUint(nm.Subject[min(len(p.inbox), len(nm.Subject)):], 10, 64)
	if err != nil {
		p.log.Warn("publisher: reply on an unknown subject", zap.String("subject", nm.Subject))
		return
	}
	var ack jetstream.PubAck
	var ackErr error
	var stream []byte
	if len(nm.Data) == 0 && nm.Header.Get("Status") != "" {
		// 503: no stream listens on the subject (or it is not ready).
		ackErr = fmt.Errorf("status %s %s", nm.Header.Get("Status"), nm.Header.Get("Description"))
	} else {
		stream, ackErr = parsePubAck(nm.Data, &ack)
	}
	p.mu.Lock()
	if seq < p.base || seq-p.base >= uint64(len(p.q)-p.head) {
		p.mu.Unlock() // a late ack of a message acked and popped already
		return
	}
	m := p.q[p.head+int(seq-p.base)]
	if m.acked {
		p.mu.Unlock() // the ack of an earlier attempt came first
		return
	}
	if ackErr != nil {
		// Resent at the watch's next tick (within AckTimeout/4): the
		// message keeps its place in the MaxPending window meanwhile, so
		// that a stream refusing everything (e.g. a server shutting
		// down) does not make the loop push newer messages after it.
		m.sentNs = math.MinInt64
		p.ackErrs++
		ackErrs := p.ackErrs
		p.mu.Unlock()
		if ackErrs == 1 || ackErrs%100 == 0 {
			p.log.Warn("publish refused by the stream, retrying", zap.String("subject", m.nm.Subject), zap.Int("errors", ackErrs), zap.Error(ackErr))
		}
		return
	}
	if m.inflight {
		m.inflight = false
		p.inflight--
	}
	p.ackErrs = 0
	if string(stream) != p.stream {
		p.stream = string(stream)
	}
	ack.Stream = p.stream
	m.acked = true
	m.ack = ack
	start := m.StartNs
	popped := p.popLocked()
	bytes := p.bytes
	p.finishLocked()
	wake := p.waiting
	p.waiting = false
	p.mu.Unlock()
	if wake {
		p.signal() // room in the MaxPending window
	}
	if p.metrics != nil {
		p.metrics.Published.Inc()
		if ack.Duplicate {
			p.metrics.Duplicates.Inc()
		}
		if start > 0 {
			p.metrics.Latency.Observe(float64(time.Now().UnixNano()-start) / 1e9)
		}
		if popped {
			p.metrics.Buffered.Set(float64(bytes))
		}
	}
}

// watch resends every attempt still unacknowledged after AckTimeout, and
// wakes the loop after a reconnection (the loop resends what was in
// flight on the old connection).
func (p *Publisher) watch() {
	tick := time.NewTicker(max(p.cfg.AckTimeout/4, time.Millisecond))
	defer tick.Stop()
	status := p.status
	for {
		var cutoff int64
		select {
		case <-p.stopTimer:
			return
		case _, ok := <-status:
			if !ok {
				status = nil // connection closed; timeouts still apply
				continue
			}
			p.signal() // the loop resends what the old connection lost
			continue
		case now := <-tick.C:
			cutoff = now.UnixNano() - p.cfg.AckTimeout.Nanoseconds()
		}
		if n := p.expire(cutoff); n > 0 {
			p.log.Debug("publishes will be retried", zap.Int("messages", n))
			if p.metrics != nil {
				p.metrics.Retries.Add(float64(n))
			}
		}
	}
}

// expire takes every attempt in flight sent before cutoff out of flight,
// so that the loop sends it again, and returns how many it took.
func (p *Publisher) expire(cutoff int64) int {
	p.mu.Lock()
	n := 0
	// Up to the highest seq ever sent, not to next: a rewind (a failed
	// send, an earlier expiry) leaves attempts in flight above next.
	end := p.head
	if p.sent > p.base {
		end = min(len(p.q), p.head+int(p.sent-p.base))
	}
	for i := p.head; i < end && p.inflight > 0; i++ {
		m := p.q[i]
		if !m.inflight || m.sending || m.sentNs > cutoff {
			continue // a batch being sent is expired after it was sent
		}
		m.inflight = false
		p.inflight--
		if m.seq < p.next {
			p.next = m.seq
		}
		n++
	}
	wake := n > 0 && p.waiting
	if wake {
		p.waiting = false
	}
	p.mu.Unlock()
	if wake {
		p.signal()
	}
	return n
}

// popLocked removes acknowledged messages from the head, in order:
// those with an OnDone go to done, the others are recycled. It reports
// whether it removed any.
func (p *Publisher) popLocked() bool {
	popped := false
	for p.head < len(p.q) {
		m := p.q[p.head]
		if !m.acked || m.inflight || m.sending {
			break
		}
		p.q[p.head] = nil
		p.head++
		p.base++
		p.bytes -= int64(m.Size())
		if m.OnDone != nil {
			p.done = append(p.done, m)
		} else {
			p.recycleLocked(m)
		}
		popped = true
	}
	if p.head == len(p.q) {
		p.q = p.q[:0]
		p.head = 0
	} else if p.head > 4096 && p.head > len(p.q)/2 {
		n := copy(p.q, p.q[p.head:])
		clear(p.q[n:])
		p.q = p.q[:n]
		p.head = 0
	}
	if p.next < p.base {
		p.next = p.base
	}
	return popped
}

// finishLocked runs the OnDone of acknowledged messages, unless another
// goroutine already does (it takes these too), then recycles them, and
// wakes Flush when nothing is left. It releases p.mu while OnDone runs.
func (p *Publisher) finishLocked() {
	for len(p.done) > 0 && !p.finishing {
		p.finishing = true
		batch := p.done
		p.done = p.spare[:0]
		p.mu.Unlock()
		for _, m := range batch {
			m.OnDone(&m.ack)
		}
		p.mu.Lock()
		for i, m := range batch {
			p.recycleLocked(m)
			batch[i] = nil
		}
		p.spare = batch[:0]
		p.finishing = false
	}
	if p.idleLocked() {
		// Only now: Flush returns after every OnDone of what it waited for.
		p.idle.Broadcast()
	}
}

// idleLocked reports whether nothing is queued, in flight or finishing.
func (p *Publisher) idleLocked() bool {
	return p.head == len(p.q) && len(p.done) == 0 && !p.finishing
}

// Flush waits until every enqueued message is acknowledged and its OnDone
// ran, or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.idle.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for !p.idleLocked() {
		if ctx.Err() != nil {
			return fmt.Errorf("flush publisher (%d messages pending): %w", len(p.q)-p.head, ctx.Err())
		}
		p.idle.Wait()
	}
	return nil
}

// Close flushes within ctx and stops the publisher. Messages still
// unacknowledged when ctx ends are reported in the error: they were not
// stored.
func (p *Publisher) Close(ctx context.Context) error {
	err := p.Flush(ctx)
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	p.signal()
	if err != nil {
		p.abandon()
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
	}
	if !already {
		close(p.stopTimer)
		p.nc.RemoveStatusListener(p.status)
		if uerr := p.sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) && !errors.Is(uerr, nats.ErrBadSubscription) {
			p.log.Debug("publisher: unsubscribe its ack inbox", zap.Error(uerr))
		}
	}
	return err
}

// abandon drops everything still queued (only on a failed shutdown).
func (p *Publisher) abandon() {
	p.mu.Lock()
	clear(p.q)
	p.q = p.q[:0]
	p.head = 0
	p.bytes = 0
	p.idle.Broadcast()
	p.mu.Unlock()
	p.signal()
}

// parsePubAck reads a JetStream publish ack, {"stream":"S","seq":N} with
// optional "domain" and "duplicate" (and fields it ignores), into ack,
// without allocating: the stream name is returned as a slice of data, for
// the caller to intern. An {"error":{...}} reply, or one without a stream
// or seq, is an error.
func parsePubAck(data []byte, ack *jetstream.PubAck) (stream []byte, err error) {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return nil, fmt.Errorf("publish ack %q: not a JSON object", data)
	}
	i++
	var haveSeq bool
	for {
		i = skipSpace(data, i)
		if i < len(data) && data[i] == '}' {
			break
		}
		key, j, ok := jsonString(data, i)
		if !ok {
			return nil, fmt.Errorf("publish ack %q: bad key at %d", data, i)
		}
		i = skipSpace(data, j)
		if i >= len(data) || data[i] != ':' {
			return nil, fmt.Errorf("publish ack %q: no ':' at %d", data, i)
		}
		i = skipSpace(data, i+1)
		start := i
		if i, ok = skipValue(data, i); !ok {
			return nil, fmt.Errorf("publish ack %q: bad value at %d", data, start)
		}
		val := data[start:i]
		switch string(key) {
		case "error":
			return nil, fmt.Errorf("publish refused: %s", val)
		case "stream":
			s, _, ok := jsonString(val, 0)
			if !ok {
				return nil, fmt.Errorf("publish ack %q: stream is not a string", data)
			}
			stream = s
		case "domain":
			if s, _, ok := jsonString(val, 0); ok {
				ack.Domain = string(s)
			}
		case "seq":
			n, perr := strconv.ParseUint(unsafe.String(unsafe.SliceData(val), len(val)), 10, 64)
			if perr != nil {
				return nil, fmt.Errorf("publish ack %q: seq: %w", data, perr)
			}
			ack.Sequence, haveSeq = n, true
		case "duplicate":
			ack.Duplicate = string(val) == "true"
		}
		i = skipSpace(data, i)
		if i < len(data) && data[i] == ',' {
			i++
			continue
		}
		if i < len(data) && data[i] == '}' {
			break
		}
		return nil, fmt.Errorf("publish ack %q: expected ',' or '}' at %d", data, i)
	}
	if len(stream) == 0 || !haveSeq {
		return nil, fmt.Errorf("publish ack %q: no stream or seq", data)
	}
	return stream, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonString returns the contents of the JSON string at b[i] (escapes left
// as they are) and the index after its closing quote.
func jsonString(b []byte, i int) ([]byte, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return b[i+1 : j], j + 1, true
		}
	}
	return nil, i, false
}

// skipValue returns the index after the JSON value at b[i]: a string, an
// object or array (brackets matched outside strings), or a bare literal.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '"':
		_, j, ok := jsonString(b, i)
		return j, ok
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				_, k, ok := jsonString(b, j)
				if !ok {
					return j, false
				}
				j = k - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return len(b), false
	}
	j := i
	for j < len(b) && b[j] != ',' && b[j] != '}' && b[j] != ' ' && b[j] != '\n' && b[j] != '\r' && b[j] != '\t' {
		j++
	}
	return j, j > i
}
