package synth

var pow10 = [...]uint64{
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000,
	10000000000, 100000000000, 1000000000000, 10000000000000, 100000000000000,
	1000000000000000, 10000000000000000, 100000000000000000, 1000000000000000000,
}

const digitPairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839" +
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879" +
	"8081828384858687888990919293949596979899"

// AppendDecimal appends v×10^-scale as a decimal string with out digits
// after the point (out >= scale; the extra digits are zeros), the way
// Binance prints prices and quantities: AppendDecimal(nil, 3513, 4, 8) is
// "0.35130000", AppendDecimal(nil, 628380, 1, 1) is "62838.0".
func AppendDecimal(dst []byte, v uint64, scale, out int) []byte {
	var tmp [48]byte
	i := len(tmp)
	for j := scale; j < out; j++ {
		i--
		tmp[i] = '0'
	}
	for j := 0; j < scale; j++ {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
	}
	if out > 0 {
		i--
		tmp[i] = '.'
	}
	for v >= 100 {
		q := v / 100
		d := (v - q*100) * 2
		i -= 2
		tmp[i], tmp[i+1] = digitPairs[d], digitPairs[d+1]
		v = q
	}
	if v >= 10 {
		d := v * 2
		i -= 2
		tmp[i], tmp[i+1] = digitPairs[d], digitPairs[d+1]
	} else {
		i--
		tmp[i] = byte('0' + v)
	}
	return append(dst, tmp[i:]...)
}
