package quality

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/depthcap/depthcap/pkg/book"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
)

// ErrNoBook reports that the files do not give a book at the instant: no
// snapshot before it, or a gap after the last one.
var ErrNoBook = errors.New("no book at this instant")

// BookOptions select the book to rebuild.
type BookOptions struct {
	Market md.Market
	Symbol string
	At     time.Time // rows with received_time <= At count
	Depth  int       // levels (or buckets) per side; <= 0 means all
	Tick   float64   // bucket size; 0 means no aggregation
}

// BookState is the book as it stood at an instant.
type BookState struct {
	Market string    `json:"market"`
	Symbol string    `json:"symbol"`
	At     time.Time `json:"at"`
	// UpdateID is the update id the book reflects: the final id of the last
	// diff applied, or the snapshot's lastUpdateId when no diff after it was
	// received by At (State "bridging").
	UpdateID int64  `json:"update_id"`
	State    string `json:"state"`
	// LastEventTime is the receive time of the last diff applied.
	LastEventTime *time.Time `json:"last_event_time,omitempty"`
	Snapshot      int64      `json:"snapshot"`
	SnapshotTime  time.Time  `json:"snapshot_time"`
	DiffsApplied  int64      `json:"diffs_applied"`
	Tick          float64    `json:"tick,omitempty"`
	// The book is complete (every level the exchange had) for bids at or
	// above CompleteBidsFrom and asks at or below CompleteAsksTo: the depth
	// of the base snapshot. Beyond, it holds only levels the diffs touched.
	// Absent when the snapshot held the whole side.
	CompleteBidsFrom *float64 `json:"complete_bids_from,omitempty"`
	CompleteAsksTo   *float64 `json:"complete_asks_to,omitempty"`
	Bids             []Level  `json:"bids"`
	Asks             []Level  `json:"asks"`
	Crossed          bool     `json:"crossed"`
}

// BookAt rebuilds the book of a symbol as it stood at opts.At, from the
// rows received at or before it: the last REST snapshot received by then
// (on the same UTC day, else on the day before) and the diffs after it.
// When the diffs do not bridge that snapshot (it came too late for the
// events it needs), up to two earlier snapshots are tried. It returns an
// error wrapping ErrNoBook when there is no usable snapshot, or when a gap
// after it leaves no book at that instant.
func BookAt(ctx context.Context, st dataset.Store, opts BookOptions) (*BookState, error) {
	atUs := opts.At.UnixMicro()
	maxUs := atUs
	var firstErr error
	for range 3 {
		snapSet, snapUs, snapID, err := findBase(ctx, st, opts, maxUs)
		if err != nil {
			return nil, err
		}
		if snapSet == nil {
			break
		}
		bs, bridgeFailed, err := rebuild(ctx, st, opts, snapSet, snapUs, snapID)
		if err == nil || !bridgeFailed {
			return bs, err
		}
		if firstErr == nil {
			firstErr = err
		}
		maxUs = snapUs - 1
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return nil, fmt.Errorf("%s %s at %s: %w: no snapshot received on that day or the day before", opts.Market, opts.Symbol,
		opts.At.UTC().Format(time.RFC3339Nano), ErrNoBook)
}

// findBase returns the last snapshot received at or before maxUs, on the
// day of opts.At or the day before; snapSet is nil when there is none.
func findBase(ctx context.Context, st dataset.Store, opts BookOptions, maxUs int64) (snapSet *dataset.Set, snapUs, snapID int64, err error) {
	day := dataset.Day(opts.At)
	for _, d := range []time.Time{day, day.AddDate(0, 0, -1)} {
		s, err := dataset.Find(ctx, st, opts.Market, md.Snapshot, opts.Symbol, d)
		if errors.Is(err, dataset.ErrNoFiles) {
			continue
		}
		if err != nil {
			return nil, 0, 0, err
		}
		us, id, err := lastSnapshot(ctx, st, s, maxUs)
		if err != nil {
			return nil, 0, 0, err
		}
		if us != 0 {
			return s, us, id, nil
		}
	}
	return nil, 0, 0, nil
}

// rebuild builds the book at opts.At from one snapshot; bridgeFailed
// reports an ErrNoBook because the diffs did not bridge the snapshot (as
// opposed to a gap after it).
func rebuild(ctx context.Context, st dataset.Store, opts BookOptions, snapSet *dataset.Set, snapUs, snapID int64) (bs *BookState, bridgeFailed bool, err error) {
	atUs := opts.At.UnixMicro()
	day := dataset.Day(opts.At)
	ins := []dataset.Input{{Set: snapSet, Filter: dataset.Filter{MinReceivedUs: snapUs, MaxReceivedUs: snapUs}}}
	for d := snapSet.Day; !d.After(day); d = d.AddDate(0, 0, 1) {
		s, err := dataset.Find(ctx, st, opts.Market, md.Diff, opts.Symbol, d)
		if errors.Is(err, dataset.ErrNoFiles) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		ins = append(ins, dataset.Input{Set: s, Filter: dataset.Filter{MaxReceivedUs: atUs, MinID: snapID - 1}})
	}
	r, err := dataset.Open(ctx, st, ins...)
	if err != nil {
		return nil, false, err
	}
	defer r.Close()
	e, err := newEngine(opts.Market, false, snapUs)
	if err != nil {
		return nil, false, err
	}
	loaded := false
	for {
		row, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, err
		}
		switch row.Kind {
		case md.Snapshot:
			if loaded || row.LastUpdateID != snapID {
				continue // another snapshot received in the same microsecond
			}
			loaded = true
		case md.Diff:
			if !loaded && row.FinalID < snapID-1 {
				continue // older than the snapshot: never applied
			}
		}
		e.row(row)
	}
	e.finish()
	state := e.sync.State()
	at := opts.At.UTC().Format(time.RFC3339Nano)
	if state == book.NeedSnapshot {
		why := fmt.Sprintf("snapshot %d received %s is not bridged by the diffs", snapID, usTime(snapUs).Format(time.RFC3339Nano))
		bridgeFailed = true
		for _, g := range e.open {
			if g.restoredUs == 0 {
				why = fmt.Sprintf("gap after update id %d (received %s), resumed at %d (received %s), not restored by %s",
					g.after, usTime(g.afterUs).Format(time.RFC3339Nano), g.resume, usTime(g.resumeUs).Format(time.RFC3339Nano), at)
				bridgeFailed = false
				break
			}
		}
		return nil, bridgeFailed, fmt.Errorf("%s %s at %s: %w: %s", opts.Market, opts.Symbol, at, ErrNoBook, why)
	}
	bs = &BookState{Market: opts.Market.String(), Symbol: opts.Symbol, At: opts.At.UTC(), UpdateID: e.sync.LastUpdateID(),
		State: state.String(), LastEventTime: usTimePtr(e.lastAppliedUs), Snapshot: snapID, SnapshotTime: usTime(snapUs),
		DiffsApplied: int64(e.sync.Stats().Applied + e.sync.Stats().Replayed), Tick: opts.Tick}
	if lo := e.base.BidLo; !math.IsInf(lo, 0) {
		bs.CompleteBidsFrom = &lo
	}
	if hi := e.base.AskHi; !math.IsInf(hi, 0) {
		bs.CompleteAsksTo = &hi
	}
	b := e.sync.Book()
	bs.Crossed = b.Crossed()
	var bids, asks []book.Level
	if opts.Tick != 0 {
		bids, asks, err = b.Aggregate(opts.Tick, opts.Depth, nil, nil)
		if err != nil {
			return nil, false, err
		}
	} else {
		n := opts.Depth
		if n <= 0 {
			n = -1
		}
		bids, asks = b.TopN(n, nil, nil)
	}
	bs.Bids, bs.Asks = make([]Level, 0, len(bids)), make([]Level, 0, len(asks))
	for _, l := range bids {
		bs.Bids = append(bs.Bids, levelOf(l))
	}
	for _, l := range asks {
		bs.Asks = append(bs.Asks, levelOf(l))
	}
	return bs, false, nil
}
