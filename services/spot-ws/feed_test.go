package spotws_test

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// feed is the throughput benchmark's exchange: a websocket server that
// writes a pre-encoded byte stream (every frame already a websocket text
// frame) in large chunks, as fast as the client reads. It stands for an
// exchange on another host: ingest pays for everything it does with the
// bytes (read syscalls, websocket framing, the frame path), while the
// sender costs next to nothing (a few thousand large socket writes), where
// binance-sim in the same process encodes and writes every frame on its
// own (about 2-3 µs of CPU per frame in that process, which the raw
// publishing side does not pay).
//
// It serves one connection at a time: the first /stream request gets the
// whole stream; a reconnect would get it again (the benchmark then fails
// on its frame count or its dropped-frames check).
type feed struct {
	srv    *httptest.Server
	stream []byte

	mu    sync.Mutex
	conns []net.Conn
}

// feedChunk is the size of one socket write of the feed.
const feedChunk = 256 << 10

// newFeed encodes frames as unmasked server-to-client websocket text
// frames (RFC 6455 5.2) and serves them at /stream.
func newFeed(tb testing.TB, frames [][]byte) *feed {
	tb.Helper()
	n := 0
	for _, f := range frames {
		n += len(f) + 10
	}
	f := &feed{stream: make([]byte, 0, n)}
	for _, fr := range frames {
		f.stream = appendWSText(f.stream, fr)
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(f.close)
	return f
}

// appendWSText appends p as one final, unmasked text frame.
func appendWSText(dst, p []byte) []byte {
	dst = append(dst, 0x81) // FIN, opcode text
	switch n := len(p); {
	case n < 126:
		dst = append(dst, byte(n))
	case n <= 0xffff:
		dst = append(dst, 126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	return append(dst, p...)
}

// wsURL is the base URL ingest dials (it appends /stream?streams=...).
func (f *feed) wsURL() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") }

// serve answers the websocket handshake, writes the stream, then waits
// for the client's close frame and answers it.
func (f *feed) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/stream" || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.NotFound(w, r)
		return
	}
	h := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, brw, err := w.(http.Hijacker).Hijack()
	if err != nil {
		return
	}
	f.mu.Lock()
	f.conns = append(f.conns, conn)
	f.mu.Unlock()
	defer conn.Close()
	_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(h[:]) + "\r\n\r\n")
	if brw.Flush() != nil {
		return
	}
	for off := 0; off < len(f.stream); off += feedChunk {
		if _, err := conn.Write(f.stream[off:min(off+feedChunk, len(f.stream))]); err != nil {
			return
		}
	}
	// The client sends nothing but its close frame: answer it, so that
	// its graceful close does not wait for a timeout.
	if _, err := brw.ReadByte(); err == nil {
		_, _ = conn.Write([]byte{0x88, 0x00})
	}
	_, _ = io.Copy(io.Discard, bufio.NewReader(conn))
}

func (f *feed) close() {
	f.srv.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range f.conns {
		_ = c.Close()
	}
}

// connections is how many websocket connections the feed served.
func (f *feed) connections() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns)
}
