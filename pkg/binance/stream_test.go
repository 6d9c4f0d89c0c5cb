package binance

import (
	"errors"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

func TestParseStreamName(t *testing.T) {
	tests := []struct {
		name    string
		sym     string
		kind    md.Kind
		levels  int
		speed   string
		wantErr error
	}{
		{"btcusdt@depth", "btcusdt", md.Diff, 0, "", nil},
		{"btcusdt@depth@100ms", "btcusdt", md.Diff, 0, "100ms", nil},
		{"ethusdt@depth@0ms", "ethusdt", md.Diff, 0, "0ms", nil},
		{"ethusdt@depth@500ms", "ethusdt", md.Diff, 0, "500ms", nil},
		{"btcusdt@depth@1000ms", "btcusdt", md.Diff, 0, "1000ms", nil},
		{"btcusdt@depth5", "btcusdt", md.Partial, 5, "", nil},
		{"btcusdt@depth10@100ms", "btcusdt", md.Partial, 10, "100ms", nil},
		{"btcusdt@depth20@100ms", "btcusdt", md.Partial, 20, "100ms", nil},
		{"runeusd_perp@depth5", "runeusd_perp", md.Partial, 5, "", nil},
		{"btcusd_210625@depth@100ms", "btcusd_210625", md.Diff, 0, "100ms", nil},
		{"nknusdt@depthSnapshot", "nknusdt", md.Snapshot, 0, "", nil},
		{"币安人生usdt@depth@100ms", "币安人生usdt", md.Diff, 0, "100ms", nil},

		{"btcusdt@aggTrade", "", 0, 0, "", ErrNotDepth},
		{"btcusdt@trade", "", 0, 0, "", ErrNotDepth},
		{"btcusdt@bookTicker", "", 0, 0, "", ErrNotDepth},
		{"btcusdt@kline_1m", "", 0, 0, "", ErrNotDepth},
		{"btcusdt@markPrice", "", 0, 0, "", ErrNotDepth},
		{"!bookTicker", "", 0, 0, "", ErrNotDepth},
		{"!markPrice@arr", "", 0, 0, "", ErrNotDepth},
		{"BTCUSDT_C@TRADE_ALL", "", 0, 0, "", ErrNotDepth},
		{"btcusdt@depthX", "", 0, 0, "", ErrNotDepth},
		{"btcusdt@dept", "", 0, 0, "", ErrNotDepth},
		{"listenkey123", "", 0, 0, "", ErrNotDepth},
		{"", "", 0, 0, "", ErrNotDepth},

		{"@depth", "", 0, 0, "", ErrBadStream},
		{"BTCUSDT@depth", "", 0, 0, "", ErrBadStream},
		{"btc.usdt@depth", "", 0, 0, "", ErrBadStream},
		{"btc usdt@depth", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth7", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth05", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth200", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth@", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth@100", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth@ms", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth@0100ms", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth@10000ms", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth@1x0ms", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth20x", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depth@100ms@100ms", "", 0, 0, "", ErrBadStream},
		{"btcusdt@depthSnapshot@100ms", "", 0, 0, "", ErrBadStream},
		{"btc\xffusdt@depth", "", 0, 0, "", ErrBadStream},
		{"btc€usdt@depth", "", 0, 0, "", ErrBadStream}, // a symbol, not a letter
		{"btcÉusdt@depth", "", 0, 0, "", ErrBadStream}, // upper case
		{"btcéusdt@depth", "btcéusdt", md.Diff, 0, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := ParseStreamName([]byte(tt.name))
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr != nil {
				return
			}
			if string(info.Symbol) != tt.sym || info.Kind != tt.kind || info.Levels != tt.levels || string(info.Speed) != tt.speed {
				t.Fatalf("got {%s %v %d %s}, want {%s %v %d %s}", info.Symbol, info.Kind, info.Levels, info.Speed,
					tt.sym, tt.kind, tt.levels, tt.speed)
			}
			if !md.ValidSymbol(string(AppendUpperSymbol(nil, info.Symbol))) {
				t.Fatalf("upper-case symbol %q is not a valid md symbol", AppendUpperSymbol(nil, info.Symbol))
			}
		})
	}
}

func TestParseStreamNameSubslices(t *testing.T) {
	name := []byte("btcusdt@depth20@100ms")
	info, err := ParseStreamName(name)
	if err != nil {
		t.Fatal(err)
	}
	if &info.Symbol[0] != &name[0] || &info.Speed[0] != &name[16] {
		t.Fatal("Symbol and Speed must alias the name")
	}
}

func TestAppendUpperSymbol(t *testing.T) {
	tests := []struct{ dst, in, want string }{
		{"", "btcusdt", "BTCUSDT"},
		{"md.", "btcusd_perp", "md.BTCUSD_PERP"},
		{"", "1000shibusdt", "1000SHIBUSDT"},
		{"", "币安人生usdt", "币安人生USDT"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := string(AppendUpperSymbol([]byte(tt.dst), []byte(tt.in))); got != tt.want {
			t.Errorf("AppendUpperSymbol(%q, %q) = %q, want %q", tt.dst, tt.in, got, tt.want)
		}
	}
}

// TestStreamFastPathAllocs proves the per-frame stream handling allocates
// nothing, for depth streams and for the frequent non-depth ones.
func TestStreamFastPathAllocs(t *testing.T) {
	names := [][]byte{[]byte("btcusdt@depth@100ms"), []byte("btcusdt@depth20@100ms"), []byte("ethusdt@bookTicker")}
	buf := make([]byte, 0, 64)
	allocs := testing.AllocsPerRun(100, func() {
		for _, n := range names {
			info, err := ParseStreamName(n)
			if err == nil {
				buf = AppendUpperSymbol(buf[:0], info.Symbol)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}
