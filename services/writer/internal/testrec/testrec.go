// Package testrec turns the real Binance recordings of shared testdata into
// envelopes, as ingest publishes them, for the writer's tests and
// benchmarks. It builds envelopes from the fields binance.ScanFrame reads
// (pkg/frames will do the same for ingest).
package testrec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
)

// Dir is the shared recordings directory.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	// services/writer/internal/testrec -> /work/main -> /work/shared
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..", "..", "shared", "testdata", "binance")
}

// Path returns the path of a recording in Dir.
func Path(name string) string { return filepath.Join(Dir(), name) }

// Frame is one depth frame of a recording.
type Frame struct {
	Market md.Market
	Kind   md.Kind
	Symbol string
	RecvNs int64
	Data   []byte // the exact data object (payload)
	Seq    binance.Seq
	Levels int // partial stream levels
	Line   int
}

// ErrSkip is returned by Build for frames the project does not capture.
var ErrSkip = errors.New("not a depth frame")

// Build fills env from a combined-stream frame the way ingest does:
// routing and sequence fields from the scanner, the untouched data bytes as
// the payload.
func Build(m md.Market, frame []byte, recvNs int64, source string, env *envelope.Envelope) error {
	var h binance.Header
	if err := binance.ScanFrame(frame, &h); err != nil {
		return err
	}
	if h.Control != binance.ControlNone {
		return ErrSkip
	}
	info, err := binance.ParseStreamName(h.Stream)
	if err != nil {
		if errors.Is(err, binance.ErrNotDepth) {
			return ErrSkip
		}
		return err
	}
	*env = envelope.Envelope{
		Market:     m,
		Kind:       info.Kind,
		Symbol:     string(binance.AppendUpperSymbol(nil, info.Symbol)),
		ReceivedNs: recvNs,
		EventMs:    h.EventTime,
		TxMs:       h.TransactionTime,
		Source:     source,
		Payload:    h.Data,
		DepthLimit: int32(info.Levels),
	}
	if h.Has&binance.HasFirstUpdateID != 0 {
		env.FirstID, env.Has = h.FirstUpdateID, env.Has|envelope.HasFirst
	}
	if h.Has&binance.HasFinalUpdateID != 0 {
		env.FinalID, env.Has = h.FinalUpdateID, env.Has|envelope.HasFinal
	}
	if h.Has&binance.HasPrevFinalUpdateID != 0 {
		env.PrevID, env.Has = h.PrevFinalUpdateID, env.Has|envelope.HasPrev
	}
	if h.Has&binance.HasLastUpdateID != 0 {
		env.LastID, env.Has = h.LastUpdateID, env.Has|envelope.HasLast
	}
	return nil
}

// Load reads every depth frame of a recording (market from the file name).
func Load(name string) ([]Frame, error) {
	path := Path(name)
	m, err := recording.MarketFromFileName(path)
	if err != nil {
		return nil, err
	}
	all, err := recording.ReadAll(path)
	if err != nil {
		return nil, err
	}
	var out []Frame
	for _, f := range all {
		var env envelope.Envelope
		err := Build(m, f.JSON, f.RecvNs, "rec", &env)
		if errors.Is(err, ErrSkip) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, f.Line, err)
		}
		var h binance.Header
		if err := binance.ScanFrame(f.JSON, &h); err != nil {
			return nil, err
		}
		out = append(out, Frame{Market: m, Kind: env.Kind, Symbol: env.Symbol, RecvNs: f.RecvNs, Data: env.Payload, Seq: h.Seq, Levels: int(env.DepthLimit), Line: f.Line})
	}
	return out, nil
}

// Partials returns the real partial depth frames of single_messages.jsonl
// (spot @depth20 and USD-M @depth20): the only real partial samples.
func Partials() ([]Frame, error) {
	b, err := os.ReadFile(Path("single_messages.jsonl"))
	if err != nil {
		return nil, err
	}
	var out []Frame
	for i, line := range bytes.Split(b, []byte("\n")) {
		var rec struct {
			Kind   string `json:"msg_kind(test mod)"`
			Market string `json:"market(test fn)"`
			Raw    string `json:"raw"`
		}
		if len(bytes.TrimSpace(line)) == 0 || json.Unmarshal(line, &rec) != nil || rec.Kind != "l2_topk" {
			continue
		}
		var m md.Market
		switch rec.Market {
		case "spot":
			m = md.Spot
		case "linear_swap", "linear_future":
			m = md.Futures
		default:
			continue
		}
		var env envelope.Envelope
		if err := Build(m, []byte(rec.Raw), 0, "rec", &env); err != nil {
			return nil, fmt.Errorf("single_messages line %d: %w", i+1, err)
		}
		var h binance.Header
		if err := binance.ScanFrame([]byte(rec.Raw), &h); err != nil {
			return nil, err
		}
		data := append([]byte(nil), env.Payload...)
		out = append(out, Frame{Market: m, Kind: env.Kind, Symbol: env.Symbol, Data: data, Seq: h.Seq, Levels: int(env.DepthLimit), Line: i + 1})
	}
	return out, nil
}

// Recordings lists the *.rec.gz files of Dir.
func Recordings() []string {
	m, _ := filepath.Glob(filepath.Join(Dir(), "*.rec.gz"))
	out := make([]string, len(m))
	for i, p := range m {
		out[i] = filepath.Base(p)
	}
	return out
}

// Envelope returns the envelope of f with source and a receive-time shift.
func (f *Frame) Envelope(source string) envelope.Envelope {
	e := envelope.Envelope{Market: f.Market, Kind: f.Kind, Symbol: f.Symbol, ReceivedNs: f.RecvNs, EventMs: f.Seq.EventTime, TxMs: f.Seq.TransactionTime, Source: source, Payload: f.Data, DepthLimit: int32(f.Levels)}
	q := &f.Seq
	if q.Has&binance.HasFirstUpdateID != 0 {
		e.FirstID, e.Has = q.FirstUpdateID, e.Has|envelope.HasFirst
	}
	if q.Has&binance.HasFinalUpdateID != 0 {
		e.FinalID, e.Has = q.FinalUpdateID, e.Has|envelope.HasFinal
	}
	if q.Has&binance.HasPrevFinalUpdateID != 0 {
		e.PrevID, e.Has = q.PrevFinalUpdateID, e.Has|envelope.HasPrev
	}
	if q.Has&binance.HasLastUpdateID != 0 {
		e.LastID, e.Has = q.LastUpdateID, e.Has|envelope.HasLast
	}
	return e
}
