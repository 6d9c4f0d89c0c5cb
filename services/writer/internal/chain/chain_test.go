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

// TestSampledDedup proves the bounded dedup set of unchained streams.
func TestSampledDedup(t *testing.T) {
	var r Sampled
	for _, id := range []int64{5, 6, 7, 8} {
		if v := r.Observe(id, "A", 4); v != Append {
			t.Fatalf("%d: %s", id, v)
		}
	}
	if v := r.Observe(6, "B", 4); v != Duplicate {
		t.Fatalf("6 again: %s", v)
	}
	if v := r.Observe(9, "B", 4); v != Append {
		t.Fatalf("9: %s", v)
	}
	if v := r.Observe(3, "A", 4); v != BeyondHorizon {
		t.Fatalf("3: %s", v)
	}
	if v := r.Observe(7, "A", 4); v != Duplicate {
		t.Fatalf("7 again: %s", v)
	}
	if len(r.IDs) != len(r.Src) {
		t.Fatalf("%d ids, %d sources", len(r.IDs), len(r.Src))
	}
	for i, id := range r.IDs {
		want := "A"
		if id == 9 {
			want = "B"
		}
		if got := r.Sources[r.Src[i]]; got != want {
			t.Errorf("id %d from %s, want %s (the first deliverer)", id, got, want)
		}
	}
}

// TestSampledSources proves that the source table stays bounded: sources
// no remembered id refers to are dropped to make room, and an id whose
// source finds no room carries NoSource, which is no evidence.
func TestSampledSources(t *testing.T) {
	var r Sampled
	const size = 16
	id := int64(0)
	for i := range 3 * MaxSources {
		id++
		r.Observe(id, "S"+itoa(i), size)
	}
	if len(r.Sources) > MaxSources {
		t.Fatalf("%d sources", len(r.Sources))
	}
	for i, s := range r.Src {
		if s == NoSource || r.Sources[s] != "S"+itoa(int(r.IDs[i])-1) {
			t.Fatalf("id %d has source %d", r.IDs[i], s)
		}
	}
	// A full table of live sources: the new one gets NoSource.
	var f Sampled
	for i := range MaxSources {
		f.Observe(int64(i+1), "S"+itoa(i), 1024)
	}
	f.Observe(1000, "late", 1024)
	if f.Src[len(f.Src)-1] != NoSource {
		t.Fatalf("source index %d, want NoSource", f.Src[len(f.Src)-1])
	}
	f.Report(Report{Source: "B", AfterID: 999, ResumePrevID: 1000}, FileRef{})
	if f.Claims[0].Inside {
		t.Fatal("an id of an unknown source counted as evidence")
	}
}

func itoa(i int) string { return string(rune('a'+i/26)) + string(rune('a'+i%26)) }

// TestSampledClaims proves the decision on gap reports of unchained
// streams (Claim.Covered) and its inputs: evidence from remembered ids
// and from later ones, the reporter's own ids ignored, conflicts in both
// directions and with decided reports, and the MaxClaims bound.
func TestSampledClaims(t *testing.T) {
	type op struct {
		src       string
		id        int64 // frame id, or a report's after_id
		report    bool  // a report (id, end] of src
		end       int64
		resolve   bool // resolve file 0 here
		wantCover []bool
	}
	f := func(src string, id int64) op { return op{src: src, id: id} }
	rep := func(src string, after, end int64) op { return op{src: src, id: after, report: true, end: end} }
	resolve := func(want ...bool) op { return op{resolve: true, wantCover: want} }
	tests := []struct {
		name string
		ops  []op
	}{
		{"inside, remembered", []op{f("A", 100), f("A", 120), rep("B", 110, 139), resolve(true)}},
		{"inside, later", []op{f("A", 100), rep("B", 110, 139), f("A", 139), resolve(true)}},
		{"own ids inside are no evidence", []op{f("B", 120), rep("B", 110, 139), f("B", 130), resolve(false)}},
		{"below and above, one source", []op{f("A", 100), rep("B", 110, 139), f("A", 140), resolve(true)}},
		{"below from one source, above from another", []op{f("A", 100), rep("B", 110, 139), f("C", 140), resolve(false)}},
		{"above only", []op{rep("B", 110, 139), f("A", 140), f("A", 150), resolve(false)}},
		{"nothing", []op{rep("B", 110, 139), resolve(false)}},
		{"overlapping report of another source: both gaps", []op{f("A", 100), f("B", 100), rep("B", 110, 139), rep("A", 130, 160), f("A", 170), f("B", 170), f("A", 120), f("B", 150), resolve(false, false)}},
		{"adjacent reports do not conflict", []op{f("A", 100), rep("B", 100, 139), f("A", 120), rep("A", 139, 160), f("B", 150), resolve(true, true)}},
		{"same source twice is no conflict", []op{f("A", 100), f("A", 120), rep("B", 110, 139), rep("B", 115, 145), f("A", 140), resolve(true, true)}},
		{"conflict with a decided report", []op{f("A", 100), f("A", 120), rep("A", 130, 150), resolve(false), rep("B", 110, 139), resolve(false)}},
		{"unknown end: one id after after_id", []op{f("A", 100), rep("B", 110, 0), f("A", 111), resolve(true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Sampled
			for i, o := range tt.ops {
				switch {
				case o.resolve:
					covered, gaps := s.Resolve(FileRef{})
					if len(covered)+len(gaps) != len(o.wantCover) {
						t.Fatalf("op %d: %d covered, %d gaps, want %d decisions", i, len(covered), len(gaps), len(o.wantCover))
					}
					n := 0
					for _, w := range o.wantCover {
						if w {
							n++
						}
					}
					if len(covered) != n {
						t.Fatalf("op %d: covered %+v gaps %+v, want %v", i, covered, gaps, o.wantCover)
					}
					if len(s.Claims) != 0 {
						t.Fatalf("claims left: %+v", s.Claims)
					}
				case o.report:
					if s.Report(Report{Source: o.src, AfterID: o.id, ResumePrevID: o.end, StreamSeq: uint64(i)}, FileRef{}) != nil {
						t.Fatal("evicted")
					}
				default:
					s.Observe(o.id, o.src, 1024)
				}
			}
		})
	}
	t.Run("claims are bounded", func(t *testing.T) {
		var s Sampled
		s.Observe(1, "A", 1024)
		var evicted []*Claim
		for i := range MaxClaims + 2 {
			if old := s.Report(Report{Source: "B", AfterID: int64(10 * i), ResumePrevID: int64(10*i + 5)}, FileRef{Period: int64(i)}); old != nil {
				evicted = append(evicted, old)
			}
		}
		if len(s.Claims) != MaxClaims || len(evicted) != 2 || evicted[0].AfterID != 0 || evicted[1].AfterID != 10 {
			t.Fatalf("%d claims, evicted %+v", len(s.Claims), evicted)
		}
		if len(s.Past) != 2 {
			t.Fatalf("past %+v", s.Past)
		}
		if !s.HasClaims(FileRef{Period: 2}) || s.HasClaims(FileRef{Period: 1}) {
			t.Fatal("HasClaims")
		}
	})
}
