// Package replay loads *.rec.gz recordings for binance-sim's replay mode
// and indexes every frame: its stream, the span of its data object (so a
// raw-stream client can be sent the data bytes exactly as recorded), its
// kind and its sequence ids.
package replay

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
)

// Frame is one recorded frame.
type Frame struct {
	RecvNs  int64
	Raw     []byte // the frame exactly as recorded: {"stream":..,"data":..}
	Stream  string // e.g. "btcusdt@depth@100ms"
	DataOff int    // Raw[DataOff:DataEnd] is the data value as recorded
	DataEnd int
	Kind    md.Kind // Diff, Partial, Snapshot (REST), or KindUnknown
	Symbol  string  // upper case; "" for streams without a symbol
	FirstID int64   // diff: U
	ID      int64   // diff and futures partial: u; spot partial and snapshot: lastUpdateId
}

// Data returns the recorded data value.
func (f *Frame) Data() []byte { return f.Raw[f.DataOff:f.DataEnd] }

// SnapshotSuffix names recorded REST snapshots: "<symbol>@depthSnapshot".
const SnapshotSuffix = "@depthSnapshot"

// ErrFrame reports a recorded frame that is not {"stream":..,"data":..}.
var ErrFrame = errors.New("not a combined-stream frame")

// Load reads recordings and returns their frames per market, merged in
// receive-time order (stable across files). The market comes from each
// file name's spot_/futures_ prefix.
func Load(paths []string) (map[md.Market][]Frame, error) {
	out := map[md.Market][]Frame{}
	for _, p := range paths {
		m, err := recording.MarketFromFileName(p)
		if err != nil {
			return nil, fmt.Errorf("load replay: %w", err)
		}
		frames, err := recording.ReadAll(p)
		if err != nil {
			return nil, fmt.Errorf("load replay %s: %w", p, err)
		}
		for _, rf := range frames {
			f, err := Index(rf.JSON)
			if err != nil {
				return nil, fmt.Errorf("load replay %s line %d: %w", p, rf.Line, err)
			}
			f.RecvNs = rf.RecvNs
			out[m] = append(out[m], f)
		}
	}
	for m := range out {
		slices.SortStableFunc(out[m], func(a, b Frame) int {
			switch {
			case a.RecvNs < b.RecvNs:
				return -1
			case a.RecvNs > b.RecvNs:
				return 1
			}
			return 0
		})
	}
	return out, nil
}

// Index parses one recorded frame (raw is kept, not copied).
func Index(raw []byte) (Frame, error) {
	f := Frame{Raw: raw}
	var streamOff, streamEnd int
	err := Fields(raw, func(key []byte, vOff, vEnd int) bool {
		switch string(key) {
		case "stream":
			streamOff, streamEnd = vOff, vEnd
		case "data":
			f.DataOff, f.DataEnd = vOff, vEnd
		}
		return true
	})
	if err != nil {
		return Frame{}, fmt.Errorf("%w: %w", ErrFrame, err)
	}
	if streamEnd == 0 || f.DataEnd == 0 || raw[streamOff] != '"' {
		return Frame{}, fmt.Errorf("%w: missing stream or data", ErrFrame)
	}
	s, err := strconv.Unquote(string(raw[streamOff:streamEnd]))
	if err != nil {
		return Frame{}, fmt.Errorf("%w: stream name: %w", ErrFrame, err)
	}
	f.Stream = s
	sym, rest, ok := strings.Cut(s, "@")
	if ok && !strings.HasPrefix(sym, "!") {
		f.Symbol = strings.ToUpper(sym)
	}
	f.Kind = KindOf(rest)
	if f.Kind != md.KindUnknown {
		data := f.Data()
		if len(data) == 0 || data[0] != '{' {
			return Frame{}, fmt.Errorf("%w: %s data is not an object", ErrFrame, s)
		}
		err := Fields(data, func(key []byte, vOff, vEnd int) bool {
			v := data[vOff:vEnd]
			switch string(key) {
			case "U":
				f.FirstID, _ = strconv.ParseInt(string(v), 10, 64)
			case "u", "lastUpdateId":
				f.ID, _ = strconv.ParseInt(string(v), 10, 64)
			}
			return true
		})
		if err != nil {
			return Frame{}, fmt.Errorf("%w: %s data: %w", ErrFrame, s, err)
		}
	}
	return f, nil
}

// KindOf classifies the part of a stream name after the first '@':
// "depth", "depth@100ms" are diffs, "depth20", "depth5@100ms" partials,
// "depthSnapshot" a REST snapshot.
func KindOf(rest string) md.Kind {
	r, ok := strings.CutPrefix(rest, "depth")
	if !ok {
		return md.KindUnknown
	}
	if r == "Snapshot" {
		return md.Snapshot
	}
	if r == "" || r[0] == '@' {
		return md.Diff
	}
	if r[0] >= '0' && r[0] <= '9' {
		return md.Partial
	}
	return md.KindUnknown
}
