package bench

import (
	"fmt"
	"math"
	"sort"
)

// LiveObs is what a step's measurement window saw.
type LiveObs struct {
	Window    float64 // seconds
	InRate    float64 // messages/s entering JetStream (frames published + snapshots)
	LagEnd    float64 // writer lag (stream last seq − processed seq) at the end, messages
	LagSlope  float64 // least-squares growth of that lag, messages/s
	BufEnd    float64 // collectors' publish buffers at the end, bytes
	BufSlope  float64 // their growth, bytes/s
	SimQueued float64 // frames queued in the simulator's send queues at the end
	SimRate   float64 // frames/s the simulator sent
	// Counter increases during the window.
	SlowConsumer, Reconnects, Dropped, Gaps, Rejected, LateTicks, DLQ float64
}

// Limits of a sustained step.
const (
	// The lag may grow by at most this many seconds of input over the
	// window (a checkpoint pause) and end at most lagEndSeconds behind. A
	// writer that keeps only 80% of the pace grows it by 4 s over 20 s:
	// 3 s let that pass as sustained.
	lagGrowthSeconds = 1.0
	lagEndSeconds    = 2.0
	lagFloor         = 5000.0  // messages: below this a lag is noise (a checkpoint pause)
	bufGrowthBytes   = 8 << 20 // publish buffers may grow by at most 8 MiB over the window
	bufEndBytes      = 32 << 20
	queueSeconds     = 1.0 // sim send queues may hold at most 1 s of frames
)

// LiveVerdict decides whether the pipeline sustained the step's rate:
// nothing lost or refused, and neither the writer's lag nor the
// collectors' buffers nor the simulator's send queues growing.
func LiveVerdict(o LiveObs) []string {
	var why []string
	for _, c := range []struct {
		v    float64
		what string
	}{
		{o.SlowConsumer, "simulator disconnected a collector as too slow"},
		{o.Reconnects, "collector reconnects"},
		{o.Dropped, "frames dropped at a full publish buffer"},
		{o.Gaps, "gap records published"},
		{o.Rejected, "publishes refused (buffer full)"},
		{o.LateTicks, "simulator ticks lost (the simulator could not keep its clock)"},
		{o.DLQ, "frames dead-lettered"},
	} {
		if c.v > 0 {
			why = append(why, fmt.Sprintf("%s: %.0f", c.what, c.v))
		}
	}
	if grow := o.LagSlope * o.Window; grow > math.Max(lagGrowthSeconds*o.InRate, lagFloor) {
		why = append(why, fmt.Sprintf("writer lag grew by %.0f messages over %.0fs (%.0f/s)", grow, o.Window, o.LagSlope))
	}
	if o.LagEnd > math.Max(lagEndSeconds*o.InRate, lagFloor) {
		why = append(why, fmt.Sprintf("writer %.0f messages behind at the end (%.1fs of input)", o.LagEnd, o.LagEnd/math.Max(o.InRate, 1)))
	}
	if grow := o.BufSlope * o.Window; grow > bufGrowthBytes {
		why = append(why, fmt.Sprintf("collectors' publish buffers grew by %.1f MiB (JetStream not keeping up)", grow/(1<<20)))
	}
	if o.BufEnd > bufEndBytes {
		why = append(why, fmt.Sprintf("collectors' publish buffers hold %.1f MiB at the end", o.BufEnd/(1<<20)))
	}
	if o.SimQueued > math.Max(queueSeconds*o.SimRate, 1000) {
		why = append(why, fmt.Sprintf("%.0f frames queued in the simulator (collectors not reading fast enough)", o.SimQueued))
	}
	return why
}

// Counts are per "market/kind" totals.
type Counts map[string]float64

// DrainObs is the accounting once the simulator stopped sending and
// everything was flushed.
type DrainObs struct {
	Sent      Counts // frames the simulator wrote
	Received  Counts // frames the collectors read
	Published Counts // frames the collectors handed to JetStream (new ids)
	Rows      Counts // rows the writer made
}

// DrainVerdict checks zero loss end to end: every frame sent was
// received, every published frame became exactly one row. It returns the
// frames missing (or extra) and the reasons.
func DrainVerdict(o DrainObs) (lost float64, why []string) {
	keys := map[string]bool{}
	for _, c := range []Counts{o.Sent, o.Received, o.Published, o.Rows} {
		for k := range c {
			keys[k] = true
		}
	}
	var ks []string
	for k := range keys {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for _, k := range ks {
		if d := o.Sent[k] - o.Received[k]; d != 0 {
			lost += math.Abs(d)
			why = append(why, fmt.Sprintf("%s: simulator sent %.0f frames, collectors received %.0f", k, o.Sent[k], o.Received[k]))
		}
		if d := o.Published[k] - o.Rows[k]; d != 0 {
			lost += math.Abs(d)
			why = append(why, fmt.Sprintf("%s: %.0f frames published, writer made %.0f rows", k, o.Published[k], o.Rows[k]))
		}
	}
	return lost, why
}
