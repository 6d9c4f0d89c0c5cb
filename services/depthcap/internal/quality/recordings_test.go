package quality_test

import (
	"context"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/pkg/recording"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

// TestVerifyRecordings imports every real recording with the real importer
// and writer and verifies every symbol-day. It proves that on real Binance
// data verify reads every row of every kind (counts equal the recordings'
// depth frames per receive day), rebuilds the book from the snapshot and
// every later diff without a gap, a crossed book or a lost book, compares
// every snapshot after the first that bridged, and carries the book across
// UTC midnight (ETHUSDT 2024-08-09 has no snapshot of its own).
func TestVerifyRecordings(t *testing.T) {
	dir := recordingsData(t)
	// Depth frames per symbol-day and kind, straight from the recordings.
	type key struct {
		sd   symbolDay
		kind md.Kind
	}
	want := map[key]int64{}
	for _, f := range qualitytest.Recordings(t) {
		m, err := recording.MarketFromFileName(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range qualitytest.ReadLines(t, f) {
			fr, ok := qualitytest.Decode(t, l.JSON)
			if !ok {
				continue
			}
			day := time.Unix(0, l.RecvNs).UTC().Format(time.DateOnly)
			want[key{symbolDay{m, fr.Symbol, day}, fr.Kind}]++
		}
	}
	days := symbolDays(t, dir)
	if len(days) != 19 {
		t.Fatalf("got %d symbol-days with diff files, want 19 (18 recorded symbol-markets, spot ETHUSDT on two days)", len(days))
	}
	ctx := context.Background()
	for _, sd := range days {
		t.Run(sd.market.String()+"/"+sd.symbol+"/"+sd.day, func(t *testing.T) {
			date, _ := time.Parse(time.DateOnly, sd.day)
			rep, err := quality.Verify(ctx, dataset.Local(dir), quality.Options{Market: sd.market, Symbol: sd.symbol, Date: date})
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Clean() {
				t.Fatalf("problems: %v\ngaps %+v\ncrossed %+v\ndesyncs %+v", rep.Problems, rep.Gaps, rep.Crossed, rep.Desyncs)
			}
			for kind, got := range map[md.Kind]int64{md.Diff: rep.Events.Diff, md.Partial: rep.Events.Partial, md.Snapshot: rep.Events.Snapshot} {
				if w := want[key{sd, kind}]; got != w {
					t.Errorf("%s rows: got %d, the recording has %d", kind, got, w)
				}
			}
			s := rep.Snapshots
			switch {
			case len(rep.Gaps) != 0 || len(rep.Crossed) != 0 || len(rep.Desyncs) != 0:
				t.Errorf("gaps %d, crossed %d, desyncs %d", len(rep.Gaps), len(rep.Crossed), len(rep.Desyncs))
			case s.Mismatched != 0 || s.Compared != s.Rows-s.Loaded || len(s.Skipped) != 0:
				t.Errorf("snapshots: %d rows, %d loaded, %d compared, %d mismatched, skipped %v", s.Rows, s.Loaded, s.Compared, s.Mismatched, s.Skipped)
			case rep.Book.FirstLive == nil || rep.Book.State != "live":
				t.Errorf("book never live or not live at the end: %+v", rep.Book)
			case sd.day == "2024-08-09" && !rep.Book.LiveAtStart:
				t.Errorf("the book did not carry over midnight: %+v", rep.Book)
			}
			t.Logf("%s %s %s: %d diffs (%d on a live book, from %s), %d snapshots (%d base, %d compared), warm-up %s",
				sd.market, sd.symbol, sd.day, rep.Events.Diff, rep.Book.DiffRowsLive, rep.Book.FirstLive.Format(time.RFC3339Nano),
				s.Rows, s.Loaded, s.Compared, rep.Book.WarmUp)
		})
	}
}
