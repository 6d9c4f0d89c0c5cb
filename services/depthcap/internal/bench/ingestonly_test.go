package bench

import (
	"strings"
	"testing"
	"time"
)

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

// The report lists isolated stalls one by one, and says "queueing" for a
// step where slow messages are the rule.
func TestReportStalls(t *testing.T) {
	at := time.Date(2026, 12, 8, 4, 12, 3, 646e6, time.UTC)
	r := &ScenarioResult{Scenario: "seed50", Steps: []StepResult{
		{M: 0.333, Latency: Latency{ExactN: 8000, Stalls: []Stall{
			{At: at, Msgs: 82, MaxMs: 32.8, GapMs: 29.9, Markets: []string{"spot", "futures"}},
			{At: at.Add(time.Second), Msgs: 3, MaxMs: 11, GapMs: -1, Markets: []string{"spot"}},
		}}},
		{M: 2, Latency: Latency{ExactN: 1000, Stalls: []Stall{{At: at, Msgs: 400, MaxMs: 60, GapMs: -1}}}},
	}}
	var b strings.Builder
	WriteMarkdown(&b, []*ScenarioResult{r}, time.Minute)
	out := b.String()
	for _, want := range []string{
		"- m=0.333, 04:12:03.646 UTC: 82 messages stored 10-32.8 ms after they were received (spot and futures), the first 29.9 ms after the message stored before it",
		"- m=0.333, 04:12:04.646 UTC: 3 messages stored 10-11.0 ms after they were received (spot), at the start of the sample",
		"- m=2: 40% of the sampled messages were stored more than 10 ms after they were received: queueing at this load",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}
