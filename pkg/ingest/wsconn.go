package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
)

// Connection limits.
const (
	// maxURLLen bounds the combined-stream URL: streams that do not fit
	// are subscribed with SUBSCRIBE messages. Binance documents no URL
	// limit; 2 KiB is far below what any HTTP server accepts.
	maxURLLen = 2048
	// subscribeBatch is the most streams one SUBSCRIBE message carries.
	subscribeBatch = 200
	// maxFrameBytes is the websocket read limit: a frame above it closes
	// the connection (the largest real depth frames are a few hundred KB).
	maxFrameBytes = 16 << 20
	// initialBuf is the first size of a connection's read buffer.
	initialBuf  = 64 << 10
	dialTimeout = 15 * time.Second
	// subscribeTimeout bounds the wait for SUBSCRIBE replies after the
	// last request was sent.
	subscribeTimeout = 10 * time.Second
)

// Reasons a connection ends or is replaced (metric labels).
const (
	reasonStall          = "stall"
	reasonDrop           = "drop"
	reasonServerClose    = "server_close"
	reasonTooBig         = "message_too_big"
	reasonSubscribe      = "subscribe_error"
	reasonDial           = "dial_error"
	reasonRotation       = "rotation"
	reasonShutdown       = "shutdown"
	reasonRotationFailed = "rotation_failed"
)

// ErrSubscribe reports a SUBSCRIBE the exchange refused or did not answer.
var ErrSubscribe = errors.New("subscribe failed")

// errConnClosed reports a connection that ended while it was set up.
var errConnClosed = errors.New("connection closed")

// reply is a control reply to a request this connection sent.
type reply struct {
	id  int64
	err error // nil for {"result":null,"id":..}
}

// wsConn is one websocket connection of a group. Its read loop is the
// only goroutine that touches the builder, header, envelope and buffer.
type wsConn struct {
	id      uint64
	e       *Engine
	g       *group
	ws      *websocket.Conn
	streams map[string]*stream // by stream name, as the exchange echoes it
	names   []string
	opened  time.Time

	// Owned by the group goroutine.
	rotateAt     time.Time
	shutdownSeen bool
	reqID        int64

	// Owned by the read loop.
	b       *frames.Builder
	h       binance.Header
	env     envelope.Envelope
	buf     []byte
	readErr error

	lastData     atomic.Int64 // unix ns of the last frame (data or control)
	gotData      atomic.Bool
	firstData    chan struct{} // closed on the first data frame
	subscribed   atomic.Bool
	subscribedNs atomic.Int64
	shutdownCh   chan struct{} // closed on serverShutdown
	shutOnce     sync.Once
	replies      chan reply
	dead         atomic.Bool // the read loop is ending
	done         chan struct{}

	closeOnce   sync.Once
	reason      atomic.Pointer[string] // why we closed it
	intentional atomic.Bool            // rotation or shutdown: not a failure

	// A rotation's new connection holds back the frames it may not
	// decide on until it is promoted (see hold and promote).
	holding atomic.Bool
	hmu     sync.Mutex
	held    holdBuf
}

// holdBuf keeps copies of the frames a rotation's new connection deferred,
// in arrival order, until promote replays them. It is bounded by
// maxHoldBytes; it only allocates during a rotation.
type holdBuf struct {
	arena     []byte
	frames    []heldFrame
	firstPrev map[*stream]int64 // per stream: the link of its first held frame
	overflow  int
}

type heldFrame struct {
	off, end int
	recvNs   int64
}

// maxHoldBytes bounds a rotation's hold-back buffer. Past it, deferred
// frames are discarded; if the old connection does not deliver them
// either, the break is recorded as a gap after the promotion.
const maxHoldBytes = 16 << 20

func newWSConn(e *Engine, g *group, names []string, streams map[string]*stream) *wsConn {
	c := &wsConn{
		id: e.nextConn.Add(1), e: e, g: g, names: names, streams: streams, opened: time.Now(),
		b:          frames.NewBuilder(e.market, e.source),
		buf:        make([]byte, 0, initialBuf),
		firstData:  make(chan struct{}),
		shutdownCh: make(chan struct{}),
		replies:    make(chan reply, 64),
		done:       make(chan struct{}),
	}
	c.lastData.Store(c.opened.UnixNano())
	return c
}

// splitStreams returns the combined-stream URL carrying as many streams as
// fit in maxURLLen (at least one), and the streams left for SUBSCRIBE.
func splitStreams(base string, names []string) (string, []string) {
	base = strings.TrimRight(base, "/") + "/stream?streams="
	n, size := 0, len(base)
	for n < len(names) {
		add := len(names[n])
		if n > 0 {
			add++
		}
		if n > 0 && size+add > maxURLLen {
			break
		}
		size += add
		n++
	}
	return base + strings.Join(names[:n], "/"), names[n:]
}

// batches splits streams into SUBSCRIBE-sized slices.
func batches(names []string, size int) [][]string {
	var out [][]string
	for len(names) > 0 {
		n := min(size, len(names))
		out = append(out, names[:n])
		names = names[n:]
	}
	return out
}

// dial opens the websocket, starts the read loop and the stall watchdog,
// and subscribes the streams that did not fit in the URL, paced under the
// exchange's incoming-message limit. It returns once every SUBSCRIBE was
// acknowledged. primary makes the connection its group's primary before
// the first frame is read.
func (c *wsConn) dial(ctx context.Context, primary bool) error {
	e := c.e
	url, rest := splitStreams(e.wsBase, c.names)
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	ws, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPClient: e.wsHTTP})
	cancel()
	if resp != nil && resp.Body != nil {
		_ = resp.Body.Close()
	}
	if err != nil {
		e.met.v.attempts.WithLabelValues(e.market.String(), "error").Inc()
		return fmt.Errorf("dial %s (%d streams): %w", e.wsBase, len(c.names), err)
	}
	e.met.v.attempts.WithLabelValues(e.market.String(), "ok").Inc()
	ws.SetReadLimit(maxFrameBytes)
	c.ws = ws
	c.opened = time.Now()
	c.lastData.Store(c.opened.UnixNano())
	if primary {
		c.g.primary.Store(c)
	}
	e.met.v.conns.WithLabelValues(e.market.String()).Inc()
	go c.readLoop()
	go c.watchdog()
	if err := c.subscribe(ctx, rest); err != nil {
		c.close(reasonSubscribe, false, false)
		<-c.done
		return err
	}
	c.subscribedNs.Store(time.Now().UnixNano())
	c.subscribed.Store(true)
	return nil
}

// subscribe sends SUBSCRIBE requests for names, at most one per
// 1/controlRate seconds, and waits for every reply.
func (c *wsConn) subscribe(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	pacer := NewTokenBucket(controlRate(c.e.prof.MaxIncomingMsgsPerSec), 1)
	want := map[int64]int{}
	for _, b := range batches(names, subscribeBatch) {
		if err := pacer.Wait(ctx); err != nil {
			return fmt.Errorf("subscribe: %w", err)
		}
		c.reqID++
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.ws.Write(wctx, websocket.MessageText, binance.SubscribeMessage(c.reqID, b))
		cancel()
		if err != nil {
			return fmt.Errorf("subscribe %d streams: %w", len(b), err)
		}
		want[c.reqID] = len(b)
	}
	timer := time.NewTimer(subscribeTimeout)
	defer timer.Stop()
	for len(want) > 0 {
		select {
		case r := <-c.replies:
			n, ok := want[r.id]
			if !ok {
				continue
			}
			if r.err != nil {
				return fmt.Errorf("subscribe %d streams: %w: %w", n, ErrSubscribe, r.err)
			}
			delete(want, r.id)
		case <-c.done:
			return fmt.Errorf("subscribe: %w", errConnClosed)
		case <-timer.C:
			return fmt.Errorf("subscribe: %w: no reply to %d requests within %s", ErrSubscribe, len(want), subscribeTimeout)
		case <-ctx.Done():
			return fmt.Errorf("subscribe: %w", ctx.Err())
		}
	}
	return nil
}

// readLoop reads frames until the connection ends. It never blocks on
// NATS: the frame path only enqueues.
func (c *wsConn) readLoop() {
	defer c.exit()
	for {
		frame, err := c.readMessage()
		if err != nil {
			c.readErr = err
			return
		}
		now := time.Now().UnixNano()
		c.lastData.Store(now)
		if c.holding.Load() {
			c.handleHolding(frame, now)
			continue
		}
		c.handle(frame, now, false)
	}
}

// handleHolding is the frame path of a connection that is not yet
// promoted: under hmu, so that promote's replay and live frames do not
// interleave.
func (c *wsConn) handleHolding(frame []byte, recvNs int64) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	c.handle(frame, recvNs, c.holding.Load())
}

// hold keeps a copy of a deferred frame for the promotion.
func (c *wsConn) hold(st *stream, frame []byte, recvNs int64, prev int64) {
	h := &c.held
	if len(h.arena)+len(frame) > maxHoldBytes {
		h.overflow++
		return
	}
	if h.firstPrev == nil {
		h.firstPrev = map[*stream]int64{}
	}
	if _, ok := h.firstPrev[st]; !ok {
		h.firstPrev[st] = prev
	}
	off := len(h.arena)
	h.arena = append(h.arena, frame...)
	h.frames = append(h.frames, heldFrame{off: off, end: len(h.arena), recvNs: recvNs})
}

// heldCaughtUp reports whether, for every stream with held frames, the
// streams' published state has reached the first held frame's link: the
// old connection delivered everything before it, so the replay chains on.
func (c *wsConn) heldCaughtUp() bool {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	for st, prev := range c.held.firstPrev {
		st.mu.Lock()
		ok := st.t.has && st.t.last >= prev
		st.mu.Unlock()
		if !ok {
			return false
		}
	}
	return true
}

// promote makes c its group's primary: it replays the held frames in
// arrival order through the frame path (each is now a duplicate, follows
// the chain, or opens a real gap), then lets live frames through.
func (c *wsConn) promote() (replayed, discarded int) {
	c.hmu.Lock()
	defer c.hmu.Unlock()
	c.g.primary.Store(c)
	h := c.held
	c.held = holdBuf{}
	for _, f := range h.frames {
		c.handle(h.arena[f.off:f.end], f.recvNs, false)
	}
	c.holding.Store(false)
	if c.dead.Load() && !c.intentional.Load() {
		// It ended while it was not yet primary: exit did not mark its
		// streams (either exit sees primary == c or this sees dead).
		c.markDisconnected()
	}
	return len(h.frames), h.overflow
}

// readMessage reads the next data message into the connection's reused
// buffer. The reader gets context.Background on purpose: with a
// cancellable context coder/websocket arms a context.AfterFunc for every
// frame header and payload read, which allocates; the connection is
// interrupted by closing it instead. Ping, pong and close frames are
// handled (pings answered) inside Reader.
func (c *wsConn) readMessage() ([]byte, error) {
	_, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return nil, err
	}
	b := c.buf[:0]
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if errors.Is(err, io.EOF) {
			c.buf = b
			return b, nil
		}
		if err != nil {
			c.buf = b
			return nil, err
		}
	}
}

// watchdog replaces the connection when it delivers nothing for the stall
// timeout.
func (c *wsConn) watchdog() {
	stall := c.e.cfg.StallTimeout
	t := time.NewTicker(min(max(stall/4, 50*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case now := <-t.C:
			if now.UnixNano()-c.lastData.Load() > int64(stall) {
				c.close(reasonStall, false, false)
				return
			}
		}
	}
}

// close ends the connection once: gracefully (close handshake; frames
// that arrive meanwhile are still processed) or abruptly. intentional
// marks a rotation or shutdown, which is not a failure.
func (c *wsConn) close(reason string, intentional, graceful bool) {
	c.closeOnce.Do(func() {
		c.reason.Store(&reason)
		c.intentional.Store(intentional)
		go func() {
			if graceful {
				_ = c.ws.Close(websocket.StatusNormalClosure, reason)
				return
			}
			_ = c.ws.CloseNow()
		}()
	})
}

// exit runs when the read loop ends.
func (c *wsConn) exit() {
	c.dead.Store(true)
	e := c.e
	reason := c.endReason()
	e.met.v.conns.WithLabelValues(e.market.String()).Dec()
	if !c.intentional.Load() {
		primary := c.g.primary.Load() == c
		if primary {
			// The streams may have lost frames: the next break is a
			// disconnect gap.
			c.markDisconnected()
			e.met.v.reconnects.WithLabelValues(e.market.String(), reason).Inc()
		}
		if ok, suppressed := e.logLimit.Allow("conn-end:" + reason); ok {
			e.log.Warn("websocket connection ended", zap.Uint64("conn", c.id), zap.Int("group", c.g.id),
				zap.String("reason", reason), zap.Bool("primary", primary), zap.Duration("age", time.Since(c.opened)),
				zap.Int("streams", len(c.names)), zap.Int("suppressed", suppressed), zap.Error(c.readErr))
		}
	}
	_ = c.ws.CloseNow()
	close(c.done)
}

// markDisconnected notes on every stream of c that its connection ended.
func (c *wsConn) markDisconnected() {
	for _, st := range c.streams {
		st.mu.Lock()
		st.t.markDisconnected()
		st.mu.Unlock()
	}
}

// endReason is why the connection ended: our reason when we closed it,
// else what the read error says.
func (c *wsConn) endReason() string {
	if p := c.reason.Load(); p != nil {
		return *p
	}
	switch {
	case errors.Is(c.readErr, websocket.ErrMessageTooBig):
		return reasonTooBig
	case websocket.CloseStatus(c.readErr) != -1:
		return reasonServerClose
	}
	return reasonDrop
}

// delivering reports whether the connection is subscribed and has
// delivered a data frame.
func (c *wsConn) delivering() bool {
	return !c.dead.Load() && c.subscribed.Load() && c.gotData.Load()
}

func (c *wsConn) signalShutdown() {
	c.shutOnce.Do(func() { close(c.shutdownCh) })
}

func (c *wsConn) sendReply(r reply) {
	select {
	case c.replies <- r:
	default: // nobody waits for that many replies: not ours
	}
}
