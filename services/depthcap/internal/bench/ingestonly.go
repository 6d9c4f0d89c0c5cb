package bench

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// ingestOnlyWindow is the measurement window of the collectors alone.
const ingestOnlyWindow = 15 * time.Second

// ingestOnly runs the collectors and the snapshotter without the writer,
// the simulator at a rate above the JetStream ceiling (within its
// limits), and measures how many messages per second JetStream
// acknowledges: the ingest path's own ceiling, against the raw one.
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
	m := Effective(math.Min(r.sc.MaxM, 1.25*r.res.Ceiling.IDs/perM))
	rate := r.sc.RateAt(m)
	ir.M, ir.Tick = rate.M, rate.Tick.String()
	r.logf("ingest-only: collectors without the writer at %s (%.0f msg/s offered, ceiling %.0f)", rate, perM*rate.M, r.res.Ceiling.IDs)
	st := r.startStack(ctx, "ingest-only", rate, stackOpts{})
	defer st.close()
	if !sleepCtx(ctx, 3*time.Second) {
		return ctx.Err()
	}
	pubs := []*procs.Proc{st.coll[0], st.coll[1], st.snap}
	watched := append([]*procs.Proc{st.sim}, pubs...)
	all := st.g.Procs()
	ma, err := scrapeAll(ctx, watched...)
	if err != nil {
		return err
	}
	ca := snapCPU(all)
	if !sleepCtx(ctx, ingestOnlyWindow) {
		return ctx.Err()
	}
	cb := snapCPU(all)
	mb, err := scrapeAll(ctx, watched...)
	if err != nil {
		return err
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
	bufA, bufB := sum(ma, "depthcap_publish_buffer_bytes", pubs...), sum(mb, "depthcap_publish_buffer_bytes", pubs...)
	ir.Saturated = ir.Dropped > 0 || bufB-bufA > 4<<20
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
	if !ir.Saturated {
		ir.Reasons = append(ir.Reasons, fmt.Sprintf("not saturated: the simulator offered %.0f msg/s at its fastest setting and JetStream took them all", ir.Offered))
	}
	r.logf("ingest-only: %.0f frames/s received, %.0f msg/s acked (%.0f%% of the ceiling), %.0f/s dropped; %.1f µs CPU/msg (collectors+NATS) vs %.1f raw; sim %.2f cores, machine %.2f",
		ir.Received, ir.Acked, 100*ir.Ratio, ir.Dropped, ir.USPerMsg, ir.CeilingUS, ir.CoresSim, ir.CoresMachine)
	return nil
}
