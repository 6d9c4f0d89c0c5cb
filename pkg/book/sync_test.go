package book

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

// step is one input of a sync table test and what it must produce.
type step struct {
	snap bool  // LoadSnapshot(id, snapshot levels) instead of Apply
	id   int64 // lastUpdateId of a snapshot
	ev   Update

	want      Outcome // of Apply
	wantErr   []error // every one must match errors.Is; none means nil
	wantState State
	wantLast  int64
	wantGap   *GapError // when set, the *GapError must equal it
}

// ev makes a spot event [U, u] that sets bid 90+u%5 and ask 110+u%5 to u, so
// the book shows which events were applied.
func ev(U, u int64) Update {
	return Update{First: U, Final: u,
		Bids: []Level{{90 + float64(u%5), float64(u)}},
		Asks: []Level{{110 + float64(u%5), float64(u)}}}
}

// fev makes a USD-M event [U, u] with pu.
func fev(U, u, pu int64) Update {
	e := ev(U, u)
	e.Prev, e.HasPrev = pu, true
	return e
}

func snap(id int64) step { return step{snap: true, id: id} }

func (s step) then(out Outcome, st State, last int64, errs ...error) step {
	s.want, s.wantState, s.wantLast, s.wantErr = out, st, last, errs
	return s
}

func on(u Update) step { return step{ev: u} }

var snapBids, snapAsks = lv(80, 1), lv(120, 1)

func runSteps(t *testing.T, s *Syncer, steps []step) {
	t.Helper()
	for i, st := range steps {
		var (
			out Outcome
			err error
		)
		if st.snap {
			err = s.LoadSnapshot(st.id, snapBids, snapAsks)
		} else {
			out, err = s.Apply(st.ev)
			if out != st.want {
				t.Fatalf("step %d [%d, %d]: outcome %s, want %s (err %v)", i, st.ev.First, st.ev.Final, out, st.want, err)
			}
		}
		if len(st.wantErr) == 0 && err != nil {
			t.Fatalf("step %d: unexpected error %v", i, err)
		}
		for _, w := range st.wantErr {
			if !errors.Is(err, w) {
				t.Fatalf("step %d: err %v, want %v", i, err, w)
			}
		}
		if st.wantGap != nil {
			var ge *GapError
			if !errors.As(err, &ge) || *ge != *st.wantGap {
				t.Fatalf("step %d: gap %+v, want %+v", i, ge, st.wantGap)
			}
		}
		if s.State() != st.wantState || s.LastUpdateID() != st.wantLast {
			t.Fatalf("step %d: state %s at %d, want %s at %d", i, s.State(), s.LastUpdateID(), st.wantState, st.wantLast)
		}
		checkInvariants(t, s.Book())
	}
}

// TestSyncRules proves the DESIGN section 4 sync rules on hand-made
// sequences, step by step, including the edge cases U == lastUpdateId+1
// (spot) and u == lastUpdateId (USD-M).
func TestSyncRules(t *testing.T) {
	spot, fut := md.Spot, md.Futures
	tests := []struct {
		name   string
		market md.Market
		steps  []step
	}{
		{"spot: first event with U == lastUpdateId+1 bridges", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
		}},
		{"spot: first event with U <= lastUpdateId+1 <= u bridges", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(98, 103)).then(Applied, Live, 103),
		}},
		{"spot: u == lastUpdateId is stale, the next one bridges", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(95, 100)).then(Stale, Bridging, 100),
			on(ev(101, 101)).then(Applied, Live, 101),
		}},
		{"spot: U == lastUpdateId+2 does not bridge", spot, []step{
			snap(100).then(0, Bridging, 100),
			func() step {
				s := on(ev(102, 105)).then(Buffered, NeedSnapshot, 100, ErrNotBridged, ErrGap)
				s.wantGap = &GapError{Market: spot, Bridge: true, After: 100, Want: 101, Got: 102, From: 101, To: 101, First: 102, Final: 105}
				return s
			}(),
		}},
		{"spot: later events need U == prev u + 1", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			on(ev(106, 110)).then(Applied, Live, 110),
			on(ev(111, 111)).then(Applied, Live, 111),
		}},
		{"spot: a skipped id is a gap with its range", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			func() step {
				s := on(ev(108, 110)).then(Buffered, NeedSnapshot, 105, ErrGap)
				s.wantGap = &GapError{Market: spot, After: 105, Want: 106, Got: 108, From: 106, To: 107, First: 108, Final: 110}
				return s
			}(),
			on(ev(111, 112)).then(Buffered, NeedSnapshot, 105),
		}},
		{"spot: an overlapping event breaks the chain with no id missing", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			func() step {
				s := on(ev(104, 108)).then(Buffered, NeedSnapshot, 105, ErrGap)
				s.wantGap = &GapError{Market: spot, After: 105, Want: 106, Got: 104, From: 106, To: 103, First: 104, Final: 108}
				return s
			}(),
		}},
		{"spot: a duplicate of an applied event is dropped without a break", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			on(ev(101, 105)).then(Duplicate, Live, 105),
			on(ev(106, 107)).then(Applied, Live, 107),
		}},
		{"spot: events before the snapshot are buffered and replayed", spot, []step{
			on(ev(97, 98)).then(Buffered, NeedSnapshot, 0),
			on(ev(99, 101)).then(Buffered, NeedSnapshot, 0),
			on(ev(102, 103)).then(Buffered, NeedSnapshot, 0),
			snap(100).then(0, Live, 103),
			on(ev(104, 104)).then(Applied, Live, 104),
		}},
		{"spot: a snapshot older than every buffered event is not bridged", spot, []step{
			on(ev(105, 106)).then(Buffered, NeedSnapshot, 0),
			snap(100).then(0, NeedSnapshot, 100, ErrNotBridged),
			snap(105).then(0, Live, 106),
		}},
		{"spot: a snapshot newer than every buffered event waits Bridging", spot, []step{
			on(ev(101, 102)).then(Buffered, NeedSnapshot, 0),
			snap(110).then(0, Bridging, 110),
			on(ev(103, 111)).then(Applied, Live, 111),
		}},
		{"spot: after a gap, the next snapshot replays what was buffered", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			on(ev(108, 110)).then(Buffered, NeedSnapshot, 105, ErrGap),
			on(ev(111, 112)).then(Buffered, NeedSnapshot, 105),
			snap(109).then(0, Live, 112),
			on(ev(113, 113)).then(Applied, Live, 113),
		}},
		{"spot: a re-sync of a live book from an older snapshot replays applied events", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			on(ev(106, 110)).then(Applied, Live, 110),
			on(ev(111, 115)).then(Applied, Live, 115),
			snap(107).then(0, Live, 115),
			on(ev(116, 116)).then(Applied, Live, 116),
		}},
		{"spot: a snapshot older than the retained events is refused and the live book kept", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			snap(50).then(0, Live, 105, ErrSnapshotTooOld),
			on(ev(106, 106)).then(Applied, Live, 106),
		}},
		{"futures: a snapshot the retained chain cannot bridge is refused", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(fev(98, 102, 97)).then(Applied, Live, 102),
			on(fev(105, 110, 102)).then(Applied, Live, 110),
			snap(103).then(0, Live, 110, ErrSnapshotTooOld), // U 105 > 103
			snap(105).then(0, Live, 110),
		}},
		{"spot: a re-sync at exactly the live id waits for the next event", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 105)).then(Applied, Live, 105),
			snap(105).then(0, Bridging, 105),
			on(ev(106, 106)).then(Applied, Live, 106),
		}},
		{"spot: events are invalid with U > u or a bad level", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(102, 101)).then(Rejected, Bridging, 100, ErrInvalidUpdate),
			on(Update{First: 101, Final: 101, Bids: lv(1, math.NaN())}).then(Rejected, Bridging, 100, ErrInvalidUpdate, ErrInvalidLevel),
			on(ev(101, 101)).then(Applied, Live, 101),
		}},
		{"spot: a rejected event shows up as the gap it leaves", spot, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(101, 101)).then(Applied, Live, 101),
			on(Update{First: 102, Final: 103, Asks: lv(-1, 1)}).then(Rejected, Live, 101, ErrInvalidUpdate),
			on(ev(104, 104)).then(Buffered, NeedSnapshot, 101, ErrGap),
		}},

		{"futures: first event with u == lastUpdateId bridges", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(fev(95, 100, 90)).then(Applied, Live, 100),
			on(fev(103, 110, 100)).then(Applied, Live, 110),
		}},
		{"futures: first event with U == lastUpdateId bridges", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(fev(100, 104, 97)).then(Applied, Live, 104),
		}},
		{"futures: u < lastUpdateId is stale", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(fev(90, 99, 85)).then(Stale, Bridging, 100),
			on(fev(100, 102, 99)).then(Applied, Live, 102),
		}},
		{"futures: U == lastUpdateId+1 does not bridge, even with pu == lastUpdateId", fut, []step{
			snap(100).then(0, Bridging, 100),
			func() step {
				s := on(fev(101, 104, 100)).then(Buffered, NeedSnapshot, 100, ErrNotBridged, ErrGap)
				s.wantGap = &GapError{Market: fut, Bridge: true, After: 100, Want: 100, Got: 101, From: 101, To: 100, First: 101, Final: 104}
				return s
			}(),
		}},
		{"futures: later events chain on pu == prev u, ids need not be consecutive", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(fev(98, 102, 97)).then(Applied, Live, 102),
			on(fev(107, 109, 102)).then(Applied, Live, 109),
			on(fev(200, 300, 109)).then(Applied, Live, 300),
		}},
		{"futures: pu != prev u is a gap ending at pu", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(fev(98, 102, 97)).then(Applied, Live, 102),
			func() step {
				s := on(fev(120, 125, 115)).then(Buffered, NeedSnapshot, 102, ErrGap)
				s.wantGap = &GapError{Market: fut, After: 102, Want: 102, Got: 115, From: 103, To: 115, First: 120, Final: 125}
				return s
			}(),
		}},
		{"futures: U == prev u + 1 without the pu link is still a gap", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(fev(98, 102, 97)).then(Applied, Live, 102),
			on(fev(103, 104, 101)).then(Buffered, NeedSnapshot, 102, ErrGap),
		}},
		{"futures: an event without pu is rejected", fut, []step{
			snap(100).then(0, Bridging, 100),
			on(ev(98, 102)).then(Rejected, Bridging, 100, ErrInvalidUpdate),
		}},
		{"futures: buffered events replay on u == lastUpdateId", fut, []step{
			on(fev(90, 95, 80)).then(Buffered, NeedSnapshot, 0),
			on(fev(97, 100, 95)).then(Buffered, NeedSnapshot, 0),
			on(fev(104, 108, 100)).then(Buffered, NeedSnapshot, 0),
			snap(100).then(0, Live, 108),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSyncer(Config{Market: tt.market})
			if err != nil {
				t.Fatal(err)
			}
			runSteps(t, s, tt.steps)
		})
	}
}

// TestSyncReplayContent proves that replay applies exactly the bridging
// event and its successors: the book holds the snapshot plus those events'
// levels and nothing from stale ones.
func TestSyncReplayContent(t *testing.T) {
	s, _ := NewSyncer(Config{Market: md.Spot})
	for _, e := range []Update{ev(96, 98), ev(99, 101), ev(102, 103)} {
		if _, err := s.Apply(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.LoadSnapshot(100, snapBids, snapAsks); err != nil {
		t.Fatal(err)
	}
	bids, asks := s.Book().Levels(nil, nil)
	// ev(96,98) is stale: bid 93 x 98 must be absent. 101 -> 91, 103 -> 93.
	wantBids := lv(93, 103, 91, 101, 80, 1)
	wantAsks := lv(111, 101, 113, 103, 120, 1)
	if !slices.Equal(bids, wantBids) || !slices.Equal(asks, wantAsks) {
		t.Fatalf("book bids %v asks %v, want %v %v", bids, asks, wantBids, wantAsks)
	}
	st := s.Stats()
	if st.Buffered != 3 || st.Replayed != 2 || st.Applied != 0 || st.Snapshots != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestSyncInvalidate proves that Invalidate drops a live book back to
// waiting and that events after it replay from the next snapshot.
func TestSyncInvalidate(t *testing.T) {
	s, _ := NewSyncer(Config{Market: md.Spot})
	runSteps(t, s, []step{
		snap(100).then(0, Bridging, 100),
		on(ev(101, 101)).then(Applied, Live, 101),
	})
	s.Invalidate()
	runSteps(t, s, []step{
		on(ev(102, 102)).then(Buffered, NeedSnapshot, 101),
		snap(101).then(0, Live, 102),
	})
}

// TestSyncRetentionBound proves that retention is bounded in events and in
// levels, that pending events dropped at the bound are counted, and that a
// snapshot needing a dropped event is then not bridged.
func TestSyncRetentionBound(t *testing.T) {
	tests := []struct {
		name        string
		cfg         Config
		wantRetain  int
		wantEvicted uint64
	}{
		{"event bound", Config{Market: md.Spot, RetainEvents: 2}, 2, 2},
		{"level bound", Config{Market: md.Spot, RetainLevels: 5}, 2, 2}, // 2 levels per event
		{"event larger than the level bound", Config{Market: md.Spot, RetainLevels: 1}, 0, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewSyncer(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			for id := int64(101); id <= 104; id++ {
				if out, err := s.Apply(ev(id, id)); out != Buffered || err != nil {
					t.Fatalf("Apply: %s %v", out, err)
				}
			}
			if s.Retained() != tt.wantRetain || s.Stats().Evicted != tt.wantEvicted {
				t.Fatalf("retained %d evicted %d, want %d %d", s.Retained(), s.Stats().Evicted, tt.wantRetain, tt.wantEvicted)
			}
			err = s.LoadSnapshot(100, nil, nil)
			if tt.wantRetain == 0 {
				if err != nil || s.State() != Bridging {
					t.Fatalf("LoadSnapshot: %v, state %s", err, s.State())
				}
				return
			}
			if !errors.Is(err, ErrNotBridged) {
				t.Fatalf("LoadSnapshot needing evicted events: err %v, want ErrNotBridged", err)
			}
		})
	}
}

// TestSyncCrossed proves that a crossed book is reported, as *CrossedError
// with the levels, both from Apply and from a snapshot, and that the Syncer
// stays live.
func TestSyncCrossed(t *testing.T) {
	s, _ := NewSyncer(Config{Market: md.Spot})
	if err := s.LoadSnapshot(100, lv(100, 1), lv(101, 1)); err != nil {
		t.Fatal(err)
	}
	out, err := s.Apply(Update{First: 101, Final: 101, Bids: lv(101, 2)})
	var ce *CrossedError
	if out != Applied || !errors.As(err, &ce) || !errors.Is(err, ErrCrossed) {
		t.Fatalf("Apply: %s %v, want Applied and a CrossedError", out, err)
	}
	if *ce != (CrossedError{At: 101, Bid: Level{101, 2}, Ask: Level{101, 1}}) {
		t.Fatalf("crossed %+v", *ce)
	}
	if s.State() != Live {
		t.Fatalf("state %s, want live", s.State())
	}
	if _, err := s.Apply(Update{First: 102, Final: 102, Bids: lv(101, 0)}); err != nil {
		t.Fatalf("uncrossing update: %v", err)
	}
	err = s.LoadSnapshot(200, lv(105, 1), lv(104, 1))
	if !errors.Is(err, ErrCrossed) || errors.Is(err, ErrGap) {
		t.Fatalf("crossed snapshot: err %v, want ErrCrossed only", err)
	}
	if st := s.Stats(); st.Crossed != 2 {
		t.Fatalf("Crossed %d, want 2", st.Crossed)
	}
}

// TestSyncInvalidSnapshot proves that a snapshot the book refuses leaves
// the Syncer waiting for another one, with the events it retained, and that
// a live Syncer keeps its book.
func TestSyncInvalidSnapshot(t *testing.T) {
	s, _ := NewSyncer(Config{Market: md.Spot})
	if _, err := s.Apply(ev(101, 101)); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadSnapshot(100, lv(math.Inf(1), 1), nil); !errors.Is(err, ErrInvalidLevel) {
		t.Fatalf("err %v, want ErrInvalidLevel", err)
	}
	if s.State() != NeedSnapshot {
		t.Fatalf("state %s", s.State())
	}
	if err := s.LoadSnapshot(100, nil, nil); err != nil || s.State() != Live {
		t.Fatalf("next snapshot: %v, state %s", err, s.State())
	}
	// On a live book an invalid snapshot is ignored.
	if err := s.LoadSnapshot(101, lv(1, -1), nil); !errors.Is(err, ErrInvalidLevel) {
		t.Fatalf("err %v, want ErrInvalidLevel", err)
	}
	if s.State() != Live || s.LastUpdateID() != 101 || s.Book().Qty(Bid, 91) != 101 {
		t.Fatalf("live book changed by an invalid snapshot: state %s at %d", s.State(), s.LastUpdateID())
	}
}

// TestCheckPartial proves the partial frame comparison: only a live book at
// the frame's update id is compared, and a difference is a *MismatchError.
func TestCheckPartial(t *testing.T) {
	s, _ := NewSyncer(Config{Market: md.Spot})
	partial := lv(100, 1)
	if err := s.CheckPartial(100, partial, nil, 20); !errors.Is(err, ErrNotSynced) {
		t.Fatalf("before a snapshot: %v, want ErrNotSynced", err)
	}
	if err := s.LoadSnapshot(100, nil, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Apply(Update{First: 101, Final: 101, Bids: lv(100, 1)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		id         int64
		bids, asks []Level
		wantErr    error
	}{
		{"equal", 101, lv(100, 1), nil, nil},
		{"other id", 102, lv(100, 1), nil, ErrNotComparable},
		{"different", 101, lv(100, 2), nil, ErrMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CheckPartial(tt.id, tt.bids, tt.asks, 20)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestNewSyncer proves that configuration errors are reported.
func TestNewSyncer(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr error
	}{
		{"spot", Config{Market: md.Spot}, nil},
		{"unknown market", Config{}, md.ErrUnknownMarket},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSyncer(tt.cfg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
		})
	}
	if _, err := NewSyncer(Config{Market: md.Spot, RetainEvents: -1}); err == nil {
		t.Fatal("negative bound accepted")
	}
}

// TestSyncRetentionMemory proves that slots release the large slices a
// burst of big events left, so retained memory follows the level bound and
// not the largest events ever seen.
func TestSyncRetentionMemory(t *testing.T) {
	s, _ := NewSyncer(Config{Market: md.Spot, RetainEvents: 100, RetainLevels: 4000})
	big := make([]Level, 1000)
	for i := range big {
		big[i] = Level{float64(i + 1), 1}
	}
	id := int64(1)
	for range 3 {
		_, _ = s.Apply(Update{First: id, Final: id, Bids: big, Asks: big[:500]})
		id++
	}
	for range 200 {
		_, _ = s.Apply(ev(id, id))
		id++
	}
	held := 0
	for i := range s.ring.slots {
		held += cap(s.ring.slots[i].u.Bids) + cap(s.ring.slots[i].u.Asks)
	}
	// Every event now retained has one bid and one ask. Without trimming,
	// the slots the burst used would still hold ~3,000 levels of capacity.
	if limit := 1000; held > limit {
		t.Fatalf("slots hold %d levels of capacity, want <= %d", held, limit)
	}
}
