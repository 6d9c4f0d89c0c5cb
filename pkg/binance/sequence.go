package binance

import (
	"errors"
	"fmt"

	"github.com/depthcap/depthcap/pkg/md"
)

// Book sync rules (DESIGN section 4), checked against the recordings in
// shared testdata:
//
//   - Spot. Drop events with u <= lastUpdateId. The first event applied
//     after a snapshot satisfies U <= lastUpdateId+1 <= u. Later events need
//     U == prev u + 1: spot update ids are consecutive.
//   - USD-M. Drop events with u < lastUpdateId. The first event applied
//     satisfies U <= lastUpdateId <= u (u == lastUpdateId happens). Later
//     events need pu == prev u: update ids are not consecutive, so only pu
//     detects a gap.
//
// Partial depth messages are self-contained top-N books and are not chained:
// on USD-M their pu is the u of the previous event of the underlying diff
// stream, not of the previous partial message (partials are sampled every
// 100-500 ms), and it can be -1 (a real coin-M @depth5 sample has pu -1 and
// U == u). Never apply Follows to partials.

// ErrMissingField reports a payload without a field its kind requires.
// Errors wrapping it also wrap ErrMalformed.
var ErrMissingField = errors.New("missing field")

func missing(f Field) error {
	return fmt.Errorf("%w: %w: %s", ErrMalformed, ErrMissingField, f)
}

// SpotBridges reports whether a spot event [U, u] is the first one to apply
// on top of a snapshot: U <= lastUpdateID+1 <= u.
func SpotBridges(U, u, lastUpdateID int64) bool {
	return U-1 <= lastUpdateID && lastUpdateID < u
}

// FuturesBridges reports whether a USD-M event [U, u] is the first one to
// apply on top of a snapshot: U <= lastUpdateID <= u.
func FuturesBridges(U, u, lastUpdateID int64) bool {
	return U <= lastUpdateID && lastUpdateID <= u
}

// BridgeMin is the lowest snapshot lastUpdateId that a diff event whose
// first update id is U can bridge: U-1 on spot (U <= lastUpdateId+1),
// U on USD-M (U <= lastUpdateId). A snapshot below it is older than the
// event: the updates between the two are not in the stream. A snapshot at
// or above it is bridged by that event or a later one of the unbroken
// chain that follows (on USD-M, whose ids are not consecutive, provided
// its lastUpdateId lies inside an event's [U, u], as the bridge rule
// assumes). After a diff gap, BridgeMin of the first event after the gap
// is the oldest snapshot that restores the book.
func BridgeMin(m md.Market, U int64) int64 {
	if m == md.Futures {
		return U
	}
	return U - 1
}

// Bridges applies the bridge rule of market m.
func Bridges(m md.Market, U, u, lastUpdateID int64) bool {
	if m == md.Futures {
		return FuturesBridges(U, u, lastUpdateID)
	}
	return SpotBridges(U, u, lastUpdateID)
}

// Stale reports whether an event whose final update id is u is already
// contained in a snapshot: spot u <= lastUpdateId, USD-M u < lastUpdateId.
// Stale events are dropped before the bridge is looked for.
func Stale(m md.Market, u, lastUpdateID int64) bool {
	if m == md.Futures {
		return u < lastUpdateID
	}
	return u <= lastUpdateID
}

// Follows reports whether an event directly follows the previous event of
// the same diff stream, whose final update id was prevU: spot U == prevU+1,
// USD-M pu == prevU. U and pu are the event's first update id and previous
// final update id; spot ignores pu.
func Follows(m md.Market, prevU, U, pu int64) bool {
	return PrevLink(m, U, pu) == prevU
}

// PrevLink returns the final update id the previous event must have had for
// the chain to be intact: U-1 on spot, pu on USD-M. When Follows fails, the
// missing range is (prevU, PrevLink]: it is what a gap record reports.
func PrevLink(m md.Market, U, pu int64) int64 {
	if m == md.Futures {
		return pu
	}
	return U - 1
}

// Required returns the fields a payload of market m and kind k must carry.
func Required(m md.Market, k md.Kind) Field {
	const levels = HasBids | HasAsks
	const update = HasEventType | HasEventTime | HasSymbol | HasFirstUpdateID | HasFinalUpdateID | levels
	const futures = HasTransactionTime | HasPrevFinalUpdateID
	switch k {
	case md.Diff:
		if m == md.Futures {
			return update | futures
		}
		return update
	case md.Partial:
		if m == md.Futures {
			return update | futures
		}
		return HasLastUpdateID | levels
	case md.Snapshot:
		if m == md.Futures {
			return HasLastUpdateID | HasEventTime | HasTransactionTime | levels
		}
		return HasLastUpdateID | levels
	}
	return 0
}

// Check verifies that q carries what a payload of market m and kind k
// needs: the Required fields (ErrMissingField), event type "depthUpdate"
// where there is one (ErrMalformed), and U <= u with non-negative ids
// (ErrImpossibleValue). pu may be -1.
func (q *Seq) Check(m md.Market, k md.Kind) error {
	req := Required(m, k)
	if req == 0 {
		return fmt.Errorf("check %s %s: %w: kind", m, k, ErrMalformed)
	}
	if miss := req &^ q.Has; miss != 0 {
		return fmt.Errorf("check %s %s: %w", m, k, missing(miss))
	}
	if req&HasEventType != 0 && string(q.EventType) != "depthUpdate" {
		return fmt.Errorf("check %s %s: %w: event type %q, want depthUpdate", m, k, ErrMalformed, q.EventType)
	}
	switch {
	case q.Has&HasFirstUpdateID != 0 && q.FirstUpdateID < 0,
		q.Has&HasFinalUpdateID != 0 && q.FinalUpdateID < 0,
		q.Has&HasLastUpdateID != 0 && q.LastUpdateID < 0:
		return fmt.Errorf("check %s %s: %w: negative update id", m, k, ErrImpossibleValue)
	case q.Has&(HasFirstUpdateID|HasFinalUpdateID) == HasFirstUpdateID|HasFinalUpdateID && q.FirstUpdateID > q.FinalUpdateID:
		return fmt.Errorf("check %s %s: %w: U %d above u %d", m, k, ErrImpossibleValue, q.FirstUpdateID, q.FinalUpdateID)
	}
	return nil
}

// DedupID returns the exchange sequence id of the dedup id
// <market>.<kind>.<SYMBOL>.<id> (DESIGN section 2): u for a diff,
// lastUpdateId for a spot partial, u for a USD-M partial, lastUpdateId for a
// snapshot. It reports false when the field is missing.
func (q *Seq) DedupID(m md.Market, k md.Kind) (int64, bool) {
	switch {
	case k == md.Diff, k == md.Partial && m == md.Futures:
		if q.Has&HasFinalUpdateID != 0 {
			return q.FinalUpdateID, true
		}
	case k == md.Partial, k == md.Snapshot:
		if q.Has&HasLastUpdateID != 0 {
			return q.LastUpdateID, true
		}
	}
	return 0, false
}
