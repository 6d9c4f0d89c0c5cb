package ingest

import (
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
)

// step is one input to the tracker.
type step struct {
	op       string // "pub": check, then accepted if published; "drop": check, then dropped; "disc": the connection ended; "hold": check only (no flush)
	id, prev int64
	noGap    bool // the frame came from a rotation's secondary connection
	want     verdict
	wantGap  bool
}

type rec struct {
	reason     envelope.GapReason
	after, res int64
	framesLost int64
	streamKind md.Kind
}

// TestTracker proves the gap state machine: which frames are published,
// skipped or deferred, and that every loss becomes exactly one record with
// the exact range (AfterID < u <= ResumePrevID) and reason.
func TestTracker(t *testing.T) {
	const (
		seq = envelope.ReasonSequence
		dis = envelope.ReasonDisconnect
		ovf = envelope.ReasonBufferOverflow
	)
	d, p := md.Diff, md.Partial
	tests := []struct {
		name     string
		kind     md.Kind
		steps    []step
		want     []rec
		wantLast int64
	}{
		{"spot chain intact", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "pub", id: 15, prev: 10}, {op: "pub", id: 20, prev: 15},
		}, nil, 20},
		{"sequence gap has the exact range", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "pub", id: 20, prev: 15, wantGap: true}, {op: "pub", id: 25, prev: 20},
		}, []rec{{reason: seq, after: 10, res: 15, streamKind: d}}, 25},
		{"futures pu chain gap", d, []step{
			{op: "pub", id: 100, prev: 90}, {op: "pub", id: 130, prev: 100}, {op: "pub", id: 170, prev: 150, wantGap: true},
		}, []rec{{reason: seq, after: 130, res: 150, streamKind: d}}, 170},
		{"break after a reconnect is a disconnect gap", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "disc"}, {op: "pub", id: 20, prev: 15, wantGap: true},
		}, []rec{{reason: dis, after: 10, res: 15, streamKind: d}}, 20},
		{"reconnect without loss records nothing and resets the reason", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "disc"}, {op: "pub", id: 15, prev: 10}, {op: "pub", id: 25, prev: 20, wantGap: true},
		}, []rec{{reason: seq, after: 15, res: 20, streamKind: d}}, 25},
		{"a duplicate does not clear the disconnect", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "disc"}, {op: "pub", id: 9, prev: 5, want: duplicate}, {op: "pub", id: 20, prev: 15, wantGap: true},
		}, []rec{{reason: dis, after: 10, res: 15, streamKind: d}}, 20},
		{"duplicates and older frames are skipped", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "pub", id: 10, prev: 4, want: duplicate}, {op: "pub", id: 8, prev: 2, want: duplicate},
		}, nil, 10},
		{"an overlapping event is published without a record", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "pub", id: 12, prev: 8},
		}, nil, 12},
		{"a connection that may not decide defers a break; the other fills it", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "pub", id: 20, prev: 15, noGap: true, want: deferred},
			{op: "pub", id: 15, prev: 10}, {op: "pub", id: 20, prev: 15}, {op: "pub", id: 20, prev: 15, noGap: true, want: duplicate},
		}, nil, 20},
		{"a frame that follows is published from the secondary too", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "pub", id: 15, prev: 10, noGap: true},
		}, nil, 15},
		{"overflow counts the dropped frames", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "drop", id: 11, prev: 10}, {op: "drop", id: 12, prev: 11}, {op: "pub", id: 13, prev: 12},
		}, []rec{{reason: ovf, after: 10, res: 12, framesLost: 2, streamKind: d}}, 13},
		{"a break while dropping splits the records exactly", d, []step{
			{op: "pub", id: 10, prev: 4}, {op: "drop", id: 11, prev: 10}, {op: "drop", id: 20, prev: 15, wantGap: true}, {op: "pub", id: 21, prev: 20},
		}, []rec{
			{reason: ovf, after: 10, res: 11, framesLost: 1, streamKind: d},
			{reason: seq, after: 11, res: 15, streamKind: d},
			{reason: ovf, after: 15, res: 20, framesLost: 1, streamKind: d},
		}, 21},
		{"the first frame dropped starts the range at its link", d, []step{
			{op: "drop", id: 10, prev: 7}, {op: "pub", id: 11, prev: 10},
		}, []rec{{reason: ovf, after: 7, res: 10, framesLost: 1, streamKind: d}}, 11},
		{"partial: no chain, repeats skipped", p, []step{
			{op: "pub", id: 100}, {op: "pub", id: 100, want: duplicate}, {op: "pub", id: 105},
		}, nil, 105},
		{"partial: disconnect records the ids between", p, []step{
			{op: "pub", id: 100}, {op: "disc"}, {op: "pub", id: 110, wantGap: true},
			{op: "disc"}, {op: "pub", id: 111},
		}, []rec{{reason: dis, after: 100, res: 109, streamKind: p}}, 111},
		{"partial: overflow", p, []step{
			{op: "pub", id: 100}, {op: "drop", id: 103}, {op: "drop", id: 107}, {op: "pub", id: 110},
		}, []rec{{reason: ovf, after: 100, res: 107, framesLost: 2, streamKind: p}}, 110},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := newTracker(tt.kind)
			var got []envelope.Gap
			for i, s := range tt.steps {
				ns := int64(i+1) * 1000
				switch s.op {
				case "disc":
					tr.markDisconnected()
					continue
				case "pub", "drop":
				default:
					t.Fatalf("bad op %q", s.op)
				}
				v, gap := tr.check(s.id, s.prev, ns, !s.noGap)
				if v != s.want || gap != s.wantGap {
					t.Fatalf("step %d (%+v): check = %v, gap %v; want %v, gap %v", i, s, v, gap, s.want, s.wantGap)
				}
				if v == publish {
					if s.op == "pub" {
						tr.accepted(s.id, ns)
					} else {
						tr.dropped(s.id, s.prev, ns)
					}
				}
				for {
					g, ok := tr.pending()
					if !ok {
						break
					}
					got = append(got, *g)
					tr.pop()
				}
			}
			tr.closeAll(1 << 40)
			for g, ok := tr.pending(); ok; g, ok = tr.pending() {
				got = append(got, *g)
				tr.pop()
			}
			if len(got) != len(tt.want) {
				t.Fatalf("records = %+v, want %+v", got, tt.want)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Reason != w.reason || g.AfterID != w.after || g.ResumePrevID != w.res || g.FramesLost != w.framesLost || g.StreamKind != w.streamKind {
					t.Errorf("record %d = %+v, want %+v", i, g, w)
				}
				if g.EndNs < g.StartNs {
					t.Errorf("record %d ends before it starts: %+v", i, g)
				}
			}
			if tr.last != tt.wantLast {
				t.Errorf("last = %d, want %d", tr.last, tt.wantLast)
			}
		})
	}
}

// TestTrackerSlotFull proves that records are never lost when the
// publisher refuses them for long: past the slot size they merge into the
// last record, whose range then covers every lost id.
func TestTrackerSlotFull(t *testing.T) {
	tr := newTracker(md.Diff)
	tr.check(10, 9, 1, true)
	tr.accepted(10, 1)
	u := int64(10)
	for i := range maxPendingGaps + 3 {
		next := u + 10
		if v, gap := tr.check(next, next-5, int64(i+2), true); v != publish || !gap {
			t.Fatalf("gap %d not detected", i)
		}
		tr.accepted(next, int64(i+2))
		u = next
	}
	if tr.npend != maxPendingGaps || tr.merged != 3 {
		t.Fatalf("pending %d merged %d, want %d and 3", tr.npend, tr.merged, maxPendingGaps)
	}
	last := tr.pend[tr.npend-1]
	if last.ResumePrevID != u-5 || !strings.Contains(last.Detail, "merged") {
		t.Fatalf("merged record %+v: want ResumePrevID %d and a merged detail", last, u-5)
	}
	// Every lost range (prev u, u-5] is inside some record.
	for v := int64(20); v <= u; v += 10 {
		lost := v - 5
		covered := false
		for _, g := range tr.pend[:tr.npend] {
			if g.AfterID < lost && lost <= g.ResumePrevID {
				covered = true
			}
		}
		if !covered {
			t.Fatalf("lost id %d is in no record", lost)
		}
	}
}
