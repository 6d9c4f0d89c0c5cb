package ingest

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
	"github.com/depthcap/depthcap/pkg/md"
)

// DLQ reasons (metric label and Depthcap-Reason header).
const (
	dlqMalformed        = "malformed"
	dlqMissingField     = "missing_field"
	dlqImpossibleValue  = "impossible_value"
	dlqBadStream        = "bad_stream"
	dlqSymbolMismatch   = "symbol_mismatch"
	dlqUnexpectedStream = "unexpected_stream"
	dlqOther            = "other"
)

// ErrUnexpectedStream reports a depth frame of a stream the connection did
// not subscribe (another symbol, kind, level count or speed).
var ErrUnexpectedStream = errors.New("frame of a stream that was not subscribed")

// handle is the frame path: one frame read on c at recvNs. Steady state
// allocates nothing on this side of Enqueue: the builder, header and
// envelope are the connection's, the stream lookup converts []byte to
// string without copying, and the message buffer is recycled by the
// publisher. holding is true on a rotation's new connection before its
// promotion: frames it may not decide on are held back.
func (c *wsConn) handle(frame []byte, recvNs int64, holding bool) {
	if err := c.b.Build(frame, recvNs, &c.h, &c.env); err != nil {
		c.nonData(frame, recvNs, err)
		return
	}
	e := c.e
	st := c.streams[string(c.h.Stream)]
	if st == nil {
		e.deadLetter(frame, recvNs, c.env.Kind, dlqUnexpectedStream, ErrUnexpectedStream, c.h.Stream)
		return
	}
	if !c.gotData.Load() {
		c.gotData.Store(true)
		close(c.firstData)
	}
	km := &e.met.kind[st.kind]
	km.frames.Inc()
	km.bytes.Add(float64(len(frame)))
	id, _ := c.h.DedupID(e.market, st.kind) // Check in Build made sure it is there
	prev := binance.PrevLink(e.market, c.h.FirstUpdateID, c.h.PrevFinalUpdateID)
	if st.kind == md.Diff && e.market == md.Futures && c.h.PrevFinalUpdateID >= c.h.FirstUpdateID {
		e.deadLetter(frame, recvNs, st.kind, dlqImpossibleValue, errPrevNotBelowFirst, c.h.Stream)
		return
	}
	st.lastFrameNs.Store(recvNs)
	st.mu.Lock()
	v, gap := st.t.check(id, prev, recvNs, !holding && c.mayGap(st))
	switch v {
	case duplicate:
		st.mu.Unlock()
		km.duplicates.Inc()
		return
	case deferred:
		st.mu.Unlock()
		km.deferred.Inc()
		if holding {
			c.hold(st, frame, recvNs, prev)
		}
		return
	}
	e.flushLocked(st)
	wasOpen := st.t.ovOpen
	ok := e.enqueueFrame(st, &c.env, recvNs)
	if ok {
		st.t.accepted(id, recvNs)
		km.published.Inc()
	} else {
		st.t.dropped(id, prev, recvNs)
		km.dropped.Inc()
	}
	if st.t.npend > 0 || st.t.ovOpen {
		if !e.flushLocked(st) || st.t.ovOpen {
			e.addPending(st)
		}
	}
	st.mu.Unlock()
	// After a loss (a break in the chain, or dropped frames), this frame is
	// the first published diff: a snapshot it bridges restores the book.
	// A dropped frame asks nothing yet: the loss goes on, and the overflow
	// record's close asks once the stream is published again.
	if ok && (gap || wasOpen) && st.kind == md.Diff {
		e.requestSnapshot(st.sym, binance.BridgeMin(e.market, c.h.FirstUpdateID))
	}
}

var errPrevNotBelowFirst = fmt.Errorf("%w: pu not below U", binance.ErrImpossibleValue)

// mayGap reports whether a frame of st on c may open a gap: always on the
// group's primary connection; on another (the old one of a rotation,
// closing) only when the primary is gone or does not carry the stream.
func (c *wsConn) mayGap(st *stream) bool {
	p := c.g.primary.Load()
	return p == c || p == nil || p.dead.Load() || p.streams[st.name] == nil
}

// enqueueFrame builds the message (envelope, then dedup id) and hands it
// to the publisher; false means the buffer is full (or closed).
func (e *Engine) enqueueFrame(st *stream, env *envelope.Envelope, recvNs int64) bool {
	// A buffer of about the right size, allocated once, instead of
	// append's doubling: it is charged against the publish budget by
	// capacity. Recycled messages keep theirs (steady state: nothing is
	// allocated).
	m := e.pub.NewMsgSize((msgSizeBound(env) + 255) &^ 255)
	m.Buf = env.AppendMarshal(m.Buf[:0])
	n := len(m.Buf)
	var err error
	if m.Buf, err = env.AppendMsgID(m.Buf); err != nil {
		// Unreachable: Build checked the sequence id. Count it as lost.
		e.pub.Recycle(m)
		return false
	}
	m.Set(st.subject, n)
	m.StartNs = recvNs
	return e.pub.Enqueue(m) == nil
}

// msgSizeBound is an upper bound of a data envelope plus its dedup id:
// the payload and strings, 16 tags, 8 varints of up to 10 bytes.
func msgSizeBound(env *envelope.Envelope) int {
	return len(env.Payload) + 2*len(env.Symbol) + len(env.Source) + 160
}

// enqueueGap publishes a gap record of st; false means the buffer is full.
func (e *Engine) enqueueGap(st *stream, g *envelope.Gap) bool {
	recv := g.EndNs
	if recv == 0 {
		recv = time.Now().UnixNano()
	}
	env := envelope.Envelope{
		Market: e.market, Kind: md.Gap, Symbol: st.sym.name, ReceivedNs: recv,
		Source: e.source, Has: envelope.HasGap, Gap: *g,
	}
	m := e.pub.NewMsg()
	m.Buf = env.AppendMarshal(m.Buf[:0])
	n := len(m.Buf)
	m.Buf, _ = env.AppendMsgID(m.Buf) // gap ids never fail
	m.Set(st.sym.gapSubject, n)
	m.StartNs = recv
	return e.pub.Enqueue(m) == nil
}

// flushLocked enqueues st's pending gap records in order until the
// buffer refuses one; it reports whether none is left. st.mu is held.
func (e *Engine) flushLocked(st *stream) bool {
	for {
		g, ok := st.t.pending()
		if !ok {
			return true
		}
		if !e.enqueueGap(st, g) {
			return false
		}
		e.gapPublished(st, g)
		st.t.pop()
	}
}

// gapPublished counts and logs a gap record handed to the publisher.
func (e *Engine) gapPublished(st *stream, g *envelope.Gap) {
	e.met.v.gaps.WithLabelValues(e.market.String(), st.kind.String(), g.Reason.String()).Inc()
	if ok, suppressed := e.logLimit.Allow("gap:" + g.Reason.String()); ok {
		e.log.Info("gap recorded", zap.String("symbol", st.sym.name), zap.String("kind", st.kind.String()),
			zap.String("reason", g.Reason.String()), zap.Int64("after_id", g.AfterID), zap.Int64("resume_prev_id", g.ResumePrevID),
			zap.Int64("frames_lost", g.FramesLost), zap.Int("suppressed", suppressed))
	}
}

// nonData handles a frame that is not a depth frame of ours: control
// replies, streams we do not capture, and bad input (dead-lettered).
func (c *wsConn) nonData(frame []byte, recvNs int64, err error) {
	e := c.e
	switch {
	case errors.Is(err, frames.ErrControl):
		c.control()
	case errors.Is(err, binance.ErrNotDepth):
		e.ignoredNotDepth.Inc()
	default:
		kind := md.KindUnknown
		if len(c.h.Stream) > 0 {
			if info, perr := binance.ParseStreamName(c.h.Stream); perr == nil {
				kind = info.Kind
			}
		}
		e.deadLetter(frame, recvNs, kind, dlqReason(err), err, c.h.Stream)
	}
}

// control handles a control frame: subscribe replies, error replies and
// the serverShutdown notice.
func (c *wsConn) control() {
	e := c.e
	switch c.h.Control {
	case binance.ControlResult:
		e.ignoredReply.Inc()
		if c.h.Has&binance.HasID != 0 {
			c.sendReply(reply{id: c.h.ID})
		}
	case binance.ControlError:
		e.met.v.controlErrors.WithLabelValues(e.market.String()).Inc()
		cerr := fmt.Errorf("exchange error %d: %s", c.h.ErrCode, c.h.ErrMsg)
		if ok, suppressed := e.logLimit.Allow("control-error"); ok {
			e.log.Warn("exchange error reply", zap.Uint64("conn", c.id), zap.Int64("id", c.h.ID),
				zap.Int64("code", c.h.ErrCode), zap.ByteString("msg", c.h.ErrMsg), zap.Int("suppressed", suppressed))
		}
		if c.h.Has&binance.HasID != 0 {
			c.sendReply(reply{id: c.h.ID, err: cerr})
		}
	case binance.ControlShutdown:
		e.log.Info("serverShutdown notice", zap.Uint64("conn", c.id), zap.Int("group", c.g.id))
		c.signalShutdown()
	}
}

// dlqReason classifies a Build error.
func dlqReason(err error) string {
	switch {
	case errors.Is(err, frames.ErrSymbolMismatch):
		return dlqSymbolMismatch
	case errors.Is(err, binance.ErrMissingField):
		return dlqMissingField
	case errors.Is(err, binance.ErrImpossibleValue):
		return dlqImpossibleValue
	case errors.Is(err, binance.ErrBadStream):
		return dlqBadStream
	case errors.Is(err, binance.ErrMalformed):
		return dlqMalformed
	case errors.Is(err, ErrUnexpectedStream):
		return dlqUnexpectedStream
	}
	return dlqOther
}

// publisher is what the frame path needs of bus.Publisher.
type publisher interface {
	NewMsg() *bus.Msg
	NewMsgSize(n int) *bus.Msg
	Recycle(*bus.Msg)
	Enqueue(*bus.Msg) error
	Buffered() int64
}
