package symbols

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Spec
		wantErr error
	}{
		{"top:50", Spec{Mode: Top, N: 50}, nil},
		{"all", Spec{Mode: All}, nil},
		{"ALL", Spec{Mode: All}, nil},
		{"btcusdt, ETHUSDT,BTCUSDT", Spec{Mode: List, Symbols: []string{"BTCUSDT", "ETHUSDT"}}, nil},
		{"", Spec{}, ErrBadSpec},
		{"top:0", Spec{}, ErrBadSpec},
		{"top:x", Spec{}, ErrBadSpec},
		{"BTC.USDT", Spec{}, ErrBadSpec},
		{",,", Spec{}, ErrBadSpec},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("Parse(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Parse(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
}

func TestShard(t *testing.T) {
	for _, bad := range []string{"2/2", "-1/2", "a/b", "1", "0/0"} {
		if _, err := ParseShard(bad); !errors.Is(err, ErrBadSpec) {
			t.Errorf("ParseShard(%q) err = %v", bad, err)
		}
	}
	// Every symbol is owned by exactly one of N shards.
	var syms []string
	for i := 0; i < 1000; i++ {
		syms = append(syms, fmt.Sprintf("SYM%dUSDT", i))
	}
	for _, n := range []int{1, 2, 3, 7} {
		total := 0
		for i := 0; i < n; i++ {
			part := Shard{i, n}.Filter(syms)
			total += len(part)
			if n > 1 && (len(part) < 1000/n/2 || len(part) > 1000/n*2) {
				t.Errorf("shard %d/%d has %d of 1000: unbalanced", i, n, len(part))
			}
		}
		if total != len(syms) {
			t.Errorf("N=%d: shards own %d symbols, want %d", n, total, len(syms))
		}
	}
}

func TestResolve(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/info", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `{"rateLimits":[{"rateLimitType":"REQUEST_WEIGHT","interval":"MINUTE","intervalNum":1,"limit":6000}],
		"symbols":[{"symbol":"BTCUSDT","status":"TRADING"},{"symbol":"ETHUSDT","status":"TRADING"},{"symbol":"OLDUSDT","status":"BREAK"},{"symbol":"BNBUSDT","status":"TRADING"}]}`)
	})
	mux.HandleFunc("/ticker", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, `[{"symbol":"BTCUSDT","quoteVolume":"100"},{"symbol":"ETHUSDT","quoteVolume":"300"},{"symbol":"OLDUSDT","quoteVolume":"999"},{"symbol":"BNBUSDT","quoteVolume":"200"}]`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	c := Client{Base: srv.URL, ExchangeInfoPath: "/info", TickerPath: "/ticker"}
	ctx := context.Background()
	top, err := c.Resolve(ctx, Spec{Mode: Top, N: 2})
	if err != nil || !reflect.DeepEqual(top, []string{"ETHUSDT", "BNBUSDT"}) {
		t.Fatalf("top:2 = %v, %v (OLDUSDT is not TRADING and must not count)", top, err)
	}
	all, err := c.Resolve(ctx, Spec{Mode: All})
	if err != nil || !reflect.DeepEqual(all, []string{"BNBUSDT", "BTCUSDT", "ETHUSDT"}) {
		t.Fatalf("all = %v, %v", all, err)
	}
	info, err := c.ExchangeInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rl, ok := info.WeightLimit(); !ok || rl.Limit != 6000 || rl.Window() != time.Minute {
		t.Fatalf("weight limit = %+v %v", rl, ok)
	}
	bad := Client{Base: srv.URL, ExchangeInfoPath: "/missing", TickerPath: "/ticker"}
	if _, err := bad.Resolve(ctx, Spec{Mode: All}); !errors.Is(err, ErrHTTP) {
		t.Fatalf("404: err = %v, want ErrHTTP", err)
	}
}

// FuzzParse checks that SYMBOLS parsing never panics and only accepts
// valid symbols and sane counts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"top:50", "all", "BTCUSDT,ETHUSDT", "top:", ",,", "top:99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		spec, err := Parse(s)
		if err != nil {
			return
		}
		switch spec.Mode {
		case Top:
			if spec.N < 1 || spec.N > 5000 {
				t.Fatalf("Parse(%q) accepted N=%d", s, spec.N)
			}
		case List:
			for _, sym := range spec.Symbols {
				if !md.ValidSymbol(sym) {
					t.Fatalf("Parse(%q) accepted symbol %q", s, sym)
				}
			}
		}
		_, _ = ParseShard(s)
	})
}
