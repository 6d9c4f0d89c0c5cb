package bench

import (
	"math"
	"testing"
)

// runSearch drives a Search against a pipeline that sustains every
// multiplier up to limit and uses coresPerM CPUs per unit of multiplier;
// it returns the multipliers tried.
func runSearch(s *Search, limit, coresPerM float64) []float64 {
	var tried []float64
	for {
		m, ok := s.Next()
		if !ok {
			return tried
		}
		tried = append(tried, m)
		s.Record(Trial{M: m, Pass: m <= limit, Cores: coresPerM * m})
	}
}

func TestSearch(t *testing.T) {
	tests := []struct {
		name      string
		s         Search
		limit     float64
		coresPerM float64
		want      []float64
		best      float64
		passed    bool
	}{
		{
			name:  "grows by Grow, then bisects",
			s:     Search{Start: 1, Min: 0.1, Max: 100, Grow: 4, Precision: 1.5, MaxSteps: 10},
			limit: 10,
			want:  []float64{1, 4, 16, 8, math.Sqrt(8 * 16)},
			best:  8, passed: true,
		},
		{
			name:  "halves while failing, then bisects",
			s:     Search{Start: 1, Min: 0.1, Max: 100, Grow: 4, Precision: 1.5, MaxSteps: 10},
			limit: 0.3,
			want:  []float64{1, 0.5, 0.25, math.Sqrt(0.125)},
			best:  0.25, passed: true,
		},
		{
			name:  "capped at Max: stops after the step at Max passes",
			s:     Search{Start: 1, Min: 0.1, Max: 10, Grow: 4, Precision: 1.5, MaxSteps: 10},
			limit: 1000,
			want:  []float64{1, 4, 10},
			best:  10, passed: true,
		},
		{
			name:  "nothing passes down to Min",
			s:     Search{Start: 1, Min: 0.2, Max: 10, Grow: 4, Precision: 1.5, MaxSteps: 10},
			limit: 0.01,
			want:  []float64{1, 0.5, 0.25, 0.2},
			best:  0, passed: false,
		},
		{
			name:  "MaxSteps bounds the search",
			s:     Search{Start: 1, Min: 0.1, Max: 100, Grow: 4, Precision: 1.01, MaxSteps: 3},
			limit: 10,
			want:  []float64{1, 4, 16},
			best:  4, passed: true,
		},
		{
			name: "CPU headroom shortens the jump up",
			// 0.5 cores at m=1 on 2 CPUs: saturation predicted at m=4, so
			// the next step aims at 0.9*4 = 3.6 instead of Grow 8.
			s:     Search{Start: 1, Min: 0.1, Max: 100, Grow: 8, Precision: 1.5, MaxSteps: 10, CPUs: 2},
			limit: 3, coresPerM: 0.5,
			want: []float64{1, 3.6, math.Sqrt(3.6), math.Sqrt(math.Sqrt(3.6) * 3.6)},
			best: math.Sqrt(math.Sqrt(3.6) * 3.6), passed: true,
		},
		{
			name: "headroom never grows by less than 1.25",
			s:    Search{Start: 1, Min: 0.1, Max: 100, Grow: 8, Precision: 1.3, MaxSteps: 3, CPUs: 2},
			// 1.9 cores at m=1: 0.9*2/1.9 < 1.25
			limit: 100, coresPerM: 1.9,
			want: []float64{1, 1.25, 1.25 * 1.25},
			best: 1.25 * 1.25, passed: true,
		},
		{
			name: "quantized: a step that would repeat ends the search",
			s: Search{Start: 1, Min: 0.1, Max: 100, Grow: 2, Precision: 1.01, MaxSteps: 10,
				Quantize: func(m float64) float64 { return math.Round(m) }},
			limit: 2.5,
			want:  []float64{1, 2, 4, 3},
			best:  2, passed: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.s
			got := runSearch(&s, tc.limit, tc.coresPerM)
			if len(got) != len(tc.want) {
				t.Fatalf("tried %v, want %v", got, tc.want)
			}
			for i := range got {
				if math.Abs(got[i]-tc.want[i]) > 1e-9 {
					t.Fatalf("tried %v, want %v", got, tc.want)
				}
			}
			best, ok := s.Best()
			if ok != tc.passed || math.Abs(best-tc.best) > 1e-9 {
				t.Errorf("Best = %v, %v; want %v, %v", best, ok, tc.best, tc.passed)
			}
		})
	}
}

func TestSearchNoisyPassAboveFailure(t *testing.T) {
	// A pass above a failure does not count: the sustained rate is the
	// highest pass below the lowest failure.
	s := Search{Start: 1, Min: 0.1, Max: 100, Grow: 4, Precision: 1.5, MaxSteps: 10}
	s.Record(Trial{M: 1, Pass: true})
	s.Record(Trial{M: 4, Pass: false})
	s.Record(Trial{M: 8, Pass: true})
	lo, hi := s.Bounds()
	if lo != 1 || hi != 4 {
		t.Fatalf("Bounds = %v, %v; want 1, 4", lo, hi)
	}
	if m, ok := s.Next(); !ok || m != 2 {
		t.Errorf("Next = %v, %v; want 2 (bisect 1..4)", m, ok)
	}
}
