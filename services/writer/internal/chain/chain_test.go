package chain

import "testing"

// TestChain proves the sequence state machine: in-order appends, gaps,
// late fills from another replica (closing, shrinking and splitting a gap),
// duplicates, overlaps and id resets. Events are (prev link, u, E).
func TestChain(t *testing.T) {
	type ev struct{ prev, u, e int64 }
	tests := []struct {
		name     string
		events   []ev
		want     []Verdict
		wantGaps [][2]int64
	}{
		{"in order", []ev{{0, 10, 1}, {10, 20, 2}, {20, 30, 3}}, []Verdict{Append, Append, Append}, nil},
		{"duplicate", []ev{{0, 10, 1}, {10, 20, 2}, {10, 20, 2}, {0, 10, 1}}, []Verdict{Append, Append, Duplicate, Duplicate}, nil},
		{"gap opens", []ev{{0, 10, 1}, {30, 40, 4}}, []Verdict{Append, AppendAfterGap}, [][2]int64{{10, 30}}},
		{"gap filled whole", []ev{{0, 10, 1}, {30, 40, 4}, {10, 30, 2}}, []Verdict{Append, AppendAfterGap, Fill}, nil},
		{"gap filled in two", []ev{{0, 10, 1}, {30, 40, 4}, {10, 20, 2}, {20, 30, 3}}, []Verdict{Append, AppendAfterGap, Fill, Fill}, nil},
		{"gap shrinks from the end", []ev{{0, 10, 1}, {30, 40, 4}, {20, 30, 3}}, []Verdict{Append, AppendAfterGap, Fill}, [][2]int64{{10, 20}}},
		{"gap splits", []ev{{0, 10, 1}, {50, 60, 6}, {20, 30, 3}}, []Verdict{Append, AppendAfterGap, Fill}, [][2]int64{{10, 20}, {30, 50}}},
		{"fill then duplicate of the fill", []ev{{0, 10, 1}, {30, 40, 4}, {10, 30, 2}, {10, 30, 2}}, []Verdict{Append, AppendAfterGap, Fill, Duplicate}, nil},
		{"overlap", []ev{{0, 10, 1}, {5, 20, 2}}, []Verdict{Append, Overlap}, nil},
		{"reset to lower ids with newer time", []ev{{0, 1000, 5}, {0, 10, 6}, {10, 20, 7}}, []Verdict{Append, Reset, Append}, nil},
		{"lower ids with older time are duplicates", []ev{{0, 1000, 5}, {0, 10, 4}}, []Verdict{Append, Duplicate}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Chain
			for i, e := range tt.events {
				got := c.Observe(Event{Prev: e.prev, U: e.u, EventMs: e.e, RecvNs: int64(i)}).Verdict
				if got != tt.want[i] {
					t.Fatalf("event %d %+v: %s, want %s", i, e, got, tt.want[i])
				}
			}
			if len(c.Gaps) != len(tt.wantGaps) {
				t.Fatalf("gaps %+v, want %v", c.Gaps, tt.wantGaps)
			}
			for i, g := range tt.wantGaps {
				if c.Gaps[i].After != g[0] || c.Gaps[i].Resume != g[1] {
					t.Fatalf("gap %d = (%d, %d], want (%d, %d]", i, c.Gaps[i].After, c.Gaps[i].Resume, g[0], g[1])
				}
			}
		})
	}
}

// TestReports proves how collector gap reports are matched: attached to
// the open gap they overlap, pending until the gap appears, covered when
// the events turn out complete (never seen missing, or filled).
func TestReports(t *testing.T) {
	t.Run("report before the gap, then filled", func(t *testing.T) {
		var c Chain
		c.Observe(Event{Prev: 0, U: 10, EventMs: 1})
		if c.Report(Report{AfterID: 10, ResumePrevID: 30, StreamSeq: 7}) {
			t.Fatal("covered too early")
		}
		c.Observe(Event{Prev: 30, U: 40, EventMs: 4})
		if len(c.Gaps) != 1 || len(c.Gaps[0].Reports) != 1 || len(c.Pending) != 0 {
			t.Fatalf("report not attached: %+v pending %+v", c.Gaps, c.Pending)
		}
		res := c.Observe(Event{Prev: 10, U: 30, EventMs: 2})
		if res.Verdict != Fill || len(res.Covered) != 1 || res.Covered[0].StreamSeq != 7 {
			t.Fatalf("fill result %+v", res)
		}
	})
	t.Run("report of events already present", func(t *testing.T) {
		var c Chain
		c.Observe(Event{Prev: 0, U: 10, EventMs: 1})
		c.Observe(Event{Prev: 10, U: 20, EventMs: 2})
		if !c.Report(Report{AfterID: 10, ResumePrevID: 20}) {
			t.Fatal("want covered")
		}
	})
	t.Run("pending report resolved as covered", func(t *testing.T) {
		var c Chain
		c.Observe(Event{Prev: 0, U: 10, EventMs: 1})
		c.Report(Report{AfterID: 10, ResumePrevID: 20})
		res := c.Observe(Event{Prev: 10, U: 20, EventMs: 2})
		if len(res.Covered) != 1 {
			t.Fatalf("covered %+v", res.Covered)
		}
	})
}

// TestRecent proves the bounded dedup set of unchained streams.
func TestRecent(t *testing.T) {
	var r Recent
	for _, id := range []int64{5, 6, 7, 8} {
		if v := r.Observe(id, 4); v != Append {
			t.Fatalf("%d: %s", id, v)
		}
	}
	if v := r.Observe(6, 4); v != Duplicate {
		t.Fatalf("6 again: %s", v)
	}
	if v := r.Observe(9, 4); v != Append {
		t.Fatalf("9: %s", v)
	}
	if v := r.Observe(3, 4); v != BeyondHorizon {
		t.Fatalf("3: %s", v)
	}
	if v := r.Observe(7, 4); v != Duplicate {
		t.Fatalf("7 again: %s", v)
	}
}
