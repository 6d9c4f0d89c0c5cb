package book

import (
	"errors"
	"fmt"
	"iter"
	"math"
)

// Level is one price level: a price and the absolute quantity resting at it.
type Level struct {
	Price, Qty float64
}

// AppendLevels appends src to dst as []Level. src may be a slice of any
// struct type shaped like Level, such as a wire decoder's own level type, so
// callers convert without this package depending on the decoder; reusing dst
// avoids allocation.
func AppendLevels[L ~struct{ Price, Qty float64 }](dst []Level, src []L) []Level {
	for _, l := range src {
		dst = append(dst, Level(l))
	}
	return dst
}

// Side selects the bid or the ask side of a Book.
type Side uint8

// Sides.
const (
	Bid Side = iota
	Ask
)

func (s Side) String() string {
	if s == Ask {
		return "ask"
	}
	return "bid"
}

// ErrInvalidLevel reports a level the book refuses: a price that is not a
// positive finite number, or a quantity that is negative, NaN or infinite.
var ErrInvalidLevel = errors.New("invalid level")

// validLevel reports whether price and qty can enter a book. The comparisons
// are written so that NaN fails them.
func validLevel(price, qty float64) bool {
	return price > 0 && price <= math.MaxFloat64 && qty >= 0 && qty <= math.MaxFloat64
}

func checkLevels(s Side, levels []Level) error {
	for i, l := range levels {
		if !validLevel(l.Price, l.Qty) {
			return fmt.Errorf("%w: %s[%d] %v x %v", ErrInvalidLevel, s, i, l.Price, l.Qty)
		}
	}
	return nil
}

// Book is a price-level order book: for each side, the quantity resting at
// each price. The zero value is an empty book ready to use. A Book is not
// safe for concurrent use.
//
// Each side is a two-level B+-tree: sorted blocks of up to 128 levels and
// the first key of each block. An update costs two short binary searches and
// moves at most one block's levels, wherever it lands in the book; TopN and
// full scans read blocks in order. The measurements behind this choice are
// in the package documentation.
//
// Price identity is exact float64 equality: prices parsed exactly from the
// exchange's decimal strings map one decimal to one float64.
type Book struct {
	bids, asks side
}

func (b *Book) side(s Side) (*side, float64) {
	if s == Ask {
		return &b.asks, -1
	}
	return &b.bids, 1
}

// Reset empties the book and keeps its memory for reuse.
func (b *Book) Reset() {
	b.bids.reset()
	b.asks.reset()
}

// Load replaces the whole book with a snapshot. Levels may come in any
// order; best-first (the exchange's order) is the fast path. Zero quantities
// are skipped and, for a repeated price, the last level wins. On an invalid
// level Load returns an error wrapping ErrInvalidLevel and leaves the book
// unchanged.
func (b *Book) Load(bids, asks []Level) error {
	if err := checkSnapshot(bids, asks); err != nil {
		return err
	}
	b.bids.load(bids, 1)
	b.asks.load(asks, -1)
	return nil
}

// Apply sets the quantity at price on side s. The quantity is absolute; 0
// removes the level, and removing an absent level does nothing. It returns an
// error wrapping ErrInvalidLevel, and changes nothing, for a price that is not
// positive and finite or a quantity that is negative or not finite.
func (b *Book) Apply(s Side, price, qty float64) error {
	if !validLevel(price, qty) {
		return fmt.Errorf("apply: %w: %s %v x %v", ErrInvalidLevel, s, price, qty)
	}
	sd, sign := b.side(s)
	sd.set(sign*price, qty)
	return nil
}

// ApplyLevels applies the bid and ask levels of one update, in order. It
// checks every level first: on an invalid one it returns an error wrapping
// ErrInvalidLevel and the book is unchanged.
func (b *Book) ApplyLevels(bids, asks []Level) error {
	if err := checkLevels(Bid, bids); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	if err := checkLevels(Ask, asks); err != nil {
		return fmt.Errorf("apply: %w", err)
	}
	b.applyLevels(bids, asks)
	return nil
}

// applyLevels is ApplyLevels on levels already checked.
func (b *Book) applyLevels(bids, asks []Level) {
	for _, l := range bids {
		b.bids.set(l.Price, l.Qty)
	}
	for _, l := range asks {
		b.asks.set(-l.Price, l.Qty)
	}
}

// Len returns the number of levels on each side.
func (b *Book) Len() (bids, asks int) {
	return b.bids.n, b.asks.n
}

// BestBid returns the highest bid; ok is false when there are no bids.
func (b *Book) BestBid() (l Level, ok bool) { return b.bids.best(1) }

// BestAsk returns the lowest ask; ok is false when there are no asks.
func (b *Book) BestAsk() (l Level, ok bool) { return b.asks.best(-1) }

// Crossed reports whether both sides are present and the best bid is at or
// above the best ask. A correctly synchronised Binance book is never crossed.
func (b *Book) Crossed() bool {
	bid, _, okb := b.bids.last()
	ask, _, oka := b.asks.last()
	return okb && oka && bid >= -ask
}

// TopN writes the best n levels of each side, best first, into bids[:0] and
// asks[:0] and returns the results; n < 0 means every level. With buffers of
// capacity n it does not allocate.
func (b *Book) TopN(n int, bids, asks []Level) ([]Level, []Level) {
	return b.bids.appendTop(bids[:0], n, 1), b.asks.appendTop(asks[:0], n, -1)
}

// Levels writes every level of each side, best first, into bids[:0] and
// asks[:0] and returns the results.
func (b *Book) Levels(bids, asks []Level) ([]Level, []Level) {
	return b.TopN(-1, bids, asks)
}

// Bids iterates over the bids, best (highest) first. The book must not change
// during the iteration.
func (b *Book) Bids() iter.Seq[Level] { return b.bids.levels(1) }

// Asks iterates over the asks, best (lowest) first. The book must not change
// during the iteration.
func (b *Book) Asks() iter.Seq[Level] { return b.asks.levels(-1) }

// Qty returns the quantity at price on side s, 0 when there is no level.
func (b *Book) Qty(s Side, price float64) float64 {
	sd, sign := b.side(s)
	q, _ := sd.get(sign * price)
	return q
}

// EqualTop compares the best n levels of each side with bids and asks, which
// are best first as the exchange sends them (a REST snapshot or a partial
// depth frame). Only the first n given levels of a side count; a side given
// with fewer than n levels means the true side has no more levels than that,
// so the book must not either. n <= 0 compares every level. Prices and
// quantities must be exactly equal.
//
// When the books differ, firstDiff names the first differing level, for
// example "bid[3]: book 100.5 x 2, want 100.5 x 3".
func (b *Book) EqualTop(bids, asks []Level, n int) (ok bool, firstDiff string) {
	if d := b.bids.diffTop(Bid, bids, n, 1); d != "" {
		return false, d
	}
	if d := b.asks.diffTop(Ask, asks, n, -1); d != "" {
		return false, d
	}
	return true, ""
}

func (s *side) diffTop(sd Side, want []Level, n int, sign float64) string {
	if n <= 0 {
		n = max(len(want), s.n)
	}
	want = want[:min(n, len(want))]
	have := min(n, s.n)
	i := 0
	for got := range s.levels(sign) {
		if i == have {
			break
		}
		switch {
		case i >= len(want):
			return fmt.Sprintf("%s[%d]: book %v x %v, want no level", sd, i, got.Price, got.Qty)
		case got != want[i]:
			return fmt.Sprintf("%s[%d]: book %v x %v, want %v x %v", sd, i, got.Price, got.Qty, want[i].Price, want[i].Qty)
		}
		i++
	}
	if i < len(want) {
		return fmt.Sprintf("%s[%d]: book has no level, want %v x %v", sd, i, want[i].Price, want[i].Qty)
	}
	return ""
}
