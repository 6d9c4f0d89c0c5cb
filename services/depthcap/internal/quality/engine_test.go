package quality

import (
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
)

// ev is a diff row for engine tests: ids, receive time in ms and one bid.
type ev struct {
	first, final, prev int64
	ms                 int64
	bid                float64
}

// TestEngineChain proves the diff chain on handmade rows after a snapshot
// at 100 (best ask 1000): events in order are applied; events after a
// hole wait for another replica's copies written later in stream order
// (no gap when they come within the window); a hole not filled within
// the window is exactly one gap (after the last event before it, up to the
// link of the first after it); a copy that arrives after the gap was
// declared is counted on it as a late fill; a second copy of an applied
// event is a duplicate row; an event that overlaps the head is counted and
// loses the live book.
func TestEngineChain(t *testing.T) {
	type gap struct{ after, resume int64 }
	for _, tc := range []struct {
		name     string
		market   md.Market
		evs      []ev
		gaps     []gap
		dups     int64
		overlaps int64
		late     int64
		live     bool
		head     int64
	}{
		{name: "in order", market: md.Spot, evs: []ev{{101, 102, 0, 1, 10}, {103, 105, 0, 2, 11}, {106, 106, 0, 3, 12}}, live: true, head: 106},
		{name: "hole filled within the window", market: md.Spot,
			evs:  []ev{{101, 102, 0, 1, 10}, {106, 107, 0, 2, 11}, {108, 108, 0, 3, 12}, {103, 105, 0, 1500, 13}},
			live: true, head: 108},
		{name: "two holes filled in reverse order", market: md.Spot,
			evs:  []ev{{101, 101, 0, 1, 10}, {104, 104, 0, 2, 11}, {103, 103, 0, 3, 12}, {102, 102, 0, 4, 13}},
			live: true, head: 104},
		{name: "hole not filled", market: md.Spot,
			evs:  []ev{{101, 102, 0, 1, 10}, {106, 107, 0, 2, 11}, {108, 108, 0, 2500, 12}},
			gaps: []gap{{102, 105}}, head: 108},
		{name: "hole filled after the window", market: md.Spot,
			evs:  []ev{{101, 102, 0, 1, 10}, {106, 107, 0, 2, 11}, {108, 108, 0, 2500, 12}, {103, 105, 0, 2600, 13}},
			gaps: []gap{{102, 105}}, late: 1, head: 108},
		{name: "duplicate row", market: md.Spot, evs: []ev{{101, 102, 0, 1, 10}, {101, 102, 0, 2, 10}, {103, 103, 0, 3, 11}},
			dups: 1, live: true, head: 103},
		{name: "overlap", market: md.Spot, evs: []ev{{101, 103, 0, 1, 10}, {102, 104, 0, 2, 11}}, overlaps: 1, head: 104},
		{name: "futures in order (ids not consecutive)", market: md.Futures,
			evs: []ev{{95, 120, 90, 1, 10}, {130, 150, 120, 2, 11}, {151, 170, 150, 3, 12}}, live: true, head: 170},
		{name: "futures hole filled within the window", market: md.Futures,
			evs:  []ev{{95, 120, 90, 1, 10}, {151, 170, 150, 2, 11}, {130, 150, 120, 3, 12}},
			live: true, head: 170},
		{name: "futures hole", market: md.Futures,
			evs:  []ev{{95, 120, 90, 1, 10}, {151, 170, 150, 2, 11}, {171, 180, 170, 2100, 12}},
			gaps: []gap{{120, 150}}, head: 180},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := newEngine(tc.market, true, 0)
			if err != nil {
				t.Fatal(err)
			}
			e.row(&dataset.Row{Kind: md.Snapshot, ReceivedUs: 0, LastUpdateID: 100, Bids: lv(1, 1), Asks: lv(1000, 1)})
			for _, x := range tc.evs {
				e.row(&dataset.Row{Kind: md.Diff, ReceivedUs: x.ms * 1000, FirstID: x.first, HasFirst: true, FinalID: x.final,
					PrevID: x.prev, HasPrev: tc.market == md.Futures, Bids: lv(x.bid, 1)})
			}
			e.finish()
			var gaps []gap
			for _, g := range e.gaps {
				gaps = append(gaps, gap{g.after, g.resume})
			}
			if len(gaps) != len(tc.gaps) || len(gaps) > 0 && gaps[0] != tc.gaps[0] {
				t.Errorf("gaps %v, want %v", gaps, tc.gaps)
			}
			if e.dups != tc.dups || e.overlaps != tc.overlaps || e.lateFills != tc.late {
				t.Errorf("dups %d overlaps %d late fills %d, want %d %d %d", e.dups, e.overlaps, e.lateFills, tc.dups, tc.overlaps, tc.late)
			}
			if live := e.sync.State().String() == "live"; live != tc.live || e.head != tc.head {
				t.Errorf("live %v head %d, want %v %d (book at %d, %s)", live, e.head, tc.live, tc.head, e.sync.LastUpdateID(), e.sync.State())
			}
			if tc.live && e.sync.LastUpdateID() != tc.head {
				t.Errorf("book at %d, want %d", e.sync.LastUpdateID(), tc.head)
			}
		})
	}
}

// TestEngineRestore proves the restore after a gap: the next snapshot
// that bridges makes the book live, the gap records when (no earlier than
// the row that showed it) and by which snapshot, the next matching partial
// frame verifies it, and the book is comparable from the snapshot's id on.
func TestEngineRestore(t *testing.T) {
	e, err := newEngine(md.Spot, true, 0)
	if err != nil {
		t.Fatal(err)
	}
	feed := func(r dataset.Row) { e.row(&r) }
	feed(dataset.Row{Kind: md.Snapshot, ReceivedUs: 0, LastUpdateID: 100, Bids: lv(10, 1), Asks: lv(20, 1)})
	feed(dataset.Row{Kind: md.Diff, ReceivedUs: 1000, FirstID: 101, FinalID: 101, Bids: lv(11, 1)})
	feed(dataset.Row{Kind: md.Diff, ReceivedUs: 2000, FirstID: 105, FinalID: 105, Bids: lv(12, 1)}) // hole 102..104
	feed(dataset.Row{Kind: md.Diff, ReceivedUs: 3000, FirstID: 106, FinalID: 106, Bids: lv(13, 1)})
	// The window passes: the hole is a gap and the book is lost.
	feed(dataset.Row{Kind: md.Partial, ReceivedUs: 2_500_000, FinalID: 106, Bids: lv(13, 1, 12, 1, 11, 1, 10, 1), Asks: lv(20, 1)})
	if len(e.gaps) != 1 || e.sync.State().String() == "live" {
		t.Fatalf("gaps %d, state %s", len(e.gaps), e.sync.State())
	}
	// A snapshot at 106 (taken after the gap) restores it.
	feed(dataset.Row{Kind: md.Snapshot, ReceivedUs: 2_600_000, LastUpdateID: 106, Bids: lv(13, 1, 12, 1, 10, 1), Asks: lv(20, 1)})
	feed(dataset.Row{Kind: md.Diff, ReceivedUs: 2_700_000, FirstID: 107, FinalID: 107, Asks: lv(19, 1)})
	feed(dataset.Row{Kind: md.Partial, ReceivedUs: 2_800_000, FinalID: 107, Bids: lv(13, 1, 12, 1, 10, 1), Asks: lv(19, 1, 20, 1)})
	// A second snapshot at the restoring snapshot's id, received after the
	// event that bridged it: the book's state at 106 is still comparable.
	feed(dataset.Row{Kind: md.Snapshot, ReceivedUs: 2_900_000, LastUpdateID: 106, Bids: lv(13, 1, 12, 1, 10, 1), Asks: lv(20, 1)})
	e.finish()
	g := e.gaps[0]
	if g.after != 101 || g.resume != 104 || g.resumeUs != 2000 {
		t.Errorf("gap %+v", g)
	}
	if g.restoredUs != 2_700_000 || g.restoredBy != 106 || g.verifyUs != 2_800_000 {
		t.Errorf("restored at %d by %d, verified at %d; want 2700000 (the first event after the snapshot), 106, 2800000", g.restoredUs, g.restoredBy, g.verifyUs)
	}
	if e.partials.compared != 1 || e.partials.matched != 1 || e.partials.skipped["book not live"] != 1 {
		t.Errorf("partials %+v", e.partials)
	}
	if e.snaps.compared != 1 || e.snaps.matched != 1 || len(e.snaps.skipped) != 0 {
		t.Errorf("snapshots %+v", e.snaps)
	}
}
