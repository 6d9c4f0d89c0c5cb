package binance

import (
	"errors"
	"testing"

	"github.com/depthcap/depthcap/pkg/md"
)

func TestBridges(t *testing.T) {
	tests := []struct {
		name        string
		U, u, L     int64
		spot, fut   bool
		staleSpot   bool
		staleFuture bool
	}{
		// spot_2021-10-12: the bridging event starts right after the snapshot.
		{"U == L+1", 499869753, 499869754, 499869752, true, false, false, false},
		{"L+1 inside", 10, 20, 14, true, true, false, false},
		{"u == L+1", 10, 20, 19, true, true, false, false},
		// futures_2021-07-22: u == lastUpdateId.
		{"u == L", 600859603597, 600859605486, 600859605486, false, true, true, false},
		{"U == L", 10, 20, 10, true, true, false, false},
		{"stale", 10, 20, 25, false, false, true, true},
		{"gap after snapshot", 30, 40, 20, false, false, false, false},
		{"single-id event at L+1", 21, 21, 20, true, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SpotBridges(tt.U, tt.u, tt.L); got != tt.spot {
				t.Errorf("SpotBridges = %v, want %v", got, tt.spot)
			}
			if got := FuturesBridges(tt.U, tt.u, tt.L); got != tt.fut {
				t.Errorf("FuturesBridges = %v, want %v", got, tt.fut)
			}
			if Bridges(md.Spot, tt.U, tt.u, tt.L) != tt.spot || Bridges(md.Futures, tt.U, tt.u, tt.L) != tt.fut {
				t.Error("Bridges disagrees with SpotBridges/FuturesBridges")
			}
			if got := Stale(md.Spot, tt.u, tt.L); got != tt.staleSpot {
				t.Errorf("Stale(spot) = %v, want %v", got, tt.staleSpot)
			}
			if got := Stale(md.Futures, tt.u, tt.L); got != tt.staleFuture {
				t.Errorf("Stale(futures) = %v, want %v", got, tt.staleFuture)
			}
		})
	}
}

// TestBridgeMin proves BridgeMin is the bridge rule's threshold: an
// event [U, u] bridges a snapshot at BridgeMin(U) and not one below it,
// on both markets, for single-id and longer events.
func TestBridgeMin(t *testing.T) {
	tests := []struct {
		name string
		m    md.Market
		U, u int64
		want int64
	}{
		{"spot", md.Spot, 10, 12, 9},
		{"spot single id", md.Spot, 21, 21, 20},
		{"futures", md.Futures, 10, 12, 10},
		{"futures single id", md.Futures, 600859603597, 600859603597, 600859603597},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := BridgeMin(tt.m, tt.U)
			if got != tt.want {
				t.Fatalf("BridgeMin = %d, want %d", got, tt.want)
			}
			if !Bridges(tt.m, tt.U, tt.u, got) {
				t.Errorf("[%d, %d] does not bridge a snapshot at %d", tt.U, tt.u, got)
			}
			if Bridges(tt.m, tt.U, tt.u, got-1) {
				t.Errorf("[%d, %d] bridges a snapshot at %d, below BridgeMin", tt.U, tt.u, got-1)
			}
		})
	}
}

func TestFollows(t *testing.T) {
	tests := []struct {
		name     string
		m        md.Market
		prevU    int64
		U, pu    int64
		want     bool
		wantLink int64
	}{
		{"spot consecutive", md.Spot, 100, 101, 0, true, 100},
		{"spot gap", md.Spot, 100, 105, 0, false, 104},
		{"spot overlap", md.Spot, 100, 100, 0, false, 99},
		{"spot ignores pu", md.Spot, 100, 101, 7, true, 100},
		{"futures pu link", md.Futures, 600859600917, 600859601500, 600859600917, true, 600859600917},
		{"futures ids not consecutive", md.Futures, 100, 101, 99, false, 99},
		{"futures gap", md.Futures, 100, 150, 120, false, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Follows(tt.m, tt.prevU, tt.U, tt.pu); got != tt.want {
				t.Errorf("Follows = %v, want %v", got, tt.want)
			}
			if got := PrevLink(tt.m, tt.U, tt.pu); got != tt.wantLink {
				t.Errorf("PrevLink = %d, want %d", got, tt.wantLink)
			}
		})
	}
}

func TestSeqCheck(t *testing.T) {
	spotDiff := Seq{EventType: []byte("depthUpdate"), Symbol: []byte("BTCUSDT"), EventTime: 1, FirstUpdateID: 5, FinalUpdateID: 9, Has: spotDiffHas}
	futDiff := spotDiff
	futDiff.Has, futDiff.PrevFinalUpdateID, futDiff.TransactionTime = futuresDiffHas, 3, 1
	spotPartial := Seq{LastUpdateID: 7, Has: HasLastUpdateID | HasBids | HasAsks}
	futSnap := Seq{LastUpdateID: 7, EventTime: 1, TransactionTime: 1, Has: HasLastUpdateID | HasEventTime | HasTransactionTime | HasBids | HasAsks}
	with := func(q Seq, f func(*Seq)) Seq { f(&q); return q }

	tests := []struct {
		name    string
		q       Seq
		m       md.Market
		k       md.Kind
		wantErr error
		wantID  int64
	}{
		{"spot diff", spotDiff, md.Spot, md.Diff, nil, 9},
		{"futures diff", futDiff, md.Futures, md.Diff, nil, 9},
		{"futures partial", futDiff, md.Futures, md.Partial, nil, 9},
		{"futures partial pu -1", with(futDiff, func(q *Seq) { q.PrevFinalUpdateID = -1 }), md.Futures, md.Partial, nil, 9},
		{"spot partial", spotPartial, md.Spot, md.Partial, nil, 7},
		{"spot snapshot", spotPartial, md.Spot, md.Snapshot, nil, 7},
		{"futures snapshot", futSnap, md.Futures, md.Snapshot, nil, 7},
		{"spot diff as futures lacks pu and T", spotDiff, md.Futures, md.Diff, ErrMissingField, 9},
		{"spot partial as futures partial", spotPartial, md.Futures, md.Partial, ErrMissingField, 0},
		{"spot snapshot as futures snapshot lacks E and T", spotPartial, md.Futures, md.Snapshot, ErrMissingField, 7},
		{"diff without bids", with(spotDiff, func(q *Seq) { q.Has &^= HasBids }), md.Spot, md.Diff, ErrMissingField, 9},
		{"missing ids are malformed", with(spotDiff, func(q *Seq) { q.Has &^= HasFinalUpdateID }), md.Spot, md.Diff, ErrMalformed, 0},
		{"wrong event type", with(spotDiff, func(q *Seq) { q.EventType = []byte("aggTrade") }), md.Spot, md.Diff, ErrMalformed, 9},
		{"U above u", with(spotDiff, func(q *Seq) { q.FirstUpdateID = 10 }), md.Spot, md.Diff, ErrImpossibleValue, 9},
		{"negative u", with(spotDiff, func(q *Seq) { q.FirstUpdateID, q.FinalUpdateID = -5, -1 }), md.Spot, md.Diff, ErrImpossibleValue, -1},
		{"negative lastUpdateId", with(spotPartial, func(q *Seq) { q.LastUpdateID = -1 }), md.Spot, md.Snapshot, ErrImpossibleValue, -1},
		{"gap kind", spotDiff, md.Spot, md.Gap, ErrMalformed, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.q.Check(tt.m, tt.k)
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("Check err = %v, want %v", err, tt.wantErr)
			}
			id, ok := tt.q.DedupID(tt.m, tt.k)
			if id != tt.wantID || ok != (tt.wantID != 0) {
				t.Errorf("DedupID = %d, %v, want %d", id, ok, tt.wantID)
			}
		})
	}
}

func TestRequired(t *testing.T) {
	tests := []struct {
		m    md.Market
		k    md.Kind
		want string
	}{
		{md.Spot, md.Diff, "e,E,s,U,u,bids,asks"},
		{md.Futures, md.Diff, "e,E,T,s,U,u,pu,bids,asks"},
		{md.Spot, md.Partial, "lastUpdateId,bids,asks"},
		{md.Futures, md.Partial, "e,E,T,s,U,u,pu,bids,asks"},
		{md.Spot, md.Snapshot, "lastUpdateId,bids,asks"},
		{md.Futures, md.Snapshot, "E,T,lastUpdateId,bids,asks"},
		{md.Spot, md.Gap, ""},
	}
	for _, tt := range tests {
		if got := Required(tt.m, tt.k).String(); got != tt.want {
			t.Errorf("Required(%v, %v) = %s, want %s", tt.m, tt.k, got, tt.want)
		}
	}
}
