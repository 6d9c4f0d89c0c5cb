package binancesim

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"time"
)

const (
	// batchMax is how many bytes a held connection collects before it
	// writes them anyway.
	batchMax = 128 << 10
	// closeFlushTimeout bounds how long a close waits to hand the
	// collected bytes to the kernel (a client that does not read).
	closeFlushTimeout = 200 * time.Millisecond
)

// batchConn is a websocket connection's socket as the websocket writes to
// it. coder/websocket flushes every message with its own write; while a
// synthetic tick's frames are written the connection is held, and they
// collect here and leave in writes of up to batchMax at the tick's end.
// On one machine, one write (and loopback segment) per frame made the
// simulator's and the collectors' CPU go to per-frame packet handling,
// which a real exchange's bursts (coalesced into full segments on the
// way) do not cost the receiver. Bytes a frame was written with are in
// the kernel by the time the connection closes (Close flushes first), as
// they were before, so the send log stays true.
type batchConn struct {
	net.Conn
	mu   sync.Mutex
	held bool
	buf  []byte
}

// Write collects p while the connection is held, else writes it.
func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held {
		b.buf = append(b.buf, p...)
		if len(b.buf) >= batchMax {
			if err := b.flushLocked(); err != nil {
				return 0, err
			}
		}
		return len(p), nil
	}
	if err := b.flushLocked(); err != nil {
		return 0, err
	}
	return b.Conn.Write(p)
}

func (b *batchConn) flushLocked() error {
	if len(b.buf) == 0 {
		return nil
	}
	_, err := b.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// hold starts collecting writes (again: a no-op).
func (b *batchConn) hold() {
	b.mu.Lock()
	b.held = true
	b.mu.Unlock()
}

// release writes what was collected and stops collecting (a no-op when
// not held and nothing is collected).
func (b *batchConn) release() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held = false
	return b.flushLocked()
}

// Close hands the collected bytes to the kernel (for at most
// closeFlushTimeout, which also ends a write blocked on a client that
// does not read) and closes the socket.
func (b *batchConn) Close() error {
	_ = b.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	b.mu.Lock()
	b.held = false
	_ = b.flushLocked()
	b.mu.Unlock()
	return b.Conn.Close()
}

// batchHijacker makes websocket.Accept write through a batchConn: it
// hands out the hijacked socket wrapped, with a write buffer of its own
// over it (the server's buffer writes to the bare socket).
type batchHijacker struct {
	http.ResponseWriter
	conn *batchConn
}

func (h *batchHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, http.ErrNotSupported
	}
	c, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := rw.Flush(); err != nil { // anything the server buffered goes first
		_ = c.Close()
		return nil, nil, err
	}
	h.conn = &batchConn{Conn: c}
	return h.conn, bufio.NewReadWriter(rw.Reader, bufio.NewWriterSize(h.conn, rw.Writer.Size())), nil
}
