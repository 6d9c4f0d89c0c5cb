package quality_test

import (
	"context"
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

// TestBookAtFallback proves that when the last snapshot before the
// instant is not bridged by the diffs (its lastUpdateId is older than
// every recorded event, as a snapshot answered very late would be), book
// falls back to the snapshot before it and still returns the exact book
// (the reference book after the last event received by then); and that an
// instant before any snapshot has no book.
func TestBookAtFallback(t *testing.T) {
	const symbol = "NKNUSDT"
	lines := qualitytest.DepthLines(qualitytest.ReadLines(t, qualitytest.Recording("spot_2021-10-12_4sym.rec.gz")))
	const k = 60
	_, evs := qualitytest.Follow(t, md.Spot, symbol, lines, func(i int) bool { return i == k })
	var firstU int64
	for _, l := range lines {
		if f, ok := qualitytest.Decode(t, l.JSON); ok && f.Kind == md.Diff && f.Symbol == symbol {
			firstU = f.U
			break
		}
	}
	stale := qualitytest.SnapshotFrame(md.Spot, symbol, firstU-100, [][2]string{{"0.1", "1"}}, [][2]string{{"9.0", "1"}}, 0)
	lines = append(lines, qualitytest.Line{RecvNs: evs[k-5].Recv + 1, JSON: stale})
	dir := t.TempDir()
	rec := filepath.Join(dir, "spot_2021-10-12_4sym.rec.gz")
	qualitytest.WriteLines(t, rec, lines)
	data := filepath.Join(dir, "data")
	qualitytest.Import(t, data, rec)

	at := time.UnixMicro(evs[k].Recv / 1000)
	bs, err := quality.BookAt(context.Background(), dataset.Local(data), quality.BookOptions{Market: md.Spot, Symbol: symbol, At: at})
	if err != nil {
		t.Fatal(err)
	}
	if bs.UpdateID != evs[k].Frame.Final || bs.Snapshot == firstU-100 {
		t.Fatalf("book at %d from snapshot %d, want %d from the snapshot before the stale one", bs.UpdateID, bs.Snapshot, evs[k].Frame.Final)
	}
	wb, wa := evs[k].After.Top(0)
	if len(bs.Bids) != len(wb) || len(bs.Asks) != len(wa) {
		t.Fatalf("%d/%d levels, want %d/%d", len(bs.Bids), len(bs.Asks), len(wb), len(wa))
	}
	for i, w := range wb {
		if p, _ := strconv.ParseFloat(w[0], 64); bs.Bids[i].Price != p {
			t.Fatalf("bid %d: %v, want %v", i, bs.Bids[i], w)
		}
	}

	_, err = quality.BookAt(context.Background(), dataset.Local(data), quality.BookOptions{Market: md.Spot, Symbol: symbol,
		At: time.UnixMicro(evs[0].Recv/1000 - 10_000_000)})
	if !errors.Is(err, quality.ErrNoBook) {
		t.Errorf("before any snapshot: %v, want ErrNoBook", err)
	}
}
