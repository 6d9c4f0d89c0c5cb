package book

import (
	"errors"
	"strings"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

// TestVerifierCleanStream proves that a consistent stream gives an OK
// report: partial frames are checked whether they arrive before or after
// their diff, and a snapshot arriving on a live book is compared after the
// re-sync.
func TestVerifierCleanStream(t *testing.T) {
	v, err := NewVerifier(md.Spot, 5)
	if err != nil {
		t.Fatal(err)
	}
	v.Diff(ev(99, 101)) // buffered, replayed by the snapshot
	v.Snapshot(100, snapBids, snapAsks)
	// The truth after event u, for partials and snapshots.
	truth := func(u int64) (bids, asks []Level) {
		var b Book
		_ = b.Load(snapBids, snapAsks)
		for id := int64(101); id <= u; id++ {
			e := ev(id, id)
			if id == 101 {
				e = ev(99, 101)
			}
			_ = b.ApplyLevels(e.Bids, e.Asks)
		}
		return b.Levels(nil, nil)
	}
	b, a := truth(102)
	v.Partial(102, b, a) // arrives before diff 102: held
	for id := int64(102); id <= 110; id++ {
		v.Diff(ev(id, id))
		if id == 105 {
			b, a := truth(105)
			v.Partial(105, b, a) // arrives right after its diff
		}
	}
	b, a = truth(107)
	v.Snapshot(107, b, a) // older than the live book: replayed back to 110
	v.Diff(ev(111, 111))
	r := v.Report()
	if !r.OK() {
		t.Fatalf("report not OK: %+v", r)
	}
	if r.PartialsChecked != 2 || r.PartialsSkipped != 0 || r.SnapshotsChecked != 1 {
		t.Fatalf("partials checked %d skipped %d, snapshots checked %d; want 2, 0, 1", r.PartialsChecked, r.PartialsSkipped, r.SnapshotsChecked)
	}
}

// TestVerifierFindsProblems proves that the report carries gaps, crossings,
// partial mismatches, snapshot mismatches, invalid input and skipped
// partials.
func TestVerifierFindsProblems(t *testing.T) {
	v, _ := NewVerifier(md.Futures, 0)
	v.Partial(5, lv(1, 1), nil) // not live: skipped
	v.Snapshot(100, lv(90, 1), lv(110, 1))
	v.Diff(fev(95, 100, 90))
	v.Diff(fev(103, 104, 100))
	v.Partial(104, lv(90, 2), nil) // mismatch
	v.Diff(fev(106, 108, 104))
	v.Diff(Update{First: 109, Final: 110, Prev: 108, HasPrev: true, Bids: lv(200, 1)}) // crossed
	v.Diff(fev(120, 125, 115))                                                         // gap
	v.Snapshot(125, lv(1, 1), []Level{{-1, 1}})                                        // invalid
	v.Diff(fev(130, 128, 125))                                                         // invalid
	r := v.Report()
	if r.OK() {
		t.Fatal("report OK despite problems")
	}
	if len(r.Gaps) != 1 || r.Gaps[0].From != 111 || r.Gaps[0].To != 115 {
		t.Fatalf("gaps %+v", r.Gaps)
	}
	if len(r.Crossings) != 1 || r.Crossings[0].At != 110 {
		t.Fatalf("crossings %+v", r.Crossings)
	}
	if r.PartialsMismatch != 1 || len(r.Mismatches) != 1 || !strings.HasPrefix(r.Mismatches[0].Diff, "partial: bid[0]") {
		t.Fatalf("mismatches %+v", r.Mismatches)
	}
	if r.PartialsSkipped != 1 || r.InvalidSnapshots != 1 || len(r.Invalid) != 2 {
		t.Fatalf("skipped %d invalid snapshots %d invalid %q", r.PartialsSkipped, r.InvalidSnapshots, r.Invalid)
	}
	if !errors.Is(&r.Gaps[0], ErrGap) {
		t.Fatal("GapError does not match ErrGap")
	}

	// A re-sync that rebuilds a different book is a snapshot mismatch.
	v, _ = NewVerifier(md.Spot, 0)
	v.Snapshot(100, lv(90, 1), lv(110, 1))
	v.Diff(ev(101, 101))
	v.Snapshot(101, lv(90, 7), lv(110, 1))
	if r := v.Report(); r.SnapshotsChecked != 1 || r.SnapshotsMismatch != 1 || r.OK() {
		t.Fatalf("snapshot mismatch not reported: %+v", r)
	}
}

// TestVerifierPendingBound proves that partial frames waiting for the book
// are bounded and the overflow is counted as skipped.
func TestVerifierPendingBound(t *testing.T) {
	v, _ := NewVerifier(md.Spot, 0)
	v.Snapshot(100, nil, nil)
	v.Diff(ev(101, 101))
	for id := int64(1000); id < 1000+maxPending+10; id++ {
		v.Partial(id, nil, nil)
	}
	if len(v.pending) != maxPending {
		t.Fatalf("%d partials held, want %d", len(v.pending), maxPending)
	}
	if r := v.Report(); r.PartialsSkipped != maxPending+10 {
		t.Fatalf("skipped %d, want %d", r.PartialsSkipped, maxPending+10)
	}
}

// TestVerifierRefusedSnapshot proves that a snapshot too old to bridge on a
// live book is neither checked nor a problem, and the book stays live.
func TestVerifierRefusedSnapshot(t *testing.T) {
	v, _ := NewVerifier(md.Spot, 0)
	v.Snapshot(100, lv(90, 1), lv(110, 1))
	v.Diff(ev(101, 101))
	v.Snapshot(50, lv(90, 7), lv(110, 1))
	r := v.Report()
	if r.SnapshotsChecked != 0 || r.Stats.Refused != 1 || !r.OK() || v.Syncer().State() != Live {
		t.Fatalf("refused snapshot: checked %d refused %d ok %v state %s", r.SnapshotsChecked, r.Stats.Refused, r.OK(), v.Syncer().State())
	}
}
