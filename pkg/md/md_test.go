package md

import (
	"errors"
	"testing"
)

func TestSubjectRoundTrip(t *testing.T) {
	for _, m := range Markets {
		for _, k := range []Kind{Diff, Partial, Snapshot, Gap} {
			s := Subject(m, k, "BTCUSDT")
			gm, gk, sym, err := ParseSubject(s)
			if err != nil || gm != m || gk != k || sym != "BTCUSDT" {
				t.Errorf("ParseSubject(%q) = %v %v %q %v", s, gm, gk, sym, err)
			}
		}
	}
}

func TestParseSubject(t *testing.T) {
	tests := []struct {
		in      string
		wantErr error
	}{
		{"md.binance.spot.diff.BTCUSDT", nil},
		{"md.binance.futures.snapshot.ETHUSDT", nil},
		{"md.binance.spot.diff", ErrBadSubject},
		{"md.kraken.spot.diff.BTCUSDT", ErrBadSubject},
		{"md.binance.margin.diff.BTCUSDT", ErrUnknownMarket},
		{"md.binance.spot.trades.BTCUSDT", ErrUnknownKind},
		{"md.binance.spot.diff.BTCUSDT.17", nil},
		{"md.binance.spot.diff.BTCUSDT.64", ErrBadSubject},
		{"md.binance.spot.diff.BTC.USDT", ErrBadSubject},
		{"md.binance.spot.diff.BTCUSDT.1.2", ErrBadSubject},
		{"", ErrBadSubject},
	}
	for _, tt := range tests {
		_, _, _, err := ParseSubject(tt.in)
		if !errors.Is(err, tt.wantErr) {
			t.Errorf("ParseSubject(%q) err = %v, want %v", tt.in, err, tt.wantErr)
		}
	}
}

func TestControlSubject(t *testing.T) {
	s := ControlSubject(Futures, "BTCUSDT")
	if s != "ctl.snapshot.futures.BTCUSDT" {
		t.Fatalf("ControlSubject = %q", s)
	}
	m, sym, err := ParseControlSubject(s)
	if err != nil || m != Futures || sym != "BTCUSDT" {
		t.Fatalf("ParseControlSubject = %v %q %v", m, sym, err)
	}
	if _, _, err := ParseControlSubject("ctl.snapshot.spot"); !errors.Is(err, ErrBadSubject) {
		t.Fatalf("short control subject: err = %v", err)
	}
}

func TestMsgID(t *testing.T) {
	if got := MsgID(Spot, Diff, "BTCUSDT", 499869752); got != "spot.diff.BTCUSDT.499869752" {
		t.Fatalf("MsgID = %q", got)
	}
}

func TestValidSymbol(t *testing.T) {
	tests := map[string]bool{
		"BTCUSDT": true, "1000PEPEUSDT": true, "BTCUSD_PERP": true, "币安人生USDT": true,
		"": false, "btcusdt": false, "BTC.USDT": false, "BTC*": false, "BTC>": false, "BTC USDT": false,
		"BTC/USDT": false, "\x00": false, "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJKLMN": false,
	}
	for s, want := range tests {
		if got := ValidSymbol(s); got != want {
			t.Errorf("ValidSymbol(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestKindDir(t *testing.T) {
	for _, k := range DataKinds {
		got, ok := KindFromDir(k.Dir())
		if !ok || got != k {
			t.Errorf("KindFromDir(%q) = %v %v", k.Dir(), got, ok)
		}
	}
}

// FuzzParseSubject checks that subject parsing never panics and that what
// it accepts round-trips through Subject.
func FuzzParseSubject(f *testing.F) {
	for _, s := range []string{"md.binance.spot.diff.BTCUSDT", "md.binance.futures.gap.ETHUSDT.17", "md.binance.spot.diff", "ctl.snapshot.spot.BTCUSDT", "md.binance.spot.diff.币安人生USDT.3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, k, sym, err := ParseSubject(s)
		if err != nil {
			return
		}
		if !m.Valid() || !k.Valid() || sym == "" {
			t.Fatalf("ParseSubject(%q) accepted %v %v %q", s, m, k, sym)
		}
		if ValidSymbol(sym) {
			m2, k2, sym2, err := ParseSubject(Subject(m, k, sym))
			if err != nil || m2 != m || k2 != k || sym2 != sym {
				t.Fatalf("round trip of %q: %v %v %q %v", s, m2, k2, sym2, err)
			}
		}
		_, _, _ = ParseControlSubject(s)
	})
}
