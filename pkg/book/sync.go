package book

import (
	"errors"
	"fmt"

	"github.com/depthcap/depthcap/pkg/md"
)

// Update is one diff depth event, independent of any wire format.
type Update struct {
	First int64 // U: first update id in the event
	Final int64 // u: final update id in the event
	// Prev is pu, the final update id of the previous event of the stream.
	// USD-M events carry it (HasPrev); spot events do not.
	Prev    int64
	HasPrev bool
	// Bids and Asks hold absolute quantities; 0 removes the level.
	Bids, Asks []Level
}

// Sentinel errors of the Syncer. Errors returned by the Syncer wrap them; test
// with errors.Is and read the details with errors.As.
var (
	// ErrGap: an event does not follow the chain, so updates are missing
	// (or the stream overlapped or went backwards). Returned as *GapError.
	ErrGap = errors.New("sequence gap")
	// ErrNotBridged: the first event after a snapshot that is not contained
	// in it does not bridge it: the snapshot is too old for the events, or
	// the events that bridge it are missing. Returned as *GapError, which
	// also wraps ErrGap.
	ErrNotBridged = errors.New("snapshot not bridged")
	// ErrCrossed: after an update or a snapshot the best bid is at or above
	// the best ask. Returned as *CrossedError.
	ErrCrossed = errors.New("crossed book")
	// ErrInvalidUpdate: an event the syncer refuses (U > u, a USD-M event
	// without pu, or an invalid level, which also wraps ErrInvalidLevel).
	ErrInvalidUpdate = errors.New("invalid update")
	// ErrNotSynced: the book is not live, so it cannot be compared.
	ErrNotSynced = errors.New("book not synced")
	// ErrSnapshotTooOld: LoadSnapshot on a live book with a snapshot that
	// the retained events cannot bridge (it is older than they reach back).
	// The snapshot is ignored and the live book kept.
	ErrSnapshotTooOld = errors.New("snapshot too old to bridge")
	// ErrNotComparable: a partial depth frame is for another update id than
	// the one the book is at.
	ErrNotComparable = errors.New("partial not comparable")
	// ErrMismatch: the book differs from a partial depth frame or a
	// snapshot. Returned as *MismatchError.
	ErrMismatch = errors.New("book mismatch")
)

// GapError describes a break in the update id chain.
//
// Want and Got are the link the event needed and the one it carried:
//
//   - spot chain: U must be prev u + 1 (Want), Got is U;
//   - spot bridge: U must be <= lastUpdateId + 1 (Want), Got is U;
//   - USD-M chain: pu must be prev u (Want), Got is pu;
//   - USD-M bridge: U must be <= lastUpdateId (Want), Got is U.
//
// From and To are the inclusive range of update ids the book is missing: from
// After+1 up to U-1, or up to pu for a USD-M chain break (USD-M ids are not
// consecutive and the missing events end at pu). From > To means no id is
// missing: the event overlapped what the book already has or went backwards.
type GapError struct {
	Market md.Market
	Bridge bool  // the event was the first after a snapshot (also ErrNotBridged)
	After  int64 // the last update id the book reflects: prev u or lastUpdateId
	Want   int64
	Got    int64
	From   int64
	To     int64
	First  int64 // U of the event
	Final  int64 // u of the event
}

// Missing reports whether update ids are missing, as opposed to an event
// that overlaps or goes backwards.
func (e *GapError) Missing() bool { return e.From <= e.To }

func (e *GapError) Error() string {
	what, link := "chain", "U"
	if e.Bridge {
		what = "bridge"
	} else if e.Market == md.Futures {
		link = "pu"
	}
	rel := "=="
	if e.Bridge {
		rel = "<="
	}
	return fmt.Sprintf("%s: %s %s: event [%d, %d] after %d: want %s %s %d, got %d; missing ids [%d, %d]",
		ErrGap, e.Market, what, e.First, e.Final, e.After, link, rel, e.Want, e.Got, e.From, e.To)
}

// Is makes errors.Is match ErrGap, and ErrNotBridged for a bridge failure.
func (e *GapError) Is(target error) bool {
	return target == ErrGap || (e.Bridge && target == ErrNotBridged)
}

// CrossedError reports a crossed book: the best bid is at or above the best
// ask after the update with final id At (or the snapshot with that id).
type CrossedError struct {
	At       int64
	Bid, Ask Level
}

func (e *CrossedError) Error() string {
	return fmt.Sprintf("%s at %d: bid %v x %v >= ask %v x %v", ErrCrossed, e.At, e.Bid.Price, e.Bid.Qty, e.Ask.Price, e.Ask.Qty)
}

// Unwrap returns ErrCrossed.
func (e *CrossedError) Unwrap() error { return ErrCrossed }

// MismatchError reports a difference between the book at update id At and a
// partial depth frame or snapshot for the same id.
type MismatchError struct {
	At   int64
	Diff string // the first differing level, as Book.EqualTop reports it
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("%s at %d: %s", ErrMismatch, e.At, e.Diff)
}

// Unwrap returns ErrMismatch.
func (e *MismatchError) Unwrap() error { return ErrMismatch }

// State is the synchronisation state of a Syncer.
type State uint8

// States.
const (
	// NeedSnapshot: there is no usable snapshot (at the start or after a
	// gap). Events are retained for replay.
	NeedSnapshot State = iota
	// Bridging: a snapshot is loaded; no event after it is applied yet.
	Bridging
	// Live: the book follows the stream; every event applied so far links.
	Live
)

func (s State) String() string {
	switch s {
	case Bridging:
		return "bridging"
	case Live:
		return "live"
	default:
		return "need-snapshot"
	}
}

// Outcome says what the Syncer did with an event.
type Outcome uint8

// Outcomes.
const (
	// Rejected: the event is invalid and was not used (see the error).
	Rejected Outcome = iota
	// Applied: the event was applied to the book.
	Applied
	// Stale: the event is contained in the snapshot and was dropped.
	Stale
	// Duplicate: the event is contained in what the live book already
	// applied (u <= prev u), for example a replica's copy, and was dropped.
	// It does not break the chain.
	Duplicate
	// Buffered: the book waits for a snapshot; the event is retained and
	// replayed when one arrives.
	Buffered
)

func (o Outcome) String() string {
	switch o {
	case Applied:
		return "applied"
	case Stale:
		return "stale"
	case Duplicate:
		return "duplicate"
	case Buffered:
		return "buffered"
	default:
		return "rejected"
	}
}

// Stats counts what a Syncer did since it was made. Applied, Stale,
// Duplicate, Buffered and Rejected count the outcomes of Apply, one per event
// of the stream; Replayed counts retained events that LoadSnapshot applied.
type Stats struct {
	Applied   uint64 // events applied on arrival
	Stale     uint64 // events dropped on arrival as contained in the snapshot
	Duplicate uint64 // events dropped on arrival as already applied
	Buffered  uint64 // events retained on arrival to wait for a snapshot
	Rejected  uint64 // invalid events
	Replayed  uint64 // retained events applied by LoadSnapshot
	Evicted   uint64 // events dropped at the retention bound while waiting for a snapshot
	Gaps      uint64 // chain breaks, bridge failures included
	Bridge    uint64 // bridge failures (ErrNotBridged), also counted in Gaps
	Crossed   uint64 // updates or snapshots that left the book crossed
	Snapshots uint64 // snapshots loaded
	Refused   uint64 // snapshots ignored to keep a live book (ErrSnapshotTooOld)
}

// Config configures a Syncer.
type Config struct {
	// Market selects the sync rules: md.Spot or md.Futures.
	Market md.Market
	// RetainEvents bounds the events kept for replay after a snapshot
	// (default 256). Zero means the default.
	RetainEvents int
	// RetainLevels bounds the levels of the retained events together
	// (default 16384, 256 KiB). Zero means the default. An event larger than
	// this is not retained. The memory the retained events hold stays within
	// a few times this bound.
	RetainLevels int
}

// Default retention bounds.
const (
	DefaultRetainEvents = 256
	DefaultRetainLevels = 16384
)

// Syncer keeps a Book in step with a diff depth stream and REST snapshots by
// the Binance rules (DESIGN section 4):
//
//   - Spot: drop events with u <= lastUpdateId. The first event applied must
//     satisfy U <= lastUpdateId+1 <= u; each later event needs
//     U == prev u + 1.
//   - USD-M: drop events with u < lastUpdateId. The first event applied must
//     satisfy U <= lastUpdateId <= u; each later event needs pu == prev u
//     (ids are not consecutive).
//
// The Syncer retains the most recent events, applied or not, within the
// bounds of Config. LoadSnapshot may come at any moment: it loads the
// snapshot and replays the retained events through the rules, so a snapshot
// that is older than the live book is bridged by events already applied, and
// after a gap the events that arrived while waiting are applied once a
// snapshot bridges them. A live book is kept when a snapshot could not
// replace it (ErrSnapshotTooOld).
//
// Two deliberate choices beyond the rules: an event with u <= prev u on a
// live book is a Duplicate, dropped without breaking the chain (it carries
// nothing new); and an event the Syncer refuses (Rejected) is simply not
// applied, so the next event reports the gap it leaves.
//
// A Syncer is not safe for concurrent use. In steady state (a live book and
// warm retention) Apply does not allocate.
type Syncer struct {
	market md.Market
	book   Book
	state  State
	// last is the update id the book reflects: lastUpdateId while Bridging,
	// the last applied u while Live, and the last one known in NeedSnapshot.
	last  int64
	ring  ring
	stats Stats
}

// NewSyncer returns a Syncer in state NeedSnapshot.
func NewSyncer(cfg Config) (*Syncer, error) {
	if !cfg.Market.Valid() {
		return nil, fmt.Errorf("new syncer: %w %d", md.ErrUnknownMarket, cfg.Market)
	}
	if cfg.RetainEvents < 0 || cfg.RetainLevels < 0 {
		return nil, fmt.Errorf("new syncer: negative retention bound (events %d, levels %d)", cfg.RetainEvents, cfg.RetainLevels)
	}
	if cfg.RetainEvents == 0 {
		cfg.RetainEvents = DefaultRetainEvents
	}
	if cfg.RetainLevels == 0 {
		cfg.RetainLevels = DefaultRetainLevels
	}
	return &Syncer{
		market: cfg.Market,
		ring:   ring{slots: make([]retained, cfg.RetainEvents), maxLevels: cfg.RetainLevels},
	}, nil
}

// Market returns the market whose rules the Syncer applies.
func (s *Syncer) Market() md.Market { return s.market }

// State returns the synchronisation state.
func (s *Syncer) State() State { return s.state }

// LastUpdateID returns the update id the book reflects: the snapshot's
// lastUpdateId while Bridging, the final id u of the last applied event while
// Live. In NeedSnapshot it is the last id the book reflected, if any.
func (s *Syncer) LastUpdateID() int64 { return s.last }

// Book returns the book. It is complete and current only while State is
// Live. Callers must not modify it.
func (s *Syncer) Book() *Book { return &s.book }

// Stats returns the counters.
func (s *Syncer) Stats() Stats { return s.stats }

// Retained returns the number of events held for replay.
func (s *Syncer) Retained() int { return s.ring.n }

// Invalidate drops the book's sync, as after a gap: the Syncer waits for a
// snapshot and retains the events that arrive meanwhile.
func (s *Syncer) Invalidate() { s.state = NeedSnapshot }

// Apply feeds the next diff event of the stream.
//
// It returns the Outcome and an error that is nil or wraps one of:
//   - ErrInvalidUpdate (Rejected);
//   - ErrGap, as *GapError: the event does not link; the book now waits for
//     a snapshot and the event is Buffered;
//   - ErrNotBridged (and ErrGap), as *GapError: the first event after the
//     snapshot does not bridge it; the book waits for a newer snapshot and
//     the event is Buffered;
//   - ErrCrossed, as *CrossedError: the event was Applied and left the book
//     crossed. The Syncer stays Live; callers decide whether to re-sync.
//
// Apply copies what it retains; the caller may reuse u's slices.
func (s *Syncer) Apply(u Update) (Outcome, error) {
	if err := s.check(&u); err != nil {
		s.stats.Rejected++
		return Rejected, err
	}
	out, err := s.step(&u)
	switch out {
	case Applied:
		s.stats.Applied++
		s.retain(&u, false)
	case Buffered:
		s.stats.Buffered++
		s.retain(&u, true)
	case Stale:
		s.stats.Stale++
	case Duplicate:
		s.stats.Duplicate++
	}
	return out, err
}

func (s *Syncer) check(u *Update) error {
	switch {
	case u.First > u.Final:
		return fmt.Errorf("%w: U %d above u %d", ErrInvalidUpdate, u.First, u.Final)
	case s.market == md.Futures && !u.HasPrev:
		return fmt.Errorf("%w: USD-M event [%d, %d] without pu", ErrInvalidUpdate, u.First, u.Final)
	}
	if err := checkLevels(Bid, u.Bids); err != nil {
		return fmt.Errorf("%w [%d, %d]: %w", ErrInvalidUpdate, u.First, u.Final, err)
	}
	if err := checkLevels(Ask, u.Asks); err != nil {
		return fmt.Errorf("%w [%d, %d]: %w", ErrInvalidUpdate, u.First, u.Final, err)
	}
	return nil
}

// step runs one checked event through the rules. It neither retains the
// event nor counts its outcome.
func (s *Syncer) step(u *Update) (Outcome, error) {
	switch s.state {
	case NeedSnapshot:
		return Buffered, nil
	case Bridging:
		if s.stale(u.Final, s.last) {
			return Stale, nil
		}
		if !s.bridges(u.First, s.last) {
			s.stats.Bridge++
			return Buffered, s.gap(u, true)
		}
	case Live:
		if u.Final <= s.last {
			return Duplicate, nil
		}
		if !s.follows(u, s.last) {
			return Buffered, s.gap(u, false)
		}
	}
	s.book.applyLevels(u.Bids, u.Asks)
	s.state = Live
	s.last = u.Final
	if s.book.Crossed() {
		return Applied, s.crossed()
	}
	return Applied, nil
}

// stale reports whether an event with final id u is contained in the
// snapshot with lastUpdateId last: spot u <= last, USD-M u < last.
func (s *Syncer) stale(u, last int64) bool {
	if s.market == md.Futures {
		return u < last
	}
	return u <= last
}

// bridges reports whether a non-stale event starting at first may be the
// first applied after the snapshot last: spot U <= last+1, USD-M U <= last.
// With the stale test before it this is the full rule (U <= L+1 <= u,
// U <= L <= u).
func (s *Syncer) bridges(first, last int64) bool {
	if s.market == md.Futures {
		return first <= last
	}
	return first-1 <= last
}

// follows reports whether an event links to the previous one, whose final
// id was last: spot U == last + 1, USD-M pu == last.
func (s *Syncer) follows(u *Update, last int64) bool {
	if s.market == md.Futures {
		return u.Prev == last
	}
	return u.First-1 == last
}

// gap records a chain break or bridge failure revealed by u and puts the
// Syncer back to waiting for a snapshot.
func (s *Syncer) gap(u *Update, bridge bool) *GapError {
	s.state = NeedSnapshot
	s.stats.Gaps++
	e := &GapError{
		Market: s.market,
		Bridge: bridge,
		After:  s.last,
		From:   s.last + 1,
		To:     u.First - 1,
		First:  u.First,
		Final:  u.Final,
		Got:    u.First,
	}
	switch {
	case bridge && s.market == md.Futures:
		e.Want = s.last
	case bridge:
		e.Want = s.last + 1
	case s.market == md.Futures:
		e.Want, e.Got, e.To = s.last, u.Prev, u.Prev
	default:
		e.Want = s.last + 1
	}
	return e
}

func (s *Syncer) crossed() *CrossedError {
	s.stats.Crossed++
	bid, _ := s.book.BestBid()
	ask, _ := s.book.BestAsk()
	return &CrossedError{At: s.last, Bid: bid, Ask: ask}
}

// LoadSnapshot loads a REST snapshot with the given lastUpdateId and replays
// the retained events through the rules; it may be called in any state. The
// error is nil or joins what the snapshot and the replay found: ErrCrossed
// (the first crossing only), ErrGap or ErrNotBridged as from Apply, or
// ErrInvalidLevel for a snapshot the book refuses, which leaves the Syncer
// waiting for another snapshot.
//
// After LoadSnapshot the state is Live when a retained event bridged the
// snapshot, Bridging when none was recent enough (the next event decides),
// and NeedSnapshot when the replay found a gap.
//
// A live book is never given up for a snapshot that cannot replace it: on a
// Live Syncer, an invalid snapshot (ErrInvalidLevel) or one the retained
// events cannot bring back to a live book (ErrSnapshotTooOld) is ignored and
// the book stays as it was.
func (s *Syncer) LoadSnapshot(lastUpdateID int64, bids, asks []Level) error {
	if s.state == Live {
		if err := checkSnapshot(bids, asks); err != nil {
			return err
		}
		if err := s.dryReplay(lastUpdateID); err != nil {
			s.stats.Refused++
			return err
		}
	}
	if err := s.book.Load(bids, asks); err != nil {
		s.book.Reset()
		s.state = NeedSnapshot
		return err
	}
	s.stats.Snapshots++
	s.state = Bridging
	s.last = lastUpdateID
	var crossed, gap error
	if s.book.Crossed() {
		crossed = s.crossed()
	}
	for i := range s.ring.n {
		r := s.ring.at(i)
		out, err := Buffered, error(nil)
		if s.state != NeedSnapshot {
			out, err = s.step(&r.u)
		}
		r.pending = out == Buffered
		if out == Applied {
			s.stats.Replayed++
		}
		switch {
		case err == nil:
		case errors.Is(err, ErrCrossed):
			if crossed == nil {
				crossed = err
			}
		default:
			gap = err
		}
	}
	return errors.Join(crossed, gap)
}

func checkSnapshot(bids, asks []Level) error {
	if err := checkLevels(Bid, bids); err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	if err := checkLevels(Ask, asks); err != nil {
		return fmt.Errorf("load snapshot: %w", err)
	}
	return nil
}

// dryReplay runs the rules over the retained events for a snapshot at last
// without touching the book, and returns an ErrSnapshotTooOld error when the
// replay would not end with a live or bridging book.
func (s *Syncer) dryReplay(last int64) error {
	live := false
	for i := range s.ring.n {
		u := &s.ring.at(i).u
		switch {
		case !live && s.stale(u.Final, last), live && u.Final <= last:
			continue
		case !live && s.bridges(u.First, last), live && s.follows(u, last):
			live, last = true, u.Final
			continue
		}
		return fmt.Errorf("load snapshot: %w: event [%d, %d] does not follow %d", ErrSnapshotTooOld, u.First, u.Final, last)
	}
	return nil
}

// CheckPartial compares the book with a partial depth frame (the top levels
// of the book, best first, without a chain) taken at update id id: spot
// lastUpdateId, USD-M u. Only the best n levels count (see Book.EqualTop).
//
// It returns nil when they are equal, ErrNotSynced when the book is not Live,
// ErrNotComparable when the book is at another update id (callers keep the
// frame until the book reaches id), or a *MismatchError.
func (s *Syncer) CheckPartial(id int64, bids, asks []Level, n int) error {
	if s.state != Live {
		return fmt.Errorf("check partial %d: %w (%s)", id, ErrNotSynced, s.state)
	}
	if id != s.last {
		return fmt.Errorf("check partial %d: %w: book at %d", id, ErrNotComparable, s.last)
	}
	if ok, diff := s.book.EqualTop(bids, asks, n); !ok {
		return &MismatchError{At: id, Diff: diff}
	}
	return nil
}

// retain stores a copy of u as the newest retained event.
func (s *Syncer) retain(u *Update, pending bool) {
	s.stats.Evicted += uint64(s.ring.push(u, pending))
}

// retained is one event held for replay; its level slices are owned and
// reused.
type retained struct {
	u       Update
	pending bool // not applied yet: dropping it loses it
}

// ring is a bounded FIFO of retained events.
type ring struct {
	slots     []retained
	head, n   int // oldest slot and count
	levels    int // levels held by the n events
	maxLevels int
}

func (r *ring) at(i int) *retained {
	return &r.slots[(r.head+i)%len(r.slots)]
}

func size(u *Update) int { return len(u.Bids) + len(u.Asks) }

// push copies u in as the newest event, evicting the oldest ones to stay
// within bounds. It returns how many pending events were lost, u included
// when it is larger than the level bound.
func (r *ring) push(u *Update, pending bool) (lost int) {
	need := size(u)
	if need > r.maxLevels {
		if pending {
			return 1
		}
		return 0
	}
	for r.n == len(r.slots) || r.levels+need > r.maxLevels {
		old := r.at(0)
		if old.pending {
			lost++
		}
		r.levels -= size(&old.u)
		r.head = (r.head + 1) % len(r.slots)
		r.n--
	}
	slot := r.at(r.n)
	slot.u.First, slot.u.Final, slot.u.Prev, slot.u.HasPrev = u.First, u.Final, u.Prev, u.HasPrev
	keep := max(2*r.maxLevels/len(r.slots), 64)
	slot.u.Bids = append(trim(slot.u.Bids, len(u.Bids), keep), u.Bids...)
	slot.u.Asks = append(trim(slot.u.Asks, len(u.Asks), keep), u.Asks...)
	slot.pending = pending
	r.n++
	r.levels += need
	return lost
}

// trim empties a slot's slice for reuse, or drops it when it is oversized:
// more than keep levels of capacity and more than twice the n levels about
// to go in. Slots thus keep no more than max(keep, 2n) each, so the memory
// held stays within a small multiple of the level bound even after a burst
// of large events, while a stream of similar events reuses its slices.
func trim(s []Level, n, keep int) []Level {
	if c := cap(s); c > keep && c > 2*n {
		return nil
	}
	return s[:0]
}
