package binancesim

import (
	"context"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/md"
)

const (
	closeGoingAway = websocket.StatusGoingAway
	closePolicy    = websocket.StatusPolicyViolation
	readLimit      = 1 << 16
)

// outFrame is one message queued on a connection.
type outFrame struct {
	buf     []byte // combined-stream frame, or a control message
	dataOff int32  // buf[dataOff:dataEnd] is the raw-stream payload
	dataEnd int32
	b       *batch // released once written or dropped; nil for replay frames
	ctrl    bool   // a reply or event sent as is
	tickEnd bool   // no frame: the tick that queued the frames before it is done
	kind    md.Kind
	sym     string
	id      int64
}

func (f *outFrame) release() {
	if f.b != nil {
		f.b.release()
	}
}

// conn is one websocket client.
type conn struct {
	id     int64
	mk     *mkt
	s      *Sim
	ws     *websocket.Conn
	sock   *batchConn // ws's socket
	remote string
	path   string
	opened time.Time

	combined atomic.Bool
	cursor   bool // SIM_SPEED=0 replay: a stall pauses the cursor instead of losing frames
	q        chan outFrame
	ctx      context.Context // canceled after the connection is gone
	cancel   context.CancelFunc
	stop     chan struct{} // closed when the connection must end
	closed   chan struct{} // closed when the close (handshake) finished
	dead     atomic.Bool
	reason   atomic.Pointer[string]

	subMu   sync.Mutex
	streams []string                            // in subscription order, for LIST_SUBSCRIPTIONS
	set     atomic.Pointer[map[string]struct{}] // copy on write
	wake    chan struct{}                       // replay: a subscription arrived

	stallUntil  atomic.Int64 // unix ns
	malformNext atomic.Int64
	malRng      *rand.Rand // writer goroutine only
	tickSeen    int64      // the ticker's last tick that queued a frame here (ticker goroutine only)
	rateMu      sync.Mutex
	rateSec     int64
	rateN       int

	timersMu sync.Mutex
	timers   []*time.Timer
}

// serveWS upgrades a websocket request. combined is true for /stream
// paths; stream is the name in /ws/<stream>.
func (mk *mkt) serveWS(w http.ResponseWriter, r *http.Request, combined bool, stream string) {
	s := mk.s
	var initial []string
	if stream != "" {
		initial = append(initial, stream)
	}
	if combined {
		if q := r.URL.Query().Get("streams"); q != "" {
			initial = append(initial, strings.Split(q, "/")...)
		}
	}
	for _, n := range initial {
		if !validStreamName(n) {
			writeAPIError(w, http.StatusBadRequest, -1100, "Invalid stream name: "+strconv.Quote(truncate(n, 64)))
			return
		}
	}
	if len(initial) > s.cfg.MaxStreams {
		writeAPIError(w, http.StatusBadRequest, -1100, "Too many streams: a connection can listen to at most "+strconv.Itoa(s.cfg.MaxStreams))
		return
	}
	s.connMu.Lock()
	if s.closed.Load() {
		s.connMu.Unlock()
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	s.connWG.Add(1)
	s.connMu.Unlock()
	defer s.connWG.Done()
	c := &conn{
		id: mk.nextConn.Add(1), mk: mk, s: s,
		remote: r.RemoteAddr, path: r.URL.Path, opened: time.Now(),
		q:      make(chan outFrame, s.cfg.SendQueue),
		stop:   make(chan struct{}),
		closed: make(chan struct{}),
		wake:   make(chan struct{}, 1),
	}
	c.malRng = rand.New(rand.NewPCG(s.cfg.Seed^0x3A1F, uint64(mk.m)<<32|uint64(c.id)))
	empty := map[string]struct{}{}
	c.set.Store(&empty)
	c.combined.Store(combined)
	c.cursor = mk.rep != nil && s.cfg.Speed == 0
	c.ctx, c.cancel = context.WithCancel(context.Background())
	defer c.cancel()
	hj := &batchHijacker{ResponseWriter: w}
	ws, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
		InsecureSkipVerify: true,
		OnPingReceived: func(context.Context, []byte) bool {
			c.incoming()
			return true
		},
		OnPongReceived: func(context.Context, []byte) { c.incoming() },
	})
	if err != nil {
		s.log.Debug("websocket accept failed", zap.String("market", mk.m.String()), zap.Error(err))
		return
	}
	c.ws, c.sock = ws, hj.conn
	ws.SetReadLimit(readLimit)
	mk.addConn(c)
	if s.closed.Load() { // Shutdown ran between the check above and addConn
		c.fail("server shutdown", closeGoingAway, false)
	}
	s.log.Debug("websocket connected", zap.String("market", mk.m.String()), zap.Int64("conn", c.id),
		zap.String("remote", c.remote), zap.String("path", c.path))
	if len(initial) > 0 {
		mk.subscribe(c, initial, nil)
	}
	c.schedule()

	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.readLoop() }()
	go func() {
		defer wg.Done()
		if c.cursor {
			c.cursorLoop()
		} else {
			c.writeLoop()
		}
	}()
	go func() { defer wg.Done(); c.pingLoop() }()
	<-c.stop
	c.timersMu.Lock()
	for _, t := range c.timers {
		t.Stop()
	}
	c.timersMu.Unlock()
	wg.Wait()
	<-c.closed // a graceful close sends its close frame before the TCP close
	_ = ws.CloseNow()
	mk.unsubscribe(c, c.streamsCopy())
	mk.removeConn(c)
	for drained := false; !drained; { // frames queued after the last write
		select {
		case f := <-c.q:
			f.release()
		default:
			drained = true
		}
	}
	reason := "closed"
	if p := c.reason.Load(); p != nil {
		reason = *p
	}
	s.met.disconnects.WithLabelValues(mk.m.String(), reason).Inc()
	s.log.Debug("websocket disconnected", zap.String("market", mk.m.String()), zap.Int64("conn", c.id), zap.String("reason", reason))
}

func (c *conn) streamsCopy() []string {
	c.subMu.Lock()
	defer c.subMu.Unlock()
	return append([]string(nil), c.streams...)
}

// fail ends the connection once: abruptly (TCP close, like a network drop)
// or with a close frame. It never blocks.
func (c *conn) fail(reason string, code websocket.StatusCode, abrupt bool) bool {
	if !c.dead.CompareAndSwap(false, true) {
		return false
	}
	c.reason.Store(&reason)
	close(c.stop)
	go func() {
		defer close(c.closed)
		if abrupt {
			_ = c.ws.CloseNow()
		} else {
			_ = c.ws.Close(code, reason)
		}
	}()
	return true
}

// failFault ends the connection and records why as a fault.
func (c *conn) failFault(typ string, injected bool, code websocket.StatusCode, abrupt bool) {
	if c.fail(typ, code, abrupt) {
		f := c.s.addFault(Fault{Market: c.mk.m, Type: typ, Injected: injected, Conn: c.id, Client: c.remote})
		lvl := c.s.log.Info
		if typ == FaultSlowConsumer {
			lvl = c.s.log.Warn
		}
		if ok, suppressed := c.s.limiter.Allow("disconnect:" + typ); ok {
			lvl("server closed a connection", zap.String("market", c.mk.m.String()), zap.String("reason", typ),
				zap.Int64("conn", c.id), zap.String("client", c.remote), zap.Int64("fault", f.Seq), zap.Int("suppressed", suppressed))
		}
	}
}

// enqueue queues a frame without blocking; a full queue means the client
// reads too slowly, and it is disconnected as Binance does.
func (c *conn) enqueue(f outFrame) {
	if c.dead.Load() {
		f.release()
		return
	}
	select {
	case c.q <- f:
	default:
		f.release()
		c.failFault(FaultSlowConsumer, false, closePolicy, true)
	}
}

func (c *conn) reply(b []byte) { c.enqueue(outFrame{buf: b, ctrl: true}) }

// incoming counts a client message (JSON, ping or pong) against the
// per-second limit; past it the connection is closed.
func (c *conn) incoming() {
	now := time.Now().Unix()
	c.rateMu.Lock()
	if now != c.rateSec {
		c.rateSec, c.rateN = now, 0
	}
	c.rateN++
	over := c.rateN > c.s.cfg.msgRate(c.mk.m)
	c.rateMu.Unlock()
	if over {
		c.failFault(FaultMsgRate, false, closePolicy, false)
	}
}

func (c *conn) readLoop() {
	defer c.fail("client closed", websocket.StatusNormalClosure, true)
	for {
		_, msg, err := c.ws.Read(c.ctx)
		if err != nil {
			return
		}
		c.incoming()
		if c.dead.Load() {
			return
		}
		c.handle(msg)
	}
}

// handle answers one live-subscription request.
func (c *conn) handle(msg []byte) {
	req, werr := parseRequest(msg)
	if werr != nil {
		c.reply(appendError(nil, werr, req.id))
		return
	}
	switch req.method {
	case "SUBSCRIBE":
		ok := appendResult(nil, nullID, req.id)
		if werr := c.mk.subscribe(c, req.params, func() { c.reply(ok) }); werr != nil {
			c.reply(appendError(nil, werr, req.id))
		}
	case "UNSUBSCRIBE":
		c.mk.unsubscribe(c, req.params)
		c.reply(appendResult(nil, nullID, req.id))
	case "LIST_SUBSCRIPTIONS":
		streams := c.streamsCopy()
		if streams == nil {
			streams = []string{}
		}
		list, _ := json.Marshal(streams)
		c.reply(appendResult(nil, list, req.id))
	case "SET_PROPERTY":
		c.combined.Store(req.value)
		c.reply(appendResult(nil, nullID, req.id))
	case "GET_PROPERTY":
		c.reply(appendResult(nil, strconv.AppendBool(nil, c.combined.Load()), req.id))
	}
}

// write sends one frame, applying stalls and malformed-frame faults, and
// records depth frames in the send log.
func (c *conn) write(f *outFrame) error {
	if f.ctrl {
		return c.ws.Write(context.Background(), websocket.MessageText, f.buf)
	}
	if !c.cursor && time.Now().UnixNano() < c.stallUntil.Load() {
		return nil // stalled: the frame is lost for this connection
	}
	p := f.buf
	if !c.combined.Load() {
		p = f.buf[f.dataOff:f.dataEnd]
	}
	bad := false
	if c.malformNext.Load() > 0 && c.malformNext.Add(-1) >= 0 {
		bad = true
	} else if r := c.s.cfg.MalformedRate; r > 0 && c.malRng.Float64() < r {
		bad = true
	}
	if bad {
		p = p[:len(p)/2] // a truncated object is never valid JSON
	}
	if err := c.ws.Write(context.Background(), websocket.MessageText, p); err != nil {
		return err
	}
	mk := c.mk
	switch f.kind {
	case md.Diff:
		mk.framesDiff.Inc()
	case md.Partial:
		mk.framesPartial.Inc()
	default:
		mk.framesOther.Inc()
	}
	if bad {
		mk.malformed.Inc()
	}
	if f.kind == md.Diff || f.kind == md.Partial {
		mk.sent.record(f.kind, f.sym, f.id, bad)
	}
	return nil
}

// writeLoop writes queued frames. A synthetic tick's frames are collected
// by the socket (batchConn) and written at the tick's end marker: they
// leave in large writes, and none is held after its tick is queued.
func (c *conn) writeLoop() {
	defer func() { _ = c.sock.release() }()
	for {
		select {
		case f := <-c.q:
			if f.tickEnd {
				if err := c.sock.release(); err != nil {
					c.fail("write failed", websocket.StatusInternalError, true)
					return
				}
				continue
			}
			if f.b != nil {
				c.sock.hold()
			}
			err := c.write(&f)
			f.release()
			if err != nil {
				c.fail("write failed", websocket.StatusInternalError, true)
				return
			}
		case <-c.stop:
			return
		}
	}
}

// pingLoop pings at the ping interval; a client that does not pong within
// the pong timeout is disconnected.
func (c *conn) pingLoop() {
	cfg := &c.s.cfg
	iv, timeout := cfg.pingInterval(c.mk.m), cfg.pongTimeout(c.mk.m)
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			if time.Now().UnixNano() < c.stallUntil.Load() {
				continue
			}
			go func() {
				ctx, cancel := context.WithTimeout(c.ctx, timeout)
				defer cancel()
				if err := c.ws.Ping(ctx); err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
					c.failFault(FaultPongTimeout, false, closePolicy, true)
				}
			}()
		}
	}
}

func (c *conn) addTimer(d time.Duration, fn func()) {
	c.timersMu.Lock()
	defer c.timersMu.Unlock()
	if c.dead.Load() {
		return
	}
	c.timers = append(c.timers, time.AfterFunc(d, fn))
}

// schedule arms the connection's age limit and its random faults. Each
// connection draws its fault times from its own seeded generator, so two
// connections have independent schedules.
func (c *conn) schedule() {
	cfg := &c.s.cfg
	age := cfg.MaxConnAge
	if cfg.ShutdownNotice > 0 {
		c.addTimer(age-cfg.ShutdownNotice, func() { c.shutdownNotice(false) })
	}
	c.addTimer(age, func() { c.failFault(FaultMaxAge, false, closeGoingAway, false) })
	rng := faultRNG(cfg.Seed, c.mk.m, c.id)
	if cfg.DropMean > 0 {
		c.addTimer(dropDelay(rng, cfg.DropMean), func() { c.failFault(FaultDrop, false, 0, true) })
	}
	if cfg.StallMean > 0 {
		var next func()
		next = func() {
			c.startStall(cfg.StallDuration, false)
			c.addTimer(cfg.StallDuration+time.Duration(rng.ExpFloat64()*float64(cfg.StallMean)), next)
		}
		c.addTimer(time.Duration(rng.ExpFloat64()*float64(cfg.StallMean)), next)
	}
}

// faultRNG is the generator of connection id's random fault schedule: a
// function of the seed, the market and the connection id only.
func faultRNG(seed uint64, m md.Market, id int64) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0xD809, uint64(m)<<32|uint64(id)))
}

// dropDelay draws the time to a random drop: exponential with mean.
func dropDelay(rng *rand.Rand, mean time.Duration) time.Duration {
	return time.Duration(rng.ExpFloat64() * float64(mean))
}

func (c *conn) startStall(d time.Duration, injected bool) {
	c.stallUntil.Store(time.Now().Add(d).UnixNano())
	c.s.addFault(Fault{Market: c.mk.m, Type: FaultStall, Injected: injected, Conn: c.id, Duration: d, Client: c.remote})
}

// shutdownNotice sends the serverShutdown event: {"e":"serverShutdown","E":ms}
// on raw connections, wrapped as stream "!serverShutdown" on combined ones.
func (c *conn) shutdownNotice(injected bool) {
	ev := strconv.AppendInt([]byte(`{"e":"serverShutdown","E":`), time.Now().UnixMilli(), 10)
	ev = append(ev, '}')
	if c.combined.Load() {
		ev = append(append([]byte(`{"stream":"!serverShutdown","data":`), ev...), '}')
	}
	c.reply(ev)
	c.s.addFault(Fault{Market: c.mk.m, Type: FaultShutdown, Injected: injected, Conn: c.id, Client: c.remote})
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
