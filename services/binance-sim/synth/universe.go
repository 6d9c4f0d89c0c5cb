// Package synth is binance-sim's synthetic exchange: a deterministic,
// seeded order book per symbol with integer price ticks and lot sizes,
// the dynamics that move it on a tick clock, and the encoders that turn it
// into Binance's diff, partial and REST frames. Diff, partial and REST
// views are all read from the same book, and the book keeps an undo log,
// so the exact book after any recent update id can be reconstructed
// (ground truth for tests).
package synth

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/depthcap/depthcap/pkg/md"
)

// SymbolSpec describes one simulated symbol on one market.
type SymbolSpec struct {
	Symbol string // upper case, e.g. BTCUSDT
	Lower  string // lower case, as in stream names
	Base   string
	Quote  string
	Rank   int // 0 is the most active symbol

	// Prices: a book tick t is the price t×TickUnits×10^-PriceScale,
	// printed with PriceOut decimals.
	TickUnits  uint64
	PriceScale int
	PriceOut   int
	// Quantities: lots×10^-QtyScale, printed with QtyOut decimals.
	QtyScale int
	QtyOut   int

	Mid0        int32   // initial mid price in ticks
	LotsMin     float64 // lots of the smallest fresh level
	LotsMax     float64 // lots of the largest fresh level
	Rate        float64 // level changes per second
	QuoteVolume float64 // 24h quote volume reported by ticker/24hr
}

// AppendPrice appends the price of tick t.
func (s *SymbolSpec) AppendPrice(dst []byte, t int32) []byte {
	return AppendDecimal(dst, uint64(t)*s.TickUnits, s.PriceScale, s.PriceOut)
}

// AppendQty appends the quantity of lots.
func (s *SymbolSpec) AppendQty(dst []byte, lots uint32) []byte {
	return AppendDecimal(dst, uint64(lots), s.QtyScale, s.QtyOut)
}

// TickSize is the price step as Binance prints it in exchangeInfo.
func (s *SymbolSpec) TickSize() string {
	return string(AppendDecimal(nil, s.TickUnits, s.PriceScale, s.PriceOut))
}

// StepSize is the quantity step as Binance prints it in exchangeInfo.
func (s *SymbolSpec) StepSize() string { return string(AppendDecimal(nil, 1, s.QtyScale, s.QtyOut)) }

// Price returns the price of tick t as a float (for tickers).
func (s *SymbolSpec) Price(t int32) float64 {
	return float64(uint64(t)*s.TickUnits) / float64(pow10[s.PriceScale])
}

// Activity shapes how busy the symbols are: symbol of rank i changes
// max(Max/(i+1)^Skew, Min) levels per second (a Zipf-like spread: a few very
// active symbols, many quiet ones).
type Activity struct {
	Max  float64
	Skew float64
	Min  float64
}

// ErrSymbols reports an invalid SIM_SYMBOLS value.
var ErrSymbols = errors.New("invalid symbol list")

// MaxSymbols bounds SIM_SYMBOLS.
const MaxSymbols = 10000

// ParseSymbols parses SIM_SYMBOLS: a count ("50") or a comma list
// ("BTCUSDT,ETHUSDT"). It returns the count for a count and the names for a
// list.
func ParseSymbols(v string) (count int, names []string, err error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, nil, fmt.Errorf("%w: empty", ErrSymbols)
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 1 || n > MaxSymbols {
			return 0, nil, fmt.Errorf("%w: count %d out of range 1..%d", ErrSymbols, n, MaxSymbols)
		}
		return n, nil, nil
	}
	seen := map[string]bool{}
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if len(s) < 2 || len(s) > 20 || !md.ValidSymbol(s) {
			return 0, nil, fmt.Errorf("%w: %q is not an upper-case symbol like BTCUSDT", ErrSymbols, s)
		}
		for _, r := range s {
			if (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
				return 0, nil, fmt.Errorf("%w: %q: only A-Z and 0-9 are supported", ErrSymbols, s)
			}
		}
		if seen[s] {
			return 0, nil, fmt.Errorf("%w: %q listed twice", ErrSymbols, s)
		}
		seen[s] = true
		names = append(names, s)
	}
	if len(names) > MaxSymbols {
		return 0, nil, fmt.Errorf("%w: more than %d symbols", ErrSymbols, MaxSymbols)
	}
	return len(names), names, nil
}

// named are the first symbols of a counted universe, with realistic prices.
var named = []struct {
	base  string
	price float64
}{
	{"BTC", 62000}, {"ETH", 3000}, {"BNB", 550}, {"SOL", 150}, {"XRP", 0.52},
	{"DOGE", 0.12}, {"ADA", 0.40}, {"TRX", 0.12}, {"AVAX", 30}, {"LINK", 14},
	{"DOT", 6}, {"POL", 0.55}, {"LTC", 70}, {"BCH", 380}, {"UNI", 8},
	{"ATOM", 7}, {"XLM", 0.1}, {"ETC", 22}, {"FIL", 4}, {"APT", 7},
	{"NEAR", 5}, {"ARB", 0.7}, {"OP", 1.6}, {"ICP", 9}, {"INJ", 20},
	{"SUI", 1.0}, {"WIF", 2}, {"FET", 1.3}, {"RENDER", 6}, {"AAVE", 100},
	{"MKR", 2000}, {"SEI", 0.4}, {"TIA", 6}, {"HBAR", 0.07}, {"ALGO", 0.15},
	{"VET", 0.025}, {"EGLD", 30}, {"SAND", 0.3}, {"MANA", 0.3}, {"AXS", 5},
	{"THETA", 1.2}, {"FTM", 0.5}, {"RUNE", 4}, {"GRT", 0.15}, {"CRV", 0.3},
	{"SNX", 1.5}, {"LDO", 1.1}, {"IMX", 1.3}, {"STX", 1.6}, {"KAS", 0.15},
}

var quotes = []string{"FDUSD", "USDT", "USDC", "BUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "TRY", "BRL"}

// Universe builds the symbol specs of one market. symbols is SIM_SYMBOLS.
// Names, prices and decimals depend only on the names (not on the seed),
// so the same symbol looks the same in every run.
func Universe(m md.Market, symbols string, act Activity) ([]SymbolSpec, error) {
	count, names, err := ParseSymbols(symbols)
	if err != nil {
		return nil, err
	}
	type nb struct {
		sym, base, quote string
		price            float64
	}
	var list []nb
	if names == nil {
		used := map[string]bool{}
		for i := 0; i < count; i++ {
			if i < len(named) {
				list = append(list, nb{named[i].base + "USDT", named[i].base, "USDT", named[i].price})
				used[named[i].base] = true
				continue
			}
			base := syntheticBase(uint64(i), used)
			list = append(list, nb{base + "USDT", base, "USDT", hashPrice(base)})
		}
	} else {
		for _, s := range names {
			base, quote := SplitSymbol(s)
			price := hashPrice(s)
			for _, n := range named {
				if n.base == base {
					price = n.price
				}
			}
			list = append(list, nb{s, base, quote, price})
		}
	}
	specs := make([]SymbolSpec, len(list))
	for i, e := range list {
		specs[i] = makeSpec(m, i, e.sym, e.base, e.quote, e.price, act)
	}
	return specs, nil
}

// SplitSymbol splits a symbol into base and quote asset by its suffix.
func SplitSymbol(s string) (base, quote string) {
	for _, q := range quotes {
		if strings.HasSuffix(s, q) && len(s) > len(q) {
			return s[:len(s)-len(q)], q
		}
	}
	if len(s) > 4 {
		return s[:len(s)-4], s[len(s)-4:]
	}
	return s[:1], s[1:]
}

// syntheticBase derives a 3 to 5 letter base asset name from i.
func syntheticBase(i uint64, used map[string]bool) string {
	for salt := uint64(0); ; salt++ {
		h := mix64(i*0x9E3779B97F4A7C15 + salt + 0x51ED)
		n := 3 + int(h%3)
		h /= 3
		var b [5]byte
		for j := 0; j < n; j++ {
			b[j] = byte('A' + h%26)
			h /= 26
		}
		s := string(b[:n])
		if !used[s] && !strings.HasSuffix(s, "USD") {
			used[s] = true
			return s
		}
	}
}

// hashPrice gives a name a price, log-uniform in [0.01, 2000].
func hashPrice(name string) float64 {
	h := fnv64(name)
	u := float64(h>>11) / (1 << 53)
	return math.Exp(math.Log(0.01) + u*(math.Log(2000)-math.Log(0.01)))
}

func makeSpec(m md.Market, rank int, sym, base, quote string, price float64, act Activity) SymbolSpec {
	h := fnv64(sym)
	s := SymbolSpec{Symbol: sym, Lower: strings.ToLower(sym), Base: base, Quote: quote, Rank: rank}
	maxScale := 8
	if m == md.Futures {
		maxScale = 6
	}
	// Price ticks: the mid is between 20,000 and 200,000 ticks when the
	// decimals allow it, so thousands of levels fit below it.
	p := int(math.Ceil(math.Log10(20000 / price)))
	p = min(max(p, 0), maxScale)
	mid := math.Round(price * float64(pow10[p]))
	if mid > 2e9 {
		mid = 2e9
	}
	s.Mid0 = int32(max(mid, 1000))
	q := int(math.Ceil(math.Log10(price)))
	if m == md.Spot {
		s.TickUnits, s.PriceScale, s.PriceOut = 1, p, 8
		s.QtyScale, s.QtyOut = min(max(q, 0), 8), 8
	} else {
		extra := int(h & 1) // half the futures symbols print a trailing zero: "62838.0", "30430.80"
		s.TickUnits, s.PriceScale, s.PriceOut = pow10[extra], p+extra, p+extra
		s.QtyScale = min(max(q, 0), 3)
		s.QtyOut = s.QtyScale
	}
	lot := price / float64(pow10[s.QtyScale]) // quote value of one lot
	s.LotsMin = max(20/lot, 1)
	s.LotsMax = max(min(20000/lot, 2e9), s.LotsMin+1)
	s.Rate = max(act.Max/math.Pow(float64(rank+1), act.Skew), act.Min)
	s.QuoteVolume = 8e9 / math.Pow(float64(rank+1), 1.1)
	if m == md.Futures {
		s.QuoteVolume *= 1.8
	}
	return s
}

func fnv64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the splitmix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
