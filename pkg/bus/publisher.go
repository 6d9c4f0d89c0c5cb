package bus

import (
	"context"
	"errors"
	"fmt"
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
	// nm must stay the first field: the ack and error callbacks hand back
	// &m.nm, and msgOf turns it into m without a lookup.
	nm      nats.Msg
	Buf     []byte // payload bytes followed by the Nats-Msg-Id bytes
	hdr     [1]string
	StartNs int64 // e.g. the frame's receive time; latency is measured from it
	// OnDone, if set, is called once when the message is stored (or was a
	// duplicate). It runs on an ack goroutine, in publish order, and must
	// not block; Flush returns only after it ran.
	OnDone func(ack *jetstream.PubAck)

	seq      uint64 // position in the publisher's order
	inflight bool   // a publish attempt awaits its callback (at most one does)
	acked    bool
	ack      jetstream.PubAck
}

// The callbacks' *nats.Msg is &m.nm: msgOf relies on nm being at offset 0.
var _ [0]struct{} = [unsafe.Offsetof(Msg{}.nm)]struct{}{}

// msgOf returns the Msg whose nm is nm. Only a Publisher publishes on its
// JetStream context, and only &m.nm of its messages, so every callback's
// nm is one; and each publish that returned no error gets exactly one
// callback (ack, error, timeout or disconnect), so a message is never
// recycled while a callback for it may still come.
func msgOf(nm *nats.Msg) *Msg { return (*Msg)(unsafe.Pointer(nm)) }

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
		Buckets: []float64{.0002, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}})
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
// Per message it takes its lock three times (NewMsg, Enqueue, the ack),
// and the send loop once per batch of up to sendBatch messages; the
// callbacks find their message without a lookup (msgOf), and nothing is
// allocated once messages are recycled.
type Publisher struct {
	js      jetstream.JetStream
	cfg     PublisherConfig
	log     *zap.Logger
	metrics *PublisherMetrics
	freeCap int64 // bytes the free list may hold (also within MaxBytes)

	mu        sync.Mutex
	q         []*Msg // q[head:] in publish order; q[head] is the oldest unacked
	head      int
	next      uint64 // seq of the next message to send
	base      uint64 // seq of q[head]
	bytes     int64  // queued and in-flight messages
	free      []*Msg // recycled messages, for NewMsg
	freeBytes int64  // their Size; bytes+freeBytes <= MaxBytes
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
}

// sendBatch is the most messages the send loop takes per lock.
const sendBatch = 64

// defaultMsgCap is the buffer capacity of a new message from NewMsg.
const defaultMsgCap = 1024

// maxFreeBytes bounds the recycled messages kept after a burst (and
// MaxBytes/4 does, when smaller).
const maxFreeBytes = 32 << 20

// NewPublisher starts a publisher on nc. It creates its own JetStream
// context because the ack and error callbacks are per context.
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
		cfg:     cfg,
		log:     log,
		metrics: metrics,
		freeCap: min(cfg.MaxBytes/4, maxFreeBytes),
		wake:    make(chan struct{}, 1),
		exited:  make(chan struct{}),
	}
	p.idle = sync.NewCond(&p.mu)
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(cfg.MaxPending),
		jetstream.WithPublishAsyncTimeout(cfg.AckTimeout),
		jetstream.WithPublishAsyncAckHandler(p.onAck),
		jetstream.WithPublishAsyncErrHandler(p.onErr),
	)
	if err != nil {
		return nil, fmt.Errorf("publisher jetstream: %w", err)
	}
	p.js = js
	go p.loop()
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

// loop sends messages in order, retrying after errors.
func (p *Publisher) loop() {
	defer close(p.exited)
	failures := 0
	batch := make([]*Msg, 0, sendBatch)
	for {
		p.mu.Lock()
		for {
			batch = p.takeLocked(batch[:0])
			if len(batch) > 0 {
				break
			}
			if p.closed && len(p.q) == p.head {
				p.mu.Unlock()
				return
			}
			p.waiting = true
			p.mu.Unlock()
			<-p.wake
			p.mu.Lock()
		}
		p.mu.Unlock()
		for i, m := range batch {
			_, err := p.js.PublishMsgAsync(&m.nm)
			if err == nil {
				failures = 0
				continue
			}
			// No paf was registered: no callback will come for this
			// attempt, and the rest of the batch was not sent.
			p.mu.Lock()
			for _, r := range batch[i:] {
				r.inflight = false
			}
			if m.seq < p.next {
				p.next = m.seq
			}
			closed := p.closed
			p.mu.Unlock()
			if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				break // MaxPending in flight; registerPAF already waited
			}
			if closed && errors.Is(err, nats.ErrConnectionClosed) {
				p.abandon()
				return
			}
			failures++
			if failures == 1 || failures%100 == 0 {
				p.log.Warn("publish failed, retrying", zap.String("subject", m.nm.Subject), zap.Int("failures", failures), zap.Error(err))
			}
			if p.metrics != nil {
				p.metrics.Retries.Inc()
			}
			time.Sleep(min(time.Duration(failures)*10*time.Millisecond, time.Second))
			break
		}
		clear(batch)
	}
}

// takeLocked appends to batch, in order from next, up to cap(batch)
// messages that are neither stored nor awaiting a callback, and marks
// them in flight.
func (p *Publisher) takeLocked(batch []*Msg) []*Msg {
	idx := p.head + int(p.next-p.base)
	for idx < len(p.q) && len(batch) < cap(batch) {
		m := p.q[idx]
		idx++
		p.next++
		if m.acked || m.inflight {
			continue // stored already, or a publish is still awaiting its ack
		}
		m.inflight = true
		batch = append(batch, m)
	}
	return batch
}

func (p *Publisher) onAck(_ jetstream.JetStream, nm *nats.Msg, ack *jetstream.PubAck) {
	m := msgOf(nm)
	p.mu.Lock()
	m.inflight = false
	first := !m.acked
	if first {
		m.acked = true
		m.ack = *ack
	}
	start := m.StartNs
	popped := p.popLocked()
	bytes := p.bytes
	p.finishLocked()
	p.mu.Unlock()
	if p.metrics != nil {
		if first {
			p.metrics.Published.Inc()
			if ack.Duplicate {
				p.metrics.Duplicates.Inc()
			}
			if start > 0 {
				p.metrics.Latency.Observe(float64(time.Now().UnixNano()-start) / 1e9)
			}
		}
		if popped {
			p.metrics.Buffered.Set(float64(bytes))
		}
	}
}

func (p *Publisher) onErr(_ jetstream.JetStream, nm *nats.Msg, err error) {
	m := msgOf(nm)
	p.mu.Lock()
	m.inflight = false
	if !m.acked && m.seq < p.next {
		p.next = m.seq // resend from here, in order
	}
	p.popLocked()
	p.finishLocked()
	wake := p.waiting
	p.waiting = false
	p.mu.Unlock()
	if p.metrics != nil {
		p.metrics.Retries.Inc()
	}
	p.log.Debug("publish will be retried", zap.String("subject", nm.Subject), zap.Error(err))
	if wake {
		p.signal()
	}
}

// popLocked removes acknowledged messages from the head, in order:
// those with an OnDone go to done, the others are recycled. It reports
// whether it removed any.
func (p *Publisher) popLocked() bool {
	popped := false
	for p.head < len(p.q) {
		m := p.q[p.head]
		if !m.acked || m.inflight {
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
