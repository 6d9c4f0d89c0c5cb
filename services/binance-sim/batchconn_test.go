package binancesim

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// recConn records the writes a batchConn makes to its socket.
type recConn struct {
	net.Conn
	writes [][]byte
	closed bool
}

func (r *recConn) Write(p []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(p))
	return len(p), nil
}
func (r *recConn) SetWriteDeadline(time.Time) error { return nil }
func (r *recConn) Close() error                     { r.closed = true; return nil }

func TestBatchConnCollectsWhileHeld(t *testing.T) {
	rc := &recConn{}
	b := &batchConn{Conn: rc}
	mustWrite := func(s string) {
		t.Helper()
		if n, err := b.Write([]byte(s)); err != nil || n != len(s) {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	mustWrite("a")
	if len(rc.writes) != 1 {
		t.Fatalf("not held: %d writes, want 1 (written through)", len(rc.writes))
	}
	b.hold()
	mustWrite("b")
	mustWrite("c")
	if len(rc.writes) != 1 {
		t.Fatalf("held: %d writes, want nothing new before release", len(rc.writes))
	}
	if err := b.release(); err != nil {
		t.Fatal(err)
	}
	if len(rc.writes) != 2 || string(rc.writes[1]) != "bc" {
		t.Fatalf("release wrote %q, want one write \"bc\"", rc.writes[1:])
	}
	// Past batchMax a held connection writes what it has.
	b.hold()
	big := bytes.Repeat([]byte("x"), batchMax-1)
	if _, err := b.Write(big); err != nil {
		t.Fatal(err)
	}
	mustWrite("yz")
	if len(rc.writes) != 3 || len(rc.writes[2]) != batchMax+1 {
		t.Fatalf("%d writes, want the full batch (%d bytes) written at batchMax", len(rc.writes), batchMax+1)
	}
	// Close writes what is held before closing.
	mustWrite("end")
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if !rc.closed || string(rc.writes[len(rc.writes)-1]) != "end" {
		t.Fatalf("close: closed %v, last write %q; want \"end\" written, then closed", rc.closed, rc.writes[len(rc.writes)-1])
	}
}

// A client that does not read must not keep a close waiting: Close gives
// up on the held bytes after closeFlushTimeout, and a write blocked on the
// full socket ends with it.
func TestBatchConnCloseDoesNotWaitForAStuckClient(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close() // never reads
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b := &batchConn{Conn: srv}
	b.hold()
	writeDone := make(chan error, 1)
	go func() {
		chunk := make([]byte, 64<<10)
		for {
			if _, err := b.Write(chunk); err != nil {
				writeDone <- err
				return
			}
		}
	}()
	time.Sleep(300 * time.Millisecond) // the socket buffers fill; the writer blocks
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close still waiting on a client that does not read")
	}
	select {
	case err := <-writeDone:
		if err == nil {
			t.Fatal("the blocked write ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write blocked on the full socket did not end with the close")
	}
}
