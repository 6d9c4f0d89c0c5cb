package quality

import (
	"math"
	"testing"

	"github.com/depthcap/depthcap/pkg/book"
)

func lv(pq ...float64) []book.Level {
	var out []book.Level
	for i := 0; i+1 < len(pq); i += 2 {
		out = append(out, book.Level{Price: pq[i], Qty: pq[i+1]})
	}
	return out
}

// TestSpanOf proves the depth rule: a snapshot vouches for every level
// down to its worst bid and up to its worst ask, and for a whole side when
// it has fewer levels than the limit it asked for; a partial frame (limit
// unknown) is always cut at its worst level.
func TestSpanOf(t *testing.T) {
	inf := math.Inf(1)
	for _, tc := range []struct {
		name       string
		bids, asks []book.Level
		limit      int32
		want       span
	}{
		{"cut at the worst levels", lv(10, 1, 9, 1), lv(11, 1, 12, 1), 2, span{9, 12}},
		{"limit unknown", lv(10, 1, 9, 1), lv(11, 1, 12, 1), 0, span{9, 12}},
		{"whole sides", lv(10, 1, 9, 1), lv(11, 1), 5, span{-inf, inf}},
		{"one whole side", lv(10, 1, 9, 1), lv(11, 1, 12, 1, 13, 1), 3, span{-inf, 13}},
		{"empty side, limit unknown: vouches for nothing", nil, lv(11, 1), 0, span{inf, 11}},
	} {
		if got := spanOf(tc.bids, tc.asks, tc.limit); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

// TestCompareAt proves the comparison of a frame with the book at the
// frame's update id: at the head (the allocation-free walk), behind the
// head (the undo log puts back the quantities later events changed),
// inside an event (compared after it, with the event applied to the
// frame), older than the log (skipped), restricted to the span both know,
// and naming the first differing level best first.
func TestCompareAt(t *testing.T) {
	var b book.Book
	if err := b.Load(lv(100, 1, 99, 2, 98, 3, 90, 9), lv(101, 1, 102, 2, 103, 3)); err != nil {
		t.Fatal(err)
	}
	l := newUndoLog(3, 100)
	l.reset(10) // the snapshot was at 10
	apply := func(first, final int64, bids, asks []book.Level) {
		l.record(&b, first, final, bids, asks)
		if err := b.ApplyLevels(bids, asks); err != nil {
			t.Fatal(err)
		}
	}
	apply(11, 12, lv(100, 5), nil)              // -> 12
	apply(13, 15, lv(99, 0), lv(101.5, 4))      // -> 15
	apply(16, 16, nil, lv(101, 0))              // -> 16
	base := span{BidLo: 95, AskHi: math.Inf(1)} // the book knows bids >= 95
	tgt := func(id int64, bids, asks []book.Level) *target {
		return &target{snapshot: true, id: id, bids: bids, asks: asks, span: spanOf(bids, asks, 0)}
	}
	for _, tc := range []struct {
		name     string
		t        *target
		skipped  string
		at       int64
		straddle bool
		diffs    int
		first    string
		bids     int
	}{
		{name: "at the head", t: tgt(16, lv(100, 5, 98, 3), lv(101.5, 4, 102, 2)), at: 16, bids: 2},
		{name: "behind by one event", t: tgt(15, lv(100, 5, 98, 3), lv(101, 1, 101.5, 4)), at: 15, bids: 2},
		{name: "behind by three events", t: tgt(10, lv(100, 1, 99, 2, 98, 3), lv(101, 1, 102, 2)), at: 10, bids: 3},
		{name: "inside event 13..15", t: tgt(14, lv(100, 5, 99, 2, 98, 3), lv(101, 1, 102, 2)), at: 15, straddle: true, bids: 2},
		{name: "below the book's span: level 90 not compared", t: tgt(16, lv(100, 5, 98, 3, 90, 1), lv(101.5, 4)), at: 16, bids: 2},
		{name: "mismatch behind the head", t: tgt(12, lv(100, 5, 99, 7, 98, 3), lv(101, 1)), at: 12, diffs: 1, first: "bid 99: book 2, snapshot 7", bids: 3},
		{name: "missing level at the head", t: tgt(16, lv(100, 5, 98, 3), lv(102, 2)), at: 16, diffs: 1, first: "ask 101.5: book 4, snapshot 0", bids: 2},
		{name: "extra level", t: tgt(16, lv(100, 5, 99.5, 1, 98, 3), lv(101.5, 4)), at: 16, diffs: 1, first: "bid 99.5: book 0, snapshot 1", bids: 3},
		{name: "older than the log", t: tgt(9, lv(100, 1), lv(101, 1)), skipped: "too old for the undo log"},
	} {
		got := l.compareAt(&b, tc.t, base.intersect(tc.t.span))
		if got.skipped != tc.skipped {
			t.Errorf("%s: skipped %q, want %q", tc.name, got.skipped, tc.skipped)
			continue
		}
		if tc.skipped != "" {
			continue
		}
		if got.at != tc.at || got.straddle != tc.straddle || got.diffs != tc.diffs || got.first != tc.first || got.bids != tc.bids {
			t.Errorf("%s: %+v, want at %d straddle %v diffs %d first %q bids %d", tc.name, got, tc.at, tc.straddle, tc.diffs, tc.first, tc.bids)
		}
	}
	// The log keeps 3 events: a fourth drops the oldest, and the state
	// before it is no longer comparable.
	apply(17, 17, lv(97, 1), nil)
	if got := l.compareAt(&b, tgt(11, lv(100, 1), lv(101, 1)), fullSpan); got.skipped == "" {
		t.Errorf("state 11 still comparable after trimming: %+v", got)
	}
	if got := l.compareAt(&b, tgt(12, lv(100, 5, 99, 2, 98, 3, 90, 9), lv(101, 1, 102, 2, 103, 3)), fullSpan); got.diffs != 0 || got.at != 12 {
		t.Errorf("state 12 after trimming: %+v", got)
	}
}

// TestUndoLogBounds proves the undo log stays within its bounds over a
// long run (compaction) and still compares correctly.
func TestUndoLogBounds(t *testing.T) {
	var b book.Book
	if err := b.Load(lv(100, 1), lv(101, 1)); err != nil {
		t.Fatal(err)
	}
	l := newUndoLog(64, 256)
	l.reset(0)
	for i := int64(1); i <= 10000; i++ {
		bids := lv(100, float64(i), 99-float64(i%7), float64(i%3))
		l.record(&b, i, i, bids, nil)
		if err := b.ApplyLevels(bids, nil); err != nil {
			t.Fatal(err)
		}
		if n := len(l.events()); n > 64 {
			t.Fatalf("%d events held", n)
		}
		if cap(l.levels) > 2*256+16 || cap(l.all) > 2*64 {
			t.Fatalf("slices grew: levels cap %d, events cap %d", cap(l.levels), cap(l.all))
		}
	}
	// The state after 9990: qty at 100 was 9990.
	var bids []book.Level
	for lvl := range b.Bids() {
		bids = append(bids, lvl)
	}
	res := l.compareAt(&b, &target{id: 9990, bids: lv(100, 9990), asks: lv(101, 1)}, span{BidLo: 100, AskHi: 101})
	if res.skipped != "" || res.diffs != 0 {
		t.Errorf("compare at 9990: %+v (book now %v)", res, bids[:2])
	}
}
