package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// scenarioRun runs one scenario.
type scenarioRun struct {
	o     Options
	tb    *runTB
	sc    Scenario
	dir   string
	bins  procs.Binaries
	env   Machine
	infra *procs.Group
	s3    *procs.S3
	res   *ScenarioResult
	start time.Time
}

func (r *scenarioRun) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(r.o.Progress, "%s %6.1fs  %s\n", r.sc.Name, time.Since(r.start).Seconds(), fmt.Sprintf(format, args...))
}

// run measures the scenario: the ceiling and the replay (quiet machine,
// NATS and one publisher or writer at a time), the step search, the
// collectors alone; then it evaluates the targets.
func (r *scenarioRun) run(ctx context.Context) (*ScenarioResult, error) {
	r.start = time.Now()
	r.res = &ScenarioResult{Scenario: r.sc.Name, Describe: r.sc.Describe, Date: time.Now().UTC().Format("2006-01-02"),
		Machine: r.env, NominalM: Effective(r.sc.Nominal), Phases: map[string]float64{}}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	r.infra = procs.NewGroup(r.tb, filepath.Join(r.dir, "infra"))
	defer r.infra.Close()
	r.s3 = r.infra.AddS3("versitygw")
	r.s3.Start()
	ictx, cancel := context.WithTimeout(ctx, 60*time.Second)
	procs.Must(r.tb, r.s3.WaitReady(ictx))
	procs.Must(r.tb, r.s3.MakeBucket(ictx, benchBucket))
	cancel()
	r.logf("scenario %s: %s", r.sc.Name, r.sc.Describe)

	phase := func(name string, f func() error) error {
		t := time.Now()
		err := f()
		r.res.Phases[name] = time.Since(t).Seconds()
		if err == nil && ctx.Err() != nil {
			err = ctx.Err()
		}
		return err
	}
	if err := phase("ceiling+replay", func() error { return r.ceilingAndReplay(ctx) }); err != nil {
		return nil, err
	}
	if err := phase("steps", func() error { return r.steps(ctx) }); err != nil {
		return nil, err
	}
	if err := phase("ingest-only", func() error { return r.ingestOnly(ctx) }); err != nil {
		return nil, err
	}
	if n := r.res.Step(r.res.NominalM); n != nil {
		r.res.Replay.LiveRate = n.Pub + n.Snaps
		if r.res.Replay.LiveRate > 0 {
			r.res.Replay.Ratio = r.res.Replay.Rate / r.res.Replay.LiveRate
		}
	}
	r.res.Seconds = time.Since(r.start).Seconds()
	r.res.Targets, r.res.Notes = Evaluate(r.res)
	r.logf("scenario %s done in %.0fs", r.sc.Name, r.res.Seconds)
	return r.res, nil
}

// steps runs the sustained-throughput search from the nominal rate.
func (r *scenarioRun) steps(ctx context.Context) error {
	s := &Search{Start: r.sc.Nominal, Min: r.sc.MinM, Max: r.sc.MaxM, Grow: 4, Precision: 1.35,
		MaxSteps: r.o.MaxSteps, CPUs: float64(runtime.NumCPU()), Quantize: Effective}
	for {
		m, ok := s.Next()
		if !ok {
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		st := r.runStep(ctx, m)
		r.res.Steps = append(r.res.Steps, st)
		// Headroom from the pipeline's own CPU (ours, NATS, the
		// simulator): other work on the machine comes and goes.
		s.Record(Trial{M: st.M, Pass: st.Pass, Cores: st.CoresOurs + st.CoresNATS + st.CoresSim})
	}
	best, _ := s.Best()
	r.res.Sustained = best
	return nil
}
