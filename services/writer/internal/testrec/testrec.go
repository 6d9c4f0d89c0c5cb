// Package testrec turns the real Binance recordings of shared testdata into
// envelopes for the writer's tests and benchmarks, exactly as ingest
// publishes them: every envelope comes from pkg/frames' Builder. What
// frames does not do lives here: locating the recordings, reading the
// partial depth samples of single_messages.jsonl, renaming a frame's
// symbol to multiply the data, and turning envelopes into stream
// messages.
package testrec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/frames"
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

// Source is the collector id the envelopes of this package carry.
const Source = "rec"

// Frame is one depth frame of a recording and its envelope.
type Frame struct {
	Env  envelope.Envelope // as ingest publishes it; Payload aliases the recording
	Line int
}

// Load reads every depth frame of a recording (market from the file name)
// and builds its envelope with frames.Builder. Frames of streams the
// project does not capture are skipped.
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
	b := frames.NewBuilder(m, Source)
	var h binance.Header
	var out []Frame
	for _, f := range all {
		var env envelope.Envelope
		err := b.Build(f.JSON, f.RecvNs, &h, &env)
		if errors.Is(err, binance.ErrNotDepth) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", name, f.Line, err)
		}
		out = append(out, Frame{Env: env, Line: f.Line})
	}
	return out, nil
}

// Partials returns the real partial depth frames of single_messages.jsonl
// (spot @depth20 and USD-M @depth20): the only real partial samples. Their
// receive time is 0.
func Partials() ([]Frame, error) {
	b, err := os.ReadFile(Path("single_messages.jsonl"))
	if err != nil {
		return nil, err
	}
	builders := map[md.Market]*frames.Builder{md.Spot: frames.NewBuilder(md.Spot, Source), md.Futures: frames.NewBuilder(md.Futures, Source)}
	var h binance.Header
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
		if err := builders[m].Build([]byte(rec.Raw), 0, &h, &env); err != nil {
			return nil, fmt.Errorf("single_messages line %d: %w", i+1, err)
		}
		out = append(out, Frame{Env: env, Line: i + 1})
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

// SmallRecordings are the 2021 four-symbol recordings: symbols with small
// diff events (2.4 to 14 levels per event, 9 on average), as most of the
// market has.
func SmallRecordings() []string {
	return []string{"futures_2021-04-17_4sym.rec.gz", "futures_2021-07-22_4sym.rec.gz", "spot_2021-08-14_4sym.rec.gz", "spot_2021-10-12_4sym.rec.gz"}
}

// LargeRecordings are the 2024 ETHUSDT recordings: diff events of 42
// (spot) and 65 (USD-M) levels on average.
func LargeRecordings() []string {
	return []string{"spot_ethusdt_2024-08-08T2354.rec.gz", "futures_ethusdt_2024-08-08T2354.rec.gz"}
}

// Renamed returns env under another symbol: the payload's "s" field is
// renamed too (a copy), so that the result is a consistent stream of its
// own with the same ids.
func Renamed(env envelope.Envelope, sym string) envelope.Envelope {
	env.Payload = bytes.Replace(env.Payload, []byte(`"s":"`+env.Symbol+`"`), []byte(`"s":"`+sym+`"`), 1)
	env.Symbol = sym
	return env
}

// Envelopes loads the depth frames of the named recordings, keeps those
// for which keep returns true (nil: all), and returns their envelopes
// repeated reps times, the k-th copy under the symbols <SYMBOL>_R<k>,
// sorted by receive time (stable).
func Envelopes(names []string, reps int, keep func(*envelope.Envelope) bool) ([]envelope.Envelope, error) {
	var base []envelope.Envelope
	for _, n := range names {
		fs, err := Load(n)
		if err != nil {
			return nil, err
		}
		for i := range fs {
			if keep == nil || keep(&fs[i].Env) {
				base = append(base, fs[i].Env)
			}
		}
	}
	out := make([]envelope.Envelope, 0, len(base)*reps)
	for k := 0; k < reps; k++ {
		for _, e := range base {
			if k > 0 {
				e = Renamed(e, fmt.Sprintf("%s_R%d", e.Symbol, k))
			}
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b envelope.Envelope) int {
		switch {
		case a.ReceivedNs < b.ReceivedNs:
			return -1
		case a.ReceivedNs > b.ReceivedNs:
			return 1
		}
		return 0
	})
	return out, nil
}

// Subject is the stored MARKETDATA subject of env (partition token 0:
// tests of the core do not shard).
func Subject(env *envelope.Envelope) string {
	return md.Subject(env.Market, env.Kind, env.Symbol) + ".0"
}

// Synth generates an endless, consistent spot diff stream for one
// symbol: ids chain (U = previous u + 1), times advance, and the levels of
// each event are the levels of a real diff event (cycling through the
// given recordings' events). It is for benchmarks that must run longer
// than the recordings without repeating ids.
type Synth struct {
	Symbol  string
	subject string
	tails   [][]byte // `"b":[...],"a":[...]}` of real events
	next    int
	lastU   int64
	payload []byte
}

// NewSynths returns n generators (symbols SYN<i>USDT) drawing their
// levels from the diff events of the named recordings, each starting at a
// different event.
func NewSynths(n int, names []string) ([]*Synth, error) {
	envs, err := Envelopes(names, 1, func(e *envelope.Envelope) bool { return e.Kind == md.Diff })
	if err != nil {
		return nil, err
	}
	var tails [][]byte
	for i := range envs {
		p := envs[i].Payload
		if k := bytes.Index(p, []byte(`"b":`)); k >= 0 {
			tails = append(tails, p[k:])
		}
	}
	if len(tails) == 0 {
		return nil, errors.New("no diff events")
	}
	out := make([]*Synth, n)
	for i := range out {
		sym := fmt.Sprintf("SYN%dUSDT", i)
		out[i] = &Synth{Symbol: sym, subject: md.Subject(md.Spot, md.Diff, sym) + ".0", tails: tails, next: i * 7 % len(tails), lastU: 1_000_000}
	}
	return out, nil
}

// Subject is the stored subject of the generator's messages.
func (s *Synth) Subject() string { return s.subject }

// Next appends the marshaled envelope of the next event, received at
// recvNs, to dst.
func (s *Synth) Next(recvNs int64, dst []byte) []byte {
	tail := s.tails[s.next]
	s.next = (s.next + 1) % len(s.tails)
	first, final := s.lastU+1, s.lastU+1+int64(s.next%3)
	s.lastU = final
	ms := recvNs / 1e6
	p := append(s.payload[:0], `{"e":"depthUpdate","E":`...)
	p = strconv.AppendInt(p, ms, 10)
	p = append(p, `,"s":"`...)
	p = append(p, s.Symbol...)
	p = append(p, `","U":`...)
	p = strconv.AppendInt(p, first, 10)
	p = append(p, `,"u":`...)
	p = strconv.AppendInt(p, final, 10)
	p = append(p, ',')
	p = append(p, tail...)
	s.payload = p
	env := envelope.Envelope{Market: md.Spot, Kind: md.Diff, Symbol: s.Symbol, ReceivedNs: recvNs, EventMs: ms, Source: Source,
		Payload: p, FirstID: first, FinalID: final, Has: envelope.HasFirst | envelope.HasFinal}
	return env.AppendMarshal(dst)
}
