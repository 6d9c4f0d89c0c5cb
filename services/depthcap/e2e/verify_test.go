//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/procs"
)

// results is what the run measured and what the checks found.
type results struct {
	buildTime, startTime, runTime, verifyTime, total time.Duration

	skipsInjected  []skipReq
	drops          []dropRec
	s3Errors       float64
	s3DownSeen     bool
	s3SealedDuring int

	ingest        map[string]procs.Metrics // collectors' last scrape, by process
	sent          map[string]simSent       // by market
	faults        map[string][]simFault    // by market
	lastPeriodEnd time.Time
	streamLast    uint64
	streamMsgs    uint64
	dlqMsgs       uint64
	replayDone    bool
	lagOK         bool
	lagSeen       float64
	writerFinal   procs.Metrics
	uploaderFinal procs.Metrics
	snapshots     []snapMsg

	objects     int
	objectBytes int64
	parquet     int
	supplements int
	events      map[string]*kindStats // "<market>/<kind>"
	gaps        gapStats
	covered     int // collector reports listed as covered in manifests
	checks      []check
}

type kindStats struct {
	sent, rows, dups, missing, extra int
}

type gapStats struct {
	injected, recorded, matched int
}

// check is one property: its name, whether it held, and why not.
type check struct {
	name     string
	problems []string
}

func (c *check) addf(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func newResults() results {
	return results{ingest: map[string]procs.Metrics{}, sent: map[string]simSent{}, faults: map[string][]simFault{}, events: map[string]*kindStats{}}
}

// manifest is the part of a <name>.gaps.json the checks read (SCHEMA.md).
type manifest struct {
	File     string `json:"file"`
	Market   string `json:"market"`
	Kind     string `json:"kind"`
	Symbol   string `json:"symbol"`
	Rows     int64  `json:"rows"`
	GapCount int    `json:"gap_count"`
	Gaps     []struct {
		AfterID      int64          `json:"after_id"`
		ResumePrevID int64          `json:"resume_prev_id"`
		DetectedBy   string         `json:"detected_by"`
		Reports      []manifestRprt `json:"reports"`
	} `json:"gaps"`
	Covered []manifestRprt `json:"covered"`
	Resets  []struct {
		PreviousLastID int64 `json:"previous_last_update_id"`
		NewID          int64 `json:"new_update_id"`
	} `json:"resets"`
}

type manifestRprt struct {
	Source       string `json:"source"`
	Reason       string `json:"reason"`
	AfterID      int64  `json:"after_id"`
	ResumePrevID int64  `json:"resume_prev_id"`
}

// verify downloads every object and runs the checks.
func (c *cluster) verify() {
	ctx, cancel := ctxTimeout(5 * time.Minute)
	defer cancel()
	r := &c.res

	// Objects against local files (size + SHA-256).
	objCheck := check{name: "objects match their local files (size + sha256)"}
	cl, err := c.s3.Client()
	procs.Must(c.t, err)
	objs, err := listObjects(ctx, cl)
	procs.Must(c.t, err)
	local, err := localFiles(c.data)
	procs.Must(c.t, err)
	dl := filepath.Join(c.dir, "objects")
	localByRel := map[string]localFile{}
	for _, f := range local {
		localByRel[f.rel] = f
	}
	downloaded := map[string]string{} // rel -> path of the downloaded copy
	rels := make([]string, 0, len(objs))
	for rel := range objs {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		o := objs[rel]
		dst := filepath.Join(dl, filepath.FromSlash(rel))
		size, sum, err := download(ctx, cl, o.key, dst)
		if err != nil {
			objCheck.addf("download %s: %v", o.key, err)
			continue
		}
		downloaded[rel] = dst
		r.objects++
		r.objectBytes += size
		lf, ok := localByRel[rel]
		if !ok {
			objCheck.addf("object %s has no local file", o.key)
			continue
		}
		lsize, lsum, err := sha256File(lf.abs)
		switch {
		case err != nil:
			objCheck.addf("hash %s: %v", lf.rel, err)
		case lsize != size || lsum != sum:
			objCheck.addf("object %s differs from its local file: object %d bytes sha256 %s, local %d bytes sha256 %s", o.key, size, sum, lsize, lsum)
		}
	}
	for _, f := range local {
		if _, ok := objs[f.rel]; !ok {
			objCheck.addf("sealed file %s was never uploaded", f.rel)
		}
	}
	if len(local) == 0 {
		objCheck.addf("no sealed files at all")
	}

	// Read the downloaded files: Parquet ids and metadata, manifests.
	manCheck := check{name: "every Parquet object has a consistent manifest"}
	var files []*pqFile
	mans := map[string]*manifest{}
	for _, rel := range rels {
		p := downloaded[rel]
		if p == "" {
			continue
		}
		if isManifest(rel) {
			b, err := os.ReadFile(p)
			if err != nil {
				manCheck.addf("read %s: %v", rel, err)
				continue
			}
			var m manifest
			if err := json.Unmarshal(b, &m); err != nil {
				manCheck.addf("manifest %s: %v", rel, err)
				continue
			}
			mans[rel] = &m
			continue
		}
		if !strings.HasSuffix(rel, ".parquet") {
			manCheck.addf("unexpected object %s", rel)
			continue
		}
		f, err := readParquet(p, rel)
		if err != nil {
			manCheck.addf("%v", err)
			continue
		}
		files = append(files, f)
	}
	r.parquet = len(files)
	for _, f := range files {
		if strings.Contains(f.rel, ".late") {
			r.supplements++
		}
	}
	for _, f := range files {
		m := mans[manifestName(f.rel)]
		if m == nil {
			manCheck.addf("%s has no manifest object %s", f.rel, manifestName(f.rel))
			continue
		}
		if m.Rows != f.rows || m.GapCount != len(m.Gaps) || m.File != f.rel ||
			f.meta["depthcap.rows"] != strconv.FormatInt(f.rows, 10) || f.meta["depthcap.gap_count"] != strconv.Itoa(m.GapCount) {
			manCheck.addf("%s: rows %d (metadata %s, manifest %d), gap_count metadata %s, manifest %d with %d gaps, manifest file %q",
				f.rel, f.rows, f.meta["depthcap.rows"], m.Rows, f.meta["depthcap.gap_count"], m.GapCount, len(m.Gaps), m.File)
		}
	}
	for rel := range mans {
		if _, ok := objs[strings.TrimSuffix(rel, ".gaps.json")+".parquet"]; !ok {
			manCheck.addf("manifest %s without its Parquet file", rel)
		}
	}

	// Determinism: a crash-free replay seals the same files, byte for byte.
	det := check{name: "a crash-free writer replaying MARKETDATA seals byte-identical files (deterministic writer)"}
	if !r.replayDone {
		det.addf("the replay did not complete")
	} else {
		rep, err := localFiles(c.replayData)
		procs.Must(c.t, err)
		repByRel := map[string]localFile{}
		for _, f := range rep {
			repByRel[f.rel] = f
		}
		for _, rel := range rels {
			f, ok := repByRel[rel]
			if !ok {
				det.addf("%s: uploaded, but the replay did not seal it", rel)
				continue
			}
			_, want, err1 := sha256File(downloaded[rel])
			_, got, err2 := sha256File(f.abs)
			if err1 != nil || err2 != nil || want != got {
				det.addf("%s differs from the replay's file (sha256 %s vs %s) %v %v", rel, want, got, err1, err2)
			}
		}
		for _, f := range rep {
			if _, ok := objs[f.rel]; !ok {
				det.addf("%s: sealed by the replay, not in the run's objects", f.rel)
			}
		}
	}

	byKey := map[fileKey][]int64{}
	for _, f := range files {
		byKey[f.key] = append(byKey[f.key], f.ids...)
	}
	skips := c.skipFaults()
	exact := c.checkExactlyOnce(byKey)
	snaps := c.checkSnapshots(byKey)
	gaps := c.checkGaps(files, mans, skips, byKey)

	// Restarts survived.
	rs := check{name: "faults were applied and survived (2 writer kill -9, NATS restart, S3 outage, drops, skips)"}
	if k, s := c.writer.Kills(), c.writer.Starts(); k != 2 || s != 3 {
		rs.addf("writer: %d kill -9 and %d starts, want 2 and 3", k, s)
	}
	if s := c.nats.Starts(); s != 2 {
		rs.addf("nats-server: %d starts, want 2 (one restart)", s)
	}
	if r.s3Errors == 0 {
		rs.addf("S3 outage not exercised: the uploader made no failed attempt while versitygw was down (store down seen: %v, files sealed meanwhile: %d)", r.s3DownSeen, r.s3SealedDuring)
	}
	nDrops := len(r.drops)
	if c.set.Drops == "sim" {
		nDrops = 0
		for _, m := range markets {
			for _, f := range r.faults[m] {
				if f.Type == "drop" {
					nDrops++
				}
			}
		}
	}
	if nDrops == 0 {
		rs.addf("no websocket connection was dropped")
	}
	if len(r.skipsInjected) != c.set.Skips*len(markets) {
		rs.addf("%d skips injected, want %d", len(r.skipsInjected), c.set.Skips*len(markets))
	}
	for _, m := range markets {
		var reconnects float64
		for _, p := range c.collectors[m] {
			reconnects += r.ingest[p.Name()].Sum("depthcap_ingest_reconnects_total")
		}
		if c.set.Drops == "guarded" && reconnects < float64(countDrops(r.drops, m)) {
			rs.addf("%s collectors reconnected %.0f times for %d drops", m, reconnects, countDrops(r.drops, m))
		}
	}

	// Catch-up and the lag gauge.
	lag := check{name: "writer caught up: processed seq = stream last seq, depthcap_writer_consumer_lag = 0"}
	if got := r.writerFinal.Value("depthcap_writer_processed_seq"); got != float64(r.streamLast) {
		lag.addf("depthcap_writer_processed_seq %.0f, MARKETDATA last seq %d", got, r.streamLast)
	}
	if !r.lagOK {
		lag.addf("depthcap_writer_consumer_lag is %.0f 15s after the writer processed the stream's last message (seq %d): the gauge does not follow the consumer", r.lagSeen, r.streamLast)
	}

	// Memory.
	mem := check{name: "memory stayed within the configured limits"}
	for _, p := range c.g.Procs() {
		l, ok := c.limits[p.Name()]
		if !ok {
			continue
		}
		if u := p.Usage(); u.PeakRSS > l.bytes {
			mem.addf("%s peak RSS %s > %s (%s)", p.Name(), mibStr(u.PeakRSS), mibStr(l.bytes), l.how)
		} else if u.Samples == 0 {
			mem.addf("%s was never sampled", p.Name())
		}
	}

	run := check{name: "no process died, every process stopped cleanly on SIGTERM, nothing quarantined"}
	c.mu.Lock()
	run.problems = append(run.problems, c.failures...)
	c.mu.Unlock()
	if r.dlqMsgs > 0 {
		run.addf("stream DLQ holds %d messages; no bad input was injected", r.dlqMsgs)
	}

	r.checks = []check{exact, snaps, gaps, objCheck, manCheck, det, rs, lag, mem, run}
}

func countDrops(ds []dropRec, market string) int {
	n := 0
	for _, d := range ds {
		if d.market == market {
			n++
		}
	}
	return n
}

// skip is an exchange-side skip the sim recorded.
type skip struct {
	market, symbol string
	from, to       int64
	events         int
}

// skipFaults returns the skips of the sim's fault log; each injected
// request must have produced exactly one.
func (c *cluster) skipFaults() []skip {
	var out []skip
	for _, m := range markets {
		for _, f := range c.res.faults[m] {
			if f.Type == "skip" {
				out = append(out, skip{market: m, symbol: f.Symbol, from: f.From, to: f.To, events: f.Events})
			}
		}
	}
	return out
}

// sentIDs is the sim's send log of one stream as a set.
func (c *cluster) sentIDs(k fileKey) (map[int64]int, bool) {
	for _, e := range c.res.sent[k.market].Entries {
		if e.Symbol == k.symbol && e.Kind == k.kind.String() {
			ids := make(map[int64]int, len(e.IDs))
			for _, p := range e.IDs {
				ids[p[0]] = int(p[1])
			}
			return ids, true
		}
	}
	return nil, false
}

// checkExactlyOnce: for every diff and partial stream, the ids in the
// uploaded files are exactly the ids the sim sent, each once.
func (c *cluster) checkExactlyOnce(byKey map[fileKey][]int64) check {
	ch := check{name: "every event the sim sent is in the uploaded files exactly once (diff, partial)"}
	r := &c.res
	seen := map[fileKey]bool{}
	for _, m := range markets {
		s := r.sent[m]
		if s.Truncated {
			ch.addf("%s: the sim's send log is truncated; raise SIM_SEND_LOG_MAX", m)
		}
		for _, e := range s.Entries {
			kind, err := md.ParseKind(e.Kind)
			if err != nil {
				ch.addf("send log kind %q: %v", e.Kind, err)
				continue
			}
			k := fileKey{market: m, kind: kind, symbol: e.Symbol}
			seen[k] = true
			st := r.events[m+"/"+e.Kind]
			if st == nil {
				st = &kindStats{}
				r.events[m+"/"+e.Kind] = st
			}
			if len(e.Malformed) > 0 {
				ch.addf("%s: the sim sent %d malformed frames (none were injected)", k, len(e.Malformed))
			}
			sent, _ := c.sentIDs(k)
			got := map[int64]int{}
			for _, id := range byKey[k] {
				got[id]++
			}
			var dups, missing, extra []int64
			for id, n := range got {
				if n > 1 {
					dups = append(dups, id)
				}
				if _, ok := sent[id]; !ok {
					extra = append(extra, id)
				}
			}
			for id := range sent {
				if got[id] == 0 {
					missing = append(missing, id)
				}
			}
			st.sent += len(sent)
			st.rows += len(byKey[k])
			st.dups += len(dups)
			st.missing += len(missing)
			st.extra += len(extra)
			if len(dups) > 0 {
				slices.Sort(dups)
				ch.addf("%s: %d events stored more than once, e.g. ids %v", k, len(dups), first(dups, 8))
			}
			if len(missing) > 0 {
				slices.Sort(missing)
				ch.addf("%s: %d of %d sent events are in no file (lost by both replicas or by the pipeline), e.g. ids %v%s",
					k, len(missing), len(sent), first(missing, 8), c.dropsNear(m))
			}
			if len(extra) > 0 {
				slices.Sort(extra)
				ch.addf("%s: %d stored ids were never sent by the sim, e.g. %v", k, len(extra), first(extra, 8))
			}
		}
	}
	for k, ids := range byKey {
		if k.kind != md.Snapshot && !seen[k] {
			ch.addf("%s: %d rows of a stream the sim never sent", k, len(ids))
		}
	}
	for _, m := range markets {
		for _, kind := range []string{"diff", "partial"} {
			if st := r.events[m+"/"+kind]; st == nil || st.sent == 0 {
				ch.addf("%s/%s: the sim sent nothing", m, kind)
			}
		}
	}
	return ch
}

// dropsNear lists the run's drops of a market, to help read a loss.
func (c *cluster) dropsNear(market string) string {
	var b strings.Builder
	for _, d := range c.res.drops {
		if d.market == market {
			fmt.Fprintf(&b, " %s@%s", d.owner, d.at.Round(100*time.Millisecond))
		}
	}
	if b.Len() == 0 {
		return ""
	}
	return "; drops of " + market + ":" + b.String()
}

// checkSnapshots: the REST snapshots JetStream stored with a receive time
// before the end of the last sealed period are in the files exactly once,
// and the files hold no other snapshot.
func (c *cluster) checkSnapshots(byKey map[fileKey][]int64) check {
	ch := check{name: "every stored REST snapshot of the sealed periods is in the files exactly once"}
	r := &c.res
	want := map[fileKey]map[int64]bool{}
	all := map[fileKey]map[int64]bool{}
	cut := r.lastPeriodEnd.UnixNano()
	for _, s := range r.snapshots {
		k := fileKey{market: s.market, kind: md.Snapshot, symbol: s.symbol}
		if all[k] == nil {
			all[k], want[k] = map[int64]bool{}, map[int64]bool{}
		}
		all[k][s.id] = true
		if s.recvNs < cut {
			want[k][s.id] = true
		}
	}
	st := &kindStats{}
	r.events["snapshots"] = st
	for k, ids := range want {
		got := map[int64]int{}
		for _, id := range byKey[k] {
			got[id]++
		}
		st.sent += len(ids)
		st.rows += len(byKey[k])
		var missing, dups, extra []int64
		for id := range ids {
			if got[id] == 0 {
				missing = append(missing, id)
			}
		}
		for id, n := range got {
			if n > 1 {
				dups = append(dups, id)
			}
			if !all[k][id] {
				extra = append(extra, id)
			}
		}
		st.missing += len(missing)
		st.dups += len(dups)
		st.extra += len(extra)
		if len(missing) > 0 {
			ch.addf("%s: %d of %d stored snapshots are in no file, e.g. %v", k, len(missing), len(ids), first(missing, 8))
		}
		if len(dups) > 0 {
			ch.addf("%s: %d snapshots stored more than once, e.g. %v", k, len(dups), first(dups, 8))
		}
		if len(extra) > 0 {
			ch.addf("%s: %d snapshot rows not in MARKETDATA, e.g. %v", k, len(extra), first(extra, 8))
		}
	}
	for k := range byKey {
		if k.kind == md.Snapshot && want[k] == nil {
			ch.addf("%s: snapshot rows but no snapshot in MARKETDATA", k)
		}
	}
	if st.sent == 0 {
		ch.addf("no REST snapshot at all")
	}
	return ch
}

// checkGaps: every injected skip is listed, with its exact range, in
// exactly one manifest, and no manifest lists any other gap.
func (c *cluster) checkGaps(files []*pqFile, mans map[string]*manifest, skips []skip, byKey map[fileKey][]int64) check {
	ch := check{name: "the only gaps are the injected skips, each recorded with its exact range"}
	r := &c.res
	type want struct {
		skip
		after   int64
		matched []string
	}
	var wants []*want
	for _, m := range markets {
		injected := 0
		for _, s := range r.skipsInjected {
			if s.market == m {
				injected++
			}
		}
		recorded := 0
		for _, s := range skips {
			if s.market == m {
				recorded++
			}
		}
		if recorded != injected {
			ch.addf("%s: %d skips injected, the sim recorded %d", m, injected, recorded)
		}
	}
	for _, s := range skips {
		sent, _ := c.sentIDs(fileKey{market: s.market, kind: md.Diff, symbol: s.symbol})
		after := int64(-1)
		inside := 0
		for id := range sent {
			if id < s.from && id > after {
				after = id
			}
			if id >= s.from && id <= s.to {
				inside++
			}
		}
		if inside > 0 {
			ch.addf("sim: %d diff ids of the skipped range %s %s [%d, %d] were sent anyway", inside, s.market, s.symbol, s.from, s.to)
		}
		wants = append(wants, &want{skip: s, after: after})
	}
	r.gaps.injected = len(wants)
	type tally struct{ n, complete, empty int }
	unexpected := map[string]*tally{} // "<kind> <detected_by>"
	var details, others []string
	for _, f := range files {
		m := mans[manifestName(f.rel)]
		if m == nil {
			continue
		}
		r.covered += len(m.Covered)
		for _, rs := range m.Resets {
			ch.addf("%s lists a sequence reset %d -> %d; the sim never resets its ids", f.rel, rs.PreviousLastID, rs.NewID)
		}
		for _, g := range m.Gaps {
			r.gaps.recorded++
			ok := false
			for _, w := range wants {
				if f.key.kind == md.Diff && w.market == f.key.market && w.symbol == f.key.symbol && w.after == g.AfterID && w.to == g.ResumePrevID {
					w.matched = append(w.matched, f.rel)
					ok = true
					break
				}
			}
			if ok {
				continue
			}
			var reps []string
			for _, rp := range g.Reports {
				reps = append(reps, fmt.Sprintf("%s %s (%d, %d]", rp.Source, rp.Reason, rp.AfterID, rp.ResumePrevID))
			}
			ev, sentN, found := c.rangeEvidence(f.key, g.AfterID, g.ResumePrevID, byKey)
			tk := f.key.kind.String() + " streams, detected by " + g.DetectedBy
			if unexpected[tk] == nil {
				unexpected[tk] = &tally{}
			}
			unexpected[tk].n++
			switch {
			case sentN == 0:
				unexpected[tk].empty++
			case found == sentN:
				unexpected[tk].complete++
			}
			d := &details
			if f.key.kind != md.Diff {
				d = &others // diff gaps (the chain's verdict) first
			}
			*d = append(*d, fmt.Sprintf("%s lists a gap that was not injected: (%d, %d], detected by %s, reports [%s]%s",
				f.rel, g.AfterID, g.ResumePrevID, g.DetectedBy, strings.Join(reps, "; "), ev))
		}
	}
	for _, tk := range sortedKeys(unexpected) {
		u := unexpected[tk]
		ch.addf("%d gaps in manifests of %s were not injected: %d with every event the sim sent in the range in the files (covered, yet reported as missing), %d with no event sent to any client in the range, %d with events lost",
			u.n, tk, u.complete, u.empty, u.n-u.complete-u.empty)
	}
	ch.problems = append(append(ch.problems, details...), others...)
	for _, w := range wants {
		switch len(w.matched) {
		case 1:
			r.gaps.matched++
		case 0:
			ch.addf("skip %s %s: events (%d, %d] (sim: U %d .. u %d, %d event(s)) are in no manifest", w.market, w.symbol, w.after, w.to, w.from, w.to, w.events)
		default:
			ch.addf("skip %s %s (%d, %d] is listed %d times: %v", w.market, w.symbol, w.after, w.to, len(w.matched), w.matched)
		}
	}
	return ch
}

// rangeEvidence says whether the sim sent events in (after, resume] of a
// stream and whether the files hold all of them: a gap whose events were
// all sent and are all present is a false report. (Events sent to no
// client at all, e.g. while every replica was disconnected, are not in
// the send log; only the diff chain shows those.)
func (c *cluster) rangeEvidence(k fileKey, after, resume int64, byKey map[fileKey][]int64) (msg string, sentN, found int) {
	sent, ok := c.sentIDs(k)
	if !ok {
		return "", 0, 0
	}
	have := map[int64]bool{}
	for _, id := range byKey[k] {
		have[id] = true
	}
	for id := range sent {
		if id > after && id <= resume {
			sentN++
			if have[id] {
				found++
			}
		}
	}
	switch {
	case sentN == 0:
		return "; the sim sent no event of that range to any client", 0, 0
	case found == sentN:
		return fmt.Sprintf("; all %d events the sim sent in that range are in the files: nothing is missing", sentN), sentN, found
	default:
		return fmt.Sprintf("; %d of %d events the sim sent in that range are in the files", found, sentN), sentN, found
	}
}

func mibStr(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
