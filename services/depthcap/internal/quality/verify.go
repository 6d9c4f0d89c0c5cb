// Package quality proves recorded data correct, symbol by symbol and day
// by day: it rebuilds the order book from the files (pkg/book's Syncer
// holds the Binance sync rules), follows the diff chain, compares every
// REST snapshot and partial depth frame with the book at its update id, and
// reports gaps, mismatches and crossed books (Verify); and it rebuilds the
// book as it stood at an instant (BookAt). docs/QUALITY.md states the
// rules.
package quality

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/depthcap/depthcap/pkg/book"
	"github.com/depthcap/depthcap/pkg/manifest"
	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
)

// ErrNoData reports a symbol-day without any file.
var ErrNoData = errors.New("no data")

// Options select the symbol-day to verify.
type Options struct {
	Market md.Market
	Symbol string
	Date   time.Time // any time of the UTC day
	Log    *zap.Logger
}

// daySets are the sets of one day, one per kind (nil when absent).
type daySets struct {
	diff, partial, snapshot *dataset.Set
}

func findDay(ctx context.Context, st dataset.Store, m md.Market, symbol string, day time.Time) (daySets, error) {
	var d daySets
	for _, k := range md.DataKinds {
		s, err := dataset.Find(ctx, st, m, k, symbol, day)
		if errors.Is(err, dataset.ErrNoFiles) {
			continue
		}
		if err != nil {
			return d, err
		}
		switch k {
		case md.Diff:
			d.diff = s
		case md.Partial:
			d.partial = s
		case md.Snapshot:
			d.snapshot = s
		}
	}
	return d, nil
}

// lastSnapshot returns the received time and lastUpdateId of the last
// snapshot row of set received at or before maxUs (0: any).
func lastSnapshot(ctx context.Context, st dataset.Store, set *dataset.Set, maxUs int64) (recvUs, id int64, err error) {
	r, err := dataset.Open(ctx, st, dataset.Input{Set: set, Filter: dataset.Filter{MaxReceivedUs: maxUs}})
	if err != nil {
		return 0, 0, err
	}
	defer r.Close()
	for {
		row, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			return recvUs, id, nil
		}
		if err != nil {
			return 0, 0, err
		}
		if row.ReceivedUs >= recvUs {
			recvUs, id = row.ReceivedUs, row.LastUpdateID
		}
	}
}

// warmUp returns the inputs that bring the book into a day: the previous
// day's last snapshot and the diffs after it.
func warmUp(ctx context.Context, st dataset.Store, m md.Market, symbol string, day time.Time) ([]dataset.Input, string, error) {
	prev, err := findDay(ctx, st, m, symbol, day.AddDate(0, 0, -1))
	if err != nil || prev.snapshot == nil {
		return nil, "none", err
	}
	recvUs, id, err := lastSnapshot(ctx, st, prev.snapshot, 0)
	if err != nil || recvUs == 0 {
		return nil, "none", err
	}
	ins := []dataset.Input{{Set: prev.snapshot, Filter: dataset.Filter{MinReceivedUs: recvUs}}}
	if prev.diff != nil {
		ins = append([]dataset.Input{{Set: prev.diff, Filter: dataset.Filter{MinID: id - 1}}}, ins...)
	}
	return ins, fmt.Sprintf("snapshot %d of %s and the diffs after it", id, usTime(recvUs).Format(time.RFC3339Nano)), nil
}

// Verify checks one symbol-day (see the package documentation and
// docs/QUALITY.md). It returns an error wrapping ErrNoData when the day has
// no file, and other errors for files it cannot read; what it finds in
// readable files is in the Report.
func Verify(ctx context.Context, st dataset.Store, opts Options) (*Report, error) {
	day := dataset.Day(opts.Date)
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	sets, err := findDay(ctx, st, opts.Market, opts.Symbol, day)
	if err != nil {
		return nil, err
	}
	if sets.diff == nil && sets.partial == nil && sets.snapshot == nil {
		return nil, fmt.Errorf("verify %s %s %s: %w", opts.Market, opts.Symbol, day.Format(time.DateOnly), ErrNoData)
	}
	warm, warmDesc, err := warmUp(ctx, st, opts.Market, opts.Symbol, day)
	if err != nil {
		return nil, err
	}
	ins := append(warm, dataset.Input{Set: sets.diff}, dataset.Input{Set: sets.partial}, dataset.Input{Set: sets.snapshot})
	r, err := dataset.Open(ctx, st, ins...)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	e, err := newEngine(opts.Market, true, day.UnixMicro())
	if err != nil {
		return nil, err
	}
	e.resets = resetIDs(sets.diff)
	var firstUs, lastUs int64
	liveAtStart, seenDay := false, false
	for {
		row, err := r.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if e.inDay(row.ReceivedUs) {
			if !seenDay {
				seenDay, liveAtStart = true, e.sync.State() == book.Live
			}
			if firstUs == 0 || row.ReceivedUs < firstUs {
				firstUs = row.ReceivedUs
			}
			lastUs = max(lastUs, row.ReceivedUs)
		}
		e.row(row)
	}
	e.finish()
	rep := &Report{Market: opts.Market.String(), Symbol: opts.Symbol, Date: day.Format(time.DateOnly), Source: st.String(),
		Merge: mergeRule(sets)}
	rep.Events = Events{Diff: e.diffRows, Partial: e.partials.rows, Snapshot: e.snaps.rows,
		FirstTime: usTimePtr(firstUs), LastTime: usTimePtr(lastUs)}
	rep.Files = fileSummaries(sets)
	rep.Book = BookSummary{WarmUp: warmDesc, LiveAtStart: liveAtStart, FirstLive: usTimePtr(e.firstLive),
		DiffRowsLive: e.liveRows, LastID: e.sync.LastUpdateID(), State: e.sync.State().String()}
	if liveAtStart && rep.Book.FirstLive == nil {
		t := day
		rep.Book.FirstLive = &t
	}
	if e.diffRows > 0 {
		rep.Book.LiveShare = float64(e.liveRows) / float64(e.diffRows)
	}
	rep.Gaps, rep.GapCount = e.reportGaps(opts.Market, sets, func(i int) string {
		_, f := r.File(i)
		return f.Rel
	})
	rep.Snapshots = Snapshots{Rows: e.snaps.rows, Loaded: e.snaps.loaded, Compared: e.snaps.compared,
		Matched: e.snaps.matched, Mismatched: e.snaps.mismatched, Skipped: e.snaps.skipped,
		Checks: nonNil(e.snaps.results), Restores: nonNil(e.snaps.restores)}
	rep.Partials = Partials{Rows: e.partials.rows, Compared: e.partials.compared, Straddled: e.partials.straddled,
		Matched: e.partials.matched, Mismatched: e.partials.mismatched, Skipped: e.partials.skipped,
		Mismatches: nonNil(e.partials.mismatches)}
	rep.Crossed = []Crossing{}
	for _, c := range e.crossings {
		if c.report {
			rep.Crossed = append(rep.Crossed, Crossing{Start: usTime(c.startUs), End: usTime(c.endUs), StartID: c.startID,
				EndID: c.endID, Events: c.events, Bid: levelOf(c.bid), Ask: levelOf(c.ask)})
		}
	}
	rep.Desyncs = []Desync{}
	for _, d := range e.desyncs {
		if d.report {
			rep.Desyncs = append(rep.Desyncs, Desync{Time: usTime(d.atUs), ID: d.id, Cause: d.cause, RestoredTime: usTimePtr(d.restoredUs)})
		}
	}
	rep.Anomalies = Anomalies{DuplicateRows: e.dups, OverlapRows: e.overlaps, LateFills: e.lateFills, Resets: e.resetsN,
		InvalidRows: e.invalidN, Invalid: e.invalid, Covered: coveredReports(sets)}
	rep.Problems = problems(rep, e)
	rep.Verdict = "clean"
	if len(rep.Problems) > 0 {
		rep.Verdict = "problems"
	}
	log.Debug("verified", zap.String("market", rep.Market), zap.String("symbol", rep.Symbol), zap.String("date", rep.Date),
		zap.String("verdict", rep.Verdict), zap.Int64("diff_rows", e.diffRows))
	return rep, nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func (d daySets) all() []*dataset.Set {
	var out []*dataset.Set
	for _, s := range []*dataset.Set{d.diff, d.partial, d.snapshot} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

func mergeRule(d daySets) string {
	var parts []string
	for _, s := range d.all() {
		how := "stream order (one file)"
		if len(s.Files) > 1 {
			how = "received_time merge of files ranked by stream sequence"
			if !s.StreamOrdered {
				how = "received_time merge of files ranked by period and supplement (stream ranges absent or overlapping)"
			}
		}
		parts = append(parts, s.Kind.String()+": "+how)
	}
	return strings.Join(parts, "; ")
}

func fileSummaries(d daySets) []FileSummary {
	out := []FileSummary{}
	for _, s := range d.all() {
		for _, f := range s.Files {
			fs := FileSummary{Path: f.Rel, Kind: s.Kind.String(), Supplement: f.Supplement, Rows: f.Rows,
				FirstStreamSeq: f.FirstSeq, LastStreamSeq: f.LastSeq, Manifest: "ok"}
			if f.Manifest != nil {
				fs.ManifestGaps = len(f.Manifest.Gaps)
				fs.WriterQuality = f.Manifest.Quality
				if f.Manifest.Rows != f.Rows {
					// Rows added to or removed from the file after it was
					// sealed (or the wrong manifest): a problem.
					fs.Manifest = fmt.Sprintf("it says %d rows, the file holds %d", f.Manifest.Rows, f.Rows)
				}
			} else {
				fs.Manifest = f.ManifestErr
			}
			out = append(out, fs)
		}
	}
	return out
}

func resetIDs(s *dataset.Set) map[int64]bool {
	ids := map[int64]bool{}
	if s == nil {
		return ids
	}
	for _, f := range s.Files {
		if f.Manifest != nil {
			for _, r := range f.Manifest.Resets {
				ids[r.NewID] = true
			}
		}
	}
	return ids
}

func coveredReports(d daySets) int {
	n := 0
	for _, s := range d.all() {
		for _, f := range s.Files {
			if f.Manifest != nil {
				n += len(f.Manifest.Covered)
			}
		}
	}
	return n
}

type manifestGap struct {
	kind string
	file string
	g    manifest.GapEntry
	used bool
}

func manifestGaps(s *dataset.Set) []*manifestGap {
	var out []*manifestGap
	if s == nil {
		return out
	}
	for _, f := range s.Files {
		if f.Manifest == nil {
			continue
		}
		for _, g := range f.Manifest.Gaps {
			out = append(out, &manifestGap{kind: s.Kind.String(), file: f.Rel, g: g})
		}
	}
	return out
}

func reasons(g manifest.GapEntry) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, r := range g.Reports {
		if r.Reason != "" && !seen[r.Reason] {
			seen[r.Reason] = true
			out = append(out, r.Reason)
		}
	}
	if len(out) == 0 {
		out = append(out, "detected by "+g.DetectedBy+" (no collector report)")
	}
	return out
}

// reportGaps joins the chain's gaps with the manifests' (see
// docs/QUALITY.md, "Gaps").
func (e *engine) reportGaps(m md.Market, d daySets, fileName func(int) string) ([]Gap, int64) {
	out := []Gap{}
	total := e.gapsTotal
	mg := manifestGaps(d.diff)
	for _, g := range e.gaps {
		if !g.report {
			continue
		}
		gap := Gap{Kind: "diff", AfterID: g.after, ResumePrevID: g.resume, AfterTime: usTimePtr(g.afterUs),
			ResumeTime: usTimePtr(g.resumeUs), Source: "chain", Reasons: []string{"not in the manifests"},
			FilledLate: g.lateFills, RestoredBySnapshot: g.restoredBy, ResumeRow: &RowRef{File: fileName(g.resumeFile), Row: g.resumeRow}}
		if g.afterUs != 0 {
			gap.DurationMs = msPtr(time.Duration(g.resumeUs-g.afterUs) * time.Microsecond)
		}
		if m == md.Spot {
			n := g.resume - g.after
			gap.MissingIDs = &n
		}
		for _, x := range mg {
			if !x.used && x.g.AfterID == g.after && x.g.ResumePrevID == g.resume {
				x.used = true
				gap.Source, gap.Reasons, gap.Manifest = "chain+manifest", reasons(x.g), x.file
				break
			}
		}
		if g.restoredUs != 0 {
			gap.RestoredTime = usTimePtr(g.restoredUs)
			gap.TimeToRestoreMs = msPtr(time.Duration(g.restoredUs-g.resumeUs) * time.Microsecond)
		}
		if g.verifyUs != 0 {
			gap.VerifiedTime = usTimePtr(g.verifyUs)
			gap.TimeToVerifiedMs = msPtr(time.Duration(g.verifyUs-g.resumeUs) * time.Microsecond)
		}
		out = append(out, gap)
	}
	// Manifest gaps the chain did not see: the rows are continuous there
	// (filled by a supplement or a late replica) when the chain covered
	// the range; a gap before the first row the chain saw is real.
	for _, x := range mg {
		if x.used || e.chainCovered(x.g.AfterID) {
			continue
		}
		total++
		if len(out) < maxListed {
			out = append(out, manifestOnly(m, x))
		}
	}
	for _, s := range []*dataset.Set{d.partial, d.snapshot} {
		for _, x := range manifestGaps(s) {
			total++
			if len(out) < maxListed {
				out = append(out, manifestOnly(m, x))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].ResumeTime, out[j].ResumeTime
		if a == nil || b == nil {
			return a != nil
		}
		return a.Before(*b)
	})
	return out, total
}

func manifestOnly(m md.Market, x *manifestGap) Gap {
	g := Gap{Kind: x.kind, AfterID: x.g.AfterID, ResumePrevID: x.g.ResumePrevID, Source: "manifest",
		Reasons: reasons(x.g), Manifest: x.file}
	at, rt := manifest.ParseTime(x.g.AfterReceivedTime), manifest.ParseTime(x.g.ResumeReceivedTime)
	if !at.IsZero() {
		g.AfterTime = &at
	}
	if !rt.IsZero() {
		g.ResumeTime = &rt
	}
	if !at.IsZero() && !rt.IsZero() {
		g.DurationMs = msPtr(rt.Sub(at))
	}
	if m == md.Spot && x.kind == md.Diff.String() && x.g.ResumePrevID > x.g.AfterID {
		n := x.g.ResumePrevID - x.g.AfterID
		g.MissingIDs = &n
	}
	return g
}

// chainCovered reports whether the chain saw the events around id: it
// started at or before it.
func (e *engine) chainCovered(id int64) bool {
	return e.started && e.chainStart <= id
}

// problems lists what makes the day not clean.
func problems(r *Report, e *engine) []string {
	var p []string
	add := func(n int64, what string) {
		if n > 0 {
			p = append(p, fmt.Sprintf("%d %s", n, what))
		}
	}
	add(r.GapCount, "gaps")
	add(r.Snapshots.Mismatched, "snapshot mismatches")
	add(r.Partials.Mismatched, "partial mismatches")
	add(e.crossN, "events leaving the book crossed")
	add(int64(len(r.Desyncs)), "losses of the live book without a gap (see desyncs)")
	add(r.Anomalies.DuplicateRows, "duplicate diff rows")
	add(r.Anomalies.OverlapRows, "overlapping diff rows")
	add(r.Anomalies.InvalidRows, "invalid rows")
	add(r.Anomalies.Resets, "exchange id resets")
	for _, f := range r.Files {
		if f.Manifest != "ok" {
			p = append(p, fmt.Sprintf("manifest of %s: %s", f.Path, f.Manifest))
		}
	}
	if r.Events.Diff > 0 && r.Book.FirstLive == nil {
		p = append(p, "the book was never live: no snapshot bridged the diffs")
	}
	if p == nil {
		p = []string{}
	}
	return p
}
