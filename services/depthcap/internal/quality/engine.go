package quality

import (
	"errors"
	"fmt"
	"sort"

	"github.com/depthcap/depthcap/pkg/book"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
)

// Bounds of the engine's state.
const (
	// reorderEvents and reorderUs bound the diff events held back while
	// waiting for the events of a hole in the chain (another replica's
	// copies, written later in stream order): the hole is a gap once more
	// events than reorderEvents wait, or once rows received reorderUs
	// after the oldest waiting event have been read. Reported times do not
	// depend on them: they come from the rows.
	reorderEvents = 4096
	reorderUs     = 2_000_000
	// undoEvents and undoLevels bound how far back the book can be
	// compared.
	undoEvents = 2048
	undoLevels = 1 << 16
	// maxPendingTargets bounds the snapshots and partial frames waiting
	// for the stream to reach their update id.
	maxPendingTargets = 4096
	// maxListed bounds the entries of each list in a report; counters go
	// on.
	maxListed = 1000
	// recentGaps is how many of the latest gaps a late fill is matched
	// against.
	recentGaps = 64
)

// event is a diff event owned by the engine.
type event struct {
	first, final, prev int64
	hasPrev            bool
	recvUs             int64
	file               int
	row                int64
	bids, asks         []book.Level
}

func eventOf(r *dataset.Row) event {
	return event{first: r.FirstID, final: r.FinalID, prev: r.PrevID, hasPrev: r.HasPrev, recvUs: r.ReceivedUs,
		file: r.File, row: r.Index, bids: r.Bids, asks: r.Asks}
}

func (e *event) clone() *event {
	c := *e
	c.bids = append([]book.Level(nil), e.bids...)
	c.asks = append([]book.Level(nil), e.asks...)
	return &c
}

// chainGap is a hole in the diff chain: the events with after < u <=
// resume are missing.
type chainGap struct {
	after, resume        int64
	afterUs, resumeUs    int64
	resumeFile           int
	resumeRow            int64
	report               bool // the resume row is in the reported day
	restoredUs, verifyUs int64
	restoredBy           int64 // lastUpdateId of the snapshot that restored the book
	lateFills            int64 // events of the hole that arrived after it was declared
}

// crossing is a span of events during which the book was crossed.
type crossing struct {
	startUs, endUs int64
	startID, endID int64
	events         int
	bid, ask       book.Level
	report         bool
}

// desync is a time the live book was lost for another reason than a chain
// gap (an overlapping event, a rejected event, an id reset).
type desync struct {
	cause      string
	atUs       int64
	id         int64
	restoredUs int64
	report     bool
}

// engine rebuilds one symbol's book from its merged rows: the diff chain
// (with reordering of holes filled later), the Syncer (sync rules, gaps,
// crossings), and comparisons of snapshots and partial frames with the
// book at their update id.
type engine struct {
	market  md.Market
	sync    *book.Syncer
	compare bool // compare snapshots (after the base) and partials
	dayUs   int64

	// chain
	started    bool
	chainStart int64 // the link of the first event: the chain covers ids above it
	head       int64
	headUs     int64
	pending    []*event
	gaps       []*chainGap // the day's gaps, the first maxListed
	gapsTotal  int64
	recent     []*chainGap // the last recentGaps gaps (late fills are looked up there)
	open       []*chainGap // gaps not yet followed by a live book
	declared   bool        // the event being applied is the first after a declared gap
	resets     map[int64]bool
	dups       int64
	overlaps   int64
	resetsN    int64
	lateFills  int64

	// book
	undo          *undoLog
	base          span  // span of the snapshot the live book was loaded from
	baseID        int64 // its lastUpdateId
	baseUs        int64
	targets       []*target // waiting for the stream to reach their id, by id
	unverify      []*chainGap
	desyncs       []*desync
	openDesy      []*desync
	crossings     []*crossing
	inCross       *crossing
	crossN        int64 // events of the day that left the book crossed
	invalid       []string
	invalidN      int64
	firstLive     int64 // receive time of the first live book in the day
	lastAppliedUs int64
	// nowUs is the latest receive time of the rows fed: the clock of the
	// reorder window.
	nowUs    int64
	liveRows int64 // day's diff rows applied to a live book
	diffRows int64 // day's diff rows

	snaps    snapStats
	partials partialStats
}

type snapStats struct {
	rows, loaded, compared, matched, mismatched int64
	skipped                                     map[string]int64
	results                                     []SnapshotCheck
	restores                                    []Restore
}

type partialStats struct {
	rows, compared, straddled, matched, mismatched int64
	skipped                                        map[string]int64
	mismatches                                     []PartialCheck
}

func newEngine(m md.Market, compare bool, dayUs int64) (*engine, error) {
	s, err := book.NewSyncer(book.Config{Market: m})
	if err != nil {
		return nil, err
	}
	undo := newUndoLog(1, 1) // nothing is compared without compare
	if compare {
		undo = newUndoLog(undoEvents, undoLevels)
	}
	return &engine{market: m, sync: s, compare: compare, dayUs: dayUs, resets: map[int64]bool{},
		undo: undo, base: fullSpan,
		snaps:    snapStats{skipped: map[string]int64{}},
		partials: partialStats{skipped: map[string]int64{}}}, nil
}

func (e *engine) inDay(us int64) bool { return us >= e.dayUs }

// link is the id an event must follow: spot U-1, USD-M pu.
func (e *engine) link(ev *event) int64 {
	if e.market == md.Futures {
		return ev.prev
	}
	return ev.first - 1
}

// row feeds one merged row.
func (e *engine) row(r *dataset.Row) {
	e.nowUs = max(e.nowUs, r.ReceivedUs)
	for len(e.pending) > 0 && e.nowUs-e.oldestPending() > reorderUs {
		e.flushOne()
	}
	switch r.Kind {
	case md.Diff:
		if e.inDay(r.ReceivedUs) {
			e.diffRows++
		}
		ev := eventOf(r)
		e.diff(&ev)
	case md.Snapshot:
		e.snapshot(r)
	case md.Partial:
		e.partial(r)
	}
}

// diff runs the chain: in-order events go to the book, events after a
// hole wait (bounded) for the hole to be filled.
func (e *engine) diff(ev *event) {
	if e.market == md.Futures && !ev.hasPrev {
		e.apply(ev) // the Syncer rejects it and says why
		return
	}
	if !e.started {
		e.started = true
		e.chainStart = e.link(ev)
		e.apply(ev)
		e.head, e.headUs = ev.final, ev.recvUs
		return
	}
	link := e.link(ev)
	switch {
	case ev.final <= e.head:
		if e.resets[ev.final] {
			e.reset(ev)
			return
		}
		e.stale(ev)
	case link == e.head:
		e.apply(ev)
		e.head, e.headUs = ev.final, ev.recvUs
		e.drain()
	case link < e.head:
		// Overlaps what the book has: never sent by Binance on one
		// stream; the Syncer decides (spot: a chain break).
		e.overlaps++
		e.apply(ev)
		e.head, e.headUs = ev.final, ev.recvUs
		e.drain()
	default:
		e.pending = append(e.pending, ev.clone())
		for len(e.pending) > reorderEvents {
			e.flushOne()
		}
	}
}

// stale handles an event at or below the chain head: a late fill of a gap
// already declared, or a duplicate row.
func (e *engine) stale(ev *event) {
	for i := len(e.recent) - 1; i >= 0; i-- {
		g := e.recent[i]
		if ev.final > g.after && ev.final <= g.resume {
			g.lateFills++
			e.lateFills++
			return
		}
	}
	e.dups++
}

// reset restarts the chain at an exchange id reset listed in a manifest.
func (e *engine) reset(ev *event) {
	e.resetsN++
	e.noteDesync("id reset", ev.recvUs, ev.final)
	e.sync.Invalidate()
	e.lost()
	e.apply(ev)
	e.head, e.headUs = ev.final, ev.recvUs
}

func (e *engine) oldestPending() int64 {
	us := e.pending[0].recvUs
	for _, p := range e.pending[1:] {
		us = min(us, p.recvUs)
	}
	return us
}

// flushOne declares the hole before the held event with the lowest link a
// gap and moves on from it.
func (e *engine) flushOne() {
	sort.Slice(e.pending, func(i, j int) bool { return e.link(e.pending[i]) < e.link(e.pending[j]) })
	ev := e.pending[0]
	e.pending = e.pending[1:]
	g := &chainGap{after: e.head, resume: e.link(ev), afterUs: e.headUs, resumeUs: ev.recvUs,
		resumeFile: ev.file, resumeRow: ev.row, report: e.inDay(ev.recvUs)}
	if g.report {
		e.gapsTotal++
		if len(e.gaps) < maxListed {
			e.gaps = append(e.gaps, g)
		}
	}
	if len(e.recent) == recentGaps {
		e.recent = append(e.recent[:0], e.recent[1:]...)
	}
	e.recent = append(e.recent, g)
	if len(e.open) == maxListed {
		e.open = append(e.open[:0], e.open[1:]...)
	}
	e.open = append(e.open, g)
	e.declared = true
	e.apply(ev)
	e.declared = false
	e.head, e.headUs = ev.final, ev.recvUs
	e.drain()
}

// drain applies the held events that now follow the head.
func (e *engine) drain() {
	for progress := true; progress && len(e.pending) > 0; {
		progress = false
		keep := e.pending[:0]
		for _, p := range e.pending {
			switch {
			case p.final <= e.head:
				e.stale(p)
				progress = true
			case e.link(p) == e.head:
				e.apply(p)
				e.head, e.headUs = p.final, p.recvUs
				progress = true
			default:
				keep = append(keep, p)
			}
		}
		clear(e.pending[len(keep):])
		e.pending = keep
	}
}

// finish flushes the held events at the end of the rows.
func (e *engine) finish() {
	for len(e.pending) > 0 {
		e.flushOne()
	}
	if e.inCross != nil {
		e.inCross = nil
	}
	for _, t := range e.targets {
		e.skipTarget(t, "stream never reached its id")
	}
	e.targets = nil
}

// apply feeds an event to the Syncer and follows the book's state.
func (e *engine) apply(ev *event) {
	wasLive := e.sync.State() == book.Live
	b := e.sync.Book()
	recorded := false
	switch {
	case !e.compare:
	case wasLive && e.undo.valid:
		e.undo.record(b, ev.first, ev.final, ev.bids, ev.asks)
		recorded = true
	case e.sync.State() == book.Bridging:
		// The book is the snapshot: if this event bridges it, the states
		// from the snapshot's id on are comparable.
		e.undo.reset(e.sync.LastUpdateID())
		e.undo.record(b, ev.first, ev.final, ev.bids, ev.asks)
		recorded = true
	}
	out, err := e.sync.Apply(book.Update{First: ev.first, Final: ev.final, Prev: ev.prev, HasPrev: ev.hasPrev, Bids: ev.bids, Asks: ev.asks})
	if recorded && (out != book.Applied || e.sync.State() != book.Live) {
		e.undo.drop()
		if !wasLive {
			e.undo.invalidate()
		}
	}
	if out == book.Applied {
		e.lastAppliedUs = ev.recvUs
	}
	if errors.Is(err, book.ErrInvalidUpdate) {
		e.invalidN++
		if len(e.invalid) < maxListed {
			e.invalid = append(e.invalid, fmt.Sprintf("diff row %d of file %d: %v", ev.row, ev.file, err))
		}
	}
	var ce *book.CrossedError
	crossed := errors.As(err, &ce)
	live := e.sync.State() == book.Live
	switch {
	case out == book.Applied && live:
		if e.inDay(ev.recvUs) {
			e.liveRows++
		}
		if !wasLive {
			// Restored by the snapshot loaded before and this event; the
			// undo log starts at the snapshot.
			e.becameLive(max(ev.recvUs, e.baseUs), 0, false)
		}
		e.cross(crossed, ce, ev.recvUs)
		e.resolveTargets()
	case wasLive && !live:
		cause := ""
		switch {
		case e.declared:
			// the chain gap just declared
		case errors.Is(err, book.ErrGap):
			cause = "event does not follow the book: " + err.Error()
		default:
			cause = "book lost: " + fmt.Sprint(err)
		}
		if cause != "" {
			e.noteDesync(cause, ev.recvUs, ev.final)
		}
		e.lost()
	}
}

// lost follows the book out of the live state. The snapshots that were
// waiting for the stream to reach their id are tried as restores, in the
// order they were received; once one is loaded the others, and the
// partial frames, wait again for the book to be live at their id.
func (e *engine) lost() {
	e.undo.invalidate()
	e.inCross = nil
	ts := e.targets
	e.targets = nil
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].recvUs < ts[j].recvUs })
	for _, t := range ts {
		switch {
		case e.sync.State() == book.NeedSnapshot && t.snapshot:
			e.load(t)
		case e.sync.State() == book.NeedSnapshot:
			e.skipTarget(t, "book lost before the stream reached its id")
		default:
			e.addTarget(t)
		}
	}
}

func (e *engine) noteDesync(cause string, us, id int64) {
	d := &desync{cause: cause, atUs: us, id: id, report: e.inDay(us)}
	if len(e.desyncs) < maxListed {
		e.desyncs = append(e.desyncs, d)
	}
	if len(e.openDesy) < maxListed {
		e.openDesy = append(e.openDesy, d)
	}
}

// becameLive records a restored book: every open gap is restored now.
func (e *engine) becameLive(us int64, by int64, resetUndo bool) {
	if by == 0 {
		by = e.baseID
	}
	if resetUndo {
		e.undo.reset(e.sync.LastUpdateID())
	}
	if e.firstLive == 0 && e.inDay(us) {
		e.firstLive = us
	}
	// A book is restored no earlier than the row that showed the gap
	// (events held back for reordering are applied after rows received
	// later).
	for _, g := range e.open {
		g.restoredUs, g.restoredBy = max(us, g.resumeUs), by
		e.unverify = append(e.unverify, g)
	}
	e.open = e.open[:0]
	for _, d := range e.openDesy {
		d.restoredUs = max(us, d.atUs)
	}
	e.openDesy = e.openDesy[:0]
}

// verified records a successful comparison after a restore.
func (e *engine) verified(us int64) {
	for _, g := range e.unverify {
		g.verifyUs = max(us, g.restoredUs)
	}
	e.unverify = e.unverify[:0]
}

func (e *engine) cross(crossed bool, ce *book.CrossedError, us int64) {
	switch {
	case crossed:
		if e.inDay(us) {
			e.crossN++
		}
		if e.inCross == nil {
			c := &crossing{startUs: us, startID: ce.At, bid: ce.Bid, ask: ce.Ask, report: e.inDay(us)}
			e.inCross = c
			if len(e.crossings) < maxListed {
				e.crossings = append(e.crossings, c)
			}
		}
		e.inCross.events++
		e.inCross.endUs, e.inCross.endID = us, ce.At
	case e.inCross != nil:
		e.inCross = nil
	}
}

// snapshot handles a REST snapshot row: the base of a book that is not
// live, a comparison for a live one.
func (e *engine) snapshot(r *dataset.Row) {
	if e.inDay(r.ReceivedUs) {
		e.snaps.rows++
	}
	t := &target{snapshot: true, id: r.LastUpdateID, recvUs: r.ReceivedUs, file: r.File, row: r.Index,
		bids: append([]book.Level(nil), r.Bids...), asks: append([]book.Level(nil), r.Asks...),
		span: spanOf(r.Bids, r.Asks, r.Limit)}
	if e.sync.State() != book.Live || !e.compare {
		e.load(t)
		return
	}
	e.addTarget(t)
}

// load makes t the base of the book (LoadSnapshot replays the retained
// events).
func (e *engine) load(t *target) {
	wasLive := e.sync.State() == book.Live
	err := e.sync.LoadSnapshot(t.id, t.bids, t.asks)
	if errors.Is(err, book.ErrInvalidLevel) {
		e.invalidN++
		if len(e.invalid) < maxListed {
			e.invalid = append(e.invalid, fmt.Sprintf("snapshot row %d of file %d: %v", t.row, t.file, err))
		}
		return
	}
	if errors.Is(err, book.ErrSnapshotTooOld) {
		return
	}
	if e.inDay(t.recvUs) {
		e.snaps.loaded++
	}
	e.base, e.baseID, e.baseUs = t.span, t.id, t.recvUs
	var ce *book.CrossedError
	crossed := errors.As(err, &ce)
	st := e.sync.State()
	res := Restore{Time: usTime(t.recvUs), LastUpdateID: t.id, State: st.String()}
	switch st {
	case book.Live:
		e.becameLive(t.recvUs, t.id, true)
		e.cross(crossed, ce, t.recvUs)
		e.resolveTargets()
	case book.NeedSnapshot:
		res.Error = "not bridged by the diff stream"
		if err != nil {
			res.Error = err.Error()
		}
		if wasLive {
			e.lost()
		}
	}
	if e.inDay(t.recvUs) && len(e.snaps.restores) < maxListed {
		e.snaps.restores = append(e.snaps.restores, res)
	}
}

// partial handles a partial depth frame: compared with the book at its id
// (spot lastUpdateId, USD-M u).
func (e *engine) partial(r *dataset.Row) {
	if !e.inDay(r.ReceivedUs) {
		return
	}
	e.partials.rows++
	if !e.compare {
		return
	}
	t := &target{id: r.FinalID, recvUs: r.ReceivedUs, file: r.File, row: r.Index,
		bids: append([]book.Level(nil), r.Bids...), asks: append([]book.Level(nil), r.Asks...),
		span: spanOf(r.Bids, r.Asks, 0)}
	if e.sync.State() != book.Live {
		e.skipTarget(t, "book not live")
		return
	}
	e.addTarget(t)
}

// addTarget compares t now if the book has reached its id, else holds it.
func (e *engine) addTarget(t *target) {
	if t.id <= e.undo.head() {
		e.check(t)
		return
	}
	i := sort.Search(len(e.targets), func(i int) bool { return e.targets[i].id > t.id })
	e.targets = append(e.targets, nil)
	copy(e.targets[i+1:], e.targets[i:])
	e.targets[i] = t
	if len(e.targets) > maxPendingTargets {
		old := e.targets[len(e.targets)-1]
		e.targets = e.targets[:len(e.targets)-1]
		e.skipTarget(old, "too many frames waiting for the stream")
	}
}

// resolveTargets compares the held targets the book has reached.
func (e *engine) resolveTargets() {
	head := e.undo.head()
	n := 0
	for n < len(e.targets) && e.targets[n].id <= head {
		n++
	}
	if n == 0 {
		return
	}
	due := append([]*target(nil), e.targets[:n]...)
	e.targets = append(e.targets[:0], e.targets[n:]...)
	for _, t := range due {
		e.check(t)
	}
}

// check compares t with the live book at t's id and records the result.
func (e *engine) check(t *target) {
	res := e.undo.compareAt(e.sync.Book(), t, e.base.intersect(t.span))
	if res.skipped != "" {
		e.skipTarget(t, res.skipped)
		return
	}
	ok := res.diffs == 0
	if ok {
		e.verified(t.recvUs)
	}
	if !e.inDay(t.recvUs) {
		return
	}
	if t.snapshot {
		e.snaps.compared++
		if ok {
			e.snaps.matched++
		} else {
			e.snaps.mismatched++
		}
		if len(e.snaps.results) < maxListed {
			e.snaps.results = append(e.snaps.results, SnapshotCheck{Time: usTime(t.recvUs), LastUpdateID: t.id,
				BookID: res.at, Straddle: res.straddle, BidLevels: res.bids, AskLevels: res.asks,
				BaseID: e.baseID, Match: ok, Diffs: res.diffs, FirstDiff: res.first})
		}
		return
	}
	e.partials.compared++
	if res.straddle {
		e.partials.straddled++
	}
	if ok {
		e.partials.matched++
		return
	}
	e.partials.mismatched++
	if len(e.partials.mismatches) < maxListed {
		e.partials.mismatches = append(e.partials.mismatches, PartialCheck{Time: usTime(t.recvUs), ID: t.id,
			BookID: res.at, Straddle: res.straddle, Diffs: res.diffs, FirstDiff: res.first})
	}
}

func (e *engine) skipTarget(t *target, why string) {
	if !e.inDay(t.recvUs) {
		return
	}
	if t.snapshot {
		e.snaps.skipped[why]++
		return
	}
	e.partials.skipped[why]++
}
