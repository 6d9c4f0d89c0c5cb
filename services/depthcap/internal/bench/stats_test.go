package bench

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

func TestHistQuantile(t *testing.T) {
	inf := math.Inf(1)
	// 100 observations: 50 <= 1ms, 40 in (1ms, 2ms], 9 in (2ms, 5ms], 1 above 10s.
	bs := []Bucket{{0.001, 50}, {0.002, 90}, {0.005, 99}, {10, 99}, {inf, 100}}
	tests := []struct {
		name string
		bs   []Bucket
		q    float64
		want float64
	}{
		{"median inside the first bucket, interpolated from 0", bs, 0.5, 0.001},
		{"a quarter", bs, 0.25, 0.0005},
		{"p90 at a bucket's top", bs, 0.9, 0.002},
		{"p95 interpolated", bs, 0.95, 0.002 + 0.003*5/9},
		{"p999 in +Inf: the highest finite bound", bs, 0.999, 10},
		{"no observations", []Bucket{{0.001, 0}, {inf, 0}}, 0.5, math.NaN()},
		{"no +Inf bucket", []Bucket{{0.001, 3}}, 0.5, math.NaN()},
		{"empty", nil, 0.5, math.NaN()},
		{"everything in +Inf and nothing finite", []Bucket{{inf, 5}}, 0.5, math.NaN()},
		{"rank in an empty-width bucket", []Bucket{{0.001, 0}, {0.002, 10}, {inf, 10}}, 0.5, 0.0015},
	}
	for _, tc := range tests {
		got := HistQuantile(tc.bs, tc.q)
		if !(math.Abs(got-tc.want) < 1e-12 || math.IsNaN(got) && math.IsNaN(tc.want)) {
			t.Errorf("%s: HistQuantile(q=%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestHistBucketsAndDelta(t *testing.T) {
	text := `# TYPE depthcap_publish_latency_seconds histogram
depthcap_publish_latency_seconds_bucket{service="spot-ws",le="0.001"} 10
depthcap_publish_latency_seconds_bucket{service="spot-ws",le="0.005"} 20
depthcap_publish_latency_seconds_bucket{service="spot-ws",le="+Inf"} 21
depthcap_publish_latency_seconds_bucket{service="futures-ws",le="0.001"} 1
depthcap_publish_latency_seconds_bucket{service="futures-ws",le="0.005"} 2
depthcap_publish_latency_seconds_bucket{service="futures-ws",le="+Inf"} 3
depthcap_publish_latency_seconds_sum{service="spot-ws"} 0.05
`
	m, err := procs.ParseMetrics(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	all := HistBuckets(m, "depthcap_publish_latency_seconds")
	want := []Bucket{{0.001, 11}, {0.005, 22}, {math.Inf(1), 24}}
	if len(all) != len(want) {
		t.Fatalf("buckets %v, want %v", all, want)
	}
	for i := range want {
		if all[i] != want[i] {
			t.Errorf("bucket %d = %v, want %v", i, all[i], want[i])
		}
	}
	spot := HistBuckets(m, "depthcap_publish_latency_seconds", "service", "spot-ws")
	if spot[2].Count != 21 {
		t.Errorf("spot +Inf = %v, want 21", spot[2].Count)
	}
	d := BucketDelta(spot, all)
	if d[0].Count != 1 || d[1].Count != 2 || d[2].Count != 3 {
		t.Errorf("delta = %v, want the futures-ws counts 1 2 3", d)
	}
	// A counter reset (process restart) must not give negative counts.
	if d := BucketDelta(all, spot); d[0].Count != 0 {
		t.Errorf("delta after a reset = %v, want 0", d[0].Count)
	}
}

func TestQuantiles(t *testing.T) {
	var s []float64
	for i := 1000; i >= 1; i-- {
		s = append(s, float64(i))
	}
	got := Quantiles(s, 0.5, 0.99, 0.999, 1)
	want := []float64{500, 990, 999, 1000}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("quantile %d = %v, want %v", i, got[i], want[i])
		}
	}
	if q := Quantiles(nil, 0.5); !math.IsNaN(q[0]) {
		t.Errorf("empty: %v, want NaN", q[0])
	}
}

func TestSlope(t *testing.T) {
	tests := []struct {
		xs, ys []float64
		want   float64
	}{
		{[]float64{0, 1, 2, 3}, []float64{5, 7, 9, 11}, 2},
		{[]float64{0, 1, 2, 3}, []float64{4, 4, 4, 4}, 0},
		{[]float64{0, 1, 2, 3}, []float64{0, 10, 0, 10}, 2},
		{[]float64{1}, []float64{1}, 0},
		{[]float64{2, 2}, []float64{1, 5}, 0},
	}
	for _, tc := range tests {
		if got := Slope(tc.xs, tc.ys); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Slope(%v, %v) = %v, want %v", tc.xs, tc.ys, got, tc.want)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		text    string
		want    MachineCPU
		wantErr bool
	}{
		{"cpu  100 5 50 800 20 3 2 10 7 0\ncpu0 50 2 25 400 10 1 1 5 3 0\n", MachineCPU{Busy: 100 + 5 + 50 + 3 + 2 + 10, Total: 990}, false},
		{"intr 1\ncpu  1 0 1 8\n", MachineCPU{Busy: 2, Total: 10}, false},
		{"cpu0 1 2 3 4\n", MachineCPU{}, true},
		{"cpu  1 2\n", MachineCPU{}, true},
		{"cpu  1 x 3 4 5\n", MachineCPU{}, true},
	}
	for _, tc := range tests {
		got, err := ParseProcStat([]byte(tc.text))
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseProcStat(%q) = %+v, %v; want %+v, err %v", tc.text, got, err, tc.want, tc.wantErr)
		}
	}
	a, b := MachineCPU{Busy: 100, Total: 1000}, MachineCPU{Busy: 400, Total: 2000}
	if got := a.Cores(b, 2); math.Abs(got-0.6) > 1e-12 {
		t.Errorf("Cores = %v, want 0.6", got)
	}
}

func TestRateAt(t *testing.T) {
	sc := Scenarios["seed50"]
	tests := []struct {
		m        float64
		tick     time.Duration
		eff      float64
		activity float64
	}{
		{1, 100 * time.Millisecond, 1, 200},
		{1.0 / 3, 300 * time.Millisecond, 1.0 / 3, 200.0 / 3},
		{2.5, 40 * time.Millisecond, 2.5, 500},
		{3, 33 * time.Millisecond, 100.0 / 33, 200 * 100.0 / 33},
		{50, 10 * time.Millisecond, 10, 2000}, // the simulator's fastest tick
		{0.001, 10 * time.Second, 0.01, 2},
	}
	for _, tc := range tests {
		r := sc.RateAt(tc.m)
		if r.Tick != tc.tick || math.Abs(r.M-tc.eff) > 1e-12 || math.Abs(r.Activity.Max-tc.activity) > 1e-9 || r.Partial != r.Tick {
			t.Errorf("RateAt(%v) = %+v; want tick %v, m %v, max %v", tc.m, r, tc.tick, tc.eff, tc.activity)
		}
		if Effective(tc.m) != r.M {
			t.Errorf("Effective(%v) = %v, want %v", tc.m, Effective(tc.m), r.M)
		}
	}
	env := sc.SimEnv(sc.RateAt(1.0/3), 7)
	if env["SIM_DIFF_INTERVAL"] != "300ms" || env["SIM_PARTIAL_INTERVAL"] != "300ms" || env["SIM_HISTORY"] != "6s" || env["SIM_SEED"] != "7" {
		t.Errorf("SimEnv = %v", env)
	}
}
