package snapshotter

import (
	"testing"
	"time"
)

// TestSortWaiters proves how a stored snapshot is matched against the
// requests waiting for it: a request is answered when the snapshot
// reaches its min_update_id; otherwise it waits for the next snapshot,
// and only snapshots requested from the exchange after it arrived count
// towards the onDemandLagAttempts after which it gets an error.
func TestSortWaiters(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	before, after := t0.Add(-time.Second), t0.Add(time.Millisecond)
	tests := []struct {
		name        string
		w           waiter
		id          int64
		reqAt       time.Time
		wantServed  bool
		wantExpired bool
		wantLagged  int
	}{
		{"no min_update_id", waiter{at: t0}, 5, after, true, false, 0},
		{"reached exactly", waiter{at: t0, minID: 5}, 5, after, true, false, 0},
		{"reached after lagging twice", waiter{at: t0, minID: 5, lagged: 2}, 6, after, true, false, 2},
		{"lagging, requested after arrival", waiter{at: t0, minID: 6}, 5, after, false, false, 1},
		{"lagging, requested at arrival", waiter{at: t0, minID: 6}, 5, t0, false, false, 1},
		{"older snapshot shared: not an attempt", waiter{at: t0, minID: 6}, 5, before, false, false, 0},
		{"older snapshot shared after two attempts", waiter{at: t0, minID: 6, lagged: 2}, 5, before, false, false, 2},
		{"third lagging attempt gives up", waiter{at: t0, minID: 6, lagged: onDemandLagAttempts - 1}, 5, after, false, true, onDemandLagAttempts},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			served, lagging, expired := sortWaiters([]waiter{tt.w}, tt.id, tt.reqAt)
			var got []waiter
			switch {
			case tt.wantServed:
				got = served
			case tt.wantExpired:
				got = expired
			default:
				got = lagging
			}
			if len(got) != 1 || len(served)+len(lagging)+len(expired) != 1 {
				t.Fatalf("served %v, lagging %v, expired %v", served, lagging, expired)
			}
			if got[0].lagged != tt.wantLagged {
				t.Fatalf("lagged = %d, want %d", got[0].lagged, tt.wantLagged)
			}
		})
	}
}

// TestLagDelay proves the wait before the snapshot that follows a
// lagging one doubles per lagging attempt and is zero when no waiter
// lagged (a shared older snapshot is followed at once).
func TestLagDelay(t *testing.T) {
	for _, tt := range []struct {
		lagged []int
		want   time.Duration
	}{
		{nil, 0},
		{[]int{0}, 0},
		{[]int{1}, onDemandLagDelay},
		{[]int{0, 2, 1}, 2 * onDemandLagDelay},
	} {
		var ws []waiter
		for _, n := range tt.lagged {
			ws = append(ws, waiter{lagged: n})
		}
		if got := lagDelay(ws); got != tt.want {
			t.Errorf("lagDelay(%v) = %v, want %v", tt.lagged, got, tt.want)
		}
	}
}

// TestDueDemand proves a held-back on-demand job is skipped until its
// time, a later due job goes first, and the dispatcher is told when to
// wake for the held one.
func TestDueDemand(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	held := &job{sym: "A", notBefore: now.Add(300 * time.Millisecond)}
	held2 := &job{sym: "B", notBefore: now.Add(100 * time.Millisecond)}
	due := &job{sym: "C"}
	for _, tt := range []struct {
		name     string
		q        []*job
		wantI    int
		wantWait time.Duration
	}{
		{"empty", nil, -1, 0},
		{"due first", []*job{due, held}, 0, 0},
		{"held, then due", []*job{held, due}, 1, 0},
		{"all held: the earliest", []*job{held, held2}, -1, 100 * time.Millisecond},
		{"held until now", []*job{{notBefore: now}}, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mk := &market{demandQ: tt.q}
			i, wait := mk.dueDemandLocked(now)
			if i != tt.wantI || wait != tt.wantWait {
				t.Fatalf("dueDemandLocked = %d, %v; want %d, %v", i, wait, tt.wantI, tt.wantWait)
			}
		})
	}
}
