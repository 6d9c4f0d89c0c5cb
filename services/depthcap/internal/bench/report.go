package bench

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Target thresholds (issue 8).
const (
	targetMarketCores  = 1.5
	targetIngestRatio  = 0.8
	targetRSSMarket    = 512 << 20
	targetRSSSeed50    = 150 << 20
	targetReplayRatio  = 3.0
	targetSeed50P99ms  = 5.0
	dedupWindowSeconds = 120.0
)

// Target statuses.
const (
	statusMet    = "met"
	statusNotMet = "NOT met"
	statusNA     = "n/a"
)

// Status is how a target reads in the report.
func (t Target) Status() string {
	switch {
	case t.Met:
		return statusMet
	case strings.HasPrefix(t.Got, "n/a"):
		return statusNA
	default:
		return statusNotMet
	}
}

// Evaluate checks a scenario's results against the targets and
// writes down what limits the figures.
func Evaluate(r *ScenarioResult) ([]Target, []string) {
	var ts []Target
	var notes []string
	nom := r.Step(r.NominalM)
	var sus *StepResult
	for i := range r.Steps {
		if r.Steps[i].Pass && r.Steps[i].M == r.Sustained {
			sus = &r.Steps[i]
		}
	}
	var firstFail *StepResult
	for i := range r.Steps {
		s := &r.Steps[i]
		if !s.Pass && s.M > r.Sustained && (firstFail == nil || s.M < firstFail.M) {
			firstFail = s
		}
	}

	// Sustained end to end at the scenario's rate, within the CPU budget.
	if nom != nil {
		cores := nom.CoresOurs + nom.CoresNATS
		t := Target{Name: "sustained end to end, zero loss, at the scenario's rate",
			Want: "pass with 0 frames lost",
			Got:  fmt.Sprintf("%s at %.0f frames/s received (%.0f published), %.0f lost", passWord(nom.Pass), nom.Received, nom.Pub, nom.Lost),
			Met:  nom.Pass && nom.Drained && nom.Lost == 0}
		if !t.Met {
			t.Why = strings.Join(nom.Reasons, "; ")
		}
		ts = append(ts, t)
		if r.Scenario == "market" {
			c := Target{Name: "market: cores used (ours + NATS) at the market rate", Want: fmt.Sprintf("<= %.1f of %d", targetMarketCores, r.Machine.CPUs),
				Got: fmt.Sprintf("%.2f (ours %.2f, NATS %.2f; sim %.2f more)", cores, nom.CoresOurs, nom.CoresNATS, nom.CoresSim),
				Met: nom.Pass && cores <= targetMarketCores}
			if !c.Met {
				c.Why = limitWhy(r, nom)
			}
			ts = append(ts, c)
		}
	}

	// Ingest against the raw ceiling.
	io := r.IngestOnly
	it := Target{Name: "ingest >= 80% of the raw JetStream ceiling (ids, same payload mix)", Want: ">= 0.80"}
	switch {
	case r.Ceiling.IDs <= 0 || io.WindowS == 0:
		it.Got = "n/a: not measured"
	case !io.Saturated:
		it.Got = fmt.Sprintf("n/a: the simulator's fastest setting offered %.0f msg/s (%.0f%% of the %.0f msg/s ceiling) and JetStream acked all of it; CPU per message ingest %.1f µs vs raw %.1f µs (%.2f)",
			io.Offered, 100*io.Offered/r.Ceiling.IDs, r.Ceiling.IDs, io.USPerMsg, io.CeilingUS, io.CPURatio)
	default:
		best, _ := io.BestRatio()
		sus := "no sustained trial passed"
		if io.SustainedAcked > 0 {
			sus = fmt.Sprintf("%.2f sustained with zero loss (%.0f of %.0f msg/s)", io.SustainedRatio, io.SustainedAcked, r.Ceiling.IDs)
		}
		it.Got = fmt.Sprintf("%s; %.2f saturated (%.0f msg/s acked while %.0f/s were dropped); CPU per message %.1f µs vs raw %.1f µs (%.2f)",
			sus, io.Ratio, io.Acked, io.Dropped, io.USPerMsg, io.CeilingUS, io.CPURatio)
		it.Met = best >= targetIngestRatio
		if !it.Met {
			it.Why = fmt.Sprintf("the collectors share the 2 CPUs with the simulator (%.2f cores for %.0f frames/s at saturation) and run two connections plus the snapshotter; the ceiling publisher had the machine to itself with pre-built messages", io.CoresSim, io.Sent)
			if f := io.lowestFail(); f != nil {
				it.Why += fmt.Sprintf("; the lowest failing trial offered %.0f msg/s, %.0f were acked, with the machine %.2f cores busy (simulator %.2f)", f.Offered, f.Acked, f.CoresMachine, f.CoresSim)
			}
		}
	}
	ts = append(ts, it)

	// Memory.
	if nom != nil {
		limit, scope := int64(targetRSSSeed50), "seed50"
		if r.Scenario == "market" {
			limit, scope = targetRSSMarket, "market"
		}
		mt := Target{Name: fmt.Sprintf("%s: total peak RSS of our services", scope), Want: fmt.Sprintf("<= %d MB", limit>>20),
			Got: fmt.Sprintf("%.0f MB (%s)", float64(nom.RSSOurs)/(1<<20), rssList(nom.Procs)), Met: nom.RSSOurs <= limit}
		if !mt.Met {
			mt.Why = "the largest is " + largest(nom.Procs)
		}
		ts = append(ts, mt)
	}

	// Replay.
	rp := r.Replay
	rt := Target{Name: "writer replay of a >= 1,000,000-message backlog vs the live rate", Want: fmt.Sprintf(">= %.0fx", targetReplayRatio)}
	if rp.LiveRate > 0 && rp.Rate > 0 {
		rt.Got = fmt.Sprintf("%.1fx (%.0f msg/s replayed vs %.0f msg/s live)", rp.Ratio, rp.Rate, rp.LiveRate)
		rt.Met = rp.Ratio >= targetReplayRatio
		if !rt.Met {
			rt.Why = fmt.Sprintf("the writer is one goroutine: %.1f µs of CPU per message (%.2f cores, NATS %.2f)", rp.WriterUSPerMsg, rp.WriterCores, rp.NATSCores)
		}
	} else {
		rt.Got = "n/a: not measured"
	}
	ts = append(ts, rt)

	// Latency.
	if r.Scenario == "seed50" && nom != nil {
		lt := Target{Name: "seed50: publish latency p99 (receive -> JetStream ack)", Want: fmt.Sprintf("<= %.0f ms", targetSeed50P99ms),
			Got: fmt.Sprintf("%.2f ms (histogram; exact receive -> stored p99 %.2f ms over %d messages)", nom.Latency.HistP99, nom.Latency.ExactP99, nom.Latency.ExactN),
			Met: nom.Latency.HistP99 <= targetSeed50P99ms}
		ts = append(ts, lt)
	}

	// Notes: what limits.
	if sus != nil {
		notes = append(notes, fmt.Sprintf("Highest sustained step: m=%.3g (tick %s), %.0f frames/s received, %.0f published, %.0f rows/s; ours %.2f + NATS %.2f cores, simulator %.2f, machine %.2f busy.",
			sus.M, sus.Tick, sus.Received, sus.Pub, sus.Rows, sus.CoresOurs, sus.CoresNATS, sus.CoresSim, sus.CoresMachine))
	} else {
		notes = append(notes, "No step was sustained.")
	}
	if firstFail != nil {
		notes = append(notes, fmt.Sprintf("First failing step above it: m=%.3g, %.0f frames/s received; %s.", firstFail.M, firstFail.Received, strings.Join(firstFail.Reasons, "; ")))
	} else if sus != nil && len(r.Steps) > 0 {
		notes = append(notes, "No step failed: the search stopped at its upper limit or step budget; the pipeline may sustain more.")
	}
	if c := r.Ceiling; c.IDs > 0 {
		notes = append(notes, fmt.Sprintf("JetStream ceiling on this machine (one publisher process, one nats-server, nothing else of ours): %.0f msg/s with Nats-Msg-Id, %.0f with a 100ms window, %.0f without ids; mean envelope %.0f B.",
			c.IDs, c.IDs100ms, c.NoIDs, c.MeanBytes))
		if c.DedupBytes > 0 && nom != nil {
			live := nom.Pub + nom.Snaps
			notes = append(notes, fmt.Sprintf("Dedup window: %.0f B of NATS RSS per id (2m vs 100ms window at %d messages); at this scenario's %.0f msg/s a 2m window holds %.0f ids = %.0f MB.",
				c.DedupBytes, r.Ceiling.Runs[0].N, live, live*dedupWindowSeconds, c.DedupBytes*live*dedupWindowSeconds/1e6))
		}
	}
	if b := r.Bytes; len(b.Kinds) > 0 {
		var parts []string
		for _, k := range b.Kinds {
			parts = append(parts, fmt.Sprintf("%s %.0f B/row (%.0f without footers, %.0f rows/file)", k.Kind, k.PerRow, k.DataPerRow, k.RowsPerFile))
		}
		notes = append(notes, "Sealed Parquet: "+strings.Join(parts, ", ")+". Files of a day hold far more rows than these samples, so their per-row size approaches the figure without footers.")
	}
	return ts, notes
}

func passWord(p bool) string {
	if p {
		return "sustained"
	}
	return "not sustained"
}

// limitWhy says what bounds the CPU at a step.
func limitWhy(r *ScenarioResult, s *StepResult) string {
	var ps []ProcResult
	for _, p := range s.Procs {
		if p.Role == roleOurs || p.Role == roleNATS {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].Cores > ps[j].Cores })
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%s %.2f cores (%.1f µs/frame)", p.Name, p.Cores, p.USPerFrame))
	}
	why := strings.Join(parts, ", ")
	if r.Ceiling.IDs > 0 {
		why += fmt.Sprintf("; JetStream itself: the raw publisher reached %.0f msg/s at %.1f µs of NATS CPU per message", r.Ceiling.IDs, r.Ceiling.Runs[len(r.Ceiling.Runs)-1].NATSUS)
	}
	if !s.Pass {
		why = strings.Join(s.Reasons, "; ") + "; " + why
	}
	return why
}

func rssList(ps []ProcResult) string {
	var parts []string
	for _, p := range ps {
		if p.Role == roleOurs {
			parts = append(parts, fmt.Sprintf("%s %.0f", p.Name, float64(p.PeakRSS)/(1<<20)))
		}
	}
	return strings.Join(parts, ", ")
}

func largest(ps []ProcResult) string {
	var best ProcResult
	for _, p := range ps {
		if p.Role == roleOurs && p.PeakRSS > best.PeakRSS {
			best = p
		}
	}
	return fmt.Sprintf("%s at %.0f MB", best.Name, float64(best.PeakRSS)/(1<<20))
}

// WriteResults writes <date>-<name>.md and .json under dir.
func WriteResults(dir, name string, rs []*ScenarioResult, total time.Duration) error {
	if len(rs) == 0 {
		return nil
	}
	base := filepath.Join(dir, rs[0].Date+"-"+name)
	doc := struct {
		Scenarios []*ScenarioResult `json:"scenarios"`
		Seconds   float64           `json:"total_seconds"`
	}{rs, total.Seconds()}
	if err := writeJSON(base+".json", doc); err != nil {
		return err
	}
	f, err := os.Create(base + ".md")
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	WriteMarkdown(bw, rs, total)
	if err := bw.Flush(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	return f.Close()
}

// printer returns a Printf for w that ends each line. It leaves write
// errors to w: WriteResults writes through a bufio.Writer, which keeps the
// first error and reports it on Flush; the other writers are a
// bytes.Buffer and the command's stdout.
func printer(w io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) { _, _ = fmt.Fprintf(w, format+"\n", args...) }
}

// WriteMarkdown writes the human report of one run.
func WriteMarkdown(w io.Writer, rs []*ScenarioResult, total time.Duration) {
	p := printer(w)
	var names []string
	for _, r := range rs {
		names = append(names, r.Scenario)
	}
	m := rs[0].Machine
	p("# depthcap pipeline benchmark: %s (%s)", strings.Join(names, ", "), rs[0].Date)
	p("")
	p("`make bench` (`depthcap bench`): every component its own OS process on one machine. Total run time %s (build %.0fs).", total.Round(time.Second), m.BuildSeconds)
	p("Machine: %d CPUs (%s), %s RAM, Linux %s, %s, commit %s, first-touch page fault %.2f µs per page. Other work may run on this machine: \"machine\" columns count every busy CPU.", m.CPUs, m.CPUModel, m.MemTotal, m.Kernel, m.Go, m.Commit, m.PageFaultUS)
	p("")
	p("## Summary")
	p("")
	WriteReadmeTable(w, rs)
	for _, r := range rs {
		writeScenario(w, r)
	}
}

// WriteReadmeTable writes the table the README shows.
func WriteReadmeTable(w io.Writer, rs []*ScenarioResult) {
	p := printer(w)
	p("| scenario | nominal load (received / published frames/s) | highest sustained, zero loss (frames/s received) | cores at nominal: ours + NATS (sim) | CPU µs/frame (ours + NATS) | peak RSS ours | publish latency p50 / p99 / p999 | JetStream ceiling ids / no ids (msg/s) | ingest vs ceiling | writer replay (x live) | Parquet B/event diff / partial / snapshot |")
	p("|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		nom := r.Step(r.NominalM)
		sus := r.Step(r.Sustained)
		cell := func(s *StepResult, f func(*StepResult) string) string {
			if s == nil {
				return "—"
			}
			return f(s)
		}
		susCell := "none"
		if sus != nil {
			susCell = fmt.Sprintf("%.0f (m=%.3g)", sus.Received, sus.M)
		}
		ing := "—"
		if r.IngestOnly.WindowS > 0 {
			if r.IngestOnly.Saturated {
				best, which := r.IngestOnly.BestRatio()
				ing = fmt.Sprintf("%.2f (%s)", best, which)
			} else {
				ing = fmt.Sprintf("not saturated (%.0f offered)", r.IngestOnly.Offered)
			}
		}
		p("| %s | %s | %s | %s | %s | %s | %s | %.0f / %.0f | %s | %.0f msg/s (%.1fx) | %s |",
			r.Scenario,
			cell(nom, func(s *StepResult) string {
				return fmt.Sprintf("%.0f / %.0f%s", s.Received, s.Pub, map[bool]string{true: "", false: " (not sustained)"}[s.Pass])
			}),
			susCell,
			cell(nom, func(s *StepResult) string {
				return fmt.Sprintf("%.2f + %.2f (%.2f)", s.CoresOurs, s.CoresNATS, s.CoresSim)
			}),
			cell(nom, func(s *StepResult) string { return fmt.Sprintf("%.1f", s.USPerFrame) }),
			cell(nom, func(s *StepResult) string { return fmt.Sprintf("%.0f MB", float64(s.RSSOurs)/(1<<20)) }),
			cell(nom, func(s *StepResult) string {
				return fmt.Sprintf("%s / %s / %s ms", fms(s.Latency.HistP50), fms(s.Latency.HistP99), fms(s.Latency.HistP999))
			}),
			r.Ceiling.IDs, r.Ceiling.NoIDs, ing, r.Replay.Rate, r.Replay.Ratio, kindBytes(r.Bytes))
	}
}

func fms(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	if v < 10 {
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.0f", v)
}

func kindBytes(b BytesResult) string {
	get := func(suffix string) string {
		var rows, bytes int64
		for _, k := range b.Kinds {
			if strings.HasSuffix(k.Kind, "/"+suffix) {
				rows += k.Rows
				bytes += k.Bytes
			}
		}
		if rows == 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f", float64(bytes)/float64(rows))
	}
	return get("diff_orderbooks") + " / " + get("partial_orderbooks") + " / " + get("orderbooks")
}

func writeScenario(w io.Writer, r *ScenarioResult) {
	p := printer(w)
	p("")
	p("## Scenario %s", r.Scenario)
	p("")
	p("%s. Nominal rate multiplier m=%.3g; the step search multiplies the simulator's tick rate and activity by m (same payload mix). Scenario run time %.0fs (%s).",
		r.Describe, r.NominalM, r.Seconds, phaseList(r.Phases))
	p("")
	p("### Targets")
	p("")
	p("| target | want | measured | status |")
	p("|---|---|---|---|")
	for _, t := range r.Targets {
		got := t.Got
		if t.Why != "" {
			got += ". Limited by: " + t.Why
		}
		p("| %s | %s | %s | **%s** |", t.Name, t.Want, esc(got), t.Status())
	}
	p("")
	p("### Sustained throughput: rate steps")
	p("")
	p("Each step is a fresh pipeline (NATS, simulator, collectors, snapshotter, writer, uploader), a few seconds of warm-up once every process is ready, then a measurement window. A step passes when nothing is dropped, refused, reconnected or gap-recorded, the writer's lag (stream last sequence − processed sequence) and the collectors' publish buffers do not grow, the simulator's send queues stay short, and, once the simulator stops sending, every frame it sent was received and every published frame is exactly one writer row. Rates are per second; cores are CPU seconds per second from /proc (utime + stime); µs/frame is CPU per frame received, both markets. Stalls (runs of messages stored more than 10 ms after they were received) are listed under the table.")
	p("")
	p("| m | tick | sent | received | published | snapshots | rows | ours cores | NATS | sim | machine | µs/frame | RSS ours | lag end / max | p99 hist / exact ms | result |")
	p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	steps := append([]StepResult(nil), r.Steps...)
	sort.Slice(steps, func(i, j int) bool { return steps[i].M < steps[j].M })
	for _, s := range steps {
		res := "pass"
		if !s.Pass {
			res = "FAIL: " + strings.Join(s.Reasons, "; ")
		}
		p("| %.3g | %s | %.0f | %.0f | %.0f | %.1f | %.0f | %.2f | %.2f | %.2f | %.2f | %.1f | %.0f MB | %.0f / %.0f | %s / %s | %s |",
			s.M, s.Tick, s.Sent, s.Received, s.Pub, s.Snaps, s.Rows, s.CoresOurs, s.CoresNATS, s.CoresSim, s.CoresMachine, s.USPerFrame,
			float64(s.RSSOurs)/(1<<20), s.LagEnd, s.LagMax, fms(s.Latency.HistP99), fms(s.Latency.ExactP99), esc(res))
	}
	var stalls []string
	for _, s := range steps {
		slow := 0
		for _, x := range s.Latency.Stalls {
			slow += x.Msgs
		}
		if s.Latency.ExactN > 0 && slow*20 > s.Latency.ExactN {
			stalls = append(stalls, fmt.Sprintf("- m=%.3g: %.0f%% of the sampled messages were stored more than %d ms after they were received: queueing at this load, not isolated stalls",
				s.M, 100*float64(slow)/float64(s.Latency.ExactN), stallMs))
			continue
		}
		for _, x := range s.Latency.Stalls {
			before := "at the start of the sample"
			if x.GapMs >= 0 {
				before = fmt.Sprintf("the first %.1f ms after the message stored before it", x.GapMs)
			}
			stalls = append(stalls, fmt.Sprintf("- m=%.3g, %s UTC: %d messages stored %d-%.1f ms after they were received (%s), %s",
				s.M, x.At.UTC().Format("15:04:05.000"), x.Msgs, stallMs, x.MaxMs, strings.Join(x.Markets, " and "), before))
		}
	}
	if len(stalls) > 0 {
		p("")
		p("Stalls in the exact latency samples:")
		p("")
		for _, l := range stalls {
			p("%s", l)
		}
	}
	for _, pick := range []struct {
		label string
		m     float64
	}{{"nominal", r.NominalM}, {"highest sustained", r.Sustained}} {
		s := r.Step(pick.m)
		if s == nil || (pick.label == "highest sustained" && pick.m == r.NominalM) {
			continue
		}
		p("")
		p("### CPU and memory per process at the %s step (m=%.3g, %.0f frames/s received, window %.0fs)", pick.label, s.M, s.Received, s.WindowS)
		p("")
		p("| process | role | CPU s | cores | µs per frame | peak RSS |")
		p("|---|---|---|---|---|---|")
		for _, pr := range s.Procs {
			p("| %s | %s | %.2f | %.3f | %.2f | %.0f MB |", pr.Name, pr.Role, pr.CPUSec, pr.Cores, pr.USPerFrame, float64(pr.PeakRSS)/(1<<20))
		}
		p("| **ours + NATS** | | | **%.3f** | **%.2f** | %.0f MB + %.0f MB |", s.CoresOurs+s.CoresNATS, s.USPerFrame, float64(s.RSSOurs)/(1<<20), float64(s.RSSNATS)/(1<<20))
		p("")
		var kinds []string
		for _, k := range kindKeys {
			kinds = append(kinds, fmt.Sprintf("%s %.0f/s", k, s.ByKind[k]))
		}
		p("Frames received by kind: %s; mean frame %.0f B. Latency receive → JetStream ack (collectors' histogram, interpolated): p50 %s, p99 %s, p999 %s ms over %.0f frames; receive → stored (exact, JetStream store time − envelope receive time, %d messages): p50 %s, p99 %s, p999 %s, max %s ms.",
			strings.Join(kinds, ", "), s.FrameBytes, fms(s.Latency.HistP50), fms(s.Latency.HistP99), fms(s.Latency.HistP999), s.Latency.HistN,
			s.Latency.ExactN, fms(s.Latency.ExactP50), fms(s.Latency.ExactP99), fms(s.Latency.ExactP999), fms(s.Latency.ExactMax))
	}
	c := r.Ceiling
	p("")
	p("### JetStream ceiling and dedup memory")
	p("")
	p("One publisher process (`depthcap bench publish`: plain `PublishMsgAsync`, 4096 in flight, one connection) sends %d pre-built messages of this scenario's mix (%s; mean %.0f B), built by the collectors' own code (pkg/frames, envelope, dedup id), to a fresh nats-server process with MARKETDATA as provisioned (file store, partition transform). Machine busy during the runs: %.2f cores.",
		c.Generated, kindsList(c.Kinds), c.MeanBytes, c.MachineAvg)
	p("")
	p("| run | Nats-Msg-Id | window | messages | msg/s | MB/s | publisher µs/msg | NATS µs/msg | NATS RSS at the end | NATS peak RSS |")
	p("|---|---|---|---|---|---|---|---|---|---|")
	for _, cr := range c.Runs {
		p("| %s | %v | %s | %d | %.0f | %.1f | %.2f | %.2f | %.0f MB | %.0f MB |", cr.Name, cr.IDs, cr.Window, cr.N, cr.Rate, cr.MBPerS, cr.PubUS, cr.NATSUS, float64(cr.NATSRSSEnd)/(1<<20), float64(cr.NATSPeak)/(1<<20))
	}
	if len(c.Runs) > 0 {
		p("")
		p("The 2m run over its first %d messages: %.0f msg/s. NATS RSS after %d messages: 2m window %.0f MB, 100ms window %.0f MB, no ids %.0f MB: **%.0f B per id in the dedup window**.",
			c.Runs[0].N, c.IDsFirstN, c.Runs[0].N, float64(c.RSS2mAtN)/(1<<20), float64(c.RSS100msN)/(1<<20), float64(c.RSSNoIDsN)/(1<<20), c.DedupBytes)
	}
	rp := r.Replay
	p("")
	p("### Writer replay")
	p("")
	p("The writer (WRITER_PERIOD 24h, defaults otherwise) was started on the 2m server and stopped, the publisher filled the stream with %d messages, the writer was started again: first message after %.1fs, caught up %.1fs later: **%.0f msg/s** (%.0f msg/s including start-up), %.2f cores (%.1f µs/msg), NATS %.2f cores, machine %.2f. Live rate of the scenario at its nominal step: %.0f msg/s: **%.1fx**. Peak RSS writer %.0f MB, NATS %.0f MB. %.0f checkpoints.",
		rp.Backlog, rp.StartSeconds, rp.Seconds, rp.Rate, rp.RateFromStart, rp.WriterCores, rp.WriterUSPerMsg, rp.NATSCores, rp.MachineAvg, rp.LiveRate, rp.Ratio, float64(rp.WriterPeakRSS)/(1<<20), float64(rp.NATSPeakRSS)/(1<<20), rp.Checkpoints)
	p("")
	p("### Bytes on disk")
	p("")
	p("Before the seal, after the writer's shutdown checkpoint: checkpoint file %s + part files %s for %.0f rows = **%.0f B/row** (raw DCR2 chunks). Sealed: a second writer (WRITER_SHARD=%s, WRITER_PERIOD=%s) read its share of the same backlog and sealed every file after closing snapshots moved the watermark (%.1fs, %.1fs of it sealing, %.2f µs CPU per row including the Parquet encoding):",
		mib(rp.CkptBytes), mib(rp.PartBytes), rp.Rows, rp.CkptPerRow, r.Bytes.Shard, r.Bytes.Period, r.Bytes.Seconds, r.Bytes.SealSeconds, r.Bytes.USPerRow)
	p("")
	p("| kind | files | rows | bytes | B/row | B/row without footers | rows/file |")
	p("|---|---|---|---|---|---|---|")
	for _, k := range r.Bytes.Kinds {
		p("| %s | %d | %d | %d | %.1f | %.1f | %.0f |", k.Kind, k.Files, k.Rows, k.Bytes, k.PerRow, k.DataPerRow, k.RowsPerFile)
	}
	p("")
	p("Manifests (.gaps.json): %d bytes.", r.Bytes.SidecarBytes)
	ir := r.IngestOnly
	p("")
	p("### Collectors alone against the ceiling")
	p("")
	if ir.WindowS > 0 {
		p("spot-ws, futures-ws and rest-snapshotter without the writer, the simulator at m=%.3g (tick %s): %.0f frames/s sent, %.0f received, %.0f msg/s offered, **%.0f msg/s acknowledged** (%.2f of the ceiling with ids), %.0f/s dropped at the full buffer. CPU per acknowledged message: collectors + NATS %.2f µs vs publisher + NATS %.2f µs in the ceiling (%.2f). Simulator %.2f cores, machine %.2f.",
			ir.M, ir.Tick, ir.Sent, ir.Received, ir.Offered, ir.Acked, ir.Ratio, ir.Dropped, ir.USPerMsg, ir.CeilingUS, ir.CPURatio, ir.CoresSim, ir.CoresMachine)
		for _, n := range ir.Reasons {
			p("")
			p("Note: %s.", n)
		}
		if len(ir.Trials) > 0 {
			p("")
			p("Sustained search from the saturated rate (a trial passes when nothing is dropped, the publish buffers grow by at most %d MiB and at least 99%% of what was offered is acknowledged; %s window each):", ingestBufGrowth>>20, ingestTrialWindow)
			p("")
			p("| m | tick | offered msg/s | acked msg/s | dropped/s | buffers MiB | µs/msg (collectors + NATS) | sim cores | machine | result |")
			p("|---|---|---|---|---|---|---|---|---|---|")
			for _, t := range ir.Trials {
				res := "pass"
				if !t.Pass {
					res = "fail: " + t.Why
				}
				p("| %.3g | %s | %.0f | %.0f | %.0f | %+.1f | %.2f | %.2f | %.2f | %s |", t.M, t.Tick, t.Offered, t.Acked, t.Dropped, float64(t.BufGrowth)/(1<<20), t.USPerMsg, t.CoresSim, t.CoresMachine, res)
			}
			p("")
			if ir.SustainedAcked > 0 {
				p("**Sustained with zero loss: %.0f msg/s (m=%.3g), %.2f of the ceiling.**", ir.SustainedAcked, ir.SustainedM, ir.SustainedRatio)
			} else {
				p("No trial passed: the sustained rate is below the lowest one tried.")
			}
		}
		p("")
		p("Saturated run, per process:")
		p("")
		p("| process | role | cores | µs per acked message | peak RSS |")
		p("|---|---|---|---|---|")
		for _, pr := range ir.Procs {
			p("| %s | %s | %.3f | %.2f | %.0f MB |", pr.Name, pr.Role, pr.Cores, pr.USPerFrame, float64(pr.PeakRSS)/(1<<20))
		}
	} else {
		p("Not measured (%s).", strings.Join(ir.Reasons, "; "))
	}
	p("")
	p("### Notes")
	p("")
	for _, n := range r.Notes {
		p("- %s", n)
	}
}

func kindsList(k map[string]int) string {
	var ks []string
	for name := range k {
		ks = append(ks, name)
	}
	sort.Strings(ks)
	var parts []string
	for _, name := range ks {
		parts = append(parts, fmt.Sprintf("%d %s", k[name], name))
	}
	return strings.Join(parts, ", ")
}

func phaseList(ph map[string]float64) string {
	var ks []string
	for k := range ph {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %.0fs", k, ph[k]))
	}
	return strings.Join(parts, ", ")
}

func esc(s string) string { return strings.ReplaceAll(s, "|", "\\|") }
