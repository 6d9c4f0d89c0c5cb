// Package chain is the writer's exchange-sequence check: per (market, kind,
// symbol) it decides whether an event is new, a duplicate of one already
// written (a replica's copy that JetStream's dedup window did not catch),
// or a late fill of a gap; it keeps the open gaps and matches collectors'
// gap reports against them. Everything here is a pure function of the
// events in stream order, so replay after a crash decides the same way.
package chain

import (
	"slices"
	"strings"
)

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

// InGap reports whether the id u lies in an open gap: After < u <= Resume.
func (c *Chain) InGap(u int64) bool { return c.gapOf(u) >= 0 }

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

// Source table bounds of a Sampled stream.
const (
	// MaxSources bounds the sources a stream remembers at once. Past
	// it, sources no remembered id refers to are dropped; if none can
	// be, an id is remembered without its source (NoSource), which is
	// never evidence for a report.
	MaxSources = 32
	// NoSource marks an id whose source is not in the table.
	NoSource = 0xFF
	// MaxClaims bounds the undecided reports of a stream; past it the
	// oldest is decided at once with the evidence it has.
	MaxClaims = 256
	// MaxPast bounds the decided reports remembered for conflicts.
	MaxPast = 64
)

// Sampled is the state of a stream without a chain (spot partials, USD-M
// partials, REST snapshots). Its frames are samples of the book: ids do
// not link, so a missing frame cannot be seen in the ids. It keeps:
//
//   - the highest ids seen (at least size = WRITER_DEDUP_RECENT of them and
//     fewer than 2*size), each with the source that delivered it first, to
//     drop replicas' duplicates and as evidence for gap reports;
//   - the collectors' gap reports of the stream (claims) until the file
//     that lists them seals, with the evidence gathered for each;
//   - the last decided reports, against which a new report is checked for
//     conflicts.
//
// A report of source S over (a, b] says that S received no frame with an
// id in (a, b] (disconnect: the ids before and after its reconnect;
// buffer_overflow: the ids it dropped). It is covered, decided when its
// file seals, iff no other source reported a range overlapping (a, b]
// and another source either delivered a row with an id in (a, b], or
// delivered rows with ids <= a and > b (it was connected across the
// range: every frame sent in it reached it, or it would have reported the
// loss). Otherwise it stays a gap. Everything is a function of the stream
// contents in order.
type Sampled struct {
	IDs     []int64  // sorted ascending
	Src     []uint8  // Src[i] is the Sources index of the source of IDs[i], or NoSource
	Sources []string // source table, at most MaxSources
	Claims  []Claim  // undecided reports, in stream order
	Past    []Past   // the last MaxPast decided reports, oldest first
}

// Claim is an undecided gap report of a Sampled stream with its evidence.
type Claim struct {
	Report
	File     FileRef // the file whose manifest lists the report
	Inside   bool    // another source delivered an id in (AfterID, end]
	Conflict bool    // another source reported an overlapping range
	Seen     []Seen  // other sources that delivered ids below or above the range
}

// Seen is what one other source delivered around a claim's range.
type Seen struct {
	Source       string
	Below, Above bool // an id <= AfterID, an id > the range end
}

// Past is a decided report, kept for conflict checks.
type Past struct {
	Source       string
	AfterID, End int64
}

// Covered reports whether the claim's range is known complete.
func (c *Claim) Covered() bool {
	if c.Conflict {
		return false
	}
	if c.Inside {
		return true
	}
	for _, s := range c.Seen {
		if s.Below && s.Above {
			return true
		}
	}
	return false
}

// observe takes a frame id delivered by source into the claim's evidence.
func (c *Claim) observe(id int64, source string) {
	if source == c.Source {
		return
	}
	end := reportEnd(c.Report)
	if c.AfterID < id && id <= end {
		c.Inside = true
		return
	}
	i := 0
	for i < len(c.Seen) && c.Seen[i].Source != source {
		i++
	}
	if i == len(c.Seen) {
		if len(c.Seen) >= MaxSources {
			return
		}
		c.Seen = append(c.Seen, Seen{Source: source})
	}
	if id <= c.AfterID {
		c.Seen[i].Below = true
	} else {
		c.Seen[i].Above = true
	}
}

func overlaps(a1, e1, a2, e2 int64) bool { return a1 < e2 && a2 < e1 }

// source returns the table index of name, adding it (a copy) if needed.
func (s *Sampled) source(name string) uint8 {
	for i, n := range s.Sources {
		if n == name {
			return uint8(i)
		}
	}
	if len(s.Sources) >= MaxSources {
		s.compact()
		if len(s.Sources) >= MaxSources {
			return NoSource
		}
	}
	s.Sources = append(s.Sources, strings.Clone(name))
	return uint8(len(s.Sources) - 1)
}

// compact drops the sources no remembered id refers to, keeping the order
// of the others.
func (s *Sampled) compact() {
	var used [MaxSources]bool
	for _, i := range s.Src {
		if i != NoSource {
			used[i] = true
		}
	}
	var remap [MaxSources]uint8
	kept := s.Sources[:0]
	for i, n := range s.Sources {
		if used[i] {
			remap[i] = uint8(len(kept))
			kept = append(kept, n)
		}
	}
	clear(s.Sources[len(kept):])
	s.Sources = kept
	for j, i := range s.Src {
		if i != NoSource {
			s.Src[j] = remap[i]
		}
	}
}

func (s *Sampled) name(i uint8) string {
	if int(i) < len(s.Sources) {
		return s.Sources[i]
	}
	return ""
}

// Observe decides about a frame with id delivered by source, remembers it
// and adds it to the evidence of the open claims. size is the number of
// ids to remember (WRITER_DEDUP_RECENT).
func (s *Sampled) Observe(id int64, source string, size int) Verdict {
	src := s.source(source)
	if len(s.Claims) > 0 && src != NoSource {
		for i := range s.Claims {
			s.Claims[i].observe(id, s.Sources[src])
		}
	}
	i, found := slices.BinarySearch(s.IDs, id)
	if found {
		return Duplicate
	}
	if len(s.IDs) >= size && i == 0 {
		return BeyondHorizon
	}
	s.IDs = slices.Insert(s.IDs, i, id)
	s.Src = slices.Insert(s.Src, i, src)
	if len(s.IDs) >= 2*size {
		// Trim in bulk: the set holds size to 2*size-1 ids, and
		// appending stays amortized O(1) for rising ids.
		s.IDs = append(s.IDs[:0], s.IDs[len(s.IDs)-size:]...)
		s.Src = append(s.Src[:0], s.Src[len(s.Src)-size:]...)
	}
	return Append
}

// Report adds a collector's gap report whose manifest entry goes to file.
// Its evidence starts with the remembered ids; conflicts are checked
// against the open claims (both sides) and the past reports. When the
// claims pass MaxClaims, the oldest is removed and returned, to be
// decided at once.
func (s *Sampled) Report(r Report, file FileRef) (evicted *Claim) {
	c := Claim{Report: r, File: file}
	for i, id := range s.IDs {
		if n := s.name(s.Src[i]); n != "" {
			c.observe(id, n)
		}
	}
	end := reportEnd(r)
	for i := range s.Claims {
		o := &s.Claims[i]
		if o.Source != r.Source && overlaps(r.AfterID, end, o.AfterID, reportEnd(o.Report)) {
			o.Conflict, c.Conflict = true, true
		}
	}
	for _, p := range s.Past {
		if p.Source != r.Source && overlaps(r.AfterID, end, p.AfterID, p.End) {
			c.Conflict = true
		}
	}
	s.Claims = append(s.Claims, c)
	if len(s.Claims) > MaxClaims {
		old := s.Claims[0]
		s.Claims = slices.Delete(s.Claims, 0, 1)
		s.remember(old)
		return &old
	}
	return nil
}

// HasClaims reports whether a claim's manifest entry goes to file.
func (s *Sampled) HasClaims(file FileRef) bool {
	for i := range s.Claims {
		if s.Claims[i].File == file {
			return true
		}
	}
	return false
}

// Resolve decides the claims of file (its seal): covered or gaps, in
// stream order. They are removed and remembered as past reports.
func (s *Sampled) Resolve(file FileRef) (covered, gaps []Report) {
	kept := s.Claims[:0]
	for _, c := range s.Claims {
		if c.File != file {
			kept = append(kept, c)
			continue
		}
		if c.Covered() {
			covered = append(covered, c.Report)
		} else {
			gaps = append(gaps, c.Report)
		}
		s.remember(c)
	}
	clear(s.Claims[len(kept):])
	s.Claims = kept
	return covered, gaps
}

func (s *Sampled) remember(c Claim) {
	s.Past = append(s.Past, Past{Source: c.Source, AfterID: c.AfterID, End: reportEnd(c.Report)})
	if len(s.Past) > MaxPast {
		s.Past = slices.Delete(s.Past, 0, len(s.Past)-MaxPast)
	}
}
