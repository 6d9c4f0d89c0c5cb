package ingest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/bus"
	"github.com/depthcap/depthcap/pkg/bus/bustest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/pkg/svc"
)

// nopPub hands out one real bus.Msg and accepts everything without
// publishing: the frame path measured up to the publish call.
type nopPub struct{ m *bus.Msg }

func (p *nopPub) NewMsg() *bus.Msg        { return p.m }
func (p *nopPub) NewMsgSize(int) *bus.Msg { return p.m }
func (p *nopPub) Recycle(*bus.Msg)        {}
func (p *nopPub) Enqueue(*bus.Msg) error  { return nil }
func (p *nopPub) Buffered() int64         { return 0 }

// recordedFrames returns the depth frames of a shared recording.
func recordedFrames(tb testing.TB, file, stream string) [][]byte {
	tb.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "testdata", "binance")
	if _, err := os.Stat(dir); err != nil {
		tb.Fatalf("shared Binance testdata not found at %s (from pkg/ingest): %v", dir, err)
	}
	fs, err := recording.ReadAll(filepath.Join(dir, file))
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	for _, f := range fs {
		if strings.Contains(string(f.JSON[:min(60, len(f.JSON))]), stream) {
			out = append(out, f.JSON)
		}
	}
	if len(out) == 0 {
		tb.Fatalf("no %s frames in %s", stream, file)
	}
	return out
}

// frameRig is one connection's frame path with a no-op publisher.
type frameRig struct {
	c      *wsConn
	st     *stream
	frames [][]byte
	i      int
}

func newFrameRig(tb testing.TB, m md.Market, symbol, file, stream string) *frameRig {
	tb.Helper()
	s := bustest.RunServer(tb)
	nc := bustest.Connect(tb, s.ClientURL())
	bp, err := bus.NewPublisher(nc, bus.PublisherConfig{MaxBytes: 1 << 20}, nil, zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = bp.Close(context.Background()) })
	cfg := DefaultConfig()
	cfg.Symbols = symbol
	cfg.SourceID = "bench-host"
	cfg.PartialLevels = 0
	if stream == "depth@0ms" {
		cfg.DiffSpeed = "0ms"
	}
	e, err := New(cfg, m, nil, svc.Env{}, Options{pub: &nopPub{m: bp.NewMsg()}})
	if err != nil {
		tb.Fatal(err)
	}
	ss := e.newSymbol(symbol)
	g := e.newGroup()
	g.syms = []*symState{ss}
	names, streams := g.membership()
	c := newWSConn(e, g, names, streams)
	g.primary.Store(c)
	return &frameRig{c: c, st: ss.diff, frames: recordedFrames(tb, file, stream)}
}

// next runs the frame path on the next recorded frame; at the end of the
// recording the stream state is reset so that every frame is published.
func (r *frameRig) next() {
	if r.i == len(r.frames) {
		r.i = 0
		r.st.mu.Lock()
		r.st.t = newTracker(md.Diff)
		r.st.mu.Unlock()
	}
	r.c.handle(r.frames[r.i], time.Now().UnixNano(), false)
	r.i++
}

var rigs = []struct {
	name, symbol, file, stream string
	m                          md.Market
}{
	{"spot", "ETHUSDT", "spot_ethusdt_2024-08-08T2354.rec.gz", "depth@100ms", md.Spot},
	{"futures", "ETHUSDT", "futures_ethusdt_2024-08-08T2354.rec.gz", "depth@0ms", md.Futures},
}

// BenchmarkFramePath measures the frame path from a frame in the read
// buffer to the publish call: Build (scan, envelope), sequence check,
// envelope marshal and dedup id into a bus.Msg, over real recorded
// frames (spot diff median 696 bytes).
func BenchmarkFramePath(b *testing.B) {
	for _, rc := range rigs {
		b.Run(rc.name, func(b *testing.B) {
			r := newFrameRig(b, rc.m, rc.symbol, rc.file, rc.stream)
			for range len(r.frames) {
				r.next() // warm up: symbol cache, message buffer
			}
			var bytes int64
			for _, f := range r.frames {
				bytes += int64(len(f))
			}
			b.SetBytes(bytes / int64(len(r.frames)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r.next()
			}
		})
	}
}

// TestFramePathNoAlloc proves the steady-state frame path allocates
// nothing, on real spot and futures frames.
func TestFramePathNoAlloc(t *testing.T) {
	for _, rc := range rigs {
		t.Run(rc.name, func(t *testing.T) {
			r := newFrameRig(t, rc.m, rc.symbol, rc.file, rc.stream)
			for range len(r.frames) {
				r.next()
			}
			if v := value(r.c.e.met.kind[md.Diff].published); v < float64(len(r.frames)) {
				t.Fatalf("%v of %d frames published: the rig does not exercise the publish path", v, len(r.frames))
			}
			if n := testing.AllocsPerRun(2000, r.next); n != 0 {
				t.Fatalf("frame path allocates %v times per frame", n)
			}
		})
	}
}

// readRig is a websocket client connection reading frames a local server
// sends as fast as it can.
func newReadRig(tb testing.TB, frame []byte) *wsConn {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer ws.CloseNow()
		for ws.Write(context.Background(), websocket.MessageText, frame) == nil {
		}
	}))
	tb.Cleanup(srv.Close)
	ws, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	ws.SetReadLimit(maxFrameBytes)
	tb.Cleanup(func() { _ = ws.CloseNow() })
	return &wsConn{ws: ws, buf: make([]byte, 0, initialBuf)}
}

// BenchmarkReadMessage measures reading one websocket message into the
// connection's reused buffer (server in the same process).
func BenchmarkReadMessage(b *testing.B) {
	frame := recordedFrames(b, "spot_ethusdt_2024-08-08T2354.rec.gz", "depth@100ms")[1]
	c := newReadRig(b, frame)
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.readMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReadMessageNoAlloc proves that reading a message into the reused
// buffer allocates nothing (the count includes the local server's
// writes), and returns exactly the bytes sent.
func TestReadMessageNoAlloc(t *testing.T) {
	frame := recordedFrames(t, "spot_ethusdt_2024-08-08T2354.rec.gz", "depth@100ms")[1]
	c := newReadRig(t, frame)
	for range 100 {
		got, err := c.readMessage()
		if err != nil || string(got) != string(frame) {
			t.Fatalf("read %q, %v", got, err)
		}
	}
	if n := testing.AllocsPerRun(1000, func() {
		if _, err := c.readMessage(); err != nil && err != io.EOF {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Fatalf("reading a message allocates %v times", n)
	}
}
