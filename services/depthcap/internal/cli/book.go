package cli

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
)

func init() {
	register(command{name: "book", summary: "the order book as it stood at an instant, rebuilt from the files: depthcap book --market spot --symbol BTCUSDT --at 2026-11-21T12:00:00.250Z", run: runBook})
}

// parseInstant reads --at: RFC 3339 with an optional fraction; a time
// without a zone is UTC.
func parseInstant(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("--at %q: want an RFC 3339 time such as 2026-11-21T12:00:00.250Z", s)
}

func runBook(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("book", flag.ContinueOnError)
	market := fs.String("market", "", "spot or futures")
	symbol := fs.String("symbol", "", "symbol, e.g. BTCUSDT")
	atFlag := fs.String("at", "", "the instant (RFC 3339, UTC unless a zone is given): rows received at or before it count")
	depth := fs.Int("depth", 20, "levels (or buckets with --tick) per side; 0 for all")
	tick := fs.Float64("tick", 0, "aggregate into price buckets of this size (e.g. 10); 0 for none")
	asJSON := fs.Bool("json", false, "print the book as JSON")
	sf := addStoreFlags(fs)
	fs.Usage = func() {
		_, _ = fmt.Fprintln(stderr, "usage: depthcap book --market spot|futures --symbol SYMBOL --at TIME [--depth 20] [--tick 10] [--data DIR | --s3] [--json]")
		_, _ = fmt.Fprintln(stderr, "exit status: 0 book printed, 1 no book at that instant (no snapshot before it, or a gap), 2 usage error")
		fs.PrintDefaults()
	}
	if ok, code := parseFlags(fs, args, stderr); !ok {
		return code
	}
	m, sym, err := marketSymbol(*market, *symbol)
	var at time.Time
	if err == nil {
		at, err = parseInstant(*atFlag)
	}
	switch {
	case err != nil:
	case *depth < 0:
		err = fmt.Errorf("--depth %d: want 0 (all) or more", *depth)
	case *tick < 0 || math.IsNaN(*tick) || math.IsInf(*tick, 0):
		err = fmt.Errorf("--tick %v: want a positive bucket size, or 0 for none", *tick)
	case fs.NArg() > 0:
		err = fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap book: %v\n", err)
		fs.Usage()
		return ExitUsage
	}
	st, cleanup, err := sf.open()
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap book: %v\n", err)
		return ExitUsage
	}
	defer cleanup()
	bs, err := quality.BookAt(ctx, st, quality.BookOptions{Market: m, Symbol: sym, At: at, Depth: *depth, Tick: *tick})
	if err != nil {
		_, _ = fmt.Fprintf(stderr, "depthcap book: %v\n", err)
		if errors.Is(err, quality.ErrNoBook) {
			_, _ = fmt.Fprintln(stderr, "depthcap book: 'depthcap verify' lists the day's gaps and restores")
		}
		return ExitFound
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(bs); err != nil {
			_, _ = fmt.Fprintf(stderr, "depthcap book: %v\n", err)
			return ExitFound
		}
		return ExitOK
	}
	writeBook(stdout, bs)
	return ExitOK
}

func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// sum prints a bucket's summed quantity without the noise of float
// addition (12 significant digits); --json has the exact value.
func sum(v float64) string {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 12, 64), 64)
	return num(r)
}

func writeBook(w io.Writer, b *quality.BookState) {
	_, _ = fmt.Fprintf(w, "%s %s at %s: update id %d (%s)\n", b.Market, b.Symbol, b.At.Format(tsFormat), b.UpdateID, b.State)
	_, _ = fmt.Fprintf(w, "base snapshot %d received %s; %d diffs applied; last diff received %s\n",
		b.Snapshot, b.SnapshotTime.Format(tsFormat), b.DiffsApplied, fmtTime(b.LastEventTime))
	if b.Tick != 0 {
		_, _ = fmt.Fprintf(w, "aggregated into buckets of %s (bids down, asks up)\n", num(b.Tick))
	}
	if b.CompleteBidsFrom != nil || b.CompleteAsksTo != nil {
		lo, hi := "the lowest bid", "the highest ask"
		if b.CompleteBidsFrom != nil {
			lo = num(*b.CompleteBidsFrom)
		}
		if b.CompleteAsksTo != nil {
			hi = num(*b.CompleteAsksTo)
		}
		_, _ = fmt.Fprintf(w, "complete from bid %s to ask %s (the base snapshot's depth); beyond, only levels the diffs touched\n", lo, hi)
	}
	if b.Crossed {
		_, _ = fmt.Fprintln(w, "WARNING: the book is crossed")
	}
	qty := num
	if b.Tick != 0 {
		qty = sum
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	_, _ = fmt.Fprintln(tw, "#\tBID QTY\tBID\t\tASK\tASK QTY\t")
	for i := range max(len(b.Bids), len(b.Asks)) {
		bq, bp, ap, aq := "", "", "", ""
		if i < len(b.Bids) {
			bp, bq = num(b.Bids[i].Price), qty(b.Bids[i].Qty)
		}
		if i < len(b.Asks) {
			ap, aq = num(b.Asks[i].Price), qty(b.Asks[i].Qty)
		}
		_, _ = fmt.Fprintf(tw, "%d\t%s\t%s\t|\t%s\t%s\t\n", i+1, bq, bp, ap, aq)
	}
	_ = tw.Flush()
}
