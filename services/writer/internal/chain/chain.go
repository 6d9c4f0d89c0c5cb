// Package chain is the writer's exchange-sequence check: per (market, kind,
// symbol) it decides whether an event is new, a duplicate of one already
// written (a replica's copy that JetStream's dedup window did not catch),
// or a late fill of a gap; it keeps the open gaps and matches collectors'
// gap reports against them. Everything here is a pure function of the
// events in stream order, so replay after a crash decides the same way.
package chain

import "slices"

// Verdict is what to do with an event.
type Verdict uint8

// Verdicts.
const (
	// Append: the event follows the chain (or starts it); write it.
	Append Verdict = iota + 1
	// AppendAfterGap: events are missing before this one; a gap opened.
	// Write it.
	AppendAfterGap
	// Fill: the event lies inside an open gap (another replica's copy of
	// events the first one missed). Write it; the gap shrank or closed.
	Fill
	// Overlap: the event starts before the chain head but ends after it
	// (prev link < last u < u). Write it; counted as an anomaly.
	Overlap
	// Reset: u is not above the chain head, yet the event is newer than
	// the head (event time), so it cannot be a copy of an event already
	// written: the exchange restarted its ids. Write it; the chain
	// restarts at u.
	Reset
	// Duplicate: an event with these ids was already written. Skip it.
	Duplicate
	// BeyondHorizon (no-chain kinds): the id is older than every id the
	// bounded recent set remembers, so it cannot be proven a duplicate.
	// Write it (a loss would be permanent; partials and snapshots are
	// self-contained, so a repeated row does not corrupt a book).
	BeyondHorizon
)

func (v Verdict) String() string {
	switch v {
	case Append:
		return "append"
	case AppendAfterGap:
		return "gap"
	case Fill:
		return "fill"
	case Overlap:
		return "overlap"
	case Reset:
		return "reset"
	case Duplicate:
		return "duplicate"
	case BeyondHorizon:
		return "beyond_horizon"
	}
	return "unknown"
}

// Write reports whether the event becomes a row.
func (v Verdict) Write() bool { return v != Duplicate }

// FileRef names the file of a key (market, kind, symbol) a row went to:
// its period index and supplement number.
type FileRef struct {
	Period int64
	Supp   int32
}

// Report is a collector's gap record.
type Report struct {
	Source       string
	Reason       uint8 // envelope.GapReason
	AfterID      int64
	ResumePrevID int64 // 0 if unknown
	StartNs      int64
	EndNs        int64
	FramesLost   int64
	Detail       string
	StreamSeq    uint64
}

// Gap is an open gap: the events with After < u <= Resume are missing.
type Gap struct {
	After, Resume     int64
	AfterNs, ResumeNs int64   // receive times of the rows around the gap
	File              FileRef // the file of the row after the gap: its manifest lists the gap
	Reports           []Report
}

// Limits bound the state of one chain.
const (
	MaxOpenGaps    = 256 // oldest gaps are forgotten beyond this (they stay in the manifests that listed them)
	MaxPending     = 64  // unresolved collector reports
	MaxGapReports  = 8   // reports attached to one gap
	MaxCoveredKeep = 256 // covered reports waiting for their file's manifest, per chain
)

// Chain is the sequence state of one chained stream (diffs): spot links
// events by U-1 == previous u, USD-M by pu == previous u.
type Chain struct {
	Started bool
	LastU   int64 // final update id of the chain head
	LastE   int64 // event time (ms) of the head
	LastNs  int64 // receive time of the head
	Gaps    []Gap // disjoint, sorted by After
	Pending []Report
}

// Event is what the chain needs from an event.
type Event struct {
	Prev    int64 // prev link: spot U-1, USD-M pu
	U       int64 // final update id u
	EventMs int64
	RecvNs  int64
	File    FileRef // where the row goes if written
}

// Result is the outcome of Observe.
type Result struct {
	Verdict Verdict
	// Filled is the gap the event filled (before it shrank), for Fill.
	Filled Gap
	// Covered lists collector reports resolved as covered by this event:
	// the missing range turned out complete.
	Covered []Report
	// Evicted counts gaps forgotten because of MaxOpenGaps.
	Evicted int
}

// Observe decides about an event and updates the chain.
func (c *Chain) Observe(e Event) Result {
	var res Result
	switch {
	case !c.Started:
		c.Started = true
		c.head(e)
		res.Verdict = Append
	case e.U > c.LastU && e.Prev == c.LastU:
		c.head(e)
		res.Verdict = Append
	case e.U > c.LastU && e.Prev > c.LastU:
		g := Gap{After: c.LastU, Resume: e.Prev, AfterNs: c.LastNs, ResumeNs: e.RecvNs, File: e.File}
		g.Reports = c.takePending(g.After, g.Resume, nil)
		c.Gaps = append(c.Gaps, g)
		if len(c.Gaps) > MaxOpenGaps {
			c.Gaps = slices.Delete(c.Gaps, 0, len(c.Gaps)-MaxOpenGaps)
			res.Evicted++
		}
		c.head(e)
		res.Verdict = AppendAfterGap
	case e.U > c.LastU: // Prev < LastU
		c.head(e)
		res.Verdict = Overlap
	default: // e.U <= c.LastU
		if i := c.gapOf(e.U); i >= 0 {
			res.Filled = c.Gaps[i]
			res.Covered = c.fill(i, e)
			res.Verdict = Fill
			return res
		}
		if e.EventMs > c.LastE {
			c.head(e)
			res.Verdict = Reset
			break
		}
		res.Verdict = Duplicate
		return res
	}
	res.Covered = c.resolvePending()
	return res
}

func (c *Chain) head(e Event) {
	c.LastU, c.LastE, c.LastNs = e.U, e.EventMs, e.RecvNs
}

// gapOf returns the index of the open gap holding u, or -1.
func (c *Chain) gapOf(u int64) int {
	for i := range c.Gaps {
		if c.Gaps[i].After < u && u <= c.Gaps[i].Resume {
			return i
		}
	}
	return -1
}

// fill removes the event's ids (Prev, U] from gap i, splitting it when the
// event lies strictly inside. When the gap closes, the collector reports
// attached to it (and to no other open piece) are returned: covered.
func (c *Chain) fill(i int, e Event) []Report {
	g := c.Gaps[i]
	var pieces []Gap
	if e.Prev > g.After {
		left := g
		left.Resume = min(e.Prev, g.Resume)
		left.ResumeNs = e.RecvNs
		left.Reports = slices.Clone(g.Reports)
		pieces = append(pieces, left)
	}
	if e.U < g.Resume {
		right := g
		right.After = e.U
		right.AfterNs = e.RecvNs
		right.Reports = slices.Clone(g.Reports)
		pieces = append(pieces, right)
	}
	c.Gaps = slices.Replace(c.Gaps, i, i+1, pieces...)
	if len(pieces) > 0 {
		return nil
	}
	var covered []Report
	for _, r := range g.Reports {
		held := false
		for j := range c.Gaps {
			for _, o := range c.Gaps[j].Reports {
				held = held || o.StreamSeq == r.StreamSeq
			}
		}
		if !held {
			covered = append(covered, r)
		}
	}
	return covered
}

// Report matches a collector's gap report. It returns the report back when
// it is already known to be covered (every event of its range is present);
// otherwise it is attached to the open gap it overlaps, or kept pending
// until the chain passes its range.
func (c *Chain) Report(r Report) (covered bool) {
	resume := r.ResumePrevID
	if resume == 0 || resume < r.AfterID {
		resume = r.AfterID + 1 // unknown end: at least the event after AfterID is missing
	}
	for i := range c.Gaps {
		g := &c.Gaps[i]
		if g.After < resume && r.AfterID < g.Resume {
			if len(g.Reports) < MaxGapReports {
				g.Reports = append(g.Reports, r)
			}
			return false
		}
	}
	if c.Started && resume <= c.LastU {
		return true
	}
	c.Pending = append(c.Pending, r)
	if len(c.Pending) > MaxPending {
		c.Pending = slices.Delete(c.Pending, 0, len(c.Pending)-MaxPending)
	}
	return false
}

func reportEnd(r Report) int64 {
	if r.ResumePrevID == 0 || r.ResumePrevID < r.AfterID {
		return r.AfterID + 1
	}
	return r.ResumePrevID
}

// takePending moves pending reports overlapping (after, resume] to dst.
func (c *Chain) takePending(after, resume int64, dst []Report) []Report {
	kept := c.Pending[:0]
	for _, r := range c.Pending {
		if after < reportEnd(r) && r.AfterID < resume && len(dst) < MaxGapReports {
			dst = append(dst, r)
			continue
		}
		kept = append(kept, r)
	}
	clear(c.Pending[len(kept):])
	c.Pending = kept
	return dst
}

// resolvePending returns the pending reports whose range the chain head
// has passed without a gap: they are covered.
func (c *Chain) resolvePending() []Report {
	if len(c.Pending) == 0 {
		return nil
	}
	var covered []Report
	kept := c.Pending[:0]
	for _, r := range c.Pending {
		if reportEnd(r) <= c.LastU {
			covered = append(covered, r)
			continue
		}
		kept = append(kept, r)
	}
	clear(c.Pending[len(kept):])
	c.Pending = kept
	return covered
}

// Recent is the dedup state of a stream without a chain (spot partials,
// USD-M partials, REST snapshots): the highest ids seen, at least size of
// them (WRITER_DEDUP_RECENT) and fewer than 2*size.
type Recent struct {
	IDs []int64 // sorted ascending, at most the configured size
}

// Observe decides about id and remembers it.
func (r *Recent) Observe(id int64, size int) Verdict {
	i, found := slices.BinarySearch(r.IDs, id)
	if found {
		return Duplicate
	}
	if len(r.IDs) >= size && i == 0 {
		return BeyondHorizon
	}
	r.IDs = slices.Insert(r.IDs, i, id)
	if len(r.IDs) >= 2*size {
		// Trim in bulk: the set holds size to 2*size-1 ids, and
		// appending stays amortized O(1) for rising ids.
		r.IDs = append(r.IDs[:0], r.IDs[len(r.IDs)-size:]...)
	}
	return Append
}
