//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// summary prints what the run did and found, writes it to
// <run dir>/summary.txt (and to $E2E_SUMMARY when set), and fails the test
// once per failed check.
func (c *cluster) summary() {
	r := &c.res
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }

	p("depthcap e2e summary (seed %d, %d symbols per market, drops %s)", c.set.Seed, c.set.Symbols, c.set.Drops)
	p("duration: total %s = build %s + start %s + run %s (chaos %s, then wind-down) + verify %s",
		r.total.Round(time.Second), r.buildTime.Round(time.Second), r.startTime.Round(time.Second), r.runTime.Round(time.Second), c.set.Duration, r.verifyTime.Round(time.Second))
	p("")
	p("events (ids per market/kind: sent by the sim | rows in uploaded files | duplicates | missing | extra):")
	keys := make([]string, 0, len(r.events))
	for k := range r.events {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var totSent, totRows int
	for _, k := range keys {
		st := r.events[k]
		label := k
		if k == "snapshots" {
			label = "snapshots (vs MARKETDATA)"
		}
		p("  %-26s %8d | %8d | %d | %d | %d", label, st.sent, st.rows, st.dups, st.missing, st.extra)
		totSent += st.sent
		totRows += st.rows
	}
	p("  %-26s %8d | %8d", "total", totSent, totRows)
	p("  MARKETDATA: %d messages (last seq %d); DLQ: %d messages", r.streamMsgs, r.streamLast, r.dlqMsgs)
	p("")
	p("gaps: injected skips %d, gaps in manifests %d, matched exactly %d; covered collector reports in manifests %d",
		r.gaps.injected, r.gaps.recorded, r.gaps.matched, r.covered)
	for _, s := range c.skipFaults() {
		p("  skip %s %s: U %d .. u %d (%d event(s))", s.market, s.symbol, s.from, s.to, s.events)
	}
	var gapReasons []string
	for _, name := range sortedKeys(r.ingest) {
		m := r.ingest[name]
		var parts []string
		for _, reason := range []string{"sequence", "disconnect", "buffer_overflow"} {
			if v := m.Sum("depthcap_ingest_gaps_total", "reason", reason); v > 0 {
				parts = append(parts, fmt.Sprintf("%s %.0f", reason, v))
			}
		}
		gapReasons = append(gapReasons, fmt.Sprintf("%s: reconnects %.0f, gap records [%s], dropped frames %.0f",
			name, m.Sum("depthcap_ingest_reconnects_total"), strings.Join(parts, ", "), m.Sum("depthcap_ingest_dropped_total")))
	}
	p("collectors:")
	for _, l := range gapReasons {
		p("  %s", l)
	}
	p("")
	p("faults survived:")
	byOwner := map[string]int{}
	for _, d := range r.drops {
		byOwner[d.owner]++
	}
	var owners []string
	for _, o := range sortedKeys(byOwner) {
		owners = append(owners, fmt.Sprintf("%s %d", o, byOwner[o]))
	}
	if c.set.Drops == "sim" {
		n := 0
		for _, m := range markets {
			for _, f := range r.faults[m] {
				if f.Type == "drop" {
					n++
				}
			}
		}
		p("  websocket drops: %d by SIM_DROP_MEAN=%s (independent schedules; both replicas may be down together)", n, c.set.DropMean)
	} else {
		p("  websocket drops: %d, one replica at a time (%s)", len(r.drops), strings.Join(owners, ", "))
	}
	p("  writer kill -9: %d (starts %d)", c.writer.Kills(), c.writer.Starts())
	p("  NATS restarts: %d (stopped 4s, same port and store)", c.nats.Starts()-1)
	p("  S3 outage: 10s, %d files sealed meanwhile, %.0f failed upload attempts, store-down seen by the uploader: %v", r.s3SealedDuring, r.s3Errors, r.s3DownSeen)
	p("  period rollover: WRITER_PERIOD=%s, WRITER_GRACE=%s; %d Parquet files sealed (%d late-event supplements)", period, grace, r.parquet, r.supplements)
	p("")
	p("uploaded: %d objects, %s (%d Parquet files + manifests)", r.objects, mibStr(r.objectBytes), r.parquet)
	p("")
	p("peak RSS / CPU per process (limit):")
	for _, pr := range c.g.Procs() {
		u := pr.Usage()
		limit := "no configured limit"
		if l, ok := c.limits[pr.Name()]; ok {
			limit = fmt.Sprintf("limit %s = %s", mibStr(l.bytes), l.how)
		}
		p("  %-17s %10s  cpu %6.1fs  starts %d  (%s)", pr.Name(), mibStr(u.PeakRSS), u.CPU.Seconds(), pr.Starts(), limit)
	}
	p("")
	p("timeline:")
	c.mu.Lock()
	for _, e := range c.timeline {
		p("  %7s  %s", e.at, firstLine(e.what))
	}
	c.mu.Unlock()
	p("")
	p("checks:")
	failed := 0
	for _, ch := range r.checks {
		if len(ch.problems) == 0 {
			p("  PASS  %s", ch.name)
			continue
		}
		failed++
		p("  FAIL  %s (%d problem(s))", ch.name, len(ch.problems))
		for i, pr := range ch.problems {
			if i == 20 {
				p("        ... %d more", len(ch.problems)-20)
				break
			}
			p("        - %s", firstLine(pr))
		}
	}
	c.summarized = true
	out := b.String()
	c.t.Log("\n" + out)
	_ = os.WriteFile(filepath.Join(c.dir, "summary.txt"), []byte(out), 0o644)
	if f := os.Getenv("E2E_SUMMARY"); f != "" {
		if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
			c.t.Errorf("write E2E_SUMMARY %s: %v", f, err)
		}
	}
	for _, ch := range r.checks {
		if len(ch.problems) > 0 {
			c.t.Errorf("%s: %d problem(s):\n  - %s", ch.name, len(ch.problems), strings.Join(first(ch.problems, 20), "\n  - "))
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
