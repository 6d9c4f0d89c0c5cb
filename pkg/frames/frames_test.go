package frames

import (
	"bytes"
	"encoding/json"
	"errors"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/depthcap/depthcap/pkg/binance"
	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
)

func testdata() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "testdata", "binance")
}

// TestRecordings builds an envelope from every frame of every real
// recording: depth frames become envelopes whose payload is the recorded
// data object byte for byte and whose dedup id follows DESIGN section 2;
// other streams are ErrNotDepth; nothing is malformed.
func TestRecordings(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(testdata(), "*.rec.gz"))
	if len(files) < 6 {
		t.Fatalf("found %d recordings in %s, want 6", len(files), testdata())
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			m, err := recording.MarketFromFileName(f)
			if err != nil {
				t.Fatal(err)
			}
			frames, err := recording.ReadAll(f)
			if err != nil {
				t.Fatal(err)
			}
			b := NewBuilder(m, "test")
			var h binance.Header
			var env envelope.Envelope
			depth := 0
			for _, fr := range frames {
				err := b.Build(fr.JSON, fr.RecvNs, &h, &env)
				if errors.Is(err, binance.ErrNotDepth) {
					continue
				}
				if err != nil {
					t.Fatalf("line %d: %v", fr.Line, err)
				}
				depth++
				var raw struct {
					Stream string          `json:"stream"`
					Data   json.RawMessage `json:"data"`
				}
				if err := json.Unmarshal(fr.JSON, &raw); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(env.Payload, raw.Data) {
					t.Fatalf("line %d: payload differs from the recorded data object", fr.Line)
				}
				id, err := env.AppendMsgID(nil)
				if err != nil {
					t.Fatalf("line %d: %v", fr.Line, err)
				}
				want, ok := h.DedupID(m, env.Kind)
				if !ok || string(id) != md.MsgID(m, env.Kind, env.Symbol, want) {
					t.Fatalf("line %d: dedup id %s, want id %d", fr.Line, id, want)
				}
				if env.ReceivedNs != fr.RecvNs || env.Market != m {
					t.Fatalf("line %d: envelope %+v", fr.Line, env)
				}
			}
			if depth == 0 {
				t.Fatal("no depth frames")
			}
		})
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name    string
		m       md.Market
		frame   string
		wantErr error
	}{
		{"spot diff", md.Spot, `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}`, nil},
		{"subscribe reply", md.Spot, `{"result":null,"id":1}`, ErrControl},
		{"trade stream", md.Spot, `{"stream":"btcusdt@trade","data":{"e":"trade"}}`, binance.ErrNotDepth},
		{"symbol mismatch", md.Spot, `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}}`, ErrSymbolMismatch},
		{"futures diff without pu", md.Futures, `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}}`, binance.ErrMissingField},
		{"truncated", md.Spot, `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpd`, binance.ErrMalformed},
		{"U above u", md.Spot, `{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":3,"u":2,"b":[],"a":[]}}`, binance.ErrImpossibleValue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewBuilder(tt.m, "s")
			var h binance.Header
			var env envelope.Envelope
			err := b.Build([]byte(tt.frame), 1, &h, &env)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Build err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// BenchmarkBuild measures the frame path up to the envelope: it must not
// allocate in steady state.
func BenchmarkBuild(b *testing.B) {
	frames, err := recording.ReadAll(filepath.Join(testdata(), "spot_2021-10-12_4sym.rec.gz"))
	if err != nil {
		b.Fatal(err)
	}
	var depth [][]byte
	bl := NewBuilder(md.Spot, "bench")
	var h binance.Header
	var env envelope.Envelope
	for _, fr := range frames {
		if bl.Build(fr.JSON, 1, &h, &env) == nil {
			depth = append(depth, fr.JSON)
		}
	}
	buf := make([]byte, 0, 1<<16)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		f := depth[i%len(depth)]
		if err := bl.Build(f, 1, &h, &env); err != nil {
			b.Fatal(err)
		}
		buf = env.AppendMarshal(buf[:0])
		buf, _ = env.AppendMsgID(buf)
	}
}
