package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/depthcap/depthcap/pkg/envelope"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// cpuSnap is every process's CPU time at one moment.
type cpuSnap struct {
	at      time.Time
	ticks   map[string]int64
	machine MachineCPU
	bench   time.Duration
}

func readMachine() MachineCPU {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return MachineCPU{}
	}
	c, _ := ParseProcStat(b)
	return c
}

func snapCPU(ps []*procs.Proc) cpuSnap {
	s := cpuSnap{at: time.Now(), ticks: map[string]int64{}, machine: readMachine(), bench: selfCPU()}
	for _, p := range ps {
		if pid := p.Pid(); pid != 0 {
			if t, err := procs.ReadCPUTicks(pid); err == nil {
				s.ticks[p.Name()] = t
			}
		}
	}
	return s
}

// procResults turns two CPU snapshots into per-process figures; frames
// is the number of frames the window received.
func procResults(a, b cpuSnap, ps []*procs.Proc, roles map[string]string, frames float64) []ProcResult {
	win := b.at.Sub(a.at).Seconds()
	var out []ProcResult
	for _, p := range ps {
		ta, ok1 := a.ticks[p.Name()]
		tb, ok2 := b.ticks[p.Name()]
		if !ok1 || !ok2 {
			continue
		}
		cpu := float64(tb-ta) / 100 // USER_HZ
		pr := ProcResult{Name: p.Name(), Role: roles[p.Name()], CPUSec: cpu, Cores: cpu / win, PeakRSS: p.Usage().PeakRSS}
		if frames > 0 {
			pr.USPerFrame = cpu * 1e6 / frames
		}
		out = append(out, pr)
	}
	bcpu := (b.bench - a.bench).Seconds()
	out = append(out, ProcResult{Name: "depthcap bench", Role: roleBench, CPUSec: bcpu, Cores: bcpu / win})
	return out
}

// coresBy sums the cores of the processes of a role.
func coresBy(ps []ProcResult, role string) float64 {
	t := 0.0
	for _, p := range ps {
		if p.Role == role {
			t += p.Cores
		}
	}
	return t
}

// scrapeAll scrapes the named processes; a failure is an error (a
// process died or hangs).
func scrapeAll(ctx context.Context, ps ...*procs.Proc) (map[string]procs.Metrics, error) {
	out := map[string]procs.Metrics{}
	for _, p := range ps {
		if p == nil {
			continue
		}
		m, err := p.Scrape(ctx)
		if err != nil {
			return nil, fmt.Errorf("scrape %s: %w", p.Name(), err)
		}
		out[p.Name()] = m
	}
	return out, nil
}

// sample is one point of the window's time series.
type sample struct {
	t, lag, buf float64
}

// runStep runs the pipeline at multiplier m and measures it.
func (r *scenarioRun) runStep(ctx context.Context, m float64) StepResult {
	rate := r.sc.RateAt(m)
	res := StepResult{M: rate.M, Tick: rate.Tick.String()}
	r.logf("step m=%.3g: %s", rate.M, rate)
	st := r.startStack(ctx, fmt.Sprintf("step-%d", len(r.res.Steps)+1), rate, stackOpts{writer: true, uploader: true})
	defer st.close()
	res.StartS = st.startDur.Seconds()
	fail := func(format string, args ...any) StepResult {
		res.Pass = false
		res.Reasons = append(res.Reasons, fmt.Sprintf(format, args...))
		r.logf("  step m=%.3g: %s", rate.M, res.Reasons[len(res.Reasons)-1])
		return res
	}
	if !sleepCtx(ctx, r.o.Warmup) {
		return fail("interrupted")
	}
	coll := []*procs.Proc{st.coll[0], st.coll[1]}
	watched := append([]*procs.Proc{st.sim, st.writer, st.snap}, coll...)
	all := st.g.Procs()

	// Window start.
	ma, err := scrapeAll(ctx, watched...)
	if err != nil {
		return fail("%v", err)
	}
	seqA, _, err := lastSeq(ctx, st.js)
	if err != nil {
		return fail("stream info: %v", err)
	}
	ca := snapCPU(all)

	var series []sample
	deadline := ca.at.Add(r.o.Window)
	for time.Now().Before(deadline) {
		if !sleepCtx(ctx, min(time.Second, time.Until(deadline))) {
			return fail("interrupted")
		}
		ms, err := scrapeAll(ctx, append([]*procs.Proc{st.writer}, coll...)...)
		if err != nil {
			return fail("%v", err)
		}
		seq, _, err := lastSeq(ctx, st.js)
		if err != nil {
			return fail("stream info: %v", err)
		}
		buf := 0.0
		for _, p := range coll {
			buf += ms[p.Name()].Sum("depthcap_publish_buffer_bytes")
		}
		lag := math.Max(0, float64(seq)-ms["writer"].Value("depthcap_writer_processed_seq"))
		series = append(series, sample{t: time.Since(ca.at).Seconds(), lag: lag, buf: buf})
	}

	// Window end.
	cb := snapCPU(all)
	mb, err := scrapeAll(ctx, watched...)
	if err != nil {
		return fail("%v", err)
	}
	seqB, _, err := lastSeq(ctx, st.js)
	if err != nil {
		return fail("stream info: %v", err)
	}
	var queued float64
	for _, base := range st.simHTTP {
		q, err := simQueued(ctx, base)
		if err != nil {
			return fail("sim conns: %v", err)
		}
		queued += q
	}
	win := cb.at.Sub(ca.at).Seconds()
	res.WindowS = win
	sim, simA := mb["binance-sim"], ma["binance-sim"]
	sent := countsOf("binance_sim_frames_sent_total", sim).minus(countsOf("binance_sim_frames_sent_total", simA))
	recv := countsOf("depthcap_ingest_frames_total", mb[coll[0].Name()], mb[coll[1].Name()]).
		minus(countsOf("depthcap_ingest_frames_total", ma[coll[0].Name()], ma[coll[1].Name()]))
	pub := countsOf("depthcap_ingest_published_total", mb[coll[0].Name()], mb[coll[1].Name()]).
		minus(countsOf("depthcap_ingest_published_total", ma[coll[0].Name()], ma[coll[1].Name()]))
	delta := func(name, proc string, labels ...string) float64 {
		return mb[proc].Sum(name, labels...) - ma[proc].Sum(name, labels...)
	}
	collDelta := func(name string, labels ...string) float64 {
		return delta(name, coll[0].Name(), labels...) + delta(name, coll[1].Name(), labels...)
	}
	res.Sent, res.Received, res.Pub = sent.total()/win, recv.total()/win, pub.total()/win
	res.Snaps = delta("depthcap_publish_acked_total", "rest-snapshotter") / win
	res.Stored = float64(seqB-seqA) / win
	res.Rows = delta("depthcap_writer_rows_total", "writer") / win
	res.ByKind = map[string]float64{}
	for k, v := range recv {
		res.ByKind[k] = v / win
	}
	if n := recv.total(); n > 0 {
		res.FrameBytes = collDelta("depthcap_ingest_bytes_total") / n
	}
	res.Procs = procResults(ca, cb, all, st.roles, recv.total())
	res.CoresOurs, res.CoresNATS = coresBy(res.Procs, roleOurs), coresBy(res.Procs, roleNATS)
	res.CoresSim, res.CoresInfra, res.CoresBench = coresBy(res.Procs, roleSim), coresBy(res.Procs, roleInfra), coresBy(res.Procs, roleBench)
	res.CoresMachine = ca.machine.Cores(cb.machine, runtime.NumCPU())
	if n := recv.total(); n > 0 {
		res.USPerFrame = (res.CoresOurs + res.CoresNATS) * win * 1e6 / n
	}
	for _, p := range res.Procs {
		switch p.Role {
		case roleOurs:
			res.RSSOurs += p.PeakRSS
		case roleNATS:
			res.RSSNATS += p.PeakRSS
		}
	}
	hist := BucketDelta(HistBuckets(ma[coll[0].Name()], "depthcap_publish_latency_seconds"), HistBuckets(mb[coll[0].Name()], "depthcap_publish_latency_seconds"))
	hist2 := BucketDelta(HistBuckets(ma[coll[1].Name()], "depthcap_publish_latency_seconds"), HistBuckets(mb[coll[1].Name()], "depthcap_publish_latency_seconds"))
	hist = addBuckets(hist, hist2)
	res.Latency.HistP50, res.Latency.HistP99, res.Latency.HistP999 = 1e3*HistQuantile(hist, 0.5), 1e3*HistQuantile(hist, 0.99), 1e3*HistQuantile(hist, 0.999)
	if len(hist) > 0 {
		res.Latency.HistN = hist[len(hist)-1].Count
	}
	var ts, lags, bufs []float64
	for _, s := range series {
		ts, lags, bufs = append(ts, s.t), append(lags, s.lag), append(bufs, s.buf)
		res.LagMax, res.BufMax = math.Max(res.LagMax, s.lag), math.Max(res.BufMax, s.buf)
	}
	if len(series) > 0 {
		res.LagEnd = series[len(series)-1].lag
	}
	res.LagSlope = Slope(ts, lags)
	obs := LiveObs{
		Window: win, InRate: res.Pub + res.Snaps, LagEnd: res.LagEnd, LagSlope: res.LagSlope,
		BufSlope: Slope(ts, bufs), SimQueued: queued, SimRate: res.Sent,
		SlowConsumer: delta("binance_sim_disconnects_total", "binance-sim", "reason", "slow_consumer"),
		LateTicks:    delta("binance_sim_ticks_late_total", "binance-sim"),
		Reconnects:   collDelta("depthcap_ingest_reconnects_total"),
		Dropped:      collDelta("depthcap_ingest_dropped_total"),
		Gaps:         collDelta("depthcap_ingest_gaps_total"),
		Rejected:     collDelta("depthcap_publish_rejected_total"),
		DLQ:          collDelta("depthcap_ingest_dlq_total") + delta("depthcap_writer_dlq_total", "writer"),
	}
	if len(bufs) > 0 {
		obs.BufEnd = bufs[len(bufs)-1]
	}
	res.Reasons = LiveVerdict(obs)
	res.Pass = len(res.Reasons) == 0
	r.logf("  window %.1fs: sent %.0f, received %.0f, published %.0f frames/s, %.0f rows/s; ours %.2f + NATS %.2f cores (sim %.2f, machine %.2f); %.1f µs/frame; lag end %.0f max %.0f",
		win, res.Sent, res.Received, res.Pub, res.Rows, res.CoresOurs, res.CoresNATS, res.CoresSim, res.CoresMachine, res.USPerFrame, res.LagEnd, res.LagMax)
	if !res.Pass {
		for _, w := range res.Reasons {
			r.logf("  not sustained: %s", w)
		}
		return res
	}

	// Drain: the simulator stops sending, every frame read is flushed to
	// JetStream, the writer catches up; then every count must match.
	drainStart := time.Now()
	if why := r.drain(ctx, st); why != "" {
		return fail("drain: %s", why)
	}
	mf, err := scrapeAll(ctx, st.sim, st.writer, coll[0], coll[1])
	if err != nil {
		return fail("%v", err)
	}
	obsD := DrainObs{
		Sent:      countsOf("binance_sim_frames_sent_total", mf["binance-sim"]),
		Received:  countsOf("depthcap_ingest_frames_total", mf[coll[0].Name()], mf[coll[1].Name()]),
		Published: countsOf("depthcap_ingest_published_total", mf[coll[0].Name()], mf[coll[1].Name()]),
		Rows:      countsOf("depthcap_writer_rows_total", mf["writer"]),
	}
	res.Drained = true
	lost, why := DrainVerdict(obsD)
	res.Lost = lost
	if lost > 0 {
		res.Pass = false
		res.Reasons = append(res.Reasons, why...)
	}
	r.logf("  drained in %.1fs: %.0f frames sent, %.0f received, %.0f published, %.0f rows; lost %.0f",
		time.Since(drainStart).Seconds(), obsD.Sent.total(), obsD.Received.total(), obsD.Published.total(), obsD.Rows.total(), lost)

	lat, err := exactLatency(ctx, st.js, seqA+1, seqB, 100_000)
	if err != nil {
		r.logf("  exact latency: %v", err)
	} else {
		res.Latency.ExactP50, res.Latency.ExactP99, res.Latency.ExactP999, res.Latency.ExactMax, res.Latency.ExactN = lat.ExactP50, lat.ExactP99, lat.ExactP999, lat.ExactMax, lat.ExactN
		res.Latency.Stalls = lat.Stalls
		for _, s := range lat.Stalls {
			r.logf("  stall at +%.2fs of the window (since the stack started +%.2fs): %d messages above %d ms, max %.1f ms, markets %v, %.1f ms after the message stored before it",
				s.At.Sub(ca.at).Seconds(), s.At.Sub(st.started).Seconds(), s.Msgs, stallMs, s.MaxMs, s.Markets, s.GapMs)
		}
	}
	r.logf("  latency receive→ack (histogram) p50 %.2f p99 %.2f p999 %.2f ms; receive→stored (exact, %d msgs) p50 %.2f p99 %.2f p999 %.2f ms",
		res.Latency.HistP50, res.Latency.HistP99, res.Latency.HistP999, res.Latency.ExactN, res.Latency.ExactP50, res.Latency.ExactP99, res.Latency.ExactP999)
	return res
}

func addBuckets(a, b []Bucket) []Bucket {
	by := map[float64]float64{}
	for _, x := range a {
		by[x.LE] += x.Count
	}
	for _, x := range b {
		by[x.LE] += x.Count
	}
	out := make([]Bucket, 0, len(by))
	for le, c := range by {
		out = append(out, Bucket{LE: le, Count: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].LE < out[j].LE })
	return out
}

// drain stalls the simulator's connections and waits until the
// collectors read every frame sent, flushed their buffers, and the writer
// processed the stream's last message. It returns what did not happen.
func (r *scenarioRun) drain(ctx context.Context, st *stack) string {
	for _, base := range st.simHTTP {
		if err := simFault(ctx, base, map[string]any{"type": "stall", "duration": "10m"}); err != nil {
			return fmt.Sprintf("stall the simulator: %v", err)
		}
	}
	coll := []*procs.Proc{st.coll[0], st.coll[1]}
	wait := func(limit time.Duration, what string, done func() (bool, error)) string {
		deadline := time.Now().Add(limit)
		for {
			ok, err := done()
			if err != nil {
				return fmt.Sprintf("%s: %v", what, err)
			}
			if ok {
				return ""
			}
			if time.Now().After(deadline) {
				return fmt.Sprintf("%s: not within %s", what, limit)
			}
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return "interrupted"
			}
		}
	}
	if why := wait(15*time.Second, "collectors read every frame sent", func() (bool, error) {
		ms, err := scrapeAll(ctx, st.sim, coll[0], coll[1])
		if err != nil {
			return false, err
		}
		sent := countsOf("binance_sim_frames_sent_total", ms["binance-sim"]).total()
		got := countsOf("depthcap_ingest_frames_total", ms[coll[0].Name()], ms[coll[1].Name()]).total()
		return got >= sent, nil
	}); why != "" {
		return why
	}
	if why := wait(30*time.Second, "collectors flushed to JetStream", func() (bool, error) {
		ms, err := scrapeAll(ctx, coll...)
		if err != nil {
			return false, err
		}
		buf := 0.0
		for _, p := range coll {
			buf += ms[p.Name()].Sum("depthcap_publish_buffer_bytes") + ms[p.Name()].Sum("depthcap_ingest_gap_records_pending")
		}
		return buf == 0, nil
	}); why != "" {
		return why
	}
	seq, _, err := lastSeq(ctx, st.js)
	if err != nil {
		return fmt.Sprintf("stream info: %v", err)
	}
	return wait(60*time.Second, fmt.Sprintf("writer processed up to stream seq %d", seq), func() (bool, error) {
		m, err := st.writer.Scrape(ctx)
		if err != nil {
			return false, err
		}
		return m.Value("depthcap_writer_processed_seq") >= float64(seq), nil
	})
}

// stallMs is the exact latency above which a message counts in a stall.
const stallMs = 10

// exactLatency reads up to limit messages of MARKETDATA between from and
// to (a contiguous run from the middle) and returns the distribution of
// store time − receive time of the websocket frames among them.
func exactLatency(ctx context.Context, js jetstream.JetStream, from, to uint64, limit int) (Latency, error) {
	var lat Latency
	if to < from {
		return lat, errors.New("no messages in the window")
	}
	n := to - from + 1
	if n > uint64(limit) {
		from += (n - uint64(limit)) / 2
		n = uint64(limit)
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, md.StreamMarketData)
	if err != nil {
		return lat, err
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: from})
	if err != nil {
		return lat, err
	}
	it, err := c.Messages(jetstream.PullMaxMessages(2000))
	if err != nil {
		return lat, err
	}
	defer it.Stop()
	var ms []float64
	var env envelope.Envelope
	var lastSlow, lastStored time.Time
	for read := uint64(0); read < n; read++ {
		msg, err := it.Next()
		if err != nil {
			return lat, fmt.Errorf("after %d messages: %w", read, err)
		}
		meta, err := msg.Metadata()
		if err != nil {
			return lat, err
		}
		if meta.Sequence.Stream > to {
			break
		}
		if envelope.Unmarshal(msg.Data(), &env) != nil || (env.Kind != md.Diff && env.Kind != md.Partial) {
			continue
		}
		l := float64(meta.Timestamp.UnixNano()-env.ReceivedNs) / 1e6
		ms = append(ms, l)
		if l > stallMs {
			if k := len(lat.Stalls) - 1; k >= 0 && meta.Timestamp.Sub(lastSlow) <= 100*time.Millisecond {
				lat.Stalls[k].Msgs++
				lat.Stalls[k].MaxMs = math.Max(lat.Stalls[k].MaxMs, l)
			} else {
				gap := -1.0 // the sample's first message
				if !lastStored.IsZero() {
					gap = float64(meta.Timestamp.Sub(lastStored)) / 1e6
				}
				lat.Stalls = append(lat.Stalls, Stall{At: meta.Timestamp, Msgs: 1, MaxMs: l, GapMs: gap})
			}
			st := &lat.Stalls[len(lat.Stalls)-1]
			if !slices.Contains(st.Markets, env.Market.String()) {
				st.Markets = append(st.Markets, env.Market.String())
			}
			lastSlow = meta.Timestamp
		}
		lastStored = meta.Timestamp
	}
	q := Quantiles(ms, 0.5, 0.99, 0.999, 1)
	lat.ExactP50, lat.ExactP99, lat.ExactP999, lat.ExactMax, lat.ExactN = q[0], q[1], q[2], q[3], len(ms)
	return lat, nil
}

// sleepCtx sleeps d or until ctx ends (false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
