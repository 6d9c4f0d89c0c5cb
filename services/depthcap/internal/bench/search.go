package bench

import "math"

// Trial is the outcome of one rate step.
type Trial struct {
	M    float64 // rate multiplier actually run
	Pass bool    // sustained: no loss, no growing lag
	// Cores is how many CPUs the step kept busy (pipeline, NATS and the
	// simulator); 0 if unknown. A passing step's Cores predicts how far
	// the rate can still grow before the machine is saturated.
	Cores float64
}

// Search picks the rate multiplier of each step: up from Start while the
// steps pass (by Grow, or less when the CPU headroom of the last passing
// step predicts saturation sooner), down by halves while they fail, then
// geometric bisection between the highest pass and the lowest fail until
// their ratio is at most Precision, MaxSteps have run, or the limits Min
// and Max are reached.
type Search struct {
	Start, Min, Max float64
	Grow            float64 // largest factor between two steps going up (> 1)
	Precision       float64 // stop when fail/pass <= Precision (> 1)
	MaxSteps        int
	CPUs            float64 // CPUs of the machine (headroom = CPUs / Cores)
	// Quantize maps a multiplier to the one that will actually run (the
	// simulator's tick has a 1 ms grain); nil keeps it.
	Quantize func(float64) float64

	Trials []Trial
}

// Record adds a step's outcome.
func (s *Search) Record(t Trial) { s.Trials = append(s.Trials, t) }

// Bounds returns the highest passing multiplier below the lowest failing
// one (0 when none passed) and that lowest failure (+Inf when none
// failed). A pass above a failure (noise) does not count.
func (s *Search) Bounds() (lo, hi float64) {
	hi = math.Inf(1)
	for _, t := range s.Trials {
		if !t.Pass && t.M < hi {
			hi = t.M
		}
	}
	for _, t := range s.Trials {
		if t.Pass && t.M < hi && t.M > lo {
			lo = t.M
		}
	}
	return lo, hi
}

// Best is the highest sustained multiplier, and whether one passed.
func (s *Search) Best() (float64, bool) {
	lo, _ := s.Bounds()
	return lo, lo > 0
}

// Next returns the multiplier of the next step, or false when the search
// is over.
func (s *Search) Next() (float64, bool) {
	q := s.Quantize
	if q == nil {
		q = func(m float64) float64 { return m }
	}
	if len(s.Trials) == 0 {
		return q(s.Start), true
	}
	if len(s.Trials) >= s.MaxSteps {
		return 0, false
	}
	lo, hi := s.Bounds()
	var next float64
	switch {
	case lo == 0: // nothing passed yet: halve
		if hi <= s.Min {
			return 0, false
		}
		next = math.Max(hi/2, s.Min)
	case math.IsInf(hi, 1): // nothing failed yet: grow
		if lo >= s.Max {
			return 0, false
		}
		f := s.Grow
		if c := s.coresAt(lo); c > 0 && s.CPUs > 0 {
			// Aim a little below where the CPUs would be saturated.
			f = math.Min(f, math.Max(1.25, 0.9*s.CPUs/c))
		}
		next = math.Min(lo*f, s.Max)
	default:
		if hi/lo <= s.Precision {
			return 0, false
		}
		next = math.Sqrt(lo * hi)
	}
	next = q(next)
	for _, t := range s.Trials {
		if math.Abs(t.M-next) < 1e-9*math.Max(1, next) {
			return 0, false // the grain allows nothing new
		}
	}
	return next, true
}

// coresAt is the Cores of the last trial run at m.
func (s *Search) coresAt(m float64) float64 {
	c := 0.0
	for _, t := range s.Trials {
		if t.M == m {
			c = t.Cores
		}
	}
	return c
}
