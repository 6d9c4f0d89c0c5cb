package bench

import (
	"strings"
	"testing"
)

func TestLiveVerdict(t *testing.T) {
	ok := LiveObs{Window: 20, InRate: 10000, LagEnd: 2000, LagSlope: 100, BufEnd: 1 << 20, BufSlope: 1000, SimQueued: 50, SimRate: 20000}
	tests := []struct {
		name string
		mod  func(*LiveObs)
		want string // substring of a reason; "" means sustained
	}{
		{"sustained", func(*LiveObs) {}, ""},
		{"a checkpoint pause below the floor is noise", func(o *LiveObs) { o.InRate, o.LagEnd = 100, 4000 }, ""},
		{"lag grows", func(o *LiveObs) { o.LagSlope = 2000 }, "writer lag grew"},
		{"lag ends far behind", func(o *LiveObs) { o.LagEnd = 60000 }, "messages behind"},
		{"buffers grow", func(o *LiveObs) { o.BufSlope = 1 << 20 }, "buffers grew"},
		{"buffers full at the end", func(o *LiveObs) { o.BufEnd = 40 << 20 }, "buffers hold"},
		{"sim queues", func(o *LiveObs) { o.SimQueued = 30000 }, "queued in the simulator"},
		{"slow consumer", func(o *LiveObs) { o.SlowConsumer = 1 }, "too slow"},
		{"drops", func(o *LiveObs) { o.Dropped = 3 }, "dropped"},
		{"gaps", func(o *LiveObs) { o.Gaps = 1 }, "gap records"},
		{"late ticks", func(o *LiveObs) { o.LateTicks = 12 }, "ticks lost"},
		{"reconnects", func(o *LiveObs) { o.Reconnects = 1 }, "reconnects"},
		{"rejected", func(o *LiveObs) { o.Rejected = 1 }, "refused"},
		{"dlq", func(o *LiveObs) { o.DLQ = 1 }, "dead-lettered"},
	}
	for _, tc := range tests {
		o := ok
		tc.mod(&o)
		why := LiveVerdict(o)
		got := strings.Join(why, "; ")
		if tc.want == "" && len(why) != 0 || tc.want != "" && !strings.Contains(got, tc.want) {
			t.Errorf("%s: reasons %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestDrainVerdict(t *testing.T) {
	full := DrainObs{
		Sent:      Counts{"spot/diff": 100, "spot/partial": 120},
		Received:  Counts{"spot/diff": 100, "spot/partial": 120},
		Published: Counts{"spot/diff": 100, "spot/partial": 90},
		Rows:      Counts{"spot/diff": 100, "spot/partial": 90},
	}
	if lost, why := DrainVerdict(full); lost != 0 || len(why) != 0 {
		t.Errorf("complete run: lost %v, %v", lost, why)
	}
	short := full
	short.Rows = Counts{"spot/diff": 97, "spot/partial": 90}
	if lost, why := DrainVerdict(short); lost != 3 || len(why) != 1 || !strings.Contains(why[0], "writer made 97 rows") {
		t.Errorf("3 rows missing: lost %v, %v", lost, why)
	}
	unread := full
	unread.Received = Counts{"spot/diff": 100}
	if lost, why := DrainVerdict(unread); lost != 120 || len(why) != 1 {
		t.Errorf("a kind never received: lost %v, %v", lost, why)
	}
	extra := full
	extra.Rows = Counts{"spot/diff": 100, "spot/partial": 90, "futures/diff": 5}
	if lost, _ := DrainVerdict(extra); lost != 5 {
		t.Errorf("rows nobody published: lost %v, want 5", lost)
	}
}
