package synth

import (
	"math/big"
	"testing"
)

// TestAppendDecimal proves the price and quantity formats against the
// samples of real Binance strings and against math/big for many values.
func TestAppendDecimal(t *testing.T) {
	for _, tc := range []struct {
		v          uint64
		scale, out int
		want       string
	}{
		{3513, 4, 8, "0.35130000"}, {628380, 1, 1, "62838.0"}, {62838, 0, 0, "62838"},
		{3043080, 2, 2, "30430.80"}, {0, 8, 8, "0.00000000"}, {0, 3, 3, "0.000"}, {0, 0, 0, "0"},
		{1500, 8, 8, "0.00001500"}, {94, 3, 3, "0.094"}, {82320, 3, 3, "82.320"}, {7, 0, 8, "7.00000000"},
		{18446744073709551615, 8, 8, "184467440737.09551615"},
	} {
		if got := string(AppendDecimal([]byte("x"), tc.v, tc.scale, tc.out)); got != "x"+tc.want {
			t.Errorf("AppendDecimal(%d, %d, %d) = %q, want %q", tc.v, tc.scale, tc.out, got, "x"+tc.want)
		}
	}
	for v := uint64(0); v < 200000; v += 7 {
		for scale := 0; scale <= 8; scale++ {
			r := new(big.Rat).SetFrac(new(big.Int).SetUint64(v), new(big.Int).SetUint64(pow10[scale]))
			if got, want := string(AppendDecimal(nil, v, scale, 8)), r.FloatString(8); got != want {
				t.Fatalf("AppendDecimal(%d, %d, 8) = %q, want %q", v, scale, got, want)
			}
		}
	}
}
