package binancesim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// newSim starts a simulator on free loopback ports with a small universe;
// mut adjusts the configuration.
func newSim(t testing.TB, mut func(*Config)) *Sim {
	t.Helper()
	cfg := DefaultConfig()
	cfg.SpotAddr, cfg.FuturesAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.Symbols = "5"
	cfg.BookLevels = 1000
	if mut != nil {
		mut(&cfg)
	}
	s, err := New(cfg, Options{Log: zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))})
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close simulator: %v", err)
		}
	})
	return s
}

func dial(t testing.TB, url string, opts *websocket.DialOptions) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	c.SetReadLimit(1 << 22)
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

// read reads one message, failing the test after timeout.
func read(t testing.TB, c *websocket.Conn, timeout time.Duration) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func send(t testing.TB, c *websocket.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		t.Fatalf("write %s: %v", msg, err)
	}
}

// readUntilClosed reads until the server closes the connection and returns
// the close error; it fails the test after timeout.
func readUntilClosed(t testing.TB, c *websocket.Conn, timeout time.Duration) ([][]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var msgs [][]byte
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("connection still open after %v", timeout)
			}
			return msgs, err
		}
		msgs = append(msgs, b)
	}
}

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

func get(t testing.TB, url string) httpResult {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s body: %v", url, err)
	}
	return httpResult{resp.StatusCode, resp.Header, b}
}

// depthEvent is a diff event or a partial frame, from either market.
type depthEvent struct {
	E            int64       `json:"E"`
	T            int64       `json:"T"`
	Symbol       string      `json:"s"`
	FirstID      int64       `json:"U"`
	FinalID      int64       `json:"u"`
	PrevFinalID  *int64      `json:"pu"`
	Bids         [][2]string `json:"b"`
	Asks         [][2]string `json:"a"`
	LastUpdateID int64       `json:"lastUpdateId"`
	SnapBids     [][2]string `json:"bids"`
	SnapAsks     [][2]string `json:"asks"`
	EventType    string      `json:"e"`
}

type combinedFrame struct {
	Stream string          `json:"stream"`
	Data   json.RawMessage `json:"data"`
}

func decodeCombined(t testing.TB, b []byte) (string, depthEvent) {
	t.Helper()
	var f combinedFrame
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatalf("frame %.200s: %v", b, err)
	}
	var ev depthEvent
	if err := json.Unmarshal(f.Data, &ev); err != nil {
		t.Fatalf("data %.200s: %v", f.Data, err)
	}
	return f.Stream, ev
}
