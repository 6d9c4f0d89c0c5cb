package book

import (
	"errors"
	"fmt"

	"github.com/depthcap/depthcap/pkg/md"
)

// MaxIssues bounds the gaps, crossings and mismatches a Report lists; the
// counters go on beyond it.
const MaxIssues = 100

// maxPending bounds the partial frames a Verifier holds until the book
// reaches their update id.
const maxPending = 64

// Report is what a Verifier found in a recorded stream.
type Report struct {
	Stats Stats // the Syncer's counters

	// SnapshotsChecked counts REST snapshots that arrived while the book was
	// live and that, after re-syncing from them, brought the book back to the
	// same update id, so that the book rebuilt from the snapshot could be
	// compared with the book built from the stream. Snapshots too old for the
	// retained events are not checked (Stats.Refused).
	SnapshotsChecked  int
	SnapshotsMismatch int

	PartialsChecked  int
	PartialsMismatch int
	// PartialsSkipped counts partial frames that could not be compared: the
	// book was not live, or it never stood at the frame's update id.
	PartialsSkipped int

	// InvalidSnapshots counts snapshots the book refused (ErrInvalidLevel).
	InvalidSnapshots int

	Gaps       []GapError      // the first MaxIssues gaps
	Crossings  []CrossedError  // the first MaxIssues crossings
	Mismatches []MismatchError // the first MaxIssues mismatches, snapshots and partials
	Invalid    []string        // the first MaxIssues rejected events and snapshots
}

// OK reports whether the stream showed no gap, crossing, mismatch or invalid
// input. Skipped partials and stale events are not problems.
func (r *Report) OK() bool {
	return r.Stats.Gaps == 0 && r.Stats.Crossed == 0 && r.Stats.Rejected == 0 &&
		r.SnapshotsMismatch == 0 && r.PartialsMismatch == 0 && r.InvalidSnapshots == 0
}

// Verifier checks one symbol's recorded stream, fed in stream order: diff
// events, REST snapshots and partial depth frames. It rebuilds the book with
// a Syncer and reports gaps and crossings, compares partial frames with the
// book at their update id, and, when a snapshot arrives on a live book,
// re-syncs from it and compares the rebuilt book with the one the stream
// built. Comparisons cover the best depth levels of each side. A snapshot
// newer than the live book, or one arriving while the book is not live, is
// loaded without a comparison.
//
// It is meant for tests and offline checks of recordings: decode each frame,
// convert its levels with AppendLevels and call Diff, Snapshot or Partial.
type Verifier struct {
	sync  *Syncer
	depth int

	pending        []pendingPartial
	bidBuf, askBuf []Level
	report         Report
}

type pendingPartial struct {
	id         int64
	bids, asks []Level
}

// NewVerifier returns a Verifier for market m that compares the best depth
// levels of each side (depth <= 0 means 20, the partial depth frames' size)
// and retains events within the Syncer's default bounds.
func NewVerifier(m md.Market, depth int) (*Verifier, error) {
	s, err := NewSyncer(Config{Market: m})
	if err != nil {
		return nil, fmt.Errorf("new verifier: %w", err)
	}
	if depth <= 0 {
		depth = 20
	}
	return &Verifier{sync: s, depth: depth}, nil
}

// Syncer returns the Syncer that rebuilds the book.
func (v *Verifier) Syncer() *Syncer { return v.sync }

// Diff feeds a diff depth event.
func (v *Verifier) Diff(u Update) {
	out, err := v.sync.Apply(u)
	v.note(err)
	if out == Applied {
		v.checkPending()
	}
}

// Snapshot feeds a REST snapshot.
func (v *Verifier) Snapshot(lastUpdateID int64, bids, asks []Level) {
	wasLive, at := v.sync.State() == Live, v.sync.LastUpdateID()
	if wasLive {
		v.bidBuf, v.askBuf = v.sync.Book().TopN(v.depth, v.bidBuf, v.askBuf)
	}
	err := v.sync.LoadSnapshot(lastUpdateID, bids, asks)
	if errors.Is(err, ErrInvalidLevel) {
		v.report.InvalidSnapshots++
		if len(v.report.Invalid) < MaxIssues {
			v.report.Invalid = append(v.report.Invalid, fmt.Sprintf("snapshot %d: %v", lastUpdateID, err))
		}
		return
	}
	if errors.Is(err, ErrSnapshotTooOld) {
		return // ignored; the Syncer counts it in Stats.Refused
	}
	v.note(err)
	// The rebuilt book stands where the stream's book stood when the replay
	// ends Live there, or when the snapshot is exactly at that id (spot: the
	// Syncer then waits, Bridging, for the next event).
	if st := v.sync.State(); wasLive && st != NeedSnapshot && v.sync.LastUpdateID() == at {
		v.report.SnapshotsChecked++
		if ok, diff := v.sync.Book().EqualTop(v.bidBuf, v.askBuf, v.depth); !ok {
			v.report.SnapshotsMismatch++
			v.mismatch(MismatchError{At: at, Diff: fmt.Sprintf("snapshot %d replayed vs stream: %s", lastUpdateID, diff)})
		}
	}
	v.checkPending()
}

// Partial feeds a partial depth frame taken at update id id (spot
// lastUpdateId, USD-M u). A frame for an id the book has not reached yet is
// held, within a bound, until the book gets there.
func (v *Verifier) Partial(id int64, bids, asks []Level) {
	err := v.sync.CheckPartial(id, bids, asks, v.depth)
	switch {
	case errors.Is(err, ErrNotComparable) && id > v.sync.LastUpdateID():
		if len(v.pending) == maxPending {
			v.report.PartialsSkipped++
			v.pending = v.pending[1:]
		}
		v.pending = append(v.pending, pendingPartial{
			id:   id,
			bids: append([]Level(nil), bids...),
			asks: append([]Level(nil), asks...),
		})
	default:
		v.partialResult(err)
	}
}

// checkPending compares the held partial frames the book has reached and
// skips those it went past.
func (v *Verifier) checkPending() {
	if v.sync.State() != Live {
		return
	}
	last := v.sync.LastUpdateID()
	keep := v.pending[:0]
	for _, p := range v.pending {
		switch {
		case p.id == last:
			v.partialResult(v.sync.CheckPartial(p.id, p.bids, p.asks, v.depth))
		case p.id < last:
			v.report.PartialsSkipped++
		default:
			keep = append(keep, p)
		}
	}
	clear(v.pending[len(keep):])
	v.pending = keep
}

func (v *Verifier) partialResult(err error) {
	var me *MismatchError
	switch {
	case err == nil:
		v.report.PartialsChecked++
	case errors.As(err, &me):
		v.report.PartialsChecked++
		v.report.PartialsMismatch++
		v.mismatch(MismatchError{At: me.At, Diff: "partial: " + me.Diff})
	default:
		v.report.PartialsSkipped++
	}
}

// note records the gaps, crossings and rejections err carries.
func (v *Verifier) note(err error) {
	if err == nil {
		return
	}
	var (
		ge *GapError
		ce *CrossedError
	)
	if errors.As(err, &ge) && len(v.report.Gaps) < MaxIssues {
		v.report.Gaps = append(v.report.Gaps, *ge)
	}
	if errors.As(err, &ce) && len(v.report.Crossings) < MaxIssues {
		v.report.Crossings = append(v.report.Crossings, *ce)
	}
	if errors.Is(err, ErrInvalidUpdate) && len(v.report.Invalid) < MaxIssues {
		v.report.Invalid = append(v.report.Invalid, err.Error())
	}
}

func (v *Verifier) mismatch(e MismatchError) {
	if len(v.report.Mismatches) < MaxIssues {
		v.report.Mismatches = append(v.report.Mismatches, e)
	}
}

// Report returns what the Verifier found so far. Partial frames still held
// count as skipped.
func (v *Verifier) Report() Report {
	r := v.report
	r.Stats = v.sync.Stats()
	r.PartialsSkipped += len(v.pending)
	r.Gaps = append([]GapError(nil), r.Gaps...)
	r.Crossings = append([]CrossedError(nil), r.Crossings...)
	r.Mismatches = append([]MismatchError(nil), r.Mismatches...)
	r.Invalid = append([]string(nil), r.Invalid...)
	return r
}
