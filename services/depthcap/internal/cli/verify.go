package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/svc"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
)

func init() {
	register(command{name: "verify", summary: "check a symbol-day's files: gaps, snapshot and partial matches, crossed books: depthcap verify --market spot --symbol BTCUSDT --date 2026-11-21", run: runVerify})
}

// storeFlags are the flags that choose where files are read from.
type storeFlags struct {
	data *string
	s3   *bool
}

func addStoreFlags(fs *flag.FlagSet) storeFlags {
	return storeFlags{
		data: fs.String("data", envOr("DATA_DIR", "./data"), "DATA_DIR to read the files from"),
		s3:   fs.Bool("s3", false, "read the files from the bucket (S3_ENDPOINT, S3_BUCKET, S3_PREFIX, S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY, S3_REGION) instead of --data"),
	}
}

// open returns the store and its cleanup; a configuration error is a
// usage error.
func (f storeFlags) open() (dataset.Store, func(), error) {
	if !*f.s3 {
		return dataset.Local(*f.data), func() {}, nil
	}
	var cfg dataset.S3Config
	if err := svc.Load(&cfg); err != nil {
		return nil, nil, err
	}
	st, err := dataset.NewS3(cfg, "")
	if err != nil {
		return nil, nil, err
	}
	return st, func() { _ = st.Close() }, nil
}

// marketSymbol parses --market and --symbol.
func marketSymbol(market, symbol string) (md.Market, string, error) {
	m, err := md.ParseMarket(market)
	if err != nil {
		return 0, "", fmt.Errorf("--market %q: want spot or futures", market)
	}
	symbol = strings.ToUpper(symbol)
	if !md.ValidSymbol(symbol) {
		return 0, "", fmt.Errorf("--symbol %q: want a symbol such as BTCUSDT", symbol)
	}
	return m, symbol, nil
}

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	market := fs.String("market", "", "spot or futures")
	symbol := fs.String("symbol", "", "symbol, e.g. BTCUSDT")
	date := fs.String("date", "", "UTC day, YYYY-MM-DD")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	sf := addStoreFlags(fs)
	fs.Usage = func() {
		_, _ = fmt.Fprintln(stderr, "usage: depthcap verify --market spot|futures --symbol SYMBOL --date YYYY-MM-DD [--data DIR | --s3] [--json]")
		_, _ = fmt.Fprintln(stderr, "exit status: 0 clean, 1 problems found (gaps, mismatches, crossed books, no data), 2 usage error")
		fs.PrintDefaults()
	}
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	m, sym, err := marketSymbol(*market, *symbol)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	day, derr := time.Parse(time.DateOnly, *date)
	if err == nil && derr != nil {
		err = fmt.Errorf("--date %q: want YYYY-MM-DD", *date)
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap verify: %v\n", err)
		fs.Usage()
		return ExitUsage
	}
	st, cleanup, err := sf.open()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap verify: %v\n", err)
		return ExitUsage
	}
	defer cleanup()
	log, err := newLogger(stderr)
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap verify: %v\n", err)
		return ExitUsage
	}
	defer func() { _ = log.Sync() }()
	rep, err := quality.Verify(ctx, st, quality.Options{Market: m, Symbol: sym, Date: day, Log: log})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap verify: %v\n", err)
		if errors.Is(err, quality.ErrNoData) {
			_, _ = fmt.Fprintf(stderr, "depthcap verify: looked under %s for %s/<kind_dir>/%s/%s*.parquet\n", st, m, sym, day.Format(time.DateOnly))
		}
		return ExitFound
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			_, _ = fmt.Fprintf(stderr, "depthcap verify: %v\n", err)
			return ExitFound
		}
	} else {
		writeReport(stdout, rep)
	}
	if !rep.Clean() {
		return ExitFound
	}
	return ExitOK
}

const tsFormat = "2006-01-02T15:04:05.000000Z"

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(tsFormat)
}

func fmtMs(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.1fms", *v)
}

func fmtSkipped(m map[string]int64) string {
	if len(m) == 0 {
		return "0 skipped"
	}
	keys := make([]string, 0, len(m))
	var n int64
	for k, v := range m {
		keys = append(keys, fmt.Sprintf("%d %s", v, k))
		n += v
	}
	sort.Strings(keys)
	return fmt.Sprintf("%d skipped (%s)", n, strings.Join(keys, ", "))
}

// writeReport prints the report as readable tables.
func writeReport(w io.Writer, r *quality.Report) {
	_, _ = fmt.Fprintf(w, "depthcap verify %s %s %s  (%s)\n", r.Market, r.Symbol, r.Date, r.Source)
	if r.Clean() {
		_, _ = fmt.Fprintln(w, "verdict: CLEAN")
	} else {
		_, _ = fmt.Fprintf(w, "verdict: PROBLEMS: %s\n", strings.Join(r.Problems, "; "))
	}
	_, _ = fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "FILE\tKIND\tROWS\tSTREAM SEQ\tMANIFEST")
	for _, f := range r.Files {
		man := f.Manifest
		if man == "ok" {
			man = fmt.Sprintf("ok, %d gaps", f.ManifestGaps)
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%d-%d\t%s\n", f.Path, f.Kind, f.Rows, f.FirstStreamSeq, f.LastStreamSeq, man)
	}
	_ = tw.Flush()
	writeWriterQuality(w, r.Files)
	_, _ = fmt.Fprintf(w, "merge: %s\n\n", r.Merge)
	_, _ = fmt.Fprintf(w, "events: %d diff, %d partial, %d snapshot, received %s .. %s\n", r.Events.Diff, r.Events.Partial, r.Events.Snapshot,
		fmtTime(r.Events.FirstTime), fmtTime(r.Events.LastTime))
	start := "not live at the start of the day"
	if r.Book.LiveAtStart {
		start = "live at the start of the day"
	}
	_, _ = fmt.Fprintf(w, "book: %s (warm-up: %s); first live %s; %d of %d diff rows applied to a live book (%.2f%%); at the end %s at %d\n\n",
		start, r.Book.WarmUp, fmtTime(r.Book.FirstLive), r.Book.DiffRowsLive, r.Events.Diff, 100*r.Book.LiveShare, r.Book.State, r.Book.LastID)

	_, _ = fmt.Fprintf(w, "gaps: %d\n", r.GapCount)
	if len(r.Gaps) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "  KIND\tAFTER ID\tRESUME PREV ID\tAFTER TIME\tRESUME TIME\tDURATION\tMISSING IDS\tSOURCE\tREASONS\tRESTORED\tTO RESTORE\tTO VERIFIED")
		for _, g := range r.Gaps {
			missing := "-"
			if g.MissingIDs != nil {
				missing = fmt.Sprint(*g.MissingIDs)
			}
			_, _ = fmt.Fprintf(tw, "  %s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Kind, g.AfterID, g.ResumePrevID,
				fmtTime(g.AfterTime), fmtTime(g.ResumeTime), fmtMs(g.DurationMs), missing, g.Source, strings.Join(g.Reasons, ","),
				fmtTime(g.RestoredTime), fmtMs(g.TimeToRestoreMs), fmtMs(g.TimeToVerifiedMs))
		}
		_ = tw.Flush()
	}
	s := r.Snapshots
	_, _ = fmt.Fprintf(w, "\nsnapshots: %d rows; %d loaded as the book's base; %d compared with the rebuilt book: %d match, %d mismatch; %s\n",
		s.Rows, s.Loaded, s.Compared, s.Matched, s.Mismatched, fmtSkipped(s.Skipped))
	// Every check when there are few, else the mismatches (--json has all).
	checks := s.Checks
	if len(checks) > 20 {
		checks = nil
		for _, c := range s.Checks {
			if !c.Match {
				checks = append(checks, c)
			}
		}
	}
	if len(checks) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		_, _ = fmt.Fprintln(tw, "  RECEIVED\tLAST UPDATE ID\tBOOK AT\tSTRADDLE\tBASE\tBID LEVELS\tASK LEVELS\tRESULT")
		for _, c := range checks {
			res := "match"
			if !c.Match {
				res = fmt.Sprintf("MISMATCH: %d levels differ, first %s", c.Diffs, c.FirstDiff)
			}
			_, _ = fmt.Fprintf(tw, "  %s\t%d\t%d\t%v\t%d\t%d\t%d\t%s\n", c.Time.Format(tsFormat), c.LastUpdateID, c.BookID, c.Straddle,
				c.BaseID, c.BidLevels, c.AskLevels, res)
		}
		_ = tw.Flush()
	}
	p := r.Partials
	_, _ = fmt.Fprintf(w, "\npartials: %d rows; %d compared (%d inside an event): %d match, %d mismatch; %s\n",
		p.Rows, p.Compared, p.Straddled, p.Matched, p.Mismatched, fmtSkipped(p.Skipped))
	for _, c := range p.Mismatches {
		_, _ = fmt.Fprintf(w, "  MISMATCH %s id %d (book at %d): %d levels differ, first %s\n", c.Time.Format(tsFormat), c.ID, c.BookID, c.Diffs, c.FirstDiff)
	}
	_, _ = fmt.Fprintf(w, "\ncrossed: %d\n", len(r.Crossed))
	for _, c := range r.Crossed {
		_, _ = fmt.Fprintf(w, "  %s .. %s ids %d..%d, %d events: bid %v x %v >= ask %v x %v\n", c.Start.Format(tsFormat), c.End.Format(tsFormat),
			c.StartID, c.EndID, c.Events, c.Bid.Price, c.Bid.Qty, c.Ask.Price, c.Ask.Qty)
	}
	if len(r.Desyncs) > 0 {
		_, _ = fmt.Fprintf(w, "\ndesyncs: %d\n", len(r.Desyncs))
		for _, d := range r.Desyncs {
			_, _ = fmt.Fprintf(w, "  %s at id %d: %s; restored %s\n", d.Time.Format(tsFormat), d.ID, d.Cause, fmtTime(d.RestoredTime))
		}
	}
	a := r.Anomalies
	_, _ = fmt.Fprintf(w, "\nanomalies: %d duplicate rows, %d overlapping rows, %d late fills, %d id resets, %d invalid rows; %d gap reports covered by another replica\n",
		a.DuplicateRows, a.OverlapRows, a.LateFills, a.Resets, a.InvalidRows, a.Covered)
	for _, s := range a.Invalid {
		_, _ = fmt.Fprintf(w, "  %s\n", s)
	}
}

// writeWriterQuality prints the quality summaries the writer put in the
// manifests (what the writer knew at seal, next to verify's own findings).
func writeWriterQuality(w io.Writer, files []quality.FileSummary) {
	n := 0
	for _, f := range files {
		if f.WriterQuality != nil {
			n++
		}
	}
	if n == 0 {
		_, _ = fmt.Fprintln(w, "writer quality: none in the manifests (written before manifest version 2)")
		return
	}
	_, _ = fmt.Fprintln(w, "writer quality (manifests, at seal):")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "  FILE\tROWS\tRECEIVED\tGAPS\tGAP TIME\tGAP SHARE\tCOVERED\tRESETS\tSNAPSHOT BRIDGE")
	for _, f := range files {
		q := f.WriterQuality
		if q == nil {
			continue
		}
		bridge := "-"
		if b := q.Bridge; b != nil {
			verdict := "not restorable"
			if b.Restorable {
				verdict = "restorable"
			}
			first := b.FirstBridgeTime
			if first == "" {
				first = "-"
			}
			bridge = fmt.Sprintf("%s: %d/%d snapshots bridged, first %s, %d/%d gaps restored", verdict, b.Bridged, b.Snapshots, first, b.GapsRestored, q.GapCount)
		}
		gaps := fmt.Sprint(q.GapCount)
		if q.UntimedGaps > 0 {
			gaps += fmt.Sprintf(" (%d untimed)", q.UntimedGaps)
		}
		_, _ = fmt.Fprintf(tw, "  %s\t%d\t%s .. %s\t%s\t%dms\t%.4f%%\t%d\t%d\t%s\n", f.Path, q.Rows, q.FirstReceivedTime, q.LastReceivedTime,
			gaps, q.GapMs, 100*q.GapShare, q.CoveredReports, q.Resets, bridge)
	}
	_ = tw.Flush()
}
