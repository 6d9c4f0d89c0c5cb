package quality_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/depthcap/depthcap/pkg/md"
	"github.com/depthcap/depthcap/services/depthcap/internal/dataset"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality"
	"github.com/depthcap/depthcap/services/depthcap/internal/quality/qualitytest"
)

// TestVerifySupplement proves that a day's supplement is merged into the
// main file by receive time: three events of a real stream (spot NKNUSDT)
// are missing from the main file, whose manifest lists the gap, and are
// present in <day>.late1.parquet (made by importing them on their own).
// Verify reads both, rebuilds the book through the three events in their
// place, and reports no gap; without the supplement the same day has
// exactly that gap.
func TestVerifySupplement(t *testing.T) {
	const symbol = "NKNUSDT"
	lines := qualitytest.ReadLines(t, qualitytest.Recording("spot_2021-10-12_4sym.rec.gz"))
	_, evs := qualitytest.Follow(t, md.Spot, symbol, lines, func(int) bool { return false })
	const k = 40
	late := map[int]bool{evs[k].Line: true, evs[k+1].Line: true, evs[k+2].Line: true}
	var mainLines, lateLines []qualitytest.Line
	for i, l := range lines {
		if late[i] {
			lateLines = append(lateLines, l)
		} else {
			mainLines = append(mainLines, l)
		}
	}
	dir := t.TempDir()
	name := "spot_2021-10-12_4sym.rec.gz"
	data, lateData := filepath.Join(dir, "data"), filepath.Join(dir, "late")
	for _, x := range []struct {
		dir   string
		lines []qualitytest.Line
	}{{data, mainLines}, {lateData, lateLines}} {
		rec := filepath.Join(x.dir+"-rec", name)
		if err := os.MkdirAll(filepath.Dir(rec), 0o755); err != nil {
			t.Fatal(err)
		}
		qualitytest.WriteLines(t, rec, x.lines)
		qualitytest.Import(t, x.dir, rec)
	}
	day := time.Date(2021, 10, 12, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()
	opts := quality.Options{Market: md.Spot, Symbol: symbol, Date: day}
	without, err := quality.Verify(ctx, dataset.Local(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(without.Gaps) != 1 || without.Gaps[0].AfterID != evs[k-1].Frame.Final || without.Gaps[0].ResumePrevID != evs[k+2].Frame.Final {
		t.Fatalf("without the supplement: gaps %+v", without.Gaps)
	}
	rel := filepath.Join("spot", "diff_orderbooks", symbol)
	for from, to := range map[string]string{"2021-10-12.parquet": "2021-10-12.late1.parquet", "2021-10-12.gaps.json": "2021-10-12.late1.gaps.json"} {
		b, err := os.ReadFile(filepath.Join(lateData, rel, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(data, rel, to), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := quality.Verify(ctx, dataset.Local(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() || rep.Events.Diff != int64(without.Events.Diff+3) {
		t.Fatalf("with the supplement: problems %v gaps %+v, %d diff rows", rep.Problems, rep.Gaps, rep.Events.Diff)
	}
	if len(rep.Files) != 3 || rep.Files[1].Supplement != 1 || !strings.Contains(rep.Merge, "received_time merge") {
		t.Errorf("files %+v, merge %q", rep.Files, rep.Merge)
	}
	if rep.Book.DiffRowsLive != without.Book.DiffRowsLive+int64(len(evs)-k) {
		t.Errorf("%d rows on a live book, want every row after the first snapshot (%d)", rep.Book.DiffRowsLive, without.Book.DiffRowsLive+int64(len(evs)-k))
	}
}

// TestVerifyManifestRows proves that verify compares each file's row count
// (its Parquet footer) with its manifest's: a manifest that disagrees,
// as after rows were removed from a sealed file, is a problem.
func TestVerifyManifestRows(t *testing.T) {
	const symbol = "NKNUSDT"
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	qualitytest.Import(t, data, qualitytest.Recording("spot_2021-10-12_4sym.rec.gz"))
	ctx := context.Background()
	opts := quality.Options{Market: md.Spot, Symbol: symbol, Date: time.Date(2021, 10, 12, 0, 0, 0, 0, time.UTC)}
	rep, err := quality.Verify(ctx, dataset.Local(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Clean() {
		t.Fatalf("as imported: problems %v", rep.Problems)
	}
	path := filepath.Join(data, "spot", "diff_orderbooks", symbol, "2021-10-12.gaps.json")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	rows, ok := m["rows"].(float64)
	if !ok || rows < 2 {
		t.Fatalf("manifest rows %v", m["rows"])
	}
	m["rows"] = rows + 1
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	rep, err = quality.Verify(ctx, dataset.Local(data), opts)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("it says %d rows, the file holds %d", int64(rows)+1, int64(rows))
	found := false
	for _, p := range rep.Problems {
		found = found || strings.Contains(p, want)
	}
	if rep.Clean() || !found {
		t.Fatalf("a manifest one row off: problems %v, want one with %q", rep.Problems, want)
	}
}
