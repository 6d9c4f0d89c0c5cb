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
// Publisher.NewMsg, fill Buf, call Set, then Enqueue it. From Enqueue until
// it is acknowledged the Publisher owns it; it is then recycled.
type Msg struct {
	nm      nats.Msg
	Buf     []byte // payload bytes followed by the Nats-Msg-Id bytes
	hdr     []string
	StartNs int64 // e.g. the frame's receive time; latency is measured from it
	// OnDone, if set, is called once when the message is stored (or was a
	// duplicate). It runs on the ack goroutine and must not block.
	OnDone func(ack *jetstream.PubAck)

	seq      uint64 // position in the publisher's order
	attempts int32  // publish attempts awaiting a callback
	acked    bool
	ack      jetstream.PubAck
}

// Set finishes a message: Buf[:dataLen] is the payload and Buf[dataLen:]
// the Nats-Msg-Id (may be empty for no dedup id).
func (m *Msg) Set(subject string, dataLen int) {
	m.nm.Subject = subject
	m.nm.Data = m.Buf[:dataLen]
	if id := m.Buf[dataLen:]; len(id) > 0 {
		m.hdr[0] = unsafe.String(&id[0], len(id)) // valid until recycled; Buf is not touched before
		m.nm.Header[jetstream.MsgIDHeader] = m.hdr
	} else {
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
type Publisher struct {
	js      jetstream.JetStream
	cfg     PublisherConfig
	log     *zap.Logger
	metrics *PublisherMetrics

	mu       sync.Mutex
	q        []*Msg // q[head:] in publish order; q[head] is the oldest unacked
	head     int
	next     uint64 // seq of the next message to send
	base     uint64 // seq of q[head]
	bytes    int64
	inflight map[*nats.Msg]*Msg
	free     []*Msg
	closed   bool
	wake     chan struct{}
	idle     *sync.Cond // broadcast when the queue empties
	done     chan struct{}
}

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
		cfg:      cfg,
		log:      log,
		metrics:  metrics,
		inflight: make(map[*nats.Msg]*Msg, cfg.MaxPending),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
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

// NewMsg returns a recycled or new message.
func (p *Publisher) NewMsg() *Msg {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		m := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return m
	}
	p.mu.Unlock()
	return &Msg{nm: nats.Msg{Header: nats.Header{}}, hdr: make([]string, 1), Buf: make([]byte, 0, 1024)}
}

// Recycle returns a message that was not enqueued.
func (p *Publisher) Recycle(m *Msg) {
	m.reset()
	p.mu.Lock()
	if len(p.free) < maxFree {
		p.free = append(p.free, m)
	}
	p.mu.Unlock()
}

// maxFree bounds the recycled messages kept after a burst.
const maxFree = 8192

func (m *Msg) reset() {
	m.Buf = m.Buf[:0]
	m.nm.Data = nil
	m.OnDone = nil
	m.attempts = 0
	m.acked = false
	m.StartNs = 0
}

// Enqueue hands m to the publisher. It never blocks. On ErrFull or
// ErrClosed, m is recycled and nothing was enqueued.
func (p *Publisher) Enqueue(m *Msg) error {
	size := int64(m.Size())
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		p.Recycle(m)
		return ErrClosed
	}
	if p.bytes+size > p.cfg.MaxBytes {
		p.mu.Unlock()
		p.Recycle(m)
		if p.metrics != nil {
			p.metrics.Rejected.Inc()
		}
		return ErrFull
	}
	m.seq = p.base + uint64(len(p.q)-p.head)
	p.q = append(p.q, m)
	p.bytes += size
	bytes := p.bytes
	p.mu.Unlock()
	if p.metrics != nil {
		p.metrics.Buffered.Set(float64(bytes))
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return nil
}

// Buffered returns the bytes currently held.
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
	defer close(p.done)
	failures := 0
	for {
		p.mu.Lock()
		var m *Msg
		for m == nil {
			if p.closed && len(p.q) == p.head {
				p.mu.Unlock()
				return
			}
			idx := p.head + int(p.next-p.base)
			for idx < len(p.q) && (p.q[idx].acked || p.q[idx].attempts > 0) {
				idx++ // stored already, or a publish is still awaiting its ack
				p.next++
			}
			if idx < len(p.q) {
				m = p.q[idx]
				break
			}
			p.mu.Unlock()
			<-p.wake
			p.mu.Lock()
		}
		m.attempts++
		p.inflight[&m.nm] = m
		p.next++
		p.mu.Unlock()

		_, err := p.js.PublishMsgAsync(&m.nm)
		if err == nil {
			failures = 0
			continue
		}
		// No paf was registered: no callback will come for this attempt.
		p.mu.Lock()
		m.attempts--
		if m.attempts == 0 {
			delete(p.inflight, &m.nm)
		}
		if m.seq < p.next {
			p.next = m.seq
		}
		closed := p.closed
		p.mu.Unlock()
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			continue // MaxPending in flight; registerPAF already waited
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
	}
}

func (p *Publisher) onAck(_ jetstream.JetStream, nm *nats.Msg, ack *jetstream.PubAck) {
	p.mu.Lock()
	m := p.inflight[nm]
	if m == nil {
		p.mu.Unlock()
		return
	}
	m.attempts--
	if m.attempts == 0 {
		delete(p.inflight, nm)
	}
	if !m.acked {
		m.acked = true
		m.ack = *ack
		if p.metrics != nil {
			p.metrics.Published.Inc()
			if ack.Duplicate {
				p.metrics.Duplicates.Inc()
			}
			if m.StartNs > 0 {
				p.metrics.Latency.Observe(float64(time.Now().UnixNano()-m.StartNs) / 1e9)
			}
		}
	}
	done := p.popLocked()
	p.mu.Unlock()
	p.finish(done)
}

func (p *Publisher) onErr(_ jetstream.JetStream, nm *nats.Msg, err error) {
	p.mu.Lock()
	m := p.inflight[nm]
	if m == nil {
		p.mu.Unlock()
		return
	}
	m.attempts--
	if m.attempts == 0 {
		delete(p.inflight, nm)
	}
	if !m.acked && m.seq < p.next {
		p.next = m.seq // resend from here, in order
	}
	done := p.popLocked()
	p.mu.Unlock()
	if p.metrics != nil {
		p.metrics.Retries.Inc()
	}
	p.log.Debug("publish will be retried", zap.String("subject", nm.Subject), zap.Error(err))
	p.finish(done)
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// popLocked removes acknowledged messages from the head, in order, and
// returns them for finishing outside the lock.
func (p *Publisher) popLocked() []*Msg {
	var done []*Msg
	for p.head < len(p.q) {
		m := p.q[p.head]
		if !m.acked || m.attempts > 0 {
			break
		}
		p.q[p.head] = nil
		p.head++
		p.base++
		p.bytes -= int64(m.Size())
		done = append(done, m)
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
	return done
}

func (p *Publisher) finish(done []*Msg) {
	if len(done) == 0 {
		return
	}
	for _, m := range done {
		if m.OnDone != nil {
			m.OnDone(&m.ack)
		}
		m.reset()
	}
	p.mu.Lock()
	if len(p.free) < maxFree {
		p.free = append(p.free, done...)
	}
	bytes := p.bytes
	if p.head == len(p.q) {
		// Only now: Flush returns after every OnDone of what it waited for.
		p.idle.Broadcast()
	}
	p.mu.Unlock()
	if p.metrics != nil {
		p.metrics.Buffered.Set(float64(bytes))
	}
}

// Flush waits until every enqueued message is acknowledged, or ctx ends.
func (p *Publisher) Flush(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		p.mu.Lock()
		p.idle.Broadcast()
		p.mu.Unlock()
	})
	defer stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.head < len(p.q) {
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
	select {
	case p.wake <- struct{}{}:
	default:
	}
	if err != nil {
		p.abandon()
	}
	select {
	case <-p.done:
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
	select {
	case p.wake <- struct{}{}:
	default:
	}
}
