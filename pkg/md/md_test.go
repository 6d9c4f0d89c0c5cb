package md

import (
	"encoding/json"
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

// TestParseSnapshotRequest proves the control body contract: absent or
// old bodies are the zero condition, the ingest's body round-trips, and
// every malformed body is ErrBadPayload.
func TestParseSnapshotRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    SnapshotRequest
		wantErr error
	}{
		{"empty", "", SnapshotRequest{}, nil},
		{"white space", " \n\t", SnapshotRequest{}, nil},
		{"null", "null", SnapshotRequest{}, nil},
		{"old ingest body", `{"market":"spot","symbol":"BTCUSDT","source":"a","reason":"gap"}`,
			SnapshotRequest{Market: "spot", Symbol: "BTCUSDT", Source: "a", Reason: "gap"}, nil},
		{"min_update_id", `{"market":"spot","symbol":"BTCUSDT","min_update_id":9007199254740993}`,
			SnapshotRequest{Market: "spot", Symbol: "BTCUSDT", MinUpdateID: 9007199254740993}, nil},
		{"unknown fields ignored", `{"min_update_id":5,"later":{"x":[1]}}`, SnapshotRequest{MinUpdateID: 5}, nil},
		{"not json", `min_update_id=5`, SnapshotRequest{}, ErrBadPayload},
		{"array", `[5]`, SnapshotRequest{}, ErrBadPayload},
		{"string id", `{"min_update_id":"5"}`, SnapshotRequest{}, ErrBadPayload},
		{"fraction", `{"min_update_id":5.5}`, SnapshotRequest{}, ErrBadPayload},
		{"exponent", `{"min_update_id":5e3}`, SnapshotRequest{}, ErrBadPayload},
		{"overflow", `{"min_update_id":9223372036854775808}`, SnapshotRequest{}, ErrBadPayload},
		{"negative", `{"min_update_id":-1}`, SnapshotRequest{}, ErrBadPayload},
		{"trailing data", `{"min_update_id":5}{}`, SnapshotRequest{}, ErrBadPayload},
		{"other market", `{"market":"futures"}`, SnapshotRequest{}, ErrBadPayload},
		{"other symbol", `{"symbol":"ETHUSDT"}`, SnapshotRequest{}, ErrBadPayload},
		{"lower-case symbol", `{"symbol":"btcusdt"}`, SnapshotRequest{}, ErrBadPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSnapshotRequest([]byte(tt.body), Spot, "BTCUSDT")
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// FuzzParseSnapshotRequest checks that the control body decoder never
// panics, that what it accepts obeys the contract, and that it
// round-trips through encoding/json.
func FuzzParseSnapshotRequest(f *testing.F) {
	for _, s := range []string{"", `{"market":"spot","symbol":"BTCUSDT","source":"a","reason":"gap","min_update_id":9}`,
		`{"min_update_id":-1}`, `{"min_update_id":1e2}`, `[`, "null", `{"symbol":"币安人生USDT"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseSnapshotRequest(body, Spot, "BTCUSDT")
		if err != nil {
			if !errors.Is(err, ErrBadPayload) {
				t.Fatalf("error %v does not wrap ErrBadPayload", err)
			}
			return
		}
		if r.MinUpdateID < 0 || (r.Market != "" && r.Market != "spot") || (r.Symbol != "" && r.Symbol != "BTCUSDT") {
			t.Fatalf("accepted %+v from %q", r, body)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if r2, err := ParseSnapshotRequest(b, Spot, "BTCUSDT"); err != nil || r2 != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, r2, err)
		}
	})
}

func TestSubjectPartition(t *testing.T) {
	for subject, want := range map[string]int{
		"md.binance.spot.diff.BTCUSDT.0":    0,
		"md.binance.futures.gap.ETHUSDT.63": 63,
		"md.binance.spot.partial.X.7":       7,
		"md.binance.spot.diff.BTCUSDT":      -1, // not transformed
		"md.binance.spot.diff.BTCUSDT.64":   -1,
		"md.binance.spot.diff.BTCUSDT.":     -1,
		"md.binance.spot.diff.BTCUSDT.1x":   -1,
		"md.binance.spot.diff.BTCUSDT.-1":   -1,
		"nodots":                            -1,
	} {
		p, ok := SubjectPartition(subject)
		if (want < 0) == ok || (ok && p != want) {
			t.Errorf("SubjectPartition(%q) = %d, %v; want %d", subject, p, ok, want)
		}
	}
}
