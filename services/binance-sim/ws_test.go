package binancesim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/depthcap/depthcap/pkg/md"
)

// TestCombinedStreamRates proves a /stream client gets combined frames for
// both requested streams at about 10 per second each, that spot diffs chain
// with U == prev u + 1, and that partials carry 20 levels a side.
func TestCombinedStreamRates(t *testing.T) {
	s := newSim(t, nil)
	c := dial(t, s.WSURL(md.Spot)+"/stream?streams=btcusdt@depth@100ms/btcusdt@depth20@100ms", nil)
	counts := map[string]int{}
	var prevU int64
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		stream, ev := decodeCombined(t, read(t, c, 5*time.Second))
		counts[stream]++
		switch stream {
		case "btcusdt@depth@100ms":
			if ev.EventType != "depthUpdate" || ev.Symbol != "BTCUSDT" || ev.E == 0 {
				t.Fatalf("diff event %+v", ev)
			}
			if prevU != 0 && ev.FirstID != prevU+1 {
				t.Fatalf("spot diff U %d after u %d: want U == prev u + 1", ev.FirstID, prevU)
			}
			prevU = ev.FinalID
		case "btcusdt@depth20@100ms":
			if ev.LastUpdateID == 0 || len(ev.SnapBids) != 20 || len(ev.SnapAsks) != 20 {
				t.Fatalf("partial %+v", ev)
			}
		default:
			t.Fatalf("unexpected stream %q", stream)
		}
	}
	for _, st := range []string{"btcusdt@depth@100ms", "btcusdt@depth20@100ms"} {
		if n := counts[st]; n < 12 || n > 28 {
			t.Errorf("%s: %d frames in 2s, want about 20", st, n)
		}
	}
}

// TestSubscribeProtocol proves the live-subscription protocol: raw /ws
// plus SUBSCRIBE gets {"result":null,"id":1} and then raw payloads,
// LIST_SUBSCRIPTIONS and GET/SET_PROPERTY answer like Binance, and bad
// requests get Binance's error replies.
func TestSubscribeProtocol(t *testing.T) {
	s := newSim(t, func(c *Config) { c.SpotMsgRate = 100 })
	c := dial(t, s.WSURL(md.Spot)+"/ws", nil)
	send(t, c, `{"method":"SUBSCRIBE","params":["ethusdt@depth@100ms"],"id":1}`)
	if got := string(read(t, c, 5*time.Second)); got != `{"result":null,"id":1}` {
		t.Fatalf("subscribe reply %s", got)
	}
	var ev depthEvent
	if err := json.Unmarshal(read(t, c, 5*time.Second), &ev); err != nil || ev.EventType != "depthUpdate" || ev.Symbol != "ETHUSDT" {
		t.Fatalf("raw frame: %+v %v", ev, err)
	}
	// Replies come in order with the data; collect until each id answers.
	replies := map[string]string{}
	ask := func(msg, id string) string {
		send(t, c, msg)
		for replies[id] == "" {
			b := read(t, c, 5*time.Second)
			var r struct {
				ID json.RawMessage `json:"id"`
			}
			if json.Unmarshal(b, &r) == nil && r.ID != nil {
				replies[string(r.ID)] = string(b)
			}
		}
		return replies[id]
	}
	for _, tc := range []struct{ msg, id, want string }{
		{`{"method":"SUBSCRIBE","params":["btcusdt@depth20"],"id":"a2"}`, `"a2"`, `{"result":null,"id":"a2"}`},
		{`{"method":"LIST_SUBSCRIPTIONS","id":3}`, "3", `{"result":["ethusdt@depth@100ms","btcusdt@depth20"],"id":3}`},
		{`{"method":"UNSUBSCRIBE","params":["btcusdt@depth20"],"id":4}`, "4", `{"result":null,"id":4}`},
		{`{"method":"LIST_SUBSCRIPTIONS","id":5}`, "5", `{"result":["ethusdt@depth@100ms"],"id":5}`},
		{`{"method":"GET_PROPERTY","params":["combined"],"id":6}`, "6", `{"result":false,"id":6}`},
		{`{"method":"SUBSCRIBE","params":["not a stream"],"id":7}`, "7", `{"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":7}`},
		{`{"method":"SUBSCRIBEX","params":[],"id":8}`, "8", "{\"error\":{\"code\":2,\"msg\":\"Invalid request: unknown variant `SUBSCRIBEX`, expected one of `SUBSCRIBE`, `UNSUBSCRIBE`, `LIST_SUBSCRIPTIONS`, `SET_PROPERTY`, `GET_PROPERTY`\"},\"id\":8}"},
		{`{"method":"SET_PROPERTY","params":["combined","yes"],"id":9}`, "9", `{"error":{"code":1,"msg":"Invalid value type: expected Boolean"},"id":9}`},
		{`{"method":"SET_PROPERTY","params":["combined",true],"id":10}`, "10", `{"result":null,"id":10}`},
		{`{"method":"SUBSCRIBE","params":["x@depth"],"id":{}}`, "null", `{"error":{"code":2,"msg":"Invalid request: request ID must be an unsigned integer"},"id":null}`},
	} {
		if got := ask(tc.msg, tc.id); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.msg, got, tc.want)
		}
	}
	// After SET_PROPERTY combined=true, frames are wrapped.
	for {
		b := read(t, c, 5*time.Second)
		if strings.HasPrefix(string(b), `{"stream":"ethusdt@depth@100ms","data":{"e":"depthUpdate"`) {
			break
		}
	}
	send(t, c, `{"method":`)
	for {
		b := read(t, c, 5*time.Second)
		if strings.HasPrefix(string(b), `{"error":{"code":3,"msg":"Invalid JSON`) {
			break
		}
	}
}

// TestRawAndFuturesPaths proves /ws/<stream> sends the bare payload, and
// that USD-M streams are served under /public and the legacy paths with
// E, T and pu chaining.
func TestRawAndFuturesPaths(t *testing.T) {
	s := newSim(t, nil)
	raw := dial(t, s.WSURL(md.Spot)+"/ws/btcusdt@depth@100ms", nil)
	b := read(t, raw, 5*time.Second)
	if !strings.HasPrefix(string(b), `{"e":"depthUpdate","E":`) {
		t.Fatalf("raw frame %.100s", b)
	}
	legacy := strings.TrimSuffix(s.WSURL(md.Futures), "/public")
	for _, url := range []string{s.WSURL(md.Futures) + "/stream?streams=btcusdt@depth@100ms", legacy + "/stream?streams=btcusdt@depth@100ms"} {
		c := dial(t, url, nil)
		var prevU int64
		for i := 0; i < 5; i++ {
			stream, ev := decodeCombined(t, read(t, c, 5*time.Second))
			if stream != "btcusdt@depth@100ms" || ev.T == 0 || ev.T > ev.E || ev.PrevFinalID == nil {
				t.Fatalf("%s: futures frame %s %+v", url, stream, ev)
			}
			if prevU != 0 && *ev.PrevFinalID != prevU {
				t.Fatalf("%s: pu %d, prev u %d", url, *ev.PrevFinalID, prevU)
			}
			prevU = ev.FinalID
		}
	}
}

// TestMessageRateLimit proves a spot connection sending more than 5
// messages in a second is closed, and the fault is recorded.
func TestMessageRateLimit(t *testing.T) {
	s := newSim(t, nil)
	c := dial(t, s.WSURL(md.Spot)+"/ws", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := 0; i < 8; i++ {
		if err := c.Write(ctx, websocket.MessageText, []byte(fmt.Sprintf(`{"method":"LIST_SUBSCRIPTIONS","id":%d}`, i))); err != nil {
			break
		}
	}
	if _, err := readUntilClosed(t, c, 5*time.Second); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("close: %v, want policy violation", err)
	}
	waitFault(t, s, md.Spot, FaultMsgRate)
}

// TestMaxStreams proves a subscription past SIM_MAX_STREAMS is refused.
func TestMaxStreams(t *testing.T) {
	s := newSim(t, func(c *Config) { c.MaxStreams = 3 })
	c := dial(t, s.WSURL(md.Spot)+"/stream?streams=a@depth/b@depth", nil)
	send(t, c, `{"method":"SUBSCRIBE","params":["c@depth","d@depth"],"id":1}`)
	got := string(read(t, c, 5*time.Second))
	if !strings.HasPrefix(got, `{"error":{"code":2,"msg":"Invalid request: too many streams`) {
		t.Fatalf("reply %s", got)
	}
	send(t, c, `{"method":"SUBSCRIBE","params":["c@depth"],"id":2}`)
	if got := string(read(t, c, 5*time.Second)); got != `{"result":null,"id":2}` {
		t.Fatalf("reply %s", got)
	}
}

// TestPingPong proves the server pings at SIM_PING_INTERVAL: a client that
// answers stays connected, a client that never pongs is disconnected after
// SIM_PONG_TIMEOUT and the fault is recorded.
func TestPingPong(t *testing.T) {
	s := newSim(t, func(c *Config) {
		c.PingInterval, c.PongTimeout = 200*time.Millisecond, time.Second
		c.SpotMsgRate = 50
	})
	pings := make(chan struct{}, 100)
	good := dial(t, s.WSURL(md.Spot)+"/ws/ethusdt@depth@100ms", &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { pings <- struct{}{}; return true },
	})
	// A client answers pings only while it reads: keep reading the good one.
	frames := make(chan error, 1000)
	go func() {
		for {
			_, _, err := good.Read(context.Background())
			frames <- err
			if err != nil {
				return
			}
		}
	}()
	mute := dial(t, s.WSURL(md.Spot)+"/ws/ethusdt@depth@100ms", &websocket.DialOptions{
		OnPingReceived: func(context.Context, []byte) bool { return false }, // never pong
	})
	if _, err := readUntilClosed(t, mute, 10*time.Second); err == nil {
		t.Fatal("mute client not disconnected")
	}
	waitFault(t, s, md.Spot, FaultPongTimeout)
	// The answering client was pinged, ponged and is still served.
	for i := 0; i < 3; i++ {
		if err := <-frames; err != nil {
			t.Fatalf("good client: %v", err)
		}
	}
	select {
	case <-pings:
	default:
		t.Fatal("the good client was never pinged")
	}
	waitConns(t, s, md.Spot, 1)
}

// waitFault waits until a fault of type typ is recorded and returns it.
func waitFault(t testing.TB, s *Sim, m md.Market, typ string) Fault {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range s.Faults(m) {
			if f.Type == typ {
				return f
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s fault recorded: %+v", typ, s.Faults(m))
	return Fault{}
}

// waitConns waits until the market has n open connections.
func waitConns(t testing.TB, s *Sim, m md.Market, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(s.Conns(m)) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections open, want %d", len(s.Conns(m)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
