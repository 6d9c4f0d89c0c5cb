package bench

import "testing"

func TestIngestTrialPass(t *testing.T) {
	for _, c := range []struct {
		name string
		t    IngestTrial
		pass bool
	}{
		{"whole", IngestTrial{Offered: 30000, Acked: 29900, BufGrowth: 1 << 20}, true},
		{"dropped", IngestTrial{Offered: 30000, Acked: 30000, Dropped: 1}, false},
		{"buffers grew", IngestTrial{Offered: 30000, Acked: 30000, BufGrowth: ingestBufGrowth + 1}, false},
		{"acks behind", IngestTrial{Offered: 30000, Acked: 29600}, false},
	} {
		if got, why := ingestTrialPass(c.t); got != c.pass || (got == (why != "")) {
			t.Errorf("%s: pass %v (%q), want %v", c.name, got, why, c.pass)
		}
	}
}

func TestIngestBestRatio(t *testing.T) {
	r := IngestOnlyResult{Ratio: 0.5, Trials: []IngestTrial{{M: 2, Pass: false}, {M: 1.5, Pass: true}, {M: 1.8, Pass: false}}}
	if v, which := r.BestRatio(); v != 0.5 || which != "saturated" {
		t.Errorf("no sustained trial: %v %q, want the saturated 0.5", v, which)
	}
	r.SustainedRatio = 0.6
	if v, which := r.BestRatio(); v != 0.6 || which != "sustained, zero loss" {
		t.Errorf("sustained above saturated: %v %q, want 0.6 sustained", v, which)
	}
	if f := r.lowestFail(); f == nil || f.M != 1.8 {
		t.Errorf("lowest failing trial %+v, want m=1.8", f)
	}
}
