package binance

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
)

func lv(p, q string) Level {
	pf, err := strconv.ParseFloat(p, 64)
	if err != nil {
		panic(err)
	}
	qf, err := strconv.ParseFloat(q, 64)
	if err != nil {
		panic(err)
	}
	return Level{pf, qf}
}

func TestDecodeDepth(t *testing.T) {
	type wantDepth struct {
		seq        Seq
		bids, asks []Level
	}
	tests := []struct {
		name    string
		data    string
		want    wantDepth
		wantErr error
	}{
		{"spot diff", dataOf(spotDiffFrame), wantDepth{
			Seq{EventType: []byte("depthUpdate"), Symbol: []byte("BTCUSDT"), EventTime: 1622363903670, FirstUpdateID: 11294093710, FinalUpdateID: 11294093726, Has: spotDiffHas},
			[]Level{lv("35743.98000000", "0.00000000"), lv("35743.87000000", "0.00001500")},
			[]Level{lv("35743.88000000", "0.24000000"), lv("35743.97000000", "0.00000000")}}, nil},
		{"futures diff", dataOf(futuresDiffFrame), wantDepth{
			Seq{EventType: []byte("depthUpdate"), Symbol: []byte("BTCUSDT"), EventTime: 1622371244693, TransactionTime: 1622371244687,
				FirstUpdateID: 475776377463, FinalUpdateID: 475776380184, PrevFinalUpdateID: 475776377452, Has: futuresDiffHas},
			[]Level{lv("35729.77", "1.600"), lv("35750.00", "5.106")},
			[]Level{lv("35819.20", "0.211"), lv("35820.31", "0.001")}}, nil},
		{"spot partial", spotPartialData, wantDepth{
			Seq{LastUpdateID: 17044571457, Has: HasLastUpdateID | HasBids | HasAsks},
			[]Level{lv("1782.00000000", "6.48300000"), lv("1781.95000000", "0.03000000")},
			[]Level{lv("1782.01000000", "15.46080000"), lv("1782.02000000", "0.00780000")}}, nil},
		{"futures partial", `{"e":"depthUpdate","E":1,"T":2,"s":"RUNEUSD_PERP","ps":"RUNEUSD","U":5,"u":5,"pu":-1,"b":[],"a":[["8.4400","2"]]}`, wantDepth{
			Seq{EventType: []byte("depthUpdate"), Symbol: []byte("RUNEUSD_PERP"), EventTime: 1, TransactionTime: 2, FirstUpdateID: 5, FinalUpdateID: 5, PrevFinalUpdateID: -1, Has: futuresDiffHas},
			nil, []Level{lv("8.4400", "2")}}, nil},
		{"futures REST", futuresRESTBody, wantDepth{
			Seq{LastUpdateID: 1570223094073, EventTime: 1654231622340, TransactionTime: 1654231622320, Has: HasLastUpdateID | HasEventTime | HasTransactionTime | HasBids | HasAsks},
			[]Level{lv("30564.6", "0.024"), lv("30561.1", "0.003"), lv("30561.0", "0.055")},
			[]Level{lv("30569.5", "0.141"), lv("30569.6", "0.004"), lv("30569.7", "0.067")}}, nil},
		{"coin-M REST with extra keys", `{"lastUpdateId":466364745366,"E":1,"T":2,"symbol":"BTCUSD_220624","pair":"BTCUSD","bids":[["30626.7","827"]],"asks":[["30626.8","114"]]}`, wantDepth{
			Seq{LastUpdateID: 466364745366, EventTime: 1, TransactionTime: 2, Has: HasLastUpdateID | HasEventTime | HasTransactionTime | HasBids | HasAsks},
			[]Level{lv("30626.7", "827")}, []Level{lv("30626.8", "114")}}, nil},
		{"whitespace and order", " {\"asks\" : [ [ \"2\" , \"3\" ] ] ,\n\"bids\":[],\"lastUpdateId\":9} ", wantDepth{
			Seq{LastUpdateID: 9, Has: HasLastUpdateID | HasBids | HasAsks}, nil, []Level{lv("2", "3")}}, nil},
		{"duplicate bids last wins", `{"u":1,"b":[["1","1"],["2","2"]],"b":[["3","3"]],"a":[]}`, wantDepth{
			Seq{FinalUpdateID: 1, Has: HasFinalUpdateID | HasBids | HasAsks}, []Level{lv("3", "3")}, nil}, nil},
		{"exponent among valid levels", `{"u":1,"b":[["0.00000001","0"],["99999999999999999999999","0.1"],["1.7976931348623157e308","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"long digits", `{"u":1,"b":[["0.00000001","0"],["123456789012345678901234567890.123456789012345678901234567890","0.1000000000000000055511151231257827"]],"a":[]}`, wantDepth{
			Seq{FinalUpdateID: 1, Has: HasFinalUpdateID | HasBids | HasAsks},
			[]Level{lv("0.00000001", "0"), lv("123456789012345678901234567890.123456789012345678901234567890", "0.1000000000000000055511151231257827")}, nil}, nil},

		{"NaN", `{"u":1,"b":[["NaN","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"Inf", `{"u":1,"b":[["1","Inf"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"+Inf", `{"u":1,"b":[["+Inf","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"infinity", `{"u":1,"b":[["infinity","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"overflow", `{"u":1,"b":[["1` + strings.Repeat("0", 400) + `","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"negative price", `{"u":1,"b":[["-1","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"negative qty", `{"u":1,"a":[["1","-0.5"]],"b":[]}`, wantDepth{}, ErrImpossibleValue},
		{"negative zero qty", `{"u":1,"a":[["1","-0"]],"b":[]}`, wantDepth{}, ErrImpossibleValue},
		{"zero price", `{"u":1,"b":[["0","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"zero price with fraction", `{"u":1,"b":[["0.00000000","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"price underflows to zero", `{"u":1,"b":[["0.` + strings.Repeat("0", 400) + `1","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"exponent", `{"u":1,"b":[["1e5","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"hex float", `{"u":1,"b":[["0x1p3","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"underscore", `{"u":1,"b":[["1_000","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"plus sign", `{"u":1,"b":[["+1","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"leading dot", `{"u":1,"b":[[".5","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"trailing dot", `{"u":1,"b":[["5.","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"space in number", `{"u":1,"b":[[" 5","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"empty string", `{"u":1,"b":[["","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"words", `{"u":1,"b":[["abc","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"escaped digits", `{"u":1,"b":[["1\u002e5","1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"numbers not strings", `{"u":1,"b":[[1.5,2]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"qty not string", `{"u":1,"b":[["1.5",null]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"three elements", `{"u":1,"b":[["1","2","3"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"one element", `{"u":1,"b":[["1"]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"no elements", `{"u":1,"b":[[]],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"level is string", `{"u":1,"b":["1"],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"level is object", `{"u":1,"b":[{"p":"1","q":"2"}],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"U above u", `{"U":5,"u":4,"b":[],"a":[]}`, wantDepth{}, ErrImpossibleValue},
		{"impossible in overridden bids", `{"u":1,"b":[["0","1"]],"b":[],"a":[]}`, wantDepth{}, ErrImpossibleValue},

		{"bids not array", `{"u":1,"b":"1","a":[]}`, wantDepth{}, ErrMalformed},
		{"bids null", `{"u":1,"b":null,"a":[]}`, wantDepth{}, ErrMalformed},
		{"missing asks", `{"u":1,"b":[]}`, wantDepth{}, ErrMissingField},
		{"missing ids", `{"b":[],"a":[]}`, wantDepth{}, ErrMissingField},
		{"missing everything", `{}`, wantDepth{}, ErrMissingField},
		{"truncated levels", `{"u":1,"b":[["1","2"]`, wantDepth{}, ErrMalformed},
		{"truncated level", `{"u":1,"b":[["1",`, wantDepth{}, ErrMalformed},
		{"truncated number", `{"u":1,"b":[["1`, wantDepth{}, ErrMalformed},
		{"bad separator in levels", `{"u":1,"b":[["1","2"];["3","4"]],"a":[]}`, wantDepth{}, ErrMalformed},
		{"bad separator in level", `{"u":1,"b":[["1";"2"]],"a":[]}`, wantDepth{}, ErrMalformed},
		{"control char in price", "{\"u\":1,\"b\":[[\"1\n\",\"2\"]],\"a\":[]}", wantDepth{}, ErrMalformed},
		{"u as string", `{"u":"1","b":[],"a":[]}`, wantDepth{}, ErrMalformed},
		{"trailing data", `{"u":1,"b":[],"a":[]},`, wantDepth{}, ErrMalformed},
		{"not an object", `[["1","2"]]`, wantDepth{}, ErrMalformed},
		{"empty", ``, wantDepth{}, ErrMalformed},
	}
	var d Depth
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := DecodeDepth([]byte(tt.data), &d) // d is reused across cases on purpose
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				if !strings.HasPrefix(err.Error(), "decode depth: ") {
					t.Errorf("error %q lacks context", err)
				}
				if d.Has != 0 || len(d.Bids) != 0 || len(d.Asks) != 0 {
					t.Errorf("d not reset after an error: %+v", d)
				}
				return
			}
			if !sameScalars(&d.Seq, &tt.want.seq) {
				t.Errorf("Seq = %+v, want %+v", d.Seq, tt.want.seq)
			}
			if !sameLevels(d.Bids, tt.want.bids) || !sameLevels(d.Asks, tt.want.asks) {
				t.Errorf("levels = %v / %v, want %v / %v", d.Bids, d.Asks, tt.want.bids, tt.want.asks)
			}
		})
	}
}

// TestDecodeErrorClasses checks that malformed errors and impossible values
// are told apart, because they are counted apart.
func TestDecodeErrorClasses(t *testing.T) {
	var d Depth
	err := DecodeDepth([]byte(`{"u":1,"b":[["NaN","1"]],"a":[]}`), &d)
	if errors.Is(err, ErrMalformed) {
		t.Errorf("impossible value %v also matches ErrMalformed", err)
	}
	err = DecodeDepth([]byte(`{"u":1,"b":[["1","1"]`), &d)
	if errors.Is(err, ErrImpossibleValue) {
		t.Errorf("malformed input %v also matches ErrImpossibleValue", err)
	}
	err = DecodeDepth([]byte(`{"u":1,"b":[]}`), &d)
	if !errors.Is(err, ErrMalformed) || !errors.Is(err, ErrMissingField) {
		t.Errorf("missing asks: %v, want ErrMalformed and ErrMissingField", err)
	}
}

func TestDecodeREST(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr error
	}{
		{"spot", spotPartialData, nil},
		{"futures", futuresRESTBody, nil},
		{"diff is not a REST body", dataOf(spotDiffFrame), ErrMissingField},
		{"error body", `{"code":-1121,"msg":"Invalid symbol."}`, ErrMissingField},
		{"impossible", `{"lastUpdateId":1,"bids":[["0","1"]],"asks":[]}`, ErrImpossibleValue},
	}
	for _, tt := range tests {
		var d Depth
		err := DecodeREST([]byte(tt.body), &d)
		if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "decode rest depth: ") {
			t.Errorf("%s: error %q lacks context", tt.name, err)
		}
	}
}

// TestDecodeReusesSlices proves the level slices are reused: after a large
// payload, a smaller one decodes into the same backing arrays.
func TestDecodeReusesSlices(t *testing.T) {
	var d Depth
	if err := DecodeDepth([]byte(futuresRESTBody), &d); err != nil {
		t.Fatal(err)
	}
	b0, a0 := &d.Bids[0], &d.Asks[0]
	if err := DecodeDepth([]byte(dataOf(spotDiffFrame)), &d); err != nil {
		t.Fatal(err)
	}
	if &d.Bids[0] != b0 || &d.Asks[0] != a0 {
		t.Fatal("level slices were reallocated")
	}
	d.Reset()
	if d.Has != 0 || len(d.Bids) != 0 || cap(d.Bids) == 0 || d.Symbol != nil {
		t.Fatalf("Reset: %+v (cap %d)", d, cap(d.Bids))
	}
}

// TestDecodeAllocs proves steady-state decoding allocates nothing.
func TestDecodeAllocs(t *testing.T) {
	payloads := [][]byte{[]byte(dataOf(spotDiffFrame)), []byte(dataOf(futuresDiffFrame)), []byte(spotPartialData), []byte(futuresRESTBody)}
	var d Depth
	for _, p := range payloads { // warm up the slices
		if err := DecodeDepth(p, &d); err != nil {
			t.Fatal(err)
		}
	}
	allocs := testing.AllocsPerRun(100, func() {
		for _, p := range payloads {
			if err := DecodeDepth(p, &d); err != nil {
				panic(err)
			}
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run, want 0", allocs)
	}
}

// TestDecimalExact: values are exactly strconv.ParseFloat's, including
// ones that need correct rounding.
func TestDecimalExact(t *testing.T) {
	for _, s := range []string{"0.1", "0.3", "2683.80000000", "9007199254740993", "0.1000000000000000055511151231257827",
		"1.00000000000000011102230246251565404236316680908203125", "4.9406564584124654e-324", "123456789.123456789"} {
		if strings.ContainsAny(s, "e") {
			continue
		}
		data := `{"u":1,"b":[["` + s + `","` + s + `"]],"a":[]}`
		var d Depth
		if err := DecodeDepth([]byte(data), &d); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		want, _ := strconv.ParseFloat(s, 64)
		if math.Float64bits(d.Bids[0].Price) != math.Float64bits(want) || math.Float64bits(d.Bids[0].Qty) != math.Float64bits(want) {
			t.Fatalf("%s: got %v, want %v", s, d.Bids[0], want)
		}
	}
}

// TestParseDecimal holds parseDecimal's fast path to strconv.ParseFloat,
// bit for bit, on edge cases and on a million random decimals shaped like
// Binance's (and longer ones that take the fallback).
func TestParseDecimal(t *testing.T) {
	check := func(s string) {
		t.Helper()
		got, reason := parseDecimal([]byte(s))
		want, err := strconv.ParseFloat(s, 64)
		if err != nil || reason != "" {
			t.Fatalf("%q: reason %q, ParseFloat error %v", s, reason, err)
		}
		if math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("%q: got %v (%#x), ParseFloat %v (%#x)", s, got, math.Float64bits(got), want, math.Float64bits(want))
		}
	}
	for _, s := range []string{"0", "0.0", "00", "000.000", "1", "10", "100.000", "0.1", "0.3", "0.00000001",
		"9007199254740991", "9007199254740992", "9007199254740993", "9007199254740993.0", "18446744073709551615",
		"1234567890123456789", "12345678901234567890", "0.1234567890123456789", "1.0000000000000000000001",
		"0.0000000000000000000001", "0.00000000000000000000001", "1" + strings.Repeat("0", 22), "1" + strings.Repeat("0", 23),
		"0." + strings.Repeat("0", 307) + "22250738585072014", strings.Repeat("9", 308),
		"2683.80000000", "35743.98000000", "0.00001500", "352.90500000", "5123107832349.12345678"} {
		check(s)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 0, 64)
	for range 1_000_000 {
		buf = buf[:0]
		buf = strconv.AppendUint(buf, rng.Uint64N(1+uint64(math.Pow10(rng.IntN(13)))), 10)
		if rng.IntN(4) > 0 {
			buf = append(buf, '.')
			for range 1 + rng.IntN(12) {
				buf = append(buf, byte('0'+rng.IntN(10)))
			}
		}
		check(string(buf))
	}
}
