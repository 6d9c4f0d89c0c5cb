package book

import (
	"errors"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func lv(pq ...float64) []Level {
	out := make([]Level, 0, len(pq)/2)
	for i := 0; i+1 < len(pq); i += 2 {
		out = append(out, Level{pq[i], pq[i+1]})
	}
	return out
}

func levelsOf(b *Book) (bids, asks []Level) {
	return b.Levels(nil, nil)
}

// checkInvariants fails t when the internal structure of a side is broken:
// block sizes, first keys, ordering across blocks, the level count.
func checkInvariants(t testing.TB, b *Book) {
	t.Helper()
	for _, sd := range []struct {
		name string
		s    *side
	}{{"bid", &b.bids}, {"ask", &b.asks}} {
		s := sd.s
		if len(s.firsts) != len(s.blocks) {
			t.Fatalf("%s: %d firsts for %d blocks", sd.name, len(s.firsts), len(s.blocks))
		}
		n, prev := 0, math.Inf(-1)
		for i, blk := range s.blocks {
			if blk.n < 1 || blk.n > blockSize {
				t.Fatalf("%s: block %d holds %d levels", sd.name, i, blk.n)
			}
			if s.firsts[i] != blk.keys[0] {
				t.Fatalf("%s: block %d first %v, index says %v", sd.name, i, blk.keys[0], s.firsts[i])
			}
			for j := range blk.n {
				if !(blk.keys[j] > prev) {
					t.Fatalf("%s: block %d key %d = %v not above %v", sd.name, i, j, blk.keys[j], prev)
				}
				if !(blk.qtys[j] > 0) {
					t.Fatalf("%s: block %d level %d has quantity %v", sd.name, i, j, blk.qtys[j])
				}
				prev = blk.keys[j]
			}
			n += blk.n
		}
		if n != s.n {
			t.Fatalf("%s: %d levels in blocks, count says %d", sd.name, n, s.n)
		}
	}
}

// TestApply proves the level update rules: absolute quantities, 0 removes,
// removing an absent level is a no-op, invalid levels are refused without a
// change, and both sides come out best first.
func TestApply(t *testing.T) {
	type upd struct {
		side       Side
		price, qty float64
	}
	tests := []struct {
		name               string
		ops                []upd
		wantBids, wantAsks []Level
		wantErr            error // of the last op
	}{
		{
			name:     "inserts sort best first on each side",
			ops:      []upd{{Bid, 99, 1}, {Bid, 101, 2}, {Bid, 100, 3}, {Ask, 103, 4}, {Ask, 102, 5}, {Ask, 104, 6}},
			wantBids: lv(101, 2, 100, 3, 99, 1),
			wantAsks: lv(102, 5, 103, 4, 104, 6),
		},
		{
			name:     "quantity is absolute, not a delta",
			ops:      []upd{{Bid, 100, 1}, {Bid, 100, 7}},
			wantBids: lv(100, 7),
		},
		{
			name:     "zero removes the level",
			ops:      []upd{{Bid, 100, 1}, {Bid, 99, 2}, {Bid, 100, 0}},
			wantBids: lv(99, 2),
		},
		{
			name:     "removing an absent level is fine",
			ops:      []upd{{Ask, 100, 1}, {Ask, 101, 0}, {Bid, 5, 0}},
			wantAsks: lv(100, 1),
		},
		{
			name:     "negative zero removes too",
			ops:      []upd{{Ask, 100, 1}, {Ask, 100, math.Copysign(0, -1)}},
			wantAsks: nil,
		},
		{
			name:     "NaN quantity is refused and changes nothing",
			ops:      []upd{{Bid, 100, 1}, {Bid, 100, math.NaN()}},
			wantBids: lv(100, 1),
			wantErr:  ErrInvalidLevel,
		},
		{
			name:     "negative quantity is refused",
			ops:      []upd{{Bid, 100, 1}, {Bid, 100, -1}},
			wantBids: lv(100, 1),
			wantErr:  ErrInvalidLevel,
		},
		{
			name:     "infinite quantity is refused",
			ops:      []upd{{Ask, 100, math.Inf(1)}},
			wantErr:  ErrInvalidLevel,
			wantAsks: nil,
		},
		{
			name:    "zero price is refused",
			ops:     []upd{{Ask, 0, 1}},
			wantErr: ErrInvalidLevel,
		},
		{
			name:    "NaN price is refused",
			ops:     []upd{{Bid, math.NaN(), 1}},
			wantErr: ErrInvalidLevel,
		},
		{
			name:    "infinite price is refused",
			ops:     []upd{{Bid, math.Inf(1), 1}},
			wantErr: ErrInvalidLevel,
		},
		{
			name:     "prices that differ in the last bit are distinct levels",
			ops:      []upd{{Bid, 0.3, 1}, {Bid, math.Nextafter(0.3, 1), 2}},
			wantBids: lv(math.Nextafter(0.3, 1), 2, 0.3, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Book
			var err error
			for _, o := range tt.ops {
				err = b.Apply(o.side, o.price, o.qty)
			}
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("last Apply: err %v, want %v", err, tt.wantErr)
			}
			bids, asks := levelsOf(&b)
			if !slices.Equal(bids, tt.wantBids) || !slices.Equal(asks, tt.wantAsks) {
				t.Fatalf("book\n bids %v\n asks %v\nwant\n bids %v\n asks %v", bids, asks, tt.wantBids, tt.wantAsks)
			}
			checkInvariants(t, &b)
		})
	}
}

// TestApplyLevelsIsAtomic proves that an update with one invalid level
// changes nothing, so a refused event never leaves half its levels behind.
func TestApplyLevelsIsAtomic(t *testing.T) {
	var b Book
	if err := b.Load(lv(100, 1), lv(101, 1)); err != nil {
		t.Fatal(err)
	}
	err := b.ApplyLevels(lv(100, 0, 99, 5), lv(101, 2, 102, math.NaN()))
	if !errors.Is(err, ErrInvalidLevel) {
		t.Fatalf("err %v, want ErrInvalidLevel", err)
	}
	if ok, diff := b.EqualTop(lv(100, 1), lv(101, 1), 0); !ok {
		t.Fatalf("book changed by a refused update: %s", diff)
	}
}

// TestLoad proves that snapshots load in exchange order (the fast path) and
// in any other order with the same result as applying the levels in turn.
func TestLoad(t *testing.T) {
	tests := []struct {
		name               string
		bids, asks         []Level
		wantBids, wantAsks []Level
		wantErr            error
	}{
		{
			name: "exchange order",
			bids: lv(100, 1, 99, 2, 98, 3), asks: lv(101, 4, 102, 5),
			wantBids: lv(100, 1, 99, 2, 98, 3), wantAsks: lv(101, 4, 102, 5),
		},
		{
			name: "unsorted",
			bids: lv(98, 3, 100, 1, 99, 2), asks: lv(102, 5, 101, 4),
			wantBids: lv(100, 1, 99, 2, 98, 3), wantAsks: lv(101, 4, 102, 5),
		},
		{
			name: "repeated price: the last one wins",
			bids: lv(100, 1, 100, 2), asks: lv(101, 4, 102, 5, 101, 6),
			wantBids: lv(100, 2), wantAsks: lv(101, 6, 102, 5),
		},
		{
			name: "zero quantities are skipped",
			bids: lv(100, 1, 99, 0, 98, 3), asks: lv(101, 0),
			wantBids: lv(100, 1, 98, 3), wantAsks: nil,
		},
		{
			name: "invalid level refused",
			bids: lv(100, 1), asks: lv(101, -4),
			wantErr: ErrInvalidLevel,
			// the previous content stays
			wantBids: lv(50, 1), wantAsks: lv(60, 1),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Book
			if err := b.Load(lv(50, 1), lv(60, 1)); err != nil {
				t.Fatal(err)
			}
			err := b.Load(tt.bids, tt.asks)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			bids, asks := levelsOf(&b)
			if !slices.Equal(bids, tt.wantBids) || !slices.Equal(asks, tt.wantAsks) {
				t.Fatalf("book bids %v asks %v, want bids %v asks %v", bids, asks, tt.wantBids, tt.wantAsks)
			}
			checkInvariants(t, &b)
		})
	}
}

// TestLargeBookStructure proves that a 5,000-level snapshot and heavy churn
// keep the blocks valid (splits and merges) and the content equal to the
// model.
func TestLargeBookStructure(t *testing.T) {
	for _, m := range mixes {
		t.Run(m.name, func(t *testing.T) {
			w := newWorkload(3, 5000, 30000, m)
			var b Book
			if err := b.Load(w.bids, w.asks); err != nil {
				t.Fatal(err)
			}
			mod := newModel()
			for _, l := range w.bids {
				mod.set(Bid, l.Price, l.Qty)
			}
			for _, l := range w.asks {
				mod.set(Ask, l.Price, l.Qty)
			}
			for i, o := range w.ops[:len(w.ops)/2] {
				if err := b.Apply(o.side, o.price, o.qty); err != nil {
					t.Fatal(err)
				}
				mod.set(o.side, o.price, o.qty)
				if i%1000 == 0 {
					checkInvariants(t, &b)
				}
			}
			checkInvariants(t, &b)
			if ok, diff := b.EqualTop(mod.sorted(Bid), mod.sorted(Ask), 0); !ok {
				t.Fatal(diff)
			}
			// Empty a side completely, then refill it: merges down to nothing.
			for _, l := range mod.sorted(Bid) {
				_ = b.Apply(Bid, l.Price, 0)
			}
			checkInvariants(t, &b)
			if n, _ := b.Len(); n != 0 {
				t.Fatalf("%d bids left after deleting all", n)
			}
		})
	}
}

// TestBestAndCrossed proves best bid/ask and the crossed rule (bid >= ask,
// so a locked book counts as crossed).
func TestBestAndCrossed(t *testing.T) {
	tests := []struct {
		name             string
		bids, asks       []Level
		wantBid, wantAsk Level
		okBid, okAsk     bool
		wantCrossed      bool
	}{
		{name: "empty"},
		{name: "bids only", bids: lv(100, 1, 99, 1), wantBid: Level{100, 1}, okBid: true},
		{name: "asks only", asks: lv(101, 2), wantAsk: Level{101, 2}, okAsk: true},
		{name: "normal", bids: lv(100, 1), asks: lv(101, 2), wantBid: Level{100, 1}, wantAsk: Level{101, 2}, okBid: true, okAsk: true},
		{name: "locked", bids: lv(100, 1), asks: lv(100, 2), wantBid: Level{100, 1}, wantAsk: Level{100, 2}, okBid: true, okAsk: true, wantCrossed: true},
		{name: "crossed", bids: lv(102, 1), asks: lv(101, 2, 103, 1), wantBid: Level{102, 1}, wantAsk: Level{101, 2}, okBid: true, okAsk: true, wantCrossed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Book
			if err := b.Load(tt.bids, tt.asks); err != nil {
				t.Fatal(err)
			}
			bid, okb := b.BestBid()
			ask, oka := b.BestAsk()
			if bid != tt.wantBid || okb != tt.okBid || ask != tt.wantAsk || oka != tt.okAsk {
				t.Fatalf("best bid %v %v ask %v %v, want %v %v %v %v", bid, okb, ask, oka, tt.wantBid, tt.okBid, tt.wantAsk, tt.okAsk)
			}
			if got := b.Crossed(); got != tt.wantCrossed {
				t.Fatalf("Crossed %v, want %v", got, tt.wantCrossed)
			}
		})
	}
}

// TestTopNAndQty proves TopN's truncation, n < 0, buffer reuse and Qty.
func TestTopNAndQty(t *testing.T) {
	var b Book
	if err := b.Load(lv(100, 1, 99, 2, 98, 3), lv(101, 4, 102, 5)); err != nil {
		t.Fatal(err)
	}
	bb, ab := make([]Level, 0, 2), make([]Level, 0, 2)
	bids, asks := b.TopN(2, bb, ab)
	if !slices.Equal(bids, lv(100, 1, 99, 2)) || !slices.Equal(asks, lv(101, 4, 102, 5)) {
		t.Fatalf("TopN(2) = %v %v", bids, asks)
	}
	if &bids[0] != &bb[:1][0] {
		t.Fatal("TopN did not reuse the caller's buffer")
	}
	bids, asks = b.TopN(-1, bids, asks)
	if len(bids) != 3 || len(asks) != 2 {
		t.Fatalf("TopN(-1) = %v %v", bids, asks)
	}
	bids, _ = b.TopN(0, bids, asks)
	if len(bids) != 0 {
		t.Fatalf("TopN(0) = %v", bids)
	}
	if q := b.Qty(Bid, 99); q != 2 {
		t.Fatalf("Qty(bid 99) = %v", q)
	}
	if q := b.Qty(Ask, 99); q != 0 {
		t.Fatalf("Qty(ask 99) = %v", q)
	}
	var it []Level
	for l := range b.Asks() {
		it = append(it, l)
	}
	if !slices.Equal(it, lv(101, 4, 102, 5)) {
		t.Fatalf("Asks() = %v", it)
	}
	it = it[:0]
	for l := range b.Bids() {
		it = append(it, l)
		break
	}
	if !slices.Equal(it, lv(100, 1)) {
		t.Fatalf("Bids() stopped early = %v", it)
	}
}

// TestEqualTop proves the comparison with snapshots and partial frames:
// only n levels count, a short side given means the book must be as short
// within n, and the first difference is named.
func TestEqualTop(t *testing.T) {
	var b Book
	if err := b.Load(lv(100, 1, 99, 2, 98, 3), lv(101, 4, 102, 5)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		bids, asks []Level
		n          int
		wantOK     bool
		wantDiff   string // substring
	}{
		{name: "all levels", bids: lv(100, 1, 99, 2, 98, 3), asks: lv(101, 4, 102, 5), wantOK: true},
		{name: "top 2", bids: lv(100, 1, 99, 2), asks: lv(101, 4, 102, 5), n: 2, wantOK: true},
		{name: "top 2 of a longer snapshot", bids: lv(100, 1, 99, 2, 97, 9), asks: lv(101, 4, 102, 5, 103, 1), n: 2, wantOK: true},
		{name: "quantity differs", bids: lv(100, 1, 99, 3), asks: lv(101, 4), n: 2, wantDiff: "bid[1]: book 99 x 2, want 99 x 3"},
		{name: "price differs", bids: lv(100, 1), asks: lv(101.5, 4), n: 1, wantDiff: "ask[0]: book 101 x 4, want 101.5 x 4"},
		{name: "book has an extra level", bids: lv(100, 1, 99, 2), asks: lv(101, 4, 102, 5), n: 3, wantDiff: "bid[2]: book 98 x 3, want no level"},
		{name: "book lacks a level", bids: lv(100, 1, 99, 2, 98, 3), asks: lv(101, 4, 102, 5, 103, 1), n: 3, wantDiff: "ask[2]: book has no level, want 103 x 1"},
		{name: "n <= 0 compares everything", bids: lv(100, 1), asks: lv(101, 4, 102, 5), wantDiff: "bid[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, diff := b.EqualTop(tt.bids, tt.asks, tt.n)
			if ok != tt.wantOK || !strings.Contains(diff, tt.wantDiff) || (ok && diff != "") {
				t.Fatalf("EqualTop = %v %q, want %v %q", ok, diff, tt.wantOK, tt.wantDiff)
			}
		})
	}
}

func parse(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestAggregate proves bucketing: bids round down, asks round up, prices on
// a bucket boundary stay in it despite binary fractions (0.29/0.01 is
// 28.999999999999996), bucket prices equal the parsed decimal, sizes sum
// and n limits the buckets.
func TestAggregate(t *testing.T) {
	tests := []struct {
		name               string
		bids, asks         []string // price, qty pairs as exchange decimals
		tick               string
		n                  int
		wantBids, wantAsks []string
		wantErr            error
	}{
		{
			name:     "10 USD buckets",
			bids:     []string{"65009.99", "1", "65000.00", "2", "64999.99", "4"},
			asks:     []string{"65010.00", "1", "65010.01", "2", "65020.00", "4", "65031", "8"},
			tick:     "10",
			wantBids: []string{"65000", "3", "64990", "4"},
			wantAsks: []string{"65010", "1", "65020", "6", "65040", "8"},
		},
		{
			name:     "boundary prices with binary fractions",
			bids:     []string{"0.29", "1", "0.28", "2"},
			asks:     []string{"0.29", "1", "0.30", "2", "0.291", "4"},
			tick:     "0.01",
			wantBids: []string{"0.29", "1", "0.28", "2"},
			wantAsks: []string{"0.29", "1", "0.30", "6"},
		},
		{
			name: "n limits the buckets",
			bids: []string{"105", "1", "95", "1", "85", "1"},
			asks: []string{"106", "1", "116", "1"},
			tick: "10", n: 2,
			wantBids: []string{"100", "1", "90", "1"},
			wantAsks: []string{"110", "1", "120", "1"},
		},
		{
			name:     "a price with more decimals than the tick is not snapped",
			bids:     []string{"100000.00000001", "1"},
			asks:     []string{"100000.00000001", "1"},
			tick:     "10",
			wantBids: []string{"100000", "1"},
			wantAsks: []string{"100010", "1"},
		},
		{
			name:     "tick 0.05",
			bids:     []string{"1.2499", "1", "1.25", "2"},
			asks:     []string{"1.2501", "1", "1.25", "2"},
			tick:     "0.05",
			wantBids: []string{"1.25", "2", "1.2", "1"},
			wantAsks: []string{"1.25", "2", "1.3", "1"},
		},
		{name: "zero tick", tick: "0", wantErr: ErrInvalidTick},
		{name: "negative tick", tick: "-1", wantErr: ErrInvalidTick},
		{name: "NaN tick", tick: "NaN", wantErr: ErrInvalidTick},
		{name: "infinite tick", tick: "+Inf", wantErr: ErrInvalidTick},
	}
	conv := func(ss []string) []Level {
		var out []Level
		for i := 0; i+1 < len(ss); i += 2 {
			out = append(out, Level{parse(t, ss[i]), parse(t, ss[i+1])})
		}
		return out
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b Book
			if err := b.Load(conv(tt.bids), conv(tt.asks)); err != nil {
				t.Fatal(err)
			}
			bids, asks, err := b.Aggregate(parse(t, tt.tick), tt.n, nil, nil)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(bids, conv(tt.wantBids)) || !slices.Equal(asks, conv(tt.wantAsks)) {
				t.Fatalf("Aggregate = bids %v asks %v, want %v %v", bids, asks, conv(tt.wantBids), conv(tt.wantAsks))
			}
		})
	}
}

// TestAppendLevels proves the conversion from another package's level type
// of the same shape, reusing the destination.
func TestAppendLevels(t *testing.T) {
	type wireLevel struct{ Price, Qty float64 }
	dst := make([]Level, 0, 4)
	got := AppendLevels(dst, []wireLevel{{1.5, 2}, {1.25, 0}})
	if !slices.Equal(got, lv(1.5, 2, 1.25, 0)) || &got[0] != &dst[:1][0] {
		t.Fatalf("AppendLevels = %v", got)
	}
}
