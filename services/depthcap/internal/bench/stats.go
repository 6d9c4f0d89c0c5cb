package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// Bucket is one cumulative histogram bucket: Count observations <= LE.
type Bucket struct {
	LE    float64
	Count float64
}

// HistBuckets returns the cumulative buckets of histogram name (the
// _bucket series) summed over every series whose labels include the
// pairs, sorted by upper bound.
func HistBuckets(m procs.Metrics, name string, labels ...string) []Bucket {
	by := map[float64]float64{}
	for _, s := range m[name+"_bucket"] {
		ok := true
		for i := 0; i+1 < len(labels); i += 2 {
			if s.Labels[labels[i]] != labels[i+1] {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		le, err := parseLE(s.Labels["le"])
		if err != nil {
			continue
		}
		by[le] += s.Value
	}
	out := make([]Bucket, 0, len(by))
	for le, c := range by {
		out = append(out, Bucket{LE: le, Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LE < out[j].LE })
	return out
}

func parseLE(s string) (float64, error) {
	if s == "+Inf" {
		return math.Inf(1), nil
	}
	return strconv.ParseFloat(s, 64)
}

// BucketDelta is the histogram of the observations between two scrapes:
// after − before, bucket by bucket (buckets missing before count as 0).
func BucketDelta(before, after []Bucket) []Bucket {
	prev := map[float64]float64{}
	for _, b := range before {
		prev[b.LE] = b.Count
	}
	out := make([]Bucket, len(after))
	for i, b := range after {
		out[i] = Bucket{LE: b.LE, Count: math.Max(0, b.Count-prev[b.LE])}
	}
	return out
}

// HistQuantile estimates the q-quantile (0 < q < 1) of cumulative buckets
// the way Prometheus' histogram_quantile does: linear interpolation inside
// the bucket holding the rank, the first bucket starting at 0, and the
// highest finite bound when the rank falls into the +Inf bucket. It
// returns NaN without observations.
func HistQuantile(bs []Bucket, q float64) float64 {
	if len(bs) == 0 || q < 0 || q > 1 {
		return math.NaN()
	}
	total := bs[len(bs)-1].Count
	if !math.IsInf(bs[len(bs)-1].LE, 1) {
		return math.NaN() // a histogram always has a +Inf bucket
	}
	if total <= 0 {
		return math.NaN()
	}
	rank := q * total
	for i, b := range bs {
		if b.Count < rank {
			continue
		}
		if math.IsInf(b.LE, 1) {
			if i == 0 {
				return math.NaN()
			}
			return bs[i-1].LE
		}
		lo, below := 0.0, 0.0
		if i > 0 {
			lo, below = bs[i-1].LE, bs[i-1].Count
		}
		if b.Count == below {
			return b.LE
		}
		return lo + (b.LE-lo)*(rank-below)/(b.Count-below)
	}
	return bs[len(bs)-1].LE
}

// Quantiles returns the nearest-rank q-quantiles of samples (sorted in
// place). Without samples every value is NaN.
func Quantiles(samples []float64, qs ...float64) []float64 {
	out := make([]float64, len(qs))
	slices.Sort(samples)
	for i, q := range qs {
		if len(samples) == 0 {
			out[i] = math.NaN()
			continue
		}
		k := int(math.Ceil(q*float64(len(samples)))) - 1
		out[i] = samples[min(max(k, 0), len(samples)-1)]
	}
	return out
}

// Slope is the least-squares slope dy/dx of the points; 0 with fewer than
// two distinct x.
func Slope(xs, ys []float64) float64 {
	n := float64(min(len(xs), len(ys)))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := 0; i < int(n); i++ {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// MachineCPU is the first line of /proc/stat: cumulative jiffies of every
// CPU together.
type MachineCPU struct {
	Busy, Total uint64
}

// ParseProcStat reads the aggregate "cpu" line of /proc/stat. Busy is
// everything but idle and iowait; guest time is already inside user and
// nice, so it is not added again.
func ParseProcStat(b []byte) (MachineCPU, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "cpu" {
			continue
		}
		if len(f) < 5 {
			return MachineCPU{}, fmt.Errorf("/proc/stat: short cpu line %q", sc.Text())
		}
		var v [8]uint64
		for i := 0; i < 8 && i+1 < len(f); i++ {
			n, err := strconv.ParseUint(f[i+1], 10, 64)
			if err != nil {
				return MachineCPU{}, fmt.Errorf("/proc/stat: field %d of %q: %w", i+1, sc.Text(), err)
			}
			v[i] = n
		}
		// user nice system idle iowait irq softirq steal
		var c MachineCPU
		for i, n := range v {
			c.Total += n
			if i != 3 && i != 4 {
				c.Busy += n
			}
		}
		return c, nil
	}
	return MachineCPU{}, fmt.Errorf("/proc/stat: no cpu line")
}

// Cores is the average number of busy CPUs between two readings.
func (c MachineCPU) Cores(later MachineCPU, ncpu int) float64 {
	dt := float64(later.Total - c.Total)
	if dt <= 0 {
		return 0
	}
	return float64(later.Busy-c.Busy) / dt * float64(ncpu)
}
