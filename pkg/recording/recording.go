// Package recording reads the *.rec.gz line format of recorded Binance
// frames: one frame per line, "<receive time ns> <JSON frame>", gzip text.
//
// Websocket frames are stored as received from the combined-stream
// endpoint ({"stream":"btcusdt@depth@100ms","data":{...}}); REST snapshots
// are wrapped as {"stream":"<symbol>@depthSnapshot","data":<body>}.
package recording

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/depthcap/depthcap/pkg/md"
)

// MaxLine is the longest line the reader accepts (a limit-5000 REST body
// is about 300 KB).
const MaxLine = 16 << 20

// Frame is one recorded frame.
type Frame struct {
	RecvNs int64  // local receive time, ns since the Unix epoch
	JSON   []byte // the frame exactly as recorded; valid until the next Next call
	Line   int    // 1-based line number, for error messages
}

// ErrBadLine reports a line that is not "<ns> <json>".
var ErrBadLine = errors.New("bad recording line")

// Reader reads frames from a recording.
type Reader struct {
	sc   *bufio.Scanner
	line int
	c    io.Closer
}

// NewReader reads uncompressed lines from r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 1<<20), MaxLine)
	return &Reader{sc: sc}
}

// Open opens a recording; files ending in .gz are decompressed.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open recording: %w", err)
	}
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bufio.NewReaderSize(f, 1<<16))
		if err != nil {
			_ = f.Close()
			return nil, fmt.Errorf("open recording %s: %w", path, err)
		}
		r = zr
	}
	rd := NewReader(r)
	rd.c = f
	return rd, nil
}

// Next returns the next frame, or io.EOF at the end.
func (r *Reader) Next() (Frame, error) {
	for r.sc.Scan() {
		r.line++
		b := r.sc.Bytes()
		if len(bytes.TrimSpace(b)) == 0 {
			continue
		}
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return Frame{}, fmt.Errorf("%w %d: no space after the timestamp", ErrBadLine, r.line)
		}
		ns, err := strconv.ParseInt(string(b[:sp]), 10, 64)
		if err != nil {
			return Frame{}, fmt.Errorf("%w %d: timestamp: %w", ErrBadLine, r.line, err)
		}
		return Frame{RecvNs: ns, JSON: b[sp+1:], Line: r.line}, nil
	}
	if err := r.sc.Err(); err != nil {
		return Frame{}, fmt.Errorf("read recording line %d: %w", r.line+1, err)
	}
	return Frame{}, io.EOF
}

// Close closes the underlying file, if the reader opened one.
func (r *Reader) Close() error {
	if r.c == nil {
		return nil
	}
	return r.c.Close()
}

// MarketFromFileName derives the market from a recording's file name:
// "spot_..." or "futures_...".
func MarketFromFileName(path string) (md.Market, error) {
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "spot_"):
		return md.Spot, nil
	case strings.HasPrefix(base, "futures_"):
		return md.Futures, nil
	}
	return md.MarketUnknown, fmt.Errorf("%w: recording %q: the file name must start with spot_ or futures_", md.ErrUnknownMarket, base)
}

// ReadAll reads every frame of a recording into memory, copying the JSON.
func ReadAll(path string) ([]Frame, error) {
	r, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = r.Close() }()
	var out []Frame
	for {
		f, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		f.JSON = bytes.Clone(f.JSON)
		out = append(out, f)
	}
}
