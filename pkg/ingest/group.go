package ingest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Rotation timing.
const (
	// minOverlap is how long both connections of a rotation stay open
	// after the new one's subscription was confirmed, at least, so that
	// frames the old one still had in flight are read (streams with held
	// frames wait for the old connection to catch up anyway).
	minOverlap = 500 * time.Millisecond
	// maxCatchUp bounds the wait for the old connection to deliver what
	// precedes the new one's held frames.
	maxCatchUp = 5 * time.Second
)

// group is one slot of up to INGEST_SYMBOLS_PER_CONN symbols and the
// connection that carries them (two during a rotation).
type group struct {
	e  *Engine
	id int

	mu   sync.Mutex
	syms []*symState

	changed chan struct{} // membership changed: rotate
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}

	primary atomic.Pointer[wsConn] // the connection whose frames may open gaps
}

func (e *Engine) newGroup() *group {
	e.nextG++
	return &group{e: e, id: e.nextG, changed: make(chan struct{}, 1), done: make(chan struct{}), cancel: func() {}}
}

// start runs the group until ctx ends or the group is cancelled. Called
// with e.mu held.
func (g *group) start(parent context.Context) {
	g.ctx, g.cancel = context.WithCancel(parent)
	go g.run(g.ctx)
}

func (g *group) signal() {
	select {
	case g.changed <- struct{}{}:
	default:
	}
}

// membership returns the stream names (diff, then partial, per symbol)
// and the stream map a new connection carries.
func (g *group) membership() ([]string, map[string]*stream) {
	g.mu.Lock()
	defer g.mu.Unlock()
	names := make([]string, 0, 2*len(g.syms))
	m := make(map[string]*stream, 2*len(g.syms))
	for _, s := range g.syms {
		for _, st := range s.streams() {
			names = append(names, st.name)
			m[st.name] = st
		}
	}
	return names, m
}

// connect opens, subscribes and returns a connection with the group's
// current streams, after a connection-attempt token.
func (g *group) connect(ctx context.Context, primary bool) (*wsConn, error) {
	e := g.e
	if err := e.attempt.Wait(ctx); err != nil {
		return nil, err
	}
	names, streams := g.membership()
	c := newWSConn(e, g, names, streams)
	c.holding.Store(!primary)
	if err := c.dial(ctx, primary); err != nil {
		return nil, err
	}
	c.rotateAt = c.opened.Add(e.jitteredAge())
	return c, nil
}

// run keeps one subscribed connection open: it reconnects after failures
// with backoff and rotates make-before-break before the maximum age, on
// serverShutdown and when the membership changes.
func (g *group) run(ctx context.Context) {
	defer close(g.done)
	e := g.e
	attempt := 0
	var cur *wsConn
	for {
		if cur == nil {
			select { // the new connection takes the current membership
			case <-g.changed:
			default:
			}
			c, err := g.connect(ctx, true)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				reason := reasonDial
				if errors.Is(err, ErrSubscribe) || errors.Is(err, errConnClosed) {
					reason = reasonSubscribe
				}
				e.met.v.reconnects.WithLabelValues(e.market.String(), reason).Inc()
				if ok, suppressed := e.logLimit.Allow("connect-failed"); ok {
					e.log.Warn("websocket connect failed, retrying", zap.Int("group", g.id), zap.Int("attempt", attempt),
						zap.Int("suppressed", suppressed), zap.Error(err))
				}
				if !sleep(ctx, e.backoff.Delay(attempt)) {
					return
				}
				attempt++
				continue
			}
			cur = c
			e.log.Debug("websocket subscribed", zap.Int("group", g.id), zap.Uint64("conn", c.id), zap.Int("streams", len(c.names)))
		}
		shutdownCh := cur.shutdownCh
		if cur.shutdownSeen {
			shutdownCh = nil
		}
		rotate := time.NewTimer(time.Until(cur.rotateAt))
		select {
		case <-ctx.Done():
			rotate.Stop()
			cur.close(reasonShutdown, true, true)
			<-cur.done
			return
		case <-cur.done:
			rotate.Stop()
			if time.Since(cur.opened) >= e.backoff.Stable && cur.gotData.Load() {
				attempt = 0
			}
			cur = nil
			if !sleep(ctx, e.backoff.Delay(attempt)) {
				return
			}
			attempt++
		case <-rotate.C:
			cur = g.rotate(ctx, cur, "max_age")
		case <-shutdownCh:
			rotate.Stop()
			cur.shutdownSeen = true
			cur = g.rotate(ctx, cur, "server_shutdown")
		case <-g.changed:
			rotate.Stop()
			cur = g.rotate(ctx, cur, "membership")
		}
	}
}

// rotate replaces old make-before-break: it opens a new connection that
// holds back the frames it may not decide on, waits until it is
// subscribed and delivers, keeps both open until the old one has
// delivered everything before the new one's first held frames (at least
// minOverlap), then promotes the new one (replaying what it held) and
// closes the old one. On failure it keeps old and retries later. It
// returns the connection to continue with (nil when both are gone).
func (g *group) rotate(ctx context.Context, old *wsConn, reason string) *wsConn {
	e := g.e
	m := e.market.String()
	retry := func(err error) *wsConn {
		e.met.v.rotations.WithLabelValues(m, reasonRotationFailed).Inc()
		if ok, suppressed := e.logLimit.Allow("rotate-failed"); ok {
			e.log.Warn("connection rotation failed; keeping the old connection", zap.Int("group", g.id),
				zap.String("reason", reason), zap.Int("suppressed", suppressed), zap.Error(err))
		}
		select {
		case <-old.done:
			return nil
		default:
		}
		old.rotateAt = time.Now().Add(max(time.Second, e.backoff.Delay(2)))
		return old
	}
	nc, err := g.connect(ctx, false)
	if err != nil {
		if ctx.Err() != nil {
			return old
		}
		return retry(err)
	}
	waitStart := time.Now().UnixNano()
	timeout := time.NewTimer(e.cfg.StallTimeout)
	defer timeout.Stop()
	select {
	case <-nc.firstData:
	case <-old.done:
	case <-nc.done:
		return retry(errConnClosed)
	case <-ctx.Done():
		nc.close(reasonShutdown, true, true)
		<-nc.done
		return old
	case <-timeout.C:
		if old.lastData.Load() > waitStart {
			// The old connection delivers, the new one does not.
			nc.close(reasonRotationFailed, true, false)
			<-nc.done
			return retry(errors.New("new connection delivered nothing"))
		}
		// Neither delivers: a quiet market; switch anyway.
	}
	g.handOver(ctx, old, nc)
	if nc.dead.Load() {
		return retry(errConnClosed)
	}
	replayed, discarded := nc.promote()
	old.close(reasonRotation, true, true)
	e.met.v.rotations.WithLabelValues(m, reason).Inc()
	e.log.Debug("connection rotated", zap.Int("group", g.id), zap.String("reason", reason),
		zap.Uint64("old", old.id), zap.Uint64("new", nc.id), zap.Duration("old_age", time.Since(old.opened)),
		zap.Int("replayed", replayed), zap.Int("hold_overflow", discarded))
	return nc
}

// handOver waits, at least minOverlap after the new connection was
// subscribed and at most maxCatchUp, until the old connection has
// delivered everything before the new one's first held frame of every
// stream. It returns early when either connection is gone.
func (g *group) handOver(ctx context.Context, old, nc *wsConn) {
	deadline := time.Now().Add(maxCatchUp)
	overlapEnd := time.Unix(0, nc.subscribedNs.Load()).Add(minOverlap)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		now := time.Now()
		if now.After(deadline) || old.dead.Load() || nc.dead.Load() {
			return
		}
		if !now.Before(overlapEnd) && nc.heldCaughtUp() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-old.done:
			return
		case <-t.C:
		}
	}
}
