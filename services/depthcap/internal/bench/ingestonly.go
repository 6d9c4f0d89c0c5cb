package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

const (
	// ingestOnlyWindow is the measurement window of the collectors alone
	// at saturation, ingestTrialWindow that of each sustained trial.
	ingestOnlyWindow  = 15 * time.Second
	ingestTrialWindow = 10 * time.Second
	// ingestTrials bounds the sustained search of the collectors alone.
	ingestTrials = 3
	// ingestBufGrowth is how much the collectors' publish buffers may grow
	// in a trial that passes (bytes).
	ingestBufGrowth = 2 << 20
)

// ingestOnly measures the ingest path's own ceiling against the raw one:
// the collectors and the snapshotter without the writer.
//
//  1. Saturation: the simulator above the JetStream ceiling (within its
//     limits); how many messages per second JetStream acknowledges while
//     the collectors drop the rest at their full buffers.
//  2. Sustained: from that rate, a short search for the highest rate the
//     collectors publish whole (nothing dropped, buffers not growing,
//     everything offered acknowledged). Saturation spends CPU on frames
//     that are read, decoded and then dropped, so it understates what
//     the path carries without loss.
func (r *scenarioRun) ingestOnly(ctx context.Context) error {
	ir := &r.res.IngestOnly
	perM := 0.0
	for _, s := range r.res.Steps {
		if s.M > 0 && s.WindowS > 0 {
			perM = math.Max(perM, (s.Pub+s.Snaps)/s.M)
		}
	}
	if perM <= 0 || r.res.Ceiling.IDs <= 0 {
		ir.Reasons = append(ir.Reasons, "skipped: no step or no ceiling measured")
		return nil
	}
	mSat := Effective(math.Min(r.sc.MaxM, 1.25*r.res.Ceiling.IDs/perM))
	r.logf("ingest-only: collectors without the writer at %s (%.0f msg/s offered, ceiling %.0f)", r.sc.RateAt(mSat), perM*mSat, r.res.Ceiling.IDs)
	sat, err := r.ingestRun(ctx, mSat, ingestOnlyWindow)
	if err != nil {
		return err
	}
	reasons := ir.Reasons
	*ir = sat.IngestOnlyResult
	ir.Reasons = reasons
	if !ir.Saturated {
		ir.Reasons = append(ir.Reasons, fmt.Sprintf("not saturated: the simulator offered %.0f msg/s at its fastest setting and JetStream took them all", ir.Offered))
	}
	r.logf("ingest-only: %.0f frames/s received, %.0f msg/s acked (%.0f%% of the ceiling), %.0f/s dropped; %.1f µs CPU/msg (collectors+NATS) vs %.1f raw; sim %.2f cores, machine %.2f",
		ir.Received, ir.Acked, 100*ir.Ratio, ir.Dropped, ir.USPerMsg, ir.CeilingUS, ir.CoresSim, ir.CoresMachine)
	if !ir.Saturated || ir.Acked <= 0 {
		return nil
	}
	s := &Search{Start: 1.05 * ir.Acked / perM, Min: 0.8 * ir.Acked / perM, Max: mSat, Grow: 1.15, Precision: 1.08,
		MaxSteps: ingestTrials, Quantize: Effective}
	for {
		m, ok := s.Next()
		if !ok {
			break
		}
		tr, err := r.ingestRun(ctx, m, ingestTrialWindow)
		if err != nil {
			return err
		}
		t := IngestTrial{M: tr.M, Tick: tr.Tick, Offered: tr.Offered, Acked: tr.Acked, Dropped: tr.Dropped,
			BufGrowth: tr.bufGrowth, USPerMsg: tr.USPerMsg, CoresSim: tr.CoresSim, CoresMachine: tr.CoresMachine}
		t.Pass, t.Why = ingestTrialPass(t)
		ir.Trials = append(ir.Trials, t)
		s.Record(Trial{M: m, Pass: t.Pass})
		r.logf("ingest-only trial m=%.3g: %.0f msg/s offered, %.0f acked, %.0f/s dropped, buffers %+.1f MiB: %s",
			t.M, t.Offered, t.Acked, t.Dropped, float64(t.BufGrowth)/(1<<20), map[bool]string{true: "pass", false: "fail: " + t.Why}[t.Pass])
	}
	if best, ok := s.Best(); ok {
		for _, t := range ir.Trials {
			if t.M == best {
				ir.SustainedM, ir.SustainedAcked = t.M, t.Acked
				ir.SustainedRatio = t.Acked / r.res.Ceiling.IDs
			}
		}
	}
	return nil
}

// ingestTrialPass says whether the collectors published everything they
// were offered in a trial, and if not, why.
func ingestTrialPass(t IngestTrial) (bool, string) {
	switch {
	case t.Dropped > 0:
		return false, fmt.Sprintf("%.0f/s dropped at the full buffer", t.Dropped)
	case t.BufGrowth > ingestBufGrowth:
		return false, fmt.Sprintf("publish buffers grew by %.1f MiB", float64(t.BufGrowth)/(1<<20))
	case t.Acked < 0.99*t.Offered:
		return false, fmt.Sprintf("%.0f of %.0f msg/s acknowledged", t.Acked, t.Offered)
	}
	return true, ""
}

// ingestMeasure is one run of the collectors alone.
type ingestMeasure struct {
	IngestOnlyResult
	bufGrowth int64 // bytes the collectors' publish buffers grew by in the window
}

// ingestRun runs the collectors and the snapshotter without the writer at
// multiplier m and measures them for window.
func (r *scenarioRun) ingestRun(ctx context.Context, m float64, window time.Duration) (ingestMeasure, error) {
	var res ingestMeasure
	ir := &res.IngestOnlyResult
	rate := r.sc.RateAt(m)
	ir.M, ir.Tick = rate.M, rate.Tick.String()
	st := r.startStack(ctx, fmt.Sprintf("ingest-only-m%.3g", rate.M), rate, stackOpts{})
	defer st.close()
	if !sleepCtx(ctx, 3*time.Second) {
		return res, ctx.Err()
	}
	pubs := []*procs.Proc{st.coll[0], st.coll[1], st.snap}
	watched := append([]*procs.Proc{st.sim}, pubs...)
	all := st.g.Procs()
	ma, err := scrapeAll(ctx, watched...)
	if err != nil {
		return res, err
	}
	ca := snapCPU(all)
	if !sleepCtx(ctx, window) {
		return res, ctx.Err()
	}
	cb := snapCPU(all)
	mb, err := scrapeAll(ctx, watched...)
	if err != nil {
		return res, err
	}
	win := cb.at.Sub(ca.at).Seconds()
	ir.WindowS = win
	sum := func(ms map[string]procs.Metrics, name string, ps ...*procs.Proc) float64 {
		t := 0.0
		for _, p := range ps {
			t += ms[p.Name()].Sum(name)
		}
		return t
	}
	d := func(name string, ps ...*procs.Proc) float64 { return sum(mb, name, ps...) - sum(ma, name, ps...) }
	ir.Sent = d("binance_sim_frames_sent_total", st.sim) / win
	ir.Received = d("depthcap_ingest_frames_total", st.coll[0], st.coll[1]) / win
	acked := d("depthcap_publish_acked_total", pubs...)
	ir.Acked = acked / win
	ir.Offered = (d("depthcap_ingest_published_total", st.coll[0], st.coll[1]) + d("depthcap_ingest_dropped_total", st.coll[0], st.coll[1])) / win
	ir.Dropped = d("depthcap_ingest_dropped_total", st.coll[0], st.coll[1]) / win
	res.bufGrowth = int64(d("depthcap_publish_buffer_bytes", pubs...))
	ir.Saturated = ir.Dropped > 0 || res.bufGrowth > 4<<20
	ir.Procs = procResults(ca, cb, all, st.roles, acked)
	ir.CoresSim = coresBy(ir.Procs, roleSim)
	ir.CoresMachine = ca.machine.Cores(cb.machine, runtime.NumCPU())
	if acked > 0 {
		ir.USPerMsg = (coresBy(ir.Procs, roleOurs) + coresBy(ir.Procs, roleNATS)) * win * 1e6 / acked
	}
	for _, cr := range r.res.Ceiling.Runs {
		if cr.Name == "ids-2m" {
			ir.CeilingUS = cr.PubUS + cr.NATSUS
		}
	}
	if ir.USPerMsg > 0 {
		ir.CPURatio = ir.CeilingUS / ir.USPerMsg
	}
	ir.Ratio = ir.Acked / r.res.Ceiling.IDs
	return res, nil
}
